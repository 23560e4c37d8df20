//! The TLS scenarios' certificates, made with rcgen when the bench's Kafka node starts: a
//! CA, and a broker certificate for 127.0.0.1 and localhost signed by it (ECDSA P-256, as
//! the test bed's `tests/common/secure.rs`). The broker gets its chain and key inline in its
//! properties; the clients trust the CA from `ca.pem` in the node's directory, which is
//! removed with the node at the end of the bench.

use std::net::{IpAddr, Ipv4Addr};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose, SanType,
};

/// The CA's certificate and the broker's chain and key, as PEM.
pub struct BenchCerts {
    pub ca_pem: String,
    /// The broker certificate followed by the CA.
    pub broker_chain_pem: String,
    /// The broker's private key, unencrypted PKCS#8.
    pub broker_key_pem: String,
}

impl BenchCerts {
    pub fn generate() -> Result<BenchCerts, String> {
        let err = |what: &str| {
            let what = what.to_string();
            move |e: rcgen::Error| format!("making the bench certificates ({what}): {e}")
        };
        let ca_key = KeyPair::generate().map_err(err("CA key"))?;
        let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(err("CA"))?;
        ca.distinguished_name
            .push(DnType::CommonName, "kafka-producer bench CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        ca.not_before = rcgen::date_time_ymd(2020, 1, 1);
        ca.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let ca_cert = ca.self_signed(&ca_key).map_err(err("CA"))?;

        let key = KeyPair::generate().map_err(err("broker key"))?;
        let mut leaf = CertificateParams::new(Vec::<String>::new()).map_err(err("broker"))?;
        leaf.distinguished_name
            .push(DnType::CommonName, "kafka-producer bench broker");
        leaf.subject_alt_names = vec![
            SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
            SanType::DnsName("localhost".try_into().map_err(err("SAN"))?),
        ];
        leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        leaf.use_authority_key_identifier_extension = true;
        leaf.not_before = rcgen::date_time_ymd(2020, 1, 1);
        leaf.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let broker = leaf
            .signed_by(&key, &ca_cert, &ca_key)
            .map_err(err("broker"))?;
        Ok(BenchCerts {
            ca_pem: ca_cert.pem(),
            broker_chain_pem: format!("{}{}", broker.pem(), ca_cert.pem()),
            broker_key_pem: key.serialize_pem(),
        })
    }
}

//! `ssl.*`: the TLS settings by Java's property names, and (with the `tls` feature) the
//! rustls client configuration built from them.
//!
//! Stores are PEM only: a file (`*.location`) or the PEM text itself
//! (`ssl.truststore.certificates`, `ssl.keystore.certificate.chain`, `ssl.keystore.key`),
//! as Kafka 2.7+ accepts them. JKS and PKCS12 stores get an error that says how to convert
//! them to PEM. Without a truststore, the system's trust roots are used, as librdkafka does.

use std::fmt;
use std::path::PathBuf;

use super::Secret;
use crate::error::Error;

/// Java's default `ssl.enabled.protocols`.
const DEFAULT_ENABLED_PROTOCOLS: [&str; 2] = ["TLSv1.2", "TLSv1.3"];

/// The `ssl.*` settings. Every field is a Java property; `None` is "not set".
///
/// `Debug` shows which secrets are set, never their values.
#[derive(Clone, PartialEq, Eq)]
pub struct SslConfig {
    /// `ssl.truststore.type`: `PEM` (Java's default is `JKS`, which this client cannot read;
    /// unset, a PEM file or PEM text is accepted).
    pub truststore_type: Option<String>,
    /// `ssl.truststore.location`: a PEM file of trusted CA certificates.
    pub truststore_location: Option<PathBuf>,
    /// `ssl.truststore.certificates`: trusted CA certificates as PEM text.
    pub truststore_certificates: Option<String>,
    /// `ssl.truststore.password`: only meaningful for JKS and PKCS12 stores; a PEM
    /// truststore with a password is refused, as in Java.
    pub truststore_password: Option<Secret>,
    /// `ssl.keystore.type`: `PEM` (unset, PEM is accepted).
    pub keystore_type: Option<String>,
    /// `ssl.keystore.location`: a PEM file with the client's private key and certificate
    /// chain (for brokers that require client certificates: `ssl.client.auth=required`).
    pub keystore_location: Option<PathBuf>,
    /// `ssl.keystore.certificate.chain`: the client's certificate chain as PEM text.
    pub keystore_certificate_chain: Option<String>,
    /// `ssl.keystore.key`: the client's private key as PEM text (PKCS#8, PKCS#1 or SEC1).
    pub keystore_key: Option<Secret>,
    /// `ssl.keystore.password`: only meaningful for JKS and PKCS12 stores.
    pub keystore_password: Option<Secret>,
    /// `ssl.key.password`: the password of an encrypted private key (PKCS#8
    /// `ENCRYPTED PRIVATE KEY`, PBES2: PBKDF2 or scrypt with AES-CBC, as `openssl pkcs8
    /// -topk8` writes it).
    pub key_password: Option<Secret>,
    /// `ssl.endpoint.identification.algorithm` (default `https`): the broker's certificate
    /// must name the host the client connected to. Empty disables the check (the chain is
    /// still verified).
    pub endpoint_identification_algorithm: String,
    /// `ssl.enabled.protocols` (default `TLSv1.2,TLSv1.3`): the TLS versions offered.
    /// rustls speaks only these two; older versions in the list are ignored with a warning.
    pub enabled_protocols: Vec<String>,
    /// `ssl.protocol` (default `TLSv1.3`): `TLSv1.2` caps the version at 1.2, as in Java;
    /// `TLS` and `TLSv1.3` allow both.
    pub protocol: String,
}

impl Default for SslConfig {
    /// Java's defaults.
    fn default() -> Self {
        SslConfig {
            truststore_type: None,
            truststore_location: None,
            truststore_certificates: None,
            truststore_password: None,
            keystore_type: None,
            keystore_location: None,
            keystore_certificate_chain: None,
            keystore_key: None,
            keystore_password: None,
            key_password: None,
            endpoint_identification_algorithm: "https".to_owned(),
            enabled_protocols: DEFAULT_ENABLED_PROTOCOLS.map(str::to_owned).to_vec(),
            protocol: "TLSv1.3".to_owned(),
        }
    }
}

impl fmt::Debug for SslConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let set = |s: &Option<Secret>| s.as_ref().map(|_| "[redacted]");
        f.debug_struct("SslConfig")
            .field("truststore_type", &self.truststore_type)
            .field("truststore_location", &self.truststore_location)
            .field(
                "truststore_certificates",
                &self.truststore_certificates.as_ref().map(|_| "<PEM>"),
            )
            .field("truststore_password", &set(&self.truststore_password))
            .field("keystore_type", &self.keystore_type)
            .field("keystore_location", &self.keystore_location)
            .field(
                "keystore_certificate_chain",
                &self.keystore_certificate_chain.as_ref().map(|_| "<PEM>"),
            )
            .field("keystore_key", &set(&self.keystore_key))
            .field("keystore_password", &set(&self.keystore_password))
            .field("key_password", &set(&self.key_password))
            .field(
                "endpoint_identification_algorithm",
                &self.endpoint_identification_algorithm,
            )
            .field("enabled_protocols", &self.enabled_protocols)
            .field("protocol", &self.protocol)
            .finish()
    }
}

/// The TLS versions the settings allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TlsVersions {
    pub(crate) tls12: bool,
    pub(crate) tls13: bool,
}

impl SslConfig {
    /// Sets one `ssl.*` property. Returns `Ok(false)` for a name that is not one of them.
    pub(crate) fn set(&mut self, name: &str, value: &str) -> Result<bool, Error> {
        let text = || Some(value.to_owned()).filter(|v| !v.trim().is_empty());
        let path = || text().map(|v| PathBuf::from(v.trim()));
        // Java trims PASSWORD values (a secret file's final newline goes).
        let secret = || {
            Some(value.trim().to_owned())
                .filter(|v| !v.is_empty())
                .map(Secret::new)
        };
        let word = || text().map(|v| v.trim().to_owned());
        match name {
            "ssl.truststore.type" => self.truststore_type = word(),
            "ssl.truststore.location" => self.truststore_location = path(),
            "ssl.truststore.certificates" => self.truststore_certificates = text(),
            "ssl.truststore.password" => self.truststore_password = secret(),
            "ssl.keystore.type" => self.keystore_type = word(),
            "ssl.keystore.location" => self.keystore_location = path(),
            "ssl.keystore.certificate.chain" => self.keystore_certificate_chain = text(),
            "ssl.keystore.key" => self.keystore_key = secret(),
            "ssl.keystore.password" => self.keystore_password = secret(),
            "ssl.key.password" => self.key_password = secret(),
            "ssl.endpoint.identification.algorithm" => {
                let v = value.trim();
                if !v.is_empty() && !v.eq_ignore_ascii_case("https") {
                    return Err(Error::Config(format!(
                        "ssl.endpoint.identification.algorithm {v:?} is not supported: use \
                         \"https\" (verify the broker's host name, the default) or \"\" (do not)"
                    )));
                }
                self.endpoint_identification_algorithm = v.to_ascii_lowercase();
            }
            "ssl.enabled.protocols" => {
                self.enabled_protocols = value
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(str::to_owned)
                    .collect();
                self.versions()?;
            }
            "ssl.protocol" => {
                self.protocol = value.trim().to_owned();
                self.versions()?;
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// Every `ssl.*` property and its value, secrets as `[hidden]` (Java's notation for
    /// passwords in logged configs), unset ones left out.
    pub(crate) fn to_properties(&self) -> Vec<(&'static str, String)> {
        let hidden = |s: &Option<Secret>| s.as_ref().map(|_| "[hidden]".to_owned());
        let path = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
        [
            ("ssl.truststore.type", self.truststore_type.clone()),
            ("ssl.truststore.location", path(&self.truststore_location)),
            (
                "ssl.truststore.certificates",
                self.truststore_certificates.clone(),
            ),
            ("ssl.truststore.password", hidden(&self.truststore_password)),
            ("ssl.keystore.type", self.keystore_type.clone()),
            ("ssl.keystore.location", path(&self.keystore_location)),
            (
                "ssl.keystore.certificate.chain",
                self.keystore_certificate_chain.clone(),
            ),
            ("ssl.keystore.key", hidden(&self.keystore_key)),
            ("ssl.keystore.password", hidden(&self.keystore_password)),
            ("ssl.key.password", hidden(&self.key_password)),
            (
                "ssl.endpoint.identification.algorithm",
                Some(self.endpoint_identification_algorithm.clone()),
            ),
            (
                "ssl.enabled.protocols",
                Some(self.enabled_protocols.join(",")),
            ),
            ("ssl.protocol", Some(self.protocol.clone())),
        ]
        .into_iter()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .collect()
    }

    /// Whether the broker's host name is checked against its certificate.
    pub fn verifies_host_name(&self) -> bool {
        !self.endpoint_identification_algorithm.is_empty()
    }

    /// The TLS versions `ssl.enabled.protocols` and `ssl.protocol` allow together.
    pub(crate) fn versions(&self) -> Result<TlsVersions, Error> {
        let cap13 = match self.protocol.as_str() {
            "TLS" | "TLSv1.3" => true,
            "TLSv1.2" => false,
            other => {
                return Err(Error::Config(format!(
                    "ssl.protocol {other:?} is not supported: this client speaks TLSv1.2 and \
                     TLSv1.3 (use TLS, TLSv1.3 or TLSv1.2)"
                )))
            }
        };
        let mut versions = TlsVersions {
            tls12: false,
            tls13: false,
        };
        for p in &self.enabled_protocols {
            match p.as_str() {
                "TLSv1.2" => versions.tls12 = true,
                "TLSv1.3" => versions.tls13 = cap13,
                "TLSv1" | "TLSv1.1" | "SSLv3" | "SSLv2Hello" => {
                    log::warn!("ssl.enabled.protocols: {p} is ignored (only TLSv1.2 and TLSv1.3)")
                }
                other => {
                    return Err(Error::Config(format!(
                        "ssl.enabled.protocols names {other:?}, which is not a TLS version \
                         (expected TLSv1.2 and/or TLSv1.3)"
                    )))
                }
            }
        }
        if !versions.tls12 && !versions.tls13 {
            return Err(Error::Config(format!(
                "ssl.enabled.protocols ({}) with ssl.protocol {} leaves no TLS version this \
                 client speaks (TLSv1.2, TLSv1.3)",
                self.enabled_protocols.join(","),
                self.protocol
            )));
        }
        Ok(versions)
    }

    /// Checks the store types and the combinations Java refuses, before anything is read.
    pub(crate) fn check(&self) -> Result<(), Error> {
        self.versions()?;
        check_store_type("ssl.truststore.type", self.truststore_type.as_deref())?;
        check_store_type("ssl.keystore.type", self.keystore_type.as_deref())?;
        if self.truststore_location.is_some() && self.truststore_certificates.is_some() {
            return Err(Error::Config(
                "ssl.truststore.location and ssl.truststore.certificates are both set; set one"
                    .into(),
            ));
        }
        if self.truststore_password.is_some() {
            return Err(Error::Config(
                "ssl.truststore.password is set, but PEM truststores have no password (Java \
                 refuses it too); remove it"
                    .into(),
            ));
        }
        let inline = self.keystore_certificate_chain.is_some() || self.keystore_key.is_some();
        if inline && self.keystore_location.is_some() {
            return Err(Error::Config(
                "ssl.keystore.location and ssl.keystore.certificate.chain/ssl.keystore.key are \
                 both set; set one"
                    .into(),
            ));
        }
        if self.keystore_certificate_chain.is_some() != self.keystore_key.is_some() {
            return Err(Error::Config(
                "ssl.keystore.certificate.chain and ssl.keystore.key go together; set both".into(),
            ));
        }
        Ok(())
    }
}

/// `PEM` or unset; JKS and PKCS12 get a conversion hint.
fn check_store_type(name: &str, value: Option<&str>) -> Result<(), Error> {
    match value.map(str::to_ascii_uppercase).as_deref() {
        None | Some("PEM") => Ok(()),
        Some(t @ ("JKS" | "PKCS12")) => Err(Error::Config(format!(
            "{name}={t} is not supported: this client reads PEM stores only. Convert the store \
             (keytool -exportcert -rfc for certificates; openssl pkcs12 -nodes for a PKCS12 \
             keystore) and set {name}=PEM"
        ))),
        Some(other) => Err(Error::Config(format!(
            "{name} {other:?} is not supported: use PEM"
        ))),
    }
}

#[cfg(feature = "tls")]
pub(crate) use rustls_config::client_config;

/// The rustls side: stores read, verifier chosen, client config built.
#[cfg(feature = "tls")]
mod rustls_config {
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::client::WebPkiServerVerifier;
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{
        CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer, ServerName, UnixTime,
    };
    use rustls::{CertificateError, ClientConfig, DigitallySignedStruct, RootCertStore};

    use super::SslConfig;
    use crate::error::Error;
    use crate::security::Secret;

    /// The rustls client configuration for `ssl`: trust roots, client certificate, TLS
    /// versions and host name verification. Stores are read here, once per producer, so a
    /// missing or bad file is a config error at construction.
    pub(crate) fn client_config(ssl: &SslConfig) -> Result<Arc<ClientConfig>, Error> {
        ssl.check()?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let versions = ssl.versions()?;
        let mut protocol_versions = Vec::new();
        if versions.tls13 {
            protocol_versions.push(&rustls::version::TLS13);
        }
        if versions.tls12 {
            protocol_versions.push(&rustls::version::TLS12);
        }
        let roots = Arc::new(trust_roots(ssl)?);
        let webpki = WebPkiServerVerifier::builder_with_provider(roots, Arc::clone(&provider))
            .build()
            .map_err(|e| Error::Config(format!("TLS truststore: {e}")))?;
        let builder = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(&protocol_versions)
            .map_err(|e| Error::Config(format!("TLS versions: {e}")))?;
        let builder = if ssl.verifies_host_name() {
            builder.with_webpki_verifier(webpki)
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(AnyHostName { inner: webpki }))
        };
        let config = match client_identity(ssl)? {
            Some((chain, key)) => builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| Error::Config(format!("TLS client certificate: {e}")))?,
            None => builder.with_no_client_auth(),
        };
        Ok(Arc::new(config))
    }

    /// The truststore's certificates, or the system's roots without one.
    fn trust_roots(ssl: &SslConfig) -> Result<RootCertStore, Error> {
        let mut roots = RootCertStore::empty();
        let pem = match (&ssl.truststore_location, &ssl.truststore_certificates) {
            (Some(path), _) => Some((
                format!("ssl.truststore.location {}", path.display()),
                read_file("ssl.truststore.location", path)?,
            )),
            (None, Some(text)) => Some((
                "ssl.truststore.certificates".to_owned(),
                text.as_bytes().to_vec(),
            )),
            (None, None) => None,
        };
        let Some((what, pem)) = pem else {
            let found = rustls_native_certs::load_native_certs();
            for e in &found.errors {
                log::warn!("reading the system's trust roots: {e}");
            }
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                return Err(Error::Config(
                    "no truststore is configured and no system trust roots were found; set \
                     ssl.truststore.location to a PEM file of CA certificates"
                        .into(),
                ));
            }
            return Ok(roots);
        };
        let certs = certificates(&what, &pem)?;
        for cert in certs {
            roots
                .add(cert)
                .map_err(|e| Error::Config(format!("{what}: a certificate is unusable: {e}")))?;
        }
        Ok(roots)
    }

    /// The client certificate chain and key, when a keystore is configured.
    #[allow(clippy::type_complexity)]
    fn client_identity(
        ssl: &SslConfig,
    ) -> Result<Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>, Error> {
        if let Some(path) = &ssl.keystore_location {
            let pem = read_file("ssl.keystore.location", path)?;
            let what = format!("ssl.keystore.location {}", path.display());
            let chain = certificates(&what, &pem)?;
            let key = private_key(&what, &pem, ssl.key_password.as_ref())?;
            return Ok(Some((chain, key)));
        }
        match (&ssl.keystore_certificate_chain, &ssl.keystore_key) {
            (Some(chain), Some(key)) => {
                let chain = certificates("ssl.keystore.certificate.chain", chain.as_bytes())?;
                let key = private_key(
                    "ssl.keystore.key",
                    key.expose().as_bytes(),
                    ssl.key_password.as_ref(),
                )?;
                Ok(Some((chain, key)))
            }
            _ => Ok(None),
        }
    }

    fn read_file(name: &str, path: &std::path::Path) -> Result<Vec<u8>, Error> {
        let bytes = std::fs::read(path)
            .map_err(|e| Error::Config(format!("{name}: cannot read {}: {e}", path.display())))?;
        if !bytes.starts_with(b"-----") && !String::from_utf8_lossy(&bytes).contains("-----BEGIN") {
            return Err(Error::Config(format!(
                "{name}: {} is not a PEM file (a JKS or PKCS12 store?); this client reads PEM \
                 only: convert it (keytool -exportcert -rfc, openssl pkcs12 -nodes)",
                path.display()
            )));
        }
        Ok(bytes)
    }

    /// Every certificate in PEM text; at least one.
    fn certificates(what: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(pem)
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Config(format!("{what}: not valid PEM: {}", pem_problem(&e))))?;
        if certs.is_empty() {
            return Err(Error::Config(format!(
                "{what}: no certificate (-----BEGIN CERTIFICATE-----) found"
            )));
        }
        Ok(certs)
    }

    /// What is wrong with PEM text, in words that never quote it: the same file may hold
    /// the private key, and the parser's own message prints the offending line.
    fn pem_problem(e: &rustls::pki_types::pem::Error) -> &'static str {
        use rustls::pki_types::pem::Error as Pem;
        match e {
            Pem::MissingSectionEnd { .. } => "a section has no END line",
            Pem::IllegalSectionStart { .. } => "a BEGIN line is malformed",
            Pem::Base64Decode(_) => "a section's base64 does not decode",
            Pem::SectionTooLarge => "a section is larger than 256 MB",
            _ => "the text does not parse",
        }
    }

    /// The private key in PEM text, decrypted with `password` when it is encrypted. The
    /// errors never quote the text or the password.
    fn private_key(
        what: &str,
        pem: &[u8],
        password: Option<&Secret>,
    ) -> Result<PrivateKeyDer<'static>, Error> {
        let text = String::from_utf8_lossy(pem);
        if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
            let Some(password) = password else {
                return Err(Error::Config(format!(
                    "{what}: the private key is encrypted; set ssl.key.password"
                )));
            };
            return decrypt(what, &text, password);
        }
        if password.is_some() {
            log::warn!("{what}: ssl.key.password is set, but the private key is not encrypted");
        }
        PrivateKeyDer::from_pem_slice(pem).map_err(|_| {
            Error::Config(format!(
                "{what}: no private key found (expected a PEM PRIVATE KEY, ENCRYPTED PRIVATE \
                 KEY, RSA PRIVATE KEY or EC PRIVATE KEY section)"
            ))
        })
    }

    /// Decrypts the `ENCRYPTED PRIVATE KEY` section of `text` (PKCS#8, PBES2).
    fn decrypt(what: &str, text: &str, password: &Secret) -> Result<PrivateKeyDer<'static>, Error> {
        const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
        const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
        let start = text.find(BEGIN).expect("checked by the caller");
        let section = text[start..]
            .find(END)
            .map(|end| &text[start..start + end + END.len()])
            .ok_or_else(|| {
                Error::Config(format!("{what}: the encrypted private key has no end line"))
            })?;
        let (_, document) = pkcs8::Document::from_pem(section).map_err(|_| {
            Error::Config(format!(
                "{what}: the encrypted private key is not valid PEM"
            ))
        })?;
        let encrypted =
            pkcs8::EncryptedPrivateKeyInfo::try_from(document.as_bytes()).map_err(|_| {
                Error::Config(format!("{what}: the encrypted private key is not PKCS#8"))
            })?;
        let key = encrypted.decrypt(password.expose()).map_err(|_| {
            Error::Config(format!(
                "{what}: the private key does not decrypt with ssl.key.password (a wrong \
                 password, or a cipher other than PBES2 with AES-CBC)"
            ))
        })?;
        Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            key.as_bytes().to_vec(),
        )))
    }

    /// `ssl.endpoint.identification.algorithm=""`: the chain is verified as usual, only a
    /// certificate that does not name the host is accepted.
    #[derive(Debug)]
    struct AnyHostName {
        inner: Arc<WebPkiServerVerifier>,
    }

    impl ServerCertVerifier for AnyHostName {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            intermediates: &[CertificateDer<'_>],
            server_name: &ServerName<'_>,
            ocsp_response: &[u8],
            now: UnixTime,
        ) -> Result<ServerCertVerified, rustls::Error> {
            match self.inner.verify_server_cert(
                end_entity,
                intermediates,
                server_name,
                ocsp_response,
                now,
            ) {
                Err(rustls::Error::InvalidCertificate(
                    CertificateError::NotValidForName
                    | CertificateError::NotValidForNameContext { .. },
                )) => Ok(ServerCertVerified::assertion()),
                other => other,
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls12_signature(message, cert, dss)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, rustls::Error> {
            self.inner.verify_tls13_signature(message, cert, dss)
        }

        fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
            self.inner.supported_verify_schemes()
        }
    }
}

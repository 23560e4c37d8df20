//! The secure test bed: test certificates made at test time, and a single Kafka node with
//! a listener for each kind of TLS and SASL the producer must speak.
//!
//! - [`TestCerts`]: a test CA and certificates signed by it (a broker certificate for
//!   127.0.0.1 and localhost, a client certificate, an expired and a wrong-host broker
//!   certificate), and an unrelated CA, as PEM files in a directory removed when the test
//!   process exits.
//! - [`SecureKafka`]: one broker with the listeners of [`Listener`]; [`shared`] is one per
//!   test binary. Users are [`ALICE`] and [`BOB`] (PLAIN) and [`ALICE`] (SCRAM); OAUTHBEARER
//!   takes any unsecured JWT (`alg: none`). There is no authorizer: every authenticated
//!   principal may write.
//! - [`SecureKafka::reauthentications`]: the broker's own count of successful
//!   re-authentications per listener, read over JMX by `testbed/java/JmxSum.java`.
#![allow(dead_code)]

use std::io::Write as _;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;

use rcgen::{
    BasicConstraints, Certificate, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose, SanType,
};
use rdkafka::ClientConfig;

use super::kafka::{self, ClusterOptions, KafkaCluster};
use super::ReadRecord;

/// The user every mechanism knows (PLAIN and both SCRAMs).
pub const ALICE: &str = "alice";
/// [`ALICE`]'s password.
pub const ALICE_PASSWORD: &str = "alice-secret";
/// A second PLAIN user (no SCRAM credentials).
pub const BOB: &str = "bob";
/// [`BOB`]'s password.
pub const BOB_PASSWORD: &str = "bob-secret";
/// A SCRAM-SHA-512 user whose password a test changes ([`SecureKafka::set_scram_password`]);
/// no other test uses it.
pub const CAROL: &str = "carol";
/// [`CAROL`]'s password at start.
pub const CAROL_PASSWORD: &str = "carol-secret";
/// The SASL mechanisms every SASL listener enables, by their Kafka names.
pub const MECHANISMS: [&str; 4] = ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512", "OAUTHBEARER"];
/// The longest session [`Listener::Reauth`] grants (`connections.max.reauth.ms`), in ms.
pub const REAUTH_MS: u64 = 5000;

// ---------------------------------------------------------------------------------------
// Certificates
// ---------------------------------------------------------------------------------------

/// Certificates and keys made at test time (ECDSA P-256; keys unencrypted PKCS#8 PEM), in
/// a directory that is removed on drop or, for one in a static, when the test process
/// exits (a small `sh` that waits on a pipe from this process removes it).
#[derive(Debug)]
pub struct TestCerts {
    dir: PathBuf,
    ca_pem: String,
    other_ca_pem: String,
    broker: Pair,
    expired_broker: Pair,
    wrong_host_broker: Pair,
    client: Pair,
    untrusted_client: Pair,
    remover: Remover,
}

/// A leaf certificate chain (leaf, then its CA) and its key, as PEM.
#[derive(Debug, Clone)]
pub struct Pair {
    /// The leaf certificate followed by the CA that signed it.
    pub chain_pem: String,
    /// The private key, unencrypted PKCS#8 (`BEGIN PRIVATE KEY`).
    pub key_pem: String,
}

/// A CA: its certificate and key.
struct Ca {
    cert: Certificate,
    key: KeyPair,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = KeyPair::generate().expect("generate a CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.distinguished_name.push(DnType::CommonName, name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        params.not_before = rcgen::date_time_ymd(2020, 1, 1);
        params.not_after = rcgen::date_time_ymd(2099, 1, 1);
        let cert = params.self_signed(&key).expect("self-sign the CA");
        Ca { cert, key }
    }

    /// A leaf signed by this CA with common name `cn`, subject alternative names `sans`
    /// and validity `from`..`until` (years, January 1st).
    fn sign(
        &self,
        cn: &str,
        sans: Vec<SanType>,
        usage: ExtendedKeyUsagePurpose,
        from: i32,
        until: i32,
    ) -> Pair {
        let key = KeyPair::generate().expect("generate a leaf key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("leaf params");
        params.distinguished_name.push(DnType::CommonName, cn);
        params.subject_alt_names = sans;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = vec![usage];
        params.use_authority_key_identifier_extension = true;
        params.not_before = rcgen::date_time_ymd(from, 1, 1);
        params.not_after = rcgen::date_time_ymd(until, 1, 1);
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign a leaf");
        Pair {
            chain_pem: format!("{}{}", cert.pem(), self.cert.pem()),
            key_pem: key.serialize_pem(),
        }
    }
}

fn dns(name: &str) -> SanType {
    SanType::DnsName(name.try_into().expect("a DNS name"))
}

impl TestCerts {
    /// Makes every certificate and writes the PEM files.
    pub fn generate() -> TestCerts {
        let ca = Ca::new("kafka-producer test CA");
        let other_ca = Ca::new("kafka-producer unrelated CA");
        let server = ExtendedKeyUsagePurpose::ServerAuth;
        let client = ExtendedKeyUsagePurpose::ClientAuth;
        let loopback = || {
            vec![
                SanType::IpAddress(IpAddr::V4(Ipv4Addr::LOCALHOST)),
                dns("localhost"),
            ]
        };
        let broker = ca.sign("broker", loopback(), server.clone(), 2020, 2099);
        let expired_broker = ca.sign("expired broker", loopback(), server.clone(), 2000, 2001);
        let wrong_host_broker = ca.sign(
            "wrong-host broker",
            vec![dns("kafka.invalid")],
            server,
            2020,
            2099,
        );
        let client_pair = ca.sign("client", Vec::new(), client.clone(), 2020, 2099);
        let untrusted_client = other_ca.sign("client", Vec::new(), client, 2020, 2099);

        let dir = kafka::test_bed_root().join(format!("{}-certs", kafka::unique_marker()));
        std::fs::create_dir_all(&dir).expect("create the certificates directory");
        let remover = Remover::spawn(&dir);
        let write = |name: &str, text: &str| {
            std::fs::write(dir.join(name), text).unwrap_or_else(|e| panic!("write {name}: {e}"));
        };
        write("ca.pem", &ca.cert.pem());
        write("other-ca.pem", &other_ca.cert.pem());
        for (name, pair) in [
            ("broker", &broker),
            ("expired-broker", &expired_broker),
            ("wrong-host-broker", &wrong_host_broker),
            ("client", &client_pair),
            ("untrusted-client", &untrusted_client),
        ] {
            write(&format!("{name}-chain.pem"), &pair.chain_pem);
            write(&format!("{name}-key.pem"), &pair.key_pem);
        }
        TestCerts {
            ca_pem: ca.cert.pem(),
            other_ca_pem: other_ca.cert.pem(),
            broker,
            expired_broker,
            wrong_host_broker,
            client: client_pair,
            untrusted_client,
            dir,
            remover,
        }
    }

    /// The directory of the PEM files.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `ca.pem`: the test CA, which signed every broker and the client certificate.
    pub fn ca_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The test CA's certificate as PEM text.
    pub fn ca_pem(&self) -> &str {
        &self.ca_pem
    }

    /// `other-ca.pem`: an unrelated CA that signed no broker certificate (a client that
    /// trusts only it must reject every TLS listener).
    pub fn other_ca_path(&self) -> PathBuf {
        self.dir.join("other-ca.pem")
    }

    /// The unrelated CA's certificate as PEM text.
    pub fn other_ca_pem(&self) -> &str {
        &self.other_ca_pem
    }

    /// `client-chain.pem`: the client certificate (CN `client`) followed by the test CA.
    pub fn client_chain_path(&self) -> PathBuf {
        self.dir.join("client-chain.pem")
    }

    /// `client-key.pem`: the client's private key, unencrypted PKCS#8.
    pub fn client_key_path(&self) -> PathBuf {
        self.dir.join("client-key.pem")
    }

    /// The client certificate chain and key as PEM text.
    pub fn client(&self) -> &Pair {
        &self.client
    }

    /// `untrusted-client-chain.pem`: a client certificate (CN `client`) signed by the
    /// unrelated CA, which the mTLS listener must refuse.
    pub fn untrusted_client_chain_path(&self) -> PathBuf {
        self.dir.join("untrusted-client-chain.pem")
    }

    /// `untrusted-client-key.pem`: the key of [`TestCerts::untrusted_client_chain_path`].
    pub fn untrusted_client_key_path(&self) -> PathBuf {
        self.dir.join("untrusted-client-key.pem")
    }

    /// The broker certificate (SANs: IP 127.0.0.1, DNS localhost) and key.
    pub fn broker(&self) -> &Pair {
        &self.broker
    }

    /// A broker certificate by the test CA valid only from 2000 to 2001.
    pub fn expired_broker(&self) -> &Pair {
        &self.expired_broker
    }

    /// A broker certificate by the test CA whose only SAN is DNS `kafka.invalid`.
    pub fn wrong_host_broker(&self) -> &Pair {
        &self.wrong_host_broker
    }
}

/// Removes a directory on drop, or when the test process exits in any way: an `sh` that
/// waits for the end of a pipe from this process, then removes it.
#[derive(Debug)]
struct Remover {
    child: Child,
    stdin: Option<ChildStdin>,
}

impl Remover {
    fn spawn(dir: &Path) -> Remover {
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(r#"IFS= read -r _; rm -rf "$1""#)
            .arg("kafka-testbed-certs")
            .arg(dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn the certificate directory remover (sh)");
        let stdin = child.stdin.take();
        Remover { child, stdin }
    }
}

impl Drop for Remover {
    fn drop(&mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"\n");
        }
        let _ = self.child.wait();
    }
}

// ---------------------------------------------------------------------------------------
// The secure broker
// ---------------------------------------------------------------------------------------

/// The listeners of [`SecureKafka`], each on its own loopback port.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Listener {
    /// PLAINTEXT: inter-broker, admin, topic creation and the readers.
    Plaintext,
    /// SSL: TLS with the broker certificate, no client authentication.
    Ssl,
    /// SASL_PLAINTEXT with every mechanism of [`MECHANISMS`].
    SaslPlaintext,
    /// SASL_SSL with every mechanism of [`MECHANISMS`], no session limit.
    SaslSsl,
    /// SSL with `ssl.client.auth=required`, trusting client certificates of the test CA.
    Mtls,
    /// SASL_SSL with every mechanism and sessions of at most [`REAUTH_MS`], so clients must
    /// re-authenticate (KIP-368).
    Reauth,
    /// SSL with the expired broker certificate.
    Expired,
    /// SSL with the broker certificate for `kafka.invalid` only.
    WrongHost,
    /// SASL_PLAINTEXT that enables only [`LIMITED_MECHANISMS`] (a client asking for
    /// another mechanism is refused with the enabled ones listed).
    Limited,
}

/// Where Kafka 4.4 and later keep `kafka-configs`' main class, inside `kafka-tools`.
const CONFIG_COMMAND_TOOLS: &str = "org/apache/kafka/tools/ConfigCommand.class";

/// Whether the jar at `path` holds an entry named `entry` (its name appears in the zip's
/// central directory, stored uncompressed).
fn jar_has(path: &Path, entry: &str) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.windows(entry.len()).any(|w| w == entry.as_bytes()))
}

/// The mechanisms [`Listener::Limited`] enables.
pub const LIMITED_MECHANISMS: [&str; 1] = ["SCRAM-SHA-512"];

impl Listener {
    /// Every listener.
    pub const ALL: [Listener; 9] = [
        Listener::Plaintext,
        Listener::Ssl,
        Listener::SaslPlaintext,
        Listener::SaslSsl,
        Listener::Mtls,
        Listener::Reauth,
        Listener::Expired,
        Listener::WrongHost,
        Listener::Limited,
    ];

    /// The listener's name in the broker's configuration and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Listener::Plaintext => "PLAINTEXT",
            Listener::Ssl => "SSL",
            Listener::SaslPlaintext => "SASL_PLAINTEXT",
            Listener::SaslSsl => "SASL_SSL",
            Listener::Mtls => "MTLS",
            Listener::Reauth => "REAUTH",
            Listener::Expired => "EXPIRED",
            Listener::WrongHost => "WRONGHOST",
            Listener::Limited => "LIMITED",
        }
    }

    /// Its security protocol (`security.protocol`).
    pub fn protocol(self) -> &'static str {
        match self {
            Listener::Plaintext => "PLAINTEXT",
            Listener::Ssl | Listener::Mtls | Listener::Expired | Listener::WrongHost => "SSL",
            Listener::SaslPlaintext | Listener::Limited => "SASL_PLAINTEXT",
            Listener::SaslSsl | Listener::Reauth => "SASL_SSL",
        }
    }

    /// Whether it speaks TLS.
    pub fn tls(self) -> bool {
        self.protocol().ends_with("SSL")
    }

    /// Whether it authenticates with SASL.
    pub fn sasl(self) -> bool {
        self.protocol().starts_with("SASL")
    }
}

/// A single Kafka node with the listeners of [`Listener`] (see the module docs); stopped
/// and its data removed on drop or when the test process exits.
#[derive(Debug)]
pub struct SecureKafka {
    /// The certificates its listeners use.
    pub certs: TestCerts,
    cluster: KafkaCluster,
}

/// The secure node this test binary shares between its tests (started on first use,
/// stopped when the test process exits).
pub fn shared() -> &'static SecureKafka {
    static SHARED: OnceLock<SecureKafka> = OnceLock::new();
    SHARED.get_or_init(SecureKafka::start)
}

/// The JAAS configuration of `mechanism` on a broker listener.
fn broker_jaas(mechanism: &str) -> String {
    match mechanism {
        "PLAIN" => format!(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             user_{ALICE}=\"{ALICE_PASSWORD}\" user_{BOB}=\"{BOB_PASSWORD}\";"
        ),
        "SCRAM-SHA-256" | "SCRAM-SHA-512" => {
            "org.apache.kafka.common.security.scram.ScramLoginModule required;".to_owned()
        }
        "OAUTHBEARER" => "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule \
                          required unsecuredLoginStringClaim_sub=\"broker\";"
            .to_owned(),
        other => panic!("no JAAS configuration for {other}"),
    }
}

impl SecureKafka {
    /// Makes new certificates and starts a node with every [`Listener`] and local JMX.
    pub fn start() -> SecureKafka {
        let certs = TestCerts::generate();
        let mut options = ClusterOptions::nodes(1).jmx();
        for l in Listener::ALL {
            if l != Listener::Plaintext {
                options = options.listener(l.name(), l.protocol());
            }
        }
        let broker = certs.broker();
        options = options
            .property("sasl.enabled.mechanisms", &MECHANISMS.join(","))
            // Every TLS listener: the broker certificate and its unencrypted key, given
            // inline as PEM text (the properties file escapes their line breaks).
            .property("ssl.keystore.type", "PEM")
            .property("ssl.keystore.certificate.chain", &broker.chain_pem)
            .property("ssl.keystore.key", &broker.key_pem);
        for l in [Listener::SaslPlaintext, Listener::SaslSsl, Listener::Reauth] {
            let prefix = format!("listener.name.{}", l.name().to_lowercase());
            for m in MECHANISMS {
                let key = format!("{prefix}.{}.sasl.jaas.config", m.to_lowercase());
                options = options.property(&key, &broker_jaas(m));
            }
        }
        options = options
            .property(
                "listener.name.limited.sasl.enabled.mechanisms",
                &LIMITED_MECHANISMS.join(","),
            )
            .property(
                "listener.name.limited.scram-sha-512.sasl.jaas.config",
                &broker_jaas("SCRAM-SHA-512"),
            );
        let ca = certs.ca_path().display().to_string();
        options = options
            .property("listener.name.mtls.ssl.client.auth", "required")
            .property("listener.name.mtls.ssl.truststore.type", "PEM")
            .property("listener.name.mtls.ssl.truststore.location", &ca)
            // Listener-wide: every mechanism on REAUTH. (The per-mechanism form,
            // `listener.name.reauth.plain.connections.max.reauth.ms`, works too but limits
            // only that mechanism's sessions.)
            .property(
                "listener.name.reauth.connections.max.reauth.ms",
                &REAUTH_MS.to_string(),
            );
        for (l, pair) in [
            (Listener::Expired, certs.expired_broker()),
            (Listener::WrongHost, certs.wrong_host_broker()),
        ] {
            let prefix = format!("listener.name.{}", l.name().to_lowercase());
            options = options
                .property(&format!("{prefix}.ssl.keystore.type"), "PEM")
                .property(
                    &format!("{prefix}.ssl.keystore.certificate.chain"),
                    &pair.chain_pem,
                )
                .property(&format!("{prefix}.ssl.keystore.key"), &pair.key_pem);
        }
        for scram in ["SCRAM-SHA-256", "SCRAM-SHA-512"] {
            let credential = format!("{scram}=[name={ALICE},password={ALICE_PASSWORD}]");
            options = options.format_args(&["--add-scram", &credential]);
        }
        let carol = format!("SCRAM-SHA-512=[name={CAROL},password={CAROL_PASSWORD}]");
        options = options.format_args(&["--add-scram", &carol]);
        let cluster = KafkaCluster::start(options);
        SecureKafka { certs, cluster }
    }

    /// The node underneath (its plaintext [`KafkaCluster::bootstrap`], logs, tools).
    pub fn cluster(&self) -> &KafkaCluster {
        &self.cluster
    }

    /// The distribution it runs (for [`kafka::java_read`] and the like).
    pub fn distribution(&self) -> &'static kafka::Distribution {
        self.cluster.distribution()
    }

    /// Changes `user`'s SCRAM-SHA-512 password with Kafka's own `kafka-configs` tool (over
    /// the plaintext listener). Connections already authenticated stay so until their
    /// session ends.
    pub fn set_scram_password(&self, user: &str, password: &str) {
        let config = format!("SCRAM-SHA-512=[iterations=4096,password={password}]");
        // kafka-configs moved from the core module to kafka-tools in Kafka 4.4.
        let libs = self.distribution().libs();
        let moved = std::fs::read_dir(&libs)
            .expect("the distribution's libs")
            .filter_map(Result::ok)
            .any(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                name.starts_with("kafka-tools-") && jar_has(&e.path(), CONFIG_COMMAND_TOOLS)
            });
        let main = if moved {
            "org.apache.kafka.tools.ConfigCommand"
        } else {
            "kafka.admin.ConfigCommand"
        };
        self.cluster.tool(
            main,
            &[
                "--bootstrap-server",
                &self.bootstrap(Listener::Plaintext),
                "--alter",
                "--add-config",
                &config,
                "--entity-type",
                "users",
                "--entity-name",
                user,
            ],
        );
    }

    /// `127.0.0.1:<port>` of `listener`.
    pub fn bootstrap(&self, listener: Listener) -> String {
        match listener {
            Listener::Plaintext => self.cluster.bootstrap().to_owned(),
            l => self.cluster.listener_bootstrap(l.name()),
        }
    }

    /// Creates `topic` with `partitions` partitions (over the plaintext listener) and waits
    /// until it is usable.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        self.cluster.create_topic(topic, partitions, 1, &[]);
    }

    /// Reads `topic` with the Java consumer over the plaintext listener (see
    /// [`kafka::java_read`]; uncommitted records too).
    pub fn java_read(&self, topic: &str, expected: usize, timeout: Duration) -> Vec<ReadRecord> {
        kafka::java_read(
            self.distribution(),
            &self.bootstrap(Listener::Plaintext),
            topic,
            expected,
            timeout,
            "read_uncommitted",
        )
    }

    /// Reads `topic` with the rdkafka consumer over the plaintext listener (see
    /// [`super::read_back`]).
    pub fn read_back(&self, topic: &str, expected: usize) -> Vec<ReadRecord> {
        super::read_back(&self.bootstrap(Listener::Plaintext), topic, expected)
    }

    /// librdkafka client settings for `listener` as [`ALICE`]: `bootstrap.servers`,
    /// `security.protocol`, the test CA as trust (TLS), the client certificate
    /// ([`Listener::Mtls`]), and for SASL listeners `mechanism` (default PLAIN) with
    /// alice's password or, for OAUTHBEARER, an unsecured JWT with `sub=alice`.
    pub fn rdkafka_config(&self, listener: Listener, mechanism: Option<&str>) -> ClientConfig {
        let mut c = ClientConfig::new();
        c.set("bootstrap.servers", self.bootstrap(listener))
            .set("security.protocol", listener.protocol().to_lowercase());
        if listener.tls() {
            c.set(
                "ssl.ca.location",
                self.certs.ca_path().display().to_string(),
            );
        }
        if listener == Listener::Mtls {
            c.set(
                "ssl.certificate.location",
                self.certs.client_chain_path().display().to_string(),
            )
            .set(
                "ssl.key.location",
                self.certs.client_key_path().display().to_string(),
            );
        }
        if listener.sasl() {
            let mechanism = mechanism.unwrap_or("PLAIN");
            c.set("sasl.mechanism", mechanism);
            if mechanism == "OAUTHBEARER" {
                c.set("enable.sasl.oauthbearer.unsecure.jwt", "true")
                    .set("sasl.oauthbearer.config", format!("principal={ALICE}"));
            } else {
                c.set("sasl.username", ALICE)
                    .set("sasl.password", ALICE_PASSWORD);
            }
        }
        c
    }

    /// The broker's count of successful re-authentications on `listener`
    /// (`successful-reauthentication-total` of its socket-server metrics, summed over
    /// network processors).
    pub fn reauthentications(&self, listener: Listener) -> u64 {
        self.socket_server_metric(listener, "successful-reauthentication-total")
            .expect("the listener's socket-server metrics") as u64
    }

    /// The broker's count of successful authentications on `listener` (TLS or SASL;
    /// `successful-authentication-total`).
    pub fn authentications(&self, listener: Listener) -> u64 {
        self.socket_server_metric(listener, "successful-authentication-total")
            .expect("the listener's socket-server metrics") as u64
    }

    /// The sum of `attribute` over the MBeans
    /// `kafka.server:type=socket-server-metrics,listener=<NAME>,networkProcessor=*`, or
    /// `None` when no MBean matches; read over JMX by `JmxSum` (a JVM start: ~1 s).
    pub fn socket_server_metric(&self, listener: Listener, attribute: &str) -> Option<f64> {
        let jmx = self.cluster.jmx_address(1).expect("the node serves JMX");
        let pattern = format!(
            "kafka.server:type=socket-server-metrics,listener={},networkProcessor=*",
            listener.name()
        );
        let out = self
            .distribution()
            .java()
            .args(["JmxSum", &jmx, &pattern, attribute])
            .stderr(Stdio::inherit())
            .output()
            .expect("run JmxSum");
        assert!(out.status.success(), "JmxSum failed: {}", out.status);
        let text = String::from_utf8_lossy(&out.stdout);
        let mut f = text.split_whitespace();
        assert_eq!(f.next(), Some(attribute), "JmxSum output: {text}");
        let sum: f64 = f.next().and_then(|s| s.parse().ok()).expect("a sum");
        let beans: u32 = f.next().and_then(|s| s.parse().ok()).expect("a bean count");
        (beans > 0).then_some(sum)
    }
}

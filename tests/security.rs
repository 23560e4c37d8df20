//! TLS and SASL against a real Kafka node (`common::secure`): every security protocol and
//! SASL mechanism delivers in full and in order, every bad case fails fast with a clear
//! error, sessions re-authenticate during a run, and no secret reaches a log, an error or
//! `Debug`.
//!
//! The records are read back over the node's plaintext listener by two readers that are
//! not ours: librdkafka's consumer (with CRC checks) and the Java consumer.

mod common;

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::secure::{self, Listener, SecureKafka, ALICE, ALICE_PASSWORD, BOB};
use common::unique_topic;
use common::workload::{self, Run};
use kafka_producer::{
    Error, OAuthBearerToken, OAuthBearerTokenProvider, Producer, ProducerRecord, SaslMechanism,
    SecurityProtocol, UnsecuredTokenProvider,
};

/// Sending threads and records per thread of a delivery run: 20 000 records.
const THREADS: usize = 4;
const PER_THREAD: usize = 5_000;

/// The JAAS text a Java client would use for `mechanism` as `user` with `password`.
fn jaas(mechanism: &str, user: &str, password: &str) -> String {
    match mechanism {
        "PLAIN" => format!(
            "org.apache.kafka.common.security.plain.PlainLoginModule required \
             username=\"{user}\" password=\"{password}\";"
        ),
        "OAUTHBEARER" => format!(
            "org.apache.kafka.common.security.oauthbearer.OAuthBearerLoginModule required \
             unsecuredLoginStringClaim_sub=\"{user}\";"
        ),
        _ => format!(
            "org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"{user}\" password=\"{password}\";"
        ),
    }
}

/// The Java properties of a client of `listener` (alice with `mechanism` on SASL
/// listeners; the test CA as trust on TLS ones; the client certificate on mTLS).
fn properties(
    kafka: &SecureKafka,
    listener: Listener,
    mechanism: Option<&str>,
) -> Vec<(String, String)> {
    let mut p = vec![
        ("bootstrap.servers".to_owned(), kafka.bootstrap(listener)),
        (
            "security.protocol".to_owned(),
            listener.protocol().to_owned(),
        ),
        ("linger.ms".to_owned(), "5".to_owned()),
    ];
    if listener.tls() {
        p.push(("ssl.truststore.type".into(), "PEM".into()));
        let ca = kafka.certs.ca_path().display().to_string();
        p.push(("ssl.truststore.location".into(), ca));
    }
    if listener == Listener::Mtls {
        let read = |path: std::path::PathBuf| std::fs::read_to_string(path).unwrap();
        p.push(("ssl.keystore.type".into(), "PEM".into()));
        let chain = read(kafka.certs.client_chain_path());
        p.push(("ssl.keystore.certificate.chain".into(), chain));
        p.push((
            "ssl.keystore.key".into(),
            read(kafka.certs.client_key_path()),
        ));
    }
    if let Some(m) = mechanism {
        p.push(("sasl.mechanism".into(), m.to_owned()));
        p.push(("sasl.jaas.config".into(), jaas(m, ALICE, ALICE_PASSWORD)));
    }
    p
}

fn with(mut base: Vec<(String, String)>, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    for (k, v) in extra {
        base.retain(|(name, _)| name != k);
        base.push(((*k).to_owned(), (*v).to_owned()));
    }
    base
}

/// 20 000 records from 4 threads through `producer` to a new 6-partition topic, read back
/// by both readers: every record acknowledged, read back once, in order, on its key's
/// partition. Returns (sent, read back by librdkafka, read back by Java, seconds).
fn deliver(kafka: &SecureKafka, name: &str, producer: &Producer) -> (usize, usize, usize, f64) {
    let topic = unique_topic(&format!("sec-{name}"));
    kafka.create_topic(&topic, workload::PARTITIONS);
    let run = Run::new(std::slice::from_ref(&topic), PER_THREAD);
    let start = Instant::now();
    thread::scope(|s| {
        for t in 0..THREADS {
            let run = &run;
            s.spawn(move || {
                for seq in 0..PER_THREAD {
                    workload::send_one(producer, run, t, 0, seq);
                }
            });
        }
    });
    producer
        .flush_timeout(Duration::from_secs(120))
        .expect("flush");
    let took = start.elapsed().as_secs_f64();
    let plaintext = kafka.bootstrap(Listener::Plaintext);
    let report = workload::check(name, &plaintext, producer, &run, start.elapsed());
    workload::assert_all_acked(&report, &run);
    let sent = THREADS * PER_THREAD;
    let java = kafka.java_read(&topic, sent, Duration::from_secs(120));
    let java_keys: Vec<_> = java.iter().map(|r| (r.partition, r.offset)).collect();
    let mut unique = java_keys.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique.len(), sent, "{name}: the Java reader's records");
    (sent, report.total.read_back, java.len(), took)
}

#[test]
fn every_protocol_and_mechanism_delivers_in_full_and_in_order() {
    let kafka = secure::shared();
    let mut combos: Vec<(Listener, Option<&str>)> =
        vec![(Listener::Ssl, None), (Listener::Mtls, None)];
    for listener in [Listener::SaslPlaintext, Listener::SaslSsl] {
        for m in secure::MECHANISMS {
            combos.push((listener, Some(m)));
        }
    }
    let mut table = Vec::new();
    for (listener, mechanism) in combos {
        let name = format!("{}-{}", listener.name(), mechanism.unwrap_or("none"));
        let producer = Producer::from_properties(properties(kafka, listener, mechanism))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let (sent, rdkafka, java, took) = deliver(kafka, &name.to_lowercase(), &producer);
        producer.close().unwrap();
        table.push(format!(
            "| {} | {} | {sent} | {rdkafka} | {java} | {took:.1} |",
            listener.protocol(),
            mechanism.unwrap_or(if listener == Listener::Mtls {
                "client certificate"
            } else {
                "-"
            })
        ));
    }
    eprintln!("| protocol | mechanism | sent | read back (librdkafka) | read back (Java) | s |");
    eprintln!("|---|---|---|---|---|---|");
    for row in table {
        eprintln!("{row}");
    }
}

/// The builder's typed settings reach the same result as Java properties.
#[test]
fn the_builder_configures_sasl_ssl_with_typed_settings() {
    let kafka = secure::shared();
    let producer: Producer = Producer::builder()
        .bootstrap_servers(&kafka.bootstrap(Listener::SaslSsl))
        .security_protocol(SecurityProtocol::SaslSsl)
        .sasl_credentials(SaslMechanism::ScramSha256, ALICE, ALICE_PASSWORD)
        .ssl_truststore_certificates(kafka.certs.ca_pem())
        .build()
        .unwrap();
    let topic = unique_topic("sec-builder");
    kafka.create_topic(&topic, 1);
    let md = producer
        .send(ProducerRecord::new(topic.as_str(), b"typed".to_vec()))
        .wait()
        .unwrap();
    assert_eq!(md.offset(), 0);
    let read = kafka.read_back(&topic, 1);
    assert_eq!(read[0].value.as_deref(), Some(&b"typed"[..]));
}

/// A token provider of the user's: called for every authentication.
#[derive(Debug, Default)]
struct CountingProvider {
    calls: std::sync::atomic::AtomicUsize,
}

impl OAuthBearerTokenProvider for CountingProvider {
    fn token(&self) -> Result<OAuthBearerToken, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        UnsecuredTokenProvider::new(ALICE).token()
    }
}

#[test]
fn oauthbearer_tokens_come_from_the_users_provider() {
    let kafka = secure::shared();
    let provider = Arc::new(CountingProvider::default());
    struct Shared(Arc<CountingProvider>);
    impl OAuthBearerTokenProvider for Shared {
        fn token(&self) -> Result<OAuthBearerToken, Error> {
            self.0.token()
        }
    }
    let producer: Producer = Producer::builder()
        .bootstrap_servers(&kafka.bootstrap(Listener::SaslPlaintext))
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl_oauthbearer(Shared(Arc::clone(&provider)))
        .build()
        .unwrap();
    let topic = unique_topic("sec-oauth");
    kafka.create_topic(&topic, 1);
    producer
        .send(ProducerRecord::new(topic.as_str(), b"t".to_vec()))
        .wait()
        .unwrap();
    assert!(provider.calls.load(Ordering::SeqCst) >= 1);
}

/// One bad case: what the first send of a producer with these settings gets, and when.
struct BadCase {
    name: &'static str,
    properties: Vec<(String, String)>,
    /// Words the error message must contain.
    expect: &'static [&'static str],
}

fn first_send(properties: Vec<(String, String)>) -> (Result<(), Error>, Duration) {
    let start = Instant::now();
    let producer = match Producer::from_properties(properties) {
        Ok(p) => p,
        Err(e) => return (Err(e), start.elapsed()),
    };
    let topic = unique_topic("sec-bad");
    let result = producer
        .send(ProducerRecord::new(topic.as_str(), b"x".to_vec()))
        .wait()
        .map(drop);
    let took = start.elapsed();
    let _ = producer.close_timeout(Duration::from_secs(5));
    (result, took)
}

/// How long a bad case may take: the setup timeout the cases set, and slack for this
/// 2-core machine.
const SETUP_TIMEOUT_MS: &str = "5000";
const BAD_CASE_BOUND: Duration = Duration::from_secs(6);

#[test]
fn bad_credentials_and_certificates_fail_fast_with_authentication_errors() {
    let kafka = secure::shared();
    let sasl = |listener, mechanism: &str, user: &str, password: &str| {
        with(
            properties(kafka, listener, Some(mechanism)),
            &[("sasl.jaas.config", &jaas(mechanism, user, password))],
        )
    };
    let other_ca = kafka.certs.other_ca_path().display().to_string();
    let cases = vec![
        BadCase {
            name: "wrong password (SCRAM-SHA-256)",
            properties: sasl(Listener::SaslPlaintext, "SCRAM-SHA-256", ALICE, "wrong"),
            expect: &["SCRAM-SHA-256", "authentication failed"],
        },
        BadCase {
            name: "wrong password (SCRAM-SHA-512, SASL_SSL)",
            properties: sasl(Listener::SaslSsl, "SCRAM-SHA-512", ALICE, "wrong"),
            expect: &["SCRAM-SHA-512", "authentication failed"],
        },
        BadCase {
            name: "wrong password (PLAIN)",
            properties: sasl(Listener::SaslPlaintext, "PLAIN", BOB, "wrong"),
            expect: &["PLAIN", "authentication failed"],
        },
        BadCase {
            name: "unknown user (SCRAM-SHA-256)",
            properties: sasl(Listener::SaslPlaintext, "SCRAM-SHA-256", "mallory", "x"),
            expect: &["authentication failed"],
        },
        BadCase {
            name: "unknown user (PLAIN)",
            properties: sasl(Listener::SaslSsl, "PLAIN", "mallory", "x"),
            expect: &["authentication failed"],
        },
        BadCase {
            name: "mechanism the listener does not enable",
            properties: sasl(Listener::Limited, "SCRAM-SHA-256", ALICE, ALICE_PASSWORD),
            expect: &[
                "does not enable SASL mechanism SCRAM-SHA-256",
                "SCRAM-SHA-512",
            ],
        },
        BadCase {
            name: "untrusted certificate",
            properties: with(
                properties(kafka, Listener::Ssl, None),
                &[("ssl.truststore.location", &other_ca)],
            ),
            expect: &["not trusted"],
        },
        BadCase {
            name: "hostname mismatch",
            properties: properties(kafka, Listener::WrongHost, None),
            expect: &["hostname verification failed", "127.0.0.1"],
        },
        BadCase {
            name: "expired certificate",
            properties: properties(kafka, Listener::Expired, None),
            expect: &["expired"],
        },
        BadCase {
            name: "mTLS without a client certificate",
            properties: properties(kafka, Listener::Ssl, None)
                .into_iter()
                .map(|(k, v)| {
                    let v = if k == "bootstrap.servers" {
                        kafka.bootstrap(Listener::Mtls)
                    } else {
                        v
                    };
                    (k, v)
                })
                .collect(),
            expect: &["client certificate"],
        },
        BadCase {
            name: "TLS spoken to a plaintext port",
            properties: with(
                properties(kafka, Listener::Ssl, None),
                &[("bootstrap.servers", &kafka.bootstrap(Listener::Plaintext))],
            ),
            expect: &["answers plaintext ApiVersions", "security.protocol=SSL"],
        },
        BadCase {
            name: "plaintext spoken to a TLS port",
            properties: vec![
                ("bootstrap.servers".into(), kafka.bootstrap(Listener::Ssl)),
                ("security.protocol".into(), "PLAINTEXT".into()),
            ],
            expect: &["TLS"],
        },
    ];
    let mut table = Vec::new();
    let mut wrong = Vec::new();
    for case in cases {
        let properties = with(
            case.properties,
            &[("socket.connection.setup.timeout.ms", SETUP_TIMEOUT_MS)],
        );
        let (result, took) = first_send(properties);
        let row = format!("| {} | {result:?} | {} ms |", case.name, took.as_millis());
        eprintln!("{row}");
        table.push(row);
        match &result {
            Err(Error::Authentication(message))
                if case.expect.iter().all(|w| message.contains(w)) && took < BAD_CASE_BOUND => {}
            _ => wrong.push(format!("{}: {result:?} after {took:?}", case.name)),
        }
    }
    eprintln!("| case | error | time to fail |\n|---|---|---|");
    for row in &table {
        eprintln!("{row}");
    }
    assert!(
        wrong.is_empty(),
        "cases that did not fail as they should:\n{}",
        wrong.join("\n")
    );
}

/// A peer that hangs up during the TLS handshake but is no Kafka listener (a proxy whose
/// backend is down, a broker restarting) is a lost connection, retried, not an
/// authentication failure: the send waits out max.block.ms as for any unreachable broker.
#[test]
fn a_peer_that_hangs_up_mid_handshake_is_retried_not_an_authentication_failure() {
    let kafka = secure::shared();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = Arc::clone(&accepted);
    listener.set_nonblocking(true).unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopped = Arc::clone(&stop);
    let hang_up = thread::spawn(move || {
        while !stopped.load(Ordering::SeqCst) {
            match listener.accept() {
                Ok((tcp, _)) => {
                    counter.fetch_add(1, Ordering::SeqCst);
                    drop(tcp);
                }
                Err(_) => thread::sleep(Duration::from_millis(5)),
            }
        }
    });
    let properties = with(
        properties(kafka, Listener::Ssl, None),
        &[("bootstrap.servers", &address), ("max.block.ms", "3000")],
    );
    let (result, took) = first_send(properties);
    stop.store(true, Ordering::SeqCst);
    hang_up.join().unwrap();
    assert!(
        matches!(result, Err(Error::MetadataTimeout { .. })),
        "{result:?} after {took:?}"
    );
    // It kept trying (each attempt: a TLS handshake, then a plaintext probe).
    assert!(accepted.load(Ordering::SeqCst) >= 4, "{accepted:?}");
}

#[test]
fn every_record_waiting_on_a_broker_that_refuses_authentication_fails_with_it() {
    let kafka = secure::shared();
    let properties = with(
        properties(kafka, Listener::SaslPlaintext, Some("SCRAM-SHA-512")),
        &[(
            "sasl.jaas.config",
            &jaas("SCRAM-SHA-512", ALICE, "not-her-password"),
        )],
    );
    let producer = Producer::from_properties(properties).unwrap();
    let topic = unique_topic("sec-refused");
    let start = Instant::now();
    let futures: Vec<_> = (0..100)
        .map(|i| producer.send(ProducerRecord::new(topic.as_str(), vec![i as u8])))
        .collect();
    for f in futures {
        match f.wait() {
            Err(Error::Authentication(_)) => {}
            other => panic!("expected Error::Authentication, got {other:?}"),
        }
    }
    assert!(start.elapsed() < BAD_CASE_BOUND, "{:?}", start.elapsed());
    assert!(!Error::Authentication(String::new()).is_retriable());
}

#[test]
fn hostname_verification_can_be_turned_off_as_in_java() {
    let kafka = secure::shared();
    let no_host_check = with(
        properties(kafka, Listener::WrongHost, None),
        &[("ssl.endpoint.identification.algorithm", "")],
    );
    let producer = Producer::from_properties(no_host_check.clone()).unwrap();
    let topic = unique_topic("sec-nohost");
    kafka.create_topic(&topic, 1);
    producer
        .send(ProducerRecord::new(topic.as_str(), b"ok".to_vec()))
        .wait()
        .unwrap();
    // The chain is still checked: an untrusted CA fails as before.
    let other_ca = kafka.certs.other_ca_path().display().to_string();
    let untrusted = with(no_host_check, &[("ssl.truststore.location", &other_ca)]);
    let (result, _) = first_send(untrusted);
    assert!(
        matches!(&result, Err(Error::Authentication(m)) if m.contains("not trusted")),
        "{result:?}"
    );
}

/// A password changed under a running producer: its session on the REAUTH listener ends
/// within 5 s, the re-authentication is refused, and from then on every record fails with
/// `Error::Authentication` as soon as the broker refuses the reconnect, not after
/// delivery.timeout.ms; those acknowledged before stay acknowledged.
#[test]
fn a_password_changed_under_a_running_producer_fails_later_records_with_authentication() {
    let kafka = secure::shared();
    let props = with(
        properties(kafka, Listener::Reauth, Some("SCRAM-SHA-512")),
        &[(
            "sasl.jaas.config",
            &jaas("SCRAM-SHA-512", secure::CAROL, secure::CAROL_PASSWORD),
        )],
    );
    let producer = Producer::from_properties(props).unwrap();
    let topic = unique_topic("sec-rotated");
    kafka.create_topic(&topic, 1);
    let send = |i: u32| {
        producer.send(ProducerRecord::new(
            topic.as_str(),
            i.to_be_bytes().to_vec(),
        ))
    };
    let first = send(0).wait().expect("carol's first record");
    kafka.set_scram_password(secure::CAROL, "carol-rotated");
    let changed = Instant::now();
    let mut outcomes = Vec::new();
    let mut i = 1;
    let failed_at = loop {
        let result = send(i).wait();
        i += 1;
        match result {
            Ok(md) => outcomes.push(md.offset()),
            Err(Error::Authentication(message)) => {
                assert!(message.contains("authentication failed"), "{message}");
                break changed.elapsed();
            }
            Err(other) => panic!("record {i} failed with {other:?}, not Authentication"),
        }
        assert!(
            changed.elapsed() < Duration::from_secs(30),
            "no record failed within 30 s of the password change"
        );
        thread::sleep(Duration::from_millis(50));
    };
    eprintln!(
        "password changed: {} records acknowledged after the change, the first failure \
         came {failed_at:?} after it (sessions of {} ms)",
        outcomes.len(),
        secure::REAUTH_MS
    );
    assert!(failed_at < Duration::from_millis(secure::REAUTH_MS) + BAD_CASE_BOUND);
    // Acknowledged records stay in the log, in order.
    let read = kafka.read_back(&topic, 1 + outcomes.len());
    assert_eq!(read[0].offset, first.offset());
    assert_eq!(read.len(), 1 + outcomes.len());
    // A new producer with the old password is refused at once.
    let (result, took) = first_send(with(
        properties(kafka, Listener::SaslPlaintext, Some("SCRAM-SHA-512")),
        &[(
            "sasl.jaas.config",
            &jaas("SCRAM-SHA-512", secure::CAROL, secure::CAROL_PASSWORD),
        )],
    ));
    assert!(
        matches!(result, Err(Error::Authentication(_))),
        "{result:?}"
    );
    assert!(took < BAD_CASE_BOUND);
}

/// A client key encrypted with a password (by the openssl tool), given with
/// `ssl.key.password`, authenticates on the mTLS listener; TLS 1.2 and TLS 1.3 each work
/// alone (`ssl.enabled.protocols`, `ssl.protocol`).
#[test]
fn encrypted_client_keys_and_each_tls_version_connect() {
    let kafka = secure::shared();
    let encrypted = std::process::Command::new("openssl")
        .args([
            "pkcs8",
            "-topk8",
            "-v2",
            "aes-256-cbc",
            "-passout",
            "pass:key-pw",
        ])
        .arg("-in")
        .arg(kafka.certs.client_key_path())
        .output()
        .expect("the openssl tool");
    assert!(encrypted.status.success(), "{encrypted:?}");
    let encrypted = String::from_utf8(encrypted.stdout).unwrap();
    let topic = unique_topic("sec-variants");
    kafka.create_topic(&topic, 1);
    let variants: Vec<(&str, Vec<(String, String)>)> = vec![
        (
            "mTLS, encrypted key",
            with(
                properties(kafka, Listener::Mtls, None),
                &[
                    ("ssl.keystore.key", &encrypted),
                    ("ssl.key.password", "key-pw"),
                ],
            ),
        ),
        (
            "TLSv1.2 only",
            with(
                properties(kafka, Listener::Ssl, None),
                &[("ssl.enabled.protocols", "TLSv1.2")],
            ),
        ),
        (
            "ssl.protocol=TLSv1.2",
            with(
                properties(kafka, Listener::SaslSsl, Some("SCRAM-SHA-256")),
                &[("ssl.protocol", "TLSv1.2")],
            ),
        ),
        (
            "TLSv1.3 only",
            with(
                properties(kafka, Listener::Ssl, None),
                &[("ssl.enabled.protocols", "TLSv1.3")],
            ),
        ),
    ];
    for (i, (name, props)) in variants.into_iter().enumerate() {
        let producer = Producer::from_properties(props).unwrap_or_else(|e| panic!("{name}: {e}"));
        let md = producer
            .send(ProducerRecord::new(
                topic.as_str(),
                name.as_bytes().to_vec(),
            ))
            .wait()
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(md.offset(), i as i64, "{name}");
    }
    let read = kafka.read_back(&topic, 4);
    assert_eq!(read[0].value.as_deref(), Some(&b"mTLS, encrypted key"[..]));
    // The wrong key password is a config error when the producer is built.
    let wrong = with(
        properties(kafka, Listener::Mtls, None),
        &[
            ("ssl.keystore.key", &encrypted),
            ("ssl.key.password", "not-it"),
        ],
    );
    match Producer::from_properties(wrong) {
        Err(Error::Config(m)) => assert!(m.contains("does not decrypt"), "{m}"),
        other => panic!("expected a config error, got {other:?}"),
    }
}

/// How long the re-authentication run lasts (`REAUTH_SECS`, default 60).
fn reauth_run() -> Duration {
    let secs = std::env::var("REAUTH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(60);
    Duration::from_secs(secs)
}

#[test]
fn sessions_re_authenticate_during_a_run_without_losing_or_reordering_anything() {
    let kafka = secure::shared();
    let before = kafka.reauthentications(Listener::Reauth);
    let producer =
        Producer::from_properties(properties(kafka, Listener::Reauth, Some("SCRAM-SHA-512")))
            .unwrap();
    let topics = workload::topics("sec-reauth");
    for t in &topics {
        kafka.create_topic(t, workload::PARTITIONS);
    }
    let run = Run::new(&topics, 0);
    let length = reauth_run();
    let took = workload::drive(
        &producer,
        &run,
        workload::Load::Until { per_second: 500 },
        |_| thread::sleep(length),
    );
    let plaintext = kafka.bootstrap(Listener::Plaintext);
    let report = workload::check("reauth", &plaintext, &producer, &run, took);
    workload::assert_all_acked(&report, &run);
    let reauthentications = kafka.reauthentications(Listener::Reauth) - before;
    eprintln!(
        "re-authentication run: {length:?} with sessions of {} ms: {} records sent, {} read \
         back; the broker counted {reauthentications} re-authentications",
        secure::REAUTH_MS,
        report.total.sent,
        report.total.read_back
    );
    // Each of the producer's connections (bootstrap, then the node) re-authenticates about
    // every 4.25 to 4.75 s.
    let expected = length.as_millis() as u64 / secure::REAUTH_MS;
    assert!(
        reauthentications >= expected,
        "{reauthentications} re-authentications in {length:?}, expected at least {expected}"
    );
}

/// Every log line of this test binary since the capture was installed.
static LOGS: Mutex<String> = Mutex::new(String::new());

/// A logger that keeps every line in [`LOGS`].
struct Capture;

impl log::Log for Capture {
    fn enabled(&self, _: &log::Metadata<'_>) -> bool {
        true
    }

    fn log(&self, record: &log::Record<'_>) {
        let line = format!(
            "{} {}: {}\n",
            record.level(),
            record.target(),
            record.args()
        );
        LOGS.lock().unwrap().push_str(&line);
    }

    fn flush(&self) {}
}

/// Installs [`Capture`] at trace level, once.
fn capture_logs() -> &'static Mutex<String> {
    static INSTALL: OnceLock<()> = OnceLock::new();
    INSTALL.get_or_init(|| {
        static CAPTURE: Capture = Capture;
        log::set_logger(&CAPTURE).expect("no other logger in this binary");
        log::set_max_level(log::LevelFilter::Trace);
    });
    &LOGS
}

/// A token provider whose token carries a known secret.
#[derive(Debug)]
struct SecretToken(String);

impl OAuthBearerTokenProvider for SecretToken {
    fn token(&self) -> Result<OAuthBearerToken, Error> {
        Ok(OAuthBearerToken::new(
            self.0.as_str(),
            Duration::from_secs(60),
        ))
    }
}

#[test]
fn no_password_key_or_token_reaches_logs_errors_or_debug() {
    let kafka = secure::shared();
    let logs = capture_logs();
    const SECRET: &str = "Kn0wn-S3cret-4711";
    let mut shown: Vec<String> = Vec::new();
    // A password in the JAAS text, refused and accepted.
    let refused = with(
        properties(kafka, Listener::SaslSsl, Some("SCRAM-SHA-256")),
        &[("sasl.jaas.config", &jaas("SCRAM-SHA-256", ALICE, SECRET))],
    );
    let (result, _) = first_send(refused.clone());
    shown.push(format!(
        "{result:?} {}",
        result
            .as_ref()
            .err()
            .map(ToString::to_string)
            .unwrap_or_default()
    ));
    shown.push(format!(
        "{:?}",
        kafka_producer::ProducerConfig::from_properties(refused)
    ));
    let plain = with(
        properties(kafka, Listener::SaslPlaintext, Some("PLAIN")),
        &[("sasl.jaas.config", &jaas("PLAIN", BOB, SECRET))],
    );
    let (result, _) = first_send(plain);
    shown.push(format!("{result:?}"));
    // A token, refused by the broker (not a JWS).
    let producer: Producer = Producer::builder()
        .bootstrap_servers(&kafka.bootstrap(Listener::SaslPlaintext))
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl_oauthbearer(SecretToken(SECRET.to_owned()))
        .set("socket.connection.setup.timeout.ms", SETUP_TIMEOUT_MS)
        .build()
        .unwrap();
    shown.push(format!("{producer:?}"));
    let result = producer
        .send(ProducerRecord::new("sec-secret", b"x".to_vec()))
        .wait();
    shown.push(format!("{result:?}"));
    assert!(
        matches!(result, Err(Error::Authentication(_))),
        "{result:?}"
    );
    drop(producer);
    // A private key given inline, and a password the builder holds.
    let key = std::fs::read_to_string(kafka.certs.client_key_path()).unwrap();
    let key_body: String = key.lines().nth(1).unwrap().to_owned();
    let mtls = properties(kafka, Listener::Mtls, None);
    let config = kafka_producer::ProducerConfig::from_properties(mtls).unwrap();
    shown.push(format!("{config:?} {:?}", config.to_properties()));
    let builder = Producer::builder()
        .bootstrap_servers(&kafka.bootstrap(Listener::SaslPlaintext))
        .security_protocol(SecurityProtocol::SaslPlaintext)
        .sasl_credentials(SaslMechanism::Plain, ALICE, SECRET);
    shown.push(format!("{builder:?}"));
    let logs = logs.lock().unwrap().clone();
    assert!(!logs.is_empty(), "the capture logger saw nothing");
    for text in shown.iter().chain(std::iter::once(&logs)) {
        assert!(!text.contains(SECRET), "a secret leaked: {text}");
        assert!(!text.contains(&key_body), "the private key leaked: {text}");
    }
}

//! Proves the secure test bed ([`common::secure`]) with an independent client, librdkafka
//! (through rdkafka), before the producer's own security tests rely on it: every listener
//! takes records from a correctly configured client and refuses a wrongly configured one,
//! and the broker counts re-authentications on the REAUTH listener only.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use rdkafka::config::RDKafkaLogLevel;
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};

use common::secure::{self, Listener, ALICE};
use common::unique_topic;

/// What a librdkafka client reported: deliveries, failed deliveries and client errors.
#[derive(Default)]
struct Log {
    delivered: AtomicUsize,
    failed: Mutex<Vec<String>>,
    errors: Mutex<Vec<String>>,
    /// librdkafka's "Received REAUTH op" debug lines (`debug=broker`): its re-authentication
    /// timer fired, which it starts only when the broker granted a session lifetime.
    reauth_ops: AtomicUsize,
}

impl Log {
    fn errors(&self) -> Vec<String> {
        self.errors.lock().unwrap().clone()
    }
    fn failed(&self) -> Vec<String> {
        self.failed.lock().unwrap().clone()
    }
}

impl ClientContext for Log {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors
            .lock()
            .unwrap()
            .push(format!("{error}: {reason}"));
    }

    fn log(&self, _: RDKafkaLogLevel, facility: &str, message: &str) {
        if facility == "REAUTH" && message.contains("Received REAUTH op") {
            self.reauth_ops.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl ProducerContext for Log {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, _)) => self.failed.lock().unwrap().push(e.to_string()),
        }
    }
}

fn producer(mut config: ClientConfig) -> BaseProducer<Log> {
    config
        .set("message.timeout.ms", "30000")
        .set("linger.ms", "5")
        .create_with_context(Log::default())
        .expect("create the rdkafka producer")
}

/// Sends `value` to `topic`, serving callbacks while the queue is full.
fn send(p: &BaseProducer<Log>, topic: &str, key: &str, value: &str) {
    let mut record = BaseRecord::to(topic).key(key).payload(value);
    loop {
        match p.send(record) {
            Ok(()) => return,
            Err((e, r)) => {
                assert!(
                    matches!(
                        e,
                        KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
                    ),
                    "send: {e}"
                );
                p.poll(Duration::from_millis(10));
                record = r;
            }
        }
    }
}

/// Produces 100 records with librdkafka over `listener` (SASL: `mechanism`) and reads them
/// back over the plaintext listener.
fn round_trip(listener: Listener, mechanism: Option<&str>) {
    let k = secure::shared();
    let topic = unique_topic("secure");
    k.create_topic(&topic, 2);
    let p = producer(k.rdkafka_config(listener, mechanism));
    let values: Vec<String> = (0..100)
        .map(|i| format!("{listener:?} {mechanism:?} {i}"))
        .collect();
    for (i, v) in values.iter().enumerate() {
        send(&p, &topic, &format!("key-{i}"), v);
    }
    p.flush(Duration::from_secs(30)).unwrap_or_else(|e| {
        panic!(
            "flush over {listener:?}: {e}; errors {:?}",
            p.context().errors()
        )
    });
    let log = p.context();
    assert_eq!(log.failed(), Vec::<String>::new(), "failed deliveries");
    assert_eq!(log.delivered.load(Ordering::Relaxed), 100, "deliveries");
    let mut read: Vec<String> = k
        .read_back(&topic, 100)
        .into_iter()
        .map(|r| String::from_utf8(r.value.expect("a value")).unwrap())
        .collect();
    read.sort();
    let mut expected = values;
    expected.sort();
    assert_eq!(read, expected);
}

/// A client with `config` must fail to reach the broker: no metadata, and at least one
/// client error. Returns the errors librdkafka reported.
fn refused(config: ClientConfig) -> Vec<String> {
    let p = producer(config);
    let deadline = Instant::now() + Duration::from_secs(15);
    while p.context().errors().is_empty() && Instant::now() < deadline {
        p.poll(Duration::from_millis(100));
    }
    let metadata = p.client().fetch_metadata(None, Duration::from_secs(3));
    assert!(
        metadata.is_err(),
        "metadata came through: {:?}",
        metadata.map(|m| m.brokers().len())
    );
    let errors = p.context().errors();
    assert!(!errors.is_empty(), "no client error reported");
    eprintln!("refused as expected: {errors:?}");
    errors
}

fn assert_mentions(errors: &[String], words: &[&str]) {
    assert!(
        errors.iter().any(|e| words
            .iter()
            .any(|w| e.to_lowercase().contains(&w.to_lowercase()))),
        "no error mentions any of {words:?}: {errors:?}"
    );
}

#[test]
fn ssl_round_trip() {
    round_trip(Listener::Ssl, None);
}

#[test]
fn mtls_round_trip_with_client_certificate() {
    round_trip(Listener::Mtls, None);
}

#[test]
fn sasl_plaintext_plain() {
    round_trip(Listener::SaslPlaintext, Some("PLAIN"));
}

#[test]
fn sasl_plaintext_scram_sha_256() {
    round_trip(Listener::SaslPlaintext, Some("SCRAM-SHA-256"));
}

#[test]
fn sasl_plaintext_scram_sha_512() {
    round_trip(Listener::SaslPlaintext, Some("SCRAM-SHA-512"));
}

#[test]
fn sasl_plaintext_oauthbearer() {
    round_trip(Listener::SaslPlaintext, Some("OAUTHBEARER"));
}

#[test]
fn sasl_ssl_plain() {
    round_trip(Listener::SaslSsl, Some("PLAIN"));
}

#[test]
fn sasl_ssl_scram_sha_256() {
    round_trip(Listener::SaslSsl, Some("SCRAM-SHA-256"));
}

#[test]
fn sasl_ssl_scram_sha_512() {
    round_trip(Listener::SaslSsl, Some("SCRAM-SHA-512"));
}

#[test]
fn sasl_ssl_oauthbearer() {
    round_trip(Listener::SaslSsl, Some("OAUTHBEARER"));
}

#[test]
fn plain_user_bob_is_known() {
    let k = secure::shared();
    let mut c = k.rdkafka_config(Listener::SaslPlaintext, Some("PLAIN"));
    c.set("sasl.username", secure::BOB)
        .set("sasl.password", secure::BOB_PASSWORD);
    let p = producer(c);
    p.client()
        .fetch_metadata(None, Duration::from_secs(15))
        .expect("bob's metadata");
}

#[test]
fn java_reader_reads_the_plaintext_listener() {
    let k = secure::shared();
    let topic = unique_topic("secure-java");
    k.create_topic(&topic, 1);
    let p = producer(k.rdkafka_config(Listener::SaslSsl, Some("SCRAM-SHA-512")));
    for i in 0..10 {
        send(&p, &topic, &format!("k{i}"), &format!("v{i}"));
    }
    p.flush(Duration::from_secs(30)).expect("flush");
    let read = k.java_read(&topic, 10, Duration::from_secs(60));
    assert_eq!(read.len(), 10);
}

#[test]
fn mtls_without_client_certificate_fails() {
    let k = secure::shared();
    let mut c = k.rdkafka_config(Listener::Ssl, None);
    c.set("bootstrap.servers", k.bootstrap(Listener::Mtls));
    refused(c);
}

#[test]
fn mtls_with_untrusted_client_certificate_fails() {
    let k = secure::shared();
    let mut c = k.rdkafka_config(Listener::Mtls, None);
    c.set(
        "ssl.certificate.location",
        k.certs.untrusted_client_chain_path().display().to_string(),
    )
    .set(
        "ssl.key.location",
        k.certs.untrusted_client_key_path().display().to_string(),
    );
    refused(c);
}

#[test]
fn wrong_scram_password_fails() {
    let k = secure::shared();
    for listener in [Listener::SaslPlaintext, Listener::SaslSsl] {
        for mechanism in ["SCRAM-SHA-256", "SCRAM-SHA-512", "PLAIN"] {
            let mut c = k.rdkafka_config(listener, Some(mechanism));
            c.set("sasl.password", "not-alice-secret");
            let errors = refused(c);
            assert_mentions(&errors, &["Authentication failed", "invalid credentials"]);
        }
    }
}

#[test]
fn unknown_scram_user_fails() {
    let k = secure::shared();
    let mut c = k.rdkafka_config(Listener::SaslPlaintext, Some("SCRAM-SHA-256"));
    c.set("sasl.username", secure::BOB)
        .set("sasl.password", secure::BOB_PASSWORD);
    let errors = refused(c);
    assert_mentions(&errors, &["Authentication failed", "invalid credentials"]);
}

#[test]
fn untrusted_ca_fails() {
    let k = secure::shared();
    let mut c = k.rdkafka_config(Listener::Ssl, None);
    c.set(
        "ssl.ca.location",
        k.certs.other_ca_path().display().to_string(),
    );
    let errors = refused(c);
    assert_mentions(&errors, &["certificate verify failed", "verify"]);
}

#[test]
fn expired_broker_certificate_fails() {
    let k = secure::shared();
    // librdkafka says only "certificate verify failed" (OpenSSL: "certificate has
    // expired"). Hostname checks off, the same CA as the SSL listener: what is left to fail
    // is the validity period.
    let mut c = k.rdkafka_config(Listener::Ssl, None);
    c.set("bootstrap.servers", k.bootstrap(Listener::Expired))
        .set("ssl.endpoint.identification.algorithm", "none");
    let errors = refused(c);
    assert_mentions(&errors, &["certificate verify failed"]);
    // The same listener with verification off answers.
    let mut c = k.rdkafka_config(Listener::Ssl, None);
    c.set("bootstrap.servers", k.bootstrap(Listener::Expired))
        .set("enable.ssl.certificate.verification", "false");
    producer(c)
        .client()
        .fetch_metadata(None, Duration::from_secs(15))
        .expect("metadata without verification");
}

#[test]
fn wrong_host_broker_certificate_fails() {
    let k = secure::shared();
    let mut c = k.rdkafka_config(Listener::Ssl, None);
    c.set("bootstrap.servers", k.bootstrap(Listener::WrongHost));
    let errors = refused(c);
    assert_mentions(&errors, &["hostname mismatch", "verify"]);
    // Without hostname verification the chain itself is fine.
    let mut c = k.rdkafka_config(Listener::Ssl, None);
    c.set("bootstrap.servers", k.bootstrap(Listener::WrongHost))
        .set("ssl.endpoint.identification.algorithm", "none");
    producer(c)
        .client()
        .fetch_metadata(None, Duration::from_secs(15))
        .expect("metadata without hostname verification");
}

/// Keeps a producer busy on `listener` with `mechanism` for `duration`; every record must
/// be delivered and no client error reported. Returns how often librdkafka's
/// re-authentication timer fired.
fn keep_busy(listener: Listener, mechanism: &str, duration: Duration) -> usize {
    let k = secure::shared();
    let topic = unique_topic("reauth");
    k.create_topic(&topic, 1);
    let mut config = k.rdkafka_config(listener, Some(mechanism));
    config
        .set("debug", "broker")
        .set_log_level(RDKafkaLogLevel::Debug);
    let p = producer(config);
    let start = Instant::now();
    let mut sent = 0;
    while start.elapsed() < duration {
        send(&p, &topic, ALICE, &format!("{sent}"));
        sent += 1;
        p.poll(Duration::from_millis(20));
    }
    p.flush(Duration::from_secs(30)).expect("flush");
    let log = p.context();
    assert_eq!(
        log.failed(),
        Vec::<String>::new(),
        "{listener:?} {mechanism}"
    );
    assert_eq!(
        log.delivered.load(Ordering::Relaxed),
        sent,
        "{listener:?} {mechanism}"
    );
    assert_eq!(
        log.errors(),
        Vec::<String>::new(),
        "{listener:?} {mechanism}"
    );
    log.reauth_ops.load(Ordering::Relaxed)
}

#[test]
fn reauth_listener_makes_clients_reauthenticate() {
    let k = secure::shared();
    // Each mechanism alone for a little more than one session (5 s), so that every one is
    // seen to re-authenticate; meanwhile a producer on SASL_SSL, whose sessions never end.
    let busy = Duration::from_millis(secure::REAUTH_MS + 2000);
    let total = busy * secure::MECHANISMS.len() as u32;
    let unlimited = std::thread::scope(|s| {
        let unlimited = s.spawn(|| keep_busy(Listener::SaslSsl, "SCRAM-SHA-256", total));
        for mechanism in secure::MECHANISMS {
            let before = k.reauthentications(Listener::Reauth);
            let timers = keep_busy(Listener::Reauth, mechanism, busy);
            let after = k.reauthentications(Listener::Reauth);
            eprintln!(
                "REAUTH {mechanism}: {before} -> {after} re-authentications, client timer fired \
                 {timers} times"
            );
            assert!(
                after > before,
                "no re-authentication with {mechanism} on REAUTH ({before} -> {after})"
            );
            assert!(
                timers > 0,
                "librdkafka got no session lifetime with {mechanism}"
            );
        }
        unlimited.join().expect("the SASL_SSL producer")
    });
    assert_eq!(
        unlimited, 0,
        "librdkafka got a session lifetime on SASL_SSL"
    );
    // SASL_SSL grants unlimited sessions: nobody re-authenticates there.
    assert_eq!(k.reauthentications(Listener::SaslSsl), 0);
    assert!(k.authentications(Listener::SaslSsl) > 0);
}

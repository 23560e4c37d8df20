//! Issue 10 (hardening), config limits through the public API: extreme durations build a
//! producer that sends and flushes normally, and values that would break every request
//! (a zero timeout, a `client.id` too long for a request header) or spin the connect
//! threads (a zero reconnect backoff) are refused or bounded when the producer is built.
//!
//! The sending tests use this test binary's shared single-node Kafka (or the cluster
//! `KAFKA_BOOTSTRAP_SERVERS` names); the reconnect test needs no broker.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use kafka_producer::{Error, Producer, ProducerConfig, ProducerRecord};

/// Builds a producer from `config`, sends one record to `topic`, flushes and closes; the
/// error (or panic) says which step failed.
fn send_and_flush(config: ProducerConfig, topic: &str) -> Result<(), String> {
    let run = std::panic::AssertUnwindSafe(|| -> Result<(), String> {
        let producer = Producer::with_config(config).map_err(|e| format!("build: {e}"))?;
        let future = producer.send(ProducerRecord::new(topic, b"extreme".to_vec()));
        producer
            .flush_timeout(Duration::from_secs(30))
            .map_err(|e| format!("flush: {e}"))?;
        future.wait().map_err(|e| format!("send: {e}"))?;
        producer
            .close_timeout(Duration::from_secs(10))
            .map_err(|e| format!("close: {e}"))
    });
    match std::panic::catch_unwind(run) {
        Ok(result) => result,
        Err(panic) => {
            let text = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            Err(format!("panicked: {text}"))
        }
    }
}

/// A config for `bootstrap` with a short max.block.ms, so a failure shows as an error
/// rather than a minute-long wait.
fn base(bootstrap: &str) -> ProducerConfig {
    let mut config = ProducerConfig::default();
    config.set("bootstrap.servers", bootstrap).unwrap();
    config
}

#[test]
fn a_producer_with_any_extreme_duration_sends_and_flushes() {
    let brokers = common::brokers();
    let topic = common::unique_topic("extreme-durations");
    brokers.create_topic(&topic, 3);
    type Field = fn(&mut ProducerConfig) -> &mut std::time::Duration;
    let fields: [(&str, Field); 12] = [
        ("linger.ms", |c| &mut c.linger),
        ("max.block.ms", |c| &mut c.max_block),
        ("delivery.timeout.ms", |c| &mut c.delivery_timeout),
        ("request.timeout.ms", |c| &mut c.request_timeout),
        ("metadata.max.age.ms", |c| &mut c.metadata_max_age),
        ("metadata.max.idle.ms", |c| &mut c.metadata_max_idle),
        ("retry.backoff.ms", |c| &mut c.retry_backoff),
        ("retry.backoff.max.ms", |c| &mut c.retry_backoff_max),
        ("reconnect.backoff.max.ms", |c| &mut c.reconnect_backoff_max),
        ("socket.connection.setup.timeout.ms", |c| {
            &mut c.socket_connection_setup_timeout
        }),
        ("partitioner.availability.timeout.ms", |c| {
            &mut c.partitioner_availability_timeout
        }),
        ("statistics.interval.ms", |c| &mut c.statistics_interval),
    ];
    let mut failures = Vec::new();
    for (name, field) in fields {
        // Typed: the field written directly, as a caller of `Producer::with_config` may.
        let mut typed = base(brokers.bootstrap());
        *field(&mut typed) = Duration::MAX;
        typed.mark_set(name).unwrap();
        if let Err(e) = send_and_flush(typed, &topic) {
            failures.push(format!("{name} = Duration::MAX: {e}"));
        }
        // By name: the largest value a Java LONG (or INT) property can hold.
        let mut named = base(brokers.bootstrap());
        let largest = match named.set(name, &i64::MAX.to_string()) {
            Ok(()) => i64::MAX,
            Err(_) => i64::from(i32::MAX),
        };
        named.set(name, &largest.to_string()).unwrap();
        if let Err(e) = send_and_flush(named, &topic) {
            failures.push(format!("{name}={largest}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What a producer built from `props` does when it sends one record (when it builds).
fn build_and_send(props: &[(&str, &str)], topic: &str) -> Result<String, Error> {
    let producer = Producer::from_properties(props.iter().copied())?;
    let result = producer
        .send(ProducerRecord::new(topic, b"x".to_vec()))
        .wait();
    let _ = producer.close_timeout(Duration::from_secs(5));
    Ok(format!("it built, and its send returned {result:?}"))
}

#[test]
fn a_client_id_longer_than_a_request_header_holds_is_refused() {
    let brokers = common::brokers();
    let topic = common::unique_topic("long-client-id");
    brokers.create_topic(&topic, 1);
    let long = "c".repeat(i16::MAX as usize + 1);
    let props = [
        ("bootstrap.servers", brokers.bootstrap()),
        ("client.id", long.as_str()),
        ("max.block.ms", "5000"),
        ("delivery.timeout.ms", "6000"),
        ("request.timeout.ms", "3000"),
    ];
    match build_and_send(&props, &topic) {
        Err(Error::Config(message)) => {
            assert!(message.contains("client.id"), "{message}");
            assert!(message.contains("32768"), "{message}");
        }
        other => panic!("expected a config error, but {other:?}"),
    }
    // The longest that fits still works.
    let longest = "c".repeat(i16::MAX as usize);
    let props = [
        ("bootstrap.servers", brokers.bootstrap()),
        ("client.id", longest.as_str()),
    ];
    let outcome = build_and_send(&props, &topic).unwrap();
    assert!(outcome.contains("Ok(RecordMetadata"), "{outcome}");
}

#[test]
fn zero_request_and_connection_setup_timeouts_are_refused() {
    let brokers = common::brokers();
    let topic = common::unique_topic("zero-timeouts");
    brokers.create_topic(&topic, 1);
    for name in ["request.timeout.ms", "socket.connection.setup.timeout.ms"] {
        let props = [
            ("bootstrap.servers", brokers.bootstrap()),
            (name, "0"),
            ("max.block.ms", "3000"),
            ("delivery.timeout.ms", "5000"),
        ];
        match build_and_send(&props, &topic) {
            Err(Error::Config(message)) => {
                assert!(message.contains(name), "{message}");
                assert!(message.contains("\"0\""), "{message}");
            }
            other => panic!("{name}=0: expected a config error, but {other:?}"),
        }
    }
}

#[test]
fn a_zero_reconnect_backoff_does_not_spin_reconnects() {
    // A "broker" that accepts connections and closes them at once: every handshake fails,
    // and the producer reconnects after its reconnect backoff.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let address = listener.local_addr().unwrap().to_string();
    let accepted = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let acceptor = {
        let (accepted, stop) = (Arc::clone(&accepted), Arc::clone(&stop));
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                accepted.fetch_add(1, Ordering::Relaxed);
                drop(stream);
            }
        })
    };
    let producer = Producer::from_properties([
        ("bootstrap.servers", address.as_str()),
        ("reconnect.backoff.ms", "0"),
        ("max.block.ms", "1000"),
    ])
    .expect("reconnect.backoff.ms=0 is accepted, as in Java");
    let started = Instant::now();
    let result = producer
        .send(ProducerRecord::new("any", b"x".to_vec()))
        .wait();
    let elapsed = started.elapsed();
    let attempts = accepted.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    let _ = std::net::TcpStream::connect(&address); // unblocks the acceptor
    acceptor.join().unwrap();
    assert!(
        matches!(result, Err(Error::MetadataTimeout { .. })),
        "{result:?}"
    );
    // With the 10 ms floor (less 20 % jitter) at most ~125 attempts fit in a second.
    let per_second = attempts as f64 / elapsed.as_secs_f64();
    assert!(
        per_second < 200.0,
        "{attempts} connection attempts in {elapsed:?}: the reconnects spin"
    );
}

#[test]
fn a_topic_sent_to_again_after_metadata_max_idle_is_looked_up_again_and_delivered() {
    let brokers = common::brokers();
    let idle_topic = common::unique_topic("idle");
    let busy_topic = common::unique_topic("busy");
    brokers.create_topic(&idle_topic, 2);
    brokers.create_topic(&busy_topic, 2);
    let producer = Producer::from_properties([
        ("bootstrap.servers", brokers.bootstrap()),
        ("metadata.max.idle.ms", "5000"),
        ("max.block.ms", "20000"),
    ])
    .unwrap();
    let send = |topic: &str| {
        producer
            .send(ProducerRecord::new(topic, b"v".to_vec()))
            .wait()
            .unwrap_or_else(|e| panic!("a send to {topic} failed: {e}"))
    };
    send(&idle_topic);
    // The busy topic is used all along; the idle one is not used for longer than 5 s, so
    // the sender forgets it.
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(6500) {
        send(&busy_topic);
        std::thread::sleep(Duration::from_millis(250));
    }
    // Sent to again, it is looked up like a new topic, and delivered.
    assert_eq!(send(&idle_topic).topic(), idle_topic);
    assert_eq!(producer.partitions_for(&idle_topic).unwrap().len(), 2);
    send(&busy_topic);
    producer.close_timeout(Duration::from_secs(10)).unwrap();
}

/// The typed builder's duration methods take any `Duration`: `Duration::MAX` means "as long
/// as the producer can wait" (the config's bound), not a number too long to parse.
#[test]
fn the_typed_builder_takes_duration_max_for_linger_and_max_block() {
    let producer = Producer::builder()
        .bootstrap_servers("127.0.0.1:1")
        .linger(Duration::MAX)
        .max_block(Duration::MAX)
        .build()
        .expect("Duration::MAX is a valid linger and max.block");
    assert_eq!(
        producer.config().linger,
        kafka_producer::config::MAX_DURATION
    );
    assert_eq!(
        producer.config().max_block,
        kafka_producer::config::MAX_DURATION
    );
    producer.close_timeout(Duration::from_secs(5)).ok();
}

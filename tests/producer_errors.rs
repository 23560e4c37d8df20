//! Acceptance tests of issue 3: every bad input fails only its own record, with the error
//! the caller can match on, while good records sent concurrently from another thread are
//! all delivered and read back by an independent reader (rdkafka, `check.crcs=true`).
//!
//! The tests run against this test binary's shared single-node Kafka (or the cluster
//! `KAFKA_BOOTSTRAP_SERVERS` names). A test that stalls a broker freezes a dedicated single
//! node with SIGSTOP (stalling the shared one would stall the other tests); its
//! [`Frozen`](common::kafka::Frozen) guard sends SIGCONT on drop, so a failing test never
//! leaves a broker stopped.

mod common;

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{unbounded, Receiver, Sender};
use kafka_producer::{Error, Producer, ProducerRecord, RecordMetadata, Serializer};

use common::kafka::KafkaCluster;
use common::Brokers;

/// At least this many good records are sent by every [`GoodTraffic`].
const MIN_GOOD: usize = 20;
/// How long a single callback or future may take once its broker is up.
const DELIVERY_WAIT: Duration = Duration::from_secs(60);

/// A bytes producer for `bootstrap` with `extra` properties.
fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> Producer {
    let mut props = vec![("bootstrap.servers", bootstrap), ("linger.ms", "5")];
    props.extend_from_slice(extra);
    Producer::from_properties(props).expect("a valid configuration")
}

/// The shared brokers (see [`common::brokers`]) with a new 3-partition topic.
fn shared_with_topic(prefix: &str) -> (Brokers, String) {
    let brokers = common::brokers();
    let topic = common::unique_topic(prefix);
    brokers.create_topic(&topic, 3);
    (brokers, topic)
}

/// A dedicated single Kafka node (to stall) with a 3-partition topic of topic `configs`.
fn dedicated_with_topic(prefix: &str, configs: &[(&str, &str)]) -> (KafkaCluster, String) {
    let kafka = KafkaCluster::single();
    let topic = common::unique_topic(prefix);
    kafka.create_topic(&topic, 3, 1, configs);
    (kafka, topic)
}

fn assert_elapsed_about(elapsed: Duration, expected: Duration, what: &str) {
    // The lower bound is the contract; the upper one catches a wait that ignores it (a
    // loaded 2-core machine gets a generous margin).
    assert!(
        elapsed >= expected && elapsed < expected + Duration::from_millis(1500),
        "{what} took {elapsed:?}, expected about {expected:?}"
    );
}

/// The result a callback reported, waited for with a bound so a lost callback fails the
/// test instead of hanging it.
fn callback_result(rx: &Receiver<Result<RecordMetadata, Error>>) -> Result<RecordMetadata, Error> {
    rx.recv_timeout(DELIVERY_WAIT)
        .expect("the callback ran within the delivery wait")
}

/// Sends `record` with a callback and returns what the callback reported.
fn send_via_callback(
    producer: &Producer,
    record: ProducerRecord<Vec<u8>, Vec<u8>>,
) -> Result<RecordMetadata, Error> {
    let (tx, rx) = unbounded();
    producer.send_with_callback(record, move |r| tx.send(r).unwrap());
    callback_result(&rx)
}

/// Good records sent from another thread (futures and callbacks alternating) until
/// [`GoodTraffic::finish`], and at least [`MIN_GOOD`] of them.
struct GoodTraffic {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Vec<Vec<u8>>>>,
    bootstrap: String,
    topic: String,
}

impl GoodTraffic {
    fn start(producer: Producer, bootstrap: &str, topic: &str) -> GoodTraffic {
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (stop, topic) = (Arc::clone(&stop), topic.to_owned());
            std::thread::spawn(move || send_good_records(&producer, &topic, &stop))
        };
        // Let the traffic get going so the bad input really is concurrent with it.
        std::thread::sleep(Duration::from_millis(50));
        GoodTraffic {
            stop,
            thread: Some(thread),
            bootstrap: bootstrap.to_owned(),
            topic: topic.to_owned(),
        }
    }

    /// Stops sending, checks every good record succeeded, and reads the topic back: it
    /// holds exactly the good records and `extra` (values compared as multisets).
    fn finish(mut self, extra: &[Vec<u8>]) {
        self.stop.store(true, Ordering::Relaxed);
        let sent = match self.thread.take().unwrap().join() {
            Ok(sent) => sent,
            Err(panic) => std::panic::resume_unwind(panic),
        };
        assert!(sent.len() >= MIN_GOOD);
        let mut expected: Vec<Vec<u8>> = sent.into_iter().chain(extra.iter().cloned()).collect();
        let got = common::read_back(&self.bootstrap, &self.topic, expected.len());
        let mut got: Vec<Vec<u8>> = got.into_iter().map(|r| r.value.unwrap()).collect();
        expected.sort();
        got.sort();
        assert_eq!(
            got.len(),
            expected.len(),
            "records read back from {}",
            self.topic
        );
        assert!(
            got == expected,
            "the topic holds other records than were sent"
        );
    }
}

impl Drop for GoodTraffic {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn send_good_records(producer: &Producer, topic: &str, stop: &AtomicBool) -> Vec<Vec<u8>> {
    let (tx, rx) = unbounded();
    let mut futures = Vec::new();
    let mut callbacks = 0;
    let mut sent = Vec::new();
    while sent.len() < MIN_GOOD || !stop.load(Ordering::Relaxed) {
        let i = sent.len();
        let value = format!("good-{i}").into_bytes();
        let record =
            ProducerRecord::new(topic, value.clone()).with_key(format!("k{i}").into_bytes());
        if i % 2 == 0 {
            futures.push(producer.send(record));
        } else {
            let tx = tx.clone();
            producer.send_with_callback(record, move |r| tx.send(r).unwrap());
            callbacks += 1;
        }
        sent.push(value);
        std::thread::sleep(Duration::from_millis(2));
    }
    for future in futures {
        future
            .wait()
            .expect("a good record sent with a future failed");
    }
    for _ in 0..callbacks {
        callback_result(&rx).expect("a good record sent with a callback failed");
    }
    sent
}

/// A loopback port with nothing listening on it.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
    // The listener closes here; nothing else binds the port in the test's lifetime.
}

#[test]
fn a_record_above_max_request_size_fails_only_itself() {
    let (brokers, topic) = shared_with_topic("too-large");
    let producer = producer(brokers.bootstrap(), &[("max.request.size", "10000")]);
    let good = GoodTraffic::start(producer.clone(), brokers.bootstrap(), &topic);

    let big = || ProducerRecord::new(topic.as_str(), vec![7u8; 20_000]);
    let check = |result: Result<RecordMetadata, Error>| match result {
        Err(Error::RecordTooLarge {
            size,
            limit: 10_000,
            setting: "max.request.size",
        }) => assert!(size > 20_000, "reported size {size}"),
        other => panic!("expected RecordTooLarge for max.request.size, got {other:?}"),
    };
    check(producer.send(big()).wait());
    check(send_via_callback(&producer, big()));

    good.finish(&[]);
}

#[test]
fn invalid_topic_names_fail_at_once_and_only_themselves() {
    let (brokers, topic) = shared_with_topic("bad-names");
    let producer = producer(brokers.bootstrap(), &[]);
    let good = GoodTraffic::start(producer.clone(), brokers.bootstrap(), &topic);

    let long = "x".repeat(250);
    for name in ["", "bad topic!", long.as_str()] {
        let check = |result: Result<RecordMetadata, Error>, how: &str| match result {
            Err(Error::InvalidTopic { topic, .. }) => assert_eq!(topic, name),
            other => panic!("{how} for topic {name:?}: expected InvalidTopic, got {other:?}"),
        };
        // An invalid name is known bad without asking a broker: no max.block.ms wait.
        let start = Instant::now();
        check(
            producer
                .send(ProducerRecord::new(name, b"bad".to_vec()))
                .wait(),
            "future",
        );
        check(
            send_via_callback(&producer, ProducerRecord::new(name, b"bad".to_vec())),
            "callback",
        );
        assert!(
            start.elapsed() < Duration::from_secs(2),
            "rejecting {name:?} blocked"
        );
        assert!(matches!(
            producer.partitions_for(name),
            Err(Error::InvalidTopic { .. })
        ));
    }

    good.finish(&[]);
}

#[test]
fn a_partition_the_topic_lacks_fails_only_itself() {
    let (brokers, topic) = shared_with_topic("unknown-partition");
    let producer = producer(brokers.bootstrap(), &[]);
    let good = GoodTraffic::start(producer.clone(), brokers.bootstrap(), &topic);

    for partition in [99, 3] {
        let record =
            || ProducerRecord::new(topic.as_str(), b"bad".to_vec()).with_partition(partition);
        let check = |result: Result<RecordMetadata, Error>| match result {
            Err(Error::UnknownPartition {
                topic: t,
                partition: p,
                partitions: 3,
            }) => assert_eq!((t.as_str(), p), (topic.as_str(), partition)),
            other => panic!("partition {partition}: expected UnknownPartition, got {other:?}"),
        };
        check(producer.send(record()).wait());
        check(send_via_callback(&producer, record()));
    }

    good.finish(&[]);
}

#[test]
fn a_missing_topic_times_out_after_max_block_ms_without_holding_up_others() {
    let (brokers, topic) = shared_with_topic("missing-topic");
    let max_block = Duration::from_millis(500);
    let producer = producer(brokers.bootstrap(), &[("max.block.ms", "500")]);
    let good = GoodTraffic::start(producer.clone(), brokers.bootstrap(), &topic);

    // Never created: the test bed's Kafka does not auto-create topics
    // (auto.create.topics.enable=false).
    let missing = common::unique_topic("never-created");
    let check = |result: Result<RecordMetadata, Error>| match result {
        Err(Error::MetadataTimeout { topic, waited_ms }) => {
            assert_eq!(topic, missing);
            assert!(waited_ms >= 500, "waited_ms {waited_ms}");
        }
        other => panic!("expected MetadataTimeout, got {other:?}"),
    };
    let start = Instant::now();
    let future = producer.send(ProducerRecord::new(missing.as_str(), b"lost".to_vec()));
    assert_elapsed_about(start.elapsed(), max_block, "send to a missing topic");
    check(future.wait());

    let start = Instant::now();
    let (tx, rx) = unbounded();
    producer.send_with_callback(
        ProducerRecord::new(missing.as_str(), b"lost".to_vec()),
        move |r| tx.send(r).unwrap(),
    );
    assert_elapsed_about(
        start.elapsed(),
        max_block,
        "send_with_callback to a missing topic",
    );
    check(callback_result(&rx));

    good.finish(&[]);
}

#[test]
fn an_unreachable_bootstrap_server_times_out_after_max_block_ms() {
    let (brokers, topic) = shared_with_topic("unreachable");
    let good = GoodTraffic::start(
        producer(brokers.bootstrap(), &[]),
        brokers.bootstrap(),
        &topic,
    );

    let bootstrap = format!("127.0.0.1:{}", closed_port());
    let max_block = Duration::from_millis(500);
    let unreachable = producer(&bootstrap, &[("max.block.ms", "500")]);
    let check = |result: Result<RecordMetadata, Error>| {
        assert!(
            matches!(result, Err(Error::MetadataTimeout { .. })),
            "expected MetadataTimeout, got {result:?}"
        );
    };
    let start = Instant::now();
    let future = unreachable.send(ProducerRecord::new(topic.as_str(), b"lost".to_vec()));
    assert_elapsed_about(start.elapsed(), max_block, "send with no broker");
    check(future.wait());

    let start = Instant::now();
    let (tx, rx) = unbounded();
    unreachable.send_with_callback(
        ProducerRecord::new(topic.as_str(), b"lost".to_vec()),
        move |r| tx.send(r).unwrap(),
    );
    assert_elapsed_about(
        start.elapsed(),
        max_block,
        "send_with_callback with no broker",
    );
    check(callback_result(&rx));

    let start = Instant::now();
    let partitions = unreachable.partitions_for(&topic);
    assert_elapsed_about(start.elapsed(), max_block, "partitions_for with no broker");
    assert!(matches!(partitions, Err(Error::MetadataTimeout { .. })));

    // Nothing is buffered, so closing has nothing to wait for.
    let start = Instant::now();
    unreachable.close().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "close took {:?}",
        start.elapsed()
    );

    good.finish(&[]);
}

/// Serializes even numbers (big-endian) and refuses odd ones.
#[derive(Debug)]
struct EvenOnly;

impl Serializer<u32> for EvenOnly {
    fn serialize(&self, _topic: &str, n: &u32) -> Result<Vec<u8>, Error> {
        if n % 2 == 1 {
            return Err(Error::Serialization(format!("odd value {n}")));
        }
        Ok(n.to_be_bytes().to_vec())
    }
}

#[test]
fn a_failing_serializer_fails_only_its_records() {
    let (brokers, topic) = shared_with_topic("serializer");
    let producer: Producer<Vec<u8>, u32> = Producer::builder()
        .bootstrap_servers(brokers.bootstrap())
        .value_serializer(EvenOnly)
        .build()
        .unwrap();
    const N: u32 = 200;

    // Good (even) values from another thread, bad (odd) values from this one, at once.
    let good = {
        let (producer, topic) = (producer.clone(), topic.clone());
        std::thread::spawn(move || {
            let (tx, rx) = unbounded();
            let mut futures = Vec::new();
            for n in (0..N).step_by(2) {
                let record = ProducerRecord::new(topic.as_str(), n);
                if n % 4 == 0 {
                    futures.push(producer.send(record));
                } else {
                    let tx = tx.clone();
                    producer.send_with_callback(record, move |r| tx.send(r).unwrap());
                }
            }
            drop(tx);
            for f in futures {
                f.wait().expect("an even value sent with a future failed");
            }
            for r in rx.iter() {
                r.expect("an even value sent with a callback failed");
            }
        })
    };
    let (tx, rx) = unbounded();
    for n in (1..N).step_by(2) {
        let record = ProducerRecord::new(topic.as_str(), n);
        if n % 4 == 1 {
            match producer.send(record).wait() {
                Err(Error::Serialization(message)) => {
                    assert!(message.contains(&format!("odd value {n}")), "{message}")
                }
                other => panic!("value {n}: expected Serialization, got {other:?}"),
            }
        } else {
            let tx = tx.clone();
            producer.send_with_callback(record, move |r| tx.send((n, r)).unwrap());
        }
    }
    drop(tx);
    let mut callbacks = 0;
    for (n, r) in rx.iter() {
        assert!(
            matches!(&r, Err(Error::Serialization(m)) if m.contains(&format!("odd value {n}"))),
            "value {n}: expected Serialization, got {r:?}"
        );
        callbacks += 1;
    }
    assert_eq!(callbacks, N / 4);
    good.join().unwrap();
    producer.flush().unwrap();

    let got = common::read_back(brokers.bootstrap(), &topic, N as usize / 2);
    let mut values: Vec<u32> = got
        .iter()
        .map(|r| u32::from_be_bytes(r.value.as_deref().unwrap().try_into().unwrap()))
        .collect();
    values.sort_unstable();
    assert_eq!(values, (0..N).step_by(2).collect::<Vec<_>>());
}

#[test]
fn sends_after_close_fail_with_closed() {
    let (brokers, topic) = shared_with_topic("closed");
    // Good traffic from another producer on the same broker, throughout.
    let good = GoodTraffic::start(
        producer(brokers.bootstrap(), &[]),
        brokers.bootstrap(),
        &topic,
    );

    let producer = producer(brokers.bootstrap(), &[]);
    let before: Vec<Vec<u8>> = (0..50)
        .map(|i| format!("before-close-{i}").into_bytes())
        .collect();
    let futures: Vec<_> = before
        .iter()
        .map(|v| producer.send(ProducerRecord::new(topic.as_str(), v.clone())))
        .collect();
    producer.close().unwrap();
    for f in futures {
        f.wait().expect("close delivers what was sent before it");
    }

    let record = || ProducerRecord::new(topic.as_str(), b"after-close".to_vec());
    let result = producer.send(record()).wait();
    assert!(matches!(result, Err(Error::Closed)), "future: {result:?}");
    let result = send_via_callback(&producer, record());
    assert!(matches!(result, Err(Error::Closed)), "callback: {result:?}");
    match producer.try_send(record()) {
        Err(e) => {
            assert!(matches!(e.error, Error::Closed), "try_send: {:?}", e.error);
            assert_eq!(e.record, record());
        }
        Ok(f) => panic!("try_send after close buffered a record: {:?}", f.wait()),
    }

    good.finish(&before);
}

#[test]
fn bad_properties_are_config_errors_naming_the_property() {
    let (brokers, topic) = shared_with_topic("bad-config");
    let good = GoodTraffic::start(
        producer(brokers.bootstrap(), &[]),
        brokers.bootstrap(),
        &topic,
    );
    let bootstrap = brokers.bootstrap();

    let config_error = |props: &[(&str, &str)]| {
        let mut all = vec![("bootstrap.servers", bootstrap)];
        all.extend_from_slice(props);
        match Producer::from_properties(all) {
            Err(Error::Config(message)) => message,
            Err(other) => panic!("{props:?}: expected a Config error, got {other:?}"),
            Ok(_) => panic!("{props:?}: expected a Config error, got a producer"),
        }
    };
    for (typo, closest) in [
        ("linger.msx", "linger.ms"),
        ("bufer.memory", "buffer.memory"),
        ("ACKS", "acks"),
        ("max.block", "max.block.ms"),
    ] {
        let message = config_error(&[(typo, "1")]);
        assert!(
            message.contains(&format!("{typo:?}")) && message.contains(&format!("{closest:?}")),
            "unknown {typo:?} should suggest {closest:?}: {message}"
        );
    }
    for (name, value) in [
        ("acks", "sometimes"),
        ("linger.ms", "soon"),
        ("batch.size", "-1"),
        ("compression.type", "brotli"),
        ("enable.idempotence", "maybe"),
    ] {
        let message = config_error(&[(name, value)]);
        assert!(
            message.contains(name) && message.contains(value),
            "bad value {value:?} for {name:?}: {message}"
        );
    }

    // The builder reports the first bad setting from build().
    let built = Producer::builder()
        .bootstrap_servers(bootstrap)
        .set("linger.msx", "5")
        .set("acks", "sometimes")
        .build();
    match built {
        Err(Error::Config(message)) => assert!(message.contains("linger.ms"), "{message}"),
        other => panic!("expected a Config error from build, got {other:?}"),
    }

    good.finish(&[]);
}

/// Tracks the largest `buffer_bytes_in_use` seen, sampling every millisecond.
struct BufferSampler {
    stop: Arc<AtomicBool>,
    max: Arc<AtomicUsize>,
    thread: Option<JoinHandle<()>>,
}

impl BufferSampler {
    fn start(producer: Producer) -> BufferSampler {
        let stop = Arc::new(AtomicBool::new(false));
        let max = Arc::new(AtomicUsize::new(0));
        let thread = {
            let (stop, max) = (Arc::clone(&stop), Arc::clone(&max));
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let m = producer.metrics();
                    assert!(
                        m.buffer_bytes_in_use <= m.buffer_total_bytes,
                        "buffer in use {} above buffer.memory {}",
                        m.buffer_bytes_in_use,
                        m.buffer_total_bytes
                    );
                    max.fetch_max(m.buffer_bytes_in_use, Ordering::Relaxed);
                    std::thread::sleep(Duration::from_millis(1));
                }
            })
        };
        BufferSampler {
            stop,
            max,
            thread: Some(thread),
        }
    }

    /// Stops sampling; the largest value seen.
    fn finish(mut self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        if let Err(panic) = self.thread.take().unwrap().join() {
            std::panic::resume_unwind(panic);
        }
        self.max.load(Ordering::Relaxed)
    }
}

impl Drop for BufferSampler {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

const BUFFER_MEMORY: usize = 65536;

/// A producer with a 64 KiB buffer whose metadata for `topic` is known and whose
/// connection is up: one record was sent and acknowledged. Returns that record's value.
///
/// The first metadata of a freshly started Kafka node can take longer than a short
/// `max_block_ms` (its JVM is still cold), so a send that timed out waiting for metadata is
/// sent again: it never reached the buffer, so it cannot be written twice.
fn warmed_up(bootstrap: &str, topic: &str, max_block_ms: &str) -> (Producer, Vec<u8>) {
    let producer = producer(
        bootstrap,
        &[("buffer.memory", "65536"), ("max.block.ms", max_block_ms)],
    );
    let value = b"warm-up".to_vec();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match producer
            .send(ProducerRecord::new(topic, value.clone()))
            .wait()
        {
            Ok(_) => return (producer, value),
            Err(Error::MetadataTimeout { .. }) if Instant::now() < deadline => {}
            Err(e) => panic!("the warm-up record was not delivered: {e:?}"),
        }
    }
}

/// A 1000-byte value starting with `label`.
fn kilobyte(label: String) -> Vec<u8> {
    let mut v = label.into_bytes();
    v.resize(1000, b'.');
    v
}

/// Records sent with callbacks from another thread until one fails with
/// BufferExhausted. Returns how many were sent and the receiver of every callback's
/// (value, result); those still buffered report after the broker resumes.
type CallbackResults = Receiver<(Vec<u8>, Result<RecordMetadata, Error>)>;

fn fill_with_callbacks(producer: Producer, topic: String) -> JoinHandle<(usize, CallbackResults)> {
    std::thread::spawn(move || {
        let (tx, rx): (Sender<(Vec<u8>, _)>, _) = unbounded();
        let exhausted = Arc::new(AtomicBool::new(false));
        for i in 0..10_000 {
            let value = kilobyte(format!("callback-{i}"));
            let (tx, exhausted_flag) = (tx.clone(), Arc::clone(&exhausted));
            let record = ProducerRecord::new(topic.as_str(), value.clone());
            producer.send_with_callback(record, move |r| {
                if matches!(r, Err(Error::BufferExhausted { .. })) {
                    exhausted_flag.store(true, Ordering::Relaxed);
                }
                tx.send((value, r)).unwrap();
            });
            std::thread::sleep(Duration::from_millis(1));
            if exhausted.load(Ordering::Relaxed) {
                return (i + 1, rx);
            }
        }
        panic!("10000 kilobyte records never exhausted a 64 KiB buffer");
    })
}

#[test]
fn a_stalled_broker_exhausts_the_buffer_and_delivers_the_rest_after_it_resumes() {
    let (kafka, topic) = dedicated_with_topic("stalled", &[]);
    let (producer, warm_up) = warmed_up(kafka.bootstrap(), &topic, "100");
    let max_block = Duration::from_millis(100);
    let sampler = BufferSampler::start(producer.clone());
    let frozen = kafka.freeze(1);

    let by_callback = fill_with_callbacks(producer.clone(), topic.clone());
    let mut pending = Vec::new();
    let mut exhausted = 0;
    for i in 0..10_000 {
        let value = kilobyte(format!("future-{i}"));
        let start = Instant::now();
        let future = producer.send(ProducerRecord::new(topic.as_str(), value.clone()));
        match future.wait_timeout(Duration::ZERO) {
            None => pending.push((value, future)),
            Some(Err(Error::BufferExhausted { waited_ms })) => {
                assert!(start.elapsed() >= max_block, "{:?}", start.elapsed());
                // Whole milliseconds of the wait for memory, which starts a little after
                // the send (and so its max.block.ms deadline) began.
                assert!(waited_ms >= 99, "waited_ms {waited_ms}");
                assert!(
                    start.elapsed() < Duration::from_secs(2),
                    "{:?}",
                    start.elapsed()
                );
                exhausted += 1;
                if exhausted == 3 {
                    break;
                }
            }
            Some(other) => panic!("record {i} completed while the broker is stopped: {other:?}"),
        }
    }
    assert_eq!(exhausted, 3, "sends never failed with BufferExhausted");
    let (callbacks_sent, callback_results) = by_callback.join().unwrap();
    assert!(!pending.is_empty());
    std::thread::sleep(Duration::from_millis(200));
    let max_in_use = sampler.finish();
    assert!(
        max_in_use > BUFFER_MEMORY / 2 && max_in_use <= BUFFER_MEMORY,
        "largest buffer use seen: {max_in_use}"
    );
    let metrics = producer.metrics();
    assert_eq!(metrics.buffer_total_bytes, BUFFER_MEMORY);
    assert!(metrics.buffer_bytes_in_use <= BUFFER_MEMORY);

    frozen.thaw();
    let mut delivered = vec![warm_up];
    for (value, future) in pending {
        future
            .wait()
            .expect("a buffered record is delivered after the broker resumes");
        delivered.push(value);
    }
    producer.flush().unwrap();
    let results: Vec<_> = callback_results.try_iter().collect();
    assert_eq!(
        results.len(),
        callbacks_sent,
        "every callback ran by the end of flush"
    );
    let mut callbacks_exhausted = 0;
    for (value, result) in results {
        match result {
            Ok(_) => delivered.push(value),
            Err(Error::BufferExhausted { .. }) => callbacks_exhausted += 1,
            Err(e) => panic!("a buffered callback record failed after the broker resumed: {e}"),
        }
    }
    assert!(callbacks_exhausted >= 1);

    let got = common::read_back(kafka.bootstrap(), &topic, delivered.len());
    let mut got: Vec<Vec<u8>> = got.into_iter().map(|r| r.value.unwrap()).collect();
    got.sort();
    delivered.sort();
    assert!(
        got == delivered,
        "read back {} records, delivered {}",
        got.len(),
        delivered.len()
    );
}

#[test]
fn try_send_never_blocks_and_hands_the_record_back() {
    // Timestamps of 2023: retention.ms=-1 keeps Kafka's retention check from deleting them.
    let (kafka, topic) = dedicated_with_topic("try-send", &[("retention.ms", "-1")]);
    // max.block.ms is long, so any blocking would show.
    let (producer, warm_up) = warmed_up(kafka.bootstrap(), &topic, "10000");
    let quick = Duration::from_millis(500);

    // A topic this producer never asked about: no metadata cached, an error at once.
    let other_topic = common::unique_topic("try-send-uncached");
    kafka.create_topic(&other_topic, 1, 1, &[]);
    let record = ProducerRecord::new(other_topic.as_str(), b"v".to_vec()).with_key(b"k".to_vec());
    let start = Instant::now();
    let refused = producer
        .try_send(record.clone())
        .expect_err("no metadata is cached");
    assert!(
        start.elapsed() < quick,
        "try_send blocked {:?}",
        start.elapsed()
    );
    assert!(refused.error.is_retriable(), "{:?}", refused.error);
    assert_eq!(refused.record, record);

    let frozen = kafka.freeze(1);
    let fill = |label: &'static str, producer: Producer, topic: String| {
        move || {
            let mut accepted = Vec::new();
            for i in 0..10_000 {
                let record = ProducerRecord::new(topic.as_str(), kilobyte(format!("{label}-{i}")))
                    .with_key(format!("key-{i}").into_bytes())
                    .with_header("h", b"header".to_vec())
                    .with_timestamp(1_700_000_000_000 + i);
                let start = Instant::now();
                let result = producer.try_send(record.clone());
                assert!(
                    start.elapsed() < quick,
                    "try_send blocked {:?}",
                    start.elapsed()
                );
                match result {
                    Ok(future) => accepted.push((record.value().unwrap().clone(), future)),
                    Err(e) => {
                        assert!(
                            matches!(e.error, Error::BufferExhausted { .. }),
                            "try_send: {:?}",
                            e.error
                        );
                        assert_eq!(e.record, record, "the record comes back intact");
                        return accepted;
                    }
                }
            }
            panic!("10000 kilobyte records never filled a 64 KiB buffer");
        }
    };
    let other = std::thread::spawn(fill("thread", producer.clone(), topic.clone()));
    let mut accepted = fill("main", producer.clone(), topic.clone())();
    accepted.extend(other.join().unwrap());
    assert!(producer.metrics().buffer_bytes_in_use <= BUFFER_MEMORY);

    frozen.thaw();
    let mut delivered = vec![warm_up];
    for (value, future) in accepted {
        future
            .wait()
            .expect("a record try_send accepted is delivered");
        delivered.push(value);
    }
    let got = common::read_back(kafka.bootstrap(), &topic, delivered.len());
    let mut got: Vec<Vec<u8>> = got.into_iter().map(|r| r.value.unwrap()).collect();
    got.sort();
    delivered.sort();
    assert!(
        got == delivered,
        "read back {} records, delivered {}",
        got.len(),
        delivered.len()
    );

    // The refused try_send asked for the metadata it lacked; it arrives and try_send works.
    let deadline = Instant::now() + Duration::from_secs(10);
    let future = loop {
        match producer.try_send(record.clone()) {
            Ok(f) => break f,
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(50)),
            Err(e) => panic!("try_send to {other_topic} still refused: {:?}", e.error),
        }
    };
    future.wait().unwrap();
}

#[test]
fn close_timeout_with_a_stalled_broker_returns_in_time_and_fails_what_is_left() {
    // Good traffic to a second broker, from another producer: one producer's forced close
    // must not touch another's records.
    let (healthy, healthy_topic) = shared_with_topic("close-good");
    let good = GoodTraffic::start(
        producer(healthy.bootstrap(), &[]),
        healthy.bootstrap(),
        &healthy_topic,
    );

    let (kafka, topic) = dedicated_with_topic("close-stalled", &[]);
    let producer = producer(kafka.bootstrap(), &[]);
    producer
        .send(ProducerRecord::new(topic.as_str(), b"warm-up".to_vec()))
        .wait()
        .unwrap();
    let _frozen = kafka.freeze(1);

    let (tx, rx) = unbounded();
    let mut futures = Vec::new();
    for i in 0..200 {
        let record = ProducerRecord::new(topic.as_str(), format!("stuck-{i}").into_bytes());
        if i % 2 == 0 {
            futures.push(producer.send(record));
        } else {
            let tx = tx.clone();
            producer.send_with_callback(record, move |r| tx.send(r).unwrap());
        }
    }
    drop(tx);
    // Let the sender write some of them to the (stopped) broker's socket.
    std::thread::sleep(Duration::from_millis(200));

    let closed = close_within(&producer, Duration::from_secs(1));
    assert!(
        matches!(closed, Err(Error::Timeout { .. })),
        "close_timeout with undelivered records: {closed:?}"
    );
    for (i, future) in futures.iter().enumerate() {
        match future.wait_timeout(Duration::from_secs(5)) {
            // close_timeout fails what is still undelivered with Closed.
            Some(Err(Error::Closed)) => {}
            other => panic!("future {i} after close_timeout: {other:?}"),
        }
    }
    let mut callbacks = 0;
    while let Ok(result) = rx.recv_timeout(Duration::from_secs(5)) {
        assert!(
            matches!(result, Err(Error::Closed)),
            "callback after close_timeout: {result:?}"
        );
        callbacks += 1;
    }
    assert_eq!(callbacks, 100, "every callback ran");

    good.finish(&[]);
}

#[test]
fn flush_waits_for_the_callbacks_of_records_that_failed_before_buffering() {
    let (brokers, topic) = shared_with_topic("flush-early-errors");
    // Good traffic from another producer: batches of this one would hold flush up
    // (their callbacks queue behind the early ones) and hide what is tested.
    let good = GoodTraffic::start(
        producer(brokers.bootstrap(), &[]),
        brokers.bootstrap(),
        &topic,
    );
    let producer = producer(brokers.bootstrap(), &[]);

    // The first callback keeps the callback thread busy, so the second waits in its queue.
    let ran = Arc::new(AtomicUsize::new(0));
    for delay in [300, 0] {
        let ran = Arc::clone(&ran);
        producer.send_with_callback(ProducerRecord::new("bad topic!", b"v".to_vec()), move |r| {
            assert!(matches!(r, Err(Error::InvalidTopic { .. })), "{r:?}");
            std::thread::sleep(Duration::from_millis(delay));
            ran.fetch_add(1, Ordering::SeqCst);
        });
    }
    producer.flush().unwrap();
    assert_eq!(
        ran.load(Ordering::SeqCst),
        2,
        "flush returned before the callbacks of records sent before it ran"
    );

    good.finish(&[]);
}

/// Runs `close_timeout(timeout)` on another thread; panics (which resumes a frozen broker
/// through its [`Frozen`](common::kafka::Frozen) guard) when it has not returned within
/// `timeout` plus a margin.
fn close_within(producer: &Producer, timeout: Duration) -> Result<(), Error> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let closing = producer.clone();
    std::thread::spawn(move || {
        let start = Instant::now();
        let result = closing.close_timeout(timeout);
        let _ = tx.send((result, start.elapsed()));
    });
    match rx.recv_timeout(timeout + Duration::from_secs(1)) {
        Ok((result, elapsed)) => {
            assert!(
                elapsed < timeout + Duration::from_secs(1),
                "close_timeout({timeout:?}) took {elapsed:?}"
            );
            result
        }
        Err(_) => {
            // Tell a slow close from one that waits for the broker to resume.
            let late = rx
                .recv_timeout(Duration::from_secs(30))
                .map(|(_, took)| took);
            panic!("close_timeout({timeout:?}) did not return within a second after it: {late:?}")
        }
    }
}

#[test]
fn close_timeout_returns_in_time_when_the_stalled_brokers_socket_is_full() {
    let (healthy, healthy_topic) = shared_with_topic("close-full-good");
    let good = GoodTraffic::start(
        producer(healthy.bootstrap(), &[]),
        healthy.bootstrap(),
        &healthy_topic,
    );

    let (kafka, topic) = dedicated_with_topic("close-full-stalled", &[]);
    let producer = producer(kafka.bootstrap(), &[]);
    producer
        .send(ProducerRecord::new(topic.as_str(), b"warm-up".to_vec()))
        .wait()
        .unwrap();
    let _frozen = kafka.freeze(1);

    // 30 MB in 100 KB records: five 1 MB requests in flight are more than the loopback
    // socket buffers hold, so a write to the stopped broker blocks.
    let futures: Vec<_> = (0..300)
        .map(|i| {
            let mut value = format!("stuck-{i}").into_bytes();
            value.resize(100_000, b'.');
            producer.send(ProducerRecord::new(topic.as_str(), value))
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    let closed = close_within(&producer, Duration::from_secs(1));
    assert!(
        matches!(closed, Err(Error::Timeout { .. })),
        "close_timeout with undelivered records: {closed:?}"
    );
    for (i, future) in futures.iter().enumerate() {
        match future.wait_timeout(Duration::from_secs(5)) {
            // close_timeout fails what is still undelivered with Closed.
            Some(Err(Error::Closed)) => {}
            other => panic!("future {i} after close_timeout: {other:?}"),
        }
    }

    good.finish(&[]);
}

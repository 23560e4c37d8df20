//! Close, flush and completion order when callbacks and futures mix, against Kafka: this
//! test binary's shared single node (or the cluster `KAFKA_BOOTSTRAP_SERVERS` names), and a
//! dedicated single node for the test that stalls its broker.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::kafka::KafkaCluster;
use common::{brokers, read_back, unique_topic};
use kafka_producer::{Error, Producer, ProducerRecord};

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> Producer {
    let mut props = vec![("bootstrap.servers", bootstrap)];
    props.extend_from_slice(extra);
    Producer::from_properties(props).expect("producer")
}

#[test]
fn a_future_never_resolves_before_the_callbacks_of_earlier_records() {
    let brokers = brokers();
    let topic = unique_topic("order-mix");
    brokers.create_topic(&topic, 1);
    let p = producer(brokers.bootstrap(), &[("linger.ms", "0")]);
    let ran = Arc::new(AtomicUsize::new(0));
    for i in 0..300 {
        let r = Arc::clone(&ran);
        p.send_with_callback(
            ProducerRecord::new(topic.clone(), format!("cb-{i}").into_bytes()),
            move |res| {
                res.expect("delivered");
                r.fetch_add(1, Ordering::SeqCst);
            },
        );
        let md = p
            .send(ProducerRecord::new(
                topic.clone(),
                format!("f-{i}").into_bytes(),
            ))
            .wait()
            .expect("delivered");
        assert_eq!(
            ran.load(Ordering::SeqCst),
            i + 1,
            "the future of record f-{i} (offset {}) resolved before the callback of the \
             record sent before it",
            md.offset()
        );
    }
    p.close().unwrap();
}

#[test]
fn flush_and_waits_inside_a_callback_fail_instead_of_deadlocking() {
    let brokers = brokers();
    let topic = unique_topic("in-callback");
    brokers.create_topic(&topic, 1);
    let p = producer(brokers.bootstrap(), &[]);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let inner = p.clone();
    let t = topic.clone();
    p.send_with_callback(
        ProducerRecord::new(topic.clone(), b"a".to_vec()),
        move |_| {
            let flushed = inner.flush();
            let waited = inner.send(ProducerRecord::new(t, b"b".to_vec())).wait();
            tx.send((flushed, waited)).unwrap();
        },
    );
    let (flushed, waited) = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the callback finished: no deadlock");
    assert!(
        matches!(flushed, Err(Error::IllegalState(_))),
        "{flushed:?}"
    );
    assert!(matches!(waited, Err(Error::IllegalState(_))), "{waited:?}");
    p.flush().unwrap();
    p.close().unwrap();
    // The record sent inside the callback is still delivered.
    assert_eq!(read_back(brokers.bootstrap(), &topic, 2).len(), 2);
}

#[test]
fn close_does_not_deadlock_with_callbacks_that_send_and_flush() {
    let brokers = brokers();
    let topic = unique_topic("close-cb");
    brokers.create_topic(&topic, 3);
    let p = producer(brokers.bootstrap(), &[]);
    let results = Arc::new(Mutex::new(Vec::new()));
    for i in 0..2_000 {
        let inner = p.clone();
        let (t, results) = (topic.clone(), Arc::clone(&results));
        p.send_with_callback(
            ProducerRecord::new(topic.clone(), format!("{i}").into_bytes()),
            move |res| {
                if res.is_err() {
                    return;
                }
                // Re-send from the callback, and try to flush: both while close runs.
                let r = Arc::clone(&results);
                inner.send_with_callback(ProducerRecord::new(t, b"again".to_vec()), move |x| {
                    r.lock().unwrap().push(x.is_ok())
                });
                let _ = inner.flush();
            },
        );
    }
    let start = Instant::now();
    let closer = {
        let p = p.clone();
        std::thread::spawn(move || p.close_timeout(Duration::from_secs(10)))
    };
    let closed = closer.join().unwrap();
    assert!(
        start.elapsed() < Duration::from_secs(15),
        "close took {:?}",
        start.elapsed()
    );
    assert!(
        closed.is_ok() || matches!(closed, Err(Error::Timeout { .. })),
        "{closed:?}"
    );
    drop(p);
    // Every re-send's callback ran exactly once (delivered, or failed with Closed).
    assert_eq!(results.lock().unwrap().len(), 2_000);
}

#[test]
fn close_timeout_gives_up_on_sends_waiting_for_metadata() {
    let brokers = brokers();
    // Never created; the test bed's brokers do not auto-create topics.
    let missing = unique_topic("no-such-topic");
    let p = producer(brokers.bootstrap(), &[("max.block.ms", "60000")]);
    let waiting = {
        let p = p.clone();
        std::thread::spawn(move || {
            let start = Instant::now();
            let res = p.send(ProducerRecord::new(missing, b"x".to_vec())).wait();
            (res, start.elapsed())
        })
    };
    std::thread::sleep(Duration::from_millis(300));
    let start = Instant::now();
    let closed = p.close_timeout(Duration::from_secs(1));
    assert!(
        start.elapsed() < Duration::from_secs(3),
        "close_timeout(1s) took {:?}",
        start.elapsed()
    );
    assert!(closed.is_ok() || matches!(closed, Err(Error::Timeout { .. })));
    let (res, waited) = waiting.join().unwrap();
    assert!(matches!(res, Err(Error::Closed)), "{res:?}");
    assert!(
        waited < Duration::from_secs(5),
        "the send waited {waited:?}"
    );
}

#[test]
fn a_stalled_broker_fails_every_record_with_delivery_timeout_in_time() {
    // A broker of its own: stalling the shared one would stall the other tests.
    let kafka = KafkaCluster::single();
    let topic = unique_topic("expire");
    kafka.create_topic(&topic, 3, 1, &[]);
    let delivery = Duration::from_millis(3_000);
    let p = producer(
        kafka.bootstrap(),
        &[
            ("delivery.timeout.ms", "3000"),
            ("request.timeout.ms", "1000"),
            ("linger.ms", "5"),
        ],
    );
    p.send(ProducerRecord::new(topic.clone(), b"warm-up".to_vec()))
        .wait()
        .expect("metadata and a first record before the stall");
    let frozen = kafka.freeze(1);
    let (tx, rx) = crossbeam_channel::unbounded();
    let records = 2_000;
    for i in 0..records {
        let tx = tx.clone();
        let sent_at = Instant::now();
        let value = format!("r{i}").into_bytes();
        p.send_with_callback(ProducerRecord::new(topic.clone(), value), move |r| {
            tx.send((r, sent_at.elapsed())).unwrap()
        });
    }
    for _ in 0..records {
        let (result, took) = rx
            .recv_timeout(delivery + Duration::from_secs(10))
            .expect("every record completes: none hangs");
        assert!(
            matches!(result, Err(Error::DeliveryTimeout { .. })),
            "{result:?}"
        );
        assert!(
            took <= delivery + Duration::from_secs(1),
            "a record failed {took:?} after its send (delivery.timeout.ms = {delivery:?})"
        );
    }
    assert_eq!(p.metrics().buffer_bytes_in_use, 0, "memory returns to 0");
    frozen.thaw();
    p.close_timeout(Duration::from_secs(5)).unwrap();
}

/// A channel-backed gate: `wait` blocks until the test opens it (or drops the opener).
#[derive(Debug, Clone)]
struct Gate {
    entered: crossbeam_channel::Sender<()>,
    open: crossbeam_channel::Receiver<()>,
}

impl Gate {
    /// The gate, a receiver told each time a thread starts waiting at it, and the opener
    /// (dropping it opens the gate for good).
    fn new() -> (
        Gate,
        crossbeam_channel::Receiver<()>,
        crossbeam_channel::Sender<()>,
    ) {
        let (entered, entered_rx) = crossbeam_channel::unbounded();
        let (opener, open) = crossbeam_channel::bounded(0);
        (Gate { entered, open }, entered_rx, opener)
    }

    fn wait(&self) {
        let _ = self.entered.send(());
        let _ = self.open.recv();
    }
}

/// A value serializer that waits at its gate for the value "block".
#[derive(Debug)]
struct GatedSerializer(Gate);

impl kafka_producer::Serializer<String> for GatedSerializer {
    fn serialize(&self, _topic: &str, data: &String) -> Result<Vec<u8>, Error> {
        if data == "block" {
            self.0.wait();
        }
        Ok(data.clone().into_bytes())
    }
}

/// A partitioner that waits at its gate for the value "block".
#[derive(Debug)]
struct GatedPartitioner(Gate);

impl kafka_producer::Partitioner for GatedPartitioner {
    fn partition(
        &self,
        _topic: &str,
        _key: Option<&[u8]>,
        value: Option<&[u8]>,
        _partitions: &[kafka_producer::PartitionInfo],
    ) -> Option<i32> {
        if value == Some(b"block".as_slice()) {
            self.0.wait();
        }
        Some(0)
    }
}

/// Runs `close` on its own thread; the result and how long it took, or `None` when it is
/// still running after `limit` (the thread is left behind).
fn close_within<F>(limit: Duration, close: F) -> Option<(Result<(), Error>, Duration)>
where
    F: FnOnce() -> Result<(), Error> + Send + 'static,
{
    let (tx, rx) = crossbeam_channel::bounded(1);
    std::thread::spawn(move || {
        let start = Instant::now();
        let res = close();
        let _ = tx.send((res, start.elapsed()));
    });
    rx.recv_timeout(limit).ok()
}

#[test]
fn close_timeout_returns_in_time_while_a_callback_blocks() {
    let brokers = brokers();
    let topic = unique_topic("close-blocked-cb");
    brokers.create_topic(&topic, 1);
    let p = producer(brokers.bootstrap(), &[]);
    let (gate, entered, opener) = Gate::new();
    let (done_tx, done_rx) = crossbeam_channel::unbounded();
    let g = gate.clone();
    p.send_with_callback(
        ProducerRecord::new(topic.clone(), b"a".to_vec()),
        move |_| g.wait(),
    );
    for i in 0..10 {
        let done = done_tx.clone();
        p.send_with_callback(
            ProducerRecord::new(topic.clone(), format!("{i}").into_bytes()),
            move |r| {
                let _ = done.send(r.is_ok());
            },
        );
    }
    entered
        .recv_timeout(Duration::from_secs(30))
        .expect("the first callback runs");
    let closer = p.clone();
    let closed = close_within(Duration::from_secs(10), move || {
        closer.close_timeout(Duration::from_secs(1))
    });
    let (res, took) = closed.expect("close_timeout(1 s) still running after 10 s");
    assert!(
        took < Duration::from_secs(4),
        "close_timeout(1 s) took {took:?}"
    );
    assert!(matches!(res, Err(Error::Timeout { .. })), "{res:?}");
    // The detached callback thread finishes on its own: every callback still runs once.
    drop(opener);
    for _ in 0..10 {
        done_rx
            .recv_timeout(Duration::from_secs(30))
            .expect("the callbacks queued behind the blocked one still run");
    }
}

/// Sends `value` from another thread and waits until the producer's gated hook holds that
/// send (`entered`); then `close_timeout(1 s)` must return within a few seconds with
/// `Timeout`, and the held send, released (`opener` dropped), must fail with `Closed`.
fn close_timeout_is_bounded_while_a_send_blocks<V: Send + 'static>(
    p: &Producer<Vec<u8>, V>,
    topic: &str,
    value: V,
    entered: crossbeam_channel::Receiver<()>,
    opener: crossbeam_channel::Sender<()>,
) where
    Producer<Vec<u8>, V>: Clone + Send + 'static,
{
    let sending = {
        let (p, t) = (p.clone(), topic.to_owned());
        std::thread::spawn(move || p.send(ProducerRecord::new(t, value)).wait())
    };
    entered
        .recv_timeout(Duration::from_secs(30))
        .expect("the gated hook runs");
    let closer = p.clone();
    let closed = close_within(Duration::from_secs(10), move || {
        closer.close_timeout(Duration::from_secs(1))
    });
    let (res, took) = closed.expect("close_timeout(1 s) still running after 10 s");
    assert!(
        took < Duration::from_secs(4),
        "close_timeout(1 s) took {took:?}"
    );
    assert!(matches!(res, Err(Error::Timeout { .. })), "{res:?}");
    drop(opener);
    let sent = sending.join().unwrap();
    assert!(matches!(sent, Err(Error::Closed)), "{sent:?}");
}

#[test]
fn close_timeout_returns_in_time_while_a_serializer_blocks() {
    let brokers = brokers();
    let topic = unique_topic("close-blocked-ser");
    brokers.create_topic(&topic, 1);
    let (gate, entered, opener) = Gate::new();
    let p: Producer<Vec<u8>, String> = Producer::builder()
        .bootstrap_servers(brokers.bootstrap())
        .value_serializer(GatedSerializer(gate))
        .build()
        .unwrap();
    p.send(ProducerRecord::new(topic.clone(), "warm-up".to_string()))
        .wait()
        .unwrap();
    close_timeout_is_bounded_while_a_send_blocks(&p, &topic, "block".to_string(), entered, opener);
}

#[test]
fn close_timeout_returns_in_time_while_a_partitioner_blocks() {
    let brokers = brokers();
    let topic = unique_topic("close-blocked-part");
    brokers.create_topic(&topic, 1);
    let (gate, entered, opener) = Gate::new();
    let p: Producer = Producer::builder()
        .bootstrap_servers(brokers.bootstrap())
        .partitioner(GatedPartitioner(gate))
        .build()
        .unwrap();
    p.send(ProducerRecord::new(topic.clone(), b"warm-up".to_vec()))
        .wait()
        .unwrap();
    close_timeout_is_bounded_while_a_send_blocks(&p, &topic, b"block".to_vec(), entered, opener);
}

/// A value serializer that closes its own producer when it sees the value "close".
#[derive(Debug)]
struct ClosingSerializer(Arc<std::sync::OnceLock<Producer<Vec<u8>, String>>>);

impl kafka_producer::Serializer<String> for ClosingSerializer {
    fn serialize(&self, _topic: &str, data: &String) -> Result<Vec<u8>, Error> {
        if data == "close" {
            let closed = self.0.get().expect("producer set").close();
            assert!(closed.is_ok(), "close inside the serializer: {closed:?}");
        }
        Ok(data.clone().into_bytes())
    }
}

#[test]
fn close_inside_the_producers_own_serializer_does_not_deadlock() {
    let brokers = brokers();
    let topic = unique_topic("close-in-ser");
    brokers.create_topic(&topic, 1);
    let cell = Arc::new(std::sync::OnceLock::new());
    let p: Producer<Vec<u8>, String> = Producer::builder()
        .bootstrap_servers(brokers.bootstrap())
        .value_serializer(ClosingSerializer(Arc::clone(&cell)))
        .build()
        .unwrap();
    let _ = cell.set(p.clone());
    p.send(ProducerRecord::new(topic.clone(), "before".to_string()))
        .wait()
        .unwrap();
    let (tx, rx) = crossbeam_channel::bounded(1);
    let sender = p.clone();
    let t = topic.clone();
    std::thread::spawn(move || {
        let res = sender
            .send(ProducerRecord::new(t, "close".to_string()))
            .wait();
        let _ = tx.send(res);
    });
    let res = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a send whose serializer closes the producer finished: no deadlock");
    // The close began during the send: the record is delivered or fails with Closed.
    assert!(res.is_ok() || matches!(res, Err(Error::Closed)), "{res:?}");
    let later = p
        .send(ProducerRecord::new(topic, "after".to_string()))
        .wait();
    assert!(matches!(later, Err(Error::Closed)), "{later:?}");
    let closed = close_within(Duration::from_secs(30), move || p.close());
    assert!(
        closed.is_some(),
        "a second close from outside still returns"
    );
}

#[test]
fn another_producers_flush_and_wait_work_inside_a_callback() {
    let brokers = brokers();
    let topic = unique_topic("other-in-cb");
    brokers.create_topic(&topic, 1);
    let a = producer(brokers.bootstrap(), &[]);
    let b = producer(brokers.bootstrap(), &[]);
    let (tx, rx) = crossbeam_channel::bounded(1);
    let t = topic.clone();
    a.send_with_callback(
        ProducerRecord::new(topic.clone(), b"a".to_vec()),
        move |_| {
            let waited = b.send(ProducerRecord::new(t, b"b".to_vec())).wait();
            let flushed = b.flush();
            tx.send((waited, flushed)).unwrap();
        },
    );
    let (waited, flushed) = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the callback finished");
    assert!(waited.is_ok(), "B's wait inside A's callback: {waited:?}");
    assert!(
        flushed.is_ok(),
        "B's flush inside A's callback: {flushed:?}"
    );
    a.close().unwrap();
}

#[test]
fn timeouts_of_duration_max_mean_no_deadline() {
    let brokers = brokers();
    let topic = unique_topic("max-timeouts");
    brokers.create_topic(&topic, 1);
    let p = producer(brokers.bootstrap(), &[]);
    let fut = p.send(ProducerRecord::new(topic.clone(), b"x".to_vec()));
    let waited = fut.wait_timeout(Duration::MAX);
    assert!(matches!(waited, Some(Ok(_))), "{waited:?}");
    p.flush_timeout(Duration::MAX).unwrap();
    p.close_timeout(Duration::MAX).unwrap();
}

/// A partitioner that closes its own producer when it sees the value "close".
#[derive(Debug)]
struct ClosingPartitioner(Arc<std::sync::OnceLock<Producer>>);

impl kafka_producer::Partitioner for ClosingPartitioner {
    fn partition(
        &self,
        _topic: &str,
        _key: Option<&[u8]>,
        value: Option<&[u8]>,
        _partitions: &[kafka_producer::PartitionInfo],
    ) -> Option<i32> {
        if value == Some(b"close".as_slice()) {
            let closed = self.0.get().expect("producer set").close();
            assert!(closed.is_ok(), "close inside the partitioner: {closed:?}");
        }
        Some(0)
    }
}

#[test]
fn close_inside_the_producers_own_partitioner_does_not_deadlock() {
    let brokers = brokers();
    let topic = unique_topic("close-in-part");
    brokers.create_topic(&topic, 1);
    let cell = Arc::new(std::sync::OnceLock::new());
    let p: Producer = Producer::builder()
        .bootstrap_servers(brokers.bootstrap())
        .partitioner(ClosingPartitioner(Arc::clone(&cell)))
        .build()
        .unwrap();
    let _ = cell.set(p.clone());
    let (tx, rx) = crossbeam_channel::bounded(1);
    let sender = p.clone();
    let t = topic.clone();
    std::thread::spawn(move || {
        let res = sender
            .send(ProducerRecord::new(t, b"close".to_vec()))
            .wait();
        let _ = tx.send(res);
    });
    let res = rx
        .recv_timeout(Duration::from_secs(30))
        .expect("a send whose partitioner closes the producer finished: no deadlock");
    assert!(res.is_ok() || matches!(res, Err(Error::Closed)), "{res:?}");
    let closed = close_within(Duration::from_secs(30), move || p.close());
    assert!(
        closed.is_some(),
        "a second close from outside still returns"
    );
}

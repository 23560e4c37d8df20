//! Interceptors against Kafka (this test binary's shared single node, or the cluster
//! `KAFKA_BOOTSTRAP_SERVERS` names): a header added by `on_send` is on every record read
//! back (rdkafka consumer), `on_acknowledgement` runs once per record on the callback thread
//! before the record's callback and future, a panicking interceptor loses nothing, and
//! records that fail before they are buffered are acknowledged with their error.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{brokers, read_back, unique_topic};
use kafka_producer::{
    Error, Producer, ProducerInterceptor, ProducerRecord, RecordMetadata, StringSerializer,
};

/// Adds `trace-id: <n>` and rewrites the value to `<value>!`.
#[derive(Debug, Default)]
struct Tracer {
    next: AtomicUsize,
}

impl ProducerInterceptor<String, String> for Tracer {
    fn on_send(&self, record: &mut ProducerRecord<String, String>) {
        let n = self.next.fetch_add(1, Ordering::SeqCst);
        record.headers_mut().add("trace-id", n.to_string());
        if let Some(v) = record.value_mut() {
            v.push('!');
        }
    }
}

/// One acknowledgement an interceptor saw: (topic, partition, offset or error text,
/// thread name).
type Ack = (String, i32, Result<i64, String>, String);

/// What an interceptor saw, in order.
#[derive(Debug, Default)]
struct Seen {
    acks: Mutex<Vec<Ack>>,
    closed: AtomicUsize,
}

impl ProducerInterceptor<String, String> for Seen {
    fn on_acknowledgement(
        &self,
        topic: &str,
        partition: i32,
        result: &Result<RecordMetadata, Error>,
    ) {
        let thread = std::thread::current().name().unwrap_or("").to_owned();
        let result = result
            .as_ref()
            .map(RecordMetadata::offset)
            .map_err(|e| e.to_string());
        self.acks
            .lock()
            .unwrap()
            .push((topic.to_owned(), partition, result, thread));
    }

    fn close(&self) {
        self.closed.fetch_add(1, Ordering::SeqCst);
    }
}

/// Panics in both hooks, every time.
#[derive(Debug)]
struct Panicky;

impl ProducerInterceptor<String, String> for Panicky {
    fn on_send(&self, _record: &mut ProducerRecord<String, String>) {
        panic!("on_send fails");
    }
    fn on_acknowledgement(&self, _: &str, _: i32, _: &Result<RecordMetadata, Error>) {
        panic!("on_acknowledgement fails");
    }
}

fn producer(bootstrap: &str, seen: &Arc<Seen>, panicky: bool) -> Producer<String, String> {
    let builder = Producer::builder()
        .bootstrap_servers(bootstrap)
        .set("max.block.ms", "5000")
        .key_serializer(StringSerializer)
        .value_serializer(StringSerializer);
    let builder = if panicky {
        builder.interceptor(Panicky)
    } else {
        builder
    };
    builder
        .interceptor(Tracer::default())
        .interceptor(Arc::clone(seen))
        .build()
        .unwrap()
}

#[test]
fn every_record_is_intercepted_on_send_and_acknowledged_before_its_callback() {
    let brokers = brokers();
    let topic = unique_topic("intercepted");
    brokers.create_topic(&topic, 3);
    let seen = Arc::new(Seen::default());
    let p = producer(brokers.bootstrap(), &seen, true);
    let n = 300;
    // Each callback records how many acknowledgements the interceptor had seen by then.
    let acks_at_callback = Arc::new(Mutex::new(Vec::new()));
    let mut futures = Vec::new();
    for i in 0..n {
        let record =
            ProducerRecord::new(topic.clone(), format!("v{i}")).with_key(format!("k{}", i % 7));
        if i % 2 == 0 {
            futures.push((i, p.send(record)));
        } else {
            let (seen, log) = (Arc::clone(&seen), Arc::clone(&acks_at_callback));
            p.send_with_callback(record, move |result| {
                let offset = result.expect("delivered").offset();
                let acks = seen.acks.lock().unwrap();
                let acked = acks.iter().any(|a| a.2 == Ok(offset));
                log.lock().unwrap().push(acked);
            });
        }
    }
    for (i, f) in futures {
        let md = f.wait().unwrap_or_else(|e| panic!("record {i}: {e}"));
        let acks = seen.acks.lock().unwrap();
        assert!(
            acks.iter()
                .any(|a| a.1 == md.partition() && a.2 == Ok(md.offset())),
            "record {i}: the interceptor saw its acknowledgement before its future resolved"
        );
    }
    p.flush().unwrap();
    let at_callback = acks_at_callback.lock().unwrap().clone();
    assert_eq!(at_callback.len(), n / 2);
    assert!(
        at_callback.iter().all(|&acked| acked),
        "every callback ran after the interceptor's acknowledgement"
    );
    {
        let acks = seen.acks.lock().unwrap();
        assert_eq!(acks.len(), n, "one acknowledgement per record");
        assert!(acks.iter().all(|a| a.0 == topic && a.2.is_ok()));
        assert!(
            acks.iter()
                .all(|a| a.3.starts_with("kafka-producer-callbacks")),
            "acknowledgements run on the callback thread: {:?}",
            acks.iter()
                .map(|a| &a.3)
                .collect::<std::collections::BTreeSet<_>>()
        );
        // Per partition, acknowledgements come in offset order.
        for partition in 0..3 {
            let offsets: Vec<i64> = acks
                .iter()
                .filter(|a| a.1 == partition)
                .map(|a| *a.2.as_ref().unwrap())
                .collect();
            assert!(offsets.windows(2).all(|w| w[0] < w[1]), "{offsets:?}");
        }
    }
    p.close().unwrap();
    assert_eq!(seen.closed.load(Ordering::SeqCst), 1, "close ran once");
    drop(p);
    assert_eq!(
        seen.closed.load(Ordering::SeqCst),
        1,
        "and not again on drop"
    );

    // Read back by librdkafka: every record carries the header and the rewritten value.
    let records = read_back(brokers.bootstrap(), &topic, n);
    assert_eq!(records.len(), n);
    let mut trace_ids: Vec<usize> = records
        .iter()
        .map(|r| {
            assert!(r.value.as_deref().unwrap().ends_with(b"!"), "{r:?}");
            let header = r
                .headers
                .iter()
                .find(|(k, _)| k == "trace-id")
                .unwrap_or_else(|| panic!("no trace-id on {r:?}"));
            std::str::from_utf8(header.1.as_deref().unwrap())
                .unwrap()
                .parse()
                .unwrap()
        })
        .collect();
    trace_ids.sort_unstable();
    assert_eq!(
        trace_ids,
        (0..n).collect::<Vec<_>>(),
        "one trace id per record"
    );
}

#[test]
fn a_record_failing_before_it_is_buffered_is_acknowledged_with_its_error() {
    let brokers = brokers();
    let topic = unique_topic("intercepted-errors");
    brokers.create_topic(&topic, 2);
    let seen = Arc::new(Seen::default());
    let p = producer(brokers.bootstrap(), &seen, false);
    // A future: the interceptor hears of the error before send returns.
    let bad = p
        .send(ProducerRecord::new(topic.clone(), "x".to_string()).with_partition(9))
        .wait();
    assert!(
        matches!(bad, Err(Error::UnknownPartition { .. })),
        "{bad:?}"
    );
    {
        let acks = seen.acks.lock().unwrap();
        assert_eq!(acks.len(), 1);
        assert_eq!((acks[0].0.as_str(), acks[0].1), (topic.as_str(), 9));
        assert!(acks[0].2.is_err());
    }
    // A callback: acknowledged (on the callback thread) before the callback runs.
    let (tx, rx) = std::sync::mpsc::channel();
    let seen2 = Arc::clone(&seen);
    p.send_with_callback(
        ProducerRecord::new("bad topic!", "y".to_string()),
        move |result| {
            let acks = seen2.acks.lock().unwrap().len();
            tx.send((result.is_err(), acks)).unwrap();
        },
    );
    let (failed, acks_then) = rx.recv_timeout(Duration::from_secs(10)).unwrap();
    assert!(failed);
    assert_eq!(acks_then, 2, "the interceptor saw it first");
    let acks = seen.acks.lock().unwrap();
    assert_eq!((acks[1].0.as_str(), acks[1].1), ("bad topic!", -1));
    assert!(
        acks[1].3.starts_with("kafka-producer-callbacks"),
        "{:?}",
        acks[1].3
    );
}

#[test]
fn interceptors_must_follow_the_serializers() {
    let e = Producer::builder()
        .bootstrap_servers("127.0.0.1:9")
        .interceptor(Arc::new(NoOp))
        .key_serializer::<String, _>(StringSerializer)
        .build()
        .map(|_| ())
        .unwrap_err();
    assert!(
        matches!(&e, Error::Config(m) if m.contains("before adding interceptors")),
        "{e}"
    );
}

#[derive(Debug)]
struct NoOp;
impl ProducerInterceptor<Vec<u8>, Vec<u8>> for NoOp {}

#[derive(Debug, Default)]
struct Order(Mutex<Vec<&'static str>>);

impl ProducerInterceptor<Vec<u8>, Vec<u8>> for Order {
    fn on_acknowledgement(&self, _: &str, _: i32, _: &Result<RecordMetadata, Error>) {
        self.0.lock().unwrap().push("ack");
    }
    fn close(&self) {
        self.0.lock().unwrap().push("close");
    }
}

/// No broker listens: every record fails its metadata wait (100 ms) and its callback runs
/// on the callback thread. A close that times out while callbacks are still queued must
/// not close the interceptors before their last acknowledgement.
#[test]
fn interceptors_close_after_the_last_acknowledgement_even_after_a_timed_out_close() {
    let order = Arc::new(Order::default());
    let p = Producer::builder()
        .bootstrap_servers("127.0.0.1:9")
        .set("max.block.ms", "100")
        .interceptor(Arc::clone(&order))
        .build()
        .unwrap();
    p.send_with_callback(ProducerRecord::new("t", b"a".to_vec()), |_| {
        std::thread::sleep(Duration::from_millis(600))
    });
    p.send_with_callback(ProducerRecord::new("t", b"b".to_vec()), |_| {});
    let closed = p.close_timeout(Duration::from_millis(10));
    assert!(matches!(closed, Err(Error::Timeout { .. })), "{closed:?}");
    drop(p);
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(*order.0.lock().unwrap(), ["ack", "ack", "close"]);
}

/// A keyed record that fails after its partition was chosen (no buffer space within
/// max.block.ms) is acknowledged with that partition, as Java's onSendError.
#[test]
fn an_error_after_partitioning_is_acknowledged_with_the_chosen_partition() {
    let brokers = brokers();
    let topic = unique_topic("intercepted-full");
    brokers.create_topic(&topic, 3);
    let seen = Arc::new(Seen::default());
    let p = Producer::builder()
        .bootstrap_servers(brokers.bootstrap())
        .set("buffer.memory", "65536")
        .set("linger.ms", "60000")
        .set("max.block.ms", "50")
        .key_serializer(StringSerializer)
        .value_serializer(StringSerializer)
        .interceptor(Arc::clone(&seen))
        .build()
        .unwrap();
    p.partitions_for(&topic).unwrap();
    let key = "the-key".to_string();
    let expected = kafka_producer::partition::partition_for_key(key.as_bytes(), 3);
    let mut failed = None;
    for _ in 0..200 {
        let r = ProducerRecord::new(topic.clone(), "x".repeat(2000)).with_key(key.clone());
        let f = p.send(r);
        if let Some(Err(e)) = f.wait_timeout(Duration::ZERO) {
            failed = Some(e);
            break;
        }
    }
    let e = failed.expect("the buffer filled up");
    assert!(matches!(e, Error::BufferExhausted { .. }), "{e}");
    let acks = seen.acks.lock().unwrap();
    let last = acks.last().expect("the failure was acknowledged");
    assert!(last.2.is_err());
    assert_eq!(last.1, expected, "the chosen partition, not -1");
    drop(acks);
    let _ = p.close_timeout(Duration::from_millis(100));
}

//! The mock producer (no broker): the same `Producer` type and calls, with history, manual
//! completion, the real partitioners, interceptors, ordering of callbacks and futures, and
//! the transactional calls' state checks.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use kafka_producer::mock::{MockCluster, MockProducer};
use kafka_producer::partition::partition_for_key;
use kafka_producer::{
    ConsumerGroupMetadata, Error, OffsetAndMetadata, Producer, ProducerInterceptor, ProducerRecord,
    RecordMetadata, RoundRobinPartitioner, StringSerializer, TopicPartition,
};

fn record(topic: &str, value: &str) -> ProducerRecord<Vec<u8>, Vec<u8>> {
    ProducerRecord::new(topic, value.as_bytes().to_vec())
}

#[test]
fn history_offsets_and_the_real_partitioners() {
    let mock = Producer::builder()
        .build_mock(MockCluster::new().topic("t", 4))
        .unwrap();
    let p: Producer = mock.producer();
    assert_eq!(p.partitions_for("t").unwrap().len(), 4);
    let mut by_partition: HashMap<i32, Vec<i64>> = HashMap::new();
    for i in 0..40 {
        let key = format!("key-{}", i % 5);
        let md = p
            .send(record("t", &format!("v{i}")).with_key(key.clone().into_bytes()))
            .wait()
            .unwrap();
        assert_eq!(
            md.partition(),
            partition_for_key(key.as_bytes(), 4),
            "murmur2"
        );
        assert_eq!(md.serialized_value_size(), format!("v{i}").len() as i32);
        by_partition
            .entry(md.partition())
            .or_default()
            .push(md.offset());
    }
    for offsets in by_partition.values() {
        assert_eq!(*offsets, (0..offsets.len() as i64).collect::<Vec<_>>());
    }
    let history = mock.history();
    assert_eq!(history.len(), 40);
    assert_eq!(history[3].value(), Some(&b"v3".to_vec()));
    assert!(history
        .iter()
        .all(|r| r.partition().is_some() && r.timestamp().is_some()));
    // Explicit partitions are checked against the cluster.
    let e = p
        .send(record("t", "x").with_partition(4))
        .wait()
        .unwrap_err();
    assert!(
        matches!(e, Error::UnknownPartition { partitions: 4, .. }),
        "{e}"
    );
    // Records without a key stick to one partition for batch.size bytes, then move on.
    let sticky: Vec<i32> = (0..200)
        .map(|_| {
            p.send(record("t", &"x".repeat(1000)))
                .wait()
                .unwrap()
                .partition()
        })
        .collect();
    let switches = sticky.windows(2).filter(|w| w[0] != w[1]).count();
    assert!(
        (3..=20).contains(&switches),
        "uniform sticky switches: {switches}"
    );
}

#[test]
fn round_robin_and_unknown_topics() {
    let mock = Producer::builder()
        .partitioner(RoundRobinPartitioner::default())
        .build_mock(MockCluster::new().topic("t", 3).auto_create_topics(None))
        .unwrap();
    let parts: Vec<i32> = (0..6)
        .map(|_| mock.send(record("t", "x")).wait().unwrap().partition())
        .collect();
    assert_eq!(parts, [0, 1, 2, 0, 1, 2]);
    let e = mock.send(record("other", "x")).wait().unwrap_err();
    assert!(matches!(e, Error::MetadataTimeout { .. }), "{e}");
    let e = mock.send(record("bad topic", "x")).wait().unwrap_err();
    assert!(matches!(e, Error::InvalidTopic { .. }), "{e}");
}

#[test]
fn manual_completion_runs_callbacks_and_futures_in_send_order() {
    let mock: MockProducer<String, String> = Producer::builder()
        .key_serializer(StringSerializer)
        .value_serializer(StringSerializer)
        .build_mock(MockCluster::new().topic("t", 1))
        .unwrap();
    mock.set_auto_complete(false);
    let order = Arc::new(Mutex::new(Vec::new()));
    let mut futures = Vec::new();
    for i in 0..6 {
        let r = ProducerRecord::new("t", format!("v{i}"));
        if i % 2 == 0 {
            futures.push(mock.send(r));
        } else {
            let order = Arc::clone(&order);
            mock.send_with_callback(r, move |res| {
                order
                    .lock()
                    .unwrap()
                    .push((i, res.map(|m| m.offset()).map_err(|e| e.to_string())))
            });
        }
    }
    assert_eq!(mock.waiting(), 6);
    assert!(!futures[0].is_done());
    assert!(mock.complete_next()); // v0
    assert!(mock.complete_next()); // v1
    assert!(mock.fail_next(Error::RecordTooLarge {
        size: 1,
        limit: 0,
        setting: "test"
    })); // v2
    assert_eq!(
        futures[0]
            .wait_timeout(std::time::Duration::ZERO)
            .unwrap()
            .unwrap()
            .offset(),
        0
    );
    assert!(futures[1]
        .wait_timeout(std::time::Duration::ZERO)
        .unwrap()
        .is_err());
    assert!(!futures[2].is_done());
    mock.flush().unwrap(); // v3, v4, v5
    assert!(!mock.complete_next());
    let order = order.lock().unwrap().clone();
    assert_eq!(order, vec![(1, Ok(1)), (3, Ok(2)), (5, Ok(4))]);
    assert_eq!(futures.pop().unwrap().wait().unwrap().offset(), 3);
    let m = mock.metrics();
    assert_eq!((m.records_sent, m.record_errors), (5, 1));
}

#[test]
fn waiting_or_flushing_inside_a_callback_fails_as_with_a_real_producer() {
    let mock = Producer::builder().build_mock(MockCluster::new()).unwrap();
    let p = mock.producer();
    let (tx, rx) = std::sync::mpsc::channel();
    mock.send_with_callback(record("t", "a"), move |_| {
        let waited = p.send(record("t", "b")).wait();
        let flushed = p.flush();
        tx.send((waited.map(|m| m.offset()), flushed)).unwrap();
    });
    let (waited, flushed) = rx.recv().unwrap();
    assert!(matches!(waited, Err(Error::IllegalState(_))), "{waited:?}");
    assert!(
        matches!(flushed, Err(Error::IllegalState(_))),
        "{flushed:?}"
    );
    // The record sent inside the callback was still delivered, after it.
    assert_eq!(mock.history().len(), 2);
}

#[derive(Debug, Default)]
struct Count {
    sent: AtomicUsize,
    acked: AtomicUsize,
}

impl ProducerInterceptor<Vec<u8>, Vec<u8>> for Count {
    fn on_send(&self, record: &mut ProducerRecord<Vec<u8>, Vec<u8>>) {
        self.sent.fetch_add(1, Ordering::SeqCst);
        record.headers_mut().add("seen", b"1".to_vec());
    }
    fn on_acknowledgement(&self, _: &str, _: i32, _: &Result<RecordMetadata, Error>) {
        self.acked.fetch_add(1, Ordering::SeqCst);
    }
}

#[test]
fn interceptors_and_close() {
    let count = Arc::new(Count::default());
    let mock = Producer::builder()
        .interceptor(Arc::clone(&count))
        .build_mock(MockCluster::new())
        .unwrap();
    mock.send(record("t", "a")).wait().unwrap();
    let _ = mock.send(record("bad topic", "b")).wait();
    assert_eq!(count.sent.load(Ordering::SeqCst), 2);
    assert_eq!(count.acked.load(Ordering::SeqCst), 2);
    assert_eq!(mock.history()[0].headers().last("seen"), Some(&b"1"[..]));
    mock.close().unwrap();
    assert!(mock.is_closed());
    let e = mock.send(record("t", "c")).wait().unwrap_err();
    assert!(matches!(e, Error::Closed), "{e}");
}

#[test]
fn transactions_commit_into_the_history_and_abort_fails_what_waits() {
    let mock = Producer::builder()
        .set("transactional.id", "tx-1")
        .build_mock(MockCluster::new())
        .unwrap();
    let e = mock.send(record("t", "early")).wait().unwrap_err();
    assert!(matches!(e, Error::IllegalState(_)), "{e}");
    assert!(matches!(
        mock.begin_transaction(),
        Err(Error::IllegalState(_))
    ));
    mock.init_transactions().unwrap();
    mock.begin_transaction().unwrap();
    mock.send(record("t", "a")).wait().unwrap();
    let offsets: HashMap<TopicPartition, OffsetAndMetadata> =
        [(TopicPartition::new("in", 0), OffsetAndMetadata::new(7))].into();
    mock.send_offsets_to_transaction(&offsets, &ConsumerGroupMetadata::new("g"))
        .unwrap();
    assert!(mock.history().is_empty());
    assert_eq!(mock.uncommitted().len(), 1);
    mock.commit_transaction().unwrap();
    assert_eq!(mock.history().len(), 1);
    assert_eq!(mock.committed_offsets(), vec![("g".to_string(), offsets)]);

    mock.set_auto_complete(false);
    mock.begin_transaction().unwrap();
    let waiting = mock.send(record("t", "b"));
    mock.abort_transaction().unwrap();
    assert!(matches!(waiting.wait(), Err(Error::TransactionAborted)));
    assert_eq!(mock.history().len(), 1);
    assert_eq!(mock.transactions_ended(), (1, 1));
    mock.fence();
    assert!(matches!(mock.begin_transaction(), Err(Error::Fenced(_))));
}

#[test]
fn turning_auto_completion_back_on_completes_the_new_record_too() {
    let mock = Producer::builder().build_mock(MockCluster::new()).unwrap();
    mock.set_auto_complete(false);
    let a = mock.send(record("t", "a"));
    mock.set_auto_complete(true);
    let b = mock.send(record("t", "b"));
    assert!(a.is_done());
    assert!(
        b.is_done(),
        "the record sent with auto-completion on completed"
    );
    assert_eq!(b.wait().unwrap().offset(), 1);
}

#[test]
fn flush_waits_for_callbacks_another_thread_is_handing_out() {
    let mock = Producer::builder().build_mock(MockCluster::new()).unwrap();
    let (entered_tx, entered_rx) = std::sync::mpsc::channel();
    let flag = Arc::new(AtomicUsize::new(0));
    std::thread::scope(|s| {
        let slow = mock.producer();
        s.spawn(move || {
            slow.send_with_callback(record("t", "slow"), move |_| {
                entered_tx.send(()).unwrap();
                std::thread::sleep(std::time::Duration::from_millis(300));
            })
        });
        entered_rx.recv().unwrap();
        let flag2 = Arc::clone(&flag);
        mock.send_with_callback(record("t", "mine"), move |_| {
            flag2.store(1, Ordering::SeqCst);
        });
        mock.flush().unwrap();
        assert_eq!(
            flag.load(Ordering::SeqCst),
            1,
            "flush returned before the callback of a record sent before it ran"
        );
    });
}

#[test]
fn try_send_acknowledges_a_record_it_refuses_for_good() {
    let count = Arc::new(Count::default());
    let mock = Producer::builder()
        .interceptor(Arc::clone(&count))
        .build_mock(MockCluster::new())
        .unwrap();
    let refused = mock.try_send(record("bad topic!", "x")).unwrap_err();
    assert!(
        matches!(refused.error, Error::InvalidTopic { .. }),
        "{}",
        refused.error
    );
    assert_eq!(count.acked.load(Ordering::SeqCst), 1);
}

#[test]
fn a_producer_is_send_and_sync_whatever_its_key_and_value_types() {
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Producer<std::rc::Rc<str>, std::cell::Cell<u8>>>();
    assert_send_sync::<Producer<String, String>>();
}

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

#[test]
fn the_mocks_interceptors_close_after_every_acknowledgement() {
    let order = Arc::new(Order::default());
    let mock = Producer::builder()
        .interceptor(Arc::clone(&order))
        .build_mock(MockCluster::new())
        .unwrap();
    let p = mock.producer();
    mock.send_with_callback(record("t", "a"), move |_| {
        // close inside a callback: the record sent next is still delivered, and the
        // interceptors close after it.
        drop(p.send(record("t", "b")));
        p.close().unwrap();
    });
    assert_eq!(mock.history().len(), 2);
    assert_eq!(*order.0.lock().unwrap(), ["ack", "ack", "close"]);
}

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

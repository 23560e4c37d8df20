//! Metrics and broker throttling against Apache Kafka: the metrics under Java's names add
//! up to what was sent, and a producer over its byte-rate quota honours the broker's
//! throttle times (KIP-219) while still delivering every record in order.
//!
//! The tests share this binary's single-node Kafka ([`kafka::shared`]); each uses topics and
//! a client id of its own, so a quota set for one test's client id touches no other test.

mod common;

use std::time::{Duration, Instant};

use common::{kafka, read_back, unique_topic};
use kafka_producer::{Metric, Producer, ProducerRecord};

fn value(metrics: &[Metric], group: &str, name: &str, tag: Option<(&str, &str)>) -> f64 {
    metrics
        .iter()
        .find(|m| {
            m.group == group
                && m.name == name
                && tag.is_none_or(|(k, v)| m.tags.get(k).map(String::as_str) == Some(v))
        })
        .unwrap_or_else(|| panic!("no {group}/{name} {tag:?}"))
        .value
}

/// A producer over its quota is throttled by the broker: it waits out each throttle time
/// before it sends to the broker again, so its requests never sit muted in the broker
/// (their round trips stay short while the throttle times are long), and every record still
/// arrives, in order.
#[test]
fn a_producer_over_its_quota_waits_out_the_throttle_and_delivers_everything_in_order() {
    let cluster = kafka::shared();
    let topic = unique_topic("throttled");
    cluster.create_topic(&topic, 1, 1, &[]);
    let client_id = unique_topic("throttled-client");
    // Kafka measures a client's byte rate over at least 10 s (11 one-second samples), so
    // 1.2 MB at 100 kB/s is 20 % over the quota: throttles of about two seconds.
    // Kafka moved the tool from the broker (kafka.admin) to kafka-tools in 4.2.
    let libs = cluster.distribution().libs();
    let moved = std::fs::read_dir(&libs)
        .expect("the distribution's libs")
        .filter_map(Result::ok)
        .any(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            name.starts_with("kafka-tools-")
                && zip_has(&e.path(), "org/apache/kafka/tools/ConfigCommand.class")
        });
    let config_command = if moved {
        "org.apache.kafka.tools.ConfigCommand"
    } else {
        "kafka.admin.ConfigCommand"
    };
    cluster.tool(
        config_command,
        &[
            "--bootstrap-server",
            cluster.bootstrap(),
            "--alter",
            "--add-config",
            "producer_byte_rate=100000",
            "--entity-type",
            "clients",
            "--entity-name",
            &client_id,
        ],
    );
    let producer = Producer::builder()
        .bootstrap_servers(cluster.bootstrap())
        .set("client.id", &client_id)
        .set("acks", "1")
        .set("linger.ms", "5")
        // One request at a time: each one leaves after the previous answer, so one sent
        // while the throttle that answer announced lasts would wait in the broker.
        .set("max.in.flight.requests.per.connection", "1")
        .build()
        .expect("producer");
    let count = 1200;
    let started = Instant::now();
    let futures: Vec<_> = (0..count)
        .map(|i| {
            let mut value = format!("{i:06}-").into_bytes();
            value.resize(1000, b'x');
            producer.send(ProducerRecord::new(topic.clone(), value))
        })
        .collect();
    for (i, f) in futures.into_iter().enumerate() {
        f.wait()
            .unwrap_or_else(|e| panic!("record {i} failed: {e}"));
    }
    let elapsed = started.elapsed();
    let metrics = producer.metrics_by_name();
    let snapshot = producer.metrics();
    producer.close().expect("close");

    let group = Metric::PRODUCER_GROUP;
    let throttle_max = value(&metrics, group, "produce-throttle-time-max", None);
    let throttle_avg = value(&metrics, group, "produce-throttle-time-avg", None);
    let latency_max = value(&metrics, group, "request-latency-max", None);
    eprintln!(
        "{count} records in {elapsed:?}: throttle max {throttle_max} ms, avg {throttle_avg} \
         ms, request latency max {latency_max} ms, {} requests",
        snapshot.requests
    );
    assert!(
        throttle_max >= 500.0,
        "the broker never throttled: {throttle_max} ms"
    );
    assert!(throttle_avg > 0.0);
    assert_eq!(snapshot.throttle_time_max.as_millis() as f64, throttle_max);
    // A request sent while the broker throttles us waits, unread, until the throttle ends
    // (the broker mutes the connection): its round trip would be about the throttle time.
    // (With more requests in flight, those already sent when a throttled answer arrives
    // would wait so too, whatever the client does.) Measured: 35 ms when the throttle is
    // honoured, 1.2 s when the sender ignores it, of a 2.2 s throttle.
    assert!(
        latency_max < throttle_max / 4.0,
        "a request waited in the broker ({latency_max} ms of {throttle_max} ms throttle): \
         it was sent during a throttle"
    );
    // The quota bounds the throughput: about 1.2 MB at 100 kB/s (less the first window's
    // allowance) cannot take much under 10 s.
    assert!(
        elapsed >= Duration::from_secs(5),
        "quota not enforced: {elapsed:?}"
    );

    let records = read_back(cluster.bootstrap(), &topic, count);
    assert_eq!(records.len(), count, "every record exactly once");
    for (i, r) in records.iter().enumerate() {
        let v = r.value.as_deref().expect("a value");
        assert_eq!(
            &v[..7],
            format!("{i:06}-").as_bytes(),
            "record {i} out of order"
        );
    }
}

/// The metrics by Java's names add up to what the test sent: records per topic sum to the
/// producer's total, batches stay within batch.size, the buffer figures are
/// buffer.memory's, and the node metrics name the one broker.
#[test]
fn metrics_by_name_add_up_to_what_was_sent() {
    let cluster = kafka::shared();
    let topics = [unique_topic("metrics-a"), unique_topic("metrics-b")];
    for t in &topics {
        cluster.create_topic(t, 3, 1, &[]);
    }
    let client_id = unique_topic("metrics-client");
    let producer = Producer::builder()
        .bootstrap_servers(cluster.bootstrap())
        .set("client.id", &client_id)
        .set("batch.size", "4096")
        .set("compression.type", "lz4")
        .build()
        .expect("producer");
    let counts = [700usize, 300];
    for (t, n) in topics.iter().zip(counts) {
        let futures: Vec<_> = (0..n)
            .map(|i| {
                let value = format!("{t}-{i}-{}", "v".repeat(i % 50)).into_bytes();
                producer.send(ProducerRecord::new(t.clone(), value).with_key(vec![i as u8]))
            })
            .collect();
        for f in futures {
            f.wait().expect("delivered");
        }
    }
    assert_eq!(producer.queued_records(), 0);
    assert_eq!(producer.in_flight_records(), 0);
    let m = producer.metrics_by_name();
    producer.close().expect("close");

    let total = counts.iter().sum::<usize>() as f64;
    let p = Metric::PRODUCER_GROUP;
    assert!(m.iter().all(|x| x.tags["client-id"] == client_id));
    assert_eq!(value(&m, p, "record-send-total", None), total);
    assert_eq!(value(&m, p, "record-error-total", None), 0.0);
    assert_eq!(value(&m, p, "record-retry-total", None), 0.0);
    for (t, n) in topics.iter().zip(counts) {
        let tag = Some(("topic", t.as_str()));
        assert_eq!(
            value(&m, Metric::TOPIC_GROUP, "record-send-total", tag),
            n as f64
        );
        let ratio = value(&m, Metric::TOPIC_GROUP, "compression-rate", tag);
        assert!(ratio > 0.0 && ratio < 1.0, "lz4 shrank nothing: {ratio}");
    }
    let batch_avg = value(&m, p, "batch-size-avg", None);
    let batch_max = value(&m, p, "batch-size-max", None);
    assert!(batch_avg > 0.0 && batch_avg <= batch_max && batch_max <= 4096.0 + 100.0);
    let per_request = value(&m, p, "records-per-request-avg", None);
    let requests = value(&m, p, "request-total", None);
    assert!((per_request * requests - total).abs() < 1e-6);
    let record_max = value(&m, p, "record-size-max", None);
    assert!(record_max > 0.0 && record_max < 200.0, "{record_max}");
    assert_eq!(value(&m, p, "buffer-total-bytes", None), 33_554_432.0);
    assert_eq!(value(&m, p, "buffer-available-bytes", None), 33_554_432.0);
    assert_eq!(value(&m, p, "requests-in-flight", None), 0.0);
    let latency_avg = value(&m, p, "request-latency-avg", None);
    assert!(latency_avg > 0.0 && latency_avg <= value(&m, p, "request-latency-max", None));
    assert!(value(&m, p, "record-send-rate", None) > 0.0);
    let node = cluster.node_ids()[0];
    let tag = format!("node-{node}");
    let node_requests = value(
        &m,
        Metric::NODE_GROUP,
        "request-total",
        Some(("node-id", &tag)),
    );
    assert_eq!(node_requests, requests, "one broker took every request");
    let node_bytes = value(
        &m,
        Metric::NODE_GROUP,
        "outgoing-byte-total",
        Some(("node-id", &tag)),
    );
    assert_eq!(node_bytes, value(&m, p, "outgoing-byte-total", None));
}

/// The statistics hook runs about every interval on a thread of its own, with the metrics
/// of the moment, and stops with the producer.
#[test]
fn the_statistics_hook_runs_every_interval_until_close() {
    use std::sync::{Arc, Mutex};
    let cluster = kafka::shared();
    let topic = unique_topic("stats");
    cluster.create_topic(&topic, 1, 1, &[]);
    type Run = (Instant, u64, u64, String);
    let calls: Arc<Mutex<Vec<Run>>> = Arc::default();
    let seen = Arc::clone(&calls);
    let producer = Producer::builder()
        .bootstrap_servers(cluster.bootstrap())
        .statistics_callback(Duration::from_millis(100), move |snapshot, by_name| {
            let thread = std::thread::current().name().unwrap_or("").to_owned();
            let sent = by_name
                .iter()
                .find(|m| m.group == Metric::PRODUCER_GROUP && m.name == "record-send-total")
                .map_or(u64::MAX, |m| m.value as u64);
            // (A panic here would be caught by the producer: the test checks afterwards.)
            let run = (Instant::now(), sent, snapshot.records_sent, thread);
            seen.lock().unwrap().push(run);
        })
        .build()
        .expect("producer");
    let started = Instant::now();
    producer
        .send(ProducerRecord::new(topic.clone(), b"x".to_vec()))
        .wait()
        .expect("delivered");
    std::thread::sleep(Duration::from_millis(1050).saturating_sub(started.elapsed()));
    let during = calls.lock().unwrap().len();
    producer.close().expect("close");
    let at_close = calls.lock().unwrap().len();
    std::thread::sleep(Duration::from_millis(400));
    let calls = calls.lock().unwrap();
    // Loose bounds: a 2-core machine running brokers can hold a thread back for a while.
    assert!(
        (5..=12).contains(&during),
        "{during} runs in about 1 s at 100 ms"
    );
    assert!(
        calls.len() <= at_close + 1,
        "the hook ran on after close: {} runs, {at_close} at close",
        calls.len()
    );
    assert!(calls
        .iter()
        .all(|(.., t)| t.starts_with("kafka-producer-stats-")));
    let last = calls.last().expect("runs");
    assert_eq!((last.1, last.2), (1, 1), "the last run saw the record sent");
    for pair in calls.windows(2) {
        let gap = pair[1].0 - pair[0].0;
        assert!(
            gap >= Duration::from_millis(50) && gap <= Duration::from_millis(1000),
            "runs {gap:?} apart"
        );
    }
}

/// A mock producer answers the same calls: its waiting records count as in flight, it has
/// nothing unsent to purge, and its by-name metrics count what it completed.
#[test]
fn a_mock_producer_reports_its_waiting_records_and_metrics_by_name() {
    use kafka_producer::mock::MockCluster;
    let mock = Producer::builder()
        .set("client.id", "mocked")
        .build_mock(MockCluster::new().topic("t", 2))
        .expect("mock");
    mock.set_auto_complete(false);
    let producer = mock.producer();
    let futures: Vec<_> = (0..3u8)
        .map(|i| producer.send(ProducerRecord::new("t", vec![i])))
        .collect();
    assert_eq!(producer.in_flight_records(), 3);
    assert_eq!(producer.queued_records(), 0);
    assert_eq!(producer.purge().expect("purge"), 0);
    assert!(mock.complete_next());
    assert!(mock.complete_next());
    assert!(mock.fail_next(kafka_producer::Error::Closed));
    for f in &futures {
        while !f.is_done() {
            std::thread::sleep(Duration::from_millis(1));
        }
    }
    assert_eq!(producer.in_flight_records(), 0);
    let m = producer.metrics_by_name();
    let tag = Some(("client-id", "mocked"));
    assert_eq!(
        value(&m, Metric::PRODUCER_GROUP, "record-send-total", tag),
        2.0
    );
    assert_eq!(
        value(&m, Metric::PRODUCER_GROUP, "record-error-total", tag),
        1.0
    );
}

/// Whether the jar (zip) at `path` holds an entry named `entry` (its name appears in the
/// archive's central directory, stored uncompressed).
fn zip_has(path: &std::path::Path, entry: &str) -> bool {
    std::fs::read(path).is_ok_and(|bytes| bytes.windows(entry.len()).any(|w| w == entry.as_bytes()))
}

//! `Producer::purge` against Apache Kafka: records not sent yet fail with `Error::Purged`,
//! records in flight are delivered, the producer keeps working, and what is read back is
//! exactly what was not purged, in order.
//!
//! The lingering test uses this binary's shared single node; the frozen-broker test starts
//! a node of its own (freezing the shared one would stall the other test), stopped when the
//! test ends, also on failure.

mod common;

use std::time::{Duration, Instant};

use common::kafka::{self, KafkaCluster};
use common::{read_back, unique_topic};
use kafka_producer::{Error, Producer, ProducerRecord, SendFuture};

fn send_all(producer: &Producer, topic: &str, from: usize, to: usize) -> Vec<SendFuture> {
    (from..to)
        .map(|i| producer.send(ProducerRecord::new(topic, format!("{i:05}").into_bytes())))
        .collect()
}

fn values(records: &[common::ReadRecord]) -> Vec<String> {
    records
        .iter()
        .map(|r| String::from_utf8(r.value.clone().unwrap()).unwrap())
        .collect()
}

/// Lingering records are purged; the producer is not closed, and what it sends next is
/// delivered in order. Only those records are in the log.
#[test]
fn purged_lingering_records_fail_and_later_sends_are_delivered() {
    let cluster = kafka::shared();
    let topic = unique_topic("purge-linger");
    cluster.create_topic(&topic, 1, 1, &[]);
    let producer = Producer::builder()
        .bootstrap_servers(cluster.bootstrap())
        .set("linger.ms", "60000")
        .set("delivery.timeout.ms", "120000")
        .build()
        .expect("producer");
    // The topic's metadata first, so that the records are queued, not waiting for it.
    producer.partitions_for(&topic).expect("metadata");
    let lingering = send_all(&producer, &topic, 0, 100);
    assert_eq!(producer.queued_records(), 100);
    assert_eq!(producer.purge().expect("purge"), 100);
    assert_eq!(producer.queued_records(), 0);
    for (i, f) in lingering.into_iter().enumerate() {
        match f.wait() {
            Err(Error::Purged) => {}
            other => panic!("record {i}: {other:?}"),
        }
    }
    let later = send_all(&producer, &topic, 100, 150);
    producer.flush().expect("flush");
    for f in later {
        f.wait().expect("delivered after the purge");
    }
    assert_eq!(producer.purge().expect("purge"), 0, "nothing left to purge");
    producer.close().expect("close");
    let records = read_back(cluster.bootstrap(), &topic, 50);
    let expected: Vec<String> = (100..150).map(|i| format!("{i:05}")).collect();
    assert_eq!(values(&records), expected);
}

/// With the broker frozen, the first request is in flight and the rest is queued behind
/// it: purge fails the queued records only. Once the broker thaws, the records in flight
/// are delivered (idempotence keeps its sequence numbering: the next records are accepted
/// too), and the log holds exactly them and the later records, in order.
#[test]
fn purge_leaves_records_in_flight_to_a_frozen_broker_alone() {
    let cluster = KafkaCluster::single();
    let topic = unique_topic("purge-frozen");
    cluster.create_topic(&topic, 1, 1, &[]);
    let producer = Producer::builder()
        .bootstrap_servers(cluster.bootstrap())
        .set("linger.ms", "0")
        .set("batch.size", "100")
        .set("request.timeout.ms", "60000")
        .set("delivery.timeout.ms", "120000")
        .build()
        .expect("producer");
    producer
        .send(ProducerRecord::new(topic.as_str(), b"warm-up".to_vec()))
        .wait()
        .expect("the producer id and connection are set up");
    let frozen = cluster.freeze(cluster.node_ids()[0]);
    let futures = send_all(&producer, &topic, 0, 40);
    let deadline = Instant::now() + Duration::from_secs(10);
    while producer.in_flight_records() == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    std::thread::sleep(Duration::from_millis(200)); // let the sender drain what it may
    let in_flight = producer.in_flight_records();
    let queued = producer.queued_records();
    assert!(in_flight > 0, "nothing went out to the frozen broker");
    assert!(queued > 0, "nothing stayed queued");
    assert_eq!(in_flight + queued, 40);
    let purged = producer.purge().expect("purge");
    assert_eq!(purged, queued, "exactly the queued records are purged");
    assert_eq!(
        producer.in_flight_records(),
        in_flight,
        "in flight untouched"
    );
    frozen.thaw();
    let mut delivered = Vec::new();
    for (i, f) in futures.into_iter().enumerate() {
        match f.wait() {
            Ok(_) => delivered.push(format!("{i:05}")),
            Err(Error::Purged) => {}
            Err(e) => panic!("record {i}: {e}"),
        }
    }
    assert_eq!(delivered.len() as u64, in_flight);
    let later = send_all(&producer, &topic, 40, 50);
    for f in later {
        f.wait().expect("delivered after the purge");
    }
    producer.close().expect("close");
    let expected: Vec<String> = std::iter::once("warm-up".to_owned())
        .chain(delivered)
        .chain((40..50).map(|i| format!("{i:05}")))
        .collect();
    let records = read_back(cluster.bootstrap(), &topic, expected.len());
    assert_eq!(values(&records), expected);
}

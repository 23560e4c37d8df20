//! Transactions on real Apache Kafka: commit, abort, zombie fencing, coordinator and
//! leader failover, the broker's transaction timeout, and misuse. Every committed record
//! is read back with `isolation.level=read_committed` by the rdkafka consumer and the Java
//! consumer (CRCs checked); aborted ones must never show there.
//!
//! The single-node tests share one broker ([`kafka::shared`]); the failover tests start a
//! three-node cluster of their own (transaction and offsets topics replicated 3 times,
//! min.insync.replicas 2), and the timeout test a node whose coordinator checks for timed
//! out transactions every second.

mod common;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::kafka::{self, ClusterOptions, KafkaCluster};
use common::{read_back_isolated, unique_topic, ReadRecord};
use kafka_producer::{
    ConsumerGroupMetadata, Error, OffsetAndMetadata, Producer, ProducerRecord, TopicPartition,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// A transactional bytes producer on `bootstrap` with id `id` and `extra` properties.
fn transactional(bootstrap: &str, id: &str, extra: &[(&str, &str)]) -> Producer {
    let mut props = vec![("bootstrap.servers", bootstrap), ("transactional.id", id)];
    props.extend_from_slice(extra);
    Producer::from_properties(props).expect("a valid configuration")
}

/// The value of record `i` of transaction `t`.
fn value(t: usize, i: usize) -> Vec<u8> {
    format!("t{t:03}-r{i:05}").into_bytes()
}

/// Reads `topic` with both readers at `read_committed` until `expected` records arrived
/// (plus a quiet second), asserts they agree, and returns the records.
fn read_committed(bootstrap: &str, topic: &str, expected: usize) -> Vec<ReadRecord> {
    let patience = Duration::from_secs(60);
    let (rdkafka, java) = thread::scope(|s| {
        let java = s.spawn(|| {
            let dist = kafka::distribution();
            kafka::java_read(dist, bootstrap, topic, expected, patience, "read_committed")
        });
        let rdkafka = read_back_isolated(bootstrap, topic, expected, patience, "read_committed");
        (rdkafka, java.join().expect("the Java reader"))
    });
    common::assert_same_records(&rdkafka, &java, topic);
    rdkafka
}

/// The values read, per partition, in offset order.
fn by_partition(records: &[ReadRecord]) -> HashMap<i32, Vec<Vec<u8>>> {
    let mut out: HashMap<i32, Vec<Vec<u8>>> = HashMap::new();
    for r in records {
        out.entry(r.partition)
            .or_default()
            .push(r.value.clone().expect("a value"));
    }
    out
}

/// The offsets group `group` committed for `topic`'s partitions `0..partitions`.
fn committed_offsets(bootstrap: &str, group: &str, topic: &str, partitions: i32) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .create()
        .expect("an rdkafka consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..partitions {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .expect("the group's committed offsets");
    (0..partitions)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            other => panic!("{topic}-{p}: no committed offset for {group}: {other:?}"),
        })
        .collect()
}

/// Records `(topic, key, value)` sent in order inside the open transaction; waits for all.
fn send_all(p: &Producer, records: &[(String, Vec<u8>, Vec<u8>)]) {
    let futures: Vec<_> = records
        .iter()
        .map(|(t, k, v)| p.send(ProducerRecord::new(t.as_str(), v.clone()).with_key(k.clone())))
        .collect();
    for f in futures {
        f.wait().expect("a record inside the transaction");
    }
}

/// 1. Ten committed transactions of 1,000 records over two topics of three partitions,
/// each with offsets for a group: every record visible at read_committed, in order, and the
/// group's offsets are the last transaction's.
#[test]
fn committed_transactions_are_visible_in_order_with_their_offsets() {
    let bs = kafka::shared().bootstrap().to_owned();
    let topics = [unique_topic("txn-commit-a"), unique_topic("txn-commit-b")];
    let input = unique_topic("txn-commit-in");
    for t in topics.iter().chain([&input]) {
        kafka::shared().create_topic(t, 3, 1, &[]);
    }
    let group = unique_topic("txn-group");
    let p = transactional(&bs, &unique_topic("txn-commit"), &[("linger.ms", "5")]);
    p.init_transactions().expect("init_transactions");
    let mut sent: HashMap<(String, i32), Vec<Vec<u8>>> = HashMap::new();
    for t in 0..10 {
        p.begin_transaction().expect("begin");
        let mut futures = Vec::new();
        for i in 0..1000 {
            let topic = &topics[i % 2];
            let v = value(t, i);
            let key = format!("k{}", i % 7).into_bytes();
            futures.push((
                topic.clone(),
                v.clone(),
                p.send(ProducerRecord::new(topic.as_str(), v).with_key(key)),
            ));
        }
        let offsets: HashMap<TopicPartition, OffsetAndMetadata> = (0..3)
            .map(|part| {
                let tp = TopicPartition::new(input.as_str(), part);
                let o = OffsetAndMetadata::new((t as i64 + 1) * 100 + part as i64)
                    .with_metadata(format!("txn {t}"));
                (tp, o)
            })
            .collect();
        p.send_offsets_to_transaction(&offsets, &ConsumerGroupMetadata::new(group.as_str()))
            .expect("send_offsets_to_transaction");
        p.commit_transaction().expect("commit");
        for (topic, v, f) in futures {
            let md = f.wait().expect("a committed record was acknowledged");
            sent.entry((topic, md.partition())).or_default().push(v);
        }
    }
    p.close().expect("close");
    let mut visible = 0;
    for topic in &topics {
        let records = read_committed(&bs, topic, 5000);
        assert_eq!(records.len(), 5000, "{topic}: every committed record, once");
        for (partition, values) in by_partition(&records) {
            let want = &sent[&(topic.clone(), partition)];
            assert_eq!(&values, want, "{topic}-{partition}: in send order");
        }
        visible += records.len();
    }
    assert_eq!(visible, 10_000);
    let offsets = committed_offsets(&bs, &group, &input, 3);
    assert_eq!(
        offsets,
        vec![1000, 1001, 1002],
        "the last transaction's offsets"
    );
    eprintln!(
        "commit: 10 transactions, 10000 records committed, {visible} visible, offsets {offsets:?}"
    );
}

/// 2. Committed and aborted transactions interleaved: only the committed ones are visible
/// at read_committed, while read_uncommitted shows that the aborted ones were written.
#[test]
fn aborted_transactions_are_never_visible() {
    let bs = kafka::shared().bootstrap().to_owned();
    let topic = unique_topic("txn-abort");
    kafka::shared().create_topic(&topic, 3, 1, &[]);
    let p = transactional(&bs, &unique_topic("txn-abort"), &[]);
    p.init_transactions().expect("init_transactions");
    let mut committed: HashMap<i32, Vec<Vec<u8>>> = HashMap::new();
    let (mut n_committed, mut n_aborted) = (0, 0);
    for t in 0..8 {
        p.begin_transaction().expect("begin");
        let records: Vec<_> = (0..500)
            .map(|i| (topic.clone(), format!("k{i}").into_bytes(), value(t, i)))
            .collect();
        let futures: Vec<_> = records
            .iter()
            .map(|(tp, k, v)| {
                (
                    v.clone(),
                    p.send(ProducerRecord::new(tp.as_str(), v.clone()).with_key(k.clone())),
                )
            })
            .collect();
        let mds: Vec<_> = futures
            .into_iter()
            .map(|(v, f)| {
                (
                    v,
                    f.wait()
                        .expect("acknowledged before the end of the transaction"),
                )
            })
            .collect();
        if t % 2 == 0 {
            p.commit_transaction().expect("commit");
            for (v, md) in mds {
                committed.entry(md.partition()).or_default().push(v);
            }
            n_committed += 500;
        } else {
            p.abort_transaction().expect("abort");
            n_aborted += 500;
        }
    }
    // An aborted transaction whose records were never sent: they fail, nothing is written.
    p.begin_transaction().expect("begin");
    let unsent: Vec<_> = (0..50)
        .map(|i| p.send(ProducerRecord::new(topic.as_str(), value(99, i))))
        .collect();
    p.abort_transaction().expect("abort");
    for f in unsent {
        match f.wait() {
            Ok(_) | Err(Error::TransactionAborted) => {}
            Err(e) => panic!("an aborted record failed with {e}"),
        }
    }
    p.close().expect("close");
    let records = read_committed(&bs, &topic, n_committed);
    assert_eq!(records.len(), n_committed, "only the committed records");
    assert_eq!(by_partition(&records), committed);
    assert!(records.iter().all(|r| {
        let v = r.value.as_deref().unwrap();
        let t: usize = std::str::from_utf8(&v[1..4]).unwrap().parse().unwrap();
        t % 2 == 0
    }));
    let all = read_back_isolated(
        &bs,
        &topic,
        n_committed + n_aborted,
        Duration::from_secs(60),
        "read_uncommitted",
    );
    assert!(
        all.len() >= n_committed + n_aborted,
        "the aborted records were written"
    );
    eprintln!(
        "abort: {n_committed} committed, {n_aborted} aborted, {} visible read_committed, {} read_uncommitted",
        records.len(),
        all.len()
    );
}

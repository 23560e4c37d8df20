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

/// 3. Zombie fencing: a second producer with the same transactional.id fences the first;
/// the first one's commit fails with `Error::Fenced` (and so does any later call), and
/// none of its open transaction ever becomes visible. The new producer goes on.
#[test]
fn a_newer_producer_with_the_same_id_fences_the_older_one() {
    let bs = kafka::shared().bootstrap().to_owned();
    let topic = unique_topic("txn-fence");
    kafka::shared().create_topic(&topic, 3, 1, &[]);
    let id = unique_topic("txn-fence");
    let zombie = transactional(&bs, &id, &[]);
    zombie.init_transactions().expect("init_transactions");
    zombie.begin_transaction().expect("begin");
    let written: Vec<_> = (0..300)
        .map(|i| zombie.send(ProducerRecord::new(topic.as_str(), value(1, i))))
        .collect();
    for f in written {
        f.wait().expect("written before the fencing");
    }
    let successor = transactional(&bs, &id, &[]);
    successor
        .init_transactions()
        .expect("the successor's init_transactions");
    let commit = zombie.commit_transaction();
    assert!(
        matches!(commit, Err(Error::Fenced(_))),
        "the zombie's commit: {commit:?}"
    );
    // Every later call of the zombie fails with the fencing, nothing is sent.
    assert!(matches!(zombie.begin_transaction(), Err(Error::Fenced(_))));
    let late = zombie
        .send(ProducerRecord::new(topic.as_str(), value(1, 999)))
        .wait();
    assert!(
        matches!(late, Err(Error::Fenced(_))),
        "a send after fencing: {late:?}"
    );
    // The successor's own transaction commits.
    successor.begin_transaction().expect("begin");
    let ok: Vec<_> = (0..200)
        .map(|i| successor.send(ProducerRecord::new(topic.as_str(), value(2, i))))
        .collect();
    successor
        .commit_transaction()
        .expect("the successor commits");
    for f in ok {
        f.wait().expect("committed");
    }
    drop(zombie);
    successor.close().expect("close");
    let records = read_committed(&bs, &topic, 200);
    assert_eq!(
        records.len(),
        200,
        "only the successor's transaction is visible"
    );
    assert!(records
        .iter()
        .all(|r| r.value.as_deref().unwrap().starts_with(b"t002")));
    eprintln!(
        "fencing: zombie wrote 300 (aborted by the fencing), successor committed 200, {} visible",
        records.len()
    );
}

/// A send from a zombie after the fencing fails (the broker refuses the old epoch), and
/// the transaction cannot commit; the abort then reports the fencing.
#[test]
fn a_zombie_send_after_the_fencing_fails_and_nothing_becomes_visible() {
    let bs = kafka::shared().bootstrap().to_owned();
    let topic = unique_topic("txn-fence-send");
    kafka::shared().create_topic(&topic, 1, 1, &[]);
    let id = unique_topic("txn-fence-send");
    let zombie = transactional(&bs, &id, &[]);
    zombie.init_transactions().expect("init_transactions");
    zombie.begin_transaction().expect("begin");
    zombie
        .send(ProducerRecord::new(topic.as_str(), value(1, 0)))
        .wait()
        .expect("written before the fencing");
    let successor = transactional(&bs, &id, &[]);
    successor
        .init_transactions()
        .expect("the successor's init_transactions");
    let sent = zombie
        .send(ProducerRecord::new(topic.as_str(), value(1, 1)))
        .wait();
    assert!(sent.is_err(), "a zombie's send after the fencing: {sent:?}");
    let commit = zombie.commit_transaction();
    assert!(
        matches!(
            commit,
            Err(Error::Fenced(_) | Error::TransactionAbortable(_))
        ),
        "the zombie's commit: {commit:?}"
    );
    if let Err(Error::TransactionAbortable(_)) = commit {
        let abort = zombie.abort_transaction();
        assert!(
            matches!(abort, Err(Error::Fenced(_))),
            "the zombie's abort: {abort:?}"
        );
    }
    successor.begin_transaction().expect("begin");
    successor
        .send(ProducerRecord::new(topic.as_str(), value(2, 0)))
        .wait()
        .expect("the successor's record");
    successor.commit_transaction().expect("commit");
    let records = read_committed(&bs, &topic, 1);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value.as_deref(), Some(&value(2, 0)[..]));
}

/// 7. Misuse: each a clear typed error, and the producer goes on as if it never happened.
#[test]
fn misuse_is_a_typed_error_and_loses_nothing() {
    let bs = kafka::shared().bootstrap().to_owned();
    let topic = unique_topic("txn-misuse");
    kafka::shared().create_topic(&topic, 1, 1, &[]);
    let illegal = |r: Result<(), Error>, what: &str| match r {
        Err(Error::IllegalState(message)) => eprintln!("{what}: {message}"),
        other => panic!("{what}: expected IllegalState, got {other:?}"),
    };
    // A non-transactional producer refuses the transactional calls.
    let plain = Producer::from_properties([("bootstrap.servers", bs.as_str())]).unwrap();
    illegal(
        plain.init_transactions(),
        "init on a non-transactional producer",
    );
    illegal(
        plain.begin_transaction(),
        "begin on a non-transactional producer",
    );
    illegal(
        plain.commit_transaction(),
        "commit on a non-transactional producer",
    );
    plain
        .send(ProducerRecord::new(topic.as_str(), b"plain".to_vec()))
        .wait()
        .expect("the plain producer still sends");
    plain.close().unwrap();

    let p = transactional(&bs, &unique_topic("txn-misuse"), &[]);
    let early = p
        .send(ProducerRecord::new(topic.as_str(), b"early".to_vec()))
        .wait();
    assert!(
        matches!(early, Err(Error::IllegalState(_))),
        "send before init: {early:?}"
    );
    illegal(p.begin_transaction(), "begin before init");
    illegal(p.commit_transaction(), "commit before init");
    p.init_transactions().expect("init_transactions");
    illegal(p.init_transactions(), "init twice");
    illegal(p.commit_transaction(), "commit without begin");
    illegal(p.abort_transaction(), "abort without begin");
    let outside = p
        .send(ProducerRecord::new(topic.as_str(), b"outside".to_vec()))
        .wait();
    assert!(
        matches!(outside, Err(Error::IllegalState(_))),
        "send outside: {outside:?}"
    );
    let offsets: HashMap<TopicPartition, OffsetAndMetadata> = [(
        TopicPartition::new(topic.as_str(), 0),
        OffsetAndMetadata::new(1),
    )]
    .into();
    illegal(
        p.send_offsets_to_transaction(&offsets, &ConsumerGroupMetadata::new("g")),
        "offsets outside a transaction",
    );
    p.begin_transaction().expect("begin");
    illegal(p.begin_transaction(), "begin twice");
    let inside: Vec<_> = (0..10)
        .map(|i| p.send(ProducerRecord::new(topic.as_str(), value(7, i))))
        .collect();
    p.commit_transaction().expect("commit after the misuse");
    for f in inside {
        f.wait().expect("every record of the transaction");
    }
    p.close().unwrap();
    let records = read_committed(&bs, &topic, 11);
    assert_eq!(
        records.len(),
        11,
        "the plain record and the transaction, nothing else"
    );
    let values: Vec<_> = records.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values[0], b"plain".to_vec());
    assert_eq!(
        values[1..],
        (0..10).map(|i| value(7, i)).collect::<Vec<_>>()[..]
    );
}

/// 6. A transaction left open past transaction.timeout.ms is aborted by the broker: the
/// next call reports it (abortable), the abort succeeds, and a new transaction commits.
/// A node of its own, whose coordinator looks for timed-out transactions every 500 ms.
#[test]
fn the_broker_aborts_a_timed_out_transaction_and_the_producer_goes_on() {
    let cluster = KafkaCluster::start(ClusterOptions::nodes(1).property(
        "transaction.abort.timed.out.transaction.cleanup.interval.ms",
        "500",
    ));
    let bs = cluster.bootstrap().to_owned();
    let topic = unique_topic("txn-timeout");
    cluster.create_topic(&topic, 2, 1, &[]);
    let p = transactional(
        &bs,
        &unique_topic("txn-timeout"),
        &[("transaction.timeout.ms", "2000")],
    );
    p.init_transactions().expect("init_transactions");
    for (round, next_call) in ["commit", "send"].into_iter().enumerate() {
        p.begin_transaction().expect("begin");
        let stale: Vec<_> = (0..100)
            .map(|i| p.send(ProducerRecord::new(topic.as_str(), value(round * 2, i))))
            .collect();
        for f in stale {
            f.wait().expect("written before the timeout");
        }
        thread::sleep(Duration::from_secs(5)); // past the timeout and a cleanup pass
        let reported = match next_call {
            "commit" => p.commit_transaction(),
            _ => {
                let sent = p
                    .send(ProducerRecord::new(topic.as_str(), value(round * 2, 100)))
                    .wait();
                assert!(
                    sent.is_err(),
                    "a send into the timed-out transaction: {sent:?}"
                );
                p.commit_transaction()
            }
        };
        assert!(
            matches!(reported, Err(Error::TransactionAbortable(_))),
            "the call after the timeout ({next_call}): {reported:?}"
        );
        p.abort_transaction().expect("the abort after the broker's");
        p.begin_transaction().expect("a new transaction");
        let fresh: Vec<_> = (0..100)
            .map(|i| p.send(ProducerRecord::new(topic.as_str(), value(round * 2 + 1, i))))
            .collect();
        p.commit_transaction().expect("the new transaction commits");
        for f in fresh {
            f.wait().expect("committed");
        }
    }
    p.close().expect("close");
    let records = read_committed(&bs, &topic, 200);
    assert_eq!(
        records.len(),
        200,
        "only the transactions after the timeouts"
    );
    assert!(records.iter().all(|r| {
        let v = r.value.as_deref().unwrap();
        v.starts_with(b"t001") || v.starts_with(b"t003")
    }));
    eprintln!(
        "timeout: 2 x 100 records aborted by the broker, 200 committed, {} visible",
        records.len()
    );
}

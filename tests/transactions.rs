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
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::kafka::{self, ClusterOptions, KafkaCluster};
use common::{read_back_isolated, unique_topic, ReadRecord};
use kafka_producer::net::{BlockingClient, ConnectionConfig};
use kafka_producer::protocol::api_versions::TRANSACTION_VERSION_FEATURE;
use kafka_producer::protocol::find_coordinator::{CoordinatorType, FindCoordinatorRequest};
use kafka_producer::{
    ConsumerGroupMetadata, Error, OffsetAndMetadata, Producer, ProducerRecord, SendFuture,
    TopicPartition,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// With `TEST_LOG=debug` (or `info`), the producer's log goes to stderr.
fn init_log() {
    struct Stderr(Instant);
    impl log::Log for Stderr {
        fn enabled(&self, _: &log::Metadata<'_>) -> bool {
            true
        }
        fn log(&self, r: &log::Record<'_>) {
            if self.enabled(r.metadata()) {
                let t = self.0.elapsed().as_secs_f64();
                eprintln!("{t:9.3} {:5} {}: {}", r.level(), r.target(), r.args());
            }
        }
        fn flush(&self) {}
    }
    static INIT: OnceLock<()> = OnceLock::new();
    INIT.get_or_init(|| {
        let level = match std::env::var("TEST_LOG").as_deref() {
            Ok("debug") => log::LevelFilter::Debug,
            Ok("info") => log::LevelFilter::Info,
            Ok("trace") => log::LevelFilter::Trace,
            _ => return,
        };
        if log::set_logger(Box::leak(Box::new(Stderr(Instant::now())))).is_ok() {
            log::set_max_level(level);
        }
    });
}

/// A transactional bytes producer on `bootstrap` with id `id` and `extra` properties.
fn transactional(bootstrap: &str, id: &str, extra: &[(&str, &str)]) -> Producer {
    init_log();
    let mut props = vec![("bootstrap.servers", bootstrap), ("transactional.id", id)];
    props.extend_from_slice(extra);
    Producer::from_properties(props).expect("a valid configuration")
}

/// The shared node's bootstrap address and a fresh topic of `partitions` partitions there.
fn shared_topic(prefix: &str, partitions: i32) -> (String, String) {
    let topic = unique_topic(prefix);
    kafka::shared().create_topic(&topic, partitions, 1, &[]);
    (kafka::shared().bootstrap().to_owned(), topic)
}

/// Sends records `0..n` of transaction `t` (values only) to `topic`; their futures.
fn send_values(p: &Producer, topic: &str, t: usize, n: usize) -> Vec<SendFuture> {
    (0..n)
        .map(|i| p.send(ProducerRecord::new(topic, value(t, i))))
        .collect()
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

/// Scenario 1: Ten committed transactions of 1,000 records over two topics of three partitions,
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

/// Scenario 2: Committed and aborted transactions interleaved: only the committed ones are visible
/// at read_committed, while read_uncommitted shows that the aborted ones were written.
#[test]
fn aborted_transactions_are_never_visible() {
    let (bs, topic) = shared_topic("txn-abort", 3);
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
    let unsent = send_values(&p, &topic, 99, 50);
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

/// Scenario 3, zombie fencing: a second producer with the same transactional.id fences the first;
/// the first one's commit fails with `Error::Fenced` (and so does any later call), and
/// none of its open transaction ever becomes visible. The new producer goes on.
#[test]
fn a_newer_producer_with_the_same_id_fences_the_older_one() {
    let (bs, topic) = shared_topic("txn-fence", 3);
    let id = unique_topic("txn-fence");
    let zombie = transactional(&bs, &id, &[]);
    zombie.init_transactions().expect("init_transactions");
    zombie.begin_transaction().expect("begin");
    let written = send_values(&zombie, &topic, 1, 300);
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
    let ok = send_values(&successor, &topic, 2, 200);
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
/// the commit, which then finds out why, reports the fencing.
#[test]
fn a_zombie_send_after_the_fencing_fails_and_nothing_becomes_visible() {
    let (bs, topic) = shared_topic("txn-fence-send", 1);
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
    // The send's stale-epoch refusal cannot tell fencing from a timeout; the commit finds
    // out (its abort comes back PRODUCER_FENCED) and reports the fencing.
    let commit = zombie.commit_transaction();
    assert!(
        matches!(commit, Err(Error::Fenced(_))),
        "the zombie's commit: {commit:?}"
    );
    assert!(matches!(zombie.abort_transaction(), Err(Error::Fenced(_))));
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

/// Scenario 7: Misuse: each a clear typed error, and the producer goes on as if it never happened.
#[test]
fn misuse_is_a_typed_error_and_loses_nothing() {
    let (bs, topic) = shared_topic("txn-misuse", 1);
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
    let inside = send_values(&p, &topic, 7, 10);
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

/// Scenario 6: A transaction left open past transaction.timeout.ms is aborted by the broker: the
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
    let id = unique_topic("txn-timeout");
    let mut p = transactional(&bs, &id, &[("transaction.timeout.ms", "2000")]);
    p.init_transactions().expect("init_transactions");
    // The classic protocol, and Kafka 4.0's KIP-890 coordinator (it answers a commit after
    // its own timeout abort with PRODUCER_FENCED; 4.1 and later with INVALID_TXN_STATE),
    // cannot tell the timeout from fencing: the producer ends fenced, as Java's does.
    let classic = transaction_version(&bs) < 2 || cluster.version().starts_with("4.0.");
    for (round, next_call) in ["commit", "send"].into_iter().enumerate() {
        p.begin_transaction().expect("begin");
        let stale = send_values(&p, &topic, round * 2, 100);
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
        if classic {
            // The classic protocol cannot tell a timed-out transaction from a fenced
            // producer: the coordinator bumped the epoch either way, and Java's producer
            // ends with ProducerFencedException too. A new producer goes on.
            assert!(
                matches!(
                    reported,
                    Err(Error::Fenced(_) | Error::TransactionAbortable(_))
                ),
                "the call after the timeout ({next_call}): {reported:?}"
            );
            if let Err(Error::TransactionAbortable(_)) = reported {
                let abort = p.abort_transaction();
                assert!(matches!(abort, Err(Error::Fenced(_))), "{abort:?}");
            }
            eprintln!("timeout on the classic protocol: {reported:?}; a new producer takes over");
            p = transactional(&bs, &id, &[("transaction.timeout.ms", "2000")]);
            p.init_transactions()
                .expect("the new producer's init_transactions");
            p.begin_transaction().expect("begin");
            let fresh = send_values(&p, &topic, round * 2 + 1, 100);
            p.commit_transaction().expect("the new transaction commits");
            for f in fresh {
                f.wait().expect("committed");
            }
            continue;
        }
        assert!(
            matches!(reported, Err(Error::TransactionAbortable(_))),
            "the call after the timeout ({next_call}): {reported:?}"
        );
        p.abort_transaction().expect("the abort after the broker's");
        p.begin_transaction().expect("a new transaction");
        let fresh = send_values(&p, &topic, round * 2 + 1, 100);
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

/// The three-node cluster of the failover tests, started on first use; they take turns.
fn three_nodes() -> MutexGuard<'static, KafkaCluster> {
    static CLUSTER: OnceLock<Mutex<KafkaCluster>> = OnceLock::new();
    let mut k = CLUSTER
        .get_or_init(|| Mutex::new(KafkaCluster::start(ClusterOptions::nodes(3))))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    k.restart_stopped(); // a test that failed half-way may have left a node down
    k
}

/// The `transaction.version` the cluster at `bootstrap` finalized (0 before Kafka 4.0).
fn transaction_version(bootstrap: &str) -> i16 {
    let first = bootstrap.split(',').next().expect("an address");
    let client = BlockingClient::connect(first, &ConnectionConfig::default()).expect("connect");
    client
        .connection()
        .api_versions()
        .finalized_level(TRANSACTION_VERSION_FEATURE)
}

/// The node coordinating transactional id `id`, as a broker answers FindCoordinator.
fn transaction_coordinator(bootstrap: &str, id: &str) -> i32 {
    let deadline = Instant::now() + Duration::from_secs(60);
    for address in bootstrap.split(',').cycle() {
        let answer =
            BlockingClient::connect(address, &ConnectionConfig::default()).and_then(|mut c| {
                let request = FindCoordinatorRequest::single(CoordinatorType::TRANSACTION, id);
                c.request(&request, Duration::from_secs(10))
            });
        match &answer {
            Ok(r) => {
                if let Some(c) = r.coordinators.first().filter(|c| c.error_code == 0) {
                    return c.node_id;
                }
            }
            Err(e) => eprintln!("FindCoordinator: {e}"),
        }
        assert!(
            Instant::now() < deadline,
            "no coordinator for {id}: {answer:?}"
        );
        thread::sleep(Duration::from_millis(200));
    }
    unreachable!("the addresses cycle")
}

/// Scenario 4: Coordinator failover: the transaction coordinator's broker is killed (SIGKILL) in
/// the middle of a commit, in two rounds: while the commit flushes the transaction's
/// records, and right when EndTxn goes out. The commit completes (or fails abortably, and
/// the transaction is then aborted and written again), and no partial transaction is ever
/// visible: read_committed shows every record of the committed transactions, once, in
/// order, and nothing of an aborted one.
#[test]
fn a_commit_survives_the_coordinator_being_killed() {
    let mut k = three_nodes();
    let bs = k.bootstrap().to_owned();
    let topic = unique_topic("txn-coord");
    k.create_topic(&topic, 3, 3, &[]);
    let id = unique_topic("txn-coord");
    let p = transactional(&bs, &id, &[("linger.ms", "20")]);
    p.init_transactions().expect("init_transactions");
    let mut expected: HashMap<i32, Vec<Vec<u8>>> = HashMap::new();
    let (mut committed, mut retried) = (0usize, 0usize);
    for (round, flush_first) in [false, true].into_iter().enumerate() {
        let coordinator = transaction_coordinator(&bs, &id);
        let mut attempt = 0;
        loop {
            let t = round * 10 + attempt;
            p.begin_transaction().expect("begin");
            let futures: Vec<_> = (0..5000)
                .map(|i| {
                    let v = value(t, i);
                    (
                        v.clone(),
                        p.send(
                            ProducerRecord::new(topic.as_str(), v)
                                .with_key(format!("k{}", i % 11).into_bytes()),
                        ),
                    )
                })
                .collect();
            if flush_first {
                p.flush().expect("flush");
            }
            let result = thread::scope(|s| {
                let commit = s.spawn(|| p.commit_transaction());
                if attempt == 0 {
                    thread::sleep(Duration::from_millis(if flush_first { 2 } else { 30 }));
                    eprintln!("round {round}: killing coordinator node {coordinator}");
                    k.kill(coordinator);
                }
                commit.join().expect("the commit thread")
            });
            match result {
                Ok(()) => {
                    for (v, f) in futures {
                        let md = f.wait().expect("a committed record");
                        expected.entry(md.partition()).or_default().push(v);
                    }
                    committed += 5000;
                    break;
                }
                Err(Error::TransactionAbortable(cause)) => {
                    eprintln!("round {round}: the commit failed abortably ({cause}); aborting and retrying");
                    p.abort_transaction().expect("abort");
                    retried += 1;
                    attempt += 1;
                    assert!(attempt < 3, "the transaction never committed");
                }
                Err(e) => panic!("round {round}: commit failed with {e}"),
            }
        }
        k.restart(coordinator);
    }
    p.close().expect("close");
    let records = read_committed(&bs, &topic, committed);
    assert_eq!(
        records.len(),
        committed,
        "each committed record once, nothing aborted"
    );
    assert_eq!(
        by_partition(&records),
        expected,
        "in send order per partition"
    );
    eprintln!(
        "coordinator failover: {committed} committed, {retried} transaction(s) retried, {} visible",
        records.len()
    );
}

/// Scenario 5: Leader failover of a data partition inside a transaction: the leader of the
/// partitions being written is killed while the transaction sends; the records are
/// retried to the new leaders and the transaction commits exactly once.
#[test]
fn a_transaction_commits_exactly_once_across_a_leader_failover() {
    let mut k = three_nodes();
    let bs = k.bootstrap().to_owned();
    let topic = unique_topic("txn-leader");
    k.create_topic(&topic, 3, 3, &[]);
    let leaders = k.leaders(&topic);
    let victim = leaders[0].1;
    let id = unique_topic("txn-leader");
    let p = transactional(&bs, &id, &[("linger.ms", "5")]);
    p.init_transactions().expect("init_transactions");
    p.begin_transaction().expect("begin");
    let mut futures = Vec::new();
    let start = Instant::now();
    let mut killed = false;
    for i in 0..30_000 {
        let v = value(5, i);
        futures.push((
            v.clone(),
            p.send(
                ProducerRecord::new(topic.as_str(), v)
                    .with_key(format!("k{}", i % 13).into_bytes()),
            ),
        ));
        if i == 10_000 {
            eprintln!("killing node {victim}, leader of {topic}-0");
            k.kill(victim);
            killed = true;
        }
        if i % 1000 == 0 {
            thread::sleep(Duration::from_millis(20)); // spread the transaction over the failover
        }
    }
    assert!(killed);
    p.commit_transaction()
        .expect("the transaction commits after the failover");
    let mut expected: HashMap<i32, Vec<Vec<u8>>> = HashMap::new();
    for (v, f) in futures {
        let md = f.wait().expect("every record of the committed transaction");
        expected.entry(md.partition()).or_default().push(v);
    }
    eprintln!(
        "leader failover: committed 30000 records in {:?}",
        start.elapsed()
    );
    p.close().expect("close");
    k.restart(victim);
    let records = read_committed(&bs, &topic, 30_000);
    assert_eq!(records.len(), 30_000, "every record once");
    assert_eq!(
        by_partition(&records),
        expected,
        "in send order per partition"
    );
}

/// A record of the transaction that fails before it is buffered (here: larger than
/// max.request.size) would be missing from the commit: the transaction becomes abortable,
/// as in Java, the commit refuses, and after the abort nothing of it is visible.
#[test]
fn a_record_failing_before_it_is_buffered_makes_the_transaction_abortable() {
    let (bs, topic) = shared_topic("txn-too-large", 1);
    let p = transactional(
        &bs,
        &unique_topic("txn-too-large"),
        &[("max.request.size", "2000")],
    );
    p.init_transactions().expect("init_transactions");
    p.begin_transaction().expect("begin");
    let first = p.send(ProducerRecord::new(topic.as_str(), b"first".to_vec()));
    let big = p
        .send(ProducerRecord::new(topic.as_str(), vec![7u8; 5000]))
        .wait();
    assert!(matches!(big, Err(Error::RecordTooLarge { .. })), "{big:?}");
    let third = p
        .send(ProducerRecord::new(topic.as_str(), b"third".to_vec()))
        .wait();
    assert!(
        matches!(&third, Err(Error::TransactionAbortable(cause)) if matches!(**cause, Error::RecordTooLarge { .. })),
        "a send after the failure: {third:?}"
    );
    let commit = p.commit_transaction();
    assert!(
        matches!(commit, Err(Error::TransactionAbortable(_))),
        "{commit:?}"
    );
    p.abort_transaction().expect("abort");
    let _ = first.wait();
    p.begin_transaction().expect("a new transaction");
    p.send(ProducerRecord::new(topic.as_str(), b"after".to_vec()))
        .wait()
        .expect("sent");
    p.commit_transaction().expect("commit");
    p.close().expect("close");
    let records = read_committed(&bs, &topic, 1);
    assert_eq!(records.len(), 1);
    assert_eq!(records[0].value.as_deref(), Some(&b"after"[..]));
}

/// The classic transaction protocol (transaction version 1: AddPartitionsToTxn before a
/// partition's first batch, AddOffsetsToTxn, EndTxn v4 and below) on a node whose cluster
/// finalized transaction.version=1 (Kafka 3.x has nothing else): commits with offsets,
/// aborts (with the epoch bump after a failed record), and fencing.
#[test]
fn the_classic_transaction_protocol_commits_aborts_and_fences() {
    let mut options = ClusterOptions::nodes(1);
    let major: u32 = kafka::distribution()
        .version
        .split('.')
        .next()
        .and_then(|v| v.parse().ok())
        .unwrap_or(4);
    if std::env::var("KAFKA_VERSION").map_or(major, |v| {
        v.split('.')
            .next()
            .and_then(|m| m.parse().ok())
            .unwrap_or(4)
    }) >= 4
    {
        options = options.format_args(&["--feature", "transaction.version=1"]);
    }
    let cluster = KafkaCluster::start(options);
    let bs = cluster.bootstrap().to_owned();
    assert!(
        transaction_version(&bs) < 2,
        "the cluster uses the classic protocol"
    );
    let topics = [unique_topic("txn-v1-a"), unique_topic("txn-v1-b")];
    let input = unique_topic("txn-v1-in");
    for t in topics.iter().chain([&input]) {
        cluster.create_topic(t, 3, 1, &[]);
    }
    let group = unique_topic("txn-v1-group");
    let id = unique_topic("txn-v1");
    let p = transactional(&bs, &id, &[("max.request.size", "4000")]);
    p.init_transactions().expect("init_transactions");
    let mut committed: HashMap<(String, i32), Vec<Vec<u8>>> = HashMap::new();
    let mut n_committed = 0;
    for t in 0..6 {
        p.begin_transaction().expect("begin");
        let futures: Vec<_> = (0..600)
            .map(|i| {
                let topic = topics[i % 2].clone();
                let v = value(t, i);
                let f = p.send(
                    ProducerRecord::new(topic.as_str(), v.clone())
                        .with_key(format!("k{i}").into_bytes()),
                );
                (topic, v, f)
            })
            .collect();
        if t == 3 {
            // A record too large for the request fails the transaction: abort, then go on
            // (the abort bumps the epoch under the classic protocol).
            let big = p
                .send(ProducerRecord::new(topics[0].as_str(), vec![0u8; 8000]))
                .wait();
            assert!(matches!(big, Err(Error::RecordTooLarge { .. })), "{big:?}");
        }
        let offsets: HashMap<TopicPartition, OffsetAndMetadata> = (0..3)
            .map(|part| {
                (
                    TopicPartition::new(input.as_str(), part),
                    OffsetAndMetadata::new(t as i64 * 10 + part as i64),
                )
            })
            .collect();
        let group_md = ConsumerGroupMetadata::new(group.as_str());
        let offsets_sent = p.send_offsets_to_transaction(&offsets, &group_md);
        if t % 3 == 2 || t == 3 {
            if t != 3 {
                offsets_sent.expect("offsets");
            }
            p.abort_transaction().expect("abort");
            for (_, _, f) in futures {
                let _ = f.wait(); // written then aborted, or never sent
            }
            continue;
        }
        offsets_sent.expect("offsets");
        p.commit_transaction().expect("commit");
        for (topic, v, f) in futures {
            let md = f.wait().expect("committed");
            committed
                .entry((topic, md.partition()))
                .or_default()
                .push(v);
        }
        n_committed += 600;
    }
    // Fencing under the classic protocol.
    p.begin_transaction().expect("begin");
    p.send(ProducerRecord::new(topics[0].as_str(), value(90, 0)))
        .wait()
        .expect("written before the fencing");
    let successor = transactional(&bs, &id, &[]);
    successor.init_transactions().expect("the successor's init");
    let commit = p.commit_transaction();
    assert!(
        matches!(commit, Err(Error::Fenced(_))),
        "the zombie's commit: {commit:?}"
    );
    drop(p);
    successor.close().expect("close");
    let mut visible = 0;
    for topic in &topics {
        let want: usize = committed
            .iter()
            .filter(|((t, _), _)| t == topic)
            .map(|(_, v)| v.len())
            .sum();
        let records = read_committed(&bs, topic, want);
        assert_eq!(records.len(), want, "{topic}: committed records only");
        for (partition, values) in by_partition(&records) {
            assert_eq!(
                values,
                committed[&(topic.clone(), partition)],
                "{topic}-{partition}"
            );
        }
        visible += records.len();
    }
    assert_eq!(visible, n_committed);
    let offsets = committed_offsets(&bs, &group, &input, 3);
    assert_eq!(
        offsets,
        vec![40, 41, 42],
        "the last committed transaction's offsets"
    );
    eprintln!("classic protocol: {n_committed} committed, 1800 aborted, {visible} visible, offsets {offsets:?}, zombie fenced");
}

/// Closing with a transaction open aborts it (as Java's close does): nothing of it becomes
/// visible, and the next producer with the same id starts at once instead of waiting for
/// the coordinator to time the transaction out.
#[test]
fn close_aborts_an_open_transaction() {
    let (bs, topic) = shared_topic("txn-close", 2);
    let id = unique_topic("txn-close");
    let p = transactional(&bs, &id, &[("transaction.timeout.ms", "600000")]);
    p.init_transactions().expect("init_transactions");
    p.begin_transaction().expect("begin");
    let open = send_values(&p, &topic, 1, 500);
    p.close().expect("close");
    for f in open {
        match f.wait() {
            Ok(_) | Err(Error::TransactionAborted) => {}
            Err(e) => panic!("a record of the closed transaction: {e}"),
        }
    }
    // An open transaction would hold read_committed readers at its first offset (the last
    // stable offset) for transaction.timeout.ms: a plain record written after it is visible
    // only because the close aborted it.
    let plain = Producer::from_properties([("bootstrap.servers", bs.as_str())]).unwrap();
    for partition in 0..2 {
        plain
            .send(ProducerRecord::new(topic.as_str(), b"plain".to_vec()).with_partition(partition))
            .wait()
            .expect("a plain record");
    }
    plain.close().unwrap();
    let after = read_committed(&bs, &topic, 2);
    assert_eq!(
        after.len(),
        2,
        "the plain records, past the aborted transaction"
    );
    let start = Instant::now();
    let next = transactional(&bs, &id, &[]);
    next.init_transactions().expect("the next producer's init");
    let waited = start.elapsed();
    assert!(waited < Duration::from_secs(30), "init waited {waited:?}");
    next.begin_transaction().expect("begin");
    next.send(ProducerRecord::new(topic.as_str(), value(2, 0)))
        .wait()
        .expect("sent");
    next.commit_transaction().expect("commit");
    next.close().expect("close");
    let records = read_committed(&bs, &topic, 3);
    assert_eq!(records.len(), 3, "nothing of the closed transaction");
    eprintln!("close: 500 records aborted by close, 3 visible after, next init took {waited:?}");
}

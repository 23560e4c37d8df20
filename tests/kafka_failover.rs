//! Failover on a real 3-node Kafka cluster (KRaft, combined broker and controller; topics
//! with replication factor 3 and `min.insync.replicas=2`): the faults a stand-in cannot
//! fake. Each scenario sends 100 000 records from 4 threads over 2 topics × 6 partitions
//! with an idempotent producer and acks=all (the workload of `common::workload`) while a
//! driver thread makes its fault, then reads everything back with the rdkafka consumer and
//! reports per partition: sent, acknowledged, failed, read back, lost, duplicated,
//! reordered. The bar: 0 lost, 0 duplicated, 0 reordered, and 0 failed unless the scenario
//! outlasts delivery.timeout.ms on purpose (scenario 7).
//!
//! The scenarios share one cluster per test binary and take turns on it (a mutex); each
//! starts with every node up and its own fresh topics.
//!
//! 1. SIGKILL the broker leading the most partitions mid-run; restart it 5 s later.
//! 2. Controlled shutdown (SIGTERM) of a broker, restart, then a preferred-leader election.
//! 3. Replica reassignment of one topic while producing (leaders move between brokers).
//! 4. Two of three brokers down (below min ISR, and the controller quorum lost) for 5 s.
//! 5. One broker frozen (SIGSTOP) for 20 s: records of partitions led by the other two keep
//!    completing (p99 latency under 1 s).
//! 6. Partitions added while producing: keyed records follow Java's partitioner for the new
//!    count once the metadata refresh shows it.
//! 7. A topic deleted while producing: its pending records fail with a clear error within
//!    delivery.timeout.ms, later sends to it fail fast, the other topic is unaffected.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use common::checker::{self, Outcome, RunReport};
use common::kafka::{self, ClusterOptions, KafkaCluster};
use common::workload::{
    assert_all_acked, assert_completed_in_send_order, check, drive, key_of, producer, topics,
    Latency, Load, Run, PARTITIONS, PER_THREAD,
};
use kafka_producer::partition::partition_for_key;
use kafka_producer::{Error, ErrorCode, ProducerRecord};

/// How long the senders spread their 100 000 records over.
const PACE: Duration = Duration::from_secs(10);

/// The cluster, started on first use; scenarios take turns on it.
fn cluster() -> MutexGuard<'static, KafkaCluster> {
    static CLUSTER: OnceLock<Mutex<KafkaCluster>> = OnceLock::new();
    let mut k = CLUSTER
        .get_or_init(|| Mutex::new(KafkaCluster::start(ClusterOptions::nodes(3))))
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    // A scenario that failed half-way may have left nodes down.
    k.restart_stopped();
    k
}

/// Two fresh topics of 6 partitions, replication factor 3.
fn create_topics(k: &KafkaCluster, prefix: &str) -> Vec<String> {
    let topics = topics(prefix);
    for t in &topics {
        k.create_topic(t, PARTITIONS, 3, &[]);
    }
    topics
}

/// Node → how many partitions of `topics` it leads.
fn leader_counts(k: &KafkaCluster, topics: &[String]) -> BTreeMap<i32, usize> {
    let mut counts: BTreeMap<i32, usize> = k.node_ids().into_iter().map(|n| (n, 0)).collect();
    for t in topics {
        for (_, leader) in k.leaders(t) {
            *counts.entry(leader).or_default() += 1;
        }
    }
    counts
}

/// The node leading the most partitions of `topics`, among `candidates`.
fn busiest_leader(k: &KafkaCluster, topics: &[String], candidates: &[i32]) -> i32 {
    let counts = leader_counts(k, topics);
    *candidates
        .iter()
        .max_by_key(|n| (counts.get(n).copied().unwrap_or(0), -**n))
        .expect("a candidate")
}

/// The node id of the active controller (the KRaft quorum leader).
fn active_controller(k: &KafkaCluster) -> i32 {
    let out = k.tool(
        "org.apache.kafka.tools.MetadataQuorumCommand",
        &["--bootstrap-server", k.bootstrap(), "describe", "--status"],
    );
    out.lines()
        .find_map(|l| l.trim().strip_prefix("LeaderId:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no LeaderId in:\n{out}"))
}

/// Waits until every partition of `topics` has all its replicas in sync.
fn wait_fully_replicated(k: &KafkaCluster, topics: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    loop {
        let md = k.metadata(&names);
        let lagging: Vec<String> = md
            .topics
            .iter()
            .flat_map(|t| {
                t.partitions
                    .iter()
                    .filter(|p| p.isr_nodes.len() < p.replica_nodes.len() || p.leader_id < 0)
                    .map(move |p| {
                        format!("{}-{}", t.name.as_deref().unwrap_or("?"), p.partition_index)
                    })
            })
            .collect();
        if lagging.is_empty() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "partitions not fully replicated after {timeout:?}: {lagging:?}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// Prints the scenario's line of the failover table.
fn table_row(name: &str, report: &RunReport, took: Duration) {
    let t = report.total;
    eprintln!(
        "FAILOVER {name:<28} sent {:>6} acked {:>6} failed {:>5} read {:>6} lost {} dup {} \
         reordered {} ({took:.1?})",
        t.sent, t.acked, t.failed, t.read_back, t.lost, t.duplicated, t.reordered
    );
}

/// Latency percentiles of `samples` (sorted in place).
fn percentiles(samples: &mut [Duration]) -> (Duration, Duration, Duration) {
    samples.sort_unstable();
    let at = |q: f64| {
        samples
            .get(((samples.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or_default()
    };
    (
        at(0.5),
        at(0.99),
        samples.last().copied().unwrap_or_default(),
    )
}

// ---------------------------------------------------------------------------------------
// Scenarios
// ---------------------------------------------------------------------------------------

/// Scenario 1: the broker leading the most partitions is killed (SIGKILL, no controlled
/// shutdown) 2 s into the run and restarted 5 s later. Its partitions get new leaders once
/// the controller fences it (broker session timeout); requests in flight to it are lost
/// with the connection and retried, and the broker deduplicates nothing it did not write.
#[test]
fn scenario_1_the_busiest_leader_is_killed_and_restarted() {
    let name = "1 kill busiest leader";
    let mut k = cluster();
    let topics = create_topics(&k, "failover-kill");
    let victim = busiest_leader(&k, &topics, &k.node_ids());
    eprintln!(
        "{name}: leaders {:?}; killing node {victim}",
        leader_counts(&k, &topics)
    );
    let producer = producer(k.bootstrap(), &[]);
    let run = Run::new(&topics, PER_THREAD);
    let kc = &mut *k;
    let took = drive(&producer, &run, Load::Paced(PACE), |_| {
        thread::sleep(Duration::from_secs(2));
        kc.kill(victim);
        thread::sleep(Duration::from_secs(5));
        kc.restart(victim);
    });
    let report = check(name, k.bootstrap(), &producer, &run, took);
    table_row(name, &report, took);
    assert_all_acked(&report, &run);
    producer.close().unwrap();
}

/// Scenario 2: a broker shuts down in a controlled way (SIGTERM: it hands its leaderships
/// over first), comes back, catches up, and a preferred-leader election gives it its
/// partitions back, all while producing.
#[test]
fn scenario_2_controlled_shutdown_restart_and_preferred_election() {
    let name = "2 controlled shutdown";
    let mut k = cluster();
    let topics = create_topics(&k, "failover-term");
    let victim = busiest_leader(&k, &topics, &k.node_ids());
    let before = leader_counts(&k, &topics);
    eprintln!("{name}: leaders {before:?}; stopping node {victim}");
    let producer = producer(k.bootstrap(), &[]);
    let run = Run::new(&topics, PER_THREAD);
    let kc = &mut *k;
    let took = drive(&producer, &run, Load::Paced(PACE), |_| {
        thread::sleep(Duration::from_secs(2));
        kc.stop(victim, Duration::from_secs(60));
        eprintln!(
            "{name}: node {victim} stopped; leaders {:?}",
            leader_counts(kc, &topics)
        );
        thread::sleep(Duration::from_secs(2));
        kc.restart(victim);
        wait_fully_replicated(kc, &topics, Duration::from_secs(60));
        kc.tool(
            "org.apache.kafka.tools.LeaderElectionCommand",
            &[
                "--bootstrap-server",
                kc.bootstrap(),
                "--election-type",
                "PREFERRED",
                "--all-topic-partitions",
            ],
        );
        eprintln!(
            "{name}: after the election: leaders {:?}",
            leader_counts(kc, &topics)
        );
    });
    let report = check(name, k.bootstrap(), &producer, &run, took);
    table_row(name, &report, took);
    assert_eq!(
        leader_counts(&k, &topics).get(&victim),
        before.get(&victim),
        "the preferred-leader election gave node {victim} its partitions back"
    );
    assert_all_acked(&report, &run);
    producer.close().unwrap();
}

/// Runs a reassignment (`plan`: partition → replicas of `topic`) and waits until Kafka's
/// tool reports it complete.
fn reassign(k: &KafkaCluster, topic: &str, plan: &[(i32, Vec<i32>)]) {
    let partitions: Vec<String> = plan
        .iter()
        .map(|(p, replicas)| {
            let r: Vec<String> = replicas.iter().map(i32::to_string).collect();
            format!(
                r#"{{"topic":"{topic}","partition":{p},"replicas":[{}]}}"#,
                r.join(",")
            )
        })
        .collect();
    let json = format!(r#"{{"version":1,"partitions":[{}]}}"#, partitions.join(","));
    let file = std::env::temp_dir().join(format!("{}.json", common::unique_topic("reassign")));
    std::fs::write(&file, json).unwrap();
    let file_arg = file.to_string_lossy().into_owned();
    let args = |mode: &'static str| {
        vec![
            "--bootstrap-server".to_owned(),
            k.bootstrap().to_owned(),
            "--reassignment-json-file".to_owned(),
            file_arg.clone(),
            mode.to_owned(),
        ]
    };
    let run = |mode: &'static str| {
        let a = args(mode);
        let a: Vec<&str> = a.iter().map(String::as_str).collect();
        k.tool(
            "org.apache.kafka.tools.reassign.ReassignPartitionsCommand",
            &a,
        )
    };
    run("--execute");
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let out = run("--verify");
        if !out.contains("still in progress") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "reassignment still running:\n{out}"
        );
        thread::sleep(Duration::from_millis(500));
    }
    let _ = std::fs::remove_file(file);
}

/// Scenario 3: topic 0's partitions move while producing: first each partition drops its
/// current leader from its replicas (so every leader moves), then each gets three replicas
/// again in a rotated order (the dropped broker copies the partition back), and a preferred
/// election makes the new first replica the leader.
#[test]
fn scenario_3_replica_reassignment_while_producing() {
    let name = "3 reassignment";
    let k = cluster();
    let topics = create_topics(&k, "failover-move");
    let producer = producer(k.bootstrap(), &[]);
    let run = Run::new(&topics, PER_THREAD);
    let topic = topics[0].clone();
    let before = k.leaders(&topic);
    let dropped: Mutex<Vec<(i32, i32)>> = Mutex::new(Vec::new());
    let took = drive(&producer, &run, Load::Paced(PACE), |_| {
        thread::sleep(Duration::from_secs(2));
        let md = k.metadata(&[&topic]);
        let shrink: Vec<(i32, Vec<i32>)> = md.topics[0]
            .partitions
            .iter()
            .map(|p| {
                let rest = p
                    .replica_nodes
                    .iter()
                    .copied()
                    .filter(|&r| r != p.leader_id)
                    .collect();
                (p.partition_index, rest)
            })
            .collect();
        reassign(&k, &topic, &shrink);
        *dropped.lock().unwrap() = k.leaders(&topic);
        // Back to three replicas, the dropped leader last: the preferred leader (the first
        // replica) is then another broker than at the start.
        let grow: Vec<(i32, Vec<i32>)> = shrink
            .iter()
            .zip(&md.topics[0].partitions)
            .map(|((p, rest), old)| {
                let mut replicas = rest.clone();
                replicas.push(old.leader_id);
                (*p, replicas)
            })
            .collect();
        reassign(&k, &topic, &grow);
        wait_fully_replicated(&k, &topics, Duration::from_secs(60));
        k.tool(
            "org.apache.kafka.tools.LeaderElectionCommand",
            &[
                "--bootstrap-server",
                k.bootstrap(),
                "--election-type",
                "PREFERRED",
                "--all-topic-partitions",
            ],
        );
    });
    let after = k.leaders(&topic);
    let dropped = dropped.into_inner().unwrap();
    eprintln!(
        "{name}: leaders of {topic}: before {before:?}, with the leaders dropped {dropped:?}, \
         after {after:?}"
    );
    let report = check(name, k.bootstrap(), &producer, &run, took);
    table_row(name, &report, took);
    for (stage, leaders) in [
        ("dropping the leaders", &dropped),
        ("the reassignment", &after),
    ] {
        let unmoved: Vec<_> = before
            .iter()
            .zip(leaders)
            .filter(|(b, a)| b.1 == a.1)
            .collect();
        assert!(
            unmoved.is_empty(),
            "leaders that {stage} did not move: {unmoved:?}"
        );
    }
    assert_all_acked(&report, &run);
    producer.close().unwrap();
}

/// Scenario 4: two of the three brokers are killed for 5 s. Fewer replicas than
/// `min.insync.replicas` remain (and the controller quorum is lost), so no acks=all write
/// can complete: the producer retries (NOT_ENOUGH_REPLICAS, timeouts, lost connections)
/// until the brokers are back, within delivery.timeout.ms, and loses nothing.
#[test]
fn scenario_4_two_of_three_brokers_down_for_5s() {
    let name = "4 two brokers down";
    let mut k = cluster();
    let topics = create_topics(&k, "failover-minisr");
    let down: Vec<i32> = k.node_ids().into_iter().skip(1).collect();
    let producer = producer(k.bootstrap(), &[]);
    let run = Run::new(&topics, PER_THREAD);
    let kc = &mut *k;
    let took = drive(&producer, &run, Load::Paced(PACE), |_| {
        thread::sleep(Duration::from_secs(2));
        for &n in &down {
            kc.kill(n);
        }
        thread::sleep(Duration::from_secs(5));
        kc.restart_all(&down);
    });
    let report = check(name, k.bootstrap(), &producer, &run, took);
    table_row(name, &report, took);
    assert_all_acked(&report, &run);
    producer.close().unwrap();
}

/// Scenario 5: one broker (not the active controller) is frozen with SIGSTOP for 20 s while
/// 20 000 records/s flow. Its partitions stall until it thaws; records of the partitions the
/// two healthy brokers lead must keep completing: their p99 latency during the freeze stays
/// under 1 s.
///
/// What this isolates is the client: a request to the frozen broker must not delay requests
/// to the others. Two choices make that measurable:
/// - These topics have replication factor 2 (`min.insync.replicas=2`), and the healthy
///   brokers' partitions are replicated on the two healthy brokers only (Kafka wants one
///   replication factor per topic). With the frozen broker in their ISR, acks=all writes to *every*
///   partition stall on the broker side until the controller fences it and shrinks the ISR
///   (`broker.session.timeout.ms`, 9 s): measured 7.3 s p99 that way, whatever the client.
/// - linger.ms=200 and batch.size=128 KiB make each request ~130 KB, so the five requests
///   in flight to the frozen broker overflow the socket buffers (the client's send buffer
///   and the frozen broker's receive buffer, ~450 KB on loopback). A sender that wrote
///   requests itself then blocked in that write, and every broker stalled with it.
#[test]
fn scenario_5_a_frozen_broker_does_not_stall_the_others() {
    let name = "5 frozen broker";
    let k = cluster();
    let controller = active_controller(&k);
    let victim = k.node_ids().into_iter().find(|&n| n != controller).unwrap();
    let healthy: Vec<i32> = k.node_ids().into_iter().filter(|&n| n != victim).collect();
    let (a, b) = (healthy[0], healthy[1]);
    let assignment: Vec<Vec<i32>> = (0..PARTITIONS)
        .map(|p| match p % 3 {
            0 => vec![victim, a],
            1 => vec![a, b],
            _ => vec![b, a],
        })
        .collect();
    let topics = topics("failover-freeze");
    for t in &topics {
        k.create_topic_assigned(t, &assignment, &[]);
    }
    eprintln!(
        "{name}: controller {controller}; freezing node {victim}, which leads {:?}",
        leader_counts(&k, &topics).get(&victim)
    );
    let producer = producer(
        k.bootstrap(),
        &[("linger.ms", "200"), ("batch.size", "131072")],
    );
    let run = Run::new(&topics, 0);
    let window: Mutex<Option<(Instant, Instant)>> = Mutex::new(None);
    let freeze = Duration::from_secs(20);
    let took = drive(&producer, &run, Load::Until { per_second: 5_000 }, |_| {
        thread::sleep(Duration::from_secs(3));
        let frozen = k.freeze(victim);
        let start = Instant::now();
        thread::sleep(freeze);
        frozen.thaw();
        *window.lock().unwrap() = Some((start, Instant::now()));
        thread::sleep(Duration::from_secs(2));
    });
    let (start, end) = window.lock().unwrap().expect("the freeze happened");
    let latencies = run.latencies.lock().unwrap().clone();
    let during = |l: &&Latency| l.sent_at >= start && l.sent_at < end && l.acked;
    let frozen_led = |l: &&Latency| l.partition % 3 == 0;
    let mut healthy: Vec<Duration> = latencies
        .iter()
        .filter(during)
        .filter(|l| !frozen_led(l))
        .map(|l| l.took)
        .collect();
    let mut stalled: Vec<Duration> = latencies
        .iter()
        .filter(during)
        .filter(frozen_led)
        .map(|l| l.took)
        .collect();
    let (h50, h99, hmax) = percentiles(&mut healthy);
    let (f50, f99, fmax) = percentiles(&mut stalled);
    eprintln!(
        "{name}: during the {freeze:?} freeze: {} records to partitions led by healthy \
         brokers: p50 {h50:?} p99 {h99:?} max {hmax:?}; {} to the frozen broker's: p50 \
         {f50:?} p99 {f99:?} max {fmax:?}",
        healthy.len(),
        stalled.len()
    );
    let report = check(name, k.bootstrap(), &producer, &run, took);
    table_row(name, &report, took);
    eprintln!("FAILOVER frozen broker: healthy partitions p50 {h50:?} p99 {h99:?} max {hmax:?}");
    assert_all_acked(&report, &run);
    assert!(healthy.len() > 10_000, "too few records during the freeze");
    assert!(
        h99 < Duration::from_secs(1),
        "records of healthy brokers' partitions: p99 {h99:?} during the freeze"
    );
    producer.close().unwrap();
}

/// Scenario 6: topic 0 grows from 6 to 12 partitions 3 s into the run. The producer sees
/// the new count at its next metadata refresh (metadata.max.age.ms=1000 here; Java's
/// default is 5 minutes): from then on keyed records go where Java's partitioner sends
/// them for 12 partitions, and the new partitions get records.
#[test]
fn scenario_6_partitions_added_while_producing() {
    let name = "6 partitions added";
    let k = cluster();
    let topics = create_topics(&k, "failover-grow");
    let producer = producer(k.bootstrap(), &[("metadata.max.age.ms", "1000")]);
    let run = Run::new(&topics, PER_THREAD);
    let grown_at: Mutex<Option<Instant>> = Mutex::new(None);
    let took = drive(&producer, &run, Load::Paced(PACE), |_| {
        thread::sleep(Duration::from_secs(3));
        kafka::create_partitions(k.bootstrap(), &topics[0], 12);
        *grown_at.lock().unwrap() = Some(Instant::now());
        k.wait_for_topic(&topics[0], 12);
    });
    let grown_at = grown_at.lock().unwrap().expect("partitions were added");
    let report = check(name, k.bootstrap(), &producer, &run, took);
    table_row(name, &report, took);
    // Every keyed record of topic 0 went to its key's partition for 6 or for 12 partitions,
    // and for 12 once the refresh (at most a second, plus the retry backoff) had passed.
    let settled = grown_at + Duration::from_secs(3);
    let mut per_new_partition: BTreeMap<i32, usize> = BTreeMap::new();
    let mut wrong = Vec::new();
    for l in run.latencies.lock().unwrap().iter().filter(|l| l.acked) {
        if l.partition >= PARTITIONS {
            *per_new_partition.entry(l.partition).or_default() += 1;
        }
        let Some(key) = key_of(l.thread, l.seq) else {
            continue;
        };
        let (p6, p12) = (partition_for_key(&key, 6), partition_for_key(&key, 12));
        let ok = if l.topic == 1 {
            l.partition == p6
        } else if l.sent_at >= settled {
            l.partition == p12
        } else {
            l.partition == p6 || l.partition == p12
        };
        if !ok {
            wrong.push((l.topic, l.thread, l.seq, l.partition, p6, p12));
        }
    }
    eprintln!("{name}: records on the new partitions: {per_new_partition:?}");
    assert!(
        wrong.is_empty(),
        "{} keyed records misplaced, e.g. {:?}",
        wrong.len(),
        &wrong[..wrong.len().min(5)]
    );
    assert_eq!(
        per_new_partition.len(),
        6,
        "every new partition got records"
    );
    assert!(run.failures.lock().unwrap().is_empty(), "records failed");
    assert_eq!(run.ledgers.pending(), 0);
    assert_completed_in_send_order(&run);
    let t = report.total;
    assert_eq!(
        (t.lost, t.duplicated, t.reordered, t.unexpected, t.acked),
        (0, 0, 0, 0, t.sent),
        "{t}"
    );
    producer.close().unwrap();
}

/// Scenario 7: topic 1 is deleted 3 s into the run. Every record of it still pending
/// completes with an error that names the cause (no hang) within delivery.timeout.ms
/// (20 s here), later sends to it fail fast, and topic 0 gets everything.
#[test]
fn scenario_7_a_topic_deleted_while_producing() {
    let name = "7 topic deleted";
    let k = cluster();
    let topics = create_topics(&k, "failover-delete");
    let delivery_timeout = Duration::from_secs(20);
    let producer = producer(
        k.bootstrap(),
        &[
            ("delivery.timeout.ms", "20000"),
            ("request.timeout.ms", "10000"),
            ("max.block.ms", "10000"),
        ],
    );
    let run = Run::new(&topics, PER_THREAD);
    let deleted_at: Mutex<Option<Instant>> = Mutex::new(None);
    let took = drive(&producer, &run, Load::Paced(PACE), |_| {
        thread::sleep(Duration::from_secs(3));
        kafka::delete_topic(k.bootstrap(), &topics[1]);
        *deleted_at.lock().unwrap() = Some(Instant::now());
    });
    assert!(
        deleted_at.lock().unwrap().is_some(),
        "the topic was deleted"
    );
    assert_eq!(run.ledgers.pending(), 0, "records without a result");
    // Later sends fail fast.
    let started = Instant::now();
    let late = producer
        .send(ProducerRecord::new(topics[1].as_str(), b"late".to_vec()))
        .wait();
    let late_took = started.elapsed();
    eprintln!("{name}: a send after the deletion: {late:?} after {late_took:?}");
    // Every failure is topic 1's, with a clear error, within the delivery timeout.
    let failures = run.failures.lock().unwrap();
    let mut by_error: BTreeMap<String, usize> = BTreeMap::new();
    for f in failures.iter() {
        assert_eq!(f.topic, 1, "a record of the surviving topic failed: {f:?}");
        let label = match &f.error {
            Error::Broker { code, .. } => code.name().to_owned(),
            other => format!("{other:?}")
                .split(' ')
                .next()
                .unwrap_or("?")
                .to_owned(),
        };
        *by_error.entry(label).or_default() += 1;
    }
    drop(failures);
    let latest = run
        .latencies
        .lock()
        .unwrap()
        .iter()
        .filter(|l| !l.acked)
        .map(|l| l.took)
        .max()
        .unwrap_or_default();
    eprintln!("{name}: failures by error {by_error:?}; the slowest took {latest:?}");
    assert!(
        latest <= delivery_timeout + Duration::from_secs(2),
        "a record of the deleted topic took {latest:?} to fail"
    );
    assert!(
        matches!(
            &late,
            Err(Error::Broker {
                code: ErrorCode::UnknownTopicOrPartition,
                message: Some(m),
            }) if m.contains("deleted")
        ),
        "{late:?}"
    );
    assert!(
        by_error
            .keys()
            .all(|e| e == "UNKNOWN_TOPIC_OR_PARTITION" || e == "DeliveryTimeout"),
        "every failure names the deletion (or the delivery timeout): {by_error:?}"
    );
    // Topic 0's callbacks ran in send order. (Topic 1's cannot: once the producer knows
    // the topic is gone, a send fails before it is buffered, as a metadata failure does
    // in Java, while records buffered before still wait for their turn to fail.)
    let mut last: HashMap<(usize, i32), usize> = HashMap::new();
    for &(k, t, p, seq) in run.completions.lock().unwrap().iter() {
        if k == 0 {
            let prev = last.insert((t, p), seq);
            assert!(
                prev.is_none_or(|prev| prev < seq),
                "topic 0 thread {t} partition {p}: seq {seq} after {prev:?}"
            );
        }
    }
    assert!(
        late_took < Duration::from_secs(1),
        "a send to the deleted topic took {late_took:?}"
    );
    // Topic 0 (the one not deleted) lost nothing.
    let acked0 = run.ledgers.ledger(0).count(Outcome::Acked);
    let read0 =
        common::read_back_within(k.bootstrap(), &topics[0], acked0, Duration::from_secs(120));
    let report0 = checker::check(&run.ledgers.ledger(0).sends(), &read0);
    report0.print(&format!("{name}: t0"));
    let t0 = report0.total;
    eprintln!(
        "FAILOVER {name:<28} t0: sent {} acked {} failed {} lost {} dup {} reordered {}; t1 \
         (deleted): {} failed within {latest:?} ({took:.1?})",
        t0.sent,
        t0.acked,
        t0.failed,
        t0.lost,
        t0.duplicated,
        t0.reordered,
        run.ledgers.ledger(1).count(Outcome::Failed)
    );
    assert_eq!(
        (
            t0.failed,
            t0.lost,
            t0.duplicated,
            t0.reordered,
            t0.unexpected,
            t0.acked
        ),
        (0, 0, 0, 0, 0, t0.sent),
        "topic 0: {t0}"
    );
    producer.close().unwrap();
}

//! The long soak on a real 3-node Kafka cluster (issue 15): for `SOAK_SECS` (30 s by
//! default, and at least one fault of each kind: about 75 s; minutes to hours when set)
//! 4 threads offer a paced 2 000 records/s of 100-byte values over 2 topics × 6 partitions
//! (replication factor 3, `min.insync.replicas=2`, retention off so the broker deletes
//! nothing during the run) while a seeded driver makes the faults a real cluster and a
//! proxy in front of it make, one at a time and in turn:
//!
//! - **kill**: SIGKILL a node (the one leading the most partitions), restart it 2–6 s later;
//! - **controlled shutdown**: SIGTERM a node (its leaderships move first), restart it 2–6 s
//!   after it exited;
//! - **freeze**: SIGSTOP a node for 2–6 s (below the 9 s broker session timeout, so the
//!   controller does not fence it: every acks=all write it replicates waits for it);
//! - **cut**: the node's proxy cuts the connection after the node answered a Produce request
//!   (the retry is a batch the node already wrote: idempotence must deduplicate it);
//! - **held response**: the node's proxy holds a Produce response 6 s, past
//!   request.timeout.ms (5 s), so the producer gives up on the connection and retries.
//!
//! Clients reach every node through its own proxy (`common::proxy`, one per node, each
//! rewriting Metadata responses to name the proxy of each node); the test bed and the reader
//! talk to the nodes directly.
//!
//! After each fault the driver waits until every partition is fully replicated again and
//! then lets the load run quietly for [`CALM`], so that the next fault starts from a steady
//! state and the recovery of this one can be measured.
//!
//! The oracle is the strict one: no fault outlasts delivery.timeout.ms (30 s; the longest
//! stall is a kill: up to 6 s down plus the restart and the leader elections, well under
//! it), so every record must be acknowledged; nothing acknowledged is lost, duplicated or
//! reordered (the checker reads both topics back with the rdkafka consumer), and callbacks
//! run in send order per partition. A load the cluster cannot carry would show as
//! back-pressure: the senders time every `send_with_callback` call and the run prints the
//! longest block and how far the senders fell behind their schedule, next to the offered and
//! delivered rates.
//!
//! Recovery: acknowledgements are bucketed per [`BUCKET`] (by the instant their callback
//! ran); the rate before a fault is the mean over the [`BASELINE`] before it, and the
//! recovery time is from the fault's end (the node restarted and answering, thawed, the
//! connection cut, or the held response returned) to
//! the end of the first bucket whose rate is back to 90 % of it.
//!
//! `librdkafka_under_the_soak_schedule_for_comparison` (ignored by default) runs librdkafka
//! with the same load under the same schedule and prints the same figures.
//!
//! Disk: at 2 000 records/s a 30-minute run writes about 3.6 M records, about 0.6 GB per
//! replica (1.8 GB in all), removed when the cluster drops. Every node is stopped by the
//! cluster's `Drop` (a frozen node's guard continues it first, and the wrapper SIGKILLs the
//! JVM in any case), also when the test fails.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::sync::Mutex;
use std::thread;
use std::time::{Duration, Instant};

use common::checker;
use common::kafka::{ClusterOptions, KafkaCluster};
use common::proxy::{ProduceDelay, Proxy};
use common::workload::{
    assert_all_acked, check, key_of, producer, send_one, topics, Rng, Run, PARTITIONS, THREADS,
    TOPICS, VALUE_SIZE,
};
use kafka_producer::Producer;
use rdkafka::config::ClientConfig;
use rdkafka::error::KafkaError;
use rdkafka::producer::{
    BaseRecord, DeliveryResult, Producer as _, ProducerContext, ThreadedProducer,
};
use rdkafka::ClientContext;

/// Records per second per sending thread (4 threads: 2 000 records/s).
const RATE: u64 = 500;
/// How long the load runs quietly after a fault has healed, before the next one.
const CALM: Duration = Duration::from_secs(6);
/// The width of the buckets acknowledgements are counted in.
const BUCKET: Duration = Duration::from_millis(250);
/// How long before a fault its baseline rate is measured over.
const BASELINE: Duration = Duration::from_secs(4);
/// The producer: delivery.timeout.ms 30 s (request.timeout.ms 5 s fits under it with the
/// linger), acks=all and idempotence by default.
const PRODUCER: [(&str, &str); 3] = [
    ("delivery.timeout.ms", "30000"),
    ("request.timeout.ms", "5000"),
    ("max.block.ms", "60000"),
];

/// How long the soak makes faults: `SOAK_SECS`, 30 s by default (at least one fault of each
/// kind is made, so the default run lasts about 75 s, about 35 s of it under faults).
fn soak_duration() -> Duration {
    let secs = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    Duration::from_secs(secs)
}

// ---------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------

/// The kinds of fault, made in turn.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FaultKind {
    Kill,
    ControlledShutdown,
    Freeze,
    /// The node's proxy cuts the connection after the node answered a Produce request.
    Cut,
    /// The node's proxy holds a Produce response past request.timeout.ms.
    HeldResponse,
}

const KINDS: [FaultKind; 5] = [
    FaultKind::Kill,
    FaultKind::Cut,
    FaultKind::ControlledShutdown,
    FaultKind::HeldResponse,
    FaultKind::Freeze,
];

/// How long a proxy holds a Produce response: past request.timeout.ms (5 s).
const HOLD: Duration = Duration::from_secs(6);

/// The cluster under test and the proxy in front of each node (by node id).
struct Bed {
    k: KafkaCluster,
    proxies: BTreeMap<i32, Proxy>,
}

impl Bed {
    /// What clients bootstrap from: every node's proxy.
    fn bootstrap(&self) -> String {
        let all: Vec<String> = self.proxies.values().map(Proxy::bootstrap).collect();
        all.join(",")
    }
}

/// One fault the driver made: from `start` until `end` (the node answering again, or
/// thawed).
#[derive(Debug, Clone, Copy)]
struct Fault {
    kind: FaultKind,
    node: i32,
    start: Instant,
    end: Instant,
    /// False for a proxy fault that never fired (no Produce request came through it).
    fired: bool,
}

/// The node leading the most partitions of `topics` (the lowest id on ties).
fn busiest_leader(k: &KafkaCluster, topics: &[String]) -> i32 {
    let mut counts = BTreeMap::new();
    for t in topics {
        for (_, leader) in k.leaders(t) {
            *counts.entry(leader).or_insert(0usize) += 1;
        }
    }
    counts
        .into_iter()
        .filter(|&(node, _)| node >= 0)
        .max_by_key(|&(node, n)| (n, -node))
        .map_or(1, |(node, _)| node)
}

/// Makes one fault of `kind` on `node`, held for `hold` (the proxy's faults last until they
/// fired), and returns when it ended.
fn make_fault(bed: &mut Bed, kind: FaultKind, node: i32, hold: Duration) -> Fault {
    let start = Instant::now();
    let mut fired = true;
    let k = &mut bed.k;
    let proxy = &bed.proxies[&node];
    match kind {
        FaultKind::Cut => {
            let cuts = proxy.cuts();
            let n = proxy.produce_count() + 1;
            proxy.update_script(|s| s.cut_after_produce = Some(n));
            fired = wait_for(|| proxy.cuts() > cuts);
            proxy.update_script(|s| s.cut_after_produce = None);
        }
        FaultKind::HeldResponse => {
            let held = proxy.delayed_responses();
            proxy.update_script(|s| {
                s.delay_produce = Some(ProduceDelay {
                    every: 1,
                    delay: HOLD,
                    times: Some(1),
                })
            });
            fired = wait_for(|| proxy.delayed_responses() > held);
            proxy.update_script(|s| s.delay_produce = None);
            if fired {
                thread::sleep(HOLD);
            }
        }
        FaultKind::Kill => {
            k.kill(node);
            thread::sleep(hold);
            k.restart(node);
        }
        FaultKind::ControlledShutdown => {
            k.stop(node, Duration::from_secs(60));
            thread::sleep(hold);
            k.restart(node);
        }
        FaultKind::Freeze => {
            let frozen = k.freeze(node);
            thread::sleep(hold);
            frozen.thaw();
        }
    }
    Fault {
        kind,
        node,
        start,
        end: Instant::now(),
        fired,
    }
}

/// Waits up to 10 s for `fired` (a proxy's one-shot fault to fire); says whether it did.
fn wait_for(fired: impl Fn() -> bool) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !fired() {
        if Instant::now() >= deadline {
            eprintln!("soak: a proxy fault never fired");
            return false;
        }
        thread::sleep(Duration::from_millis(5));
    }
    true
}

/// Waits until every partition of `topics` has all its replicas in sync and a leader.
fn wait_fully_replicated(k: &KafkaCluster, topics: &[String], timeout: Duration) {
    let deadline = Instant::now() + timeout;
    let names: Vec<&str> = topics.iter().map(String::as_str).collect();
    loop {
        let md = k.metadata(&names);
        let healthy = md.topics.iter().all(|t| {
            t.partitions
                .iter()
                .all(|p| p.leader_id >= 0 && p.isr_nodes.len() == p.replica_nodes.len())
        });
        if healthy {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "partitions not fully replicated after {timeout:?}"
        );
        thread::sleep(Duration::from_millis(250));
    }
}

/// The fault driver: a calm start, then faults in turn (each followed by full replication
/// and [`CALM`]) until `soak` has passed; at least one of each kind. Gives up early when
/// `stop` is set (a sender panicked), so that a failing long soak fails at once.
fn drive_faults(
    bed: &mut Bed,
    topics: &[String],
    soak: Duration,
    rng: &mut Rng,
    stop: &AtomicBool,
) -> Vec<Fault> {
    let start = Instant::now();
    let mut faults = Vec::new();
    thread::sleep(CALM);
    while (start.elapsed() < soak || faults.len() < KINDS.len()) && !stop.load(Ordering::SeqCst) {
        let kind = KINDS[faults.len() % KINDS.len()];
        let node = busiest_leader(&bed.k, topics);
        let hold = rng.between(Duration::from_secs(2), Duration::from_secs(6));
        eprintln!(
            "soak +{:.1?}: {kind:?} node {node} for {hold:.1?}",
            start.elapsed()
        );
        let fault = make_fault(bed, kind, node, hold);
        eprintln!(
            "soak +{:.1?}: {kind:?} node {node} over after {:.1?}",
            start.elapsed(),
            fault.end - fault.start
        );
        faults.push(fault);
        wait_fully_replicated(&bed.k, topics, Duration::from_secs(120));
        thread::sleep(CALM);
    }
    faults
}

// ---------------------------------------------------------------------------------------
// The paced load, with its blocking measured
// ---------------------------------------------------------------------------------------

/// How the senders' `send_with_callback` calls blocked.
#[derive(Debug, Default)]
struct Blocking {
    /// The longest single call, in µs.
    longest_us: AtomicU64,
    /// Calls that took over 10 ms.
    slow_calls: AtomicU64,
    /// The furthest any sender fell behind its schedule, in µs.
    behind_us: AtomicU64,
}

/// One sending thread: `RATE` records/s alternating topics, paced every 50 records against
/// an absolute schedule (so blocking shows as lag, and is made up afterwards), until
/// `run.stop`.
fn paced_sender(producer: &Producer, run: &Arc<Run>, t: usize, blocking: &Blocking) {
    let start = Instant::now();
    for i in 0usize.. {
        if i % 50 == 0 {
            if run.stop.load(Ordering::SeqCst) {
                return;
            }
            let due = start + Duration::from_secs_f64(i as f64 / RATE as f64);
            let now = Instant::now();
            thread::sleep(due.saturating_duration_since(now));
            let behind = now.saturating_duration_since(due).as_micros() as u64;
            blocking.behind_us.fetch_max(behind, Ordering::Relaxed);
        }
        let k = i % TOPICS;
        let seq = run.ledgers.ledger(k).push(t);
        let called = Instant::now();
        send_one(producer, run, t, k, seq);
        let took = called.elapsed();
        let us = took.as_micros() as u64;
        blocking.longest_us.fetch_max(us, Ordering::Relaxed);
        if took > Duration::from_millis(10) {
            blocking.slow_calls.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Sets the flag when dropped, also on a panic, so the senders never outlive the driver.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// Runs `send(thread)` on [`THREADS`] threads (each until `stop` is set) while the driver
/// makes faults for `soak`; sets `stop` when the driver is done (or panics). Returns the
/// faults and how long the senders ran.
fn under_faults<S>(
    bed: &mut Bed,
    topics: &[String],
    soak: Duration,
    rng: &mut Rng,
    stop: &AtomicBool,
    send: S,
) -> (Vec<Fault>, Duration)
where
    S: Fn(usize) + Sync,
{
    let origin = Instant::now();
    thread::scope(|s| {
        let driver = s.spawn(move || {
            let _stop = StopOnDrop(stop);
            drive_faults(bed, topics, soak, rng, stop)
        });
        thread::scope(|senders| {
            for t in 0..THREADS {
                let send = &send;
                senders.spawn(move || {
                    // Ends the driver's schedule early if this sender panics.
                    let _stop = StopOnDrop(stop);
                    send(t)
                });
            }
        });
        let sending = origin.elapsed();
        let faults = driver.join().expect("the fault driver panicked");
        (faults, sending)
    })
}

// ---------------------------------------------------------------------------------------
// Rates and recovery
// ---------------------------------------------------------------------------------------

/// Acknowledgements per [`BUCKET`] from `origin`.
struct Rates {
    origin: Instant,
    buckets: Vec<u64>,
}

impl Rates {
    /// Buckets our producer's acknowledgements (send instant plus time to callback).
    fn of(run: &Run, origin: Instant) -> Rates {
        let latencies = run.latencies.lock().unwrap();
        let acks = latencies
            .iter()
            .filter(|l| l.acked)
            .map(|l| l.sent_at + l.took);
        Rates::bucket(acks, origin)
    }

    /// Buckets acknowledgement instants.
    fn bucket(acks: impl Iterator<Item = Instant>, origin: Instant) -> Rates {
        let mut buckets = Vec::new();
        for ack in acks {
            let at = ack.saturating_duration_since(origin);
            let i = (at.as_nanos() / BUCKET.as_nanos()) as usize;
            if buckets.len() <= i {
                buckets.resize(i + 1, 0);
            }
            buckets[i] += 1;
        }
        Rates { origin, buckets }
    }

    fn index(&self, at: Instant) -> usize {
        (at.saturating_duration_since(self.origin).as_nanos() / BUCKET.as_nanos()) as usize
    }

    /// Acknowledgements per second over `from..to`.
    fn rate(&self, from: Instant, to: Instant) -> f64 {
        let (a, b) = (self.index(from), self.index(to).min(self.buckets.len()));
        let n: u64 = self.buckets.get(a..b).map_or(0, |s| s.iter().sum());
        n as f64 / (BUCKET.as_secs_f64() * (b.saturating_sub(a)).max(1) as f64)
    }

    /// From `fault.end` to the end of the first bucket (starting no earlier than the one
    /// holding `fault.end`) whose rate is 90 % of the baseline; `None` if it never is.
    fn recovery(&self, fault: &Fault, baseline: f64) -> Option<Duration> {
        let first = self.index(fault.end);
        let per_bucket = baseline * BUCKET.as_secs_f64();
        let i =
            (first..self.buckets.len()).find(|&i| self.buckets[i] as f64 >= 0.9 * per_bucket)?;
        let bucket_end = self.origin + BUCKET * (i as u32 + 1);
        Some(bucket_end.saturating_duration_since(fault.end))
    }

    /// How long the rate was below 90 % of `baseline` within `from..to`, in buckets.
    fn degraded(&self, from: Instant, to: Instant, baseline: f64) -> Duration {
        let (a, b) = (self.index(from), self.index(to).min(self.buckets.len()));
        let low = 0.9 * baseline * BUCKET.as_secs_f64();
        let n = self
            .buckets
            .get(a..b)
            .map_or(0, |s| s.iter().filter(|&&n| (n as f64) < low).count());
        BUCKET * n as u32
    }

    /// The longest run of empty buckets within `from..to`.
    fn longest_silence(&self, from: Instant, to: Instant) -> Duration {
        let (a, b) = (self.index(from), self.index(to).min(self.buckets.len()));
        let mut longest = 0u32;
        let mut current = 0u32;
        for &n in self.buckets.get(a..b).unwrap_or(&[]) {
            current = if n == 0 { current + 1 } else { 0 };
            longest = longest.max(current);
        }
        BUCKET * longest
    }
}

/// Prints one line per fault and returns the recovery times (`None`: never recovered).
fn report_faults(rates: &Rates, faults: &[Fault]) -> Vec<Option<Duration>> {
    faults
        .iter()
        .map(|f| {
            let baseline = rates.rate(f.start - BASELINE, f.start);
            let during = rates.rate(f.start, f.end);
            let recovery = rates.recovery(f, baseline);
            let healed = f.end + recovery.unwrap_or(Duration::from_secs(5));
            eprintln!(
                "SOAK fault {:<18} node {} lasted {:>5.1?}: baseline {baseline:>6.0}/s, during \
                 {during:>6.0}/s, below 90% for {:>5.2?}, longest silence {:>5.2?}, recovery \
                 to 90% after the fault's end {}",
                format!("{:?}", f.kind),
                f.node,
                f.end - f.start,
                rates.degraded(f.start, healed, baseline),
                rates.longest_silence(f.start, healed),
                recovery.map_or("never".into(), |r| format!("{r:.2?}")),
            );
            recovery
        })
        .collect()
}

/// Prints the offered and delivered rates overall and while faults were on.
fn report_throughput(rates: &Rates, sent: usize, faults: &[Fault], sending: Duration) {
    let in_faults: f64 = faults.iter().map(|f| (f.end - f.start).as_secs_f64()).sum();
    let acked_in_faults: f64 = faults
        .iter()
        .map(|f| rates.rate(f.start, f.end) * (f.end - f.start).as_secs_f64())
        .sum();
    eprintln!(
        "SOAK offered {} records/s; sent {sent} in {sending:.1?} ({:.0}/s); delivered under \
         faults {:.0}/s over {in_faults:.1} s of faults",
        RATE * THREADS as u64,
        sent as f64 / sending.as_secs_f64(),
        acked_in_faults / in_faults.max(f64::EPSILON),
    );
}

// ---------------------------------------------------------------------------------------
// The soak
// ---------------------------------------------------------------------------------------

/// A 3-node cluster with a proxy in front of each node, and two fresh topics of 6
/// partitions, replication factor 3, that delete nothing during the run.
fn soak_cluster(prefix: &str) -> (Bed, Vec<String>) {
    let k = KafkaCluster::start(ClusterOptions::nodes(3));
    let topics = topics(prefix);
    for t in &topics {
        let keep = [("retention.ms", "-1"), ("retention.bytes", "-1")];
        k.create_topic(t, PARTITIONS, 3, &keep);
    }
    let proxies: BTreeMap<i32, Proxy> = k
        .node_ids()
        .into_iter()
        .map(|id| (id, Proxy::start(&k.address(id))))
        .collect();
    let routes: HashMap<i32, SocketAddr> = proxies.iter().map(|(&id, p)| (id, p.addr())).collect();
    for p in proxies.values() {
        p.set_capture(false);
        p.route(&routes);
    }
    (Bed { k, proxies }, topics)
}

/// The soak of the module docs: for `SOAK_SECS` (30 s) kills, cuts, controlled shutdowns,
/// held responses and freezes of one node at a time under a paced 2 000 records/s; every
/// record acknowledged, read back once and in order; recovery per fault printed.
#[test]
fn soak_on_a_3_node_cluster_acknowledges_everything_through_node_and_connection_faults() {
    let name = "kafka-soak";
    let soak = soak_duration();
    let mut rng = Rng::from_env(name);
    let (mut bed, topics) = soak_cluster("soak");
    let producer = producer(&bed.bootstrap(), &PRODUCER);
    let run = Run::new(&topics, 0);
    let blocking = Blocking::default();
    let origin = Instant::now();
    let (faults, sending) = under_faults(&mut bed, &topics, soak, &mut rng, &run.stop, |t| {
        paced_sender(&producer, &run, t, &blocking)
    });
    producer
        .flush_timeout(Duration::from_secs(60))
        .expect("flush");
    let took = origin.elapsed();
    let report = check(name, bed.k.bootstrap(), &producer, &run, took);
    let rates = Rates::of(&run, origin);
    let sent = run.latencies.lock().unwrap().len();
    report_throughput(&rates, sent, &faults, sending);
    eprintln!(
        "SOAK back-pressure: longest send {:.1?}, {} sends over 10 ms, senders at most {:.1?} \
         behind schedule",
        Duration::from_micros(blocking.longest_us.load(Ordering::Relaxed)),
        blocking.slow_calls.load(Ordering::Relaxed),
        Duration::from_micros(blocking.behind_us.load(Ordering::Relaxed)),
    );
    let recoveries = report_faults(&rates, &faults);
    eprintln!("SOAK {name}: {}", report.total);
    assert_all_acked(&report, &run);
    assert!(faults.iter().all(|f| f.fired), "a proxy fault never fired");
    for kind in KINDS {
        assert!(faults.iter().any(|f| f.kind == kind), "no {kind:?} fault");
    }
    assert!(
        recoveries.iter().all(Option::is_some),
        "a fault after which the delivered rate never came back to 90%"
    );
    producer.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// librdkafka under the same schedule
// ---------------------------------------------------------------------------------------

/// What librdkafka's delivery callbacks saw.
#[derive(Default)]
struct Deliveries {
    acked: Mutex<Vec<Instant>>,
    failed: Mutex<Vec<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => self.acked.lock().unwrap().push(Instant::now()),
            Err((e, _)) => self.failed.lock().unwrap().push(e.to_string()),
        }
    }
}

/// One librdkafka sending thread with the load of [`paced_sender`] (same topics, keys and
/// values); a full queue is waited out, so it shows as lag behind the schedule.
fn rdkafka_sender(
    producer: &ThreadedProducer<Deliveries>,
    topics: &[String],
    t: usize,
    stop: &AtomicBool,
    sent: &AtomicUsize,
) {
    let start = Instant::now();
    for i in 0usize.. {
        if i % 50 == 0 {
            if stop.load(Ordering::SeqCst) {
                return;
            }
            let due = start + Duration::from_secs_f64(i as f64 / RATE as f64);
            thread::sleep(due.saturating_duration_since(Instant::now()));
        }
        let seq = i / TOPICS;
        let value = checker::encode(t, seq, VALUE_SIZE);
        let key = key_of(t, seq);
        let mut record = BaseRecord::to(&topics[i % TOPICS]).payload(&value);
        if let Some(key) = &key {
            record = record.key(key);
        }
        while let Err((e, r)) = producer.send(record) {
            assert!(
                matches!(
                    e,
                    KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull)
                ),
                "send: {e}"
            );
            thread::sleep(Duration::from_millis(1));
            record = r;
        }
        sent.fetch_add(1, Ordering::Relaxed);
    }
}

/// The soak's schedule and load with librdkafka (rdkafka's `ThreadedProducer`, acks=all,
/// idempotence, linger 5 ms, Java's murmur2 partitioner, message.timeout.ms 30 s,
/// request.timeout.ms 5 s), printing the same throughput and recovery figures, for
/// comparison. It talks to the nodes directly, so only the node faults (kill, controlled
/// shutdown, freeze) reach it; the proxy faults find no traffic and are reported as not
/// fired. Ignored by default (it tests librdkafka, not this crate):
/// `SOAK_SECS=300 cargo test --test kafka_soak -- --ignored --nocapture`.
#[test]
#[ignore]
fn librdkafka_under_the_soak_schedule_for_comparison() {
    let name = "kafka-soak-librdkafka";
    let soak = soak_duration();
    let mut rng = Rng::from_env(name);
    let (mut bed, topics) = soak_cluster("soak-rdkafka");
    let producer: ThreadedProducer<Deliveries> = ClientConfig::new()
        // Straight to the nodes: through the proxies librdkafka delivered nothing (every
        // record timed out; not yet understood), so the proxy's faults do not reach it.
        .set("bootstrap.servers", bed.k.bootstrap())
        .set("acks", "all")
        .set("enable.idempotence", "true")
        .set("linger.ms", "5")
        .set("partitioner", "murmur2_random")
        .set("message.timeout.ms", "30000")
        .set("request.timeout.ms", "5000")
        .create_with_context(Deliveries::default())
        .expect("create the rdkafka producer");
    let (stop, sent) = (AtomicBool::new(false), AtomicUsize::new(0));
    let origin = Instant::now();
    let (faults, sending) = under_faults(&mut bed, &topics, soak, &mut rng, &stop, |t| {
        rdkafka_sender(&producer, &topics, t, &stop, &sent)
    });
    producer.flush(Duration::from_secs(60)).expect("flush");
    let ctx = producer.context();
    let acked = ctx.acked.lock().unwrap().clone();
    let failed = ctx.failed.lock().unwrap().clone();
    let rates = Rates::bucket(acked.iter().copied(), origin);
    report_throughput(&rates, sent.load(Ordering::Relaxed), &faults, sending);
    report_faults(&rates, &faults);
    eprintln!(
        "SOAK {name}: sent {}, acked {}, failed {} (first: {:?})",
        sent.load(Ordering::Relaxed),
        acked.len(),
        failed.len(),
        failed.first()
    );
}

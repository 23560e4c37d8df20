//! Fault scenarios of issue 4 (1, 2, 3, 5, 6 and the soak, 8; 4 and 7 live in
//! `tests/faults.rs`).
//!
//! Each scenario sends 100 000 records over 2 topics × 6 partitions from 4 threads with
//! `send_with_callback` (half of them keyed, key = thread and seq / 100, so that every
//! partition gets traffic; the other half with null keys, spread by the sticky
//! partitioner), while a fault driver thread injects its fault. The delivery checker
//! (`common::checker`) then reads both topics back with the rdkafka consumer and counts lost,
//! duplicated and reordered records per (topic, partition); reordering is judged per
//! (thread, partition). Every test prints the checker's totals.
//!
//! Brokers: librdkafka's mock cluster ([`FaultMock`]) for leader moves, a broker down, and
//! injected Produce errors, all of which it answers without writing the request (it checks
//! no idempotent sequences for a non-transactional producer, so a fault that loses the
//! response of a written request would make duplicates no client can avoid). A response
//! arriving after request.timeout.ms, a cut before the response and a blackhole need the
//! broker to dedupe the retry: those run through the fault-injecting proxy in front of
//! tansu, which enforces idempotent sequences.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::checker::{self, Outcome, RunReport, TopicLedgers};
use common::mock::FaultMock;
use common::proxy::{ProduceDelay, ProduceFailure, Proxy, Script};
use common::{check_run, unique_topic, Tansu};
use kafka_producer::partition::partition_for_key;
use kafka_producer::{Error, ErrorCode, Producer, ProducerRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

const THREADS: usize = 4;
const TOPICS: usize = 2;
const PARTITIONS: i32 = 6;
/// Bytes of every record value.
const VALUE_SIZE: usize = 100;
/// Records each thread sends to each topic: 4 threads × 2 topics × 12 500 = 100 000.
const PER_THREAD: usize = 12_500;
/// How often the fault drivers act.
const TICK: Duration = Duration::from_millis(100);

/// The retriable Produce errors of scenario 3, as the mock injects them and as the producer
/// names them.
const RETRIABLE: [(RDKafkaRespErr, ErrorCode); 4] = [
    (
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION,
        ErrorCode::NotLeaderOrFollower,
    ),
    (
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_REQUEST_TIMED_OUT,
        ErrorCode::RequestTimedOut,
    ),
    (
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_ENOUGH_REPLICAS,
        ErrorCode::NotEnoughReplicas,
    ),
    (
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_NETWORK_EXCEPTION,
        ErrorCode::NetworkException,
    ),
];

/// The non-retriable Produce errors of scenario 6.
const NON_RETRIABLE: [(RDKafkaRespErr, ErrorCode); 2] = [
    (
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_POLICY_VIOLATION,
        ErrorCode::PolicyViolation,
    ),
    (
        RDKafkaRespErr::RD_KAFKA_RESP_ERR_TOPIC_AUTHORIZATION_FAILED,
        ErrorCode::TopicAuthorizationFailed,
    ),
];

// ---------------------------------------------------------------------------------------
// The workload
// ---------------------------------------------------------------------------------------

/// A record that completed with an error.
#[derive(Debug)]
struct Failure {
    /// Topic index.
    topic: usize,
    /// The partition its key hashes to; `None` for a null key.
    partition: Option<i32>,
    error: Error,
}

/// What the sending threads and the callbacks saw.
#[derive(Debug)]
struct Run {
    ledgers: TopicLedgers,
    failures: Mutex<Vec<Failure>>,
    /// Keyed records acknowledged on another partition than their key hashes to (then the
    /// partitions the checker gives failed keyed records would be wrong).
    misplaced: AtomicUsize,
    /// Set to stop an open-ended run.
    stop: AtomicBool,
    /// (topic, thread, partition, seq) of every record whose partition is known, in the
    /// order the callbacks ran (one callback thread: completion order).
    completions: Mutex<Vec<(usize, usize, i32, usize)>>,
}

impl Run {
    fn new(topics: &[String], per_thread: usize) -> Arc<Run> {
        Arc::new(Run {
            ledgers: TopicLedgers::new(topics, THREADS, per_thread),
            failures: Mutex::new(Vec::new()),
            misplaced: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            completions: Mutex::new(Vec::new()),
        })
    }
}

/// Sends record `seq` of thread `t` to topic `k`: keyed for even sequences (the key changes
/// every 100 sequences), null-keyed for odd ones.
fn send_one(producer: &Producer, run: &Arc<Run>, t: usize, k: usize, seq: usize) {
    let topic = run.ledgers.topics()[k].as_str();
    let mut record = ProducerRecord::new(topic, checker::encode(t, seq, VALUE_SIZE));
    let mut keyed_partition = None;
    if seq.is_multiple_of(2) {
        let key = format!("t{t}-k{}", seq / 100).into_bytes();
        keyed_partition = Some(partition_for_key(&key, PARTITIONS as usize));
        record = record.with_key(key);
    }
    let run = Arc::clone(run);
    producer.send_with_callback(record, move |r| match r {
        Ok(md) => {
            let partition = md.partition();
            run.completions.lock().unwrap().push((k, t, partition, seq));
            if keyed_partition.is_some_and(|p| p != md.partition()) {
                run.misplaced.fetch_add(1, Ordering::SeqCst);
            }
            let ledger = run.ledgers.ledger(k);
            ledger.complete(t, seq, Some(md.partition()), Outcome::Acked);
        }
        Err(error) => {
            if let Some(p) = keyed_partition {
                run.completions.lock().unwrap().push((k, t, p, seq));
            }
            let ledger = run.ledgers.ledger(k);
            ledger.complete(t, seq, keyed_partition, Outcome::Failed);
            run.failures.lock().unwrap().push(Failure {
                topic: k,
                partition: keyed_partition,
                error,
            });
        }
    });
}

/// How the sending threads send.
#[derive(Debug, Clone, Copy)]
enum Load {
    /// `PER_THREAD` records per thread and topic, spread evenly over this long.
    Paced(Duration),
    /// Records at this rate per thread, until `Run::stop`.
    Until { per_second: u64 },
}

/// One sending thread: alternates topics, pacing itself every 50 records.
fn sender(producer: &Producer, run: &Arc<Run>, t: usize, load: Load) {
    let start = Instant::now();
    let mut i = 0usize;
    loop {
        match load {
            Load::Paced(over) => {
                let total = PER_THREAD * TOPICS;
                if i == total {
                    return;
                }
                if i.is_multiple_of(50) {
                    let due = start + over.mul_f64(i as f64 / total as f64);
                    thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                send_one(producer, run, t, i % TOPICS, i / TOPICS);
            }
            Load::Until { per_second } => {
                if i.is_multiple_of(50) {
                    if run.stop.load(Ordering::SeqCst) {
                        return;
                    }
                    let due = start + Duration::from_secs_f64(i as f64 / per_second as f64);
                    thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                let k = i % TOPICS;
                let seq = run.ledgers.ledger(k).push(t);
                send_one(producer, run, t, k, seq);
            }
        }
        i += 1;
    }
}

/// Sets `Run::stop` when dropped, also when the fault driver panics, so that open-ended
/// senders never outlive their driver.
struct StopOnDrop<'a>(&'a AtomicBool);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

/// How long a run's final flush may take before the test fails instead of hanging.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the sending threads and `driver` (on its own thread) together; flushes once the
/// senders are done and then sets the flag the driver watches, so faults go on through the
/// flush. Open-ended senders ([`Load::Until`]) stop when the driver returns. Returns how
/// long sending and flushing took.
fn drive<D>(producer: &Producer, run: &Arc<Run>, load: Load, driver: D) -> Duration
where
    D: FnOnce(&AtomicBool) + Send,
{
    let done = AtomicBool::new(false);
    let start = Instant::now();
    thread::scope(|s| {
        let watched = &done;
        let driver = s.spawn(move || {
            let _stop = StopOnDrop(&run.stop);
            driver(watched)
        });
        thread::scope(|senders| {
            for t in 0..THREADS {
                senders.spawn(move || sender(producer, run, t, load));
            }
        });
        let flushed = producer.flush_timeout(FLUSH_TIMEOUT);
        done.store(true, Ordering::SeqCst);
        driver.join().expect("the fault driver panicked");
        flushed.expect("flush");
    });
    start.elapsed()
}

/// A bytes producer for `bootstrap` with linger 5 ms and `extra` properties (defaults
/// otherwise: acks=all, idempotence on, 5 requests in flight).
fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> Producer {
    let mut props = vec![("bootstrap.servers", bootstrap), ("linger.ms", "5")];
    props.extend_from_slice(extra);
    Producer::from_properties(props).expect("a valid configuration")
}

/// Two fresh topic names.
fn topics(prefix: &str) -> Vec<String> {
    (0..TOPICS)
        .map(|k| unique_topic(&format!("{prefix}-{k}")))
        .collect()
}

/// Reads the run back, prints the checker's report and the producer's counters.
fn check(name: &str, bootstrap: &str, producer: &Producer, run: &Run, took: Duration) -> RunReport {
    let report = check_run(bootstrap, &run.ledgers);
    report.print(name);
    let m = producer.metrics();
    eprintln!(
        "{name}: sent and flushed in {took:.1?}; {} Produce requests, {} batch retries, {} \
         record errors",
        m.requests, m.batch_retries, m.record_errors
    );
    report
}

/// Asserts what every scenario expects: nothing pending, no keyed record on a wrong
/// partition, and nothing lost, duplicated, reordered or unexpected.
fn assert_clean(report: &RunReport, run: &Run) {
    assert_eq!(run.ledgers.pending(), 0, "records without a result");
    assert_completed_in_send_order(run);
    assert_eq!(
        run.misplaced.load(Ordering::SeqCst),
        0,
        "keyed records acknowledged on another partition than their key's"
    );
    let t = report.total;
    assert_eq!(
        (t.lost, t.duplicated, t.reordered, t.unexpected),
        (0, 0, 0, 0),
        "lost, duplicated, reordered, unexpected: {t}"
    );
}

/// Asserts that the callbacks of each (topic, thread, partition) ran in send order, failed
/// records included (when their partition is known).
fn assert_completed_in_send_order(run: &Run) {
    let completions = run.completions.lock().unwrap();
    let mut last: HashMap<(usize, usize, i32), usize> = HashMap::new();
    let mut out_of_order = 0;
    for &(k, t, p, seq) in completions.iter() {
        if let Some(prev) = last.insert((k, t, p), seq) {
            if seq < prev {
                out_of_order += 1;
                if out_of_order <= 3 {
                    eprintln!(
                        "topic {k} thread {t} partition {p}: seq {seq} completed after {prev}"
                    );
                }
            }
        }
    }
    assert_eq!(out_of_order, 0, "callbacks completed out of send order");
}

/// Asserts that every record was acknowledged (no failures), then [`assert_clean`].
fn assert_all_acked(report: &RunReport, run: &Run) {
    let failures = run.failures.lock().unwrap();
    assert!(
        failures.is_empty(),
        "{} records failed, the first: {:?}",
        failures.len(),
        failures.first()
    );
    drop(failures);
    assert_clean(report, run);
    let t = report.total;
    assert_eq!(t.acked, t.sent, "{t}");
    assert!(t.read_back >= t.acked, "{t}");
}

/// A small seeded generator (splitmix64) for the fault drivers.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    /// Seeded from `SOAK_SEED` when set, else from the clock; prints the seed.
    fn from_env(name: &str) -> Rng {
        let seed = std::env::var("SOAK_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .unwrap()
                    .as_nanos() as u64
            });
        eprintln!("{name}: seed {seed} (SOAK_SEED={seed} replays the same random choices)");
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// A duration in `from..to`.
    fn between(&mut self, from: Duration, to: Duration) -> Duration {
        let span = (to - from).as_millis() as u64;
        from + Duration::from_millis(self.below(span.max(1)))
    }
}

// ---------------------------------------------------------------------------------------
// Fault helpers on the mock
// ---------------------------------------------------------------------------------------

/// A mock cluster of `brokers` brokers with two fresh 6-partition topics, partition p led
/// by broker p % 3 + 1; with 4 brokers, broker 4 alone leads partition 0 of topic 0 (the
/// isolated partition of scenario 6).
fn mock_with_topics(prefix: &str, brokers: i32) -> (FaultMock, Vec<String>) {
    let mock = FaultMock::start(brokers);
    let topics = topics(prefix);
    for (k, topic) in topics.iter().enumerate() {
        mock.create_topic(topic, PARTITIONS, |p| {
            if brokers > 3 && k == 0 && p == 0 {
                4
            } else {
                p % 3 + 1
            }
        });
    }
    (mock, topics)
}

/// Moves partition leaders among brokers 1–3, one partition at a time.
#[derive(Debug)]
struct LeaderMover {
    leaders: BTreeMap<(usize, i32), i32>,
    moves: usize,
}

impl LeaderMover {
    /// Tracks every partition of `topics` led by brokers 1–3 (as [`mock_with_topics`] set
    /// them), leaving broker 4's isolated partition alone.
    fn new(topics: usize, isolated: Option<(usize, i32)>) -> LeaderMover {
        let leaders = (0..topics)
            .flat_map(|k| (0..PARTITIONS).map(move |p| ((k, p), p % 3 + 1)))
            .filter(|(tp, _)| Some(*tp) != isolated)
            .collect();
        LeaderMover { leaders, moves: 0 }
    }

    /// Gives a random partition of topic `k` to one of the two other brokers.
    fn move_one(&mut self, mock: &FaultMock, topics: &[String], k: usize, rng: &mut Rng) {
        let candidates: Vec<i32> = self
            .leaders
            .keys()
            .filter(|(kk, _)| *kk == k)
            .map(|(_, p)| *p)
            .collect();
        let p = candidates[rng.below(candidates.len() as u64) as usize];
        let leader = self.leaders.get_mut(&(k, p)).unwrap();
        let step = 1 + rng.below(2) as i32;
        let next = (*leader - 1 + step) % 3 + 1;
        mock.set_leader(&topics[k], p, next);
        *leader = next;
        self.moves += 1;
    }
}

/// Replaces the cluster-wide Produce error stack with `n` entries, each one of the four
/// retriable errors (in turn) with probability 1/20 and otherwise no error. Refreshed every
/// tick, well before `n` requests could take every entry.
fn push_retriable_errors(mock: &FaultMock, rng: &mut Rng, next_code: &mut usize, n: usize) {
    let errors: Vec<RDKafkaRespErr> = (0..n)
        .map(|_| {
            if rng.below(20) == 0 {
                *next_code += 1;
                RETRIABLE[*next_code % RETRIABLE.len()].0
            } else {
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
            }
        })
        .collect();
    mock.clear_errors(RDKafkaApiKey::Produce);
    mock.push_errors(RDKafkaApiKey::Produce, &errors);
}

/// Keeps broker 4's own Produce error stack at least `low` deep with entries of a fixed
/// pattern: every third one a non-retriable error (the two of [`NON_RETRIABLE`] in turn),
/// the others no error. Counts what it pushed.
#[derive(Debug, Default)]
struct IsolatedErrors {
    pushed: usize,
}

impl IsolatedErrors {
    const BROKER: i32 = 4;

    fn entry(i: usize) -> RDKafkaRespErr {
        if i.is_multiple_of(3) {
            NON_RETRIABLE[(i / 3) % NON_RETRIABLE.len()].0
        } else {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR
        }
    }

    fn top_up(&mut self, mock: &FaultMock, low: usize) {
        let left = mock.broker_errors_left(Self::BROKER, RDKafkaApiKey::Produce);
        if left >= low {
            return;
        }
        let entries: Vec<(RDKafkaRespErr, Duration)> = (self.pushed..self.pushed + 2 * low)
            .map(|i| (Self::entry(i), Duration::ZERO))
            .collect();
        mock.push_broker_errors(Self::BROKER, RDKafkaApiKey::Produce, &entries);
        self.pushed += entries.len();
    }

    /// How many injected errors of each code broker 4 answered so far.
    fn injected(&self, mock: &FaultMock) -> BTreeMap<&'static str, usize> {
        let left = mock.broker_errors_left(Self::BROKER, RDKafkaApiKey::Produce);
        let mut out = BTreeMap::new();
        for i in 0..self.pushed - left {
            if let Some((_, code)) = NON_RETRIABLE.iter().find(|(e, _)| *e == Self::entry(i)) {
                *out.entry(code.name()).or_default() += 1;
            }
        }
        out
    }
}

/// Asserts scenario 6's outcome: every failure is a non-retriable broker error of the
/// isolated partition (null-keyed failures have no known partition, but their code was
/// injected only there), the isolated partition also acknowledged records, and every other
/// partition acknowledged everything. Returns the failures per code.
fn assert_only_isolated_failed(
    report: &RunReport,
    run: &Run,
    isolated: (usize, i32),
) -> BTreeMap<&'static str, usize> {
    let failures = run.failures.lock().unwrap();
    let mut by_code: BTreeMap<&'static str, usize> = BTreeMap::new();
    for f in failures.iter() {
        let Error::Broker { code, .. } = &f.error else {
            panic!("a record failed with {:?}, not an injected broker error", f);
        };
        assert!(
            NON_RETRIABLE.iter().any(|(_, c)| c == code),
            "a record failed with {code}, which was not injected: {f:?}"
        );
        assert_eq!(f.topic, isolated.0, "a failure on another topic: {f:?}");
        if let Some(p) = f.partition {
            assert_eq!(p, isolated.1, "a keyed failure on another partition: {f:?}");
        }
        *by_code.entry(code.name()).or_default() += 1;
    }
    for (k, (_, topic_report)) in report.topics.iter().enumerate() {
        for (&p, c) in &topic_report.partitions {
            if (k, p) == isolated || p == -1 {
                continue;
            }
            assert_eq!(
                (c.failed, c.acked),
                (0, c.sent),
                "t{k} partition {p} is not the isolated one: {c}"
            );
        }
    }
    let iso = report.topic(isolated.0).partitions[&isolated.1];
    assert!(iso.acked > 0, "the isolated partition acknowledged nothing");
    assert_eq!(report.total.failed, failures.len());
    drop(failures);
    assert_clean(report, run);
    by_code
}

// ---------------------------------------------------------------------------------------
// Scenarios on the mock cluster
// ---------------------------------------------------------------------------------------

/// Scenario 1: every 100 ms, one partition's leader moves to another broker (3 brokers),
/// through sending and the flush. Requests to the old leader get NOT_LEADER_OR_FOLLOWER
/// (unwritten) and are retried at the new one: all acknowledged, 0 lost, duplicated,
/// reordered.
#[test]
fn scenario_1_a_leader_moves_every_100ms() {
    let name = "leader-moves";
    let (mock, topics) = mock_with_topics("scenario-leaders", 3);
    let producer = producer(mock.bootstrap(), &[]);
    let run = Run::new(&topics, PER_THREAD);
    let mut mover = LeaderMover::new(TOPICS, None);
    let mut rng = Rng(1);
    let took = drive(
        &producer,
        &run,
        Load::Paced(Duration::from_secs(3)),
        |done| {
            while !done.load(Ordering::SeqCst) {
                thread::sleep(TICK);
                // One move per tick, alternating topics.
                mover.move_one(&mock, &topics, mover.moves % TOPICS, &mut rng);
            }
        },
    );
    let report = check(name, mock.bootstrap(), &producer, &run, took);
    eprintln!("{name}: {} leader moves", mover.moves);
    assert_all_acked(&report, &run);
    assert!(mover.moves >= 25, "only {} leader moves", mover.moves);
    assert!(
        producer.metrics().batch_retries > 0,
        "no batch was retried after a leader move"
    );
    producer.close().unwrap();
}

/// Scenario 2: broker 2 of 3 is down from 1 s to 3 s of a 4 s run (its partitions keep it as
/// leader). Its records wait and go out when it is back: all acknowledged, 0 lost,
/// duplicated, reordered.
#[test]
fn scenario_2_one_broker_down_for_2s_mid_run() {
    let name = "broker-down";
    const DOWN: i32 = 2;
    let (mock, topics) = mock_with_topics("scenario-down", 3);
    let producer = producer(mock.bootstrap(), &[]);
    let run = Run::new(&topics, PER_THREAD);
    let stalled = AtomicUsize::new(0);
    let took = drive(
        &producer,
        &run,
        Load::Paced(Duration::from_secs(4)),
        |_done| {
            thread::sleep(Duration::from_secs(1));
            mock.broker_down_quiesced(DOWN, Duration::from_millis(20));
            thread::sleep(Duration::from_secs(2));
            stalled.store(run.ledgers.pending(), Ordering::SeqCst);
            mock.broker_up(DOWN);
        },
    );
    let report = check(name, mock.bootstrap(), &producer, &run, took);
    let stalled = stalled.load(Ordering::SeqCst);
    eprintln!("{name}: {stalled} records waited for broker {DOWN} when it came back");
    assert_all_acked(&report, &run);
    // A third of the partitions were unreachable for 2 s of a 4 s run.
    assert!(
        stalled > 1_000,
        "only {stalled} records waited for the broker"
    );
    producer.close().unwrap();
}

/// Scenario 3: about 1 Produce request in 20 fails with NOT_LEADER_OR_FOLLOWER,
/// REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS or NETWORK_EXCEPTION in turn (the mock answers
/// them before writing). All retried: all acknowledged, 0 lost, duplicated, reordered.
#[test]
fn scenario_3_retriable_produce_errors_on_5_percent_of_requests() {
    let name = "retriable-errors";
    let (mock, topics) = mock_with_topics("scenario-retriable", 3);
    // One request in flight per connection: the mock checks sequences only for
    // transactional producers, so with several in flight it would write a partition's
    // later batch behind an earlier one it refused (Kafka and tansu refuse the later one with
    // OUT_OF_ORDER_SEQUENCE_NUMBER instead). The pipelined case runs against tansu below.
    let producer = producer(
        mock.bootstrap(),
        &[("max.in.flight.requests.per.connection", "1")],
    );
    let run = Run::new(&topics, PER_THREAD);
    let mut rng = Rng(3);
    let mut next_code = 0;
    let took = drive(
        &producer,
        &run,
        Load::Paced(Duration::from_secs(3)),
        |done| {
            while !done.load(Ordering::SeqCst) {
                push_retriable_errors(&mock, &mut rng, &mut next_code, 1_000);
                thread::sleep(TICK);
            }
            mock.clear_errors(RDKafkaApiKey::Produce);
        },
    );
    let report = check(name, mock.bootstrap(), &producer, &run, took);
    assert_all_acked(&report, &run);
    let m = producer.metrics();
    // About 1 request in 20 failed: at least one retried batch per 100 requests.
    assert!(
        m.batch_retries * 100 >= m.requests,
        "{} retries for {} requests",
        m.batch_retries,
        m.requests
    );
    producer.close().unwrap();
}

/// Scenario 3 with the default five requests in flight, through the proxy on tansu (which
/// enforces idempotent sequences): the proxy answers every 20th Produce request itself
/// with NOT_LEADER_OR_FOLLOWER, REQUEST_TIMED_OUT, NOT_ENOUGH_REPLICAS or NETWORK_EXCEPTION
/// in turn, so tansu never sees it, and refuses the partition's pipelined later batches
/// with OUT_OF_ORDER_SEQUENCE_NUMBER; the producer retries them in order. All acknowledged,
/// 0 lost, duplicated, reordered, callbacks in send order.
#[test]
fn scenario_3_retriable_errors_with_requests_pipelined_on_tansu() {
    retriable_errors_on_tansu("retriable-pipelined", false);
}

/// As above, but tansu does write the failed requests and only the answer the producer
/// hears is an error (a lost acknowledgement): the retries are answered
/// DUPLICATE_SEQUENCE_NUMBER while later batches of the partition already succeeded. Their
/// completions wait for the retried batch: callbacks still run in send order.
#[test]
fn scenario_3_written_but_reported_failed_completes_in_send_order() {
    retriable_errors_on_tansu("retriable-written", true);
}

fn retriable_errors_on_tansu(name: &str, forward: bool) {
    let (tansu, proxy, topics) = tansu_behind_proxy(name);
    proxy.set_capture(false);
    let producer = producer(&proxy.bootstrap(), &[("retry.backoff.ms", "50")]);
    let run = Run::new(&topics, PER_THREAD);
    let codes = RETRIABLE.map(|(_, code)| code.code()).to_vec();
    let took = drive(
        &producer,
        &run,
        Load::Paced(Duration::from_secs(3)),
        |done| {
            proxy.update_script(|s| {
                s.fail_produce = Some(ProduceFailure {
                    every: 20,
                    codes,
                    times: None,
                    forward,
                    record_errors: Vec::new(),
                })
            });
            while !done.load(Ordering::SeqCst) {
                thread::sleep(TICK);
            }
            proxy.set_script(Script::default());
        },
    );
    let report = check(name, tansu.bootstrap(), &producer, &run, took);
    let m = producer.metrics();
    eprintln!(
        "{name}: the proxy failed {} Produce requests; {} batches answered as duplicates",
        proxy.failed_produce(),
        m.duplicate_batches
    );
    assert!(proxy.failed_produce() >= 5, "the fault hardly fired");
    assert_all_acked(&report, &run);
    if forward {
        assert!(
            m.duplicate_batches > 0,
            "no retry met its own earlier write"
        );
    }
    producer.close().unwrap();
}

/// Scenario 6: broker 4 leads partition 0 of topic 0 alone and fails every third Produce
/// request with POLICY_VIOLATION or TOPIC_AUTHORIZATION_FAILED (in turn). Only that
/// partition's records fail, each with `Error::Broker` and the injected code; its other
/// records and every record of every other partition are acknowledged and read back once,
/// in order.
#[test]
fn scenario_6_non_retriable_errors_fail_only_the_one_partition() {
    let name = "non-retriable";
    let isolated = (0, 0);
    let (mock, topics) = mock_with_topics("scenario-fatal", 4);
    let producer = producer(mock.bootstrap(), &[]);
    let run = Run::new(&topics, PER_THREAD);
    let mut errors = IsolatedErrors::default();
    let took = drive(
        &producer,
        &run,
        Load::Paced(Duration::from_secs(3)),
        |done| {
            while !done.load(Ordering::SeqCst) {
                errors.top_up(&mock, 8);
                thread::sleep(Duration::from_millis(5));
            }
        },
    );
    let report = check(name, mock.bootstrap(), &producer, &run, took);
    let injected = errors.injected(&mock);
    let by_code = assert_only_isolated_failed(&report, &run, isolated);
    eprintln!("{name}: requests failed by broker 4: {injected:?}; failed records: {by_code:?}");
    for (_, code) in NON_RETRIABLE {
        assert!(
            by_code.contains_key(code.name()),
            "no record failed with {code}"
        );
    }
    producer.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Through the proxy in front of tansu
// ---------------------------------------------------------------------------------------

/// A tansu broker with two fresh 6-partition topics, and a proxy in front of it.
fn tansu_behind_proxy(prefix: &str) -> (Tansu, Proxy, Vec<String>) {
    let tansu = Tansu::start();
    let topics = topics(prefix);
    for topic in &topics {
        tansu.create_topic(topic, PARTITIONS);
    }
    let proxy = Proxy::start(tansu.bootstrap());
    (tansu, proxy, topics)
}

/// Short request timeout so held responses time out, long delivery timeout so that no
/// record runs out of time while retried.
const PROXY_PRODUCER: [(&str, &str); 3] = [
    ("request.timeout.ms", "1000"),
    ("delivery.timeout.ms", "30000"),
    ("socket.connection.setup.timeout.ms", "1000"),
];

/// How long the proxy holds a response: past request.timeout.ms.
const HOLD: Duration = Duration::from_millis(1_500);

/// Scenario 5: three times during the run, the proxy holds a Produce response 1.5 s, past
/// request.timeout.ms (1 s): the producer gives up on the connection and retries what was in
/// flight, which tansu had already written. With idempotence tansu answers the retries with
/// DUPLICATE_SEQUENCE_NUMBER: all acknowledged, 0 lost, duplicated, reordered.
#[test]
fn scenario_5_responses_slower_than_request_timeout_are_retried_without_loss() {
    let name = "slow-responses";
    let (tansu, proxy, topics) = tansu_behind_proxy("scenario-rtt");
    proxy.set_capture(false);
    let producer = producer(&proxy.bootstrap(), &PROXY_PRODUCER);
    let run = Run::new(&topics, PER_THREAD);
    let held = 3;
    let took = drive(
        &producer,
        &run,
        Load::Paced(Duration::from_secs(4)),
        |done| {
            for _ in 0..held {
                thread::sleep(Duration::from_millis(800));
                // The next Produce response (and every response behind it on its connection)
                // comes 1.5 s late; the producer gives up on it after 1 s.
                proxy.update_script(|s| {
                    s.delay_produce = Some(ProduceDelay {
                        every: 1,
                        delay: HOLD,
                        times: Some(1),
                    })
                });
                while proxy.script().delay_produce.is_some() && !done.load(Ordering::SeqCst) {
                    thread::sleep(Duration::from_millis(5));
                }
            }
        },
    );
    let report = check(name, tansu.bootstrap(), &producer, &run, took);
    eprintln!(
        "{name}: {} Produce responses held {HOLD:?}",
        proxy.delayed_responses()
    );
    assert_eq!(proxy.delayed_responses(), held);
    assert!(producer.metrics().batch_retries > 0, "nothing was retried");
    assert_all_acked(&report, &run);
    producer.close().unwrap();
}

/// Runs the paced workload while the proxy cuts `cuts` connections, 700 ms apart, each
/// after the broker answered the next Produce request and before the producer got it.
fn run_with_cuts(producer: &Producer, run: &Arc<Run>, proxy: &Proxy, cuts: usize) -> Duration {
    drive(
        producer,
        run,
        Load::Paced(Duration::from_secs(3)),
        |_done| {
            for _ in 0..cuts {
                thread::sleep(Duration::from_millis(700));
                let n = proxy.produce_count() + 1;
                proxy.update_script(|s| s.cut_after_produce = Some(n));
                while proxy.script().cut_after_produce.is_some() {
                    thread::sleep(Duration::from_millis(5));
                }
            }
        },
    )
}

/// Scenario 4: three times during the run the proxy cuts a connection after tansu answered
/// a Produce request and before the producer got the answer. Every batch of a cut request
/// is retried on a new connection with the same producer id, epoch, base sequence and bytes;
/// tansu answers DUPLICATE_SEQUENCE_NUMBER for what it already wrote: 0 duplicated.
#[test]
fn scenario_4_cut_before_the_response_retries_byte_identical_batches_without_duplicates() {
    let name = "cut-idempotent";
    let (tansu, proxy, topics) = tansu_behind_proxy("scenario-cut");
    let producer = producer(&proxy.bootstrap(), &[]);
    let run = Run::new(&topics, PER_THREAD);
    let cuts = 3;
    let took = run_with_cuts(&producer, &run, &proxy, cuts);
    let report = check(name, tansu.bootstrap(), &producer, &run, took);
    assert_eq!(proxy.cuts(), cuts, "every cut fired");
    assert_all_acked(&report, &run);
    let requests = proxy.produce_requests();
    let mut retried = 0;
    for (i, lost) in requests.iter().enumerate().filter(|(_, r)| r.cut) {
        for b in &lost.batches {
            assert!(
                b.producer_id >= 0 && b.base_sequence >= 0,
                "an idempotent batch"
            );
            let retry = requests[i + 1..]
                .iter()
                .find(|r| r.batches.iter().any(|x| x.bytes == b.bytes))
                .unwrap_or_else(|| {
                    panic!("no byte-identical retry of {}-{}", b.topic, b.partition)
                });
            let again = retry.batches.iter().find(|x| x.bytes == b.bytes).unwrap();
            assert_eq!(
                (again.producer_id, again.producer_epoch, again.base_sequence),
                (b.producer_id, b.producer_epoch, b.base_sequence)
            );
            assert_ne!(
                retry.connection, lost.connection,
                "retried on a new connection"
            );
            retried += 1;
        }
    }
    let m = producer.metrics();
    eprintln!(
        "{name}: {cuts} cuts; {retried} batches of the cut requests retried byte for byte; \
         {} batches answered DUPLICATE_SEQUENCE_NUMBER",
        m.duplicate_batches
    );
    assert!(
        m.duplicate_batches >= retried as u64,
        "tansu saw the retries as duplicates"
    );
    producer.close().unwrap();
}

/// Scenario 4 with idempotence off (and one request in flight, so exactly the cut request
/// is lost): the same cuts now leave every record of each cut request twice in the log,
/// which proves the fault fires and that the idempotent run's 0 duplicates is earned.
#[test]
fn scenario_4_without_idempotence_the_cut_requests_are_duplicated() {
    let name = "cut-not-idempotent";
    let (tansu, proxy, topics) = tansu_behind_proxy("scenario-cut-plain");
    let producer = producer(
        &proxy.bootstrap(),
        &[
            ("enable.idempotence", "false"),
            ("max.in.flight.requests.per.connection", "1"),
        ],
    );
    let run = Run::new(&topics, PER_THREAD);
    let cuts = 3;
    let took = run_with_cuts(&producer, &run, &proxy, cuts);
    let report = check(name, tansu.bootstrap(), &producer, &run, took);
    let lost_records: i32 = proxy
        .produce_requests()
        .iter()
        .filter(|r| r.cut)
        .flat_map(|r| &r.batches)
        .map(|b| b.record_count)
        .sum();
    let t = report.total;
    eprintln!("{name}: {cuts} cuts lost the answers of {lost_records} records");
    assert_eq!(proxy.cuts(), cuts);
    assert_eq!((t.acked, t.lost, t.reordered), (t.sent, 0, 0), "{t}");
    assert_eq!(
        t.duplicated, lost_records as usize,
        "each cut record written twice"
    );
    producer.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// Soak (scenario 8)
// ---------------------------------------------------------------------------------------

/// How long each soak runs: `SOAK_SECS`, 20 s by default (at 20 000 records/s, less than
/// 5 s sends fewer than the 100 000 records the soaks assert).
fn soak_duration() -> Duration {
    let secs = std::env::var("SOAK_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    Duration::from_secs(secs)
}

/// Records per second per sending thread in the soaks (4 threads: 20 000 records/s).
const SOAK_RATE: u64 = 5_000;

/// One kind of fault of a soak, active until a deadline.
#[derive(Debug)]
struct Episode {
    name: &'static str,
    until: Option<Instant>,
    started: usize,
}

impl Episode {
    fn new(name: &'static str) -> Episode {
        Episode {
            name,
            until: None,
            started: 0,
        }
    }

    fn active(&self) -> bool {
        self.until.is_some()
    }

    /// Whether an active episode has just run out (and is now inactive).
    fn ends(&mut self, now: Instant) -> bool {
        if self.until.is_some_and(|u| now >= u) {
            self.until = None;
            return true;
        }
        false
    }

    /// Whether an inactive episode starts now: by chance, or because it never ran and its
    /// turn in the soak came (`turn`), so that every fault runs at least once.
    fn starts(&mut self, rng: &mut Rng, now: Instant, turn: Instant) -> bool {
        if self.active() || !(rng.chance(0.08) || (self.started == 0 && now >= turn)) {
            return false;
        }
        self.until = Some(now + rng.between(Duration::from_millis(500), Duration::from_secs(2)));
        self.started += 1;
        true
    }
}

/// The instants at which each of `n` faults must have started: spread over the first 80%
/// of the soak.
fn turns(start: Instant, soak: Duration, n: usize) -> Vec<Instant> {
    (0..n)
        .map(|i| start + soak.mul_f64(0.8 * i as f64 / n as f64))
        .collect()
}

/// Scenario 8 on the mock (4 brokers): for `SOAK_SECS` (20 s) 4 threads send 20 000
/// records/s over 2 topics while a seeded driver starts and ends, at random and
/// overlapping, leader moves (1), a broker down (2), retriable Produce errors (3) and
/// non-retriable errors on the isolated partition (6). Only that partition's records may
/// fail, with the injected codes; everything acknowledged is read back once, in order.
#[test]
fn scenario_8_soak_on_the_mock_cluster() {
    let name = "soak-mock";
    let soak = soak_duration();
    let isolated = (0, 0);
    let (mock, topics) = mock_with_topics("soak-mock", 4);
    // One request in flight: see scenario 3 (the mock does not enforce sequences).
    let producer = producer(
        mock.bootstrap(),
        &[("max.in.flight.requests.per.connection", "1")],
    );
    let run = Run::new(&topics, 0);
    let mut rng = Rng::from_env(name);
    let log = |start: Instant, what: String| {
        eprintln!("{name} +{:.1?}: {what}", start.elapsed());
    };
    let mut mover = LeaderMover::new(TOPICS, Some(isolated));
    let mut isolated_errors = IsolatedErrors::default();
    let mut episodes = [0usize; 4];
    let took = drive(
        &producer,
        &run,
        Load::Until {
            per_second: SOAK_RATE,
        },
        |_done| {
            let start = Instant::now();
            let turns = turns(start, soak, 4);
            let mut moves = Episode::new("leader moves");
            let mut down = Episode::new("broker down");
            let mut retriable = Episode::new("retriable errors");
            let mut fatal = Episode::new("non-retriable errors on t0 partition 0");
            let mut down_broker = 0;
            let mut next_code = 0;
            while start.elapsed() < soak {
                let now = Instant::now();
                if moves.ends(now) {
                    log(start, format!("{} end", moves.name));
                }
                if down.ends(now) {
                    mock.broker_up(down_broker);
                    log(start, format!("broker {down_broker} up"));
                }
                if retriable.ends(now) {
                    mock.clear_errors(RDKafkaApiKey::Produce);
                    log(start, format!("{} end", retriable.name));
                }
                if fatal.ends(now) {
                    log(start, format!("{} end", fatal.name));
                }
                if moves.starts(&mut rng, now, turns[0]) {
                    log(start, format!("{} start", moves.name));
                }
                if down.starts(&mut rng, now, turns[1]) {
                    down_broker = 1 + rng.below(3) as i32;
                    mock.broker_down_quiesced(down_broker, Duration::from_millis(20));
                    log(start, format!("broker {down_broker} down"));
                }
                if retriable.starts(&mut rng, now, turns[2]) {
                    log(start, format!("{} start", retriable.name));
                }
                if fatal.starts(&mut rng, now, turns[3]) {
                    log(start, format!("{} start", fatal.name));
                }
                if moves.active() {
                    let k = rng.below(TOPICS as u64) as usize;
                    mover.move_one(&mock, &topics, k, &mut rng);
                }
                if retriable.active() {
                    // After a quiesced broker-down too, which cleared the stack.
                    push_retriable_errors(&mock, &mut rng, &mut next_code, 1_000);
                }
                // Top up every 10 ms within the tick, so that broker 4 never runs dry.
                for _ in 0..10 {
                    if fatal.active() {
                        isolated_errors.top_up(&mock, 8);
                    }
                    thread::sleep(TICK / 10);
                }
            }
            if down.active() {
                mock.broker_up(down_broker);
                log(start, format!("broker {down_broker} up"));
            }
            mock.clear_errors(RDKafkaApiKey::Produce);
            run.stop.store(true, Ordering::SeqCst);
            log(
                start,
                format!(
                    "faults over: {} leader moves in {} episodes, {} broker downs, {} \
                     retriable-error and {} non-retriable-error episodes",
                    mover.moves, moves.started, down.started, retriable.started, fatal.started
                ),
            );
            episodes = [
                moves.started,
                down.started,
                retriable.started,
                fatal.started,
            ];
        },
    );
    let report = check(name, mock.bootstrap(), &producer, &run, took);
    let injected = isolated_errors.injected(&mock);
    let by_code = assert_only_isolated_failed(&report, &run, isolated);
    eprintln!("{name}: requests failed by broker 4: {injected:?}; failed records: {by_code:?}");
    assert!(
        episodes.iter().all(|&n| n > 0),
        "a fault never ran: {episodes:?}"
    );
    let injected_total: usize = injected.values().sum();
    assert!(injected_total > 0, "broker 4 failed no request");
    assert!(report.total.acked >= 100_000, "{}", report.total);
    producer.close().unwrap();
}

/// Scenario 8 through the proxy on tansu: for `SOAK_SECS` (20 s) 4 threads send 20 000
/// records/s over 2 topics while a seeded driver cuts connections after tansu answered a
/// Produce request (4), holds a Produce response past request.timeout.ms (5) and blackholes
/// the broker for 0.5–2 s, well within delivery.timeout.ms (a short 7). Nothing fails;
/// everything is read back once, in order.
#[test]
fn scenario_8_soak_through_the_proxy_on_tansu() {
    let name = "soak-proxy";
    let soak = soak_duration();
    let (tansu, proxy, topics) = tansu_behind_proxy("soak-proxy");
    proxy.set_capture(false);
    let producer = producer(&proxy.bootstrap(), &PROXY_PRODUCER);
    let run = Run::new(&topics, 0);
    let mut rng = Rng::from_env(name);
    let log = |start: Instant, what: String| {
        eprintln!("{name} +{:.1?}: {what}", start.elapsed());
    };
    let blackholes = AtomicUsize::new(0);
    let took = drive(
        &producer,
        &run,
        Load::Until {
            per_second: SOAK_RATE,
        },
        |_done| {
            let start = Instant::now();
            let turns = turns(start, soak, 4);
            let mut cut = Episode::new("cut before a response");
            let mut slow = Episode::new("a response held past request.timeout.ms");
            let mut blackhole = Episode::new("blackhole");
            let mut errors = Episode::new("retriable errors");
            let codes = RETRIABLE.map(|(_, code)| code.code()).to_vec();
            while start.elapsed() < soak {
                let now = Instant::now();
                // Cuts and held responses are one-shot; their episodes only space them out.
                cut.ends(now);
                slow.ends(now);
                if errors.ends(now) {
                    proxy.update_script(|s| s.fail_produce = None);
                    log(start, "retriable errors end".into());
                }
                if errors.starts(&mut rng, now, turns[3]) {
                    // Answered by the proxy (nothing written) or after tansu wrote it.
                    let forward = rng.chance(0.5);
                    let codes = codes.clone();
                    proxy.update_script(|s| {
                        s.fail_produce = Some(ProduceFailure {
                            every: 5,
                            codes,
                            times: None,
                            forward,
                            record_errors: Vec::new(),
                        })
                    });
                    log(
                        start,
                        format!("retriable errors start (written first: {forward})"),
                    );
                }
                if blackhole.ends(now) {
                    proxy.update_script(|s| s.blackhole = false);
                    log(start, "blackhole end".into());
                }
                if cut.starts(&mut rng, now, turns[0]) {
                    let n = proxy.produce_count() + 1 + rng.below(10) as usize;
                    proxy.update_script(|s| s.cut_after_produce = Some(n));
                    log(start, format!("cut after Produce request {n}"));
                }
                if slow.starts(&mut rng, now, turns[1]) {
                    proxy.update_script(|s| {
                        s.delay_produce = Some(ProduceDelay {
                            every: 1,
                            delay: HOLD,
                            times: Some(1),
                        })
                    });
                    log(start, format!("hold the next Produce response {HOLD:?}"));
                }
                if blackhole.starts(&mut rng, now, turns[2]) {
                    proxy.update_script(|s| s.blackhole = true);
                    blackholes.fetch_add(1, Ordering::SeqCst);
                    log(start, "blackhole start".into());
                }
                thread::sleep(TICK);
            }
            proxy.set_script(Script::default());
            if proxy.failed_produce() == 0 {
                // Every error episode fell into a blackhole (no request reached the proxy's
                // failure logic): fail the next Produce requests now, while senders still run.
                log(
                    start,
                    "retriable errors never fired; failing the next requests".into(),
                );
                proxy.update_script(|s| {
                    s.fail_produce = Some(ProduceFailure {
                        every: 1,
                        codes: codes.clone(),
                        times: Some(3),
                        forward: false,
                        record_errors: Vec::new(),
                    })
                });
                let give_up = Instant::now() + Duration::from_secs(10);
                while proxy.script().fail_produce.is_some() && Instant::now() < give_up {
                    thread::sleep(Duration::from_millis(5));
                }
                proxy.set_script(Script::default());
            }
            run.stop.store(true, Ordering::SeqCst);
            log(
                start,
                format!(
                    "faults over: {} cuts, {} held responses, {} blackholes, {} failed requests",
                    proxy.cuts(),
                    proxy.delayed_responses(),
                    blackholes.load(Ordering::SeqCst),
                    proxy.failed_produce()
                ),
            );
        },
    );
    let report = check(name, tansu.bootstrap(), &producer, &run, took);
    assert!(
        proxy.cuts() + proxy.delayed_responses() > 0,
        "no fault fired"
    );
    assert!(blackholes.load(Ordering::SeqCst) > 0, "no blackhole");
    assert!(proxy.failed_produce() > 0, "no retriable error");
    assert_all_acked(&report, &run);
    assert!(report.total.acked >= 100_000, "{}", report.total);
    producer.close().unwrap();
}

// ---------------------------------------------------------------------------------------
// The multi-topic checker itself, on hand-made logs.
// ---------------------------------------------------------------------------------------

mod multi_topic_checker {
    use super::checker::{check_topics, encode, Outcome, TopicLedgers};
    use super::common::ReadRecord;

    fn log(entries: &[(i32, usize, usize)]) -> Vec<ReadRecord> {
        entries
            .iter()
            .enumerate()
            .map(|(i, &(partition, thread, seq))| ReadRecord {
                partition,
                offset: i as i64,
                key: None,
                value: Some(encode(thread, seq, 20)),
                headers: Vec::new(),
                timestamp: 0,
            })
            .collect()
    }

    /// Two topics, one thread, two records each, all acknowledged on partition 0.
    fn ledgers() -> TopicLedgers {
        let ledgers = TopicLedgers::new(&["a".to_string(), "b".to_string()], 1, 2);
        for k in 0..2 {
            for seq in 0..2 {
                ledgers.ledger(k).complete(0, seq, Some(0), Outcome::Acked);
            }
        }
        ledgers
    }

    #[test]
    fn the_same_value_in_two_topics_is_two_records_not_a_duplicate() {
        let clean = log(&[(0, 0, 0), (0, 0, 1)]);
        let report = check_topics(&ledgers(), &[clean.clone(), clean]);
        let t = report.total;
        assert_eq!((t.sent, t.acked, t.read_back), (4, 4, 4));
        assert_eq!(
            (t.lost, t.duplicated, t.reordered, t.unexpected),
            (0, 0, 0, 0)
        );
        assert_eq!(report.topic(1).total.read_back, 2);
    }

    #[test]
    fn each_topic_counts_its_own_faults_and_the_total_adds_them() {
        let a = log(&[(0, 0, 1), (0, 0, 0)]); // reordered
        let b = log(&[(0, 0, 0)]); // seq 1 lost
        let report = check_topics(&ledgers(), &[a, b]);
        assert_eq!(report.topic(0).total.reordered, 1);
        assert_eq!(report.topic(0).total.lost, 0);
        assert_eq!(report.topic(1).total.lost, 1);
        assert_eq!(report.topic(1).total.reordered, 0);
        let t = report.total;
        assert_eq!((t.lost, t.reordered, t.read_back), (1, 1, 3));
    }

    #[test]
    fn an_open_ended_ledger_grows_per_thread() {
        let ledgers = TopicLedgers::new(&["a".to_string()], 2, 0);
        assert_eq!(ledgers.ledger(0).push(1), 0);
        assert_eq!(ledgers.ledger(0).push(1), 1);
        assert_eq!(ledgers.ledger(0).push(0), 0);
        assert_eq!(ledgers.pending(), 3);
        ledgers.ledger(0).complete(1, 1, Some(2), Outcome::Failed);
        assert_eq!(ledgers.count(Outcome::Failed), 1);
        assert_eq!(ledgers.pending(), 2);
    }
}

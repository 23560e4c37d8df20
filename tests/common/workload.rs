//! The workload of the multi-topic fault runs (issue 4's scenarios on the mock cluster and
//! through the proxy, and the failover scenarios on the 3-node Kafka cluster): 4 threads
//! send 100 000 records over 2 topics × 6 partitions with `send_with_callback` (half of
//! them keyed, key = thread and seq / 100, so that every partition gets traffic; the other
//! half with null keys, spread by the sticky partitioner) while a fault driver thread
//! injects its fault; then the delivery checker ([`super::checker`]) reads both topics back
//! and counts lost, duplicated and reordered records per (topic, partition).
#![allow(dead_code)]

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use super::checker::{self, Outcome, RunReport, TopicLedgers};
use super::{check_run, unique_topic};
use kafka_producer::partition::partition_for_key;
use kafka_producer::{Error, Producer, ProducerRecord};

/// Sending threads.
pub const THREADS: usize = 4;
/// Topics of a run.
pub const TOPICS: usize = 2;
/// Partitions of each topic.
pub const PARTITIONS: i32 = 6;
/// Bytes of every record value.
pub const VALUE_SIZE: usize = 100;
/// Records each thread sends to each topic: 4 threads × 2 topics × 12 500 = 100 000.
pub const PER_THREAD: usize = 12_500;
/// How often the fault drivers act.
pub const TICK: Duration = Duration::from_millis(100);

// ---------------------------------------------------------------------------------------
// The workload
// ---------------------------------------------------------------------------------------

/// A record that completed with an error.
#[derive(Debug)]
pub struct Failure {
    /// Topic index.
    pub topic: usize,
    /// The partition its key hashes to; `None` for a null key.
    pub partition: Option<i32>,
    /// What the callback got.
    pub error: Error,
}

/// What the sending threads and the callbacks saw.
#[derive(Debug)]
pub struct Run {
    pub ledgers: TopicLedgers,
    pub failures: Mutex<Vec<Failure>>,
    /// Keyed records acknowledged on another partition than their key hashes to (then the
    /// partitions the checker gives failed keyed records would be wrong).
    pub misplaced: AtomicUsize,
    /// Set to stop an open-ended run.
    pub stop: AtomicBool,
    /// (topic, thread, partition, seq) of every record whose partition is known, in the
    /// order the callbacks ran (one callback thread: completion order).
    pub completions: Mutex<Vec<(usize, usize, i32, usize)>>,
    /// Every completion with its partition, when the record was sent and how long it took.
    pub latencies: Mutex<Vec<Latency>>,
}

/// One record's time from `send_with_callback` to its callback.
#[derive(Debug, Clone, Copy)]
pub struct Latency {
    /// Topic index.
    pub topic: usize,
    /// Sending thread.
    pub thread: usize,
    /// The record's sequence number in its thread's sends to the topic.
    pub seq: usize,
    /// The partition it was acknowledged on (its key's partition if it failed; -1 unknown).
    pub partition: i32,
    /// When it was sent.
    pub sent_at: Instant,
    /// From send to callback.
    pub took: Duration,
    /// Whether it was acknowledged.
    pub acked: bool,
}

impl Run {
    pub fn new(topics: &[String], per_thread: usize) -> Arc<Run> {
        Arc::new(Run {
            ledgers: TopicLedgers::new(topics, THREADS, per_thread),
            failures: Mutex::new(Vec::new()),
            misplaced: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
            completions: Mutex::new(Vec::new()),
            latencies: Mutex::new(Vec::new()),
        })
    }
}

/// The key of record `seq` of thread `t`: even sequences are keyed (the key changes every
/// 100 sequences), odd ones have none.
pub fn key_of(t: usize, seq: usize) -> Option<Vec<u8>> {
    (seq % 2 == 0).then(|| format!("t{t}-k{}", seq / 100).into_bytes())
}

/// Sends record `seq` of thread `t` to topic `k`, with the key [`key_of`] gives.
pub fn send_one(producer: &Producer, run: &Arc<Run>, t: usize, k: usize, seq: usize) {
    let topic = run.ledgers.topics()[k].as_str();
    let mut record = ProducerRecord::new(topic, checker::encode(t, seq, VALUE_SIZE));
    let mut keyed_partition = None;
    if let Some(key) = key_of(t, seq) {
        keyed_partition = Some(partition_for_key(&key, PARTITIONS as usize));
        record = record.with_key(key);
    }
    let run = Arc::clone(run);
    let sent_at = Instant::now();
    producer.send_with_callback(record, move |r| {
        let took = sent_at.elapsed();
        let (partition, acked) = match &r {
            Ok(md) => (md.partition(), true),
            Err(_) => (keyed_partition.unwrap_or(-1), false),
        };
        run.latencies.lock().unwrap().push(Latency {
            topic: k,
            thread: t,
            seq,
            partition,
            sent_at,
            took,
            acked,
        });
        completed(&run, k, t, seq, keyed_partition, r);
    });
}

/// Books the result of record `seq` of thread `t` to topic `k`.
fn completed(
    run: &Run,
    k: usize,
    t: usize,
    seq: usize,
    keyed_partition: Option<i32>,
    result: Result<kafka_producer::RecordMetadata, Error>,
) {
    match result {
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
    }
}

/// How the sending threads send.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// `PER_THREAD` records per thread and topic, spread evenly over this long.
    Paced(Duration),
    /// Records at this rate per thread, until `Run::stop`.
    Until { per_second: u64 },
}

/// One sending thread: alternates topics, pacing itself every 50 records.
pub fn sender(producer: &Producer, run: &Arc<Run>, t: usize, load: Load) {
    let start = Instant::now();
    let mut i = 0usize;
    loop {
        match load {
            Load::Paced(over) => {
                let total = PER_THREAD * TOPICS;
                if i == total {
                    return;
                }
                if i % 50 == 0 {
                    let due = start + over.mul_f64(i as f64 / total as f64);
                    thread::sleep(due.saturating_duration_since(Instant::now()));
                }
                send_one(producer, run, t, i % TOPICS, i / TOPICS);
            }
            Load::Until { per_second } => {
                if i % 50 == 0 {
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
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Runs the sending threads and `driver` (on its own thread) together; flushes once the
/// senders are done and then sets the flag the driver watches, so faults go on through the
/// flush. Open-ended senders ([`Load::Until`]) stop when the driver returns. Returns how
/// long sending and flushing took.
pub fn drive<D>(producer: &Producer, run: &Arc<Run>, load: Load, driver: D) -> Duration
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
pub fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> Producer {
    let mut props = vec![("bootstrap.servers", bootstrap), ("linger.ms", "5")];
    props.extend_from_slice(extra);
    Producer::from_properties(props).expect("a valid configuration")
}

/// Two fresh topic names.
pub fn topics(prefix: &str) -> Vec<String> {
    (0..TOPICS)
        .map(|k| unique_topic(&format!("{prefix}-{k}")))
        .collect()
}

/// Reads the run back, prints the checker's report and the producer's counters.
pub fn check(
    name: &str,
    bootstrap: &str,
    producer: &Producer,
    run: &Run,
    took: Duration,
) -> RunReport {
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
pub fn assert_clean(report: &RunReport, run: &Run) {
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
pub fn assert_completed_in_send_order(run: &Run) {
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
pub fn assert_all_acked(report: &RunReport, run: &Run) {
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
pub struct Rng(pub u64);

impl Rng {
    /// Seeded from `SOAK_SEED` when set, else from the clock; prints the seed.
    pub fn from_env(name: &str) -> Rng {
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

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A number in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// True with probability `p`.
    pub fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// A duration in `from..to`.
    pub fn between(&mut self, from: Duration, to: Duration) -> Duration {
        let span = (to - from).as_millis() as u64;
        from + Duration::from_millis(self.below(span.max(1)))
    }
}

//! The child process: runs one client through one scenario and reports its figures as one
//! `RESULT key=value ...` line on stdout. Everything else goes to stderr.
//!
//! Being alone in its process, the client owns the process's CPU time (user + system,
//! `/proc/self/stat`, every thread including librdkafka's) and its peak RSS (`VmHWM` in
//! `/proc/self/status`).
//!
//! Steps: build the producer; warm up (send `warmup` records and wait for all of them, which
//! also fetches metadata, connects and, with idempotence, gets a producer id); then measure
//! the load (CPU and wall time from the first send to the last acknowledgement, peak RSS at
//! its end); then close; then print the line. In the stalled scenario the child prints
//! `READY` after the warm-up and waits for `GO` on stdin, which the parent sends once the
//! broker is stopped; in the wire-limit scenario (19) likewise, the parent sending `GO` once
//! the sink captures the Produce requests that follow.
//!
//! The transactional scenario (7): after building the producer, `init_transactions` (timed
//! on its own, reported as `init_ms`, outside the measurement); the warm-up is sent in
//! transactions, and so is the load: begin, send `per_transaction` records, commit, and the
//! next. The measurement runs from the first begin to the return of the last commit, so it
//! includes every commit; the line adds the number of transactions and the time spent in
//! the commits (`commit_us`, from the call until it returned: sending the rest, the
//! acknowledgements, EndTxn). A commit returns once every record of its transaction is
//! acknowledged, and its callbacks or delivery reports ran.
//!
//! The exit status is non-zero when a record was not delivered (outside the stalled
//! scenario), when a client call failed, or when the close failed.

use std::fmt::Display;
use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_producer::serialize::BytesSerializer;
use kafka_producer::{Producer, ProducerRecord};
use rdkafka::config::ClientConfig;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::producer::{
    BaseProducer, BaseRecord, DeliveryResult, Producer as _, ProducerContext, PurgeConfig,
};
use rdkafka::ClientContext;

use crate::procfs;
use crate::scenario::{
    self, records_at_rate, transactional_id, Client, Load, Mode, Scenario, Transport,
};

/// The first word of the result line.
pub const RESULT_PREFIX: &str = "RESULT";
/// Stalled scenario: the child is warmed up and waits for `GO`.
pub const READY: &str = "READY";
pub const GO: &str = "GO";

/// How long the child waits for outstanding acknowledgements before it gives up.
const DELIVERY_WAIT: Duration = Duration::from_secs(180);
/// Stalled scenario: how long a close may take before undelivered records are dropped.
const STALLED_CLOSE: Duration = Duration::from_millis(500);
/// rdkafka's dedicated poll thread polls for this long per call, as rdkafka's own
/// `ThreadedProducer` does. `BaseProducer::poll` serves events as they arrive until the
/// timeout passes, so this adds no latency, and bounds how long the thread takes to stop.
/// Note: rdkafka-rust hands librdkafka the remaining time rounded *down* to whole
/// milliseconds, so the last partial millisecond of every call is a busy loop of
/// non-blocking polls: up to 1 % of a core here, as in `ThreadedProducer`.
const POLL_INTERVAL: Duration = Duration::from_millis(100);
/// rdkafka, after QueueFull: the sending thread serves the delivery reports that are ready
/// (a non-blocking poll) and then sleeps this long before it retries. This is the C idiom
/// "poll briefly on QueueFull" without rdkafka-rust's busy loop: `poll(1 ms)` would spin
/// for the whole millisecond (see `POLL_INTERVAL`), on every sending thread.
const QUEUE_FULL_BACKOFF: Duration = Duration::from_millis(1);

/// Scenario 7, rdkafka: the timeout of `init_transactions` and `commit_transaction` (ours
/// blocks up to max.block.ms, Java's default 60 s).
const TRANSACTION_CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Idle scenario: how long after the warm-up the idle measurement starts (the protocol's
/// `IDLE_SETTLE`; the peers wait as long).
const IDLE_SETTLE: Duration = Duration::from_secs(1);

/// The placeholder of the CA argument of a plaintext run.
pub const NO_CA: &str = "-";

/// `args`: client, scenario id, mode, transport, bootstrap servers, topic, and the CA's PEM
/// file (SASL_SSL) or [`NO_CA`].
pub fn child_main(args: &[String]) -> ExitCode {
    let parsed = match args {
        [client, id, mode, transport, bootstrap, topic, ca] => Client::parse(client)
            .zip(
                id.parse::<u8>()
                    .ok()
                    .filter(|id| scenario::IDS.contains(id)),
            )
            .zip(Mode::parse(mode))
            .zip(Transport::parse(transport))
            .map(|(((client, id), mode), transport)| {
                let ca = (transport == Transport::SaslSsl).then_some(ca.as_str());
                let mut scenario = scenario::scenario(id, mode);
                if let (Load::Count(_), Some(records)) = (scenario.load, records_override()) {
                    scenario.load = Load::Count(records);
                }
                (client, scenario, bootstrap, topic, ca)
            }),
        _ => None,
    };
    let Some((client, scenario, bootstrap, topic, ca)) = parsed else {
        eprintln!(
            "child: expected CLIENT SCENARIO MODE TRANSPORT BOOTSTRAP TOPIC CA, got {args:?}"
        );
        return ExitCode::from(2);
    };
    let transport = if ca.is_some() {
        Transport::SaslSsl
    } else {
        Transport::Plaintext
    };
    let who = format!("child {client}, scenario {} over {transport}", scenario.id);
    let result = match client {
        Client::Ours => {
            Ours::start(&scenario, bootstrap, topic, ca).and_then(|c| run(c, &scenario))
        }
        Client::Rdkafka => {
            Rdkafka::start(&scenario, bootstrap, topic, ca).and_then(|c| run(c, &scenario))
        }
        Client::Java | Client::FranzGo => Err(format!(
            "{client} is a program of its own (throughput/peers.rs), not a child of this binary"
        )),
    };
    match result {
        Ok(report) => {
            println!("{}", report.line());
            let _ = std::io::stdout().flush();
            match report.problem(&scenario) {
                None => ExitCode::SUCCESS,
                Some(problem) => {
                    eprintln!("{who}: FAILED: {problem}");
                    ExitCode::FAILURE
                }
            }
        }
        Err(e) => {
            eprintln!("{who}: FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The environment variable that replaces the record count of a count load: the
/// instruction counts run scenario 1 at two sizes (see `instructions` in the bench's root).
pub const RECORDS_ENV: &str = "BENCH_CHILD_RECORDS";

fn records_override() -> Option<u64> {
    std::env::var(RECORDS_ENV).ok()?.parse().ok()
}

/// What one client does; the load loops and the measurement are shared.
trait Driver: Sync + Sized {
    /// Hands one record to the client; its outcome goes to `tally`. `sent_ns` is the time of
    /// the send on `tally`'s clock (0 when latency is not measured). `give_up`: the stalled
    /// scenario's end, after which a client that has no room may drop the record.
    /// `Ok(false)` when the record was dropped that way.
    fn send(
        &self,
        tally: &'static Tally,
        key: Option<&Bytes>,
        value: &Bytes,
        sent_ns: u64,
        give_up: Option<Instant>,
    ) -> Result<bool, String>;

    /// QueueFull retries so far (rdkafka only).
    fn queue_full(&self) -> u64 {
        0
    }

    /// Global errors the client reported (rdkafka's error callback) and the first one.
    fn client_errors(&self) -> (u64, Option<String>) {
        (0, None)
    }

    /// Transactional scenario: gets the producer id and epoch of its `transactional.id`.
    fn init_transactions(&self) -> Result<(), String>;

    /// Transactional scenario: opens a transaction.
    fn begin_transaction(&self) -> Result<(), String>;

    /// Transactional scenario: commits the open transaction, and returns once it is
    /// committed and `tally` counts `sent` completed records (every record of it and of the
    /// transactions before).
    fn commit_transaction(&self, tally: &'static Tally, sent: u64) -> Result<(), String>;

    /// Closes the client: gracefully, or (stalled) dropping what cannot be delivered
    /// within a short time. Every record handed over must have completed when it returns.
    /// Returns how long the close took until every record had completed (rdkafka: not
    /// counting the poll thread's stop, up to `POLL_INTERVAL`, and the handle's teardown).
    fn close(self, stalled: bool) -> Result<Duration, String>;
}

/// What the sending threads send: record `i` of a phase has value `i % VALUE_POOL` and, in
/// a keyed scenario, key `i % keys` (both built once, before the warm-up).
struct Records {
    values: Vec<Bytes>,
    keys: Vec<Bytes>,
}

impl Records {
    fn new(s: &Scenario) -> Records {
        Records {
            values: scenario::values(s.value_size)
                .into_iter()
                .map(Bytes::from)
                .collect(),
            keys: (0..s.keys)
                .map(|i| Bytes::from(scenario::key(i, s.keys)))
                .collect(),
        }
    }

    fn value(&self, i: u64) -> &Bytes {
        &self.values[i as usize % self.values.len()]
    }

    fn key(&self, i: u64) -> Option<&Bytes> {
        (!self.keys.is_empty()).then(|| &self.keys[i as usize % self.keys.len()])
    }
}

/// Sends the warm-up, then measures the scenario's load, then closes.
fn run<D: Driver>(driver: D, s: &Scenario) -> Result<Report, String> {
    let pool = Records::new(s);
    let init = if s.is_transactional() {
        let started = Instant::now();
        driver
            .init_transactions()
            .map_err(|e| format!("init_transactions: {e}"))?;
        Some(started.elapsed())
    } else {
        None
    };
    let warmup = Tally::leak(s.warmup, false);
    if let Load::Transactions {
        per_transaction, ..
    } = s.load
    {
        let mut unmeasured = Transactions::default();
        send_transactions(
            &driver,
            warmup,
            &pool,
            s.warmup,
            per_transaction,
            &mut unmeasured,
        )
        .map_err(|e| format!("warm-up: {e}"))?;
    } else {
        for i in 0..s.warmup {
            driver.send(warmup, pool.key(i), pool.value(i), 0, None)?;
        }
    }
    if !warmup.wait_done(s.warmup, DELIVERY_WAIT) {
        return Err(format!(
            "warm-up: {} of {} records completed within {DELIVERY_WAIT:?}",
            warmup.done(),
            s.warmup
        ));
    }
    if let Some(problem) = warmup.problem(s.warmup) {
        return Err(format!("warm-up: {problem}"));
    }

    if s.waits_for_go() {
        // The parent stops the broker (stalled) or starts the sink's capture (wire limit)
        // between READY and GO.
        println!("{READY}");
        std::io::stdout().flush().map_err(|e| e.to_string())?;
        let mut line = String::new();
        std::io::stdin()
            .lock()
            .read_line(&mut line)
            .map_err(|e| format!("reading GO: {e}"))?;
        if line.trim() != GO {
            return Err(format!("expected {GO} on stdin, got {line:?}"));
        }
    }

    let (records, timed) = match s.load {
        Load::Count(n) => (n, false),
        Load::Rate { per_sec, duration } => (records_at_rate(per_sec, duration), true),
        // At most what fits in memory; the tally only sizes its latency buffer from this.
        Load::Stalled { .. } => (0, false),
        Load::Transactions { records, .. } => (records, false),
        Load::Idle { .. } => (0, false),
    };
    if s.is_idle() {
        // The warm-up's last acknowledgements and callbacks are traffic: idle starts after.
        std::thread::sleep(IDLE_SETTLE);
    }
    let mut transactions = Transactions::default();
    let mut idle = None;
    let tally = Tally::leak(records, timed);
    let rss_before_kb = procfs::memory_kb("VmRSS")?;
    let cpu_before = procfs::cpu_ticks("self")?;
    let started = Instant::now();
    let sent = match s.load {
        Load::Count(n) => send_count(&driver, tally, &pool, n, s.threads)?,
        Load::Rate { per_sec, duration } => send_at_rate(&driver, tally, &pool, per_sec, duration)?,
        Load::Stalled { duration } => send_stalled(&driver, tally, &pool, duration)?,
        Load::Transactions {
            records,
            per_transaction,
        } => send_transactions(
            &driver,
            tally,
            &pool,
            records,
            per_transaction,
            &mut transactions,
        )?,
        Load::Idle { duration } => {
            let (cpu_before, switches_before) = procfs::threads_cpu_ns_and_switches()?;
            std::thread::sleep(duration);
            let (cpu_after, switches_after) = procfs::threads_cpu_ns_and_switches()?;
            idle = Some(Idle {
                cpu: Duration::from_nanos(cpu_after.saturating_sub(cpu_before)),
                wakeups: switches_after.saturating_sub(switches_before),
            });
            0
        }
    };
    if !s.is_stalled() && !tally.wait_done(sent, DELIVERY_WAIT) {
        return Err(format!(
            "{} of {sent} records completed within {DELIVERY_WAIT:?}",
            tally.done()
        ));
    }
    let elapsed = started.elapsed();
    let cpu = procfs::cpu_ticks("self")? - cpu_before;
    let peak_rss_kb = procfs::memory_kb("VmHWM")?;
    let queue_full = driver.queue_full();
    let (client_errors, first_client_error) = driver.client_errors();

    let close_time = driver.close(s.is_stalled())?;
    // A close completes every record (delivered, or failed when stalled).
    if !tally.wait_done(sent, Duration::from_secs(5)) {
        return Err(format!(
            "after close, {} of {sent} records completed",
            tally.done()
        ));
    }
    if let Some(e) = first_client_error {
        eprintln!("note: the client reported {client_errors} error(s); the first: {e}");
    }
    Ok(Report {
        sent,
        acked: tally.acked.load(Ordering::Relaxed),
        failed: tally.failed.load(Ordering::Relaxed),
        refused: tally.refused.load(Ordering::Relaxed),
        first_error: tally.first_error(),
        queue_full,
        elapsed,
        cpu_ticks: cpu,
        peak_rss_kb,
        rss_before_kb,
        latency: tally.percentiles(),
        close_time,
        client_errors,
        transactions: init.map(|init| (init, transactions)),
        idle,
    })
}

/// `records` records as fast as the client takes them, split over `threads` threads.
fn send_count<D: Driver>(
    driver: &D,
    tally: &'static Tally,
    pool: &Records,
    records: u64,
    threads: usize,
) -> Result<u64, String> {
    let threads = threads as u64;
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let range = records * t / threads..records * (t + 1) / threads;
                scope.spawn(move || {
                    for i in range.clone() {
                        driver.send(tally, pool.key(i), pool.value(i), 0, None)?;
                    }
                    Ok::<u64, String>(range.end - range.start)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .map_err(|_| "a sending thread panicked".to_string())?
            })
            .sum()
    })
}

/// The transactions of a phase: how many, and the time spent in their commits.
#[derive(Default)]
struct Transactions {
    count: u64,
    committing: Duration,
}

/// One thread: `records` records in transactions of `per_transaction` (the last one may be
/// shorter), each begun, filled and committed before the next one begins.
fn send_transactions<D: Driver>(
    driver: &D,
    tally: &'static Tally,
    pool: &Records,
    records: u64,
    per_transaction: u64,
    stats: &mut Transactions,
) -> Result<u64, String> {
    let per_transaction = per_transaction.max(1);
    let mut sent = 0u64;
    while sent < records {
        let end = records.min(sent + per_transaction);
        driver
            .begin_transaction()
            .map_err(|e| format!("begin_transaction: {e}"))?;
        for i in sent..end {
            driver.send(tally, pool.key(i), pool.value(i), 0, None)?;
        }
        sent = end;
        let committing = Instant::now();
        driver
            .commit_transaction(tally, sent)
            .map_err(|e| format!("commit_transaction (transaction {}): {e}", stats.count + 1))?;
        stats.committing += committing.elapsed();
        stats.count += 1;
    }
    Ok(sent)
}

/// One thread at `per_sec` records per second for `duration`, on an absolute schedule
/// (record n is due n / per_sec after the start), so an oversleep is caught up at once.
/// The thread sleeps whenever it is ahead; it never spins, which would take a core from
/// the client on a small machine.
fn send_at_rate<D: Driver>(
    driver: &D,
    tally: &'static Tally,
    pool: &Records,
    per_sec: u64,
    duration: Duration,
) -> Result<u64, String> {
    let records = records_at_rate(per_sec, duration);
    let start = Instant::now();
    for i in 0..records {
        let due = start + Duration::from_nanos(i * 1_000_000_000 / per_sec);
        let now = Instant::now();
        if due > now {
            std::thread::sleep(due - now);
        }
        let sent_ns = tally.now_ns();
        driver.send(tally, pool.key(i), pool.value(i), sent_ns, None)?;
    }
    Ok(records)
}

/// One thread sends as fast as the client accepts records until `duration` has passed.
fn send_stalled<D: Driver>(
    driver: &D,
    tally: &'static Tally,
    pool: &Records,
    duration: Duration,
) -> Result<u64, String> {
    let end = Instant::now() + duration;
    let mut sent = 0u64;
    while Instant::now() < end {
        if driver.send(tally, pool.key(sent), pool.value(sent), 0, Some(end))? {
            sent += 1;
        }
    }
    Ok(sent)
}

/// The outcomes of one phase's records, shared with the client's completion callbacks.
pub struct Tally {
    clock: Instant,
    done: AtomicU64,
    acked: AtomicU64,
    failed: AtomicU64,
    /// Ours: records failed with `BufferExhausted` (no room within max.block.ms).
    refused: AtomicU64,
    first_error: Mutex<Option<String>>,
    /// Microseconds from send to acknowledgement, when measured.
    latencies_us: Option<Mutex<Vec<u32>>>,
    /// The count `wait_done` waits for (u64::MAX while nobody waits).
    expected: AtomicU64,
    wake: (Mutex<()>, Condvar),
}

/// A record's outcome.
pub enum Outcome<'a> {
    Acked,
    Refused,
    Failed(&'a dyn Display),
}

impl Tally {
    /// Leaked: callbacks need `'static`, and a plain reference costs nothing per record
    /// (an `Arc` clone per record would add a contended atomic to the measured path).
    fn leak(records: u64, timed: bool) -> &'static Tally {
        Box::leak(Box::new(Tally {
            clock: Instant::now(),
            done: AtomicU64::new(0),
            acked: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            refused: AtomicU64::new(0),
            first_error: Mutex::new(None),
            latencies_us: timed.then(|| Mutex::new(Vec::with_capacity(records as usize))),
            expected: AtomicU64::new(u64::MAX),
            wake: (Mutex::new(()), Condvar::new()),
        }))
    }

    pub fn now_ns(&self) -> u64 {
        self.clock.elapsed().as_nanos() as u64
    }

    /// Called once per record, from the client's callback or delivery report.
    pub fn complete(&self, outcome: Outcome<'_>, sent_ns: u64) {
        match outcome {
            Outcome::Acked => {
                if let Some(latencies) = &self.latencies_us {
                    let us = self.now_ns().saturating_sub(sent_ns) / 1000;
                    lock(latencies).push(us.min(u64::from(u32::MAX)) as u32);
                }
                self.acked.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Refused => {
                self.refused.fetch_add(1, Ordering::Relaxed);
            }
            Outcome::Failed(error) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                lock(&self.first_error).get_or_insert_with(|| error.to_string());
            }
        }
        let done = self.done.fetch_add(1, Ordering::AcqRel) + 1;
        if done >= self.expected.load(Ordering::Acquire) {
            let _guard = lock(&self.wake.0);
            self.wake.1.notify_all();
        }
    }

    fn done(&self) -> u64 {
        self.done.load(Ordering::Acquire)
    }

    /// Waits until `count` records completed; false after `timeout`.
    fn wait_done(&self, count: u64, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        let mut guard = lock(&self.wake.0);
        // Set under the lock: a completion that sees the new value notifies after we wait
        // (it needs the lock), one that saw the old value counted before we check.
        self.expected.store(count, Ordering::Release);
        loop {
            if self.done() >= count {
                self.expected.store(u64::MAX, Ordering::Release);
                return true;
            }
            let now = Instant::now();
            if now >= deadline {
                return false;
            }
            guard = self
                .wake
                .1
                .wait_timeout(guard, (deadline - now).min(Duration::from_millis(100)))
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
    }

    fn first_error(&self) -> Option<String> {
        lock(&self.first_error).clone()
    }

    /// Why `sent` records do not all count as delivered, if they do not.
    fn problem(&self, sent: u64) -> Option<String> {
        let (acked, failed, refused) = (
            self.acked.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.refused.load(Ordering::Relaxed),
        );
        (acked != sent || failed != 0 || refused != 0).then(|| {
            format!(
                "{acked} of {sent} records acknowledged, {failed} failed, {refused} refused \
                 for lack of buffer; first error: {}",
                self.first_error().as_deref().unwrap_or("none")
            )
        })
    }

    fn percentiles(&self) -> Option<Percentiles> {
        let mut latencies = lock(self.latencies_us.as_ref()?).clone();
        if latencies.is_empty() {
            return None;
        }
        latencies.sort_unstable();
        // The sample at index floor(p * n), as Kafka's perf tool.
        let at =
            |p: f64| latencies[((p * latencies.len() as f64) as usize).min(latencies.len() - 1)];
        Some(Percentiles {
            p50_us: at(0.50),
            p99_us: at(0.99),
            p999_us: at(0.999),
            max_us: *latencies.last().unwrap_or(&0),
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

struct Percentiles {
    p50_us: u32,
    p99_us: u32,
    p999_us: u32,
    max_us: u32,
}

/// The idle scenario's figures: the CPU time of every thread of the process while it was
/// idle, and their context switches (about how often they woke up; the measuring thread's
/// own sleep counts one or two).
struct Idle {
    cpu: Duration,
    wakeups: u64,
}

/// What the child reports.
struct Report {
    /// Records handed to the client (rdkafka: accepted by `send`; ours: every
    /// `send_with_callback`, of which `refused` failed for lack of buffer).
    sent: u64,
    acked: u64,
    failed: u64,
    refused: u64,
    first_error: Option<String>,
    queue_full: u64,
    elapsed: Duration,
    cpu_ticks: u64,
    peak_rss_kb: u64,
    /// RSS when the measurement started (after the warm-up).
    rss_before_kb: u64,
    latency: Option<Percentiles>,
    close_time: Duration,
    client_errors: u64,
    /// Transactional scenario: how long `init_transactions` took, and the measured phase's
    /// transactions.
    transactions: Option<(Duration, Transactions)>,
    /// Idle scenario: what the idle producer used.
    idle: Option<Idle>,
}

/// The result line of a run that is no client's: the bare loop of the wire-limit scenario
/// (`throughput/wire.rs`), which wrote requests holding `records` records, of which the
/// responses that arrived cover `answered`, in `elapsed` and `cpu_ticks` of CPU time.
pub fn bare_result_line(
    records: u64,
    answered: u64,
    elapsed: Duration,
    cpu_ticks: u64,
    peak_rss_kb: u64,
    rss_before_kb: u64,
) -> String {
    Report {
        sent: records,
        acked: answered,
        failed: 0,
        refused: 0,
        first_error: None,
        queue_full: 0,
        elapsed,
        cpu_ticks,
        peak_rss_kb,
        rss_before_kb,
        latency: None,
        close_time: Duration::ZERO,
        client_errors: 0,
        transactions: None,
        idle: None,
    }
    .line()
}

impl Report {
    /// `RESULT key=value ...`: values never contain spaces.
    fn line(&self) -> String {
        let mut line = format!(
            "{RESULT_PREFIX} sent={} acked={} failed={} refused={} queue_full={} \
             elapsed_us={} cpu_ticks={} peak_rss_kb={} rss_before_kb={} close_ms={} \
             client_errors={}",
            self.sent,
            self.acked,
            self.failed,
            self.refused,
            self.queue_full,
            self.elapsed.as_micros(),
            self.cpu_ticks,
            self.peak_rss_kb,
            self.rss_before_kb,
            self.close_time.as_millis(),
            self.client_errors,
        );
        if let Some(p) = &self.latency {
            line += &format!(
                " p50_us={} p99_us={} p999_us={} max_us={}",
                p.p50_us, p.p99_us, p.p999_us, p.max_us
            );
        }
        if let Some(idle) = &self.idle {
            line += &format!(
                " idle_cpu_us={} wakeups={}",
                idle.cpu.as_micros(),
                idle.wakeups
            );
        }
        if let Some((init, t)) = &self.transactions {
            line += &format!(
                " init_ms={} transactions={} commit_us={}",
                init.as_millis(),
                t.count,
                t.committing.as_micros()
            );
        }
        line
    }

    /// Outside the stalled scenario every record must be acknowledged.
    fn problem(&self, s: &Scenario) -> Option<String> {
        if s.is_stalled() {
            return None;
        }
        (self.acked != self.sent || self.failed != 0 || self.refused != 0).then(|| {
            format!(
                "{} of {} records acknowledged, {} failed, {} refused for lack of buffer; \
                 first error: {}",
                self.acked,
                self.sent,
                self.failed,
                self.refused,
                self.first_error.as_deref().unwrap_or("none")
            )
        })
    }
}

// ---------------------------------------------------------------------------------------
// Ours
// ---------------------------------------------------------------------------------------

/// This crate's producer, configured from Java property names, sending with callbacks.
struct Ours {
    producer: Producer<Bytes, Bytes>,
    /// Shared by every record (`Topic` is an `Arc<str>`): no allocation for the name.
    topic: kafka_producer::Topic,
}

impl Ours {
    /// `ca`: over SASL_SSL, trusting this PEM file.
    fn start(s: &Scenario, bootstrap: &str, topic: &str, ca: Option<&str>) -> Result<Ours, String> {
        let mut builder = Producer::builder();
        let tls = ca.map_or_else(Vec::new, scenario::java_tls_properties);
        let txn = s.transaction_properties(&transactional_id(topic));
        for (name, value) in s
            .java_properties(bootstrap)
            .into_iter()
            .chain(tls)
            .chain(txn)
        {
            builder = builder.set(name, value);
        }
        let producer = builder
            .key_serializer(BytesSerializer)
            .value_serializer(BytesSerializer)
            .build()
            .map_err(|e| format!("creating the producer: {e}"))?;
        Ok(Ours {
            producer,
            topic: kafka_producer::Topic::from(topic),
        })
    }
}

impl Driver for Ours {
    fn send(
        &self,
        tally: &'static Tally,
        key: Option<&Bytes>,
        value: &Bytes,
        sent_ns: u64,
        _give_up: Option<Instant>,
    ) -> Result<bool, String> {
        // A `Bytes` key or value shares the bench's buffer (a reference count, no copy):
        // the one copy is into the batch, as rdkafka's one copy is from the borrowed slice.
        let mut record = ProducerRecord::new(&self.topic, value.clone());
        if let Some(key) = key {
            record = record.with_key(key.clone());
        }
        self.producer
            .send_with_callback(record, move |result| match result {
                Ok(_) => tally.complete(Outcome::Acked, sent_ns),
                Err(kafka_producer::Error::BufferExhausted { .. }) => {
                    tally.complete(Outcome::Refused, sent_ns)
                }
                Err(e) => tally.complete(Outcome::Failed(&e), sent_ns),
            });
        Ok(true)
    }

    fn init_transactions(&self) -> Result<(), String> {
        self.producer.init_transactions().map_err(|e| e.to_string())
    }

    fn begin_transaction(&self) -> Result<(), String> {
        self.producer.begin_transaction().map_err(|e| e.to_string())
    }

    fn commit_transaction(&self, tally: &'static Tally, sent: u64) -> Result<(), String> {
        // Returns once the transaction is committed, its records' callbacks having run.
        self.producer
            .commit_transaction()
            .map_err(|e| e.to_string())?;
        if tally.done() < sent {
            return Err(format!(
                "commit_transaction returned with {} of {sent} callbacks run",
                tally.done()
            ));
        }
        Ok(())
    }

    fn close(self, stalled: bool) -> Result<Duration, String> {
        let closing = Instant::now();
        if stalled {
            // Nothing can be delivered: after the timeout the producer fails what is left
            // (with `Closed`) and reports the timeout, which is expected here.
            match self.producer.close_timeout(STALLED_CLOSE) {
                Ok(()) | Err(kafka_producer::Error::Timeout { .. }) => {}
                Err(e) => return Err(format!("close_timeout: {e}")),
            }
        } else {
            self.producer.close().map_err(|e| format!("close: {e}"))?;
        }
        Ok(closing.elapsed())
    }
}

// ---------------------------------------------------------------------------------------
// rdkafka
// ---------------------------------------------------------------------------------------

/// rdkafka's `BaseProducer`, polled from a dedicated thread; sending threads call `send`
/// and, on QueueFull, poll briefly and retry.
struct Rdkafka {
    producer: Arc<BaseProducer<RdContext>>,
    topic: String,
    queue_full: AtomicU64,
    stop_polling: Arc<AtomicBool>,
    poller: JoinHandle<()>,
}

/// Delivery reports and global errors.
///
/// The delivery opaque of each record carries its send time and which tally it belongs to
/// (warm-up or measured phase), packed into the `usize` itself: a pointer would need a
/// box per record.
struct RdContext {
    /// The phases' tallies, set on first use; read without a lock on every report.
    tallies: [OnceLock<&'static Tally>; 2],
    errors: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl ClientContext for RdContext {
    fn error(&self, error: KafkaError, reason: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        lock(&self.first_error).get_or_insert_with(|| format!("{error}: {reason}"));
    }
}

impl ProducerContext for RdContext {
    type DeliveryOpaque = usize;

    fn delivery(&self, result: &DeliveryResult<'_>, opaque: usize) {
        let (slot, sent_ns) = (opaque & 1, (opaque >> 1) as u64);
        let tally = self.tallies[slot]
            .get()
            .expect("a delivery report for a tally that was never used");
        match result {
            Ok(_) => tally.complete(Outcome::Acked, sent_ns),
            Err((e, _)) => tally.complete(Outcome::Failed(e), sent_ns),
        }
    }
}

impl RdContext {
    /// The slot of `tally`, taking a free one on first use.
    fn slot(&self, tally: &'static Tally) -> usize {
        for (i, slot) in self.tallies.iter().enumerate() {
            if std::ptr::eq(*slot.get_or_init(|| tally), tally) {
                return i;
            }
        }
        panic!("more tallies than delivery-opaque slots");
    }
}

impl Rdkafka {
    /// `ca`: over SASL_SSL, trusting this PEM file.
    fn start(
        s: &Scenario,
        bootstrap: &str,
        topic: &str,
        ca: Option<&str>,
    ) -> Result<Rdkafka, String> {
        let mut config = ClientConfig::new();
        let tls = ca.map_or_else(Vec::new, scenario::rdkafka_tls_properties);
        let txn = s.transaction_properties(&transactional_id(topic));
        for (name, value) in s
            .rdkafka_properties(bootstrap)
            .into_iter()
            .chain(tls)
            .chain(txn)
        {
            config.set(name, value);
        }
        let context = RdContext {
            tallies: [OnceLock::new(), OnceLock::new()],
            errors: AtomicU64::new(0),
            first_error: Mutex::new(None),
        };
        let producer: BaseProducer<RdContext> = config
            .create_with_context(context)
            .map_err(|e| format!("creating the rdkafka producer: {e}"))?;
        let producer = Arc::new(producer);
        let stop_polling = Arc::new(AtomicBool::new(false));
        let poller = {
            let (producer, stop) = (Arc::clone(&producer), Arc::clone(&stop_polling));
            std::thread::Builder::new()
                .name("rdkafka-poll".into())
                .spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        producer.poll(POLL_INTERVAL);
                    }
                })
                .map_err(|e| format!("starting the poll thread: {e}"))?
        };
        Ok(Rdkafka {
            producer,
            topic: topic.to_string(),
            queue_full: AtomicU64::new(0),
            stop_polling,
            poller,
        })
    }

    fn stop_poller(self) -> Arc<BaseProducer<RdContext>> {
        self.stop_polling.store(true, Ordering::Release);
        let _ = self.poller.join();
        self.producer
    }
}

impl Driver for Rdkafka {
    fn send(
        &self,
        tally: &'static Tally,
        key: Option<&Bytes>,
        value: &Bytes,
        sent_ns: u64,
        give_up: Option<Instant>,
    ) -> Result<bool, String> {
        let value: &[u8] = value;
        // The send time in ns fits in 63 bits for 292 years.
        let opaque = ((sent_ns as usize) << 1) | self.producer.context().slot(tally);
        let mut record =
            BaseRecord::<[u8], [u8], usize>::with_opaque_to(&self.topic, opaque).payload(value);
        if let Some(key) = key {
            record = record.key(&key[..]);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(true),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    self.queue_full.fetch_add(1, Ordering::Relaxed);
                    if give_up.is_some_and(|end| Instant::now() >= end) {
                        return Ok(false);
                    }
                    self.producer.poll(Duration::ZERO);
                    std::thread::sleep(QUEUE_FULL_BACKOFF);
                    record = back;
                }
                Err((e, _)) => return Err(format!("rdkafka send: {e}")),
            }
        }
    }

    fn queue_full(&self) -> u64 {
        self.queue_full.load(Ordering::Relaxed)
    }

    fn client_errors(&self) -> (u64, Option<String>) {
        let context = self.producer.context();
        (
            context.errors.load(Ordering::Relaxed),
            lock(&context.first_error).clone(),
        )
    }

    fn init_transactions(&self) -> Result<(), String> {
        self.producer
            .init_transactions(TRANSACTION_CALL_TIMEOUT)
            .map_err(|e| e.to_string())
    }

    fn begin_transaction(&self) -> Result<(), String> {
        self.producer.begin_transaction().map_err(|e| e.to_string())
    }

    /// librdkafka's own flush, then `commit_transaction`, as a C program would commit.
    ///
    /// rdkafka-rust's `commit_transaction` flushes first with its `BaseProducer::flush`,
    /// which calls `rd_kafka_flush` without waiting and then polls in steps of 100 ms that
    /// always run to their end: with records outstanding, every commit would take 100 ms
    /// more, a cost of the wrapper rather than of librdkafka. Waiting for the delivery
    /// reports instead would leave the last records to linger.ms, which a flush skips.
    /// `rd_kafka_flush` itself, on a producer whose delivery reports are events (as
    /// `BaseProducer`'s are), sends what lingers at once and waits until the poll thread
    /// has served every report; the wrapper's flush then returns at once, and librdkafka's
    /// commit (which flushes again, with nothing left) sends EndTxn.
    fn commit_transaction(&self, tally: &'static Tally, sent: u64) -> Result<(), String> {
        let deadline = Instant::now() + TRANSACTION_CALL_TIMEOUT;
        let timeout_ms = TRANSACTION_CALL_TIMEOUT.as_millis() as i32;
        // SAFETY: the handle is valid while `self.producer` lives, and rd_kafka_flush may
        // be called from any thread, also while another one polls.
        let flushed = unsafe {
            rdkafka::bindings::rd_kafka_flush(self.producer.client().native_ptr(), timeout_ms)
        };
        if flushed != rdkafka::types::RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            return Err(format!(
                "rd_kafka_flush: {}",
                RDKafkaErrorCode::from(flushed)
            ));
        }
        // A report is served before its message is released, which ends the flush: every
        // report of the transaction has been counted.
        if !tally.wait_done(sent, Duration::from_secs(5)) {
            return Err(format!(
                "flushed with {} of {sent} delivery reports served",
                tally.done()
            ));
        }
        self.producer
            .commit_transaction(deadline.saturating_duration_since(Instant::now()))
            .map_err(|e| e.to_string())
    }

    fn close(self, stalled: bool) -> Result<Duration, String> {
        let closing = Instant::now();
        let flushed = if stalled {
            // Drop what is queued and void what is in flight: each such record gets a
            // delivery report (purged), which the flush below waits for.
            self.producer
                .purge(PurgeConfig::default().queue().inflight());
            self.producer
                .flush(STALLED_CLOSE)
                .map_err(|e| format!("flush after purge: {e}"))
        } else {
            self.producer
                .flush(Duration::from_secs(30))
                .map_err(|e| format!("flush: {e}"))
        };
        let settled = closing.elapsed();
        // Dropping the last reference destroys the librdkafka handle (after the poll thread
        // has stopped).
        drop(self.stop_poller());
        flushed.map(|()| settled)
    }
}

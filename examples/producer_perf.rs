//! Producer performance test in the manner of Kafka's `kafka-producer-perf-test`.
//!
//! ```text
//! cargo run --release --example producer_perf -- --topic perf --num-records 2000000 \
//!     --record-size 100 --throughput -1 --producer-props acks=1 linger.ms=5 batch.size=65536
//! cargo run --release --example producer_perf -- --topic perf --num-records 100000 \
//!     --record-size 100 --throughput 10000 --threads 4 --bootstrap-server localhost:9092
//! ```
//!
//! Every record has no key and the same value: `--record-size` random uppercase letters, as
//! in Kafka's tool. Latency is the time from just before `send_with_callback` to the start
//! of the record's callback. Every 5 s a progress line covers the records acknowledged in
//! that window; the summary covers the whole run, up to the end of `flush()`.
//!
//! Differences from Kafka's tool, on purpose:
//! - `--threads N` sends from N threads sharing one producer (each paced at 1/N of
//!   `--throughput`); Kafka's tool has a single sending thread.
//! - Latencies are kept in microseconds and printed in ms with two decimals, where Kafka's
//!   tool prints whole milliseconds: on a local broker most latencies are below 1 ms.
//! - Without a bootstrap server (`--bootstrap-server`, `bootstrap.servers` in the properties,
//!   or `KAFKA_BOOTSTRAP_SERVERS`) it starts librdkafka's mock cluster in this process:
//!   3 brokers and the topic with 6 partitions whose leaders are spread over them.
//! - `--producer.config` reads `name=value` (or `name:value`) lines; `#` and `!` start
//!   comments. Line continuations and escapes of Java properties files are not supported.
//!
//! The exit status is non-zero when any record failed.

use std::error::Error;
use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{mpsc, Mutex};
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_producer::serialize::BytesSerializer;
use kafka_producer::{Producer, ProducerMetrics, ProducerRecord, RecordMetadata};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

const USAGE: &str = "\
usage: producer_perf --topic TOPIC --num-records N --record-size BYTES
                     [--throughput RECORDS_PER_SEC] [--threads N]
                     [--producer-props NAME=VALUE ...] [--producer.config FILE]
                     [--bootstrap-server HOST:PORT[,HOST:PORT...]]

  --topic TOPIC                  the topic to produce to
  --num-records N                how many records to send
  --record-size BYTES            the size of each record's value
  --throughput RECORDS_PER_SEC   the target rate; -1 (the default) for no limit
  --threads N                    sending threads sharing one producer (default 1)
  --producer-props NAME=VALUE .. Java producer properties (override --producer.config)
  --producer.config FILE         a Java properties file of producer properties
  --bootstrap-server SERVERS     shortcut for bootstrap.servers (overrides the others)

Without any bootstrap server (nor KAFKA_BOOTSTRAP_SERVERS) an embedded librdkafka mock
cluster is started.";

/// Kafka's tool keeps at most this many latencies, sampled evenly over the run.
const MAX_LATENCY_SAMPLES: u64 = 500_000;
/// How often a progress line is printed (Kafka's tool: 5000 ms).
const REPORT_INTERVAL: Duration = Duration::from_secs(5);
/// A throttled thread sleeps only when this far ahead of its schedule, like Kafka's
/// `ThroughputThrottler` (2 ms there): shorter sleeps overshoot by a large fraction.
const MIN_SLEEP: Duration = Duration::from_millis(1);
/// A throttled thread looks at the clock every this-many records.
const THROTTLE_CHECK_EVERY: u64 = 4;
const MOCK_BROKERS: i32 = 3;
const MOCK_PARTITIONS: i32 = 6;
const MB: f64 = 1024.0 * 1024.0;

type AnyError = Box<dyn Error + Send + Sync>;
type PerfProducer = Producer<Vec<u8>, Bytes>;

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The command line.
#[derive(Debug)]
struct Options {
    topic: String,
    num_records: u64,
    record_size: usize,
    /// Records per second over all threads; `None` for no limit.
    throughput: Option<f64>,
    threads: u64,
    /// In order of precedence, lowest first: the config file, then `--producer-props`,
    /// then `--bootstrap-server`.
    properties: Vec<(String, String)>,
}

impl Options {
    /// The last `bootstrap.servers` given, if any.
    fn bootstrap(&self) -> Option<&str> {
        self.properties
            .iter()
            .rev()
            .find(|(name, _)| name == "bootstrap.servers")
            .map(|(_, value)| value.as_str())
    }
}

/// `Ok(None)` for `--help`.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut args = args.peekable();
    let (mut topic, mut num_records, mut record_size) = (None, None, None);
    let (mut throughput, mut threads) = (None, 1);
    let (mut file_props, mut cli_props, mut bootstrap) = (Vec::new(), Vec::new(), None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--topic" => topic = Some(value()?),
            "--num-records" => num_records = Some(parse_number::<u64>(&arg, &value()?)?),
            "--record-size" => record_size = Some(parse_number::<usize>(&arg, &value()?)?),
            "--throughput" => throughput = Some(parse_number::<f64>(&arg, &value()?)?),
            "--threads" => threads = parse_number::<u64>(&arg, &value()?)?,
            "--bootstrap-server" => bootstrap = Some(value()?),
            "--producer.config" => file_props.extend(read_properties_file(&value()?)?),
            "--producer-props" => {
                while let Some(prop) = args.next_if(|a| !a.starts_with("--")) {
                    cli_props.push(split_property(&prop).ok_or(format!(
                        "--producer-props takes NAME=VALUE pairs, not {prop:?}"
                    ))?);
                }
            }
            _ => return Err(format!("unknown argument {arg:?}")),
        }
    }
    if threads == 0 {
        return Err("--threads must be at least 1".to_string());
    }
    let mut properties = file_props;
    properties.extend(cli_props);
    properties.extend(bootstrap.map(|b| ("bootstrap.servers".to_string(), b)));
    Ok(Some(Options {
        topic: topic.ok_or("--topic is required")?,
        num_records: num_records.ok_or("--num-records is required")?,
        record_size: record_size.ok_or("--record-size is required")?,
        // Kafka's tool: any negative value means no limit.
        throughput: throughput.filter(|&t| t >= 0.0),
        threads,
        properties,
    }))
}

fn parse_number<T: std::str::FromStr>(arg: &str, value: &str) -> Result<T, String> {
    value
        .parse()
        .map_err(|_| format!("{arg} takes a number, not {value:?}"))
}

/// `name=value` (or `name:value`), both trimmed.
fn split_property(line: &str) -> Option<(String, String)> {
    let (name, value) = line.split_once(['=', ':'])?;
    let name = name.trim();
    (!name.is_empty()).then(|| (name.to_string(), value.trim().to_string()))
}

/// The properties of a Java properties file, without continuations or escapes.
fn read_properties_file(path: &str) -> Result<Vec<(String, String)>, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read the producer config {path:?}: {e}"))?;
    let mut properties = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') || line.starts_with('!') {
            continue;
        }
        properties.push(split_property(line).ok_or(format!(
            "{path}:{}: expected NAME=VALUE, found {line:?}",
            number + 1
        ))?);
    }
    Ok(properties)
}

/// Runs the test; `Ok(false)` when a record failed.
fn run(options: &Options) -> Result<bool, AnyError> {
    let cluster = Cluster::start(options)?;
    println!("{}", cluster.description);
    let producer = build_producer(options, &cluster.bootstrap)?;
    // Waits for the topic's metadata here, so that the first latencies do not include it.
    producer.partitions_for(&options.topic)?;

    // Leaked: every callback needs it for 'static, and a plain reference costs nothing per
    // record, where an `Arc` clone would be one more contended atomic per send.
    let stats: &'static Stats = Box::leak(Box::new(Stats::new(options)));
    let (stop, stopped) = mpsc::channel::<()>();
    let reporter = std::thread::spawn(move || report_progress(stats, &stopped));
    send_all(&producer, options, stats);
    let flushed = producer.flush();
    let elapsed = stats.started.elapsed();
    drop(stop);
    let _ = reporter.join();

    stats.print_total(elapsed);
    print_metrics(&producer.metrics());
    flushed?;
    producer.close()?;
    Ok(stats.report_failures())
}

fn build_producer(options: &Options, bootstrap: &str) -> Result<PerfProducer, AnyError> {
    // Kafka's tool names its client like this; the command line may override it.
    let builder = Producer::builder().client_id("perf-producer-client");
    let producer = options
        .properties
        .iter()
        .fold(builder, |builder, (name, value)| builder.set(name, value))
        .bootstrap_servers(bootstrap)
        .value_serializer(BytesSerializer)
        .build()?;
    Ok(producer)
}

/// Where to send: the given cluster, or the embedded mock cluster (kept alive here).
struct Cluster {
    bootstrap: String,
    description: String,
    _mock: Option<MockCluster<'static, DefaultProducerContext>>,
}

impl Cluster {
    fn start(options: &Options) -> Result<Cluster, AnyError> {
        let from_env = std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_default();
        let given = match options.bootstrap() {
            Some(servers) => Some((servers.to_string(), "the command line")),
            None => (!from_env.trim().is_empty()).then_some((from_env, "KAFKA_BOOTSTRAP_SERVERS")),
        };
        if let Some((bootstrap, source)) = given {
            return Ok(Cluster {
                description: format!("cluster: {bootstrap} (from {source})"),
                bootstrap,
                _mock: None,
            });
        }
        let mock = MockCluster::new(MOCK_BROKERS)?;
        mock.create_topic(&options.topic, MOCK_PARTITIONS, 1)?;
        for partition in 0..MOCK_PARTITIONS {
            let leader = partition % MOCK_BROKERS + 1;
            mock.partition_leader(&options.topic, partition, Some(leader))?;
        }
        Ok(Cluster {
            bootstrap: mock.bootstrap_servers(),
            description: format!(
                "cluster: no bootstrap server given, so an embedded librdkafka mock cluster: \
                 {MOCK_BROKERS} brokers, topic {:?} with {MOCK_PARTITIONS} partitions",
                options.topic
            ),
            _mock: Some(mock),
        })
    }
}

/// Sends `--num-records` records from `--threads` threads; returns when every record is
/// handed to the producer (not yet acknowledged).
fn send_all(producer: &PerfProducer, options: &Options, stats: &'static Stats) {
    let payload = payload(options.record_size);
    let threads = options.threads;
    let rate = options.throughput.map(|t| t / threads as f64);
    std::thread::scope(|s| {
        for t in 0..threads {
            let records =
                options.num_records * t / threads..options.num_records * (t + 1) / threads;
            let (producer, payload) = (producer.clone(), payload.clone());
            let topic = options.topic.as_str();
            s.spawn(move || send_range(&producer, topic, payload, records, rate, stats));
        }
    });
}

/// One sending thread: `records` only gives the count; every record is the same.
fn send_range(
    producer: &PerfProducer,
    topic: &str,
    payload: Bytes,
    records: Range<u64>,
    rate: Option<f64>,
    stats: &'static Stats,
) {
    let mut throttler = rate.map(Throttler::new);
    for sent in 0..records.end - records.start {
        if let Some(throttler) = &mut throttler {
            throttler.pace(sent);
        }
        let record = ProducerRecord::new(topic, payload.clone());
        let sent_at = Instant::now();
        producer.send_with_callback(record, move |result| stats.complete(sent_at, result));
    }
}

/// Random uppercase letters, like Kafka's tool (so that compression has something to do,
/// but not too much). Static, so that cloning the `Bytes` for each record is free.
fn payload(size: usize) -> Bytes {
    // xorshift64: no dependency for a few random letters.
    let mut state = 0x9E37_79B9_7F4A_7C15_u64;
    let letters: Vec<u8> = (0..size)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            b'A' + (state % 26) as u8
        })
        .collect();
    Bytes::from_static(Box::leak(letters.into_boxed_slice()))
}

/// Keeps one thread at `rate` records per second, like Kafka's `ThroughputThrottler`: it
/// sleeps when the thread is ahead of its schedule. The schedule is absolute (record `n`
/// is due `n / rate` seconds after the start), so oversleeping is caught up at once.
struct Throttler {
    started: Instant,
    rate: f64,
}

impl Throttler {
    fn new(rate: f64) -> Throttler {
        Throttler {
            started: Instant::now(),
            rate,
        }
    }

    /// Called before sending record `sent` (counted from 0).
    fn pace(&mut self, sent: u64) {
        if sent % THROTTLE_CHECK_EVERY != 0 {
            return;
        }
        if self.rate == 0.0 {
            // Kafka's tool: a throughput of 0 sends nothing, forever.
            loop {
                std::thread::park();
            }
        }
        let due = self.started + Duration::from_secs_f64(sent as f64 / self.rate);
        let ahead = due.saturating_duration_since(Instant::now());
        if ahead >= MIN_SLEEP {
            std::thread::sleep(ahead);
        }
    }
}

/// What the callbacks saw. Callbacks run on the producer's one callback thread, so `inner`
/// is contended only by the progress reporter, every 5 s.
struct Stats {
    started: Instant,
    record_size: u64,
    inner: Mutex<StatsInner>,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

/// Guarded by `Stats::inner`.
struct StatsInner {
    total: Window,
    window: Window,
    /// One latency in µs for every `sampling`-th acknowledged record, preallocated.
    latencies: Vec<u32>,
    sampling: u64,
}

/// Counts over a time span: the whole run, or one progress window.
#[derive(Clone, Copy)]
struct Window {
    started: Instant,
    records: u64,
    latency_total_us: u64,
    latency_max_us: u64,
}

impl Window {
    fn new(started: Instant) -> Window {
        Window {
            started,
            records: 0,
            latency_total_us: 0,
            latency_max_us: 0,
        }
    }

    fn add(&mut self, latency_us: u64) {
        self.records += 1;
        self.latency_total_us += latency_us;
        self.latency_max_us = self.latency_max_us.max(latency_us);
    }

    /// `N records sent, X records/sec (Y MB/sec), A ms avg latency, M ms max latency`.
    fn describe(&self, elapsed: Duration, record_size: u64) -> String {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let avg_ms = self.latency_total_us as f64 / self.records.max(1) as f64 / 1000.0;
        format!(
            "{} records sent, {:.1} records/sec ({:.2} MB/sec), {:.2} ms avg latency, \
             {:.2} ms max latency",
            self.records,
            self.records as f64 / secs,
            (self.records * record_size) as f64 / secs / MB,
            avg_ms,
            self.latency_max_us as f64 / 1000.0
        )
    }
}

impl Stats {
    fn new(options: &Options) -> Stats {
        let now = Instant::now();
        // Kafka's tool: sampling = n / min(n, 500000), an array of n / sampling + 1.
        let sampling =
            (options.num_records / options.num_records.clamp(1, MAX_LATENCY_SAMPLES)).max(1);
        let capacity = options.num_records / sampling + 1;
        Stats {
            started: now,
            record_size: options.record_size as u64,
            inner: Mutex::new(StatsInner {
                total: Window::new(now),
                window: Window::new(now),
                latencies: Vec::with_capacity(capacity as usize),
                sampling,
            }),
            failed: AtomicU64::new(0),
            first_error: Mutex::new(None),
        }
    }

    /// A record's callback.
    fn complete(&self, sent_at: Instant, result: Result<RecordMetadata, kafka_producer::Error>) {
        let latency_us = sent_at.elapsed().as_micros().min(u128::from(u32::MAX)) as u64;
        if let Err(e) = result {
            self.failed.fetch_add(1, Relaxed);
            let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
            first.get_or_insert_with(|| e.to_string());
            return;
        }
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let inner = &mut *inner;
        if inner.total.records % inner.sampling == 0
            && inner.latencies.len() < inner.latencies.capacity()
        {
            inner.latencies.push(latency_us as u32);
        }
        inner.total.add(latency_us);
        inner.window.add(latency_us);
    }

    /// Ends the current progress window and describes it.
    fn take_window(&self) -> String {
        let now = Instant::now();
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let window = std::mem::replace(&mut inner.window, Window::new(now));
        drop(inner);
        window.describe(now - window.started, self.record_size)
    }

    fn print_total(&self, elapsed: Duration) {
        let mut inner = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let total = inner.total.describe(elapsed, self.record_size);
        let latencies = &mut inner.latencies;
        latencies.sort_unstable();
        // Kafka's tool: the sample at index (int) (p * count).
        let percentile = |p: f64| {
            let index =
                ((p * latencies.len() as f64) as usize).min(latencies.len().saturating_sub(1));
            latencies
                .get(index)
                .map_or(0.0, |&us| f64::from(us) / 1000.0)
        };
        println!(
            "{total}, {:.2} ms 50th, {:.2} ms 95th, {:.2} ms 99th, {:.2} ms 99.9th.",
            percentile(0.5),
            percentile(0.95),
            percentile(0.99),
            percentile(0.999)
        );
    }

    /// Prints the failures, if any; `true` when there were none.
    fn report_failures(&self) -> bool {
        let failed = self.failed.load(Relaxed);
        if failed == 0 {
            return true;
        }
        let first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        eprintln!(
            "{failed} records failed; the first error: {}",
            first.as_deref().unwrap_or("(none recorded)")
        );
        false
    }
}

/// Prints a progress line every `REPORT_INTERVAL` until `stop` is dropped. Runs on its own
/// thread, so that a stalled producer shows as windows of 0 records.
fn report_progress(stats: &Stats, stop: &mpsc::Receiver<()>) {
    while let Err(mpsc::RecvTimeoutError::Timeout) = stop.recv_timeout(REPORT_INTERVAL) {
        println!("{}.", stats.take_window());
    }
}

fn print_metrics(m: &ProducerMetrics) {
    println!("producer metrics:");
    println!("  records sent        {}", m.records_sent);
    println!("  record errors       {}", m.record_errors);
    println!("  batches sent        {}", m.batches_sent);
    println!("  average batch size  {:.0} bytes", m.average_batch_size);
    println!("  bytes sent          {}", m.bytes_sent);
    println!("  produce requests    {}", m.requests);
    println!("  in-flight requests  {}", m.in_flight_requests);
    println!("  batch retries       {}", m.batch_retries);
    println!(
        "  buffer in use       {} of {} bytes",
        m.buffer_bytes_in_use, m.buffer_total_bytes
    );
    println!(
        "  request latency     avg {:?}, max {:?}",
        m.request_latency_avg, m.request_latency_max
    );
}

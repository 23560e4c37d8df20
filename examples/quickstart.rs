//! Quickstart: send 100,000 records from four threads, then read them back with an
//! independent consumer (librdkafka's).
//!
//! ```text
//! cargo run --release --example quickstart
//! KAFKA_BOOTSTRAP_SERVERS=broker:9092 TOPIC=quickstart cargo run --release --example quickstart
//! ```
//!
//! Without `KAFKA_BOOTSTRAP_SERVERS` it starts librdkafka's mock cluster inside this process:
//! three brokers and a topic of six partitions whose leaders are spread over them. With it,
//! the topic (`TOPIC`, default `quickstart`) must exist or the cluster must auto-create it.
//!
//! Two threads send with `send()` and wait on every 1000th future; the other two send with
//! callbacks. The program exits with a non-zero status when a record failed or when the
//! consumer does not read back exactly the records of this run.

use std::error::Error;
use std::ops::Range;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use kafka_producer::{Producer, ProducerMetrics, ProducerRecord, RecordMetadata};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

const RECORDS: u64 = 100_000;
const THREADS: u64 = 4;
/// Every record's value is this long (its key is the record's number).
const VALUE_SIZE: usize = 100;
/// The `send()` threads wait on every this-many-th future.
const WAIT_EVERY: u64 = 1000;
const MOCK_BROKERS: i32 = 3;
const MOCK_PARTITIONS: i32 = 6;
const READ_BACK_TIMEOUT: Duration = Duration::from_secs(60);

type AnyError = Box<dyn Error + Send + Sync>;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("quickstart failed: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Runs the whole quickstart; `Ok(false)` when something failed along the way.
fn run() -> Result<bool, AnyError> {
    let cluster = Cluster::from_env()?;
    println!("{}", cluster.description);
    let producer: Producer = Producer::from_properties([
        ("bootstrap.servers", cluster.bootstrap.as_str()),
        ("client.id", "quickstart"),
        // Larger batches than Java's default of 16 KiB: fewer, fuller requests.
        ("batch.size", "65536"),
    ])?;
    let partitions = producer.partitions_for(&cluster.topic)?.len();
    println!("topic {:?}: {partitions} partitions", cluster.topic);

    // Every record carries this run's id, so that the read-back can tell them apart from
    // records of earlier runs in the same topic.
    let run_id = run_id();
    let tally = Arc::new(Tally::default());
    let started = Instant::now();
    produce(&producer, &cluster.topic, &run_id, &tally);
    producer.flush()?;
    let elapsed = started.elapsed();

    let metrics = producer.metrics();
    print_throughput(elapsed);
    tally.print();
    print_metrics(&metrics);
    producer.close()?;

    println!("reading back with an rdkafka consumer ...");
    let read = read_back(&cluster.bootstrap, &cluster.topic, partitions, &run_id);
    read.print();

    let failed = metrics.record_errors + tally.failed.load(Relaxed);
    println!(
        "summary: sent {RECORDS}, acknowledged {}, failed {failed}, read back {}",
        metrics.records_sent, read.records
    );
    let ok = failed == 0
        && metrics.records_sent == RECORDS
        && read.records == RECORDS
        && read.error.is_none();
    println!("{}", if ok { "OK" } else { "FAILED" });
    Ok(ok)
}

/// Where to send: an external cluster, or the embedded mock cluster (kept alive here).
struct Cluster {
    bootstrap: String,
    topic: String,
    description: String,
    _mock: Option<MockCluster<'static, DefaultProducerContext>>,
}

impl Cluster {
    fn from_env() -> Result<Cluster, AnyError> {
        let topic = std::env::var("TOPIC").unwrap_or_else(|_| "quickstart".to_string());
        let external = std::env::var("KAFKA_BOOTSTRAP_SERVERS").unwrap_or_default();
        if !external.trim().is_empty() {
            return Ok(Cluster {
                description: format!("cluster: {external} (KAFKA_BOOTSTRAP_SERVERS)"),
                bootstrap: external,
                topic,
                _mock: None,
            });
        }
        let mock = MockCluster::new(MOCK_BROKERS)?;
        mock.create_topic(&topic, MOCK_PARTITIONS, 1)?;
        for partition in 0..MOCK_PARTITIONS {
            let leader = partition % MOCK_BROKERS + 1;
            mock.partition_leader(&topic, partition, Some(leader))?;
        }
        Ok(Cluster {
            bootstrap: mock.bootstrap_servers(),
            description: format!(
                "cluster: embedded librdkafka mock cluster, {MOCK_BROKERS} brokers \
                 (set KAFKA_BOOTSTRAP_SERVERS to use a real one)"
            ),
            topic,
            _mock: Some(mock),
        })
    }
}

/// What the `send()` threads saw on the futures they waited on, and what the callbacks saw.
#[derive(Default)]
struct Tally {
    futures_waited: AtomicU64,
    callbacks_ok: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl Tally {
    fn record(&self, result: Result<RecordMetadata, kafka_producer::Error>, ok: &AtomicU64) {
        match result {
            Ok(_) => {
                ok.fetch_add(1, Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Relaxed);
                let mut first = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
                first.get_or_insert_with(|| e.to_string());
            }
        }
    }

    fn print(&self) {
        // Half of the threads use each form.
        let per_form = RECORDS / 2;
        println!(
            "  send().wait() threads: {} of {} waited futures acknowledged",
            self.futures_waited.load(Relaxed),
            per_form / WAIT_EVERY
        );
        println!(
            "  callback threads: {} of {per_form} callbacks acknowledged",
            self.callbacks_ok.load(Relaxed)
        );
        let first_error = self.first_error.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(e) = &*first_error {
            println!(
                "  {} failed records; the first error: {e}",
                self.failed.load(Relaxed)
            );
        }
    }
}

/// Sends `RECORDS` records from `THREADS` threads, half of them with futures and half with
/// callbacks. Returns when every record is handed to the producer (not yet acknowledged).
fn produce(producer: &Producer, topic: &str, run_id: &str, tally: &Arc<Tally>) {
    let per_thread = RECORDS / THREADS;
    std::thread::scope(|s| {
        for t in 0..THREADS {
            let numbers = t * per_thread..(t + 1) * per_thread;
            // Each thread has its own clone: clones share one sender and callback thread.
            let producer = producer.clone();
            let tally = Arc::clone(tally);
            if t % 2 == 0 {
                s.spawn(move || {
                    send_waiting_every_1000th(&producer, topic, run_id, numbers, &tally)
                });
            } else {
                s.spawn(move || send_with_callbacks(&producer, topic, run_id, numbers, &tally));
            }
        }
    });
}

/// `send()` returns a future. Dropping it never cancels the record; here only every
/// 1000th is waited on, which also lets this thread keep pace with the broker.
fn send_waiting_every_1000th(
    producer: &Producer,
    topic: &str,
    run_id: &str,
    numbers: Range<u64>,
    tally: &Tally,
) {
    for n in numbers {
        let future = producer.send(record(topic, run_id, n));
        if (n + 1) % WAIT_EVERY == 0 {
            tally.record(future.wait(), &tally.futures_waited);
        }
    }
}

/// `send_with_callback()` returns at once; the callback runs later on the producer's
/// callback thread, exactly once per record.
fn send_with_callbacks(
    producer: &Producer,
    topic: &str,
    run_id: &str,
    numbers: Range<u64>,
    tally: &Arc<Tally>,
) {
    for n in numbers {
        let tally = Arc::clone(tally);
        producer.send_with_callback(record(topic, run_id, n), move |result| {
            tally.record(result, &tally.callbacks_ok);
        });
    }
}

/// Record `n`: key `n` (so Java's murmur2 partitioner spreads the records over the
/// partitions), value `<run id> <n>` padded to `VALUE_SIZE` bytes.
fn record(topic: &str, run_id: &str, n: u64) -> ProducerRecord<Vec<u8>, Vec<u8>> {
    let mut value = format!("{run_id} {n} ").into_bytes();
    value.resize(VALUE_SIZE, b'.');
    ProducerRecord::new(topic, value).with_key(n.to_string().into_bytes())
}

fn run_id() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    format!("run-{}-{}", std::process::id(), now.as_millis())
}

fn print_throughput(elapsed: Duration) {
    let secs = elapsed.as_secs_f64();
    let key_bytes: u64 = (0..RECORDS).map(|n| n.to_string().len() as u64).sum();
    let bytes = key_bytes + RECORDS * VALUE_SIZE as u64;
    println!(
        "produced {RECORDS} records ({VALUE_SIZE}-byte values) from {THREADS} threads in \
         {secs:.2} s: {:.0} records/s, {:.1} MB/s of keys and values",
        RECORDS as f64 / secs,
        bytes as f64 / secs / 1e6
    );
}

fn print_metrics(m: &ProducerMetrics) {
    println!("producer metrics:");
    println!("  records sent        {}", m.records_sent);
    println!("  record errors       {}", m.record_errors);
    println!("  batches sent        {}", m.batches_sent);
    println!("  average batch size  {:.0} bytes", m.average_batch_size);
    println!("  bytes sent          {}", m.bytes_sent);
    println!("  produce requests    {}", m.requests);
    println!("  batch retries       {}", m.batch_retries);
    println!(
        "  request latency     avg {:?}, max {:?}",
        m.request_latency_avg, m.request_latency_max
    );
}

/// What the independent reader found.
struct ReadBack {
    /// Records of this run read, duplicates included.
    records: u64,
    /// Distinct record numbers among them.
    distinct: u64,
    elapsed: Duration,
    error: Option<String>,
}

impl ReadBack {
    fn print(&self) {
        println!(
            "  read back {} records of this run ({} distinct) in {:.2} s",
            self.records,
            self.distinct,
            self.elapsed.as_secs_f64()
        );
        if let Some(e) = &self.error {
            println!("  read-back error: {e}");
        }
    }
}

/// Reads every partition from offset 0 with librdkafka's consumer (CRCs checked) until all
/// records of this run arrived, or `READ_BACK_TIMEOUT` passed.
fn read_back(bootstrap: &str, topic: &str, partitions: usize, run_id: &str) -> ReadBack {
    let started = Instant::now();
    let mut read = ReadBack {
        records: 0,
        distinct: 0,
        elapsed: Duration::ZERO,
        error: None,
    };
    let consumer = match consumer(bootstrap, topic, partitions) {
        Ok(c) => c,
        Err(e) => {
            read.error = Some(format!("could not start the consumer: {e}"));
            return read;
        }
    };
    let mut seen = vec![false; RECORDS as usize];
    let prefix = format!("{run_id} ");
    while read.distinct < RECORDS && started.elapsed() < READ_BACK_TIMEOUT {
        let message = match consumer.poll(Duration::from_millis(100)) {
            None => continue,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                read.error.get_or_insert_with(|| e.to_string());
                continue;
            }
        };
        let ours = message
            .payload()
            .is_some_and(|v| v.starts_with(prefix.as_bytes()));
        let number = message
            .key()
            .and_then(|k| std::str::from_utf8(k).ok())
            .and_then(|k| k.parse::<usize>().ok())
            .filter(|&n| n < seen.len());
        if let (true, Some(n)) = (ours, number) {
            read.records += 1;
            if !std::mem::replace(&mut seen[n], true) {
                read.distinct += 1;
            }
        }
    }
    if read.distinct < RECORDS && read.error.is_none() {
        read.error = Some(format!(
            "only {} of {RECORDS} records arrived within {READ_BACK_TIMEOUT:?}",
            read.distinct
        ));
    }
    read.elapsed = started.elapsed();
    read
}

fn consumer(bootstrap: &str, topic: &str, partitions: usize) -> Result<BaseConsumer, AnyError> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "kafka-producer-quickstart")
        .set("enable.auto.commit", "false")
        .set("check.crcs", "true")
        .create()?;
    let mut assignment = TopicPartitionList::new();
    for partition in 0..partitions as i32 {
        assignment.add_partition_offset(topic, partition, Offset::Offset(0))?;
    }
    consumer.assign(&assignment)?;
    Ok(consumer)
}

//! Callbacks: worker threads send with `send_with_callback`, and the callbacks show the
//! producer's ordering guarantee: within a partition, callbacks run in send order.
//!
//! ```text
//! cargo run --example callbacks                # 4 workers, 10000 records each
//! cargo run --example callbacks -- 8 50000     # 8 workers, 50000 records each
//! KAFKA_BOOTSTRAP_SERVERS=broker:9092 TOPIC=callbacks cargo run --example callbacks
//! ```
//!
//! Without `KAFKA_BOOTSTRAP_SERVERS` it starts librdkafka's mock cluster inside this process
//! (three brokers, a topic of six partitions). Each worker keys its records `key-0` to
//! `key-15`, so every worker writes to every partition. All callbacks run on the producer's
//! one callback thread, one at a time; the example checks that, per partition, offsets
//! rise and each worker's records come back in the order that worker sent them.

use std::collections::{BTreeMap, BTreeSet};
use std::error::Error;
use std::process::ExitCode;
use std::sync::{Arc, Mutex};

use kafka_producer::{Producer, ProducerRecord, RecordMetadata, StringSerializer};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

const DEFAULT_WORKERS: usize = 4;
const DEFAULT_RECORDS_PER_WORKER: u64 = 10_000;
/// Distinct keys per worker: enough to reach every partition.
const KEYS: u64 = 16;
/// How many callbacks of each partition are printed as they run.
const SHOWN_PER_PARTITION: u64 = 2;
const MOCK_BROKERS: i32 = 3;
const MOCK_PARTITIONS: i32 = 6;

type AnyError = Box<dyn Error + Send + Sync>;

fn main() -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("callbacks example failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> Result<bool, AnyError> {
    let mut args = std::env::args().skip(1);
    let workers: usize = args.next().map_or(Ok(DEFAULT_WORKERS), |a| a.parse())?;
    let per_worker: u64 = args
        .next()
        .map_or(Ok(DEFAULT_RECORDS_PER_WORKER), |a| a.parse())?;
    let cluster = Cluster::from_env("callbacks")?;
    println!("{}", cluster.description);

    let producer: Producer<String, String> = Producer::builder()
        .bootstrap_servers(&cluster.bootstrap)
        .client_id("callbacks-example")
        .key_serializer(StringSerializer)
        .value_serializer(StringSerializer)
        .build()?;
    println!(
        "{workers} workers send {per_worker} records each to topic {:?}; the first callbacks of each partition:",
        cluster.topic
    );

    let observer = Arc::new(Mutex::new(Observer::default()));
    std::thread::scope(|s| {
        for worker in 0..workers {
            let (producer, observer) = (producer.clone(), Arc::clone(&observer));
            let topic = cluster.topic.as_str();
            s.spawn(move || send_all(&producer, topic, worker, per_worker, &observer));
        }
    });
    // Every callback has run once flush returns.
    producer.flush()?;
    producer.close()?;

    let observer = observer.lock().unwrap_or_else(|p| p.into_inner());
    observer.print_summary();
    let ok = observer.failed == 0
        && observer.out_of_order == 0
        && observer.acknowledged == workers as u64 * per_worker;
    println!("{}", if ok { "OK" } else { "FAILED" });
    Ok(ok)
}

/// One worker: sends its records, each with a callback that reports to the observer.
fn send_all(
    producer: &Producer<String, String>,
    topic: &str,
    worker: usize,
    records: u64,
    observer: &Arc<Mutex<Observer>>,
) {
    for seq in 0..records {
        let key = format!("key-{}", seq % KEYS);
        let record =
            ProducerRecord::new(topic, format!("worker {worker} record {seq}")).with_key(key);
        let observer = Arc::clone(observer);
        producer.send_with_callback(record, move |result| {
            // Callbacks run one at a time on the producer's callback thread, so this lock
            // is never contended; it only makes the shared state `Sync`.
            let mut observer = observer.lock().unwrap_or_else(|p| p.into_inner());
            observer.on_completion(worker, seq, result);
        });
    }
}

/// What the callbacks saw, per partition and per worker.
#[derive(Default)]
struct Observer {
    acknowledged: u64,
    failed: u64,
    out_of_order: u64,
    partitions: BTreeMap<i32, PartitionSeen>,
    /// The last sequence number acknowledged per (worker, partition).
    last_seq: BTreeMap<(usize, i32), u64>,
    callback_threads: BTreeSet<String>,
}

#[derive(Default)]
struct PartitionSeen {
    callbacks: u64,
    first_offset: Option<i64>,
    last_offset: Option<i64>,
}

impl Observer {
    fn on_completion(
        &mut self,
        worker: usize,
        seq: u64,
        result: Result<RecordMetadata, kafka_producer::Error>,
    ) {
        let thread = std::thread::current()
            .name()
            .unwrap_or("unnamed")
            .to_string();
        self.callback_threads.insert(thread);
        let md = match result {
            Ok(md) => md,
            Err(e) => {
                if self.failed == 0 {
                    eprintln!("worker {worker} record {seq} failed: {e}");
                }
                self.failed += 1;
                return;
            }
        };
        self.acknowledged += 1;
        self.check_order(worker, seq, &md);
        if self.partitions[&md.partition()].callbacks <= SHOWN_PER_PARTITION {
            println!(
                "  partition {} offset {:>2}: worker {worker} record {seq}",
                md.partition(),
                md.offset()
            );
        }
    }

    /// Per partition, offsets must rise and each worker's records come back in send order.
    fn check_order(&mut self, worker: usize, seq: u64, md: &RecordMetadata) {
        let partition = self.partitions.entry(md.partition()).or_default();
        partition.callbacks += 1;
        partition.first_offset.get_or_insert(md.offset());
        let offset_rose = partition.last_offset.is_none_or(|last| md.offset() > last);
        partition.last_offset = Some(md.offset());
        let previous = self.last_seq.insert((worker, md.partition()), seq);
        let seq_rose = previous.is_none_or(|last| seq > last);
        if !(offset_rose && seq_rose) {
            if self.out_of_order == 0 {
                eprintln!(
                    "out of order: worker {worker} record {seq} at {}-{} offset {}",
                    md.topic(),
                    md.partition(),
                    md.offset()
                );
            }
            self.out_of_order += 1;
        }
    }

    fn print_summary(&self) {
        println!("partition  callbacks  offsets");
        for (partition, seen) in &self.partitions {
            let (first, last) = (
                seen.first_offset.unwrap_or(-1),
                seen.last_offset.unwrap_or(-1),
            );
            println!("{partition:>9}  {:>9}  {first}..={last}", seen.callbacks);
        }
        println!(
            "acknowledged {}, failed {}, out of order {}",
            self.acknowledged, self.failed, self.out_of_order
        );
        let threads: Vec<&str> = self.callback_threads.iter().map(String::as_str).collect();
        println!("callbacks ran on: {}", threads.join(", "));
    }
}

/// Where to send: an external cluster, or the embedded mock cluster (kept alive here).
struct Cluster {
    bootstrap: String,
    topic: String,
    description: String,
    _mock: Option<MockCluster<'static, DefaultProducerContext>>,
}

impl Cluster {
    fn from_env(default_topic: &str) -> Result<Cluster, AnyError> {
        let topic = std::env::var("TOPIC").unwrap_or_else(|_| default_topic.to_string());
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
            mock.partition_leader(&topic, partition, Some(partition % MOCK_BROKERS + 1))?;
        }
        Ok(Cluster {
            bootstrap: mock.bootstrap_servers(),
            description: format!(
                "cluster: embedded librdkafka mock cluster, {MOCK_BROKERS} brokers, \
                 {MOCK_PARTITIONS} partitions"
            ),
            topic,
            _mock: Some(mock),
        })
    }
}

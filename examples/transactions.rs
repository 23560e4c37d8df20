//! Exactly-once copy of one topic into another: the read-process-write loop, with the
//! rdkafka consumer reading the input and this crate's transactional producer writing the
//! output.
//!
//! ```text
//! KAFKA_BOOTSTRAP_SERVERS=localhost:9092 cargo run --example transactions -- \
//!     --input orders --output orders-copy [--group copier] [--transactional-id copier-0] \
//!     [--max-records N] [--idle-secs X]
//! ```
//!
//! Each round polls a batch of input records (up to 500, or what arrives within 100 ms)
//! and copies it in one transaction: key, value, headers and timestamp unchanged, to the
//! partition the key picks (so when the input was partitioned by key with Kafka's default
//! partitioner and the output has as many partitions, each output partition holds its
//! input partition's records, in order). The same transaction commits the group's input
//! offsets (the offset after the last record copied, per input partition), so the copies
//! and the input position become visible together or not at all. A copier killed at any
//! point and started again with the same `transactional.id` and group neither loses nor
//! duplicates a record for read_committed readers: `init_transactions` fences the dead
//! incarnation and aborts its open transaction, and the consumer (no auto-commit,
//! `isolation.level=read_committed`) resumes at the offsets of the last committed
//! transaction.
//!
//! After an abortable error the copier aborts the transaction and rewinds the consumer to
//! the committed offsets. Fenced by a newer copier with the same `transactional.id` (which
//! is also the consumer's static `group.instance.id`), it exits with status 3. It prints
//! `copied N` after each commit (N: records copied by this run), and `done: ...` when
//! `--max-records N` records were copied or no input came for `--idle-secs X` seconds
//! after it was assigned partitions; without either it runs until killed. Bad or missing
//! arguments: usage on stderr, status 2.

use std::collections::HashMap;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use kafka_producer::{
    ConsumerGroupMetadata, Error, OffsetAndMetadata, Producer, ProducerRecord, Topic,
    TopicPartition,
};
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, Rebalance};
use rdkafka::error::{KafkaError, KafkaResult};
use rdkafka::message::{BorrowedMessage, Headers as _, Message};
use rdkafka::{ClientConfig, ClientContext, Offset, TopicPartitionList};

const USAGE: &str = "\
usage: KAFKA_BOOTSTRAP_SERVERS=HOST:PORT transactions --input TOPIC --output TOPIC
           [--group GROUP] [--transactional-id ID] [--max-records N] [--idle-secs X]
  --bootstrap-server HOST:PORT  instead of KAFKA_BOOTSTRAP_SERVERS
  --group GROUP                 consumer group (default: copy-INPUT-to-OUTPUT)
  --transactional-id ID         producer transactional.id (default: GROUP-0)
  --max-records N               stop after copying N records
  --idle-secs X                 stop after X seconds without input";

/// Largest batch (one transaction) and longest time to fill it.
const BATCH_RECORDS: u64 = 500;
const BATCH_TIME: Duration = Duration::from_millis(100);

#[derive(Debug)]
struct Options {
    bootstrap: String,
    input: String,
    output: String,
    group: String,
    transactional_id: String,
    max_records: Option<u64>,
    idle: Option<Duration>,
}

/// Counts the consumer's rebalances: records polled across one may belong to partitions
/// that were revoked, or restarted from the committed offsets, in between.
#[derive(Default)]
struct Rebalances(AtomicU64);

impl ClientContext for Rebalances {}

impl ConsumerContext for Rebalances {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, _: &Rebalance<'_>) {
        self.0.fetch_add(1, SeqCst);
    }
}

type Input = BaseConsumer<Rebalances>;

/// An input record ready to copy: its input partition and offset, and the output record.
type Batch = Vec<(i32, i64, ProducerRecord<Vec<u8>, Vec<u8>>)>;

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(options) => options,
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            // A newer copier took over: its producer fenced ours (same transactional.id),
            // or its consumer ours (same group.instance.id; librdkafka's only fatal
            // consumer error).
            let fenced = matches!(e.downcast_ref(), Some(Error::Fenced(_)))
                || matches!(
                    e.downcast_ref(),
                    Some(KafkaError::MessageConsumptionFatal(_))
                );
            ExitCode::from(if fenced { 3 } else { 1 })
        }
    }
}

fn run(o: &Options) -> Result<(), Box<dyn std::error::Error>> {
    // The producer first: init_transactions fences an earlier incarnation and aborts its
    // open transaction, records and offsets, before the consumer asks for its offsets.
    let producer = Producer::from_properties([
        ("bootstrap.servers", o.bootstrap.as_str()),
        ("transactional.id", o.transactional_id.as_str()),
        ("linger.ms", "5"),
    ])?;
    producer.init_transactions()?;
    let consumer: Input = ClientConfig::new()
        .set("bootstrap.servers", &o.bootstrap)
        .set("group.id", &o.group)
        // Static membership: a restarted copier takes its partitions back at once instead
        // of waiting until the session of its dead incarnation times out.
        .set("group.instance.id", &o.transactional_id)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .set("auto.offset.reset", "earliest")
        .create_with_context(Rebalances::default())?;
    consumer.subscribe(&[&o.input])?;
    // rdkafka 0.39's consumer.group_metadata() is opaque: only rdkafka's own producer can
    // use it, and its safe API exposes neither generation nor member id (only the unsafe
    // librdkafka bindings do). So the offsets go with the group id alone, which the group
    // coordinator accepts without a membership check. That leaves fencing to the
    // transactional.id: run one copier per group, or fill generation and member id from a
    // consumer that exposes them (`.with_generation(generation, member_id)`), so that the
    // coordinator refuses the offsets of a consumer that lost its partitions.
    let group = ConsumerGroupMetadata::new(o.group.as_str());
    let output = Topic::from(o.output.as_str());
    let (started, mut copied, mut idle_since) = (Instant::now(), 0u64, None::<Instant>);
    while o.max_records.is_none_or(|max| copied < max) {
        let limit = o
            .max_records
            .map_or(BATCH_RECORDS, |max| (max - copied).min(BATCH_RECORDS));
        let rebalances = consumer.context().0.load(SeqCst);
        let batch = poll_batch(&consumer, &output, limit as usize)?;
        if consumer.context().0.load(SeqCst) != rebalances {
            // Partitions moved while polling: start over from the committed offsets.
            rewind(&consumer)?;
            continue;
        }
        if batch.is_empty() {
            let assigned = consumer.assignment()?.count() > 0;
            let since = *idle_since.get_or_insert_with(Instant::now);
            if !assigned {
                idle_since = None;
            } else if o.idle.is_some_and(|idle| since.elapsed() >= idle) {
                break;
            }
            continue;
        }
        idle_since = None;
        let n = batch.len() as u64;
        match copy(&producer, &o.input, batch, &group) {
            Ok(()) => {
                copied += n;
                println!("copied {copied}");
            }
            Err(Error::TransactionAbortable(cause)) => {
                eprintln!("aborting a transaction of {n} records: {cause}");
                patiently(|| producer.abort_transaction())?;
                rewind(&consumer)?;
            }
            Err(e) => return Err(e.into()),
        }
    }
    producer.close()?;
    let secs = started.elapsed().as_secs_f64();
    println!("done: copied {copied} records in {secs:.1} s");
    Ok(())
}

/// Polls up to `limit` records, for at most [`BATCH_TIME`].
fn poll_batch(consumer: &Input, output: &Topic, limit: usize) -> KafkaResult<Batch> {
    let deadline = Instant::now() + BATCH_TIME;
    let mut batch = Vec::new();
    while batch.len() < limit {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            break;
        }
        match consumer.poll(left) {
            Some(Ok(m)) => batch.push((m.partition(), m.offset(), to_record(&m, output))),
            Some(Err(e @ KafkaError::MessageConsumptionFatal(_))) => return Err(e),
            // Else informational (a broker connection lost): librdkafka carries on.
            Some(Err(e)) => eprintln!("consumer: {e}"),
            None => {}
        }
    }
    Ok(batch)
}

/// The copy of `m` for `output`: key, value (null stays null), headers and timestamp.
fn to_record(m: &BorrowedMessage<'_>, output: &Topic) -> ProducerRecord<Vec<u8>, Vec<u8>> {
    let mut record = match m.payload() {
        Some(value) => ProducerRecord::new(output, value.to_vec()),
        None => ProducerRecord::tombstone(output),
    };
    if let Some(key) = m.key() {
        record = record.with_key(key.to_vec());
    }
    if let Some(ms) = m.timestamp().to_millis() {
        record = record.with_timestamp(ms);
    }
    for h in m.headers().iter().flat_map(|hs| hs.iter()) {
        match h.value {
            Some(v) => record.headers_mut().add(h.key, v),
            None => record.headers_mut().add_null(h.key),
        };
    }
    record
}

/// Copies `batch` and commits the input offsets after it, in one transaction.
fn copy(
    p: &Producer,
    input: &str,
    batch: Batch,
    group: &ConsumerGroupMetadata,
) -> Result<(), Error> {
    p.begin_transaction()?;
    let mut offsets = HashMap::new();
    for (partition, offset, record) in batch {
        let next = OffsetAndMetadata::new(offset + 1);
        offsets.insert(TopicPartition::new(input, partition), next);
        // A record that fails fails the commit (TransactionAbortable): its future can go.
        drop(p.send(record));
    }
    patiently(|| p.send_offsets_to_transaction(&offsets, group))?;
    patiently(|| p.commit_transaction())
}

/// Calls `call` again while it times out: the work goes on, and the next call waits for it.
fn patiently(call: impl Fn() -> Result<(), Error>) -> Result<(), Error> {
    loop {
        match call() {
            Err(e @ Error::Timeout { .. }) => eprintln!("{e}; waiting on"),
            result => return result,
        }
    }
}

/// Moves every assigned partition back to the group's committed offset (the beginning
/// when none is committed); what was fetched beyond it is dropped.
fn rewind(consumer: &Input) -> KafkaResult<()> {
    let committed = consumer.committed(Duration::from_secs(30))?;
    let mut positions = TopicPartitionList::new();
    for e in committed.elements() {
        let offset = match e.offset() {
            Offset::Offset(o) => Offset::Offset(o),
            _ => Offset::Beginning,
        };
        positions.add_partition_offset(e.topic(), e.partition(), offset)?;
    }
    if positions.count() > 0 {
        for e in consumer
            .seek_partitions(positions, Duration::from_secs(30))?
            .elements()
        {
            e.error()?;
        }
    }
    Ok(())
}

fn parse_args(mut args: impl Iterator<Item = String>) -> Result<Options, String> {
    let mut bootstrap = std::env::var("KAFKA_BOOTSTRAP_SERVERS").ok();
    let (mut input, mut output, mut group, mut id) = (None, None, None, None);
    let (mut max_records, mut idle) = (None, None);
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "--bootstrap-server" => bootstrap = Some(value()?),
            "--input" => input = Some(value()?),
            "--output" => output = Some(value()?),
            "--group" => group = Some(value()?),
            "--transactional-id" => id = Some(value()?),
            "--max-records" => max_records = Some(number(&value()?)?),
            "--idle-secs" => idle = Some(Duration::from_secs(number(&value()?)?)),
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    let bootstrap = bootstrap.filter(|b| !b.trim().is_empty());
    let bootstrap = bootstrap.ok_or("set KAFKA_BOOTSTRAP_SERVERS or --bootstrap-server")?;
    let input: String = input.ok_or("--input is required")?;
    let output: String = output.ok_or("--output is required")?;
    let group = group.unwrap_or_else(|| format!("copy-{input}-to-{output}"));
    let transactional_id = id.unwrap_or_else(|| format!("{group}-0"));
    Ok(Options {
        bootstrap,
        input,
        output,
        group,
        transactional_id,
        max_records,
        idle,
    })
}

fn number(s: &str) -> Result<u64, String> {
    s.parse()
        .map_err(|_| format!("expected a number, got {s:?}"))
}

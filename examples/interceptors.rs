//! Interceptors: one adds a `trace-id` header to every record before it is sent, another
//! counts acknowledgements (successes and failures) per topic. The example sends records,
//! reads the counts after `flush`, and checks that every record was acknowledged once.
//!
//! ```text
//! cargo run --example interceptors                 # 1000 records
//! cargo run --example interceptors -- 50000
//! KAFKA_BOOTSTRAP_SERVERS=broker:9092 TOPIC=traced cargo run --example interceptors
//! ```
//!
//! Without `KAFKA_BOOTSTRAP_SERVERS` it starts librdkafka's mock cluster inside this process
//! (one broker, a topic of three partitions). `cargo test --example interceptors` runs it
//! as a test.

use std::collections::BTreeMap;
use std::error::Error as StdError;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use kafka_producer::{
    Error, Producer, ProducerInterceptor, ProducerRecord, RecordMetadata, StringSerializer,
};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;

type AnyError = Box<dyn StdError + Send + Sync>;

const DEFAULT_RECORDS: u64 = 1000;
const MOCK_PARTITIONS: i32 = 3;

/// Gives every record a `trace-id` header: this process's prefix and a sequence number.
#[derive(Debug)]
struct TraceIds {
    prefix: String,
    next: AtomicU64,
}

impl ProducerInterceptor<String, String> for TraceIds {
    fn on_send(&self, record: &mut ProducerRecord<String, String>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        record
            .headers_mut()
            .add("trace-id", format!("{}-{id}", self.prefix));
    }
}

/// Counts acknowledgements per topic. Shared with `main` through an `Arc` (an
/// `Arc<impl ProducerInterceptor>` is an interceptor too).
#[derive(Debug, Default)]
struct AckCounter {
    /// topic -> (acknowledged, failed)
    counts: Mutex<BTreeMap<String, (u64, u64)>>,
}

impl ProducerInterceptor<String, String> for AckCounter {
    fn on_acknowledgement(
        &self,
        topic: &str,
        _partition: i32,
        result: &Result<RecordMetadata, Error>,
    ) {
        let mut counts = self.counts.lock().unwrap_or_else(|p| p.into_inner());
        let entry = counts.entry(topic.to_owned()).or_default();
        match result {
            Ok(_) => entry.0 += 1,
            Err(_) => entry.1 += 1,
        }
    }
}

fn main() -> ExitCode {
    let records = match std::env::args().nth(1).map(|a| a.parse::<u64>()) {
        None => DEFAULT_RECORDS,
        Some(Ok(n)) => n,
        Some(Err(e)) => {
            eprintln!("usage: interceptors [RECORDS]: {e}");
            return ExitCode::FAILURE;
        }
    };
    match run(records) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("interceptors example failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(records: u64) -> Result<bool, AnyError> {
    let cluster = Cluster::from_env("traced")?;
    println!("{}", cluster.description);
    let counter = Arc::new(AckCounter::default());
    let producer: Producer<String, String> = Producer::builder()
        .bootstrap_servers(&cluster.bootstrap)
        .client_id("interceptors-example")
        .key_serializer(StringSerializer)
        .value_serializer(StringSerializer)
        .interceptor(TraceIds {
            prefix: format!("p{}", std::process::id()),
            next: AtomicU64::new(0),
        })
        .interceptor(Arc::clone(&counter))
        .build()?;

    let mut last = None;
    for i in 0..records {
        let record = ProducerRecord::new(cluster.topic.as_str(), format!("value {i}"))
            .with_key(format!("key-{}", i % 16));
        last = Some(producer.send(record));
    }
    if let Some(last) = last {
        let md = last.wait()?;
        println!(
            "last record: {}-{} at offset {}",
            md.topic(),
            md.partition(),
            md.offset()
        );
    }
    // Every acknowledgement (and so every interceptor call) has run once flush returns.
    producer.flush()?;
    producer.close()?;

    let counts = counter.counts.lock().unwrap_or_else(|p| p.into_inner());
    for (topic, (acked, failed)) in counts.iter() {
        println!("{topic}: {acked} acknowledged, {failed} failed");
    }
    let (acked, failed) = counts.get(&cluster.topic).copied().unwrap_or_default();
    let ok = acked == records && failed == 0;
    println!("{}", if ok { "OK" } else { "FAILED" });
    Ok(ok)
}

/// The cluster to produce to: `KAFKA_BOOTSTRAP_SERVERS`, or an embedded mock cluster.
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
        let mock = MockCluster::new(1)?;
        mock.create_topic(&topic, MOCK_PARTITIONS, 1)?;
        Ok(Cluster {
            bootstrap: mock.bootstrap_servers(),
            description: format!(
                "cluster: embedded librdkafka mock cluster, {MOCK_PARTITIONS} partitions"
            ),
            topic,
            _mock: Some(mock),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_example_counts_every_acknowledgement() {
        // An embedded cluster, or the one KAFKA_BOOTSTRAP_SERVERS names.
        assert!(super::run(500).expect("the example runs"));
    }
}

//! Test bed shared by the integration tests: real, independent brokers and an independent
//! reader.
//!
//! - [`kafka`]: Apache Kafka itself, the main test broker: a single node shared per test
//!   binary ([`kafka::shared`], or the cluster `KAFKA_BOOTSTRAP_SERVERS` names, through
//!   [`brokers`]), dedicated single nodes, and the 3-node cluster of the failover tests; the
//!   Java consumer and producer as independent peers.
//! - [`Mock`]: librdkafka's in-process mock cluster, several brokers with partition leaders
//!   spread across them; [`mock::FaultMock`] is one that also injects errors per broker.
//! - [`read_back`]: reads a topic with the rdkafka consumer (`check.crcs=true`) until the
//!   expected count arrived and a quiet period brings no more, so duplicates are seen too;
//!   [`read_with_both`] also reads it with the Java consumer and compares the two.
//!
//! `KAFKA_BOOTSTRAP_SERVERS`, when set, names a real cluster for the broker-agnostic tests
//! ([`external_bootstrap`]).
#![allow(dead_code)]

pub mod checker;
pub mod kafka;
pub mod mock;
pub mod proxy;
pub mod secure;
pub mod workload;

use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers as _, Message};
use rdkafka::mocking::MockCluster;
use rdkafka::producer::DefaultProducerContext;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// The bootstrap address of an external cluster, from `KAFKA_BOOTSTRAP_SERVERS`.
pub fn external_bootstrap() -> Option<String> {
    std::env::var("KAFKA_BOOTSTRAP_SERVERS")
        .ok()
        .filter(|s| !s.trim().is_empty())
}

/// The brokers of the broker-agnostic tests: the cluster `KAFKA_BOOTSTRAP_SERVERS` names
/// when it is set, else this test binary's shared single-node Kafka ([`kafka::shared`]).
#[derive(Debug, Clone, Copy)]
pub enum Brokers {
    /// A cluster the tests did not start (`KAFKA_BOOTSTRAP_SERVERS`): topics are created
    /// through the Admin protocol, with replication factor min(3, brokers).
    External(&'static str),
    /// The shared single node of the test bed.
    Shared(&'static kafka::KafkaCluster),
}

/// See [`Brokers`].
pub fn brokers() -> Brokers {
    static EXTERNAL: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    match EXTERNAL.get_or_init(external_bootstrap) {
        Some(b) => Brokers::External(b.as_str()),
        None => Brokers::Shared(kafka::shared()),
    }
}

impl Brokers {
    /// The `host:port` list to bootstrap from.
    pub fn bootstrap(&self) -> &str {
        match self {
            Brokers::External(b) => b,
            Brokers::Shared(k) => k.bootstrap(),
        }
    }

    /// Whether these are brokers the tests did not start.
    pub fn is_external(&self) -> bool {
        matches!(self, Brokers::External(_))
    }

    /// Creates `topic` with `partitions` partitions and waits until it is usable.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        self.create_topic_with(topic, partitions, &[]);
    }

    /// Creates `topic` with topic `configs` and waits until it is usable.
    pub fn create_topic_with(&self, topic: &str, partitions: i32, configs: &[(&str, &str)]) {
        match self {
            Brokers::Shared(k) => k.create_topic(topic, partitions, 1, configs),
            Brokers::External(b) => {
                let replicas = external_broker_count(b).clamp(1, 3);
                kafka::create_topic(b, topic, partitions, replicas, configs);
                wait_for_partitions(b, topic, partitions as usize);
            }
        }
    }
}

/// How many brokers the cluster at `bootstrap` has, as librdkafka sees them.
fn external_broker_count(bootstrap: &str) -> i32 {
    let c = consumer(bootstrap);
    c.fetch_metadata(None, Duration::from_secs(10))
        .map(|md| md.brokers().len() as i32)
        .expect("metadata of the external cluster")
}

/// A unique topic name for one test run.
pub fn unique_topic(prefix: &str) -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{prefix}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// librdkafka's in-process mock cluster.
pub struct Mock {
    cluster: MockCluster<'static, DefaultProducerContext>,
    brokers: i32,
    bootstrap: String,
}

impl std::fmt::Debug for Mock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mock")
            .field("brokers", &self.brokers)
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

impl Mock {
    /// A cluster of `brokers` brokers (ids 1..=brokers).
    pub fn start(brokers: i32) -> Mock {
        let cluster = MockCluster::new(brokers).expect("start the rdkafka mock cluster");
        let bootstrap = cluster.bootstrap_servers();
        Mock {
            cluster,
            brokers,
            bootstrap,
        }
    }

    /// The bootstrap list of every broker.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The address of the first broker alone.
    pub fn first_broker(&self) -> &str {
        self.bootstrap.split(',').next().unwrap()
    }

    /// The underlying mock cluster (fault injection).
    pub fn cluster(&self) -> &MockCluster<'static, DefaultProducerContext> {
        &self.cluster
    }

    /// Creates `topic` and spreads partition leaders round-robin over the brokers.
    pub fn create_topic(&self, topic: &str, partitions: i32) {
        self.cluster
            .create_topic(topic, partitions, 1)
            .expect("create mock topic");
        for p in 0..partitions {
            let leader = p % self.brokers + 1;
            self.cluster
                .partition_leader(topic, p, Some(leader))
                .expect("set mock partition leader");
        }
        wait_for_partitions(&self.bootstrap, topic, partitions as usize);
    }
}

/// One record as the independent reader saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReadRecord {
    /// Partition it was read from.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
    /// Key (None for a null key).
    pub key: Option<Vec<u8>>,
    /// Value (None for a null value).
    pub value: Option<Vec<u8>>,
    /// Headers in order, with None for a null header value.
    pub headers: Vec<(String, Option<Vec<u8>>)>,
    /// The record's timestamp in ms.
    pub timestamp: i64,
}

fn consumer(bootstrap: &str) -> BaseConsumer {
    consumer_with(bootstrap, "read_uncommitted")
}

fn consumer_with(bootstrap: &str, isolation: &str) -> BaseConsumer {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", unique_topic("read-back"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("check.crcs", "true")
        .set("isolation.level", isolation)
        .set("fetch.wait.max.ms", "50")
        .set("topic.metadata.refresh.interval.ms", "500")
        .create()
        .expect("create the rdkafka consumer")
}

/// Number of partitions of `topic`, as librdkafka sees them (0 when unknown).
pub fn partition_count(bootstrap: &str, topic: &str) -> usize {
    let c = consumer(bootstrap);
    c.fetch_metadata(Some(topic), Duration::from_secs(5))
        .ok()
        .and_then(|md| {
            md.topics()
                .iter()
                .find(|t| t.name() == topic && t.error().is_none())
                .map(|t| t.partitions().len())
        })
        .unwrap_or(0)
}

fn wait_for_partitions(bootstrap: &str, topic: &str, partitions: usize) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while partition_count(bootstrap, topic) < partitions {
        assert!(
            Instant::now() < deadline,
            "topic {topic} never showed {partitions} partitions"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Reads every partition of `topic` from offset 0 with the rdkafka consumer
/// (`check.crcs=true`) until at least `expected` records arrived and one more second brings
/// no more; returns them in (partition, offset) order. Panics after 60 s without `expected`.
///
/// Reading from offset 0 and counting, rather than trusting watermarks, works on any
/// broker (tansu reported wrong high watermarks); the quiet period lets duplicates show up.
pub fn read_back(bootstrap: &str, topic: &str, expected: usize) -> Vec<ReadRecord> {
    let out = read_back_within(bootstrap, topic, expected, Duration::from_secs(60));
    assert!(
        out.len() >= expected,
        "read back {} of {expected} records of {topic} within 60 s",
        out.len()
    );
    out
}

/// [`read_back`] that gives up after `patience` without `expected` records and returns what
/// arrived, so that a checker can count what is missing instead of panicking.
pub fn read_back_within(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    patience: Duration,
) -> Vec<ReadRecord> {
    read_back_isolated(bootstrap, topic, expected, patience, "read_uncommitted")
}

/// [`read_back_within`] at isolation level `isolation` (`read_committed` skips the records
/// of aborted and open transactions, and the transaction markers).
pub fn read_back_isolated(
    bootstrap: &str,
    topic: &str,
    expected: usize,
    patience: Duration,
    isolation: &str,
) -> Vec<ReadRecord> {
    let partitions = partition_count(bootstrap, topic);
    assert!(partitions > 0, "topic {topic} has no partitions");
    // The next offset to read per partition, so that a fresh consumer can take over.
    let mut next = vec![0i64; partitions];
    let assign = |next: &[i64]| {
        let c = consumer_with(bootstrap, isolation);
        let mut tpl = TopicPartitionList::new();
        for (p, offset) in next.iter().enumerate() {
            tpl.add_partition_offset(topic, p as i32, Offset::Offset(*offset))
                .expect("add partition");
        }
        c.assign(&tpl).expect("assign partitions");
        c
    };
    let mut c = assign(&next);
    let deadline = Instant::now() + patience;
    let quiet = Duration::from_secs(1);
    // librdkafka's consumer sometimes stops fetching a partition of the mock cluster after
    // a fault-heavy run (leader moves while brokers went down); a fresh consumer resumes.
    let stalled = Duration::from_secs(10);
    let mut out = Vec::with_capacity(expected);
    let mut last_new = Instant::now();
    loop {
        match c.poll(Duration::from_millis(100)) {
            Some(Ok(m)) => {
                let r = to_read_record(&m);
                next[r.partition as usize] = r.offset + 1;
                out.push(r);
                last_new = Instant::now();
            }
            Some(Err(e)) => panic!("consumer error reading {topic}: {e}"),
            None => {}
        }
        if out.len() >= expected && last_new.elapsed() >= quiet {
            break;
        }
        if Instant::now() >= deadline {
            eprintln!(
                "read back {} of {expected} records of {topic} within {patience:?}",
                out.len()
            );
            break;
        }
        if out.len() < expected && last_new.elapsed() >= stalled {
            eprintln!(
                "reading {topic}: no record for {stalled:?} at {} of {expected}; a new consumer \
                 resumes at {next:?}",
                out.len()
            );
            c = assign(&next);
            last_new = Instant::now();
        }
    }
    out.sort_by_key(|r| (r.partition, r.offset));
    out
}

/// Reads `topic` with both independent readers at once, the rdkafka consumer
/// ([`read_back`]) and the Java consumer ([`kafka::java_read`]), asserts that they saw
/// exactly the same records (partition, offset, key, value, headers, timestamp), and
/// returns them in (partition, offset) order.
pub fn read_with_both(bootstrap: &str, topic: &str, expected: usize) -> Vec<ReadRecord> {
    let (rdkafka, java) = std::thread::scope(|s| {
        let java = s.spawn(|| {
            let patience = Duration::from_secs(120);
            let dist = kafka::distribution();
            kafka::java_read(
                dist,
                bootstrap,
                topic,
                expected,
                patience,
                "read_uncommitted",
            )
        });
        let rdkafka = read_back(bootstrap, topic, expected);
        (rdkafka, java.join().expect("the Java reader thread"))
    });
    assert_same_records(&rdkafka, &java, topic);
    rdkafka
}

/// The rdkafka and the Java consumer read the same records; else names the first that
/// differs (whole logs would drown the message).
pub fn assert_same_records(rdkafka: &[ReadRecord], java: &[ReadRecord], topic: &str) {
    let differs = (0..rdkafka.len().max(java.len())).find(|&i| rdkafka.get(i) != java.get(i));
    if let Some(i) = differs {
        panic!(
            "{topic}: the readers disagree at record {i} of {} (rdkafka) / {} (Java):\n\
             rdkafka: {:?}\nJava:    {:?}",
            rdkafka.len(),
            java.len(),
            rdkafka.get(i),
            java.get(i)
        );
    }
}

/// Reads every topic of `ledgers` back (waiting up to 120 s for each topic's acknowledged
/// records) and checks each log against its ledger.
pub fn check_run(bootstrap: &str, ledgers: &checker::TopicLedgers) -> checker::RunReport {
    let reads: Vec<Vec<ReadRecord>> = ledgers
        .topics()
        .iter()
        .enumerate()
        .map(|(i, topic)| {
            let acked = ledgers.ledger(i).count(checker::Outcome::Acked);
            read_back_within(bootstrap, topic, acked, Duration::from_secs(120))
        })
        .collect();
    checker::check_topics(ledgers, &reads)
}

fn to_read_record(m: &rdkafka::message::BorrowedMessage<'_>) -> ReadRecord {
    let headers = m
        .headers()
        .map(|hs| {
            hs.iter()
                .map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec)))
                .collect()
        })
        .unwrap_or_default();
    ReadRecord {
        partition: m.partition(),
        offset: m.offset(),
        key: m.key().map(<[u8]>::to_vec),
        value: m.payload().map(<[u8]>::to_vec),
        headers,
        timestamp: m.timestamp().to_millis().unwrap_or(-1),
    }
}

/// Runs a future to completion on this thread (rdkafka's admin calls return futures; the
/// tests have no async runtime).
pub fn block_on<F: std::future::Future>(future: F) -> F::Output {
    use std::sync::Arc;
    use std::task::{Context, Poll, Wake, Waker};
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = std::pin::pin!(future);
    loop {
        match future.as_mut().poll(&mut cx) {
            Poll::Ready(out) => return out,
            Poll::Pending => std::thread::park(),
        }
    }
}

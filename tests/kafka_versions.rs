//! The protocol-version matrix: for each Kafka version in `KAFKA_MATRIX` (space-separated;
//! default [`DEFAULT_MATRIX`]), a dedicated single node of that version, then
//!
//! - the versions the ApiVersions handshake settles on for Produce, Metadata and
//!   InitProducerId are the highest both sides support, where "the broker's side" is read
//!   twice: from our handshake and, independently, from Kafka's own
//!   `BrokerApiVersionsCommand`; and the producer really sends Produce at that version (a
//!   proxy captures its requests);
//! - our producer writes through every codec with acks 0, 1 and all (idempotent), and the
//!   rdkafka consumer and the Java consumer both read back every field as sent.
//!
//! Run with `--nocapture` to see the table of negotiated versions.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::kafka::{self, ClusterOptions, KafkaCluster};
use common::proxy::Proxy;
use common::{read_back, unique_topic, ReadRecord};
use kafka_producer::net::{BlockingClient, Connection, ConnectionConfig};
use kafka_producer::protocol::api_versions::ApiVersionsRequest;
use kafka_producer::protocol::init_producer_id::InitProducerIdRequest;
use kafka_producer::protocol::metadata::MetadataRequest;
use kafka_producer::protocol::produce::ProduceRequest;
use kafka_producer::protocol::{Request, VersionRange};
use kafka_producer::{Headers, Producer, ProducerRecord, RecordMetadata};

/// The oldest and newest Kafka 4.x the test bed pins, and the last 3.x.
const DEFAULT_MATRIX: &str = "3.9.2 4.0.0 4.4.0";

/// Partitions of each version's topic.
const PARTITIONS: i32 = 3;

/// Records each (codec, acks) producer sends.
const PER_PRODUCER: usize = 60;

/// The Kafka versions to test.
fn matrix() -> Vec<String> {
    let spec = std::env::var("KAFKA_MATRIX")
        .ok()
        .filter(|s| !s.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_MATRIX.to_owned());
    spec.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn every_kafka_version_negotiates_the_highest_common_api_versions_and_reads_back_every_field() {
    let mut table = Vec::new();
    for version in matrix() {
        let started = Instant::now();
        let k = KafkaCluster::start(ClusterOptions::nodes(1).version(&version));
        let booted = started.elapsed();
        let negotiated = negotiated_versions(&k);
        let topic = unique_topic("matrix");
        k.create_topic(&topic, PARTITIONS, 1, &[]);
        check_produce_version(&k, &topic, negotiated.produce());
        let sent = produce_every_codec_and_acks(k.bootstrap(), &topic);
        check_read_back(&k, &topic, &sent);
        eprintln!(
            "Kafka {}: started in {booted:?}, checked in {:?}",
            k.version(),
            started.elapsed()
        );
        table.push(negotiated);
    }
    println!("{}", render(&table));
}

// ---------------------------------------------------------------------------------------
// Negotiation
// ---------------------------------------------------------------------------------------

/// What one broker and this client settled on.
#[derive(Debug)]
struct Negotiated {
    kafka: String,
    apis: Vec<Api>,
}

/// One API: our range, the broker's range, and the version the handshake chose.
#[derive(Debug)]
struct Api {
    name: &'static str,
    ours: VersionRange,
    broker: VersionRange,
    chosen: i16,
}

impl Negotiated {
    fn produce(&self) -> i16 {
        self.apis
            .iter()
            .find(|a| a.name == "Produce")
            .expect("Produce was negotiated")
            .chosen
    }
}

/// Connects to the node, checks each API's chosen version against the broker's range as
/// both our handshake and Kafka's own tool report it, and returns what was chosen.
fn negotiated_versions(k: &KafkaCluster) -> Negotiated {
    let address = k.address(1);
    let client = BlockingClient::connect(&address, &ConnectionConfig::default())
        .unwrap_or_else(|e| panic!("connect to Kafka {}: {e}", k.version()));
    let c = client.connection();
    let tool = broker_ranges_from_kafka(k);
    let apis = vec![
        api::<ApiVersionsRequest>(c, "ApiVersions", c.handshake_version()),
        api::<ProduceRequest>(
            c,
            "Produce",
            c.version_for::<ProduceRequest>().unwrap_or(-1),
        ),
        api::<MetadataRequest>(
            c,
            "Metadata",
            c.version_for::<MetadataRequest>().unwrap_or(-1),
        ),
        api::<InitProducerIdRequest>(
            c,
            "InitProducerId",
            c.version_for::<InitProducerIdRequest>().unwrap_or(-1),
        ),
    ];
    for a in &apis {
        let expected = a.ours.max.min(a.broker.max);
        assert!(
            expected >= a.ours.min.max(a.broker.min),
            "Kafka {}: no common {} version: ours {:?}, broker {:?}",
            k.version(),
            a.name,
            a.ours,
            a.broker
        );
        assert_eq!(
            a.chosen,
            expected,
            "Kafka {}: {} at min(our max {}, broker max {})",
            k.version(),
            a.name,
            a.ours.max,
            a.broker.max
        );
        assert_eq!(
            tool.get(a.name),
            Some(&(a.broker.min, a.broker.max)),
            "Kafka {}: the broker's {} range as our handshake decoded it vs Kafka's tool",
            k.version(),
            a.name
        );
    }
    Negotiated {
        kafka: k.version().to_owned(),
        apis,
    }
}

/// Request type `R`'s row: our range, the broker's (from our handshake), `chosen`.
fn api<R: Request>(c: &Connection, name: &'static str, chosen: i16) -> Api {
    let broker = c
        .api_versions()
        .range(R::API_KEY)
        .unwrap_or_else(|| panic!("the broker does not list {name}"));
    Api {
        name,
        ours: R::VERSIONS,
        broker,
        chosen,
    }
}

/// The broker's version range per API name, as Kafka's `BrokerApiVersionsCommand` prints
/// it (`Produce(0): 3 to 12 [usable: 12]`): an ApiVersions decoder independent of ours.
fn broker_ranges_from_kafka(k: &KafkaCluster) -> HashMap<String, (i16, i16)> {
    let class = if k.version().starts_with("3.") {
        "kafka.admin.BrokerApiVersionsCommand"
    } else {
        "org.apache.kafka.tools.BrokerApiVersionsCommand"
    };
    let out = k.tool(class, &["--bootstrap-server", k.bootstrap()]);
    let mut ranges = HashMap::new();
    for line in out.lines() {
        let line = line.trim().trim_end_matches(',');
        let Some((name, rest)) = line.split_once('(') else {
            continue;
        };
        let Some((_key, rest)) = rest.split_once("): ") else {
            continue;
        };
        let Some((min, rest)) = rest.split_once(" to ") else {
            continue;
        };
        let max = rest.split_whitespace().next().unwrap_or_default();
        if let (Ok(min), Ok(max)) = (min.parse(), max.parse()) {
            ranges.insert(name.to_owned(), (min, max));
        }
    }
    assert!(
        ranges.contains_key("Produce"),
        "could not read BrokerApiVersionsCommand's output:\n{out}"
    );
    ranges
}

/// Sends a few records through a proxy that captures every Produce request, and checks
/// that each went out at the negotiated version.
fn check_produce_version(k: &KafkaCluster, topic: &str, negotiated: i16) {
    let proxy = Proxy::start(&k.address(1));
    let producer: Producer =
        Producer::from_properties([("bootstrap.servers", proxy.bootstrap().as_str())])
            .expect("a valid configuration");
    for p in 0..PARTITIONS {
        let record = ProducerRecord::new(topic, b"probe".to_vec()).with_partition(p);
        producer.send(record).wait().expect("a probe record");
    }
    producer.close().unwrap();
    let versions: Vec<i16> = proxy
        .produce_requests()
        .iter()
        .map(|r| r.api_version)
        .collect();
    assert!(!versions.is_empty(), "the proxy saw the Produce requests");
    assert!(
        versions.iter().all(|&v| v == negotiated),
        "Kafka {}: Produce sent at {versions:?}, negotiated v{negotiated}",
        k.version()
    );
}

// ---------------------------------------------------------------------------------------
// Every codec and acks level, read back field by field
// ---------------------------------------------------------------------------------------

/// The codecs, by their `compression.type` names.
const CODECS: [&str; 5] = ["none", "gzip", "snappy", "lz4", "zstd"];

/// Acks levels: acks=all leaves idempotence on (the default); 0 and 1 turn it off.
const ACKS: [&str; 3] = ["0", "1", "all"];

/// One record as sent, with what the producer reported for it.
#[derive(Debug)]
struct Sent {
    /// Which producer sent it (for messages).
    producer: String,
    /// The record as the reader should see it; partition, offset (when acks > 0) and
    /// timestamp come from the producer's metadata.
    expected: ReadRecord,
    /// Whether the offset is known (acks > 0).
    has_offset: bool,
}

/// A record id, carried as the first header so that tombstones can be told apart too.
fn id(producer: usize, i: usize) -> String {
    format!("{producer:02}-{i:03}")
}

/// Record `i` of producer `p`: null, empty, text and binary keys; null, empty, small and
/// large compressible values; null-valued and repeated headers; explicit and chosen
/// partitions; explicit and producer-clock timestamps.
fn record(topic: &str, p: usize, i: usize, base_ts: i64) -> ProducerRecord<Vec<u8>, Vec<u8>> {
    let mut headers = Headers::new();
    headers.add("id", id(p, i));
    match i % 3 {
        0 => {
            headers.add_null("null-header");
        }
        1 => {
            headers
                .add("dup", "a")
                .add("dup", "b")
                .add("", vec![0u8, 255]);
        }
        _ => {}
    }
    let value = match i % 7 {
        0 => None,
        1 => Some(Vec::new()),
        2 => Some(
            format!("{}", i * 1_000_003)
                .repeat(1 + i * 137 % 3_000)
                .into_bytes(),
        ),
        _ => Some(
            (0..(i * 397) % 700)
                .map(|n| (n * 31 + p * 7 + i) as u8)
                .collect(),
        ),
    };
    let mut r = match value {
        Some(v) => ProducerRecord::new(topic, v),
        None => ProducerRecord::tombstone(topic),
    };
    r = r.with_headers(headers);
    r = match i % 4 {
        0 => r,
        1 => r.with_key(Vec::new()),
        2 => r.with_key(format!("key-{i}").into_bytes()),
        _ => r.with_key(vec![0, 1, (p as u8).wrapping_mul(17), i as u8, 255]),
    };
    if i % 2 == 0 {
        r = r.with_partition((i as i32) % PARTITIONS);
    }
    if i % 5 != 0 {
        r = r.with_timestamp(base_ts + i as i64);
    }
    r
}

/// The reader's view of `record` once the producer reported `md` for it.
fn expected(record: &ProducerRecord<Vec<u8>, Vec<u8>>, md: &RecordMetadata) -> ReadRecord {
    ReadRecord {
        partition: md.partition(),
        offset: md.offset(),
        key: record.key().cloned(),
        value: record.value().cloned(),
        headers: record
            .headers()
            .iter()
            .map(|h| (h.key.clone(), h.value.clone()))
            .collect(),
        timestamp: record.timestamp().unwrap_or(md.timestamp()),
    }
}

/// Sends [`PER_PRODUCER`] records from one producer per (codec, acks) pair and returns
/// them with their metadata.
fn produce_every_codec_and_acks(bootstrap: &str, topic: &str) -> Vec<Sent> {
    let base_ts = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
        - 600_000;
    let mut sent = Vec::new();
    let combos = CODECS
        .iter()
        .flat_map(|c| ACKS.iter().map(move |a| (*c, *a)));
    for (p, (codec, acks)) in combos.enumerate() {
        let name = format!("compression.type={codec} acks={acks}");
        let producer: Producer = Producer::from_properties([
            ("bootstrap.servers", bootstrap),
            ("compression.type", codec),
            ("acks", acks),
            ("linger.ms", "5"),
        ])
        .unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            producer.config().enable_idempotence,
            acks == "all",
            "{name}: idempotence follows acks"
        );
        let records: Vec<_> = (0..PER_PRODUCER)
            .map(|i| record(topic, p, i, base_ts))
            .collect();
        let futures: Vec<_> = records.iter().map(|r| producer.send(r.clone())).collect();
        for (r, f) in records.iter().zip(futures) {
            let md = f.wait().unwrap_or_else(|e| panic!("{name}: {e}"));
            sent.push(Sent {
                producer: name.clone(),
                expected: expected(r, &md),
                has_offset: md.has_offset(),
            });
        }
        producer.close().unwrap();
    }
    sent
}

/// Reads the topic with the rdkafka consumer and the Java consumer (both check CRCs) and
/// compares every field of every record with what was sent.
fn check_read_back(k: &KafkaCluster, topic: &str, sent: &[Sent]) {
    let rdkafka = read_back(k.bootstrap(), topic, sent.len() + PARTITIONS as usize);
    let java = kafka::java_read(
        k.distribution(),
        k.bootstrap(),
        topic,
        sent.len() + PARTITIONS as usize,
        Duration::from_secs(60),
        "read_uncommitted",
    );
    assert_eq!(
        rdkafka,
        java,
        "Kafka {}: the two readers see the same log",
        k.version()
    );
    compare(k.version(), sent, &rdkafka);
}

/// Matches each read record to the one sent with its id header and compares every field;
/// checks that each producer's records of a partition are in send order.
fn compare(version: &str, sent: &[Sent], read: &[ReadRecord]) {
    let id_of = |r: &ReadRecord| -> Option<String> {
        r.headers
            .first()
            .filter(|(k, _)| k == "id")
            .and_then(|(_, v)| v.clone())
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    };
    let by_id: HashMap<String, &ReadRecord> = read
        .iter()
        .filter_map(|r| id_of(r).map(|id| (id, r)))
        .collect();
    let probes = read.iter().filter(|r| id_of(r).is_none()).count();
    assert_eq!(probes, PARTITIONS as usize, "Kafka {version}: the probes");
    assert_eq!(by_id.len(), sent.len(), "Kafka {version}: each record once");
    let mut last: HashMap<(&str, i32), i64> = HashMap::new();
    for s in sent {
        let id = id_of(&s.expected).unwrap();
        let got = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("Kafka {version}, {}: record {id} missing", s.producer));
        let mut want = s.expected.clone();
        if !s.has_offset {
            want.offset = got.offset;
        }
        assert_eq!(
            **got, want,
            "Kafka {version}, {}: record {id} read back",
            s.producer
        );
        if let Some(prev) = last.insert((&s.producer, got.partition), got.offset) {
            assert!(
                prev < got.offset,
                "Kafka {version}, {}: record {id} written before an earlier one",
                s.producer
            );
        }
    }
}

// ---------------------------------------------------------------------------------------
// The table
// ---------------------------------------------------------------------------------------

/// A Markdown table: one row per Kafka version, one column per API, each cell
/// `vN (broker a-b)`; the header names our ranges.
fn render(table: &[Negotiated]) -> String {
    let Some(first) = table.first() else {
        return "no Kafka versions tested".to_owned();
    };
    let mut out = String::from("| Kafka |");
    for a in &first.apis {
        out += &format!(" {} (ours {}-{}) |", a.name, a.ours.min, a.ours.max);
    }
    out += "\n|---|";
    out += &"---|".repeat(first.apis.len());
    for n in table {
        out += &format!("\n| {} |", n.kafka);
        for a in &n.apis {
            out += &format!(
                " v{} (broker {}-{}) |",
                a.chosen, a.broker.min, a.broker.max
            );
        }
    }
    out
}

//! Record batches of every codec, written with raw Produce requests over our `Connection` to
//! real brokers (tansu and librdkafka's mock cluster), read back by the rdkafka consumer
//! (`check.crcs=true`), field by field.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{read_back, unique_topic, Mock, ReadRecord, Tansu};
use kafka_producer::net::{BlockingClient, ConnectionConfig};
use kafka_producer::protocol::metadata::{MetadataRequest, MetadataResponse};
use kafka_producer::protocol::produce::{
    PartitionProduceData, ProduceRequest, ProduceResponse, TopicProduceData,
};
use kafka_producer::record_batch::{ProducerState, RecordBatchBuilder};
use kafka_producer::{Compression, Header};

const TIMEOUT: Duration = Duration::from_secs(20);
const PARTITIONS: i32 = 2;

/// One record as we send it.
#[derive(Debug, Clone)]
struct Sent {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

/// Compressible but not trivial bytes.
fn payload(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
    (0..len)
        .map(|i| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            if i % 3 == 0 {
                b'a' + (x % 26) as u8
            } else {
                (x >> 24) as u8
            }
        })
        .collect()
}

/// Records with null and non-null keys, empty, null and large values, headers (one with a
/// null value), and explicit timestamps (one earlier than the batch's first).
fn records_for(partition: i32) -> Vec<Sent> {
    let base = 1_700_000_000_000 + i64::from(partition) * 1000;
    let mut out = vec![
        Sent {
            timestamp: base,
            key: None,
            value: Some(Vec::new()),
            headers: vec![],
        },
        Sent {
            timestamp: base - 5_000,
            key: Some(b"key-1".to_vec()),
            value: Some(payload(1, 200 * 1024)),
            headers: vec![
                Header::new("trace-id", b"abc".to_vec()),
                Header {
                    key: "null-valued".into(),
                    value: None,
                },
            ],
        },
        Sent {
            timestamp: base + 7,
            key: Some(Vec::new()),
            value: None,
            headers: vec![Header::new("h", Vec::new())],
        },
    ];
    for i in 0..50u64 {
        out.push(Sent {
            timestamp: base + 10 + i as i64,
            key: (i % 2 == 0).then(|| format!("k{i}").into_bytes()),
            value: Some(payload(i + 100, 100)),
            headers: vec![Header::new(format!("n{i}"), i.to_be_bytes().to_vec())],
        });
    }
    out
}

fn batch(records: &[Sent], compression: Compression) -> Bytes {
    let mut b = RecordBatchBuilder::new(compression, None);
    for r in records {
        b.append(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    b.build(ProducerState::NONE)
}

fn client(broker: &str) -> BlockingClient {
    BlockingClient::connect(broker, &ConnectionConfig::default()).expect("connect")
}

fn metadata(bootstrap: &str, topic: &str) -> MetadataResponse {
    let broker = bootstrap.split(',').next().unwrap();
    let request = MetadataRequest {
        topics: Some(vec![topic.to_owned()]),
        ..MetadataRequest::default()
    };
    client(broker).request(&request, TIMEOUT).expect("metadata")
}

/// Sends each partition's batch to that partition's leader, as a raw Produce request.
fn produce(bootstrap: &str, topic: &str, batches: &[(i32, Bytes)], acks: i16) {
    let md = metadata(bootstrap, topic);
    let t = md
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(topic))
        .expect("topic in metadata");
    for (partition, records) in batches {
        let leader = t
            .partitions
            .iter()
            .find(|p| p.partition_index == *partition)
            .expect("partition in metadata")
            .leader_id;
        let b = md.brokers.iter().find(|b| b.node_id == leader).unwrap();
        let mut c = client(&format!("{}:{}", b.host, b.port));
        let request = ProduceRequest {
            transactional_id: None,
            acks,
            timeout_ms: 10_000,
            topics: vec![TopicProduceData {
                name: topic.to_owned(),
                partitions: vec![PartitionProduceData {
                    index: *partition,
                    records: Some(records.clone()),
                }],
            }],
        };
        if acks == 0 {
            assert_eq!(c.send(&request).unwrap(), None, "acks=0 expects no answer");
            // A request that does expect an answer still gets it, whatever the broker did
            // with the acks=0 one (tansu and the mock answer it; Kafka does not).
            let md: MetadataResponse = c
                .request(&MetadataRequest::default(), TIMEOUT)
                .expect("metadata after an acks=0 produce");
            assert!(!md.brokers.is_empty());
            continue;
        }
        let response: ProduceResponse = c.request(&request, TIMEOUT).expect("produce");
        let p = &response.responses[0].partitions[0];
        assert_eq!(p.error_code, 0, "produce to {topic}-{partition}: {p:?}");
        assert_eq!(p.base_offset, 0, "first batch of a fresh partition");
    }
}

fn assert_read_back_equal(got: &[ReadRecord], sent: &[(i32, Vec<Sent>)], what: &str) {
    let total: usize = sent.iter().map(|(_, r)| r.len()).sum();
    assert_eq!(got.len(), total, "{what}: record count");
    for (partition, records) in sent {
        let read: Vec<&ReadRecord> = got.iter().filter(|r| r.partition == *partition).collect();
        assert_eq!(
            read.len(),
            records.len(),
            "{what}: partition {partition} count"
        );
        for (i, (r, s)) in read.iter().zip(records).enumerate() {
            let at = format!("{what}: partition {partition} record {i}");
            assert_eq!(r.offset, i as i64, "{at}: offset");
            assert_eq!(r.key, s.key, "{at}: key");
            assert_eq!(r.value, s.value, "{at}: value");
            assert_eq!(r.timestamp, s.timestamp, "{at}: timestamp");
            let headers: Vec<(String, Option<Vec<u8>>)> = s
                .headers
                .iter()
                .map(|h| (h.key.clone(), h.value.clone()))
                .collect();
            assert_eq!(r.headers, headers, "{at}: headers");
        }
    }
}

fn round_trip(bootstrap: &str, create: impl Fn(&str), compression: Compression, what: &str) {
    let topic = unique_topic(&format!("readback-{}", compression.name()));
    create(&topic);
    let sent: Vec<(i32, Vec<Sent>)> = (0..PARTITIONS).map(|p| (p, records_for(p))).collect();
    let batches: Vec<(i32, Bytes)> = sent
        .iter()
        .map(|(p, r)| (*p, batch(r, compression)))
        .collect();
    produce(bootstrap, &topic, &batches, -1);
    let total = sent.iter().map(|(_, r)| r.len()).sum();
    let got = read_back(bootstrap, &topic, total);
    assert_read_back_equal(&got, &sent, &format!("{what} {}", compression.name()));
}

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

#[test]
fn every_codec_reads_back_field_exact_from_tansu() {
    let tansu = Tansu::start();
    for c in CODECS {
        round_trip(
            tansu.bootstrap(),
            |t| tansu.create_topic(t, PARTITIONS),
            c,
            "tansu",
        );
    }
}

#[test]
fn every_codec_reads_back_field_exact_from_the_mock_cluster() {
    // Three brokers; the two partitions are led by brokers 1 and 2, so each batch goes to a
    // different broker.
    let mock = Mock::start(3);
    for c in CODECS {
        round_trip(
            mock.bootstrap(),
            |t| mock.create_topic(t, PARTITIONS),
            c,
            "mock",
        );
    }
}

#[test]
fn acks_zero_produce_is_written_and_its_stray_answer_is_dropped() {
    let tansu = Tansu::start();
    let topic = unique_topic("acks0");
    tansu.create_topic(&topic, 1);
    let records = records_for(0);
    produce(
        tansu.bootstrap(),
        &topic,
        &[(0, batch(&records, Compression::Lz4))],
        0,
    );
    let got = read_back(tansu.bootstrap(), &topic, records.len());
    assert_read_back_equal(&got, &[(0, records)], "tansu acks=0");
}

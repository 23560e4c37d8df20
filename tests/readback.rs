//! Record batches of every codec, written with raw Produce requests over our `Connection` to
//! real brokers (Kafka, and librdkafka's mock cluster), read back field by field. What Kafka
//! holds is read by two independent readers, the rdkafka consumer and the Java consumer
//! (both check CRCs), which must agree record for record; the mock cluster's log is read by
//! the rdkafka consumer.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use bytes::Bytes;
use common::{brokers, read_back, unique_topic, Mock, ReadRecord};
use kafka_producer::net::{BlockingClient, ConnectionConfig};
use kafka_producer::protocol::metadata::{MetadataRequest, MetadataResponse};
use kafka_producer::protocol::produce::{
    PartitionProduceData, ProduceRequest, ProduceResponse, TopicProduceData,
};
use kafka_producer::protocol::{decode_response, encode_request, peek_correlation_id};
use kafka_producer::record_batch::{ProducerState, RecordBatchBuilder};
use kafka_producer::{Compression, Header};

const TIMEOUT: Duration = Duration::from_secs(20);
const PARTITIONS: i32 = 2;
/// Topic configs for records with 2023 timestamps: Kafka's retention check (30 s after a
/// broker starts, then every 5 minutes) would delete them under the default 7-day retention.
const KEEP_OLD_TIMESTAMPS: &[(&str, &str)] = &[("retention.ms", "-1")];

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

/// The `host:port` of the leader of `topic`'s `partition`, as `md` tells it.
fn leader_of(md: &MetadataResponse, topic: &str, partition: i32) -> String {
    let leader = md
        .topics
        .iter()
        .find(|t| t.name.as_deref() == Some(topic))
        .expect("topic in metadata")
        .partitions
        .iter()
        .find(|p| p.partition_index == partition)
        .expect("partition in metadata")
        .leader_id;
    let b = md.brokers.iter().find(|b| b.node_id == leader).unwrap();
    format!("{}:{}", b.host, b.port)
}

/// A Produce request of one batch for `topic`'s `partition`.
fn produce_request(topic: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
    ProduceRequest {
        transactional_id: None,
        acks,
        timeout_ms: 10_000,
        topics: vec![TopicProduceData {
            name: topic.to_owned(),
            partitions: vec![PartitionProduceData {
                index: partition,
                records: Some(records),
            }],
        }],
    }
}

/// Sends each partition's batch to that partition's leader, as a raw Produce request.
fn produce(bootstrap: &str, topic: &str, batches: &[(i32, Bytes)], acks: i16) {
    let md = metadata(bootstrap, topic);
    for (partition, records) in batches {
        let mut c = client(&leader_of(&md, topic, *partition));
        let request = produce_request(topic, *partition, records.clone(), acks);
        if acks == 0 {
            assert_eq!(c.send(&request).unwrap(), None, "acks=0 expects no answer");
            // A request that does expect an answer still gets it (Kafka sends none to the
            // acks=0 one: see assert_no_response_to_acks_zero).
            let md: MetadataResponse = c
                .request(&MetadataRequest::default(), TIMEOUT)
                .expect("metadata after an acks=0 produce");
            assert!(!md.brokers.is_empty());
            continue;
        }
        // A partition created a moment ago may show its leader in metadata before that
        // broker has taken the leadership (NOT_LEADER_OR_FOLLOWER, LEADER_NOT_AVAILABLE):
        // retry those briefly, as any producer would; a rejected batch is not written.
        let deadline = std::time::Instant::now() + TIMEOUT;
        let p = loop {
            let response: ProduceResponse = c.request(&request, TIMEOUT).expect("produce");
            let p = response.responses[0].partitions[0].clone();
            let not_yet = matches!(p.error_code, 5 | 6);
            if !not_yet || std::time::Instant::now() > deadline {
                break p;
            }
            std::thread::sleep(std::time::Duration::from_millis(100));
        };
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

/// Writes every partition's records in one batch of `compression` (acks=all), reads them
/// back with `read` and compares them field by field with what was sent.
fn round_trip(
    bootstrap: &str,
    create: impl Fn(&str),
    read: impl Fn(&str, &str, usize) -> Vec<ReadRecord>,
    compression: Compression,
    what: &str,
) {
    let topic = unique_topic(&format!("readback-{}", compression.name()));
    create(&topic);
    let sent: Vec<(i32, Vec<Sent>)> = (0..PARTITIONS).map(|p| (p, records_for(p))).collect();
    let batches: Vec<(i32, Bytes)> = sent
        .iter()
        .map(|(p, r)| (*p, batch(r, compression)))
        .collect();
    produce(bootstrap, &topic, &batches, -1);
    let total = sent.iter().map(|(_, r)| r.len()).sum();
    let got = read(bootstrap, &topic, total);
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
fn every_codec_reads_back_field_exact_from_kafka() {
    let brokers = brokers();
    for c in CODECS {
        round_trip(
            brokers.bootstrap(),
            |t| brokers.create_topic_with(t, PARTITIONS, KEEP_OLD_TIMESTAMPS),
            common::read_with_both,
            c,
            "kafka",
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
            read_back,
            c,
            "mock",
        );
    }
}

/// One response frame from `stream` (the bytes after the size prefix).
fn read_frame(stream: &mut TcpStream) -> std::io::Result<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let mut frame = vec![0u8; i32::from_be_bytes(size) as usize];
    stream.read_exact(&mut frame)?;
    Ok(frame)
}

/// Writes an acks=0 Produce request of `records` for `topic`'s `partition` and then a
/// Metadata request on one plain socket to the partition's leader, and watches every frame
/// that comes back: the first answers the Metadata request (Kafka answers a connection's
/// requests in order, so an answer to the produce would have come first), and nothing
/// follows it.
fn assert_no_response_to_acks_zero(bootstrap: &str, topic: &str, partition: i32, records: Bytes) {
    let leader = leader_of(&metadata(bootstrap, topic), topic, partition);
    // The versions our Connection negotiates with this broker.
    let (produce_version, metadata_version) = {
        let c = client(&leader);
        let c = c.connection();
        (
            c.version_for::<ProduceRequest>()
                .expect("a common Produce version"),
            c.version_for::<MetadataRequest>()
                .expect("a common Metadata version"),
        )
    };
    let (produce_id, metadata_id) = (7, 8);
    let produce = produce_request(topic, partition, records, 0);
    let request = MetadataRequest {
        topics: Some(vec![topic.to_owned()]),
        ..MetadataRequest::default()
    };
    let mut stream = TcpStream::connect(&leader).expect("connect to the leader");
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream
        .write_all(&encode_request(&produce, produce_version, produce_id, None))
        .unwrap();
    stream
        .write_all(&encode_request(
            &request,
            metadata_version,
            metadata_id,
            None,
        ))
        .unwrap();

    let frame = read_frame(&mut stream).expect("the answer to the Metadata request");
    let first = peek_correlation_id(&frame).unwrap();
    assert_ne!(first, produce_id, "Kafka answered an acks=0 produce");
    assert_eq!(first, metadata_id, "an answer to a request never sent");
    let (_, md) = decode_response::<MetadataRequest>(metadata_version, &frame)
        .expect("a Metadata response after an acks=0 produce");
    assert!(md.topics.iter().any(|t| t.name.as_deref() == Some(topic)));

    stream
        .set_read_timeout(Some(Duration::from_secs(1)))
        .unwrap();
    match read_frame(&mut stream) {
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {}
        Ok(frame) => panic!(
            "a frame with correlation id {:?} after the Metadata answer",
            peek_correlation_id(&frame)
        ),
        Err(e) => panic!("the connection broke after the Metadata answer: {e}"),
    }
}

/// Kafka writes an acks=0 produce and sends no response to it, and the connection keeps
/// answering later requests. Partition 0 goes through our `Connection` (its `send` expects
/// no answer; a Metadata request on the same connection is answered); partition 1 on a
/// plain socket, where every frame Kafka writes back is seen.
#[test]
fn acks_zero_produce_is_written_and_kafka_sends_no_response() {
    let brokers = brokers();
    let topic = unique_topic("acks0");
    brokers.create_topic_with(&topic, PARTITIONS, KEEP_OLD_TIMESTAMPS);
    let sent: Vec<(i32, Vec<Sent>)> = (0..PARTITIONS).map(|p| (p, records_for(p))).collect();
    let batches: Vec<Bytes> = sent
        .iter()
        .map(|(_, r)| batch(r, Compression::Lz4))
        .collect();
    produce(brokers.bootstrap(), &topic, &[(0, batches[0].clone())], 0);
    assert_no_response_to_acks_zero(brokers.bootstrap(), &topic, 1, batches[1].clone());
    let total = sent.iter().map(|(_, r)| r.len()).sum();
    let got = common::read_with_both(brokers.bootstrap(), &topic, total);
    assert_read_back_equal(&got, &sent, "kafka acks=0");
}

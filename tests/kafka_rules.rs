//! Rules that real Apache Kafka enforces and the stand-in brokers (tansu, librdkafka's mock
//! cluster) skipped, and parity with the Java producer: each test drives the broker into
//! one rule and checks what a user of the producer sees (which records fail, with which
//! error, how fast, and that every other record is delivered once, in order).
//!
//! Tests that only need topic configs run on the shared node ([`common::brokers`], or the
//! cluster `KAFKA_BOOTSTRAP_SERVERS` names); the proxy test needs the single shared node,
//! the min-ISR test three nodes of its own (one is stopped), and the producer-id expiry test
//! a node of its own (broker-wide settings).

mod common;

use std::collections::HashMap;
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use common::kafka::{self, ClusterOptions, KafkaCluster};
use common::proxy::{BatchCorruption, Proxy, Script};
use common::{brokers, read_back, unique_topic, ReadRecord};
use kafka_producer::{Error, ErrorCode, Producer, ProducerRecord, RecordMetadata, SendFuture};

/// A bytes producer on `bootstrap` with `extra` properties.
fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> Producer {
    let mut props = vec![("bootstrap.servers", bootstrap)];
    props.extend_from_slice(extra);
    Producer::from_properties(props).expect("a valid configuration")
}

/// The broker error code of `e`, if it is a broker error.
fn broker_code(e: &Error) -> Option<ErrorCode> {
    match e {
        Error::Broker { code, .. } => Some(*code),
        _ => None,
    }
}

/// A value of `len` bytes that starts with `tag` (so a reader can tell records apart).
fn tagged(tag: &str, len: usize) -> Vec<u8> {
    let mut v = tag.as_bytes().to_vec();
    v.push(b':');
    v.resize(len.max(v.len()), b'.');
    v
}

/// Sends every record, then waits for each: the results in send order.
fn send_all(
    producer: &Producer,
    records: impl IntoIterator<Item = ProducerRecord<Vec<u8>, Vec<u8>>>,
) -> Vec<Result<RecordMetadata, Error>> {
    let futures: Vec<SendFuture> = records.into_iter().map(|r| producer.send(r)).collect();
    futures.into_iter().map(SendFuture::wait).collect()
}

/// The failed sends among `results`, with their index.
fn failures(results: &[Result<RecordMetadata, Error>]) -> Vec<(usize, &Error)> {
    results
        .iter()
        .enumerate()
        .filter_map(|(i, r)| r.as_ref().err().map(|e| (i, e)))
        .collect()
}

/// The values read back from `partition`, in offset order.
fn values_in(read: &[ReadRecord], partition: i32) -> Vec<Vec<u8>> {
    read.iter()
        .filter(|r| r.partition == partition)
        .map(|r| r.value.clone().unwrap_or_default())
        .collect()
}

/// Asserts that `offsets` (of one partition, in send order) strictly increase.
fn assert_increasing(offsets: &[i64], what: &str) {
    for w in offsets.windows(2) {
        assert!(w[0] < w[1], "{what}: offsets out of send order: {w:?}");
    }
}

/// A small deterministic generator (splitmix64), so key sets are varied but repeatable.
struct Splitmix(u64);

impl Splitmix {
    /// The next 64 random bits.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// `len` random bytes.
    fn fill(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next() as u8).collect()
    }
}

// ---------------------------------------------------------------------------------------
// 1. Java producer parity
// ---------------------------------------------------------------------------------------

/// About 3,000 distinct keys: the empty key, every single byte, UTF-8 text in three scripts,
/// big-endian integers, random binary of every length mod 4 (murmur2's tail), and long
/// keys up to 5,000 bytes.
fn parity_keys() -> Vec<Vec<u8>> {
    let mut g = Splitmix(0x5eed);
    // The empty key is a key (hashed like any other), not a null key.
    let mut keys: Vec<Vec<u8>> = vec![Vec::new()];
    keys.extend((0..=255u8).map(|b| vec![b]));
    for i in 0..400 {
        keys.push(format!("user-{i}").into_bytes());
        keys.push(format!("ключ-{i}").into_bytes());
        keys.push(format!("键{i}🔑").into_bytes());
    }
    for i in 0..200i64 {
        keys.push(((i * 7_919) as i32).to_be_bytes().to_vec());
        keys.push((i * -104_729).to_be_bytes().to_vec());
    }
    for i in 0..1_000 {
        let len = 2 + i % 63;
        keys.push(g.fill(len));
    }
    for _ in 0..150 {
        let len = 100 + (g.next() % 4_900) as usize;
        keys.push(g.fill(len));
    }
    keys.sort();
    keys.dedup();
    keys
}

#[test]
fn keyed_records_land_in_the_partition_the_java_producer_picks() {
    const PARTITIONS: i32 = 7;
    let b = brokers();
    let topic = unique_topic("java-parity");
    b.create_topic(&topic, PARTITIONS);
    let keys = parity_keys();
    let dist = kafka::distribution();
    let java = kafka::java_partitions(dist, b.bootstrap(), &topic, &keys);

    let producer = producer(b.bootstrap(), &[("linger.ms", "5")]);
    let record = |key: &[u8], value: String| {
        ProducerRecord::new(topic.as_str(), value.into_bytes()).with_key(key.to_vec())
    };
    let futures: Vec<SendFuture> = keys
        .iter()
        .enumerate()
        .map(|(i, k)| producer.send(record(k, format!("rust:{i}"))))
        .collect();
    let ours: Vec<i32> = futures
        .into_iter()
        .map(|f| f.wait().expect("every keyed record delivered").partition())
        .collect();
    producer.close().unwrap();

    let read = read_back(b.bootstrap(), &topic, 2 * keys.len());
    assert_eq!(read.len(), 2 * keys.len(), "each record once");
    let landed: HashMap<&[u8], &ReadRecord> = read
        .iter()
        .map(|r| (r.value.as_deref().unwrap_or_default(), r))
        .collect();
    let found = |value: &str, key: &[u8]| -> i32 {
        let r = landed
            .get(value.as_bytes())
            .unwrap_or_else(|| panic!("{value} was not read back"));
        assert_eq!(r.key.as_deref(), Some(key), "{value}: its key, byte-exact");
        r.partition
    };
    let mut mismatches = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let (theirs, read_java, read_ours) = (
            java[i],
            found(&format!("java:{i}"), key),
            found(&format!("rust:{i}"), key),
        );
        if !(theirs == ours[i] && theirs == read_java && theirs == read_ours) {
            mismatches.push(format!(
                "key {} ({} bytes): Java {theirs} (read {read_java}), ours {} (read {read_ours})",
                kafka::hex(&key[..key.len().min(16)]),
                key.len(),
                ours[i]
            ));
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} of {} keys land elsewhere than with Java, e.g. {:#?}",
        mismatches.len(),
        keys.len(),
        &mismatches[..mismatches.len().min(10)]
    );
}

// ---------------------------------------------------------------------------------------
// 2. MESSAGE_TOO_LARGE from the topic's max.message.bytes
// ---------------------------------------------------------------------------------------

#[test]
fn a_record_over_max_message_bytes_fails_alone_and_big_batches_are_split_in_order() {
    const SMALL: usize = 200;
    const RECORDS: usize = 600;
    const BIG_AT: usize = 300;
    let b = brokers();
    let limited = unique_topic("max-message-bytes");
    b.create_topic_with(&limited, 1, &[("max.message.bytes", "2000")]);
    let other = unique_topic("unlimited");
    b.create_topic(&other, 3);
    // Batches of up to 16 KiB, eight times the topic's limit: most first attempts fail.
    let producer = Arc::new(producer(
        b.bootstrap(),
        &[("linger.ms", "50"), ("batch.size", "16384")],
    ));

    // Alone, a record over the limit (but far below max.request.size) is refused by the
    // broker, not by the producer.
    let alone = producer
        .send(ProducerRecord::new(
            limited.as_str(),
            tagged("alone", 3_000),
        ))
        .wait()
        .expect_err("a 3,000-byte record in a topic that takes 2,000");
    assert_eq!(
        broker_code(&alone),
        Some(ErrorCode::MessageTooLarge),
        "{alone}"
    );
    assert!(!alone.is_retriable(), "MESSAGE_TOO_LARGE is final: {alone}");

    // Records for another topic flow at the same time, through the same requests.
    let bystander = {
        let (producer, other) = (Arc::clone(&producer), other.clone());
        thread::spawn(move || {
            let values = (0..2_000).map(|i| tagged(&format!("other-{i}"), SMALL));
            send_all(
                &producer,
                values.map(|v| ProducerRecord::new(other.as_str(), v)),
            )
        })
    };
    let value = |i: usize| {
        let len = if i == BIG_AT { 3_000 } else { SMALL };
        tagged(&format!("limited-{i}"), len)
    };
    let results = send_all(
        &producer,
        (0..RECORDS).map(|i| ProducerRecord::new(limited.as_str(), value(i))),
    );
    let bystanders = bystander.join().unwrap();
    let metrics = producer.metrics();
    producer.close().unwrap();

    let failed = failures(&results);
    assert_eq!(failed.len(), 1, "only the big record fails: {failed:?}");
    assert_eq!(failed[0].0, BIG_AT, "the failed record is the big one");
    assert_eq!(
        broker_code(failed[0].1),
        Some(ErrorCode::MessageTooLarge),
        "{}",
        failed[0].1
    );
    let offsets: Vec<i64> = results.iter().flatten().map(|m| m.offset()).collect();
    assert_increasing(&offsets, "the limited topic");
    assert!(
        metrics.batch_splits > 0,
        "batches over the limit were split: {metrics:?}"
    );
    let errors = failures(&bystanders);
    assert!(errors.is_empty(), "the other topic's records: {errors:?}");

    let read = read_back(b.bootstrap(), &limited, RECORDS - 1);
    let expected: Vec<Vec<u8>> = (0..RECORDS).filter(|&i| i != BIG_AT).map(value).collect();
    assert_eq!(
        values_in(&read, 0),
        expected,
        "every small record once, in send order"
    );
    assert_eq!(read_back(b.bootstrap(), &other, 2_000).len(), 2_000);
    eprintln!(
        "max.message.bytes=2000: {} splits, {} batches sent; the big record failed with: {}",
        metrics.batch_splits, metrics.batches_sent, failed[0].1
    );
}

// ---------------------------------------------------------------------------------------
// 3. NOT_ENOUGH_REPLICAS under min.insync.replicas
// ---------------------------------------------------------------------------------------

/// Waits until every partition of `topic` has exactly `isr` in-sync replicas.
fn wait_for_isr(k: &KafkaCluster, topic: &str, isr: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let md = k.metadata(&[topic]);
        let sizes: Vec<usize> = md
            .topics
            .iter()
            .flat_map(|t| t.partitions.iter())
            .map(|p| p.isr_nodes.len())
            .collect();
        if !sizes.is_empty() && sizes.iter().all(|&n| n == isr) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{topic} never had {isr} in-sync replicas: {sizes:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

/// With retries=0 (idempotence then turns off, as in Java) an acks=all record fails with
/// the broker's own answer, NOT_ENOUGH_REPLICAS, which is retriable.
fn refused_without_retries(bootstrap: &str, topic: &str) {
    let once = producer(bootstrap, &[("acks", "all"), ("retries", "0")]);
    let started = Instant::now();
    let e = once
        .send(ProducerRecord::new(topic, b"all-once".to_vec()))
        .wait()
        .expect_err("acks=all with two in-sync replicas of the three required");
    assert_eq!(broker_code(&e), Some(ErrorCode::NotEnoughReplicas), "{e}");
    assert!(e.is_retriable(), "NOT_ENOUGH_REPLICAS is retriable: {e}");
    eprintln!("acks=all, retries=0: {e} after {:?}", started.elapsed());
    once.close().unwrap();
}

/// With default retries acks=all records retry until `timeout` (delivery.timeout.ms), then
/// each fails with DeliveryTimeout close to it: no hang.
fn expired_after_retries(bootstrap: &str, topic: &str, timeout: Duration) {
    let setting = timeout.as_millis().to_string();
    let retrying = producer(
        bootstrap,
        &[("acks", "all"), ("delivery.timeout.ms", setting.as_str())],
    );
    let started = Instant::now();
    let futures: Vec<SendFuture> = (0..20)
        .map(|i| {
            let value = tagged(&format!("all-{i}"), 50);
            retrying.send(ProducerRecord::new(topic, value))
        })
        .collect();
    for f in futures {
        let e = f.wait().expect_err("acks=all retried below min ISR");
        let elapsed = started.elapsed();
        assert!(
            matches!(e, Error::DeliveryTimeout { .. }),
            "retried until delivery.timeout.ms: {e}"
        );
        assert!(
            elapsed >= timeout - Duration::from_millis(100)
                && elapsed < timeout + Duration::from_secs(2),
            "expired after {elapsed:?}, delivery.timeout.ms is {timeout:?}"
        );
    }
    eprintln!(
        "acks=all, default retries: DeliveryTimeout after {:?} ({} retries)",
        started.elapsed(),
        retrying.metrics().batch_retries
    );
    retrying.close().unwrap();
}

// Kafka caps min.insync.replicas at the replication factor (`Partition.effectiveMinIsr`,
// in 3.9 and 4.x), so a single node never refuses acks=all: the test needs three nodes, a
// topic with three replicas that wants all three in sync, and one node stopped.
#[test]
fn acks_all_fails_with_fewer_in_sync_replicas_than_the_topic_requires_while_acks_one_is_written() {
    let mut k = KafkaCluster::three_nodes();
    let topic = unique_topic("min-isr");
    k.create_topic(&topic, 1, 3, &[("min.insync.replicas", "3")]);
    let leader = k.leaders(&topic)[0].1;
    let follower = *k.node_ids().iter().find(|&&id| id != leader).unwrap();
    // A controlled shutdown takes the follower out of the ISR at once.
    k.stop(follower, Duration::from_secs(60));
    wait_for_isr(&k, &topic, 2);

    refused_without_retries(k.bootstrap(), &topic);
    expired_after_retries(k.bootstrap(), &topic, Duration::from_millis(3_000));
    let expected: Vec<Vec<u8>> = (0..100).map(|i| tagged(&format!("one-{i}"), 50)).collect();
    let one = producer(k.bootstrap(), &[("acks", "1"), ("linger.ms", "5")]);
    let results = send_all(
        &one,
        expected
            .iter()
            .map(|v| ProducerRecord::new(topic.as_str(), v.clone())),
    );
    one.close().unwrap();
    let offsets: Vec<i64> = results
        .into_iter()
        .map(|r| r.expect("acks=1 needs only the leader").offset())
        .collect();
    assert_increasing(&offsets, "acks=1");
    // Below min.insync.replicas the leader writes acks=1 records but holds its high
    // watermark (`Partition.maybeIncrementLeaderHW`), so readers see them only once the
    // follower is back in sync.
    k.restart(follower);
    wait_for_isr(&k, &topic, 3);
    let read = read_back(k.bootstrap(), &topic, 100);
    assert_eq!(
        values_in(&read, 0),
        expected,
        "exactly the acks=1 records, in order: nothing of the refused acks=all ones"
    );
}

// ---------------------------------------------------------------------------------------
// 4. An unknown topic with auto-creation off
// ---------------------------------------------------------------------------------------

#[test]
fn a_send_to_a_missing_topic_fails_after_max_block_ms_while_other_topics_flow() {
    let max_block = Duration::from_millis(2_000);
    let b = brokers();
    let existing = unique_topic("existing");
    b.create_topic(&existing, 3);
    let missing = unique_topic("never-created");
    let producer = Arc::new(producer(
        b.bootstrap(),
        &[("max.block.ms", "2000"), ("linger.ms", "1")],
    ));
    // A bystander sends one record at a time to an existing topic until told to stop.
    let stop = Arc::new(AtomicBool::new(false));
    let bystander = {
        let (producer, existing, stop) =
            (Arc::clone(&producer), existing.clone(), Arc::clone(&stop));
        thread::spawn(move || -> Vec<(Instant, Result<RecordMetadata, Error>)> {
            let mut out = Vec::new();
            while !stop.load(Ordering::SeqCst) {
                let value = tagged(&format!("existing-{}", out.len()), 50);
                let r = producer
                    .send(ProducerRecord::new(existing.as_str(), value))
                    .wait();
                out.push((Instant::now(), r));
            }
            out
        })
    };
    let mut windows = Vec::new();
    for attempt in 0..2 {
        let started = Instant::now();
        let e = producer
            .send(ProducerRecord::new(missing.as_str(), b"lost".to_vec()))
            .wait()
            .expect_err("the topic does not exist and is not created");
        let waited = started.elapsed();
        assert!(
            matches!(&e, Error::MetadataTimeout { topic, .. } if *topic == missing),
            "attempt {attempt}: {e}"
        );
        assert!(e.is_retriable(), "a metadata timeout may pass: {e}");
        assert!(
            waited >= max_block - Duration::from_millis(50)
                && waited < max_block + Duration::from_millis(1_000),
            "attempt {attempt}: failed after {waited:?}, max.block.ms is {max_block:?}"
        );
        eprintln!("missing topic, attempt {attempt}: {e} after {waited:?}");
        windows.push((started, started + waited));
    }
    stop.store(true, Ordering::SeqCst);
    let sent = bystander.join().unwrap();
    let errors: Vec<_> = sent.iter().filter_map(|(_, r)| r.as_ref().err()).collect();
    assert!(
        errors.is_empty(),
        "the existing topic's records: {errors:?}"
    );
    for (from, to) in windows {
        let during = sent.iter().filter(|(t, _)| (from..to).contains(t)).count();
        assert!(
            during >= 10,
            "only {during} records to the existing topic were acknowledged while a send \
             waited for the missing topic"
        );
    }
    producer.close().unwrap();
    assert_eq!(
        read_back(b.bootstrap(), &existing, sent.len()).len(),
        sent.len()
    );
}

// ---------------------------------------------------------------------------------------
// 5. INVALID_RECORD: a compacted topic refuses records without a key
// ---------------------------------------------------------------------------------------

#[test]
fn records_without_a_key_are_refused_by_a_compacted_topic_and_only_they_fail() {
    const RECORDS: usize = 1_000;
    const PARTITIONS: i32 = 2;
    let b = brokers();
    let topic = unique_topic("compacted");
    b.create_topic_with(&topic, PARTITIONS, &[("cleanup.policy", "compact")]);
    // Records share batches: linger, and each partition gets keyed and keyless ones.
    let producer = producer(b.bootstrap(), &[("linger.ms", "50")]);
    let keyless = |i: usize| i % 5 == 2;
    let record = |i: usize| {
        let r = ProducerRecord::new(topic.as_str(), tagged(&format!("v-{i}"), 40))
            .with_partition((i % PARTITIONS as usize) as i32);
        if keyless(i) {
            r
        } else {
            r.with_key(format!("k-{i}").into_bytes())
        }
    };
    let results = send_all(&producer, (0..RECORDS).map(record));
    let metrics = producer.metrics();
    producer.close().unwrap();

    let mut first_error = None;
    for (i, r) in results.iter().enumerate() {
        match (keyless(i), r) {
            (true, Err(e)) => {
                assert_eq!(
                    broker_code(e),
                    Some(ErrorCode::InvalidRecord),
                    "record {i}: {e}"
                );
                assert!(!e.is_retriable(), "INVALID_RECORD is final: {e}");
                first_error.get_or_insert_with(|| e.to_string());
            }
            (true, Ok(m)) => panic!("keyless record {i} was written at {m:?}"),
            (false, Err(e)) => panic!("keyed record {i} failed: {e}"),
            (false, Ok(_)) => {}
        }
    }
    let message = first_error.expect("keyless records were sent");
    assert!(
        message.contains("without key"),
        "the broker's own reason is passed on: {message}"
    );
    for p in 0..PARTITIONS {
        let offsets: Vec<i64> = (0..RECORDS)
            .filter(|&i| !keyless(i) && i % PARTITIONS as usize == p as usize)
            .map(|i| results[i].as_ref().unwrap().offset())
            .collect();
        assert_increasing(&offsets, &format!("partition {p}"));
    }
    let keyed = (0..RECORDS).filter(|&i| !keyless(i)).count();
    let read = read_back(b.bootstrap(), &topic, keyed);
    for p in 0..PARTITIONS {
        let expected: Vec<Vec<u8>> = (0..RECORDS)
            .filter(|&i| !keyless(i) && i % PARTITIONS as usize == p as usize)
            .map(|i| tagged(&format!("v-{i}"), 40))
            .collect();
        assert_eq!(
            values_in(&read, p),
            expected,
            "partition {p}: every keyed record once, in send order"
        );
    }
    eprintln!(
        "compacted topic: {} keyless records failed ({} record errors), e.g. {message}",
        RECORDS - keyed,
        metrics.record_errors
    );
}

// ---------------------------------------------------------------------------------------
// 6. CORRUPT_MESSAGE: a batch whose CRC does not match
// ---------------------------------------------------------------------------------------

/// How many Produce requests the proxy forwarded carried a batch of `partition` next to
/// batches of other partitions.
fn requests_mixing(proxy: &Proxy, partition: i32) -> usize {
    proxy
        .produce_requests()
        .iter()
        .filter(|r| {
            r.batches.iter().any(|b| b.partition == partition)
                && r.batches.iter().any(|b| b.partition != partition)
        })
        .count()
}

#[test]
fn a_partition_whose_batches_arrive_corrupted_fails_alone_and_the_rest_is_written() {
    const RECORDS: usize = 300;
    const PARTITIONS: i32 = 3;
    const CORRUPTED: i32 = 1;
    let k = kafka::shared();
    let topic = unique_topic("corrupt");
    k.create_topic(&topic, PARTITIONS, 1, &[]);
    let proxy = Proxy::start(k.bootstrap());
    proxy.set_script(Script {
        corrupt_batches: Some(BatchCorruption {
            topic: topic.clone(),
            partition: CORRUPTED,
        }),
        ..Script::default()
    });
    let producer = producer(
        &proxy.bootstrap(),
        &[
            ("linger.ms", "20"),
            ("retries", "3"),
            ("retry.backoff.ms", "50"),
            ("retry.backoff.max.ms", "50"),
        ],
    );
    let value = |i: usize| tagged(&format!("crc-{i}"), 100);
    let partition = |i: usize| (i % PARTITIONS as usize) as i32;
    let results = send_all(
        &producer,
        (0..RECORDS)
            .map(|i| ProducerRecord::new(topic.as_str(), value(i)).with_partition(partition(i))),
    );
    let metrics = producer.metrics();
    producer.close().unwrap();

    for (i, r) in results.iter().enumerate() {
        match (partition(i) == CORRUPTED, r) {
            (true, Err(e)) => {
                assert_eq!(
                    broker_code(e),
                    Some(ErrorCode::CorruptMessage),
                    "record {i}: {e}"
                );
                assert!(e.is_retriable(), "CORRUPT_MESSAGE is retriable: {e}");
            }
            (true, Ok(m)) => panic!("record {i} of the corrupted partition was written: {m:?}"),
            (false, Err(e)) => panic!("record {i} of an intact partition failed: {e}"),
            (false, Ok(_)) => {}
        }
    }
    let corrupted = proxy.corrupted_batches();
    assert!(
        corrupted >= 4,
        "each corrupted batch was sent once and retried 3 times: {corrupted} corrupted"
    );
    let shared_requests = requests_mixing(&proxy, CORRUPTED);
    assert!(
        shared_requests > 0,
        "some request carried a corrupted batch next to intact ones"
    );
    let intact = (0..RECORDS).filter(|&i| partition(i) != CORRUPTED).count();
    // Read straight from the broker; the reader checks every batch's CRC.
    let read = read_back(k.bootstrap(), &topic, intact);
    for p in 0..PARTITIONS {
        let expected: Vec<Vec<u8>> = (0..RECORDS)
            .filter(|&i| partition(i) == p && p != CORRUPTED)
            .map(value)
            .collect();
        assert_eq!(values_in(&read, p), expected, "partition {p}");
    }
    eprintln!(
        "CRC: {corrupted} batches corrupted in {} Produce requests ({shared_requests} shared \
         with intact batches), {} retries",
        proxy.produce_count(),
        metrics.batch_retries
    );
}

// ---------------------------------------------------------------------------------------
// 7. Producer-id expiry
// ---------------------------------------------------------------------------------------

/// The idempotent producers whose state the node at `address` keeps for `topic`-0, as
/// (producer id, epoch, last sequence): a DescribeProducers request (KIP-664) encoded and
/// decoded by kafka-protocol, straight over TCP (the Kafka tool's JVM start takes longer
/// than the expiry this test sets).
fn producer_states(address: &str, topic: &str) -> Vec<(i64, i32, i32)> {
    use kafka_protocol::messages::describe_producers_request::TopicRequest;
    use kafka_protocol::messages::{
        ApiKey, DescribeProducersRequest, DescribeProducersResponse, RequestHeader, ResponseHeader,
        TopicName,
    };
    use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};
    use std::io::Read;
    const VERSION: i16 = 0;
    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_owned())))
        .with_partition_indexes(vec![0])]);
    let header = RequestHeader::default()
        .with_request_api_key(ApiKey::DescribeProducers as i16)
        .with_request_api_version(VERSION)
        .with_correlation_id(1)
        .with_client_id(Some(StrBytes::from_static_str("kafka-rules")));
    let mut frame = vec![0u8; 4];
    header
        .encode(
            &mut frame,
            DescribeProducersRequest::header_version(VERSION),
        )
        .expect("encode a request header");
    request
        .encode(&mut frame, VERSION)
        .expect("encode DescribeProducers");
    let size = (frame.len() - 4) as i32;
    frame[..4].copy_from_slice(&size.to_be_bytes());
    let mut socket = std::net::TcpStream::connect(address).expect("connect for DescribeProducers");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    socket.write_all(&frame).expect("send DescribeProducers");
    let mut size = [0u8; 4];
    socket
        .read_exact(&mut size)
        .expect("a DescribeProducers answer");
    let mut body = vec![0u8; i32::from_be_bytes(size) as usize];
    socket
        .read_exact(&mut body)
        .expect("a DescribeProducers answer");
    let mut buf = &body[..];
    ResponseHeader::decode(&mut buf, DescribeProducersResponse::header_version(VERSION))
        .expect("a response header");
    let response = DescribeProducersResponse::decode(&mut buf, VERSION).expect("the answer");
    let mut out = Vec::new();
    for p in response.topics.iter().flat_map(|t| t.partitions.iter()) {
        assert_eq!(p.error_code, 0, "DescribeProducers: {:?}", p.error_message);
        out.extend(
            p.active_producers
                .iter()
                .map(|s| (s.producer_id.0, s.producer_epoch, s.last_sequence)),
        );
    }
    out
}

/// Waits until the node at `address` has dropped every producer's state on `topic`-0;
/// returns how long that took.
fn wait_for_expiry(address: &str, topic: &str) -> Duration {
    let started = Instant::now();
    loop {
        let active = producer_states(address, topic);
        if active.is_empty() {
            return started.elapsed();
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the broker still keeps producer state after 30 s: {active:?}"
        );
        thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn an_idempotent_producer_keeps_delivering_once_in_order_after_the_broker_expired_its_id() {
    const PER_ROUND: usize = 300;
    const ROUNDS: usize = 3;
    let k = KafkaCluster::start(
        ClusterOptions::nodes(1)
            .property("producer.id.expiration.ms", "2000")
            .property("producer.id.expiration.check.interval.ms", "500"),
    );
    let topic = unique_topic("pid-expiry");
    k.create_topic(&topic, 1, 1, &[]);
    // Small batches, five in flight: after an expiry several batches with running
    // sequences reach a broker that no longer knows the producer.
    let producer = producer(k.bootstrap(), &[("linger.ms", "5"), ("batch.size", "2048")]);
    let value = |i: usize| tagged(&format!("pid-{i}"), 100);
    let address = k.address(1);
    let mut offsets = Vec::new();
    let mut states = Vec::new();
    for round in 0..ROUNDS {
        let futures: Vec<SendFuture> = (round * PER_ROUND..(round + 1) * PER_ROUND)
            .map(|i| producer.send(ProducerRecord::new(topic.as_str(), value(i))))
            .collect();
        for (n, f) in futures.into_iter().enumerate() {
            let md = f.wait().unwrap_or_else(|e| {
                panic!("round {round}, record {n}: not delivered after the id expired: {e}")
            });
            offsets.push(md.offset());
        }
        let state = producer_states(&address, &topic);
        assert_eq!(
            state.len(),
            1,
            "round {round}: the broker knows our producer"
        );
        states.push(state[0]);
        if round + 1 < ROUNDS {
            // Idle until the broker forgets the producer (2 s after its last batch).
            let expired_after = wait_for_expiry(&address, &topic);
            eprintln!(
                "round {round}: state {:?}, expired {expired_after:?} later",
                state[0]
            );
        }
    }
    let metrics = producer.metrics();
    producer.close().unwrap();
    assert_eq!(
        offsets,
        (0..(ROUNDS * PER_ROUND) as i64).collect::<Vec<_>>(),
        "one offset per record, in send order, no gaps"
    );
    let read = read_back(k.bootstrap(), &topic, ROUNDS * PER_ROUND);
    let expected: Vec<Vec<u8>> = (0..ROUNDS * PER_ROUND).map(value).collect();
    assert_eq!(
        values_in(&read, 0),
        expected,
        "each record once, in send order"
    );
    eprintln!(
        "producer-id expiry: states after each round {states:?}; {} retries, {} duplicate \
         batches",
        metrics.batch_retries, metrics.duplicate_batches
    );
}

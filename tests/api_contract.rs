//! The public API contract of DESIGN.md §3, compiled and run against real Kafka (this test
//! binary's shared single node, or the cluster `KAFKA_BOOTSTRAP_SERVERS` names).

mod common;

use std::time::Duration;

use kafka_producer::{
    Acks, Compression, Error, PartitionInfo, Producer, ProducerRecord, RecordMetadata,
    RoundRobinPartitioner, StringSerializer,
};

/// DESIGN.md §3's example, with the topic `orders` named by the caller (a unique name, so a
/// rerun against the same cluster starts from an empty topic).
fn contract(bootstrap: &str, orders: &str) -> Result<(), Error> {
    // Bytes producer from Java-style properties. `Producer` = `Producer<Vec<u8>, Vec<u8>>`.
    let producer: Producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("acks", "all"),
        ("linger.ms", "5"),
        ("compression.type", "lz4"),
    ])?;

    // Typed builder with serializers; every Java property can also be set by name.
    let typed: Producer<String, String> = Producer::builder()
        .bootstrap_servers(bootstrap)
        .client_id("example")
        .acks(Acks::All)
        .linger(Duration::from_millis(5))
        .batch_size(64 * 1024)
        .compression(Compression::Zstd)
        .set("delivery.timeout.ms", "30000")
        .partitioner(RoundRobinPartitioner::default())
        .key_serializer(StringSerializer)
        .value_serializer(StringSerializer)
        .build()?;

    // Synchronous send.
    let md: RecordMetadata = producer
        .send(ProducerRecord::new(orders, b"hello".to_vec()).with_key(b"k1".to_vec()))
        .wait()?;
    let (_t, _p, _o, _ts) = (md.topic(), md.partition(), md.offset(), md.timestamp());
    assert_eq!(md.topic(), orders);
    assert!(md.offset() >= 0);

    // Record with explicit partition, timestamp and headers.
    let rec = ProducerRecord::new(orders, "v".to_string())
        .with_key("k".to_string())
        .with_partition(2)
        .with_timestamp(1_700_000_000_000)
        .with_header("trace-id", b"abc".to_vec());
    let fut = typed.send(rec); // fire and forget: dropping the future never cancels delivery
    let (tx, rx) = crossbeam_channel::bounded(1);
    // Asynchronous send with a callback (runs on the producer's callback thread).
    typed.send_with_callback(ProducerRecord::new(orders, "x".to_string()), move |res| {
        match &res {
            Ok(md) => log::info!("written at {}", md.offset()),
            Err(e) => log::error!("failed: {e} (retriable: {})", e.is_retriable()),
        }
        tx.send(res.is_ok()).unwrap();
    });

    typed.flush()?; // every record sent before returns completed
    assert!(
        fut.is_done(),
        "flush returned before an earlier record completed"
    );
    let explicit = fut.wait()?;
    assert_eq!(
        (explicit.partition(), explicit.timestamp()),
        (2, 1_700_000_000_000)
    );
    assert!(rx
        .try_recv()
        .expect("the callback ran before flush returned"));
    let parts: Vec<PartitionInfo> = producer.partitions_for(orders)?;
    let _ = (parts[0].partition(), parts[0].leader());
    assert_eq!(parts.len(), 3);
    producer.close_timeout(Duration::from_secs(10))?; // graceful: flushes, then stops threads
    typed.close()?;
    Ok(())
}

#[test]
fn the_design_contract_compiles_and_runs_against_kafka() {
    let brokers = common::brokers();
    let orders = common::unique_topic("orders");
    // The explicit 2023 timestamp is older than the default retention: without
    // retention.ms=-1 the broker's retention check may delete it before it is read back.
    brokers.create_topic_with(&orders, 3, &[("retention.ms", "-1")]);
    contract(brokers.bootstrap(), &orders).unwrap();
    let got = common::read_back(brokers.bootstrap(), &orders, 3);
    assert_eq!(got.len(), 3);
    let explicit = got.iter().find(|r| r.key.as_deref() == Some(b"k")).unwrap();
    assert_eq!(explicit.partition, 2);
    assert_eq!(explicit.timestamp, 1_700_000_000_000);
    assert_eq!(
        explicit.headers,
        vec![("trace-id".to_string(), Some(b"abc".to_vec()))]
    );
}

fn assert_traits<T: Clone + Send + Sync + std::fmt::Debug>() {}
fn assert_values<T: Clone + PartialEq + std::fmt::Debug>() {}

#[test]
fn public_types_have_the_promised_traits() {
    assert_traits::<Producer>();
    assert_traits::<Producer<String, String>>();
    assert_values::<RecordMetadata>();
    assert_values::<kafka_producer::TopicPartition>();
    assert_values::<PartitionInfo>();
    assert_values::<kafka_producer::Headers>();
}

/// The security half of the design's contract, part 2, as written.
fn contract_part_2_security() -> Result<Producer, Error> {
    let secure: Producer = Producer::from_properties([
        ("bootstrap.servers", "127.0.0.1:9096"),
        ("security.protocol", "SASL_SSL"),
        ("sasl.mechanism", "SCRAM-SHA-512"),
        (
            "sasl.jaas.config",
            "org.apache.kafka.common.security.scram.ScramLoginModule required \
        username=\"alice\" password=\"alice-secret\";",
        ),
        ("ssl.truststore.type", "PEM"),
        ("ssl.truststore.location", "/path/to/ca.pem"),
    ])?;
    Ok(secure)
}

#[test]
fn the_security_contract_compiles_and_reads_its_truststore_when_built() {
    // The truststore path of the contract does not exist here: building fails with a config
    // error that names it, and no secret.
    match contract_part_2_security() {
        Err(Error::Config(message)) => {
            assert!(message.contains("/path/to/ca.pem"), "{message}");
            assert!(!message.contains("alice-secret"), "{message}");
        }
        other => panic!("expected a config error naming the truststore, got {other:?}"),
    }
    assert!(!Error::Authentication("x".into()).is_retriable());
}

/// The transaction half of the design's contract, part 2, as written, with the bootstrap
/// address and topic names given by the caller (the `input` topic must exist: the group
/// coordinator refuses offsets for an unknown partition).
// `let _ = p.send(..)` is the contract's text: dropping the future never cancels delivery.
#[allow(clippy::let_underscore_future)]
fn contract_part_2_transactions(
    bootstrap: &str,
    orders: &str,
    input: &str,
    transactional_id: &str,
    group: &str,
) -> Result<(), Error> {
    use kafka_producer::{ConsumerGroupMetadata, OffsetAndMetadata, TopicPartition};
    use std::collections::HashMap;

    let p: Producer = Producer::from_properties([
        ("bootstrap.servers", bootstrap),
        ("transactional.id", transactional_id),
    ])?;
    p.init_transactions()?;
    p.begin_transaction()?;
    let _ = p.send(ProducerRecord::new(orders, b"a".to_vec()));
    let offsets: HashMap<TopicPartition, OffsetAndMetadata> =
        [(TopicPartition::new(input, 0), OffsetAndMetadata::new(42))].into();
    p.send_offsets_to_transaction(&offsets, &ConsumerGroupMetadata::new(group))?;
    p.commit_transaction()?; // or p.abort_transaction()?
    p.close()
}

#[test]
fn the_transaction_contract_compiles_and_commits_on_kafka() {
    let brokers = common::brokers();
    let orders = common::unique_topic("orders-txn");
    let input = common::unique_topic("input-txn");
    brokers.create_topic(&orders, 1);
    brokers.create_topic(&input, 1);
    let id = common::unique_topic("orders-relay");
    let group = common::unique_topic("group");
    contract_part_2_transactions(brokers.bootstrap(), &orders, &input, &id, &group).unwrap();
    let got = common::read_back(brokers.bootstrap(), &orders, 1);
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].value.as_deref(), Some(&b"a"[..]));
    // Fenced is not retriable; the producer can only be closed.
    assert!(!Error::Fenced("x".into()).is_retriable());
}

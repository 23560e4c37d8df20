//! Produce errors injected by librdkafka's mock cluster (`request_errors`), and what the
//! producer makes of them: MESSAGE_TOO_LARGE splits batches, a fatal error ends the
//! producer, a leader move announced in the Produce response (KIP-951) is followed.

mod common;

use common::{read_back, unique_topic, Mock};
use kafka_producer::{Error, ErrorCode, Producer, ProducerRecord};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};

fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> Producer {
    let mut props = vec![("bootstrap.servers", bootstrap), ("linger.ms", "20")];
    props.extend_from_slice(extra);
    Producer::from_properties(props).expect("a valid configuration")
}

fn value(i: usize) -> Vec<u8> {
    let mut v = format!("record-{i:06}-").into_bytes();
    v.resize(100, b'x');
    v
}

/// A mock cluster of `brokers` with a one-partition topic, and a producer that already
/// delivered record 0 to it (so metadata and the producer id are in place and injected
/// errors hit the records that follow).
fn warmed_up(prefix: &str, brokers: i32, extra: &[(&str, &str)]) -> (Mock, String, Producer) {
    let mock = Mock::start(brokers);
    let topic = unique_topic(prefix);
    mock.create_topic(&topic, 1);
    let producer = producer(mock.bootstrap(), extra);
    producer
        .send(ProducerRecord::new(&topic, value(0)))
        .wait()
        .expect("the warm-up record");
    (mock, topic, producer)
}

#[test]
fn message_too_large_splits_batches_until_they_fit_and_keeps_order_and_offsets() {
    // One request in flight: the mock does not enforce idempotent sequences, so it would
    // write a later pipelined batch ahead of the halves of a refused one (Kafka refuses the
    // later batch with OUT_OF_ORDER_SEQUENCE_NUMBER and the producer resends it in order).
    let (mock, topic, producer) = warmed_up(
        "too-large",
        1,
        &[("max.in.flight.requests.per.connection", "1")],
    );
    mock.cluster().request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE; 4],
    );
    let futures: Vec<_> = (1..2_000)
        .map(|i| producer.send(ProducerRecord::new(&topic, value(i))))
        .collect();
    let offsets: Vec<i64> = futures
        .into_iter()
        .map(|f| {
            f.wait()
                .expect("every record delivered after splits")
                .offset()
        })
        .collect();
    let metrics = producer.metrics();
    producer.close().unwrap();
    assert!(
        metrics.batch_splits >= 4,
        "each injected error split a batch: {metrics:?}"
    );
    let read = read_back(mock.bootstrap(), &topic, 2_000);
    assert_eq!(read.len(), 2_000, "nothing lost, nothing duplicated");
    for (i, r) in read.iter().enumerate() {
        assert_eq!(
            r.value.as_deref(),
            Some(&value(i)[..]),
            "log order = send order"
        );
        assert_eq!(r.offset, i as i64);
    }
    assert_eq!(
        offsets,
        (1..2_000).collect::<Vec<i64>>(),
        "futures report the offsets"
    );
}

#[test]
fn message_too_large_on_a_single_record_fails_only_that_record() {
    let (mock, topic, producer) = warmed_up("too-large-one", 1, &[("linger.ms", "0")]);
    mock.cluster().request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_MSG_SIZE_TOO_LARGE],
    );
    let refused = producer.send(ProducerRecord::new(&topic, value(1))).wait();
    assert!(
        matches!(
            refused,
            Err(Error::Broker {
                code: ErrorCode::MessageTooLarge,
                ..
            })
        ),
        "{refused:?}"
    );
    let next = producer.send(ProducerRecord::new(&topic, value(2))).wait();
    assert_eq!(next.expect("the next record is fine").offset(), 1);
    producer.close().unwrap();
    let read = read_back(mock.bootstrap(), &topic, 2);
    let values: Vec<_> = read.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, [value(0), value(2)]);
}

#[test]
fn a_fatal_produce_error_fails_the_producer_and_later_sends_report_it() {
    let (mock, topic, producer) = warmed_up("fatal", 1, &[("linger.ms", "0")]);
    mock.cluster().request_errors(
        RDKafkaApiKey::Produce,
        &[RDKafkaRespErr::RD_KAFKA_RESP_ERR_CLUSTER_AUTHORIZATION_FAILED],
    );
    let failed = producer.send(ProducerRecord::new(&topic, value(1))).wait();
    assert!(matches!(failed, Err(Error::Fatal(_))), "{failed:?}");
    let later = producer.send(ProducerRecord::new(&topic, value(2))).wait();
    assert!(matches!(later, Err(Error::Fatal(_))), "{later:?}");
    producer.close().unwrap();
}

#[test]
fn a_leader_move_named_in_the_produce_response_is_followed() {
    // Only the Produce response's CurrentLeader (or the refresh the error requests) can
    // tell the producer where the partition went.
    let (mock, topic, producer) = warmed_up("leader-hint", 3, &[("linger.ms", "0")]);
    let leader = producer.partitions_for(&topic).unwrap()[0]
        .leader()
        .unwrap();
    let next = leader % 3 + 1;
    mock.cluster()
        .partition_leader(&topic, 0, Some(next))
        .unwrap();
    for i in 1..200 {
        producer
            .send(ProducerRecord::new(&topic, value(i)))
            .wait()
            .expect("delivered to the new leader");
    }
    let metrics = producer.metrics();
    producer.close().unwrap();
    eprintln!(
        "leader {leader} -> {next}: {} leader hints, {} retries",
        metrics.leader_hints, metrics.batch_retries
    );
    assert!(metrics.batch_retries >= 1, "the old leader refused a batch");
    assert!(
        metrics.leader_hints >= 1,
        "the mock's CurrentLeader hint was applied"
    );
    let read = read_back(mock.bootstrap(), &topic, 200);
    let values: Vec<_> = read.iter().map(|r| r.value.clone().unwrap()).collect();
    assert_eq!(values, (0..200).map(value).collect::<Vec<_>>());
}

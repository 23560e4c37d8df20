//! Fault tests (issue 4) of single behaviours: the producer under faults brokers cannot
//! inject themselves, made by the fault-injecting proxy (`common::proxy`) in front of Apache
//! Kafka, and judged by the delivery checker (`common::checker`) against what the rdkafka
//! consumer reads back: a pass-through run, an unreachable broker (scenario 7), a batch
//! expiring in flight, records refused with INVALID_RECORD, batches refused with
//! MESSAGE_TOO_LARGE. The multi-topic scenarios 1–6 and 8 are in
//! `fault_scenarios.rs`.
//!
//! Every test runs on this binary's shared single-node Kafka ([`kafka::shared`]), each with
//! fresh topics and its own proxy: the proxy's faults touch only the connections through
//! it, so the tests cannot disturb one another.
//!
//! The last two tests reproduce two producer bugs that Kafka's idempotence rules exposed and
//! tansu's hid (a refused first batch of a partition written behind its successors; a
//! written batch written again once its retry fell out of Kafka's 5-batch deduplication
//! window).

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::checker::{self, Ledger, Outcome, Report};
use common::kafka::{self, KafkaCluster};
use common::proxy::{ProduceFailure, Proxy, Script};
use common::{read_back, unique_topic};
use kafka_producer::{Error, Producer, ProducerRecord};

/// Bytes of every record value.
const VALUE_SIZE: usize = 100;
const PARTITIONS: i32 = 6;

/// A bytes producer for `bootstrap` with linger 5 ms and `extra` properties.
fn producer(bootstrap: &str, extra: &[(&str, &str)]) -> Producer {
    let mut props = vec![("bootstrap.servers", bootstrap), ("linger.ms", "5")];
    props.extend_from_slice(extra);
    Producer::from_properties(props).expect("a valid configuration")
}

/// Sends `per_thread` records from each of `threads` threads with callbacks that fill the
/// ledger, then flushes.
fn send_workload(
    producer: &Producer,
    topic: &str,
    threads: usize,
    per_thread: usize,
) -> Arc<Ledger> {
    let ledger = Arc::new(Ledger::new(threads, per_thread));
    thread::scope(|s| {
        for t in 0..threads {
            let (producer, ledger) = (producer.clone(), Arc::clone(&ledger));
            s.spawn(move || {
                for seq in 0..per_thread {
                    let record = ProducerRecord::new(topic, checker::encode(t, seq, VALUE_SIZE));
                    let ledger = Arc::clone(&ledger);
                    producer.send_with_callback(record, move |r| match r {
                        Ok(md) => ledger.complete(t, seq, Some(md.partition()), Outcome::Acked),
                        Err(_) => ledger.complete(t, seq, None, Outcome::Failed),
                    });
                }
            });
        }
    });
    producer.flush().expect("flush");
    ledger
}

/// Reads `topic` back from `kafka` (directly, not through the proxy) and checks it against
/// the ledger; prints the report.
fn check(name: &str, kafka: &KafkaCluster, topic: &str, ledger: &Ledger) -> Report {
    let sends = ledger.sends();
    let acked = sends
        .iter()
        .flatten()
        .filter(|s| s.outcome == Outcome::Acked)
        .count();
    let records = read_back(kafka.bootstrap(), topic, acked);
    let report = checker::check(&sends, &records);
    report.print(name);
    report
}

/// The shared Kafka node with a fresh 6-partition topic, and a proxy of this test's own in
/// front of it.
fn kafka_behind_proxy(prefix: &str) -> (&'static KafkaCluster, Proxy, String) {
    let kafka = kafka::shared();
    let topic = unique_topic(prefix);
    kafka.create_topic(&topic, PARTITIONS, 1, &[]);
    let proxy = Proxy::start(kafka.bootstrap());
    (kafka, proxy, topic)
}

#[test]
fn proxy_forwards_a_full_run_to_kafka_unchanged() {
    let (kafka, proxy, topic) = kafka_behind_proxy("faults-pass");
    let producer = producer(&proxy.bootstrap(), &[]);
    let ledger = send_workload(&producer, &topic, 4, 5_000);
    producer.close().unwrap();
    let report = check("pass-through", kafka, &topic, &ledger);
    let t = report.total;
    assert_eq!((t.sent, t.acked, t.failed), (20_000, 20_000, 0));
    assert_eq!(
        (t.lost, t.duplicated, t.reordered, t.unexpected),
        (0, 0, 0, 0)
    );
    assert_eq!(t.read_back, 20_000);
    let requests = proxy.produce_requests();
    let records: i32 = requests
        .iter()
        .flat_map(|r| &r.batches)
        .map(|b| b.record_count)
        .sum();
    assert!(!requests.is_empty(), "the producer went around the proxy");
    assert_eq!(
        records, 20_000,
        "records in the Produce requests the proxy forwarded"
    );
    assert!(requests.iter().all(|r| !r.cut));
}

/// When each record was sent and how it completed.
#[derive(Debug, Default)]
struct Timings {
    sent: Vec<Option<Instant>>,
    done: Vec<Option<(Instant, Result<(), Error>)>>,
}

#[test]
fn scenario_7_unreachable_longer_than_delivery_timeout_fails_every_record_in_time() {
    // 100 000 records from 4 threads over 2 topics × 6 partitions.
    const THREADS: usize = 4;
    const PER_THREAD: usize = 25_000;
    const RECORDS: usize = THREADS * PER_THREAD;
    const DELIVERY_TIMEOUT: Duration = Duration::from_millis(3_000);
    let (kafka, proxy, topic) = kafka_behind_proxy("faults-unreachable");
    let second = unique_topic("faults-unreachable-b");
    kafka.create_topic(&second, PARTITIONS, 1, &[]);
    let topics = [topic.as_str(), second.as_str()];
    let producer = producer(
        &proxy.bootstrap(),
        &[
            ("delivery.timeout.ms", "3000"),
            ("request.timeout.ms", "1000"),
        ],
    );
    // Metadata and the producer id arrive while the broker is still reachable.
    for t in topics {
        let warm_up = ProducerRecord::new(t, b"warm-up".to_vec());
        producer.send(warm_up).wait().expect("the warm-up record");
    }
    proxy.set_script(Script {
        blackhole: true,
        ..Script::default()
    });

    let timings = Arc::new(Mutex::new(Timings {
        sent: vec![None; RECORDS],
        done: vec![None; RECORDS],
    }));
    let completed = Arc::new(AtomicUsize::new(0));
    thread::scope(|s| {
        for t in 0..THREADS {
            let (producer, timings, completed) = (&producer, &timings, &completed);
            s.spawn(move || {
                for i in 0..PER_THREAD {
                    let seq = t * PER_THREAD + i;
                    let value = checker::encode(t, i, VALUE_SIZE);
                    let record = ProducerRecord::new(topics[i % 2], value);
                    let (timings2, completed2) = (Arc::clone(timings), Arc::clone(completed));
                    timings.lock().unwrap().sent[seq] = Some(Instant::now());
                    producer.send_with_callback(record, move |r| {
                        // No assertion here: a panic belongs to the test thread.
                        timings2.lock().unwrap().done[seq] = Some((Instant::now(), r.map(drop)));
                        completed2.fetch_add(1, Ordering::SeqCst);
                    });
                }
            });
        }
    });
    let deadline = Instant::now() + DELIVERY_TIMEOUT + Duration::from_secs(2);
    while completed.load(Ordering::SeqCst) < RECORDS && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(20));
    }
    let timings = timings.lock().unwrap();
    let mut slowest = Duration::ZERO;
    for seq in 0..RECORDS {
        let sent = timings.sent[seq].unwrap();
        let (done, e) = timings.done[seq]
            .as_ref()
            .unwrap_or_else(|| panic!("record {seq} hangs {:?} after its send", sent.elapsed()));
        assert!(
            matches!(
                e,
                Err(Error::DeliveryTimeout { .. } | Error::Network { .. })
            ),
            "record {seq} completed with {e:?}"
        );
        slowest = slowest.max(*done - sent);
    }
    let timeouts = timings
        .done
        .iter()
        .filter(|d| matches!(d, Some((_, Err(Error::DeliveryTimeout { .. })))))
        .count();
    eprintln!(
        "unreachable: {RECORDS} records failed ({timeouts} DeliveryTimeout, {} Network), \
         the slowest {slowest:?} after its send",
        RECORDS - timeouts
    );
    assert!(
        slowest <= DELIVERY_TIMEOUT + Duration::from_secs(1),
        "slowest failure {slowest:?}"
    );
    let memory_deadline = Instant::now() + Duration::from_secs(1);
    while producer.metrics().buffer_bytes_in_use > 0 && Instant::now() < memory_deadline {
        thread::sleep(Duration::from_millis(10));
    }
    assert_eq!(producer.metrics().buffer_bytes_in_use, 0);
    drop(timings);
    producer.close_timeout(Duration::from_secs(1)).ok();
}

// ---------------------------------------------------------------------------------------
// The checker itself, on hand-made logs.
// ---------------------------------------------------------------------------------------

mod checker_unit {
    use super::checker::{check, decode, encode, Outcome, Sent};
    use super::common::ReadRecord;

    fn log(entries: &[(i32, usize, usize)]) -> Vec<ReadRecord> {
        entries
            .iter()
            .enumerate()
            .map(|(i, &(partition, thread, seq))| ReadRecord {
                partition,
                offset: i as i64,
                key: None,
                value: Some(encode(thread, seq, 20)),
                headers: Vec::new(),
                timestamp: 0,
            })
            .collect()
    }

    /// Two threads, three acked records each, alternating over partitions 0 and 1.
    fn sent() -> Vec<Vec<Sent>> {
        (0..2)
            .map(|_| {
                (0..3)
                    .map(|seq| Sent {
                        seq,
                        partition: Some(seq as i32 % 2),
                        outcome: Outcome::Acked,
                    })
                    .collect()
            })
            .collect()
    }

    const CLEAN: [(i32, usize, usize); 6] = [
        (0, 0, 0),
        (0, 1, 0),
        (0, 0, 2),
        (0, 1, 2),
        (1, 0, 1),
        (1, 1, 1),
    ];

    #[test]
    fn values_round_trip_and_pad_to_size() {
        let v = encode(3, 12345, 100);
        assert_eq!(v.len(), 100);
        assert!(v.starts_with(b"t3-s12345-"));
        assert_eq!(decode(&v), Some((3, 12345)));
        assert_eq!(decode(&encode(7, 0, 0)), Some((7, 0)));
        assert_eq!(decode(b"x3-s1-"), None);
        assert_eq!(decode(b"t3-s1"), None);
    }

    #[test]
    fn a_clean_run_reports_zeros() {
        let report = check(&sent(), &log(&CLEAN));
        let t = report.total;
        assert_eq!((t.sent, t.acked, t.failed, t.read_back), (6, 6, 0, 6));
        assert_eq!(
            (t.lost, t.duplicated, t.reordered, t.unexpected),
            (0, 0, 0, 0)
        );
        assert_eq!(report.partitions[&0].sent, 4);
        assert_eq!(report.partitions[&1].read_back, 2);
    }

    #[test]
    fn a_missing_acked_record_is_lost_but_a_missing_failed_one_is_not() {
        let mut sent = sent();
        sent[1][1].outcome = Outcome::Failed;
        let report = check(&sent, &log(&CLEAN[..4]));
        assert_eq!(report.total.lost, 1, "{report:?}");
        assert_eq!(report.partitions[&1].lost, 1);
        assert_eq!(report.total.failed, 1);
    }

    #[test]
    fn a_second_copy_is_a_duplicate_not_a_reordering() {
        let mut entries = CLEAN.to_vec();
        entries.insert(2, (0, 0, 0));
        let report = check(&sent(), &log(&entries));
        assert_eq!(report.total.duplicated, 1);
        assert_eq!(report.partitions[&0].duplicated, 1);
        assert_eq!((report.total.reordered, report.total.lost), (0, 0));
    }

    #[test]
    fn a_lower_sequence_after_a_higher_one_of_the_same_thread_is_reordered() {
        let entries = [
            (0, 0, 2),
            (0, 1, 0),
            (0, 0, 0),
            (0, 1, 2),
            (1, 0, 1),
            (1, 1, 1),
        ];
        let report = check(&sent(), &log(&entries));
        assert_eq!(report.total.reordered, 1);
        assert_eq!(report.partitions[&0].reordered, 1);
        assert_eq!((report.total.duplicated, report.total.lost), (0, 0));
    }

    #[test]
    fn a_record_never_sent_is_unexpected() {
        let mut entries = CLEAN.to_vec();
        entries.push((1, 5, 0));
        let report = check(&sent(), &log(&entries));
        assert_eq!(report.total.unexpected, 1);
        assert!(report.total.to_string().ends_with("unexpected 1"));
    }

    #[test]
    fn the_totals_line_names_every_count() {
        let report = check(&sent(), &log(&CLEAN));
        assert_eq!(
            report.total.to_string(),
            "sent 6, acked 6, failed 0, read back 6, lost 0, duplicated 0, reordered 0"
        );
    }
}

/// A record's sequence, its time from send to completion, and its result.
type Completed = (usize, Duration, Result<(), Error>);

#[test]
fn a_batch_in_flight_at_its_delivery_timeout_is_answered_then_not_later() {
    // Every response takes 1.5 s; one request at a time: batches wait behind the first
    // request, go out ~1.5 s after their send and are still in flight when their 2 s
    // delivery timeout passes, long before the 1.9 s request timeout of their request.
    const RECORDS: usize = 2_000;
    let (kafka, proxy, topic, producer) = warmed_up_behind_proxy(
        "faults-inflight-expiry",
        &[
            ("delivery.timeout.ms", "2000"),
            ("request.timeout.ms", "1900"),
            ("linger.ms", "0"),
            ("batch.size", "4096"),
            ("max.in.flight.requests.per.connection", "1"),
        ],
    );
    proxy.set_script(Script {
        response_delay: Duration::from_millis(1_500),
        ..Script::default()
    });
    let start = Instant::now();
    let results: Arc<Mutex<Vec<Completed>>> = Arc::default();
    for seq in 0..RECORDS {
        let record = ProducerRecord::new(topic.as_str(), checker::encode(0, seq, VALUE_SIZE));
        let results = Arc::clone(&results);
        let sent = Instant::now();
        producer.send_with_callback(record, move |r| {
            results
                .lock()
                .unwrap()
                .push((seq, sent.elapsed(), r.map(drop)));
        });
    }
    producer.flush().unwrap();
    let flushed = start.elapsed();
    proxy.set_script(Script::default());
    let results = results.lock().unwrap();
    assert_eq!(results.len(), RECORDS);
    let slowest = results.iter().map(|r| r.1).max().unwrap();
    let timed_out = results
        .iter()
        .filter(|r| matches!(r.2, Err(Error::DeliveryTimeout { .. })))
        .count();
    let acked: Vec<usize> = results
        .iter()
        .filter(|r| r.2.is_ok())
        .map(|r| r.0)
        .collect();
    eprintln!(
        "in-flight expiry: {} acked, {timed_out} DeliveryTimeout, slowest {slowest:?}, \
         flush after {flushed:?}",
        acked.len()
    );
    assert!(timed_out > 0, "some batch expired in flight");
    assert_eq!(acked.len() + timed_out, RECORDS, "only timeouts fail");
    assert!(
        slowest <= Duration::from_millis(2_000 + 400),
        "a record completed {slowest:?} after its send"
    );
    // The producer goes on: a record after the fault is delivered, and every record
    // acknowledged is in the log (expired ones may be there too: they were sent).
    let after = ProducerRecord::new(topic.as_str(), checker::encode(1, 0, VALUE_SIZE));
    producer
        .send(after)
        .wait()
        .expect("delivered after the fault");
    producer.close().unwrap();
    let read = read_back(kafka.bootstrap(), &topic, acked.len() + 1 + WARM_UP_RECORDS);
    let in_log: std::collections::HashSet<(usize, usize)> = read
        .iter()
        .filter_map(|r| checker::decode(r.value.as_deref()?))
        .collect();
    assert!(acked.iter().all(|seq| in_log.contains(&(0, *seq))));
    assert!(in_log.contains(&(1, 0)));
    // Records answered DeliveryTimeout while their request was on the wire were written:
    // only the in-flight expiry can report those (a queued batch never reached Kafka).
    let written_but_expired = results
        .iter()
        .filter(|r| r.2.is_err() && in_log.contains(&(0, r.0)))
        .count();
    eprintln!("{written_but_expired} records expired in flight and are in the log");
    assert!(written_but_expired > 0, "no batch expired while in flight");
}

/// Warm-up records [`warmed_up_behind_proxy`] writes.
const WARM_UP_RECORDS: usize = 1;

/// [`kafka_behind_proxy`] with a producer (linger 5 ms and `extra`) that already delivered
/// one record: metadata and producer id are in place before any fault. The partitions the
/// faults meet first are new to Kafka, which accepts any sequence as a producer's first
/// batch there; the producer keeps a partition's first batch alone in flight until it is
/// acknowledged, so that a refused first batch is never overtaken
/// ([`a_partitions_refused_first_batch_never_lands_behind_its_later_batches`]).
fn warmed_up_behind_proxy(
    prefix: &str,
    extra: &[(&str, &str)],
) -> (&'static KafkaCluster, Proxy, String, Producer) {
    let (kafka, proxy, topic) = kafka_behind_proxy(prefix);
    let producer = producer(&proxy.bootstrap(), extra);
    producer
        .send(ProducerRecord::new(topic.as_str(), b"warm-up".to_vec()))
        .wait()
        .expect("the warm-up record");
    (kafka, proxy, topic, producer)
}

/// A script in which the proxy answers every `every`th Produce request itself (Kafka never
/// sees it) with `code`, `times` times, naming `record_errors` in every partition.
fn answer_in_place(
    every: usize,
    code: kafka_producer::ErrorCode,
    times: usize,
    record_errors: Vec<i32>,
) -> Script {
    Script {
        fail_produce: Some(ProduceFailure {
            every,
            codes: vec![code.code()],
            times: Some(times),
            forward: false,
            record_errors,
        }),
        ..Script::default()
    }
}

/// Sends `records` records from this thread with callbacks that fill a ledger and keep every
/// error with its record's sequence, then flushes.
fn send_keeping_errors(
    producer: &Producer,
    topic: &str,
    records: usize,
) -> (Arc<Ledger>, Vec<(usize, Error)>) {
    send_made_keeping_errors(producer, records, |seq| {
        ProducerRecord::new(topic, checker::encode(0, seq, VALUE_SIZE))
    })
}

/// [`send_keeping_errors`] of the records `make` makes from each sequence (whose values
/// must be the checker's, `checker::encode(0, seq, _)`).
fn send_made_keeping_errors(
    producer: &Producer,
    records: usize,
    make: impl Fn(usize) -> ProducerRecord<Vec<u8>, Vec<u8>>,
) -> (Arc<Ledger>, Vec<(usize, Error)>) {
    let ledger = Arc::new(Ledger::new(1, records));
    let failures: Arc<Mutex<Vec<(usize, Error)>>> = Arc::default();
    for seq in 0..records {
        let record = make(seq);
        let (ledger, failures) = (Arc::clone(&ledger), Arc::clone(&failures));
        producer.send_with_callback(record, move |r| match r {
            Ok(md) => ledger.complete(0, seq, Some(md.partition()), Outcome::Acked),
            Err(e) => {
                ledger.complete(0, seq, None, Outcome::Failed);
                failures.lock().unwrap().push((seq, e));
            }
        });
    }
    producer.flush().unwrap();
    let failures = std::mem::take(&mut *failures.lock().unwrap());
    (ledger, failures)
}

#[test]
fn invalid_record_errors_fail_exactly_the_named_records_and_the_rest_is_delivered() {
    const RECORDS: usize = 3_000;
    let (kafka, proxy, topic, producer) =
        warmed_up_behind_proxy("faults-invalid-record", &[("linger.ms", "20")]);
    // The next Produce request: every partition's batch has its records 1 and 4
    // named invalid (INVALID_RECORD with record errors), as a broker does for records it
    // refuses; the proxy answers, Kafka never sees those requests.
    let warm_up_requests = proxy.produce_count();
    proxy.set_script(answer_in_place(
        1,
        kafka_producer::ErrorCode::InvalidRecord,
        1,
        vec![1, 4],
    ));
    let (ledger, failures) = send_keeping_errors(&producer, &topic, RECORDS);
    let metrics = producer.metrics();
    producer.close().unwrap();
    assert_eq!(proxy.failed_produce(), 1, "the fault fired");
    // Each batch of a failed request had at least 5 records (a request carries one batch per
    // partition, each with 20 ms of records): two records of each were refused.
    let batches = proxy.failed_batches();
    let captured: usize = proxy
        .produce_requests()
        .iter()
        .skip(warm_up_requests)
        .take(1)
        .map(|r| r.batches.len())
        .sum();
    eprintln!(
        "invalid records: {} refused from {batches} batches ({captured} in the first request \
         the proxy captured after the warm-up), {} others delivered, {} errors",
        failures.len(),
        RECORDS - failures.len(),
        metrics.record_errors
    );
    assert_eq!(
        failures.len(),
        2 * batches,
        "two records per refused batch: {failures:?}"
    );
    for (seq, e) in failures.iter() {
        match e {
            Error::Broker {
                code: kafka_producer::ErrorCode::InvalidRecord,
                message: Some(m),
            } => assert!(
                m == "record 1 is invalid" || m == "record 4 is invalid",
                "record {seq}: {m}"
            ),
            other => panic!("record {seq} failed with {other:?}"),
        }
    }
    let report = check("invalid records", kafka, &topic, &ledger);
    let t = report.total;
    assert_eq!(t.acked + t.failed, RECORDS);
    // The warm-up records are the values the checker did not write.
    assert_eq!(
        (t.lost, t.duplicated, t.reordered, t.unexpected),
        (0, 0, 0, WARM_UP_RECORDS)
    );
    assert_eq!(
        t.read_back,
        t.acked + WARM_UP_RECORDS,
        "the acknowledged records and the warm-ups"
    );
}

#[test]
fn message_too_large_splits_keep_order_with_requests_pipelined_on_kafka() {
    // Five Produce requests are refused with MESSAGE_TOO_LARGE by the proxy (Kafka never
    // sees them) while later requests are in flight: the refused batches are split and
    // resent, and Kafka refuses the partitions' later batches with OUT_OF_ORDER_SEQUENCE
    // until the halves are in; the log keeps send order.
    const RECORDS: usize = 20_000;
    let (kafka, proxy, topic, producer) =
        warmed_up_behind_proxy("faults-too-large", &[("retry.backoff.ms", "20")]);
    proxy.set_script(answer_in_place(
        7,
        kafka_producer::ErrorCode::MessageTooLarge,
        5,
        Vec::new(),
    ));
    let (ledger, failures) = send_keeping_errors(&producer, &topic, RECORDS);
    let metrics = producer.metrics();
    producer.close().unwrap();
    eprintln!(
        "too large: {} requests refused, {} batches split, {} single-record batches failed",
        proxy.failed_produce(),
        metrics.batch_splits,
        failures.len()
    );
    assert_eq!(proxy.failed_produce(), 5, "the fault fired");
    assert!(metrics.batch_splits >= 1, "{metrics:?}");
    // A refused batch of one record cannot be split: that record fails (and only it).
    for (seq, e) in failures.iter() {
        assert!(
            matches!(
                e,
                Error::Broker {
                    code: kafka_producer::ErrorCode::MessageTooLarge,
                    ..
                }
            ),
            "record {seq} failed with {e:?}"
        );
    }
    let report = check("too large, pipelined", kafka, &topic, &ledger);
    let t = report.total;
    assert_eq!((t.sent, t.acked + t.failed), (RECORDS, RECORDS));
    assert!(t.failed <= 5 * PARTITIONS as usize, "{t}");
    assert!(t.acked >= RECORDS - 5 * PARTITIONS as usize, "{t}");
    assert_eq!(
        (t.lost, t.duplicated, t.reordered, t.unexpected),
        (0, 0, 0, WARM_UP_RECORDS),
        "only the warm-up records are not the checker's"
    );
}

/// A partition's first batch that Kafka refused must not land behind the batches that
/// followed it.
///
/// Kafka accepts *any* sequence as a producer's first batch on a partition where it holds
/// no state for that producer (its `ProducerAppendInfo` checks sequences only against a
/// known producer epoch). Here the partition's first batch holds a record without a key,
/// which a compacted topic refuses (INVALID_RECORD naming that record), while Kafka writes
/// the four batches pipelined behind it, whose sequences start past the refused one's. Once
/// those are written, the refused batch's other records can no longer be written in send
/// order, so they must fail (Java fails the whole batch). The producer resends them instead
/// (after an epoch bump, which on Kafka is a new producer id), and Kafka writes them behind
/// the later batches: the log is out of send order. The same happens when a refused first
/// batch is retried after a retriable error (the proxy's scenario 3 met it on Kafka): the
/// retry is written behind the batches Kafka accepted in its place.
#[test]
fn a_partitions_refused_first_batch_never_lands_behind_its_later_batches() {
    const RECORDS: usize = 200;
    let kafka = kafka::shared();
    let topic = unique_topic("faults-first-batch");
    kafka.create_topic(&topic, 2, 1, &[("cleanup.policy", "compact")]);
    let proxy = Proxy::start(kafka.bootstrap());
    // Batches of about 8 records, each sent as soon as it is full.
    let producer = producer(
        &proxy.bootstrap(),
        &[("batch.size", "1024"), ("linger.ms", "100")],
    );
    // Metadata and the producer id come through partition 0: partition 1 holds no state of
    // this producer.
    let warm_up = ProducerRecord::new(topic.as_str(), b"warm-up".to_vec())
        .with_key(b"warm-up".to_vec())
        .with_partition(0);
    producer.send(warm_up).wait().expect("the warm-up record");
    // Every answer comes 300 ms late, so the partition's first five batches all reach Kafka
    // before the producer hears of the first one's refusal.
    proxy.set_script(Script {
        response_delay: Duration::from_millis(300),
        ..Script::default()
    });
    let (ledger, failures) = send_made_keeping_errors(&producer, RECORDS, |seq| {
        let record = ProducerRecord::new(topic.as_str(), checker::encode(0, seq, VALUE_SIZE))
            .with_partition(1);
        // Record 1 alone has no key: the compacted topic refuses it.
        if seq == 1 {
            record
        } else {
            record.with_key(format!("k{seq}").into_bytes())
        }
    });
    producer.close().unwrap();
    proxy.set_script(Script::default());
    assert!(
        failures.iter().any(|(seq, e)| *seq == 1
            && matches!(
                e,
                Error::Broker {
                    code: kafka_producer::ErrorCode::InvalidRecord,
                    ..
                }
            )),
        "the record without a key was refused: {failures:?}"
    );
    let report = check("refused first batch", kafka, &topic, &ledger);
    let t = report.total;
    assert_eq!(
        (t.lost, t.duplicated, t.reordered, t.unexpected),
        (0, 0, 0, 1),
        "only the warm-up record is not the checker's"
    );
}

/// A batch Kafka wrote must not be written again when its retry falls out of Kafka's
/// deduplication window.
///
/// Kafka remembers the last 5 batches of each producer on a partition: the retry of an
/// older one is answered OUT_OF_ORDER_SEQUENCE_NUMBER, not as a duplicate (tansu remembered
/// every sequence and answered DUPLICATE_SEQUENCE_NUMBER). Here Kafka writes a batch but its
/// answer is lost three times (the proxy replaces Kafka's success with NOT_ENOUGH_REPLICAS):
/// first while the batch's successors are in flight, then on two retries, behind each of
/// which the producer sends new batches that Kafka writes too. The batch's fourth send is
/// then more than five batches back and Kafka answers OUT_OF_ORDER_SEQUENCE_NUMBER. The
/// producer takes that answer on a partition's oldest batch for "not written", resets the
/// partition (a new producer id, on Kafka) and writes the batch again: its records are in
/// the log twice. Whether such a batch was written is unknown to the producer; it must not
/// write it again (Java fails it).
#[test]
fn a_written_batch_is_not_written_again_when_its_retry_falls_out_of_kafkas_dedupe_window() {
    const RECORDS: usize = 20_000;
    let kafka = kafka::shared();
    let topic = unique_topic("faults-dedupe-window");
    kafka.create_topic(&topic, 1, 1, &[]);
    let proxy = Proxy::start(kafka.bootstrap());
    // Small batches, so that many follow each other; a long backoff, so that the test can
    // arm the next failure while the failed batch waits for its retry.
    let producer = producer(
        &proxy.bootstrap(),
        &[
            ("batch.size", "2048"),
            ("retry.backoff.ms", "1000"),
            ("retry.backoff.max.ms", "1000"),
        ],
    );
    producer
        .send(ProducerRecord::new(topic.as_str(), b"warm-up".to_vec()))
        .wait()
        .expect("the warm-up record");
    // Kafka writes the next Produce request, and the producer hears NOT_ENOUGH_REPLICAS.
    let written_but_failed = || Script {
        fail_produce: Some(ProduceFailure {
            every: 1,
            codes: vec![kafka_producer::ErrorCode::NotEnoughReplicas.code()],
            times: Some(1),
            forward: true,
            record_errors: Vec::new(),
        }),
        ..Script::default()
    };
    let (ledger, failures) = thread::scope(|s| {
        let sending = s.spawn(|| send_keeping_errors(&producer, &topic, RECORDS));
        thread::sleep(Duration::from_millis(200));
        for n in 1..=3 {
            proxy.set_script(written_but_failed());
            let deadline = Instant::now() + Duration::from_secs(10);
            while proxy.failed_produce() < n {
                assert!(Instant::now() < deadline, "failure {n} never fired");
                thread::sleep(Duration::from_millis(1));
            }
            // The successors already in flight pass; then nothing of the partition goes
            // while the failed batch backs off (1 s), so the next Produce request is its
            // retry.
            let mut seen = proxy.produce_count();
            loop {
                thread::sleep(Duration::from_millis(200));
                let now = proxy.produce_count();
                if now == seen {
                    break;
                }
                seen = now;
            }
        }
        sending.join().expect("the sending thread")
    });
    producer.close().unwrap();
    let report = check("dedupe window", kafka, &topic, &ledger);
    let t = report.total;
    eprintln!("dedupe window: {} records failed", failures.len());
    assert_eq!(
        (t.lost, t.duplicated, t.reordered, t.unexpected),
        (0, 0, 0, 1),
        "only the warm-up record is not the checker's"
    );
}

/// A record acknowledged while an earlier record of its partition waits for a retry is held
/// back, so that completions keep send order. When the earlier record's retry then times out
/// in flight (the broker went silent), the held record must be released right after it:
/// before the hardening fix it was never completed, and its future and `flush` hung.
#[test]
fn a_record_held_behind_a_retry_completes_when_the_retry_expires_in_flight() {
    let (_kafka, proxy, topic, producer) = warmed_up_behind_proxy(
        "faults-held-expiry",
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("linger.ms", "0"),
            ("batch.size", "1"),
            ("retry.backoff.ms", "1500"),
            ("retry.backoff.max.ms", "1500"),
            ("delivery.timeout.ms", "6000"),
            ("request.timeout.ms", "5900"),
        ],
    );
    let before = proxy.produce_count();
    // The first request (record a) reaches Kafka, but the proxy answers it with a retriable
    // error; the second (record b) is acknowledged. Responses are held for 300 ms, so b is
    // sent before a's answer comes back.
    let mut script = answer_in_place(
        1,
        kafka_producer::ErrorCode::NotLeaderOrFollower,
        1,
        Vec::new(),
    );
    if let Some(f) = script.fail_produce.as_mut() {
        f.forward = true;
    }
    script.response_delay = Duration::from_millis(300);
    proxy.set_script(script);
    let send =
        |v: &[u8]| producer.send(ProducerRecord::new(topic.as_str(), v.to_vec()).with_partition(0));
    let a = send(b"a");
    let b = send(b"b");
    let deadline = Instant::now() + Duration::from_secs(10);
    while proxy.produce_count() < before + 2 && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(5));
    }
    // Both answers are back long before a's retry (1.5 s backoff), which the broker
    // swallows.
    thread::sleep(Duration::from_millis(800));
    assert_eq!(proxy.produce_count(), before + 2, "a and b in two requests");
    assert_eq!(proxy.failed_produce(), 1, "a's answer was replaced");
    proxy.update_script(|s| s.blackhole = true);
    let a = a
        .wait_timeout(Duration::from_secs(20))
        .expect("a completes");
    assert!(matches!(a, Err(Error::DeliveryTimeout { .. })), "{a:?}");
    let b = b
        .wait_timeout(Duration::from_secs(5))
        .expect("b completes right after a (it was held behind a's retry)");
    assert!(b.is_ok(), "{b:?}");
    producer.close_timeout(Duration::from_secs(1)).ok();
}

/// connections.max.idle.ms: a connection that sent and received nothing for that long is
/// closed (as Java's selector closes it), and the next send opens a new one.
#[test]
fn idle_connections_are_closed_after_connections_max_idle_and_reopened_on_demand() {
    let (_kafka, proxy, topic, producer) =
        warmed_up_behind_proxy("faults-idle", &[("connections.max.idle.ms", "1000")]);
    let opened = proxy.connections();
    producer
        .send(ProducerRecord::new(topic.as_str(), b"busy".to_vec()))
        .wait()
        .expect("a record on the open connection");
    assert_eq!(proxy.connections(), opened, "no new connection while busy");
    thread::sleep(Duration::from_millis(2500));
    producer
        .send(ProducerRecord::new(topic.as_str(), b"after idle".to_vec()))
        .wait()
        .expect("a record after the idle close");
    assert!(
        proxy.connections() > opened,
        "the idle connection was kept: {} connections, {opened} before",
        proxy.connections()
    );
    producer.close().unwrap();
}

//! Fault tests (issue 4) of single behaviours: the producer under faults brokers cannot
//! inject themselves, made by the fault-injecting proxy (`common::proxy`) in front of tansu,
//! and judged by the delivery checker (`common::checker`) against what the rdkafka consumer
//! reads back: a pass-through run, an unreachable broker (scenario 7), a batch expiring in
//! flight, records refused with INVALID_RECORD. The multi-topic scenarios 1–6 and 8
//! are in `fault_scenarios.rs`.

mod common;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::checker::{self, Ledger, Outcome, Report};
use common::proxy::{ProduceFailure, Proxy, Script};
use common::{read_back, unique_topic, Tansu};
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

/// Reads `topic` back from tansu and checks it against the ledger; prints the report.
fn check(name: &str, tansu: &Tansu, topic: &str, ledger: &Ledger) -> Report {
    let sends = ledger.sends();
    let acked = sends
        .iter()
        .flatten()
        .filter(|s| s.outcome == Outcome::Acked)
        .count();
    let records = read_back(tansu.bootstrap(), topic, acked);
    let report = checker::check(&sends, &records);
    report.print(name);
    report
}

/// A tansu broker with a fresh 6-partition topic, and a proxy in front of it.
fn tansu_behind_proxy(prefix: &str) -> (Tansu, Proxy, String) {
    let tansu = Tansu::start();
    let topic = unique_topic(prefix);
    tansu.create_topic(&topic, PARTITIONS);
    let proxy = Proxy::start(tansu.bootstrap());
    (tansu, proxy, topic)
}

#[test]
fn proxy_forwards_a_full_run_to_tansu_unchanged() {
    let (tansu, proxy, topic) = tansu_behind_proxy("faults-pass");
    let producer = producer(&proxy.bootstrap(), &[]);
    let ledger = send_workload(&producer, &topic, 4, 5_000);
    producer.close().unwrap();
    let report = check("pass-through", &tansu, &topic, &ledger);
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
    let (tansu, proxy, topic) = tansu_behind_proxy("faults-unreachable");
    let second = unique_topic("faults-unreachable-b");
    tansu.create_topic(&second, PARTITIONS);
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
    let (tansu, proxy, topic, producer) = warmed_up_behind_proxy(
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
    let read = read_back(tansu.bootstrap(), &topic, acked.len() + 2);
    let in_log: std::collections::HashSet<(usize, usize)> = read
        .iter()
        .filter_map(|r| checker::decode(r.value.as_deref()?))
        .collect();
    assert!(acked.iter().all(|seq| in_log.contains(&(0, *seq))));
    assert!(in_log.contains(&(1, 0)));
    // Records answered DeliveryTimeout while their request was on the wire were written:
    // only the in-flight expiry can report those (a queued batch never reached tansu).
    let written_but_expired = results
        .iter()
        .filter(|r| r.2.is_err() && in_log.contains(&(0, r.0)))
        .count();
    eprintln!("{written_but_expired} records expired in flight and are in the log");
    assert!(written_but_expired > 0, "no batch expired while in flight");
}

/// [`tansu_behind_proxy`] with a producer (linger 5 ms and `extra`) that already
/// delivered one record (metadata and producer id in place before any fault).
fn warmed_up_behind_proxy(
    prefix: &str,
    extra: &[(&str, &str)],
) -> (Tansu, Proxy, String, Producer) {
    let (tansu, proxy, topic) = tansu_behind_proxy(prefix);
    let producer = producer(&proxy.bootstrap(), extra);
    producer
        .send(ProducerRecord::new(topic.as_str(), b"warm-up".to_vec()))
        .wait()
        .expect("the warm-up record");
    (tansu, proxy, topic, producer)
}

/// A script in which the proxy answers every `every`th Produce request itself (tansu never
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
    let ledger = Arc::new(Ledger::new(1, records));
    let failures: Arc<Mutex<Vec<(usize, Error)>>> = Arc::default();
    for seq in 0..records {
        let record = ProducerRecord::new(topic, checker::encode(0, seq, VALUE_SIZE));
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
    let (tansu, proxy, topic, producer) =
        warmed_up_behind_proxy("faults-invalid-record", &[("linger.ms", "20")]);
    // The next three Produce requests: every partition's batch has its records 1 and 4
    // named invalid (INVALID_RECORD with record errors), as a broker does for records it
    // refuses; the proxy answers, tansu never sees those requests.
    proxy.set_script(answer_in_place(
        1,
        kafka_producer::ErrorCode::InvalidRecord,
        3,
        vec![1, 4],
    ));
    let (ledger, failures) = send_keeping_errors(&producer, &topic, RECORDS);
    let metrics = producer.metrics();
    producer.close().unwrap();
    assert_eq!(proxy.failed_produce(), 3, "the fault fired");
    // Each failed request carried one batch per partition with at least 5 records: two
    // records of each were refused.
    let batches: usize = proxy
        .produce_requests()
        .iter()
        .take(4)
        .skip(1)
        .map(|r| r.batches.len())
        .sum();
    eprintln!(
        "invalid records: {} refused from {batches} batches, {} others delivered, {} errors",
        failures.len(),
        RECORDS - failures.len(),
        metrics.record_errors
    );
    assert_eq!(failures.len(), 2 * batches, "two records per refused batch");
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
    let report = check("invalid records", &tansu, &topic, &ledger);
    let t = report.total;
    assert_eq!(t.acked + t.failed, RECORDS);
    // The warm-up record is the one value the checker did not write.
    assert_eq!(
        (t.lost, t.duplicated, t.reordered, t.unexpected),
        (0, 0, 0, 1)
    );
    assert_eq!(
        t.read_back,
        t.acked + 1,
        "the acknowledged records and the warm-up"
    );
}

#[test]
fn message_too_large_splits_keep_order_with_requests_pipelined_on_tansu() {
    // Five Produce requests are refused with MESSAGE_TOO_LARGE by the proxy (tansu never
    // sees them) while later requests are in flight: the refused batches are split and
    // resent, and tansu refuses the partitions' later batches with OUT_OF_ORDER_SEQUENCE
    // until the halves are in; the log keeps send order.
    const RECORDS: usize = 20_000;
    let (tansu, proxy, topic, producer) =
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
    let report = check("too large, pipelined", &tansu, &topic, &ledger);
    let t = report.total;
    assert_eq!((t.sent, t.acked + t.failed), (RECORDS, RECORDS));
    assert!(t.failed <= 5 * PARTITIONS as usize, "{t}");
    assert!(t.acked >= RECORDS - 5 * PARTITIONS as usize, "{t}");
    assert_eq!(
        (t.lost, t.duplicated, t.reordered, t.unexpected),
        (0, 0, 0, 1),
        "only the warm-up record is not the checker's"
    );
}

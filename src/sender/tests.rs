//! The sender stepped by hand: scripted brokers behind [`Link`] and [`Connector`], a clock
//! the test moves, and answers in whatever order a test chooses.
//!
//! The harness connects every node at once and answers Metadata (from its leader map) and
//! InitProducerId by itself; Produce requests wait for the test, which answers, loses or
//! ignores each. Records are appended straight to the accumulator, one batch each
//! (batch.size=1), with a callback that logs `(value, outcome)` in the order the callback
//! thread runs them.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use super::link::{Connector, Link, Outgoing};
use super::Sender;
use crate::accumulator::{AppendRecord, Completion};
use crate::config::ProducerConfig;
use crate::core::{Core, SenderEvent};
use crate::delivery::CallbackThread;
use crate::error::{Error, ErrorCode};
use crate::net::{ConnectionEvent, ConnectionEventKind};
use crate::protocol::init_producer_id::InitProducerIdResponse;
use crate::protocol::metadata::{
    MetadataBroker, MetadataPartition, MetadataResponse, MetadataTopic,
};
use crate::protocol::produce::{
    BatchIndexAndErrorMessage, PartitionProduceResponse, ProduceRequest, ProduceResponse,
    TopicProduceResponse,
};
use crate::protocol::{ApiKey, ResponseBody};
use crate::record_batch::{RecordBatch, RecordBatchBuilder};

const TOPIC: &str = "t";

/// What the scripted brokers saw.
#[derive(Debug, Default)]
struct Script {
    next_link: u64,
    /// Connect attempts not answered yet: (node, address).
    connects: Vec<(i32, String)>,
    /// Requests submitted, oldest first.
    sent: Vec<Sent>,
    /// Links dropped by the sender.
    dropped: Vec<u64>,
}

#[derive(Debug, Clone)]
enum Request {
    Metadata,
    InitProducerId,
    Produce(ProduceRequest),
}

#[derive(Debug, Clone)]
struct Sent {
    link: u64,
    node: i32,
    correlation_id: i32,
    request: Request,
}

#[derive(Debug)]
struct ScriptedLink {
    id: u64,
    node: i32,
    next_correlation_id: i32,
    script: Arc<Mutex<Script>>,
}

impl Link for ScriptedLink {
    fn id(&self) -> u64 {
        self.id
    }

    fn submit(&mut self, request: Outgoing<'_>) -> Result<i32, Error> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let request = match request {
            Outgoing::Metadata(_) => Request::Metadata,
            Outgoing::InitProducerId(_) => Request::InitProducerId,
            Outgoing::Produce(r, _) => Request::Produce(r.clone()),
            // The scripted brokers serve non-transactional producers only.
            other => {
                return Err(Error::UnsupportedVersion {
                    api_key: match other {
                        Outgoing::FindCoordinator(_) => 10,
                        _ => -1,
                    },
                })
            }
        };
        self.script.lock().sent.push(Sent {
            link: self.id,
            node: self.node,
            correlation_id,
            request,
        });
        Ok(correlation_id)
    }

    fn shutdown_handle(&self) -> Option<std::sync::Weak<std::net::TcpStream>> {
        None
    }
}

impl Drop for ScriptedLink {
    fn drop(&mut self) {
        self.script.lock().dropped.push(self.id);
    }
}

#[derive(Debug)]
struct ScriptedConnector(Arc<Mutex<Script>>);

impl Connector for ScriptedConnector {
    fn connect(&mut self, node: i32, address: &str) -> Result<(), Error> {
        self.0.lock().connects.push((node, address.to_owned()));
        Ok(())
    }
}

/// One Produce request as the broker would read it.
#[derive(Debug, Clone)]
struct ProduceSeen {
    link: u64,
    node: i32,
    correlation_id: i32,
    /// (partition, values of its records, base sequence, producer epoch)
    batches: Vec<(i32, Vec<String>, i32, i16)>,
}

type Log = Arc<Mutex<Vec<(String, Result<i64, Error>)>>>;

struct Harness {
    sender: Sender,
    core: Arc<Core>,
    script: Arc<Mutex<Script>>,
    now: Instant,
    /// Partition → leader node.
    leaders: HashMap<i32, i32>,
    /// Answer InitProducerId with this epoch next.
    next_epoch: i16,
    /// Whether the harness answers metadata requests.
    answer_metadata: bool,
    /// Nodes whose connects never complete.
    unreachable: Vec<i32>,
    log: Log,
    _callback_thread: CallbackThread,
}

impl Harness {
    /// A sender for topic `t` with `partitions` partitions led by node 1, over scripted
    /// brokers; `props` add to batch.size=1 and linger.ms=0.
    fn new(partitions: i32, props: &[(&str, &str)]) -> Harness {
        let mut all = vec![
            ("bootstrap.servers", "b0:9092"),
            ("batch.size", "1"),
            ("linger.ms", "0"),
        ];
        all.extend_from_slice(props);
        let mut config = ProducerConfig::from_properties(all).expect("config");
        config.validate().expect("valid config");
        let (events, inbox) = crate::channel::unbounded();
        let core = Arc::new(Core::new(config, events));
        let (callback_thread, callbacks) = CallbackThread::start("test-callbacks".into(), core.id);
        let script = Arc::new(Mutex::new(Script {
            next_link: 1,
            ..Script::default()
        }));
        let sender = Sender::with_connector(
            Arc::clone(&core),
            inbox,
            callbacks,
            Box::new(ScriptedConnector(Arc::clone(&script))),
        );
        // The topic is wanted (as a send's wait would make it), then known.
        let _ = core.metadata.wait_for_topic(TOPIC, Instant::now(), || {});
        let h = Harness {
            sender,
            core,
            script,
            now: Instant::now(),
            leaders: (0..partitions).map(|p| (p, 1)).collect(),
            next_epoch: 0,
            answer_metadata: true,
            unreachable: Vec::new(),
            log: Log::default(),
            _callback_thread: callback_thread,
        };
        h.core
            .metadata
            .install(crate::metadata::Cluster::from_response(&h.metadata()));
        h
    }

    fn metadata(&self) -> MetadataResponse {
        let mut partitions: Vec<MetadataPartition> = self
            .leaders
            .iter()
            .map(|(&p, &leader)| MetadataPartition {
                partition_index: p,
                leader_id: leader,
                leader_epoch: 1,
                replica_nodes: vec![leader],
                isr_nodes: vec![leader],
                ..MetadataPartition::default()
            })
            .collect();
        partitions.sort_by_key(|p| p.partition_index);
        MetadataResponse {
            brokers: (1..=3)
                .map(|n| MetadataBroker {
                    node_id: n,
                    host: format!("b{n}"),
                    port: 9092,
                    rack: None,
                })
                .collect(),
            controller_id: 1,
            topics: vec![MetadataTopic {
                name: Some(TOPIC.into()),
                partitions,
                ..MetadataTopic::default()
            }],
            ..MetadataResponse::default()
        }
    }

    /// Appends one record (its own batch) to `partition`; its callback logs the outcome.
    /// The batch's creation time is read from the real clock, so the test clock moves up
    /// to it (the test's own advances stay on top).
    fn append(&mut self, partition: i32, value: &str) {
        let queue = self.core.accumulator.queue(TOPIC, partition);
        let payload = RecordBatchBuilder::payload_size(None, Some(value.as_bytes()), &[]);
        let record = AppendRecord {
            timestamp: 1_700_000_000_000,
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
            payload,
        };
        let (log, tag) = (Arc::clone(&self.log), value.to_owned());
        let callback = Completion::Callback(Box::new(move |_, r| {
            log.lock().push((tag, r.map(|md| md.offset())));
        }));
        if self
            .core
            .accumulator
            .append(&queue, &record, callback, None)
            .is_err()
        {
            panic!("append failed");
        }
        self.now = self.now.max(Instant::now());
    }

    fn advance(&mut self, by: Duration) {
        self.now += by;
    }

    /// One pass, then whatever the harness answers by itself (connects, Metadata,
    /// InitProducerId), and passes again while that changed something or the pass asked to
    /// run again within a millisecond.
    fn step(&mut self) {
        for _ in 0..20 {
            let next = self.sender.run_once(self.now);
            if self.auto_answer() {
                continue;
            }
            // The loop runs again at once when the pass asked for it (as `Sender::run`).
            if next > self.now + Duration::from_millis(1) {
                return;
            }
            self.now = self.now.max(next);
        }
    }

    fn auto_answer(&mut self) -> bool {
        let connects: Vec<(i32, String)> = {
            let mut script = self.script.lock();
            let (stuck, go) = std::mem::take(&mut script.connects)
                .into_iter()
                .partition(|(node, _)| self.unreachable.contains(node));
            script.connects = stuck;
            go
        };
        let mut acted = !connects.is_empty();
        for (node, _) in connects {
            let id = {
                let mut s = self.script.lock();
                s.next_link += 1;
                s.next_link
            };
            let link = ScriptedLink {
                id,
                node,
                next_correlation_id: 0,
                script: Arc::clone(&self.script),
            };
            let event = SenderEvent::Connected {
                node,
                result: Ok(Box::new(link)),
            };
            self.sender.handle(event, self.now);
        }
        let sent: Vec<Sent> = self.script.lock().sent.clone();
        for s in sent {
            let body = match &s.request {
                Request::Metadata if self.answer_metadata => {
                    ResponseBody::Metadata(self.metadata())
                }
                Request::InitProducerId => {
                    let epoch = self.next_epoch;
                    self.next_epoch += 1;
                    ResponseBody::InitProducerId(InitProducerIdResponse {
                        producer_id: 7,
                        producer_epoch: epoch,
                        ..InitProducerIdResponse::default()
                    })
                }
                _ => continue,
            };
            self.script
                .lock()
                .sent
                .retain(|x| (x.link, x.correlation_id) != (s.link, s.correlation_id));
            self.respond_raw(s.link, s.correlation_id, body);
            acted = true;
        }
        acted
    }

    fn respond_raw(&mut self, link: u64, correlation_id: i32, body: ResponseBody) {
        let event = ConnectionEvent {
            connection_id: link,
            kind: ConnectionEventKind::Response {
                correlation_id,
                api_key: ApiKey::PRODUCE,
                version: 11,
                body: Ok(body),
            },
        };
        self.sender.handle(SenderEvent::Connection(event), self.now);
    }

    /// Produce requests not answered yet, oldest first (removed from the script).
    fn take_produce(&mut self) -> Vec<ProduceSeen> {
        let mut script = self.script.lock();
        let (produce, rest): (Vec<Sent>, Vec<Sent>) = std::mem::take(&mut script.sent)
            .into_iter()
            .partition(|s| matches!(s.request, Request::Produce(_)));
        script.sent = rest;
        produce
            .into_iter()
            .map(|s| {
                let Request::Produce(r) = s.request else {
                    unreachable!()
                };
                let batches = r
                    .topics
                    .iter()
                    .flat_map(|t| &t.partitions)
                    .map(|p| {
                        let bytes = p.records.clone().expect("records");
                        let (batch, _) = RecordBatch::parse(&bytes).expect("a record batch");
                        let values = batch
                            .records()
                            .expect("records")
                            .into_iter()
                            .map(|r| String::from_utf8(r.value.unwrap_or_default()).unwrap())
                            .collect();
                        (
                            p.index,
                            values,
                            batch.base_sequence(),
                            batch.producer_epoch(),
                        )
                    })
                    .collect();
                ProduceSeen {
                    link: s.link,
                    node: s.node,
                    correlation_id: s.correlation_id,
                    batches,
                }
            })
            .collect()
    }

    /// Answers `request`: each partition with `code` (offset 100 × partition on success).
    fn answer(&mut self, request: &ProduceSeen, code: ErrorCode) {
        self.answer_with(request, |_| (code, Vec::new()));
    }

    fn answer_with(
        &mut self,
        request: &ProduceSeen,
        per_partition: impl Fn(i32) -> (ErrorCode, Vec<i32>),
    ) {
        let partitions = request
            .batches
            .iter()
            .map(|(p, ..)| {
                let (code, bad) = per_partition(*p);
                PartitionProduceResponse {
                    index: *p,
                    error_code: code.code(),
                    base_offset: if code == ErrorCode::None {
                        100 * i64::from(*p)
                    } else {
                        -1
                    },
                    log_append_time_ms: -1,
                    log_start_offset: 0,
                    record_errors: bad
                        .into_iter()
                        .map(|i| BatchIndexAndErrorMessage {
                            batch_index: i,
                            batch_index_error_message: Some(format!("record {i} is bad")),
                        })
                        .collect(),
                    error_message: None,
                    current_leader: None,
                }
            })
            .collect();
        let body = ResponseBody::Produce(ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: TOPIC.into(),
                partitions,
            }],
            ..ProduceResponse::default()
        });
        self.respond_raw(request.link, request.correlation_id, body);
    }

    /// The link `link` broke with its requests unanswered.
    fn lose(&mut self, link: u64) {
        let event = ConnectionEvent {
            connection_id: link,
            kind: ConnectionEventKind::Closed {
                error: Error::Network {
                    broker: "scripted".into(),
                    reason: "connection reset".into(),
                },
                unanswered: Vec::new(),
            },
        };
        self.sender.handle(SenderEvent::Connection(event), self.now);
    }

    /// Waits until the callback thread logged `n` outcomes; returns them in its order.
    fn outcomes(&self, n: usize) -> Vec<(String, Result<i64, Error>)> {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.log.lock().len() < n && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(2));
        }
        self.log.lock().clone()
    }

    /// Gives the callback thread time for outcomes that must NOT come, then returns all.
    fn settled_outcomes(&self) -> Vec<(String, Result<i64, Error>)> {
        std::thread::sleep(Duration::from_millis(100));
        self.log.lock().clone()
    }
}

impl Drop for Harness {
    fn drop(&mut self) {
        // Fail what is left, so that no callback waits forever. The callback thread ends
        // on its own once the sender (its queue's only producer) is dropped.
        self.sender.shut_down();
    }
}

fn values(outcomes: &[(String, Result<i64, Error>)]) -> Vec<&str> {
    outcomes.iter().map(|(v, _)| v.as_str()).collect()
}

fn is_timeout(r: &Result<i64, Error>) -> bool {
    matches!(r, Err(Error::DeliveryTimeout { .. }))
}

// ---------------------------------------------------------------------------------------
// Ordered completion with retries
// ---------------------------------------------------------------------------------------

#[test]
fn a_later_success_waits_for_the_earlier_batchs_retry() {
    let mut h = Harness::new(1, &[("enable.idempotence", "false"), ("acks", "1")]);
    h.append(0, "a");
    h.step();
    h.append(0, "b");
    h.step();
    let sent = h.take_produce();
    assert_eq!(sent.len(), 2, "a and b in two requests: {sent:?}");
    h.answer(&sent[0], ErrorCode::NotLeaderOrFollower);
    h.answer(&sent[1], ErrorCode::None);
    assert!(
        h.settled_outcomes().is_empty(),
        "b completed before a's retry"
    );
    h.advance(Duration::from_secs(2)); // past the retry backoff
    h.step();
    let retry = h.take_produce();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].batches[0].1, ["a"]);
    h.answer(&retry[0], ErrorCode::None);
    let out = h.outcomes(2);
    assert_eq!(values(&out), ["a", "b"]);
    assert!(out.iter().all(|(_, r)| r.is_ok()), "{out:?}");
}

/// Defect 1 of the hardening issue: the held completion of b was never released after a's
/// retry expired in flight, so b (and flush) hung.
#[test]
fn a_held_completion_is_released_when_the_older_batch_expires_in_flight() {
    let mut h = Harness::new(
        1,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("delivery.timeout.ms", "5000"),
            ("request.timeout.ms", "4000"),
        ],
    );
    h.append(0, "a");
    h.step();
    h.append(0, "b");
    h.step();
    let sent = h.take_produce();
    h.answer(&sent[0], ErrorCode::NotLeaderOrFollower);
    h.answer(&sent[1], ErrorCode::None);
    h.advance(Duration::from_secs(2));
    h.step();
    let retry = h.take_produce();
    assert_eq!(retry[0].batches[0].1, ["a"]);
    // The broker stalls on the retry; a's delivery timeout passes while it is in flight.
    h.advance(Duration::from_millis(3500));
    h.step();
    let out = h.outcomes(2);
    assert_eq!(values(&out), ["a", "b"], "{out:?}");
    assert!(is_timeout(&out[0].1), "{out:?}");
    assert_eq!(
        out[1].1.as_ref().ok(),
        Some(&0),
        "b succeeded at its offset"
    );
    assert!(h.sender.completions.nothing_held());
}

// ---------------------------------------------------------------------------------------
// Order on failure paths (defect 2)
// ---------------------------------------------------------------------------------------

#[test]
fn batches_expiring_in_flight_in_one_pass_complete_in_send_order() {
    let mut h = Harness::new(
        1,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("delivery.timeout.ms", "5000"),
            ("request.timeout.ms", "4000"),
        ],
    );
    let names: Vec<String> = (0..5).map(|i| format!("r{i}")).collect();
    for n in &names {
        h.append(0, n);
        h.step();
    }
    // All five are refused retriably and resent 1.5 s later, so their requests are young
    // (3.5 s old, request.timeout.ms is 4 s) when their delivery time runs out together.
    for r in h.take_produce() {
        h.answer(&r, ErrorCode::NotLeaderOrFollower);
    }
    h.advance(Duration::from_millis(1500));
    h.step();
    assert_eq!(h.take_produce().len(), 5, "five retries in flight");
    h.advance(Duration::from_millis(3501));
    h.step();
    let out = h.outcomes(5);
    assert_eq!(
        values(&out),
        names.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert!(out.iter().all(|(_, r)| is_timeout(r)), "{out:?}");
}

#[test]
fn a_newer_batch_in_flight_expires_after_an_older_retry_waiting_in_its_queue() {
    let mut h = Harness::new(
        2,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("max.in.flight.requests.per.connection", "2"),
            ("delivery.timeout.ms", "5000"),
            ("request.timeout.ms", "4000"),
            ("retry.backoff.ms", "10000"),
            ("retry.backoff.max.ms", "10000"),
        ],
    );
    // a (partition 0) and c (partition 1) take both request slots; b (partition 0) waits
    // 2 s for one, so its request is young when its delivery time runs out.
    h.append(0, "a");
    h.step();
    h.append(1, "c");
    h.step();
    h.append(0, "b");
    h.step();
    let first = h.take_produce();
    assert_eq!(first.len(), 2, "{first:?}");
    h.advance(Duration::from_secs(2));
    h.answer(&first[1], ErrorCode::None); // c
    h.step();
    let b = h.take_produce();
    assert_eq!(b[0].batches[0].1, ["b"], "{b:?}");
    // a goes back to its queue for a long backoff; b stays in flight.
    h.answer(&first[0], ErrorCode::NotLeaderOrFollower);
    h.advance(Duration::from_millis(3001)); // 5.001 s after a and b were created
    h.step();
    let out = h.outcomes(3);
    assert_eq!(values(&out), ["c", "a", "b"], "{out:?}");
    assert!(out[1..].iter().all(|(_, r)| is_timeout(r)), "{out:?}");
}

#[test]
fn rejected_records_complete_in_record_order_with_the_rest_of_their_batch() {
    let mut h = Harness::new(
        1,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("batch.size", "100000"),
        ],
    );
    for v in ["r0", "r1", "r2", "r3", "r4"] {
        h.append(0, v);
    }
    h.step();
    let sent = h.take_produce();
    assert_eq!(sent[0].batches[0].1.len(), 5, "one batch of five");
    // The broker names records 1 and 3 (as Kafka does for keyless records on a compacted
    // topic).
    h.answer_with(&sent[0], |_| (ErrorCode::InvalidRecord, vec![1, 3]));
    assert!(
        h.settled_outcomes().is_empty(),
        "a rejected record completed before the records sent ahead of it"
    );
    // The runs between the rejected records go again, one batch each, in order.
    let mut groups: Vec<Vec<String>> = Vec::new();
    for _ in 0..5 {
        h.step();
        for r in h.take_produce() {
            groups.extend(r.batches.iter().map(|b| b.1.clone()));
            h.answer(&r, ErrorCode::None);
        }
    }
    assert_eq!(groups, [vec!["r0"], vec!["r2"], vec!["r4"]]);
    let out = h.outcomes(5);
    assert_eq!(values(&out), ["r0", "r1", "r2", "r3", "r4"], "{out:?}");
    let failed: Vec<bool> = out.iter().map(|(_, r)| r.is_err()).collect();
    assert_eq!(failed, [false, true, false, true, false]);
}

#[test]
fn a_forced_close_fails_every_batch_in_send_order() {
    let mut h = Harness::new(
        2,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("retry.backoff.ms", "10000"),
            ("retry.backoff.max.ms", "10000"),
        ],
    );
    for v in ["a", "b", "c"] {
        h.append(0, v);
        h.step();
    }
    let sent = h.take_produce();
    h.answer(&sent[0], ErrorCode::NotLeaderOrFollower); // a waits in its queue
    h.answer(&sent[2], ErrorCode::None); // c is held behind a and b
    h.append(0, "d"); // never sent
    h.sender.handle(SenderEvent::ForceClose, h.now);
    h.sender.shut_down();
    let out = h.outcomes(4);
    assert_eq!(values(&out), ["a", "b", "c", "d"], "{out:?}");
    let in_flight = h
        .core
        .metrics
        .in_flight_requests
        .load(std::sync::atomic::Ordering::Relaxed);
    assert_eq!(
        in_flight, 0,
        "requests failed by the close still counted in flight"
    );
    assert!(matches!(out[0].1, Err(Error::Closed)), "{out:?}");
    assert!(matches!(out[1].1, Err(Error::Closed)), "{out:?}");
    assert!(out[2].1.is_ok(), "c was acknowledged: {out:?}");
    assert!(matches!(out[3].1, Err(Error::Closed)), "{out:?}");
}

#[test]
fn a_fatal_error_fails_queued_batches_after_the_older_ones_in_flight() {
    let mut h = Harness::new(1, &[("acks", "all")]);
    h.append(0, "a");
    h.step();
    let first = h.take_produce();
    h.answer(&first[0], ErrorCode::None); // the partition is known to the broker now
    h.append(0, "b");
    h.step();
    h.append(0, "c");
    h.step();
    let sent = h.take_produce();
    assert_eq!(sent.len(), 2, "b and c in flight: {sent:?}");
    h.append(0, "d"); // queued
                      // An authorization failure is fatal for an idempotent producer.
    h.answer(&sent[1], ErrorCode::TopicAuthorizationFailed);
    h.core.set_fatal(Error::Fatal("test".into()));
    h.step();
    h.answer(&sent[0], ErrorCode::None);
    let out = h.outcomes(4);
    assert_eq!(values(&out), ["a", "b", "c", "d"], "{out:?}");
    assert!(out[1].1.is_ok(), "{out:?}");
    assert!(out[2].1.is_err() && out[3].1.is_err(), "{out:?}");
}

// ---------------------------------------------------------------------------------------
// Splits, epoch bumps, lost connections, leader changes
// ---------------------------------------------------------------------------------------

#[test]
fn a_batch_too_large_for_the_broker_is_split_and_completes_in_order() {
    let mut h = Harness::new(1, &[("acks", "all"), ("batch.size", "100000")]);
    for v in ["r0", "r1", "r2", "r3"] {
        h.append(0, v);
    }
    h.step();
    let sent = h.take_produce();
    assert_eq!(sent[0].batches[0].1.len(), 4);
    h.answer(&sent[0], ErrorCode::MessageTooLarge);
    h.step();
    let first = h.take_produce();
    assert_eq!(
        first.len(),
        1,
        "the first half alone (first batch of the partition)"
    );
    assert_eq!(first[0].batches[0].1, ["r0", "r1"]);
    assert_eq!(
        first[0].batches[0].2, 0,
        "the first half starts the sequence"
    );
    h.answer(&first[0], ErrorCode::None);
    h.step();
    let second = h.take_produce();
    assert_eq!(second[0].batches[0].1, ["r2", "r3"]);
    assert_eq!(second[0].batches[0].2, 2, "the second half continues it");
    h.answer(&second[0], ErrorCode::None);
    let out = h.outcomes(4);
    assert_eq!(values(&out), ["r0", "r1", "r2", "r3"]);
    assert!(out.iter().all(|(_, r)| r.is_ok()), "{out:?}");
}

#[test]
fn an_unknown_producer_on_the_first_batch_bumps_the_epoch_and_resends_from_zero() {
    let mut h = Harness::new(1, &[("acks", "all")]);
    h.append(0, "a");
    h.step();
    let sent = h.take_produce();
    assert_eq!((sent[0].batches[0].2, sent[0].batches[0].3), (0, 0));
    h.answer(&sent[0], ErrorCode::UnknownProducerId);
    h.advance(Duration::from_secs(2));
    h.step();
    let resent = h.take_produce();
    assert_eq!(resent.len(), 1, "{resent:?}");
    assert_eq!(
        (resent[0].batches[0].2, resent[0].batches[0].3),
        (0, 1),
        "sequence 0 under epoch 1"
    );
    h.answer(&resent[0], ErrorCode::None);
    let out = h.outcomes(1);
    assert!(out[0].1.is_ok(), "{out:?}");
}

#[test]
fn requests_lost_with_their_connection_are_resent_in_order() {
    let mut h = Harness::new(1, &[("enable.idempotence", "false"), ("acks", "1")]);
    for v in ["a", "b", "c"] {
        h.append(0, v);
        h.step();
    }
    let sent = h.take_produce();
    assert_eq!(sent.len(), 3);
    h.lose(sent[0].link);
    h.advance(Duration::from_secs(2));
    h.step();
    h.advance(Duration::from_secs(2));
    h.step();
    let mut order = Vec::new();
    for _ in 0..5 {
        for r in h.take_produce() {
            assert_ne!(r.link, sent[0].link, "sent on the lost link");
            order.extend(r.batches[0].1.clone());
            h.answer(&r, ErrorCode::None);
        }
        h.advance(Duration::from_secs(2));
        h.step();
    }
    assert_eq!(order, ["a", "b", "c"]);
    let out = h.outcomes(3);
    assert_eq!(values(&out), ["a", "b", "c"]);
    assert!(out.iter().all(|(_, r)| r.is_ok()), "{out:?}");
}

#[test]
fn a_moved_partition_sends_nothing_to_its_new_leader_until_the_old_one_answers() {
    let mut h = Harness::new(1, &[("enable.idempotence", "false"), ("acks", "1")]);
    h.append(0, "a");
    h.step();
    let to_old = h.take_produce();
    assert_eq!(to_old[0].node, 1);
    // The partition moves to node 2 (a refresh shows it); b is ready meanwhile.
    h.leaders.insert(0, 2);
    h.core.metadata.request_update();
    h.advance(Duration::from_secs(1));
    h.step();
    h.append(0, "b");
    h.step();
    assert!(
        h.take_produce().is_empty(),
        "b went to the new leader while a was in flight to the old one"
    );
    h.answer(&to_old[0], ErrorCode::NotLeaderOrFollower);
    h.advance(Duration::from_secs(2));
    h.step();
    let to_new = h.take_produce();
    assert!(to_new.iter().all(|r| r.node == 2), "{to_new:?}");
    let first: Vec<String> = to_new[0].batches[0].1.clone();
    assert_eq!(first, ["a"], "a first on the new leader: {to_new:?}");
    for r in &to_new {
        h.answer(r, ErrorCode::None);
    }
    h.step();
    for r in h.take_produce() {
        h.answer(&r, ErrorCode::None);
    }
    let out = h.outcomes(2);
    assert_eq!(values(&out), ["a", "b"]);
    assert!(out.iter().all(|(_, r)| r.is_ok()), "{out:?}");
}

// ---------------------------------------------------------------------------------------
// connections.max.idle.ms
// ---------------------------------------------------------------------------------------

#[test]
fn an_idle_connection_is_closed_and_reopened_on_demand() {
    let mut h = Harness::new(
        1,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("connections.max.idle.ms", "10000"),
            ("metadata.max.age.ms", "3600000"),
        ],
    );
    h.append(0, "a");
    h.step();
    let sent = h.take_produce();
    let first_link = sent[0].link;
    h.answer(&sent[0], ErrorCode::None);
    h.advance(Duration::from_secs(9));
    h.step();
    assert!(
        !h.script.lock().dropped.contains(&first_link),
        "closed too early"
    );
    h.advance(Duration::from_secs(2));
    h.step();
    assert!(
        h.script.lock().dropped.contains(&first_link),
        "idle connection kept open"
    );
    h.append(0, "b");
    h.step();
    let again = h.take_produce();
    assert_eq!(again.len(), 1);
    assert_ne!(again[0].link, first_link, "a new connection");
    h.answer(&again[0], ErrorCode::None);
    assert_eq!(values(&h.outcomes(2)), ["a", "b"]);
}

#[test]
fn a_connection_with_a_request_in_flight_is_never_idle() {
    let mut h = Harness::new(
        1,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("connections.max.idle.ms", "10000"),
            ("request.timeout.ms", "30000"),
            ("delivery.timeout.ms", "60000"),
        ],
    );
    h.append(0, "a");
    h.step();
    let sent = h.take_produce();
    h.advance(Duration::from_secs(20));
    h.step();
    assert!(!h.script.lock().dropped.contains(&sent[0].link));
    h.answer(&sent[0], ErrorCode::None);
    assert!(h.outcomes(1)[0].1.is_ok());
}

// ---------------------------------------------------------------------------------------
// metadata.max.idle.ms and partitioner.availability.timeout.ms, as the sender drives them
// ---------------------------------------------------------------------------------------

#[test]
fn a_topic_unused_for_metadata_max_idle_is_no_longer_asked_for() {
    let mut h = Harness::new(
        1,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("metadata.max.idle.ms", "5000"),
        ],
    );
    h.append(0, "a");
    h.step();
    let sent = h.take_produce();
    h.advance(Duration::from_secs(4));
    h.step();
    assert_eq!(h.core.metadata.wanted_topics(), [TOPIC], "in use 4 s ago");
    h.answer(&sent[0], ErrorCode::None);
    h.append(0, "b"); // queued: a use
    h.step();
    h.advance(Duration::from_secs(4));
    h.step();
    assert_eq!(h.core.metadata.wanted_topics(), [TOPIC], "b queued 4 s ago");
    h.advance(Duration::from_secs(2));
    h.step();
    assert!(
        h.core.metadata.wanted_topics().is_empty(),
        "a topic idle for 6 s is still wanted"
    );
}

#[test]
fn a_leader_unable_to_take_requests_past_the_availability_timeout_loses_unkeyed_records() {
    let mut h = Harness::new(
        2,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("partitioner.availability.timeout.ms", "1000"),
        ],
    );
    h.leaders.insert(1, 2);
    h.core
        .metadata
        .install(crate::metadata::Cluster::from_response(&h.metadata()));
    h.unreachable.push(2);
    h.append(1, "stuck");
    h.step();
    h.advance(Duration::from_millis(500));
    h.step();
    assert!(!h.core.sticky.is_node_unavailable(2), "too early");
    h.advance(Duration::from_millis(1000));
    h.step();
    assert!(h.core.sticky.is_node_unavailable(2));
    assert!(!h.core.sticky.is_node_unavailable(1));
    let partitions = h
        .core
        .metadata
        .cluster()
        .partitions(TOPIC)
        .cloned()
        .unwrap();
    for _ in 0..20 {
        assert_eq!(h.core.sticky.partition(TOPIC, &partitions), 0);
    }
}

// ---------------------------------------------------------------------------------------
// Found by review: the sender's own close, idle checks of busy links, early closes
// ---------------------------------------------------------------------------------------

#[test]
fn the_sender_stopping_refuses_appends_so_that_it_fails_every_record_itself() {
    let mut h = Harness::new(1, &[("enable.idempotence", "false"), ("acks", "1")]);
    h.append(0, "a");
    h.step();
    h.append(0, "b");
    h.sender.handle(SenderEvent::ForceClose, h.now);
    h.sender.shut_down();
    let queue = h.core.accumulator.queue(TOPIC, 0);
    let record = AppendRecord {
        timestamp: 0,
        key: None,
        value: Some(b"late"),
        headers: &[],
        payload: RecordBatchBuilder::payload_size(None, Some(b"late"), &[]),
    };
    assert!(
        h.core
            .accumulator
            .append(&queue, &record, Completion::Future, None)
            .is_err(),
        "a record queued after the sender stopped would never complete"
    );
    let out = h.outcomes(2);
    assert_eq!(values(&out), ["a", "b"], "{out:?}");
}

#[test]
fn a_request_outliving_connections_max_idle_does_not_make_the_sender_spin() {
    let mut h = Harness::new(
        1,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("connections.max.idle.ms", "1000"),
            ("request.timeout.ms", "30000"),
        ],
    );
    h.append(0, "a");
    h.step();
    let sent = h.take_produce();
    h.advance(Duration::from_secs(2));
    let next = h.sender.run_once(h.now);
    assert!(
        next >= h.now + Duration::from_millis(50),
        "the next pass is due in {:?}",
        next.saturating_duration_since(h.now)
    );
    h.answer(&sent[0], ErrorCode::None);
    assert!(h.outcomes(1)[0].1.is_ok());
}

#[test]
fn a_link_reported_closed_before_it_was_installed_counts_as_a_failed_connect() {
    let mut h = Harness::new(1, &[("enable.idempotence", "false"), ("acks", "1")]);
    h.unreachable.push(1); // the test answers node 1's connect itself
    h.append(0, "a");
    h.step();
    assert!(h.script.lock().connects.iter().any(|(n, _)| *n == 1));
    h.script.lock().connects.retain(|(n, _)| *n != 1);
    // The broker hangs up right after the handshake: the reader's close arrives first.
    h.lose(99);
    let link = ScriptedLink {
        id: 99,
        node: 1,
        next_correlation_id: 0,
        script: Arc::clone(&h.script),
    };
    let connected = SenderEvent::Connected {
        node: 1,
        result: Ok(Box::new(link)),
    };
    h.sender.handle(connected, h.now);
    h.unreachable.clear();
    for _ in 0..5 {
        h.step();
        h.advance(Duration::from_millis(500));
    }
    let sent = h.take_produce();
    assert!(!sent.is_empty(), "a was never sent");
    assert!(
        sent.iter().all(|r| r.link != 99),
        "sent on a closed link: {sent:?}"
    );
    for r in &sent {
        h.answer(r, ErrorCode::None);
    }
    assert!(h.outcomes(1)[0].1.is_ok());
}

/// A broker may list a response's partitions in any order: each batch takes its own
/// partition's entry (the lookup tries the request's order first, then searches).
#[test]
fn a_response_in_another_partition_order_answers_each_batch_from_its_own_entry() {
    let mut h = Harness::new(4, &[("enable.idempotence", "false"), ("acks", "1")]);
    for p in 0..4 {
        h.append(p, &format!("v{p}"));
    }
    h.step();
    let sent = h.take_produce();
    assert_eq!(sent.len(), 1, "one request for the one leader: {sent:?}");
    assert_eq!(sent[0].batches.len(), 4);
    let mut shuffled = sent[0].clone();
    shuffled.batches.swap(0, 3);
    shuffled.batches.swap(1, 2);
    h.answer(&shuffled, ErrorCode::None);
    let out = h.outcomes(4);
    assert_eq!(out.len(), 4);
    for (value, result) in out {
        let p: i64 = value[1..].parse().unwrap();
        assert_eq!(
            result.unwrap(),
            100 * p,
            "{value} took its partition's offset"
        );
    }
}

/// Performance round two, scenario 8: with nothing to send, the sender sleeps until its next
/// real deadline (here metadata.max.age.ms), not on a fixed tick.
#[test]
fn an_idle_sender_sleeps_until_its_next_real_deadline() {
    let mut h = Harness::new(
        1,
        &[
            ("acks", "1"),
            ("enable.idempotence", "false"),
            ("metadata.max.age.ms", "120000"),
        ],
    );
    h.append(0, "a");
    h.step();
    let sent = h.take_produce();
    h.answer(&sent[0], ErrorCode::None);
    assert!(h.outcomes(1)[0].1.is_ok());
    h.step();
    let next = h.sender.run_once(h.now);
    let sleep = next.saturating_duration_since(h.now);
    assert!(
        sleep > Duration::from_secs(100) && sleep <= Duration::from_secs(120),
        "an idle sender sleeps until the metadata refresh is due, not {sleep:?}"
    );
}

/// Performance round two, many partitions: while a request to a leader is in flight, its
/// lingered open batches wait for the answer and keep filling, instead of leaving one
/// small request after another; a batch that must go (full) takes them along at once.
#[test]
fn lingered_batches_wait_behind_a_request_in_flight_unless_one_must_go() {
    let mut h = Harness::new(
        3,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("batch.size", "200"),
            ("linger.ms", "5"),
        ],
    );
    h.append(0, "a");
    h.advance(Duration::from_millis(5));
    h.step();
    let first = h.take_produce();
    assert_eq!(first.len(), 1, "a goes once lingered: {first:?}");
    h.append(1, "b");
    h.advance(Duration::from_millis(5));
    h.step();
    assert!(
        h.take_produce().is_empty(),
        "b left in a second request of small batches while a was in flight"
    );
    h.append(1, "c");
    h.advance(Duration::from_millis(50));
    h.step();
    assert!(h.take_produce().is_empty(), "b and c wait for a's answer");
    h.answer(&first[0], ErrorCode::None);
    h.step();
    let second = h.take_produce();
    assert_eq!(second.len(), 1, "{second:?}");
    assert_eq!(second[0].batches.len(), 1);
    assert_eq!(second[0].batches[0].1, ["b", "c"], "b and c in one batch");
    // With that request in flight, a record filling its own batch goes at once, and
    // the lingered batch of another partition with it.
    h.append(0, "d");
    h.advance(Duration::from_millis(5));
    h.step();
    assert!(h.take_produce().is_empty());
    h.append(2, &"e".repeat(300));
    h.step();
    let third = h.take_produce();
    assert_eq!(third.len(), 1, "the full batch went at once: {third:?}");
    let mut partitions: Vec<i32> = third[0].batches.iter().map(|b| b.0).collect();
    partitions.sort_unstable();
    assert_eq!(partitions, [0, 2], "d went along with the full batch");
    h.answer(&second[0], ErrorCode::None);
    h.answer(&third[0], ErrorCode::None);
    let out = h.outcomes(5);
    assert_eq!(out.len(), 5);
    assert!(out.iter().all(|(_, r)| r.is_ok()), "{out:?}");
}

/// Kafka answers a retried batch it had already written (a duplicate) with the batch's
/// MaxTimestamp as LogAppendTime, also on a CreateTime topic: every record then reported
/// the batch's latest CreateTime (seen in `records_keep_send_order_when_new_partitions_
/// refuse_the_first_batches` on Kafka 3.9.2). A first answer with a LogAppendTime still
/// gives every record that time.
#[test]
fn a_duplicate_answer_keeps_each_records_create_time() {
    let mut h = Harness::new(
        1,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("batch.size", "1000"),
            ("linger.ms", "10"),
        ],
    );
    const T: i64 = 1_700_000_000_000;
    let queue = h.core.accumulator.queue(TOPIC, 0);
    let append = |timestamp: i64, value: &str| {
        let payload = RecordBatchBuilder::payload_size(None, Some(value.as_bytes()), &[]);
        let record = AppendRecord {
            timestamp,
            key: None,
            value: Some(value.as_bytes()),
            headers: &[],
            payload,
        };
        match h
            .core
            .accumulator
            .append(&queue, &record, Completion::Future, None)
        {
            Ok(appended) => appended.future.expect("a future"),
            Err(_) => panic!("append failed"),
        }
    };
    let (a, b) = (append(T, "a"), append(T + 500, "b"));
    let (c, d) = (append(T + 900, "c"), append(T + 950, "d"));
    h.now = h.now.max(Instant::now()) + Duration::from_millis(10);
    h.step();
    let first = h.take_produce();
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].batches[0].1, ["a", "b", "c", "d"]);
    h.lose(first[0].link);
    for _ in 0..3 {
        h.advance(Duration::from_secs(2));
        h.step();
    }
    let retry = h.take_produce();
    assert_eq!(retry.len(), 1, "the batch is sent again");
    let answer = |log_append_time_ms: i64| {
        ResponseBody::Produce(ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: TOPIC.into(),
                partitions: vec![PartitionProduceResponse {
                    index: 0,
                    base_offset: 40,
                    log_append_time_ms,
                    ..PartitionProduceResponse::default()
                }],
            }],
            ..ProduceResponse::default()
        })
    };
    h.respond_raw(retry[0].link, retry[0].correlation_id, answer(T + 950));
    let times: Vec<i64> = [a, b, c, d]
        .into_iter()
        .map(|f| f.wait().expect("acknowledged").timestamp())
        .collect();
    assert_eq!(
        times,
        [T, T + 500, T + 900, T + 950],
        "each record's CreateTime"
    );
    // A first attempt answered with a LogAppendTime: every record takes it.
    let queue = h.core.accumulator.queue(TOPIC, 0);
    let payload = RecordBatchBuilder::payload_size(None, Some(b"e"), &[]);
    let record = AppendRecord {
        timestamp: T + 2_000,
        key: None,
        value: Some(b"e"),
        headers: &[],
        payload,
    };
    let Ok(appended) = h
        .core
        .accumulator
        .append(&queue, &record, Completion::Future, None)
    else {
        panic!("append failed")
    };
    h.now = h.now.max(Instant::now()) + Duration::from_millis(10);
    h.step();
    let sent = h.take_produce();
    assert_eq!(sent.len(), 1);
    h.respond_raw(sent[0].link, sent[0].correlation_id, answer(T + 5_000));
    let md = appended
        .future
        .expect("a future")
        .wait()
        .expect("acknowledged");
    assert_eq!(md.timestamp(), T + 5_000, "the broker's LogAppendTime");
}

/// Answers `request` with success on every partition and `throttle_ms` as its throttle time.
fn answer_throttled(h: &mut Harness, request: &ProduceSeen, throttle_ms: i32) {
    let partitions = request
        .batches
        .iter()
        .map(|(p, ..)| PartitionProduceResponse {
            index: *p,
            error_code: 0,
            base_offset: 100 * i64::from(*p),
            log_append_time_ms: -1,
            log_start_offset: 0,
            record_errors: Vec::new(),
            error_message: None,
            current_leader: None,
        })
        .collect();
    let body = ResponseBody::Produce(ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: TOPIC.into(),
            partitions,
        }],
        throttle_time_ms: throttle_ms,
        ..ProduceResponse::default()
    });
    h.respond_raw(request.link, request.correlation_id, body);
}

/// KIP-219: a Produce v6+ answer with a throttle time keeps every request from that broker
/// until the time passed, and the sender wakes up when it ends.
#[test]
fn a_throttled_broker_gets_no_request_until_its_throttle_time_passed() {
    let mut h = Harness::new(1, &[("enable.idempotence", "false"), ("acks", "1")]);
    h.append(0, "a");
    h.step();
    let sent = h.take_produce();
    assert_eq!(sent.len(), 1);
    let throttled_at = h.now;
    answer_throttled(&mut h, &sent[0], 500);
    assert!(h.outcomes(1)[0].1.is_ok());
    h.append(0, "b"); // moves the test clock up to the real one
    h.step();
    assert!(
        h.take_produce().is_empty(),
        "a request went to a throttled broker"
    );
    let ends = throttled_at + Duration::from_millis(500);
    let wakes = h.sender.run_once(h.now);
    assert!(
        wakes <= ends,
        "the sender sleeps past the throttle's end, by {:?}",
        wakes.saturating_duration_since(ends)
    );
    // (`step` moves the clock up to a pass due within 1 ms.)
    assert!(
        h.now < ends - Duration::from_millis(5),
        "the test was too slow"
    );
    h.now = ends - Duration::from_millis(5);
    h.step();
    assert!(
        h.take_produce().is_empty(),
        "sent before the throttle ended"
    );
    h.advance(Duration::from_millis(5));
    h.step();
    let sent = h.take_produce();
    assert_eq!(sent.len(), 1, "b goes once the throttle ended");
    assert_eq!(sent[0].batches[0].1, ["b"]);
    answer_throttled(&mut h, &sent[0], 0);
    assert_eq!(values(&h.outcomes(2)), ["a", "b"]);
    let m = h.core.metrics_snapshot();
    assert_eq!(m.throttle_time_max, Duration::from_millis(500));
    assert_eq!(m.throttle_time_avg, Duration::from_millis(250));
}

#[test]
fn only_answers_from_versions_that_leave_throttling_to_the_client_throttle() {
    use crate::protocol::ApiKey;
    let produce = |ms| {
        Ok(ResponseBody::Produce(ProduceResponse {
            throttle_time_ms: ms,
            ..ProduceResponse::default()
        }))
    };
    assert_eq!(
        super::client_throttle_ms(ApiKey::PRODUCE, 6, &produce(40)),
        Some(40)
    );
    // Before v6 the broker delayed its answer by the throttle time itself.
    assert_eq!(
        super::client_throttle_ms(ApiKey::PRODUCE, 5, &produce(40)),
        None
    );
    assert_eq!(
        super::client_throttle_ms(ApiKey::PRODUCE, 9, &produce(0)),
        None
    );
    let metadata = Ok(ResponseBody::Metadata(MetadataResponse {
        throttle_time_ms: 30,
        ..MetadataResponse::default()
    }));
    assert_eq!(
        super::client_throttle_ms(ApiKey::METADATA, 6, &metadata),
        Some(30)
    );
    assert_eq!(
        super::client_throttle_ms(ApiKey::METADATA, 5, &metadata),
        None
    );
}

/// The sender adds each request's batches to the producer-wide, per-topic and per-node
/// figures once per request, and records retried and failed records per topic.
#[test]
fn metrics_count_records_per_request_topic_and_node() {
    let mut h = Harness::new(2, &[("enable.idempotence", "false"), ("acks", "1")]);
    h.append(0, "a");
    h.append(1, "bb");
    h.step();
    let sent = h.take_produce();
    assert_eq!(sent.len(), 1);
    assert_eq!(h.core.metrics_snapshot().records_in_flight, 2);
    h.answer_with(&sent[0], |p| {
        if p == 0 {
            (ErrorCode::None, Vec::new())
        } else {
            (ErrorCode::NotLeaderOrFollower, Vec::new())
        }
    });
    h.advance(Duration::from_secs(2));
    h.step();
    let retry = h.take_produce();
    assert_eq!(retry.len(), 1);
    h.answer(&retry[0], ErrorCode::InvalidTopicException);
    let out = h.outcomes(2);
    assert_eq!(out.len(), 2);
    let list = h.core.metrics_by_name();
    let get = |group: &str, name: &str| {
        list.iter()
            .find(|m| m.group == group && m.name == name)
            .unwrap_or_else(|| panic!("{group}/{name} missing"))
            .value
    };
    use crate::metrics::Metric;
    assert_eq!(get(Metric::PRODUCER_GROUP, "record-send-total"), 3.0);
    assert_eq!(get(Metric::PRODUCER_GROUP, "record-retry-total"), 1.0);
    assert_eq!(get(Metric::PRODUCER_GROUP, "record-error-total"), 1.0);
    assert_eq!(get(Metric::PRODUCER_GROUP, "request-total"), 2.0);
    assert_eq!(get(Metric::PRODUCER_GROUP, "records-per-request-avg"), 1.5);
    assert_eq!(get(Metric::PRODUCER_GROUP, "requests-in-flight"), 0.0);
    assert!(get(Metric::PRODUCER_GROUP, "batch-size-max") > 0.0);
    assert!(get(Metric::PRODUCER_GROUP, "record-size-max") > 0.0);
    assert_eq!(get(Metric::TOPIC_GROUP, "record-send-total"), 3.0);
    assert_eq!(get(Metric::TOPIC_GROUP, "record-retry-total"), 1.0);
    assert_eq!(get(Metric::TOPIC_GROUP, "record-error-total"), 1.0);
    assert_eq!(get(Metric::NODE_GROUP, "request-total"), 2.0);
    let node = list
        .iter()
        .find(|m| m.group == Metric::NODE_GROUP)
        .expect("a node metric");
    assert_eq!(node.tags["node-id"], "node-1");
    assert_eq!(h.core.metrics_snapshot().records_in_flight, 0);
}

fn purge(h: &mut Harness) -> u64 {
    let (reply, answer) = std::sync::mpsc::sync_channel(1);
    h.sender.handle(SenderEvent::Purge(reply), h.now);
    answer.recv().expect("the sender answers a purge")
}

/// Purge fails the batches never sent, after the older batches of their partition in
/// flight, keeps a batch put back for a retry, and the producer sends on afterwards.
#[test]
fn purge_fails_only_batches_never_sent_in_order_with_those_in_flight() {
    let mut h = Harness::new(
        2,
        &[
            ("enable.idempotence", "true"),
            ("max.in.flight.requests.per.connection", "1"),
        ],
    );
    h.append(0, "a");
    h.step();
    let first = h.take_produce();
    assert_eq!(first.len(), 1);
    h.append(0, "b");
    h.append(1, "c");
    h.step();
    assert!(
        h.take_produce().is_empty(),
        "one request in flight at a time"
    );
    assert_eq!(purge(&mut h), 2, "b and c were never sent");
    let early = h.settled_outcomes();
    assert_eq!(values(&early), ["c"], "b waits for a, in flight before it");
    assert!(matches!(early[0].1, Err(Error::Purged)), "{early:?}");
    // a comes back retriable: it goes back to its queue, and a purge leaves it there.
    h.answer(&first[0], ErrorCode::NotLeaderOrFollower);
    assert_eq!(purge(&mut h), 0, "a retry is never purged");
    h.advance(Duration::from_secs(2));
    h.step();
    let retry = h.take_produce();
    assert_eq!(retry.len(), 1);
    assert_eq!(retry[0].batches[0].1, ["a"]);
    h.answer(&retry[0], ErrorCode::None);
    let out = h.outcomes(3);
    assert_eq!(values(&out), ["c", "a", "b"]);
    assert!(out[1].1.is_ok(), "{out:?}");
    assert!(matches!(out[2].1, Err(Error::Purged)), "{out:?}");
    // The producer goes on: the next record goes with the partition's next sequence.
    h.append(0, "d");
    h.step();
    let next = h.take_produce();
    assert_eq!(next.len(), 1);
    assert_eq!(next[0].batches[0].1, ["d"]);
    assert_eq!(retry[0].batches[0].2, 0, "a kept its sequence");
    assert_eq!(
        next[0].batches[0].2, 1,
        "d follows a: the purged b took no sequence"
    );
    h.answer(&next[0], ErrorCode::None);
    let out = h.outcomes(4);
    assert_eq!(values(&out)[3], "d");
    assert!(out[3].1.is_ok(), "{out:?}");
}

/// request-latency counts answered requests only, as Java's (which records latency when a
/// response arrives): a request that timed out must not read as a 31 s round trip.
#[test]
fn a_request_that_timed_out_does_not_count_as_request_latency() {
    let mut h = Harness::new(
        1,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("request.timeout.ms", "30000"),
            ("delivery.timeout.ms", "120000"),
        ],
    );
    h.append(0, "a");
    h.step();
    assert_eq!(h.take_produce().len(), 1);
    h.advance(Duration::from_secs(31));
    h.step(); // request.timeout.ms passed: the connection is dropped, the batch is retried
    let m = h.core.metrics_snapshot();
    assert_eq!(
        m.request_latency_max,
        Duration::ZERO,
        "no request was answered"
    );
    let node_max = h
        .core
        .metrics_by_name()
        .into_iter()
        .find(|x| x.group == crate::metrics::Metric::NODE_GROUP && x.name == "request-latency-max")
        .map(|x| x.value);
    assert!(node_max.is_none_or(|v| v == 0.0), "{node_max:?}");
}

/// Per-topic figures go with the topic's metadata after metadata.max.idle.ms, so a producer
/// writing to ever new topics does not list (and keep) figures for every topic it ever saw.
#[test]
fn the_figures_of_a_topic_forgotten_as_idle_are_dropped() {
    let mut h = Harness::new(
        1,
        &[
            ("enable.idempotence", "false"),
            ("acks", "1"),
            ("metadata.max.idle.ms", "5000"),
        ],
    );
    let topic_figures = |h: &Harness| {
        h.core
            .metrics_by_name()
            .into_iter()
            .filter(|m| m.group == crate::metrics::Metric::TOPIC_GROUP)
            .count()
    };
    h.append(0, "a");
    h.step();
    let sent = h.take_produce();
    h.answer(&sent[0], ErrorCode::None);
    h.step();
    assert!(topic_figures(&h) > 0, "the topic's figures are listed");
    h.advance(Duration::from_secs(6));
    h.step();
    assert!(h.core.metadata.wanted_topics().is_empty());
    assert_eq!(
        topic_figures(&h),
        0,
        "the idle topic's figures were dropped"
    );
}

/// A metadata refresh whose only connected node is throttled connects to another known
/// broker (as Java's leastLoadedNode falls back to a node it can connect to) rather than
/// waiting out the throttle.
#[test]
fn metadata_goes_to_another_broker_while_the_only_connected_one_is_throttled() {
    let mut h = Harness::new(1, &[("enable.idempotence", "false"), ("acks", "1")]);
    h.append(0, "a");
    h.step();
    let sent = h.take_produce();
    assert_eq!(sent.len(), 1);
    answer_throttled(&mut h, &sent[0], 5000);
    h.script.lock().connects.clear();
    h.core.metadata.request_update();
    let t0 = h.now;
    let mut connected = Vec::new();
    while h.now - t0 < Duration::from_secs(1) {
        let next = h.sender.run_once(h.now);
        connected.extend(h.script.lock().connects.drain(..).map(|c| c.0));
        h.now = next.max(h.now + Duration::from_millis(1));
    }
    assert!(
        connected.iter().any(|&node| node != sent[0].node),
        "no connect to another broker within 1 s of the throttle: {connected:?}"
    );
}

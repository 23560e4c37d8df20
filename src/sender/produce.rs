//! The produce half of the sender: ready check, drain per leader, requests, responses.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use super::in_flight::InFlight;
use super::link::Outgoing;
use super::{sequenced, Sender, BUSY_TICK, IDLE_TICK};
use crate::accumulator::{PartitionQueue, ProducerBatch, QueueState};
use crate::delivery::BatchOutcome;
use crate::error::{Error, ErrorCode};
use crate::idempotence::{Drain, Verdict};
use crate::metadata::{Cluster, TopicMetadata};
use crate::metrics::Metrics;
use crate::protocol::produce::{
    PartitionProduceData, PartitionProduceResponse, ProduceRequest, ProduceResponse,
    TopicProduceData,
};
use crate::protocol::{DecodeError, ResponseBody};
use crate::record_batch::ProducerState;

/// How often adaptive partitioning's queue statistics are refreshed.
const LOAD_STATS_INTERVAL: std::time::Duration = std::time::Duration::from_millis(100);

/// One leader's queues whose front batch may go, in the sender's pass.
#[derive(Default)]
struct Ready {
    /// Whether some front batch must go now (`QueueState::Ready`), not only may.
    must_go: bool,
    queues: Vec<Arc<PartitionQueue>>,
}

impl Sender {
    /// Expires overdue batches and sends one request to every leader with a ready batch.
    /// Returns when the next pass is due.
    pub(super) fn send_ready(&mut self, now: Instant) -> Instant {
        let cluster = self.core.metadata.cluster();
        let mut next = now + IDLE_TICK;
        let mut expired = Vec::new();
        let mut by_node: HashMap<i32, Vec<Arc<PartitionQueue>>> = HashMap::new();
        // Per leader, the queues whose front batch is ready (full, lingered, flushed, ...):
        // only those are drained. Java also takes the lingering front batches of a ready
        // leader's other partitions; with hundreds of partitions that sends most of them
        // with a record or two, and the broker's cost per batch then dominates (600
        // partitions: 8x the broker CPU of draining ripe batches only, as librdkafka does).
        //
        // A leader with a Produce request in flight gets another only when one of its
        // batches must go (`QueueState::Ready`: full, flushed, ...); its lingered open
        // batches wait for the answer and keep filling. The broker handles one request per
        // connection at a time, so a second request of small batches would only queue
        // there; waiting lets batches grow with the broker's pace (many partitions at a
        // high rate: a few large batches per partition instead of one per record). At low
        // rates nothing is in flight when linger ends, and the batch goes as before.
        let mut ready: HashMap<i32, Ready> = HashMap::new();
        // Topics with queued batches are in use (metadata.max.idle.ms).
        let mut used: Vec<Arc<str>> = Vec::new();
        // The last topic looked up, so that a run of one topic's queues hashes its name once.
        let mut topic: Option<(Arc<str>, Option<&TopicMetadata>)> = None;
        // Only the queues that may hold batches (see the accumulator's "Active queues"); a
        // queue leaves the list exactly when `inspect` finds it empty.
        let mut active = std::mem::take(&mut self.active);
        self.core.accumulator.collect_active(&mut active);
        let mut kept = std::mem::take(&mut self.active_spare);
        for queue in active.drain(..) {
            let state = self.core.accumulator.inspect(&queue, now, &mut expired);
            if state == QueueState::Empty {
                continue; // unlisted by inspect
            }
            kept.push(Arc::clone(&queue));
            if !cluster.deleted.is_empty() && cluster.deleted.contains(queue.tp.topic()) {
                self.fail_deleted(&queue);
                continue;
            }
            match state {
                QueueState::Empty => unreachable!("skipped above"),
                QueueState::Lingering(at) | QueueState::Backoff(at) => next = next.min(at),
                QueueState::Ready | QueueState::Lingered => {}
            }
            let name = queue.tp.topic_arc();
            let metadata = match &topic {
                Some((t, m)) if Arc::ptr_eq(t, name) => *m,
                _ => {
                    let m = cluster.topics.get(&**name);
                    topic = Some((Arc::clone(name), m));
                    if !used.iter().any(|t| Arc::ptr_eq(t, name)) {
                        used.push(Arc::clone(name));
                    }
                    m
                }
            };
            next = next.min(now + BUSY_TICK); // delivery timeouts are checked each pass
            let leader = metadata.and_then(|m| {
                m.partitions
                    .get(usize::try_from(queue.tp.partition()).ok()?)?
                    .leader()
            });
            let Some(leader) = leader else {
                self.core.metadata.request_update();
                continue;
            };
            if matches!(state, QueueState::Ready | QueueState::Lingered) {
                let entry = ready.entry(leader).or_default();
                entry.must_go |= state == QueueState::Ready;
                entry.queues.push(Arc::clone(&queue));
            }
            by_node.entry(leader).or_default().push(queue);
        }
        self.active = kept;
        self.active_spare = active;
        for batch in expired {
            let elapsed_ms = now.saturating_duration_since(batch.created).as_millis() as u64;
            self.fail_for_good(batch, Error::DeliveryTimeout { elapsed_ms }, false);
        }
        self.core.metadata.touch(used.iter().map(|t| &**t), now);
        let max_in_flight = self
            .core
            .config
            .max_in_flight_requests_per_connection
            .max(1);
        for &node in ready.keys() {
            // partitioner.availability.timeout.ms: whether this leader can take a request
            // (before the load statistics, which leave out the leaders stuck too long).
            let drainable = self.in_flight.on_node(node) < max_in_flight
                && self.nodes.is_ready(node)
                && self.nodes.throttled(node, now).is_none();
            self.core.sticky.node_ready(node, now, drainable);
        }
        self.update_load_stats(&cluster, &by_node, now);
        for (node, Ready { must_go, queues }) in ready {
            let in_flight = self.in_flight.on_node(node);
            if in_flight >= max_in_flight || (in_flight > 0 && !must_go) {
                continue; // the answer wakes the sender
            }
            if let Some(until) = self.nodes.throttled(node, now) {
                // KIP-219: the broker asked for nothing before `until`; wake up then.
                next = next.min(until);
                continue;
            }
            if !self.nodes.is_ready(node) {
                match cluster.brokers.get(&node) {
                    Some(b) => {
                        let address = b.address.clone();
                        if let Some(retry_at) = self.nodes.connect(node, &address, now) {
                            next = next.min(retry_at);
                        }
                    }
                    None => self.core.metadata.request_update(),
                }
                continue;
            }
            let batches = self.drain_node(node, &queues, now);
            if !batches.is_empty() {
                self.send_produce(node, batches, now);
                next = now; // more may be ready: look again at once
            }
        }
        next
    }

    /// Fails the queued batches of a partition whose topic was deleted, oldest first, in
    /// order with its batches still in flight (`Sender::finish` holds them behind those).
    fn fail_deleted(&mut self, queue: &PartitionQueue) {
        let batches = self.core.accumulator.take_all(queue);
        if batches.is_empty() {
            return;
        }
        let error = Cluster::deleted_error(queue.tp.topic());
        for batch in batches {
            // The partition is gone with its producer state: nothing to resequence.
            self.fail_for_good(batch, error.clone(), false);
        }
    }

    /// Takes the front batch of each of `queues` (one leader's partitions), round-robin, up
    /// to max.request.size (at least one batch), with the producer state each is sent with.
    /// Skips a partition with batches in flight to another node (its leader moved: the old
    /// requests are answered first), and, under idempotence, a front batch that must wait
    /// for its turn (see `Idempotence::drain`).
    fn drain_node(
        &mut self,
        node: i32,
        queues: &[Arc<PartitionQueue>],
        now: Instant,
    ) -> Vec<(ProducerBatch, ProducerState)> {
        let max = self.core.config.max_request_size;
        let n = queues.len();
        let start = self.drain_cursor % n.max(1);
        self.drain_cursor = self.drain_cursor.wrapping_add(1);
        let mut size = 0;
        let mut out: Vec<(ProducerBatch, ProducerState)> = Vec::new();
        for i in 0..n {
            let queue = &queues[(start + i) % n];
            if self.txn.as_ref().is_some_and(|t| !t.may_drain(&queue.tp)) {
                continue; // not added to the transaction yet
            }
            let in_flight = match self.in_flight.partition(&queue.tp) {
                Some((other, _)) if other != node => continue,
                Some((_, count)) => count,
                None => 0,
            };
            let room = max.saturating_sub(size);
            let idempotence = &mut self.idempotence;
            let taken =
                self.core
                    .accumulator
                    .take_front_with(
                        queue,
                        now,
                        room,
                        out.is_empty(),
                        |batch| match idempotence {
                            None => Some(ProducerState::NONE),
                            Some(idem) => {
                                let count = i32::try_from(batch.record_count()).unwrap_or(i32::MAX);
                                match idem.drain(
                                    &batch.tp,
                                    batch.position,
                                    sequenced(batch),
                                    count,
                                    in_flight,
                                ) {
                                    Drain::Send(state) => Some(state),
                                    Drain::Wait => None,
                                }
                            }
                        },
                    );
            if let Some((batch, state)) = taken {
                size += batch.size();
                out.push((batch, state));
            }
            if size >= max {
                break;
            }
        }
        out
    }

    /// Encodes `batches` (compressing on first send) and sends them as one request.
    fn send_produce(
        &mut self,
        node: i32,
        drained: Vec<(ProducerBatch, ProducerState)>,
        now: Instant,
    ) {
        let mut topics: Vec<TopicProduceData> = Vec::new();
        let mut batches = Vec::with_capacity(drained.len());
        for (mut batch, state) in drained {
            batch.attempts += 1;
            let records = batch.encode(state);
            // Later batches of the partition complete after this one (`Sender::finish`).
            self.completions.sent(&batch.tp, batch.position);
            let data = PartitionProduceData {
                index: batch.tp.partition(),
                records: Some(records),
            };
            match topics.iter_mut().find(|t| t.name == batch.tp.topic()) {
                Some(t) => t.partitions.push(data),
                None => topics.push(TopicProduceData {
                    name: batch.tp.topic().to_owned(),
                    partitions: vec![data],
                }),
            }
            batches.push(batch);
        }
        let (transactional_id, produce_cap) = match &self.txn {
            Some(t) => (Some(t.manager.transactional_id.clone()), t.produce_cap()),
            None => (None, None),
        };
        let config = &self.core.config;
        let request = ProduceRequest {
            transactional_id,
            acks: config.acks.as_i16(),
            timeout_ms: i32::try_from(config.request_timeout.as_millis()).unwrap_or(i32::MAX),
            topics,
        };
        let deadline = now + config.request_timeout;
        let link = self
            .nodes
            .ready(node, now)
            .expect("caller checked the node is ready");
        let connection = link.id();
        // The connection's writer thread writes the request; an acks=0 request stays in
        // flight until it is written (`Sender::produce_written`), a request with acks until
        // its response. Either way the in-flight limit bounds what is queued per broker.
        match link.submit(Outgoing::Produce(&request, produce_cap)) {
            Ok(correlation_id) => {
                self.count_request(node, &batches, now);
                let request = InFlight {
                    node,
                    batches,
                    sent_at: now,
                    deadline,
                };
                self.in_flight.insert((connection, correlation_id), request);
            }
            Err(error) => {
                self.connection_lost(connection, &error, now);
                for batch in batches.into_iter().rev() {
                    self.fail_or_retry(batch, error.clone(), now);
                }
            }
        }
    }

    /// The metrics of a Produce request that left for `node` with `batches`: per batch
    /// (not per record) on the producer-wide atomics, and one lock of the per-topic and
    /// per-node figures for the whole request.
    fn count_request(&mut self, node: i32, batches: &[ProducerBatch], now: Instant) {
        let m = &self.core.metrics;
        let mut records = 0u64;
        let mut bytes = 0u64;
        let mut detail = m.detail.lock();
        for batch in batches {
            let (count, size) = (u64::from(batch.record_count()), batch.size() as u64);
            records += count;
            bytes += size;
            m.batch_size.record(size);
            let queued = now.saturating_duration_since(batch.created).as_micros();
            m.queue_time_us
                .record(queued.min(u128::from(u64::MAX)) as u64);
            if batch.max_record_size() > 0 {
                m.record_size.record(batch.max_record_size() as u64);
            }
            let topic = detail.topic(batch.tp.topic_arc());
            topic.records_sent += count;
            topic.bytes_sent += size;
            if let Some(ratio) = batch.compression_ratio() {
                m.compression_ppm.record((ratio * 1e6) as u64);
                topic.compression_sum += ratio;
                topic.compression_count += 1;
            }
        }
        let n = detail.node(node);
        n.requests += 1;
        n.bytes_sent += bytes;
        drop(detail);
        m.records_per_request.record(records);
        Metrics::add(&m.records_drained, records);
        Metrics::add(&m.bytes_drained, bytes);
        Metrics::add(&m.records_in_flight, records);
        Metrics::add(&m.requests, 1);
        Metrics::add(&m.in_flight_requests, 1);
    }

    fn succeed(&mut self, batch: ProducerBatch, outcome: BatchOutcome) {
        let m = &self.core.metrics;
        Metrics::add(&m.records_sent, u64::from(batch.record_count()));
        Metrics::add(&m.bytes_sent, batch.size() as u64);
        Metrics::add(&m.batches_sent, 1);
        self.finish(batch, Ok(outcome));
    }

    /// An acks=0 request was written to the socket: all we will ever know of it, so its
    /// batches succeed, with unknown offsets (as Java reports them: -1).
    pub(super) fn produce_written(&mut self, request: InFlight, now: Instant) {
        self.request_done(&request, now, false);
        let outcome = BatchOutcome {
            base_offset: -1,
            log_append_time: -1,
        };
        for batch in request.batches {
            if batch.is_expired() {
                self.settle_expired(batch, true);
            } else {
                self.succeed(batch, outcome);
            }
        }
    }

    /// Matches a Produce response to its batches and completes, retries or fails each.
    pub(super) fn produce_response(
        &mut self,
        request: InFlight,
        body: Result<ResponseBody, DecodeError>,
        now: Instant,
    ) {
        let answered = matches!(body, Ok(ResponseBody::Produce(_)));
        self.request_done(&request, now, answered);
        let response = match body {
            Ok(ResponseBody::Produce(r)) => {
                self.core
                    .metrics
                    .throttle_ms
                    .record(u64::try_from(r.throttle_time_ms).unwrap_or(0));
                r
            }
            other => {
                let reason = match other {
                    Err(e) => format!("undecodable produce response: {e}"),
                    Ok(b) => format!("unexpected response {b:?}"),
                };
                let error = Error::Network {
                    broker: format!("node {}", request.node),
                    reason,
                };
                self.unanswered(request.batches, &error, now);
                return;
            }
        };
        let mut entries = ResponseEntries::new(&response);
        for batch in request.batches {
            let Some(p) = entries.find(&batch) else {
                let error = Error::Broker {
                    code: ErrorCode::UnknownServerError,
                    message: Some(format!("the response has no entry for {}", batch.tp)),
                };
                self.fail_for_good(batch, error, false);
                continue;
            };
            let code = ErrorCode::from_code(p.error_code);
            let state = sequenced(&batch);
            let duplicate = code == ErrorCode::DuplicateSequenceNumber && state.is_some();
            if batch.is_expired() {
                self.settle_expired(batch, p.error_code == 0 || duplicate);
                continue;
            }
            if p.error_code == 0 || duplicate {
                if let (Some(idem), Some(state)) = (self.idempotence.as_mut(), state) {
                    idem.acked(&batch.tp, batch.position, state);
                }
                if duplicate {
                    log::debug!("{}: the broker already had this batch", batch.tp);
                    Metrics::add(&self.core.metrics.duplicate_batches, 1);
                }
                // Kafka answers a batch it already has (a retry whose earlier attempt was
                // written) with that batch's MaxTimestamp as the LogAppendTime, also on a
                // CreateTime topic, so every record would report the batch's latest
                // CreateTime (Java's would). On a LogAppendTime topic the stored maximum is
                // the broker's append time, so a retried batch answered with exactly its own
                // maximum CreateTime is such a duplicate: its records keep their CreateTimes.
                let log_append_time = if batch.attempts > 1
                    && Some(p.log_append_time_ms) == batch.sent_max_timestamp()
                {
                    -1
                } else {
                    p.log_append_time_ms
                };
                let outcome = BatchOutcome {
                    base_offset: p.base_offset,
                    log_append_time,
                };
                self.succeed(batch, outcome);
                continue;
            }
            let batch = if code == ErrorCode::MessageTooLarge {
                match self.split(batch, now) {
                    Some(unsplit) => unsplit,
                    None => continue,
                }
            } else if code == ErrorCode::InvalidRecord && !p.record_errors.is_empty() {
                match self.reject_records(batch, p, now) {
                    Some(unchanged) => unchanged,
                    None => continue,
                }
            } else {
                batch
            };
            if invalidates_metadata(code) {
                self.core.metadata.request_update();
                if let Some(leader) = p.current_leader {
                    // KIP-951: the broker named the new leader; use it for the retry now.
                    if self.core.metadata.apply_leader_hint(
                        batch.tp.topic(),
                        batch.tp.partition(),
                        leader,
                        &response.node_endpoints,
                    ) {
                        log::debug!("{}: leader hint {leader:?} applied", batch.tp);
                        Metrics::add(&self.core.metrics.leader_hints, 1);
                    }
                }
            }
            let message = p.error_message.clone().or_else(|| {
                p.record_errors
                    .first()
                    .and_then(|e| e.batch_index_error_message.clone())
            });
            let error = Error::Broker { code, message };
            if self.txn.is_some() {
                if let Some(fatal) = transactional_produce_error(code) {
                    match fatal {
                        Some(fatal) => {
                            self.go_fatal(fatal.clone());
                            self.fail(batch, fatal);
                        }
                        // The broker wrote none of it; the transaction must be aborted.
                        None => self.fail_for_good(batch, error, true),
                    }
                    continue;
                }
            }
            let verdict = match (self.idempotence.as_mut(), state) {
                (Some(idem), Some(state)) => idem.on_error(&batch.tp, batch.position, state, code),
                _ if code.is_retriable() => Verdict::Retry,
                _ => Verdict::Fail,
            };
            match verdict {
                Verdict::Retry => self.retry_or_fail(batch, error, true, now),
                Verdict::Fail => self.retry_or_fail(batch, error, false, now),
                Verdict::Fatal(fatal) => {
                    self.go_fatal(fatal.clone());
                    self.fail(batch, fatal);
                }
            }
        }
    }

    /// MESSAGE_TOO_LARGE: splits a batch of several records in two and queues the halves
    /// at its place, to be sent at once (as Java does). Returns the batch if it holds one
    /// record (or cannot be split): that one fails with the error.
    fn split(&mut self, batch: ProducerBatch, now: Instant) -> Option<ProducerBatch> {
        if batch.record_count() < 2 || self.core.fatal().is_some() {
            return Some(batch);
        }
        let (tp, position, state, count) = (
            batch.tp.clone(),
            batch.position,
            sequenced(&batch),
            batch.record_count(),
        );
        let halves = match self.core.accumulator.split(batch) {
            Ok(h) => h,
            Err(unsplit) => return Some(unsplit),
        };
        log::info!(
            "{tp}: a batch of {count} records was too large for the broker; split into {} + {}",
            halves[0].record_count(),
            halves[1].record_count()
        );
        Metrics::add(&self.core.metrics.batch_splits, 1);
        if let (Some(idem), Some(state)) = (self.idempotence.as_mut(), state) {
            let [a, b] = &halves;
            let count = |b: &ProducerBatch| i32::try_from(b.record_count()).unwrap_or(i32::MAX);
            idem.split(
                &tp,
                position,
                state,
                [(a.position, count(a)), (b.position, count(b))],
            );
        }
        // The first half keeps the batch's place among the sent ones; the second joins it,
        // so later batches still complete after both.
        self.completions.sent(&tp, halves[1].position);
        for half in halves {
            self.core.accumulator.reenqueue(half, now);
        }
        None
    }

    /// INVALID_RECORD naming records: those fail, each with its own message, and the runs
    /// of other records between them (which the broker refused with them) are queued again
    /// at the batch's place, so a bad record fails only itself. Every group completes in
    /// record order: a rejected record is held until the records before it are answered.
    /// Returns the batch if it cannot be cut (then it fails whole, as in Java).
    fn reject_records(
        &mut self,
        batch: ProducerBatch,
        p: &PartitionProduceResponse,
        now: Instant,
    ) -> Option<ProducerBatch> {
        if self.core.fatal().is_some() {
            return Some(batch);
        }
        let mut rejected: Vec<u32> = p
            .record_errors
            .iter()
            .filter_map(|e| u32::try_from(e.batch_index).ok())
            .collect();
        rejected.sort_unstable();
        rejected.dedup();
        let (tp, position, state) = (batch.tp.clone(), batch.position, sequenced(&batch));
        let groups = match self.core.accumulator.take_out(batch, &rejected) {
            Ok(groups) => groups,
            Err(unchanged) => return Some(unchanged),
        };
        log::warn!(
            "{tp}: the broker rejected {} record(s) of a batch as invalid; resending the others",
            rejected.len(),
        );
        if let (Some(idem), Some(state)) = (self.idempotence.as_mut(), state) {
            idem.gave_up(&tp, position, state, true); // the broker wrote none of it
        }
        // The groups to resend hold back the later ones, as the batch did; the first
        // group takes the batch's own place.
        for (group, mark) in &groups {
            if mark.is_none() {
                self.completions.sent(&tp, group.position);
            }
        }
        for (group, mark) in groups {
            let Some(index) = mark else {
                self.core.accumulator.reenqueue(group, now);
                continue;
            };
            let message = p
                .record_errors
                .iter()
                .find(|e| u32::try_from(e.batch_index) == Ok(index))
                .and_then(|e| e.batch_index_error_message.clone())
                .or_else(|| p.error_message.clone());
            let error = Error::Broker {
                code: ErrorCode::InvalidRecord,
                message,
            };
            self.core.metrics.topic_errors(tp.topic_arc(), 1);
            // A rejected record fails its transaction (the others of its batch succeed).
            self.txn_batch_failed(&error);
            if group.position != position {
                // Not the batch's place: nothing outstanding to remove, only order to keep.
                self.completions.sent(&tp, group.position);
            }
            self.finish(group, Err(error));
        }
        None
    }

    /// Feeds adaptive partitioning: per topic, each led partition's leader queue length.
    fn update_load_stats(
        &mut self,
        cluster: &Cluster,
        by_node: &HashMap<i32, Vec<Arc<PartitionQueue>>>,
        now: Instant,
    ) {
        if !self.core.sticky.adaptive()
            || self
                .last_load_stats
                .is_some_and(|t| now.saturating_duration_since(t) < LOAD_STATS_INTERVAL)
        {
            return;
        }
        self.last_load_stats = Some(now);
        let node_load: HashMap<i32, usize> = by_node
            .iter()
            .map(|(node, queues)| {
                let batches = queues
                    .iter()
                    .map(|q| self.core.accumulator.queued_batches(q))
                    .sum();
                (*node, batches)
            })
            .collect();
        let topics: HashSet<&str> = by_node.values().flatten().map(|q| q.tp.topic()).collect();
        for topic in topics {
            let Some(partitions) = cluster.partitions(topic) else {
                continue;
            };
            let sizes: Vec<(i32, i32, usize)> = partitions
                .iter()
                .filter_map(|p| {
                    let leader = p.leader()?;
                    let queued = node_load.get(&leader).copied().unwrap_or(0);
                    Some((p.partition(), leader, queued))
                })
                .collect();
            self.core.sticky.update_load_stats_by_leader(topic, &sizes);
        }
    }
}

/// Finds each batch's entry in a Produce response. Brokers answer a topic's partitions in
/// the order of the request, so within each topic the entry after the last one found is
/// tried first, and a response in another order falls back to a search of the topic. A
/// request may carry thousands of partitions: a search per batch would make the cost of a
/// response grow with their square.
struct ResponseEntries<'a> {
    response: &'a ProduceResponse,
    /// The topic of the last entry found.
    topic: usize,
    /// Per topic, the partition entry after the last one found.
    next: Vec<usize>,
}

impl<'a> ResponseEntries<'a> {
    fn new(response: &'a ProduceResponse) -> Self {
        ResponseEntries {
            response,
            topic: 0,
            next: vec![0; response.responses.len()],
        }
    }

    fn find(&mut self, batch: &ProducerBatch) -> Option<&'a PartitionProduceResponse> {
        let topics = &self.response.responses;
        let name = batch.tp.topic();
        let t = match topics.get(self.topic) {
            Some(topic) if topic.name == name => self.topic,
            _ => topics.iter().position(|topic| topic.name == name)?,
        };
        let partitions = &topics[t].partitions;
        let index = batch.tp.partition();
        let p = match partitions.get(self.next[t]) {
            Some(entry) if entry.index == index => self.next[t],
            _ => partitions.iter().position(|entry| entry.index == index)?,
        };
        self.topic = t;
        self.next[t] = p + 1;
        Some(&partitions[p])
    }
}

/// How a transactional producer treats a Produce error that an idempotent one handles
/// differently (Java's `TransactionManager`): `Some(Some(error))` is fatal, `Some(None)`
/// fails the batch and makes the transaction abortable, `None` is the usual handling.
/// Within a transaction a stale epoch or a sequence gap cannot be repaired by resending:
/// the abort (with its epoch bump) is the repair.
fn transactional_produce_error(code: ErrorCode) -> Option<Option<Error>> {
    match code {
        ErrorCode::ProducerFenced => Some(Some(Error::Fenced(
            "a Produce request answered PRODUCER_FENCED: another producer with the same \
             transactional.id took over"
                .into(),
        ))),
        ErrorCode::InvalidProducerEpoch
        | ErrorCode::TransactionAbortable
        | ErrorCode::InvalidTxnState
        | ErrorCode::OutOfOrderSequenceNumber
        | ErrorCode::UnknownProducerId => Some(None),
        _ => None,
    }
}

/// Errors after which Java refreshes metadata (its `InvalidMetadataException` family).
fn invalidates_metadata(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::NotLeaderOrFollower
            | ErrorCode::UnknownTopicOrPartition
            | ErrorCode::LeaderNotAvailable
            | ErrorCode::KafkaStorageError
            | ErrorCode::FencedLeaderEpoch
            | ErrorCode::UnknownLeaderEpoch
    )
}

//! The sender thread: turns queued batches into Produce requests and responses into
//! completions.
//!
//! # Ownership
//!
//! The [`Sender`] is owned by its thread and owns everything it touches without locks: the
//! connections ([`nodes::Nodes`]), the in-flight table (batches travel from the accumulator
//! into an [`InFlight`] entry and from there to completion or back to the accumulator), and
//! the metadata and InitProducerId requests in flight, and the idempotence bookkeeping
//! ([`Idempotence`]). It shares only [`Core`] with the callers.
//!
//! # Order per partition
//!
//! `partition_in_flight` counts each partition's batches in flight and names the node they
//! went to. A partition whose leader moved sends nothing to the new leader until every
//! request on the old one is answered (or its connection is gone), so batches never pass
//! each other across a leader move. Responses on one connection arrive in request order, so
//! a partition's batches complete in send order; retries go back to their place in the
//! queue (by queue position) and, under idempotence, are resent one at a time, oldest first.
//!
//! # The loop
//!
//! [`Sender::run_once`] does one pass at a given instant and returns when it wants to run
//! again: it times out overdue requests, refreshes metadata if needed, expires batches past
//! delivery.timeout.ms, and drains ready batches into one Produce request per ready leader
//! (all its ready partitions, up to max.request.size, up to
//! max.in.flight.requests.per.connection requests). With idempotence it first obtains a
//! producer id (InitProducerId) and asks [`Idempotence`] for each batch's sequence. Between passes the thread sleeps on its
//! one inbox until that instant or until an event arrives: a wake-up from `send`, a
//! response or close from a connection's reader thread, a finished connect, or close.

mod nodes;
mod produce;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::accumulator::ProducerBatch;
use crate::core::{Core, SenderEvent};
use crate::delivery::{BatchOutcome, CallbackQueue};
use crate::error::{Error, ErrorCode};
use crate::idempotence::Idempotence;
use crate::metadata::Cluster;
use crate::net::{ConnectionConfig, ConnectionEvent, ConnectionEventKind};
use crate::protocol::init_producer_id::InitProducerIdRequest;
use crate::protocol::metadata::MetadataRequest;
use crate::protocol::ResponseBody;
use crate::record::TopicPartition;
use nodes::Nodes;

/// The longest the loop sleeps while batches are queued (delivery timeouts are checked on
/// each pass) and while idle.
const BUSY_TICK: Duration = Duration::from_millis(100);
const IDLE_TICK: Duration = Duration::from_secs(1);

/// A Produce request awaiting its response.
#[derive(Debug)]
struct InFlight {
    node: i32,
    batches: Vec<ProducerBatch>,
    sent_at: Instant,
    deadline: Instant,
}

/// A Metadata or InitProducerId request in flight.
#[derive(Debug, Clone, Copy)]
struct RequestInFlight {
    connection: u64,
    correlation_id: i32,
    deadline: Instant,
}

/// The sender thread's state. See the module docs.
#[derive(Debug)]
pub(crate) struct Sender {
    core: Arc<Core>,
    inbox: Receiver<SenderEvent>,
    callbacks: CallbackQueue,
    nodes: Nodes,
    /// (connection id, correlation id) → request.
    in_flight: HashMap<(u64, i32), InFlight>,
    in_flight_per_node: HashMap<i32, usize>,
    metadata_request: Option<RequestInFlight>,
    /// The InitProducerId request in flight (idempotence).
    producer_id_request: Option<RequestInFlight>,
    /// No InitProducerId request before this instant (backoff after a failure).
    next_producer_id_at: Instant,
    /// InitProducerId failures in a row (for the backoff).
    producer_id_failures: u32,
    /// Producer id, epoch and sequences; `None` without idempotence.
    idempotence: Option<Idempotence>,
    /// No metadata request before this instant (retry.backoff.ms between refreshes).
    next_metadata_at: Instant,
    last_metadata: Option<Instant>,
    /// Round-robin position over metadata candidates.
    metadata_cursor: usize,
    /// Round-robin start over a node's partitions, so no partition starves in full requests.
    drain_cursor: usize,
    /// Partition → (node, batches in flight there). See "Order per partition".
    partition_in_flight: HashMap<TopicPartition, (i32, usize)>,
    /// Partition → queue positions of batches sent and not completed (in flight, or queued
    /// again for a retry). See [`Sender::finish`].
    outstanding: HashMap<TopicPartition, BTreeSet<u64>>,
    /// Partition → completions waiting for older batches of the partition, by position.
    #[allow(clippy::type_complexity)]
    held: HashMap<TopicPartition, BTreeMap<u64, (ProducerBatch, Result<BatchOutcome, Error>)>>,
    /// Metadata refreshes in a row that left a wanted topic missing or leaderless; the
    /// backoff between refreshes doubles with each, up to retry.backoff.max.ms.
    metadata_misses: u32,
    last_load_stats: Option<Instant>,
    closing: bool,
    force_closing: bool,
}

impl Sender {
    pub fn new(core: Arc<Core>, inbox: Receiver<SenderEvent>, callbacks: CallbackQueue) -> Self {
        let c = &core.config;
        let conn = ConnectionConfig {
            client_id: Some(c.client_id.clone()),
            setup_timeout: c.socket_connection_setup_timeout,
            send_buffer_bytes: c.send_buffer_bytes,
            receive_buffer_bytes: c.receive_buffer_bytes,
            write_timeout: Some(c.request_timeout),
            ..ConnectionConfig::default()
        };
        let nodes = Nodes::new(
            conn,
            c.reconnect_backoff,
            c.reconnect_backoff_max,
            core.events.clone(),
        );
        Sender {
            nodes,
            inbox,
            callbacks,
            in_flight: HashMap::new(),
            in_flight_per_node: HashMap::new(),
            metadata_request: None,
            producer_id_request: None,
            next_producer_id_at: Instant::now(),
            producer_id_failures: 0,
            idempotence: c.enable_idempotence.then(Idempotence::new),
            next_metadata_at: Instant::now(),
            last_metadata: None,
            metadata_cursor: 0,
            drain_cursor: 0,
            partition_in_flight: HashMap::new(),
            outstanding: HashMap::new(),
            held: HashMap::new(),
            metadata_misses: 0,
            last_load_stats: None,
            closing: false,
            force_closing: false,
            core,
        }
    }

    /// The thread body: passes and waits until close has sent (or failed) everything.
    pub fn run(mut self) {
        loop {
            let next = self.run_once(Instant::now());
            if self.finished() {
                break;
            }
            match self.inbox.recv_deadline(next) {
                Ok(event) => self.handle(event, Instant::now()),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            while let Ok(event) = self.inbox.try_recv() {
                self.handle(event, Instant::now());
            }
            if self.force_closing {
                break; // no further pass: nothing more may be sent
            }
        }
        self.shut_down();
    }

    /// Whether close has sent (or failed) everything. A `send` that passed its closed check
    /// before close began is counted in `appends_in_progress` until its record is queued, so
    /// it is drained too (see `Core::begin_append`).
    fn finished(&self) -> bool {
        self.force_closing
            || (self.closing
                && self.in_flight.is_empty()
                && !self.core.appends_in_progress()
                && self.core.accumulator.is_empty())
    }

    fn shut_down(&mut self) {
        let error = Error::Closed;
        let in_flight: Vec<InFlight> = self.in_flight.drain().map(|(_, f)| f).collect();
        for f in in_flight {
            for b in f.batches {
                self.fail(b, error.clone());
            }
        }
        // Nothing older can complete any more: release what waited for it, in order.
        self.outstanding.clear();
        let held: Vec<TopicPartition> = self.held.keys().cloned().collect();
        for tp in held {
            self.release_held(&tp);
        }
        self.core.accumulator.abort_all(&error, &self.callbacks);
        self.nodes.close_all();
        self.core.metadata.close();
    }

    /// One pass at `now`; returns when the next pass is due.
    pub fn run_once(&mut self, now: Instant) -> Instant {
        self.core.clear_wakeup();
        self.expire_requests(now);
        let in_flight_next = self.expire_in_flight(now);
        if let Some(fatal) = self.core.fatal() {
            // Nothing more is sent; what callers still queue fails at once.
            self.abort_queued(&fatal);
        }
        let metadata_next = self.refresh_metadata(now);
        let producer_id_next = self.init_producer_id(now);
        let produce_next = self.send_ready(now);
        metadata_next
            .min(producer_id_next)
            .min(produce_next)
            .min(in_flight_next)
    }

    fn handle(&mut self, event: SenderEvent, now: Instant) {
        match event {
            SenderEvent::Wakeup => {}
            SenderEvent::Connected { node, result } => {
                if let Ok(connection) = &result {
                    self.core.register_socket(connection.shutdown_handle());
                }
                self.nodes.connected(node, result, now)
            }
            SenderEvent::Connection(e) => self.connection_event(e, now),
            SenderEvent::Close => self.closing = true,
            SenderEvent::ForceClose => {
                self.closing = true;
                self.force_closing = true;
            }
        }
    }

    fn connection_event(&mut self, event: ConnectionEvent, now: Instant) {
        let connection = event.connection_id;
        match event.kind {
            ConnectionEventKind::Response {
                correlation_id,
                body,
                ..
            } => {
                let key = (connection, correlation_id);
                if self
                    .metadata_request
                    .is_some_and(|m| (m.connection, m.correlation_id) == key)
                {
                    self.metadata_request = None;
                    self.metadata_response(body, now);
                } else if self
                    .producer_id_request
                    .is_some_and(|m| (m.connection, m.correlation_id) == key)
                {
                    self.producer_id_request = None;
                    self.producer_id_response(body, now);
                } else if let Some(request) = self.in_flight.remove(&key) {
                    self.produce_response(request, body, now);
                } else {
                    log::debug!("dropping a response nobody awaits: {key:?}");
                }
            }
            ConnectionEventKind::Written { correlation_id } => {
                if let Some(request) = self.in_flight.remove(&(connection, correlation_id)) {
                    self.produce_written(request, now);
                }
            }
            ConnectionEventKind::Closed { error, .. } => {
                self.connection_lost(connection, &error, now)
            }
        }
    }

    /// A connection is gone: retry (or fail) what it had in flight, and refresh metadata.
    fn connection_lost(&mut self, connection: u64, error: &Error, now: Instant) {
        if self.nodes.node_of(connection).is_some() {
            log::info!("connection {connection} lost: {error}");
        }
        self.nodes.disconnected(connection, now);
        if self
            .metadata_request
            .is_some_and(|m| m.connection == connection)
        {
            self.metadata_request = None;
        }
        if self
            .producer_id_request
            .is_some_and(|m| m.connection == connection)
        {
            self.producer_id_request = None;
        }
        let lost: Vec<(u64, i32)> = self
            .in_flight
            .keys()
            .filter(|(c, _)| *c == connection)
            .copied()
            .collect();
        for key in lost {
            if let Some(request) = self.in_flight.remove(&key) {
                self.request_done(&request, now);
                self.unanswered(request.batches, error, now);
            }
        }
        self.core.metadata.request_update();
    }

    /// Batches of a request that got no usable answer: the broker may have written them
    /// (the idempotence bookkeeping is told so), and they are retried or failed, newest
    /// first so that retries go back to their queue in order.
    fn unanswered(&mut self, batches: Vec<ProducerBatch>, error: &Error, now: Instant) {
        for b in batches.into_iter().rev() {
            if let (Some(idem), Some(state)) = (self.idempotence.as_mut(), sequenced(&b)) {
                idem.fate_unknown(&b.tp, b.position, state);
            }
            self.fail_or_retry(b, error.clone(), now);
        }
    }

    /// Requests past request.timeout.ms close their connection, as in Java: the broker may
    /// be stuck, and the connection's order can no longer be trusted.
    fn expire_requests(&mut self, now: Instant) {
        let mut overdue: HashSet<u64> = self
            .in_flight
            .iter()
            .filter(|(_, f)| f.deadline <= now)
            .map(|((c, _), _)| *c)
            .collect();
        for m in [self.metadata_request, self.producer_id_request]
            .into_iter()
            .flatten()
            .filter(|m| m.deadline <= now)
        {
            overdue.insert(m.connection);
        }
        for connection in overdue {
            let timeout = self.core.config.request_timeout;
            let error = Error::Network {
                broker: format!("connection {connection}"),
                reason: format!("request timed out after {timeout:?}"),
            };
            self.connection_lost(connection, &error, now);
        }
    }

    /// delivery.timeout.ms bounds a record's time in flight too: a batch past it is
    /// answered with `DeliveryTimeout` now, while its request stays in flight (its response
    /// or connection loss later settles the sequence bookkeeping). Returns when the next
    /// in-flight batch expires.
    fn expire_in_flight(&mut self, now: Instant) -> Instant {
        let timeout = self.core.config.delivery_timeout;
        let mut next = now + IDLE_TICK;
        let mut expired = 0u64;
        for request in self.in_flight.values_mut() {
            for batch in request.batches.iter_mut().filter(|b| !b.is_expired()) {
                let due = batch.created + timeout;
                if due > now {
                    next = next.min(due);
                    continue;
                }
                let elapsed_ms = now.saturating_duration_since(batch.created).as_millis() as u64;
                log::debug!("{}: expired in flight after {elapsed_ms} ms", batch.tp);
                expired += u64::from(batch.record_count());
                if let Some(set) = self.outstanding.get_mut(&batch.tp) {
                    set.remove(&batch.position);
                }
                self.core.accumulator.expire_in_flight(
                    batch,
                    Error::DeliveryTimeout { elapsed_ms },
                    &self.callbacks,
                );
            }
        }
        crate::metrics::Metrics::add(&self.core.metrics.record_errors, expired);
        next
    }

    /// The response (or loss) of a batch already answered by [`Sender::expire_in_flight`]:
    /// only the idempotence bookkeeping learns from it.
    fn settle_expired(&mut self, batch: ProducerBatch, acked: bool) {
        if let (Some(idem), Some(state)) = (self.idempotence.as_mut(), sequenced(&batch)) {
            if acked {
                idem.acked(&batch.tp, batch.position, state);
            } else {
                idem.gave_up(&batch.tp, batch.position, state, false);
            }
        }
    }

    /// Sends a Metadata request when one is needed and allowed; returns when to look again.
    fn refresh_metadata(&mut self, now: Instant) -> Instant {
        if let Some(m) = self.metadata_request {
            return m.deadline;
        }
        let md = &self.core.metadata;
        let wanted = md.wanted_topics();
        let max_age = self.core.config.metadata_max_age;
        let refresh_due = self.last_metadata.map_or(now, |t| t + max_age);
        if wanted.is_empty() || (!md.update_requested() && now < refresh_due) {
            return refresh_due.max(now + IDLE_TICK);
        }
        if now < self.next_metadata_at {
            return self.next_metadata_at;
        }
        let cluster = md.cluster();
        let ready = self.nodes.ready_ids();
        let target = ready
            .iter()
            .copied()
            .min_by_key(|n| self.in_flight_per_node.get(n).copied().unwrap_or(0));
        let Some(node) = target else {
            return self.connect_for_metadata(&cluster, now);
        };
        let request = MetadataRequest {
            topics: Some(wanted),
            allow_auto_topic_creation: true,
            include_topic_authorized_operations: false,
        };
        let conn = self.nodes.ready(node).expect("node is ready");
        let connection = conn.id();
        match conn.send(&request) {
            Ok(Some(correlation_id)) => {
                let deadline = now + self.core.config.request_timeout;
                self.metadata_request = Some(RequestInFlight {
                    connection,
                    correlation_id,
                    deadline,
                });
                deadline
            }
            Ok(None) => now,
            Err(e) => {
                self.connection_lost(connection, &e, now);
                now
            }
        }
    }

    /// No connection is ready: connect to a known broker or a bootstrap server, in turn.
    fn connect_for_metadata(&mut self, cluster: &Cluster, now: Instant) -> Instant {
        let mut candidates: Vec<(i32, String)> = cluster
            .brokers
            .values()
            .map(|b| (b.node_id, b.address.clone()))
            .collect();
        candidates.sort();
        for (i, address) in self.core.config.bootstrap_servers.iter().enumerate() {
            candidates.push((-(i as i32) - 1, address.clone()));
        }
        if candidates.iter().any(|(id, _)| self.nodes.is_active(*id)) {
            return now + BUSY_TICK; // a connect is under way; its event wakes us
        }
        let mut earliest = now + IDLE_TICK;
        for i in 0..candidates.len() {
            let (id, address) = &candidates[(self.metadata_cursor + i) % candidates.len()];
            match self.nodes.connect(*id, address, now) {
                None => {
                    self.metadata_cursor += i + 1;
                    return now + BUSY_TICK;
                }
                Some(retry_at) => earliest = earliest.min(retry_at),
            }
        }
        earliest
    }

    fn metadata_response(
        &mut self,
        body: Result<ResponseBody, crate::protocol::DecodeError>,
        now: Instant,
    ) {
        self.last_metadata = Some(now);
        match body {
            Ok(ResponseBody::Metadata(md)) if !md.brokers.is_empty() => {
                self.core.metadata.install(Cluster::from_response(&md));
            }
            Ok(other) => log::warn!("unusable metadata response: {other:?}"),
            Err(e) => log::warn!("metadata response did not decode: {e}"),
        }
        // While a wanted topic stays missing or leaderless, refresh with exponential
        // backoff (retry.backoff.ms doubling up to retry.backoff.max.ms), as Java does.
        let config = &self.core.config;
        self.metadata_misses = if self.core.metadata.update_requested() {
            self.metadata_misses.saturating_add(1)
        } else {
            0
        };
        let backoff = config
            .retry_backoff
            .saturating_mul(1 << self.metadata_misses.saturating_sub(1).min(16))
            .min(config.retry_backoff_max.max(config.retry_backoff));
        self.next_metadata_at = now + nodes::jitter(backoff);
    }

    /// Retries a batch after a retriable error while retries and delivery time remain;
    /// otherwise completes it with the error.
    fn fail_or_retry(&mut self, batch: ProducerBatch, error: Error, now: Instant) {
        let retriable = error.is_retriable();
        self.retry_or_fail(batch, error, retriable, now);
    }

    /// Retries `batch` if `retriable` (the error's own class, or the idempotence rules)
    /// while retries and delivery time remain; otherwise completes it with `error`.
    fn retry_or_fail(&mut self, batch: ProducerBatch, error: Error, retriable: bool, now: Instant) {
        if batch.is_expired() {
            return self.settle_expired(batch, false);
        }
        let config = &self.core.config;
        let within_delivery =
            now.saturating_duration_since(batch.created) < config.delivery_timeout;
        let retries_left = i64::from(batch.attempts) <= i64::from(config.retries);
        if retriable && retries_left && within_delivery && self.force_closing {
            // close_timeout gave up: a batch that would have been retried is undelivered and
            // fails with Closed, as close_timeout documents (the retriable error is often
            // just the socket that the forced close shut down).
            self.fail_for_good(batch, Error::Closed, false);
        } else if let Some(fatal) = self.core.fatal() {
            self.fail_for_good(batch, fatal, false);
        } else if retriable && retries_left && within_delivery {
            let exp = config
                .retry_backoff
                .saturating_mul(1 << batch.attempts.saturating_sub(1).min(16))
                .min(config.retry_backoff_max.max(config.retry_backoff));
            log::debug!(
                "retrying {} after {error} (attempt {})",
                batch.tp,
                batch.attempts
            );
            crate::metrics::Metrics::add(&self.core.metrics.batch_retries, 1);
            self.core
                .accumulator
                .reenqueue(batch, now + nodes::jitter(exp));
        } else if retriable && retries_left && !within_delivery {
            // Out of delivery time, not out of retries: report the timeout, as Java does
            // ("Expiring N record(s) … since batch creation"), naming the last error in the log.
            log::debug!("{} expired after {error}", batch.tp);
            let elapsed_ms = now.saturating_duration_since(batch.created).as_millis() as u64;
            self.fail_for_good(batch, Error::DeliveryTimeout { elapsed_ms }, false);
        } else {
            // A broker's non-retriable answer means it wrote none of the batch.
            let not_written = !retriable && matches!(error, Error::Broker { .. });
            self.fail_for_good(batch, error, not_written);
        }
    }

    /// Fails `batch` for good, telling the idempotence bookkeeping whether the broker
    /// surely holds none of it (`not_written`).
    fn fail_for_good(&mut self, batch: ProducerBatch, error: Error, not_written: bool) {
        if let (Some(idem), Some(state)) = (self.idempotence.as_mut(), sequenced(&batch)) {
            idem.gave_up(&batch.tp, batch.position, state, not_written);
        }
        self.fail(batch, error);
    }

    /// The producer cannot go on: record the error (later sends report it) and fail
    /// everything queued.
    fn go_fatal(&mut self, error: Error) {
        log::error!("the producer failed: {error}");
        if let Some(idem) = self.idempotence.as_mut() {
            idem.set_fatal(error.clone());
        }
        self.core.set_fatal(error.clone());
        self.abort_queued(&error);
    }

    /// Fails every queued batch with `error`. Retries among them were sent before, so the
    /// sent-but-incomplete positions are rebuilt from what is still in flight, and the
    /// completions held behind the aborted ones are released.
    fn abort_queued(&mut self, error: &Error) {
        if self.core.accumulator.is_empty() {
            return;
        }
        self.core.accumulator.abort_all(error, &self.callbacks);
        self.outstanding.clear();
        for request in self.in_flight.values() {
            for b in request.batches.iter().filter(|b| !b.is_expired()) {
                self.outstanding
                    .entry(b.tp.clone())
                    .or_default()
                    .insert(b.position);
            }
        }
        let held: Vec<TopicPartition> = self.held.keys().cloned().collect();
        for tp in held {
            self.release_held(&tp);
        }
    }

    /// Sends InitProducerId when idempotence needs a producer id or a new epoch; returns
    /// when to look again.
    fn init_producer_id(&mut self, now: Instant) -> Instant {
        let far = now + IDLE_TICK;
        let Some(idem) = self.idempotence.as_ref() else {
            return far;
        };
        if !idem.needs_producer_id() {
            return far;
        }
        if let Some(r) = self.producer_id_request {
            return r.deadline;
        }
        if now < self.next_producer_id_at {
            return self.next_producer_id_at;
        }
        let (producer_id, producer_epoch) = idem.init_request_ids();
        let target = self
            .nodes
            .ready_ids()
            .into_iter()
            .min_by_key(|n| (self.in_flight_per_node.get(n).copied().unwrap_or(0), *n));
        let Some(node) = target else {
            let cluster = self.core.metadata.cluster();
            return self.connect_for_metadata(&cluster, now);
        };
        let request = InitProducerIdRequest {
            producer_id,
            producer_epoch,
            ..InitProducerIdRequest::default()
        };
        let conn = self.nodes.ready(node).expect("node is ready");
        let connection = conn.id();
        match conn.send(&request) {
            Ok(Some(correlation_id)) => {
                let deadline = now + self.core.config.request_timeout;
                self.producer_id_request = Some(RequestInFlight {
                    connection,
                    correlation_id,
                    deadline,
                });
                deadline
            }
            Ok(None) => now,
            Err(Error::UnsupportedVersion { .. }) => {
                self.go_fatal(Error::Fatal(
                    "enable.idempotence needs InitProducerId, which the broker does not \
                     support; set enable.idempotence=false"
                        .into(),
                ));
                far
            }
            Err(e) => {
                self.connection_lost(connection, &e, now);
                now
            }
        }
    }

    fn producer_id_response(
        &mut self,
        body: Result<ResponseBody, crate::protocol::DecodeError>,
        now: Instant,
    ) {
        let Some(idem) = self.idempotence.as_mut() else {
            return;
        };
        let failure = match body {
            Ok(ResponseBody::InitProducerId(r)) if r.error_code == 0 => {
                idem.producer_id_received(r.producer_id, r.producer_epoch);
                self.producer_id_failures = 0;
                return;
            }
            Ok(ResponseBody::InitProducerId(r)) => {
                let code = ErrorCode::from_code(r.error_code);
                log::warn!("InitProducerId failed: {}", code.name());
                idem.producer_id_failed(code, None)
            }
            Ok(other) => {
                log::warn!("unexpected answer to InitProducerId: {other:?}");
                None
            }
            Err(e) => {
                log::warn!("InitProducerId response did not decode: {e}");
                None
            }
        };
        if let Some(fatal) = failure {
            self.go_fatal(fatal);
            return;
        }
        let config = &self.core.config;
        self.producer_id_failures = self.producer_id_failures.saturating_add(1);
        let backoff = config
            .retry_backoff
            .saturating_mul(1 << self.producer_id_failures.saturating_sub(1).min(16))
            .min(config.retry_backoff_max.max(config.retry_backoff));
        self.next_producer_id_at = now + nodes::jitter(backoff);
    }

    fn fail(&mut self, batch: ProducerBatch, error: Error) {
        if batch.is_expired() {
            return; // answered already
        }
        crate::metrics::Metrics::add(
            &self.core.metrics.record_errors,
            u64::from(batch.record_count()),
        );
        self.finish(batch, Err(error));
    }

    /// Completes `batch` in order: while an older batch of its partition that was sent is
    /// not complete yet (a retry waiting its turn), the completion is held, and released
    /// right after the older ones complete. So futures and callbacks of one partition
    /// complete in send order even when a later request succeeds before an earlier one's
    /// retry.
    fn finish(&mut self, batch: ProducerBatch, outcome: Result<BatchOutcome, Error>) {
        let tp = batch.tp.clone();
        let position = batch.position;
        let outstanding = self.outstanding.get_mut(&tp);
        let older_pending = match outstanding {
            Some(set) => {
                set.remove(&position);
                set.first().is_some_and(|&first| first < position)
            }
            None => false,
        };
        if older_pending {
            self.held
                .entry(tp)
                .or_default()
                .insert(position, (batch, outcome));
            return;
        }
        self.core
            .accumulator
            .complete(batch, outcome, &self.callbacks);
        self.release_held(&tp);
    }

    /// Completes the held batches of `tp` that no older sent batch holds back any more.
    fn release_held(&mut self, tp: &TopicPartition) {
        let limit = match self.outstanding.get(tp) {
            Some(set) if !set.is_empty() => set.first().copied().unwrap_or(u64::MAX),
            _ => {
                self.outstanding.remove(tp);
                u64::MAX
            }
        };
        let Some(held) = self.held.get_mut(tp) else {
            return;
        };
        while let Some(entry) = held.first_entry().filter(|e| *e.key() < limit) {
            let (batch, outcome) = entry.remove();
            self.core
                .accumulator
                .complete(batch, outcome, &self.callbacks);
        }
        if held.is_empty() {
            self.held.remove(tp);
        }
    }

    fn request_done(&mut self, request: &InFlight, now: Instant) {
        if let Some(n) = self.in_flight_per_node.get_mut(&request.node) {
            *n = n.saturating_sub(1);
        }
        self.core
            .metrics
            .in_flight_requests
            .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        self.core
            .metrics
            .request_latency(now.saturating_duration_since(request.sent_at));
        for b in &request.batches {
            if let Some(entry) = self.partition_in_flight.get_mut(&b.tp) {
                entry.1 = entry.1.saturating_sub(1);
                if entry.1 == 0 {
                    self.partition_in_flight.remove(&b.tp);
                }
            }
        }
    }
}

/// The producer state of a batch that carries a real sequence (idempotence), if any.
fn sequenced(batch: &ProducerBatch) -> Option<crate::record_batch::ProducerState> {
    batch
        .producer
        .filter(|s| s.producer_id >= 0 && s.base_sequence >= 0)
}

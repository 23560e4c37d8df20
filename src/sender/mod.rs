//! The sender thread: turns queued batches into Produce requests and responses into
//! completions.
//!
//! # Ownership
//!
//! The [`Sender`] is owned by its thread and owns everything it touches without locks: the
//! connections ([`nodes::Nodes`]), the in-flight table (batches travel from the accumulator
//! into an [`InFlight`] entry and from there to completion or back to the accumulator), and
//! the metadata request in flight. It shares only [`Core`] with the callers.
//!
//! # The loop
//!
//! [`Sender::run_once`] does one pass at a given instant and returns when it wants to run
//! again: it times out overdue requests, refreshes metadata if needed, expires batches past
//! delivery.timeout.ms, and drains ready batches into one Produce request per ready leader
//! (all its ready partitions, up to max.request.size, up to
//! max.in.flight.requests.per.connection requests). Between passes the thread sleeps on its
//! one inbox until that instant or until an event arrives: a wake-up from `send`, a
//! response or close from a connection's reader thread, a finished connect, or close.

mod nodes;
mod produce;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::accumulator::ProducerBatch;
use crate::core::{Core, SenderEvent};
use crate::delivery::CallbackQueue;
use crate::error::Error;
use crate::metadata::Cluster;
use crate::net::{ConnectionConfig, ConnectionEvent, ConnectionEventKind};
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

/// The Metadata request in flight.
#[derive(Debug, Clone, Copy)]
struct MetadataInFlight {
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
    metadata_request: Option<MetadataInFlight>,
    /// No metadata request before this instant (retry.backoff.ms between refreshes).
    next_metadata_at: Instant,
    last_metadata: Option<Instant>,
    /// Round-robin position over metadata candidates.
    metadata_cursor: usize,
    /// Round-robin start over a node's partitions, so no partition starves in full requests.
    drain_cursor: usize,
    /// Partitions with a batch in flight, when order must be kept by sending one batch per
    /// partition at a time (see `Sender::mutes_partitions`).
    muted: HashSet<TopicPartition>,
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
            next_metadata_at: Instant::now(),
            last_metadata: None,
            metadata_cursor: 0,
            drain_cursor: 0,
            muted: HashSet::new(),
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
        self.core.accumulator.abort_all(&error, &self.callbacks);
        self.nodes.close_all();
        self.core.metadata.close();
    }

    /// One pass at `now`; returns when the next pass is due.
    pub fn run_once(&mut self, now: Instant) -> Instant {
        self.core.clear_wakeup();
        self.expire_requests(now);
        let metadata_next = self.refresh_metadata(now);
        let produce_next = self.send_ready(now);
        metadata_next.min(produce_next)
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
                } else if let Some(request) = self.in_flight.remove(&key) {
                    self.produce_response(request, body, now);
                } else {
                    log::debug!("dropping a response nobody awaits: {key:?}");
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
        let lost: Vec<(u64, i32)> = self
            .in_flight
            .keys()
            .filter(|(c, _)| *c == connection)
            .copied()
            .collect();
        for key in lost {
            if let Some(request) = self.in_flight.remove(&key) {
                self.request_done(&request, now);
                for b in request.batches.into_iter().rev() {
                    self.fail_or_retry(b, error.clone(), now);
                }
            }
        }
        self.core.metadata.request_update();
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
        if let Some(m) = self.metadata_request.filter(|m| m.deadline <= now) {
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
                self.metadata_request = Some(MetadataInFlight {
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

    /// Whether a partition may have only one batch in flight. With
    /// max.in.flight.requests.per.connection = 1 that is Java's ordering guarantee; with
    /// idempotence enabled it stands in for sequence numbers (not sent yet), so that a
    /// retried batch can never land behind a later one.
    pub(super) fn mutes_partitions(&self) -> bool {
        let c = &self.core.config;
        c.enable_idempotence || c.max_in_flight_requests_per_connection == 1
    }
    /// Retries a batch after a retriable error while retries and delivery time remain;
    /// otherwise completes it with the error.
    fn fail_or_retry(&mut self, batch: ProducerBatch, error: Error, now: Instant) {
        let config = &self.core.config;
        let within_delivery =
            now.saturating_duration_since(batch.created) < config.delivery_timeout;
        let retries_left = i64::from(batch.attempts) <= i64::from(config.retries);
        if error.is_retriable() && retries_left && within_delivery && self.force_closing {
            // close_timeout gave up: a batch that would have been retried is undelivered and
            // fails with Closed, as close_timeout documents (the retriable error is often
            // just the socket that the forced close shut down).
            self.fail(batch, Error::Closed);
        } else if error.is_retriable() && retries_left && within_delivery {
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
        } else if error.is_retriable() && retries_left && !within_delivery {
            // Out of delivery time, not out of retries: report the timeout, as Java does
            // ("Expiring N record(s) … since batch creation"), naming the last error in the log.
            log::debug!("{} expired after {error}", batch.tp);
            let elapsed_ms = now.saturating_duration_since(batch.created).as_millis() as u64;
            self.fail(batch, Error::DeliveryTimeout { elapsed_ms });
        } else {
            self.fail(batch, error);
        }
    }

    fn fail(&self, batch: ProducerBatch, error: Error) {
        crate::metrics::Metrics::add(
            &self.core.metrics.record_errors,
            u64::from(batch.record_count()),
        );
        self.core
            .accumulator
            .complete(batch, Err(error), &self.callbacks);
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
            self.muted.remove(&b.tp);
        }
    }
}

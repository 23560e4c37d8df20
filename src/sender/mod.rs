//! The sender thread: turns queued batches into Produce requests and responses into
//! completions.
//!
//! # Ownership
//!
//! The [`Sender`] is owned by its thread and owns everything it touches without locks,
//! grouped by concern: the links to the brokers ([`nodes::Nodes`], opened through a
//! [`Connector`]); the Produce requests in flight ([`in_flight::InFlightTable`]: batches
//! travel from the accumulator into a request and from there to completion or back to the
//! accumulator); ordered completion ([`order::Completions`]); the metadata refresh and the
//! InitProducerId requests; and the idempotence bookkeeping ([`Idempotence`]). It shares
//! only [`Core`] with the callers. It reaches the network only through [`Link`] and
//! [`Connector`] (see [`link`]), so unit tests step it with scripted brokers.
//!
//! # Order per partition
//!
//! The in-flight table counts each partition's batches in flight and names the node they
//! went to. A partition whose leader moved sends nothing to the new leader until every
//! request on the old one is answered (or its connection is gone), so batches never pass
//! each other across a leader move. Retries go back to their place in the queue (by queue
//! position) and, under idempotence, are resent one at a time, oldest first. Every
//! completion, on every path (answers, retries exhausted, expiry, rejected records,
//! fatal errors, close), goes through [`order::Completions`], which hands completions out
//! in queue-position order per partition.
//!
//! # The loop
//!
//! [`Sender::run_once`] does one pass at a given instant and returns when it wants to run
//! again: it times out overdue requests, expires batches past delivery.timeout.ms,
//! refreshes metadata if needed, drains ready batches into one Produce request per ready
//! leader (all its ready partitions, up to max.request.size, up to
//! max.in.flight.requests.per.connection requests), and closes links idle for
//! connections.max.idle.ms. With idempotence it first obtains a producer id
//! (InitProducerId) and asks [`Idempotence`] for each batch's sequence. Between passes the
//! thread sleeps on its one inbox until that instant or until an event arrives: a wake-up
//! from `send`, a response or close from a link, a finished connect, or close. Time is a
//! parameter of every step ([`Sender::run_once`], [`Sender::handle`]).

mod in_flight;
mod link;
mod nodes;
mod order;
mod produce;
#[cfg(test)]
mod tests;
mod txn;

pub(crate) use link::{Connector, Link};

use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::channel::{Receiver, RecvTimeoutError};

use crate::accumulator::ProducerBatch;
use crate::core::{Core, SenderEvent};
use crate::delivery::CallbackQueue;
use crate::error::{Error, ErrorCode};
use crate::idempotence::Idempotence;
use crate::metadata::Cluster;
use crate::net::{ConnectionConfig, ConnectionEvent, ConnectionEventKind, ConnectionSecurity};
use crate::protocol::init_producer_id::InitProducerIdRequest;
use crate::protocol::metadata::MetadataRequest;
use crate::protocol::ResponseBody;
use in_flight::{InFlight, InFlightTable};
use link::{Outgoing, ThreadConnector};
use nodes::{backoff, Nodes};
use order::{Completions, Outcome};

/// The longest the loop sleeps while batches are queued (delivery timeouts are checked on
/// each pass).
const BUSY_TICK: Duration = Duration::from_millis(100);
/// The longest the loop sleeps when nothing is due: an idle producer wakes only at its real
/// deadlines (metadata.max.age.ms, connections.max.idle.ms, a reconnect backoff, ...) or
/// on an event, since everything that gives the sender work (a send, flush, close, a
/// transaction call, a caller waiting for metadata, a response) wakes it. This bound is
/// only a safety net.
const IDLE_TICK: Duration = Duration::from_secs(3600);

/// A Metadata or InitProducerId request in flight.
#[derive(Debug, Clone, Copy)]
struct RequestInFlight {
    connection: u64,
    correlation_id: i32,
    deadline: Instant,
}

/// Metadata refreshes: the request in flight and when the next one may go.
#[derive(Debug)]
struct MetadataRefresh {
    request: Option<RequestInFlight>,
    /// No request before this instant (backoff between refreshes).
    next_at: Instant,
    /// When the last answer arrived (metadata.max.age.ms counts from it).
    last: Option<Instant>,
    /// Round-robin position over the brokers to connect to when none is connected.
    cursor: usize,
    /// Refreshes in a row that left a wanted topic missing or leaderless; the backoff
    /// between refreshes doubles with each, up to retry.backoff.max.ms.
    misses: u32,
}

/// InitProducerId requests (idempotence).
#[derive(Debug)]
struct ProducerIdRequests {
    request: Option<RequestInFlight>,
    /// No request before this instant (backoff after a failure).
    next_at: Instant,
    /// Failures in a row (for the backoff).
    failures: u32,
}

/// The sender thread's state. See the module docs.
#[derive(Debug)]
pub(crate) struct Sender {
    core: Arc<Core>,
    inbox: Receiver<SenderEvent>,
    callbacks: CallbackQueue,
    nodes: Nodes,
    in_flight: InFlightTable,
    /// Ordered completion: what was sent and not completed, and what waits for it.
    completions: Completions,
    metadata: MetadataRefresh,
    producer_id: ProducerIdRequests,
    /// Producer id, epoch and sequences; `None` without idempotence.
    idempotence: Option<Idempotence>,
    /// The coordinator requests of a transactional producer; `None` otherwise.
    txn: Option<txn::Transactions>,
    /// Round-robin start over a node's partitions, so no partition starves in full requests.
    drain_cursor: usize,
    /// The partition queues that may hold batches, in the order they were first listed
    /// (see the accumulator's "Active queues"); owned by this thread.
    active: Vec<Arc<crate::accumulator::PartitionQueue>>,
    /// An empty list kept for the next pass, so that passes do not allocate.
    active_spare: Vec<Arc<crate::accumulator::PartitionQueue>>,
    last_load_stats: Option<Instant>,
    /// Links reported closed before they were installed (see [`ClosedEarly`]).
    closed_before_connected: ClosedEarly,
    closing: bool,
    force_closing: bool,
}

/// Ids of links whose close the sender heard while it did not know them: a link's reader
/// starts before its connect thread reports it, so a broker that hangs up right after the
/// handshake can be reported closed before `Connected` arrives. That `Connected` then
/// counts as a failed connect. Links the sender dropped itself land here too, and are
/// never looked up again; the oldest ids are forgotten past a few dozen.
#[derive(Debug, Default)]
struct ClosedEarly(std::collections::VecDeque<(u64, Error)>);

impl ClosedEarly {
    const KEPT: usize = 32;

    fn remember(&mut self, link: u64, error: &Error) {
        if self.0.len() == Self::KEPT {
            self.0.pop_front();
        }
        self.0.push_back((link, error.clone()));
    }

    fn take(&mut self, link: u64) -> Option<Error> {
        let at = self.0.iter().position(|(id, _)| *id == link)?;
        self.0.remove(at).map(|(_, e)| e)
    }
}

impl Sender {
    /// The sender of a producer, connecting to brokers on short-lived threads.
    pub fn new(
        core: Arc<Core>,
        inbox: Receiver<SenderEvent>,
        callbacks: CallbackQueue,
        security: ConnectionSecurity,
    ) -> Self {
        let c = &core.config;
        let conn = ConnectionConfig {
            client_id: Some(c.client_id.clone()),
            setup_timeout: c.socket_connection_setup_timeout,
            request_timeout: c.request_timeout,
            security,
            send_buffer_bytes: c.send_buffer_bytes,
            receive_buffer_bytes: c.receive_buffer_bytes,
            write_timeout: Some(c.request_timeout),
            ..ConnectionConfig::default()
        };
        let connector = Box::new(ThreadConnector::new(conn, core.events.clone()));
        Sender::with_connector(core, inbox, callbacks, connector)
    }

    /// A sender whose links come from `connector` (the unit tests' scripted brokers).
    pub fn with_connector(
        core: Arc<Core>,
        inbox: Receiver<SenderEvent>,
        callbacks: CallbackQueue,
        connector: Box<dyn Connector>,
    ) -> Self {
        let c = &core.config;
        let now = Instant::now();
        Sender {
            nodes: Nodes::new(connector, c.reconnect_backoff, c.reconnect_backoff_max),
            inbox,
            callbacks,
            in_flight: InFlightTable::default(),
            completions: Completions::default(),
            metadata: MetadataRefresh {
                request: None,
                next_at: now,
                last: None,
                cursor: 0,
                misses: 0,
            },
            producer_id: ProducerIdRequests {
                request: None,
                next_at: now,
                failures: 0,
            },
            idempotence: match (&core.transactions, c.enable_idempotence) {
                (Some(_), _) => Some(Idempotence::transactional()),
                (None, true) => Some(Idempotence::new()),
                (None, false) => None,
            },
            txn: core
                .transactions
                .clone()
                .map(|m| txn::Transactions::new(m, now)),
            drain_cursor: 0,
            active: Vec::new(),
            active_spare: Vec::new(),
            last_load_stats: None,
            closed_before_connected: ClosedEarly::default(),
            closing: false,
            force_closing: false,
            core,
        }
    }

    /// The thread body: passes and waits until close has sent (or failed) everything.
    pub fn run(mut self) {
        // The statistics hook runs on a thread of its own (user code never runs here);
        // `shut_down` stops it.
        crate::statistics::start(&self.core);
        loop {
            let next = self.run_once(Instant::now());
            if self.finished() {
                break;
            }
            let next = self.core.sender_sleeps_until(next);
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
                && self.txn.as_ref().is_none_or(|t| !t.manager.lock().busy())
                && !self.core.appends_in_progress()
                && self.core.accumulator.is_empty())
    }

    /// The sender exits: everything still in flight or queued fails with `Closed`, oldest
    /// first per partition, in order with the completions held behind them.
    fn shut_down(&mut self) {
        // No append may slip in after the queues are taken (appends check this under the
        // partition lock), so this thread fails every record, in order.
        self.core.accumulator.shut();
        let now = Instant::now();
        let mut left: Vec<ProducerBatch> = Vec::new();
        for request in self.in_flight.take_all() {
            self.request_done(&request, now, false); // the in-flight gauge goes back to zero
            left.extend(request.batches.into_iter().filter(|b| !b.is_expired()));
        }
        for queue in self.core.accumulator.queues() {
            left.extend(self.core.accumulator.take_all(&queue));
        }
        left.sort_by(|a, b| (&a.tp, a.position).cmp(&(&b.tp, b.position)));
        for batch in left {
            self.fail(batch, Error::Closed);
        }
        // Nothing older can complete any more.
        let rest = self.completions.release_all();
        self.complete_all(rest);
        self.nodes.close_all();
        self.core.statistics.stop();
        self.core.metadata.close();
        if let Some(txn) = &self.txn {
            txn.manager.close(&Error::Closed);
        }
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
        let txn_next = self.drive_transactions(now);
        let produce_next = self.send_ready(now);
        // After send_ready touched the topics with queued batches.
        let max_idle = self.core.config.metadata_max_idle;
        let forgotten = self.core.metadata.forget_idle(now, max_idle);
        if !forgotten.is_empty() {
            // Their per-topic figures go too, or a producer writing to ever new topics
            // would list (and keep) figures for every topic it ever saw.
            self.core.metrics.forget_topics(&forgotten);
        }
        let idle_next = self.close_idle_links(now);
        metadata_next
            .min(producer_id_next)
            .min(txn_next)
            .min(produce_next)
            .min(in_flight_next)
            .min(idle_next)
    }

    fn handle(&mut self, event: SenderEvent, now: Instant) {
        match event {
            SenderEvent::Wakeup => {}
            SenderEvent::Connected { node, mut result } => {
                if let Some(error) = result
                    .as_ref()
                    .ok()
                    .and_then(|l| self.closed_before_connected.take(l.id()))
                {
                    // The link's reader reported its close before the connect thread
                    // reported the link (the broker hung up right after the handshake).
                    result = Err(error);
                }
                if let Err(error @ Error::Authentication(_)) = &result {
                    self.authentication_failed(node, error.clone());
                }
                if result.is_err() {
                    // A broker that cannot be reached may have lost its leaderships (it
                    // crashed): look again, as Java does on a failed connect. Without it a
                    // refresh that came back before the cluster moved the leaders would be
                    // the last one until metadata.max.age.ms.
                    self.core.metadata.request_update();
                }
                if let Ok(link) = &result {
                    if let Some(socket) = link.shutdown_handle() {
                        self.core.register_socket(socket);
                    }
                    // A fresh link can take requests: a leader that partitioning left out
                    // for being unavailable gets its partitions back (Java waits for the
                    // leader's next ready batch, which unkeyed records no longer make).
                    self.core.sticky.node_ready(node, now, true);
                }
                self.nodes.connected(node, result, now)
            }
            SenderEvent::Connection(e) => self.connection_event(e, now),
            SenderEvent::Close => {
                self.closing = true;
                if let Some(txn) = &self.txn {
                    txn.manager.lock().abort_on_close();
                }
            }
            SenderEvent::ForceClose => {
                self.closing = true;
                self.force_closing = true;
            }
            SenderEvent::Purge(reply) => {
                let _ = reply.send(self.purge()); // the caller may have given up
            }
        }
    }

    fn connection_event(&mut self, event: ConnectionEvent, now: Instant) {
        let connection = event.connection_id;
        match event.kind {
            ConnectionEventKind::Response {
                correlation_id,
                api_key,
                version,
                body,
            } => {
                self.nodes.touch(connection, now);
                if let Some(ms) = client_throttle_ms(api_key, version, &body) {
                    log::debug!("connection {connection}: the broker throttles us for {ms} ms");
                    self.nodes
                        .throttle(connection, now + Duration::from_millis(ms));
                }
                let key = (connection, correlation_id);
                let is = |r: Option<RequestInFlight>| {
                    r.is_some_and(|m| (m.connection, m.correlation_id) == key)
                };
                if is(self.metadata.request) {
                    self.metadata.request = None;
                    self.metadata_response(body, now);
                } else if is(self.producer_id.request) {
                    self.producer_id.request = None;
                    self.producer_id_response(body, now);
                } else if is(self.txn.as_ref().and_then(|t| t.request())) {
                    self.txn_response(body, now);
                } else if let Some(request) = self.in_flight.remove(&key) {
                    self.produce_response(request, body, now);
                } else {
                    log::debug!("dropping a response nobody awaits: {key:?}");
                }
            }
            ConnectionEventKind::Written { correlation_id } => {
                self.nodes.touch(connection, now);
                if let Some(request) = self.in_flight.remove(&(connection, correlation_id)) {
                    self.produce_written(request, now);
                }
            }
            ConnectionEventKind::Closed { error, .. } => {
                self.connection_lost(connection, &error, now)
            }
        }
    }

    /// A link is gone: retry (or fail) what it had in flight, and refresh metadata. A link
    /// the sender dropped itself (idle, or replaced) has nothing in flight: its close
    /// changes nothing.
    fn connection_lost(&mut self, connection: u64, error: &Error, now: Instant) {
        let lost = self.in_flight.keys_on(connection);
        let on = |r: Option<RequestInFlight>| r.is_some_and(|m| m.connection == connection);
        let known = self.nodes.node_of(connection).is_some();
        let txn_request = self.txn.as_ref().and_then(|t| t.request());
        if !known
            && lost.is_empty()
            && !on(self.metadata.request)
            && !on(self.producer_id.request)
            && !on(txn_request)
        {
            // A link the sender dropped (idle, replaced) changes nothing; a link not
            // installed yet (its `Connected` is still on the way) must not be.
            self.closed_before_connected.remember(connection, error);
            return;
        }
        if known {
            log::info!("connection {connection} lost: {error}");
        }
        self.nodes.disconnected(connection, now);
        if on(self.metadata.request) {
            self.metadata.request = None;
        }
        if on(self.producer_id.request) {
            self.producer_id.request = None;
        }
        self.txn_request_lost(connection, now);
        for key in lost {
            if let Some(request) = self.in_flight.remove(&key) {
                self.request_done(&request, now, false);
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
        let mut overdue: Vec<u64> = self.in_flight.overdue(now).collect();
        let txn_request = self.txn.as_ref().and_then(|t| t.request());
        overdue.extend(
            [self.metadata.request, self.producer_id.request, txn_request]
                .into_iter()
                .flatten()
                .filter(|m| m.deadline <= now)
                .map(|m| m.connection),
        );
        overdue.sort_unstable();
        overdue.dedup();
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
    /// or connection loss later settles the sequence bookkeeping). Batches of a partition
    /// expire oldest first, and only once no older batch of the partition is outstanding
    /// (an older retry waiting in its queue expires in this pass's drain, and this one in
    /// the next pass), so completions keep send order. Returns when the next pass is due.
    fn expire_in_flight(&mut self, now: Instant) -> Instant {
        let timeout = self.core.config.delivery_timeout;
        let mut next = now + IDLE_TICK;
        let mut due = Vec::new();
        for (key, request) in self.in_flight.iter_mut() {
            for (index, batch) in request.batches.iter().enumerate() {
                if batch.is_expired() {
                    continue;
                }
                match batch.created.checked_add(timeout) {
                    Some(at) if at > now => next = next.min(at),
                    None => {}
                    Some(_) => due.push((batch.tp.clone(), batch.position, *key, index)),
                }
            }
        }
        due.sort();
        for (tp, position, key, index) in due {
            if self.completions.older_outstanding(&tp, position) {
                next = next.min(now + Duration::from_millis(1));
                continue;
            }
            let released = self.completions.forget(&tp, position);
            if let Some(batch) = self.in_flight.batch_mut(&key, index) {
                let elapsed_ms = now.saturating_duration_since(batch.created).as_millis() as u64;
                log::debug!("{}: expired in flight after {elapsed_ms} ms", batch.tp);
                self.core
                    .metrics
                    .topic_errors(batch.tp.topic_arc(), u64::from(batch.record_count()));
                self.core.accumulator.expire_in_flight(
                    batch,
                    Error::DeliveryTimeout { elapsed_ms },
                    &self.callbacks,
                );
                if let Some(txn) = &self.txn {
                    txn.manager
                        .lock()
                        .abortable(Error::DeliveryTimeout { elapsed_ms });
                    txn.manager.notify();
                }
            }
            self.complete_all(released);
        }
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

    /// Closes links idle for connections.max.idle.ms (nothing sent or received, nothing in
    /// flight); returns when the next one would be idle.
    fn close_idle_links(&mut self, now: Instant) -> Instant {
        let max_idle = self.core.config.connections_max_idle;
        let txn_request = self.txn.as_ref().and_then(|t| t.request());
        let mut busy: Vec<u64> = [self.metadata.request, self.producer_id.request, txn_request]
            .into_iter()
            .flatten()
            .map(|r| r.connection)
            .collect();
        busy.sort_unstable();
        let in_flight = &self.in_flight;
        let (_, next) = self.nodes.close_idle(now, max_idle, |node, link| {
            in_flight.on_node(node) > 0 || busy.binary_search(&link).is_ok()
        });
        next.unwrap_or(now + IDLE_TICK).max(now)
    }

    /// Sends a Metadata request when one is needed and allowed; returns when to look again.
    fn refresh_metadata(&mut self, now: Instant) -> Instant {
        if let Some(m) = self.metadata.request {
            return m.deadline;
        }
        let md = &self.core.metadata;
        let wanted = md.wanted_topics();
        let max_age = self.core.config.metadata_max_age;
        let far = now + IDLE_TICK;
        let refresh_due = self
            .metadata
            .last
            .map_or(now, |t| t.checked_add(max_age).unwrap_or(far));
        if wanted.is_empty() {
            return far; // a caller that wants a topic wakes the sender
        }
        if !md.update_requested() && now < refresh_due {
            return refresh_due;
        }
        if now < self.metadata.next_at {
            return self.metadata.next_at;
        }
        let cluster = md.cluster();
        let in_flight = &self.in_flight;
        let Some(node) = self.nodes.least_loaded(|n| in_flight.on_node(n), now) else {
            return self.connect_for_metadata(&cluster, now);
        };
        let request = MetadataRequest {
            topics: Some(wanted),
            allow_auto_topic_creation: true,
            include_topic_authorized_operations: false,
        };
        let link = self.nodes.ready(node, now).expect("node is ready");
        let connection = link.id();
        match link.submit(Outgoing::Metadata(&request)) {
            Ok(correlation_id) => {
                let deadline = now + self.core.config.request_timeout;
                self.metadata.request = Some(RequestInFlight {
                    connection,
                    correlation_id,
                    deadline,
                });
                deadline
            }
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
        // A connected node that is throttled (KIP-219) does not count: like Java's
        // leastLoadedNode, connect to another broker rather than wait out the throttle.
        let usable = |id: i32| self.nodes.is_active(id) && self.nodes.throttled(id, now).is_none();
        if candidates.iter().any(|(id, _)| usable(*id)) {
            return now + BUSY_TICK; // a connect is under way; its event wakes us
        }
        let mut earliest = now + IDLE_TICK;
        for (id, _) in &candidates {
            if let Some(until) = self.nodes.throttled(*id, now) {
                earliest = earliest.min(until);
            }
        }
        for i in 0..candidates.len() {
            let (id, address) = &candidates[(self.metadata.cursor + i) % candidates.len()];
            if self.nodes.is_active(*id) {
                continue; // throttled: above
            }
            match self.nodes.connect(*id, address, now) {
                None => {
                    self.metadata.cursor += i + 1;
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
        self.metadata.last = Some(now);
        match body {
            Ok(ResponseBody::Metadata(md)) if !md.brokers.is_empty() => {
                if log::log_enabled!(log::Level::Trace) {
                    let leaders: Vec<(&str, Vec<(i32, i32)>)> = md
                        .topics
                        .iter()
                        .map(|t| {
                            let name = t.name.as_deref().unwrap_or("?");
                            (
                                name,
                                t.partitions
                                    .iter()
                                    .map(|p| (p.partition_index, p.leader_id))
                                    .collect(),
                            )
                        })
                        .collect();
                    log::trace!(
                        "metadata: {} brokers, leaders {leaders:?}",
                        md.brokers.len()
                    );
                }
                self.core.metadata.install(Cluster::from_response(&md));
            }
            Ok(other) => log::warn!("unusable metadata response: {other:?}"),
            Err(e) => log::warn!("metadata response did not decode: {e}"),
        }
        // While a wanted topic stays missing or leaderless, refresh with exponential
        // backoff (retry.backoff.ms doubling up to retry.backoff.max.ms), as Java does.
        let config = &self.core.config;
        self.metadata.misses = if self.core.metadata.update_requested() {
            self.metadata.misses.saturating_add(1)
        } else {
            0
        };
        let wait = backoff(
            config.retry_backoff,
            config.retry_backoff_max,
            self.metadata.misses,
        );
        self.metadata.next_at = now + wait;
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
            let wait = backoff(
                config.retry_backoff,
                config.retry_backoff_max,
                batch.attempts,
            );
            log::debug!(
                "retrying {} after {error} (attempt {})",
                batch.tp,
                batch.attempts
            );
            crate::metrics::Metrics::add(&self.core.metrics.batch_retries, 1);
            self.core
                .metrics
                .topic_retries(batch.tp.topic_arc(), u64::from(batch.record_count()));
            self.core.accumulator.reenqueue(batch, now + wait);
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
        if let Some(txn) = &self.txn {
            txn.manager.lock().fatal(error.clone());
            txn.manager.notify();
        }
        self.abort_queued(&error);
    }

    /// A connection to `node` failed to authenticate: retrying will not help (the same
    /// credentials fail again), so callers waiting for metadata fail with `error` and so
    /// do the batches queued for `node`, instead of waiting out max.block.ms and
    /// delivery.timeout.ms. The node is retried with backoff, as any failed connect.
    fn authentication_failed(&mut self, node: i32, error: Error) {
        log::error!("{error}");
        self.core.metadata.authentication_failed(error.clone());
        let cluster = self.core.metadata.cluster();
        for queue in self.core.accumulator.queues() {
            let tp = &queue.tp;
            if cluster.leader(tp.topic(), tp.partition()) != Some(node) {
                continue;
            }
            for batch in self.core.accumulator.take_all(&queue) {
                self.fail(batch, error.clone());
            }
        }
    }

    /// `Producer::purge`: fails with `Error::Purged` every queued batch that was never sent
    /// and returns how many records they held. A batch that was sent (put back for a
    /// retry, or a split half or resent group of one) stays: under idempotence it holds
    /// sequence numbers the broker may have seen, and dropping it would leave a gap the
    /// broker refuses (OUT_OF_ORDER_SEQUENCE_NUMBER); never-sent batches hold none yet
    /// (sequences are given at the first drain), so the partition's numbering goes on
    /// consistently after them. Purged batches complete in order with their partition's
    /// batches in flight (after them), as every completion does. In a transaction a
    /// purged record makes the transaction abortable, as any failed record does.
    fn purge(&mut self) -> u64 {
        let mut purged = 0u64;
        for queue in self.core.accumulator.queues() {
            let completions = &self.completions;
            let batches = self.core.accumulator.take_where(&queue, |b| {
                b.attempts == 0 && !completions.is_outstanding(&b.tp, b.position)
            });
            for batch in batches {
                purged += u64::from(batch.record_count());
                self.fail(batch, Error::Purged);
            }
        }
        if purged > 0 {
            log::info!("purged {purged} record(s) that were not sent yet");
        }
        purged
    }

    /// Fails every queued batch with `error`, in order per partition with the batches
    /// still in flight (those complete first when they are older).
    fn abort_queued(&mut self, error: &Error) {
        if self.core.accumulator.is_empty() {
            return;
        }
        for queue in self.core.accumulator.queues() {
            for batch in self.core.accumulator.take_all(&queue) {
                self.fail(batch, error.clone());
            }
        }
    }

    /// Sends InitProducerId when idempotence needs a producer id or a new epoch; returns
    /// when to look again.
    fn init_producer_id(&mut self, now: Instant) -> Instant {
        let far = now + IDLE_TICK;
        let Some(idem) = self.idempotence.as_ref() else {
            return far;
        };
        if self.txn.is_some() {
            return far; // the transaction coordinator gives the id (`drive_transactions`)
        }
        if !idem.needs_producer_id() {
            return far;
        }
        if let Some(r) = self.producer_id.request {
            return r.deadline;
        }
        if now < self.producer_id.next_at {
            return self.producer_id.next_at;
        }
        let (producer_id, producer_epoch) = idem.init_request_ids();
        let in_flight = &self.in_flight;
        let Some(node) = self.nodes.least_loaded(|n| in_flight.on_node(n), now) else {
            let cluster = self.core.metadata.cluster();
            return self.connect_for_metadata(&cluster, now);
        };
        let request = InitProducerIdRequest {
            producer_id,
            producer_epoch,
            ..InitProducerIdRequest::default()
        };
        let link = self.nodes.ready(node, now).expect("node is ready");
        let connection = link.id();
        match link.submit(Outgoing::InitProducerId(&request)) {
            Ok(correlation_id) => {
                let deadline = now + self.core.config.request_timeout;
                self.producer_id.request = Some(RequestInFlight {
                    connection,
                    correlation_id,
                    deadline,
                });
                deadline
            }
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
                self.producer_id.failures = 0;
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
        self.producer_id.failures = self.producer_id.failures.saturating_add(1);
        let wait = backoff(
            config.retry_backoff,
            config.retry_backoff_max,
            self.producer_id.failures,
        );
        self.producer_id.next_at = now + wait;
    }

    fn fail(&mut self, batch: ProducerBatch, error: Error) {
        if batch.is_expired() {
            return; // answered already
        }
        self.txn_batch_failed(&error);
        self.core
            .metrics
            .topic_errors(batch.tp.topic_arc(), u64::from(batch.record_count()));
        self.finish(batch, Err(error));
    }

    /// Completes `batch` in send order per partition (see [`order`]): now, or right after
    /// the older batches of its partition that were sent and are not complete yet.
    fn finish(&mut self, batch: ProducerBatch, outcome: Outcome) {
        let (accumulator, callbacks) = (&self.core.accumulator, &self.callbacks);
        self.completions
            .finish(batch, outcome, |b, o| accumulator.complete(b, o, callbacks));
    }

    /// Completes batches that [`Completions`] handed out, in the order given.
    fn complete_all(&mut self, ready: Vec<(ProducerBatch, Outcome)>) {
        for (batch, outcome) in ready {
            self.core
                .accumulator
                .complete(batch, outcome, &self.callbacks);
        }
    }

    /// A batch of a transaction failed for good: the transaction can only be aborted (a
    /// batch dropped by the abort itself changes nothing).
    pub(super) fn txn_batch_failed(&mut self, error: &Error) {
        let Some(txn) = &self.txn else {
            return;
        };
        if matches!(
            error,
            Error::TransactionAborted | Error::TransactionAbortable(_) | Error::Closed
        ) {
            return;
        }
        txn.manager.lock().abortable(error.clone());
        txn.manager.notify();
    }

    /// The metrics of a request that left the in-flight table; `answered` when a response
    /// to it arrived (only then does its round trip count as request latency, as in Java:
    /// not for a request that timed out, lost its connection or was written with acks=0).
    fn request_done(&mut self, request: &InFlight, now: Instant, answered: bool) {
        use crate::metrics::Metrics;
        let m = &self.core.metrics;
        Metrics::sub(&m.in_flight_requests, 1);
        let records: u64 = request
            .batches
            .iter()
            .map(|b| u64::from(b.record_count()))
            .sum();
        Metrics::sub(&m.records_in_flight, records);
        if answered {
            m.request_latency(request.node, now.saturating_duration_since(request.sent_at));
        }
    }
}

/// The throttle time a response asks the client to honour, if any (KIP-219). From these
/// versions on the broker answers a request that exceeded a quota at once and expects the
/// client to send nothing more to it for `throttle_time_ms`; before them it delayed the
/// answer itself, and the client must not wait again. Only the requests this producer
/// sends often are looked at: Produce (v6+) and Metadata (v6+).
fn client_throttle_ms(
    api_key: crate::protocol::ApiKey,
    version: i16,
    body: &Result<ResponseBody, crate::protocol::DecodeError>,
) -> Option<u64> {
    use crate::protocol::ApiKey;
    let ms = match body {
        Ok(ResponseBody::Produce(r)) if api_key == ApiKey::PRODUCE && version >= 6 => {
            r.throttle_time_ms
        }
        Ok(ResponseBody::Metadata(r)) if api_key == ApiKey::METADATA && version >= 6 => {
            r.throttle_time_ms
        }
        _ => return None,
    };
    u64::try_from(ms).ok().filter(|ms| *ms > 0)
}

/// The producer state of a batch that carries a real sequence (idempotence), if any.
fn sequenced(batch: &ProducerBatch) -> Option<crate::record_batch::ProducerState> {
    batch
        .producer
        .filter(|s| s.producer_id >= 0 && s.base_sequence >= 0)
}

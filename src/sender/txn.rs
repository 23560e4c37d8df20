//! The transactional half of the sender: finds the coordinators and sends the
//! [`TransactionManager`]'s requests, one at a time, as Java's sender does.
//!
//! # Ownership
//!
//! [`Transactions`] is owned by the sender thread: the coordinators it found, the one
//! request in flight, the retry backoff, and a snapshot of the partitions in the
//! transaction for the drain (refreshed when the manager's version of them changes). The
//! state machine itself is the shared [`TransactionManager`]; this side takes its lock to
//! pick the next request and to apply an answer, never across I/O.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Instant;

use super::link::Outgoing;
use super::nodes::backoff;
use super::{RequestInFlight, Sender, BUSY_TICK, IDLE_TICK};
use crate::error::{Error, ErrorCode};
use crate::protocol::add_offsets_to_txn::AddOffsetsToTxnRequest;
use crate::protocol::add_partitions_to_txn::{AddPartitionsToTxnRequest, AddPartitionsToTxnTopic};
use crate::protocol::end_txn::{self, EndTxnRequest};
use crate::protocol::find_coordinator::{CoordinatorType, FindCoordinatorRequest};
use crate::protocol::init_producer_id::InitProducerIdRequest;
use crate::protocol::produce;
use crate::protocol::txn_offset_commit::{
    self, TxnOffsetCommitPartition, TxnOffsetCommitRequest, TxnOffsetCommitTopic,
};
use crate::protocol::{DecodeError, ResponseBody};
use crate::record::TopicPartition;
use crate::transaction::{verdict, Next, TransactionManager, Verdict};

/// The retry backoff of an AddPartitionsToTxn refused with CONCURRENT_TRANSACTIONS before
/// any partition joined the transaction (the previous transaction is still completing).
const CONCURRENT_TRANSACTIONS_BACKOFF: std::time::Duration = std::time::Duration::from_millis(20);

/// A coordinator broker: its node id and address.
#[derive(Debug, Clone)]
struct Coordinator {
    node: i32,
    address: String,
}

/// Which coordinator a request goes to.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Target {
    Transaction,
    Group(String),
}

/// What the request in flight was.
#[derive(Debug)]
enum Sent {
    Find(Target),
    Request(Next),
}

/// The sender's transactional state. See the module docs.
#[derive(Debug)]
pub(super) struct Transactions {
    pub manager: Arc<TransactionManager>,
    coordinator: Option<Coordinator>,
    group_coordinator: Option<(String, Coordinator)>,
    request: Option<(RequestInFlight, Sent)>,
    next_at: Instant,
    failures: u32,
    /// The partitions whose batches may be drained, as of the manager's version.
    drainable: (u64, HashSet<TopicPartition>),
    /// Whether the transaction uses KIP-890's protocol (as of the last pass).
    pub v2: bool,
}

impl Transactions {
    pub fn new(manager: Arc<TransactionManager>, now: Instant) -> Self {
        Transactions {
            manager,
            coordinator: None,
            group_coordinator: None,
            request: None,
            next_at: now,
            failures: 0,
            drainable: (u64::MAX, HashSet::new()),
            v2: false,
        }
    }

    /// The request in flight, if any.
    pub fn request(&self) -> Option<RequestInFlight> {
        self.request.as_ref().map(|(r, _)| *r)
    }

    /// Whether a batch of `tp` may be drained: its partition is in the transaction.
    pub fn may_drain(&self, tp: &TopicPartition) -> bool {
        self.drainable.1.contains(tp)
    }

    /// The highest Produce version: below KIP-890's under the classic protocol.
    pub fn produce_cap(&self) -> Option<i16> {
        (!self.v2).then_some(produce::LAST_VERSION_BEFORE_TRANSACTION_V2)
    }

    fn refresh(&mut self) {
        let g = self.manager.lock();
        self.v2 = g.uses_v2();
        if g.partitions_version() != self.drainable.0 {
            self.drainable = (g.partitions_version(), g.partitions());
        }
    }
}

impl Sender {
    /// One transactional step: fails batches an abort (or an abortable error) keeps from
    /// being sent, then sends the next coordinator request when none is in flight.
    /// Returns when to look again.
    pub(super) fn drive_transactions(&mut self, now: Instant) -> Instant {
        let far = now + IDLE_TICK;
        let Some(txn) = self.txn.as_mut() else {
            return far;
        };
        txn.refresh();
        let undrained = txn.manager.lock().undrained_error();
        if let Some(error) = undrained {
            self.fail_undrained(&error, now);
        }
        let txn = self.txn.as_mut().expect("checked");
        if let Some((r, _)) = &txn.request {
            return r.deadline;
        }
        if now < txn.next_at {
            return txn.next_at;
        }
        if let Some(until) = txn
            .coordinator
            .as_ref()
            .and_then(|c| self.nodes.throttled(c.node, now))
        {
            return until; // KIP-219: nothing goes to a throttled coordinator's broker
        }
        let batches_done = self.in_flight.is_empty()
            && !self.core.appends_in_progress()
            && self.core.accumulator.is_empty();
        let next = txn.manager.lock().next_request(batches_done);
        txn.manager.notify(); // the call may have completed without a request
        let Some(next) = next else {
            txn.refresh();
            return if batches_done { far } else { now + BUSY_TICK };
        };
        let target = match &next {
            Next::TxnOffsetCommit { group, .. } => Target::Group(group.group_id().to_owned()),
            _ => Target::Transaction,
        };
        let coordinator = match &target {
            Target::Transaction => txn.coordinator.clone(),
            Target::Group(id) => txn
                .group_coordinator
                .as_ref()
                .filter(|(g, _)| g == id)
                .map(|(_, c)| c.clone()),
        };
        let Some(coordinator) = coordinator else {
            return self.find_coordinator(target, now);
        };
        if !self.nodes.is_ready(coordinator.node) {
            if self
                .nodes
                .connect(coordinator.node, &coordinator.address, now)
                .is_none()
            {
                return now + BUSY_TICK; // connecting: its Connected event wakes us
            }
            // The coordinator's broker cannot be reached (it is down, or was replaced):
            // look the coordinator up again, as Java does, after the retry backoff.
            log::info!(
                "{target:?} coordinator node {} unreachable; looking it up again",
                coordinator.node
            );
            let sent = match target {
                Target::Transaction => Sent::Find(Target::Transaction),
                Target::Group(id) => Sent::Find(Target::Group(id)),
            };
            self.txn_retry(&sent, true, now);
            return self.txn.as_ref().map_or(now, |t| t.next_at);
        }
        self.send_txn_request(coordinator.node, next, now)
    }

    /// Fails the queued batches that were never sent (a retry keeps its place: it is in
    /// the broker's hands already) with `error`: an abort drops what it can.
    fn fail_undrained(&mut self, error: &Error, now: Instant) {
        if self.core.accumulator.is_empty() {
            return;
        }
        for queue in self.core.accumulator.queues() {
            let batches = self.core.accumulator.take_all(&queue);
            for batch in batches {
                if super::sequenced(&batch).is_some() {
                    self.core.accumulator.reenqueue(batch, now);
                } else {
                    self.fail(batch, error.clone());
                }
            }
        }
    }

    /// Sends FindCoordinator for `target` to any connected broker.
    fn find_coordinator(&mut self, target: Target, now: Instant) -> Instant {
        let in_flight = &self.in_flight;
        let Some(node) = self.nodes.least_loaded(|n| in_flight.on_node(n), now) else {
            let cluster = self.core.metadata.cluster();
            return self.connect_for_metadata(&cluster, now);
        };
        let txn = self.txn.as_ref().expect("transactional");
        let request = match &target {
            Target::Transaction => FindCoordinatorRequest::single(
                CoordinatorType::TRANSACTION,
                txn.manager.transactional_id.clone(),
            ),
            Target::Group(id) => FindCoordinatorRequest::single(CoordinatorType::GROUP, id.clone()),
        };
        let link = self.nodes.ready(node, now).expect("node is ready");
        let connection = link.id();
        let submitted = link.submit(Outgoing::FindCoordinator(&request));
        self.txn_submitted(connection, submitted, Sent::Find(target), now)
    }

    fn send_txn_request(&mut self, node: i32, next: Next, now: Instant) -> Instant {
        let txn = self.txn.as_mut().expect("transactional");
        let id = txn.manager.transactional_id.clone();
        let v2 = txn.manager.lock().uses_v2();
        let (producer_id, producer_epoch) = self
            .idempotence
            .as_ref()
            .and_then(|i| i.current())
            .map_or((-1, -1), |c| (c.id, c.epoch));
        let link = self.nodes.ready(node, now).expect("caller checked");
        let connection = link.id();
        let submitted = match &next {
            Next::InitProducerId { bump } => {
                let (producer_id, producer_epoch) = if *bump {
                    (producer_id, producer_epoch)
                } else {
                    (-1, -1)
                };
                let request = InitProducerIdRequest {
                    transactional_id: Some(id),
                    transaction_timeout_ms: txn.manager.timeout_ms,
                    producer_id,
                    producer_epoch,
                };
                link.submit(Outgoing::InitProducerId(&request))
            }
            Next::AddPartitions(partitions) => {
                let mut topics: Vec<AddPartitionsToTxnTopic> = Vec::new();
                for tp in partitions {
                    match topics.iter_mut().find(|t| t.name == tp.topic()) {
                        Some(t) => t.partitions.push(tp.partition()),
                        None => topics.push(AddPartitionsToTxnTopic {
                            name: tp.topic().to_owned(),
                            partitions: vec![tp.partition()],
                        }),
                    }
                }
                let request = AddPartitionsToTxnRequest {
                    transactional_id: id,
                    producer_id,
                    producer_epoch,
                    topics,
                };
                let submitted = link.submit(Outgoing::AddPartitionsToTxn(&request));
                if submitted.is_ok() {
                    txn.manager.lock().sending_partitions(partitions);
                }
                submitted
            }
            Next::AddOffsets { group_id } => {
                let request = AddOffsetsToTxnRequest {
                    transactional_id: id,
                    producer_id,
                    producer_epoch,
                    group_id: group_id.clone(),
                };
                link.submit(Outgoing::AddOffsetsToTxn(&request))
            }
            Next::TxnOffsetCommit { group, offsets } => {
                let mut topics: Vec<TxnOffsetCommitTopic> = Vec::new();
                for (tp, o) in offsets {
                    let partition = TxnOffsetCommitPartition {
                        partition_index: tp.partition(),
                        committed_offset: o.offset(),
                        committed_leader_epoch: o.leader_epoch().unwrap_or(-1),
                        committed_metadata: Some(o.metadata().unwrap_or_default().to_owned()),
                    };
                    match topics.iter_mut().find(|t| t.name == tp.topic()) {
                        Some(t) => t.partitions.push(partition),
                        None => topics.push(TxnOffsetCommitTopic {
                            name: tp.topic().to_owned(),
                            partitions: vec![partition],
                        }),
                    }
                }
                let request = TxnOffsetCommitRequest {
                    transactional_id: id,
                    group_id: group.group_id().to_owned(),
                    producer_id,
                    producer_epoch,
                    generation_id: group.generation_id(),
                    member_id: group.member_id().to_owned(),
                    group_instance_id: group.group_instance_id().map(str::to_owned),
                    topics,
                };
                let cap = (!v2).then_some(txn_offset_commit::LAST_VERSION_BEFORE_TRANSACTION_V2);
                let submitted = link.submit(Outgoing::TxnOffsetCommit(&request, cap));
                if submitted.is_ok() {
                    txn.manager.lock().offsets_sent();
                }
                submitted
            }
            Next::EndTxn { commit } => {
                let request = EndTxnRequest {
                    transactional_id: id,
                    producer_id,
                    producer_epoch,
                    committed: *commit,
                };
                let cap = (!v2).then_some(end_txn::LAST_VERSION_BEFORE_TRANSACTION_V2);
                link.submit(Outgoing::EndTxn(&request, cap))
            }
        };
        self.txn_submitted(connection, submitted, Sent::Request(next), now)
    }

    /// Records the request in flight, or handles a refused submit.
    fn txn_submitted(
        &mut self,
        connection: u64,
        submitted: Result<i32, Error>,
        sent: Sent,
        now: Instant,
    ) -> Instant {
        match submitted {
            Ok(correlation_id) => {
                let deadline = now + self.core.config.request_timeout;
                let txn = self.txn.as_mut().expect("transactional");
                let request = RequestInFlight {
                    connection,
                    correlation_id,
                    deadline,
                };
                txn.request = Some((request, sent));
                deadline
            }
            Err(Error::UnsupportedVersion { api_key }) => {
                let error = Error::Fatal(format!(
                    "the broker supports no version of API {api_key} that a transactional \
                     producer needs"
                ));
                self.txn_fatal(error);
                now + IDLE_TICK
            }
            Err(e) => {
                self.connection_lost(connection, &e, now);
                now
            }
        }
    }

    /// The coordinator connection carrying the transactional request was lost (or the
    /// request timed out): look the coordinator up again and retry.
    pub(super) fn txn_request_lost(&mut self, connection: u64, now: Instant) {
        let Some(txn) = self.txn.as_mut() else {
            return;
        };
        if txn
            .request
            .as_ref()
            .is_none_or(|(r, _)| r.connection != connection)
        {
            return;
        }
        let (_, sent) = txn.request.take().expect("checked");
        self.txn_retry(&sent, true, now);
    }

    /// Retries `sent` after a backoff; `find` forgets its coordinator first.
    fn txn_retry(&mut self, sent: &Sent, find: bool, now: Instant) {
        let config = &self.core.config;
        let txn = self.txn.as_mut().expect("transactional");
        txn.failures = txn.failures.saturating_add(1);
        txn.next_at = now + backoff(config.retry_backoff, config.retry_backoff_max, txn.failures);
        if let Sent::Request(Next::AddPartitions(_)) = sent {
            txn.manager.lock().add_partitions_failed();
        }
        match sent {
            Sent::Request(Next::TxnOffsetCommit { .. }) | Sent::Find(Target::Group(_)) if find => {
                txn.group_coordinator = None
            }
            _ if find => txn.coordinator = None,
            _ => {}
        }
    }

    /// The answer to the transactional request in flight.
    pub(super) fn txn_response(&mut self, body: Result<ResponseBody, DecodeError>, now: Instant) {
        let txn = self.txn.as_mut().expect("transactional");
        let Some((_, sent)) = txn.request.take() else {
            return;
        };
        let body = match body {
            Ok(b) => b,
            Err(e) => {
                log::warn!("a transactional response did not decode: {e}");
                return self.txn_retry(&sent, true, now);
            }
        };
        match (sent, body) {
            (Sent::Find(target), ResponseBody::FindCoordinator(r)) => {
                let Some(c) = r.coordinators.into_iter().next() else {
                    return self.txn_retry(&Sent::Find(target), false, now);
                };
                if c.error_code != 0 {
                    let code = ErrorCode::from_code(c.error_code);
                    return self.txn_verdict(
                        Sent::Find(target),
                        verdict("FindCoordinator", code, c.error_message),
                        now,
                    );
                }
                let coordinator = Coordinator {
                    node: c.node_id,
                    address: format!("{}:{}", c.host, c.port),
                };
                log::info!(
                    "{target:?} coordinator: node {} at {}",
                    c.node_id,
                    coordinator.address
                );
                let txn = self.txn.as_mut().expect("transactional");
                txn.failures = 0;
                match target {
                    Target::Transaction => txn.coordinator = Some(coordinator),
                    Target::Group(id) => txn.group_coordinator = Some((id, coordinator)),
                }
            }
            (
                Sent::Request(next @ Next::InitProducerId { .. }),
                ResponseBody::InitProducerId(r),
            ) => {
                if r.error_code != 0 {
                    let code = ErrorCode::from_code(r.error_code);
                    return self.txn_verdict(
                        Sent::Request(next),
                        verdict("InitProducerId", code, None),
                        now,
                    );
                }
                if let Some(idem) = self.idempotence.as_mut() {
                    idem.producer_id_received(r.producer_id, r.producer_epoch);
                }
                let v2 = self.coordinator_v2();
                self.txn_done(|g| g.producer_id_received(v2));
                log::info!(
                    "transactional producer id {}, epoch {} ({} transaction protocol)",
                    r.producer_id,
                    r.producer_epoch,
                    if v2 { "KIP-890" } else { "classic" }
                );
            }
            (
                Sent::Request(Next::AddPartitions(partitions)),
                ResponseBody::AddPartitionsToTxn(r),
            ) => {
                let mut added = Vec::new();
                let mut worst: Option<(ErrorCode, Verdict)> = None;
                let mut retry = Vec::new();
                for tp in &partitions {
                    let code = r
                        .results
                        .iter()
                        .filter(|t| t.name == tp.topic())
                        .flat_map(|t| t.partitions.iter())
                        .find(|p| p.partition_index == tp.partition())
                        .map_or(ErrorCode::UnknownServerError, |p| {
                            ErrorCode::from_code(p.error_code)
                        });
                    if code == ErrorCode::None {
                        added.push(tp.clone());
                        continue;
                    }
                    retry.push(tp.clone());
                    let v = verdict("AddPartitionsToTxn", code, None);
                    let rank = |v: &Verdict| match v {
                        Verdict::Fatal(_) => 3,
                        Verdict::Abortable(_) => 2,
                        Verdict::FindCoordinator => 1,
                        Verdict::Retry => 0,
                    };
                    if worst.as_ref().is_none_or(|(c, w)| {
                        rank(&v) > rank(w) || (*c == ErrorCode::OperationNotAttempted)
                    }) && code != ErrorCode::OperationNotAttempted
                    {
                        worst = Some((code, v));
                    }
                }
                let txn = self.txn.as_mut().expect("transactional");
                txn.manager.lock().partitions_added(&added, &retry);
                txn.refresh();
                txn.manager.notify();
                match worst {
                    None if retry.is_empty() => txn.failures = 0,
                    None => {
                        // Only OPERATION_NOT_ATTEMPTED: another partition's error stopped it.
                        self.txn_verdict(
                            Sent::Request(Next::AddPartitions(retry)),
                            Verdict::Retry,
                            now,
                        );
                    }
                    Some((code, v)) => {
                        let first = added.is_empty()
                            && self.txn.as_ref().is_some_and(|t| t.drainable.1.is_empty());
                        self.txn_verdict(Sent::Request(Next::AddPartitions(retry)), v, now);
                        if code == ErrorCode::ConcurrentTransactions && first {
                            // The previous transaction's markers are still being written:
                            // it ends within milliseconds, so look again much sooner than
                            // retry.backoff.ms (Java's 20 ms, KAFKA-5482), or every
                            // transaction right after a commit would wait the full backoff.
                            let txn = self.txn.as_mut().expect("transactional");
                            txn.next_at = txn.next_at.min(now + CONCURRENT_TRANSACTIONS_BACKOFF);
                        }
                    }
                }
            }
            (Sent::Request(next @ Next::AddOffsets { .. }), ResponseBody::AddOffsetsToTxn(r)) => {
                if r.error_code != 0 {
                    let code = ErrorCode::from_code(r.error_code);
                    return self.txn_verdict(
                        Sent::Request(next),
                        verdict("AddOffsetsToTxn", code, None),
                        now,
                    );
                }
                self.txn_done(|g| g.offsets_added());
            }
            (
                Sent::Request(next @ Next::TxnOffsetCommit { .. }),
                ResponseBody::TxnOffsetCommit(r),
            ) => {
                let mut done = HashSet::new();
                let mut failure: Option<Verdict> = None;
                for t in &r.topics {
                    for p in &t.partitions {
                        let tp = TopicPartition::new(t.name.as_str(), p.partition_index);
                        let code = ErrorCode::from_code(p.error_code);
                        if code == ErrorCode::None {
                            done.insert(tp);
                            continue;
                        }
                        let v = match code {
                            // The group coordinator is busy or moved.
                            ErrorCode::RequestTimedOut => Verdict::FindCoordinator,
                            _ => verdict("TxnOffsetCommit", code, None),
                        };
                        if !matches!(failure, Some(Verdict::Fatal(_) | Verdict::Abortable(_))) {
                            failure = Some(v);
                        }
                    }
                }
                let txn = self.txn.as_mut().expect("transactional");
                txn.manager.lock().offsets_committed(&done);
                txn.manager.notify();
                match failure {
                    None => txn.failures = 0,
                    Some(v) => self.txn_verdict(Sent::Request(next), v, now),
                }
            }
            (Sent::Request(next @ Next::EndTxn { commit }), ResponseBody::EndTxn(r)) => {
                if r.error_code != 0 {
                    let code = ErrorCode::from_code(r.error_code);
                    let v2 = self.txn.as_ref().is_some_and(|t| t.v2);
                    let verdict = if code == ErrorCode::InvalidTxnState && commit && v2 {
                        // KIP-890: the coordinator has no open transaction under this
                        // epoch: it aborted it (transaction.timeout.ms passed). The abort
                        // the user makes next is then a retry of the coordinator's own,
                        // which answers with the epoch to go on with, as in Java 4.x.
                        Verdict::Abortable(Error::Broker {
                            code,
                            message: Some(
                                "the coordinator no longer has this transaction open under \
                                 this epoch: it aborted it (transaction.timeout.ms passed, \
                                 or a newer producer with this transactional.id fenced \
                                 this one)"
                                    .into(),
                            ),
                        })
                    } else {
                        verdict("EndTxn", code, None)
                    };
                    return self.txn_verdict(Sent::Request(next), verdict, now);
                }
                if r.producer_id >= 0 {
                    // KIP-890: the coordinator bumped the epoch; the next transaction uses it
                    // (and every partition's sequences start at 0 again).
                    if let Some(idem) = self.idempotence.as_mut() {
                        idem.producer_id_received(r.producer_id, r.producer_epoch);
                    }
                }
                let v2 = self.coordinator_v2();
                self.txn_done(|g| {
                    g.ended(v2);
                });
            }
            (sent, other) => {
                log::warn!("unexpected answer to a transactional request: {other:?}");
                self.txn_retry(&sent, true, now);
            }
        }
    }

    /// Applies `f` to the manager, wakes the callers and resets the retry count.
    fn txn_done(&mut self, f: impl FnOnce(&mut crate::transaction::Inner)) {
        let txn = self.txn.as_mut().expect("transactional");
        f(&mut txn.manager.lock());
        txn.failures = 0;
        txn.refresh();
        txn.manager.notify();
    }

    /// Whether the transaction coordinator's broker offers KIP-890's protocol.
    fn coordinator_v2(&self) -> bool {
        let txn = self.txn.as_ref().expect("transactional");
        txn.coordinator
            .as_ref()
            .and_then(|c| self.nodes.link(c.node))
            .is_some_and(|l| l.transaction_version() >= 2)
    }

    fn txn_verdict(&mut self, sent: Sent, verdict: Verdict, now: Instant) {
        match verdict {
            Verdict::Retry => self.txn_retry(&sent, false, now),
            Verdict::FindCoordinator => self.txn_retry(&sent, true, now),
            Verdict::Abortable(error) => {
                let txn = self.txn.as_mut().expect("transactional");
                {
                    let mut g = txn.manager.lock();
                    if let Sent::Request(Next::AddPartitions(_)) = &sent {
                        g.add_partitions_failed_for_good();
                    }
                    if g.pending_is_end() == Some(false) {
                        g.abort_failed(error);
                    } else {
                        g.abortable(error);
                    }
                }
                txn.manager.notify();
                txn.next_at = now;
            }
            Verdict::Fatal(error) => self.txn_fatal(error),
        }
    }

    /// A fatal transactional error: the manager and the producer fail.
    pub(super) fn txn_fatal(&mut self, error: Error) {
        self.go_fatal(error);
    }
}

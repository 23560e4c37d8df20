//! The transactional producer's state machine (Java's `TransactionManager` is the reference).
//!
//! # Ownership and locking
//!
//! One [`TransactionManager`] per transactional producer, in [`Core`](crate::core::Core),
//! shared by the caller threads (the public transactional calls and `send`) and the sender
//! thread. Everything mutable sits in [`Inner`] behind one mutex; the condition variable
//! wakes callers waiting for the result of their call. Callers hold the lock only to check
//! and change the state, never while they block or append a record; the sender holds it to
//! pick its next coordinator request and to apply an answer, never across I/O. It is taken
//! before any accumulator partition lock is (the sender's drain reads a snapshot of the
//! partitions in the transaction, so it never holds both), so it is a leaf lock in practice.
//!
//! # States
//!
//! | state | reached by | may call |
//! |---|---|---|
//! | `Uninitialized` | creation | `init_transactions` |
//! | `Initializing` | `init_transactions` | (the call waits) |
//! | `Ready` | init done, commit or abort done | `begin_transaction` |
//! | `InTransaction` | `begin_transaction` | `send`, `send_offsets_to_transaction`, `commit_transaction`, `abort_transaction` |
//! | `Committing` | `commit_transaction` | (the call waits; retried after a timeout) |
//! | `Aborting` | `abort_transaction` | (the call waits; retried after a timeout) |
//! | `AbortableError` | an error inside the transaction | `abort_transaction` |
//! | `FatalError` | fenced, authorization, unsupported version | nothing but close |
//!
//! A call in a state not listed for it fails with [`Error::IllegalState`] and changes
//! nothing; in `AbortableError` every call but abort fails with
//! [`Error::TransactionAbortable`], in `FatalError` with the fatal error
//! ([`Error::Fenced`] or [`Error::Fatal`]).
//!
//! # The two protocol generations
//!
//! Classic (transaction version 1): the sender adds each new partition with
//! AddPartitionsToTxn before the partition's first batch is drained, offsets with
//! AddOffsetsToTxn before TxnOffsetCommit, and an epoch bump after an abort that followed
//! a failed batch is an InitProducerId with the current producer id and epoch (KIP-360).
//! KIP-890 (transaction version 2, when the coordinator's broker finalized
//! `transaction.version` ≥ 2): partitions and the group join the transaction implicitly
//! (Produce v12, TxnOffsetCommit v5), and every EndTxn (v5) returns the producer id and
//! epoch to use next. The generation is chosen when the producer becomes `Ready`, never
//! inside a transaction.

mod types;

use std::collections::{BTreeSet, HashSet};
use std::time::Instant;

use parking_lot::{Condvar, Mutex, MutexGuard};

pub use types::{ConsumerGroupMetadata, OffsetAndMetadata};

use crate::error::{Error, ErrorCode};
use crate::record::TopicPartition;

/// The transactional states (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    Uninitialized,
    Initializing,
    Ready,
    InTransaction,
    Committing,
    Aborting,
    AbortableError,
    FatalError,
}

/// A user call the sender carries out with coordinator requests.
#[derive(Debug, Clone)]
pub(crate) enum Op {
    /// InitProducerId with the transactional id.
    Init,
    /// Offsets for a group: AddOffsetsToTxn (classic protocol, until `added`), then
    /// TxnOffsetCommit to the group coordinator with the offsets not committed yet.
    Offsets {
        group: ConsumerGroupMetadata,
        offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
        added: bool,
    },
    /// EndTxn, once every batch of the transaction completed.
    End { commit: bool },
}

#[derive(Debug)]
struct Pending {
    id: u64,
    /// The public call's name, for errors and for resuming a call that timed out.
    name: &'static str,
    op: Op,
    result: Option<Result<(), Error>>,
}

/// What the sender should send next (see [`Inner::next_request`]).
#[derive(Debug, Clone)]
pub(crate) enum Next {
    /// InitProducerId: `bump` asks for a new epoch of the current producer id (the classic
    /// protocol's recovery after an abort).
    InitProducerId {
        bump: bool,
    },
    AddPartitions(Vec<TopicPartition>),
    AddOffsets {
        group_id: String,
    },
    TxnOffsetCommit {
        group: ConsumerGroupMetadata,
        offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
    },
    EndTxn {
        commit: bool,
    },
}

/// The mutable state (see the module docs for the lock).
#[derive(Debug)]
pub(crate) struct Inner {
    state: State,
    /// The error that put the producer in `AbortableError` or `FatalError`.
    last_error: Option<Error>,
    pending: Option<Pending>,
    next_id: u64,
    /// Partitions whose batches may be drained: added by the coordinator (classic), or
    /// sent to (KIP-890, where the first Produce adds them).
    in_transaction: HashSet<TopicPartition>,
    /// Bumped whenever `in_transaction` changes (the sender keeps a snapshot).
    partitions_version: u64,
    /// Partitions sent to but not added yet (classic protocol).
    new_partitions: BTreeSet<TopicPartition>,
    /// Partitions in the AddPartitionsToTxn request in flight.
    adding: BTreeSet<TopicPartition>,
    /// The coordinator knows this transaction (something was added, or produced under
    /// KIP-890): EndTxn is needed to end it.
    started: bool,
    /// KIP-890's protocol (transaction version 2) is in use.
    v2: bool,
    /// Classic protocol: a batch failed inside the transaction, so after the abort the
    /// epoch is bumped before the next transaction (sequences start over).
    bump_after_abort: bool,
    /// The abort's EndTxn succeeded; the epoch bump runs before the abort call returns.
    bumping: bool,
    /// The abort in progress was started by a commit after a stale-epoch refusal (see
    /// `begin_end`): when it succeeds, the commit fails with this cause and the state stays
    /// `AbortableError` (the user's abort then completes without a request).
    probe: Option<Error>,
}

/// A transactional producer's state machine. See the module docs.
#[derive(Debug)]
pub(crate) struct TransactionManager {
    pub transactional_id: String,
    /// transaction.timeout.ms.
    pub timeout_ms: i32,
    inner: Mutex<Inner>,
    changed: Condvar,
}

/// Whether a caller's `send` to a partition may proceed, and whether the sender has new
/// work (a partition to add).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SendCheck {
    Ok,
    OkNewPartition,
}

impl TransactionManager {
    pub fn new(transactional_id: String, timeout_ms: i32) -> Self {
        TransactionManager {
            transactional_id,
            timeout_ms,
            inner: Mutex::new(Inner {
                state: State::Uninitialized,
                last_error: None,
                pending: None,
                next_id: 0,
                in_transaction: HashSet::new(),
                partitions_version: 0,
                new_partitions: BTreeSet::new(),
                adding: BTreeSet::new(),
                started: false,
                v2: false,
                bump_after_abort: false,
                bumping: false,
                probe: None,
            }),
            changed: Condvar::new(),
        }
    }

    /// The state, for the sender (and tests).
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock()
    }

    /// Wakes the callers waiting for a result (the sender calls it after an answer).
    pub fn notify(&self) {
        self.changed.notify_all();
    }

    // --- the caller side -------------------------------------------------------------

    /// `init_transactions`: queues InitProducerId. Returns the id of the call to wait for.
    pub fn begin_init(&self) -> Result<u64, Error> {
        let mut g = self.inner.lock();
        if let Some(id) = g.resume("init_transactions")? {
            return Ok(id);
        }
        match g.state {
            State::Uninitialized => {
                g.state = State::Initializing;
                Ok(g.start("init_transactions", Op::Init))
            }
            State::FatalError => Err(g.error_or_fatal()),
            state => Err(Error::IllegalState(format!(
                "init_transactions was called already (the producer is {})",
                state.describe()
            ))),
        }
    }

    /// `begin_transaction`: a local transition.
    pub fn begin(&self) -> Result<(), Error> {
        let mut g = self.inner.lock();
        g.no_call_pending("begin_transaction")?;
        g.fail_if_error()?;
        match g.state {
            State::Ready => {
                g.state = State::InTransaction;
                Ok(())
            }
            State::Uninitialized | State::Initializing => Err(Error::IllegalState(
                "begin_transaction before init_transactions: call init_transactions first".into(),
            )),
            State::InTransaction => Err(Error::IllegalState(
                "begin_transaction while a transaction is open: commit or abort it first".into(),
            )),
            state => Err(Error::IllegalState(format!(
                "begin_transaction while the producer is {}",
                state.describe()
            ))),
        }
    }

    /// `send` of a record to `tp`: allowed only inside a transaction. Adds `tp` to the
    /// transaction (at once under KIP-890, through the sender's AddPartitionsToTxn in the
    /// classic protocol).
    pub fn check_send(&self, tp: &TopicPartition) -> Result<SendCheck, Error> {
        let mut g = self.inner.lock();
        match g.state {
            State::InTransaction => {}
            State::AbortableError | State::FatalError => {
                return Err(g.fail_if_error().unwrap_err())
            }
            State::Uninitialized | State::Initializing => {
                return Err(Error::IllegalState(
                    "send before init_transactions on a transactional producer: call \
                     init_transactions, then begin_transaction"
                        .into(),
                ))
            }
            State::Ready => {
                return Err(Error::IllegalState(
                    "send outside a transaction: a transactional producer sends only between \
                     begin_transaction and commit_transaction or abort_transaction"
                        .into(),
                ))
            }
            State::Committing | State::Aborting => {
                return Err(Error::IllegalState(format!(
                    "send while the transaction is {}: wait for the call to return, then \
                     begin a new transaction",
                    g.state.describe()
                )))
            }
        }
        if g.in_transaction.contains(tp) {
            return Ok(SendCheck::Ok);
        }
        if g.v2 {
            g.in_transaction.insert(tp.clone());
            g.partitions_version += 1;
            g.started = true;
            return Ok(SendCheck::Ok);
        }
        if g.adding.contains(tp) || !g.new_partitions.insert(tp.clone()) {
            return Ok(SendCheck::Ok);
        }
        Ok(SendCheck::OkNewPartition)
    }

    /// A record of the open transaction failed before it was buffered (it could not be
    /// serialized, was too large, its topic's metadata did not come, no buffer memory):
    /// the transaction would commit without it, so it can only be aborted, as in Java.
    /// Errors about the call itself (state, closed, fenced) change nothing.
    pub fn send_failed(&self, error: &Error) {
        if matches!(
            error,
            Error::IllegalState(_)
                | Error::Closed
                | Error::Fenced(_)
                | Error::Fatal(_)
                | Error::TransactionAbortable(_)
                | Error::TransactionAborted
        ) {
            return;
        }
        let mut g = self.inner.lock();
        // In `Committing` too: a send that passed `check_send` before the commit began
        // and failed after it must fail the commit (Java: COMMITTING → ABORTABLE_ERROR).
        if matches!(g.state, State::InTransaction | State::Committing) {
            g.abortable(error.clone());
            drop(g);
            self.changed.notify_all();
        }
    }

    /// `send_offsets_to_transaction`: queues the offsets. `None` when there is nothing to
    /// send (no offsets).
    pub fn begin_send_offsets(
        &self,
        offsets: Vec<(TopicPartition, OffsetAndMetadata)>,
        group: &ConsumerGroupMetadata,
    ) -> Result<Option<u64>, Error> {
        let mut g = self.inner.lock();
        if let Some(id) = g.resume("send_offsets_to_transaction")? {
            return Ok(Some(id));
        }
        g.fail_if_error()?;
        if g.state != State::InTransaction {
            return Err(Error::IllegalState(format!(
                "send_offsets_to_transaction outside a transaction (the producer is {}): \
                 call begin_transaction first",
                g.state.describe()
            )));
        }
        if group.generation_id() > 0 && group.member_id().is_empty() {
            return Err(Error::IllegalState(
                "send_offsets_to_transaction: a group generation without a member id".into(),
            ));
        }
        if offsets.is_empty() {
            return Ok(None);
        }
        let added = g.v2;
        let op = Op::Offsets {
            group: group.clone(),
            offsets,
            added,
        };
        Ok(Some(g.start("send_offsets_to_transaction", op)))
    }

    /// `commit_transaction` (`commit`) or `abort_transaction`: queues EndTxn.
    pub fn begin_end(&self, commit: bool) -> Result<u64, Error> {
        let name = if commit {
            "commit_transaction"
        } else {
            "abort_transaction"
        };
        let mut g = self.inner.lock();
        if let Some(id) = g.resume(name)? {
            return Ok(id);
        }
        match (g.state, commit) {
            (State::FatalError, _) => Err(g.error_or_fatal()),
            (State::AbortableError, true) if g.epoch_refused() && g.started => {
                // A Produce was refused for a stale epoch: the coordinator ended this
                // transaction, either fencing this producer (a newer one with the same id
                // took over) or aborting it after transaction.timeout.ms. The commit can
                // only fail; an abort tells the two apart, so the commit reports `Fenced`
                // when that is the cause (the abort comes back PRODUCER_FENCED), and stays
                // abortable otherwise (the transaction is then aborted already).
                let cause = g
                    .last_error
                    .clone()
                    .expect("an abortable error has a cause");
                g.state = State::Aborting;
                g.probe = Some(cause);
                g.new_partitions.clear();
                Ok(g.start(name, Op::End { commit: false }))
            }
            (State::AbortableError, true) => Err(g.fail_if_error().unwrap_err()),
            (State::InTransaction, true) => {
                g.state = State::Committing;
                Ok(g.start(name, Op::End { commit }))
            }
            (State::InTransaction | State::AbortableError, false) => {
                g.state = State::Aborting;
                g.new_partitions.clear();
                Ok(g.start(name, Op::End { commit }))
            }
            (State::Uninitialized | State::Initializing, _) => Err(Error::IllegalState(format!(
                "{name} before init_transactions"
            ))),
            (state, _) => Err(Error::IllegalState(format!(
                "{name} without an open transaction (the producer is {}): call \
                 begin_transaction first",
                state.describe()
            ))),
        }
    }

    /// Waits for the result of call `id` until `deadline`. On timeout the call stays
    /// queued: calling the same method again resumes waiting for it (as in Java), any
    /// other transactional call fails meanwhile.
    pub fn wait(
        &self,
        id: u64,
        operation: &'static str,
        deadline: Option<Instant>,
    ) -> Result<(), Error> {
        let start = Instant::now();
        let mut g = self.inner.lock();
        loop {
            match g.pending.as_ref() {
                Some(p) if p.id == id => {
                    if p.result.is_some() {
                        let p = g.pending.take().expect("checked");
                        return p.result.expect("checked");
                    }
                }
                // Taken by another thread that resumed the same call, or failed by close.
                _ => return g.fail_if_error().and(Err(Error::Closed)),
            }
            match deadline {
                None => self.changed.wait(&mut g),
                Some(d) => {
                    if self.changed.wait_until(&mut g, d).timed_out() {
                        let done = g
                            .pending
                            .as_ref()
                            .is_some_and(|p| p.id == id && p.result.is_some());
                        if !done {
                            return Err(Error::Timeout {
                                operation,
                                waited_ms: start.elapsed().as_millis() as u64,
                            });
                        }
                    }
                }
            }
        }
    }

    /// The producer closes: a call still waiting fails with `error`.
    pub fn close(&self, error: &Error) {
        let mut g = self.inner.lock();
        if let Some(p) = g.pending.as_mut() {
            p.result.get_or_insert(Err(error.clone()));
        }
        drop(g);
        self.changed.notify_all();
    }
}

impl State {
    fn describe(self) -> &'static str {
        match self {
            State::Uninitialized => "not initialized (call init_transactions)",
            State::Initializing => "initializing",
            State::Ready => "ready, with no open transaction",
            State::InTransaction => "in a transaction",
            State::Committing => "committing",
            State::Aborting => "aborting",
            State::AbortableError => "in an abortable error (call abort_transaction)",
            State::FatalError => "failed (close it)",
        }
    }
}

impl Inner {
    fn start(&mut self, name: &'static str, op: Op) -> u64 {
        self.next_id += 1;
        self.pending = Some(Pending {
            id: self.next_id,
            name,
            op,
            result: None,
        });
        self.next_id
    }

    /// A call of `name` that timed out is resumed; a different pending call is an error.
    fn resume(&mut self, name: &'static str) -> Result<Option<u64>, Error> {
        match &self.pending {
            None => Ok(None),
            Some(p) if p.name == name => Ok(Some(p.id)),
            Some(p) => Err(Error::IllegalState(format!(
                "{name} while the previous call to {} has not finished (it timed out and \
                 must be called again)",
                p.name
            ))),
        }
    }

    fn no_call_pending(&self, name: &'static str) -> Result<(), Error> {
        match &self.pending {
            None => Ok(()),
            Some(p) => Err(Error::IllegalState(format!(
                "{name} while the previous call to {} has not finished (it timed out and \
                 must be called again)",
                p.name
            ))),
        }
    }

    /// The error of an error state: abortable errors wrapped, fatal ones as they are.
    fn fail_if_error(&self) -> Result<(), Error> {
        match self.state {
            State::AbortableError => Err(Error::TransactionAbortable(Box::new(
                self.last_error.clone().unwrap_or(Error::TransactionAborted),
            ))),
            State::FatalError => Err(self.error_or_fatal()),
            _ => Ok(()),
        }
    }

    fn error_or_fatal(&self) -> Error {
        self.last_error
            .clone()
            .unwrap_or_else(|| Error::Fatal("the transactional producer failed".into()))
    }

    // --- the sender side -------------------------------------------------------------

    /// A graceful close with a transaction open aborts it, as Java's close does (its
    /// records would otherwise stay invisible until transaction.timeout.ms).
    pub fn abort_on_close(&mut self) {
        if self.pending.is_none()
            && matches!(self.state, State::InTransaction | State::AbortableError)
        {
            log::info!("closing with an open transaction: aborting it");
            self.state = State::Aborting;
            self.new_partitions.clear();
            self.start("close", Op::End { commit: false });
        }
    }

    /// Whether a coordinator request is still needed for the call in progress (close
    /// waits for an abort it started, and for a commit or abort a caller waits for).
    pub fn busy(&self) -> bool {
        self.state != State::FatalError
            && (self.bumping
                || self
                    .pending
                    .as_ref()
                    .is_some_and(|p| p.result.is_none() && matches!(p.op, Op::End { .. })))
    }

    pub fn uses_v2(&self) -> bool {
        self.v2
    }

    pub fn partitions_version(&self) -> u64 {
        self.partitions_version
    }

    pub fn partitions(&self) -> HashSet<TopicPartition> {
        self.in_transaction.clone()
    }

    /// The error queued batches fail with while they may not be sent: during an abort,
    /// and in an error state. `None` while batches may go.
    pub fn undrained_error(&self) -> Option<Error> {
        match self.state {
            State::Aborting => Some(Error::TransactionAborted),
            State::AbortableError => Some(self.fail_if_error().unwrap_err()),
            _ => None,
        }
    }

    /// The next coordinator request, if any. `batches_done`: no batch of the transaction
    /// is queued, in flight or being appended (EndTxn waits for that).
    pub fn next_request(&mut self, batches_done: bool) -> Option<Next> {
        if self.state == State::FatalError {
            let error = self.error_or_fatal();
            if let Some(p) = self.pending.as_mut() {
                p.result.get_or_insert(Err(error));
            }
            return None;
        }
        if self.bumping {
            return Some(Next::InitProducerId { bump: true });
        }
        let pending = self.pending.as_ref().filter(|p| p.result.is_none());
        if let Some(Pending { op: Op::Init, .. }) = pending {
            return Some(Next::InitProducerId { bump: false });
        }
        if matches!(self.state, State::InTransaction | State::Committing)
            && !self.new_partitions.is_empty()
            && self.adding.is_empty()
        {
            return Some(Next::AddPartitions(
                self.new_partitions.iter().cloned().collect(),
            ));
        }
        match &pending?.op {
            Op::Init => None,
            Op::Offsets {
                group,
                offsets,
                added,
            } => Some(if *added {
                Next::TxnOffsetCommit {
                    group: group.clone(),
                    offsets: offsets.clone(),
                }
            } else {
                Next::AddOffsets {
                    group_id: group.group_id().to_owned(),
                }
            }),
            Op::End { commit } => {
                let commit = *commit;
                let adding = !self.adding.is_empty() || (commit && !self.new_partitions.is_empty());
                if adding || !batches_done {
                    return None;
                }
                if self.started {
                    return Some(Next::EndTxn { commit });
                }
                // The coordinator never heard of this transaction: nothing to end.
                if !commit && self.bump_after_abort && !self.v2 {
                    self.bumping = true;
                    return Some(Next::InitProducerId { bump: true });
                }
                self.transaction_done();
                None
            }
        }
    }

    /// Completes the pending call with `result`.
    fn finish(&mut self, result: Result<(), Error>) {
        if let Some(p) = self.pending.as_mut() {
            p.result.get_or_insert(result);
        }
    }

    /// The transaction ended (EndTxn answered, or there was nothing to end): `Ready`.
    fn transaction_done(&mut self) {
        self.state = State::Ready;
        self.last_error = None;
        self.in_transaction.clear();
        self.partitions_version += 1;
        self.new_partitions.clear();
        self.adding.clear();
        self.started = false;
        self.bump_after_abort = false;
        self.bumping = false;
        if let Some(cause) = self.probe.take() {
            // The commit's abort went through: not fenced. The commit fails abortably; the
            // transaction is aborted already, so the user's abort needs no request.
            self.state = State::AbortableError;
            self.last_error = Some(cause.clone());
            self.finish(Err(Error::TransactionAbortable(Box::new(cause))));
            return;
        }
        self.finish(Ok(()));
    }

    /// Whether the abortable error is a Produce refused for a stale producer epoch.
    fn epoch_refused(&self) -> bool {
        matches!(
            self.last_error,
            Some(Error::Broker {
                code: ErrorCode::InvalidProducerEpoch,
                ..
            })
        )
    }

    /// InitProducerId answered (a first id, or the bump after an abort). `v2`: the
    /// coordinator's broker finalized transaction version 2.
    pub fn producer_id_received(&mut self, v2: bool) {
        self.v2 = v2;
        if self.bumping {
            self.transaction_done();
            return;
        }
        if self.state == State::Initializing {
            self.state = State::Ready;
            self.finish(Ok(()));
        }
    }

    /// AddPartitionsToTxn added `added` (the rest of the request failed, see
    /// [`Inner::abortable`] / [`Inner::fatal`], or is retried: `retry`).
    pub fn partitions_added(&mut self, added: &[TopicPartition], retry: &[TopicPartition]) {
        for tp in added {
            self.adding.remove(tp);
            self.in_transaction.insert(tp.clone());
            self.started = true;
        }
        if !added.is_empty() {
            self.partitions_version += 1;
        }
        for tp in retry {
            if self.adding.remove(tp) {
                self.new_partitions.insert(tp.clone());
            }
        }
    }

    /// AddPartitionsToTxn for `partitions` went out.
    pub fn sending_partitions(&mut self, partitions: &[TopicPartition]) {
        for tp in partitions {
            self.new_partitions.remove(tp);
            self.adding.insert(tp.clone());
        }
    }

    /// AddPartitionsToTxn failed for good (an abortable error): the partitions stay out
    /// of the transaction, and their batches fail with the abort.
    pub fn add_partitions_failed_for_good(&mut self) {
        self.adding.clear();
        self.new_partitions.clear();
    }

    /// The request that was adding partitions failed as a whole: they are added again.
    pub fn add_partitions_failed(&mut self) {
        let adding = std::mem::take(&mut self.adding);
        self.new_partitions.extend(adding);
    }

    /// AddOffsetsToTxn succeeded: TxnOffsetCommit comes next.
    pub fn offsets_added(&mut self) {
        self.started = true;
        if let Some(Pending {
            op: Op::Offsets { added, .. },
            ..
        }) = self.pending.as_mut()
        {
            *added = true;
        }
    }

    /// TxnOffsetCommit went out (under KIP-890 it adds the group to the transaction).
    pub fn offsets_sent(&mut self) {
        self.started = true;
    }

    /// TxnOffsetCommit committed the offsets of `done`; the rest are retried (an empty
    /// rest completes the call).
    pub fn offsets_committed(&mut self, done: &HashSet<TopicPartition>) {
        let Some(Pending {
            op: Op::Offsets { offsets, .. },
            ..
        }) = self.pending.as_mut()
        else {
            return;
        };
        offsets.retain(|(tp, _)| !done.contains(tp));
        if offsets.is_empty() {
            self.finish(Ok(()));
        }
    }

    /// EndTxn succeeded. Returns whether the epoch must be bumped next (classic protocol,
    /// after an abort that followed a failed batch).
    pub fn ended(&mut self, v2: bool) -> bool {
        let abort = matches!(
            self.pending.as_ref().map(|p| &p.op),
            Some(Op::End { commit: false })
        );
        if abort && self.bump_after_abort && !self.v2 {
            self.bumping = true;
            return true;
        }
        self.transaction_done();
        self.v2 = v2;
        false
    }

    /// A batch of the transaction failed for good (`error`), or a coordinator request
    /// failed with an abortable error: the transaction can only be aborted. Errors during
    /// an abort change nothing.
    pub fn abortable(&mut self, error: Error) {
        if !self.v2 {
            self.bump_after_abort = true;
        }
        match self.state {
            State::InTransaction | State::Committing | State::Initializing => {
                log::warn!("the transaction must be aborted: {error}");
                self.state = State::AbortableError;
                self.last_error = Some(error.clone());
                if !matches!(
                    self.pending.as_ref().map(|p| &p.op),
                    Some(Op::End { commit: false })
                ) {
                    self.finish(Err(Error::TransactionAbortable(Box::new(error))));
                }
            }
            _ => {}
        }
    }

    /// A coordinator request of the abort failed with an abortable error: the abort call
    /// fails with it and may be made again.
    pub fn abort_failed(&mut self, error: Error) {
        self.probe = None;
        if self.state == State::Aborting {
            self.state = State::AbortableError;
            self.last_error = Some(error.clone());
            self.bumping = false;
            self.finish(Err(error));
        }
    }

    /// The producer cannot go on (fenced, authorization, unsupported version).
    pub fn fatal(&mut self, error: Error) {
        self.probe = None;
        if self.state != State::FatalError {
            log::error!("the transactional producer failed: {error}");
            self.state = State::FatalError;
            self.last_error = Some(error.clone());
        }
        self.finish(Err(error));
    }

    /// A TxnOffsetCommit or AddOffsetsToTxn request failed with `error` that ends only the
    /// offsets call (abortable).
    pub fn pending_is_end(&self) -> Option<bool> {
        match self.pending.as_ref().filter(|p| p.result.is_none())?.op {
            Op::End { commit } => Some(commit),
            _ => None,
        }
    }
}

/// What a transactional request's error code means (Java's `TransactionManager` handlers).
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    /// Send it again after the retry backoff.
    Retry,
    /// The coordinator moved: find it again, then send it again.
    FindCoordinator,
    /// The transaction must be aborted.
    Abortable(Error),
    /// The producer cannot go on.
    Fatal(Error),
}

/// The verdict on `code` answering `api` (a request name, for messages). `producer_id`
/// codes (UNKNOWN_PRODUCER_ID) are abortable: the abort bumps the epoch.
pub(crate) fn verdict(api: &str, code: ErrorCode, message: Option<String>) -> Verdict {
    let broker = || Error::Broker {
        code,
        message: message.clone(),
    };
    match code {
        ErrorCode::NotCoordinator | ErrorCode::CoordinatorNotAvailable => Verdict::FindCoordinator,
        ErrorCode::ProducerFenced | ErrorCode::InvalidProducerEpoch => {
            Verdict::Fatal(Error::Fenced(format!(
                "{api} answered {}: another producer with the same transactional.id took over",
                code.name()
            )))
        }
        ErrorCode::TransactionalIdAuthorizationFailed
        | ErrorCode::ClusterAuthorizationFailed
        | ErrorCode::InvalidTxnState
        | ErrorCode::InvalidProducerIdMapping
        | ErrorCode::UnsupportedVersion
        | ErrorCode::UnsupportedForMessageFormat
        | ErrorCode::InvalidTransactionTimeout => Verdict::Fatal(Error::Fatal(format!(
            "{api} failed with {}{}",
            code.name(),
            message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        ))),
        _ if code.is_retriable() => Verdict::Retry,
        ErrorCode::ConcurrentTransactions => Verdict::Retry,
        _ => Verdict::Abortable(broker()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn soon() -> Option<Instant> {
        Some(Instant::now() + Duration::from_millis(50))
    }

    /// A manager past init_transactions (the sender's side played by hand).
    fn ready(v2: bool) -> TransactionManager {
        let m = TransactionManager::new("tx".into(), 60_000);
        let id = m.begin_init().unwrap();
        assert!(matches!(
            m.lock().next_request(true),
            Some(Next::InitProducerId { bump: false })
        ));
        m.lock().producer_id_received(v2);
        m.wait(id, "init_transactions", soon()).unwrap();
        m
    }

    fn illegal<T: std::fmt::Debug>(r: Result<T, Error>) {
        assert!(matches!(r, Err(Error::IllegalState(_))), "{r:?}");
    }

    #[test]
    fn calls_out_of_order_are_illegal_and_change_nothing() {
        let m = TransactionManager::new("tx".into(), 60_000);
        illegal(m.check_send(&tp(0)));
        illegal(m.begin());
        illegal(m.begin_end(true));
        illegal(m.begin_end(false));
        let m = ready(false);
        illegal(m.begin_init());
        illegal(m.check_send(&tp(0)));
        illegal(m.begin_end(true));
        illegal(m.begin_send_offsets(vec![], &ConsumerGroupMetadata::new("g")));
        m.begin().unwrap();
        illegal(m.begin());
        assert_eq!(m.lock().state, State::InTransaction);
    }

    #[test]
    fn classic_partitions_join_through_add_partitions_before_they_drain() {
        let m = ready(false);
        m.begin().unwrap();
        assert_eq!(m.check_send(&tp(0)).unwrap(), SendCheck::OkNewPartition);
        assert_eq!(m.check_send(&tp(0)).unwrap(), SendCheck::Ok);
        assert!(!m.lock().partitions().contains(&tp(0)));
        let next = m.lock().next_request(false);
        let Some(Next::AddPartitions(list)) = next else {
            panic!("{next:?}")
        };
        assert_eq!(list, vec![tp(0)]);
        m.lock().sending_partitions(&list);
        // Not sent again while in flight.
        assert!(m.lock().next_request(false).is_none());
        m.lock().partitions_added(&list, &[]);
        assert!(m.lock().partitions().contains(&tp(0)));
        // Commit waits for the batches, then ends the started transaction.
        let id = m.begin_end(true).unwrap();
        illegal(m.check_send(&tp(1)));
        assert!(m.lock().next_request(false).is_none());
        assert!(matches!(
            m.lock().next_request(true),
            Some(Next::EndTxn { commit: true })
        ));
        assert!(!m.lock().ended(false));
        m.wait(id, "commit_transaction", soon()).unwrap();
        assert_eq!(m.lock().state, State::Ready);
        assert!(m.lock().partitions().is_empty());
    }

    #[test]
    fn kip_890_partitions_join_at_once() {
        let m = ready(true);
        m.begin().unwrap();
        assert_eq!(m.check_send(&tp(3)).unwrap(), SendCheck::Ok);
        assert!(m.lock().partitions().contains(&tp(3)));
        let id = m.begin_end(true).unwrap();
        assert!(matches!(
            m.lock().next_request(true),
            Some(Next::EndTxn { commit: true })
        ));
        m.lock().ended(true);
        m.wait(id, "commit_transaction", soon()).unwrap();
    }

    #[test]
    fn an_empty_transaction_ends_without_a_request() {
        let m = ready(false);
        m.begin().unwrap();
        let id = m.begin_end(true).unwrap();
        assert!(m.lock().next_request(true).is_none());
        m.wait(id, "commit_transaction", soon()).unwrap();
        assert_eq!(m.lock().state, State::Ready);
    }

    #[test]
    fn an_abortable_error_allows_only_abort_then_the_classic_abort_bumps_the_epoch() {
        let m = ready(false);
        m.begin().unwrap();
        m.check_send(&tp(0)).unwrap();
        m.lock().partitions_added(&[], &[]);
        m.lock().sending_partitions(&[tp(0)]);
        m.lock().partitions_added(&[tp(0)], &[]);
        m.lock().abortable(Error::DeliveryTimeout { elapsed_ms: 1 });
        let abortable = |r: Result<(), Error>| {
            assert!(matches!(r, Err(Error::TransactionAbortable(_))), "{r:?}")
        };
        abortable(m.begin_end(true).map(drop));
        abortable(m.check_send(&tp(0)).map(drop));
        abortable(m.begin());
        assert!(matches!(
            m.lock().undrained_error(),
            Some(Error::TransactionAbortable(_))
        ));
        let id = m.begin_end(false).unwrap();
        assert!(matches!(
            m.lock().undrained_error(),
            Some(Error::TransactionAborted)
        ));
        assert!(matches!(
            m.lock().next_request(true),
            Some(Next::EndTxn { commit: false })
        ));
        assert!(m.lock().ended(false), "the epoch bump comes next");
        assert!(matches!(
            m.lock().next_request(true),
            Some(Next::InitProducerId { bump: true })
        ));
        m.lock().producer_id_received(false);
        m.wait(id, "abort_transaction", soon()).unwrap();
        m.begin().unwrap();
    }

    #[test]
    fn a_timed_out_call_is_resumed_by_the_same_call_and_blocks_the_others() {
        let m = ready(false);
        m.begin().unwrap();
        m.check_send(&tp(0)).unwrap();
        let id = m.begin_end(true).unwrap();
        let timed_out = m.wait(id, "commit_transaction", soon());
        assert!(
            matches!(timed_out, Err(Error::Timeout { .. })),
            "{timed_out:?}"
        );
        illegal(m.begin_end(false));
        illegal(m.begin());
        assert_eq!(m.begin_end(true).unwrap(), id, "the same call resumes");
        m.lock().finish(Ok(()));
        m.wait(id, "commit_transaction", soon()).unwrap();
    }

    #[test]
    fn fatal_errors_end_every_call() {
        let m = ready(false);
        m.begin().unwrap();
        let id = m.begin_end(true).unwrap();
        m.lock().fatal(Error::Fenced("newer producer".into()));
        assert!(matches!(
            m.wait(id, "commit_transaction", soon()),
            Err(Error::Fenced(_))
        ));
        assert!(matches!(m.begin(), Err(Error::Fenced(_))));
        assert!(matches!(m.check_send(&tp(0)), Err(Error::Fenced(_))));
        assert!(matches!(m.begin_end(false), Err(Error::Fenced(_))));
        assert!(matches!(m.begin_init(), Err(Error::Fenced(_))));
    }

    #[test]
    fn coordinator_errors_are_classified_as_in_java() {
        let v = |c| verdict("EndTxn", c, None);
        assert!(matches!(
            v(ErrorCode::NotCoordinator),
            Verdict::FindCoordinator
        ));
        assert!(matches!(
            v(ErrorCode::CoordinatorNotAvailable),
            Verdict::FindCoordinator
        ));
        assert!(matches!(
            v(ErrorCode::ConcurrentTransactions),
            Verdict::Retry
        ));
        assert!(matches!(
            v(ErrorCode::CoordinatorLoadInProgress),
            Verdict::Retry
        ));
        assert!(matches!(
            v(ErrorCode::ProducerFenced),
            Verdict::Fatal(Error::Fenced(_))
        ));
        assert!(matches!(
            v(ErrorCode::InvalidProducerEpoch),
            Verdict::Fatal(Error::Fenced(_))
        ));
        assert!(matches!(
            v(ErrorCode::TransactionalIdAuthorizationFailed),
            Verdict::Fatal(Error::Fatal(_))
        ));
        assert!(matches!(
            v(ErrorCode::TransactionAbortable),
            Verdict::Abortable(_)
        ));
        assert!(matches!(
            v(ErrorCode::GroupAuthorizationFailed),
            Verdict::Abortable(_)
        ));
    }

    #[test]
    fn a_commit_after_a_stale_epoch_aborts_to_tell_fencing_from_a_timeout() {
        let stale = || Error::Broker {
            code: ErrorCode::InvalidProducerEpoch,
            message: None,
        };
        // Not fenced (the coordinator timed the transaction out): the commit fails
        // abortably, and the user's abort then completes without a request.
        let m = ready(true);
        m.begin().unwrap();
        m.check_send(&tp(0)).unwrap();
        m.lock().abortable(stale());
        let id = m.begin_end(true).unwrap();
        assert!(matches!(
            m.lock().next_request(true),
            Some(Next::EndTxn { commit: false })
        ));
        m.lock().ended(true);
        assert!(matches!(
            m.wait(id, "commit_transaction", soon()),
            Err(Error::TransactionAbortable(_))
        ));
        let id = m.begin_end(false).unwrap();
        assert!(m.lock().next_request(true).is_none());
        m.wait(id, "abort_transaction", soon()).unwrap();
        m.begin().unwrap();
        // Fenced: the abort's PRODUCER_FENCED ends the commit with `Fenced`.
        let m = ready(true);
        m.begin().unwrap();
        m.check_send(&tp(0)).unwrap();
        m.lock().abortable(stale());
        let id = m.begin_end(true).unwrap();
        m.lock().fatal(Error::Fenced("newer producer".into()));
        assert!(matches!(
            m.wait(id, "commit_transaction", soon()),
            Err(Error::Fenced(_))
        ));
    }

    #[test]
    fn a_send_that_fails_before_buffering_makes_the_transaction_abortable() {
        let m = ready(true);
        m.begin().unwrap();
        m.send_failed(&Error::IllegalState("x".into()));
        assert_eq!(m.lock().state, State::InTransaction);
        m.send_failed(&Error::RecordTooLarge {
            size: 2,
            limit: 1,
            setting: "max.request.size",
        });
        assert_eq!(m.lock().state, State::AbortableError);
    }

    #[test]
    fn a_send_failing_after_the_commit_began_fails_the_commit() {
        // Review finding: a send passed check_send, then the commit began, then the
        // append failed (no buffer memory): the commit must not go through without it.
        let m = ready(true);
        m.begin().unwrap();
        m.check_send(&tp(0)).unwrap();
        let id = m.begin_end(true).unwrap();
        m.send_failed(&Error::BufferExhausted { waited_ms: 1 });
        assert!(m.lock().next_request(true).is_none(), "no EndTxn(commit)");
        assert!(matches!(
            m.wait(id, "commit_transaction", soon()),
            Err(Error::TransactionAbortable(_))
        ));
    }
}

//! The idempotent producer's bookkeeping: its producer id and epoch, and each partition's
//! sequence numbers.
//!
//! # Ownership
//!
//! [`Idempotence`] is owned by the sender thread and touched by nothing else, so it has no
//! locks. It is pure state: the sender asks it what to do with a batch ([`Idempotence::drain`],
//! [`Idempotence::on_error`]) and tells it what happened ([`Idempotence::acked`],
//! [`Idempotence::gave_up`], [`Idempotence::producer_id_received`]). The unit tests at the
//! bottom drive every rule with decoded responses, without sockets.
//!
//! # The rules (Java's `TransactionManager` for an idempotent producer is the reference)
//!
//! - Nothing is produced before InitProducerId gave a producer id and epoch.
//! - A batch gets its base sequence when it is drained for the first time; the partition's
//!   next sequence advances by its record count (wrapping at `i32::MAX` as Kafka does). A
//!   retried batch keeps producer id, epoch and base sequence, so its bytes are identical.
//! - A partition may have several batches in flight (up to max.in.flight per connection).
//!   A batch that already has a sequence (a retry) is sent only when it is the partition's
//!   oldest unresolved batch and nothing of the partition is in flight: during recovery a
//!   partition has one request in flight, so the broker sees sequences in order again.
//! - Two conditions hold new batches of a partition back (Kafka's side makes both needed):
//!   - Until the broker acknowledged a batch of the partition under the current producer id
//!     and epoch, the partition has one batch in flight. A broker with no state for the
//!     producer on a partition accepts any first sequence (KIP-360), so a second batch
//!     arriving after a first one refused retriably (NOT_LEADER_OR_FOLLOWER while a new
//!     partition's leader starts) would be written ahead of it.
//!   - While a batch whose fate is unknown is unresolved, only retries go. Its fate is
//!     unknown when its request was lost with the connection or timed out, and when the
//!     broker answered it with a retriable error: some of those come after the append
//!     (NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT waiting for replicas), and
//!     none promises that nothing was written. Kafka deduplicates a
//!     retry only against the last five batches it wrote for the producer and partition;
//!     new batches written behind an unresolved one could push it out of that window, and
//!     its retry would then be refused OUT_OF_ORDER_SEQUENCE_NUMBER instead of being
//!     recognised as a duplicate.
//! - DUPLICATE_SEQUENCE_NUMBER means the broker already holds the batch: success.
//! - OUT_OF_ORDER_SEQUENCE_NUMBER / UNKNOWN_PRODUCER_ID / INVALID_PRODUCER_EPOCH on a batch
//!   that is *not* the partition's oldest unresolved one means an earlier batch failed or
//!   is being retried: retry it as it is. On the oldest one, two cases cannot be resent
//!   without risking a duplicate or a reordering, and fail with the broker's error instead
//!   (Java fails them too, after retrying until delivery.timeout.ms): a batch whose fate is
//!   unknown (it may be in the log, beyond what the broker still deduplicates), and a batch
//!   behind which a later batch of the partition was acknowledged (the broker skipped its
//!   sequences). Otherwise the broker holds nothing of the partition past the last
//!   acknowledged sequence: the partition is *reset*. A reset asks
//!   for a new epoch (InitProducerId with the current id and epoch, KIP-360) and, once the
//!   partition has nothing in flight, restarts its sequences at 0 under the new epoch; every
//!   batch of the partition still unacknowledged is then sequenced again, in queue order.
//!   Nothing is duplicated: the broker wrote none of them.
//! - A batch that fails for good after the broker answered it with a non-retriable error was
//!   not written, so it leaves a gap: if it was the partition's newest batch its sequences
//!   are reused, otherwise the partition is reset. A batch that fails for good without a
//!   definite answer (out of retries or delivery time after a lost connection) may have been
//!   written: nothing is reset, and the broker's answer to the next batch decides.
//! - Other partitions move to a new epoch lazily, when they have no unresolved batch left
//!   (their old-epoch retries must keep their bytes).
//! - Fatal errors (authorization, unsupported version, fenced) end the producer.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::error::{Error, ErrorCode};
use crate::record::TopicPartition;
use crate::record_batch::ProducerState;

/// A producer id and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ProducerIdEpoch {
    pub id: i64,
    pub epoch: i16,
}

impl ProducerIdEpoch {
    fn of(state: ProducerState) -> Self {
        ProducerIdEpoch {
            id: state.producer_id,
            epoch: state.producer_epoch,
        }
    }
}

/// What to do with the front batch of a partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Drain {
    /// Not now: no producer id yet, a retry waiting its turn, or a reset waiting for the
    /// partition's requests in flight.
    Wait,
    /// Send it with this producer state (new, reassigned, or the batch's own).
    Send(ProducerState),
}

/// What to do with a batch the broker answered with an error.
#[derive(Debug, Clone)]
pub(crate) enum Verdict {
    /// Retry (the sender still applies retries and delivery.timeout.ms).
    Retry,
    /// Fail the batch with the broker's error (non-retriable).
    Fail,
    /// The producer cannot continue: fail it with this error.
    Fatal(Error),
}

/// Sequence state of one partition.
#[derive(Debug, Default)]
struct PartitionSequences {
    /// The producer id and epoch the sequences below belong to.
    owner: Option<ProducerIdEpoch>,
    /// Base sequence of the next new batch.
    next_sequence: i32,
    /// Batches with a sequence under `owner` that are not acknowledged or given up yet:
    /// queue position (`ProducerBatch::position`) → (base sequence, record count).
    unresolved: BTreeMap<u64, (i32, i32)>,
    /// Restart at sequence 0 under a newer epoch once nothing is in flight.
    reset: bool,
    /// Unresolved batches whose last send has no answer (lost connection, request timeout):
    /// they may be in the log. New batches wait while there are any.
    unknown_fate: BTreeSet<u64>,
    /// The broker acknowledged a batch of the partition under `owner`.
    acked_any: bool,
    /// The newest queue position acknowledged under `owner`.
    last_acked: Option<u64>,
}

/// The idempotent producer's state. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Idempotence {
    /// The id and epoch new batches get; `None` until InitProducerId answered.
    current: Option<ProducerIdEpoch>,
    /// A reset partition waits for a new epoch.
    bump_needed: bool,
    /// The last bump was refused: ask for a new producer id instead.
    fresh_id_needed: bool,
    fatal: Option<Error>,
    partitions: HashMap<TopicPartition, PartitionSequences>,
    /// The batches belong to transactions (the flag in their headers).
    transactional: bool,
}

impl Idempotence {
    pub fn new() -> Self {
        Self::default()
    }

    /// The bookkeeping of a transactional producer: its batches carry the transactional
    /// flag, and its producer id comes from the transaction coordinator.
    pub fn transactional() -> Self {
        Idempotence {
            transactional: true,
            ..Self::default()
        }
    }

    /// The producer id and epoch new batches get, once known.
    pub fn current(&self) -> Option<ProducerIdEpoch> {
        self.current
    }

    /// Whether an InitProducerId request is needed (first id, or an epoch bump).
    pub fn needs_producer_id(&self) -> bool {
        self.fatal.is_none() && (self.current.is_none() || self.bump_needed)
    }

    /// The (producer id, epoch) to put in InitProducerId: the current ones to bump the
    /// epoch (v3+), or -1/-1 for a new id.
    pub fn init_request_ids(&self) -> (i64, i16) {
        match self.current {
            Some(c) if !self.fresh_id_needed => (c.id, c.epoch),
            _ => (-1, -1),
        }
    }

    /// The fatal error, once the producer failed.
    #[cfg(test)]
    pub fn fatal(&self) -> Option<&Error> {
        self.fatal.as_ref()
    }

    /// Installs the id and epoch InitProducerId returned.
    pub fn producer_id_received(&mut self, id: i64, epoch: i16) {
        let new = ProducerIdEpoch { id, epoch };
        if self.current != Some(new) {
            log::info!("idempotent producer id {id}, epoch {epoch}");
        }
        self.current = Some(new);
        self.bump_needed = false;
        self.fresh_id_needed = false;
    }

    /// InitProducerId failed with `code`; returns the fatal error if the producer cannot go
    /// on (retriable codes are retried by the caller after a backoff).
    pub fn producer_id_failed(
        &mut self,
        code: ErrorCode,
        message: Option<String>,
    ) -> Option<Error> {
        if code.is_retriable() {
            return None;
        }
        let bumping = self.current.is_some() && !self.fresh_id_needed;
        let denied = matches!(
            code,
            ErrorCode::ClusterAuthorizationFailed
                | ErrorCode::TransactionalIdAuthorizationFailed
                | ErrorCode::UnsupportedVersion
        );
        if bumping && !denied {
            // The broker would not bump this epoch (an old broker, an expired id, or
            // librdkafka's mock cluster, which answers an idempotent producer's bump with
            // INVALID_PRODUCER_ID_MAPPING): start over with a new producer id, as Java does.
            log::warn!(
                "epoch bump refused with {}; asking for a new producer id",
                code.name()
            );
            self.fresh_id_needed = true;
            return None;
        }
        let error = Error::Fatal(format!(
            "InitProducerId failed with {}{}",
            code.name(),
            message.map(|m| format!(": {m}")).unwrap_or_default()
        ));
        self.fatal = Some(error.clone());
        Some(error)
    }

    /// Fails the producer with `error` (for example InitProducerId unsupported).
    pub fn set_fatal(&mut self, error: Error) {
        self.fatal.get_or_insert(error);
    }

    /// Decides about the front batch of `tp` at queue position `position` with
    /// `record_count` records and producer state `assigned` (`None` before its first send),
    /// given the partition's requests in flight. Assigns (or reassigns) its sequence when
    /// it may go.
    pub fn drain(
        &mut self,
        tp: &TopicPartition,
        position: u64,
        assigned: Option<ProducerState>,
        record_count: i32,
        in_flight: usize,
    ) -> Drain {
        let Some(current) = self.current.filter(|_| self.fatal.is_none()) else {
            return Drain::Wait;
        };
        let p = self.partitions.entry(tp.clone()).or_default();
        if p.reset {
            if in_flight > 0 || p.owner == Some(current) {
                return Drain::Wait; // answers outstanding, or the new epoch not here yet
            }
            log::info!(
                "{tp}: sequences restart at 0 under epoch {} of producer {}",
                current.epoch,
                current.id
            );
            *p = PartitionSequences {
                owner: Some(current),
                ..PartitionSequences::default()
            };
        }
        if let Some(state) = assigned.filter(|s| Some(ProducerIdEpoch::of(*s)) == p.owner) {
            // A retry: only as the oldest unresolved batch, with nothing else in flight.
            let oldest = p.unresolved.keys().next() == Some(&position);
            return if oldest && in_flight == 0 {
                Drain::Send(state)
            } else {
                Drain::Wait
            };
        }
        if p.owner != Some(current) {
            if !p.unresolved.is_empty() {
                return Drain::Wait; // old-epoch batches first
            }
            *p = PartitionSequences {
                owner: Some(current),
                ..PartitionSequences::default()
            };
        }
        if !p.unknown_fate.is_empty() || (!p.acked_any && !p.unresolved.is_empty()) {
            // See the module docs: retries of unknown fate first; one batch until the
            // broker knows the producer on this partition.
            return Drain::Wait;
        }
        let state = ProducerState {
            producer_id: current.id,
            producer_epoch: current.epoch,
            base_sequence: p.next_sequence,
            transactional: self.transactional,
        };
        p.next_sequence = increment_sequence(p.next_sequence, record_count);
        p.unresolved
            .insert(position, (state.base_sequence, record_count));
        Drain::Send(state)
    }

    /// The broker acknowledged the batch (or answered DUPLICATE_SEQUENCE_NUMBER).
    pub fn acked(&mut self, tp: &TopicPartition, position: u64, state: ProducerState) {
        if let Some(p) = self.owned(tp, state) {
            p.unresolved.remove(&position);
            p.unknown_fate.remove(&position);
            p.acked_any = true;
            p.last_acked = p.last_acked.max(Some(position));
        }
    }

    /// The batch's request got no answer (its connection was lost, or it timed out): the
    /// broker may have written it.
    pub fn fate_unknown(&mut self, tp: &TopicPartition, position: u64, state: ProducerState) {
        if let Some(p) = self.owned(tp, state) {
            if p.unresolved.contains_key(&position) {
                p.unknown_fate.insert(position);
            }
        }
    }

    /// The broker answered the batch with `code` (not success, not a duplicate).
    pub fn on_error(
        &mut self,
        tp: &TopicPartition,
        position: u64,
        state: ProducerState,
        code: ErrorCode,
    ) -> Verdict {
        if is_fatal(code) {
            let error = Error::Fatal(format!(
                "the broker answered a produce to {tp} with {}",
                code.name()
            ));
            self.fatal.get_or_insert(error.clone());
            return Verdict::Fatal(error);
        }
        let sequence_error = matches!(
            code,
            ErrorCode::OutOfOrderSequenceNumber
                | ErrorCode::UnknownProducerId
                | ErrorCode::InvalidProducerEpoch
        );
        if !sequence_error {
            if !code.is_retriable() {
                return Verdict::Fail;
            }
            // Some retriable answers come after the leader appended the batch
            // (NOT_ENOUGH_REPLICAS_AFTER_APPEND, REQUEST_TIMED_OUT waiting for replicas, a
            // storage error half-way); none promises that nothing was written. So the retry
            // must still meet its first write within Kafka's deduplication window.
            self.fate_unknown(tp, position, state);
            return Verdict::Retry;
        }
        let Some(p) = self.owned(tp, state) else {
            return Verdict::Retry; // an old epoch's batch: it gets a new sequence
        };
        if p.unresolved.keys().next() != Some(&position) {
            return Verdict::Retry;
        }
        let maybe_written = p.unknown_fate.contains(&position);
        let passed = p.last_acked.is_some_and(|acked| acked > position);
        if maybe_written || passed {
            // Resending could write it twice (it may be in the log already, past what the
            // broker deduplicates) or after later records (the broker took those first). The
            // broker has moved past its sequences either way, so the partition goes on
            // without a reset.
            log::warn!(
                "{tp}: {} on the oldest unacknowledged batch, which {}; failing it rather \
                 than resending it",
                code.name(),
                if maybe_written {
                    "may have been written already"
                } else {
                    "a later acknowledged batch passed"
                }
            );
            p.unresolved.remove(&position);
            p.unknown_fate.remove(&position);
            return Verdict::Fail;
        }
        log::info!(
            "{tp}: {} on the oldest unacknowledged batch; resetting",
            code.name()
        );
        p.reset = true;
        self.bump_needed = true;
        Verdict::Retry
    }

    /// A batch refused as too large was split in two: the halves (queue position, record
    /// count) take over its sequence range, the first from its base sequence.
    pub fn split(
        &mut self,
        tp: &TopicPartition,
        position: u64,
        state: ProducerState,
        halves: [(u64, i32); 2],
    ) {
        let Some(p) = self.owned(tp, state) else {
            return;
        };
        if p.unresolved.remove(&position).is_none() {
            return;
        }
        p.unknown_fate.remove(&position);
        let [(first, first_count), (second, second_count)] = halves;
        p.unresolved
            .insert(first, (state.base_sequence, first_count));
        let second_base = increment_sequence(state.base_sequence, first_count);
        p.unresolved.insert(second, (second_base, second_count));
    }

    /// The batch fails for good. `not_written`: the broker answered it with a non-retriable
    /// error, so it holds none of it; otherwise its fate is unknown.
    pub fn gave_up(
        &mut self,
        tp: &TopicPartition,
        position: u64,
        state: ProducerState,
        not_written: bool,
    ) {
        let Some(p) = self.owned(tp, state) else {
            return;
        };
        let Some((base, count)) = p.unresolved.remove(&position) else {
            return;
        };
        p.unknown_fate.remove(&position);
        if !not_written {
            return;
        }
        let newest = p.unresolved.range(position..).next().is_none()
            && increment_sequence(base, count) == p.next_sequence;
        if newest && !p.reset {
            p.next_sequence = base; // the gap is at the end: reuse its sequences
        } else {
            p.reset = true;
            self.bump_needed = true;
        }
    }

    /// The partition's state if `state` is its current owner's.
    fn owned(
        &mut self,
        tp: &TopicPartition,
        state: ProducerState,
    ) -> Option<&mut PartitionSequences> {
        self.partitions
            .get_mut(tp)
            .filter(|p| p.owner == Some(ProducerIdEpoch::of(state)))
    }
}

/// Errors after which an idempotent producer cannot continue (Java's fatal errors).
pub(crate) fn is_fatal(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::ClusterAuthorizationFailed
            | ErrorCode::TransactionalIdAuthorizationFailed
            | ErrorCode::ProducerFenced
            | ErrorCode::UnsupportedVersion
            | ErrorCode::UnsupportedForMessageFormat
            | ErrorCode::InvalidProducerIdMapping
    )
}

/// `sequence + increment`, wrapping past `i32::MAX` to 0 as Kafka does.
pub(crate) fn increment_sequence(sequence: i32, increment: i32) -> i32 {
    if sequence > i32::MAX - increment {
        increment - (i32::MAX - sequence) - 1
    } else {
        sequence + increment
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::decode_response;
    use crate::protocol::produce::{
        PartitionProduceResponse, ProduceRequest, ProduceResponse, TopicProduceResponse,
    };

    fn tp(p: i32) -> TopicPartition {
        TopicPartition::new("t", p)
    }

    fn ready(id: i64, epoch: i16) -> Idempotence {
        let mut i = Idempotence::new();
        assert!(i.needs_producer_id());
        assert_eq!(i.drain(&tp(0), 0, None, 1, 0), Drain::Wait, "no id yet");
        i.producer_id_received(id, epoch);
        assert!(!i.needs_producer_id());
        i
    }

    fn sent(d: Drain) -> ProducerState {
        match d {
            Drain::Send(s) => s,
            Drain::Wait => panic!("expected a send"),
        }
    }

    fn state(id: i64, epoch: i16, seq: i32) -> ProducerState {
        ProducerState {
            producer_id: id,
            producer_epoch: epoch,
            base_sequence: seq,
            transactional: false,
        }
    }

    /// The error code the broker gave partition 0 of topic `t`, from a Produce response
    /// encoded as a broker would and decoded by our decoder (the sender's input).
    fn decoded_error(code: ErrorCode) -> ErrorCode {
        let response = ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: "t".into(),
                partitions: vec![PartitionProduceResponse {
                    index: 0,
                    error_code: code.code(),
                    base_offset: -1,
                    ..PartitionProduceResponse::default()
                }],
            }],
            ..ProduceResponse::default()
        };
        let mut body = Vec::new();
        response.encode_body(9, &mut body);
        let mut frame = 7i32.to_be_bytes().to_vec();
        frame.push(0); // empty tagged fields of the flexible response header
        frame.extend_from_slice(&body);
        let (_, decoded) = decode_response::<ProduceRequest>(9, &frame).expect("decodes");
        ErrorCode::from_code(decoded.responses[0].partitions[0].error_code)
    }

    /// A partition whose first batch (position 0, one record) the broker acknowledged.
    fn known(i: &mut Idempotence, p: i32) -> ProducerState {
        let w = sent(i.drain(&tp(p), 0, None, 1, 0));
        i.acked(&tp(p), 0, w);
        w
    }

    #[test]
    fn sequences_are_assigned_at_drain_per_partition_and_kept_on_retry() {
        let mut i = ready(7, 0);
        let w = sent(i.drain(&tp(0), 0, None, 1, 0));
        assert_eq!(
            i.drain(&tp(0), 1, None, 3, 1),
            Drain::Wait,
            "one batch in flight until the broker acknowledged one"
        );
        i.acked(&tp(0), 0, w);
        let a = sent(i.drain(&tp(0), 1, None, 3, 0));
        let b = sent(i.drain(&tp(0), 2, None, 2, 1));
        let c = sent(i.drain(&tp(1), 0, None, 5, 0));
        assert_eq!(
            (a.base_sequence, b.base_sequence, c.base_sequence),
            (1, 4, 0)
        );
        assert_eq!((a.producer_id, a.producer_epoch), (7, 0));
        // b's request was lost with the connection: while a is unresolved b waits, ...
        assert_eq!(i.drain(&tp(0), 2, Some(b), 2, 0), Drain::Wait);
        // ... a retries byte for byte once nothing is in flight, then b.
        assert_eq!(i.drain(&tp(0), 1, Some(a), 3, 1), Drain::Wait);
        assert_eq!(i.drain(&tp(0), 1, Some(a), 3, 0), Drain::Send(a));
        i.acked(&tp(0), 1, a);
        assert_eq!(i.drain(&tp(0), 2, Some(b), 2, 0), Drain::Send(b));
        i.acked(&tp(0), 2, b);
        let d = sent(i.drain(&tp(0), 3, None, 1, 0));
        assert_eq!(d.base_sequence, 6);
    }

    #[test]
    fn duplicate_is_success_and_sequence_errors_behind_a_failed_batch_retry() {
        let mut i = ready(7, 0);
        known(&mut i, 0);
        let a = sent(i.drain(&tp(0), 1, None, 1, 0));
        let b = sent(i.drain(&tp(0), 2, None, 1, 1));
        // a failed retriably (its answer NOT_LEADER), b came back OUT_OF_ORDER: b is not
        // the oldest, so it is simply retried, and no reset happens.
        let code = decoded_error(ErrorCode::NotLeaderOrFollower);
        assert!(matches!(i.on_error(&tp(0), 1, a, code), Verdict::Retry));
        let code = decoded_error(ErrorCode::OutOfOrderSequenceNumber);
        assert!(matches!(i.on_error(&tp(0), 2, b, code), Verdict::Retry));
        assert!(!i.needs_producer_id());
        // a is resent and answered DUPLICATE_SEQUENCE_NUMBER (the sender treats it as
        // success and calls `acked`); then b goes with its original sequence.
        assert_eq!(i.drain(&tp(0), 1, Some(a), 1, 0), Drain::Send(a));
        assert_eq!(
            decoded_error(ErrorCode::DuplicateSequenceNumber),
            ErrorCode::DuplicateSequenceNumber
        );
        i.acked(&tp(0), 1, a);
        assert_eq!(i.drain(&tp(0), 2, Some(b), 1, 0), Drain::Send(b));
    }

    #[test]
    fn new_batches_wait_while_a_batch_that_may_be_written_is_unresolved() {
        let mut i = ready(7, 0);
        known(&mut i, 0);
        let a = sent(i.drain(&tp(0), 1, None, 2, 0));
        let b = sent(i.drain(&tp(0), 2, None, 2, 1));
        // The connection dropped with both in flight: either may be in the log.
        i.fate_unknown(&tp(0), 2, b);
        i.fate_unknown(&tp(0), 1, a);
        assert_eq!(i.drain(&tp(0), 3, None, 1, 0), Drain::Wait, "no new batch");
        assert_eq!(i.drain(&tp(0), 1, Some(a), 2, 0), Drain::Send(a));
        // a's retry is answered (a duplicate: success); b still may be written.
        i.acked(&tp(0), 1, a);
        assert_eq!(
            i.drain(&tp(0), 3, None, 1, 0),
            Drain::Wait,
            "b is unresolved"
        );
        assert_eq!(i.drain(&tp(0), 2, Some(b), 2, 0), Drain::Send(b));
        i.acked(&tp(0), 2, b);
        assert_eq!(sent(i.drain(&tp(0), 3, None, 1, 0)), state(7, 0, 5));
    }

    #[test]
    fn a_retriable_error_answer_counts_as_maybe_written() {
        let mut i = ready(7, 0);
        known(&mut i, 0);
        for code in [
            ErrorCode::NotEnoughReplicasAfterAppend,
            ErrorCode::RequestTimedOut,
            ErrorCode::NotLeaderOrFollower,
        ] {
            let a = sent(i.drain(&tp(0), 1, None, 1, 0));
            assert!(matches!(
                i.on_error(&tp(0), 1, a, decoded_error(code)),
                Verdict::Retry
            ));
            assert_eq!(i.drain(&tp(0), 2, None, 1, 0), Drain::Wait, "{code:?}");
            assert_eq!(i.drain(&tp(0), 1, Some(a), 1, 0), Drain::Send(a));
            i.acked(&tp(0), 1, a);
        }
        // A sequence error is a refusal: the batch behind it is not held for it.
        let a = sent(i.drain(&tp(0), 1, None, 1, 0));
        let b = sent(i.drain(&tp(0), 2, None, 1, 1));
        let code = decoded_error(ErrorCode::OutOfOrderSequenceNumber);
        assert!(matches!(i.on_error(&tp(0), 2, b, code), Verdict::Retry));
        i.acked(&tp(0), 1, a);
        assert_eq!(i.drain(&tp(0), 2, Some(b), 1, 0), Drain::Send(b));
        i.acked(&tp(0), 2, b);
        assert_ne!(i.drain(&tp(0), 3, None, 1, 0), Drain::Wait);
    }

    #[test]
    fn an_oldest_batch_that_may_be_written_fails_on_out_of_order_instead_of_being_written_again() {
        let mut i = ready(7, 0);
        known(&mut i, 0);
        let a = sent(i.drain(&tp(0), 1, None, 2, 0));
        i.fate_unknown(&tp(0), 1, a);
        assert_eq!(i.drain(&tp(0), 1, Some(a), 2, 0), Drain::Send(a));
        // Kafka no longer deduplicates it: its retry is refused OUT_OF_ORDER. Resending it
        // under a new epoch could write it twice: it fails, and nothing is reset.
        let code = decoded_error(ErrorCode::OutOfOrderSequenceNumber);
        assert!(matches!(i.on_error(&tp(0), 1, a, code), Verdict::Fail));
        assert!(!i.needs_producer_id(), "no reset");
        i.gave_up(&tp(0), 1, a, true);
        assert!(!i.needs_producer_id(), "no reset");
        assert_eq!(sent(i.drain(&tp(0), 2, None, 1, 0)), state(7, 0, 3));
    }

    #[test]
    fn an_oldest_batch_passed_by_an_acknowledged_later_one_fails_instead_of_landing_behind_it() {
        let mut i = ready(7, 0);
        known(&mut i, 0);
        let a = sent(i.drain(&tp(0), 1, None, 2, 0));
        let b = sent(i.drain(&tp(0), 2, None, 2, 1));
        // a was refused (NOT_LEADER), b written: a broker that had lost the producer's
        // state took b's sequence as its first. a's retry then is OUT_OF_ORDER.
        let code = decoded_error(ErrorCode::NotLeaderOrFollower);
        assert!(matches!(i.on_error(&tp(0), 1, a, code), Verdict::Retry));
        i.acked(&tp(0), 2, b);
        assert_eq!(i.drain(&tp(0), 1, Some(a), 2, 0), Drain::Send(a));
        let code = decoded_error(ErrorCode::OutOfOrderSequenceNumber);
        assert!(matches!(i.on_error(&tp(0), 1, a, code), Verdict::Fail));
        assert!(
            !i.needs_producer_id(),
            "no reset: the broker is past a's sequences"
        );
        assert_eq!(sent(i.drain(&tp(0), 3, None, 1, 0)), state(7, 0, 5));
    }

    #[test]
    fn out_of_order_on_the_oldest_batch_bumps_the_epoch_and_resequences_the_partition() {
        let mut i = ready(7, 0);
        let a = sent(i.drain(&tp(0), 0, None, 2, 0));
        i.acked(&tp(0), 0, a);
        let b = sent(i.drain(&tp(0), 1, None, 2, 0));
        let other = sent(i.drain(&tp(1), 0, None, 4, 0));
        let code = decoded_error(ErrorCode::OutOfOrderSequenceNumber);
        assert!(matches!(i.on_error(&tp(0), 1, b, code), Verdict::Retry));
        assert!(i.needs_producer_id(), "a reset asks for a new epoch");
        assert_eq!(i.init_request_ids(), (7, 0), "bump: current id and epoch");
        assert_eq!(
            i.drain(&tp(0), 1, Some(b), 2, 0),
            Drain::Wait,
            "until the bump"
        );
        i.producer_id_received(7, 1);
        assert_eq!(i.drain(&tp(0), 1, Some(b), 2, 1), Drain::Wait, "in flight");
        let b2 = sent(i.drain(&tp(0), 1, Some(b), 2, 0));
        assert_eq!(b2, state(7, 1, 0), "b restarts the partition at sequence 0");
        assert_eq!(
            i.drain(&tp(0), 2, None, 1, 1),
            Drain::Wait,
            "alone until the new epoch's first acknowledgement"
        );
        i.acked(&tp(0), 1, b2);
        let c = sent(i.drain(&tp(0), 2, None, 1, 0));
        assert_eq!(c, state(7, 1, 2));
        // Partition 1 keeps epoch 0 while its batch is unresolved (a retry keeps its
        // bytes), new batches wait; then it moves to epoch 1 at sequence 0.
        assert_eq!(i.drain(&tp(1), 1, None, 1, 1), Drain::Wait);
        assert_eq!(i.drain(&tp(1), 0, Some(other), 4, 0), Drain::Send(other));
        i.acked(&tp(1), 0, other);
        assert_eq!(sent(i.drain(&tp(1), 1, None, 1, 0)), state(7, 1, 0));
    }

    #[test]
    fn unknown_producer_id_on_the_oldest_batch_resets_too() {
        let mut i = ready(3, 5);
        let a = sent(i.drain(&tp(2), 0, None, 1, 0));
        let code = decoded_error(ErrorCode::UnknownProducerId);
        assert!(matches!(i.on_error(&tp(2), 0, a, code), Verdict::Retry));
        assert!(i.needs_producer_id());
        i.producer_id_received(3, 6);
        assert_eq!(sent(i.drain(&tp(2), 0, Some(a), 1, 0)), state(3, 6, 0));
    }

    #[test]
    fn a_batch_failed_for_good_reuses_or_resets_sequences() {
        let mut i = ready(1, 0);
        known(&mut i, 0);
        // The newest batch fails with a non-retriable answer: its sequences are reused.
        let a = sent(i.drain(&tp(0), 1, None, 3, 0));
        let code = decoded_error(ErrorCode::PolicyViolation);
        assert!(matches!(i.on_error(&tp(0), 1, a, code), Verdict::Fail));
        i.gave_up(&tp(0), 1, a, true);
        assert!(!i.needs_producer_id());
        let b = sent(i.drain(&tp(0), 2, None, 1, 0));
        assert_eq!(b, state(1, 0, 1));
        // A failure with a later batch in flight leaves a gap: reset.
        let c = sent(i.drain(&tp(0), 3, None, 1, 1));
        i.gave_up(&tp(0), 2, b, true);
        assert!(i.needs_producer_id());
        i.producer_id_received(1, 1);
        let c2 = sent(i.drain(&tp(0), 3, Some(c), 1, 0));
        assert_eq!(c2, state(1, 1, 0));
        i.acked(&tp(0), 3, c2);
        // Unknown fate (lost connection, out of time): no reset; the broker decides.
        let d = sent(i.drain(&tp(0), 4, None, 1, 0));
        i.gave_up(&tp(0), 4, d, false);
        assert!(!i.needs_producer_id());
    }

    #[test]
    fn fatal_errors_stop_the_producer_and_refused_bumps_ask_for_a_new_id() {
        let mut i = ready(9, 0);
        let a = sent(i.drain(&tp(0), 0, None, 1, 0));
        let code = decoded_error(ErrorCode::ClusterAuthorizationFailed);
        assert!(matches!(
            i.on_error(&tp(0), 0, a, code),
            Verdict::Fatal(Error::Fatal(_))
        ));
        assert!(i.fatal().is_some());
        assert!(!i.needs_producer_id());
        assert_eq!(i.drain(&tp(0), 1, None, 1, 0), Drain::Wait);

        let mut i = ready(9, 0);
        let a = sent(i.drain(&tp(0), 0, None, 1, 0));
        i.on_error(&tp(0), 0, a, ErrorCode::OutOfOrderSequenceNumber);
        assert_eq!(i.init_request_ids(), (9, 0));
        assert!(i
            .producer_id_failed(ErrorCode::InvalidProducerIdMapping, None)
            .is_none());
        assert_eq!(i.init_request_ids(), (-1, -1), "then a new id");
        assert!(i
            .producer_id_failed(ErrorCode::CoordinatorNotAvailable, None)
            .is_none());
        let fatal = i.producer_id_failed(ErrorCode::ClusterAuthorizationFailed, None);
        assert!(matches!(fatal, Some(Error::Fatal(_))));
    }

    #[test]
    fn the_halves_of_a_split_batch_take_over_its_sequence_range() {
        let mut i = ready(4, 2);
        known(&mut i, 0);
        let a = sent(i.drain(&tp(0), 1, None, 10, 0));
        let b = sent(i.drain(&tp(0), 100, None, 5, 1));
        assert_eq!(b.base_sequence, 11);
        // a was refused as too large: its halves (positions 1 and 50) go first, in order.
        i.split(&tp(0), 1, a, [(1, 5), (50, 5)]);
        let second = state(4, 2, 6);
        assert_eq!(i.drain(&tp(0), 50, Some(second), 5, 0), Drain::Wait);
        assert_eq!(i.drain(&tp(0), 1, Some(a), 5, 0), Drain::Send(a));
        i.acked(&tp(0), 1, a);
        assert_eq!(i.drain(&tp(0), 50, Some(second), 5, 0), Drain::Send(second));
        i.acked(&tp(0), 50, second);
        assert_eq!(i.drain(&tp(0), 100, Some(b), 5, 0), Drain::Send(b));
    }

    #[test]
    fn sequences_wrap_like_kafka() {
        assert_eq!(increment_sequence(0, 5), 5);
        assert_eq!(increment_sequence(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(increment_sequence(i32::MAX, 1), 0);
        assert_eq!(increment_sequence(i32::MAX - 2, 5), 2);
    }
}

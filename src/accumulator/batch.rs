//! One producer batch: its records' wire bytes, their completions, and its life.
//!
//! Life of a batch: **open** (records are appended under the partition lock) → **closed**
//! (full, or drained: no more appends) → **in flight** (owned by the sender's in-flight
//! table) → **done** (completed exactly once, then dropped, which returns its memory).
//! A retriable failure moves an in-flight batch back to the front of its partition queue;
//! its encoded bytes are kept, so a retry resends exactly the same batch.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::pool::Reservation;
use crate::delivery::{
    run_one, BatchOutcome, BatchResult, CallbackQueue, RecordCallback, RecordSlot,
};
use crate::error::Error;
use crate::record::TopicPartition;
use crate::record_batch::{set_producer_state, Header, ProducerState, RecordBatchBuilder};

/// Queue positions of consecutive batches differ by this much, leaving room for the halves
/// of up to [`MAX_SPLIT_DEPTH`] nested splits in between.
pub(crate) const POSITION_SPACING: u64 = 1 << 20;
/// The most times a batch is split (a batch of 2^20 records would need more).
const MAX_SPLIT_DEPTH: u32 = 19;

/// What one record's callback is charged against buffer.memory: its entry in the batch's
/// callback list plus the user's boxed closure (an estimate for a closure of up to 16
/// bytes and the allocator's overhead), so that memory held for callbacks is bounded by
/// buffer.memory like the records themselves.
pub(crate) const CALLBACK_COST: usize = std::mem::size_of::<RecordCallback>() + 32;
/// Callbacks a batch reserves room for at a time.
pub(crate) const CALLBACKS_PER_CHUNK: usize = 64;

/// A record ready to be appended: already serialized, partition chosen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendRecord<'a> {
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
    /// [`RecordBatchBuilder::payload_size`] of the record, computed once by `send`.
    pub payload: usize,
}

impl AppendRecord<'_> {
    fn sizes(&self) -> (i32, i32) {
        let size = |b: Option<&[u8]>| b.map_or(-1, |b| i32::try_from(b.len()).unwrap_or(i32::MAX));
        (size(self.key), size(self.value))
    }
}

/// How a record reports its result.
pub(crate) enum Completion {
    /// Through the [`crate::SendFuture`] that `append` returns.
    Future,
    /// Through a callback on the callback thread.
    Callback(crate::delivery::Callback),
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Completion::Future => "Future",
            Completion::Callback(_) => "Callback",
        })
    }
}

/// A batch of records for one partition.
#[derive(Debug)]
pub(crate) struct ProducerBatch {
    pub id: u64,
    /// Position in its partition's queue, assigned under the partition lock when the batch
    /// is queued ([`POSITION_SPACING`] apart); a retried batch goes back to its place by
    /// this number, and the halves of a split batch take places inside its gap.
    pub position: u64,
    /// How many splits made this batch (0 for a batch made by `send`).
    split_depth: u32,
    pub tp: TopicPartition,
    /// The open records; `None` once encoded.
    builder: Option<RecordBatchBuilder>,
    /// The wire bytes, once the batch was drained for the first time.
    encoded: Option<Bytes>,
    /// The batch compressed by the appending thread that closed it, with no producer state
    /// yet: the header is patched in place when the batch is first drained.
    sealed: Option<Vec<u8>>,
    /// The builder is out with an appending thread compressing it (`Accumulator::append`);
    /// the sender leaves the batch alone until it is back as `sealed`.
    sealing: Option<usize>,
    /// The producer id, epoch and base sequence written into `encoded` (idempotence).
    pub producer: Option<ProducerState>,
    pub result: Arc<BatchResult>,
    callbacks: Vec<RecordCallback>,
    record_count: u32,
    /// When the batch was created (linger and delivery timeout count from here).
    pub created: Instant,
    /// Sends so far (1 after the first drain).
    pub attempts: u32,
    /// No resend before this instant (retry backoff).
    pub retry_at: Option<Instant>,
    /// No more appends: full, or drained.
    closed: bool,
    /// Set by `complete`; a batch dropped without it answers its records with an error.
    completed: bool,
    /// delivery.timeout.ms passed while the batch was in flight: its records were answered
    /// with `DeliveryTimeout` ([`ProducerBatch::expire`]); its response only settles the
    /// sender's bookkeeping.
    expired: bool,
    /// Callbacks `_memory` has room for (see [`CALLBACK_COST`]); grown a chunk at a time.
    callback_room: usize,
    /// Bytes of `buffer.memory` held until the batch is dropped: the batch buffer and the
    /// callbacks' room.
    _memory: Reservation,
}

impl ProducerBatch {
    /// A new open batch using `builder` (allocated by the caller outside any lock).
    pub fn new(
        id: u64,
        tp: TopicPartition,
        builder: RecordBatchBuilder,
        memory: Reservation,
        now: Instant,
    ) -> Self {
        let result = Arc::new(BatchResult::new(tp.clone()));
        ProducerBatch {
            id,
            position: 0,
            split_depth: 0,
            tp,
            builder: Some(builder),
            encoded: None,
            sealed: None,
            sealing: None,
            producer: None,
            result,
            callbacks: Vec::new(),
            record_count: 0,
            created: now,
            attempts: 0,
            retry_at: None,
            closed: false,
            completed: false,
            expired: false,
            callback_room: 0,
            _memory: memory,
        }
    }

    /// Appends `record` unless the batch is closed or the record would take it past
    /// `batch_size` (a first record always fits). On success returns the slot that the
    /// record's future or callback reports from.
    pub fn try_append(
        &mut self,
        record: &AppendRecord<'_>,
        completion: Completion,
        batch_size: usize,
    ) -> Result<Option<crate::SendFuture>, Completion> {
        let Some(builder) = self.builder.as_mut().filter(|_| !self.closed) else {
            return Err(completion);
        };
        let size = builder.next_record_size_with_payload(record.timestamp, record.payload);
        if !builder.is_empty() && builder.estimated_size() + size > batch_size {
            self.closed = true;
            return Err(completion);
        }
        if matches!(completion, Completion::Callback(_))
            && self.callbacks.len() >= self.callback_room
        {
            // Room for more callbacks, from buffer.memory, without waiting: when the pool
            // is short the batch is closed and the caller opens the next one, waiting for
            // memory (up to max.block.ms) outside the partition lock.
            if !self._memory.try_grow(CALLBACK_COST * CALLBACKS_PER_CHUNK) {
                self.closed = true;
                return Err(completion);
            }
            self.callback_room += CALLBACKS_PER_CHUNK;
            self.callbacks.reserve_exact(CALLBACKS_PER_CHUNK);
        }
        builder.append_with_payload(
            record.timestamp,
            record.key,
            record.value,
            record.headers,
            record.payload,
        );
        let (key_size, value_size) = record.sizes();
        let slot = RecordSlot {
            relative_offset: self.record_count,
            timestamp: record.timestamp,
            key_size,
            value_size,
        };
        self.record_count += 1;
        Ok(match completion {
            Completion::Future => Some(crate::SendFuture::in_batch(Arc::clone(&self.result), slot)),
            Completion::Callback(callback) => {
                self.callbacks.push(RecordCallback { slot, callback });
                None
            }
        })
    }

    /// Records that the batch's reservation already holds room for `callbacks` more
    /// callbacks (a new batch reserves its first chunk with its buffer).
    pub fn with_callback_room(mut self, callbacks: usize) -> Self {
        self.callback_room = callbacks;
        self.callbacks.reserve_exact(callbacks);
        self
    }

    /// Whether no more records can be appended.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Closes the batch to appends.
    pub fn close(&mut self) {
        self.closed = true;
    }

    /// Number of records.
    pub fn record_count(&self) -> u32 {
        self.record_count
    }

    /// Bytes the batch takes in a request: encoded size once drained, else the uncompressed
    /// estimate.
    pub fn size(&self) -> usize {
        match (&self.encoded, &self.sealed, &self.builder) {
            (Some(b), _, _) => b.len(),
            (None, Some(b), _) => b.len(),
            (None, None, Some(b)) => b.estimated_size(),
            (None, None, None) => self.sealing.unwrap_or(0),
        }
    }

    /// For a closed, compressed batch: hands its builder out to be compressed by the
    /// calling (appending) thread, so compression runs on the threads that fill batches
    /// rather than on the one sender thread. Returns `None` when there is nothing to do.
    pub fn take_for_sealing(&mut self) -> Option<RecordBatchBuilder> {
        let compressed = self
            .builder
            .as_ref()
            .is_some_and(|b| b.compression() != crate::Compression::None);
        if !self.closed || !compressed {
            return None;
        }
        let builder = self.builder.take()?;
        self.sealing = Some(builder.estimated_size());
        Some(builder)
    }

    /// Takes back the batch compressed by [`ProducerBatch::take_for_sealing`]'s taker.
    pub fn finish_sealing(&mut self, bytes: Vec<u8>) {
        self.sealing = None;
        self.sealed = Some(bytes);
    }

    /// Whether the batch was compressed by an appending thread and awaits its first drain.
    #[cfg(test)]
    pub fn is_sealed(&self) -> bool {
        self.sealed.is_some()
    }

    /// Whether an appending thread is compressing the batch right now.
    pub fn is_sealing(&self) -> bool {
        self.sealing.is_some()
    }

    /// The wire bytes with `producer`'s id, epoch and base sequence, encoding (and
    /// compressing) the batch on first use. Encoding closes the batch; later calls with the
    /// same producer state return the same bytes, so a retry resends the same batch. A new
    /// state (an idempotent partition restarting its sequences) patches the header and CRC.
    pub fn encode(&mut self, producer: ProducerState) -> Bytes {
        self.closed = true;
        if let Some(builder) = self.builder.take() {
            self.encoded = Some(builder.build(producer));
        } else if let Some(mut sealed) = self.sealed.take() {
            set_producer_state(&mut sealed, producer);
            self.encoded = Some(Bytes::from(sealed));
        } else if self.producer != Some(producer) {
            if let Some(old) = self.encoded.take() {
                let mut bytes = old.to_vec();
                set_producer_state(&mut bytes, producer);
                self.encoded = Some(Bytes::from(bytes));
            }
        }
        self.producer = Some(producer);
        self.encoded.clone().unwrap_or_default()
    }

    /// Answers the records of a batch still in flight with `error` (delivery.timeout.ms
    /// passed) and marks it expired; the batch itself stays with its request.
    pub fn expire(&mut self, error: Error, queue: &CallbackQueue) {
        self.completed = true;
        self.expired = true;
        let callbacks = std::mem::take(&mut self.callbacks);
        queue.complete_batch(Arc::clone(&self.result), callbacks, Err(error));
    }

    /// Whether [`ProducerBatch::expire`] answered the records already.
    pub fn is_expired(&self) -> bool {
        self.expired
    }

    /// Completes the batch exactly once, in order with every batch completed before it:
    /// its callbacks run (on the callback thread, in record order) and its futures wake.
    pub fn complete(mut self, outcome: Result<BatchOutcome, Error>, queue: &CallbackQueue) {
        self.completed = true;
        let callbacks = std::mem::take(&mut self.callbacks);
        queue.complete_batch(Arc::clone(&self.result), callbacks, outcome);
    }
}

impl ProducerBatch {
    /// Splits a batch the broker refused as too large (MESSAGE_TOO_LARGE) into two halves by
    /// record count, the older records first, each re-encoded on its next drain with
    /// `compression`. The halves take places inside the batch's queue gap, keep its creation
    /// time (delivery.timeout.ms still counts from it) and memory. An idempotent batch's
    /// halves keep its producer id and epoch and cover its sequence range: the first starts
    /// at its base sequence, the second after the first.
    ///
    /// Returns the batch unchanged when it cannot be split: a single record, never encoded,
    /// split too often, or its bytes do not decode.
    // The refused batch comes back by value on a rare path; boxing would not pay.
    #[allow(clippy::result_large_err)]
    pub fn split(
        self,
        compression: crate::Compression,
        compression_level: Option<i32>,
        ids: (u64, u64),
    ) -> Result<[ProducerBatch; 2], ProducerBatch> {
        if self.record_count < 2 || self.split_depth >= MAX_SPLIT_DEPTH {
            return Err(self);
        }
        let n = self.record_count;
        let boundary = n / 2;
        let groups = [(0..boundary).collect(), (boundary..n).collect()];
        let (position, depth, producer) = (self.position, self.split_depth + 1, self.producer);
        let halves = self.regroup(&groups, compression, compression_level, &[ids.0, ids.1])?;
        let [mut first, mut second]: [ProducerBatch; 2] =
            halves.try_into().expect("two groups, two batches");
        for (i, half) in [&mut first, &mut second].into_iter().enumerate() {
            half.split_depth = depth;
            half.position = position + if i == 0 { 0 } else { POSITION_SPACING >> depth };
            half.producer = producer.filter(|s| s.base_sequence >= 0).map(|s| {
                let offset = if i == 0 { 0 } else { boundary as i32 };
                ProducerState {
                    base_sequence: crate::idempotence::increment_sequence(s.base_sequence, offset),
                    ..s
                }
            });
        }
        Ok([first, second])
    }

    /// Cuts a batch the broker refused for some of its records (INVALID_RECORD naming
    /// `rejected`, relative offsets, ascending) into groups in record order: each rejected
    /// record alone (the second of the pair is its offset in the old batch), and each run
    /// of records between them, to be sent again with no producer state (sequenced anew
    /// when drained). The groups take places inside the batch's queue gap in record order,
    /// so completing them in queue order answers the records in send order. Returns the
    /// batch unchanged if its bytes do not decode, an offset is out of range, or its gap
    /// has no room for the groups.
    // The refused batch comes back by value on a rare path; boxing would not pay.
    #[allow(clippy::result_large_err)]
    pub fn take_out(
        self,
        rejected: &[u32],
        compression: crate::Compression,
        compression_level: Option<i32>,
        mut next_id: impl FnMut() -> u64,
    ) -> Result<Vec<(ProducerBatch, Option<u32>)>, ProducerBatch> {
        if rejected.is_empty() || rejected.iter().any(|&r| r >= self.record_count) {
            return Err(self);
        }
        let mut groups: Vec<Vec<u32>> = Vec::new();
        let mut marks: Vec<Option<u32>> = Vec::new();
        for r in 0..self.record_count {
            if rejected.contains(&r) {
                groups.push(vec![r]);
                marks.push(Some(r));
            } else if marks.last().is_some_and(Option::is_none) {
                groups.last_mut().expect("a run is open").push(r);
            } else {
                groups.push(vec![r]);
                marks.push(None);
            }
        }
        // The batch owns the positions [position, position + gap); each group gets an
        // equal power-of-two share, and the depth that keeps its own splits inside it.
        let gap = POSITION_SPACING >> self.split_depth;
        let share = (gap / groups.len() as u64)
            .checked_ilog2()
            .map(|l| 1u64 << l);
        let Some(share) = share else {
            return Err(self);
        };
        let depth = (POSITION_SPACING / share).ilog2();
        let position = self.position;
        let ids: Vec<u64> = groups.iter().map(|_| next_id()).collect();
        let batches = self.regroup(&groups, compression, compression_level, &ids)?;
        Ok(batches
            .into_iter()
            .zip(marks)
            .enumerate()
            .map(|(i, (mut b, mark))| {
                b.position = position + i as u64 * share;
                b.split_depth = depth;
                (b, mark)
            })
            .collect())
    }

    /// Rebuilds the batch's records as one new closed, unencoded batch per group of
    /// relative offsets (each group ascending; together covering every record once), with
    /// ids `ids`. Callbacks move with their records and the batch's result forwards each
    /// record's future to its new batch. The first new batch takes the memory.
    #[allow(clippy::result_large_err)] // the batch comes back by value on a rare path
    fn regroup(
        mut self,
        groups: &[Vec<u32>],
        compression: crate::Compression,
        compression_level: Option<i32>,
        ids: &[u64],
    ) -> Result<Vec<ProducerBatch>, ProducerBatch> {
        let Some(bytes) = self.encoded.clone() else {
            return Err(self);
        };
        let records = match crate::record_batch::RecordBatch::parse(&bytes)
            .and_then(|(batch, _)| batch.records())
        {
            Ok(r) if r.len() == self.record_count as usize => r,
            _ => return Err(self),
        };
        let mut targets = vec![(0usize, 0u32); records.len()];
        let mut out = Vec::with_capacity(groups.len());
        for (g, group) in groups.iter().enumerate() {
            let part: Vec<&crate::record_batch::Record> =
                group.iter().map(|&r| &records[r as usize]).collect();
            let size: usize = part
                .iter()
                .map(|r| {
                    RecordBatchBuilder::record_size(
                        0,
                        0,
                        r.key.as_deref(),
                        r.value.as_deref(),
                        &r.headers,
                    )
                })
                .sum();
            let mut builder = RecordBatchBuilder::with_capacity(
                compression,
                compression_level,
                crate::record_batch::HEADER_SIZE + size,
            );
            for r in &part {
                builder.append(
                    r.timestamp,
                    r.key.as_deref(),
                    r.value.as_deref(),
                    &r.headers,
                );
            }
            for (new_offset, &r) in group.iter().enumerate() {
                targets[r as usize] = (g, new_offset as u32);
            }
            let memory = self._memory.split_off(if g == 0 { usize::MAX } else { 0 });
            let mut batch =
                ProducerBatch::new(ids[g], self.tp.clone(), builder, memory, self.created);
            batch.callback_room = usize::MAX; // the first batch holds the room of all
            batch.record_count = part.len() as u32;
            batch.closed = true;
            out.push(batch);
        }
        for mut c in std::mem::take(&mut self.callbacks) {
            let (g, offset) = targets[c.slot.relative_offset as usize];
            c.slot.relative_offset = offset;
            out[g].callbacks.push(c);
        }
        let results = out.iter().map(|b| Arc::clone(&b.result)).collect();
        self.result.forward(targets, results);
        self.completed = true; // answered through the new batches
        Ok(out)
    }
}

impl Drop for ProducerBatch {
    /// A batch dropped without completion is a bug (or a panicking sender thread): its
    /// records still get an answer, here and now, rather than waiting forever.
    fn drop(&mut self) {
        // An empty batch (one allocated by `append` but not needed) has nobody waiting.
        if self.completed || self.record_count == 0 {
            return;
        }
        log::error!(
            "batch {} of {} dropped without completion",
            self.id,
            self.tp
        );
        let error = Error::Fatal(format!(
            "a batch of {} was dropped without completion",
            self.tp
        ));
        for c in std::mem::take(&mut self.callbacks) {
            run_one(c.callback, Err(error.clone()));
        }
        self.result.complete(Err(error), true);
    }
}

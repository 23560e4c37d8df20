//! One producer batch: its records' wire bytes, their completions, and its life.
//!
//! Life of a batch ([`Stage`]): **open** (records are appended under the partition lock) →
//! **closed** (full, or drained: no more appends; queued, or in flight in the sender's
//! in-flight table) → optionally **expired** (answered with `DeliveryTimeout` while in
//! flight) → **answered** (completed exactly once, or its records moved to new batches).
//! Its memory goes back when it drops, or, if it has callbacks to run, once the callback
//! thread ran them. A retriable failure moves an in-flight batch back to the front of its
//! partition queue; its encoded bytes are kept, so a retry resends exactly the same batch.
//!
//! Its records' bytes go through [`Contents`]: a builder, then (compressed batches filled
//! by `send`) sealing and sealed bytes, then the encoded wire bytes.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;

use super::pool::Reservation;
use super::ratio::{BatchLimit, CompressionRatio};
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
/// The most callbacks a new batch reserves room for; the room doubles as the batch fills.
pub(crate) const CALLBACKS_PER_CHUNK: usize = 64;
/// The fewest: a batch expected to hold a record or two (thousands of partitions, each
/// with a batch) reserves little, so that buffer.memory holds them all.
pub(crate) const MIN_CALLBACK_ROOM: usize = 4;

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
    /// Through both: the callback runs on the callback thread (the interceptors'
    /// acknowledgement), then the future `append` returns resolves.
    FutureAndCallback(crate::delivery::Callback),
}

impl std::fmt::Debug for Completion {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Completion::Future => "Future",
            Completion::Callback(_) => "Callback",
            Completion::FutureAndCallback(_) => "FutureAndCallback",
        })
    }
}

/// What a batch holds of its records, from the first append to the wire bytes.
///
/// `Building` → (`Sealing` → `Sealed`, when an appending thread compresses the batch it
/// closed) → `Encoded` at the first drain. Each stage holds exactly the bytes it needs, so
/// no combination of half-set fields can describe a batch.
#[derive(Debug)]
enum Contents {
    /// The records, appended under the partition lock while the batch is open.
    Building(RecordBatchBuilder),
    /// The builder is out with an appending thread compressing it (`Accumulator::append`);
    /// the sender leaves the batch alone until the bytes come back. Holds the builder's
    /// estimated size (the batch's size meanwhile).
    Sealing { estimated_size: usize },
    /// Compressed by the appending thread that closed the batch, with no producer state
    /// yet: the header is patched in place at the first drain.
    Sealed(Vec<u8>),
    /// The wire bytes, with [`ProducerBatch::producer`]'s state in the header.
    Encoded(Bytes),
}

/// Where a batch is in its life (each stage is entered once, in this order, except that a
/// batch may skip `Expired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Stage {
    /// Takes appends (its contents are `Building`).
    Open,
    /// No more appends (full, drained, or made by a split): queued or in flight, its
    /// records not answered yet.
    Closed,
    /// delivery.timeout.ms passed while the batch was in flight: its records were answered
    /// with `DeliveryTimeout` ([`ProducerBatch::expire`]); the batch stays with its request,
    /// whose response only settles the sender's bookkeeping.
    Expired,
    /// Completed, or its records moved to new batches (split, rejected records): answered
    /// exactly once; nothing is left to do when it drops.
    Answered,
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
    /// The records' bytes, at their current stage.
    contents: Contents,
    /// Open → closed → (expired) → answered.
    stage: Stage,
    /// The producer id, epoch and base sequence written into the encoded bytes
    /// (idempotence).
    pub producer: Option<ProducerState>,
    pub result: Arc<BatchResult>,
    callbacks: Vec<RecordCallback>,
    record_count: u32,
    /// The largest record's size in the batch, as encoded (record-size-max).
    max_record_size: usize,
    /// The records' uncompressed size, known once the batch is compressed or encoded
    /// (0 before): compression-rate's denominator.
    uncompressed_size: usize,
    /// When the batch was created (linger and delivery timeout count from here).
    pub created: Instant,
    /// Sends so far (1 after the first drain).
    pub attempts: u32,
    /// No resend before this instant (retry backoff).
    pub retry_at: Option<Instant>,
    /// Callbacks `memory` has room for (see [`CALLBACK_COST`]); doubled when full.
    callback_room: usize,
    /// Bytes of batch buffer `memory` holds: an open batch starts with a buffer sized for
    /// its partition's recent batches and grows it (doubling, up to batch.size) from
    /// buffer.memory as records come, so that thousands of partitions with small batches
    /// do not each hold batch.size.
    buffer_room: usize,
    /// The topic's compression estimate, which this batch updates when the sender
    /// compresses it (a batch made by `send` with a codec; see `accumulator::ratio`).
    ratio: Option<Arc<CompressionRatio>>,
    /// Bytes of `buffer.memory` held for the batch buffer and the callbacks' room: until
    /// the batch drops, or, when it is answered with callbacks to run, until the callback
    /// thread ran them (the reservation moves into the callback job).
    memory: Reservation,
}

impl ProducerBatch {
    /// A new open batch of producer `producer` (`Core::id`) using `builder` (allocated by
    /// the caller outside any lock).
    pub fn new(
        id: u64,
        tp: TopicPartition,
        builder: RecordBatchBuilder,
        memory: Reservation,
        now: Instant,
        producer: u64,
    ) -> Self {
        let result = Arc::new(BatchResult::new(tp.clone(), producer));
        let buffer_room = builder.capacity();
        ProducerBatch {
            id,
            position: 0,
            split_depth: 0,
            tp,
            contents: Contents::Building(builder),
            stage: Stage::Open,
            producer: None,
            result,
            callbacks: Vec::new(),
            record_count: 0,
            max_record_size: 0,
            uncompressed_size: 0,
            created: now,
            attempts: 0,
            retry_at: None,
            callback_room: 0,
            buffer_room,
            ratio: None,
            memory,
        }
    }

    /// Makes the batch teach `ratio` how well it compressed, when it is compressed.
    pub fn with_ratio(mut self, ratio: &Arc<CompressionRatio>) -> Self {
        if let Contents::Building(b) = &self.contents {
            if b.compression() != crate::Compression::None {
                self.ratio = Some(Arc::clone(ratio));
            }
        }
        self
    }

    /// Appends `record` unless the batch is closed or has no room for it by `limit`
    /// (batch.size against the estimated size on the wire; a first record always fits).
    /// On success returns the slot that the record's future or callback reports from.
    pub fn try_append(
        &mut self,
        record: &AppendRecord<'_>,
        completion: Completion,
        limit: BatchLimit,
    ) -> Result<Option<crate::SendFuture>, Completion> {
        let (Stage::Open, Contents::Building(builder)) = (self.stage, &mut self.contents) else {
            return Err(completion);
        };
        let size = builder.next_record_size_with_payload(record.timestamp, record.payload);
        if !builder.is_empty() && !limit.has_room(builder.estimated_size(), size) {
            self.stage = Stage::Closed;
            return Err(completion);
        }
        let needed = builder.estimated_size() + size;
        if needed > self.buffer_room {
            // A bigger buffer, from buffer.memory, without waiting (as for callbacks below).
            let grown = needed
                .max(self.buffer_room.saturating_mul(2))
                .min(limit.buffer_cap().max(needed));
            if !self.memory.try_grow(grown - self.buffer_room) {
                self.stage = Stage::Closed;
                return Err(completion);
            }
            builder.reserve_total(grown);
            self.buffer_room = grown;
        }
        if matches!(
            completion,
            Completion::Callback(_) | Completion::FutureAndCallback(_)
        ) && self.callbacks.len() >= self.callback_room
        {
            // Room for more callbacks, from buffer.memory, without waiting: when the pool
            // is short the batch is closed and the caller opens the next one, waiting for
            // memory (up to max.block.ms) outside the partition lock.
            // The room doubles, so a batch of n records reallocates its list log2(n) times
            // rather than n / 64 times (each a copy into fresh pages).
            let more = self.callback_room.max(MIN_CALLBACK_ROOM);
            if !self.memory.try_grow(CALLBACK_COST * more) {
                self.stage = Stage::Closed;
                return Err(completion);
            }
            self.callback_room += more;
            self.callbacks.reserve_exact(more);
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
        self.max_record_size = self.max_record_size.max(size);
        Ok(match completion {
            Completion::Future => Some(crate::SendFuture::in_batch(Arc::clone(&self.result), slot)),
            Completion::Callback(callback) => {
                self.callbacks.push(RecordCallback { slot, callback });
                None
            }
            Completion::FutureAndCallback(callback) => {
                let future = crate::SendFuture::in_batch(Arc::clone(&self.result), slot.clone());
                self.callbacks.push(RecordCallback { slot, callback });
                Some(future)
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

    /// Bytes of batch buffer the batch's memory holds.
    #[cfg(test)]
    pub fn buffer_room(&self) -> usize {
        self.buffer_room
    }

    /// Whether no more records can be appended.
    pub fn is_closed(&self) -> bool {
        self.stage != Stage::Open
    }

    /// Closes the batch to appends (no effect past that).
    pub fn close(&mut self) {
        if self.stage == Stage::Open {
            self.stage = Stage::Closed;
        }
    }

    /// The MaxTimestamp field of the batch as last sent (from its encoded header).
    pub fn sent_max_timestamp(&self) -> Option<i64> {
        match &self.contents {
            Contents::Encoded(bytes) => {
                let field = bytes.get(35..43)?;
                Some(i64::from_be_bytes(field.try_into().ok()?))
            }
            _ => None,
        }
    }

    /// Number of records.
    pub fn record_count(&self) -> u32 {
        self.record_count
    }

    /// The largest record's encoded size.
    pub fn max_record_size(&self) -> usize {
        self.max_record_size
    }

    /// The batch's size on the wire over its records' uncompressed size (1 uncompressed),
    /// once it was encoded; `None` before.
    pub fn compression_ratio(&self) -> Option<f64> {
        match &self.contents {
            Contents::Encoded(b) if self.uncompressed_size > 0 => {
                Some(b.len() as f64 / self.uncompressed_size as f64)
            }
            _ => None,
        }
    }

    /// Bytes the batch takes in a request: encoded size once drained, else the compressed
    /// size once sealed, else the uncompressed estimate.
    pub fn size(&self) -> usize {
        match &self.contents {
            Contents::Building(b) => b.estimated_size(),
            Contents::Sealing { estimated_size } => *estimated_size,
            Contents::Sealed(b) => b.len(),
            Contents::Encoded(b) => b.len(),
        }
    }

    /// For a closed, compressed batch: hands its builder out to be compressed by the
    /// calling (appending) thread, so compression runs on the threads that fill batches
    /// rather than on the one sender thread. Returns `None` when there is nothing to do.
    pub fn take_for_sealing(&mut self) -> Option<RecordBatchBuilder> {
        match &self.contents {
            Contents::Building(b)
                if self.stage != Stage::Open && b.compression() != crate::Compression::None =>
            {
                let estimated_size = b.estimated_size();
                self.uncompressed_size = estimated_size;
                match std::mem::replace(&mut self.contents, Contents::Sealing { estimated_size }) {
                    Contents::Building(builder) => Some(builder),
                    _ => unreachable!("matched Building above"),
                }
            }
            _ => None,
        }
    }

    /// Takes back the batch compressed by [`ProducerBatch::take_for_sealing`]'s taker.
    /// Returns the buffer.memory its uncompressed buffer held beyond the compressed bytes,
    /// for the caller to drop (give back) outside the partition lock.
    pub fn finish_sealing(&mut self, bytes: Vec<u8>) -> Reservation {
        debug_assert!(matches!(self.contents, Contents::Sealing { .. }));
        let saved = self.shrink_buffer(bytes.capacity());
        self.contents = Contents::Sealed(bytes);
        saved
    }

    /// Splits off the batch buffer's memory beyond `buffer` bytes (the compressed bytes
    /// that replaced the uncompressed buffer).
    fn shrink_buffer(&mut self, buffer: usize) -> Reservation {
        let saved = self.buffer_room.saturating_sub(buffer);
        self.buffer_room -= saved;
        self.memory.split_off(saved)
    }

    /// Whether the batch was compressed by an appending thread and awaits its first drain.
    #[cfg(test)]
    pub fn is_sealed(&self) -> bool {
        matches!(self.contents, Contents::Sealed(_))
    }

    /// Whether an appending thread is compressing the batch right now.
    pub fn is_sealing(&self) -> bool {
        matches!(self.contents, Contents::Sealing { .. })
    }

    /// The wire bytes with `producer`'s id, epoch and base sequence, encoding (and
    /// compressing) the batch on first use. Encoding closes the batch; later calls with the
    /// same producer state return the same bytes, so a retry resends the same batch. A new
    /// state (an idempotent partition restarting its sequences) patches the header and CRC.
    /// A batch still sealing (never drained: the sender skips it) encodes as no bytes.
    pub fn encode(&mut self, producer: ProducerState) -> Bytes {
        self.close();
        let previous = self.producer.replace(producer);
        let contents = std::mem::replace(&mut self.contents, Contents::Encoded(Bytes::new()));
        self.contents = match contents {
            Contents::Building(builder) => {
                let uncompressed = builder.estimated_size();
                self.uncompressed_size = uncompressed;
                let bytes = builder.build_vec(producer);
                if let Some(ratio) = &self.ratio {
                    ratio.observe(uncompressed, bytes.len());
                    drop(self.shrink_buffer(bytes.capacity()));
                }
                Contents::Encoded(Bytes::from(bytes))
            }
            Contents::Sealed(mut sealed) => {
                set_producer_state(&mut sealed, producer);
                Contents::Encoded(Bytes::from(sealed))
            }
            Contents::Encoded(old) if previous != Some(producer) => {
                let mut bytes = old.to_vec();
                set_producer_state(&mut bytes, producer);
                Contents::Encoded(Bytes::from(bytes))
            }
            unchanged => unchanged,
        };
        match &self.contents {
            Contents::Encoded(bytes) => bytes.clone(),
            _ => Bytes::new(),
        }
    }

    /// Answers the records of a batch still in flight with `error` (delivery.timeout.ms
    /// passed) and marks it expired; the batch itself stays with its request, keeping the
    /// memory of its bytes, while its callbacks' room goes with them to the callback thread.
    pub fn expire(&mut self, error: Error, queue: &CallbackQueue) {
        self.stage = Stage::Expired;
        let callbacks = std::mem::take(&mut self.callbacks);
        let room = self
            .memory
            .split_off(std::mem::take(&mut self.callback_room).saturating_mul(CALLBACK_COST));
        queue.complete_batch(Arc::clone(&self.result), callbacks, Err(error), Some(room));
    }

    /// Whether [`ProducerBatch::expire`] answered the records already.
    pub fn is_expired(&self) -> bool {
        self.stage == Stage::Expired
    }

    /// Completes the batch exactly once, in order with every batch completed before it:
    /// its callbacks run (on the callback thread, in record order) and its futures wake.
    /// Its memory is held until the callbacks ran (see `delivery`).
    pub fn complete(mut self, outcome: Result<BatchOutcome, Error>, queue: &CallbackQueue) {
        self.stage = Stage::Answered;
        let callbacks = std::mem::take(&mut self.callbacks);
        let memory = self.memory.split_off(usize::MAX);
        queue.complete_batch(Arc::clone(&self.result), callbacks, outcome, Some(memory));
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
    /// record's future to its new batch. The memory is shared out: every new batch but the
    /// first takes what its records and callbacks need (as far as the old reservation
    /// goes), the first takes the rest, so each holds memory until it is answered.
    #[allow(clippy::result_large_err)] // the batch comes back by value on a rare path
    fn regroup(
        mut self,
        groups: &[Vec<u32>],
        compression: crate::Compression,
        compression_level: Option<i32>,
        ids: &[u64],
    ) -> Result<Vec<ProducerBatch>, ProducerBatch> {
        let bytes = match &self.contents {
            Contents::Encoded(bytes) => bytes.clone(),
            _ => return Err(self),
        };
        let records = match crate::record_batch::RecordBatch::parse(&bytes)
            .and_then(|(batch, _)| batch.records())
        {
            Ok(r) if r.len() == self.record_count as usize => r,
            _ => return Err(self),
        };
        let mut targets = vec![(0usize, 0u32); records.len()];
        let mut builders = Vec::with_capacity(groups.len());
        for (g, group) in groups.iter().enumerate() {
            let part: Vec<&crate::record_batch::Record> =
                group.iter().map(|&r| &records[r as usize]).collect();
            builders.push(rebuild(&part, compression, compression_level));
            for (new_offset, &r) in group.iter().enumerate() {
                targets[r as usize] = (g, new_offset as u32);
            }
        }
        let mut callbacks: Vec<Vec<RecordCallback>> = groups.iter().map(|_| Vec::new()).collect();
        for mut c in std::mem::take(&mut self.callbacks) {
            let (g, offset) = targets[c.slot.relative_offset as usize];
            c.slot.relative_offset = offset;
            callbacks[g].push(c);
        }
        // Every group but the first takes what it needs, the first takes the rest.
        let mut shares: Vec<Reservation> = (1..groups.len())
            .map(|g| {
                let need = builders[g].estimated_size() + callbacks[g].len() * CALLBACK_COST;
                self.memory.split_off(need)
            })
            .collect();
        shares.insert(0, self.memory.split_off(usize::MAX));
        let producer = self.result.producer();
        let mut out = Vec::with_capacity(groups.len());
        for ((g, builder), (memory, callbacks)) in builders
            .into_iter()
            .enumerate()
            .zip(shares.into_iter().zip(callbacks))
        {
            let mut batch = ProducerBatch::new(
                ids[g],
                self.tp.clone(),
                builder,
                memory,
                self.created,
                producer,
            );
            batch.record_count = groups[g].len() as u32;
            batch.callback_room = callbacks.len();
            batch.callbacks = callbacks;
            batch.stage = Stage::Closed;
            out.push(batch);
        }
        let results = out.iter().map(|b| Arc::clone(&b.result)).collect();
        self.result.forward(targets, results);
        self.stage = Stage::Answered; // through the new batches
        Ok(out)
    }
}

/// A builder holding `records` again (re-encoded on the new batch's first drain).
fn rebuild(
    records: &[&crate::record_batch::Record],
    compression: crate::Compression,
    compression_level: Option<i32>,
) -> RecordBatchBuilder {
    let size: usize = records
        .iter()
        .map(|r| {
            RecordBatchBuilder::record_size(0, 0, r.key.as_deref(), r.value.as_deref(), &r.headers)
        })
        .sum();
    let mut builder = RecordBatchBuilder::with_capacity(
        compression,
        compression_level,
        crate::record_batch::HEADER_SIZE + size,
    );
    for r in records {
        builder.append(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    builder
}

impl Drop for ProducerBatch {
    /// A batch dropped without completion is a bug (or a panicking sender thread): its
    /// records still get an answer, here and now, rather than waiting forever.
    fn drop(&mut self) {
        // An empty batch (one allocated by `append` but not needed) has nobody waiting.
        if matches!(self.stage, Stage::Expired | Stage::Answered) || self.record_count == 0 {
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
            run_one(c.callback, &self.tp, Err(error.clone()));
        }
        self.result.complete(Err(error), true);
    }
}

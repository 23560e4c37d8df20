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

/// A record ready to be appended: already serialized, partition chosen.
#[derive(Debug, Clone, Copy)]
pub(crate) struct AppendRecord<'a> {
    pub timestamp: i64,
    pub key: Option<&'a [u8]>,
    pub value: Option<&'a [u8]>,
    pub headers: &'a [Header],
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
    /// is queued; a retried batch goes back to its place by this number.
    pub seq: u64,
    pub tp: TopicPartition,
    /// The open records; `None` once encoded.
    builder: Option<RecordBatchBuilder>,
    /// The wire bytes, once the batch was drained for the first time.
    encoded: Option<Bytes>,
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
    /// Bytes of `buffer.memory` held until the batch is dropped.
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
        ProducerBatch {
            id,
            seq: 0,
            tp,
            builder: Some(builder),
            encoded: None,
            producer: None,
            result: Arc::new(BatchResult::default()),
            callbacks: Vec::new(),
            record_count: 0,
            created: now,
            attempts: 0,
            retry_at: None,
            closed: false,
            completed: false,
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
        let size =
            builder.next_record_size(record.timestamp, record.key, record.value, record.headers);
        if !builder.is_empty() && builder.estimated_size() + size > batch_size {
            self.closed = true;
            return Err(completion);
        }
        builder.append(record.timestamp, record.key, record.value, record.headers);
        let (key_size, value_size) = record.sizes();
        let slot = RecordSlot {
            topic_partition: self.tp.clone(),
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
        match (&self.encoded, &self.builder) {
            (Some(b), _) => b.len(),
            (None, Some(b)) => b.estimated_size(),
            (None, None) => 0,
        }
    }

    /// The wire bytes with `producer`'s id, epoch and base sequence, encoding (and
    /// compressing) the batch on first use. Encoding closes the batch; later calls with the
    /// same producer state return the same bytes, so a retry resends the same batch. A new
    /// state (an idempotent partition restarting its sequences) patches the header and CRC.
    pub fn encode(&mut self, producer: ProducerState) -> Bytes {
        self.closed = true;
        if let Some(builder) = self.builder.take() {
            self.encoded = Some(builder.build(producer));
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

    /// Completes the batch exactly once, in order with every batch completed before it:
    /// its callbacks run (on the callback thread, in record order) and its futures wake.
    pub fn complete(mut self, outcome: Result<BatchOutcome, Error>, queue: &CallbackQueue) {
        self.completed = true;
        let callbacks = std::mem::take(&mut self.callbacks);
        queue.complete_batch(Arc::clone(&self.result), callbacks, outcome);
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

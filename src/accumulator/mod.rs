//! The record accumulator: per-partition queues of batches between `send` and the sender.
//!
//! # Ownership tree
//!
//! `Accumulator` → `TopicQueues` (one per topic) → `PartitionQueue` (one per partition) →
//! `ProducerBatch` (open at the back, closed ones in front of it). Caller threads append at
//! the back of a queue; the sender thread takes batches from the front, and puts a batch
//! back at the front to retry it.
//!
//! # Locks (taken in this order, never the other way)
//!
//! 1. `topics` (`RwLock`): the topic → queues map. Read-locked on every append to find the
//!    queue (and released before the queue is locked); write-locked only to add a topic or
//!    grow its partitions.
//! 2. `PartitionQueue::batches` (`Mutex`): one per partition, so threads producing to
//!    different partitions never contend (lock striping). Held only to append to the open
//!    batch or to move batches in or out: never while blocking, allocating a batch buffer,
//!    or compressing. `append` reserves memory and allocates the next batch *outside* the
//!    lock, re-locks, and re-checks whether another thread opened a batch meanwhile.
//! 3. `incomplete` (`Mutex`): ids of batches not yet completed, for `flush`. Leaf lock.
//! 4. `newly_active` (`Mutex`): queues that turned non-empty since the sender last
//!    looked. Leaf lock, taken under a partition lock (see below).
//!
//! # Active queues
//!
//! The sender's pass looks only at queues that hold batches, so that a producer writing to
//! thousands of partitions does not lock each of them on every wake-up. A queue is
//! *listed* while it is in the sender's own active list or in `newly_active`; its `listed`
//! flag says so and changes only under its partition lock. Whoever puts a batch into an
//! unlisted queue (`append`, `reenqueue`) lists it: sets the flag and pushes the queue
//! into `newly_active`. The sender moves `newly_active` into its own list at the start of
//! each pass ([`Accumulator::collect_active`]), and drops a queue from it exactly when
//! [`Accumulator::inspect`] finds it empty and clears the flag (under the same lock). So
//! every queue that holds a batch is listed, and no queue is listed twice.
//!
//! The buffer pool's and each batch result's locks are leaf locks too. The pool's lock is
//! taken under a partition lock in one place: a batch growing its callback room
//! (`Reservation::try_grow`, which never waits). (`inspect` asks the pool whether sends
//! wait for memory through an atomic, without its lock.)

mod batch;
pub(crate) mod pool;
mod ratio;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Mutex, RwLock};

pub(crate) use batch::{AppendRecord, Completion, ProducerBatch};
use pool::BufferPool;
pub(crate) use ratio::BatchLimit;
use ratio::CompressionRatio;

use crate::delivery::{BatchResult, CallbackQueue};
use crate::error::Error;
use crate::record::TopicPartition;
use crate::record_batch::{RecordBatchBuilder, HEADER_SIZE};
use crate::{Compression, SendFuture};

/// Settings the accumulator needs.
#[derive(Debug, Clone)]
pub(crate) struct AccumulatorConfig {
    pub batch_size: usize,
    pub buffer_memory: usize,
    pub compression: Compression,
    pub compression_level: Option<i32>,
    pub linger: Duration,
    pub delivery_timeout: Duration,
    /// `Core::id` of the producer (batch results carry it: see `delivery`).
    pub producer_id: u64,
}

/// The smallest buffer a new batch starts with (see [`Accumulator::initial_buffer`]): a
/// header and a few small records. With thousands of partitions most batches hold a record
/// or two, and every open batch holds its buffer's worth of buffer.memory.
const MIN_BATCH_BUFFER: usize = 512;

/// The batches of one partition, oldest first.
#[derive(Debug)]
pub(crate) struct PartitionQueue {
    pub tp: TopicPartition,
    /// Size of the partition's last batch when it stopped taking records (drained, or
    /// closed for the next one); a new batch's buffer starts at about this size (see
    /// [`Accumulator::initial_buffer`]). Relaxed: only a sizing hint.
    size_hint: AtomicUsize,
    /// How well the topic's batches compress (one estimate per topic, shared by its
    /// partitions' queues): batch.size bounds a compressed batch's estimated size.
    ratio: Arc<CompressionRatio>,
    /// Guards the batches (see the lock order in the module docs).
    batches: Mutex<Batches>,
}

/// A partition's batches, oldest first, with the sequence for the next one queued.
#[derive(Debug, Default)]
struct Batches {
    queue: VecDeque<ProducerBatch>,
    next_position: u64,
    /// In the sender's active list or in `newly_active` (see "Active queues").
    listed: bool,
}

impl std::ops::Deref for Batches {
    type Target = VecDeque<ProducerBatch>;
    fn deref(&self) -> &Self::Target {
        &self.queue
    }
}

impl std::ops::DerefMut for Batches {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.queue
    }
}

/// One topic's partition queues. Replaced (copy-on-grow) when the topic gains partitions;
/// a holder of an older `Arc` keeps valid queues, only fewer of them.
#[derive(Debug)]
pub(crate) struct TopicQueues {
    partitions: Vec<Arc<PartitionQueue>>,
}

impl TopicQueues {
    /// The queue of `partition`, if this snapshot has it.
    pub fn get(&self, partition: i32) -> Option<&Arc<PartitionQueue>> {
        self.partitions.get(usize::try_from(partition).ok()?)
    }
}

/// The result of a successful append.
#[derive(Debug)]
pub(crate) struct Appended {
    /// The record's future (for [`Completion::Future`]).
    pub future: Option<SendFuture>,
    /// A batch is ready (the append filled one, or closed one to open the next): the
    /// sender should look now.
    pub wake_sender: bool,
    /// The append opened a batch in an empty queue, ready at this instant (linger.ms):
    /// the sender must look by then (`Core::batch_lingers_until`).
    pub lingers_until: Option<Instant>,
    /// The partition's newest batch is full (input to the sticky partitioner).
    pub batch_full: bool,
}

/// The accumulator. See the module docs for ownership and locks.
#[derive(Debug)]
pub(crate) struct Accumulator {
    cfg: AccumulatorConfig,
    pool: Arc<BufferPool>,
    /// Guards the topic map (lock 1).
    topics: RwLock<HashMap<Arc<str>, Arc<TopicQueues>>>,
    /// Guards the incomplete batches (lock 3).
    incomplete: Mutex<HashMap<u64, Arc<BatchResult>>>,
    /// Queues listed since the sender's last pass (lock 4; see "Active queues").
    newly_active: Mutex<Vec<Arc<PartitionQueue>>>,
    /// Written by appenders (Relaxed: only uniqueness matters).
    next_batch_id: AtomicU64,
    /// Incremented/decremented by `flush` callers, read by the sender (SeqCst: a flush
    /// must see its own increment take effect before it waits).
    flushes_in_progress: AtomicUsize,
    /// Set once by close, read by the sender: drain everything without lingering.
    closing: AtomicBool,
    /// Set once (SeqCst) by close when nothing will drain the queues any more (the sender
    /// ended or was given up on); read under a partition lock by `append`, which then
    /// refuses the record. Close sets it *before* it fails what is queued, partition lock
    /// by partition lock, so a record is either refused or queued in time to be failed:
    /// no record is stranded by a send that outlived close (a blocked serializer).
    shut: AtomicBool,
}

impl Accumulator {
    pub fn new(cfg: AccumulatorConfig) -> Self {
        Accumulator {
            pool: BufferPool::new(cfg.buffer_memory),
            cfg,
            topics: RwLock::new(HashMap::new()),
            incomplete: Mutex::new(HashMap::new()),
            newly_active: Mutex::new(Vec::new()),
            next_batch_id: AtomicU64::new(1),
            flushes_in_progress: AtomicUsize::new(0),
            closing: AtomicBool::new(false),
            shut: AtomicBool::new(false),
        }
    }

    /// Bytes of buffer memory held by batches.
    pub fn buffer_in_use(&self) -> usize {
        self.pool.in_use()
    }

    /// Total time sends waited for buffer memory, in nanoseconds.
    pub fn buffer_wait_ns(&self) -> u64 {
        self.pool.waited_ns()
    }

    /// The queue of `topic`-`partition`, creating it (and its topic) on first use.
    pub fn queue(&self, topic: &str, partition: i32) -> Arc<PartitionQueue> {
        let idx = partition as usize;
        if let Some(q) = self
            .topics
            .read()
            .get(topic)
            .and_then(|t| t.partitions.get(idx))
        {
            return Arc::clone(q);
        }
        let mut topics = self.topics.write();
        let name: Arc<str> = topics
            .get_key_value(topic)
            .map(|(k, _)| Arc::clone(k))
            .unwrap_or_else(|| Arc::from(topic));
        let entry = topics.entry(Arc::clone(&name)).or_insert_with(|| {
            Arc::new(TopicQueues {
                partitions: Vec::new(),
            })
        });
        if entry.partitions.len() <= idx {
            // Copy-on-grow: readers holding the old Arc keep valid queues.
            let mut partitions = entry.partitions.clone();
            let ratio = partitions
                .first()
                .map_or_else(Default::default, |q| Arc::clone(&q.ratio));
            for p in partitions.len()..=idx {
                partitions.push(Arc::new(PartitionQueue {
                    tp: TopicPartition::new(Arc::clone(&name), p as i32),
                    size_hint: AtomicUsize::new(0),
                    ratio: Arc::clone(&ratio),
                    batches: Mutex::new(Batches::default()),
                }));
            }
            *entry = Arc::new(TopicQueues { partitions });
        }
        Arc::clone(&entry.partitions[idx])
    }

    /// `topic`'s queues, with at least `partitions` of them (for the send path's cache).
    pub fn topic_queues(&self, topic: &str, partitions: usize) -> Arc<TopicQueues> {
        if let Some(t) = self
            .topics
            .read()
            .get(topic)
            .filter(|t| t.partitions.len() >= partitions)
        {
            return Arc::clone(t);
        }
        self.queue(topic, partitions.max(1) as i32 - 1);
        Arc::clone(&self.topics.read()[topic])
    }

    /// Appends a record to its partition's open batch, opening a new batch when needed.
    ///
    /// A new batch needs memory: this blocks until `deadline` (max.block.ms) for it, or
    /// fails at once when `deadline` is `None` (`try_send`). On failure the completion is
    /// handed back so the caller can report the error through it. After
    /// [`Accumulator::shut`] every append fails with [`Error::Closed`].
    pub fn append(
        &self,
        queue: &Arc<PartitionQueue>,
        record: &AppendRecord<'_>,
        completion: Completion,
        deadline: Option<&crate::core::Deadline>,
    ) -> Result<Appended, (Error, Completion)> {
        // Fast path: room in the open batch.
        let completion = match self.try_append_locked(queue, record, completion) {
            Ok(appended) => return Ok(appended),
            Err(c) => c,
        };
        // Slow path: memory and a buffer for a new batch, outside the partition lock.
        let record_size = RecordBatchBuilder::record_size_with_payload(record.payload, 0, 0);
        let limit = self.batch_limit(queue);
        let size = self
            .initial_buffer(queue, limit)
            .max(HEADER_SIZE + record_size);
        // Room for as many callbacks as records of this size fill the buffer (the
        // partition's last batch), within [MIN_CALLBACK_ROOM, CALLBACKS_PER_CHUNK].
        let callback_room = match completion {
            Completion::Callback(_) | Completion::FutureAndCallback(_) => (size
                / record_size.max(1))
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX)
            .clamp(batch::MIN_CALLBACK_ROOM, batch::CALLBACKS_PER_CHUNK),
            Completion::Future => 0,
        };
        let reserved = size + callback_room * batch::CALLBACK_COST;
        let memory = match self.pool.reserve(reserved, deadline.map(|d| d.at())) {
            Ok(m) => m,
            Err(e) => return Err((e, completion)),
        };
        let builder = RecordBatchBuilder::with_capacity(
            self.cfg.compression,
            self.cfg.compression_level,
            size,
        );
        let id = self.next_batch_id.fetch_add(1, Ordering::Relaxed);
        let mut fresh = ProducerBatch::new(
            id,
            queue.tp.clone(),
            builder,
            memory,
            Instant::now(),
            self.cfg.producer_id,
        )
        .with_callback_room(callback_room)
        .with_ratio(&queue.ratio);
        let mut batches = queue.batches.lock();
        if self.shut.load(Ordering::SeqCst) {
            drop(batches);
            return Err((Error::Closed, completion));
        }
        // Another thread may have opened a batch while we allocated: use it first.
        let completion = match batches.back_mut() {
            Some(open) => match open.try_append(record, completion, limit) {
                Ok(future) => {
                    let (batch_full, sealing) = self.close_if_full(open, limit);
                    drop(batches);
                    drop(fresh); // our memory goes back, outside the lock
                    self.seal(queue, sealing);
                    return Ok(Appended {
                        future,
                        wake_sender: batch_full,
                        lingers_until: None,
                        batch_full,
                    });
                }
                Err(c) => c,
            },
            None => completion,
        };
        let mut sealing = None;
        let previous_ready = !batches.is_empty();
        if let Some(previous) = batches.back_mut() {
            queue.size_hint.store(previous.size(), Ordering::Relaxed);
            previous.close();
            sealing = previous.take_for_sealing().map(|b| (previous.id, b));
        }
        let future = match fresh.try_append(record, completion, BatchLimit::UNLIMITED) {
            Ok(f) => f,
            Err(_) => unreachable!("an empty open batch takes any record"),
        };
        // A record as large as batch.size fills its batch alone: it goes without lingering.
        let (fresh_full, fresh_sealing) = self.close_if_full(&mut fresh, limit);
        self.incomplete
            .lock()
            .insert(fresh.id, Arc::clone(&fresh.result));
        fresh.position = batches.next_position;
        batches.next_position += batch::POSITION_SPACING;
        batches.push_back(fresh);
        self.list(queue, &mut batches);
        let created = batches.back().map_or_else(Instant::now, |b| b.created);
        drop(batches);
        self.seal(queue, sealing);
        self.seal(queue, fresh_sealing);
        let lingers_until = if self.all_ready() || fresh_full {
            created
        } else {
            created
                .checked_add(self.cfg.linger)
                .unwrap_or_else(|| crate::core::instant_after(Duration::MAX))
        };
        Ok(Appended {
            future,
            wake_sender: previous_ready || fresh_full,
            lingers_until: Some(lingers_until),
            batch_full: fresh_full,
        })
    }

    /// How full a batch of `queue` may get: batch.size, against the estimated compressed
    /// size for a compressed batch (see [`BatchLimit`]; Java's producer bounds a batch the
    /// same way).
    fn batch_limit(&self, queue: &PartitionQueue) -> BatchLimit {
        if self.cfg.compression == Compression::None {
            BatchLimit::uncompressed(self.cfg.batch_size)
        } else {
            queue.ratio.limit(self.cfg.batch_size)
        }
    }

    /// The buffer a new batch of `queue` starts with: about its last batch's size (a
    /// power of two, at least [`MIN_BATCH_BUFFER`]), at most `limit`
    /// ([`Accumulator::batch_limit`]). The batch grows it as records come
    /// (`ProducerBatch::try_append`).
    fn initial_buffer(&self, queue: &PartitionQueue, limit: BatchLimit) -> usize {
        let hint = queue.size_hint.load(Ordering::Relaxed);
        let wanted = hint.saturating_add(hint / 4).max(MIN_BATCH_BUFFER);
        wanted
            .checked_next_power_of_two()
            .unwrap_or(usize::MAX)
            .min(limit.buffer_cap())
    }

    /// Closes `batch` once it is full by `limit` ([`Accumulator::batch_limit`]) (or was
    /// closed already) and hands out its builder for compression by this thread (see
    /// [`Accumulator::seal`]). Returns whether the batch is full. Under the partition lock.
    fn close_if_full(
        &self,
        batch: &mut ProducerBatch,
        limit: BatchLimit,
    ) -> (bool, Option<(u64, RecordBatchBuilder)>) {
        if limit.is_full(batch.size()) {
            batch.close();
        }
        let full = batch.is_closed();
        (full, batch.take_for_sealing().map(|b| (batch.id, b)))
    }

    /// Compresses a batch this thread just closed (see `ProducerBatch::take_for_sealing`)
    /// with no lock held, teaches the topic's compression estimate, then hands the bytes
    /// back to the batch, unless it is gone (expired or aborted meanwhile), and gives back
    /// the buffer.memory compression saved. The caller wakes the sender afterwards.
    fn seal(&self, queue: &PartitionQueue, sealing: Option<(u64, RecordBatchBuilder)>) {
        let Some((id, builder)) = sealing else {
            return;
        };
        let uncompressed = builder.estimated_size();
        let bytes = builder.build_vec(crate::record_batch::ProducerState::NONE);
        queue.ratio.observe(uncompressed, bytes.len());
        let mut batches = queue.batches.lock();
        let freed = batches
            .iter_mut()
            .rev()
            .find(|b| b.id == id)
            .map(|batch| batch.finish_sealing(bytes));
        drop(batches);
        drop(freed); // the buffer.memory the compression saved, outside the lock
    }

    fn try_append_locked(
        &self,
        queue: &PartitionQueue,
        record: &AppendRecord<'_>,
        completion: Completion,
    ) -> Result<Appended, Completion> {
        let limit = self.batch_limit(queue);
        let mut batches = queue.batches.lock();
        if self.shut.load(Ordering::SeqCst) {
            return Err(completion); // the slow path reports it
        }
        let Some(open) = batches.back_mut() else {
            return Err(completion);
        };
        let future = match open.try_append(record, completion, limit) {
            Ok(future) => future,
            Err(completion) => {
                if open.is_closed() {
                    // Full (or out of memory to grow): the next batch starts this big.
                    queue.size_hint.store(open.size(), Ordering::Relaxed);
                }
                return Err(completion);
            }
        };
        let (batch_full, sealing) = self.close_if_full(open, limit);
        drop(batches);
        self.seal(queue, sealing);
        Ok(Appended {
            future,
            wake_sender: batch_full,
            lingers_until: None,
            batch_full,
        })
    }

    /// Lists `queue` for the sender if it is not (see "Active queues"); `batches` is its
    /// locked contents, just given a batch.
    fn list(&self, queue: &Arc<PartitionQueue>, batches: &mut Batches) {
        if !batches.listed {
            batches.listed = true;
            self.newly_active.lock().push(Arc::clone(queue));
        }
    }

    /// Appends the queues listed since the last call to `active`, the sender's list of the
    /// queues that may hold batches (see "Active queues"). Only the sender calls this.
    pub fn collect_active(&self, active: &mut Vec<Arc<PartitionQueue>>) {
        active.append(&mut self.newly_active.lock());
    }

    /// Every partition queue that exists (close, fatal errors, authentication failures).
    pub fn queues(&self) -> Vec<Arc<PartitionQueue>> {
        self.topics
            .read()
            .values()
            .flat_map(|t| t.partitions.iter().cloned())
            .collect()
    }

    /// Whether every batch is ready whatever its linger: a flush or close is under way, or
    /// a send waits for memory (as Java drains then). `inspect` and a newly opened batch's
    /// deadline (`Appended::lingers_until`) both follow this one rule.
    fn all_ready(&self) -> bool {
        self.flushes_in_progress.load(Ordering::SeqCst) > 0
            || self.closing.load(Ordering::SeqCst)
            || self.pool.has_waiters()
    }

    /// Whether the front batch of `queue` should be sent now (must, or may), else when to
    /// look again.
    /// Also removes batches whose delivery timeout passed (returned in `expired`). Batches
    /// of the partition still in flight are older, so the sender expired them first: the
    /// records of a partition time out in order.
    ///
    /// An empty queue is unlisted: the sender, the only caller, then drops it from its
    /// active list (see "Active queues").
    pub fn inspect(
        &self,
        queue: &PartitionQueue,
        now: Instant,
        expired: &mut Vec<ProducerBatch>,
    ) -> QueueState {
        let mut batches = queue.batches.lock();
        while let Some(front) = batches.front() {
            if now.saturating_duration_since(front.created) >= self.cfg.delivery_timeout {
                expired.extend(batches.pop_front());
            } else {
                break;
            }
        }
        let Some(front) = batches.front() else {
            batches.listed = false;
            return QueueState::Empty;
        };
        if let Some(at) = front.retry_at.filter(|at| *at > now) {
            return QueueState::Backoff(at);
        }
        // linger.ms may be as long as Long.MAX ms, more than some platforms' instants hold:
        // past them, the batch lingers without end (until full, flushed or closed).
        let linger_done = front
            .created
            .checked_add(self.cfg.linger)
            .unwrap_or_else(|| crate::core::instant_after(Duration::MAX));
        if front.is_closed() || batches.len() > 1 || self.all_ready() {
            QueueState::Ready
        } else if now >= linger_done {
            QueueState::Lingered
        } else {
            QueueState::Lingering(linger_done)
        }
    }

    /// Takes the front batch of `queue` if it is not backing off, closing it to appends.
    /// `room` is the space left in the request; a batch that does not fit stays, unless
    /// `must_take` (the request is still empty).
    #[cfg(test)]
    pub fn take_front(
        &self,
        queue: &PartitionQueue,
        now: Instant,
        room: usize,
        must_take: bool,
    ) -> Option<ProducerBatch> {
        self.take_front_with(queue, now, room, must_take, |_| Some(()))
            .map(|(b, ())| b)
    }

    /// [`Accumulator::take_front`], when `decide` (called last, under the partition lock,
    /// only if the batch would otherwise be taken) also says yes; returns what it said.
    /// The sender's idempotence bookkeeping assigns sequence numbers in `decide`, so a
    /// sequence is assigned exactly when its batch leaves the queue.
    pub fn take_front_with<T>(
        &self,
        queue: &PartitionQueue,
        now: Instant,
        room: usize,
        must_take: bool,
        decide: impl FnOnce(&ProducerBatch) -> Option<T>,
    ) -> Option<(ProducerBatch, T)> {
        let mut batches = queue.batches.lock();
        let front = batches.front_mut()?;
        if front.retry_at.is_some_and(|at| at > now) || front.is_sealing() {
            return None;
        }
        if front.size() > room && !must_take {
            return None;
        }
        let decided = decide(front)?;
        queue.size_hint.store(front.size(), Ordering::Relaxed);
        front.close();
        batches.pop_front().map(|b| (b, decided))
    }

    /// Puts a batch that failed retriably back into its queue at its original place (by
    /// queue sequence), to be resent after `retry_at`. So retried batches keep their order
    /// whatever order their failures arrive in.
    pub fn reenqueue(&self, mut batch: ProducerBatch, retry_at: Instant) {
        batch.retry_at = Some(retry_at);
        let queue = self.queue(batch.tp.topic(), batch.tp.partition());
        let mut batches = queue.batches.lock();
        let at = batches
            .iter()
            .position(|b| b.position > batch.position)
            .unwrap_or(batches.len());
        batches.insert(at, batch);
        self.list(&queue, &mut batches);
    }

    /// Splits a batch refused as too large into two (see [`ProducerBatch::split`]); the
    /// halves replace it in the incomplete set. Returns it unchanged if it cannot be split.
    // The refused batch comes back by value on a rare path; boxing would not pay.
    #[allow(clippy::result_large_err)]
    pub fn split(&self, batch: ProducerBatch) -> Result<[ProducerBatch; 2], ProducerBatch> {
        let ids = (
            self.next_batch_id.fetch_add(1, Ordering::Relaxed),
            self.next_batch_id.fetch_add(1, Ordering::Relaxed),
        );
        let old = batch.id;
        let tp = batch.tp.clone();
        let halves = batch.split(self.cfg.compression, self.cfg.compression_level, ids)?;
        if self.cfg.compression != Compression::None {
            self.queue(tp.topic(), tp.partition())
                .ratio
                .reset_after_split();
        }
        let mut incomplete = self.incomplete.lock();
        for h in &halves {
            incomplete.insert(h.id, Arc::clone(&h.result));
        }
        incomplete.remove(&old);
        Ok(halves)
    }

    /// Cuts rejected records out of a batch (see [`ProducerBatch::take_out`]); the new
    /// batches replace it in the incomplete set.
    // The refused batch comes back by value on a rare path; boxing would not pay.
    #[allow(clippy::result_large_err)]
    pub fn take_out(
        &self,
        batch: ProducerBatch,
        rejected: &[u32],
    ) -> Result<Vec<(ProducerBatch, Option<u32>)>, ProducerBatch> {
        let old = batch.id;
        let groups = batch.take_out(
            rejected,
            self.cfg.compression,
            self.cfg.compression_level,
            || self.next_batch_id.fetch_add(1, Ordering::Relaxed),
        )?;
        let mut incomplete = self.incomplete.lock();
        for (b, _) in &groups {
            incomplete.insert(b.id, Arc::clone(&b.result));
        }
        incomplete.remove(&old);
        Ok(groups)
    }

    /// Completes a batch and forgets it for `flush`.
    ///
    /// The batch's callbacks are queued *before* it leaves the incomplete set: a flush that
    /// no longer finds the batch there then finds its callbacks ahead of the barrier it
    /// queues on the callback thread, and so waits for them.
    pub fn complete(
        &self,
        batch: ProducerBatch,
        outcome: Result<crate::delivery::BatchOutcome, Error>,
        callbacks: &CallbackQueue,
    ) {
        let id = batch.id;
        batch.complete(outcome, callbacks);
        self.incomplete.lock().remove(&id);
    }

    /// Answers the records of an in-flight batch with `error` and forgets it for `flush`
    /// (see [`ProducerBatch::expire`]).
    pub fn expire_in_flight(
        &self,
        batch: &mut ProducerBatch,
        error: Error,
        callbacks: &CallbackQueue,
    ) {
        batch.expire(error, callbacks);
        self.incomplete.lock().remove(&batch.id);
    }

    /// Takes every batch out of `queue`, oldest first (its topic was deleted).
    pub fn take_all(&self, queue: &PartitionQueue) -> Vec<ProducerBatch> {
        queue.batches.lock().queue.drain(..).collect()
    }

    /// Takes the batches of `queue` that `take` picks out of the queue, keeping the others
    /// in their order. The list is sized before the lock is taken (it grows under the lock
    /// only if batches were queued meanwhile).
    pub fn take_where(
        &self,
        queue: &PartitionQueue,
        mut take: impl FnMut(&ProducerBatch) -> bool,
    ) -> Vec<ProducerBatch> {
        let mut out = Vec::with_capacity(self.queued_batches(queue));
        let mut batches = queue.batches.lock();
        let mut i = 0;
        while i < batches.queue.len() {
            if take(&batches.queue[i]) {
                out.extend(batches.queue.remove(i));
            } else {
                i += 1;
            }
        }
        out
    }

    /// Room in buffer.memory for the callback of a record that failed before it reached a
    /// batch, waiting until `deadline` (`None`: not at all), so that such callbacks also
    /// wait for the callback thread instead of queueing without limit.
    pub fn reserve_callback(&self, deadline: Option<Instant>) -> Result<pool::Reservation, Error> {
        self.pool.reserve(batch::CALLBACK_COST, deadline)
    }

    /// Refuses every later append (see `shut`); the caller then fails what is queued with
    /// [`Accumulator::abort_all`].
    pub fn shut(&self) {
        self.shut.store(true, Ordering::SeqCst);
    }

    /// Fails every queued batch with `error` (force close).
    pub fn abort_all(&self, error: &Error, callbacks: &CallbackQueue) {
        for q in self.queues() {
            let drained: Vec<ProducerBatch> = q.batches.lock().queue.drain(..).collect();
            for b in drained {
                self.complete(b, Err(error.clone()), callbacks);
            }
        }
    }

    /// Whether no batch is queued.
    pub fn is_empty(&self) -> bool {
        self.queues().iter().all(|q| q.batches.lock().is_empty())
    }

    /// Number of batches queued for `queue` (adaptive partitioning input).
    pub fn queued_batches(&self, queue: &PartitionQueue) -> usize {
        queue.batches.lock().len()
    }

    /// Records in the queues: appended and not drained yet, or back for a retry. Locks
    /// each partition queue in turn (never two at once), so it costs the caller, not the
    /// send path.
    pub fn queued_records(&self) -> u64 {
        self.queues()
            .iter()
            .map(|q| {
                let batches = q.batches.lock();
                batches
                    .queue
                    .iter()
                    .map(|b| u64::from(b.record_count()))
                    .sum::<u64>()
            })
            .sum()
    }

    /// The results of every batch not yet completed (what a `flush` waits for).
    pub fn incomplete(&self) -> Vec<Arc<BatchResult>> {
        self.incomplete.lock().values().cloned().collect()
    }

    /// Marks a flush in progress: batches are ready regardless of linger.
    pub fn begin_flush(&self) {
        self.flushes_in_progress.fetch_add(1, Ordering::SeqCst);
    }

    /// Ends a flush started with [`Accumulator::begin_flush`].
    pub fn end_flush(&self) {
        self.flushes_in_progress.fetch_sub(1, Ordering::SeqCst);
    }

    /// From now on every batch is ready at once (close drains without lingering), and sends
    /// waiting for memory fail with `error`.
    pub fn begin_close(&self, error: &Error) {
        self.closing.store(true, Ordering::SeqCst);
        self.pool.close(error);
    }
}

/// What the sender should do about one partition queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum QueueState {
    /// Nothing queued.
    Empty,
    /// The front batch must go now: it is full (closed, or another batch follows it), or a
    /// flush, a close or a send waiting for memory wants every batch sent.
    Ready,
    /// The front batch is open and its linger passed: it may go now, or wait behind a
    /// request in flight to its leader and keep filling (see `Sender::send_ready`).
    Lingered,
    /// The front batch lingers until this instant.
    Lingering(Instant),
    /// The front batch is backing off until this instant.
    Backoff(Instant),
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::delivery::BatchOutcome;

    fn acc(batch_size: usize, buffer: usize) -> Accumulator {
        Accumulator::new(AccumulatorConfig {
            batch_size,
            buffer_memory: buffer,
            compression: Compression::None,
            compression_level: None,
            linger: Duration::from_millis(5),
            delivery_timeout: Duration::from_secs(120),
            producer_id: 1,
        })
    }

    fn rec(value: &[u8]) -> AppendRecord<'_> {
        AppendRecord {
            timestamp: 1,
            key: None,
            value: Some(value),
            headers: &[],
            payload: RecordBatchBuilder::payload_size(None, Some(value), &[]),
        }
    }

    #[test]
    fn records_fill_a_batch_then_open_the_next() {
        let a = acc(200, 10_000);
        let q = a.queue("t", 0);
        let first = a
            .append(&q, &rec(&[1; 50]), Completion::Future, None)
            .unwrap();
        assert!(
            !first.wake_sender && first.lingers_until.is_some(),
            "a new batch in an empty queue tells when it is ready"
        );
        let second = a
            .append(&q, &rec(&[2; 50]), Completion::Future, None)
            .unwrap();
        assert!(!second.wake_sender);
        a.append(&q, &rec(&[3; 50]), Completion::Future, None)
            .unwrap();
        assert_eq!(q.batches.lock().len(), 2);
        assert!(q.batches.lock().front().unwrap().is_closed());
        assert_eq!(
            a.inspect(&q, Instant::now(), &mut Vec::new()),
            QueueState::Ready
        );
    }

    #[test]
    fn the_appending_thread_compresses_the_batch_it_fills_and_the_drain_patches_its_header() {
        let a = Accumulator::new(AccumulatorConfig {
            compression: Compression::Lz4,
            ..acc(1_000, 100_000).cfg
        });
        let q = a.queue("t", 0);
        for i in 0..30u8 {
            a.append(&q, &rec(&[i; 50]), Completion::Future, None)
                .unwrap();
        }
        let mut batch = a.take_front(&q, Instant::now(), 1 << 20, true).unwrap();
        assert!(batch.is_sealed(), "compressed by the thread that filled it");
        let state = crate::record_batch::ProducerState {
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 7,
            transactional: false,
        };
        let bytes = batch.encode(state);
        let (parsed, rest) = crate::record_batch::RecordBatch::parse(&bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!(parsed.compression(), Compression::Lz4);
        assert_eq!(
            parsed.producer_state(),
            state,
            "patched in place, CRC checked by parse"
        );
        let records = parsed.records().unwrap();
        assert_eq!(records.len() as u32, batch.record_count());
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.value.as_deref(), Some(&[i as u8; 50][..]));
        }
        let (thread, tx) = crate::delivery::CallbackThread::start("test-callbacks".into(), 1);
        a.complete(batch, Err(Error::Closed), &tx);
        a.abort_all(&Error::Closed, &tx);
        drop(tx);
        assert!(thread.join(None));
    }

    /// A value like the JSON events users send: compresses to about a third with lz4.
    fn json_value(i: u32) -> Vec<u8> {
        format!(
            "{{\"id\":{i},\"user\":\"u-{}\",\"status\":\"paid\",\"currency\":\"EUR\",\"amount\":{}.50}}",
            i % 97,
            i % 1000
        )
        .into_bytes()
    }

    #[test]
    fn batch_size_bounds_a_compressed_batch_by_its_estimated_compressed_size() {
        let a = Accumulator::new(AccumulatorConfig {
            compression: Compression::Lz4,
            ..acc(4_096, 10_000_000).cfg
        });
        let q = a.queue("t", 0);
        let tx_thread = crate::delivery::CallbackThread::start("test-callbacks".into(), 1);
        let (thread, tx) = tx_thread;
        let mut batches = Vec::new();
        let mut i = 0;
        while batches.len() < 200 {
            let values: Vec<Vec<u8>> = (0..50).map(|k| json_value(i + k)).collect();
            i += 50;
            for v in &values {
                a.append(&q, &rec(v), Completion::Future, None).unwrap();
            }
            // The sender's part: every closed batch goes (its encoding is the wire size).
            while q.batches.lock().len() > 1 {
                let mut batch = a.take_front(&q, Instant::now(), 1 << 30, true).unwrap();
                let wire = batch.encode(crate::record_batch::ProducerState::NONE).len();
                // What the drained batch holds of buffer.memory: the compressed bytes
                // (its uncompressed buffer's memory went back when it was compressed).
                let open = q.batches.lock().back().map_or(0, |b| b.buffer_room());
                let held = a.buffer_in_use() - open;
                batches.push((batch.record_count(), wire, held));
                a.complete(batch, Err(Error::Closed), &tx);
            }
        }
        let (first_records, first_wire, _) = batches[0];
        // The first batches know no ratio yet: 4 KiB of records, compressed far below it.
        assert!(first_wire < 2_048, "first batch {first_wire} B");
        let last: Vec<_> = batches[190..].to_vec();
        let records = last.iter().map(|b| b.0).min().unwrap();
        assert!(
            records >= 3 * first_records,
            "later batches hold what compresses to batch.size: {first_records} then {last:?}"
        );
        let wire = last.iter().map(|b| b.1).sum::<usize>() / last.len();
        assert!(
            (3_000..=4_096).contains(&wire),
            "batches close to batch.size on the wire: {last:?}"
        );
        for (n, &(records, wire, held)) in batches.iter().enumerate() {
            assert!(
                wire <= 4_096 * 21 / 20,
                "batch {n} of {records} records: {wire} B"
            );
            assert!(
                held <= wire + 64,
                "batch {n}: {wire} B on the wire, {held} B held"
            );
        }
        a.abort_all(&Error::Closed, &tx);
        drop(tx);
        assert!(thread.join(None));
        assert_eq!(a.buffer_in_use(), 0, "every byte back once answered");
    }

    /// Random bytes: lz4 does not shrink them.
    fn incompressible(n: usize, seed: u64) -> Vec<u8> {
        let mut x = seed | 1;
        (0..n)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                x as u8
            })
            .collect()
    }

    #[test]
    fn the_next_record_counts_uncompressed_against_batch_size_as_in_java() {
        // Java's hasRoomFor: header + records so far × ratio × 1.05 + the next record's
        // uncompressed size must fit in batch.size; the next record's own compression is
        // not counted on. So two records of 85 % of batch.size never share a batch, however
        // well earlier batches compressed (else the pair may exceed max.request.size).
        let a = Accumulator::new(AccumulatorConfig {
            compression: Compression::Lz4,
            ..acc(4_096, 10_000_000).cfg
        });
        let q = a.queue("t", 0);
        for _ in 0..200 {
            q.ratio.observe(1_000, 200);
        }
        let first = a
            .append(
                &q,
                &rec(&incompressible(3_500, 1)),
                Completion::Future,
                None,
            )
            .unwrap();
        assert!(!first.batch_full, "3.5 KB × 0.2 × 1.05 is far from 4 KiB");
        a.append(
            &q,
            &rec(&incompressible(3_500, 2)),
            Completion::Future,
            None,
        )
        .unwrap();
        assert_eq!(
            q.batches.lock().len(),
            2,
            "the second large record opens a batch of its own"
        );
        // Small records still fill a batch to what is estimated to compress to batch.size.
        let b = a.queue("t", 1);
        for _ in 0..200 {
            b.ratio.observe(1_000, 200);
        }
        for i in 0..60 {
            a.append(&b, &rec(&json_value(i)), Completion::Future, None)
                .unwrap();
        }
        let batches = b.batches.lock();
        assert_eq!(batches.len(), 1, "60 small records fit in one batch");
        assert!(batches[0].size() > 4_096, "{}", batches[0].size());
    }

    #[test]
    fn a_split_batch_resets_its_topics_compression_estimate_as_in_java() {
        let a = Accumulator::new(AccumulatorConfig {
            compression: Compression::Lz4,
            ..acc(1_000_000, 10_000_000).cfg
        });
        let q = a.queue("t", 0);
        for _ in 0..200 {
            q.ratio.observe(1_000, 200);
        }
        for i in 0..10 {
            a.append(&q, &rec(&json_value(i)), Completion::Future, None)
                .unwrap();
        }
        let mut batch = a.take_front(&q, Instant::now(), 1 << 30, true).unwrap();
        batch.encode(crate::record_batch::ProducerState::NONE);
        assert!(q.ratio.get() < 0.5);
        let halves = a.split(batch).expect("ten records split");
        assert_eq!(
            q.ratio.get(),
            1.0,
            "a batch too large for the broker: estimate no gain until batches show it again"
        );
        let (thread, tx) = crate::delivery::CallbackThread::start("test-callbacks".into(), 1);
        for h in halves {
            a.complete(h, Err(Error::Closed), &tx);
        }
        drop(tx);
        assert!(thread.join(None));
    }

    #[test]
    fn an_uncompressed_batch_stops_at_batch_size() {
        let a = acc(4_096, 10_000_000);
        let q = a.queue("t", 0);
        for i in 0..500 {
            a.append(&q, &rec(&json_value(i)), Completion::Future, None)
                .unwrap();
        }
        let batches = q.batches.lock();
        assert!(batches.len() > 5);
        for b in batches.iter() {
            assert!(b.size() <= 4_096, "{}", b.size());
        }
    }

    #[test]
    fn a_batch_opened_during_a_flush_or_close_does_not_linger() {
        let a = acc(16_384, 100_000);
        let q = a.queue("t", 0);
        let before = Instant::now();
        let lingering = a.append(&q, &rec(b"x"), Completion::Future, None).unwrap();
        assert!(lingering.lingers_until.unwrap() >= before + Duration::from_millis(5));
        a.take_front(&q, Instant::now(), 1 << 20, true).unwrap();
        a.begin_flush();
        let flushed = a.append(&q, &rec(b"y"), Completion::Future, None).unwrap();
        assert!(
            flushed.lingers_until.unwrap() <= Instant::now(),
            "a flush wants it now"
        );
        a.end_flush();
        a.take_front(&q, Instant::now(), 1 << 20, true).unwrap();
        a.begin_close(&Error::Closed);
        let closing = a.append(&q, &rec(b"z"), Completion::Future, None).unwrap();
        assert!(
            closing.lingers_until.unwrap() <= Instant::now(),
            "close drains now"
        );
    }

    #[test]
    fn a_record_as_large_as_batch_size_fills_its_batch_alone() {
        let a = acc(1_000, 100_000);
        let q = a.queue("t", 0);
        let appended = a
            .append(&q, &rec(&[7; 1_200]), Completion::Future, None)
            .unwrap();
        assert!(appended.batch_full && appended.wake_sender);
        assert!(q.batches.lock().front().unwrap().is_closed());
        assert_eq!(
            a.inspect(&q, Instant::now(), &mut Vec::new()),
            QueueState::Ready,
            "it goes without lingering, as in Java"
        );
    }

    #[test]
    fn a_lone_open_batch_lingers() {
        let a = acc(16_384, 100_000);
        let q = a.queue("t", 3);
        a.append(&q, &rec(b"x"), Completion::Future, None).unwrap();
        let now = Instant::now();
        assert!(matches!(
            a.inspect(&q, now, &mut Vec::new()),
            QueueState::Lingering(_)
        ));
        assert_eq!(
            a.inspect(&q, now + Duration::from_millis(5), &mut Vec::new()),
            QueueState::Lingered,
            "past linger.ms an open batch may go, but need not"
        );
        a.begin_flush();
        assert_eq!(a.inspect(&q, now, &mut Vec::new()), QueueState::Ready);
        a.end_flush();
    }

    #[test]
    fn a_full_buffer_fails_without_blocking_when_asked_not_to() {
        let a = acc(1_000, 1_000);
        let q = a.queue("t", 0);
        a.append(&q, &rec(&[0; 900]), Completion::Future, None)
            .unwrap();
        let (err, _) = a
            .append(&q, &rec(&[0; 900]), Completion::Future, None)
            .unwrap_err();
        assert!(matches!(err, Error::BufferExhausted { .. }));
        assert!(a.buffer_in_use() <= 1_000);
    }

    #[test]
    fn a_new_batch_starts_small_and_grows_its_buffer_up_to_batch_size() {
        let a = acc(64 * 1024, 1 << 20);
        let q = a.queue("t", 0);
        a.append(&q, &rec(&[1; 100]), Completion::Future, None)
            .unwrap();
        assert_eq!(
            a.buffer_in_use(),
            MIN_BATCH_BUFFER,
            "a partition's first batch holds a small buffer, not batch.size"
        );
        let mut records = 1;
        while q.batches.lock().len() == 1 {
            a.append(&q, &rec(&[1; 100]), Completion::Future, None)
                .unwrap();
            records += 1;
        }
        let front = a.take_front(&q, Instant::now(), 1 << 20, true).unwrap();
        assert!(front.size() <= 64 * 1024 && front.size() > 63 * 1024);
        assert_eq!(u32::try_from(records - 1).unwrap(), front.record_count());
        // The next batch is sized like the last one: batch.size (its own buffer plus the
        // open batch's).
        a.append(&q, &rec(&[1; 100]), Completion::Future, None)
            .unwrap();
        assert_eq!(q.batches.lock().back().unwrap().buffer_room(), 64 * 1024);
    }

    /// Performance round two, 6,000 partitions: a batch of a partition that sends a record
    /// or two reserves little buffer.memory (it reserved 8 KiB for its buffer and callbacks,
    /// and 6,000 of them outgrew the default 32 MiB: every send waited for memory).
    #[test]
    fn a_first_small_record_with_a_callback_reserves_under_a_kib() {
        let a = acc(64 * 1024, 32 << 20);
        let (thread, tx) = crate::delivery::CallbackThread::start("test-callbacks".into(), 1);
        for p in 0..100 {
            let q = a.queue("t", p);
            let callback = Completion::Callback(Box::new(|_, _| {}));
            a.append(&q, &rec(&[1; 100]), callback, None).unwrap();
        }
        let per_batch = a.buffer_in_use() / 100;
        assert!(
            per_batch <= 1024,
            "{per_batch} bytes held per one-record batch"
        );
        a.abort_all(&Error::Closed, &tx);
        drop(tx);
        assert!(thread.join(None));
    }

    #[test]
    fn a_batch_that_cannot_grow_its_buffer_closes_and_the_next_record_waits_for_memory() {
        let a = acc(64 * 1024, 4 * 1024 + 2 * 1024);
        let q = a.queue("t", 0);
        let mut appended = 0u32;
        let error = loop {
            match a.append(&q, &rec(&[1; 100]), Completion::Future, None) {
                Ok(_) => appended += 1,
                Err((e, _)) => break e,
            }
            assert!(appended < 1_000, "the pool never ran short");
        };
        assert!(matches!(error, Error::BufferExhausted { .. }), "{error}");
        assert!(a.buffer_in_use() <= 6 * 1024);
        let first = a.take_front(&q, Instant::now(), 1 << 20, true).unwrap();
        assert!(first.is_closed() && first.size() <= 4 * 1024);
        assert_eq!(
            first.record_count(),
            appended,
            "every accepted record is in it"
        );
        drop(first);
        a.append(&q, &rec(&[1; 100]), Completion::Future, None)
            .expect("memory came back");
    }

    #[test]
    fn a_split_batch_answers_every_record_from_its_half_with_the_right_offset() {
        let a = acc(10_000, 100_000);
        let q = a.queue("t", 0);
        let (thread, tx) = crate::delivery::CallbackThread::start("test-callbacks".into(), 1);
        let (cb_tx, cb_rx) = crossbeam_channel::unbounded();
        let mut futures = Vec::new();
        for i in 0..5u8 {
            let value = [i; 10];
            let appended = if i == 3 {
                let cb_tx = cb_tx.clone();
                let callback = Box::new(
                    move |_: &crate::TopicPartition, r: Result<crate::RecordMetadata, Error>| {
                        cb_tx.send(r.map(|m| m.offset())).unwrap();
                    },
                );
                a.append(&q, &rec(&value), Completion::Callback(callback), None)
            } else {
                a.append(&q, &rec(&value), Completion::Future, None)
            };
            futures.push(appended.unwrap().future);
        }
        let mut batch = a.take_front(&q, Instant::now(), 1 << 20, true).unwrap();
        batch.encode(crate::record_batch::ProducerState::NONE);
        assert_eq!(a.incomplete().len(), 1);
        let [first, second] = a.split(batch).expect("five records split");
        assert_eq!((first.record_count(), second.record_count()), (2, 3));
        assert!(first.position < second.position && second.position < batch::POSITION_SPACING);
        assert_eq!(
            a.incomplete().len(),
            2,
            "the halves replace the batch for flush"
        );
        // The halves hold the records in order, re-encoded.
        let mut second = second;
        let bytes = second.encode(crate::record_batch::ProducerState::NONE);
        let (parsed, _) = crate::record_batch::RecordBatch::parse(&bytes).unwrap();
        let values: Vec<u8> = parsed
            .records()
            .unwrap()
            .iter()
            .map(|r| r.value.as_ref().unwrap()[0])
            .collect();
        assert_eq!(values, [2, 3, 4]);
        let outcome = |base_offset| {
            Ok(BatchOutcome {
                base_offset,
                log_append_time: -1,
            })
        };
        a.complete(first, outcome(100), &tx);
        a.complete(second, outcome(200), &tx);
        let offsets: Vec<Option<i64>> = futures
            .into_iter()
            .map(|f| f.map(|f| f.wait().unwrap().offset()))
            .collect();
        assert_eq!(offsets, [Some(100), Some(101), Some(200), None, Some(202)]);
        assert_eq!(cb_rx.recv().unwrap().unwrap(), 201, "callback of record 3");
        assert!(a.incomplete().is_empty());
        assert_eq!(a.buffer_in_use(), 0, "the halves gave the memory back");
        drop(tx);
        assert!(thread.join(None));
    }

    #[test]
    fn the_second_half_of_a_split_batch_holds_memory_until_it_completes() {
        let a = acc(10_000, 100_000);
        let q = a.queue("t", 0);
        for i in 0..6u8 {
            a.append(&q, &rec(&[i; 100]), Completion::Future, None)
                .unwrap();
        }
        let mut batch = a.take_front(&q, Instant::now(), 1 << 20, true).unwrap();
        batch.encode(crate::record_batch::ProducerState::NONE);
        let [first, second] = a.split(batch).expect("six records split");
        let (thread, tx) = crate::delivery::CallbackThread::start("test-callbacks".into(), 1);
        a.complete(first, Err(Error::Closed), &tx);
        let held = a.buffer_in_use();
        assert!(
            held >= second.size(),
            "the second half ({} bytes) holds {held} bytes of buffer memory",
            second.size()
        );
        a.complete(second, Err(Error::Closed), &tx);
        assert_eq!(a.buffer_in_use(), 0);
        drop(tx);
        assert!(thread.join(None));
    }

    #[test]
    fn inspecting_a_queue_does_not_wait_for_the_pool_lock() {
        let a = Arc::new(acc(16_384, 100_000));
        let q = a.queue("t", 0);
        a.append(&q, &rec(b"x"), Completion::Future, None).unwrap();
        let held = a.pool.hold_lock_for_test();
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        let (a2, q2) = (Arc::clone(&a), Arc::clone(&q));
        let inspector = std::thread::spawn(move || {
            let state = a2.inspect(&q2, Instant::now(), &mut Vec::new());
            let _ = done_tx.send(state);
        });
        let inspected = done_rx.recv_timeout(Duration::from_secs(2));
        drop(held);
        inspector.join().unwrap();
        assert!(
            inspected.is_ok(),
            "inspect (under the partition lock) waited for the pool's lock"
        );
        let (thread, tx) = crate::delivery::CallbackThread::start("test-callbacks".into(), 1);
        a.abort_all(&Error::Closed, &tx);
        drop(tx);
        assert!(thread.join(None));
    }

    #[test]
    fn rejected_records_are_taken_out_and_the_rest_resent_in_order() {
        let a = acc(10_000, 100_000);
        let (thread, tx) = crate::delivery::CallbackThread::start("test-callbacks".into(), 1);
        let q = a.queue("t", 0);
        let f = a.append(&q, &rec(b"v"), Completion::Future, None).unwrap();
        let mut batch = a.take_front(&q, Instant::now(), 1 << 20, true).unwrap();
        batch.encode(crate::record_batch::ProducerState::NONE);
        let batch = a.take_out(batch, &[7]).expect_err("offset out of range");
        a.complete(
            batch,
            Err(Error::broker(crate::ErrorCode::InvalidRecord)),
            &tx,
        );
        assert!(f.future.unwrap().wait().is_err());

        // The real case: records 1 and 3 rejected.
        let q2 = a.queue("t", 1);
        let futures2: Vec<SendFuture> = (0..5u8)
            .map(|i| {
                a.append(&q2, &rec(&[i; 8]), Completion::Future, None)
                    .unwrap()
                    .future
                    .unwrap()
            })
            .collect();
        let mut batch = a.take_front(&q2, Instant::now(), 1 << 20, true).unwrap();
        batch.encode(crate::record_batch::ProducerState::NONE);
        let groups = a.take_out(batch, &[1, 3]).unwrap();
        // In record order: [0], rejected 1, [2], rejected 3, [4], at rising positions.
        let shape: Vec<(u32, Option<u32>)> =
            groups.iter().map(|(b, m)| (b.record_count(), *m)).collect();
        assert_eq!(
            shape,
            [(1, None), (1, Some(1)), (1, None), (1, Some(3)), (1, None)]
        );
        assert!(groups.windows(2).all(|w| w[0].0.position < w[1].0.position));
        assert!(
            groups.iter().all(|(b, _)| b.producer.is_none()),
            "sequenced again"
        );
        for (i, (mut group, mark)) in groups.into_iter().enumerate() {
            let outcome = match mark {
                Some(_) => Err(Error::broker(crate::ErrorCode::InvalidRecord)),
                None => {
                    let bytes = group.encode(crate::record_batch::ProducerState::NONE);
                    let (parsed, _) = crate::record_batch::RecordBatch::parse(&bytes).unwrap();
                    let first = parsed.records().unwrap()[0].value.as_ref().unwrap()[0];
                    assert_eq!(usize::from(first), i, "record {i} kept in its group");
                    Ok(BatchOutcome {
                        base_offset: 10 + i as i64,
                        log_append_time: -1,
                    })
                }
            };
            a.complete(group, outcome, &tx);
        }
        let results: Vec<Result<i64, Error>> = futures2
            .into_iter()
            .map(|f| f.wait().map(|m| m.offset()))
            .collect();
        assert_eq!(results[0].as_ref().unwrap(), &10);
        assert!(matches!(
            results[1],
            Err(Error::Broker {
                code: crate::ErrorCode::InvalidRecord,
                ..
            })
        ));
        assert_eq!(results[2].as_ref().unwrap(), &12);
        assert!(results[3].is_err());
        assert_eq!(results[4].as_ref().unwrap(), &14);
        drop(tx);
        assert!(thread.join(None));
    }

    #[test]
    fn a_single_record_batch_does_not_split() {
        let a = acc(10_000, 100_000);
        let q = a.queue("t", 0);
        let f = a
            .append(&q, &rec(b"only"), Completion::Future, None)
            .unwrap();
        let mut batch = a.take_front(&q, Instant::now(), 1 << 20, true).unwrap();
        batch.encode(crate::record_batch::ProducerState::NONE);
        let batch = a.split(batch).expect_err("one record");
        let (thread, tx) = crate::delivery::CallbackThread::start("test-callbacks".into(), 1);
        a.complete(
            batch,
            Err(Error::broker(crate::ErrorCode::MessageTooLarge)),
            &tx,
        );
        assert!(matches!(
            f.future.unwrap().wait(),
            Err(Error::Broker {
                code: crate::ErrorCode::MessageTooLarge,
                ..
            })
        ));
        drop(tx);
        assert!(thread.join(None));
    }

    #[test]
    fn completing_a_batch_resolves_its_futures_and_frees_memory() {
        let a = acc(1_000, 10_000);
        let q = a.queue("t", 0);
        let f = a
            .append(&q, &rec(b"v"), Completion::Future, None)
            .unwrap()
            .future
            .unwrap();
        let batch = a.take_front(&q, Instant::now(), 1 << 20, true).unwrap();
        let (thread, tx) = crate::delivery::CallbackThread::start("test-callbacks".into(), 1);
        assert_eq!(a.incomplete().len(), 1);
        a.complete(
            batch,
            Ok(BatchOutcome {
                base_offset: 9,
                log_append_time: -1,
            }),
            &tx,
        );
        assert_eq!(f.wait().unwrap().offset(), 9);
        assert_eq!(a.buffer_in_use(), 0);
        assert!(a.incomplete().is_empty());
        drop(tx);
        assert!(thread.join(None));
    }
}

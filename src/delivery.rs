//! Completions: [`SendFuture`] and the callback thread.
//!
//! # Ownership and order
//!
//! Every batch owns one [`BatchResult`], shared (`Arc`) with the [`SendFuture`]s of its
//! records, so a future costs one reference count, not an allocation. The sender thread
//! completes each batch exactly once, in the order the broker acknowledged them (which is
//! send order per partition):
//!
//! - when the batch has no callbacks and the callback thread is idle, it completes the
//!   batch's result directly, which wakes the futures;
//! - otherwise it queues the batch on the callback thread ([`CallbackQueue`]), which runs
//!   the batch's callbacks in record order and then completes the result. So a future never
//!   resolves before the callbacks of records sent before it (as in Java, where callbacks
//!   run before futures are completed).
//!
//! A completed result is also *settled*: `flush` waits for that.
//!
//! # Memory
//!
//! A batch queued on the callback thread takes its `buffer.memory` reservation along (its
//! record bytes and its callbacks' room) and gives it back just before its last callback
//! runs. So callbacks that fall behind hold memory, and `send` blocks (up to max.block.ms)
//! for it instead of the queue growing without bound (the channel itself is unbounded).
//!
//! # User code on the callback thread
//!
//! Callbacks and the wakers of futures polled as [`Future`]s run on the callback thread,
//! never on the sender thread: a panic in either is caught and logged; one that blocks
//! holds up the callbacks and futures behind it (and, through the memory they keep, later
//! sends), but the sender goes on serving the brokers.
//!
//! # Lock
//!
//! `BatchResult::state` guards the outcome, the settled flag and the async wakers; it is a
//! leaf lock (nothing else is taken while it is held) and is held only to read or write
//! those fields. `CallbackQueue::pending` is an atomic counter: incremented (SeqCst) before
//! a job is sent, decremented after the callback thread ran it.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::channel::{Receiver, Sender};
use parking_lot::{Condvar, Mutex};

use crate::accumulator::pool::Reservation;
use crate::error::Error;
use crate::record::{RecordMetadata, TopicPartition};

/// What the broker said about a whole batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BatchOutcome {
    /// Offset of the batch's first record, -1 when unknown (acks=0).
    pub base_offset: i64,
    /// The broker's LogAppendTime for the batch, -1 when the topic uses CreateTime.
    pub log_append_time: i64,
}

/// A batch's result, shared by the batch and its records' futures.
///
/// A batch rebuilt as several batches (split in two after MESSAGE_TOO_LARGE, or with records
/// taken out after INVALID_RECORD) forwards its result to theirs ([`BatchResult::forward`]):
/// the record at relative offset `r` finds its outcome in result `targets[r].0` at offset
/// `targets[r].1`. Futures and `flush` follow the forwarding, so a future made before the
/// split still resolves.
#[derive(Debug)]
pub(crate) struct BatchResult {
    /// The batch's partition: one per batch, so records do not each hold (and count
    /// references to) the topic name.
    tp: TopicPartition,
    /// `Core::id` of the producer the batch belongs to: waiting is refused only on that
    /// producer's callback thread.
    producer: u64,
    state: Mutex<ResultState>,
    changed: Condvar,
}

#[derive(Debug, Default)]
struct ResultState {
    outcome: Option<Result<BatchOutcome, Error>>,
    settled: bool,
    wakers: Vec<Waker>,
    split: Option<Split>,
}

/// Where a rebuilt batch's records went.
#[derive(Debug, Clone)]
struct Split {
    /// Per relative offset: (index into `results`, offset there).
    targets: Arc<[(usize, u32)]>,
    results: Arc<[Arc<BatchResult>]>,
}

/// What a record's future finds in a result.
enum Lookup {
    Done(Result<BatchOutcome, Error>),
    /// The batch was split: look in this result at this relative offset.
    Moved(Arc<BatchResult>, u32),
    Pending,
}

impl BatchResult {
    /// The result of a batch of `tp` of producer `producer` (`Core::id`), not complete yet.
    pub fn new(tp: TopicPartition, producer: u64) -> Self {
        BatchResult {
            tp,
            producer,
            state: Mutex::new(ResultState::default()),
            changed: Condvar::new(),
        }
    }

    /// `Core::id` of the batch's producer.
    pub fn producer(&self) -> u64 {
        self.producer
    }

    /// Records the batch's outcome and wakes its futures here, on the calling thread (the
    /// callback thread, or a thread answering a batch dropped by a panicking sender). Only
    /// the first call counts: a batch completes exactly once.
    pub fn complete(&self, outcome: Result<BatchOutcome, Error>, settled: bool) {
        wake_all(self.complete_deferring_wakers(outcome, settled));
    }

    /// [`BatchResult::complete`], but returns the async wakers to wake instead of waking
    /// them (the sender thread hands them to the callback thread: user code never runs on
    /// the sender).
    #[must_use]
    fn complete_deferring_wakers(
        &self,
        outcome: Result<BatchOutcome, Error>,
        settled: bool,
    ) -> Vec<Waker> {
        let wakers = {
            let mut s = self.state.lock();
            if s.outcome.is_some() || s.split.is_some() {
                debug_assert!(false, "batch completed twice");
                return Vec::new();
            }
            s.outcome = Some(outcome);
            s.settled |= settled;
            std::mem::take(&mut s.wakers)
        };
        self.changed.notify_all();
        wakers
    }

    /// Forwards this (never completed) result to the results of the batches its records
    /// went to: record `r` to `results[targets[r].0]` at offset `targets[r].1`.
    ///
    /// Runs on the sender thread, so the async wakers registered here are not woken but
    /// moved to every new result (the new batches are not complete yet): whichever
    /// completes first wakes them, and a future whose record is elsewhere re-registers
    /// there when it polls.
    pub fn forward(&self, targets: Vec<(usize, u32)>, results: Vec<Arc<BatchResult>>) {
        let results: Arc<[Arc<BatchResult>]> = results.into();
        let wakers = {
            // The wakers are taken in the same critical section that publishes the split,
            // so none registers here afterwards: a later poll sees the split and registers
            // with the new result instead.
            let mut s = self.state.lock();
            debug_assert!(s.outcome.is_none() && s.split.is_none());
            s.split = Some(Split {
                targets: targets.into(),
                results: Arc::clone(&results),
            });
            std::mem::take(&mut s.wakers)
        };
        self.changed.notify_all();
        // Leaf locks taken one at a time. The new results cannot be complete yet: the
        // sender thread (this thread) completes them later.
        if !wakers.is_empty() {
            for r in results.iter() {
                r.state.lock().wakers.extend(wakers.iter().cloned());
            }
        }
    }

    fn lookup(s: &ResultState, relative_offset: u32) -> Lookup {
        if let Some(o) = &s.outcome {
            return Lookup::Done(o.clone());
        }
        match &s.split {
            Some(split) => match split.targets.get(relative_offset as usize) {
                Some(&(i, offset)) => Lookup::Moved(Arc::clone(&split.results[i]), offset),
                None => Lookup::Done(Err(Error::Fatal(format!(
                    "record {relative_offset} is not in its rebuilt batch"
                )))),
            },
            None => Lookup::Pending,
        }
    }

    /// Whether the outcome of the record at `relative_offset` is known.
    pub fn is_complete_for(&self, relative_offset: u32) -> bool {
        let lookup = Self::lookup(&self.state.lock(), relative_offset);
        match lookup {
            Lookup::Done(_) => true,
            Lookup::Moved(next, offset) => next.is_complete_for(offset),
            Lookup::Pending => false,
        }
    }

    /// Waits until the batch (both halves, if it was split) is settled or `deadline`
    /// passes; true when settled.
    pub fn wait_settled(&self, deadline: Option<Instant>) -> bool {
        let mut s = self.state.lock();
        while !s.settled {
            if let Some(split) = s.split.clone() {
                drop(s);
                return split.results.iter().all(|r| r.wait_settled(deadline));
            }
            match deadline {
                None => self.changed.wait(&mut s),
                Some(d) => {
                    if self.changed.wait_until(&mut s, d).timed_out() {
                        return s.settled;
                    }
                }
            }
        }
        true
    }

    /// Waits until the record at `relative_offset` has an outcome here or moved to a
    /// split half, or `deadline` passes.
    fn wait_lookup(&self, relative_offset: u32, deadline: Option<Instant>) -> Lookup {
        let mut s = self.state.lock();
        loop {
            match Self::lookup(&s, relative_offset) {
                Lookup::Pending => {}
                found => return found,
            }
            match deadline {
                None => self.changed.wait(&mut s),
                Some(d) => {
                    if self.changed.wait_until(&mut s, d).timed_out() {
                        return Self::lookup(&s, relative_offset);
                    }
                }
            }
        }
    }

    fn poll_lookup(&self, relative_offset: u32, waker: &Waker) -> Lookup {
        let mut s = self.state.lock();
        let found = Self::lookup(&s, relative_offset);
        if matches!(found, Lookup::Pending) && !s.wakers.iter().any(|w| w.will_wake(waker)) {
            s.wakers.push(waker.clone());
        }
        found
    }
}

/// The record `slot` of `batch`: its metadata once known (following splits), or `None`
/// when `deadline` passed first.
fn resolve(
    batch: &Arc<BatchResult>,
    slot: &RecordSlot,
    deadline: Option<Instant>,
) -> Option<Result<RecordMetadata, Error>> {
    let mut batch = Arc::clone(batch);
    let mut offset = slot.relative_offset;
    loop {
        match batch.wait_lookup(offset, deadline) {
            Lookup::Done(o) => return Some(slot.with_offset(offset).metadata(&batch.tp, &o)),
            Lookup::Moved(next, o) => (batch, offset) = (next, o),
            Lookup::Pending => return None,
        }
    }
}

/// Where one record sits in its batch, and what its metadata needs.
#[derive(Debug, Clone)]
pub(crate) struct RecordSlot {
    /// Offset delta of the record in its batch.
    pub relative_offset: u32,
    /// The record's CreateTime.
    pub timestamp: i64,
    pub key_size: i32,
    pub value_size: i32,
}

impl RecordSlot {
    /// This slot at another relative offset (its place in a split half).
    pub fn with_offset(&self, relative_offset: u32) -> RecordSlot {
        RecordSlot {
            relative_offset,
            ..self.clone()
        }
    }

    /// The record's metadata (or error) given its batch's partition and outcome.
    pub fn metadata(
        &self,
        tp: &TopicPartition,
        outcome: &Result<BatchOutcome, Error>,
    ) -> Result<RecordMetadata, Error> {
        let o = outcome.as_ref().map_err(Clone::clone)?;
        let offset = if o.base_offset >= 0 {
            // Saturating: a hostile or broken broker's base offset near i64::MAX must not
            // panic the callback thread (debug builds check overflow).
            o.base_offset
                .saturating_add(i64::from(self.relative_offset))
        } else {
            -1
        };
        let timestamp = if o.log_append_time >= 0 {
            o.log_append_time
        } else {
            self.timestamp
        };
        Ok(RecordMetadata::new(
            tp.clone(),
            offset,
            timestamp,
            self.key_size,
            self.value_size,
        ))
    }
}

/// The result of one `send`: wait for it, poll it as a `Future`, or drop it (dropping never
/// cancels delivery).
///
/// ```no_run
/// # fn demo(producer: kafka_producer::Producer) -> Result<(), kafka_producer::Error> {
/// use kafka_producer::ProducerRecord;
/// let md = producer.send(ProducerRecord::new("orders", b"hello".to_vec())).wait()?;
/// println!("written to {}-{} at {}", md.topic(), md.partition(), md.offset());
/// # Ok(()) }
/// ```
#[derive(Debug)]
#[must_use = "a SendFuture does nothing unless waited on; dropping it is fine but loses the result"]
pub struct SendFuture {
    state: FutureState,
}

#[derive(Debug)]
enum FutureState {
    /// Failed (or finished) before reaching a batch.
    Ready(Result<RecordMetadata, Error>),
    /// Appended to a batch.
    InBatch {
        batch: Arc<BatchResult>,
        slot: RecordSlot,
    },
}

impl SendFuture {
    pub(crate) fn ready(result: Result<RecordMetadata, Error>) -> Self {
        SendFuture {
            state: FutureState::Ready(result),
        }
    }

    pub(crate) fn in_batch(batch: Arc<BatchResult>, slot: RecordSlot) -> Self {
        SendFuture {
            state: FutureState::InBatch { batch, slot },
        }
    }

    /// Blocks until the record is acknowledged or failed.
    ///
    /// Inside a callback of the producer that sent the record this does not block: the
    /// result may need that producer's callback thread itself, so an unfinished future
    /// answers [`Error::IllegalState`] there. (Futures of other producers wait normally.)
    pub fn wait(self) -> Result<RecordMetadata, Error> {
        match self.state {
            FutureState::Ready(r) => r,
            FutureState::InBatch { batch, slot } => {
                if on_callback_thread_of(batch.producer)
                    && !batch.is_complete_for(slot.relative_offset)
                {
                    return Err(wait_in_callback());
                }
                resolve(&batch, &slot, None)
                    .unwrap_or_else(|| Err(Error::Fatal("batch result lost".into())))
            }
        }
    }

    /// Blocks up to `timeout` (a timeout too long to express as an instant, such as
    /// `Duration::MAX`, waits without limit); `None` when the record is still in flight
    /// (wait again later). Inside a callback of the producer that sent the record an
    /// unfinished future answers [`Error::IllegalState`].
    pub fn wait_timeout(&self, timeout: Duration) -> Option<Result<RecordMetadata, Error>> {
        match &self.state {
            FutureState::Ready(r) => Some(r.clone()),
            FutureState::InBatch { batch, slot }
                if on_callback_thread_of(batch.producer)
                    && !batch.is_complete_for(slot.relative_offset) =>
            {
                Some(Err(wait_in_callback()))
            }
            FutureState::InBatch { batch, slot } => resolve(batch, slot, deadline_after(timeout)),
        }
    }

    /// Whether the result is known (so [`SendFuture::wait`] will not block).
    pub fn is_done(&self) -> bool {
        match &self.state {
            FutureState::Ready(_) => true,
            FutureState::InBatch { batch, slot } => batch.is_complete_for(slot.relative_offset),
        }
    }
}

impl Future for SendFuture {
    type Output = Result<RecordMetadata, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        loop {
            let (next, offset) = match &self.state {
                FutureState::Ready(r) => return Poll::Ready(r.clone()),
                FutureState::InBatch { batch, slot } => {
                    match batch.poll_lookup(slot.relative_offset, cx.waker()) {
                        Lookup::Done(o) => return Poll::Ready(slot.metadata(&batch.tp, &o)),
                        Lookup::Pending => return Poll::Pending,
                        Lookup::Moved(next, offset) => (next, offset),
                    }
                }
            };
            // The batch was split: follow the record into its half.
            if let FutureState::InBatch { batch, slot } = &mut self.state {
                *batch = next;
                slot.relative_offset = offset;
            }
        }
    }
}

/// A user callback.
///
/// It gets the record's partition (where the record went, or its topic and -1 when it failed
/// before a partition was chosen) besides the result, for the interceptors
/// ([`crate::interceptor`]); a user's callback ignores it.
pub(crate) type Callback =
    Box<dyn FnOnce(&TopicPartition, Result<RecordMetadata, Error>) + Send + 'static>;

/// A callback with the record it belongs to.
pub(crate) struct RecordCallback {
    pub slot: RecordSlot,
    pub callback: Callback,
}

impl std::fmt::Debug for RecordCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RecordCallback")
            .field("slot", &self.slot)
            .finish_non_exhaustive()
    }
}

/// The instant `timeout` from now, or `None` (no deadline) when it is too far to express
/// (`Duration::MAX`).
pub(crate) fn deadline_after(timeout: Duration) -> Option<Instant> {
    Instant::now().checked_add(timeout)
}

/// Wakes `wakers` (user code) one by one; a panicking waker is logged and the others still
/// run.
fn wake_all(wakers: Vec<Waker>) {
    for waker in wakers {
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| waker.wake()))
        {
            log::error!(
                "a waker of a producer future panicked: {}",
                panic_text(&*panic)
            );
        }
    }
}

/// The message of a caught panic.
pub(crate) fn panic_text(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "non-string panic".into())
}

/// Work for the callback thread.
pub(crate) enum CallbackJob {
    /// An acknowledged (or failed) batch: its callbacks run in record order, then its result
    /// completes (waking its futures). `memory` is the batch's buffer.memory reservation,
    /// held until its callbacks have (all but the last) run.
    Batch {
        callbacks: Vec<RecordCallback>,
        outcome: Result<BatchOutcome, Error>,
        batch: Arc<BatchResult>,
        memory: Option<Reservation>,
    },
    /// Wakers of futures of a batch the sender thread completed directly.
    Wake(Vec<Waker>),
    /// One record that failed before it reached a batch. `memory` is the callback's
    /// room in buffer.memory, held until the callback runs.
    Single {
        callback: Callback,
        tp: TopicPartition,
        result: Result<RecordMetadata, Error>,
        memory: Option<Reservation>,
    },
    /// Signals once every job queued before it ran (`flush` waits for it).
    Barrier(crossbeam_channel::Sender<()>),
}

impl CallbackJob {
    /// Runs the job on the current thread.
    fn run(self) {
        match self {
            CallbackJob::Batch {
                callbacks,
                outcome,
                batch,
                mut memory,
            } => {
                let last = callbacks.len().saturating_sub(1);
                for (i, c) in callbacks.into_iter().enumerate() {
                    if i == last {
                        // Back just before the last callback runs, so that a caller told
                        // by the last callback that everything completed finds the memory
                        // free; meanwhile only this one callback runs unaccounted for.
                        drop(memory.take());
                    }
                    run_one(c.callback, &batch.tp, c.slot.metadata(&batch.tp, &outcome));
                }
                drop(memory);
                batch.complete(outcome, true);
            }
            CallbackJob::Wake(wakers) => wake_all(wakers),
            CallbackJob::Single {
                callback,
                tp,
                result,
                memory,
            } => {
                drop(memory); // back before the callback runs, as for a batch's last one
                run_one(callback, &tp, result)
            }
            CallbackJob::Barrier(done) => {
                let _ = done.send(());
            }
        }
    }
}

impl std::fmt::Debug for CallbackJob {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CallbackJob::Batch {
                callbacks, outcome, ..
            } => f
                .debug_struct("Batch")
                .field("callbacks", &callbacks.len())
                .field("outcome", outcome)
                .finish(),
            CallbackJob::Wake(wakers) => f.debug_tuple("Wake").field(&wakers.len()).finish(),
            CallbackJob::Single { result, .. } => {
                f.debug_struct("Single").field("result", result).finish()
            }
            CallbackJob::Barrier(_) => f.write_str("Barrier"),
        }
    }
}

/// The callback thread's inbox, with a count of jobs not yet finished.
#[derive(Debug, Clone)]
pub(crate) struct CallbackQueue {
    tx: Sender<CallbackJob>,
    pending: Arc<AtomicUsize>,
}

impl CallbackQueue {
    /// Queues `job`; when the callback thread is gone (after close) the job runs here, on
    /// the calling thread, so that it still runs exactly once.
    pub fn submit(&self, job: CallbackJob) {
        self.pending.fetch_add(1, Ordering::SeqCst);
        if let Err(returned) = self.tx.send(job) {
            self.pending.fetch_sub(1, Ordering::SeqCst);
            returned.0.run();
        }
    }

    /// Whether every job queued so far has finished.
    pub fn is_idle(&self) -> bool {
        self.pending.load(Ordering::SeqCst) == 0
    }

    /// Completes a batch in order with everything queued before it: directly when nothing
    /// is queued and it has no callbacks (its memory goes back now; its futures' async
    /// wakers, if any, go to the callback thread), else through the callback thread, which
    /// holds `memory` until the callbacks ran.
    pub fn complete_batch(
        &self,
        batch: Arc<BatchResult>,
        callbacks: Vec<RecordCallback>,
        outcome: Result<BatchOutcome, Error>,
        memory: Option<Reservation>,
    ) {
        if callbacks.is_empty() && self.is_idle() {
            drop(memory);
            let wakers = batch.complete_deferring_wakers(outcome, true);
            if !wakers.is_empty() {
                self.submit(CallbackJob::Wake(wakers));
            }
        } else {
            self.submit(CallbackJob::Batch {
                callbacks,
                outcome,
                batch,
                memory,
            });
        }
    }
}

thread_local! {
    /// On a producer's callback thread, that producer's `Core::id` (set once when the
    /// thread starts); `None` on every other thread.
    static CALLBACK_THREAD_OF: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Whether the calling thread is the callback thread of producer `producer` (`Core::id`).
pub(crate) fn on_callback_thread_of(producer: u64) -> bool {
    CALLBACK_THREAD_OF.with(Cell::get) == Some(producer)
}

/// Runs `f` with the calling thread counted as producer `producer`'s callback thread (the
/// mock producer hands out results this way), then restores what was there.
pub(crate) fn with_callback_thread_of<R>(producer: u64, f: impl FnOnce() -> R) -> R {
    struct Restore(Option<u64>);
    impl Drop for Restore {
        fn drop(&mut self) {
            CALLBACK_THREAD_OF.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(CALLBACK_THREAD_OF.with(|c| c.replace(Some(producer))));
    f()
}

fn wait_in_callback() -> Error {
    Error::IllegalState(
        "waiting for a send inside a producer callback would deadlock: the result is \
         delivered by the callback thread itself"
            .into(),
    )
}

/// The single thread that runs user callbacks one at a time, in the order jobs arrive.
///
/// The thread ends when every sender of its channel is gone (the producer closed).
#[derive(Debug)]
pub(crate) struct CallbackThread {
    handle: Option<JoinHandle<()>>,
    thread_id: std::thread::ThreadId,
    /// Disconnected when the thread ends (its sending half drops with the thread), so a
    /// join can wait with a deadline.
    ended: crossbeam_channel::Receiver<()>,
}

impl CallbackThread {
    /// Starts the callback thread of producer `producer` (`Core::id`); jobs submitted to
    /// the returned queue run in order.
    pub fn start(name: String, producer: u64) -> (CallbackThread, CallbackQueue) {
        let (tx, rx) = crate::channel::unbounded();
        let (ended_tx, ended) = crossbeam_channel::bounded::<()>(0);
        let pending = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&pending);
        let handle = std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let _ended = ended_tx;
                run_callbacks(rx, counter, producer)
            })
            .expect("spawn the callback thread");
        let thread_id = handle.thread().id();
        (
            CallbackThread {
                handle: Some(handle),
                thread_id,
                ended,
            },
            CallbackQueue { tx, pending },
        )
    }

    /// Waits for the thread to finish its queue and exit (after its channel closed), until
    /// `deadline` (`None`: no limit). True when it ended; false when the deadline passed
    /// first: the thread is then detached, runs what is still queued, and ends on its own.
    /// Called on the thread itself (close inside a callback) it returns true at once.
    pub fn join(mut self, deadline: Option<Instant>) -> bool {
        if std::thread::current().id() == self.thread_id {
            return true;
        }
        let ended = match deadline {
            None => self.ended.recv().is_err(),
            Some(d) => !matches!(
                self.ended.recv_deadline(d),
                Err(crossbeam_channel::RecvTimeoutError::Timeout)
            ),
        };
        if let Some(h) = self.handle.take().filter(|_| ended) {
            let _ = h.join();
        }
        ended
    }
}

fn run_callbacks(rx: Receiver<CallbackJob>, pending: Arc<AtomicUsize>, producer: u64) {
    CALLBACK_THREAD_OF.with(|c| c.set(Some(producer)));
    for job in rx {
        // Callbacks and wakers catch their own panics; this catches a bug of ours, so that
        // the jobs behind still run.
        if let Err(panic) = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job.run())) {
            log::error!("a callback job panicked: {}", panic_text(&*panic));
        }
        pending.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Runs one callback; a panic is caught and logged so the thread carries on.
pub(crate) fn run_one(
    callback: Callback,
    tp: &TopicPartition,
    result: Result<RecordMetadata, Error>,
) {
    let run = std::panic::AssertUnwindSafe(move || callback(tp, result));
    if let Err(panic) = std::panic::catch_unwind(run) {
        log::error!("a producer callback panicked: {}", panic_text(&*panic));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn slot(rel: u32) -> RecordSlot {
        RecordSlot {
            relative_offset: rel,
            timestamp: 1000 + i64::from(rel),
            key_size: 3,
            value_size: -1,
        }
    }

    #[test]
    fn futures_of_one_batch_get_consecutive_offsets() {
        let batch = Arc::new(BatchResult::new(TopicPartition::new("t", 1), 1));
        let f0 = SendFuture::in_batch(Arc::clone(&batch), slot(0));
        let f1 = SendFuture::in_batch(Arc::clone(&batch), slot(1));
        assert!(!f0.is_done());
        assert!(f0.wait_timeout(Duration::from_millis(1)).is_none());
        batch.complete(
            Ok(BatchOutcome {
                base_offset: 40,
                log_append_time: -1,
            }),
            true,
        );
        let m1 = f1.wait().unwrap();
        let m0 = f0.wait().unwrap();
        assert_eq!((m0.offset(), m1.offset()), (40, 41));
        assert_eq!(m1.timestamp(), 1001);
        assert_eq!(m1.serialized_value_size(), -1);
    }

    #[test]
    fn log_append_time_replaces_the_create_time() {
        let outcome = Ok(BatchOutcome {
            base_offset: -1,
            log_append_time: 7,
        });
        let md = slot(2)
            .metadata(&TopicPartition::new("t", 1), &outcome)
            .unwrap();
        assert_eq!((md.offset(), md.timestamp()), (-1, 7));
    }

    #[test]
    fn a_panicking_callback_does_not_stop_the_callback_thread() {
        let (thread, tx) = CallbackThread::start("test-callbacks".into(), 1);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        tx.submit(CallbackJob::Single {
            callback: Box::new(|_, _| panic!("boom")),
            tp: TopicPartition::new("t", 0),
            result: Err(Error::Closed),
            memory: None,
        });
        tx.submit(CallbackJob::Single {
            callback: Box::new(move |_, r| done_tx.send(r.is_err()).unwrap()),
            tp: TopicPartition::new("t", 0),
            result: Err(Error::Closed),
            memory: None,
        });
        assert!(done_rx.recv_timeout(Duration::from_secs(5)).unwrap());
        drop(tx);
        assert!(thread.join(None));
    }

    #[test]
    fn wait_timeout_of_duration_max_waits_without_a_deadline() {
        let batch = Arc::new(BatchResult::new(TopicPartition::new("t", 1), 1));
        let f = SendFuture::in_batch(Arc::clone(&batch), slot(0));
        let completer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(50));
            batch.complete(Err(Error::Closed), true);
        });
        assert!(matches!(
            f.wait_timeout(Duration::MAX),
            Some(Err(Error::Closed))
        ));
        completer.join().unwrap();
    }

    #[test]
    fn a_hostile_base_offset_does_not_kill_the_callback_thread() {
        let (thread, tx) = CallbackThread::start("test-callbacks".into(), 1);
        let (done_tx, done_rx) = crossbeam_channel::unbounded();
        let first = done_tx.clone();
        tx.submit(CallbackJob::Batch {
            callbacks: vec![RecordCallback {
                slot: slot(3),
                callback: Box::new(move |_, r| first.send(r.map(|m| m.offset())).unwrap()),
            }],
            outcome: Ok(BatchOutcome {
                base_offset: i64::MAX - 1,
                log_append_time: -1,
            }),
            batch: Arc::new(BatchResult::new(TopicPartition::new("t", 1), 1)),
            memory: None,
        });
        tx.submit(CallbackJob::Single {
            callback: Box::new(move |_, r| done_tx.send(r.map(|m| m.offset())).unwrap()),
            tp: TopicPartition::new("t", 0),
            result: Err(Error::Closed),
            memory: None,
        });
        let first = done_rx.recv_timeout(Duration::from_secs(5));
        assert!(first.is_ok(), "the record's callback ran: {first:?}");
        let second = done_rx.recv_timeout(Duration::from_secs(5));
        assert!(
            matches!(second, Ok(Err(Error::Closed))),
            "the callback thread still runs later jobs: {second:?}"
        );
        drop(tx);
        assert!(thread.join(None));
    }

    #[test]
    fn a_polled_future_wakes_when_the_batch_completes() {
        use std::task::Wake;
        struct Flag(std::sync::atomic::AtomicBool);
        impl Wake for Flag {
            fn wake(self: Arc<Self>) {
                self.0.store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        let flag = Arc::new(Flag(Default::default()));
        let waker = Waker::from(Arc::clone(&flag));
        let batch = Arc::new(BatchResult::new(TopicPartition::new("t", 1), 1));
        let mut fut = SendFuture::in_batch(Arc::clone(&batch), slot(0));
        let mut cx = Context::from_waker(&waker);
        assert!(Pin::new(&mut fut).poll(&mut cx).is_pending());
        batch.complete(Err(Error::Closed), true);
        assert!(flag.0.load(std::sync::atomic::Ordering::SeqCst));
        assert!(matches!(
            Pin::new(&mut fut).poll(&mut cx),
            Poll::Ready(Err(Error::Closed))
        ));
    }
}

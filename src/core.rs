//! The state one producer's callers and its sender thread share.
//!
//! `Core` is held by every `Producer` clone (through the producer's own handle) and by the
//! sender thread. Each field documents who writes it; the locks live inside the fields
//! (accumulator, metadata) and are described there.

use std::net::{Shutdown, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Weak;

use crate::channel::Sender;
use parking_lot::Mutex;

use crate::accumulator::{Accumulator, AccumulatorConfig};
use crate::config::ProducerConfig;
use crate::error::Error;
use crate::metadata::Metadata;
use crate::metrics::Metrics;
use crate::net::ConnectionEvent;
use crate::partition::StickyPartitioner;

/// What the sender thread waits for (one channel, so one `recv_deadline` covers all).
#[derive(Debug)]
pub(crate) enum SenderEvent {
    /// Something was appended or requested: look at the queues and metadata again.
    Wakeup,
    /// A connection's reader thread reports a response or a close.
    Connection(ConnectionEvent),
    /// A connect attempt (run on a short-lived thread) finished.
    Connected {
        node: i32,
        result: Result<Box<dyn crate::sender::Link>, crate::Error>,
    },
    /// Close gracefully: send everything queued, then exit.
    Close,
    /// Close now: fail everything still queued or in flight.
    ForceClose,
    /// Fail every queued batch never sent with `Error::Purged` (`Producer::purge`); the
    /// number of records failed goes back through the channel.
    Purge(std::sync::mpsc::SyncSender<u64>),
}

impl From<ConnectionEvent> for SenderEvent {
    fn from(e: ConnectionEvent) -> Self {
        SenderEvent::Connection(e)
    }
}

/// Shared producer state.
#[derive(Debug)]
pub(crate) struct Core {
    /// Unique per producer in this process (the send path's per-thread caches are keyed by
    /// it, never by an address that a later producer could reuse).
    pub id: u64,
    /// Validated configuration; immutable.
    pub config: ProducerConfig,
    pub accumulator: Accumulator,
    /// Written by the sender thread only.
    pub metadata: Metadata,
    pub metrics: Metrics,
    /// KIP-794 partitioning of records without a key.
    pub sticky: StickyPartitioner,
    /// The transaction state machine of a transactional producer (transactional.id set).
    pub transactions: Option<std::sync::Arc<crate::transaction::TransactionManager>>,
    /// The sender thread's inbox.
    pub events: Sender<SenderEvent>,
    /// Set (SeqCst) by a caller before it sends a `Wakeup`, cleared by the sender thread
    /// before it inspects the queues, so that at most one wake-up is pending and none is
    /// lost: an append after the clear either sees the flag clear and sends, or happened
    /// before the sender's inspection.
    wake_pending: AtomicBool,
    /// When the sender thread will look at the queues next, as nanoseconds since `epoch`:
    /// written (SeqCst) by the sender before it sleeps, read by callers that open a batch
    /// that lingers (see [`Core::batch_lingers_until`]).
    sender_wakes_at: AtomicU64,
    /// The earliest linger deadline of the batches opened since the sender's pass began
    /// (nanoseconds since `epoch`; `u64::MAX`: none): lowered (SeqCst) by callers,
    /// reset by the sender when a pass begins and read again before it sleeps.
    ///
    /// Together with `sender_wakes_at` this lets a caller that opens a lingering batch
    /// skip the wake-up when the sender will look in time anyway, without a lost wake-up:
    /// the caller lowers this, then reads `sender_wakes_at`; the sender stores
    /// `sender_wakes_at`, then reads this. In the one total order of these SeqCst
    /// operations either the sender's read sees the caller's deadline (and it sleeps no
    /// longer than that), or the caller's read sees the sender's final wake time (and it
    /// wakes the sender if that is too late).
    lingering_until: AtomicU64,
    /// The origin of the two instants above.
    epoch: std::time::Instant,
    /// Set once by close (SeqCst); `send` checks it first.
    closed: AtomicBool,
    /// Sends between their closed check and their append (SeqCst), counted in stripes so
    /// that threads sending at once do not all write one cache line. Incremented *before*
    /// the closed check, so a send either sees `closed` and fails, or is counted here and
    /// the sender thread waits for its record before it exits (it sums the stripes): no
    /// record is queued after the sender is gone.
    appends: [Stripe; APPEND_STRIPES],
    /// Guards the sockets of the connections the sender opened (added by the sender
    /// thread, dead entries pruned then), which a forced close shuts down: the sender
    /// thread may be blocked writing to a stalled broker and would never see the
    /// `ForceClose` event otherwise. Leaf lock.
    sockets: Mutex<Vec<Weak<TcpStream>>>,
    /// Set once (SeqCst) by the sender thread when the producer hit a fatal error (see
    /// `idempotence`); `send` checks it and reports the error. `fatal_error` holds the
    /// error (leaf lock), written before the flag is set.
    has_fatal: AtomicBool,
    fatal_error: Mutex<Option<Error>>,
    /// Stops the statistics thread (see `statistics`): set by the sender thread as it
    /// exits.
    pub statistics: crate::statistics::Stop,
}

/// A process-unique producer id (`Core::id`, and the mock producer's).
pub(crate) fn next_producer_id() -> u64 {
    static NEXT_ID: AtomicU64 = AtomicU64::new(1);
    NEXT_ID.fetch_add(1, Ordering::Relaxed)
}

impl Core {
    pub fn new(config: ProducerConfig, events: Sender<SenderEvent>) -> Self {
        let compression_level = match config.compression {
            crate::Compression::Gzip => Some(config.compression_gzip_level),
            crate::Compression::Lz4 => Some(config.compression_lz4_level),
            crate::Compression::Zstd => Some(config.compression_zstd_level),
            _ => None,
        };
        let id = next_producer_id();
        let accumulator = Accumulator::new(AccumulatorConfig {
            // A batch never holds more than the whole memory budget.
            batch_size: config.batch_size.clamp(1, config.buffer_memory.max(1)),
            buffer_memory: config.buffer_memory,
            compression: config.compression,
            compression_level,
            linger: config.linger,
            delivery_timeout: config.delivery_timeout,
            producer_id: id,
        });
        let sticky = StickyPartitioner::new(
            config.batch_size.max(1),
            config.partitioner_adaptive_partitioning_enable,
            config.partitioner_availability_timeout,
        );
        let transactions = config.transactional_id.as_ref().map(|id| {
            let timeout_ms =
                i32::try_from(config.transaction_timeout.as_millis()).unwrap_or(i32::MAX);
            std::sync::Arc::new(crate::transaction::TransactionManager::new(
                id.clone(),
                timeout_ms,
            ))
        });
        Core {
            id,
            transactions,
            config,
            accumulator,
            metadata: Metadata::default(),
            metrics: Metrics::default(),
            sticky,
            events,
            wake_pending: AtomicBool::new(false),
            sender_wakes_at: AtomicU64::new(0),
            lingering_until: AtomicU64::new(u64::MAX),
            epoch: std::time::Instant::now(),
            closed: AtomicBool::new(false),
            appends: Default::default(),
            sockets: Mutex::new(Vec::new()),
            has_fatal: AtomicBool::new(false),
            fatal_error: Mutex::new(None),
            statistics: crate::statistics::Stop::default(),
        }
    }

    /// Wakes the sender thread unless a wake-up is already pending.
    pub fn wake_sender(&self) {
        if !self.wake_pending.swap(true, Ordering::SeqCst) {
            let _ = self.events.send(SenderEvent::Wakeup);
        }
    }

    /// Called by the sender thread before it inspects the queues.
    pub fn clear_wakeup(&self) {
        self.wake_pending.store(false, Ordering::SeqCst);
        self.lingering_until.store(u64::MAX, Ordering::SeqCst);
    }

    /// A caller opened a batch that is not ready before `deadline` (linger.ms): wakes the
    /// sender only if it would otherwise look later than that (see `lingering_until`). A
    /// producer writing to thousands of partitions opens a batch with most records; waking
    /// the sender for each would cost a system call per record and a pass per wake-up.
    pub fn batch_lingers_until(&self, deadline: std::time::Instant) {
        let at = self.nanos(deadline);
        self.lingering_until.fetch_min(at, Ordering::SeqCst);
        if self.sender_wakes_at.load(Ordering::SeqCst) > at {
            self.wake_sender();
        }
    }

    /// The sender thread is about to sleep until `next`: publishes it, and returns when to
    /// wake up, earlier than `next` when a caller opened a batch lingering until sooner.
    pub fn sender_sleeps_until(&self, next: std::time::Instant) -> std::time::Instant {
        let mut at = self.nanos(next);
        loop {
            self.sender_wakes_at.store(at, Ordering::SeqCst);
            let lingering = self.lingering_until.load(Ordering::SeqCst);
            if lingering >= at {
                break;
            }
            at = lingering;
        }
        if at == self.nanos(next) {
            next
        } else {
            self.epoch + std::time::Duration::from_nanos(at)
        }
    }

    fn nanos(&self, t: std::time::Instant) -> u64 {
        u64::try_from(t.saturating_duration_since(self.epoch).as_nanos()).unwrap_or(u64::MAX)
    }

    /// The metrics' figures kept outside `Metrics` (buffer memory).
    pub fn metrics_gauges(&self) -> crate::metrics::Gauges {
        crate::metrics::Gauges {
            buffer_in_use: self.accumulator.buffer_in_use(),
            buffer_total: self.config.buffer_memory,
            bufferpool_wait_ns: self.accumulator.buffer_wait_ns(),
        }
    }

    /// The metrics snapshot (`Producer::metrics`).
    pub fn metrics_snapshot(&self) -> crate::metrics::ProducerMetrics {
        self.metrics.snapshot_with(self.metrics_gauges())
    }

    /// The metrics under Java's names (`Producer::metrics_by_name`).
    pub fn metrics_by_name(&self) -> Vec<crate::metrics::Metric> {
        let gauges = self.metrics_gauges();
        self.metrics
            .by_name(&self.config.client_id, gauges, std::time::Instant::now())
    }

    /// Whether close was called.
    pub fn is_closed(&self) -> bool {
        self.closed.load(Ordering::SeqCst)
    }

    /// Starts an append: `None` when the producer is closed, else a guard that ends the
    /// append when dropped.
    pub fn begin_append(&self) -> Option<AppendGuard<'_>> {
        let stripe = &self.appends[thread_stripe()].0;
        stripe.fetch_add(1, Ordering::SeqCst);
        if self.closed.load(Ordering::SeqCst) {
            stripe.fetch_sub(1, Ordering::SeqCst);
            return None;
        }
        SENDING.with(|s| s.borrow_mut().push(self.id));
        Some(AppendGuard { core: self, stripe })
    }

    /// Whether the calling thread is inside a `send` of this producer (in its serializer or
    /// partitioner, say): the sender thread then waits for this thread's append, so this
    /// thread must not wait for the sender.
    pub fn sending_on_this_thread(&self) -> bool {
        SENDING.with(|s| s.borrow().contains(&self.id))
    }

    /// Whether some send is between its closed check and its append.
    pub fn appends_in_progress(&self) -> bool {
        self.appends.iter().any(|s| s.0.load(Ordering::SeqCst) > 0)
    }

    /// Remembers a new connection's socket for [`Core::shut_down_sockets`].
    pub fn register_socket(&self, socket: Weak<TcpStream>) {
        let mut sockets = self.sockets.lock();
        sockets.retain(|s| s.strong_count() > 0);
        sockets.push(socket);
    }

    /// Shuts down every open connection's socket (forced close): a blocked write fails at
    /// once, and the reader threads see the connection end.
    pub fn shut_down_sockets(&self) {
        let sockets: Vec<_> = self
            .sockets
            .lock()
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for socket in sockets {
            let _ = socket.shutdown(Shutdown::Both);
        }
    }

    /// Stops accepting work: later and waiting sends fail (memory waits and metadata waits
    /// give up), and the sender drains without lingering. `error` is what waiting sends
    /// report.
    pub fn shut_down(&self, error: &Error) {
        self.closed.store(true, Ordering::SeqCst);
        self.accumulator.begin_close(error);
        self.metadata.close();
        self.statistics.stop();
        self.wake_sender();
    }

    /// Records the producer's fatal error (the first one stays); later sends report it.
    pub fn set_fatal(&self, error: Error) {
        self.fatal_error.lock().get_or_insert(error);
        self.has_fatal.store(true, Ordering::SeqCst);
    }

    /// The fatal error, if the producer hit one.
    pub fn fatal(&self) -> Option<Error> {
        if self.has_fatal.load(Ordering::SeqCst) {
            self.fatal_error.lock().clone()
        } else {
            None
        }
    }

    /// Marks the producer closed; true for the first caller.
    pub fn mark_closed(&self) -> bool {
        !self.closed.swap(true, Ordering::SeqCst)
    }
}

/// How long a `send` may block (max.block.ms), counted from the first moment it has to
/// wait: reading the clock costs tens of nanoseconds, so a send that never blocks never
/// reads it for this.
#[derive(Debug)]
pub(crate) struct Deadline {
    after: std::time::Duration,
    at: std::cell::Cell<Option<std::time::Instant>>,
}

impl Deadline {
    /// A deadline `after` from the first call to [`Deadline::at`].
    pub fn after(after: std::time::Duration) -> Self {
        Deadline {
            after,
            at: std::cell::Cell::new(None),
        }
    }

    /// The instant blocking must end.
    pub fn at(&self) -> std::time::Instant {
        match self.at.get() {
            Some(at) => at,
            None => {
                let at = instant_after(self.after);
                self.at.set(Some(at));
                at
            }
        }
    }
}

/// The instant `timeout` from now; a timeout too long to express (`Duration::MAX`) gives an
/// instant a century away, which no wait reaches (for APIs that need an instant; where an
/// `Option<Instant>` fits, `delivery::deadline_after` gives `None` instead).
pub(crate) fn instant_after(timeout: std::time::Duration) -> std::time::Instant {
    const CENTURY: std::time::Duration = std::time::Duration::from_secs(100 * 365 * 24 * 3600);
    let now = std::time::Instant::now();
    now.checked_add(timeout)
        .or_else(|| now.checked_add(CENTURY))
        .unwrap_or(now)
}

/// An append in progress (see [`Core::begin_append`]).
#[derive(Debug)]
pub(crate) struct AppendGuard<'a> {
    core: &'a Core,
    /// The stripe the append was counted in (the same thread's, so the same stripe).
    stripe: &'a AtomicUsize,
}

impl Drop for AppendGuard<'_> {
    fn drop(&mut self) {
        // Guards end in reverse order of their starts on a thread (nested sends).
        SENDING.with(|s| s.borrow_mut().pop());
        self.stripe.fetch_sub(1, Ordering::SeqCst);
        // The sender may be waiting for this append to finish closing.
        if self.core.is_closed() {
            self.core.wake_sender();
        }
    }
}

thread_local! {
    /// `Core::id`s of the producers whose `send` this thread is inside (between
    /// `begin_append` and the guard's drop), innermost last: more than one when a
    /// serializer or partitioner sends. Owned by the thread.
    static SENDING: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Stripes of the appends-in-progress count.
const APPEND_STRIPES: usize = 8;

/// One stripe, alone on its cache line (128 bytes covers adjacent-line prefetching).
#[derive(Debug, Default)]
#[repr(align(128))]
struct Stripe(AtomicUsize);

/// This thread's stripe: threads take stripes in turn as they first send.
fn thread_stripe() -> usize {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    thread_local! {
        static STRIPE: usize = NEXT.fetch_add(1, Ordering::Relaxed) % APPEND_STRIPES;
    }
    STRIPE.with(|s| *s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    fn core() -> (Core, crate::channel::Receiver<SenderEvent>) {
        let mut config =
            ProducerConfig::from_properties([("bootstrap.servers", "b:9092")]).expect("config");
        config.validate().expect("valid");
        let (events, inbox) = crate::channel::unbounded();
        (Core::new(config, events), inbox)
    }

    #[test]
    fn a_lingering_batch_wakes_the_sender_only_when_it_would_look_too_late() {
        let (core, inbox) = core();
        let now = Instant::now();
        core.clear_wakeup(); // a pass begins
        let next = core.sender_sleeps_until(now + Duration::from_millis(50));
        assert_eq!(next, now + Duration::from_millis(50));
        core.batch_lingers_until(now + Duration::from_millis(80));
        assert!(
            inbox.try_recv().is_err(),
            "the sender looks at 50 ms anyway"
        );
        core.batch_lingers_until(now + Duration::from_millis(20));
        assert!(
            matches!(inbox.try_recv(), Ok(SenderEvent::Wakeup)),
            "a batch ready at 20 ms cannot wait for the 50 ms pass"
        );
    }

    #[test]
    fn a_batch_opened_during_a_pass_shortens_the_sleep_after_it() {
        let (core, inbox) = core();
        let now = Instant::now();
        core.clear_wakeup(); // a pass begins; the sender has published no wake time yet
        core.batch_lingers_until(now + Duration::from_millis(5));
        // The pass did not see the batch and found nothing due for an hour.
        let next = core.sender_sleeps_until(now + Duration::from_secs(3600));
        let at = next.saturating_duration_since(now);
        assert!(
            at <= Duration::from_millis(5) && at >= Duration::from_millis(4),
            "the sender sleeps until the batch is ready, not {at:?}"
        );
        assert!(inbox.try_recv().is_err(), "without a wake-up event");
        core.clear_wakeup(); // the next pass sees the batch itself
        assert_eq!(
            core.sender_sleeps_until(now + Duration::from_secs(1)),
            now + Duration::from_secs(1)
        );
    }
}

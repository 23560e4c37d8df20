//! The buffer-memory budget (`buffer.memory`): a counting semaphore of bytes.
//!
//! A batch reserves its bytes before it is created and gives them back when it is dropped
//! (completed, failed or aborted), through the RAII [`Reservation`], on every path.
//! `send` blocks in [`BufferPool::reserve`] up to max.block.ms when the budget is spent.
//!
//! Unlike Java's `BufferPool` this does not recycle `ByteBuffer`s: Rust's allocator already
//! reuses freed blocks, so the pool only counts bytes.
//!
//! A batch whose records were answered keeps its reservation while its callbacks wait on
//! the callback thread (`delivery::CallbackJob::Batch`), so callbacks that fall behind
//! make `send` wait here too.
//!
//! Lock: `state` guards the free byte count; it is a leaf lock, held only for arithmetic.
//! `waiters` is written under it and read without it ([`BufferPool::has_waiters`] runs
//! under a partition lock, which must not wait for this one).

use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Condvar, Mutex};

use crate::error::Error;

/// The shared byte budget.
#[derive(Debug)]
pub(crate) struct BufferPool {
    total: usize,
    state: Mutex<PoolState>,
    freed: Condvar,
    /// Sends waiting in `reserve`: changed (SeqCst) with `state` locked, read lock-free by
    /// the sender (a hint: a stale read only delays or hastens one drain).
    waiters: AtomicUsize,
    /// Nanoseconds `reserve` calls spent waiting for space, added (Relaxed) by each one
    /// that waited when it stops waiting; read by the metrics (a statistic only).
    waited_ns: AtomicU64,
}

#[derive(Debug)]
struct PoolState {
    available: usize,
    /// Set at close: waiting and later reservations fail with this error.
    closed: Option<Error>,
}

impl BufferPool {
    /// A pool of `total` bytes.
    pub fn new(total: usize) -> Arc<Self> {
        Arc::new(BufferPool {
            total,
            state: Mutex::new(PoolState {
                available: total,
                closed: None,
            }),
            freed: Condvar::new(),
            waiters: AtomicUsize::new(0),
            waited_ns: AtomicU64::new(0),
        })
    }

    /// Takes `bytes` from the budget, waiting until `deadline` for space (`None`: do not
    /// wait). Fails with [`Error::BufferExhausted`] when no space came in time.
    pub fn reserve(
        self: &Arc<Self>,
        bytes: usize,
        deadline: Option<Instant>,
    ) -> Result<Reservation, Error> {
        let bytes = bytes.min(self.total);
        let start = Instant::now();
        let mut s = self.state.lock();
        let mut waited = false;
        while s.available < bytes {
            if let Some(e) = &s.closed {
                let e = e.clone();
                drop(s);
                self.add_wait(waited, start);
                return Err(e);
            }
            let Some(d) = deadline.filter(|d| *d > Instant::now()) else {
                drop(s);
                self.add_wait(waited, start);
                return Err(Error::BufferExhausted {
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            };
            waited = true;
            self.waiters.fetch_add(1, Ordering::SeqCst);
            let _ = self.freed.wait_until(&mut s, d);
            self.waiters.fetch_sub(1, Ordering::SeqCst);
        }
        s.available -= bytes;
        drop(s);
        self.add_wait(waited, start);
        Ok(Reservation {
            pool: Arc::clone(self),
            bytes,
        })
    }

    /// Counts the time since `start` as waiting for space, if the caller waited.
    fn add_wait(&self, waited: bool, start: Instant) {
        if waited {
            let ns = start.elapsed().as_nanos().min(u128::from(u64::MAX)) as u64;
            self.waited_ns.fetch_add(ns, Ordering::Relaxed);
        }
    }

    /// Total time `reserve` calls waited for space.
    pub fn waited_ns(&self) -> u64 {
        self.waited_ns.load(Ordering::Relaxed)
    }

    /// Fails every waiting and later reservation that has to wait, with `error` (close).
    pub fn close(&self, error: &Error) {
        self.state.lock().closed = Some(error.clone());
        self.freed.notify_all();
    }

    /// Bytes reserved right now.
    pub fn in_use(&self) -> usize {
        self.total - self.state.lock().available
    }

    /// Whether some `send` is waiting for memory (then the sender drains batches at once
    /// instead of lingering, as Java does). Takes no lock.
    pub fn has_waiters(&self) -> bool {
        self.waiters.load(Ordering::SeqCst) > 0
    }

    /// Holds the pool's lock until the guard drops (tests of the lock order).
    #[cfg(test)]
    pub fn hold_lock_for_test(&self) -> impl Drop + '_ {
        self.state.lock()
    }

    fn release(&self, bytes: usize) {
        let mut s = self.state.lock();
        s.available = (s.available + bytes).min(self.total);
        let wake = self.waiters.load(Ordering::SeqCst) > 0;
        drop(s);
        if wake {
            self.freed.notify_all();
        }
    }
}

/// Bytes taken from a [`BufferPool`]; given back on drop.
#[derive(Debug)]
pub(crate) struct Reservation {
    pool: Arc<BufferPool>,
    bytes: usize,
}

impl Reservation {
    /// Takes `bytes` more from the pool if they are available now (never waits); false
    /// when the pool is short or closed.
    pub fn try_grow(&mut self, bytes: usize) -> bool {
        let mut s = self.pool.state.lock();
        if s.closed.is_some() || s.available < bytes {
            return false;
        }
        s.available -= bytes;
        self.bytes += bytes;
        true
    }

    /// Splits off `bytes` (at most all of it) into a second reservation, the total staying
    /// reserved: to share a split batch's memory among its halves, and to hand an answered
    /// batch's memory to the callback job that runs its callbacks.
    pub fn split_off(&mut self, bytes: usize) -> Reservation {
        let bytes = bytes.min(self.bytes);
        self.bytes -= bytes;
        Reservation {
            pool: Arc::clone(&self.pool),
            bytes,
        }
    }

    /// The reserved size.
    #[cfg(test)]
    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.pool.release(self.bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn reservations_come_back_on_drop() {
        let pool = BufferPool::new(100);
        let a = pool.reserve(60, None).unwrap();
        assert_eq!(pool.in_use(), 60);
        assert!(pool.reserve(50, None).is_err());
        drop(a);
        assert_eq!(pool.in_use(), 0);
        let _b = pool.reserve(100, None).unwrap();
    }

    #[test]
    fn a_full_pool_fails_after_the_deadline() {
        let pool = BufferPool::new(10);
        let _a = pool.reserve(10, None).unwrap();
        let start = Instant::now();
        let err = pool
            .reserve(1, Some(Instant::now() + Duration::from_millis(50)))
            .unwrap_err();
        assert!(matches!(err, Error::BufferExhausted { .. }));
        assert!(start.elapsed() >= Duration::from_millis(50));
    }

    #[test]
    fn a_waiter_gets_memory_freed_by_another_thread() {
        let pool = BufferPool::new(10);
        let a = pool.reserve(10, None).unwrap();
        let p = Arc::clone(&pool);
        let t = std::thread::spawn(move || {
            p.reserve(5, Some(Instant::now() + Duration::from_secs(5)))
                .map(|r| r.bytes())
        });
        while !pool.has_waiters() {
            std::thread::yield_now();
        }
        drop(a);
        assert_eq!(t.join().unwrap().unwrap(), 5);
    }
}

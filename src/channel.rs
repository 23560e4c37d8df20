//! An unbounded channel whose receiver parks as soon as it finds nothing to receive.
//!
//! The producer's threads hand work to each other through channels: callers and connection
//! readers to the sender thread, the sender to each connection's writer thread, the sender
//! to the callback thread. A lock-free channel that spins and yields before it parks (as
//! `crossbeam-channel` does, up to a few `sched_yield`s per empty receive) makes a producer
//! sending a few thousand records a second pay for those spins on every hand-off: at low
//! rates every receive finds the channel empty. This one parks at once.
//!
//! # Locks
//!
//! `state` (a leaf lock) guards the queue, the count of senders and whether the receiver
//! is alive and waiting; it is held only to push, pop or update those, never while a
//! message is dropped or a thread is woken. One receiver; any number of senders.
//!
//! The error types are `crossbeam-channel`'s, so callers match the same variants.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Instant;

pub(crate) use crossbeam_channel::{RecvError, RecvTimeoutError, SendError, TryRecvError};
use parking_lot::{Condvar, Mutex};

/// A new channel.
pub(crate) fn unbounded<T>() -> (Sender<T>, Receiver<T>) {
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            senders: 1,
            receiver_alive: true,
            receiver_waiting: false,
        }),
        ready: Condvar::new(),
    });
    (
        Sender {
            shared: Arc::clone(&shared),
        },
        Receiver { shared },
    )
}

struct Shared<T> {
    /// Guards the queue and the counts (see the module docs).
    state: Mutex<State<T>>,
    /// Signalled when a message arrives or the last sender leaves while the receiver waits.
    ready: Condvar,
}

struct State<T> {
    queue: VecDeque<T>,
    senders: usize,
    receiver_alive: bool,
    receiver_waiting: bool,
}

/// The sending half; cloned for every thread that sends.
pub(crate) struct Sender<T> {
    shared: Arc<Shared<T>>,
}

/// The receiving half (one per channel).
pub(crate) struct Receiver<T> {
    shared: Arc<Shared<T>>,
}

impl<T> std::fmt::Debug for Sender<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sender { .. }")
    }
}

impl<T> std::fmt::Debug for Receiver<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Receiver { .. }")
    }
}

impl<T> Sender<T> {
    /// Queues `message`; fails (handing it back) when the receiver is gone.
    pub fn send(&self, message: T) -> Result<(), SendError<T>> {
        let mut state = self.shared.state.lock();
        if !state.receiver_alive {
            return Err(SendError(message));
        }
        state.queue.push_back(message);
        let wake = state.receiver_waiting;
        drop(state);
        if wake {
            self.shared.ready.notify_one();
        }
        Ok(())
    }
}

impl<T> Clone for Sender<T> {
    fn clone(&self) -> Self {
        self.shared.state.lock().senders += 1;
        Sender {
            shared: Arc::clone(&self.shared),
        }
    }
}

impl<T> Drop for Sender<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.senders -= 1;
        let wake = state.senders == 0 && state.receiver_waiting;
        drop(state);
        if wake {
            self.shared.ready.notify_one();
        }
    }
}

impl<T> Receiver<T> {
    /// The next message, waiting until one comes or `deadline` passes; `Disconnected`
    /// once every sender is gone and the queue is empty.
    pub fn recv_deadline(&self, deadline: Instant) -> Result<T, RecvTimeoutError> {
        self.receive(Some(deadline))
    }

    /// [`Receiver::recv_deadline`] with a deadline `timeout` from now.
    pub fn recv_timeout(&self, timeout: std::time::Duration) -> Result<T, RecvTimeoutError> {
        self.receive(Some(crate::core::instant_after(timeout)))
    }

    /// The next message, waiting as long as it takes; an error once every sender is gone
    /// and the queue is empty.
    pub fn recv(&self) -> Result<T, RecvError> {
        self.receive(None).map_err(|_| RecvError)
    }

    /// The next message if one is queued.
    pub fn try_recv(&self) -> Result<T, TryRecvError> {
        let mut state = self.shared.state.lock();
        match state.queue.pop_front() {
            Some(message) => Ok(message),
            None if state.senders == 0 => Err(TryRecvError::Disconnected),
            None => Err(TryRecvError::Empty),
        }
    }

    fn receive(&self, deadline: Option<Instant>) -> Result<T, RecvTimeoutError> {
        let mut state = self.shared.state.lock();
        loop {
            if let Some(message) = state.queue.pop_front() {
                return Ok(message);
            }
            if state.senders == 0 {
                return Err(RecvTimeoutError::Disconnected);
            }
            state.receiver_waiting = true;
            match deadline {
                Some(d) => {
                    if Instant::now() >= d {
                        state.receiver_waiting = false;
                        return Err(RecvTimeoutError::Timeout);
                    }
                    let _ = self.shared.ready.wait_until(&mut state, d);
                }
                None => self.shared.ready.wait(&mut state),
            }
            state.receiver_waiting = false;
        }
    }
}

impl<T> Drop for Receiver<T> {
    fn drop(&mut self) {
        let mut state = self.shared.state.lock();
        state.receiver_alive = false;
        let left = std::mem::take(&mut state.queue);
        drop(state);
        drop(left); // what nobody will receive, dropped outside the lock
    }
}

impl<T> IntoIterator for Receiver<T> {
    type Item = T;
    type IntoIter = IntoIter<T>;

    fn into_iter(self) -> IntoIter<T> {
        IntoIter(self)
    }
}

/// Receives until every sender is gone and the queue is empty.
pub(crate) struct IntoIter<T>(Receiver<T>);

impl<T> Iterator for IntoIter<T> {
    type Item = T;

    fn next(&mut self) -> Option<T> {
        self.0.recv().ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn messages_arrive_in_order_across_threads_and_the_end_is_seen() {
        let (tx, rx) = unbounded();
        let senders: Vec<_> = (0..4u64)
            .map(|t| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..1_000 {
                        tx.send((t, i)).unwrap();
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0u64; 4];
        for (t, i) in rx {
            assert_eq!(
                next[t as usize], i,
                "thread {t}'s messages keep their order"
            );
            next[t as usize] += 1;
        }
        assert_eq!(next, [1_000; 4], "every message, then the end");
        for s in senders {
            s.join().unwrap();
        }
    }

    #[test]
    fn a_deadline_passes_and_a_late_message_wakes_a_waiting_receiver() {
        let (tx, rx) = unbounded::<u8>();
        let start = Instant::now();
        assert!(matches!(
            rx.recv_deadline(start + Duration::from_millis(30)),
            Err(RecvTimeoutError::Timeout)
        ));
        assert!(start.elapsed() >= Duration::from_millis(30));
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            tx.send(7).unwrap();
        });
        let got = rx.recv_deadline(Instant::now() + Duration::from_secs(10));
        assert_eq!(got.unwrap(), 7);
        t.join().unwrap();
        assert!(matches!(rx.try_recv(), Err(TryRecvError::Disconnected)));
        assert!(matches!(
            rx.recv_deadline(Instant::now() + Duration::from_secs(10)),
            Err(RecvTimeoutError::Disconnected)
        ));
    }

    #[test]
    fn sending_to_a_dropped_receiver_hands_the_message_back() {
        let (tx, rx) = unbounded();
        tx.send(Arc::new(1)).unwrap();
        let queued = Arc::new(2);
        tx.send(Arc::clone(&queued)).unwrap();
        drop(rx);
        assert_eq!(Arc::strong_count(&queued), 1, "queued messages are dropped");
        assert_eq!(*tx.send(Arc::new(3)).unwrap_err().0, 3);
    }
}

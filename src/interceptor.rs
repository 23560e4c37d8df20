//! Producer interceptors: user code that sees every record on its way in and every
//! acknowledgement on its way out, in the spirit of Java's `ProducerInterceptor`.
//!
//! # Where they run
//!
//! - [`ProducerInterceptor::on_send`] runs on the thread that calls `send` (or
//!   `send_with_callback`, `try_send`), before the record is serialized and partitioned,
//!   so it may change anything about the record, its topic included.
//! - [`ProducerInterceptor::on_acknowledgement`] runs once per record, success or error:
//!   on the producer's callback thread, just before that record's callback (or before its
//!   future resolves), in send order per partition. For a record that fails before it
//!   reaches a batch (serialization, metadata timeout, unknown partition, a closed
//!   producer, ...) it runs where that error is reported: on the callback thread for a
//!   callback send, on the calling thread for a future or `try_send`, before the call
//!   returns (as Java's `onSendError` runs inside `send`). `try_send` does not acknowledge
//!   a record it hands back only because it would have had to wait (no buffer space, or no
//!   metadata yet): that record was not sent.
//! - [`ProducerInterceptor::close`] runs once, after the last acknowledgement: when the
//!   producer closes, or, when that close could not wait for the callback thread (a close
//!   inside a callback, or one that timed out), once the last acknowledgement ran and the
//!   producer is dropped.
//!
//! An interceptor that holds a clone of its own producer (to send to a dead-letter topic,
//! say) keeps that producer alive: close it explicitly.
//!
//! Interceptors of one producer form a chain and run in the order they were added. A
//! panicking interceptor is logged and skipped; the record goes on (as the interceptor left
//! it) and the interceptors after it still run.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use crate::error::Error;
use crate::record::{ProducerRecord, RecordMetadata, TopicPartition};

/// Sees (and may change) every record before it is sent, and sees every acknowledgement.
///
/// Add interceptors with [`crate::ProducerBuilder::interceptor`]; they run in the order
/// added. An interceptor is shared by the producer's threads, so it is `Send + Sync` and
/// keeps its state in atomics or locks.
///
/// ```
/// use std::sync::atomic::{AtomicU64, Ordering};
/// use kafka_producer::{Error, ProducerInterceptor, ProducerRecord, RecordMetadata};
///
/// #[derive(Debug, Default)]
/// struct TraceIds {
///     next: AtomicU64,
///     acked: AtomicU64,
///     failed: AtomicU64,
/// }
///
/// impl ProducerInterceptor<String, String> for TraceIds {
///     fn on_send(&self, record: &mut ProducerRecord<String, String>) {
///         let id = self.next.fetch_add(1, Ordering::Relaxed);
///         record.headers_mut().add("trace-id", id.to_string());
///     }
///
///     fn on_acknowledgement(&self, _topic: &str, _partition: i32,
///                           result: &Result<RecordMetadata, Error>) {
///         let counter = if result.is_ok() { &self.acked } else { &self.failed };
///         counter.fetch_add(1, Ordering::Relaxed);
///     }
/// }
/// ```
pub trait ProducerInterceptor<K, V>: Send + Sync {
    /// Called with each record before it is serialized and partitioned; may change it
    /// (add a header, rewrite the value, reroute it to another topic). Runs on the thread
    /// that sends. The default leaves the record as it is.
    fn on_send(&self, record: &mut ProducerRecord<K, V>) {
        let _ = record;
    }

    /// Called once for every record sent, with its outcome: `topic` and `partition` are
    /// where it went (`partition` is -1 when it failed before a partition was chosen).
    /// Runs before the record's callback or future sees the outcome, in send order per
    /// partition; see the module docs for the thread. Keep it quick: the callbacks of
    /// other records wait for it.
    fn on_acknowledgement(
        &self,
        topic: &str,
        partition: i32,
        result: &Result<RecordMetadata, Error>,
    ) {
        let _ = (topic, partition, result);
    }

    /// Called once, after the last acknowledgement (see the module docs for when).
    fn close(&self) {}
}

/// A shared interceptor (to read its state, counters for example, from elsewhere).
impl<K, V, T: ProducerInterceptor<K, V> + ?Sized> ProducerInterceptor<K, V> for Arc<T> {
    fn on_send(&self, record: &mut ProducerRecord<K, V>) {
        (**self).on_send(record)
    }
    fn on_acknowledgement(
        &self,
        topic: &str,
        partition: i32,
        result: &Result<RecordMetadata, Error>,
    ) {
        (**self).on_acknowledgement(topic, partition, result)
    }
    fn close(&self) {
        (**self).close()
    }
}

/// A producer's interceptors, in order, shared by its clones and its callbacks.
pub(crate) struct Interceptors<K, V> {
    chain: Vec<Box<dyn ProducerInterceptor<K, V>>>,
    /// Set by the first [`Interceptors::close`]: `close` runs once, at the producer's close
    /// or, failing that, when the last holder (the producer or a pending acknowledgement)
    /// lets go.
    closed: AtomicBool,
}

impl<K, V> std::fmt::Debug for Interceptors<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Interceptors")
            .field("count", &self.chain.len())
            .finish()
    }
}

impl<K, V> Interceptors<K, V> {
    /// The chain, or `None` when it is empty (so sends without interceptors pay nothing).
    pub fn new(chain: Vec<Box<dyn ProducerInterceptor<K, V>>>) -> Option<Arc<Self>> {
        (!chain.is_empty()).then(|| {
            Arc::new(Interceptors {
                chain,
                closed: AtomicBool::new(false),
            })
        })
    }

    /// Runs every `on_send` in order; a panic is logged and the next one runs.
    pub fn on_send(&self, record: &mut ProducerRecord<K, V>) {
        for (i, interceptor) in self.chain.iter().enumerate() {
            let call = std::panic::AssertUnwindSafe(|| interceptor.on_send(record));
            if let Err(panic) = std::panic::catch_unwind(call) {
                log::error!(
                    "producer interceptor {i} panicked in on_send ({}); the record goes on \
                     as it left it",
                    crate::delivery::panic_text(&*panic)
                );
            }
        }
    }

    /// Runs every `on_acknowledgement` in order; a panic is logged and the next one runs.
    pub fn on_acknowledgement(&self, tp: &TopicPartition, result: &Result<RecordMetadata, Error>) {
        for (i, interceptor) in self.chain.iter().enumerate() {
            let call = std::panic::AssertUnwindSafe(|| {
                interceptor.on_acknowledgement(tp.topic(), tp.partition(), result)
            });
            if let Err(panic) = std::panic::catch_unwind(call) {
                log::error!(
                    "producer interceptor {i} panicked in on_acknowledgement ({})",
                    crate::delivery::panic_text(&*panic)
                );
            }
        }
    }
}

impl<K: 'static, V: 'static> Interceptors<K, V> {
    /// The completion of a record sent for a future: the interceptors' acknowledgement,
    /// run on the callback thread before the future resolves.
    pub fn acknowledger(chain: &Arc<Self>) -> crate::delivery::Callback {
        let chain = Arc::clone(chain);
        Box::new(move |tp, result| chain.on_acknowledgement(tp, &result))
    }
}

impl<K, V> Interceptors<K, V> {
    /// Runs every `close` in order, once; a panic is logged and the next one runs.
    pub fn close(&self) {
        if self.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for (i, interceptor) in self.chain.iter().enumerate() {
            let call = std::panic::AssertUnwindSafe(|| interceptor.close());
            if let Err(panic) = std::panic::catch_unwind(call) {
                log::error!(
                    "producer interceptor {i} panicked in close ({})",
                    crate::delivery::panic_text(&*panic)
                );
            }
        }
    }
}

impl<K, V> Drop for Interceptors<K, V> {
    fn drop(&mut self) {
        // A close that returned early (inside a callback, or past its timeout) left the
        // interceptors open; nothing can reach them after this.
        self.close();
    }
}

//! Producer metrics: counters the sender thread updates, read as a [`ProducerMetrics`]
//! snapshot.
//!
//! Every counter is an atomic written by the sender thread (or, for errors found before a
//! record was buffered, by the calling thread) with `Relaxed` ordering: the counters are
//! statistics, no other memory is published through them.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::time::Duration;

/// The live counters.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    pub records_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub batches_sent: AtomicU64,
    pub batch_retries: AtomicU64,
    pub batch_splits: AtomicU64,
    pub duplicate_batches: AtomicU64,
    pub leader_hints: AtomicU64,
    pub record_errors: AtomicU64,
    pub requests: AtomicU64,
    pub in_flight_requests: AtomicU64,
    latency_total_us: AtomicU64,
    latency_count: AtomicU64,
    latency_max_us: AtomicU64,
}

impl Metrics {
    /// Records one request's round trip.
    pub fn request_latency(&self, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        self.latency_total_us.fetch_add(us, Relaxed);
        self.latency_count.fetch_add(1, Relaxed);
        self.latency_max_us.fetch_max(us, Relaxed);
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// A snapshot, with the buffer figures supplied by the accumulator.
    pub fn snapshot(&self, buffer_in_use: usize, buffer_total: usize) -> ProducerMetrics {
        let batches = self.batches_sent.load(Relaxed);
        let bytes = self.bytes_sent.load(Relaxed);
        let count = self.latency_count.load(Relaxed);
        ProducerMetrics {
            records_sent: self.records_sent.load(Relaxed),
            bytes_sent: bytes,
            batches_sent: batches,
            average_batch_size: if batches == 0 {
                0.0
            } else {
                bytes as f64 / batches as f64
            },
            batch_retries: self.batch_retries.load(Relaxed),
            batch_splits: self.batch_splits.load(Relaxed),
            duplicate_batches: self.duplicate_batches.load(Relaxed),
            leader_hints: self.leader_hints.load(Relaxed),
            record_errors: self.record_errors.load(Relaxed),
            requests: self.requests.load(Relaxed),
            in_flight_requests: self.in_flight_requests.load(Relaxed),
            buffer_bytes_in_use: buffer_in_use,
            buffer_total_bytes: buffer_total,
            request_latency_avg: Duration::from_micros(
                self.latency_total_us
                    .load(Relaxed)
                    .checked_div(count)
                    .unwrap_or(0),
            ),
            request_latency_max: Duration::from_micros(self.latency_max_us.load(Relaxed)),
        }
    }
}

/// A point-in-time view of a producer's activity (`Producer::metrics`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProducerMetrics {
    /// Records acknowledged by brokers (or written with acks=0).
    pub records_sent: u64,
    /// Bytes of record batches acknowledged (after compression).
    pub bytes_sent: u64,
    /// Batches acknowledged.
    pub batches_sent: u64,
    /// `bytes_sent / batches_sent`.
    pub average_batch_size: f64,
    /// Batches sent again after a retriable error.
    pub batch_retries: u64,
    /// Batches split in two after MESSAGE_TOO_LARGE.
    pub batch_splits: u64,
    /// Batches the broker already held when they were retried (idempotence:
    /// DUPLICATE_SEQUENCE_NUMBER, counted as success).
    pub duplicate_batches: u64,
    /// Leader moves learned from a Produce response's CurrentLeader field (KIP-951).
    pub leader_hints: u64,
    /// Records that completed with an error.
    pub record_errors: u64,
    /// Produce requests sent.
    pub requests: u64,
    /// Produce requests awaiting a response now.
    pub in_flight_requests: u64,
    /// Bytes of `buffer.memory` held by batches now (never above `buffer_total_bytes`).
    pub buffer_bytes_in_use: usize,
    /// `buffer.memory`.
    pub buffer_total_bytes: usize,
    /// Mean Produce round trip.
    pub request_latency_avg: Duration,
    /// Longest Produce round trip.
    pub request_latency_max: Duration,
}

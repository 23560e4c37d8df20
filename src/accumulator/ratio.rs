//! How well a topic's batches compress, so that batch.size bounds a batch's bytes on the
//! wire (compressed) rather than its uncompressed records, as Java's producer does.
//!
//! A compressed batch is only compressed when it closes, so while it fills its size on the
//! wire is a guess: its uncompressed bytes times the topic's estimated ratio, with a 5 %
//! margin. The estimate starts at 1 (no gain) and learns from every batch compressed
//! afterwards: a batch that compressed worse than estimated raises it at once (by at least
//! 0.05, so that batches soon stop overshooting batch.size), one that compressed better
//! lowers it slowly (by at most 0.005 per batch, so that one very compressible batch does
//! not make the next ones too large).

use std::sync::atomic::{AtomicU32, Ordering};

/// Margin on the estimated compressed size: a batch closes when its uncompressed bytes
/// times the estimated ratio times this reach batch.size.
const MARGIN: f32 = 1.05;
/// The least step up after a batch compressed worse than estimated.
const WORSE_STEP: f32 = 0.05;
/// The largest step down after a batch compressed better than estimated.
const BETTER_STEP: f32 = 0.005;
/// The estimate never goes below this: it bounds a batch's uncompressed bytes (and so the
/// buffer.memory one batch holds while it fills) to `batch.size / (MIN_RATIO * MARGIN)`.
const MIN_RATIO: f32 = 1.0 / 64.0;

/// A topic's estimated compressed / uncompressed size of its batches, shared by its
/// partition queues. Lock-free: appenders read it, whichever thread compresses a batch
/// (an appender sealing it, or the sender encoding it) updates it. Concurrent updates may
/// lose one observation to another; it is an estimate.
#[derive(Debug)]
pub(crate) struct CompressionRatio(AtomicU32);

impl Default for CompressionRatio {
    fn default() -> Self {
        CompressionRatio(AtomicU32::new(1.0f32.to_bits()))
    }
}

impl CompressionRatio {
    /// The current estimate.
    pub fn get(&self) -> f32 {
        f32::from_bits(self.0.load(Ordering::Relaxed))
    }

    /// Learns from one batch of `uncompressed` bytes that compressed to `compressed`.
    pub fn observe(&self, uncompressed: usize, compressed: usize) {
        if uncompressed == 0 {
            return;
        }
        let observed = compressed as f32 / uncompressed as f32;
        let current = self.get();
        let next = if observed > current {
            observed.max(current + WORSE_STEP)
        } else {
            observed.max(current - BETTER_STEP)
        }
        .max(MIN_RATIO);
        self.0.store(next.to_bits(), Ordering::Relaxed);
    }

    /// How many uncompressed bytes a batch may hold so that it is expected to compress to
    /// at most `batch_size` bytes (at least one byte).
    pub fn uncompressed_limit(&self, batch_size: usize) -> usize {
        let limit = batch_size as f64 / (f64::from(self.get()) * f64::from(MARGIN));
        (limit as usize).max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_no_gain_with_a_margin() {
        let r = CompressionRatio::default();
        assert_eq!(r.get(), 1.0);
        assert_eq!(r.uncompressed_limit(10_500), 10_000);
    }

    #[test]
    fn worse_compression_raises_the_estimate_at_once() {
        let r = CompressionRatio::default();
        for _ in 0..1000 {
            r.observe(1000, 200);
        }
        assert!((r.get() - 0.2).abs() < 1e-6, "{}", r.get());
        // A batch of incompressible data right after: at least 0.05 up, up to what it saw.
        r.observe(1000, 230);
        assert!((r.get() - 0.25).abs() < 1e-6, "{}", r.get());
        r.observe(1000, 900);
        assert!((r.get() - 0.9).abs() < 1e-6, "{}", r.get());
    }

    #[test]
    fn better_compression_lowers_the_estimate_slowly() {
        let r = CompressionRatio::default();
        r.observe(1000, 100);
        assert!((r.get() - 0.995).abs() < 1e-6, "{}", r.get());
        r.observe(1000, 994);
        assert!((r.get() - 0.994).abs() < 1e-6, "{}", r.get());
        for _ in 0..10_000 {
            r.observe(1000, 1);
        }
        assert_eq!(r.get(), MIN_RATIO);
        assert_eq!(r.uncompressed_limit(16_384), 998_643);
    }

    #[test]
    fn an_empty_batch_teaches_nothing() {
        let r = CompressionRatio::default();
        r.observe(0, 61);
        assert_eq!(r.get(), 1.0);
    }
}

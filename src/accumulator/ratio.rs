//! How well a topic's batches compress, so that batch.size bounds a batch's bytes on the
//! wire (compressed) rather than its uncompressed records, as Java's producer does.
//!
//! A compressed batch is only compressed when it closes, so while it fills its size on the
//! wire is a guess: its header plus its records' uncompressed bytes times the topic's
//! estimated ratio, with a 5 % margin ([`BatchLimit`]). The estimate starts at 1 (no gain) and learns from every batch compressed
//! afterwards: a batch that compressed worse than estimated raises it at once (by at least
//! 0.05, so that batches soon stop overshooting batch.size), one that compressed better
//! lowers it slowly (by at most 0.005 per batch, so that one very compressible batch does
//! not make the next ones too large).

use std::sync::atomic::{AtomicU32, Ordering};

use crate::record_batch::HEADER_SIZE;

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

    /// After a batch of the topic was too large for the broker and was split: no gain is
    /// counted on until batches show it again (Java resets its estimate the same way).
    pub fn reset_after_split(&self) {
        let reset = self.get().max(1.0);
        self.0.store(reset.to_bits(), Ordering::Relaxed);
    }

    /// The bounds of a compressed batch of the topic, for `batch_size`.
    pub fn limit(&self, batch_size: usize) -> BatchLimit {
        BatchLimit {
            batch_size,
            factor: Some(f64::from(self.get()) * f64::from(MARGIN)),
        }
    }
}

/// How full a batch may get: batch.size against its estimated size on the wire, as Java's
/// `MemoryRecordsBuilder` counts it (`hasRoomFor`, `isFull`): the header, plus the records
/// so far times the estimated ratio and margin for a compressed batch, plus the next
/// record's uncompressed size (its own compression is not counted on).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct BatchLimit {
    /// batch.size.
    pub batch_size: usize,
    /// For a compressed batch, the estimated ratio times the margin.
    pub factor: Option<f64>,
}

impl BatchLimit {
    /// An uncompressed batch of `batch_size`.
    pub fn uncompressed(batch_size: usize) -> Self {
        BatchLimit {
            batch_size,
            factor: None,
        }
    }

    /// A batch that takes any record (a fresh batch's first one).
    pub const UNLIMITED: BatchLimit = BatchLimit {
        batch_size: usize::MAX,
        factor: None,
    };

    /// The estimated size on the wire of a batch of `uncompressed` bytes, header included.
    pub fn estimate(&self, uncompressed: usize) -> usize {
        match self.factor {
            None => uncompressed,
            Some(f) => HEADER_SIZE + (uncompressed.saturating_sub(HEADER_SIZE) as f64 * f) as usize,
        }
    }

    /// Whether a batch of `uncompressed` bytes has room for a record of `next` bytes.
    pub fn has_room(&self, uncompressed: usize, next: usize) -> bool {
        self.estimate(uncompressed).saturating_add(next) <= self.batch_size
    }

    /// Whether a batch of `uncompressed` bytes is full.
    pub fn is_full(&self, uncompressed: usize) -> bool {
        self.estimate(uncompressed) >= self.batch_size
    }

    /// The most uncompressed bytes worth a buffer: what is estimated to reach batch.size.
    pub fn buffer_cap(&self) -> usize {
        match self.factor {
            None => self.batch_size,
            Some(f) => {
                let records = self.batch_size.saturating_sub(HEADER_SIZE) as f64 / f;
                HEADER_SIZE.saturating_add(records as usize)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn starts_at_no_gain_with_a_margin() {
        let r = CompressionRatio::default();
        assert_eq!(r.get(), 1.0);
        let limit = r.limit(10_561);
        assert_eq!(limit.buffer_cap(), 61 + 10_000);
        assert!(limit.has_room(61 + 9_000, 1_000));
        assert!(!limit.has_room(61 + 9_000, 1_100));
        assert!(limit.is_full(61 + 10_001) && !limit.is_full(61 + 9_990));
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
        assert_eq!(r.limit(16_384).buffer_cap(), 61 + 994_925);
        r.reset_after_split();
        assert_eq!(r.get(), 1.0);
    }

    #[test]
    fn an_empty_batch_teaches_nothing() {
        let r = CompressionRatio::default();
        r.observe(0, 61);
        assert_eq!(r.get(), 1.0);
    }
}

//! RecordBatch v2 (magic 2): the on-wire format of produced records.

/// A compression codec for record batches (`compression.type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Compression {
    /// No compression (`none`).
    #[default]
    None,
    /// gzip (`gzip`).
    Gzip,
    /// Snappy with the xerial framing Java writes (`snappy`).
    Snappy,
    /// LZ4 frame format (`lz4`).
    Lz4,
    /// Zstandard (`zstd`).
    Zstd,
}

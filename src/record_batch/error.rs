//! Why a record batch could not be read (or, for a missing codec, written).

use super::Compression;
use crate::protocol::codec::DecodeError;

/// An error reading a record batch, or compressing with a codec this build lacks.
///
/// Reading is total: every malformed input gives one of these, never a panic.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// A field could not be decoded: the input was truncated, a length was out of range,
    /// a header key was not UTF-8, or bytes trailed the last record.
    #[error("malformed record batch: {0}")]
    Decode(#[from] DecodeError),
    /// The magic byte is not 2 (message sets v0 and v1 are not supported).
    #[error("unsupported record batch magic {0}; only magic 2 is supported")]
    UnsupportedMagic(i8),
    /// batchLength is smaller than the rest of the 61-byte header.
    #[error("invalid batchLength {0}: a v2 batch has at least 49 bytes after this field")]
    InvalidBatchLength(i32),
    /// The stored CRC-32C does not match the bytes.
    #[error("CRC mismatch: batch says {stored:#010x} but its bytes hash to {computed:#010x}")]
    CrcMismatch {
        /// The CRC found in the header.
        stored: u32,
        /// The CRC-32C of the bytes from attributes to the end.
        computed: u32,
    },
    /// The attributes name a codec id that does not exist (5, 6 or 7).
    #[error("unknown compression codec id {0} in batch attributes")]
    UnknownCodec(u8),
    /// The codec exists but this build cannot use it (zstd without the `zstd` feature).
    #[error("compression codec {0:?} is not available in this build")]
    CodecUnavailable(Compression),
    /// The compressed records section is corrupt.
    #[error("cannot decompress {codec:?} records: {reason}")]
    Decompress {
        /// The codec of the batch.
        codec: Compression,
        /// What the decompressor reported.
        reason: String,
    },
    /// The codec failed to compress (zstd reports errors from its C library).
    #[error("cannot compress records with {codec:?}: {reason}")]
    Compress {
        /// The codec that failed.
        codec: Compression,
        /// What the compressor reported.
        reason: String,
    },
    /// The records decompress to more than the caller's limit.
    #[error("{codec:?} records decompress to more than the limit of {limit} bytes")]
    DecompressedTooLarge {
        /// The codec of the batch.
        codec: Compression,
        /// The limit in bytes.
        limit: usize,
    },
    /// recordCount is negative.
    #[error("invalid recordCount {0}")]
    InvalidRecordCount(i32),
    /// The records section holds fewer records than recordCount says.
    #[error("batch declares {declared} records but holds {found}")]
    RecordCountMismatch {
        /// recordCount from the header.
        declared: i32,
        /// Records actually present.
        found: i32,
    },
}

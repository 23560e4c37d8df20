//! RecordBatch v2 (magic 2): the on-wire format of produced records.
//!
//! A producer encodes each record straight into the wire bytes of its partition's open batch
//! ([`RecordBatchBuilder::append`]); closing the batch ([`RecordBatchBuilder::build`])
//! compresses the records section when a codec is set and fills in the header and its CRC.
//! [`RecordBatch::parse`] and [`RecordBatch::records`] read a batch back (tests, and later
//! retries that split a batch too large for the broker).
//!
//! # Layout
//!
//! Every integer is big-endian. The header is 61 bytes:
//!
//! ```text
//! offset size field
//!      0    8 baseOffset            0 from a producer; the broker assigns offsets
//!      8    4 batchLength           bytes after this field
//!     12    4 partitionLeaderEpoch  -1 from a producer
//!     16    1 magic                 2
//!     17    4 crc                   CRC-32C (Castagnoli) of every byte from attributes to the end
//!     21    2 attributes            bits 0-2 codec (0 none, 1 gzip, 2 snappy, 3 lz4, 4 zstd),
//!                                   bit 3 timestamp type (0 CreateTime), bit 4 transactional,
//!                                   bit 5 control
//!     23    4 lastOffsetDelta       recordCount - 1
//!     27    8 baseTimestamp         timestamp of the first record
//!     35    8 maxTimestamp          largest record timestamp
//!     43    8 producerId            -1 without idempotence
//!     51    2 producerEpoch         -1 without idempotence
//!     53    4 baseSequence          -1 without idempotence
//!     57    4 recordCount
//!     61      records               compressed as one stream when a codec is set
//! ```
//!
//! Each record (zigzag varints; lengths of -1 mean null):
//!
//! ```text
//! length varint (bytes after this field) | attributes i8 (0) | timestampDelta varlong
//! | offsetDelta varint | keyLength varint | key | valueLength varint | value
//! | headerCount varint | headers: keyLength varint, UTF-8 key, valueLength varint, value
//! ```
//!
//! The CRC covers the producer id, epoch and sequence, so rewriting them for an idempotent
//! retry ([`set_producer_state`]) recomputes it; the partition leader epoch and base offset lie
//! before the CRC'd range so that the broker can assign them without recomputing it.

mod compression;
mod error;
mod reader;
mod writer;

#[cfg(test)]
mod tests;

pub use compression::Compression;
pub use error::BatchError;
pub use reader::{Record, RecordBatch, DEFAULT_MAX_DECOMPRESSED_SIZE};
pub use writer::{set_producer_state, RecordBatchBuilder};

/// Size of the fixed batch header that precedes the records.
pub const HEADER_SIZE: usize = 61;

/// The transactional flag in the batch attributes.
pub const TRANSACTIONAL_FLAG: i16 = 0x10;

/// Byte offsets of the header fields (see the module documentation).
pub(crate) mod offsets {
    pub const CRC: usize = 17;
    pub const ATTRIBUTES: usize = 21;
    pub const PRODUCER_ID: usize = 43;
    pub const PRODUCER_EPOCH: usize = 51;
    pub const BASE_SEQUENCE: usize = 53;
    /// Bytes counted by batchLength start here (after baseOffset and batchLength).
    pub const AFTER_LENGTH: usize = 12;
}

/// The magic byte of RecordBatch v2, the only message format this crate writes or reads.
pub const MAGIC_V2: i8 = 2;

/// A record header: a UTF-8 key and an optional (nullable) value.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header key. Kafka requires it to be non-null UTF-8.
    pub key: String,
    /// The header value; `None` is a null value, distinct from an empty one.
    pub value: Option<Vec<u8>>,
}

impl Header {
    /// A header with a non-null value.
    pub fn new(key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        Header {
            key: key.into(),
            value: Some(value.into()),
        }
    }
}

/// The idempotence fields of a batch header: producer id, epoch and base sequence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ProducerState {
    /// The producer id from InitProducerId, or -1.
    pub producer_id: i64,
    /// The producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the batch's first record in its partition, or -1.
    pub base_sequence: i32,
    /// Whether the batch belongs to a transaction (attributes bit 4): its records become
    /// visible to read_committed consumers only when the transaction commits.
    pub transactional: bool,
}

impl ProducerState {
    /// No producer id: what a non-idempotent producer writes (all fields -1).
    pub const NONE: ProducerState = ProducerState {
        producer_id: -1,
        producer_epoch: -1,
        base_sequence: -1,
        transactional: false,
    };
}

impl Default for ProducerState {
    fn default() -> Self {
        ProducerState::NONE
    }
}

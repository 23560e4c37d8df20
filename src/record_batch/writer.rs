//! The batch writer: records are encoded into the batch's wire bytes as they are appended.
//!
//! The builder owns one contiguous buffer that starts with 61 zero bytes reserved for the
//! header. [`RecordBatchBuilder::append`] encodes a record after them; [`RecordBatchBuilder::build`]
//! compresses the records (when a codec is set) and writes the header and CRC. Nothing here
//! fails: encoding into a `Vec` cannot, and the one codec that can be missing (zstd without
//! its feature) falls back to an uncompressed, valid batch.

use bytes::Bytes;

use super::compression::{self, Compression};
use super::{offsets, Header, ProducerState, HEADER_SIZE, MAGIC_V2, TRANSACTIONAL_FLAG};
use crate::protocol::codec::{varint_len, varlong_len, Writer};

/// An open record batch: records are encoded into its wire bytes as they are appended.
///
/// Not thread-safe by itself; the accumulator guards each open batch with its partition lock.
#[derive(Debug, Clone)]
pub struct RecordBatchBuilder {
    /// The 61 header bytes (zero until [`build`](Self::build)), then the uncompressed records.
    buf: Vec<u8>,
    compression: Compression,
    compression_level: Option<i32>,
    record_count: i32,
    /// Timestamp of the first record; every record stores its delta from this.
    base_timestamp: i64,
    max_timestamp: i64,
}

impl RecordBatchBuilder {
    /// An empty batch that will be compressed with `compression` at `compression_level`
    /// (`None` for the codec's default; see `compression.<codec>.level`).
    pub fn new(compression: Compression, compression_level: Option<i32>) -> Self {
        Self::with_capacity(compression, compression_level, 0)
    }

    /// Like [`new`](Self::new), reserving room for `capacity` bytes of batch (header included),
    /// typically `batch.size`, so that appends do not reallocate.
    pub fn with_capacity(
        compression: Compression,
        compression_level: Option<i32>,
        capacity: usize,
    ) -> Self {
        let mut buf = Vec::with_capacity(capacity.max(HEADER_SIZE));
        buf.resize(HEADER_SIZE, 0);
        RecordBatchBuilder {
            buf,
            compression,
            compression_level,
            record_count: 0,
            base_timestamp: -1,
            max_timestamp: -1,
        }
    }

    /// Room for `capacity` bytes of batch (header included) without reallocating; the
    /// buffer grows to exactly that when it is smaller.
    pub fn reserve_total(&mut self, capacity: usize) {
        self.buf
            .reserve_exact(capacity.saturating_sub(self.buf.len()));
    }

    /// Bytes the buffer holds without reallocating.
    pub fn capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Appends one record and returns the bytes it added to the batch.
    ///
    /// The first record's timestamp becomes the batch's base timestamp; later records store
    /// their difference from it, which may be negative (a record may carry a timestamp
    /// earlier than the first one, as Java allows).
    pub fn append(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let payload = Self::payload_size(key, value, headers);
        self.append_with_payload(timestamp_ms, key, value, headers, payload)
    }

    /// [`append`](Self::append) with the record's [`payload_size`](Self::payload_size)
    /// already known (the producer computes it once per record).
    pub fn append_with_payload(
        &mut self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
        payload: usize,
    ) -> usize {
        debug_assert_eq!(payload, Self::payload_size(key, value, headers));
        if self.record_count == 0 {
            self.base_timestamp = timestamp_ms;
            self.max_timestamp = timestamp_ms;
        }
        // Wrapping: absurd timestamps (i64::MIN after i64::MAX) still round-trip, since the
        // reader adds the delta back with wrapping arithmetic too.
        let timestamp_delta = timestamp_ms.wrapping_sub(self.base_timestamp);
        let offset_delta = self.record_count;
        let body = payload + varlong_len(timestamp_delta) + varint_len(offset_delta);
        let start = self.buf.len();
        let buf = &mut self.buf;
        buf.reserve(varint_len(len_i32(body)) + body);
        buf.put_varint(len_i32(body));
        buf.put_i8(0); // record attributes: unused
        buf.put_varlong(timestamp_delta);
        buf.put_varint(offset_delta);
        put_varint_bytes(buf, key);
        put_varint_bytes(buf, value);
        buf.put_varint(len_i32(headers.len()));
        for h in headers {
            put_varint_bytes(buf, Some(h.key.as_bytes()));
            put_varint_bytes(buf, h.value.as_deref());
        }
        self.record_count = self.record_count.saturating_add(1);
        self.max_timestamp = self.max_timestamp.max(timestamp_ms);
        self.buf.len() - start
    }

    /// The exact bytes a record adds to a batch, its length prefix included.
    ///
    /// `timestamp_delta` is the record's timestamp minus the batch's base timestamp (0 for the
    /// first record) and `offset_delta` its index in the batch; both change the varint sizes.
    pub fn record_size(
        timestamp_delta: i64,
        offset_delta: i32,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let body = body_size(timestamp_delta, offset_delta, key, value, headers);
        varint_len(len_i32(body)) + body
    }

    /// The part of a record's body that does not depend on its place in a batch: everything
    /// but the timestamp and offset deltas.
    pub fn payload_size(key: Option<&[u8]>, value: Option<&[u8]>, headers: &[Header]) -> usize {
        body_size(0, 0, key, value, headers) - varlong_len(0) - varint_len(0)
    }

    /// [`record_size`](Self::record_size) from a record's
    /// [`payload_size`](Self::payload_size).
    pub fn record_size_with_payload(
        payload: usize,
        timestamp_delta: i64,
        offset_delta: i32,
    ) -> usize {
        let body = payload + varlong_len(timestamp_delta) + varint_len(offset_delta);
        varint_len(len_i32(body)) + body
    }

    /// [`next_record_size`](Self::next_record_size) from the record's
    /// [`payload_size`](Self::payload_size).
    pub fn next_record_size_with_payload(&self, timestamp_ms: i64, payload: usize) -> usize {
        let delta = if self.record_count == 0 {
            0
        } else {
            timestamp_ms.wrapping_sub(self.base_timestamp)
        };
        Self::record_size_with_payload(payload, delta, self.record_count)
    }

    /// The size the next record would add if appended now (see [`record_size`](Self::record_size)).
    pub fn next_record_size(
        &self,
        timestamp_ms: i64,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        headers: &[Header],
    ) -> usize {
        let delta = if self.record_count == 0 {
            0
        } else {
            timestamp_ms.wrapping_sub(self.base_timestamp)
        };
        Self::record_size(delta, self.record_count, key, value, headers)
    }

    /// Uncompressed size of the batch so far, the 61-byte header included.
    pub fn estimated_size(&self) -> usize {
        self.buf.len()
    }

    /// Number of records appended.
    pub fn record_count(&self) -> i32 {
        self.record_count
    }

    /// Whether no record was appended.
    pub fn is_empty(&self) -> bool {
        self.record_count == 0
    }

    /// The codec the batch will be compressed with.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// Finishes the batch: compresses the records when a codec is set, then writes every
    /// header field (with `producer`'s id, epoch and base sequence) and the CRC.
    ///
    /// If the codec is unavailable (zstd without the `zstd` feature, which configuration
    /// rejects up front) or fails, the batch is written uncompressed, which every broker
    /// accepts, and a warning is logged.
    pub fn build(self, producer: ProducerState) -> Bytes {
        Bytes::from(self.build_vec(producer))
    }

    /// [`build`](Self::build), as a `Vec` whose header can still be patched in place
    /// ([`set_producer_state`]).
    pub fn build_vec(self, producer: ProducerState) -> Vec<u8> {
        let mut buf = self.buf;
        let mut codec = self.compression;
        if codec != Compression::None {
            let records = &buf[HEADER_SIZE..];
            let mut out = Vec::with_capacity(HEADER_SIZE + records.len() / 2 + 64);
            out.resize(HEADER_SIZE, 0);
            match compression::compress(codec, self.compression_level, records, &mut out) {
                Ok(()) => {
                    // The producer accounts a sealed batch by its capacity: keep no slack.
                    out.shrink_to_fit();
                    buf = out;
                }
                Err(e) => {
                    log::warn!("writing record batch uncompressed: {e}");
                    codec = Compression::None;
                }
            }
        }
        let header = HeaderFields {
            attributes: i16::from(codec.codec_id()),
            last_offset_delta: self.record_count - 1,
            base_timestamp: self.base_timestamp,
            max_timestamp: self.max_timestamp,
            record_count: self.record_count,
        };
        header.write(&mut buf, producer);
        buf
    }
}

/// The header fields that the builder knows only when the batch is finished.
struct HeaderFields {
    attributes: i16,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    record_count: i32,
}

impl HeaderFields {
    /// Writes the 61-byte header into the reserved front of `batch` and seals it with the CRC.
    fn write(&self, batch: &mut [u8], producer: ProducerState) {
        let mut h = Vec::with_capacity(HEADER_SIZE);
        h.put_i64(0); // baseOffset: the broker assigns offsets
        h.put_i32(len_i32(batch.len() - offsets::AFTER_LENGTH));
        h.put_i32(-1); // partitionLeaderEpoch: the broker fills it in
        h.put_i8(MAGIC_V2);
        h.put_u32(0); // crc, computed below
        h.put_i16(if producer.transactional {
            self.attributes | TRANSACTIONAL_FLAG
        } else {
            self.attributes
        });
        h.put_i32(self.last_offset_delta);
        h.put_i64(self.base_timestamp);
        h.put_i64(self.max_timestamp);
        h.put_i64(producer.producer_id);
        h.put_i16(producer.producer_epoch);
        h.put_i32(producer.base_sequence);
        h.put_i32(self.record_count);
        debug_assert_eq!(h.len(), HEADER_SIZE);
        batch[..HEADER_SIZE].copy_from_slice(&h);
        seal_crc(batch);
    }
}

/// Rewrites the producer id, epoch, base sequence and transactional flag of a finished batch and recomputes its
/// CRC, for a retry after the idempotent producer's epoch was bumped or sequences were
/// reassigned.
///
/// `batch` must be exactly one batch, as returned by [`RecordBatchBuilder::build`].
///
/// # Panics
///
/// If `batch` is shorter than the 61-byte header: a caller bug, never a wire condition.
pub fn set_producer_state(batch: &mut [u8], state: ProducerState) {
    assert!(
        batch.len() >= HEADER_SIZE,
        "set_producer_state needs a whole batch, got {} bytes",
        batch.len()
    );
    batch[offsets::PRODUCER_ID..offsets::PRODUCER_EPOCH]
        .copy_from_slice(&state.producer_id.to_be_bytes());
    batch[offsets::PRODUCER_EPOCH..offsets::BASE_SEQUENCE]
        .copy_from_slice(&state.producer_epoch.to_be_bytes());
    batch[offsets::BASE_SEQUENCE..offsets::BASE_SEQUENCE + 4]
        .copy_from_slice(&state.base_sequence.to_be_bytes());
    let at = offsets::ATTRIBUTES..offsets::ATTRIBUTES + 2;
    let attributes = i16::from_be_bytes([batch[at.start], batch[at.start + 1]]);
    let attributes = if state.transactional {
        attributes | TRANSACTIONAL_FLAG
    } else {
        attributes & !TRANSACTIONAL_FLAG
    };
    batch[at].copy_from_slice(&attributes.to_be_bytes());
    seal_crc(batch);
}

/// Stores the CRC-32C of everything from the attributes to the end.
fn seal_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[offsets::ATTRIBUTES..]);
    batch[offsets::CRC..offsets::ATTRIBUTES].copy_from_slice(&crc.to_be_bytes());
}

/// Size of a record after its length prefix.
fn body_size(
    timestamp_delta: i64,
    offset_delta: i32,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    headers: &[Header],
) -> usize {
    let headers_size: usize = headers
        .iter()
        .map(|h| varint_bytes_size(Some(h.key.as_bytes())) + varint_bytes_size(h.value.as_deref()))
        .sum();
    1 // attributes
        + varlong_len(timestamp_delta)
        + varint_len(offset_delta)
        + varint_bytes_size(key)
        + varint_bytes_size(value)
        + varint_len(len_i32(headers.len()))
        + headers_size
}

/// Size of a varint-length-prefixed nullable byte string.
fn varint_bytes_size(b: Option<&[u8]>) -> usize {
    match b {
        None => varint_len(-1),
        Some(b) => varint_len(len_i32(b.len())) + b.len(),
    }
}

/// Writes a varint length (-1 for null) and the bytes.
fn put_varint_bytes(buf: &mut Vec<u8>, b: Option<&[u8]>) {
    match b {
        None => buf.put_varint(-1),
        Some(b) => {
            buf.put_varint(len_i32(b.len()));
            buf.put_raw(b);
        }
    }
}

/// Lengths on the wire are i32; the producer rejects records beyond max.request.size long
/// before they reach a batch, so saturating (rather than wrapping into the null marker) only
/// guards an invariant.
fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

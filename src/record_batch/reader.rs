//! The batch reader: header validation (length, magic, CRC) and total record decoding.
//!
//! Every length and count is checked against the bytes left before anything is allocated,
//! and decompression is bounded, so no input makes the reader panic or allocate more than
//! its input (or the decompression limit) warrants.

use std::borrow::Cow;

use super::compression::{self, Compression};
use super::{offsets, BatchError, Header, ProducerState, HEADER_SIZE, MAGIC_V2};
use crate::protocol::codec::{DecodeError, DecodeResult, Reader};

/// The decompressed size [`RecordBatch::records`] accepts: far above any broker's
/// `message.max.bytes` default (1 MiB), far below what would hurt.
pub const DEFAULT_MAX_DECOMPRESSED_SIZE: usize = 64 * 1024 * 1024;

/// Smallest encoded record: 1-byte length and six 1-byte fields.
const MIN_RECORD_SIZE: usize = 7;
/// Smallest encoded header: an empty key and a null value.
const MIN_HEADER_SIZE: usize = 2;

/// A record decoded from a batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Position in the batch (the record's offset minus the batch's base offset).
    pub offset_delta: i32,
    /// Absolute timestamp in milliseconds: base timestamp plus the record's delta.
    pub timestamp: i64,
    /// The key, `None` when null.
    pub key: Option<Vec<u8>>,
    /// The value, `None` when null.
    pub value: Option<Vec<u8>>,
    /// The headers in wire order.
    pub headers: Vec<Header>,
}

/// A validated RecordBatch v2 borrowed from a buffer: header fields decoded, CRC checked,
/// records not yet decoded.
#[derive(Debug, Clone)]
pub struct RecordBatch<'a> {
    bytes: &'a [u8],
    base_offset: i64,
    partition_leader_epoch: i32,
    crc: u32,
    attributes: i16,
    compression: Compression,
    last_offset_delta: i32,
    base_timestamp: i64,
    max_timestamp: i64,
    producer: ProducerState,
    record_count: i32,
    records: &'a [u8],
}

impl<'a> RecordBatch<'a> {
    /// Parses the batch at the front of `buf` and returns it with the bytes after it.
    ///
    /// Checks that batchLength fits, that the magic is 2, that the CRC-32C matches and that
    /// the codec id is known. Records are decoded by [`records`](Self::records).
    pub fn parse(buf: &'a [u8]) -> Result<(RecordBatch<'a>, &'a [u8]), BatchError> {
        let mut r = Reader::new(buf);
        let base_offset = r.i64()?;
        let batch_length = r.i32()?;
        if batch_length < (HEADER_SIZE - offsets::AFTER_LENGTH) as i32 {
            return Err(BatchError::InvalidBatchLength(batch_length));
        }
        let mut body = r.sub(batch_length as usize)?;
        let rest = r.rest();
        let bytes = &buf[..buf.len() - rest.len()];
        let partition_leader_epoch = body.i32()?;
        let magic = body.i8()?;
        if magic != MAGIC_V2 {
            return Err(BatchError::UnsupportedMagic(magic));
        }
        let crc = body.u32()?;
        let computed = crc32c::crc32c(body.rest());
        if computed != crc {
            return Err(BatchError::CrcMismatch {
                stored: crc,
                computed,
            });
        }
        let attributes = body.i16()?;
        let batch = RecordBatch {
            bytes,
            base_offset,
            partition_leader_epoch,
            crc,
            attributes,
            compression: Compression::from_attributes(attributes)?,
            last_offset_delta: body.i32()?,
            base_timestamp: body.i64()?,
            max_timestamp: body.i64()?,
            producer: ProducerState {
                producer_id: body.i64()?,
                producer_epoch: body.i16()?,
                base_sequence: body.i32()?,
                transactional: attributes & super::TRANSACTIONAL_FLAG != 0,
            },
            record_count: body.i32()?,
            records: body.rest(),
        };
        Ok((batch, rest))
    }

    /// Decompresses (up to [`DEFAULT_MAX_DECOMPRESSED_SIZE`]) and decodes every record.
    pub fn records(&self) -> Result<Vec<Record>, BatchError> {
        self.records_with_limit(DEFAULT_MAX_DECOMPRESSED_SIZE)
    }

    /// Decompresses and decodes every record, failing if the records decompress to more than
    /// `max_decompressed` bytes. Rejects a record count that differs from recordCount, bytes
    /// after the last record, and bytes left inside a record after its last field.
    pub fn records_with_limit(&self, max_decompressed: usize) -> Result<Vec<Record>, BatchError> {
        let data: Cow<'_, [u8]> = match self.compression {
            Compression::None => Cow::Borrowed(self.records),
            codec => Cow::Owned(compression::decompress(
                codec,
                self.records,
                max_decompressed,
            )?),
        };
        decode_records(&data, self.record_count, self.base_timestamp)
    }

    /// The whole batch, header included.
    pub fn as_bytes(&self) -> &'a [u8] {
        self.bytes
    }
    /// baseOffset (0 as a producer writes it).
    pub fn base_offset(&self) -> i64 {
        self.base_offset
    }
    /// batchLength: the bytes after this field.
    pub fn batch_length(&self) -> i32 {
        (self.bytes.len() - offsets::AFTER_LENGTH) as i32
    }
    /// partitionLeaderEpoch (-1 as a producer writes it).
    pub fn partition_leader_epoch(&self) -> i32 {
        self.partition_leader_epoch
    }
    /// The magic byte (always 2 once parsed).
    pub fn magic(&self) -> i8 {
        MAGIC_V2
    }
    /// The stored (and verified) CRC-32C.
    pub fn crc(&self) -> u32 {
        self.crc
    }
    /// The raw attributes field.
    pub fn attributes(&self) -> i16 {
        self.attributes
    }
    /// The codec from attributes bits 0–2.
    pub fn compression(&self) -> Compression {
        self.compression
    }
    /// Whether the timestamps are LogAppendTime (attributes bit 3) rather than CreateTime.
    pub fn is_log_append_time(&self) -> bool {
        self.attributes & 0x08 != 0
    }
    /// Whether the batch is transactional (attributes bit 4).
    pub fn is_transactional(&self) -> bool {
        self.attributes & 0x10 != 0
    }
    /// Whether the batch is a control batch (attributes bit 5).
    pub fn is_control(&self) -> bool {
        self.attributes & 0x20 != 0
    }
    /// lastOffsetDelta: the offset delta of the last record.
    pub fn last_offset_delta(&self) -> i32 {
        self.last_offset_delta
    }
    /// baseTimestamp: the first record's timestamp.
    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp
    }
    /// maxTimestamp: the largest record timestamp.
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp
    }
    /// producerId, producerEpoch and baseSequence.
    pub fn producer_state(&self) -> ProducerState {
        self.producer
    }
    /// producerId.
    pub fn producer_id(&self) -> i64 {
        self.producer.producer_id
    }
    /// producerEpoch.
    pub fn producer_epoch(&self) -> i16 {
        self.producer.producer_epoch
    }
    /// baseSequence.
    pub fn base_sequence(&self) -> i32 {
        self.producer.base_sequence
    }
    /// recordCount as declared in the header.
    pub fn record_count(&self) -> i32 {
        self.record_count
    }
    /// The records section as stored (compressed when a codec is set).
    pub fn records_section(&self) -> &'a [u8] {
        self.records
    }
}

/// Decodes exactly `count` records filling all of `data`.
fn decode_records(data: &[u8], count: i32, base_timestamp: i64) -> Result<Vec<Record>, BatchError> {
    if count < 0 {
        return Err(BatchError::InvalidRecordCount(count));
    }
    let mut r = Reader::new(data);
    // Bounded by what the bytes can hold, whatever the header claims.
    let mut out = r.vec_for((count as usize).min(data.len() / MIN_RECORD_SIZE));
    for found in 0..count {
        if r.remaining() == 0 {
            return Err(BatchError::RecordCountMismatch {
                declared: count,
                found,
            });
        }
        out.push(decode_record(&mut r, base_timestamp)?);
    }
    r.finish()?;
    Ok(out)
}

fn decode_record(r: &mut Reader<'_>, base_timestamp: i64) -> DecodeResult<Record> {
    let len = r.varint()?;
    let mut rec = r.sub(checked_len(r, "record", len)?)?;
    let _attributes = rec.i8()?;
    let timestamp_delta = rec.varlong()?;
    let offset_delta = rec.varint()?;
    let key = varint_bytes(&mut rec, "record key")?.map(<[u8]>::to_vec);
    let value = varint_bytes(&mut rec, "record value")?.map(<[u8]>::to_vec);
    let header_count = rec.varint()?;
    let header_count = checked_len(&rec, "header count", header_count)?;
    if header_count > rec.remaining() / MIN_HEADER_SIZE {
        return Err(DecodeError::InvalidLength {
            what: "header count",
            length: header_count as i64,
            remaining: rec.remaining(),
        });
    }
    let mut headers = rec.vec_for(header_count);
    for _ in 0..header_count {
        let key = varint_bytes(&mut rec, "header key")?
            .ok_or(DecodeError::UnexpectedNull("header key"))?;
        let key = std::str::from_utf8(key).map_err(|_| DecodeError::InvalidUtf8)?;
        let value = varint_bytes(&mut rec, "header value")?.map(<[u8]>::to_vec);
        headers.push(Header {
            key: key.to_owned(),
            value,
        });
    }
    rec.finish()?;
    Ok(Record {
        offset_delta,
        timestamp: base_timestamp.wrapping_add(timestamp_delta),
        key,
        value,
        headers,
    })
}

/// A non-negative length that fits in what is left of `r`.
fn checked_len(r: &Reader<'_>, what: &'static str, len: i32) -> DecodeResult<usize> {
    match usize::try_from(len) {
        Ok(n) if n <= r.remaining() => Ok(n),
        _ => Err(DecodeError::InvalidLength {
            what,
            length: i64::from(len),
            remaining: r.remaining(),
        }),
    }
}

/// A varint-length-prefixed nullable byte string (length -1 is null).
fn varint_bytes<'a>(r: &mut Reader<'a>, what: &'static str) -> DecodeResult<Option<&'a [u8]>> {
    match r.varint()? {
        -1 => Ok(None),
        len => {
            let n = checked_len(r, what, len)?;
            r.take(n).map(Some)
        }
    }
}

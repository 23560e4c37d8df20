//! The bodies of the fuzz targets, one function per target.
//!
//! Each `fuzz_targets/<name>.rs` calls the function of the same name with libFuzzer's input;
//! `tests/fuzz_smoke.rs` in the main crate includes this file (`#[path]`) and calls the same
//! functions with deterministic inputs on stable Rust, so `cargo test` runs the very code
//! the fuzzer runs. Hence this file uses nothing but `std` and the crate's public API.
//!
//! Every body must not panic on any input. Where it is cheap, a body also checks a property:
//! what decodes re-encodes to something that decodes to the same value, and what the
//! writer encodes the reader gives back.

use std::fmt::Debug;
use std::io::{self, Read};

use kafka_producer::net::read_frame;
use kafka_producer::protocol::api_versions::{ApiVersionsRequest, ApiVersionsResponse};
use kafka_producer::protocol::header::ResponseHeader;
use kafka_producer::protocol::init_producer_id::{InitProducerIdRequest, InitProducerIdResponse};
use kafka_producer::protocol::metadata::{MetadataRequest, MetadataResponse};
use kafka_producer::protocol::produce::{ProduceRequest, ProduceResponse};
use kafka_producer::protocol::sasl_authenticate::{
    SaslAuthenticateRequest, SaslAuthenticateResponse,
};
use kafka_producer::protocol::sasl_handshake::{SaslHandshakeRequest, SaslHandshakeResponse};
use kafka_producer::protocol::{
    decode_any_response, decode_response, is_flexible, peek_correlation_id,
    response_header_version, Reader, Request,
};
use kafka_producer::record_batch::{
    set_producer_state, Record, RecordBatch, RecordBatchBuilder, HEADER_SIZE,
};
use kafka_producer::{Compression, Header};

/// What the batch bodies let records decompress to: small enough to keep executions fast,
/// large enough for every codec's multi-block paths.
pub const MAX_DECOMPRESSED: usize = 1 << 20;

/// The largest frame the frame-reader body accepts: larger claims test the size check.
const MAX_FRAME: usize = 1 << 16;

/// A response type with the encoder its tests and fake peers use.
trait EncodeBody: kafka_producer::protocol::Response + PartialEq + Debug {
    fn encode(&self, version: i16, out: &mut Vec<u8>);
}

macro_rules! encode_body {
    ($($ty:ty),*) => {$(
        impl EncodeBody for $ty {
            fn encode(&self, version: i16, out: &mut Vec<u8>) {
                self.encode_body(version, out)
            }
        }
    )*};
}

encode_body!(
    ApiVersionsResponse,
    MetadataResponse,
    ProduceResponse,
    InitProducerIdResponse,
    SaslHandshakeResponse,
    SaslAuthenticateResponse
);

/// A version in `R`'s range picked by the first byte, and the bytes after it.
fn pick_version<R: Request>(data: &[u8]) -> Option<(i16, &[u8])> {
    let (&first, rest) = data.split_first()?;
    let span = (R::VERSIONS.max - R::VERSIONS.min + 1) as u8;
    Some((R::VERSIONS.min + i16::from(first % span), rest))
}

/// Decodes `frame` as a response to `R` at `version` through the connection's entry point
/// (no panic), then strictly; a strict decode must survive encode → decode unchanged, and
/// encoding is deterministic.
fn response_round_trip<R>(version: i16, frame: &[u8])
where
    R: Request,
    R::Response: EncodeBody,
{
    let _ = decode_any_response(R::API_KEY, version, frame);
    let Ok((correlation_id, body)) = decode_response::<R>(version, frame) else {
        return;
    };
    let header_version = response_header_version(R::API_KEY, is_flexible::<R>(version));
    let encode = |correlation_id: i32, body: &R::Response| {
        let mut out = Vec::new();
        ResponseHeader { correlation_id }.encode(header_version, &mut out);
        body.encode(version, &mut out);
        out
    };
    let encoded = encode(correlation_id, &body);
    let (again_id, again) = decode_response::<R>(version, &encoded).unwrap_or_else(|e| {
        panic!(
            "{:?} v{version}: re-encoded {body:?} does not decode: {e}",
            R::API_KEY
        )
    });
    assert_eq!(again_id, correlation_id);
    assert_eq!(again, body, "{:?} v{version}", R::API_KEY);
    assert_eq!(
        encode(again_id, &again),
        encoded,
        "{:?} v{version}",
        R::API_KEY
    );
}

/// Target `api_versions_response`: the first byte picks the version (0–3), the rest is the
/// frame after the size prefix.
pub fn api_versions_response(data: &[u8]) {
    if let Some((version, frame)) = pick_version::<ApiVersionsRequest>(data) {
        response_round_trip::<ApiVersionsRequest>(version, frame);
    }
}

/// Target `metadata_response`: the first byte picks the version (1–12).
pub fn metadata_response(data: &[u8]) {
    if let Some((version, frame)) = pick_version::<MetadataRequest>(data) {
        response_round_trip::<MetadataRequest>(version, frame);
    }
}

/// Target `produce_response`: the first byte picks the version (3–11).
pub fn produce_response(data: &[u8]) {
    if let Some((version, frame)) = pick_version::<ProduceRequest>(data) {
        response_round_trip::<ProduceRequest>(version, frame);
    }
}

/// Target `init_producer_id_response`: the first byte picks the version (0–4).
pub fn init_producer_id_response(data: &[u8]) {
    if let Some((version, frame)) = pick_version::<InitProducerIdRequest>(data) {
        response_round_trip::<InitProducerIdRequest>(version, frame);
    }
}

/// Target `sasl_response`: the first byte picks the API (even: SaslHandshake v0–1, odd:
/// SaslAuthenticate v0–2) and the version; the answers a broker sends while the client
/// authenticates.
pub fn sasl_response(data: &[u8]) {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let picked = [first / 2].into_iter().chain(rest.iter().copied());
    let data: Vec<u8> = picked.collect();
    if first % 2 == 0 {
        if let Some((version, frame)) = pick_version::<SaslHandshakeRequest>(&data) {
            response_round_trip::<SaslHandshakeRequest>(version, frame);
        }
    } else if let Some((version, frame)) = pick_version::<SaslAuthenticateRequest>(&data) {
        response_round_trip::<SaslAuthenticateRequest>(version, frame);
    }
}

/// Target `response_header`: the first byte picks header v0 or v1; a decoded header
/// re-encodes to the bytes it used, minus unknown tagged fields, and agrees with
/// `peek_correlation_id`.
pub fn response_header(data: &[u8]) {
    let Some((&first, frame)) = data.split_first() else {
        return;
    };
    let version = i16::from(first & 1);
    let mut r = Reader::new(frame);
    let Ok(header) = ResponseHeader::decode(&mut r, version) else {
        return;
    };
    assert_eq!(peek_correlation_id(frame), Ok(header.correlation_id));
    let mut out = Vec::new();
    header.encode(version, &mut out);
    let mut again = Reader::new(&out);
    assert_eq!(ResponseHeader::decode(&mut again, version), Ok(header));
    assert_eq!(again.remaining(), 0);
    assert!(frame.len() - r.remaining() >= out.len());
}

/// A stream that hands out its bytes in reads of fuzzer-chosen sizes, some of them
/// interrupted, as a socket may.
struct Trickle<'a> {
    data: &'a [u8],
    sizes: &'a [u8],
    reads: usize,
    /// Whether the last read was interrupted: the next one makes progress, so that a
    /// stream of interruptions cannot hang the reader.
    interrupted: bool,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let step = self.sizes[self.reads % self.sizes.len()];
        self.reads += 1;
        if step == 0 && !self.interrupted {
            self.interrupted = true;
            return Err(io::ErrorKind::Interrupted.into());
        }
        self.interrupted = false;
        let n = buf
            .len()
            .min(self.data.len())
            .min(usize::from(step.max(1)) * 97);
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

/// Target `frame_reader`: byte 0 sets the largest frame accepted, bytes 1–4 the sizes of
/// the reads the stream answers, the rest is the stream. Frames are read until the stream
/// fails; each must be exactly the bytes its prefix announced, and the only failures are a
/// size out of range and a stream that ends.
pub fn frame_reader(data: &[u8]) {
    if data.len() < 5 {
        return;
    }
    let max_size = (usize::from(data[0]) << 8).min(MAX_FRAME);
    let mut stream = Trickle {
        data: &data[5..],
        sizes: &data[1..5],
        reads: 0,
        interrupted: false,
    };
    let mut offset = 5;
    loop {
        match read_frame(&mut stream, max_size) {
            Ok(frame) => {
                let prefix = &data[offset..offset + 4];
                assert_eq!(prefix, (frame.len() as i32).to_be_bytes());
                assert!((4..=max_size).contains(&frame.len()));
                assert_eq!(frame, data[offset + 4..offset + 4 + frame.len()]);
                offset += 4 + frame.len();
                let _ = peek_correlation_id(&frame);
            }
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        io::ErrorKind::InvalidData | io::ErrorKind::UnexpectedEof
                    ),
                    "{e}"
                );
                return;
            }
        }
    }
}

/// The codecs by id (0–4), and `None` for ids the format leaves unused (5–7).
fn codec(id: u8) -> Option<Compression> {
    match id & 7 {
        0 => Some(Compression::None),
        1 => Some(Compression::Gzip),
        2 => Some(Compression::Snappy),
        3 => Some(Compression::Lz4),
        4 => Some(Compression::Zstd),
        _ => None,
    }
}

/// Target `record_batch`: byte 0 picks a mode, the rest feeds it.
///
/// - mode 0: the bytes are batches as they come off the wire (mostly failing the CRC);
/// - mode 1: a header with a valid CRC is sealed over fuzzer records: the codec id (any of
///   0–7) and the record count come from the input, so every decompressor and the record
///   decoder see arbitrary bytes;
/// - mode 2: records built from the input go through the writer with every codec and must
///   come back from the reader unchanged.
pub fn record_batch(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    match mode % 3 {
        0 => read_wire_batches(rest),
        1 => read_sealed_batch(rest),
        _ => write_then_read(rest),
    }
}

fn read_wire_batches(mut bytes: &[u8]) {
    while let Ok((batch, rest)) = RecordBatch::parse(bytes) {
        if let Ok(records) = batch.records_with_limit(MAX_DECOMPRESSED) {
            assert_eq!(records.len(), batch.record_count() as usize);
        }
        bytes = rest;
    }
}

/// A batch of codec `attributes & 7` around `records` as they are, sealed with a valid CRC.
fn sealed_batch(
    attributes: i16,
    record_count: i32,
    base_timestamp: i64,
    records: &[u8],
) -> Vec<u8> {
    let mut b = Vec::with_capacity(HEADER_SIZE + records.len());
    b.extend_from_slice(&0i64.to_be_bytes()); // baseOffset
    b.extend_from_slice(&((HEADER_SIZE - 12 + records.len()) as i32).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes()); // partitionLeaderEpoch
    b.push(2); // magic
    b.extend_from_slice(&[0; 4]); // crc, sealed below
    b.extend_from_slice(&attributes.to_be_bytes());
    b.extend_from_slice(&record_count.wrapping_sub(1).to_be_bytes()); // lastOffsetDelta
    b.extend_from_slice(&base_timestamp.to_be_bytes());
    b.extend_from_slice(&base_timestamp.to_be_bytes()); // maxTimestamp
    b.extend_from_slice(&[0; 14]); // producer id, epoch, base sequence: sealed below
    b.extend_from_slice(&record_count.to_be_bytes());
    b.extend_from_slice(records);
    set_producer_state(&mut b, kafka_producer::record_batch::ProducerState::NONE);
    b
}

fn read_sealed_batch(data: &[u8]) {
    if data.len() < 11 {
        return;
    }
    let attributes = i16::from_be_bytes([data[0], data[1]]);
    let record_count = i32::from_be_bytes([data[2], data[3], data[4], data[5]]);
    // A small count most of the time, so that records decode; any count sometimes.
    let record_count = if data[6] & 0x80 == 0 {
        record_count & 0x0f
    } else {
        record_count
    };
    let base_timestamp = i64::from(i32::from_be_bytes([data[7], data[8], data[9], data[10]]));
    let batch = sealed_batch(attributes, record_count, base_timestamp, &data[11..]);
    let parsed = RecordBatch::parse(&batch);
    let Some(codec) = codec(data[1]) else {
        assert!(parsed.is_err(), "codec id {} accepted", data[1] & 7);
        return;
    };
    let (batch, rest) = parsed.expect("a sealed batch of a known codec parses");
    assert!(rest.is_empty());
    assert_eq!(batch.compression(), codec);
    let Ok(records) = batch.records_with_limit(MAX_DECOMPRESSED) else {
        return;
    };
    assert_eq!(records.len(), record_count as usize);
    // Whatever decoded, the writer writes back, in this codec and uncompressed.
    for codec in [codec, Compression::None] {
        assert_eq!(
            rewrite(codec, &records),
            without_offsets(&records),
            "{codec:?}"
        );
    }
}

/// `records` written by the batch writer with `codec`, then read back.
fn rewrite(codec: Compression, records: &[Record]) -> Vec<Record> {
    let mut builder = RecordBatchBuilder::new(codec, None);
    for r in records {
        builder.append(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
    }
    let bytes = builder.build(kafka_producer::record_batch::ProducerState::NONE);
    let (batch, rest) = RecordBatch::parse(&bytes).expect("the writer's batch parses");
    assert!(rest.is_empty());
    batch
        .records_with_limit(usize::MAX)
        .expect("the writer's records decode")
}

/// `records` with the offset deltas the writer gives them (their positions).
fn without_offsets(records: &[Record]) -> Vec<Record> {
    records
        .iter()
        .enumerate()
        .map(|(i, r)| Record {
            offset_delta: i as i32,
            ..r.clone()
        })
        .collect()
}

/// Reads records from `data`: per record a control byte, then timestamp, key, value and
/// header bytes sliced off the input.
fn records_from(data: &[u8]) -> Vec<Record> {
    let mut out = Vec::new();
    let mut rest = data;
    while let Some((&control, tail)) = rest.split_first() {
        rest = tail;
        let mut take = |n: usize| {
            let n = n.min(rest.len());
            let (head, tail) = rest.split_at(n);
            rest = tail;
            head
        };
        let mut ts = [0u8; 8];
        let t = take(usize::from(control & 7) + 1);
        ts[8 - t.len()..].copy_from_slice(t);
        let timestamp = i64::from_be_bytes(ts);
        let key = (control & 0x08 != 0).then(|| take(usize::from(control >> 4)).to_vec());
        let value_len = take(1).first().copied().unwrap_or(0);
        let value = (value_len != 0xff).then(|| take(usize::from(value_len)).to_vec());
        let headers = if control & 0x80 != 0 {
            let n = take(1).first().copied().unwrap_or(0) % 4;
            (0..n)
                .map(|i| Header {
                    key: String::from_utf8_lossy(take(usize::from(i) + 1)).into_owned(),
                    value: (i != 2).then(|| take(3).to_vec()),
                })
                .collect()
        } else {
            Vec::new()
        };
        out.push(Record {
            offset_delta: out.len() as i32,
            timestamp,
            key,
            value,
            headers,
        });
    }
    out
}

fn write_then_read(data: &[u8]) {
    let records = records_from(data);
    if records.is_empty() {
        return;
    }
    for id in 0..5 {
        let codec = codec(id).expect("ids 0-4 are codecs");
        assert_eq!(rewrite(codec, &records), records, "{codec:?}");
    }
}

//! Decoders are total: no input makes them panic or allocate by a length they were told.
//!
//! Random bytes, every prefix of valid frames, and mutated valid frames go to
//! `decode_any_response` for every API and version we speak. Inputs come from a small
//! xorshift generator with a fixed seed, so a failure reproduces exactly.
//!
//! [`mutate`] and [`Rng`] are meant for reuse by further fuzz-style tests in this file (the
//! record-batch reader, for one).

use std::process::Command;
use std::time::{Duration, Instant};

use kafka_producer::net::read_frame;
use kafka_producer::protocol::add_offsets_to_txn::AddOffsetsToTxnResponse;
use kafka_producer::protocol::add_partitions_to_txn::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnTopicResult,
};
use kafka_producer::protocol::api_versions::{ApiVersion, ApiVersionsResponse};
use kafka_producer::protocol::end_txn::EndTxnResponse;
use kafka_producer::protocol::find_coordinator::{Coordinator, FindCoordinatorResponse};
use kafka_producer::protocol::header::ResponseHeader;
use kafka_producer::protocol::init_producer_id::InitProducerIdResponse;
use kafka_producer::protocol::metadata::{
    MetadataBroker, MetadataPartition, MetadataResponse, MetadataTopic,
};
use kafka_producer::protocol::produce::{
    BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
    ProduceResponse, TopicProduceResponse,
};
use kafka_producer::protocol::sasl_authenticate::SaslAuthenticateResponse;
use kafka_producer::protocol::sasl_handshake::SaslHandshakeResponse;
use kafka_producer::protocol::txn_offset_commit::{
    TxnOffsetCommitPartitionResult, TxnOffsetCommitResponse, TxnOffsetCommitTopicResult,
};
use kafka_producer::protocol::{
    decode_any_response, response_header_version, ApiKey, DecodeError, Writer,
};

/// xorshift64* (Vigna): tiny, deterministic, good enough to pick bytes and positions.
#[derive(Debug, Clone)]
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// A value in `0..n` (`n` > 0).
    fn below(&mut self, n: usize) -> usize {
        (self.next_u64() % n as u64) as usize
    }

    fn byte(&mut self) -> u8 {
        self.next_u64() as u8
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.byte()).collect()
    }
}

/// Values that sit on the edges of lengths, counts and null markers.
const EDGE_I32: [i32; 7] = [i32::MAX, i32::MIN, -1, -2, 0x7fff_fff0, 1 << 24, 0];
const EDGE_BYTES: [u8; 6] = [0x00, 0x01, 0x7f, 0x80, 0xfe, 0xff];
/// Unsigned varints claiming about 2^32 and 2^28 elements, and an over-long one.
const EDGE_VARINTS: [&[u8]; 3] = [
    &[0xff, 0xff, 0xff, 0xff, 0x0f],
    &[0x80, 0x80, 0x80, 0x80, 0x01],
    &[0x80, 0x80, 0x80, 0x80, 0x80, 0x01],
];

/// A copy of `valid` with one random damage: bit flips, edge values written over lengths,
/// truncation, insertion, deletion or duplication. Reusable by any frame-format fuzz test.
fn mutate(rng: &mut Rng, valid: &[u8]) -> Vec<u8> {
    let mut out = valid.to_vec();
    if out.is_empty() {
        let len = rng.below(8);
        return rng.bytes(len);
    }
    let pos = rng.below(out.len());
    match rng.below(8) {
        0 => {
            for _ in 0..=rng.below(3) {
                let p = rng.below(out.len());
                out[p] ^= 1 << rng.below(8);
            }
        }
        1 => out[pos] = EDGE_BYTES[rng.below(EDGE_BYTES.len())],
        2 => {
            let v = EDGE_I32[rng.below(EDGE_I32.len())].to_be_bytes();
            overwrite(&mut out, pos, &v);
        }
        3 => overwrite(&mut out, pos, EDGE_VARINTS[rng.below(EDGE_VARINTS.len())]),
        4 => {
            out.truncate(pos);
            if let Some(b) = out.last_mut() {
                *b ^= 1 << rng.below(8);
            }
        }
        5 => {
            let len = 1 + rng.below(4);
            let extra = rng.bytes(len);
            out.splice(pos..pos, extra);
        }
        6 => {
            let end = (pos + 1 + rng.below(8)).min(out.len());
            out.drain(pos..end);
        }
        _ => {
            let end = (pos + 1 + rng.below(16)).min(out.len());
            let chunk = out[pos..end].to_vec();
            out.splice(pos..pos, chunk);
        }
    }
    out
}

fn overwrite(out: &mut [u8], pos: usize, with: &[u8]) {
    for (o, w) in out[pos..].iter_mut().zip(with) {
        *o = *w;
    }
}

// ---------------------------------------------------------------------------------------
// Valid frames to start from.

/// Every (API, version) this client decodes.
fn apis() -> Vec<(ApiKey, i16)> {
    let mut out = Vec::new();
    for (key, lo, hi) in [
        (ApiKey::PRODUCE, 3, 11),
        (ApiKey::METADATA, 1, 12),
        (ApiKey::API_VERSIONS, 0, 3),
        (ApiKey::INIT_PRODUCER_ID, 0, 4),
        (ApiKey::SASL_HANDSHAKE, 0, 1),
        (ApiKey::SASL_AUTHENTICATE, 0, 2),
        (ApiKey::FIND_COORDINATOR, 0, 6),
        (ApiKey::ADD_PARTITIONS_TO_TXN, 0, 3),
        (ApiKey::ADD_OFFSETS_TO_TXN, 0, 4),
        (ApiKey::END_TXN, 0, 5),
        (ApiKey::TXN_OFFSET_COMMIT, 0, 5),
    ] {
        out.extend((lo..=hi).map(|v| (key, v)));
    }
    out
}

fn first_flexible(key: ApiKey) -> i16 {
    match key {
        ApiKey::PRODUCE | ApiKey::METADATA => 9,
        ApiKey::API_VERSIONS
        | ApiKey::FIND_COORDINATOR
        | ApiKey::ADD_PARTITIONS_TO_TXN
        | ApiKey::ADD_OFFSETS_TO_TXN
        | ApiKey::END_TXN
        | ApiKey::TXN_OFFSET_COMMIT => 3,
        ApiKey::SASL_HANDSHAKE => i16::MAX,
        _ => 2,
    }
}

fn metadata_sample() -> MetadataResponse {
    let partition = MetadataPartition {
        error_code: 0,
        partition_index: 1,
        leader_id: 2,
        leader_epoch: 5,
        replica_nodes: vec![1, 2, 3],
        isr_nodes: vec![2, 3],
        offline_replicas: vec![1],
    };
    MetadataResponse {
        throttle_time_ms: 1,
        brokers: vec![MetadataBroker {
            node_id: 2,
            host: "broker-2".into(),
            port: 9092,
            rack: Some("r".into()),
        }],
        cluster_id: Some("c1".into()),
        controller_id: 2,
        topics: vec![MetadataTopic {
            error_code: 0,
            name: Some("orders".into()),
            topic_id: [3; 16],
            is_internal: false,
            partitions: vec![partition.clone(), partition],
            topic_authorized_operations: 8,
        }],
        cluster_authorized_operations: 0,
    }
}

fn produce_sample() -> ProduceResponse {
    ProduceResponse {
        responses: vec![TopicProduceResponse {
            name: "orders".into(),
            partitions: vec![PartitionProduceResponse {
                index: 0,
                error_code: 6,
                base_offset: 10,
                log_append_time_ms: -1,
                log_start_offset: 0,
                record_errors: vec![BatchIndexAndErrorMessage {
                    batch_index: 1,
                    batch_index_error_message: Some("x".into()),
                }],
                error_message: Some("bad".into()),
                current_leader: Some(LeaderIdAndEpoch {
                    leader_id: 3,
                    leader_epoch: 4,
                }),
            }],
        }],
        throttle_time_ms: 0,
        node_endpoints: vec![NodeEndpoint {
            node_id: 3,
            host: "b3".into(),
            port: 9093,
            rack: None,
        }],
    }
}

/// A valid response frame (after the size prefix) for `key` at `version`.
fn valid_frame(key: ApiKey, version: i16) -> Vec<u8> {
    let mut out = Vec::new();
    let flexible = version >= first_flexible(key);
    ResponseHeader { correlation_id: 77 }.encode(response_header_version(key, flexible), &mut out);
    match key {
        ApiKey::PRODUCE => produce_sample().encode_body(version, &mut out),
        ApiKey::METADATA => metadata_sample().encode_body(version, &mut out),
        ApiKey::API_VERSIONS => ApiVersionsResponse {
            error_code: 0,
            api_keys: vec![ApiVersion {
                api_key: 0,
                min_version: 3,
                max_version: 11,
            }],
            throttle_time_ms: 2,
            ..ApiVersionsResponse::default()
        }
        .encode_body(version, &mut out),
        ApiKey::SASL_HANDSHAKE => SaslHandshakeResponse {
            error_code: 33,
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-512".into()],
        }
        .encode_body(version, &mut out),
        ApiKey::SASL_AUTHENTICATE => SaslAuthenticateResponse {
            error_code: 0,
            error_message: Some("m".into()),
            auth_bytes: b"r=abc,s=c2FsdA==,i=4096".to_vec(),
            session_lifetime_ms: 5000,
        }
        .encode_body(version, &mut out),
        ApiKey::FIND_COORDINATOR => FindCoordinatorResponse {
            throttle_time_ms: 3,
            coordinators: vec![
                Coordinator {
                    key: if version >= 4 {
                        "tx-1".into()
                    } else {
                        String::new()
                    },
                    node_id: 2,
                    host: "broker-2".into(),
                    port: 9092,
                    error_code: 0,
                    error_message: None,
                },
                Coordinator {
                    key: "g".into(),
                    error_code: 15,
                    error_message: Some("not available".into()),
                    ..Coordinator::default()
                },
            ],
        }
        .encode_body(version, &mut out),
        ApiKey::ADD_PARTITIONS_TO_TXN => AddPartitionsToTxnResponse {
            throttle_time_ms: 0,
            results: vec![AddPartitionsToTxnTopicResult {
                name: "orders".into(),
                partitions: vec![
                    AddPartitionsToTxnPartitionResult {
                        partition_index: 0,
                        error_code: 0,
                    },
                    AddPartitionsToTxnPartitionResult {
                        partition_index: 3,
                        error_code: 51,
                    },
                ],
            }],
        }
        .encode_body(version, &mut out),
        ApiKey::ADD_OFFSETS_TO_TXN => AddOffsetsToTxnResponse {
            throttle_time_ms: 1,
            error_code: 48,
        }
        .encode_body(version, &mut out),
        ApiKey::END_TXN => EndTxnResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id: 1000,
            producer_epoch: 2,
        }
        .encode_body(version, &mut out),
        ApiKey::TXN_OFFSET_COMMIT => TxnOffsetCommitResponse {
            throttle_time_ms: 0,
            topics: vec![TxnOffsetCommitTopicResult {
                name: "in".into(),
                partitions: vec![TxnOffsetCommitPartitionResult {
                    partition_index: 1,
                    error_code: 82,
                }],
            }],
        }
        .encode_body(version, &mut out),
        _ => InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id: 1000,
            producer_epoch: 1,
        }
        .encode_body(version, &mut out),
    }
    out
}

/// Tallies of a run; the inputs must reach both outcomes to prove they were not all
/// rejected at the first byte (or all accepted).
#[derive(Debug, Default)]
struct Tally {
    ok: usize,
    err: usize,
}

impl Tally {
    fn feed(&mut self, key: ApiKey, version: i16, frame: &[u8]) {
        match decode_any_response(key, version, frame) {
            Ok(_) => self.ok += 1,
            Err(_) => self.err += 1,
        }
    }

    fn total(&self) -> usize {
        self.ok + self.err
    }
}

#[test]
fn valid_frames_decode_at_every_version() {
    for (key, v) in apis() {
        let frame = valid_frame(key, v);
        let (corr, _) =
            decode_any_response(key, v, &frame).unwrap_or_else(|e| panic!("{key:?} v{v}: {e}"));
        assert_eq!(corr, 77);
    }
}

#[test]
fn random_bytes_never_panic_any_decoder() {
    let mut rng = Rng::new(0x5eed_0001);
    let mut tally = Tally::default();
    let apis = apis();
    for _ in 0..1_500 {
        let len = rng.below(96);
        let bytes = rng.bytes(len);
        for &(key, v) in &apis {
            tally.feed(key, v, &bytes);
        }
    }
    // Random bytes may rarely form a tiny valid frame; what matters is no panic.
    assert!(tally.total() >= 45_000, "{tally:?}");
}

#[test]
fn every_prefix_of_a_valid_frame_is_rejected() {
    for (key, v) in apis() {
        let frame = valid_frame(key, v);
        for len in 0..frame.len() {
            let prefix = &frame[..len];
            // ApiVersions falls back to the v0 shape (as Java does), so a v1/v2 frame cut
            // just before throttle_time_ms is a complete v0 answer; nothing else may pass.
            let v0_shaped =
                key == ApiKey::API_VERSIONS && decode_any_response(key, 0, prefix).is_ok();
            assert!(
                v0_shaped || decode_any_response(key, v, prefix).is_err(),
                "{key:?} v{v} prefix {len}"
            );
        }
    }
}

#[test]
fn mutated_frames_never_panic_any_decoder() {
    let mut rng = Rng::new(0x5eed_0002);
    let mut tally = Tally::default();
    let apis = apis();
    for &(key, v) in &apis {
        let frame = valid_frame(key, v);
        for _ in 0..2_000 {
            let bad = mutate(&mut rng, &frame);
            tally.feed(key, v, &bad);
        }
        // The same frame read as another API or version must fail cleanly too.
        for &(other, ov) in &apis {
            tally.feed(other, ov, &frame);
            tally.feed(other, ov, &mutate(&mut rng, &frame));
        }
    }
    assert!(tally.total() >= 60_000, "{tally:?}");
    assert!(tally.ok > 0 && tally.err > 0, "{tally:?}");
}

#[test]
fn a_broker_count_of_i32_max_fails_fast_without_allocating() {
    for v in 1..=12 {
        let mut frame = Vec::new();
        let flexible = v >= 9;
        ResponseHeader { correlation_id: 1 }.encode(
            response_header_version(ApiKey::METADATA, flexible),
            &mut frame,
        );
        if v >= 3 {
            frame.put_i32(0);
        }
        if flexible {
            frame.put_uvarint(i32::MAX as u32);
        } else {
            frame.put_i32(i32::MAX);
        }
        // One plausible broker follows; 2^31 of them would need tens of GiB.
        frame.put_i32(1);
        frame.put_string("h", flexible);
        frame.put_i32(9092);
        let start = Instant::now();
        let got = decode_any_response(ApiKey::METADATA, v, &frame);
        assert!(
            matches!(got, Err(DecodeError::InvalidLength { .. })),
            "v{v}: {got:?}"
        );
        assert!(start.elapsed() < Duration::from_millis(100), "v{v}");
    }
}

#[test]
fn a_string_claiming_two_gib_is_rejected() {
    // A Produce v9 response whose topic name says it is 2^31 bytes long.
    let mut frame = Vec::new();
    ResponseHeader { correlation_id: 1 }.encode(1, &mut frame);
    frame.put_uvarint(2);
    frame.put_uvarint(1 << 31);
    frame.extend_from_slice(b"orders");
    let got = decode_any_response(ApiKey::PRODUCE, 9, &frame);
    assert!(
        matches!(got, Err(DecodeError::InvalidLength { .. })),
        "{got:?}"
    );
}

/// Valid batches of every codec, the seeds of the batch-reader fuzz.
fn valid_batches() -> Vec<Vec<u8>> {
    use kafka_producer::record_batch::{ProducerState, RecordBatchBuilder};
    use kafka_producer::{Compression, Header};
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    codecs
        .iter()
        .map(|&c| {
            let mut b = RecordBatchBuilder::new(c, None);
            for i in 0..4u8 {
                let key = [i; 3];
                let headers = [Header::new("h", vec![i; 2])];
                b.append(
                    1_000 + i64::from(i),
                    Some(&key),
                    Some(&[b'v'; 40]),
                    &headers,
                );
            }
            b.append(900, None, None, &[]);
            b.build(ProducerState::NONE).to_vec()
        })
        .collect()
}

/// Parses and decodes a whole batch; returns whether every record decoded.
fn read_batch(bytes: &[u8]) -> bool {
    use kafka_producer::record_batch::RecordBatch;
    match RecordBatch::parse(bytes) {
        Ok((batch, _rest)) => batch.records_with_limit(1 << 20).is_ok(),
        Err(_) => false,
    }
}

#[test]
fn the_batch_reader_survives_random_truncated_and_mutated_batches() {
    let mut rng = Rng::new(0x5eed_0003);
    let batches = valid_batches();
    let (mut ok, mut err) = (0usize, 0usize);
    let mut count = |good: bool| if good { ok += 1 } else { err += 1 };
    for b in &batches {
        assert!(read_batch(b), "a valid batch must decode");
        for len in 0..b.len() {
            count(read_batch(&b[..len]));
        }
    }
    for _ in 0..20_000 {
        let len = rng.below(160);
        count(read_batch(&rng.bytes(len)));
    }
    for i in 0..90_000 {
        let seed = &batches[i % batches.len()];
        count(read_batch(&mutate(&mut rng, seed)));
    }
    assert!(ok + err >= 110_000, "{ok} ok, {err} err");
    assert!(err > 0, "mutations must be caught");
}

// ---------------------------------------------------------------------------------------
// What a hostile count makes the decoders reserve, measured as the process's peak virtual
// memory (`VmPeak`): a reservation is virtual until written, so only the peak sees it.

/// Set in the child process that runs the measurement alone.
const MEMORY_CHILD: &str = "KAFKA_PRODUCER_DECODER_MEMORY_CHILD";

/// A field of `/proc/self/status` in bytes (`VmSize`, `VmPeak`).
fn vm_bytes(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("/proc/self/status");
    let line = status
        .lines()
        .find(|l| l.starts_with(field))
        .unwrap_or_else(|| panic!("no {field} in /proc/self/status"));
    let kib: u64 = line[field.len() + 1..]
        .trim()
        .trim_end_matches(" kB")
        .trim()
        .parse()
        .expect("a size in kB");
    kib * 1024
}

/// A frame of `size` bytes whose first array count claims as many elements as the bytes left
/// pass the count check for (`min_len` bytes each), followed by bytes no element decodes
/// from (an over-long varint). `prefix` writes what comes before the count.
fn hostile_count_frame(size: usize, min_len: usize, prefix: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut frame = Vec::with_capacity(size);
    ResponseHeader { correlation_id: 1 }.encode(1, &mut frame);
    prefix(&mut frame);
    let left = size - frame.len() - 5;
    frame.put_uvarint((left / min_len) as u32 + 1);
    frame.resize(size, 0xff);
    frame
}

/// An uncompressed batch of `size` bytes claiming `i32::MAX` records, whose first record
/// length is an over-long varint.
fn hostile_count_batch(size: usize) -> Vec<u8> {
    use kafka_producer::record_batch::{set_producer_state, ProducerState};
    let mut b = Vec::with_capacity(size);
    b.put_i64(0); // baseOffset
    b.put_i32((size - 12) as i32); // batchLength
    b.put_i32(-1); // partitionLeaderEpoch
    b.put_i8(2); // magic
    b.put_u32(0); // crc, sealed below
    b.put_i16(0); // attributes: no codec
    b.put_i32(0); // lastOffsetDelta
    b.put_i64(0); // baseTimestamp
    b.put_i64(0); // maxTimestamp
    b.put_raw(&[0; 14]); // producer id, epoch, base sequence
    b.put_i32(i32::MAX); // recordCount
    b.resize(size, 0xff);
    set_producer_state(&mut b, ProducerState::NONE);
    b
}

/// A snappy batch of one record whose raw snappy block claims `claim` bytes in 5.
fn hostile_snappy_batch(claim: u32) -> Vec<u8> {
    use kafka_producer::record_batch::{set_producer_state, ProducerState};
    let mut b = Vec::new();
    b.put_i64(0); // baseOffset
    b.put_i32(0); // batchLength, patched below
    b.put_i32(-1); // partitionLeaderEpoch
    b.put_i8(2); // magic
    b.put_u32(0); // crc, sealed below
    b.put_i16(2); // attributes: snappy
    b.put_i32(0); // lastOffsetDelta
    b.put_i64(0); // baseTimestamp
    b.put_i64(0); // maxTimestamp
    b.put_raw(&[0; 14]); // producer id, epoch, base sequence
    b.put_i32(1); // recordCount
    b.put_uvarint(claim); // the raw block's decompressed length
    b.put_raw(&[0x00, 0x00]); // a 1-byte literal
    let length = (b.len() - 12) as i32;
    b[8..12].copy_from_slice(&length.to_be_bytes());
    set_producer_state(&mut b, ProducerState::NONE);
    b
}

/// The measured cases, for the decoders whose elements are largest beside their wire
/// minimum.
const HOSTILE_CASES: [&str; 5] = [
    "Produce v9 topics",
    "Metadata v9 topics",
    "RecordBatch records",
    "a stream that ends inside a frame claiming 100 MiB",
    "a 5-byte snappy block claiming 60 MiB",
];

/// A measured input and the check that its decoder rejects it.
type HostileCase = (Vec<u8>, fn(&[u8]) -> bool);

/// Builds case `case` of [`HOSTILE_CASES`] at `size` bytes (only that one: building others
/// would raise the peak) and tells whether the decoder rejects it.
fn hostile_count_case(case: usize, size: usize) -> HostileCase {
    use kafka_producer::record_batch::RecordBatch;
    match case {
        // Topics take 3 bytes on the wire and 48 decoded.
        0 => (hostile_count_frame(size, 3, |_| {}), |f| {
            decode_any_response(ApiKey::PRODUCE, 9, f).is_err()
        }),
        // Topics take 10 bytes on the wire (v8+ adds authorized operations) and 80 decoded.
        1 => (
            hostile_count_frame(size, 10, |f| {
                f.put_i32(0); // throttle_time_ms
                f.put_uvarint(1); // no brokers
                f.put_uvarint(0); // null cluster id
                f.put_i32(-1); // controller id
            }),
            |f| decode_any_response(ApiKey::METADATA, 9, f).is_err(),
        ),
        // Records take 7 bytes at least and about 90 decoded.
        2 => (hostile_count_batch(size), |b| {
            let (batch, _) = RecordBatch::parse(b).expect("a sealed batch parses");
            batch.records().is_err()
        }),
        // Under the reader's default decompression limit (64 MiB), in a tiny input.
        4 => (hostile_snappy_batch(60 << 20), |b| {
            let (batch, _) = RecordBatch::parse(b).expect("a sealed batch parses");
            batch.records().is_err()
        }),
        // The connection's default limit; the stream holds less than the claim.
        _ => {
            let mut stream = Vec::with_capacity(size);
            stream.put_i32(100 << 20);
            stream.resize(size, 0);
            (stream, |mut s| read_frame(&mut s, 100 << 20).is_err())
        }
    }
}

#[test]
#[cfg(target_os = "linux")]
fn a_hostile_count_reserves_no_more_than_the_bytes_left() {
    const NAME: &str = "a_hostile_count_reserves_no_more_than_the_bytes_left";
    const SIZE: usize = 32 << 20;
    let Some(case) = std::env::var_os(MEMORY_CHILD) else {
        // Each case runs alone in a child process: other tests (and earlier cases) move
        // the peak.
        let exe = std::env::current_exe().expect("the test binary");
        for case in 0..HOSTILE_CASES.len() {
            let out = Command::new(&exe)
                .args([NAME, "--exact", "--test-threads=1", "--nocapture"])
                .env(MEMORY_CHILD, case.to_string())
                // One malloc arena: creating a thread's arena maps 128 MiB for a moment,
                // a peak that would hide (or fake) what a decoder reserves.
                .env("MALLOC_ARENA_MAX", "1")
                .output()
                .expect("running the measurement child");
            let log = String::from_utf8_lossy(&out.stdout).into_owned()
                + &String::from_utf8_lossy(&out.stderr);
            assert!(out.status.success(), "case {case} failed:\n{log}");
            assert!(log.contains("1 passed"), "case {case} did not run:\n{log}");
        }
        return;
    };
    let case: usize = case
        .to_str()
        .and_then(|c| c.parse().ok())
        .expect("a case index");
    let name = HOSTILE_CASES[case];
    let (input, rejects) = hostile_count_case(case, SIZE);
    let before = vm_bytes("VmSize:");
    let slack = vm_bytes("VmPeak:").saturating_sub(before);
    assert!(rejects(&input), "{name}: decoded");
    let grew = vm_bytes("VmPeak:").saturating_sub(before);
    println!(
        "{name}: a {}-byte input raised the peak by {} KiB (the peak was {} KiB above \
         the size before)",
        input.len(),
        grew >> 10,
        slack >> 10
    );
    // Twice the input, plus 1 MiB for a tiny input's ordinary allocations.
    let bound = 2 * input.len() as u64 + (1 << 20);
    assert!(
        grew <= bound,
        "{name}: decoding a {}-byte input reserved {grew} bytes",
        input.len()
    );
}

//! Behaviour of the writer and reader together: round trips, golden bytes, CRC, and hostile
//! input (truncation, bit flips, random bytes).

use super::*;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];

/// A record as the tests append it.
struct Input {
    timestamp: i64,
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
}

fn input(
    timestamp: i64,
    key: Option<&[u8]>,
    value: Option<Vec<u8>>,
    headers: Vec<Header>,
) -> Input {
    Input {
        timestamp,
        key: key.map(<[u8]>::to_vec),
        value,
        headers,
    }
}

fn varied_inputs() -> Vec<Input> {
    let big: Vec<u8> = (0..1 << 20)
        .map(|i: u32| (i.wrapping_mul(2_654_435_761) >> 24) as u8)
        .collect();
    vec![
        input(
            1_700_000_000_000,
            Some(b"k1"),
            Some(b"hello".to_vec()),
            vec![],
        ),
        input(1_700_000_000_005, None, Some(b"null key".to_vec()), vec![]),
        input(1_699_999_999_000, Some(b"earlier"), None, vec![]),
        input(1_700_000_000_001, Some(b""), Some(Vec::new()), vec![]),
        input(
            1_700_000_000_002,
            Some(b"h"),
            Some(b"with headers".to_vec()),
            vec![
                Header::new("trace-id", b"abc".to_vec()),
                Header {
                    key: "null".into(),
                    value: None,
                },
                Header::new("", Vec::new()),
                Header::new("héllo", vec![0xff; 300]),
            ],
        ),
        input(0, Some(b"large"), Some(big), vec![]),
        input(i64::MAX, None, None, vec![]),
    ]
}

fn build(codec: Compression, inputs: &[Input], producer: ProducerState) -> bytes::Bytes {
    let mut b = RecordBatchBuilder::new(codec, None);
    let mut expected_size = HEADER_SIZE;
    for (i, r) in inputs.iter().enumerate() {
        let next = b.next_record_size(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
        let added = b.append(
            r.timestamp,
            r.key.as_deref(),
            r.value.as_deref(),
            &r.headers,
        );
        assert_eq!(added, next, "record {i}: predicted size");
        expected_size += added;
        assert_eq!(b.estimated_size(), expected_size);
    }
    assert_eq!(b.record_count() as usize, inputs.len());
    b.build(producer)
}

/// Bitwise CRC-32C (reflected Castagnoli polynomial), independent of the `crc32c` crate.
fn crc32c_bitwise(data: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &byte in data {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0x82f6_3b78
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

#[test]
fn every_codec_round_trips_keys_values_headers_and_timestamps() {
    let inputs = varied_inputs();
    let producer = ProducerState {
        producer_id: 42,
        producer_epoch: 7,
        base_sequence: 1000,
        transactional: false,
    };
    for codec in CODECS.into_iter().filter(|c| c.is_available()) {
        let bytes = build(codec, &inputs, producer);
        let (batch, rest) = RecordBatch::parse(&bytes).unwrap();
        assert!(rest.is_empty());
        assert_eq!(batch.compression(), codec);
        assert_eq!(batch.record_count(), inputs.len() as i32);
        assert_eq!(batch.last_offset_delta(), inputs.len() as i32 - 1);
        assert_eq!(batch.base_timestamp(), inputs[0].timestamp);
        assert_eq!(batch.max_timestamp(), i64::MAX);
        assert_eq!(batch.producer_state(), producer);
        assert_eq!(
            (batch.base_offset(), batch.partition_leader_epoch()),
            (0, -1)
        );
        assert_eq!(batch.batch_length() as usize, bytes.len() - 12);
        assert!(!batch.is_transactional() && !batch.is_control() && !batch.is_log_append_time());
        let records = batch.records().unwrap();
        assert_eq!(records.len(), inputs.len());
        for (i, (got, want)) in records.iter().zip(&inputs).enumerate() {
            assert_eq!(got.offset_delta, i as i32, "{codec:?}");
            assert_eq!(got.timestamp, want.timestamp, "{codec:?} record {i}");
            assert_eq!(got.key, want.key, "{codec:?} record {i}");
            assert_eq!(got.value, want.value, "{codec:?} record {i}");
            assert_eq!(got.headers, want.headers, "{codec:?} record {i}");
        }
    }
}

#[test]
fn compressed_batches_are_smaller_for_compressible_records() {
    let inputs: Vec<Input> = (0..200)
        .map(|i| {
            input(
                1000 + i,
                Some(b"key"),
                Some(format!("value number {i} of many").into_bytes()),
                vec![],
            )
        })
        .collect();
    let plain = build(Compression::None, &inputs, ProducerState::NONE).len();
    for codec in CODECS.into_iter().skip(1).filter(|c| c.is_available()) {
        let size = build(codec, &inputs, ProducerState::NONE).len();
        assert!(size < plain / 2, "{codec:?}: {size} vs {plain}");
    }
}

#[test]
fn crc32c_matches_the_known_check_values() {
    assert_eq!(crc32c::crc32c(b"123456789"), 0xe306_9283);
    assert_eq!(crc32c_bitwise(b"123456789"), 0xe306_9283);
    assert_eq!(crc32c::crc32c(b""), 0);
    assert_eq!(crc32c_bitwise(b""), 0);
}

/// One record (timestamp 1000, key "k", value "v", header "h" with a null value), producer
/// id 258, epoch 3, base sequence 7, no compression, worked out from the spec by hand.
const GOLDEN: [u8; 73] = [
    0, 0, 0, 0, 0, 0, 0, 0, // baseOffset 0
    0, 0, 0, 0x3d, // batchLength 61 = 73 - 12
    0xff, 0xff, 0xff, 0xff, // partitionLeaderEpoch -1
    2,    // magic
    0xd6, 0x4f, 0x6e, 0x41, // crc (checked against the bitwise CRC-32C below)
    0, 0, // attributes: no codec, CreateTime
    0, 0, 0, 0, // lastOffsetDelta 0
    0, 0, 0, 0, 0, 0, 0x03, 0xe8, // baseTimestamp 1000
    0, 0, 0, 0, 0, 0, 0x03, 0xe8, // maxTimestamp 1000
    0, 0, 0, 0, 0, 0, 0x01, 0x02, // producerId 258
    0, 3, // producerEpoch 3
    0, 0, 0, 7, // baseSequence 7
    0, 0, 0, 1,    // recordCount 1
    0x16, // record length 11 (zigzag 22)
    0,    // record attributes
    0,    // timestampDelta 0
    0,    // offsetDelta 0
    0x02, b'k', // key length 1, "k"
    0x02, b'v', // value length 1, "v"
    0x02, // one header
    0x02, b'h', // header key length 1, "h"
    0x01, // header value length -1: null
];

#[test]
fn a_tiny_uncompressed_batch_matches_hand_worked_bytes() {
    assert_eq!(crc32c_bitwise(&GOLDEN[21..]).to_be_bytes(), GOLDEN[17..21]);
    let mut b = RecordBatchBuilder::new(Compression::None, None);
    let header = Header {
        key: "h".into(),
        value: None,
    };
    b.append(1000, Some(b"k"), Some(b"v"), std::slice::from_ref(&header));
    let producer = ProducerState {
        producer_id: 258,
        producer_epoch: 3,
        base_sequence: 7,
        transactional: false,
    };
    assert_eq!(&b.build(producer)[..], &GOLDEN[..]);
    let (batch, _) = RecordBatch::parse(&GOLDEN).unwrap();
    assert_eq!(
        batch.records().unwrap(),
        [Record {
            offset_delta: 0,
            timestamp: 1000,
            key: Some(b"k".to_vec()),
            value: Some(b"v".to_vec()),
            headers: vec![header],
        }]
    );
}

#[test]
fn record_size_matches_the_bytes_append_adds() {
    let headers = [Header::new("a", b"b".to_vec())];
    // length, attributes, deltas, "k" and "v" with their lengths, header count.
    assert_eq!(
        RecordBatchBuilder::record_size(0, 0, Some(b"k"), Some(b"v"), &[]),
        9
    );
    // Offset delta 300 needs a two-byte varint.
    assert_eq!(
        RecordBatchBuilder::record_size(0, 300, Some(b"k"), Some(b"v"), &[]),
        10
    );
    for delta in [0i64, -1, 1 << 40, i64::MIN, i64::MAX] {
        let mut b = RecordBatchBuilder::new(Compression::None, None);
        // The first record sets the base timestamp (0), so the second's delta is `delta`.
        let first = b.append(0, None, None, &[]);
        assert_eq!(
            first,
            RecordBatchBuilder::record_size(0, 0, None, None, &[])
        );
        let value = [7u8; 200];
        let added = b.append(delta, Some(b"key"), Some(&value), &headers);
        let predicted =
            RecordBatchBuilder::record_size(delta, 1, Some(b"key"), Some(&value), &headers);
        assert_eq!(added, predicted, "delta {delta}");
    }
}

#[test]
fn an_empty_batch_builds_and_parses_with_no_records() {
    for codec in CODECS.into_iter().filter(|c| c.is_available()) {
        let b = RecordBatchBuilder::new(codec, None);
        assert!(b.is_empty());
        let bytes = b.build(ProducerState::NONE);
        let (batch, _) = RecordBatch::parse(&bytes).unwrap();
        assert_eq!((batch.record_count(), batch.last_offset_delta()), (0, -1));
        assert_eq!(batch.records().unwrap(), []);
    }
}

#[test]
fn set_producer_state_rewrites_the_fields_and_keeps_the_crc_valid() {
    for codec in CODECS.into_iter().filter(|c| c.is_available()) {
        let bytes = build(codec, &varied_inputs()[..3], ProducerState::NONE);
        let mut batch = bytes.to_vec();
        let state = ProducerState {
            producer_id: 9_000_000_000,
            producer_epoch: 12,
            base_sequence: 77,
            transactional: false,
        };
        set_producer_state(&mut batch, state);
        let (parsed, _) = RecordBatch::parse(&batch).unwrap();
        assert_eq!(parsed.producer_state(), state);
        assert_eq!(parsed.records().unwrap().len(), 3);
        // Only the three fields and the CRC changed.
        for (i, (a, b)) in bytes.iter().zip(&batch).enumerate() {
            if a != b {
                assert!(
                    (17..21).contains(&i) || (43..57).contains(&i),
                    "byte {i} changed"
                );
            }
        }
    }
}

#[test]
fn parse_returns_the_bytes_after_the_batch() {
    let one = build(
        Compression::None,
        &varied_inputs()[..2],
        ProducerState::NONE,
    );
    let two = build(
        Compression::Lz4,
        &varied_inputs()[2..4],
        ProducerState::NONE,
    );
    let both = [&one[..], &two[..]].concat();
    let (first, rest) = RecordBatch::parse(&both).unwrap();
    assert_eq!(first.as_bytes(), &one[..]);
    let (second, rest) = RecordBatch::parse(rest).unwrap();
    assert_eq!(second.records().unwrap().len(), 2);
    assert!(rest.is_empty());
}

#[test]
fn every_truncated_prefix_fails_cleanly() {
    let bytes = build(
        Compression::None,
        &varied_inputs()[..5],
        ProducerState::NONE,
    );
    for cut in 0..bytes.len() {
        assert!(
            RecordBatch::parse(&bytes[..cut]).is_err(),
            "prefix {cut} parsed"
        );
    }
    // A batchLength that claims fewer bytes cuts the records instead: the CRC catches it.
    for short in [49, 50, bytes.len() as i32 - 13] {
        let mut b = bytes.to_vec();
        b[8..12].copy_from_slice(&short.to_be_bytes());
        assert!(matches!(
            RecordBatch::parse(&b),
            Err(BatchError::CrcMismatch { .. })
        ));
    }
}

#[test]
fn every_single_bit_flip_is_caught() {
    let bytes = build(
        Compression::Snappy,
        &varied_inputs()[..5],
        ProducerState::NONE,
    );
    // Flips in baseOffset and partitionLeaderEpoch are outside the CRC by design, and flips in
    // batchLength change the framing; every other bit must be rejected.
    for i in 16..bytes.len() {
        for bit in 0..8 {
            let mut b = bytes.to_vec();
            b[i] ^= 1 << bit;
            assert!(
                RecordBatch::parse(&b).is_err(),
                "flip of bit {bit} in byte {i} went unnoticed"
            );
        }
    }
}

#[test]
fn rejects_wrong_magic_short_length_and_unknown_codec() {
    let bytes = build(
        Compression::None,
        &varied_inputs()[..1],
        ProducerState::NONE,
    );
    let mut b = bytes.to_vec();
    b[16] = 1;
    assert_eq!(
        RecordBatch::parse(&b).unwrap_err(),
        BatchError::UnsupportedMagic(1)
    );
    let mut b = bytes.to_vec();
    b[8..12].copy_from_slice(&48i32.to_be_bytes());
    assert_eq!(
        RecordBatch::parse(&b).unwrap_err(),
        BatchError::InvalidBatchLength(48)
    );
    let mut b = bytes.to_vec();
    b[22] = 6;
    reseal(&mut b);
    assert_eq!(
        RecordBatch::parse(&b).unwrap_err(),
        BatchError::UnknownCodec(6)
    );
}

fn reseal(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[21..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

#[test]
fn rejects_record_count_mismatch_and_trailing_bytes() {
    let bytes = build(
        Compression::None,
        &varied_inputs()[..3],
        ProducerState::NONE,
    );
    let with_count = |n: i32| {
        let mut b = bytes.to_vec();
        b[57..61].copy_from_slice(&n.to_be_bytes());
        reseal(&mut b);
        b
    };
    let b = with_count(4);
    let (batch, _) = RecordBatch::parse(&b).unwrap();
    assert_eq!(
        batch.records(),
        Err(BatchError::RecordCountMismatch {
            declared: 4,
            found: 3
        })
    );
    let b = with_count(2);
    let (batch, _) = RecordBatch::parse(&b).unwrap();
    assert!(matches!(
        batch.records(),
        Err(BatchError::Decode(DecodeError::TrailingBytes(_)))
    ));
    let b = with_count(-1);
    let (batch, _) = RecordBatch::parse(&b).unwrap();
    assert_eq!(batch.records(), Err(BatchError::InvalidRecordCount(-1)));
}

use crate::protocol::codec::DecodeError;

#[test]
fn a_huge_record_count_does_not_allocate_for_it() {
    let mut b = RecordBatchBuilder::new(Compression::None, None)
        .build(ProducerState::NONE)
        .to_vec();
    b[57..61].copy_from_slice(&i32::MAX.to_be_bytes());
    reseal(&mut b);
    let (batch, _) = RecordBatch::parse(&b).unwrap();
    assert!(matches!(
        batch.records(),
        Err(BatchError::RecordCountMismatch { found: 0, .. })
    ));
}

#[test]
fn decompression_bound_rejects_a_batch_that_inflates_past_the_limit() {
    let inputs = [input(0, None, Some(vec![0; 200_000]), vec![])];
    for codec in CODECS.into_iter().skip(1).filter(|c| c.is_available()) {
        let bytes = build(codec, &inputs, ProducerState::NONE);
        let (batch, _) = RecordBatch::parse(&bytes).unwrap();
        assert!(
            bytes.len() < 20_000,
            "{codec:?} compressed to {}",
            bytes.len()
        );
        assert!(matches!(
            batch.records_with_limit(100_000),
            Err(BatchError::DecompressedTooLarge { .. })
        ));
        assert_eq!(batch.records_with_limit(300_000).unwrap().len(), 1);
    }
}

/// xorshift64*: a fixed-seed PRNG, so that every fuzz run checks the same cases.
struct XorShift(u64);

impl XorShift {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// Parses and decodes without panicking; the result itself does not matter.
fn parse_and_decode(buf: &[u8]) {
    if let Ok((batch, _)) = RecordBatch::parse(buf) {
        let _ = batch.records_with_limit(1 << 20);
    }
}

#[test]
fn random_bytes_never_panic_the_reader() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let valid = build(
        Compression::None,
        &varied_inputs()[..5],
        ProducerState::NONE,
    );
    for case in 0..24_000 {
        match case % 3 {
            // Pure noise: almost always stopped by the length, magic or CRC check.
            0 => {
                let n = rng.below(200);
                parse_and_decode(&rng.bytes(n));
            }
            // A valid header over a noise records section, resealed so the CRC passes and
            // the record decoder and decompressors see the noise.
            1 => {
                let n = rng.below(300);
                let mut b = valid[..HEADER_SIZE].to_vec();
                b.extend(rng.bytes(n));
                let len = (b.len() - 12) as i32;
                b[8..12].copy_from_slice(&len.to_be_bytes());
                b[22] = (rng.below(5)) as u8; // codec
                let count = (rng.next() as i32) % 8;
                b[57..61].copy_from_slice(&count.to_be_bytes());
                reseal(&mut b);
                parse_and_decode(&b);
            }
            // A valid batch with a few mutated bytes, resealed.
            _ => {
                let mut b = valid.to_vec();
                for _ in 0..1 + rng.below(4) {
                    let i = HEADER_SIZE + rng.below(b.len() - HEADER_SIZE);
                    b[i] = rng.next() as u8;
                }
                reseal(&mut b);
                parse_and_decode(&b);
            }
        }
    }
}

#[cfg(not(feature = "zstd"))]
#[test]
fn zstd_without_its_feature_is_a_typed_error_and_builds_uncompressed() {
    let mut out = Vec::new();
    assert_eq!(
        compression::compress(Compression::Zstd, None, b"x", &mut out),
        Err(BatchError::CodecUnavailable(Compression::Zstd))
    );
    assert_eq!(
        compression::decompress(Compression::Zstd, b"x", 100),
        Err(BatchError::CodecUnavailable(Compression::Zstd))
    );
    let bytes = build(
        Compression::Zstd,
        &varied_inputs()[..2],
        ProducerState::NONE,
    );
    let (batch, _) = RecordBatch::parse(&bytes).unwrap();
    assert_eq!(batch.compression(), Compression::None);
    assert_eq!(batch.records().unwrap().len(), 2);
}

#[test]
fn the_transactional_flag_is_written_and_rewritten_with_a_valid_crc() {
    for codec in CODECS.into_iter().filter(|c| c.is_available()) {
        let state = ProducerState {
            producer_id: 42,
            producer_epoch: 3,
            base_sequence: 0,
            transactional: true,
        };
        let bytes = build(codec, &varied_inputs()[..3], state);
        let (parsed, _) = RecordBatch::parse(&bytes).unwrap();
        assert!(parsed.is_transactional());
        assert_eq!(parsed.compression(), codec, "the codec bits are kept");
        assert_eq!(parsed.producer_state(), state);
        let mut batch = bytes.to_vec();
        let plain = ProducerState {
            transactional: false,
            ..state
        };
        set_producer_state(&mut batch, plain);
        let (parsed, _) = RecordBatch::parse(&batch).unwrap();
        assert!(!parsed.is_transactional());
        assert_eq!(parsed.compression(), codec);
        set_producer_state(&mut batch, state);
        let (parsed, _) = RecordBatch::parse(&batch).unwrap();
        assert!(parsed.is_transactional());
        assert_eq!(parsed.records().unwrap().len(), 3);
    }
}

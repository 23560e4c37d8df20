//! The record batch codecs: compression of the records section and its bounded inverse.
//!
//! What each codec writes is what Java's producer writes, so that every broker and consumer
//! reads it:
//!
//! - gzip: one gzip member (flate2, pure-Rust backend).
//! - snappy: the xerial stream framing of snappy-java's `SnappyOutputStream`, which Kafka's
//!   Java client uses: a 16-byte header (`\x82SNAPPY\0`, version 1, compatible version 1, as
//!   big-endian i32s) then blocks of `[i32 BE compressed length][raw snappy block]`, each
//!   compressing at most 32 KiB. Readers accept the xerial framing and plain raw snappy, as
//!   Java and librdkafka do.
//! - lz4: an LZ4 frame as Kafka's `Lz4BlockOutputStream` writes it: independent 64 KiB blocks,
//!   no block checksums, no content size, no content checksum (Java rejects dependent blocks).
//! - zstd: one zstd frame with its content size (behind the `zstd` feature).
//!
//! Decompression is bounded by a caller-given limit so that a hostile batch cannot make the
//! reader allocate without bound.

use std::io::{Read, Write};

use super::BatchError;

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

impl Compression {
    /// The codec id stored in bits 0–2 of the batch attributes.
    pub fn codec_id(self) -> u8 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// The codec named by bits 0–2 of batch `attributes`.
    pub(crate) fn from_attributes(attributes: i16) -> Result<Compression, BatchError> {
        match (attributes & 0x07) as u8 {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            id => Err(BatchError::UnknownCodec(id)),
        }
    }

    /// The `compression.type` name of the codec.
    pub fn name(self) -> &'static str {
        match self {
            Compression::None => "none",
            Compression::Gzip => "gzip",
            Compression::Snappy => "snappy",
            Compression::Lz4 => "lz4",
            Compression::Zstd => "zstd",
        }
    }

    /// Whether this build can compress and decompress with the codec (zstd needs the `zstd`
    /// feature). Configuration should reject an unavailable codec up front.
    pub fn is_available(self) -> bool {
        self != Compression::Zstd || cfg!(feature = "zstd")
    }
}

/// gzip level when none is configured; Java's -1 means zlib's default, which is 6.
const GZIP_DEFAULT_LEVEL: i32 = 6;
/// zstd level when none is configured (Java's default too).
#[cfg_attr(not(feature = "zstd"), allow(dead_code))]
const ZSTD_DEFAULT_LEVEL: i32 = 3;
/// snappy-java's stream header: magic, version 1, minimum compatible version 1.
pub(crate) const XERIAL_HEADER: [u8; 16] = *b"\x82SNAPPY\x00\x00\x00\x00\x01\x00\x00\x00\x01";
/// snappy-java's `SnappyOutputStream` default block size.
const XERIAL_BLOCK_SIZE: usize = 32 * 1024;

/// Appends `input` compressed with `codec` to `out`.
///
/// `level` follows Java's `compression.<codec>.level`: gzip 1–9 (default and -1: 6), zstd
/// within zstd's range (default 3); out-of-range levels are clamped. lz4 and snappy have no
/// level here: lz4_flex has one speed, the same fast compressor Java uses at its default lz4
/// level, 9 (Java's higher levels use LZ4 HC), so the config refuses any other
/// `compression.lz4.level`.
pub(crate) fn compress(
    codec: Compression,
    level: Option<i32>,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), BatchError> {
    match codec {
        Compression::None => out.extend_from_slice(input),
        Compression::Gzip => gzip_compress(level, input, out),
        Compression::Snappy => xerial_compress(input, out),
        Compression::Lz4 => lz4_compress(input, out),
        Compression::Zstd => zstd_compress(level, input, out)?,
    }
    Ok(())
}

/// Decompresses `input`, failing once the output would exceed `limit` bytes.
pub(crate) fn decompress(
    codec: Compression,
    input: &[u8],
    limit: usize,
) -> Result<Vec<u8>, BatchError> {
    match codec {
        Compression::None if input.len() > limit => {
            Err(BatchError::DecompressedTooLarge { codec, limit })
        }
        Compression::None => Ok(input.to_vec()),
        Compression::Gzip => read_bounded(codec, flate2::read::MultiGzDecoder::new(input), limit),
        Compression::Snappy if input.starts_with(&XERIAL_HEADER[..8]) => {
            xerial_decompress(input, limit)
        }
        Compression::Snappy => snappy_raw_decompress(input, limit, Vec::new()),
        Compression::Lz4 => read_bounded(codec, lz4_flex::frame::FrameDecoder::new(input), limit),
        Compression::Zstd => zstd_decompress(input, limit),
    }
}

fn gzip_compress(level: Option<i32>, input: &[u8], out: &mut Vec<u8>) {
    let level = match level {
        None | Some(-1) => GZIP_DEFAULT_LEVEL,
        Some(l) => l.clamp(1, 9),
    };
    let mut enc = flate2::write::GzEncoder::new(out, flate2::Compression::new(level as u32));
    // Writing into a Vec cannot fail.
    enc.write_all(input).expect("writing to a Vec never fails");
    enc.finish().expect("writing to a Vec never fails");
}

fn xerial_compress(input: &[u8], out: &mut Vec<u8>) {
    let mut encoder = snap::raw::Encoder::new();
    out.reserve(
        XERIAL_HEADER.len() + snap::raw::max_compress_len(input.len().min(XERIAL_BLOCK_SIZE)),
    );
    out.extend_from_slice(&XERIAL_HEADER);
    for block in input.chunks(XERIAL_BLOCK_SIZE) {
        let len_at = out.len();
        let start = len_at + 4;
        out.resize(start + snap::raw::max_compress_len(block.len()), 0);
        // A block of at most 32 KiB into a buffer of max_compress_len cannot fail.
        let n = encoder
            .compress(block, &mut out[start..])
            .expect("snappy compresses a 32 KiB block into max_compress_len bytes");
        out.truncate(start + n);
        out[len_at..start].copy_from_slice(&(n as u32).to_be_bytes());
    }
}

fn lz4_compress(input: &[u8], out: &mut Vec<u8>) {
    use lz4_flex::frame::{BlockMode, BlockSize, FrameEncoder, FrameInfo};
    let info = FrameInfo::new()
        .block_size(BlockSize::Max64KB)
        .block_mode(BlockMode::Independent)
        .block_checksums(false)
        .content_checksum(false);
    let mut enc = FrameEncoder::with_frame_info(info, out);
    enc.write_all(input).expect("writing to a Vec never fails");
    enc.finish().expect("writing to a Vec never fails");
}

#[cfg(feature = "zstd")]
fn zstd_compress(level: Option<i32>, input: &[u8], out: &mut Vec<u8>) -> Result<(), BatchError> {
    let range = zstd::compression_level_range();
    let level = level
        .unwrap_or(ZSTD_DEFAULT_LEVEL)
        .clamp(*range.start(), *range.end());
    // Pledging the size writes it into the frame, which also caps the window at the content
    // size, so that bounded readers (ours included) accept frames of any level.
    let run = |out: &mut Vec<u8>| -> std::io::Result<()> {
        let mut enc = zstd::stream::Encoder::new(out, level)?;
        enc.set_pledged_src_size(Some(input.len() as u64))?;
        enc.include_contentsize(true)?;
        enc.write_all(input)?;
        enc.finish().map(drop)
    };
    run(out).map_err(|e| BatchError::Compress {
        codec: Compression::Zstd,
        reason: e.to_string(),
    })
}

#[cfg(not(feature = "zstd"))]
fn zstd_compress(_: Option<i32>, _: &[u8], _: &mut Vec<u8>) -> Result<(), BatchError> {
    Err(BatchError::CodecUnavailable(Compression::Zstd))
}

#[cfg(feature = "zstd")]
fn zstd_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    let codec = Compression::Zstd;
    let fail = |e: std::io::Error| BatchError::Decompress {
        codec,
        reason: e.to_string(),
    };
    let mut dec = zstd::stream::read::Decoder::with_buffer(input).map_err(fail)?;
    // zstd sizes its window from the frame header; cap it near the output limit (never
    // below 8 MiB, what zstd's own levels ≤ 19 choose for streams of unknown size) so that a
    // hostile header cannot make it allocate 128 MiB for a small limit.
    let window_log = usize::BITS - limit.max(1).leading_zeros();
    dec.window_log_max(window_log.clamp(23, 27)).map_err(fail)?;
    read_bounded(codec, dec, limit)
}

#[cfg(not(feature = "zstd"))]
fn zstd_decompress(_: &[u8], _: usize) -> Result<Vec<u8>, BatchError> {
    Err(BatchError::CodecUnavailable(Compression::Zstd))
}

/// Reads a decompressing reader to its end, failing past `limit` bytes of output.
fn read_bounded(codec: Compression, r: impl Read, limit: usize) -> Result<Vec<u8>, BatchError> {
    let mut out = Vec::new();
    let cap = (limit as u64).saturating_add(1);
    r.take(cap)
        .read_to_end(&mut out)
        .map_err(|e| BatchError::Decompress {
            codec,
            reason: e.to_string(),
        })?;
    if out.len() > limit {
        return Err(BatchError::DecompressedTooLarge { codec, limit });
    }
    Ok(out)
}

fn snappy_error(e: snap::Error) -> BatchError {
    BatchError::Decompress {
        codec: Compression::Snappy,
        reason: e.to_string(),
    }
}

/// The most a raw snappy block expands: its densest element, a copy with a 2-byte offset,
/// writes at most 64 bytes from 3 (about 21.3 times); literals never expand.
const SNAPPY_MAX_EXPANSION: usize = 22;

/// Decompresses one raw snappy block, appending to `out`, after checking its declared
/// length against what is left of `limit`.
fn snappy_raw_decompress(
    block: &[u8],
    limit: usize,
    mut out: Vec<u8>,
) -> Result<Vec<u8>, BatchError> {
    let n = snap::raw::decompress_len(block).map_err(snappy_error)?;
    // The output buffer is zero-filled before decoding, so a length no block of this size
    // can hold is refused first: else 5 bytes could make the reader zero `limit` bytes.
    if n > block.len().saturating_mul(SNAPPY_MAX_EXPANSION) {
        return Err(BatchError::Decompress {
            codec: Compression::Snappy,
            reason: format!(
                "a {}-byte snappy block claims {n} bytes, more than snappy can encode in it",
                block.len()
            ),
        });
    }
    if n > limit.saturating_sub(out.len()) {
        return Err(BatchError::DecompressedTooLarge {
            codec: Compression::Snappy,
            limit,
        });
    }
    let start = out.len();
    out.resize(start + n, 0);
    let written = snap::raw::Decoder::new()
        .decompress(block, &mut out[start..])
        .map_err(snappy_error)?;
    out.truncate(start + written);
    Ok(out)
}

/// Decompresses snappy-java's stream framing (see the module documentation).
fn xerial_decompress(input: &[u8], limit: usize) -> Result<Vec<u8>, BatchError> {
    use crate::protocol::codec::{DecodeError, Reader};
    let mut r = Reader::new(input);
    r.take(8)?; // the magic, checked by the caller
    let (_version, _compatible) = (r.i32()?, r.i32()?);
    let mut out = Vec::new();
    while r.remaining() > 0 {
        let len = r.i32()?;
        let len = usize::try_from(len).map_err(|_| DecodeError::InvalidLength {
            what: "xerial snappy block",
            length: i64::from(len),
            remaining: r.remaining(),
        })?;
        out = snappy_raw_decompress(r.take(len)?, limit, out)?;
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample(n: usize) -> Vec<u8> {
        (0..n)
            .map(|i| b"kafka record batch "[i % 19] ^ (i / 977) as u8)
            .collect()
    }

    #[test]
    fn every_available_codec_round_trips_empty_small_and_multi_block_input() {
        for codec in ALL.into_iter().filter(|c| c.is_available()) {
            for n in [0, 1, 100, XERIAL_BLOCK_SIZE, 200_000] {
                let input = sample(n);
                let mut out = Vec::new();
                compress(codec, None, &input, &mut out).unwrap();
                assert_eq!(
                    decompress(codec, &out, 1 << 20).unwrap(),
                    input,
                    "{codec:?} {n}"
                );
            }
        }
    }

    #[test]
    fn snappy_reads_the_densest_blocks_and_refuses_denser_claims() {
        // Zeros compress as densely as snappy can: 64-byte copies of 3 bytes each.
        for n in [64, 4096, XERIAL_BLOCK_SIZE, 1 << 20] {
            let zeros = vec![0u8; n];
            let raw = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
            // Over 20 times smaller: within a hair of the 21.3 bound.
            assert!(
                n < 4096 || raw.len() * 20 < n,
                "{n} zeros: {} bytes",
                raw.len()
            );
            let got = decompress(Compression::Snappy, &raw, 2 << 20).unwrap();
            assert_eq!(got, zeros, "raw {n}");
            let mut xerial = Vec::new();
            compress(Compression::Snappy, None, &zeros, &mut xerial).unwrap();
            let got = decompress(Compression::Snappy, &xerial, 2 << 20).unwrap();
            assert_eq!(got, zeros, "xerial {n}");
        }
        // A 6-byte block claiming 60 MiB.
        let mut claim = Vec::new();
        let mut n = 60u32 << 20;
        while n >= 0x80 {
            claim.push(n as u8 | 0x80);
            n >>= 7;
        }
        claim.extend_from_slice(&[n as u8, 0x00, 0x00]);
        assert!(matches!(
            decompress(Compression::Snappy, &claim, 64 << 20),
            Err(BatchError::Decompress { .. })
        ));
    }

    #[test]
    fn codec_ids_round_trip_through_attributes_and_reject_5_to_7() {
        for codec in ALL {
            let attrs = 0x30 | i16::from(codec.codec_id());
            assert_eq!(Compression::from_attributes(attrs).unwrap(), codec);
        }
        for id in 5..=7 {
            assert_eq!(
                Compression::from_attributes(id),
                Err(BatchError::UnknownCodec(id as u8))
            );
        }
    }

    #[test]
    fn xerial_snappy_starts_with_the_snappy_java_header_and_32k_blocks() {
        let input = sample(XERIAL_BLOCK_SIZE + 10);
        let mut out = Vec::new();
        compress(Compression::Snappy, None, &input, &mut out).unwrap();
        assert_eq!(&out[..8], b"\x82SNAPPY\x00");
        assert_eq!(&out[8..16], [0, 0, 0, 1, 0, 0, 0, 1]);
        let first = u32::from_be_bytes(out[16..20].try_into().unwrap()) as usize;
        let block = &out[20..20 + first];
        assert_eq!(snap::raw::decompress_len(block).unwrap(), XERIAL_BLOCK_SIZE);
    }

    #[test]
    fn snappy_reader_accepts_raw_snappy_without_framing() {
        let input = sample(5000);
        let raw = snap::raw::Encoder::new().compress_vec(&input).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, 1 << 20).unwrap(),
            input
        );
    }

    #[test]
    fn lz4_frame_has_the_header_java_writes() {
        let mut out = Vec::new();
        compress(Compression::Lz4, None, b"hello hello hello", &mut out).unwrap();
        assert_eq!(&out[..4], [0x04, 0x22, 0x4d, 0x18], "LZ4 frame magic");
        // FLG: version 01, independent blocks, no checksums, no content size.
        assert_eq!(out[4], 0b0110_0000);
        // BD: 64 KiB maximum block size.
        assert_eq!(out[5], 0x40);
    }

    #[test]
    fn decompression_stops_at_the_limit() {
        let input = vec![0u8; 100_000];
        for codec in ALL.into_iter().filter(|c| c.is_available()) {
            let mut out = Vec::new();
            compress(codec, None, &input, &mut out).unwrap();
            assert_eq!(
                decompress(codec, &out, 99_999),
                Err(BatchError::DecompressedTooLarge {
                    codec,
                    limit: 99_999
                }),
                "{codec:?}"
            );
            assert_eq!(decompress(codec, &out, 100_000).unwrap().len(), 100_000);
        }
    }

    #[test]
    fn gzip_and_zstd_levels_are_clamped_not_rejected() {
        let input = sample(10_000);
        for codec in [Compression::Gzip, Compression::Zstd]
            .into_iter()
            .filter(|c| c.is_available())
        {
            for level in [i32::MIN, -1, 0, 1, 9, 100, i32::MAX] {
                let mut out = Vec::new();
                compress(codec, Some(level), &input, &mut out).unwrap();
                assert_eq!(decompress(codec, &out, 1 << 20).unwrap(), input);
            }
        }
    }

    #[test]
    fn corrupt_compressed_input_is_an_error_not_a_panic() {
        for codec in ALL
            .into_iter()
            .filter(|c| *c != Compression::None && c.is_available())
        {
            let mut out = Vec::new();
            compress(codec, None, &sample(3000), &mut out).unwrap();
            for cut in 0..out.len() {
                let _ = decompress(codec, &out[..cut], 1 << 20);
            }
            for i in 0..out.len() {
                let mut bad = out.clone();
                bad[i] ^= 0x5a;
                let _ = decompress(codec, &bad, 1 << 20);
            }
        }
    }
}

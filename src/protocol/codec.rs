//! Wire primitives of the Kafka protocol: an infallible writer and a bounded reader.
//!
//! Encoding appends to a `Vec<u8>` and cannot fail. Decoding reads from a [`Reader`] over a
//! borrowed frame: every read checks the bytes left, every length and element count is
//! checked against the bytes left before anything is allocated, and [`Reader::finish`]
//! rejects trailing data. Nothing here panics on any input.
//!
//! Names follow the protocol guide's type names: `INT8` … `INT64`, `UINT32`, `VARINT`
//! (zigzag), `VARLONG` (zigzag), `UNSIGNED_VARINT`, `UUID`, `STRING`, `NULLABLE_STRING`,
//! `COMPACT_STRING`, `COMPACT_NULLABLE_STRING`, `BYTES`, `COMPACT_BYTES`, `ARRAY`,
//! `COMPACT_ARRAY`, and tagged-field sections (KIP-482).

use std::fmt;

/// Why a frame could not be decoded. Decoding is total: any input gives a value or this.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The frame ended before a field was complete.
    #[error("truncated frame: needed {needed} more bytes but only {remaining} remain")]
    Truncated {
        /// Bytes the field needed.
        needed: usize,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A length or count field is negative (other than the null marker) or larger than
    /// what remains of the frame.
    #[error("invalid length {length} for {what} ({remaining} bytes remain)")]
    InvalidLength {
        /// The field being read.
        what: &'static str,
        /// The length found on the wire.
        length: i64,
        /// Bytes that were left.
        remaining: usize,
    },
    /// A null marker where the field may not be null.
    #[error("unexpected null {0}")]
    UnexpectedNull(&'static str),
    /// A string that is not valid UTF-8.
    #[error("string field is not valid UTF-8")]
    InvalidUtf8,
    /// A varint longer than its type allows.
    #[error("varint is longer than {0} bytes")]
    VarintTooLong(usize),
    /// Bytes left over after the last field of a frame or section.
    #[error("{0} trailing bytes after the last field")]
    TrailingBytes(usize),
    /// A field holds a value the protocol does not allow.
    #[error("invalid value for {what}: {value}")]
    InvalidValue {
        /// The field.
        what: &'static str,
        /// The value found.
        value: i64,
    },
    /// The response does not belong to the API or version that was requested.
    #[error("unsupported API key {api_key} version {version}")]
    UnsupportedVersion {
        /// API key.
        api_key: i16,
        /// API version.
        version: i16,
    },
}

/// Result of a decode step.
pub type DecodeResult<T> = Result<T, DecodeError>;

/// Appends Kafka wire types to a byte vector. Writing cannot fail.
///
/// Implemented for `Vec<u8>`, the one buffer type the protocol layer encodes into.
pub trait Writer {
    /// `INT8`.
    fn put_i8(&mut self, v: i8);
    /// `INT16`, big-endian.
    fn put_i16(&mut self, v: i16);
    /// `INT32`, big-endian.
    fn put_i32(&mut self, v: i32);
    /// `INT64`, big-endian.
    fn put_i64(&mut self, v: i64);
    /// `UINT32`, big-endian.
    fn put_u32(&mut self, v: u32);
    /// `BOOLEAN`.
    fn put_bool(&mut self, v: bool);
    /// Raw bytes with no length prefix.
    fn put_raw(&mut self, v: &[u8]);
    /// `UNSIGNED_VARINT`: 7 bits a byte, least significant group first.
    fn put_uvarint(&mut self, v: u32);
    /// Unsigned 64-bit varint (the building block of `VARLONG`).
    fn put_uvarlong(&mut self, v: u64);
    /// `VARINT`: zigzag-encoded signed 32-bit value.
    fn put_varint(&mut self, v: i32) {
        self.put_uvarint(((v << 1) ^ (v >> 31)) as u32)
    }
    /// `VARLONG`: zigzag-encoded signed 64-bit value.
    fn put_varlong(&mut self, v: i64) {
        self.put_uvarlong(((v << 1) ^ (v >> 63)) as u64)
    }
    /// `UUID`: 16 raw bytes.
    fn put_uuid(&mut self, v: &[u8; 16]) {
        self.put_raw(v)
    }
    /// `STRING` (INT16 length; flexible = false) or `COMPACT_STRING` (flexible = true).
    fn put_string(&mut self, v: &str, flexible: bool) {
        self.put_nullable_string(Some(v), flexible)
    }
    /// `NULLABLE_STRING` or `COMPACT_NULLABLE_STRING`.
    fn put_nullable_string(&mut self, v: Option<&str>, flexible: bool);
    /// `BYTES` (INT32 length) or `COMPACT_BYTES` (UNSIGNED_VARINT length + 1).
    fn put_bytes(&mut self, v: &[u8], flexible: bool) {
        self.put_nullable_bytes(Some(v), flexible)
    }
    /// `NULLABLE_BYTES` or `COMPACT_NULLABLE_BYTES`.
    fn put_nullable_bytes(&mut self, v: Option<&[u8]>, flexible: bool);
    /// The length prefix of an `ARRAY` (INT32) or `COMPACT_ARRAY` (UNSIGNED_VARINT n + 1).
    fn put_array_len(&mut self, n: usize, flexible: bool) {
        if flexible {
            self.put_uvarint(len_u32(n) + 1)
        } else {
            self.put_i32(len_i32(n))
        }
    }
    /// The null marker of a nullable array.
    fn put_null_array(&mut self, flexible: bool) {
        if flexible {
            self.put_uvarint(0)
        } else {
            self.put_i32(-1)
        }
    }
    /// A tagged-field section with no fields (written when `flexible`, nothing otherwise).
    fn put_empty_tagged_fields(&mut self, flexible: bool) {
        if flexible {
            self.put_uvarint(0)
        }
    }
}

/// Wire lengths are at most `i32::MAX`; a caller handing more has broken an invariant that
/// the producer enforces long before encoding (max.request.size), so saturate rather than
/// wrap into a negative (null) marker.
fn len_i32(n: usize) -> i32 {
    i32::try_from(n).unwrap_or(i32::MAX)
}

fn len_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX - 1).min(u32::MAX - 1)
}

impl Writer for Vec<u8> {
    fn put_i8(&mut self, v: i8) {
        self.push(v as u8)
    }
    fn put_i16(&mut self, v: i16) {
        self.extend_from_slice(&v.to_be_bytes())
    }
    fn put_i32(&mut self, v: i32) {
        self.extend_from_slice(&v.to_be_bytes())
    }
    fn put_i64(&mut self, v: i64) {
        self.extend_from_slice(&v.to_be_bytes())
    }
    fn put_u32(&mut self, v: u32) {
        self.extend_from_slice(&v.to_be_bytes())
    }
    fn put_bool(&mut self, v: bool) {
        self.push(v as u8)
    }
    fn put_raw(&mut self, v: &[u8]) {
        self.extend_from_slice(v)
    }
    fn put_uvarint(&mut self, v: u32) {
        self.put_uvarlong(u64::from(v))
    }
    fn put_uvarlong(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.push(v as u8)
    }
    fn put_nullable_bytes(&mut self, v: Option<&[u8]>, flexible: bool) {
        match (v, flexible) {
            (None, true) => self.put_uvarint(0),
            (None, false) => self.put_i32(-1),
            (Some(b), true) => {
                self.put_uvarint(len_u32(b.len()) + 1);
                self.put_raw(b)
            }
            (Some(b), false) => {
                self.put_i32(len_i32(b.len()));
                self.put_raw(b)
            }
        }
    }
    // Strings have an INT16 length when not flexible, unlike bytes.
    fn put_nullable_string(&mut self, v: Option<&str>, flexible: bool) {
        match (v, flexible) {
            (None, true) => self.put_uvarint(0),
            (None, false) => self.put_i16(-1),
            (Some(s), true) => {
                self.put_uvarint(len_u32(s.len()) + 1);
                self.put_raw(s.as_bytes())
            }
            (Some(s), false) => {
                self.put_i16(i16::try_from(s.len()).unwrap_or(i16::MAX));
                self.put_raw(s.as_bytes())
            }
        }
    }
}

/// Number of bytes [`Writer::put_uvarlong`] writes for `v`.
pub fn uvarlong_len(v: u64) -> usize {
    // 1 byte per started group of 7 bits, at least 1.
    let bits = 64 - (v | 1).leading_zeros() as usize;
    bits.div_ceil(7)
}

/// Number of bytes [`Writer::put_varint`] writes for `v`.
pub fn varint_len(v: i32) -> usize {
    uvarlong_len(u64::from(((v << 1) ^ (v >> 31)) as u32))
}

/// Number of bytes [`Writer::put_varlong`] writes for `v`.
pub fn varlong_len(v: i64) -> usize {
    uvarlong_len(((v << 1) ^ (v >> 63)) as u64)
}

/// A bounded cursor over one frame (or one section of it).
///
/// Every read checks the bytes left first; lengths and counts are validated against the bytes
/// left before any allocation, so a hostile length can never make the decoder allocate more
/// than the frame it was given.
#[derive(Clone)]
pub struct Reader<'a> {
    buf: &'a [u8],
}

impl fmt::Debug for Reader<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Reader")
            .field("remaining", &self.buf.len())
            .finish()
    }
}

impl<'a> Reader<'a> {
    /// A reader over `buf`.
    pub fn new(buf: &'a [u8]) -> Self {
        Reader { buf }
    }

    /// Bytes not yet read.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The unread bytes, without consuming them.
    pub fn rest(&self) -> &'a [u8] {
        self.buf
    }

    /// Fails with [`DecodeError::TrailingBytes`] unless every byte was read.
    pub fn finish(&self) -> DecodeResult<()> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(DecodeError::TrailingBytes(self.buf.len()))
        }
    }

    /// Takes the next `n` bytes.
    pub fn take(&mut self, n: usize) -> DecodeResult<&'a [u8]> {
        if n > self.buf.len() {
            return Err(DecodeError::Truncated {
                needed: n,
                remaining: self.buf.len(),
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// A reader over the next `n` bytes, which this reader skips.
    pub fn sub(&mut self, n: usize) -> DecodeResult<Reader<'a>> {
        self.take(n).map(Reader::new)
    }

    fn array<const N: usize>(&mut self) -> DecodeResult<[u8; N]> {
        let b = self.take(N)?;
        let mut out = [0u8; N];
        out.copy_from_slice(b);
        Ok(out)
    }

    /// `INT8`.
    pub fn i8(&mut self) -> DecodeResult<i8> {
        Ok(self.array::<1>()?[0] as i8)
    }
    /// `INT16`.
    pub fn i16(&mut self) -> DecodeResult<i16> {
        self.array().map(i16::from_be_bytes)
    }
    /// `INT32`.
    pub fn i32(&mut self) -> DecodeResult<i32> {
        self.array().map(i32::from_be_bytes)
    }
    /// `INT64`.
    pub fn i64(&mut self) -> DecodeResult<i64> {
        self.array().map(i64::from_be_bytes)
    }
    /// `UINT32`.
    pub fn u32(&mut self) -> DecodeResult<u32> {
        self.array().map(u32::from_be_bytes)
    }
    /// `BOOLEAN` (any non-zero byte is true, as in Java).
    pub fn bool(&mut self) -> DecodeResult<bool> {
        Ok(self.array::<1>()?[0] != 0)
    }
    /// `UUID`.
    pub fn uuid(&mut self) -> DecodeResult<[u8; 16]> {
        self.array()
    }

    /// Unsigned varint of at most `max_bytes` bytes.
    fn uvar(&mut self, max_bytes: usize) -> DecodeResult<u64> {
        let mut value = 0u64;
        for i in 0..max_bytes {
            let byte = self.array::<1>()?[0];
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                return Ok(value);
            }
        }
        Err(DecodeError::VarintTooLong(max_bytes))
    }

    /// `UNSIGNED_VARINT` (at most 5 bytes; bits above 32 are rejected).
    pub fn uvarint(&mut self) -> DecodeResult<u32> {
        let v = self.uvar(5)?;
        u32::try_from(v).map_err(|_| DecodeError::VarintTooLong(5))
    }
    /// Unsigned varlong (at most 10 bytes).
    pub fn uvarlong(&mut self) -> DecodeResult<u64> {
        self.uvar(10)
    }
    /// `VARINT` (zigzag).
    pub fn varint(&mut self) -> DecodeResult<i32> {
        let u = self.uvarint()?;
        Ok(((u >> 1) as i32) ^ -((u & 1) as i32))
    }
    /// `VARLONG` (zigzag).
    pub fn varlong(&mut self) -> DecodeResult<i64> {
        let u = self.uvarlong()?;
        Ok(((u >> 1) as i64) ^ -((u & 1) as i64))
    }

    /// Checks a decoded length (`None` = the null marker) against the bytes left.
    fn checked_len(&self, what: &'static str, len: i64) -> DecodeResult<Option<usize>> {
        if len == -1 {
            return Ok(None);
        }
        if len < 0 || len as u64 > self.buf.len() as u64 {
            return Err(DecodeError::InvalidLength {
                what,
                length: len,
                remaining: self.buf.len(),
            });
        }
        Ok(Some(len as usize))
    }

    /// `NULLABLE_BYTES` or `COMPACT_NULLABLE_BYTES`.
    pub fn nullable_bytes(&mut self, flexible: bool) -> DecodeResult<Option<&'a [u8]>> {
        let len = if flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        match self.checked_len("bytes", len)? {
            None => Ok(None),
            Some(n) => self.take(n).map(Some),
        }
    }
    /// `BYTES` or `COMPACT_BYTES`.
    pub fn bytes(&mut self, flexible: bool) -> DecodeResult<&'a [u8]> {
        self.nullable_bytes(flexible)?
            .ok_or(DecodeError::UnexpectedNull("bytes"))
    }

    /// `NULLABLE_STRING` or `COMPACT_NULLABLE_STRING`.
    pub fn nullable_str(&mut self, flexible: bool) -> DecodeResult<Option<&'a str>> {
        let len = if flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i16()?)
        };
        match self.checked_len("string", len)? {
            None => Ok(None),
            Some(n) => {
                let b = self.take(n)?;
                std::str::from_utf8(b)
                    .map(Some)
                    .map_err(|_| DecodeError::InvalidUtf8)
            }
        }
    }
    /// `STRING` or `COMPACT_STRING`.
    pub fn str(&mut self, flexible: bool) -> DecodeResult<&'a str> {
        self.nullable_str(flexible)?
            .ok_or(DecodeError::UnexpectedNull("string"))
    }
    /// `NULLABLE_STRING` as an owned `String`.
    pub fn nullable_string(&mut self, flexible: bool) -> DecodeResult<Option<String>> {
        Ok(self.nullable_str(flexible)?.map(str::to_owned))
    }
    /// `STRING` as an owned `String`.
    pub fn string(&mut self, flexible: bool) -> DecodeResult<String> {
        self.str(flexible).map(str::to_owned)
    }

    /// The element count of a nullable `ARRAY` / `COMPACT_ARRAY` (`None` for null).
    ///
    /// The count is checked against the bytes left assuming every element takes at least
    /// `min_element_size` bytes. Reserve room for the elements with
    /// [`vec_for`](Self::vec_for), which also bounds the memory by the bytes left.
    pub fn nullable_array_len(
        &mut self,
        flexible: bool,
        min_element_size: usize,
    ) -> DecodeResult<Option<usize>> {
        let len = if flexible {
            i64::from(self.uvarint()?) - 1
        } else {
            i64::from(self.i32()?)
        };
        if len == -1 {
            return Ok(None);
        }
        let min = min_element_size.max(1) as u64;
        if len < 0 || (len as u64).saturating_mul(min) > self.buf.len() as u64 {
            return Err(DecodeError::InvalidLength {
                what: "array",
                length: len,
                remaining: self.buf.len(),
            });
        }
        Ok(Some(len as usize))
    }
    /// The element count of a non-nullable array.
    pub fn array_len(&mut self, flexible: bool, min_element_size: usize) -> DecodeResult<usize> {
        self.nullable_array_len(flexible, min_element_size)?
            .ok_or(DecodeError::UnexpectedNull("array"))
    }

    /// An empty vector with room for up to `count` elements of `T`, where `count` came off
    /// the wire: never more than the bytes left could hold if each element took its decoded
    /// size.
    ///
    /// A count checked against the bytes left by its elements' *wire* minimum (as
    /// [`array_len`](Self::array_len) checks it) can still claim several times the input in
    /// memory: an empty Produce topic takes 3 bytes on the wire and 48 decoded, so a 100 MiB
    /// frame could reserve 1.6 GiB before its first element failed to decode. With this cap
    /// the reservation stays within the bytes left; a genuine count beyond it grows the
    /// vector as its elements decode. Every decoder reserves through here.
    pub fn vec_for<T>(&self, count: usize) -> Vec<T> {
        let fits = self.buf.len() / std::mem::size_of::<T>().max(1);
        Vec::with_capacity(count.min(fits))
    }

    /// Reads a whole array, decoding each element with `f`.
    pub fn array_of<T>(
        &mut self,
        flexible: bool,
        min_element_size: usize,
        mut f: impl FnMut(&mut Reader<'a>) -> DecodeResult<T>,
    ) -> DecodeResult<Vec<T>> {
        let n = self.array_len(flexible, min_element_size)?;
        let mut out = self.vec_for(n);
        for _ in 0..n {
            out.push(f(self)?);
        }
        Ok(out)
    }

    /// Reads a nullable array, decoding each element with `f`.
    pub fn nullable_array_of<T>(
        &mut self,
        flexible: bool,
        min_element_size: usize,
        mut f: impl FnMut(&mut Reader<'a>) -> DecodeResult<T>,
    ) -> DecodeResult<Option<Vec<T>>> {
        match self.nullable_array_len(flexible, min_element_size)? {
            None => Ok(None),
            Some(n) => {
                let mut out = self.vec_for(n);
                for _ in 0..n {
                    out.push(f(self)?);
                }
                Ok(Some(out))
            }
        }
    }

    /// Reads a tagged-field section when `flexible` (nothing otherwise).
    ///
    /// `known` is called with each tag and a reader bounded to that field's bytes; it returns
    /// `Ok(true)` when it decoded the field (which must then consume it whole) and `Ok(false)`
    /// to skip it. Unknown tags are skipped, as KIP-482 requires.
    pub fn tagged_fields(
        &mut self,
        flexible: bool,
        mut known: impl FnMut(u32, &mut Reader<'a>) -> DecodeResult<bool>,
    ) -> DecodeResult<()> {
        if !flexible {
            return Ok(());
        }
        let count = self.uvarint()?;
        if u64::from(count).saturating_mul(2) > self.buf.len() as u64 {
            return Err(DecodeError::InvalidLength {
                what: "tagged fields",
                length: i64::from(count),
                remaining: self.buf.len(),
            });
        }
        let mut last_tag: Option<u32> = None;
        for _ in 0..count {
            let tag = self.uvarint()?;
            if last_tag.is_some_and(|t| tag <= t) {
                return Err(DecodeError::InvalidValue {
                    what: "tag order",
                    value: i64::from(tag),
                });
            }
            last_tag = Some(tag);
            let size = self.uvarint()? as usize;
            let mut field = self.sub(size)?;
            if known(tag, &mut field)? {
                field.finish()?;
            }
        }
        Ok(())
    }

    /// Skips a tagged-field section whose fields are all unknown to the caller.
    pub fn skip_tagged_fields(&mut self, flexible: bool) -> DecodeResult<()> {
        self.tagged_fields(flexible, |_, _| Ok(false))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint_roundtrip(v: i32) -> (i32, usize) {
        let mut buf = Vec::new();
        buf.put_varint(v);
        assert_eq!(buf.len(), varint_len(v), "varint_len({v})");
        let mut r = Reader::new(&buf);
        let got = r.varint().unwrap();
        r.finish().unwrap();
        (got, buf.len())
    }

    #[test]
    fn varints_round_trip_at_their_edges() {
        for v in [0, 1, -1, 63, -64, 64, -65, i32::MAX, i32::MIN, 1 << 20] {
            assert_eq!(varint_roundtrip(v).0, v);
        }
        assert_eq!(varint_roundtrip(0).1, 1);
        assert_eq!(varint_roundtrip(-1).1, 1);
        assert_eq!(varint_roundtrip(i32::MAX).1, 5);
        assert_eq!(varint_roundtrip(i32::MIN).1, 5);
        for v in [0, 1, -1, i64::MAX, i64::MIN, i64::from(i32::MAX) + 1] {
            let mut buf = Vec::new();
            buf.put_varlong(v);
            assert_eq!(buf.len(), varlong_len(v));
            assert_eq!(Reader::new(&buf).varlong().unwrap(), v);
        }
        let mut buf = Vec::new();
        buf.put_varlong(i64::MIN);
        assert_eq!(buf.len(), 10);
    }

    #[test]
    fn varints_match_the_protocol_guide_bytes() {
        // zigzag: 0→0, -1→1, 1→2, -2→3; 300 → 0xac 0x02 as an unsigned varint.
        let enc = |v: i32| {
            let mut b = Vec::new();
            b.put_varint(v);
            b
        };
        assert_eq!(enc(0), [0x00]);
        assert_eq!(enc(-1), [0x01]);
        assert_eq!(enc(1), [0x02]);
        assert_eq!(enc(-2), [0x03]);
        assert_eq!(enc(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(enc(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        let mut b = Vec::new();
        b.put_uvarint(300);
        assert_eq!(b, [0xac, 0x02]);
    }

    #[test]
    fn rejects_overlong_and_truncated_varints() {
        assert_eq!(
            Reader::new(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x01]).uvarint(),
            Err(DecodeError::VarintTooLong(5))
        );
        // Five bytes whose value needs more than 32 bits.
        assert!(Reader::new(&[0xff, 0xff, 0xff, 0xff, 0x7f])
            .uvarint()
            .is_err());
        assert!(matches!(
            Reader::new(&[0x80]).varint(),
            Err(DecodeError::Truncated { .. })
        ));
        assert!(matches!(
            Reader::new(&[]).varlong(),
            Err(DecodeError::Truncated { .. })
        ));
    }

    #[test]
    fn strings_and_bytes_round_trip_in_both_encodings() {
        for flexible in [false, true] {
            let mut b = Vec::new();
            b.put_string("héllo", flexible);
            b.put_nullable_string(None, flexible);
            b.put_string("", flexible);
            b.put_bytes(b"\x00\x01", flexible);
            b.put_nullable_bytes(None, flexible);
            let mut r = Reader::new(&b);
            assert_eq!(r.str(flexible).unwrap(), "héllo");
            assert_eq!(r.nullable_str(flexible).unwrap(), None);
            assert_eq!(r.str(flexible).unwrap(), "");
            assert_eq!(r.bytes(flexible).unwrap(), b"\x00\x01");
            assert_eq!(r.nullable_bytes(flexible).unwrap(), None);
            r.finish().unwrap();
        }
    }

    #[test]
    fn rejects_lengths_beyond_the_frame() {
        let mut b = Vec::new();
        b.put_i32(1_000_000);
        b.put_raw(b"abc");
        assert!(matches!(
            Reader::new(&b).bytes(false),
            Err(DecodeError::InvalidLength { .. })
        ));
        let mut b = Vec::new();
        b.put_i32(i32::MAX);
        assert!(Reader::new(&b).array_len(false, 4).is_err());
        let mut b = Vec::new();
        b.put_i32(-2);
        assert!(Reader::new(&b).nullable_array_len(false, 1).is_err());
        assert!(Reader::new(&[0xff, 0xff]).str(false).is_err());
        assert_eq!(
            Reader::new(&[0xff, 0xff]).nullable_str(false).unwrap(),
            None
        );
    }

    #[test]
    fn rejects_invalid_utf8() {
        assert_eq!(
            Reader::new(&[0x00, 0x01, 0xff]).str(false),
            Err(DecodeError::InvalidUtf8)
        );
    }

    #[test]
    fn skips_unknown_tagged_fields_and_reads_known_ones() {
        let mut b = Vec::new();
        b.put_uvarint(2); // two fields
        b.put_uvarint(0);
        b.put_uvarint(4);
        b.put_i32(7);
        b.put_uvarint(9);
        b.put_uvarint(3);
        b.put_raw(b"xyz");
        b.put_i8(1);
        let mut r = Reader::new(&b);
        let mut seen = None;
        r.tagged_fields(true, |tag, f| {
            if tag == 0 {
                seen = Some(f.i32()?);
                Ok(true)
            } else {
                Ok(false)
            }
        })
        .unwrap();
        assert_eq!(seen, Some(7));
        assert_eq!(r.i8().unwrap(), 1);
        r.finish().unwrap();
    }

    #[test]
    fn rejects_a_known_tag_with_leftover_bytes() {
        let mut b = Vec::new();
        b.put_uvarint(1);
        b.put_uvarint(0);
        b.put_uvarint(5);
        b.put_i32(7);
        b.put_i8(0);
        let r = Reader::new(&b).tagged_fields(true, |_, f| f.i32().map(|_| true));
        assert_eq!(r, Err(DecodeError::TrailingBytes(1)));
    }

    #[test]
    fn decoding_every_prefix_never_panics() {
        let mut b = Vec::new();
        b.put_string("topic", true);
        b.put_varlong(-12345678901);
        b.put_array_len(3, false);
        for prefix in 0..b.len() {
            let mut r = Reader::new(&b[..prefix]);
            let ok = r.str(true).and_then(|_| r.varlong()).and_then(|_| r.i32());
            assert!(ok.is_err(), "prefix {prefix} decoded");
        }
    }
}

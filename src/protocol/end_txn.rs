//! EndTxn (key 26), versions 0–5; v3 is the first flexible version.
//!
//! Asks the transaction coordinator to commit or abort the producer's open transaction.
//!
//! Request: transactional_id STRING; producer_id INT64; producer_epoch INT16; committed
//! BOOLEAN; tagged fields from v3. v1 is the same as v0; v2 only adds the PRODUCER_FENCED
//! error code (KIP-588); v4 only adds TRANSACTION_ABORTABLE (KIP-890).
//!
//! Response: throttle_time_ms INT32; error_code INT16; producer_id INT64 (added in v5);
//! producer_epoch INT16 (added in v5); tagged fields from v3.
//!
//! v5 belongs to transaction protocol version 2 (KIP-890 part 2): the coordinator bumps
//! the producer epoch at the end of every transaction and answers with the id and epoch
//! the producer must use next. Java's client sends v5 only when the brokers' finalized
//! `transaction.version` feature is at least 2, and at most
//! [`LAST_VERSION_BEFORE_TRANSACTION_V2`] otherwise; the layer above chooses likewise.

use super::codec::{DecodeResult, Reader, Writer};
use super::{ApiKey, Request, Response, VersionRange};

const FIRST_FLEXIBLE: i16 = 3;

/// The highest version to send while transaction protocol version 2 (KIP-890 part 2) is
/// not enabled on the cluster.
pub const LAST_VERSION_BEFORE_TRANSACTION_V2: i16 = 4;

fn flexible(version: i16) -> bool {
    version >= FIRST_FLEXIBLE
}

/// An EndTxn request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndTxnRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id the coordinator assigned to the transactional id.
    pub producer_id: i64,
    /// The producer's current epoch.
    pub producer_epoch: i16,
    /// `true` to commit the transaction, `false` to abort it.
    pub committed: bool,
}

impl Request for EndTxnRequest {
    const API_KEY: ApiKey = ApiKey::END_TXN;
    const VERSIONS: VersionRange = VersionRange::new(0, 5);
    const FIRST_FLEXIBLE: i16 = FIRST_FLEXIBLE;
    type Response = EndTxnResponse;

    fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_string(&self.transactional_id, flexible);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_bool(self.committed);
        out.put_empty_tagged_fields(flexible);
    }
}

/// An EndTxn response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EndTxnResponse {
    /// How long the broker throttled the request.
    pub throttle_time_ms: i32,
    /// The error code (0 = none).
    pub error_code: i16,
    /// Added in v5: the producer id to use from now on; -1 before v5.
    pub producer_id: i64,
    /// Added in v5: the producer epoch to use from now on; -1 before v5.
    pub producer_epoch: i16,
}

impl Default for EndTxnResponse {
    fn default() -> Self {
        EndTxnResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id: -1,
            producer_epoch: -1,
        }
    }
}

impl EndTxnResponse {
    /// Appends this response's body at `version` (for tests and fake peers). Fields the
    /// version does not have are left out.
    pub fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        out.put_i32(self.throttle_time_ms);
        out.put_i16(self.error_code);
        if version >= 5 {
            out.put_i64(self.producer_id);
            out.put_i16(self.producer_epoch);
        }
        out.put_empty_tagged_fields(flexible(version));
    }
}

impl Response for EndTxnResponse {
    fn decode_body(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let mut out = EndTxnResponse {
            throttle_time_ms: r.i32()?,
            error_code: r.i16()?,
            ..EndTxnResponse::default()
        };
        if version >= 5 {
            out.producer_id = r.i64()?;
            out.producer_epoch = r.i16()?;
        }
        r.skip_tagged_fields(flexible(version))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::ResponseHeader;
    use crate::protocol::{decode_response, encode_request, response_header_version};

    fn sample(version: i16) -> EndTxnResponse {
        let mut out = EndTxnResponse {
            throttle_time_ms: 4,
            error_code: 51,
            ..EndTxnResponse::default()
        };
        if version >= 5 {
            out.producer_id = 0x0a0b_0c0d_0e0f;
            out.producer_epoch = 9;
        }
        out
    }

    fn frame(version: i16, body: &EndTxnResponse) -> Vec<u8> {
        let mut out = Vec::new();
        let header_version = response_header_version(ApiKey::END_TXN, flexible(version));
        ResponseHeader { correlation_id: 3 }.encode(header_version, &mut out);
        body.encode_body(version, &mut out);
        out
    }

    #[test]
    fn responses_round_trip_at_every_version() {
        for v in 0..=5 {
            let (corr, got) = decode_response::<EndTxnRequest>(v, &frame(v, &sample(v))).unwrap();
            assert_eq!(corr, 3);
            assert_eq!(got, sample(v), "version {v}");
        }
    }

    #[test]
    fn only_v5_responses_carry_the_next_producer_id_and_epoch() {
        let (_, got) = decode_response::<EndTxnRequest>(4, &frame(4, &sample(5))).unwrap();
        assert_eq!((got.producer_id, got.producer_epoch), (-1, -1));
        let f = frame(5, &sample(5));
        assert_eq!(f.len(), frame(4, &sample(5)).len() + 10);
    }

    #[test]
    fn rejects_truncated_end_txn_responses() {
        for v in 0..=5 {
            let f = frame(v, &sample(v));
            for len in 0..f.len() {
                assert!(decode_response::<EndTxnRequest>(v, &f[..len]).is_err());
            }
        }
    }

    #[test]
    fn requests_match_the_spec_bytes() {
        let req = EndTxnRequest {
            transactional_id: "tx".into(),
            producer_id: 1,
            producer_epoch: 0,
            committed: true,
        };
        let f = encode_request(&req, 5, 7, None);
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 26, // size
            0, 26, 0, 5, 0, 0, 0, 7, 0xff, 0xff, 0, // header v2
            3, b't', b'x',
            0, 0, 0, 0, 0, 0, 0, 1,
            0, 0,
            1, // commit
            0, // tags
        ];
        assert_eq!(f, want);
        let abort = EndTxnRequest {
            committed: false,
            ..req
        };
        let mut body = Vec::new();
        abort.encode_body(0, &mut body);
        assert_eq!(body, [0, 2, b't', b'x', 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0]);
    }
}

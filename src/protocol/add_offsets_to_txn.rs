//! AddOffsetsToTxn (key 25), versions 0–4; v3 is the first flexible version.
//!
//! Sent to the transaction coordinator before a TxnOffsetCommit, so that the offsets a
//! transactional producer commits for a consumer group become visible only with the
//! transaction's commit.
//!
//! Request: transactional_id STRING; producer_id INT64; producer_epoch INT16; group_id
//! STRING; tagged fields from v3. v1 is the same as v0; v2 only adds the PRODUCER_FENCED
//! error code (KIP-588); v4 only adds TRANSACTION_ABORTABLE (KIP-890).
//!
//! Response: throttle_time_ms INT32; error_code INT16; tagged fields from v3. The response
//! has the same shape at every version.

use super::codec::{DecodeResult, Reader, Writer};
use super::{ApiKey, Request, Response, VersionRange};

const FIRST_FLEXIBLE: i16 = 3;

fn flexible(version: i16) -> bool {
    version >= FIRST_FLEXIBLE
}

/// An AddOffsetsToTxn request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddOffsetsToTxnRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id the coordinator assigned to the transactional id.
    pub producer_id: i64,
    /// The producer's current epoch.
    pub producer_epoch: i16,
    /// The consumer group whose offsets the transaction will commit.
    pub group_id: String,
}

impl Request for AddOffsetsToTxnRequest {
    const API_KEY: ApiKey = ApiKey::ADD_OFFSETS_TO_TXN;
    const VERSIONS: VersionRange = VersionRange::new(0, 4);
    const FIRST_FLEXIBLE: i16 = FIRST_FLEXIBLE;
    type Response = AddOffsetsToTxnResponse;

    fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_string(&self.transactional_id, flexible);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_string(&self.group_id, flexible);
        out.put_empty_tagged_fields(flexible);
    }
}

/// An AddOffsetsToTxn response.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddOffsetsToTxnResponse {
    /// How long the broker throttled the request.
    pub throttle_time_ms: i32,
    /// The error code (0 = none).
    pub error_code: i16,
}

impl AddOffsetsToTxnResponse {
    /// Appends this response's body at `version` (for tests and fake peers).
    pub fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        out.put_i32(self.throttle_time_ms);
        out.put_i16(self.error_code);
        out.put_empty_tagged_fields(flexible(version));
    }
}

impl Response for AddOffsetsToTxnResponse {
    fn decode_body(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let out = AddOffsetsToTxnResponse {
            throttle_time_ms: r.i32()?,
            error_code: r.i16()?,
        };
        r.skip_tagged_fields(flexible(version))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::ResponseHeader;
    use crate::protocol::{decode_response, response_header_version};

    const SAMPLE: AddOffsetsToTxnResponse = AddOffsetsToTxnResponse {
        throttle_time_ms: 11,
        error_code: 48,
    };

    fn frame(version: i16) -> Vec<u8> {
        let mut out = Vec::new();
        let header_version = response_header_version(ApiKey::ADD_OFFSETS_TO_TXN, flexible(version));
        ResponseHeader { correlation_id: 6 }.encode(header_version, &mut out);
        SAMPLE.encode_body(version, &mut out);
        out
    }

    #[test]
    fn responses_round_trip_at_every_version() {
        for v in 0..=4 {
            let (corr, got) = decode_response::<AddOffsetsToTxnRequest>(v, &frame(v)).unwrap();
            assert_eq!(corr, 6);
            assert_eq!(got, SAMPLE, "version {v}");
        }
    }

    #[test]
    fn rejects_truncated_add_offsets_to_txn_responses() {
        for v in 0..=4 {
            let f = frame(v);
            for len in 0..f.len() {
                assert!(decode_response::<AddOffsetsToTxnRequest>(v, &f[..len]).is_err());
            }
        }
    }

    #[test]
    fn requests_match_the_spec_bytes() {
        let req = AddOffsetsToTxnRequest {
            transactional_id: "tx".into(),
            producer_id: 9,
            producer_epoch: 2,
            group_id: "g".into(),
        };
        let mut body = Vec::new();
        req.encode_body(2, &mut body);
        #[rustfmt::skip]
        let want = [
            0, 2, b't', b'x',
            0, 0, 0, 0, 0, 0, 0, 9,
            0, 2,
            0, 1, b'g',
        ];
        assert_eq!(body, want);
        body.clear();
        req.encode_body(3, &mut body);
        #[rustfmt::skip]
        let want = [
            3, b't', b'x',
            0, 0, 0, 0, 0, 0, 0, 9,
            0, 2,
            2, b'g',
            0, // tags
        ];
        assert_eq!(body, want);
    }
}

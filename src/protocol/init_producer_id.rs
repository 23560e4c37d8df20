//! InitProducerId (key 22), versions 0–4; v2 is the first flexible version.
//!
//! Request: transactional_id NULLABLE_STRING; transaction_timeout_ms INT32; producer_id
//! INT64 (added in v3); producer_epoch INT16 (added in v3); tagged fields from v2. v3 lets a
//! producer keep its id across an epoch bump (KIP-360); v4 only adds the PRODUCER_FENCED
//! error code (KIP-588).
//!
//! Response: throttle_time_ms INT32; error_code INT16; producer_id INT64; producer_epoch
//! INT16; tagged fields from v2. The response has the same shape at every version.

use super::codec::{DecodeResult, Reader, Writer};
use super::{ApiKey, Request, Response, VersionRange};

const FIRST_FLEXIBLE: i16 = 2;

fn flexible(version: i16) -> bool {
    version >= FIRST_FLEXIBLE
}

/// An InitProducerId request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdRequest {
    /// The transactional id, `None` for an idempotent (non-transactional) producer.
    pub transactional_id: Option<String>,
    /// How long the coordinator waits before aborting an idle transaction; only meaningful
    /// with a transactional id.
    pub transaction_timeout_ms: i32,
    /// Added in v3: the current producer id when bumping the epoch, else -1.
    pub producer_id: i64,
    /// Added in v3: the current producer epoch when bumping it, else -1.
    pub producer_epoch: i16,
}

impl Default for InitProducerIdRequest {
    /// A first request of an idempotent producer: no transactional id, no current id.
    fn default() -> Self {
        InitProducerIdRequest {
            transactional_id: None,
            // transaction.timeout.ms's default; the broker ignores it without a
            // transactional id.
            transaction_timeout_ms: 60_000,
            producer_id: -1,
            producer_epoch: -1,
        }
    }
}

impl Request for InitProducerIdRequest {
    const API_KEY: ApiKey = ApiKey::INIT_PRODUCER_ID;
    const VERSIONS: VersionRange = VersionRange::new(0, 4);
    const FIRST_FLEXIBLE: i16 = FIRST_FLEXIBLE;
    type Response = InitProducerIdResponse;

    fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_nullable_string(self.transactional_id.as_deref(), flexible);
        out.put_i32(self.transaction_timeout_ms);
        if version >= 3 {
            out.put_i64(self.producer_id);
            out.put_i16(self.producer_epoch);
        }
        out.put_empty_tagged_fields(flexible);
    }
}

/// An InitProducerId response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitProducerIdResponse {
    /// How long the broker throttled the request.
    pub throttle_time_ms: i32,
    /// The error code (0 = none).
    pub error_code: i16,
    /// The producer id assigned, -1 on error.
    pub producer_id: i64,
    /// The producer epoch assigned.
    pub producer_epoch: i16,
}

impl Default for InitProducerIdResponse {
    fn default() -> Self {
        InitProducerIdResponse {
            throttle_time_ms: 0,
            error_code: 0,
            producer_id: -1,
            producer_epoch: 0,
        }
    }
}

impl InitProducerIdResponse {
    /// Appends this response's body at `version` (for tests and fake peers).
    pub fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        out.put_i32(self.throttle_time_ms);
        out.put_i16(self.error_code);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_empty_tagged_fields(flexible(version));
    }
}

impl Response for InitProducerIdResponse {
    fn decode_body(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let out = InitProducerIdResponse {
            throttle_time_ms: r.i32()?,
            error_code: r.i16()?,
            producer_id: r.i64()?,
            producer_epoch: r.i16()?,
        };
        r.skip_tagged_fields(flexible(version))?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::ResponseHeader;
    use crate::protocol::{decode_response, encode_request, response_header_version};

    fn sample() -> InitProducerIdResponse {
        InitProducerIdResponse {
            throttle_time_ms: 3,
            error_code: 90,
            producer_id: 0x0102_0304_0506,
            producer_epoch: 7,
        }
    }

    fn frame(version: i16, body: &InitProducerIdResponse) -> Vec<u8> {
        let mut out = Vec::new();
        let header_version = response_header_version(ApiKey::INIT_PRODUCER_ID, flexible(version));
        ResponseHeader { correlation_id: 4 }.encode(header_version, &mut out);
        body.encode_body(version, &mut out);
        out
    }

    #[test]
    fn responses_round_trip_at_every_version() {
        for v in 0..=4 {
            let (corr, got) =
                decode_response::<InitProducerIdRequest>(v, &frame(v, &sample())).unwrap();
            assert_eq!(corr, 4);
            assert_eq!(got, sample(), "version {v}");
        }
    }

    #[test]
    fn rejects_truncated_init_producer_id_responses() {
        for v in 0..=4 {
            let f = frame(v, &sample());
            for len in 0..f.len() {
                assert!(decode_response::<InitProducerIdRequest>(v, &f[..len]).is_err());
            }
        }
    }

    #[test]
    fn rejects_a_huge_tagged_field_count() {
        let mut f = frame(2, &sample());
        f.pop();
        f.put_uvarint(u32::MAX);
        assert!(decode_response::<InitProducerIdRequest>(2, &f).is_err());
    }

    #[test]
    fn v0_request_matches_the_spec_bytes() {
        let req = InitProducerIdRequest {
            transactional_id: None,
            transaction_timeout_ms: 60_000,
            ..InitProducerIdRequest::default()
        };
        let f = encode_request(&req, 0, 1, None);
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 16, // size
            0, 22, 0, 0, 0, 0, 0, 1, 0xff, 0xff, // header v1
            0xff, 0xff, // null transactional id
            0, 0, 0xea, 0x60, // 60000
        ];
        assert_eq!(f, want);
    }

    #[test]
    fn v3_request_carries_producer_id_and_epoch() {
        let req = InitProducerIdRequest {
            transactional_id: Some("tx".into()),
            transaction_timeout_ms: 1,
            producer_id: 5,
            producer_epoch: 2,
        };
        let mut body = Vec::new();
        req.encode_body(3, &mut body);
        #[rustfmt::skip]
        let want = [
            3, b't', b'x', // compact string
            0, 0, 0, 1,
            0, 0, 0, 0, 0, 0, 0, 5,
            0, 2,
            0, // tagged fields
        ];
        assert_eq!(body, want);
    }
}

//! ApiVersions (key 18), versions 0–3.
//!
//! Request: empty in v0–v2; v3 (the first flexible version, KIP-511) sends
//! client_software_name and client_software_version as COMPACT_STRINGs plus tagged fields.
//!
//! Response (always with response header v0): error_code INT16; api_keys ARRAY of
//! (api_key INT16, min_version INT16, max_version INT16[, tagged fields in v3+]);
//! throttle_time_ms INT32 (added in v1); tagged fields in v3+: supported features (tag 0),
//! finalized features epoch (tag 1), finalized features (tag 2: COMPACT_ARRAY of (name
//! COMPACT_STRING, max_version_level INT16, min_version_level INT16, tagged fields)), and
//! zk_migration_ready (tag 3). Only the finalized features are read: the transactional
//! producer chooses its protocol generation by `transaction.version` (KIP-890).
//!
//! A broker that does not support the version we sent answers UNSUPPORTED_VERSION (35) with a
//! v0-shaped body that still lists its ApiVersions range; [`decode_with_fallback`] reads that
//! so the caller can retry at the highest common version.

use super::codec::{DecodeResult, Reader, Writer};
use super::header::ResponseHeader;
use super::{ApiKey, Request, Response, VersionRange};

/// The error code a broker sends when it does not support the requested version.
pub const UNSUPPORTED_VERSION: i16 = 35;

/// The name this client reports in ApiVersions v3 (KIP-511 requires
/// `[a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])?`).
pub const CLIENT_SOFTWARE_NAME: &str = "kafka-producer-rust";

/// The version this client reports in ApiVersions v3.
pub const CLIENT_SOFTWARE_VERSION: &str = env!("CARGO_PKG_VERSION");

/// An ApiVersions request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiVersionsRequest {
    /// Added in v3: the client library's name.
    pub client_software_name: String,
    /// Added in v3: the client library's version.
    pub client_software_version: String,
}

impl Default for ApiVersionsRequest {
    fn default() -> Self {
        ApiVersionsRequest {
            client_software_name: CLIENT_SOFTWARE_NAME.to_owned(),
            client_software_version: CLIENT_SOFTWARE_VERSION.to_owned(),
        }
    }
}

impl Request for ApiVersionsRequest {
    const API_KEY: ApiKey = ApiKey::API_VERSIONS;
    const VERSIONS: VersionRange = VersionRange::new(0, 3);
    const FIRST_FLEXIBLE: i16 = 3;
    type Response = ApiVersionsResponse;

    fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        if version >= 3 {
            out.put_string(&self.client_software_name, true);
            out.put_string(&self.client_software_version, true);
            out.put_empty_tagged_fields(true);
        }
    }
}

/// One API's supported version range, as the broker reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ApiVersion {
    /// The API key.
    pub api_key: i16,
    /// Lowest version the broker supports.
    pub min_version: i16,
    /// Highest version the broker supports.
    pub max_version: i16,
}

/// An ApiVersions response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ApiVersionsResponse {
    /// 0, or UNSUPPORTED_VERSION when the broker answered in the v0 shape.
    pub error_code: i16,
    /// The APIs the broker supports.
    pub api_keys: Vec<ApiVersion>,
    /// Added in v1.
    pub throttle_time_ms: i32,
    /// v3+, tagged field 2: the features the cluster finalized, as (name, max level).
    pub finalized_features: Vec<FinalizedFeature>,
}

/// A feature the cluster finalized (ApiVersions v3+), at its highest finalized level.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FinalizedFeature {
    /// The feature's name, for example `transaction.version`.
    pub name: String,
    /// The finalized level (the response's max_version_level).
    pub level: i16,
}

/// The finalized feature that selects the transaction protocol (KIP-890): level 2 and up
/// means the broker adds partitions to a transaction implicitly and EndTxn bumps the epoch.
pub const TRANSACTION_VERSION_FEATURE: &str = "transaction.version";

impl ApiVersionsResponse {
    /// The broker's version range for `api_key`, if it supports the API at all.
    pub fn range(&self, api_key: ApiKey) -> Option<VersionRange> {
        self.api_keys
            .iter()
            .find(|a| a.api_key == api_key.0)
            .map(|a| VersionRange::new(a.min_version, a.max_version))
    }

    /// The finalized level of feature `name`, 0 when the cluster did not finalize it.
    pub fn finalized_level(&self, name: &str) -> i16 {
        self.finalized_features
            .iter()
            .find(|f| f.name == name)
            .map_or(0, |f| f.level)
    }

    /// Appends this response's body at `version` (for tests and fake peers).
    pub fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = version >= 3;
        out.put_i16(self.error_code);
        out.put_array_len(self.api_keys.len(), flexible);
        for a in &self.api_keys {
            out.put_i16(a.api_key);
            out.put_i16(a.min_version);
            out.put_i16(a.max_version);
            out.put_empty_tagged_fields(flexible);
        }
        if version >= 1 {
            out.put_i32(self.throttle_time_ms);
        }
        if flexible && !self.finalized_features.is_empty() {
            let mut field = Vec::new();
            field.put_array_len(self.finalized_features.len(), true);
            for f in &self.finalized_features {
                field.put_string(&f.name, true);
                field.put_i16(f.level);
                field.put_i16(1);
                field.put_empty_tagged_fields(true);
            }
            out.put_uvarint(1);
            out.put_uvarint(2);
            out.put_uvarint(u32::try_from(field.len()).unwrap_or(u32::MAX));
            out.extend_from_slice(&field);
        } else {
            out.put_empty_tagged_fields(flexible);
        }
    }
}

impl Response for ApiVersionsResponse {
    fn decode_body(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flexible = version >= 3;
        let error_code = r.i16()?;
        let api_keys = r.array_of(flexible, 6, |r| {
            let a = ApiVersion {
                api_key: r.i16()?,
                min_version: r.i16()?,
                max_version: r.i16()?,
            };
            r.skip_tagged_fields(flexible)?;
            Ok(a)
        })?;
        let throttle_time_ms = if version >= 1 { r.i32()? } else { 0 };
        let mut finalized_features = Vec::new();
        r.tagged_fields(flexible, |tag, field| {
            if tag != 2 {
                return Ok(false);
            }
            finalized_features = field.array_of(true, 6, |f| {
                let name = f.string(true)?;
                let level = f.i16()?;
                let _min_level = f.i16()?;
                f.skip_tagged_fields(true)?;
                Ok(FinalizedFeature { name, level })
            })?;
            Ok(true)
        })?;
        Ok(ApiVersionsResponse {
            error_code,
            api_keys,
            throttle_time_ms,
            finalized_features,
        })
    }
}

/// Decodes an ApiVersions response frame (after the size prefix) to a request sent at
/// `version`.
///
/// When the body does not decode at `version`, or says UNSUPPORTED_VERSION, it is read again
/// in the v0 shape, which is what a Kafka broker sends for versions it does not know (as
/// Java's client does). When even that fails but the body starts with UNSUPPORTED_VERSION,
/// the result is a refusal with no version list: librdkafka's mock cluster answers v3 with a
/// body in neither shape (a one-byte count, untagged entries), and the caller then steps
/// down one version.
pub fn decode_with_fallback(
    version: i16,
    frame: &[u8],
) -> DecodeResult<(i32, ApiVersionsResponse)> {
    let mut r = Reader::new(frame);
    let header = ResponseHeader::decode(&mut r, 0)?;
    let body = r.rest();
    let decode_whole = |v: i16| {
        let mut r = Reader::new(body);
        let b = ApiVersionsResponse::decode_body(&mut r, v)?;
        r.finish()?;
        Ok(b)
    };
    let at_version = decode_whole(version);
    if matches!(&at_version, Ok(b) if b.error_code != UNSUPPORTED_VERSION) || version == 0 {
        return at_version.map(|b| (header.correlation_id, b));
    }
    if let Ok(b) = decode_whole(0) {
        return Ok((header.correlation_id, b));
    }
    if Reader::new(body).i16() == Ok(UNSUPPORTED_VERSION) {
        let refusal = ApiVersionsResponse {
            error_code: UNSUPPORTED_VERSION,
            ..ApiVersionsResponse::default()
        };
        return Ok((header.correlation_id, refusal));
    }
    at_version.map(|b| (header.correlation_id, b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::encode_request;

    fn frame(version: i16, body: &ApiVersionsResponse) -> Vec<u8> {
        let mut out = Vec::new();
        ResponseHeader { correlation_id: 9 }.encode(0, &mut out);
        body.encode_body(version, &mut out);
        out
    }

    fn sample() -> ApiVersionsResponse {
        ApiVersionsResponse {
            error_code: 0,
            api_keys: vec![
                ApiVersion {
                    api_key: 0,
                    min_version: 0,
                    max_version: 11,
                },
                ApiVersion {
                    api_key: 18,
                    min_version: 0,
                    max_version: 3,
                },
            ],
            throttle_time_ms: 5,
            finalized_features: vec![FinalizedFeature {
                name: TRANSACTION_VERSION_FEATURE.to_owned(),
                level: 2,
            }],
        }
    }

    #[test]
    fn v3_request_carries_the_client_software_name() {
        let frame = encode_request(&ApiVersionsRequest::default(), 3, 1, Some("c"));
        let body_start = 4 + 2 + 2 + 4 + 2 + 1 + 1; // size, key, version, corr, id "c", tags
        let mut r = Reader::new(&frame[body_start..]);
        assert_eq!(r.str(true).unwrap(), CLIENT_SOFTWARE_NAME);
        assert_eq!(r.str(true).unwrap(), CLIENT_SOFTWARE_VERSION);
        r.skip_tagged_fields(true).unwrap();
        r.finish().unwrap();
    }

    #[test]
    fn decodes_every_version() {
        for v in 0..=3 {
            let mut want = sample();
            if v == 0 {
                want.throttle_time_ms = 0;
            }
            if v < 3 {
                want.finalized_features.clear(); // a tagged field: v3 and up
            }
            let (corr, got) = decode_with_fallback(v, &frame(v, &want)).unwrap();
            assert_eq!(corr, 9);
            assert_eq!(got, want);
            assert_eq!(got.range(ApiKey::PRODUCE), Some(VersionRange::new(0, 11)));
            let level = if v >= 3 { 2 } else { 0 };
            assert_eq!(got.finalized_level(TRANSACTION_VERSION_FEATURE), level);
        }
    }

    #[test]
    fn falls_back_to_v0_when_the_broker_refuses_the_version() {
        let refusal = ApiVersionsResponse {
            error_code: UNSUPPORTED_VERSION,
            api_keys: vec![ApiVersion {
                api_key: 18,
                min_version: 0,
                max_version: 2,
            }],
            throttle_time_ms: 0,
            finalized_features: Vec::new(),
        };
        let (_, got) = decode_with_fallback(3, &frame(0, &refusal)).unwrap();
        assert_eq!(got, refusal);
        assert_eq!(
            got.range(ApiKey::API_VERSIONS)
                .unwrap()
                .highest_common(&ApiVersionsRequest::VERSIONS),
            Some(2)
        );
    }

    #[test]
    fn reads_the_mock_clusters_refusal_as_a_refusal_without_a_range() {
        // librdkafka's mock cluster answering ApiVersions v3 (bytes captured from it):
        // correlation id 1, UNSUPPORTED_VERSION, then a one-byte count and an untagged entry
        // (18, 0, 2) and a throttle time: neither the v3 nor the v0 shape.
        let frame = [0, 0, 0, 1, 0, 0x23, 1, 0, 0x12, 0, 0, 0, 2, 0, 0, 0, 0];
        let (corr, got) = decode_with_fallback(3, &frame).unwrap();
        assert_eq!(corr, 1);
        assert_eq!(got.error_code, UNSUPPORTED_VERSION);
        assert!(got.api_keys.is_empty());
    }

    #[test]
    fn rejects_truncated_api_versions_responses() {
        let f = frame(3, &sample());
        for len in 0..f.len() {
            assert!(decode_with_fallback(3, &f[..len]).is_err(), "prefix {len}");
        }
    }
}

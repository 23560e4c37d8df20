//! SaslHandshake (key 17), versions 0–1; no version is flexible.
//!
//! Request: mechanism STRING. Response: error_code INT16; mechanisms ARRAY of STRING. Both
//! have the same shape at v0 and v1; the version only tells the broker how the
//! authentication bytes that follow are framed. After v0 they go as bare size-prefixed
//! frames with no Kafka header (KIP-43); after v1 each goes in a SaslAuthenticate request
//! (KIP-152), so the broker can answer a failure with an error code and a message.
//!
//! The broker sends its enabled mechanisms on success and on UNSUPPORTED_SASL_MECHANISM (33)
//! alike, so a client can say which ones it could have chosen. Kafka cannot add a flexible
//! version of this API (KAFKA-9577: clients up to 2.4 negotiate it wrongly), so none exists.

use super::codec::{DecodeResult, Reader, Writer};
use super::{ApiKey, Request, Response, VersionRange};

/// No version is flexible: `is_flexible` is false for every version below this.
const FIRST_FLEXIBLE: i16 = i16::MAX;

/// The smallest wire size of a mechanism name: the INT16 length of an empty STRING.
const MIN_MECHANISM_SIZE: usize = 2;

/// A SaslHandshake request: the mechanism the client chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaslHandshakeRequest {
    /// The SASL mechanism name, such as `PLAIN` or `SCRAM-SHA-512`.
    pub mechanism: String,
}

impl Request for SaslHandshakeRequest {
    const API_KEY: ApiKey = ApiKey::SASL_HANDSHAKE;
    const VERSIONS: VersionRange = VersionRange::new(0, 1);
    const FIRST_FLEXIBLE: i16 = FIRST_FLEXIBLE;
    type Response = SaslHandshakeResponse;

    fn encode_body(&self, _version: i16, out: &mut Vec<u8>) {
        out.put_string(&self.mechanism, false);
    }
}

/// A SaslHandshake response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SaslHandshakeResponse {
    /// The error code (0 = none; 33 = UNSUPPORTED_SASL_MECHANISM, 34 = ILLEGAL_SASL_STATE).
    pub error_code: i16,
    /// The mechanisms enabled on the broker's listener.
    pub mechanisms: Vec<String>,
}

impl SaslHandshakeResponse {
    /// Appends this response's body at `version` (for tests and fake peers).
    pub fn encode_body(&self, _version: i16, out: &mut Vec<u8>) {
        out.put_i16(self.error_code);
        out.put_array_len(self.mechanisms.len(), false);
        for m in &self.mechanisms {
            out.put_string(m, false);
        }
    }
}

impl Response for SaslHandshakeResponse {
    fn decode_body(r: &mut Reader<'_>, _version: i16) -> DecodeResult<Self> {
        let error_code = r.i16()?;
        let mechanisms = r.array_of(false, MIN_MECHANISM_SIZE, |r| r.string(false))?;
        Ok(SaslHandshakeResponse {
            error_code,
            mechanisms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::ResponseHeader;
    use crate::protocol::{decode_response, encode_request, is_flexible, DecodeError};

    fn sample() -> SaslHandshakeResponse {
        SaslHandshakeResponse {
            error_code: 33,
            mechanisms: vec!["PLAIN".into(), "SCRAM-SHA-512".into(), String::new()],
        }
    }

    fn frame(version: i16, body: &SaslHandshakeResponse) -> Vec<u8> {
        let mut out = Vec::new();
        ResponseHeader { correlation_id: 6 }.encode(0, &mut out);
        body.encode_body(version, &mut out);
        out
    }

    #[test]
    fn no_sasl_handshake_version_is_flexible() {
        for v in 0..=1 {
            assert!(!is_flexible::<SaslHandshakeRequest>(v));
        }
    }

    #[test]
    fn requests_match_the_spec_bytes_at_every_version() {
        for v in 0..=1 {
            let req = SaslHandshakeRequest {
                mechanism: "PLAIN".into(),
            };
            let f = encode_request(&req, v, 2, None);
            #[rustfmt::skip]
            let want = [
                0, 0, 0, 17, // size
                0, 17, 0, v as u8, 0, 0, 0, 2, 0xff, 0xff, // header v1
                0, 5, b'P', b'L', b'A', b'I', b'N',
            ];
            assert_eq!(f, want, "version {v}");
        }
    }

    #[test]
    fn responses_round_trip_at_every_version() {
        for v in 0..=1 {
            let (corr, got) =
                decode_response::<SaslHandshakeRequest>(v, &frame(v, &sample())).unwrap();
            assert_eq!(corr, 6);
            assert_eq!(got, sample(), "version {v}");
        }
    }

    #[test]
    fn rejects_truncated_sasl_handshake_responses() {
        for v in 0..=1 {
            let f = frame(v, &sample());
            for len in 0..f.len() {
                assert!(
                    decode_response::<SaslHandshakeRequest>(v, &f[..len]).is_err(),
                    "version {v} prefix {len}"
                );
            }
        }
    }

    #[test]
    fn rejects_a_mechanism_count_beyond_the_frame() {
        let mut f = Vec::new();
        ResponseHeader { correlation_id: 6 }.encode(0, &mut f);
        f.put_i16(0);
        f.put_i32(i32::MAX);
        f.put_string("PLAIN", false);
        assert!(matches!(
            decode_response::<SaslHandshakeRequest>(1, &f),
            Err(DecodeError::InvalidLength { what: "array", .. })
        ));
    }

    #[test]
    fn rejects_a_mechanism_name_longer_than_the_frame() {
        let mut f = Vec::new();
        ResponseHeader { correlation_id: 6 }.encode(0, &mut f);
        f.put_i16(0);
        f.put_i32(1);
        f.put_i16(i16::MAX);
        f.put_raw(b"PLAIN");
        assert!(matches!(
            decode_response::<SaslHandshakeRequest>(1, &f),
            Err(DecodeError::InvalidLength { what: "string", .. })
        ));
    }

    #[test]
    fn rejects_a_null_mechanism_list() {
        let mut f = Vec::new();
        ResponseHeader { correlation_id: 6 }.encode(0, &mut f);
        f.put_i16(0);
        f.put_null_array(false);
        assert_eq!(
            decode_response::<SaslHandshakeRequest>(0, &f),
            Err(DecodeError::UnexpectedNull("array"))
        );
    }
}

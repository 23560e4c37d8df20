//! SaslAuthenticate (key 36), versions 0–2; v2 is the first flexible version.
//!
//! Sent after a SaslHandshake v1 (KIP-152), once per round of the SASL mechanism: each
//! request carries the client's next token and each response the server's.
//!
//! Request: auth_bytes BYTES; tagged fields from v2. v1 is the same as v0.
//!
//! Response: error_code INT16; error_message NULLABLE_STRING; auth_bytes BYTES;
//! session_lifetime_ms INT64 (added in v1, KIP-368); tagged fields from v2.
//!
//! The authentication bytes carry passwords, password proofs and tokens, so neither type
//! derives `Debug`: their `Debug` prints only how many bytes there are.

use std::fmt;

use super::codec::{DecodeResult, Reader, Writer};
use super::{ApiKey, Request, Response, VersionRange};

const FIRST_FLEXIBLE: i16 = 2;

fn flexible(version: i16) -> bool {
    version >= FIRST_FLEXIBLE
}

/// Shows a secret byte string as its length only.
struct Redacted(usize);

impl fmt::Debug for Redacted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "<{} bytes redacted>", self.0)
    }
}

/// A SaslAuthenticate request: one client token of the SASL exchange.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SaslAuthenticateRequest {
    /// The client's authentication bytes, as the SASL mechanism defines them.
    pub auth_bytes: Vec<u8>,
}

impl fmt::Debug for SaslAuthenticateRequest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslAuthenticateRequest")
            .field("auth_bytes", &Redacted(self.auth_bytes.len()))
            .finish()
    }
}

impl Request for SaslAuthenticateRequest {
    const API_KEY: ApiKey = ApiKey::SASL_AUTHENTICATE;
    const VERSIONS: VersionRange = VersionRange::new(0, 2);
    const FIRST_FLEXIBLE: i16 = FIRST_FLEXIBLE;
    type Response = SaslAuthenticateResponse;

    fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_bytes(&self.auth_bytes, flexible);
        out.put_empty_tagged_fields(flexible);
    }
}

/// A SaslAuthenticate response: one server token of the SASL exchange, or its failure.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SaslAuthenticateResponse {
    /// The error code (0 = none; 58 = SASL_AUTHENTICATION_FAILED).
    pub error_code: i16,
    /// The broker's description of the error, `None` when there is none.
    pub error_message: Option<String>,
    /// The server's authentication bytes, as the SASL mechanism defines them.
    pub auth_bytes: Vec<u8>,
    /// Added in v1 (KIP-368): how long the session may last before the client must
    /// authenticate again, in milliseconds; 0 (and always before v1) means no limit.
    pub session_lifetime_ms: i64,
}

impl fmt::Debug for SaslAuthenticateResponse {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SaslAuthenticateResponse")
            .field("error_code", &self.error_code)
            .field("error_message", &self.error_message)
            .field("auth_bytes", &Redacted(self.auth_bytes.len()))
            .field("session_lifetime_ms", &self.session_lifetime_ms)
            .finish()
    }
}

impl SaslAuthenticateResponse {
    /// Appends this response's body at `version` (for tests and fake peers).
    pub fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_i16(self.error_code);
        out.put_nullable_string(self.error_message.as_deref(), flexible);
        out.put_bytes(&self.auth_bytes, flexible);
        if version >= 1 {
            out.put_i64(self.session_lifetime_ms);
        }
        out.put_empty_tagged_fields(flexible);
    }
}

impl Response for SaslAuthenticateResponse {
    fn decode_body(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flexible = flexible(version);
        let out = SaslAuthenticateResponse {
            error_code: r.i16()?,
            error_message: r.nullable_string(flexible)?,
            auth_bytes: r.bytes(flexible)?.to_vec(),
            session_lifetime_ms: if version >= 1 { r.i64()? } else { 0 },
        };
        r.skip_tagged_fields(flexible)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::ResponseHeader;
    use crate::protocol::{decode_response, encode_request, response_header_version, DecodeError};

    const SECRET: &[u8] = b"\0alice\0hunter2-s3cr3t";

    fn sample(version: i16) -> SaslAuthenticateResponse {
        SaslAuthenticateResponse {
            error_code: 58,
            error_message: Some("Authentication failed: é".into()),
            auth_bytes: SECRET.to_vec(),
            session_lifetime_ms: if version >= 1 { 3_600_000 } else { 0 },
        }
    }

    fn frame(version: i16, body: &SaslAuthenticateResponse) -> Vec<u8> {
        let mut out = Vec::new();
        let header_version = response_header_version(ApiKey::SASL_AUTHENTICATE, flexible(version));
        ResponseHeader { correlation_id: 8 }.encode(header_version, &mut out);
        body.encode_body(version, &mut out);
        out
    }

    #[test]
    fn requests_match_the_spec_bytes_at_every_version() {
        let req = SaslAuthenticateRequest {
            auth_bytes: b"\0u\0p".to_vec(),
        };
        for v in 0..=1 {
            let mut body = Vec::new();
            req.encode_body(v, &mut body);
            assert_eq!(body, [0, 0, 0, 4, 0, b'u', 0, b'p'], "version {v}");
        }
        let mut body = Vec::new();
        req.encode_body(2, &mut body);
        assert_eq!(body, [5, 0, b'u', 0, b'p', 0]); // compact bytes, no tagged fields
    }

    #[test]
    fn v2_requests_use_request_header_v2() {
        let req = SaslAuthenticateRequest::default();
        let f = encode_request(&req, 2, 3, None);
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 13, // size
            0, 36, 0, 2, 0, 0, 0, 3, 0xff, 0xff, 0, // header v2
            1, 0, // empty compact bytes, no tagged fields
        ];
        assert_eq!(f, want);
    }

    #[test]
    fn responses_round_trip_at_every_version() {
        for v in 0..=2 {
            for error_message in [None, Some(String::new()), Some("bad password".into())] {
                let want = SaslAuthenticateResponse {
                    error_message,
                    ..sample(v)
                };
                let (corr, got) =
                    decode_response::<SaslAuthenticateRequest>(v, &frame(v, &want)).unwrap();
                assert_eq!(corr, 8);
                assert_eq!(got, want, "version {v}");
            }
        }
    }

    #[test]
    fn v0_responses_have_no_session_lifetime() {
        let mut wire = sample(1);
        wire.session_lifetime_ms = 42;
        let (_, got) = decode_response::<SaslAuthenticateRequest>(0, &frame(0, &wire)).unwrap();
        assert_eq!(got.session_lifetime_ms, 0);
    }

    #[test]
    fn rejects_truncated_sasl_authenticate_responses() {
        for v in 0..=2 {
            let f = frame(v, &sample(v));
            for len in 0..f.len() {
                assert!(
                    decode_response::<SaslAuthenticateRequest>(v, &f[..len]).is_err(),
                    "version {v} prefix {len}"
                );
            }
        }
    }

    #[test]
    fn rejects_auth_bytes_longer_than_the_frame() {
        for v in 0..=2 {
            let mut f = Vec::new();
            let header_version = response_header_version(ApiKey::SASL_AUTHENTICATE, flexible(v));
            ResponseHeader { correlation_id: 8 }.encode(header_version, &mut f);
            f.put_i16(0);
            f.put_nullable_string(None, flexible(v));
            if flexible(v) {
                f.put_uvarint(u32::MAX);
            } else {
                f.put_i32(i32::MAX);
            }
            f.put_raw(&[0; 16]);
            assert!(
                matches!(
                    decode_response::<SaslAuthenticateRequest>(v, &f),
                    Err(DecodeError::InvalidLength { what: "bytes", .. })
                ),
                "version {v}"
            );
        }
    }

    #[test]
    fn rejects_null_auth_bytes() {
        let mut f = Vec::new();
        ResponseHeader { correlation_id: 8 }.encode(0, &mut f);
        f.put_i16(0);
        f.put_nullable_string(None, false);
        f.put_nullable_bytes(None, false);
        assert_eq!(
            decode_response::<SaslAuthenticateRequest>(0, &f),
            Err(DecodeError::UnexpectedNull("bytes"))
        );
    }

    #[test]
    fn rejects_a_huge_tagged_field_count() {
        let mut f = frame(2, &sample(2));
        f.pop();
        f.put_uvarint(u32::MAX);
        assert!(decode_response::<SaslAuthenticateRequest>(2, &f).is_err());
    }

    #[test]
    fn debug_output_never_shows_the_auth_bytes() {
        let secret = std::str::from_utf8(SECRET)
            .unwrap()
            .trim_start_matches('\0');
        let request = format!(
            "{:?}",
            SaslAuthenticateRequest {
                auth_bytes: SECRET.to_vec(),
            }
        );
        let response = format!("{:?}", sample(2));
        let pretty = format!("{:#?}", sample(2));
        for shown in [&request, &response, &pretty] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(!shown.contains(secret), "{shown}");
            // Nor as a byte list, as a derived Debug of a Vec<u8> would show it.
            assert!(!shown.contains("104, 117, 110"), "{shown}");
            assert!(shown.contains(&format!("<{} bytes redacted>", SECRET.len())));
        }
        assert!(response.contains("session_lifetime_ms: 3600000"));
    }
}

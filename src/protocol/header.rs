//! Request header v1/v2 and response header v0/v1.
//!
//! Request header v1: api_key INT16, api_version INT16, correlation_id INT32, client_id
//! NULLABLE_STRING. v2 (flexible requests) adds a tagged-field section; its client_id stays a
//! plain NULLABLE_STRING for compatibility. Response header v0: correlation_id INT32; v1
//! (flexible responses) adds a tagged-field section.

use super::codec::{DecodeResult, Reader, Writer};
use super::ApiKey;

/// A request header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RequestHeader<'a> {
    /// The API of the request.
    pub api_key: ApiKey,
    /// The API version of the request.
    pub api_version: i16,
    /// Echoed by the broker in the response header.
    pub correlation_id: i32,
    /// client.id, for the broker's logs and quotas.
    pub client_id: Option<&'a str>,
}

impl<'a> RequestHeader<'a> {
    /// Appends header v2 when `flexible`, else v1.
    pub fn encode(&self, flexible: bool, out: &mut Vec<u8>) {
        out.put_i16(self.api_key.0);
        out.put_i16(self.api_version);
        out.put_i32(self.correlation_id);
        // Not compact even in v2: brokers must parse the header before knowing the version.
        out.put_nullable_string(self.client_id, false);
        out.put_empty_tagged_fields(flexible);
    }

    /// Decodes header v2 when `flexible`, else v1 (used by tests and fake peers).
    pub fn decode(r: &mut Reader<'a>, flexible: bool) -> DecodeResult<Self> {
        let header = RequestHeader {
            api_key: ApiKey(r.i16()?),
            api_version: r.i16()?,
            correlation_id: r.i32()?,
            client_id: r.nullable_str(false)?,
        };
        r.skip_tagged_fields(flexible)?;
        Ok(header)
    }
}

/// A response header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseHeader {
    /// The correlation id of the request this answers.
    pub correlation_id: i32,
}

impl ResponseHeader {
    /// Decodes header `version` (0 or 1).
    pub fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let correlation_id = r.i32()?;
        r.skip_tagged_fields(version >= 1)?;
        Ok(ResponseHeader { correlation_id })
    }

    /// Appends header `version` (0 or 1); used by tests and fake peers.
    pub fn encode(&self, version: i16, out: &mut Vec<u8>) {
        out.put_i32(self.correlation_id);
        out.put_empty_tagged_fields(version >= 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_header_v1_matches_the_spec_bytes() {
        let mut out = Vec::new();
        RequestHeader {
            api_key: ApiKey::METADATA,
            api_version: 1,
            correlation_id: 7,
            client_id: Some("ab"),
        }
        .encode(false, &mut out);
        assert_eq!(out, [0, 3, 0, 1, 0, 0, 0, 7, 0, 2, b'a', b'b']);
        let mut v2 = Vec::new();
        RequestHeader {
            api_key: ApiKey::METADATA,
            api_version: 9,
            correlation_id: 7,
            client_id: None,
        }
        .encode(true, &mut v2);
        assert_eq!(v2, [0, 3, 0, 9, 0, 0, 0, 7, 0xff, 0xff, 0]);
    }

    #[test]
    fn response_header_v1_skips_tagged_fields() {
        let bytes = [0, 0, 0, 42, 1, 5, 1, 0xaa];
        let mut r = Reader::new(&bytes);
        assert_eq!(
            ResponseHeader::decode(&mut r, 1).unwrap().correlation_id,
            42
        );
        r.finish().unwrap();
    }
}

//! The Kafka wire protocol, pure: encode into a `Vec<u8>`, decode from a bounded `&[u8]`.
//!
//! No sockets, no threads, no clocks. Each API lives in its own file with its supported
//! version range as a constant; [`Request`] ties a request type to its response type.
//! Framing helpers here add the 4-byte size prefix and the request/response headers.
//!
//! Versions are chosen by range ([`VersionRange::highest_common`]): the highest version that
//! both this client and the broker support, never an exact match.

pub mod add_offsets_to_txn;
pub mod add_partitions_to_txn;
pub mod api_versions;
pub mod codec;
pub mod end_txn;
pub mod find_coordinator;
pub mod header;
pub mod init_producer_id;
pub mod metadata;
pub mod produce;
pub mod sasl_authenticate;
pub mod sasl_handshake;
pub mod txn_offset_commit;

pub use codec::{DecodeError, DecodeResult, Reader, Writer};

use header::{RequestHeader, ResponseHeader};

/// A Kafka API key (the first field of every request header).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ApiKey(pub i16);

impl ApiKey {
    /// Produce (0).
    pub const PRODUCE: ApiKey = ApiKey(0);
    /// Metadata (3).
    pub const METADATA: ApiKey = ApiKey(3);
    /// FindCoordinator (10).
    pub const FIND_COORDINATOR: ApiKey = ApiKey(10);
    /// SaslHandshake (17).
    pub const SASL_HANDSHAKE: ApiKey = ApiKey(17);
    /// ApiVersions (18).
    pub const API_VERSIONS: ApiKey = ApiKey(18);
    /// InitProducerId (22).
    pub const INIT_PRODUCER_ID: ApiKey = ApiKey(22);
    /// AddPartitionsToTxn (24).
    pub const ADD_PARTITIONS_TO_TXN: ApiKey = ApiKey(24);
    /// AddOffsetsToTxn (25).
    pub const ADD_OFFSETS_TO_TXN: ApiKey = ApiKey(25);
    /// EndTxn (26).
    pub const END_TXN: ApiKey = ApiKey(26);
    /// TxnOffsetCommit (28).
    pub const TXN_OFFSET_COMMIT: ApiKey = ApiKey(28);
    /// SaslAuthenticate (36).
    pub const SASL_AUTHENTICATE: ApiKey = ApiKey(36);
}

/// An inclusive range of API versions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VersionRange {
    /// Lowest supported version.
    pub min: i16,
    /// Highest supported version.
    pub max: i16,
}

impl VersionRange {
    /// A range from `min` to `max`, inclusive.
    pub const fn new(min: i16, max: i16) -> Self {
        VersionRange { min, max }
    }

    /// The highest version in both ranges, or `None` when they do not overlap.
    pub fn highest_common(&self, other: &VersionRange) -> Option<i16> {
        let hi = self.max.min(other.max);
        let lo = self.min.max(other.min);
        (hi >= lo).then_some(hi)
    }

    /// Whether `version` lies in the range.
    pub fn contains(&self, version: i16) -> bool {
        (self.min..=self.max).contains(&version)
    }
}

/// A request body that this client can encode.
pub trait Request {
    /// The API this request belongs to.
    const API_KEY: ApiKey;
    /// The versions this client implements.
    const VERSIONS: VersionRange;
    /// The first version that uses flexible encoding (KIP-482).
    const FIRST_FLEXIBLE: i16;
    /// The matching response body.
    type Response: Response;

    /// Appends the body at `version`, which must lie in [`Request::VERSIONS`].
    fn encode_body(&self, version: i16, out: &mut Vec<u8>);

    /// Whether the broker answers this request. Only Produce with acks=0 does not.
    fn expects_response(&self) -> bool {
        true
    }

    /// About how many bytes the body takes, so that the frame is allocated once (a
    /// Produce request of a megabyte would otherwise be copied as its buffer doubles).
    fn body_size_hint(&self) -> usize {
        64
    }
}

/// A response body that this client can decode.
pub trait Response: Sized {
    /// Decodes the body at `version`. The reader holds exactly the body; the caller checks
    /// that nothing is left over.
    fn decode_body(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self>;
}

/// Whether `version` of request type `R` uses flexible encoding.
pub fn is_flexible<R: Request>(version: i16) -> bool {
    version >= R::FIRST_FLEXIBLE
}

/// The response header version for an API at a version: v1 for flexible versions, v0
/// otherwise, except that ApiVersions responses always use v0 (so that a client can read
/// the broker's answer before it knows which versions the broker speaks).
pub fn response_header_version(api_key: ApiKey, flexible: bool) -> i16 {
    if flexible && api_key != ApiKey::API_VERSIONS {
        1
    } else {
        0
    }
}

/// Encodes a whole request frame: the 4-byte size prefix, the request header (v2 for
/// flexible versions, v1 otherwise) and the body.
pub fn encode_request<R: Request>(
    request: &R,
    version: i16,
    correlation_id: i32,
    client_id: Option<&str>,
) -> Vec<u8> {
    let header_hint = 64 + client_id.map_or(0, str::len);
    let mut out = Vec::with_capacity(header_hint + request.body_size_hint());
    out.put_i32(0); // size, patched below
    let header = RequestHeader {
        api_key: R::API_KEY,
        api_version: version,
        correlation_id,
        client_id,
    };
    header.encode(is_flexible::<R>(version), &mut out);
    request.encode_body(version, &mut out);
    patch_frame_size(&mut out);
    out
}

/// Writes the size of the frame (everything after the first 4 bytes) into its first 4
/// bytes.
pub fn patch_frame_size(frame: &mut [u8]) {
    let size = i32::try_from(frame.len() - 4).unwrap_or(i32::MAX);
    frame[..4].copy_from_slice(&size.to_be_bytes());
}

/// Reads the correlation id at the front of a response frame (the bytes after the size
/// prefix), which every response header version starts with.
pub fn peek_correlation_id(frame: &[u8]) -> DecodeResult<i32> {
    Reader::new(frame).i32()
}

/// Decodes a response frame (the bytes after the size prefix) to a request of type `R` sent
/// at `version`: the header, then the body.
///
/// Bytes after the end of the body are ignored (with a debug log), as Java's client and
/// librdkafka ignore them: librdkafka's mock cluster writes one stray byte after flexible
/// Metadata responses. Everything *inside* the body stays strict: every length, count and
/// tagged-field size is checked against the bytes left.
pub fn decode_response<R: Request>(version: i16, frame: &[u8]) -> DecodeResult<(i32, R::Response)> {
    let mut r = Reader::new(frame);
    let flexible = is_flexible::<R>(version);
    let header = ResponseHeader::decode(&mut r, response_header_version(R::API_KEY, flexible))?;
    let body = R::Response::decode_body(&mut r, version)?;
    if r.remaining() > 0 {
        log::debug!(
            "ignoring {} bytes after the body of API {} v{version} response {}",
            r.remaining(),
            R::API_KEY.0,
            header.correlation_id
        );
    }
    Ok((header.correlation_id, body))
}

/// A decoded response of any API this client speaks; what a connection's reader thread hands
/// to its owner.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ResponseBody {
    /// An ApiVersions response.
    ApiVersions(api_versions::ApiVersionsResponse),
    /// A Metadata response.
    Metadata(metadata::MetadataResponse),
    /// A Produce response.
    Produce(produce::ProduceResponse),
    /// An InitProducerId response.
    InitProducerId(init_producer_id::InitProducerIdResponse),
    /// A SaslHandshake response.
    SaslHandshake(sasl_handshake::SaslHandshakeResponse),
    /// A SaslAuthenticate response.
    SaslAuthenticate(sasl_authenticate::SaslAuthenticateResponse),
    /// A FindCoordinator response.
    FindCoordinator(find_coordinator::FindCoordinatorResponse),
    /// An AddPartitionsToTxn response.
    AddPartitionsToTxn(add_partitions_to_txn::AddPartitionsToTxnResponse),
    /// An AddOffsetsToTxn response.
    AddOffsetsToTxn(add_offsets_to_txn::AddOffsetsToTxnResponse),
    /// An EndTxn response.
    EndTxn(end_txn::EndTxnResponse),
    /// A TxnOffsetCommit response.
    TxnOffsetCommit(txn_offset_commit::TxnOffsetCommitResponse),
}

/// `TryFrom<ResponseBody>` for each response type, so typed callers can unwrap a body.
macro_rules! response_body_conversions {
    ($($variant:ident => $ty:ty),* $(,)?) => {$(
        impl TryFrom<ResponseBody> for $ty {
            type Error = ResponseBody;
            fn try_from(body: ResponseBody) -> Result<Self, ResponseBody> {
                match body {
                    ResponseBody::$variant(b) => Ok(b),
                    other => Err(other),
                }
            }
        }
    )*};
}

response_body_conversions! {
    ApiVersions => api_versions::ApiVersionsResponse,
    Metadata => metadata::MetadataResponse,
    Produce => produce::ProduceResponse,
    InitProducerId => init_producer_id::InitProducerIdResponse,
    SaslHandshake => sasl_handshake::SaslHandshakeResponse,
    SaslAuthenticate => sasl_authenticate::SaslAuthenticateResponse,
    FindCoordinator => find_coordinator::FindCoordinatorResponse,
    AddPartitionsToTxn => add_partitions_to_txn::AddPartitionsToTxnResponse,
    AddOffsetsToTxn => add_offsets_to_txn::AddOffsetsToTxnResponse,
    EndTxn => end_txn::EndTxnResponse,
    TxnOffsetCommit => txn_offset_commit::TxnOffsetCommitResponse,
}

/// Decodes a response frame for the API `api_key` sent at `version`.
///
/// ApiVersions responses fall back to the v0 shape when the broker refused the version we
/// sent (see [`api_versions::decode_with_fallback`]).
pub fn decode_any_response(
    api_key: ApiKey,
    version: i16,
    frame: &[u8],
) -> DecodeResult<(i32, ResponseBody)> {
    use ResponseBody as B;
    match api_key {
        ApiKey::API_VERSIONS => {
            check_version::<api_versions::ApiVersionsRequest>(version)?;
            api_versions::decode_with_fallback(version, frame).map(|(c, b)| (c, B::ApiVersions(b)))
        }
        ApiKey::METADATA => decode_checked::<metadata::MetadataRequest>(version, frame)
            .map(|(c, b)| (c, B::Metadata(b))),
        ApiKey::PRODUCE => decode_checked::<produce::ProduceRequest>(version, frame)
            .map(|(c, b)| (c, B::Produce(b))),
        ApiKey::INIT_PRODUCER_ID => {
            decode_checked::<init_producer_id::InitProducerIdRequest>(version, frame)
                .map(|(c, b)| (c, B::InitProducerId(b)))
        }
        ApiKey::SASL_HANDSHAKE => {
            decode_checked::<sasl_handshake::SaslHandshakeRequest>(version, frame)
                .map(|(c, b)| (c, B::SaslHandshake(b)))
        }
        ApiKey::SASL_AUTHENTICATE => {
            decode_checked::<sasl_authenticate::SaslAuthenticateRequest>(version, frame)
                .map(|(c, b)| (c, B::SaslAuthenticate(b)))
        }
        ApiKey::FIND_COORDINATOR => {
            decode_checked::<find_coordinator::FindCoordinatorRequest>(version, frame)
                .map(|(c, b)| (c, B::FindCoordinator(b)))
        }
        ApiKey::ADD_PARTITIONS_TO_TXN => {
            decode_checked::<add_partitions_to_txn::AddPartitionsToTxnRequest>(version, frame)
                .map(|(c, b)| (c, B::AddPartitionsToTxn(b)))
        }
        ApiKey::ADD_OFFSETS_TO_TXN => {
            decode_checked::<add_offsets_to_txn::AddOffsetsToTxnRequest>(version, frame)
                .map(|(c, b)| (c, B::AddOffsetsToTxn(b)))
        }
        ApiKey::END_TXN => {
            decode_checked::<end_txn::EndTxnRequest>(version, frame).map(|(c, b)| (c, B::EndTxn(b)))
        }
        ApiKey::TXN_OFFSET_COMMIT => {
            decode_checked::<txn_offset_commit::TxnOffsetCommitRequest>(version, frame)
                .map(|(c, b)| (c, B::TxnOffsetCommit(b)))
        }
        ApiKey(other) => Err(DecodeError::UnsupportedVersion {
            api_key: other,
            version,
        }),
    }
}

/// Rejects a version outside the range this client implements for `R`: the decoders assume
/// it (Produce v0–v2, for example, have a different shape that they do not know).
fn check_version<R: Request>(version: i16) -> DecodeResult<()> {
    if R::VERSIONS.contains(version) {
        Ok(())
    } else {
        Err(DecodeError::UnsupportedVersion {
            api_key: R::API_KEY.0,
            version,
        })
    }
}

fn decode_checked<R: Request>(version: i16, frame: &[u8]) -> DecodeResult<(i32, R::Response)> {
    check_version::<R>(version)?;
    decode_response::<R>(version, frame)
}

/// Appends one tagged field (KIP-482): its tag, the size of its value, then the value that
/// `value` writes. The caller writes the section's field count first.
pub(crate) fn put_tagged_field(out: &mut Vec<u8>, tag: u32, value: impl FnOnce(&mut Vec<u8>)) {
    let mut field = Vec::new();
    value(&mut field);
    out.put_uvarint(tag);
    out.put_uvarint(u32::try_from(field.len()).unwrap_or(u32::MAX));
    out.put_raw(&field);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_highest_version_both_sides_support() {
        let ours = VersionRange::new(3, 11);
        assert_eq!(ours.highest_common(&VersionRange::new(0, 9)), Some(9));
        assert_eq!(ours.highest_common(&VersionRange::new(0, 13)), Some(11));
        assert_eq!(ours.highest_common(&VersionRange::new(5, 7)), Some(7));
        assert_eq!(ours.highest_common(&VersionRange::new(0, 2)), None);
        assert_eq!(ours.highest_common(&VersionRange::new(12, 13)), None);
    }

    #[test]
    fn decodes_sasl_responses_by_api_key_at_every_version() {
        use sasl_authenticate::{SaslAuthenticateRequest, SaslAuthenticateResponse};
        use sasl_handshake::SaslHandshakeResponse;
        let handshake = SaslHandshakeResponse {
            error_code: 0,
            mechanisms: vec!["PLAIN".into()],
        };
        for v in 0..=1 {
            let mut f = Vec::new();
            ResponseHeader { correlation_id: 5 }.encode(0, &mut f);
            handshake.encode_body(v, &mut f);
            let (corr, body) = decode_any_response(ApiKey::SASL_HANDSHAKE, v, &f).unwrap();
            assert_eq!(corr, 5);
            assert_eq!(SaslHandshakeResponse::try_from(body), Ok(handshake.clone()));
        }
        let authenticate = SaslAuthenticateResponse {
            auth_bytes: b"token".to_vec(),
            ..SaslAuthenticateResponse::default()
        };
        for v in 0..=2 {
            let flexible = is_flexible::<SaslAuthenticateRequest>(v);
            let mut f = Vec::new();
            ResponseHeader { correlation_id: 6 }.encode(
                response_header_version(ApiKey::SASL_AUTHENTICATE, flexible),
                &mut f,
            );
            authenticate.encode_body(v, &mut f);
            let (corr, body) = decode_any_response(ApiKey::SASL_AUTHENTICATE, v, &f).unwrap();
            assert_eq!(corr, 6);
            assert_eq!(
                SaslAuthenticateResponse::try_from(body),
                Ok(authenticate.clone())
            );
        }
        for (key, v) in [(ApiKey::SASL_HANDSHAKE, 2), (ApiKey::SASL_AUTHENTICATE, 3)] {
            assert_eq!(
                decode_any_response(key, v, &[0; 16]),
                Err(DecodeError::UnsupportedVersion {
                    api_key: key.0,
                    version: v
                })
            );
        }
    }

    #[test]
    fn decodes_transaction_responses_by_api_key_and_refuses_versions_beyond_ours() {
        use end_txn::{EndTxnRequest, EndTxnResponse};
        let body = EndTxnResponse {
            throttle_time_ms: 1,
            error_code: 90,
            producer_id: 4,
            producer_epoch: 5,
        };
        for v in 0..=5 {
            let flexible = is_flexible::<EndTxnRequest>(v);
            let mut f = Vec::new();
            ResponseHeader { correlation_id: 11 }
                .encode(response_header_version(ApiKey::END_TXN, flexible), &mut f);
            body.encode_body(v, &mut f);
            let (corr, got) = decode_any_response(ApiKey::END_TXN, v, &f).unwrap();
            assert_eq!(corr, 11);
            let want = if v >= 5 {
                body
            } else {
                EndTxnResponse {
                    producer_id: -1,
                    producer_epoch: -1,
                    ..body
                }
            };
            assert_eq!(EndTxnResponse::try_from(got), Ok(want), "version {v}");
        }
        // AddPartitionsToTxn v4+ is the brokers' batched form, which this client never sends.
        for (key, v) in [
            (ApiKey::FIND_COORDINATOR, 7),
            (ApiKey::ADD_PARTITIONS_TO_TXN, 4),
            (ApiKey::ADD_OFFSETS_TO_TXN, 5),
            (ApiKey::END_TXN, 6),
            (ApiKey::TXN_OFFSET_COMMIT, 6),
        ] {
            assert_eq!(
                decode_any_response(key, v, &[0; 16]),
                Err(DecodeError::UnsupportedVersion {
                    api_key: key.0,
                    version: v
                })
            );
        }
    }
}

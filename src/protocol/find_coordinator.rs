//! FindCoordinator (key 10), versions 0–6; v3 is the first flexible version.
//!
//! Asks any broker which broker coordinates a consumer group or a transactional id.
//!
//! Request: key STRING (v0–3 only); key_type INT8 (added in v1; 0 = group, 1 =
//! transaction); coordinator_keys ARRAY of STRING (added in v4, KIP-699, replacing `key`);
//! tagged fields from v3. v2 is the same as v1; v5 only adds the TRANSACTION_ABORTABLE error code
//! (KIP-890) and v6 the share-group key type (KIP-932), with the same shape as v4.
//!
//! Response, v0–3: throttle_time_ms INT32 (added in v1); error_code INT16; error_message
//! NULLABLE_STRING (added in v1); node_id INT32; host STRING; port INT32; tagged fields
//! from v3. From v4: throttle_time_ms INT32; coordinators ARRAY of (key STRING, node_id
//! INT32, host STRING, port INT32, error_code INT16, error_message NULLABLE_STRING, tagged
//! fields); tagged fields. Note that the per-key entries put the error *after* the address, while
//! the v0–3 body puts it before.
//!
//! Both shapes decode to the same [`FindCoordinatorResponse`]: one [`Coordinator`] per key.
//! Before v4 the response names no key, so its only entry has an empty `key` and answers
//! the request's single key.

use super::codec::{DecodeResult, Reader, Writer};
use super::{ApiKey, Request, Response, VersionRange};

const FIRST_FLEXIBLE: i16 = 3;

/// The first version that carries several keys (`coordinator_keys`) and answers each.
pub const FIRST_BATCHED: i16 = 4;

fn flexible(version: i16) -> bool {
    version >= FIRST_FLEXIBLE
}

/// What kind of coordinator a FindCoordinator request looks for (the `key_type` field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CoordinatorType(pub i8);

impl CoordinatorType {
    /// The coordinator of a consumer group; the key is the group id.
    pub const GROUP: CoordinatorType = CoordinatorType(0);
    /// The coordinator of a transactional producer; the key is the transactional id.
    pub const TRANSACTION: CoordinatorType = CoordinatorType(1);
}

/// A FindCoordinator request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FindCoordinatorRequest {
    /// Added in v1: the kind of coordinator. v0 can only look up group coordinators.
    pub key_type: CoordinatorType,
    /// The group or transactional ids to look up. Before v4 the request carries exactly
    /// one key: the first of these (an empty one if there are none); the others are not
    /// sent. [`lowest_version`](Self::lowest_version) says which versions can carry them.
    pub keys: Vec<String>,
}

impl FindCoordinatorRequest {
    /// A request for the coordinator of one key.
    pub fn single(key_type: CoordinatorType, key: impl Into<String>) -> Self {
        FindCoordinatorRequest {
            key_type,
            keys: vec![key.into()],
        }
    }

    /// The lowest version that carries this request whole: v1 for a key type other than
    /// group (v0 has no key type, and a broker would read it as a group lookup), v4 for
    /// more than one key. Sending at a lower version asks a different question, so the
    /// caller checks the negotiated version against this first (as Java's client does).
    pub fn lowest_version(&self) -> i16 {
        if self.keys.len() > 1 {
            FIRST_BATCHED
        } else if self.key_type != CoordinatorType::GROUP {
            1
        } else {
            0
        }
    }
}

impl Request for FindCoordinatorRequest {
    const API_KEY: ApiKey = ApiKey::FIND_COORDINATOR;
    const VERSIONS: VersionRange = VersionRange::new(0, 6);
    const FIRST_FLEXIBLE: i16 = FIRST_FLEXIBLE;
    type Response = FindCoordinatorResponse;

    fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        if version < FIRST_BATCHED {
            let key = self.keys.first().map_or("", String::as_str);
            out.put_string(key, flexible);
        }
        if version >= 1 {
            out.put_i8(self.key_type.0);
        }
        if version >= FIRST_BATCHED {
            out.put_array_len(self.keys.len(), flexible);
            for key in &self.keys {
                out.put_string(key, flexible);
            }
        }
        out.put_empty_tagged_fields(flexible);
    }
}

/// The coordinator found for one key, or why none was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coordinator {
    /// The key this entry answers; empty before v4, where the response names no key.
    pub key: String,
    /// The coordinator's broker id, -1 on error.
    pub node_id: i32,
    /// The coordinator's host name, empty on error.
    pub host: String,
    /// The coordinator's port, -1 on error.
    pub port: i32,
    /// The error code (0 = none; 15 = COORDINATOR_NOT_AVAILABLE, 14 =
    /// COORDINATOR_LOAD_IN_PROGRESS, 53 = TRANSACTIONAL_ID_AUTHORIZATION_FAILED, ...).
    pub error_code: i16,
    /// Added in v1: the broker's description of the error, `None` when there is none.
    pub error_message: Option<String>,
}

impl Default for Coordinator {
    fn default() -> Self {
        Coordinator {
            key: String::new(),
            node_id: -1,
            host: String::new(),
            port: -1,
            error_code: 0,
            error_message: None,
        }
    }
}

impl Coordinator {
    fn encode(&self, out: &mut Vec<u8>) {
        // Only in the batched (always flexible) shape.
        out.put_string(&self.key, true);
        out.put_i32(self.node_id);
        out.put_string(&self.host, true);
        out.put_i32(self.port);
        out.put_i16(self.error_code);
        out.put_nullable_string(self.error_message.as_deref(), true);
        out.put_empty_tagged_fields(true);
    }

    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let out = Coordinator {
            key: r.string(true)?,
            node_id: r.i32()?,
            host: r.string(true)?,
            port: r.i32()?,
            error_code: r.i16()?,
            error_message: r.nullable_string(true)?,
        };
        r.skip_tagged_fields(true)?;
        Ok(out)
    }
}

/// The fewest bytes a batched coordinator entry takes: empty key, node id, empty host,
/// port, error code, null message, no tags.
const MIN_COORDINATOR_LEN: usize = 1 + 4 + 1 + 4 + 2 + 1 + 1;

/// A FindCoordinator response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct FindCoordinatorResponse {
    /// Added in v1: how long the broker throttled the request.
    pub throttle_time_ms: i32,
    /// One entry per key. Before v4 exactly one entry, with an empty key; encoding at
    /// v0–3 writes the first entry (a default one if there is none).
    pub coordinators: Vec<Coordinator>,
}

impl FindCoordinatorResponse {
    /// Appends this response's body at `version` (for tests and fake peers). Fields the
    /// version does not have are left out.
    pub fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        if version >= 1 {
            out.put_i32(self.throttle_time_ms);
        }
        if version >= FIRST_BATCHED {
            out.put_array_len(self.coordinators.len(), flexible);
            for c in &self.coordinators {
                c.encode(out);
            }
        } else {
            let default = Coordinator::default();
            let c = self.coordinators.first().unwrap_or(&default);
            out.put_i16(c.error_code);
            if version >= 1 {
                out.put_nullable_string(c.error_message.as_deref(), flexible);
            }
            out.put_i32(c.node_id);
            out.put_string(&c.host, flexible);
            out.put_i32(c.port);
        }
        out.put_empty_tagged_fields(flexible);
    }
}

impl Response for FindCoordinatorResponse {
    fn decode_body(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flexible = flexible(version);
        let mut out = FindCoordinatorResponse::default();
        if version >= 1 {
            out.throttle_time_ms = r.i32()?;
        }
        if version >= FIRST_BATCHED {
            out.coordinators = r.array_of(flexible, MIN_COORDINATOR_LEN, Coordinator::decode)?;
        } else {
            let error_code = r.i16()?;
            let error_message = if version >= 1 {
                r.nullable_string(flexible)?
            } else {
                None
            };
            out.coordinators = vec![Coordinator {
                key: String::new(),
                node_id: r.i32()?,
                host: r.string(flexible)?,
                port: r.i32()?,
                error_code,
                error_message,
            }];
        }
        r.skip_tagged_fields(flexible)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::ResponseHeader;
    use crate::protocol::{decode_response, encode_request, response_header_version};

    fn sample(version: i16) -> FindCoordinatorResponse {
        let found = Coordinator {
            key: if version >= FIRST_BATCHED {
                "tx-1".into()
            } else {
                String::new()
            },
            node_id: 3,
            host: "broker-3.example".into(),
            port: 9093,
            error_code: 0,
            error_message: None,
        };
        let mut coordinators = vec![found];
        if version >= FIRST_BATCHED {
            coordinators.push(Coordinator {
                key: "tx-é".into(),
                error_code: 15,
                error_message: Some("The coordinator is not available.".into()),
                ..Coordinator::default()
            });
        } else if version >= 1 {
            coordinators[0].error_code = 14;
            coordinators[0].error_message = Some("loading".into());
        } else {
            coordinators[0].error_code = 14;
        }
        FindCoordinatorResponse {
            throttle_time_ms: if version >= 1 { 25 } else { 0 },
            coordinators,
        }
    }

    fn frame(version: i16, body: &FindCoordinatorResponse) -> Vec<u8> {
        let mut out = Vec::new();
        let header_version = response_header_version(ApiKey::FIND_COORDINATOR, flexible(version));
        ResponseHeader { correlation_id: 9 }.encode(header_version, &mut out);
        body.encode_body(version, &mut out);
        out
    }

    #[test]
    fn responses_round_trip_at_every_version() {
        for v in 0..=6 {
            let (corr, got) =
                decode_response::<FindCoordinatorRequest>(v, &frame(v, &sample(v))).unwrap();
            assert_eq!(corr, 9);
            assert_eq!(got, sample(v), "version {v}");
        }
    }

    #[test]
    fn rejects_truncated_find_coordinator_responses() {
        for v in 0..=6 {
            let f = frame(v, &sample(v));
            for len in 0..f.len() {
                assert!(
                    decode_response::<FindCoordinatorRequest>(v, &f[..len]).is_err(),
                    "version {v} prefix {len}"
                );
            }
        }
    }

    #[test]
    fn v0_to_v3_responses_put_the_error_before_the_address() {
        let mut body = Vec::new();
        sample(1).encode_body(1, &mut body);
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 25, // throttle
            0, 14, // error code
            0, 7, b'l', b'o', b'a', b'd', b'i', b'n', b'g',
            0, 0, 0, 3, // node id
            0, 16, b'b', b'r', b'o', b'k', b'e', b'r', b'-', b'3',
            b'.', b'e', b'x', b'a', b'm', b'p', b'l', b'e',
            0, 0, 0x23, 0x85, // 9093
        ];
        assert_eq!(body, want);
    }

    #[test]
    fn v4_responses_put_the_error_after_the_address() {
        let resp = FindCoordinatorResponse {
            throttle_time_ms: 0,
            coordinators: vec![Coordinator {
                key: "t".into(),
                node_id: 1,
                host: "h".into(),
                port: 2,
                error_code: 0,
                error_message: None,
            }],
        };
        let mut body = Vec::new();
        resp.encode_body(4, &mut body);
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 0, // throttle
            2, // one coordinator
            2, b't', 0, 0, 0, 1, 2, b'h', 0, 0, 0, 2, 0, 0, 0, 0, // entry and its tags
            0, // tags
        ];
        assert_eq!(body, want);
    }

    #[test]
    fn requests_match_the_spec_bytes() {
        let req = FindCoordinatorRequest::single(CoordinatorType::TRANSACTION, "tx");
        let f = encode_request(&req, 0, 1, None);
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 14, // size
            0, 10, 0, 0, 0, 0, 0, 1, 0xff, 0xff, // header v1
            0, 2, b't', b'x', // key; v0 has no key type
        ];
        assert_eq!(f, want);
        let mut body = Vec::new();
        req.encode_body(1, &mut body);
        assert_eq!(body, [0, 2, b't', b'x', 1]);
        body.clear();
        req.encode_body(3, &mut body);
        assert_eq!(body, [3, b't', b'x', 1, 0]);
        let batched = FindCoordinatorRequest {
            key_type: CoordinatorType::GROUP,
            keys: vec!["a".into(), "bc".into()],
        };
        for v in 4..=6 {
            body.clear();
            batched.encode_body(v, &mut body);
            assert_eq!(body, [0, 3, 2, b'a', 3, b'b', b'c', 0], "version {v}");
        }
        // Before v4 only the first key goes out.
        body.clear();
        batched.encode_body(3, &mut body);
        assert_eq!(body, [2, b'a', 0, 0]);
    }

    #[test]
    fn lowest_version_names_what_each_request_needs() {
        let group = FindCoordinatorRequest::single(CoordinatorType::GROUP, "g");
        assert_eq!(group.lowest_version(), 0);
        let tx = FindCoordinatorRequest::single(CoordinatorType::TRANSACTION, "t");
        assert_eq!(tx.lowest_version(), 1);
        let two = FindCoordinatorRequest {
            key_type: CoordinatorType::TRANSACTION,
            keys: vec!["a".into(), "b".into()],
        };
        assert_eq!(two.lowest_version(), FIRST_BATCHED);
    }

    #[test]
    fn rejects_a_coordinator_count_beyond_the_frame() {
        let mut f = Vec::new();
        ResponseHeader { correlation_id: 9 }.encode(1, &mut f);
        f.put_i32(0);
        f.put_uvarint(1 << 20);
        f.put_raw(&[0; 32]);
        assert!(decode_response::<FindCoordinatorRequest>(4, &f).is_err());
    }
}

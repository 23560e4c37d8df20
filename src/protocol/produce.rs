//! Produce (key 0), versions 3–12; v9 is the first flexible version.
//!
//! v3 is the first version that carries RecordBatch v2 (magic 2) and a transactional id;
//! older versions are never sent.
//!
//! Request: transactional_id NULLABLE_STRING; acks INT16; timeout_ms INT32; topics ARRAY of
//! (name STRING, partitions ARRAY of (index INT32, records NULLABLE_BYTES)). From v9
//! strings, bytes and arrays are compact and every struct and the body end with a (here
//! empty) tagged-field section. v10 to v12 change nothing on the wire (KIP-951 and KIP-890
//! change broker behaviour and error codes): v12 tells the broker that a transactional
//! producer uses KIP-890's protocol, in which the broker adds the partition to the
//! transaction itself. Under the classic protocol a transactional producer sends at most
//! [`LAST_VERSION_BEFORE_TRANSACTION_V2`].
//!
//! Response: responses ARRAY of (name STRING, partitions ARRAY of (index INT32, error_code
//! INT16, base_offset INT64, log_append_time_ms INT64, log_start_offset INT64 (added in
//! v5), record_errors ARRAY of (batch_index INT32, batch_index_error_message
//! NULLABLE_STRING) (added in v8), error_message NULLABLE_STRING (added in v8), tagged
//! fields from v9: tag 0 = current_leader (leader_id INT32, leader_epoch INT32, tagged
//! fields), added in v10)); throttle_time_ms INT32; tagged fields from v9: tag 0 =
//! node_endpoints COMPACT_ARRAY of (node_id INT32, host COMPACT_STRING, port INT32, rack
//! COMPACT_NULLABLE_STRING, tagged fields), added in v10 (KIP-951).
//!
//! A request with acks=0 gets no response, so [`ProduceRequest::expects_response`] says so.

use bytes::Bytes;

use super::codec::{DecodeResult, Reader, Writer};
use super::{put_tagged_field, ApiKey, Request, Response, VersionRange};

const FIRST_FLEXIBLE: i16 = 9;

/// The highest Produce version a transactional producer using the classic transaction
/// protocol (before KIP-890's transaction version 2) may send.
pub const LAST_VERSION_BEFORE_TRANSACTION_V2: i16 = 11;

fn flexible(version: i16) -> bool {
    version >= FIRST_FLEXIBLE
}

/// A Produce request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceRequest {
    /// The transactional id, `None` for a non-transactional producer.
    pub transactional_id: Option<String>,
    /// Acknowledgements required: 0 (none, no response), 1 (leader) or -1 (all in-sync
    /// replicas).
    pub acks: i16,
    /// How long the broker may wait for the acknowledgements, in milliseconds.
    pub timeout_ms: i32,
    /// The data to write, by topic.
    pub topics: Vec<TopicProduceData>,
}

/// The data for one topic of a Produce request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicProduceData {
    /// The topic name.
    pub name: String,
    /// The data to write, by partition.
    pub partitions: Vec<PartitionProduceData>,
}

/// The data for one partition of a Produce request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct PartitionProduceData {
    /// The partition number.
    pub index: i32,
    /// One encoded RecordBatch (v2), written as (compact) nullable bytes.
    pub records: Option<Bytes>,
}

impl Request for ProduceRequest {
    const API_KEY: ApiKey = ApiKey::PRODUCE;
    const VERSIONS: VersionRange = VersionRange::new(3, 12);
    const FIRST_FLEXIBLE: i16 = FIRST_FLEXIBLE;
    type Response = ProduceResponse;

    fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_nullable_string(self.transactional_id.as_deref(), flexible);
        out.put_i16(self.acks);
        out.put_i32(self.timeout_ms);
        out.put_array_len(self.topics.len(), flexible);
        for topic in &self.topics {
            out.put_string(&topic.name, flexible);
            out.put_array_len(topic.partitions.len(), flexible);
            for p in &topic.partitions {
                out.put_i32(p.index);
                out.put_nullable_bytes(p.records.as_deref(), flexible);
                out.put_empty_tagged_fields(flexible);
            }
            out.put_empty_tagged_fields(flexible);
        }
        out.put_empty_tagged_fields(flexible);
    }

    fn expects_response(&self) -> bool {
        self.acks != 0
    }

    fn body_size_hint(&self) -> usize {
        let id = self.transactional_id.as_ref().map_or(0, String::len);
        let topics: usize = self
            .topics
            .iter()
            .map(|t| {
                let records: usize = t
                    .partitions
                    .iter()
                    .map(|p| 16 + p.records.as_ref().map_or(0, |r| r.len()))
                    .sum();
                16 + t.name.len() + records
            })
            .sum();
        16 + id + topics
    }
}

/// A Produce response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ProduceResponse {
    /// The results, by topic.
    pub responses: Vec<TopicProduceResponse>,
    /// How long the broker throttled the request.
    pub throttle_time_ms: i32,
    /// Added in v10 (tagged field 0 of the body, KIP-951): endpoints of the new leaders named
    /// in partitions that failed with NOT_LEADER_OR_FOLLOWER. Empty when absent.
    pub node_endpoints: Vec<NodeEndpoint>,
}

/// The results for one topic of a Produce response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TopicProduceResponse {
    /// The topic name.
    pub name: String,
    /// The results, by partition.
    pub partitions: Vec<PartitionProduceResponse>,
}

/// The result for one partition of a Produce response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProduceResponse {
    /// The partition number.
    pub index: i32,
    /// The error code (0 = none).
    pub error_code: i16,
    /// The offset of the first record written.
    pub base_offset: i64,
    /// Added in v2: the broker's append time when the topic uses LogAppendTime, else -1.
    pub log_append_time_ms: i64,
    /// Added in v5: the partition's log start offset (-1 when absent).
    pub log_start_offset: i64,
    /// Added in v8 (KIP-467): the records that made the broker drop the batch.
    pub record_errors: Vec<BatchIndexAndErrorMessage>,
    /// Added in v8 (KIP-467): a summary of why the batch was dropped.
    pub error_message: Option<String>,
    /// Added in v10 (tagged field 0 of the partition, KIP-951): the new leader, sent with
    /// NOT_LEADER_OR_FOLLOWER. `None` when absent.
    pub current_leader: Option<LeaderIdAndEpoch>,
}

impl Default for PartitionProduceResponse {
    fn default() -> Self {
        PartitionProduceResponse {
            index: 0,
            error_code: 0,
            base_offset: 0,
            log_append_time_ms: -1,
            log_start_offset: -1,
            record_errors: Vec::new(),
            error_message: None,
            current_leader: None,
        }
    }
}

/// A record that made the broker drop its batch (added in v8, KIP-467).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct BatchIndexAndErrorMessage {
    /// The index of the record within its batch.
    pub batch_index: i32,
    /// Why that record was refused.
    pub batch_index_error_message: Option<String>,
}

/// A partition's current leader (added in v10, KIP-951).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LeaderIdAndEpoch {
    /// The leader's node id, -1 when unknown.
    pub leader_id: i32,
    /// The leader epoch, -1 when unknown.
    pub leader_epoch: i32,
}

impl Default for LeaderIdAndEpoch {
    fn default() -> Self {
        LeaderIdAndEpoch {
            leader_id: -1,
            leader_epoch: -1,
        }
    }
}

/// A broker endpoint sent with a Produce response (added in v10, KIP-951).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeEndpoint {
    /// The broker's node id.
    pub node_id: i32,
    /// The broker's host name.
    pub host: String,
    /// The broker's port.
    pub port: i32,
    /// The broker's rack, `None` when it has none.
    pub rack: Option<String>,
}

/// Minimum wire sizes of the repeated structs, by version (empty strings and arrays).
fn min_topic_len(flexible: bool) -> usize {
    if flexible {
        1 + 1 + 1
    } else {
        2 + 4
    }
}

fn min_partition_len(version: i16) -> usize {
    let f = flexible(version);
    let mut n = 4 + 2 + 8 + 8;
    if version >= 5 {
        n += 8;
    }
    if version >= 8 {
        n += if f { 1 + 1 } else { 4 + 2 };
    }
    n + usize::from(f)
}

/// batch_index plus a null message: INT16 -1, or a compact null and an empty tag section.
/// Both encodings take 6 bytes.
const MIN_RECORD_ERROR_LEN: usize = 4 + 2;

/// node_endpoints only exist in flexible versions: node_id, host, port, rack, tags.
const MIN_NODE_ENDPOINT_LEN: usize = 4 + 1 + 4 + 1 + 1;

impl ProduceResponse {
    /// Appends this response's body at `version` (for tests and fake peers). The v10 tagged
    /// fields are written only when they hold something, as Kafka does.
    pub fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_array_len(self.responses.len(), flexible);
        for topic in &self.responses {
            out.put_string(&topic.name, flexible);
            out.put_array_len(topic.partitions.len(), flexible);
            for p in &topic.partitions {
                p.encode(version, out);
            }
            out.put_empty_tagged_fields(flexible);
        }
        out.put_i32(self.throttle_time_ms);
        if version >= 10 && !self.node_endpoints.is_empty() {
            out.put_uvarint(1);
            put_tagged_field(out, 0, |f| {
                f.put_array_len(self.node_endpoints.len(), true);
                for n in &self.node_endpoints {
                    n.encode(f);
                }
            });
        } else {
            out.put_empty_tagged_fields(flexible);
        }
    }
}

impl Response for ProduceResponse {
    fn decode_body(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flexible = flexible(version);
        let responses = r.array_of(flexible, min_topic_len(flexible), |r| {
            let name = r.string(flexible)?;
            let partitions = r.array_of(flexible, min_partition_len(version), |r| {
                PartitionProduceResponse::decode(r, version)
            })?;
            r.skip_tagged_fields(flexible)?;
            Ok(TopicProduceResponse { name, partitions })
        })?;
        let throttle_time_ms = r.i32()?;
        let mut node_endpoints = Vec::new();
        r.tagged_fields(flexible, |tag, f| match tag {
            0 if version >= 10 => {
                node_endpoints = f.array_of(true, MIN_NODE_ENDPOINT_LEN, NodeEndpoint::decode)?;
                Ok(true)
            }
            _ => Ok(false),
        })?;
        Ok(ProduceResponse {
            responses,
            throttle_time_ms,
            node_endpoints,
        })
    }
}

impl PartitionProduceResponse {
    fn encode(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_i32(self.index);
        out.put_i16(self.error_code);
        out.put_i64(self.base_offset);
        out.put_i64(self.log_append_time_ms);
        if version >= 5 {
            out.put_i64(self.log_start_offset);
        }
        if version >= 8 {
            out.put_array_len(self.record_errors.len(), flexible);
            for e in &self.record_errors {
                out.put_i32(e.batch_index);
                out.put_nullable_string(e.batch_index_error_message.as_deref(), flexible);
                out.put_empty_tagged_fields(flexible);
            }
            out.put_nullable_string(self.error_message.as_deref(), flexible);
        }
        match self.current_leader {
            Some(leader) if version >= 10 => {
                out.put_uvarint(1);
                put_tagged_field(out, 0, |f| {
                    f.put_i32(leader.leader_id);
                    f.put_i32(leader.leader_epoch);
                    f.put_empty_tagged_fields(true);
                });
            }
            _ => out.put_empty_tagged_fields(flexible),
        }
    }

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flexible = flexible(version);
        let mut p = PartitionProduceResponse {
            index: r.i32()?,
            error_code: r.i16()?,
            base_offset: r.i64()?,
            log_append_time_ms: r.i64()?,
            ..PartitionProduceResponse::default()
        };
        if version >= 5 {
            p.log_start_offset = r.i64()?;
        }
        if version >= 8 {
            p.record_errors = r.array_of(flexible, MIN_RECORD_ERROR_LEN, |r| {
                let e = BatchIndexAndErrorMessage {
                    batch_index: r.i32()?,
                    batch_index_error_message: r.nullable_string(flexible)?,
                };
                r.skip_tagged_fields(flexible)?;
                Ok(e)
            })?;
            p.error_message = r.nullable_string(flexible)?;
        }
        let mut current_leader = None;
        r.tagged_fields(flexible, |tag, f| match tag {
            0 if version >= 10 => {
                let leader = LeaderIdAndEpoch {
                    leader_id: f.i32()?,
                    leader_epoch: f.i32()?,
                };
                f.skip_tagged_fields(true)?;
                current_leader = Some(leader);
                Ok(true)
            }
            _ => Ok(false),
        })?;
        p.current_leader = current_leader;
        Ok(p)
    }
}

impl NodeEndpoint {
    fn encode(&self, out: &mut Vec<u8>) {
        out.put_i32(self.node_id);
        out.put_string(&self.host, true);
        out.put_i32(self.port);
        out.put_nullable_string(self.rack.as_deref(), true);
        out.put_empty_tagged_fields(true);
    }

    fn decode(r: &mut Reader<'_>) -> DecodeResult<Self> {
        let n = NodeEndpoint {
            node_id: r.i32()?,
            host: r.string(true)?,
            port: r.i32()?,
            rack: r.nullable_string(true)?,
        };
        r.skip_tagged_fields(true)?;
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::ResponseHeader;
    use crate::protocol::{decode_response, encode_request, response_header_version, DecodeError};

    /// A response with a non-default value in every field.
    fn sample() -> ProduceResponse {
        ProduceResponse {
            responses: vec![TopicProduceResponse {
                name: "orders".into(),
                partitions: vec![
                    PartitionProduceResponse {
                        index: 3,
                        error_code: 6,
                        base_offset: 1_000_000_007,
                        log_append_time_ms: 1_700_000_000_000,
                        log_start_offset: 42,
                        record_errors: vec![
                            BatchIndexAndErrorMessage {
                                batch_index: 2,
                                batch_index_error_message: Some("bad key".into()),
                            },
                            BatchIndexAndErrorMessage {
                                batch_index: 5,
                                batch_index_error_message: None,
                            },
                        ],
                        error_message: Some("invalid record".into()),
                        current_leader: Some(LeaderIdAndEpoch {
                            leader_id: 2,
                            leader_epoch: 9,
                        }),
                    },
                    PartitionProduceResponse {
                        index: 4,
                        base_offset: 10,
                        ..PartitionProduceResponse::default()
                    },
                ],
            }],
            throttle_time_ms: 25,
            node_endpoints: vec![NodeEndpoint {
                node_id: 2,
                host: "b2.example".into(),
                port: 9094,
                rack: Some("r2".into()),
            }],
        }
    }

    fn at_version(full: &ProduceResponse, version: i16) -> ProduceResponse {
        let mut m = full.clone();
        if version < 10 {
            m.node_endpoints.clear();
        }
        for p in m.responses.iter_mut().flat_map(|t| t.partitions.iter_mut()) {
            if version < 5 {
                p.log_start_offset = -1;
            }
            if version < 8 {
                p.record_errors.clear();
                p.error_message = None;
            }
            if version < 10 {
                p.current_leader = None;
            }
        }
        m
    }

    fn frame(version: i16, body: &ProduceResponse) -> Vec<u8> {
        let mut out = Vec::new();
        let header_version = response_header_version(ApiKey::PRODUCE, flexible(version));
        ResponseHeader { correlation_id: 11 }.encode(header_version, &mut out);
        body.encode_body(version, &mut out);
        out
    }

    #[test]
    fn responses_round_trip_at_every_version() {
        for v in 3..=11 {
            let want = at_version(&sample(), v);
            let (corr, got) = decode_response::<ProduceRequest>(v, &frame(v, &want)).unwrap();
            assert_eq!(corr, 11);
            assert_eq!(got, want, "version {v}");
        }
    }

    #[test]
    fn rejects_truncated_produce_responses() {
        for v in 3..=11 {
            let f = frame(v, &at_version(&sample(), v));
            for len in 0..f.len() {
                assert!(
                    decode_response::<ProduceRequest>(v, &f[..len]).is_err(),
                    "version {v} prefix {len}"
                );
            }
        }
    }

    #[test]
    fn rejects_huge_topic_and_partition_counts() {
        // Topic count i32::MAX in v3, and a partition count near u32::MAX in v9.
        let mut v3 = vec![0, 0, 0, 1];
        v3.put_i32(i32::MAX);
        v3.extend_from_slice(&[0; 32]);
        assert!(matches!(
            decode_response::<ProduceRequest>(3, &v3),
            Err(DecodeError::InvalidLength { .. })
        ));
        let mut v9 = vec![0, 0, 0, 1, 0, 2];
        v9.put_string("t", true);
        v9.put_uvarint(u32::MAX - 1);
        v9.extend_from_slice(&[0; 32]);
        assert!(matches!(
            decode_response::<ProduceRequest>(9, &v9),
            Err(DecodeError::InvalidLength { .. })
        ));
    }

    #[test]
    fn skips_unknown_tags_and_ignores_tag_zero_before_v10() {
        // In v9 tag 0 has no meaning yet, so the sample's leader must be skipped, not read.
        let mut f = Vec::new();
        ResponseHeader { correlation_id: 1 }.encode(1, &mut f);
        sample().encode_body(10, &mut f);
        let (_, got) = decode_response::<ProduceRequest>(9, &f).unwrap();
        assert_eq!(got, at_version(&sample(), 9));
    }

    #[test]
    fn acks_zero_expects_no_response() {
        let mut req = ProduceRequest::default();
        assert!(!req.expects_response());
        req.acks = -1;
        assert!(req.expects_response());
    }

    fn one_partition_request() -> ProduceRequest {
        ProduceRequest {
            transactional_id: None,
            acks: -1,
            timeout_ms: 30_000,
            topics: vec![TopicProduceData {
                name: "t".into(),
                partitions: vec![PartitionProduceData {
                    index: 1,
                    records: Some(Bytes::from_static(&[0xaa, 0xbb])),
                }],
            }],
        }
    }

    #[test]
    fn a_produce_frame_is_allocated_once_at_every_version() {
        let mut request = one_partition_request();
        request.transactional_id = Some("a-transactional-id".into());
        for (t, topic) in ["first", "a-longer-topic-name"].into_iter().enumerate() {
            let partitions = (0..50)
                .map(|p| PartitionProduceData {
                    index: p,
                    records: Some(Bytes::from(vec![t as u8; 100 + p as usize])),
                })
                .collect();
            request.topics.push(TopicProduceData {
                name: topic.into(),
                partitions,
            });
        }
        for version in ProduceRequest::VERSIONS.min..=ProduceRequest::VERSIONS.max {
            let frame = encode_request(&request, version, 7, Some("client"));
            let allocated = 64 + "client".len() + request.body_size_hint();
            assert!(
                frame.len() <= allocated,
                "v{version}: {} bytes outgrew the {allocated} allocated",
                frame.len()
            );
            assert!(allocated - frame.len() < 2_048, "v{version}: a close hint");
        }
    }

    #[test]
    fn v3_request_with_one_partition_matches_the_spec_bytes() {
        let f = encode_request(&one_partition_request(), 3, 9, Some("c"));
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 40, // size
            0, 0, 0, 3, 0, 0, 0, 9, 0, 1, b'c', // header v1
            0xff, 0xff, // null transactional id
            0xff, 0xff, // acks -1
            0, 0, 0x75, 0x30, // timeout 30000
            0, 0, 0, 1, 0, 1, b't', // one topic "t"
            0, 0, 0, 1, 0, 0, 0, 1, // one partition, index 1
            0, 0, 0, 2, 0xaa, 0xbb, // records
        ];
        assert_eq!(f, want);
    }

    #[test]
    fn v9_request_with_one_partition_matches_the_spec_bytes() {
        let f = encode_request(&one_partition_request(), 9, 9, Some("c"));
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 33, // size
            0, 0, 0, 9, 0, 0, 0, 9, 0, 1, b'c', 0, // header v2
            0, // null compact transactional id
            0xff, 0xff, 0, 0, 0x75, 0x30, // acks, timeout
            2, 2, b't', // one topic "t"
            2, 0, 0, 0, 1, // one partition, index 1
            3, 0xaa, 0xbb, // compact records
            0, 0, 0, // tags of partition, topic, body
        ];
        assert_eq!(f, want);
    }
}

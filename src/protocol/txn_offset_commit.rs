//! TxnOffsetCommit (key 28), versions 0–5; v3 is the first flexible version.
//!
//! Sent to the *group* coordinator (not the transaction coordinator) after AddOffsetsToTxn:
//! commits consumer offsets as part of the producer's transaction.
//!
//! Request: transactional_id STRING; group_id STRING; producer_id INT64; producer_epoch
//! INT16; generation_id INT32 (added in v3); member_id STRING (added in v3);
//! group_instance_id NULLABLE_STRING (added in v3); topics ARRAY of (name STRING,
//! partitions ARRAY of (partition_index INT32, committed_offset INT64,
//! committed_leader_epoch INT32 (added in v2), committed_metadata NULLABLE_STRING, tagged
//! fields from v3), tagged fields from v3); tagged fields from v3. v1 is the same as v0;
//! v4 only adds the TRANSACTION_ABORTABLE error code (KIP-890); v5 has v4's shape and
//! belongs to transaction protocol version 2 (KIP-890 part 2), where the coordinator adds
//! the group to the transaction itself.
//!
//! Response: throttle_time_ms INT32; topics ARRAY of (name STRING, partitions ARRAY of
//! (partition_index INT32, error_code INT16, tagged fields from v3), tagged fields from
//! v3); tagged fields from v3. The response has the same shape at every version; v3 adds
//! the ILLEGAL_GENERATION, UNKNOWN_MEMBER_ID and FENCED_INSTANCE_ID error codes.
//!
//! The group metadata of v3 (generation, member id, instance id) lets the coordinator
//! fence zombie consumers (KIP-447). Before v3 it is not sent; Java's client refuses to
//! send a request carrying it below v3 ([`TxnOffsetCommitRequest::lowest_version`]).

use super::codec::{DecodeResult, Reader, Writer};
use super::{ApiKey, Request, Response, VersionRange};

const FIRST_FLEXIBLE: i16 = 3;

/// The highest version to send while transaction protocol version 2 (KIP-890 part 2) is
/// not enabled on the cluster (as Java's client chooses).
pub const LAST_VERSION_BEFORE_TRANSACTION_V2: i16 = 4;

fn flexible(version: i16) -> bool {
    version >= FIRST_FLEXIBLE
}

/// A TxnOffsetCommit request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The consumer group whose offsets to commit.
    pub group_id: String,
    /// The producer id the coordinator assigned to the transactional id.
    pub producer_id: i64,
    /// The producer's current epoch.
    pub producer_epoch: i16,
    /// Added in v3: the consumer's generation, -1 when unknown.
    pub generation_id: i32,
    /// Added in v3: the member id the group coordinator assigned, empty when unknown.
    pub member_id: String,
    /// Added in v3: the static member's instance id (`group.instance.id`), if any.
    pub group_instance_id: Option<String>,
    /// The offsets to commit, by topic.
    pub topics: Vec<TxnOffsetCommitTopic>,
}

impl Default for TxnOffsetCommitRequest {
    /// A request without group metadata (generation -1, no member, no instance) and
    /// without offsets; the ids and the epoch are to be filled in.
    fn default() -> Self {
        TxnOffsetCommitRequest {
            transactional_id: String::new(),
            group_id: String::new(),
            producer_id: -1,
            producer_epoch: -1,
            generation_id: -1,
            member_id: String::new(),
            group_instance_id: None,
            topics: Vec::new(),
        }
    }
}

impl TxnOffsetCommitRequest {
    /// The lowest version that carries this request whole: v3 when it holds group
    /// metadata (a generation other than -1, a member id or an instance id), since
    /// earlier versions drop it and the coordinator could not fence a zombie consumer;
    /// v0 otherwise. Leader epochs other than -1 need v2 but are only a hint to the
    /// broker, and do not raise this.
    pub fn lowest_version(&self) -> i16 {
        let has_group_metadata = self.generation_id != -1
            || !self.member_id.is_empty()
            || self.group_instance_id.is_some();
        if has_group_metadata {
            3
        } else {
            0
        }
    }
}

/// The offsets of one topic's partitions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitTopic {
    /// The topic name.
    pub name: String,
    /// The offsets of its partitions.
    pub partitions: Vec<TxnOffsetCommitPartition>,
}

/// The offset to commit for one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TxnOffsetCommitPartition {
    /// The partition index.
    pub partition_index: i32,
    /// The offset to commit: the next record the group will consume.
    pub committed_offset: i64,
    /// Added in v2: the leader epoch of the last consumed record, -1 when unknown.
    pub committed_leader_epoch: i32,
    /// Metadata kept with the offset, if any.
    pub committed_metadata: Option<String>,
}

impl Request for TxnOffsetCommitRequest {
    const API_KEY: ApiKey = ApiKey::TXN_OFFSET_COMMIT;
    const VERSIONS: VersionRange = VersionRange::new(0, 5);
    const FIRST_FLEXIBLE: i16 = FIRST_FLEXIBLE;
    type Response = TxnOffsetCommitResponse;

    fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_string(&self.transactional_id, flexible);
        out.put_string(&self.group_id, flexible);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        if version >= 3 {
            out.put_i32(self.generation_id);
            out.put_string(&self.member_id, flexible);
            out.put_nullable_string(self.group_instance_id.as_deref(), flexible);
        }
        out.put_array_len(self.topics.len(), flexible);
        for t in &self.topics {
            out.put_string(&t.name, flexible);
            out.put_array_len(t.partitions.len(), flexible);
            for p in &t.partitions {
                out.put_i32(p.partition_index);
                out.put_i64(p.committed_offset);
                if version >= 2 {
                    out.put_i32(p.committed_leader_epoch);
                }
                out.put_nullable_string(p.committed_metadata.as_deref(), flexible);
                out.put_empty_tagged_fields(flexible);
            }
            out.put_empty_tagged_fields(flexible);
        }
        out.put_empty_tagged_fields(flexible);
    }
}

/// A TxnOffsetCommit response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnOffsetCommitResponse {
    /// How long the broker throttled the request.
    pub throttle_time_ms: i32,
    /// The result for each partition, by topic.
    pub topics: Vec<TxnOffsetCommitTopicResult>,
}

/// The results for the partitions of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TxnOffsetCommitTopicResult {
    /// The topic name.
    pub name: String,
    /// The result for each partition.
    pub partitions: Vec<TxnOffsetCommitPartitionResult>,
}

/// The result for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TxnOffsetCommitPartitionResult {
    /// The partition index.
    pub partition_index: i32,
    /// The error code (0 = none; 16 = NOT_COORDINATOR, 22 = ILLEGAL_GENERATION,
    /// 25 = UNKNOWN_MEMBER_ID, 82 = FENCED_INSTANCE_ID, ...).
    pub error_code: i16,
}

/// The fewest bytes a topic result takes: empty name, empty array, tags.
fn min_topic_len(flexible: bool) -> usize {
    if flexible {
        3
    } else {
        6
    }
}

/// The fewest bytes a partition result takes: index, error code, tags.
fn min_partition_len(flexible: bool) -> usize {
    6 + usize::from(flexible)
}

impl TxnOffsetCommitResponse {
    /// Appends this response's body at `version` (for tests and fake peers).
    pub fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_i32(self.throttle_time_ms);
        out.put_array_len(self.topics.len(), flexible);
        for t in &self.topics {
            out.put_string(&t.name, flexible);
            out.put_array_len(t.partitions.len(), flexible);
            for p in &t.partitions {
                out.put_i32(p.partition_index);
                out.put_i16(p.error_code);
                out.put_empty_tagged_fields(flexible);
            }
            out.put_empty_tagged_fields(flexible);
        }
        out.put_empty_tagged_fields(flexible);
    }
}

impl Response for TxnOffsetCommitResponse {
    fn decode_body(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flexible = flexible(version);
        let throttle_time_ms = r.i32()?;
        let topics = r.array_of(flexible, min_topic_len(flexible), |r| {
            let name = r.string(flexible)?;
            let partitions = r.array_of(flexible, min_partition_len(flexible), |r| {
                let p = TxnOffsetCommitPartitionResult {
                    partition_index: r.i32()?,
                    error_code: r.i16()?,
                };
                r.skip_tagged_fields(flexible)?;
                Ok(p)
            })?;
            r.skip_tagged_fields(flexible)?;
            Ok(TxnOffsetCommitTopicResult { name, partitions })
        })?;
        r.skip_tagged_fields(flexible)?;
        Ok(TxnOffsetCommitResponse {
            throttle_time_ms,
            topics,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::ResponseHeader;
    use crate::protocol::{decode_response, response_header_version};

    fn sample() -> TxnOffsetCommitResponse {
        TxnOffsetCommitResponse {
            throttle_time_ms: 2,
            topics: vec![
                TxnOffsetCommitTopicResult {
                    name: "in".into(),
                    partitions: vec![
                        TxnOffsetCommitPartitionResult {
                            partition_index: 0,
                            error_code: 0,
                        },
                        TxnOffsetCommitPartitionResult {
                            partition_index: 1,
                            error_code: 82,
                        },
                    ],
                },
                TxnOffsetCommitTopicResult::default(),
            ],
        }
    }

    fn frame(version: i16, body: &TxnOffsetCommitResponse) -> Vec<u8> {
        let mut out = Vec::new();
        let header_version = response_header_version(ApiKey::TXN_OFFSET_COMMIT, flexible(version));
        ResponseHeader { correlation_id: 2 }.encode(header_version, &mut out);
        body.encode_body(version, &mut out);
        out
    }

    fn request() -> TxnOffsetCommitRequest {
        TxnOffsetCommitRequest {
            transactional_id: "tx".into(),
            group_id: "g".into(),
            producer_id: 3,
            producer_epoch: 1,
            generation_id: 4,
            member_id: "m".into(),
            group_instance_id: None,
            topics: vec![TxnOffsetCommitTopic {
                name: "t".into(),
                partitions: vec![TxnOffsetCommitPartition {
                    partition_index: 2,
                    committed_offset: 100,
                    committed_leader_epoch: 6,
                    committed_metadata: None,
                }],
            }],
        }
    }

    #[test]
    fn responses_round_trip_at_every_version() {
        for v in 0..=5 {
            let (corr, got) =
                decode_response::<TxnOffsetCommitRequest>(v, &frame(v, &sample())).unwrap();
            assert_eq!(corr, 2);
            assert_eq!(got, sample(), "version {v}");
        }
    }

    #[test]
    fn rejects_truncated_txn_offset_commit_responses() {
        for v in 0..=5 {
            let f = frame(v, &sample());
            for len in 0..f.len() {
                assert!(decode_response::<TxnOffsetCommitRequest>(v, &f[..len]).is_err());
            }
        }
    }

    #[test]
    fn requests_match_the_spec_bytes() {
        let mut body = Vec::new();
        request().encode_body(0, &mut body);
        #[rustfmt::skip]
        let want = [
            0, 2, b't', b'x',
            0, 1, b'g',
            0, 0, 0, 0, 0, 0, 0, 3,
            0, 1,
            0, 0, 0, 1, // one topic
            0, 1, b't',
            0, 0, 0, 1, // one partition
            0, 0, 0, 2,
            0, 0, 0, 0, 0, 0, 0, 100,
            0xff, 0xff, // null metadata
        ];
        assert_eq!(body, want);
        body.clear();
        request().encode_body(2, &mut body);
        assert_eq!(body.len(), want.len() + 4, "v2 adds the leader epoch");
        assert_eq!(&body[body.len() - 6..], [0, 0, 0, 6, 0xff, 0xff]);
        body.clear();
        request().encode_body(3, &mut body);
        #[rustfmt::skip]
        let want = [
            3, b't', b'x',
            2, b'g',
            0, 0, 0, 0, 0, 0, 0, 3,
            0, 1,
            0, 0, 0, 4, // generation
            2, b'm', // member id
            0, // null instance id
            2, // one topic
            2, b't',
            2, // one partition
            0, 0, 0, 2,
            0, 0, 0, 0, 0, 0, 0, 100,
            0, 0, 0, 6,
            0, // null metadata
            0, 0, 0, // partition, topic and request tags
        ];
        assert_eq!(body, want);
    }

    #[test]
    fn group_metadata_needs_v3() {
        assert_eq!(request().lowest_version(), 3);
        let plain = TxnOffsetCommitRequest {
            topics: request().topics,
            ..TxnOffsetCommitRequest::default()
        };
        assert_eq!(plain.lowest_version(), 0);
        let static_member = TxnOffsetCommitRequest {
            group_instance_id: Some("i".into()),
            ..plain
        };
        assert_eq!(static_member.lowest_version(), 3);
    }
}

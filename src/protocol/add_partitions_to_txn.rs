//! AddPartitionsToTxn (key 24), the client versions 0–3; v3 is the first flexible version.
//!
//! Sent to the transaction coordinator before the first record of a transaction goes to a
//! partition, so that the coordinator writes that partition's commit or abort marker.
//!
//! Request: transactional_id STRING; producer_id INT64; producer_epoch INT16; topics ARRAY
//! of (name STRING, partitions ARRAY of INT32, tagged fields from v3); tagged fields from
//! v3. v1 is the
//! same as v0; v2 only adds the PRODUCER_FENCED error code (KIP-588).
//!
//! Response: throttle_time_ms INT32; results ARRAY of (name STRING, results ARRAY of
//! (partition_index INT32, partition_error_code INT16, tagged fields from v3), tagged
//! fields from v3); tagged fields from v3.
//!
//! Versions 4 and 5 (KIP-890) batch several transactions, add `verify_only` and a
//! top-level error code; they are meant for brokers, which verify transactions with each
//! other, and need cluster permissions that a producer does not have. Java's client never
//! sends them, and neither does this one: [`AddPartitionsToTxnRequest::VERSIONS`] stops at
//! 3, so the highest common version with any broker is at most 3.

use super::codec::{DecodeResult, Reader, Writer};
use super::{ApiKey, Request, Response, VersionRange};

const FIRST_FLEXIBLE: i16 = 3;

fn flexible(version: i16) -> bool {
    version >= FIRST_FLEXIBLE
}

/// An AddPartitionsToTxn request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnRequest {
    /// The transactional id.
    pub transactional_id: String,
    /// The producer id the coordinator assigned to the transactional id.
    pub producer_id: i64,
    /// The producer's current epoch.
    pub producer_epoch: i16,
    /// The partitions to add to the transaction, by topic.
    pub topics: Vec<AddPartitionsToTxnTopic>,
}

/// The partitions of one topic to add to a transaction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddPartitionsToTxnTopic {
    /// The topic name.
    pub name: String,
    /// The partition indexes.
    pub partitions: Vec<i32>,
}

impl Request for AddPartitionsToTxnRequest {
    const API_KEY: ApiKey = ApiKey::ADD_PARTITIONS_TO_TXN;
    const VERSIONS: VersionRange = VersionRange::new(0, 3);
    const FIRST_FLEXIBLE: i16 = FIRST_FLEXIBLE;
    type Response = AddPartitionsToTxnResponse;

    fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_string(&self.transactional_id, flexible);
        out.put_i64(self.producer_id);
        out.put_i16(self.producer_epoch);
        out.put_array_len(self.topics.len(), flexible);
        for t in &self.topics {
            out.put_string(&t.name, flexible);
            out.put_array_len(t.partitions.len(), flexible);
            for p in &t.partitions {
                out.put_i32(*p);
            }
            out.put_empty_tagged_fields(flexible);
        }
        out.put_empty_tagged_fields(flexible);
    }
}

/// An AddPartitionsToTxn response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnResponse {
    /// How long the broker throttled the request.
    pub throttle_time_ms: i32,
    /// The result for each partition, by topic.
    pub results: Vec<AddPartitionsToTxnTopicResult>,
}

/// The results for the partitions of one topic.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnTopicResult {
    /// The topic name.
    pub name: String,
    /// The result for each partition.
    pub partitions: Vec<AddPartitionsToTxnPartitionResult>,
}

/// The result for one partition.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AddPartitionsToTxnPartitionResult {
    /// The partition index.
    pub partition_index: i32,
    /// The error code (0 = none; 51 = CONCURRENT_TRANSACTIONS, 90 = PRODUCER_FENCED,
    /// 67 = OPERATION_NOT_ATTEMPTED for the partitions of a request that failed on others,
    /// ...).
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

impl AddPartitionsToTxnResponse {
    /// Appends this response's body at `version` (for tests and fake peers).
    pub fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_i32(self.throttle_time_ms);
        out.put_array_len(self.results.len(), flexible);
        for t in &self.results {
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

impl Response for AddPartitionsToTxnResponse {
    fn decode_body(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flexible = flexible(version);
        let throttle_time_ms = r.i32()?;
        let results = r.array_of(flexible, min_topic_len(flexible), |r| {
            let name = r.string(flexible)?;
            let partitions = r.array_of(flexible, min_partition_len(flexible), |r| {
                let p = AddPartitionsToTxnPartitionResult {
                    partition_index: r.i32()?,
                    error_code: r.i16()?,
                };
                r.skip_tagged_fields(flexible)?;
                Ok(p)
            })?;
            r.skip_tagged_fields(flexible)?;
            Ok(AddPartitionsToTxnTopicResult { name, partitions })
        })?;
        r.skip_tagged_fields(flexible)?;
        Ok(AddPartitionsToTxnResponse {
            throttle_time_ms,
            results,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::ResponseHeader;
    use crate::protocol::{decode_response, encode_request, response_header_version};

    fn sample() -> AddPartitionsToTxnResponse {
        let ok = |partition_index| AddPartitionsToTxnPartitionResult {
            partition_index,
            error_code: 0,
        };
        AddPartitionsToTxnResponse {
            throttle_time_ms: 7,
            results: vec![
                AddPartitionsToTxnTopicResult {
                    name: "orders".into(),
                    partitions: vec![ok(0), ok(4)],
                },
                AddPartitionsToTxnTopicResult {
                    name: "audit".into(),
                    partitions: vec![AddPartitionsToTxnPartitionResult {
                        partition_index: 2,
                        error_code: 51,
                    }],
                },
                AddPartitionsToTxnTopicResult::default(),
            ],
        }
    }

    fn frame(version: i16, body: &AddPartitionsToTxnResponse) -> Vec<u8> {
        let mut out = Vec::new();
        let header_version =
            response_header_version(ApiKey::ADD_PARTITIONS_TO_TXN, flexible(version));
        ResponseHeader { correlation_id: 5 }.encode(header_version, &mut out);
        body.encode_body(version, &mut out);
        out
    }

    #[test]
    fn responses_round_trip_at_every_version() {
        for v in 0..=3 {
            let (corr, got) =
                decode_response::<AddPartitionsToTxnRequest>(v, &frame(v, &sample())).unwrap();
            assert_eq!(corr, 5);
            assert_eq!(got, sample(), "version {v}");
        }
    }

    #[test]
    fn rejects_truncated_add_partitions_to_txn_responses() {
        for v in 0..=3 {
            let f = frame(v, &sample());
            for len in 0..f.len() {
                assert!(
                    decode_response::<AddPartitionsToTxnRequest>(v, &f[..len]).is_err(),
                    "version {v} prefix {len}"
                );
            }
        }
    }

    #[test]
    fn requests_match_the_spec_bytes() {
        let req = AddPartitionsToTxnRequest {
            transactional_id: "tx".into(),
            producer_id: 5,
            producer_epoch: 1,
            topics: vec![AddPartitionsToTxnTopic {
                name: "t".into(),
                partitions: vec![0, 3],
            }],
        };
        let f = encode_request(&req, 0, 2, None);
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 43, // size
            0, 24, 0, 0, 0, 0, 0, 2, 0xff, 0xff, // header v1
            0, 2, b't', b'x',
            0, 0, 0, 0, 0, 0, 0, 5,
            0, 1,
            0, 0, 0, 1, // one topic
            0, 1, b't',
            0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 3,
        ];
        assert_eq!(f, want);
        let mut body = Vec::new();
        req.encode_body(3, &mut body);
        #[rustfmt::skip]
        let want = [
            3, b't', b'x',
            0, 0, 0, 0, 0, 0, 0, 5,
            0, 1,
            2, // one topic
            2, b't',
            3, 0, 0, 0, 0, 0, 0, 0, 3,
            0, // topic tags
            0, // tags
        ];
        assert_eq!(body, want);
    }
}

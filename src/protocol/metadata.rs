//! Metadata (key 3), versions 1–12; v9 is the first flexible version.
//!
//! Version 0 is left out on purpose: there an empty topic list means "all topics", while from
//! v1 on it means "no topics" and null means "all".
//!
//! Request: topics nullable ARRAY of (topic_id UUID (added in v10), name STRING (nullable
//! from v10)[, tagged fields in v9+]); allow_auto_topic_creation BOOLEAN (added in v4);
//! include_cluster_authorized_operations BOOLEAN (v8–v10 only; we always write false);
//! include_topic_authorized_operations BOOLEAN (added in v8); tagged fields in v9+.
//!
//! Response: throttle_time_ms INT32 (added in v3); brokers ARRAY of (node_id INT32, host
//! STRING, port INT32, rack NULLABLE_STRING (added in v1)); cluster_id NULLABLE_STRING
//! (added in v2); controller_id INT32 (added in v1); topics ARRAY of (error_code INT16, name
//! STRING (nullable from v12), topic_id UUID (added in v10), is_internal BOOLEAN (added in
//! v1), partitions ARRAY of (error_code INT16, partition_index INT32, leader_id INT32,
//! leader_epoch INT32 (added in v7), replica_nodes ARRAY of INT32, isr_nodes ARRAY of INT32,
//! offline_replicas ARRAY of INT32 (added in v5)), topic_authorized_operations INT32 (added
//! in v8)); cluster_authorized_operations INT32 (v8–v10 only). From v9 every struct and the
//! body end with a tagged-field section, strings and arrays are compact, and none of the
//! tags is known to this client (all are skipped).
//!
//! Fields absent at a version decode to Kafka's JSON defaults (see each field's docs).

use super::codec::{DecodeResult, Reader, Writer};
use super::{ApiKey, Request, Response, VersionRange};

const FIRST_FLEXIBLE: i16 = 9;

fn flexible(version: i16) -> bool {
    version >= FIRST_FLEXIBLE
}

/// A Metadata request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataRequest {
    /// The topics to describe; `None` asks for every topic, `Some(vec![])` for none (only
    /// brokers and the controller).
    pub topics: Option<Vec<String>>,
    /// Added in v4: whether the broker may auto-create the requested topics (when it is
    /// configured to). Not on the wire before v4, where brokers behave as if it were true.
    pub allow_auto_topic_creation: bool,
    /// Added in v8: whether to return each topic's authorized operations.
    pub include_topic_authorized_operations: bool,
}

impl Request for MetadataRequest {
    const API_KEY: ApiKey = ApiKey::METADATA;
    const VERSIONS: VersionRange = VersionRange::new(1, 12);
    const FIRST_FLEXIBLE: i16 = FIRST_FLEXIBLE;
    type Response = MetadataResponse;

    fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        match &self.topics {
            None => out.put_null_array(flexible),
            Some(topics) => {
                out.put_array_len(topics.len(), flexible);
                for name in topics {
                    if version >= 10 {
                        // We always ask by name; a zero id means "not given" (KIP-516).
                        out.put_uuid(&[0; 16]);
                    }
                    out.put_string(name, flexible);
                    out.put_empty_tagged_fields(flexible);
                }
            }
        }
        if version >= 4 {
            out.put_bool(self.allow_auto_topic_creation);
        }
        if (8..=10).contains(&version) {
            // include_cluster_authorized_operations: a producer never needs it.
            out.put_bool(false);
        }
        if version >= 8 {
            out.put_bool(self.include_topic_authorized_operations);
        }
        out.put_empty_tagged_fields(flexible);
    }
}

/// A Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataResponse {
    /// Added in v3: how long the broker throttled the request (0 before v3).
    pub throttle_time_ms: i32,
    /// The brokers of the cluster.
    pub brokers: Vec<MetadataBroker>,
    /// Added in v2: the cluster id (`None` before v2).
    pub cluster_id: Option<String>,
    /// Added in v1: the controller's node id (-1 when unknown).
    pub controller_id: i32,
    /// The topics asked for (or all of them).
    pub topics: Vec<MetadataTopic>,
    /// In v8–v10 only: the cluster's authorized operations bit field (`i32::MIN` when absent,
    /// Kafka's "not requested" default).
    pub cluster_authorized_operations: i32,
}

impl Default for MetadataResponse {
    fn default() -> Self {
        MetadataResponse {
            throttle_time_ms: 0,
            brokers: Vec::new(),
            cluster_id: None,
            controller_id: -1,
            topics: Vec::new(),
            cluster_authorized_operations: i32::MIN,
        }
    }
}

/// One broker of a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MetadataBroker {
    /// The broker's node id.
    pub node_id: i32,
    /// The broker's advertised host name.
    pub host: String,
    /// The broker's advertised port.
    pub port: i32,
    /// Added in v1: the broker's rack, `None` when it has none.
    pub rack: Option<String>,
}

/// One topic of a Metadata response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataTopic {
    /// The topic-level error code (0 = none).
    pub error_code: i16,
    /// The topic name. Nullable on the wire from v12 (a topic asked for by id only); before
    /// v12 it is always present, and `None` is written as an empty string.
    pub name: Option<String>,
    /// Added in v10: the topic id (all zeros before v10).
    pub topic_id: [u8; 16],
    /// Added in v1: whether the topic is internal (false before v1).
    pub is_internal: bool,
    /// The topic's partitions.
    pub partitions: Vec<MetadataPartition>,
    /// Added in v8: the topic's authorized operations bit field (`i32::MIN` when absent).
    pub topic_authorized_operations: i32,
}

impl Default for MetadataTopic {
    fn default() -> Self {
        MetadataTopic {
            error_code: 0,
            name: None,
            topic_id: [0; 16],
            is_internal: false,
            partitions: Vec::new(),
            topic_authorized_operations: i32::MIN,
        }
    }
}

/// One partition of a Metadata response topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataPartition {
    /// The partition-level error code (0 = none).
    pub error_code: i16,
    /// The partition number.
    pub partition_index: i32,
    /// The leader's node id (-1 when there is no leader).
    pub leader_id: i32,
    /// Added in v7: the leader epoch (-1 before v7).
    pub leader_epoch: i32,
    /// All replicas of the partition.
    pub replica_nodes: Vec<i32>,
    /// The in-sync replicas.
    pub isr_nodes: Vec<i32>,
    /// Added in v5: the replicas that are offline (empty before v5).
    pub offline_replicas: Vec<i32>,
}

impl Default for MetadataPartition {
    fn default() -> Self {
        MetadataPartition {
            error_code: 0,
            partition_index: 0,
            leader_id: -1,
            leader_epoch: -1,
            replica_nodes: Vec::new(),
            isr_nodes: Vec::new(),
            offline_replicas: Vec::new(),
        }
    }
}

/// Bytes taken by an empty string (or a null one) and an empty array at `version`.
fn empty_string_len(flexible: bool) -> usize {
    if flexible {
        1
    } else {
        2
    }
}

fn empty_array_len(flexible: bool) -> usize {
    if flexible {
        1
    } else {
        4
    }
}

/// The fewest bytes a broker entry can take: node_id, empty host, port, null rack, tags.
fn min_broker_len(version: i16) -> usize {
    let f = flexible(version);
    4 + empty_string_len(f) + 4 + empty_string_len(f) + usize::from(f)
}

/// The fewest bytes a topic entry can take at `version`.
fn min_topic_len(version: i16) -> usize {
    let f = flexible(version);
    let mut n = 2 + empty_string_len(f) + 1 + empty_array_len(f) + usize::from(f);
    if version >= 10 {
        n += 16;
    }
    if version >= 8 {
        n += 4;
    }
    n
}

/// The fewest bytes a partition entry can take at `version`.
fn min_partition_len(version: i16) -> usize {
    let f = flexible(version);
    let mut n = 2 + 4 + 4 + 2 * empty_array_len(f) + usize::from(f);
    if version >= 7 {
        n += 4;
    }
    if version >= 5 {
        n += empty_array_len(f);
    }
    n
}

fn put_i32_array(out: &mut Vec<u8>, values: &[i32], flexible: bool) {
    out.put_array_len(values.len(), flexible);
    for v in values {
        out.put_i32(*v);
    }
}

fn read_i32_array(r: &mut Reader<'_>, flexible: bool) -> DecodeResult<Vec<i32>> {
    r.array_of(flexible, 4, |r| r.i32())
}

impl MetadataResponse {
    /// Appends this response's body at `version` (for tests and fake peers). Fields the
    /// version does not have are left out.
    pub fn encode_body(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        if version >= 3 {
            out.put_i32(self.throttle_time_ms);
        }
        out.put_array_len(self.brokers.len(), flexible);
        for b in &self.brokers {
            b.encode(version, out);
        }
        if version >= 2 {
            out.put_nullable_string(self.cluster_id.as_deref(), flexible);
        }
        out.put_i32(self.controller_id);
        out.put_array_len(self.topics.len(), flexible);
        for t in &self.topics {
            t.encode(version, out);
        }
        if (8..=10).contains(&version) {
            out.put_i32(self.cluster_authorized_operations);
        }
        out.put_empty_tagged_fields(flexible);
    }
}

impl Response for MetadataResponse {
    fn decode_body(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flexible = flexible(version);
        let mut out = MetadataResponse::default();
        if version >= 3 {
            out.throttle_time_ms = r.i32()?;
        }
        out.brokers = r.array_of(flexible, min_broker_len(version), |r| {
            MetadataBroker::decode(r, version)
        })?;
        if version >= 2 {
            out.cluster_id = r.nullable_string(flexible)?;
        }
        out.controller_id = r.i32()?;
        out.topics = r.array_of(flexible, min_topic_len(version), |r| {
            MetadataTopic::decode(r, version)
        })?;
        if (8..=10).contains(&version) {
            out.cluster_authorized_operations = r.i32()?;
        }
        r.skip_tagged_fields(flexible)?;
        Ok(out)
    }
}

impl MetadataBroker {
    fn encode(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_i32(self.node_id);
        out.put_string(&self.host, flexible);
        out.put_i32(self.port);
        out.put_nullable_string(self.rack.as_deref(), flexible);
        out.put_empty_tagged_fields(flexible);
    }

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flexible = flexible(version);
        let b = MetadataBroker {
            node_id: r.i32()?,
            host: r.string(flexible)?,
            port: r.i32()?,
            rack: r.nullable_string(flexible)?,
        };
        r.skip_tagged_fields(flexible)?;
        Ok(b)
    }
}

impl MetadataTopic {
    fn encode(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_i16(self.error_code);
        if version >= 12 {
            out.put_nullable_string(self.name.as_deref(), flexible);
        } else {
            out.put_string(self.name.as_deref().unwrap_or(""), flexible);
        }
        if version >= 10 {
            out.put_uuid(&self.topic_id);
        }
        out.put_bool(self.is_internal);
        out.put_array_len(self.partitions.len(), flexible);
        for p in &self.partitions {
            p.encode(version, out);
        }
        if version >= 8 {
            out.put_i32(self.topic_authorized_operations);
        }
        out.put_empty_tagged_fields(flexible);
    }

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flexible = flexible(version);
        let mut t = MetadataTopic {
            error_code: r.i16()?,
            ..MetadataTopic::default()
        };
        t.name = if version >= 12 {
            r.nullable_string(flexible)?
        } else {
            Some(r.string(flexible)?)
        };
        if version >= 10 {
            t.topic_id = r.uuid()?;
        }
        t.is_internal = r.bool()?;
        t.partitions = r.array_of(flexible, min_partition_len(version), |r| {
            MetadataPartition::decode(r, version)
        })?;
        if version >= 8 {
            t.topic_authorized_operations = r.i32()?;
        }
        r.skip_tagged_fields(flexible)?;
        Ok(t)
    }
}

impl MetadataPartition {
    fn encode(&self, version: i16, out: &mut Vec<u8>) {
        let flexible = flexible(version);
        out.put_i16(self.error_code);
        out.put_i32(self.partition_index);
        out.put_i32(self.leader_id);
        if version >= 7 {
            out.put_i32(self.leader_epoch);
        }
        put_i32_array(out, &self.replica_nodes, flexible);
        put_i32_array(out, &self.isr_nodes, flexible);
        if version >= 5 {
            put_i32_array(out, &self.offline_replicas, flexible);
        }
        out.put_empty_tagged_fields(flexible);
    }

    fn decode(r: &mut Reader<'_>, version: i16) -> DecodeResult<Self> {
        let flexible = flexible(version);
        let mut p = MetadataPartition {
            error_code: r.i16()?,
            partition_index: r.i32()?,
            leader_id: r.i32()?,
            ..MetadataPartition::default()
        };
        if version >= 7 {
            p.leader_epoch = r.i32()?;
        }
        p.replica_nodes = read_i32_array(r, flexible)?;
        p.isr_nodes = read_i32_array(r, flexible)?;
        if version >= 5 {
            p.offline_replicas = read_i32_array(r, flexible)?;
        }
        r.skip_tagged_fields(flexible)?;
        Ok(p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::header::ResponseHeader;
    use crate::protocol::{decode_response, encode_request, response_header_version, DecodeError};

    /// A response with a non-default value in every field.
    fn sample() -> MetadataResponse {
        MetadataResponse {
            throttle_time_ms: 17,
            brokers: vec![
                MetadataBroker {
                    node_id: 1,
                    host: "b1.example".into(),
                    port: 9092,
                    rack: Some("rack-a".into()),
                },
                MetadataBroker {
                    node_id: 2,
                    host: "b2".into(),
                    port: 9093,
                    rack: None,
                },
            ],
            cluster_id: Some("cluster-x".into()),
            controller_id: 2,
            topics: vec![MetadataTopic {
                error_code: 3,
                name: Some("orders".into()),
                topic_id: [7; 16],
                is_internal: true,
                partitions: vec![MetadataPartition {
                    error_code: 9,
                    partition_index: 4,
                    leader_id: 1,
                    leader_epoch: 12,
                    replica_nodes: vec![1, 2],
                    isr_nodes: vec![1],
                    offline_replicas: vec![2],
                }],
                topic_authorized_operations: 0x0ff8,
            }],
            cluster_authorized_operations: 0x0f00,
        }
    }

    /// What survives of `full` at `version`: absent fields take their defaults.
    fn at_version(full: &MetadataResponse, version: i16) -> MetadataResponse {
        let mut m = full.clone();
        if version < 3 {
            m.throttle_time_ms = 0;
        }
        if version < 2 {
            m.cluster_id = None;
        }
        if !(8..=10).contains(&version) {
            m.cluster_authorized_operations = i32::MIN;
        }
        for t in &mut m.topics {
            if version < 10 {
                t.topic_id = [0; 16];
            }
            if version < 8 {
                t.topic_authorized_operations = i32::MIN;
            }
            for p in &mut t.partitions {
                if version < 7 {
                    p.leader_epoch = -1;
                }
                if version < 5 {
                    p.offline_replicas.clear();
                }
            }
        }
        m
    }

    fn frame(version: i16, body: &MetadataResponse) -> Vec<u8> {
        let mut out = Vec::new();
        let header_version = response_header_version(ApiKey::METADATA, flexible(version));
        ResponseHeader { correlation_id: 5 }.encode(header_version, &mut out);
        body.encode_body(version, &mut out);
        out
    }

    #[test]
    fn responses_round_trip_at_every_version() {
        for v in 1..=12 {
            let want = at_version(&sample(), v);
            let (corr, got) = decode_response::<MetadataRequest>(v, &frame(v, &want)).unwrap();
            assert_eq!(corr, 5);
            assert_eq!(got, want, "version {v}");
        }
    }

    #[test]
    fn null_topic_name_round_trips_from_v12() {
        let mut want = sample();
        want.topics[0].name = None;
        let (_, got) = decode_response::<MetadataRequest>(12, &frame(12, &want)).unwrap();
        assert_eq!(got.topics[0].name, None);
    }

    #[test]
    fn rejects_truncated_metadata_responses() {
        for v in 1..=12 {
            let f = frame(v, &at_version(&sample(), v));
            for len in 0..f.len() {
                assert!(
                    decode_response::<MetadataRequest>(v, &f[..len]).is_err(),
                    "version {v} prefix {len}"
                );
            }
        }
    }

    #[test]
    fn rejects_a_broker_count_beyond_the_frame() {
        for v in [1, 8, 9, 12] {
            let mut f = Vec::new();
            ResponseHeader { correlation_id: 1 }.encode(
                response_header_version(ApiKey::METADATA, flexible(v)),
                &mut f,
            );
            if v >= 3 {
                f.put_i32(0);
            }
            if flexible(v) {
                f.put_uvarint(u32::MAX - 1);
            } else {
                f.put_i32(i32::MAX);
            }
            f.extend_from_slice(&[0; 64]);
            assert!(matches!(
                decode_response::<MetadataRequest>(v, &f),
                Err(DecodeError::InvalidLength { .. })
            ));
        }
    }

    #[test]
    fn ignores_a_stray_byte_after_the_body_like_java_and_librdkafka() {
        // librdkafka's mock cluster ends flexible Metadata responses with one extra byte.
        for v in [9, 12] {
            let mut f = frame(v, &sample());
            f.push(0);
            let (_, got) = decode_response::<MetadataRequest>(v, &f).unwrap();
            let (_, want) = decode_response::<MetadataRequest>(v, &frame(v, &sample())).unwrap();
            assert_eq!(got, want);
        }
    }

    #[test]
    fn v1_request_for_one_topic_matches_the_spec_bytes() {
        let req = MetadataRequest {
            topics: Some(vec!["ab".into()]),
            allow_auto_topic_creation: false,
            include_topic_authorized_operations: true,
        };
        let f = encode_request(&req, 1, 7, None);
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 18, // size
            0, 3, 0, 1, 0, 0, 0, 7, 0xff, 0xff, // header v1, null client id
            0, 0, 0, 1, 0, 2, b'a', b'b', // topics: ["ab"]; nothing else before v4
        ];
        assert_eq!(f, want);
    }

    #[test]
    fn v10_request_for_all_topics_matches_the_spec_bytes() {
        let req = MetadataRequest {
            topics: None,
            allow_auto_topic_creation: true,
            include_topic_authorized_operations: false,
        };
        let f = encode_request(&req, 10, 7, None);
        #[rustfmt::skip]
        let want = [
            0, 0, 0, 16,
            0, 3, 0, 10, 0, 0, 0, 7, 0xff, 0xff, 0, // header v2
            0, // null compact array: all topics
            1, 0, 0, // auto-create, cluster ops (v8–v10), topic ops
            0, // tagged fields
        ];
        assert_eq!(f, want);
    }

    #[test]
    fn v10_request_topics_carry_a_zero_topic_id() {
        let req = MetadataRequest {
            topics: Some(vec!["t".into()]),
            ..MetadataRequest::default()
        };
        let mut body = Vec::new();
        req.encode_body(10, &mut body);
        let mut want = vec![2];
        want.extend_from_slice(&[0; 16]);
        want.extend_from_slice(&[2, b't', 0, 0, 0, 0, 0]);
        assert_eq!(body, want);
    }
}

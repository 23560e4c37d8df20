//! Cross-checks our protocol layer against the independent `kafka-protocol` crate.
//!
//! For every version we implement: (a) our encoded request frames decode with
//! kafka-protocol's header and body decoders to the same field values, with no bytes left;
//! (b) responses that kafka-protocol encodes, with a non-default value in every field the
//! version has (tagged fields included), decode with our decoders to the same values.

use bytes::Bytes;
use kafka_protocol::messages as kp;
use kafka_protocol::messages::{BrokerId, GroupId, ProducerId, TopicName, TransactionalId};
use kafka_protocol::protocol::{Decodable, Encodable, HeaderVersion, StrBytes};

use kafka_producer::protocol::add_offsets_to_txn::AddOffsetsToTxnRequest;
use kafka_producer::protocol::add_partitions_to_txn::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use kafka_producer::protocol::api_versions::{ApiVersionsRequest, CLIENT_SOFTWARE_NAME};
use kafka_producer::protocol::end_txn::EndTxnRequest;
use kafka_producer::protocol::find_coordinator::{self, CoordinatorType, FindCoordinatorRequest};
use kafka_producer::protocol::init_producer_id::InitProducerIdRequest;
use kafka_producer::protocol::metadata::MetadataRequest;
use kafka_producer::protocol::produce::{PartitionProduceData, ProduceRequest, TopicProduceData};
use kafka_producer::protocol::sasl_authenticate::SaslAuthenticateRequest;
use kafka_producer::protocol::sasl_handshake::SaslHandshakeRequest;
use kafka_producer::protocol::txn_offset_commit::{
    TxnOffsetCommitPartition, TxnOffsetCommitRequest, TxnOffsetCommitTopic,
};
use kafka_producer::protocol::{decode_response, encode_request, is_flexible, Request};

const CORRELATION_ID: i32 = 0x0102_0304;
const CLIENT_ID: &str = "cross-check";

fn s(v: &str) -> StrBytes {
    StrBytes::from_string(v.to_owned())
}

fn topic(v: &str) -> TopicName {
    TopicName(s(v))
}

/// A kafka-protocol topic id built from raw bytes. The crate re-exports neither `uuid` nor
/// its UUID decoder, so decode a v10 request topic (topic_id UUID, null name, no tags).
fn kp_topic_id(bytes: [u8; 16]) -> kp::metadata_request::MetadataRequestTopic {
    let mut wire = bytes.to_vec();
    wire.extend_from_slice(&[0, 0]);
    kp::metadata_request::MetadataRequestTopic::decode(&mut Bytes::from(wire), 10).unwrap()
}

/// Encodes `request` with our encoder, then decodes the frame with kafka-protocol:
/// checks the size prefix and the header, and that the body leaves nothing behind.
fn ours_through_theirs<Ours: Request, Theirs: Decodable + HeaderVersion>(
    request: &Ours,
    version: i16,
) -> Theirs {
    let frame = encode_request(request, version, CORRELATION_ID, Some(CLIENT_ID));
    let size = i32::from_be_bytes(frame[..4].try_into().unwrap());
    assert_eq!(size as usize, frame.len() - 4, "size prefix at v{version}");
    let header_version = Theirs::header_version(version);
    let ours_flexible = is_flexible::<Ours>(version);
    assert_eq!(
        header_version,
        if ours_flexible { 2 } else { 1 },
        "v{version}"
    );
    let mut buf = Bytes::copy_from_slice(&frame[4..]);
    let header = kp::RequestHeader::decode(&mut buf, header_version).unwrap();
    assert_eq!(header.request_api_key, Ours::API_KEY.0);
    assert_eq!(header.request_api_version, version);
    assert_eq!(header.correlation_id, CORRELATION_ID);
    assert_eq!(header.client_id.as_deref(), Some(CLIENT_ID));
    let body = Theirs::decode(&mut buf, version)
        .unwrap_or_else(|e| panic!("kafka-protocol rejects our v{version}: {e}"));
    assert!(buf.is_empty(), "{} bytes left at v{version}", buf.len());
    body
}

/// Encodes a response frame (after the size prefix) with kafka-protocol.
fn theirs_frame<T: Encodable + HeaderVersion>(body: &T, version: i16) -> Vec<u8> {
    let mut out = Vec::new();
    kp::ResponseHeader::default()
        .with_correlation_id(CORRELATION_ID)
        .encode(&mut out, T::header_version(version))
        .unwrap();
    body.encode(&mut out, version)
        .unwrap_or_else(|e| panic!("kafka-protocol cannot encode v{version}: {e}"));
    out
}

/// Decodes a kafka-protocol frame with our decoder for requests of type `R`.
fn decode_ours<R: Request>(version: i16, frame: &[u8]) -> R::Response {
    let (corr, body) = decode_response::<R>(version, frame)
        .unwrap_or_else(|e| panic!("we reject kafka-protocol's v{version}: {e}"));
    assert_eq!(corr, CORRELATION_ID);
    body
}

fn opt_str(v: &Option<StrBytes>) -> Option<&str> {
    v.as_ref().map(|s| s.as_str())
}

// ---------------------------------------------------------------------------------------
// Metadata

#[test]
fn metadata_requests_decode_with_kafka_protocol_at_every_version() {
    for v in MetadataRequest::VERSIONS.min..=MetadataRequest::VERSIONS.max {
        for topics in [
            None,
            Some(vec![]),
            Some(vec!["orders".to_owned(), "é".to_owned()]),
        ] {
            let ours = MetadataRequest {
                topics: topics.clone(),
                allow_auto_topic_creation: v % 2 == 0,
                include_topic_authorized_operations: v % 3 == 0,
            };
            let theirs: kp::MetadataRequest = ours_through_theirs(&ours, v);
            let names = theirs.topics.as_ref().map(|ts| {
                ts.iter()
                    .map(|t| {
                        assert_eq!(t.topic_id.as_bytes(), &[0u8; 16], "v{v}");
                        t.name.as_ref().expect("named topic").0.as_str().to_owned()
                    })
                    .collect::<Vec<_>>()
            });
            assert_eq!(names, topics, "v{v}");
            // Before v4 the flag is not on the wire and brokers assume true.
            let auto = if v >= 4 {
                ours.allow_auto_topic_creation
            } else {
                true
            };
            assert_eq!(theirs.allow_auto_topic_creation, auto, "v{v}");
            assert!(!theirs.include_cluster_authorized_operations);
            assert_eq!(
                theirs.include_topic_authorized_operations,
                v >= 8 && ours.include_topic_authorized_operations,
                "v{v}"
            );
            assert!(theirs.unknown_tagged_fields.is_empty());
        }
    }
}

fn kp_metadata_response(v: i16) -> kp::MetadataResponse {
    use kp::metadata_response::{
        MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
    };
    let brokers = vec![
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(101))
            .with_host(s("broker-1.example"))
            .with_port(9092)
            .with_rack(if v >= 1 { Some(s("rack-a")) } else { None }),
        MetadataResponseBroker::default()
            .with_node_id(BrokerId(102))
            .with_host(s("b2"))
            .with_port(19093),
    ];
    let mut partition = MetadataResponsePartition::default()
        .with_error_code(5)
        .with_partition_index(7)
        .with_leader_id(BrokerId(102))
        .with_replica_nodes(vec![BrokerId(101), BrokerId(102), BrokerId(103)])
        .with_isr_nodes(vec![BrokerId(102)]);
    if v >= 7 {
        partition = partition.with_leader_epoch(33);
    }
    if v >= 5 {
        partition = partition.with_offline_replicas(vec![BrokerId(103), BrokerId(101)]);
    }
    let mut t1 = MetadataResponseTopic::default()
        .with_error_code(0)
        .with_name(Some(topic("orders")))
        .with_partitions(vec![partition.clone(), partition.with_partition_index(8)]);
    let mut t2 = MetadataResponseTopic::default()
        .with_error_code(3)
        .with_name(if v >= 12 {
            None
        } else {
            Some(topic("missing"))
        });
    if v >= 1 {
        t1 = t1.with_is_internal(true);
    }
    if v >= 10 {
        t1 = t1.with_topic_id(kp_topic_id([0xab; 16]).topic_id);
        t2 = t2.with_topic_id(kp_topic_id(*b"0123456789abcdef").topic_id);
    }
    if v >= 8 {
        t1 = t1.with_topic_authorized_operations(0x0ff8);
        t2 = t2.with_topic_authorized_operations(0);
    }
    let mut r = kp::MetadataResponse::default()
        .with_brokers(brokers)
        .with_topics(vec![t1, t2]);
    if v >= 3 {
        r = r.with_throttle_time_ms(250);
    }
    if v >= 2 {
        r = r.with_cluster_id(Some(s("cluster-xyz")));
    }
    if v >= 1 {
        r = r.with_controller_id(BrokerId(102));
    }
    if (8..=10).contains(&v) {
        r = r.with_cluster_authorized_operations(0x0f00);
    }
    r
}

#[test]
fn metadata_responses_from_kafka_protocol_decode_at_every_version() {
    for v in MetadataRequest::VERSIONS.min..=MetadataRequest::VERSIONS.max {
        let theirs = kp_metadata_response(v);
        let ours = decode_ours::<MetadataRequest>(v, &theirs_frame(&theirs, v));
        assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms, "v{v}");
        assert_eq!(
            ours.cluster_id.as_deref(),
            opt_str(&theirs.cluster_id),
            "v{v}"
        );
        assert_eq!(ours.controller_id, theirs.controller_id.0, "v{v}");
        assert_eq!(
            ours.cluster_authorized_operations, theirs.cluster_authorized_operations,
            "v{v}"
        );
        assert_eq!(ours.brokers.len(), theirs.brokers.len());
        for (o, t) in ours.brokers.iter().zip(&theirs.brokers) {
            assert_eq!(o.node_id, t.node_id.0);
            assert_eq!(o.host, t.host.as_str());
            assert_eq!(o.port, t.port);
            assert_eq!(o.rack.as_deref(), opt_str(&t.rack), "v{v}");
        }
        assert_eq!(ours.topics.len(), theirs.topics.len());
        for (o, t) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(o.error_code, t.error_code);
            assert_eq!(
                o.name.as_deref(),
                t.name.as_ref().map(|n| n.0.as_str()),
                "v{v}"
            );
            assert_eq!(&o.topic_id, t.topic_id.as_bytes(), "v{v}");
            assert_eq!(o.is_internal, t.is_internal, "v{v}");
            assert_eq!(
                o.topic_authorized_operations, t.topic_authorized_operations,
                "v{v}"
            );
            assert_eq!(o.partitions.len(), t.partitions.len());
            for (op, tp) in o.partitions.iter().zip(&t.partitions) {
                let ids = |v: &[BrokerId]| v.iter().map(|b| b.0).collect::<Vec<_>>();
                assert_eq!(op.error_code, tp.error_code);
                assert_eq!(op.partition_index, tp.partition_index);
                assert_eq!(op.leader_id, tp.leader_id.0);
                assert_eq!(op.leader_epoch, tp.leader_epoch, "v{v}");
                assert_eq!(op.replica_nodes, ids(&tp.replica_nodes));
                assert_eq!(op.isr_nodes, ids(&tp.isr_nodes));
                assert_eq!(op.offline_replicas, ids(&tp.offline_replicas), "v{v}");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Produce

fn our_produce_request(v: i16) -> ProduceRequest {
    ProduceRequest {
        transactional_id: (v % 2 == 1).then(|| "tx-1".to_owned()),
        acks: if v % 3 == 0 { 1 } else { -1 },
        timeout_ms: 30_000 + i32::from(v),
        topics: vec![
            TopicProduceData {
                name: "orders".into(),
                partitions: vec![
                    PartitionProduceData {
                        index: 0,
                        records: Some(Bytes::from_static(b"\x00batch-bytes\xff")),
                    },
                    PartitionProduceData {
                        index: 5,
                        records: None,
                    },
                ],
            },
            TopicProduceData {
                name: "audit".into(),
                partitions: vec![PartitionProduceData {
                    index: 2,
                    records: Some(Bytes::from(vec![7u8; 300])),
                }],
            },
        ],
    }
}

#[test]
fn produce_requests_decode_with_kafka_protocol_at_every_version() {
    for v in ProduceRequest::VERSIONS.min..=ProduceRequest::VERSIONS.max {
        let ours = our_produce_request(v);
        let theirs: kp::ProduceRequest = ours_through_theirs(&ours, v);
        assert_eq!(
            ours.transactional_id.as_deref(),
            theirs.transactional_id.as_ref().map(|t| t.0.as_str()),
            "v{v}"
        );
        assert_eq!(ours.acks, theirs.acks);
        assert_eq!(ours.timeout_ms, theirs.timeout_ms);
        assert_eq!(ours.topics.len(), theirs.topic_data.len());
        for (o, t) in ours.topics.iter().zip(&theirs.topic_data) {
            assert_eq!(o.name, t.name.0.as_str(), "v{v}");
            assert_eq!(o.partitions.len(), t.partition_data.len());
            for (op, tp) in o.partitions.iter().zip(&t.partition_data) {
                assert_eq!(op.index, tp.index);
                assert_eq!(op.records, tp.records, "v{v}");
            }
        }
    }
}

fn kp_produce_response(v: i16) -> kp::ProduceResponse {
    use kp::produce_response::{
        BatchIndexAndErrorMessage, LeaderIdAndEpoch, NodeEndpoint, PartitionProduceResponse,
        TopicProduceResponse,
    };
    let mut p1 = PartitionProduceResponse::default()
        .with_index(3)
        .with_error_code(6)
        .with_base_offset(1 << 40)
        .with_log_append_time_ms(1_700_000_000_123);
    let mut p2 = PartitionProduceResponse::default()
        .with_index(4)
        .with_base_offset(99);
    if v >= 5 {
        p1 = p1.with_log_start_offset(17);
    }
    if v >= 8 {
        p1 = p1
            .with_record_errors(vec![
                BatchIndexAndErrorMessage::default()
                    .with_batch_index(2)
                    .with_batch_index_error_message(Some(s("bad key"))),
                BatchIndexAndErrorMessage::default().with_batch_index(9),
            ])
            .with_error_message(Some(s("records were invalid")));
    }
    if v >= 10 {
        p1 = p1.with_current_leader(
            LeaderIdAndEpoch::default()
                .with_leader_id(BrokerId(7))
                .with_leader_epoch(21),
        );
        p2 = p2.with_current_leader(LeaderIdAndEpoch::default().with_leader_id(BrokerId(8)));
    }
    let mut r = kp::ProduceResponse::default()
        .with_responses(vec![
            TopicProduceResponse::default()
                .with_name(topic("orders"))
                .with_partition_responses(vec![p1, p2]),
            TopicProduceResponse::default().with_name(topic("audit")),
        ])
        .with_throttle_time_ms(40);
    if v >= 10 {
        r = r.with_node_endpoints(vec![
            NodeEndpoint::default()
                .with_node_id(BrokerId(7))
                .with_host(s("b7.example"))
                .with_port(9097)
                .with_rack(Some(s("r7"))),
            NodeEndpoint::default()
                .with_node_id(BrokerId(8))
                .with_host(s("b8"))
                .with_port(9098),
        ]);
    }
    r
}

#[test]
fn produce_responses_from_kafka_protocol_decode_at_every_version() {
    for v in ProduceRequest::VERSIONS.min..=ProduceRequest::VERSIONS.max {
        let theirs = kp_produce_response(v);
        let ours = decode_ours::<ProduceRequest>(v, &theirs_frame(&theirs, v));
        assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms);
        assert_eq!(ours.responses.len(), theirs.responses.len());
        for (o, t) in ours.responses.iter().zip(&theirs.responses) {
            assert_eq!(o.name, t.name.0.as_str());
            assert_eq!(o.partitions.len(), t.partition_responses.len());
            for (op, tp) in o.partitions.iter().zip(&t.partition_responses) {
                assert_eq!(op.index, tp.index);
                assert_eq!(op.error_code, tp.error_code);
                assert_eq!(op.base_offset, tp.base_offset);
                assert_eq!(op.log_append_time_ms, tp.log_append_time_ms);
                assert_eq!(op.log_start_offset, tp.log_start_offset, "v{v}");
                assert_eq!(op.record_errors.len(), tp.record_errors.len(), "v{v}");
                for (oe, te) in op.record_errors.iter().zip(&tp.record_errors) {
                    assert_eq!(oe.batch_index, te.batch_index);
                    assert_eq!(
                        oe.batch_index_error_message.as_deref(),
                        opt_str(&te.batch_index_error_message)
                    );
                }
                assert_eq!(
                    op.error_message.as_deref(),
                    opt_str(&tp.error_message),
                    "v{v}"
                );
                // kafka-protocol omits the tagged field when it holds the default (-1, -1).
                let default_leader = kp::produce_response::LeaderIdAndEpoch::default();
                let leader = &tp.current_leader;
                let want = (*leader != default_leader)
                    .then_some((leader.leader_id.0, leader.leader_epoch));
                let got = op.current_leader.map(|l| (l.leader_id, l.leader_epoch));
                assert_eq!(got, want, "v{v}");
                if v >= 10 {
                    assert!(got.is_some(), "v{v} leader present");
                }
            }
        }
        assert_eq!(
            ours.node_endpoints.len(),
            theirs.node_endpoints.len(),
            "v{v}"
        );
        for (o, t) in ours.node_endpoints.iter().zip(&theirs.node_endpoints) {
            assert_eq!(o.node_id, t.node_id.0);
            assert_eq!(o.host, t.host.as_str());
            assert_eq!(o.port, t.port);
            assert_eq!(o.rack.as_deref(), opt_str(&t.rack));
        }
    }
}

// ---------------------------------------------------------------------------------------
// InitProducerId

#[test]
fn init_producer_id_requests_decode_with_kafka_protocol_at_every_version() {
    for v in InitProducerIdRequest::VERSIONS.min..=InitProducerIdRequest::VERSIONS.max {
        for transactional_id in [None, Some("tx-é".to_owned())] {
            let ours = InitProducerIdRequest {
                transactional_id: transactional_id.clone(),
                transaction_timeout_ms: 45_000,
                producer_id: 123_456_789_012,
                producer_epoch: 17,
            };
            let theirs: kp::InitProducerIdRequest = ours_through_theirs(&ours, v);
            assert_eq!(
                theirs
                    .transactional_id
                    .as_ref()
                    .map(|t: &TransactionalId| t.0.as_str()),
                transactional_id.as_deref()
            );
            assert_eq!(theirs.transaction_timeout_ms, 45_000);
            let (id, epoch) = if v >= 3 {
                (123_456_789_012, 17)
            } else {
                (-1, -1)
            };
            assert_eq!(theirs.producer_id, ProducerId(id), "v{v}");
            assert_eq!(theirs.producer_epoch, epoch, "v{v}");
        }
    }
}

#[test]
fn init_producer_id_responses_from_kafka_protocol_decode_at_every_version() {
    for v in InitProducerIdRequest::VERSIONS.min..=InitProducerIdRequest::VERSIONS.max {
        let theirs = kp::InitProducerIdResponse::default()
            .with_throttle_time_ms(12)
            .with_error_code(47)
            .with_producer_id(ProducerId(0x7fff_0000_1234))
            .with_producer_epoch(3);
        let ours = decode_ours::<InitProducerIdRequest>(v, &theirs_frame(&theirs, v));
        assert_eq!(ours.throttle_time_ms, 12);
        assert_eq!(ours.error_code, 47);
        assert_eq!(ours.producer_id, 0x7fff_0000_1234);
        assert_eq!(ours.producer_epoch, 3);
    }
}

// ---------------------------------------------------------------------------------------
// ApiVersions

#[test]
fn api_versions_requests_decode_with_kafka_protocol_at_every_version() {
    for v in ApiVersionsRequest::VERSIONS.min..=ApiVersionsRequest::VERSIONS.max {
        let theirs: kp::ApiVersionsRequest = ours_through_theirs(&ApiVersionsRequest::default(), v);
        if v >= 3 {
            assert_eq!(theirs.client_software_name.as_str(), CLIENT_SOFTWARE_NAME);
            assert_eq!(
                theirs.client_software_version.as_str(),
                env!("CARGO_PKG_VERSION")
            );
        } else {
            assert_eq!(theirs, kp::ApiVersionsRequest::default(), "v{v}");
        }
    }
}

#[test]
fn api_versions_responses_from_kafka_protocol_decode_at_every_version() {
    use kp::api_versions_response::{ApiVersion, FinalizedFeatureKey, SupportedFeatureKey};
    for v in ApiVersionsRequest::VERSIONS.min..=ApiVersionsRequest::VERSIONS.max {
        let keys = [(0, 3, 11), (3, 1, 12), (18, 0, 4), (22, 0, 5)];
        let mut theirs = kp::ApiVersionsResponse::default()
            .with_error_code(0)
            .with_api_keys(
                keys.iter()
                    .map(|&(k, lo, hi)| {
                        ApiVersion::default()
                            .with_api_key(k)
                            .with_min_version(lo)
                            .with_max_version(hi)
                    })
                    .collect(),
            );
        if v >= 1 {
            theirs = theirs.with_throttle_time_ms(77);
        }
        if v >= 3 {
            // Tagged fields 0–3: we read the finalized features and skip the rest.
            theirs = theirs
                .with_supported_features(vec![SupportedFeatureKey::default()
                    .with_name(s("metadata.version"))
                    .with_min_version(1)
                    .with_max_version(20)])
                .with_finalized_features_epoch(9)
                .with_finalized_features(vec![
                    FinalizedFeatureKey::default()
                        .with_name(s("metadata.version"))
                        .with_min_version_level(1)
                        .with_max_version_level(20),
                    FinalizedFeatureKey::default()
                        .with_name(s("transaction.version"))
                        .with_min_version_level(0)
                        .with_max_version_level(2),
                ])
                .with_zk_migration_ready(true);
        }
        let ours = decode_ours::<ApiVersionsRequest>(v, &theirs_frame(&theirs, v));
        assert_eq!(ours.error_code, 0);
        assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms, "v{v}");
        let got: Vec<_> = ours
            .api_keys
            .iter()
            .map(|a| (a.api_key, a.min_version, a.max_version))
            .collect();
        assert_eq!(got, keys, "v{v}");
        let (metadata, transaction) = if v >= 3 { (20, 2) } else { (0, 0) };
        assert_eq!(ours.finalized_level("metadata.version"), metadata, "v{v}");
        assert_eq!(
            ours.finalized_level("transaction.version"),
            transaction,
            "v{v}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// SaslHandshake

#[test]
fn sasl_handshake_requests_decode_with_kafka_protocol_at_every_version() {
    for v in SaslHandshakeRequest::VERSIONS.min..=SaslHandshakeRequest::VERSIONS.max {
        for mechanism in ["PLAIN", "SCRAM-SHA-512", "OAUTHBEARER", ""] {
            let ours = SaslHandshakeRequest {
                mechanism: mechanism.to_owned(),
            };
            let theirs: kp::SaslHandshakeRequest = ours_through_theirs(&ours, v);
            assert_eq!(theirs.mechanism.as_str(), mechanism, "v{v}");
        }
    }
}

#[test]
fn sasl_handshake_responses_from_kafka_protocol_decode_at_every_version() {
    for v in SaslHandshakeRequest::VERSIONS.min..=SaslHandshakeRequest::VERSIONS.max {
        for mechanisms in [vec![], vec!["GSSAPI", "PLAIN", "SCRAM-SHA-256", "é"]] {
            let theirs = kp::SaslHandshakeResponse::default()
                .with_error_code(33)
                .with_mechanisms(mechanisms.iter().map(|m| s(m)).collect());
            let ours = decode_ours::<SaslHandshakeRequest>(v, &theirs_frame(&theirs, v));
            assert_eq!(ours.error_code, 33);
            assert_eq!(ours.mechanisms, mechanisms, "v{v}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// SaslAuthenticate

/// Authentication bytes of several sizes: empty, one SASL/PLAIN message, and long enough
/// that a compact length takes two varint bytes.
fn auth_byte_samples() -> [Vec<u8>; 3] {
    [
        Vec::new(),
        b"\0alice\0alice-secret".to_vec(),
        (0..=255u8).cycle().take(300).collect(),
    ]
}

#[test]
fn sasl_authenticate_requests_decode_with_kafka_protocol_at_every_version() {
    for v in SaslAuthenticateRequest::VERSIONS.min..=SaslAuthenticateRequest::VERSIONS.max {
        for auth_bytes in auth_byte_samples() {
            let ours = SaslAuthenticateRequest {
                auth_bytes: auth_bytes.clone(),
            };
            let theirs: kp::SaslAuthenticateRequest = ours_through_theirs(&ours, v);
            assert_eq!(theirs.auth_bytes, auth_bytes, "v{v}");
            assert!(theirs.unknown_tagged_fields.is_empty());
        }
    }
}

#[test]
fn sasl_authenticate_responses_from_kafka_protocol_decode_at_every_version() {
    for v in SaslAuthenticateRequest::VERSIONS.min..=SaslAuthenticateRequest::VERSIONS.max {
        for (auth_bytes, error_message) in
            auth_byte_samples()
                .into_iter()
                .zip([None, Some("Authentication failed: é"), Some("")])
        {
            let mut theirs = kp::SaslAuthenticateResponse::default()
                .with_error_code(58)
                .with_error_message(error_message.map(s))
                .with_auth_bytes(Bytes::from(auth_bytes.clone()));
            if v >= 1 {
                theirs = theirs.with_session_lifetime_ms(3_600_000_123);
            }
            if v >= 2 {
                // A tag this version does not define, which we must skip.
                theirs = theirs.with_unknown_tagged_field(7, Bytes::from_static(b"later"));
            }
            let ours = decode_ours::<SaslAuthenticateRequest>(v, &theirs_frame(&theirs, v));
            assert_eq!(ours.error_code, 58);
            assert_eq!(ours.error_message.as_deref(), error_message, "v{v}");
            assert_eq!(ours.auth_bytes, auth_bytes, "v{v}");
            assert_eq!(ours.session_lifetime_ms, theirs.session_lifetime_ms, "v{v}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// FindCoordinator

#[test]
fn find_coordinator_requests_decode_with_kafka_protocol_at_every_version() {
    for v in FindCoordinatorRequest::VERSIONS.min..=FindCoordinatorRequest::VERSIONS.max {
        for key_type in [CoordinatorType::GROUP, CoordinatorType::TRANSACTION] {
            if v < 1 && key_type != CoordinatorType::GROUP {
                continue; // v0 has no key type: only group lookups
            }
            let keys = if v >= find_coordinator::FIRST_BATCHED {
                vec!["tx-1".to_owned(), "grüppe".to_owned(), String::new()]
            } else {
                vec!["tx-é".to_owned()]
            };
            let ours = FindCoordinatorRequest {
                key_type,
                keys: keys.clone(),
            };
            assert!(ours.lowest_version() <= v);
            let theirs: kp::FindCoordinatorRequest = ours_through_theirs(&ours, v);
            assert_eq!(theirs.key_type, if v >= 1 { key_type.0 } else { 0 }, "v{v}");
            if v >= find_coordinator::FIRST_BATCHED {
                assert_eq!(theirs.key.as_str(), "", "v{v}");
                let got: Vec<_> = theirs.coordinator_keys.iter().map(|k| k.as_str()).collect();
                assert_eq!(got, keys, "v{v}");
            } else {
                assert_eq!(theirs.key.as_str(), keys[0], "v{v}");
                assert!(theirs.coordinator_keys.is_empty(), "v{v}");
            }
            assert!(theirs.unknown_tagged_fields.is_empty());
        }
    }
}

fn kp_find_coordinator_response(v: i16) -> kp::FindCoordinatorResponse {
    use kp::find_coordinator_response::Coordinator;
    let mut r = kp::FindCoordinatorResponse::default();
    if v >= 1 {
        r = r.with_throttle_time_ms(35);
    }
    if v >= 4 {
        r.with_coordinators(vec![
            Coordinator::default()
                .with_key(s("tx-1"))
                .with_node_id(BrokerId(3))
                .with_host(s("broker-3.example"))
                .with_port(9093),
            Coordinator::default()
                .with_key(s("grüppe"))
                .with_node_id(BrokerId(-1))
                .with_host(s(""))
                .with_port(-1)
                .with_error_code(15)
                .with_error_message(Some(s("The coordinator is not available."))),
            Coordinator::default()
                .with_key(s("t"))
                .with_node_id(BrokerId(4))
                .with_host(s("b4"))
                .with_port(19094)
                .with_error_code(14)
                .with_unknown_tagged_field(3, Bytes::from_static(b"x")),
        ])
    } else {
        r = r
            .with_error_code(14)
            .with_node_id(BrokerId(7))
            .with_host(s("broker-7.example"))
            .with_port(9097);
        if v >= 1 {
            r = r.with_error_message(Some(s("loading é")));
        }
        if v >= 3 {
            r = r.with_unknown_tagged_field(0, Bytes::from_static(b"later"));
        }
        r
    }
}

#[test]
fn find_coordinator_responses_from_kafka_protocol_decode_at_every_version() {
    for v in FindCoordinatorRequest::VERSIONS.min..=FindCoordinatorRequest::VERSIONS.max {
        let theirs = kp_find_coordinator_response(v);
        let ours = decode_ours::<FindCoordinatorRequest>(v, &theirs_frame(&theirs, v));
        assert_eq!(ours.throttle_time_ms, theirs.throttle_time_ms, "v{v}");
        if v >= find_coordinator::FIRST_BATCHED {
            assert_eq!(ours.coordinators.len(), theirs.coordinators.len(), "v{v}");
            for (o, t) in ours.coordinators.iter().zip(&theirs.coordinators) {
                assert_eq!(o.key, t.key.as_str());
                assert_eq!(o.node_id, t.node_id.0);
                assert_eq!(o.host, t.host.as_str());
                assert_eq!(o.port, t.port);
                assert_eq!(o.error_code, t.error_code);
                assert_eq!(o.error_message.as_deref(), opt_str(&t.error_message));
            }
        } else {
            let [o] = ours.coordinators.as_slice() else {
                panic!("v{v}: {} entries", ours.coordinators.len());
            };
            assert_eq!(o.key, "", "v{v}");
            assert_eq!(o.node_id, theirs.node_id.0);
            assert_eq!(o.host, theirs.host.as_str());
            assert_eq!(o.port, theirs.port);
            assert_eq!(o.error_code, theirs.error_code);
            // v0 has no message on the wire (kafka-protocol's default is `Some("")`).
            let message = if v >= 1 {
                opt_str(&theirs.error_message)
            } else {
                None
            };
            assert_eq!(o.error_message.as_deref(), message, "v{v}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// AddPartitionsToTxn

#[test]
fn add_partitions_to_txn_requests_decode_with_kafka_protocol_at_every_version() {
    for v in AddPartitionsToTxnRequest::VERSIONS.min..=AddPartitionsToTxnRequest::VERSIONS.max {
        let ours = AddPartitionsToTxnRequest {
            transactional_id: "tx-é".into(),
            producer_id: 0x0123_4567_89ab,
            producer_epoch: 12,
            topics: vec![
                AddPartitionsToTxnTopic {
                    name: "orders".into(),
                    partitions: vec![0, 7, 1 << 20],
                },
                AddPartitionsToTxnTopic {
                    name: "audit".into(),
                    partitions: vec![],
                },
            ],
        };
        let theirs: kp::AddPartitionsToTxnRequest = ours_through_theirs(&ours, v);
        assert_eq!(theirs.v3_and_below_transactional_id.0.as_str(), "tx-é");
        assert_eq!(
            theirs.v3_and_below_producer_id,
            ProducerId(0x0123_4567_89ab)
        );
        assert_eq!(theirs.v3_and_below_producer_epoch, 12);
        assert!(theirs.transactions.is_empty());
        assert_eq!(theirs.v3_and_below_topics.len(), ours.topics.len());
        for (o, t) in ours.topics.iter().zip(&theirs.v3_and_below_topics) {
            assert_eq!(o.name, t.name.0.as_str(), "v{v}");
            assert_eq!(o.partitions, t.partitions, "v{v}");
            assert!(t.unknown_tagged_fields.is_empty());
        }
    }
}

#[test]
fn add_partitions_to_txn_responses_from_kafka_protocol_decode_at_every_version() {
    use kp::add_partitions_to_txn_response::{
        AddPartitionsToTxnPartitionResult, AddPartitionsToTxnTopicResult,
    };
    for v in AddPartitionsToTxnRequest::VERSIONS.min..=AddPartitionsToTxnRequest::VERSIONS.max {
        let partition = |i, e| {
            AddPartitionsToTxnPartitionResult::default()
                .with_partition_index(i)
                .with_partition_error_code(e)
        };
        let mut theirs = kp::AddPartitionsToTxnResponse::default()
            .with_throttle_time_ms(21)
            .with_results_by_topic_v3_and_below(vec![
                AddPartitionsToTxnTopicResult::default()
                    .with_name(topic("orders"))
                    .with_results_by_partition(vec![partition(0, 0), partition(7, 51)]),
                AddPartitionsToTxnTopicResult::default()
                    .with_name(topic("audit"))
                    .with_results_by_partition(vec![partition(3, 90)]),
                AddPartitionsToTxnTopicResult::default().with_name(topic("é")),
            ]);
        if v >= 3 {
            theirs = theirs.with_unknown_tagged_field(5, Bytes::from_static(b"later"));
        }
        let ours = decode_ours::<AddPartitionsToTxnRequest>(v, &theirs_frame(&theirs, v));
        assert_eq!(ours.throttle_time_ms, 21);
        assert_eq!(
            ours.results.len(),
            theirs.results_by_topic_v3_and_below.len()
        );
        for (o, t) in ours
            .results
            .iter()
            .zip(&theirs.results_by_topic_v3_and_below)
        {
            assert_eq!(o.name, t.name.0.as_str(), "v{v}");
            let got: Vec<_> = o
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
                .collect();
            let want: Vec<_> = t
                .results_by_partition
                .iter()
                .map(|p| (p.partition_index, p.partition_error_code))
                .collect();
            assert_eq!(got, want, "v{v}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// AddOffsetsToTxn

#[test]
fn add_offsets_to_txn_requests_decode_with_kafka_protocol_at_every_version() {
    for v in AddOffsetsToTxnRequest::VERSIONS.min..=AddOffsetsToTxnRequest::VERSIONS.max {
        let ours = AddOffsetsToTxnRequest {
            transactional_id: "tx-1".into(),
            producer_id: 77,
            producer_epoch: 3,
            group_id: "consumers-é".into(),
        };
        let theirs: kp::AddOffsetsToTxnRequest = ours_through_theirs(&ours, v);
        assert_eq!(theirs.transactional_id.0.as_str(), "tx-1");
        assert_eq!(theirs.producer_id, ProducerId(77));
        assert_eq!(theirs.producer_epoch, 3);
        assert_eq!(theirs.group_id, GroupId(s("consumers-é")), "v{v}");
        assert!(theirs.unknown_tagged_fields.is_empty());
    }
}

#[test]
fn add_offsets_to_txn_responses_from_kafka_protocol_decode_at_every_version() {
    for v in AddOffsetsToTxnRequest::VERSIONS.min..=AddOffsetsToTxnRequest::VERSIONS.max {
        let mut theirs = kp::AddOffsetsToTxnResponse::default()
            .with_throttle_time_ms(9)
            .with_error_code(120);
        if v >= 3 {
            theirs = theirs.with_unknown_tagged_field(1, Bytes::from_static(b"?"));
        }
        let ours = decode_ours::<AddOffsetsToTxnRequest>(v, &theirs_frame(&theirs, v));
        assert_eq!((ours.throttle_time_ms, ours.error_code), (9, 120), "v{v}");
    }
}

// ---------------------------------------------------------------------------------------
// EndTxn

#[test]
fn end_txn_requests_decode_with_kafka_protocol_at_every_version() {
    for v in EndTxnRequest::VERSIONS.min..=EndTxnRequest::VERSIONS.max {
        for committed in [true, false] {
            let ours = EndTxnRequest {
                transactional_id: "tx-é".into(),
                producer_id: 1 << 40,
                producer_epoch: 32_000,
                committed,
            };
            let theirs: kp::EndTxnRequest = ours_through_theirs(&ours, v);
            assert_eq!(theirs.transactional_id.0.as_str(), "tx-é");
            assert_eq!(theirs.producer_id, ProducerId(1 << 40));
            assert_eq!(theirs.producer_epoch, 32_000);
            assert_eq!(theirs.committed, committed, "v{v}");
            assert!(theirs.unknown_tagged_fields.is_empty());
        }
    }
}

#[test]
fn end_txn_responses_from_kafka_protocol_decode_at_every_version() {
    for v in EndTxnRequest::VERSIONS.min..=EndTxnRequest::VERSIONS.max {
        let mut theirs = kp::EndTxnResponse::default()
            .with_throttle_time_ms(5)
            .with_error_code(48);
        if v >= 5 {
            theirs = theirs
                .with_producer_id(ProducerId(0x0fed_cba9_8765))
                .with_producer_epoch(4);
        }
        if v >= 3 {
            theirs = theirs.with_unknown_tagged_field(2, Bytes::from_static(b"next"));
        }
        let ours = decode_ours::<EndTxnRequest>(v, &theirs_frame(&theirs, v));
        assert_eq!(ours.throttle_time_ms, 5);
        assert_eq!(ours.error_code, 48);
        // Before v5 kafka-protocol's defaults (-1, -1) are ours too.
        assert_eq!(ours.producer_id, theirs.producer_id.0, "v{v}");
        assert_eq!(ours.producer_epoch, theirs.producer_epoch, "v{v}");
    }
}

// ---------------------------------------------------------------------------------------
// TxnOffsetCommit

fn our_txn_offset_commit_request(group_instance_id: Option<&str>) -> TxnOffsetCommitRequest {
    TxnOffsetCommitRequest {
        transactional_id: "tx-1".into(),
        group_id: "consumers".into(),
        producer_id: 0x0102_0304_0506,
        producer_epoch: 8,
        generation_id: 42,
        member_id: "consumer-1-5e0c".into(),
        group_instance_id: group_instance_id.map(str::to_owned),
        topics: vec![
            TxnOffsetCommitTopic {
                name: "in".into(),
                partitions: vec![
                    TxnOffsetCommitPartition {
                        partition_index: 0,
                        committed_offset: 1 << 33,
                        committed_leader_epoch: 17,
                        committed_metadata: Some("é meta".into()),
                    },
                    TxnOffsetCommitPartition {
                        partition_index: 5,
                        committed_offset: 0,
                        committed_leader_epoch: -1,
                        committed_metadata: None,
                    },
                ],
            },
            TxnOffsetCommitTopic {
                name: "other".into(),
                partitions: vec![TxnOffsetCommitPartition {
                    partition_index: 1,
                    committed_offset: 99,
                    committed_leader_epoch: 3,
                    committed_metadata: Some(String::new()),
                }],
            },
        ],
    }
}

#[test]
fn txn_offset_commit_requests_decode_with_kafka_protocol_at_every_version() {
    for v in TxnOffsetCommitRequest::VERSIONS.min..=TxnOffsetCommitRequest::VERSIONS.max {
        for instance in [None, Some("instance-é")] {
            let ours = our_txn_offset_commit_request(instance);
            let theirs: kp::TxnOffsetCommitRequest = ours_through_theirs(&ours, v);
            assert_eq!(theirs.transactional_id.0.as_str(), "tx-1");
            assert_eq!(theirs.group_id, GroupId(s("consumers")));
            assert_eq!(theirs.producer_id, ProducerId(0x0102_0304_0506));
            assert_eq!(theirs.producer_epoch, 8);
            if v >= 3 {
                assert_eq!(theirs.generation_id, 42);
                assert_eq!(theirs.member_id.as_str(), "consumer-1-5e0c");
                assert_eq!(opt_str(&theirs.group_instance_id), instance, "v{v}");
            } else {
                // Not on the wire: kafka-protocol's defaults.
                assert_eq!(theirs.generation_id, -1, "v{v}");
                assert_eq!(theirs.member_id.as_str(), "", "v{v}");
                assert_eq!(theirs.group_instance_id, None, "v{v}");
            }
            assert_eq!(theirs.topics.len(), ours.topics.len());
            for (o, t) in ours.topics.iter().zip(&theirs.topics) {
                assert_eq!(o.name, t.name.0.as_str());
                assert_eq!(o.partitions.len(), t.partitions.len());
                for (op, tp) in o.partitions.iter().zip(&t.partitions) {
                    assert_eq!(op.partition_index, tp.partition_index);
                    assert_eq!(op.committed_offset, tp.committed_offset);
                    let epoch = if v >= 2 {
                        op.committed_leader_epoch
                    } else {
                        -1
                    };
                    assert_eq!(tp.committed_leader_epoch, epoch, "v{v}");
                    assert_eq!(
                        op.committed_metadata.as_deref(),
                        opt_str(&tp.committed_metadata),
                        "v{v}"
                    );
                }
            }
            assert!(theirs.unknown_tagged_fields.is_empty());
        }
    }
}

#[test]
fn txn_offset_commit_responses_from_kafka_protocol_decode_at_every_version() {
    use kp::txn_offset_commit_response::{
        TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
    };
    for v in TxnOffsetCommitRequest::VERSIONS.min..=TxnOffsetCommitRequest::VERSIONS.max {
        let partition = |i, e| {
            TxnOffsetCommitResponsePartition::default()
                .with_partition_index(i)
                .with_error_code(e)
        };
        let mut theirs = kp::TxnOffsetCommitResponse::default()
            .with_throttle_time_ms(66)
            .with_topics(vec![
                TxnOffsetCommitResponseTopic::default()
                    .with_name(topic("in"))
                    .with_partitions(vec![partition(0, 0), partition(5, 82)]),
                TxnOffsetCommitResponseTopic::default()
                    .with_name(topic("other"))
                    .with_partitions(vec![partition(1, 22)]),
                TxnOffsetCommitResponseTopic::default().with_name(topic("")),
            ]);
        if v >= 3 {
            theirs = theirs.with_unknown_tagged_field(9, Bytes::from_static(b"later"));
        }
        let ours = decode_ours::<TxnOffsetCommitRequest>(v, &theirs_frame(&theirs, v));
        assert_eq!(ours.throttle_time_ms, 66);
        assert_eq!(ours.topics.len(), theirs.topics.len());
        for (o, t) in ours.topics.iter().zip(&theirs.topics) {
            assert_eq!(o.name, t.name.0.as_str(), "v{v}");
            let got: Vec<_> = o
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
                .collect();
            let want: Vec<_> = t
                .partitions
                .iter()
                .map(|p| (p.partition_index, p.error_code))
                .collect();
            assert_eq!(got, want, "v{v}");
        }
    }
}

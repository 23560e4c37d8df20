//! The connection layer against real brokers: handshake (Kafka), version fallback
//! (librdkafka's mock cluster), broken sockets (a dedicated Kafka node killed mid-test).

mod common;

use std::time::Duration;

use common::kafka::KafkaCluster;
use common::Mock;
use kafka_producer::net::{
    BlockingClient, Connection, ConnectionConfig, ConnectionEvent, ConnectionEventKind,
};
use kafka_producer::protocol::api_versions::ApiVersionsRequest;
use kafka_producer::protocol::ApiKey;
use kafka_producer::Error;

#[test]
fn handshake_with_kafka_uses_api_versions_v3() {
    let brokers = common::brokers();
    let first = brokers.bootstrap().split(',').next().unwrap();
    let client = BlockingClient::connect(first, &ConnectionConfig::default()).unwrap();
    let conn = client.connection();
    assert_eq!(conn.handshake_version(), 3);
    let produce = conn.api_versions().range(ApiKey::PRODUCE).unwrap();
    assert!(
        produce.max >= 3,
        "Kafka supports Produce up to v{}",
        produce.max
    );
}

#[test]
fn handshake_falls_back_when_the_mock_cluster_refuses_api_versions_v3() {
    // librdkafka's mock cluster serves ApiVersions only up to v2: it refuses our v3 with
    // UNSUPPORTED_VERSION and a v0-shaped body, and we retry at v2.
    let mock = Mock::start(1);
    let client =
        BlockingClient::connect(mock.first_broker(), &ConnectionConfig::default()).unwrap();
    let conn = client.connection();
    let theirs = conn.api_versions().range(ApiKey::API_VERSIONS).unwrap();
    assert!(
        theirs.max < 3,
        "the mock now serves ApiVersions v{}",
        theirs.max
    );
    assert_eq!(conn.handshake_version(), theirs.max);
    assert_eq!(conn.version_for::<ApiVersionsRequest>(), Some(theirs.max));
    assert!(conn.api_versions().range(ApiKey::PRODUCE).is_some());
}

#[test]
fn a_killed_broker_surfaces_as_a_closed_event_not_a_panic() {
    // A broker of its own: killing the shared one would break the other tests.
    let mut kafka = KafkaCluster::single();
    let (tx, rx) = crossbeam_channel::unbounded::<ConnectionEvent>();
    let conn = Connection::connect(kafka.bootstrap(), &ConnectionConfig::default(), tx).unwrap();
    kafka.kill(1);
    let event = rx.recv_timeout(Duration::from_secs(10)).expect("an event");
    assert_eq!(event.connection_id, conn.id());
    match event.kind {
        ConnectionEventKind::Closed { error, unanswered } => {
            assert!(matches!(error, Error::Network { .. }), "{error}");
            assert!(unanswered.is_empty());
        }
        other => panic!("expected Closed, got {other:?}"),
    }
}

#[test]
fn connecting_to_a_closed_port_is_a_network_error() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let err = BlockingClient::connect(&format!("127.0.0.1:{port}"), &ConnectionConfig::default())
        .unwrap_err();
    assert!(matches!(err, Error::Network { .. }), "{err}");
}

//! Smoke tests of the real-Kafka test bed itself.
mod common;

use common::kafka::{self, KafkaCluster};

#[test]
fn a_single_node_starts_and_takes_topics() {
    let k = kafka::shared();
    let t = common::unique_topic("tb");
    k.create_topic(&t, 3, 1, &[]);
    assert_eq!(k.leaders(&t).len(), 3);
}

#[test]
fn three_nodes_start_and_a_node_restarts() {
    let mut k = KafkaCluster::three_nodes();
    let t = common::unique_topic("tb3");
    k.create_topic(&t, 6, 3, &[]);
    eprintln!("{:?}", k.leaders(&t));
    k.kill(2);
    assert!(!k.running(2));
    k.restart(2);
    assert!(k.running(2));
    let f = k.freeze(3);
    drop(f);
    k.stop(1, std::time::Duration::from_secs(60));
    k.restart(1);
}

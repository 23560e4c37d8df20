//! A librdkafka mock cluster for the fault scenarios (issue 4) that, beyond what
//! [`super::Mock`] offers, injects errors into one broker's requests.
//!
//! [`rdkafka::mocking::MockCluster`] injects request errors for the whole cluster only. The
//! C API also has a per-broker error stack (`rd_kafka_mock_broker_push_request_error_rtts`),
//! which needs the cluster's raw handle; `MockCluster` keeps it private. So [`FaultMock`]
//! lets librdkafka create the cluster for a client of its own (`test.mock.num.brokers`) and
//! asks that client for the handle (`rd_kafka_handle_mock_cluster`) on every call. The
//! client owns the cluster, so the handle lives exactly as long as the `FaultMock`.
//!
//! Which faults make no duplicates on the mock: it checks idempotent sequences only for
//! transactional producers, so a request it wrote and whose response the client never saw
//! is written again by the retry. Injected errors are answered before anything is written;
//! leader moves answer NOT_LEADER_OR_FOLLOWER without writing. A broker going down closes
//! its connections, and a response still waiting in the mock's output buffer is lost after
//! its request was written, so [`FaultMock::broker_down_quiesced`] first makes every
//! Produce request fail (unwritten) for a moment, then takes the broker down.
#![allow(dead_code)]

use std::os::raw::c_int;
use std::time::Duration;

use rdkafka::bindings;
use rdkafka::mocking::MockCluster;
use rdkafka::producer::{BaseProducer, DefaultProducerContext, Producer as _};
use rdkafka::types::{RDKafkaApiKey, RDKafkaRespErr};
use rdkafka::ClientConfig;

/// A mock cluster of brokers 1..=n owned by an idle rdkafka client; stops on drop.
pub struct FaultMock {
    /// The client whose creation started the cluster; never sends anything.
    owner: BaseProducer,
    brokers: i32,
    bootstrap: String,
}

impl std::fmt::Debug for FaultMock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FaultMock")
            .field("brokers", &self.brokers)
            .field("bootstrap", &self.bootstrap)
            .finish()
    }
}

impl FaultMock {
    /// A cluster of `brokers` brokers (ids 1..=brokers).
    pub fn start(brokers: i32) -> FaultMock {
        let owner: BaseProducer = ClientConfig::new()
            .set("test.mock.num.brokers", brokers.to_string())
            .create()
            .expect("start the rdkafka mock cluster");
        let bootstrap = owner
            .client()
            .mock_cluster()
            .expect("the client owns a mock cluster")
            .bootstrap_servers();
        FaultMock {
            owner,
            brokers,
            bootstrap,
        }
    }

    /// The bootstrap list of every broker.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The number of brokers.
    pub fn brokers(&self) -> i32 {
        self.brokers
    }

    /// The safe rdkafka view of the cluster.
    pub fn cluster(&self) -> MockCluster<'_, DefaultProducerContext> {
        self.owner
            .client()
            .mock_cluster()
            .expect("the client owns a mock cluster")
    }

    /// Creates `topic` with `partitions` partitions led by `leader(partition)`, and waits
    /// until metadata shows them all.
    pub fn create_topic(&self, topic: &str, partitions: i32, leader: impl Fn(i32) -> i32) {
        let cluster = self.cluster();
        cluster
            .create_topic(topic, partitions, 1)
            .expect("create mock topic");
        for p in 0..partitions {
            self.set_leader(topic, p, leader(p));
        }
        super::wait_for_partitions(&self.bootstrap, topic, partitions as usize);
    }

    /// Makes `broker` the leader of `topic`/`partition`.
    pub fn set_leader(&self, topic: &str, partition: i32, broker: i32) {
        self.cluster()
            .partition_leader(topic, partition, Some(broker))
            .expect("set mock partition leader");
    }

    /// Takes `broker` down: its connections close and new ones are refused.
    pub fn broker_down(&self, broker: i32) {
        self.cluster()
            .broker_down(broker)
            .expect("mock broker down");
    }

    /// Brings `broker` back up.
    pub fn broker_up(&self, broker: i32) {
        self.cluster().broker_up(broker).expect("mock broker up");
    }

    /// Takes `broker` down without losing the response of a Produce request it wrote:
    /// for `quiet`, every Produce request to a broker without errors of its own fails with
    /// NOT_LEADER_OR_FOLLOWER (written by no broker, retriable), so every response of a
    /// request written before reaches the client; then the broker goes down and the
    /// cluster's Produce errors are cleared. Uses (and clears) the cluster-wide Produce error
    /// stack.
    pub fn broker_down_quiesced(&self, broker: i32, quiet: Duration) {
        let cluster = self.cluster();
        cluster.clear_request_errors(RDKafkaApiKey::Produce);
        // More entries than requests can arrive in `quiet`: each failed partition backs off.
        let errors = [RDKafkaRespErr::RD_KAFKA_RESP_ERR_NOT_LEADER_FOR_PARTITION; 2_000];
        cluster.request_errors(RDKafkaApiKey::Produce, &errors);
        std::thread::sleep(quiet);
        self.broker_down(broker);
        cluster.clear_request_errors(RDKafkaApiKey::Produce);
    }

    /// Pushes `errors` onto the cluster-wide error stack of `api`: the next requests of that
    /// API to brokers without an error stack of their own fail with them, one per request
    /// (`RD_KAFKA_RESP_ERR_NO_ERROR` lets one through).
    pub fn push_errors(&self, api: RDKafkaApiKey, errors: &[RDKafkaRespErr]) {
        self.cluster().request_errors(api, errors);
    }

    /// Empties the cluster-wide error stack of `api`.
    pub fn clear_errors(&self, api: RDKafkaApiKey) {
        self.cluster().clear_request_errors(api);
    }

    /// Pushes `errors` onto `broker`'s own error stack of `api`, each with a response delay.
    /// The broker's next requests of that API take them one per request. Once a broker has
    /// its own stack for an API, the cluster-wide stack no longer applies to it (librdkafka:
    /// "broker errors take precedence"), even while its own stack is empty.
    pub fn push_broker_errors(
        &self,
        broker: i32,
        api: RDKafkaApiKey,
        errors: &[(RDKafkaRespErr, Duration)],
    ) {
        let handle = self.raw();
        for &(err, rtt) in errors {
            let rtt_ms = c_int::try_from(rtt.as_millis()).expect("rtt fits a C int");
            // SAFETY: `handle` is the cluster owned by `self.owner`, alive for this borrow of
            // `self`. The function locks the cluster itself (it is thread-safe) and reads
            // exactly `cnt` = 1 (err, rtt) pair from the variadic list, each as a C int: the
            // error as `rd_kafka_resp_err_t` (a C enum, int-sized) and the rtt as `int`, which
            // is what we pass.
            let r = unsafe {
                bindings::rd_kafka_mock_broker_push_request_error_rtts(
                    handle,
                    broker,
                    i16::from(api),
                    1,
                    err as c_int,
                    rtt_ms,
                )
            };
            assert_eq!(
                r,
                RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR,
                "push an error for mock broker {broker}"
            );
        }
    }

    /// How many entries `broker`'s own error stack of `api` still holds.
    pub fn broker_errors_left(&self, broker: i32, api: RDKafkaApiKey) -> usize {
        let mut left = 0usize;
        // SAFETY: `handle` is the live cluster owned by `self.owner` (see `raw`), and `left`
        // is a valid `size_t` for the function to write the count into.
        let r = unsafe {
            bindings::rd_kafka_mock_broker_error_stack_cnt(
                self.raw(),
                broker,
                i16::from(api),
                &mut left,
            )
        };
        if r == RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
            left
        } else {
            // No stack yet for this API.
            0
        }
    }

    /// The cluster's raw handle, valid while `self` is borrowed.
    fn raw(&self) -> *mut bindings::rd_kafka_mock_cluster_t {
        // SAFETY: `native_ptr` is the live `rd_kafka_t` of `self.owner`;
        // `rd_kafka_handle_mock_cluster` only reads the cluster pointer stored in it, which
        // the client created (`test.mock.num.brokers`) and destroys only when it is dropped.
        let handle =
            unsafe { bindings::rd_kafka_handle_mock_cluster(self.owner.client().native_ptr()) };
        assert!(!handle.is_null(), "the client owns no mock cluster");
        handle
    }
}

//! The seam between the sender and the network: what the sender asks of a broker
//! connection ([`Link`]) and of whatever opens connections ([`Connector`]).
//!
//! The sender never names [`Connection`] or spawns a thread itself. In production the
//! links are [`Connection`]s opened by [`ThreadConnector`] on short-lived threads; the
//! sender's unit tests plug in scripted links and step [`super::Sender::run_once`] with
//! their own clock, as Java's `Sender` is tested through its `KafkaClient` interface.
//!
//! Everything a link reports (responses, acks=0 writes, its close) arrives in the sender's
//! inbox as a [`crate::net::ConnectionEvent`] carrying [`Link::id`]; a connect's outcome
//! arrives as [`SenderEvent::Connected`].

use std::fmt;
use std::net::TcpStream;
use std::sync::Weak;

use crate::channel::Sender as Inbox;

use crate::core::SenderEvent;
use crate::error::Error;
use crate::net::{Connection, ConnectionConfig};
use crate::protocol::add_offsets_to_txn::AddOffsetsToTxnRequest;
use crate::protocol::add_partitions_to_txn::AddPartitionsToTxnRequest;
use crate::protocol::api_versions::TRANSACTION_VERSION_FEATURE;
use crate::protocol::end_txn::EndTxnRequest;
use crate::protocol::find_coordinator::FindCoordinatorRequest;
use crate::protocol::init_producer_id::InitProducerIdRequest;
use crate::protocol::metadata::MetadataRequest;
use crate::protocol::produce::ProduceRequest;
use crate::protocol::txn_offset_commit::TxnOffsetCommitRequest;

/// A request the sender hands to a link.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Outgoing<'a> {
    Metadata(&'a MetadataRequest),
    InitProducerId(&'a InitProducerIdRequest),
    /// At most at the version given, if any (a transactional producer on the classic
    /// transaction protocol stays below KIP-890's versions).
    Produce(&'a ProduceRequest, Option<i16>),
    FindCoordinator(&'a FindCoordinatorRequest),
    AddPartitionsToTxn(&'a AddPartitionsToTxnRequest),
    AddOffsetsToTxn(&'a AddOffsetsToTxnRequest),
    TxnOffsetCommit(&'a TxnOffsetCommitRequest, Option<i16>),
    EndTxn(&'a EndTxnRequest, Option<i16>),
}

/// What the sender asks of one broker connection (after its handshake).
///
/// Owned by the sender thread. Dropping a link closes it; it then reports its close (with
/// its unanswered requests) like any other, which the sender ignores for a link it dropped.
pub(crate) trait Link: fmt::Debug + Send {
    /// Unique among links; every event of this link carries it.
    fn id(&self) -> u64;

    /// Queues `request` at the version negotiated with the broker and returns its
    /// correlation id. A request that expects a response is answered by a `Response`
    /// event, an acks=0 Produce request by a `Written` event once written; a link that
    /// breaks reports `Closed`. Errors: `UnsupportedVersion` when the broker lacks the
    /// API, `Network` when the link is already broken.
    fn submit(&mut self, request: Outgoing<'_>) -> Result<i32, Error>;

    /// A handle that shuts the socket down from another thread (a forced close unblocks
    /// a writer stuck on a stalled broker with it); `None` for links without a socket.
    fn shutdown_handle(&self) -> Option<Weak<TcpStream>>;

    /// The `transaction.version` the broker's cluster finalized (ApiVersions v3+), 0 when
    /// none: 2 and up means KIP-890's transaction protocol.
    fn transaction_version(&self) -> i16 {
        0
    }
}

impl Link for Connection {
    fn id(&self) -> u64 {
        Connection::id(self)
    }

    fn submit(&mut self, request: Outgoing<'_>) -> Result<i32, Error> {
        match request {
            Outgoing::Metadata(r) => Connection::submit(self, r),
            Outgoing::InitProducerId(r) => Connection::submit(self, r),
            Outgoing::Produce(r, max) => Connection::submit_up_to(self, r, max),
            Outgoing::FindCoordinator(r) => {
                self.check_lowest(r, r.lowest_version())?;
                Connection::submit(self, r)
            }
            Outgoing::AddPartitionsToTxn(r) => Connection::submit(self, r),
            Outgoing::AddOffsetsToTxn(r) => Connection::submit(self, r),
            Outgoing::TxnOffsetCommit(r, max) => {
                self.check_lowest(r, r.lowest_version())?;
                Connection::submit_up_to(self, r, max)
            }
            Outgoing::EndTxn(r, max) => Connection::submit_up_to(self, r, max),
        }
    }

    fn transaction_version(&self) -> i16 {
        self.api_versions()
            .finalized_level(TRANSACTION_VERSION_FEATURE)
    }

    fn shutdown_handle(&self) -> Option<Weak<TcpStream>> {
        Some(Connection::shutdown_handle(self))
    }
}

/// Opens links. Owned by the sender thread.
impl Connection {
    /// Refuses a request whose negotiated version cannot carry it whole (`lowest`): a
    /// lower version would ask the broker a different question.
    fn check_lowest<R: crate::protocol::Request>(&self, _: &R, lowest: i16) -> Result<(), Error> {
        match self.version_for::<R>() {
            Some(v) if v >= lowest => Ok(()),
            _ => Err(Error::UnsupportedVersion {
                api_key: R::API_KEY.0,
            }),
        }
    }
}

pub(crate) trait Connector: fmt::Debug + Send {
    /// Starts connecting to `address` as `node`. The outcome arrives later in the sender's
    /// inbox as [`SenderEvent::Connected`]; an `Err` here means no attempt was started.
    fn connect(&mut self, node: i32, address: &str) -> Result<(), Error>;
}

/// Connects on a short-lived thread per attempt, so a slow or dead broker (connect
/// timeout, handshake) never stalls the sender loop.
pub(crate) struct ThreadConnector {
    config: ConnectionConfig,
    inbox: Inbox<SenderEvent>,
}

impl ThreadConnector {
    /// Connections with `config`; events go to `inbox`.
    pub fn new(config: ConnectionConfig, inbox: Inbox<SenderEvent>) -> Self {
        ThreadConnector { config, inbox }
    }
}

impl fmt::Debug for ThreadConnector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ThreadConnector")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Connector for ThreadConnector {
    fn connect(&mut self, node: i32, address: &str) -> Result<(), Error> {
        let (address, config, inbox) =
            (address.to_owned(), self.config.clone(), self.inbox.clone());
        std::thread::Builder::new()
            .name(format!("kafka-connect-{node}"))
            .spawn(move || {
                // Setup may run user code (an OAUTHBEARER token provider); whatever happens,
                // the sender hears back, or the node would stay "connecting" for good.
                let connect = || {
                    Connection::connect(&address, &config, inbox.clone())
                        .map(|c| Box::new(c) as Box<dyn Link>)
                };
                let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(connect))
                    .unwrap_or_else(|_| {
                        Err(Error::Network {
                            broker: address.clone(),
                            reason: "the connection setup panicked".to_owned(),
                        })
                    });
                let _ = inbox.send(SenderEvent::Connected { node, result });
            })
            .map(drop)
            .map_err(|e| Error::Network {
                broker: format!("node {node}"),
                reason: format!("could not spawn a connect thread: {e}"),
            })
    }
}

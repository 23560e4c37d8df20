//! Blocking broker connections: TCP with Kafka's socket options, TLS and SASL
//! (`security.protocol`), size-prefixed frames, correlation ids, the ApiVersions handshake,
//! and a reader and a writer thread per connection.
//!
//! [`Connection`] is the building block the sender thread owns (one per broker); its reader
//! thread delivers [`ConnectionEvent`]s to a channel the owner chooses. [`BlockingClient`]
//! wraps a connection with a private channel for simple request/response use (bootstrap
//! metadata, tests).

mod connection;
mod sasl;
mod security;
mod transport;

pub use connection::{
    read_frame, Connection, ConnectionConfig, ConnectionEvent, ConnectionEventKind, EventSink,
};
pub use security::ConnectionSecurity;

use std::time::{Duration, Instant};

use crate::channel::{Receiver, RecvTimeoutError};

use crate::error::Error;
use crate::protocol::{Request, ResponseBody};

/// A connection with its own event channel, for one request at a time.
#[derive(Debug)]
pub struct BlockingClient {
    connection: Connection,
    events: Receiver<ConnectionEvent>,
}

impl BlockingClient {
    /// Connects to `broker` and runs the handshake.
    pub fn connect(broker: &str, config: &ConnectionConfig) -> Result<Self, Error> {
        let (tx, events) = crate::channel::unbounded();
        let connection = Connection::connect(broker, config, tx)?;
        Ok(BlockingClient { connection, events })
    }

    /// The underlying connection (versions, id, broker).
    pub fn connection(&self) -> &Connection {
        &self.connection
    }

    /// Sends `request` at the negotiated version and waits up to `timeout` for its response.
    pub fn request<R>(&mut self, request: &R, timeout: Duration) -> Result<R::Response, Error>
    where
        R: Request,
        R::Response: TryFrom<ResponseBody>,
    {
        let version = self
            .connection
            .version_for::<R>()
            .ok_or(Error::UnsupportedVersion {
                api_key: R::API_KEY.0,
            })?;
        self.request_at(request, version, timeout)
    }

    /// Sends `request` at `version` and waits up to `timeout` for its response.
    pub fn request_at<R>(
        &mut self,
        request: &R,
        version: i16,
        timeout: Duration,
    ) -> Result<R::Response, Error>
    where
        R: Request,
        R::Response: TryFrom<ResponseBody>,
    {
        let deadline = Instant::now() + timeout;
        let Some(correlation_id) = self.connection.send_at(request, version)? else {
            return Err(Error::Config(
                "request expects no response (acks=0); use send instead".into(),
            ));
        };
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            let event = match self.events.recv_timeout(wait) {
                Ok(e) => e,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.network_error(format!(
                        "no response to correlation id {correlation_id} within {timeout:?}"
                    )))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.network_error("reader thread ended".into()))
                }
            };
            match event.kind {
                ConnectionEventKind::Response {
                    correlation_id: c,
                    body,
                    ..
                } if c == correlation_id => {
                    return R::Response::try_from(body?)
                        .map_err(|_| self.network_error("response of another API".into()));
                }
                // An answer to an earlier request whose wait timed out, or an acks=0 write.
                ConnectionEventKind::Response { .. } | ConnectionEventKind::Written { .. } => {
                    continue
                }
                ConnectionEventKind::Closed { error, .. } => return Err(error),
            }
        }
    }

    /// Sends `request` without waiting for a response (for acks=0 produce requests): returns
    /// once the connection's writer has written it (an error after 30 s), with the
    /// correlation id when a response is expected after all.
    pub fn send<R: Request>(&mut self, request: &R) -> Result<Option<i32>, Error> {
        let correlation_id = self.connection.submit(request)?;
        if request.expects_response() {
            return Ok(Some(correlation_id));
        }
        let timeout = Duration::from_secs(30);
        let deadline = Instant::now() + timeout;
        loop {
            let wait = deadline.saturating_duration_since(Instant::now());
            match self.events.recv_timeout(wait) {
                Ok(ConnectionEvent {
                    kind: ConnectionEventKind::Written { correlation_id: c },
                    ..
                }) if c == correlation_id => return Ok(None),
                Ok(ConnectionEvent {
                    kind: ConnectionEventKind::Closed { error, .. },
                    ..
                }) => return Err(error),
                Ok(_) => continue,
                Err(RecvTimeoutError::Timeout) => {
                    return Err(self.network_error(format!(
                        "request {correlation_id} not written within {timeout:?}"
                    )))
                }
                Err(RecvTimeoutError::Disconnected) => {
                    return Err(self.network_error("writer thread ended".into()))
                }
            }
        }
    }

    fn network_error(&self, reason: String) -> Error {
        Error::Network {
            broker: self.connection.broker().to_owned(),
            reason,
        }
    }
}

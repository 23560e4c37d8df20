//! One connection to one broker, with its reader and writer threads.
//!
//! # Setup
//!
//! [`Connection::connect`] runs, on the calling thread, the whole chain within
//! socket.connection.setup.timeout.ms: TCP connect, the TLS handshake (SSL, SASL_SSL),
//! ApiVersions, then SaslHandshake and SaslAuthenticate (SASL_*). Only then are the reader
//! and writer started, on the two halves of the stream ([`super::transport`]).
//!
//! # Ownership and threads
//!
//! - The **owner** (the thread holding the [`Connection`]) encodes a request, registers it
//!   in `pending` when a response is expected, and queues the whole frame for the writer. It
//!   never touches the socket itself, so a broker that stops reading (a frozen process, a
//!   full socket buffer) can stall only its own connection's writer, never the owner: the
//!   sender thread keeps serving every other broker (issue 9, scenario 5).
//! - The **writer thread** owns the write half of the stream and the receiving end of
//!   the frame queue, and re-authenticates (KIP-368) between two frames when the session
//!   the broker granted nears its end: its requests carry negative correlation ids and are
//!   marked internal in `pending`, so the reader hands their answers back to it. It writes each frame with one `write_all`, in queue order (so requests
//!   reach the broker in correlation order), bounded by the socket's write timeout. A failed
//!   write records its cause in `write_error` and shuts the socket down, which ends the
//!   reader; then it stops. It reports a frame that expects no response (acks=0) once it is
//!   written, since nothing else will ([`ConnectionEventKind::Written`]).
//! - The **reader thread** owns the read half of the stream. It reads size-prefixed
//!   frames, looks the correlation id up in `pending`, decodes the response with the API key
//!   and version recorded there, and sends a [`ConnectionEvent`] to the owner's channel.
//! - `pending` (a `Mutex<HashMap>`) is the state owner and reader share. The owner inserts
//!   *before* queueing the frame, so the reader always finds the entry of a response that
//!   arrives. No other lock is ever taken while it is held; the same holds for
//!   `write_error` (writer writes it once, reader reads it at the end).
//!
//! A response whose correlation id matches no pending request is dropped with a debug log:
//! tansu 0.6 and librdkafka's mock cluster answer acks=0 produce requests that Kafka leaves
//! unanswered, and those answers must not break the connection.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Weak};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::channel::{Receiver, RecvTimeoutError, Sender};
use parking_lot::Mutex;
use socket2::{Domain, Protocol, SockRef, Socket, Type};

use super::sasl::{self, SaslChannel, SaslVersions};
use super::security::ConnectionSecurity;
use super::transport::{ReadHalf, Stream, WriteHalf};
use crate::error::{Error, ErrorCode};
use crate::protocol::api_versions::{self, ApiVersionsRequest, ApiVersionsResponse};
use crate::protocol::sasl_authenticate::{SaslAuthenticateRequest, SaslAuthenticateResponse};
use crate::protocol::sasl_handshake::{SaslHandshakeRequest, SaslHandshakeResponse};
use crate::protocol::{
    decode_any_response, encode_request, peek_correlation_id, ApiKey, DecodeError, Request,
    ResponseBody,
};
use crate::security::SaslCredentials;

/// Socket and handshake settings of a connection (from the producer's config).
#[derive(Debug, Clone)]
pub struct ConnectionConfig {
    /// client.id, sent in every request header.
    pub client_id: Option<String>,
    /// socket.connection.setup.timeout.ms: the whole setup chain (TCP connect, TLS,
    /// ApiVersions, SASL) must finish within it.
    pub setup_timeout: Duration,
    /// request.timeout.ms: how long a re-authentication waits for each of the broker's
    /// answers (they queue behind the requests in flight).
    pub request_timeout: Duration,
    /// TLS and SASL (`security.protocol` and its settings).
    pub security: ConnectionSecurity,
    /// send.buffer.bytes (`None` = the OS default, Java's -1).
    pub send_buffer_bytes: Option<usize>,
    /// receive.buffer.bytes (`None` = the OS default, Java's -1).
    pub receive_buffer_bytes: Option<usize>,
    /// Largest response frame accepted; a larger size prefix closes the connection.
    pub max_response_size: usize,
    /// How long one request write may block the connection's writer thread (a broker that
    /// stops reading fills the socket buffers); a write that times out breaks the
    /// connection. `None`: no limit.
    pub write_timeout: Option<Duration>,
}

impl Default for ConnectionConfig {
    /// Java's producer defaults: 10 s setup timeout, 128 KiB send buffer, 32 KiB receive
    /// buffer.
    fn default() -> Self {
        ConnectionConfig {
            client_id: None,
            setup_timeout: Duration::from_secs(10),
            request_timeout: Duration::from_secs(30),
            security: ConnectionSecurity::default(),
            send_buffer_bytes: Some(128 * 1024),
            receive_buffer_bytes: Some(32 * 1024),
            max_response_size: 100 * 1024 * 1024,
            write_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// What a connection's reader thread reports to the owner.
#[derive(Debug)]
pub struct ConnectionEvent {
    /// The connection it came from ([`Connection::id`]).
    pub connection_id: u64,
    /// What happened.
    pub kind: ConnectionEventKind,
}

/// What a connection's reader and writer threads report.
#[derive(Debug)]
pub enum ConnectionEventKind {
    /// A request that expects no response (acks=0) was written to the socket: all that
    /// will ever be known of it.
    Written {
        /// The request's correlation id.
        correlation_id: i32,
    },
    /// A response to a pending request, decoded (or not) with the request's API and version.
    Response {
        /// The request's correlation id.
        correlation_id: i32,
        /// The request's API key.
        api_key: ApiKey,
        /// The version the request was sent at.
        version: i16,
        /// The decoded body, or why it did not decode.
        body: Result<ResponseBody, DecodeError>,
    },
    /// The connection broke (or was closed by the owner). `unanswered` lists the correlation
    /// ids that were still waiting for a response; they never will get one.
    Closed {
        /// Why it closed.
        error: Error,
        /// Requests that were still pending.
        unanswered: Vec<i32>,
    },
}

/// A request the reader thread expects a response for.
#[derive(Debug, Clone, Copy)]
struct Pending {
    api_key: ApiKey,
    version: i16,
    /// Sent by the writer thread for re-authentication: the answer goes back to it, not to
    /// the owner. Such requests have negative correlation ids, the owner's never do.
    internal: bool,
}

/// An answer to a re-authentication request, from the reader to the writer thread.
type InternalResponse = (i32, Result<ResponseBody, DecodeError>);

/// State shared by the owner, the writer and the reader thread.
#[derive(Debug, Default)]
struct Shared {
    /// Guards the requests awaiting a response, keyed by correlation id.
    pending: Mutex<HashMap<i32, Pending>>,
    /// Written by the owner (Release) before it shuts the socket; read by the reader thread
    /// (Acquire) to tell a deliberate close from a broken connection.
    closing: AtomicBool,
    /// Why the writer gave up (a failed write, a failed re-authentication), set once by
    /// the writer before it shuts the socket down; the reader reports it as the close.
    write_error: Mutex<Option<Error>>,
}

/// A request frame on its way to the writer thread.
#[derive(Debug)]
struct Outgoing {
    frame: Vec<u8>,
    correlation_id: i32,
    /// Report [`ConnectionEventKind::Written`] once written (no response will come).
    report_written: bool,
}

static NEXT_CONNECTION_ID: AtomicU64 = AtomicU64::new(1);

/// A blocking connection to one broker, after the ApiVersions handshake.
///
/// See the module docs for the threads and the lock.
#[derive(Debug)]
pub struct Connection {
    id: u64,
    broker: String,
    /// Shared only with [`Connection::shutdown_handle`]s; the reader and the writer have
    /// their own clones.
    stream: Arc<TcpStream>,
    shared: Arc<Shared>,
    /// The writer's queue; `None` once the connection is shut down.
    frames: Option<Sender<Outgoing>>,
    writer: Option<JoinHandle<()>>,
    client_id: Option<String>,
    next_correlation_id: i32,
    api_versions: ApiVersionsResponse,
    /// The ApiVersions version the handshake settled on.
    handshake_version: i16,
    reader: Option<JoinHandle<()>>,
}

/// Where a connection's threads report its events: a channel's sending half.
pub trait EventSink<T>: Clone + Send + 'static {
    /// Hands `event` over; false when nobody receives any more (the event is dropped).
    fn deliver(&self, event: T) -> bool;
}

impl<T: Send + 'static> EventSink<T> for crossbeam_channel::Sender<T> {
    fn deliver(&self, event: T) -> bool {
        self.send(event).is_ok()
    }
}

impl<T: Send + 'static> EventSink<T> for crate::channel::Sender<T> {
    fn deliver(&self, event: T) -> bool {
        self.send(event).is_ok()
    }
}

impl Connection {
    /// Connects to `broker` (`host:port`), runs the ApiVersions handshake, and starts the
    /// reader thread, which sends every response and the final close to `events`.
    pub fn connect<T, S>(broker: &str, config: &ConnectionConfig, events: S) -> Result<Self, Error>
    where
        T: From<ConnectionEvent> + Send + 'static,
        S: EventSink<T>,
    {
        let deadline = Instant::now() + config.setup_timeout;
        let tcp = open_socket(broker, config)?;
        let mut stream = secure(tcp, broker, config, deadline)?;
        let id = NEXT_CONNECTION_ID.fetch_add(1, Ordering::Relaxed);
        let mut next_correlation_id = 0;
        let (handshake_version, api_versions) = handshake(
            &mut stream,
            broker,
            config,
            deadline,
            &mut next_correlation_id,
        )?;
        let reauth = match &config.security.sasl {
            Some(credentials) => {
                let versions = SaslVersions::negotiate(broker, &api_versions)?;
                let mut channel = SetupChannel {
                    stream: &mut stream,
                    broker,
                    config,
                    deadline,
                    next_correlation_id: &mut next_correlation_id,
                };
                let lifetime = sasl::authenticate(&mut channel, broker, versions, credentials)?;
                Some(Reauthentication {
                    credentials: credentials.clone(),
                    versions,
                    timeout: config.request_timeout,
                    next_correlation_id: -1,
                    due: lifetime.map(|l| Instant::now() + sasl::reauthentication_delay(l)),
                })
            }
            None => None,
        };
        stream
            .tcp()
            .set_read_timeout(None)
            .and_then(|()| stream.tcp().set_write_timeout(config.write_timeout))
            .map_err(|e| net_error(broker, "set socket timeouts", &e))?;
        let shutdown = stream
            .tcp()
            .try_clone()
            .map_err(|e| net_error(broker, "clone socket", &e))?;
        let (read_half, write_half) = stream
            .split()
            .map_err(|e| net_error(broker, "clone socket", &e))?;
        let shared = Arc::new(Shared::default());
        let (frames, queue) = crate::channel::unbounded();
        let (internal_tx, internal_rx) = crate::channel::unbounded();
        let writer = {
            let shared = Arc::clone(&shared);
            let events = events.clone();
            let writer = Writer {
                connection_id: id,
                broker: broker.to_owned(),
                out: write_half,
                client_id: config.client_id.clone(),
                reauth,
                answers: internal_rx,
            };
            std::thread::Builder::new()
                .name(format!("kafka-conn-{id}-writer"))
                .spawn(move || writer.run(&queue, &shared, &events))
                .map_err(|e| net_error(broker, "spawn writer thread", &e))?
        };
        let reader = {
            let shared = Arc::clone(&shared);
            let name = broker.to_owned();
            let max = config.max_response_size;
            std::thread::Builder::new()
                .name(format!("kafka-conn-{id}-reader"))
                .spawn(move || read_loop(id, name, read_half, max, shared, events, internal_tx))
                .map_err(|e| net_error(broker, "spawn reader thread", &e))?
        };
        Ok(Connection {
            id,
            broker: broker.to_owned(),
            stream: Arc::new(shutdown),
            shared,
            frames: Some(frames),
            writer: Some(writer),
            client_id: config.client_id.clone(),
            next_correlation_id,
            api_versions,
            handshake_version,
            reader: Some(reader),
        })
    }

    /// A handle that shuts this connection's socket down from another thread, so that a
    /// forced close can unblock an owner stuck in `write_all` to a stalled broker (a full
    /// socket buffer blocks the write for as long as the broker stalls). It is dead once
    /// the connection is dropped.
    pub(crate) fn shutdown_handle(&self) -> Weak<TcpStream> {
        Arc::downgrade(&self.stream)
    }

    /// This connection's id, as it appears in its events.
    pub fn id(&self) -> u64 {
        self.id
    }

    /// The broker address this connection was opened to.
    pub fn broker(&self) -> &str {
        &self.broker
    }

    /// The broker's ApiVersions answer.
    pub fn api_versions(&self) -> &ApiVersionsResponse {
        &self.api_versions
    }

    /// The ApiVersions version the handshake used: 3, or lower when the broker refused v3.
    pub fn handshake_version(&self) -> i16 {
        self.handshake_version
    }

    /// The version at which request type `R` would be sent: the highest version both this
    /// client and the broker support.
    pub fn version_for<R: Request>(&self) -> Option<i16> {
        self.api_versions
            .range(R::API_KEY)
            .and_then(|theirs| R::VERSIONS.highest_common(&theirs))
    }

    /// Sends `request` at the negotiated version. Returns the correlation id when a response
    /// is expected (its [`ConnectionEventKind::Response`] will carry it), `None` otherwise.
    pub fn send<R: Request>(&mut self, request: &R) -> Result<Option<i32>, Error> {
        let version = self.version_for::<R>().ok_or(Error::UnsupportedVersion {
            api_key: R::API_KEY.0,
        })?;
        self.send_at(request, version)
    }

    /// Sends `request` at an explicit `version`, which must lie in both this client's and the
    /// broker's range.
    pub fn send_at<R: Request>(&mut self, request: &R, version: i16) -> Result<Option<i32>, Error> {
        let correlation_id = self.queue(request, version, false)?;
        Ok(request.expects_response().then_some(correlation_id))
    }

    /// Queues `request` at the negotiated version for the writer and returns its correlation
    /// id. A request that expects no response is reported as
    /// [`ConnectionEventKind::Written`] once written; one that does gets a
    /// [`ConnectionEventKind::Response`]. A write that fails closes the connection
    /// ([`ConnectionEventKind::Closed`]).
    pub fn submit<R: Request>(&mut self, request: &R) -> Result<i32, Error> {
        self.submit_up_to(request, None)
    }

    /// [`submit`](Self::submit) at the highest common version not above `max` (the
    /// transactional producer keeps the classic protocol's versions when the cluster has not
    /// finalized KIP-890's).
    pub fn submit_up_to<R: Request>(
        &mut self,
        request: &R,
        max: Option<i16>,
    ) -> Result<i32, Error> {
        let version = self
            .version_for::<R>()
            .map(|v| max.map_or(v, |m| v.min(m)))
            .ok_or(Error::UnsupportedVersion {
                api_key: R::API_KEY.0,
            })?;
        self.queue(request, version, true)
    }

    fn queue<R: Request>(
        &mut self,
        request: &R,
        version: i16,
        report_written: bool,
    ) -> Result<i32, Error> {
        let broker_ok = self
            .api_versions
            .range(R::API_KEY)
            .is_some_and(|r| r.contains(version));
        if !R::VERSIONS.contains(version) || !broker_ok {
            return Err(Error::UnsupportedVersion {
                api_key: R::API_KEY.0,
            });
        }
        let correlation_id = self.next_correlation_id();
        let frame = encode_request(request, version, correlation_id, self.client_id.as_deref());
        let expects = request.expects_response();
        if expects {
            let pending = Pending {
                api_key: R::API_KEY,
                version,
                internal: false,
            };
            self.shared.pending.lock().insert(correlation_id, pending);
        }
        let outgoing = Outgoing {
            frame,
            correlation_id,
            report_written: report_written && !expects,
        };
        let queued = self
            .frames
            .as_ref()
            .is_some_and(|f| f.send(outgoing).is_ok());
        if !queued {
            // The writer stopped after a failed write; the reader reports the close.
            self.shared.pending.lock().remove(&correlation_id);
            return Err(self
                .shared
                .write_error
                .lock()
                .clone()
                .unwrap_or_else(|| Error::Network {
                    broker: self.broker.clone(),
                    reason: "the connection is closed".to_owned(),
                }));
        }
        Ok(correlation_id)
    }

    /// Number of requests still waiting for a response.
    pub fn pending_requests(&self) -> usize {
        self.shared.pending.lock().len()
    }

    fn next_correlation_id(&mut self) -> i32 {
        let id = self.next_correlation_id;
        // Wraps after 2^31 requests; ids only need to be unique among those in flight.
        self.next_correlation_id = id.wrapping_add(1) & i32::MAX;
        id
    }

    /// Closes the socket and waits for the reader and writer threads to finish. The reader
    /// still reports [`ConnectionEventKind::Closed`] with any unanswered requests.
    pub fn close(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.shared.closing.store(true, Ordering::Release);
        // The shutdown also wakes a writer blocked in a write to a broker that stopped
        // reading; dropping the queue ends an idle one.
        let _ = self.stream.shutdown(Shutdown::Both);
        self.frames = None;
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        if let Some(reader) = self.reader.take() {
            let _ = reader.join();
        }
    }
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.shutdown();
    }
}

fn net_error(broker: &str, what: &str, e: &io::Error) -> Error {
    Error::Network {
        broker: broker.to_owned(),
        reason: format!("{what}: {e}"),
    }
}

/// Resolves `broker` and connects to the first address that answers within the setup
/// timeout, with Kafka's socket options (TCP_NODELAY, buffer sizes, keep-alive).
fn open_socket(broker: &str, config: &ConnectionConfig) -> Result<TcpStream, Error> {
    let addrs: Vec<SocketAddr> = broker
        .to_socket_addrs()
        .map_err(|e| net_error(broker, "resolve address", &e))?
        .collect();
    let mut last = io::Error::new(io::ErrorKind::NotFound, "no address resolved");
    for addr in addrs {
        match connect_one(addr, config) {
            Ok(stream) => return Ok(stream),
            Err(e) => last = e,
        }
    }
    Err(net_error(broker, "connect", &last))
}

fn connect_one(addr: SocketAddr, config: &ConnectionConfig) -> io::Result<TcpStream> {
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_nodelay(true)?;
    socket.set_keepalive(true)?;
    if let Some(n) = config.send_buffer_bytes {
        socket.set_send_buffer_size(n)?;
    }
    if let Some(n) = config.receive_buffer_bytes {
        socket.set_recv_buffer_size(n)?;
    }
    socket.connect_timeout(&addr.into(), config.setup_timeout)?;
    Ok(socket.into())
}

/// TLS over `tcp` when the security protocol asks for it, within `deadline`.
fn secure(
    tcp: TcpStream,
    broker: &str,
    config: &ConnectionConfig,
    deadline: Instant,
) -> Result<Stream, Error> {
    let security = &config.security;
    if !security.protocol.uses_tls() {
        return Ok(Stream::Plain(tcp));
    }
    #[cfg(feature = "tls")]
    {
        let Some(tls) = security.tls.clone() else {
            return Err(Error::Config(format!(
                "security.protocol={} but no TLS configuration was built",
                security.protocol
            )));
        };
        let host = broker.rsplit_once(':').map_or(broker, |(host, _)| host);
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let server_name = rustls::pki_types::ServerName::try_from(host.to_owned())
            .map_err(|e| Error::Config(format!("{host:?} is not a valid TLS server name: {e}")))?;
        Stream::tls(tcp, tls, server_name, deadline).map_err(|e| {
            let closed = e.kind() == io::ErrorKind::UnexpectedEof;
            if closed && speaks_plaintext_kafka(broker, config, deadline) {
                return Error::Authentication(format!(
                    "{broker}: the broker closed the connection during the TLS handshake, and \
                     answers plaintext ApiVersions on this port: it is a PLAINTEXT or \
                     SASL_PLAINTEXT listener, but security.protocol={}",
                    security.protocol
                ));
            }
            setup_io_error(&e, broker, config, "the TLS handshake")
        })
    }
    #[cfg(not(feature = "tls"))]
    {
        let _ = (tcp, deadline);
        Err(Error::Config(format!(
            "security.protocol={} needs TLS, and this build has no TLS support (enable the \
             crate feature \"tls\"); connecting to {broker}",
            security.protocol
        )))
    }
}

/// Whether `broker` answers a plaintext ApiVersions request within `deadline`: run after
/// a TLS handshake the peer hung up on, to tell a plaintext Kafka listener (a
/// configuration error, reported at once) from a peer that merely closed (a restart, a
/// proxy without a backend: retried like any lost connection).
#[cfg(feature = "tls")]
fn speaks_plaintext_kafka(broker: &str, config: &ConnectionConfig, deadline: Instant) -> bool {
    let Ok(tcp) = open_socket(broker, config) else {
        return false;
    };
    let plain = ConnectionConfig {
        security: ConnectionSecurity::plaintext(),
        ..config.clone()
    };
    let mut stream = Stream::Plain(tcp);
    handshake(&mut stream, broker, &plain, deadline, &mut 0).is_ok()
}

/// What a failed read or write during setup means, naming the step it failed in: a TLS
/// failure (certificate, alert, a peer that does not speak TLS) is an
/// [`Error::Authentication`] with the cause; a timeout or a broken connection is a
/// [`Error::Network`] error.
fn setup_io_error(e: &io::Error, broker: &str, config: &ConnectionConfig, step: &str) -> Error {
    if let Some(cause) = tls_cause(e, broker) {
        return Error::Authentication(format!("{broker}: TLS failed during {step}: {cause}"));
    }
    if let Some(tls) = e.get_ref().and_then(|i| i.downcast_ref::<TlsSpokenHere>()) {
        return Error::Authentication(format!("{broker}: {tls}"));
    }
    let tls = config.security.protocol.uses_tls();
    let reason = match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => format!(
            "no answer during {step} within socket.connection.setup.timeout.ms ({} ms)",
            config.setup_timeout.as_millis()
        ),
        io::ErrorKind::UnexpectedEof if tls && step == "the TLS handshake" => format!(
            "the peer closed the connection during the TLS handshake (a broker restarting, \
             a proxy without a backend, or a listener that does not speak TLS): {e}"
        ),
        _ => format!("{step} failed: {e}"),
    };
    Error::Network {
        broker: broker.to_owned(),
        reason,
    }
}

/// The cause of a TLS failure inside `e`, in words, if it is one.
#[cfg(feature = "tls")]
fn tls_cause(e: &io::Error, broker: &str) -> Option<String> {
    use rustls::{AlertDescription, CertificateError};
    let tls = e.get_ref()?.downcast_ref::<rustls::Error>()?;
    let host = broker.rsplit_once(':').map_or(broker, |(h, _)| h);
    Some(match tls {
        rustls::Error::InvalidCertificate(cert) => match cert {
            CertificateError::UnknownIssuer => "the broker's certificate is not trusted: no CA in \
                 the truststore (ssl.truststore.*, or the system's roots) signed it"
                .to_owned(),
            CertificateError::Expired | CertificateError::ExpiredContext { .. } => {
                "the broker's certificate has expired".to_owned()
            }
            CertificateError::NotValidYet | CertificateError::NotValidYetContext { .. } => {
                "the broker's certificate is not valid yet".to_owned()
            }
            CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. } => {
                format!(
                    "hostname verification failed: the broker's certificate does not name \
                     {host} (ssl.endpoint.identification.algorithm=https; set it to \"\" to \
                     skip this check)"
                )
            }
            other => format!("the broker's certificate was refused: {other:?}"),
        },
        rustls::Error::AlertReceived(AlertDescription::CertificateRequired)
        | rustls::Error::AlertReceived(AlertDescription::HandshakeFailure)
        | rustls::Error::AlertReceived(AlertDescription::BadCertificate) => format!(
            "the broker refused the handshake ({tls}); a listener with \
             ssl.client.auth=required needs a client certificate the broker trusts \
             (ssl.keystore.*)"
        ),
        rustls::Error::InvalidMessage(_) => "the broker does not speak TLS on this port (a \
             PLAINTEXT or SASL_PLAINTEXT listener?)"
            .to_owned(),
        other => other.to_string(),
    })
}

#[cfg(not(feature = "tls"))]
fn tls_cause(_: &io::Error, _: &str) -> Option<String> {
    None
}

/// ApiVersions at our highest version; if the broker refuses it, retry once at the highest
/// version both sides support (the broker lists its ApiVersions range in the refusal).
fn handshake(
    stream: &mut Stream,
    broker: &str,
    config: &ConnectionConfig,
    deadline: Instant,
    next_correlation_id: &mut i32,
) -> Result<(i16, ApiVersionsResponse), Error> {
    let request = ApiVersionsRequest::default();
    let mut version = ApiVersionsRequest::VERSIONS.max;
    let step = "ApiVersions";
    let response = loop {
        let correlation_id = *next_correlation_id;
        *next_correlation_id += 1;
        let frame = encode_request(
            &request,
            version,
            correlation_id,
            config.client_id.as_deref(),
        );
        let reply = stream
            .arm(deadline)
            .and_then(|()| stream.write_all(&frame))
            .and_then(|()| read_setup_frame(stream, config, deadline))
            .map_err(|e| setup_io_error(&e, broker, config, step))?;
        let (corr, response) = api_versions::decode_with_fallback(version, &reply)?;
        if corr != correlation_id {
            return Err(DecodeError::InvalidValue {
                what: "ApiVersions correlation id",
                value: i64::from(corr),
            }
            .into());
        }
        if response.error_code != api_versions::UNSUPPORTED_VERSION {
            break response;
        }
        // KIP-511: the refusal carries the broker's ApiVersions range; without a readable
        // one, step down a version at a time.
        let next = match response.range(ApiKey::API_VERSIONS) {
            Some(theirs) => ApiVersionsRequest::VERSIONS.highest_common(&theirs),
            None => version.checked_sub(1).filter(|v| *v >= 0),
        };
        match next {
            Some(v) if v < version => {
                log::debug!("{broker} refused ApiVersions v{version}; retrying at v{v}");
                version = v;
            }
            _ => {
                return Err(Error::UnsupportedVersion {
                    api_key: ApiKey::API_VERSIONS.0,
                })
            }
        }
    };
    if response.error_code != 0 {
        return Err(Error::broker(ErrorCode::from_code(response.error_code)));
    }
    Ok((version, response))
}

/// One response frame during setup. A TLS record where a Kafka frame should be means the
/// broker speaks TLS on this port and the client does not: that is named, not reported as
/// an absurd frame size.
fn read_setup_frame(
    stream: &mut Stream,
    config: &ConnectionConfig,
    deadline: Instant,
) -> io::Result<Vec<u8>> {
    let mut stream = Deadlined { stream, deadline };
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    // A TLS record starts with its content type (21 alert, 22 handshake) and version 3.x.
    if !config.security.protocol.uses_tls() && matches!(size, [21 | 22, 3, 0..=4, _]) {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            TlsSpokenHere(config.security.protocol),
        ));
    }
    read_frame(&mut (&size[..]).chain(stream), config.max_response_size)
}

/// A setup stream whose every read is bounded by what is left of the setup deadline, so
/// that a peer trickling its answer in cannot stretch the setup past it.
struct Deadlined<'a> {
    stream: &'a mut Stream,
    deadline: Instant,
}

impl Read for Deadlined<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.stream.arm(self.deadline)?;
        self.stream.read(buf)
    }
}

/// The broker answered a plaintext request with TLS.
#[derive(Debug)]
struct TlsSpokenHere(crate::security::SecurityProtocol);

impl std::fmt::Display for TlsSpokenHere {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the broker answered with TLS: this is an SSL or SASL_SSL listener, but \
             security.protocol={}",
            self.0
        )
    }
}

impl std::error::Error for TlsSpokenHere {}

/// SASL round trips on the bare stream during setup, bounded by the setup deadline.
struct SetupChannel<'a> {
    stream: &'a mut Stream,
    broker: &'a str,
    config: &'a ConnectionConfig,
    deadline: Instant,
    next_correlation_id: &'a mut i32,
}

impl SetupChannel<'_> {
    fn round_trip<R>(&mut self, request: &R, version: i16, step: &str) -> Result<R::Response, Error>
    where
        R: Request,
        R::Response: TryFrom<ResponseBody>,
    {
        let correlation_id = *self.next_correlation_id;
        *self.next_correlation_id += 1;
        let frame = encode_request(
            request,
            version,
            correlation_id,
            self.config.client_id.as_deref(),
        );
        let (stream, config, broker) = (&mut *self.stream, self.config, self.broker);
        let deadline = self.deadline;
        let reply = stream
            .arm(deadline)
            .and_then(|()| stream.write_all(&frame))
            .and_then(|()| read_setup_frame(stream, config, deadline))
            .map_err(|e| setup_io_error(&e, broker, config, step))?;
        let (corr, body) = decode_any_response(R::API_KEY, version, &reply)?;
        if corr != correlation_id {
            return Err(DecodeError::InvalidValue {
                what: "SASL response correlation id",
                value: i64::from(corr),
            }
            .into());
        }
        R::Response::try_from(body).map_err(|_| Error::Network {
            broker: broker.to_owned(),
            reason: format!("{step}: the answer is a response of another API"),
        })
    }
}

impl SaslChannel for SetupChannel<'_> {
    fn handshake(
        &mut self,
        request: &SaslHandshakeRequest,
        version: i16,
    ) -> Result<SaslHandshakeResponse, Error> {
        self.round_trip(request, version, "SaslHandshake")
    }

    fn authenticate(
        &mut self,
        request: &SaslAuthenticateRequest,
        version: i16,
    ) -> Result<SaslAuthenticateResponse, Error> {
        self.round_trip(request, version, "SaslAuthenticate")
    }
}

/// Reads one size-prefixed response frame from `stream` and returns the bytes after the
/// 4-byte size prefix.
///
/// A size below 4 (no room for a correlation id) or above `max_size` fails with
/// [`io::ErrorKind::InvalidData`], a stream that ends inside the frame with
/// [`io::ErrorKind::UnexpectedEof`]. Memory follows the bytes that arrive, not the size the
/// prefix claims: a peer that announces `max_size` (100 MiB by default) and then stalls or
/// hangs up costs what it sent (at most twice that while the buffer grows), not the claim.
pub fn read_frame(stream: &mut impl Read, max_size: usize) -> io::Result<Vec<u8>> {
    let mut size = [0u8; 4];
    stream.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    let len = match usize::try_from(size) {
        Ok(n) if (4..=max_size).contains(&n) => n,
        _ => {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!("response frame size {size} is outside 4..={max_size}"),
            ))
        }
    };
    let mut frame = Vec::with_capacity(len.min(FRAME_READ_CHUNK));
    Read::take(&mut *stream, len as u64).read_to_end(&mut frame)?;
    if frame.len() < len {
        return Err(io::Error::new(
            io::ErrorKind::UnexpectedEof,
            format!(
                "the stream ended {} bytes into a {len}-byte response frame",
                frame.len()
            ),
        ));
    }
    Ok(frame)
}

/// What [`read_frame`] reserves before the bytes of a frame arrive: every Produce and
/// InitProducerId response and most Metadata responses fit in one read.
const FRAME_READ_CHUNK: usize = 64 * 1024;

/// Re-authentication state of a SASL connection (KIP-368), owned by the writer thread.
struct Reauthentication {
    credentials: SaslCredentials,
    versions: SaslVersions,
    /// How long to wait for each answer (request.timeout.ms).
    timeout: Duration,
    /// Correlation ids of re-authentication requests count down from -1, apart from the
    /// owner's, which are never negative.
    next_correlation_id: i32,
    /// When to authenticate again; `None` when the broker set no session lifetime.
    due: Option<Instant>,
}

/// The writer thread's state.
struct Writer {
    connection_id: u64,
    broker: String,
    out: WriteHalf,
    client_id: Option<String>,
    reauth: Option<Reauthentication>,
    /// Answers to re-authentication requests, from the reader.
    answers: Receiver<InternalResponse>,
}

impl Writer {
    /// Frames from the queue onto the socket, in order, until the queue closes or a write
    /// or a re-authentication fails (then it shuts the socket down, so the reader reports
    /// the close). Re-authentication runs between two frames when its time comes: frames
    /// queued meanwhile wait, responses to those already written keep flowing to the owner.
    fn run<T: From<ConnectionEvent>, S: EventSink<T>>(
        mut self,
        queue: &Receiver<Outgoing>,
        shared: &Shared,
        events: &S,
    ) {
        loop {
            let due = self.reauth.as_ref().and_then(|r| r.due);
            // Checked before every frame: under steady load the queue is never empty, and
            // a receive with a passed deadline still returns a waiting frame.
            if due.is_some_and(|at| at <= Instant::now()) {
                if let Err(e) = self.reauthenticate(shared) {
                    // The connection is lost, not the records: what was in flight or queued
                    // is retried on a new connection, whose authentication then says for
                    // good whether the credentials still work.
                    let error = Error::Network {
                        broker: self.broker.clone(),
                        reason: format!("re-authentication failed: {e}"),
                    };
                    self.fail(shared, error);
                    return;
                }
                continue;
            }
            let next = match due {
                Some(at) => queue.recv_deadline(at),
                None => queue.recv().map_err(|_| RecvTimeoutError::Disconnected),
            };
            let out = match next {
                Ok(out) => out,
                Err(RecvTimeoutError::Timeout) => continue,
                Err(RecvTimeoutError::Disconnected) => return,
            };
            if let Err(e) = self.out.write_frame(&out.frame) {
                let error = Error::Network {
                    broker: self.broker.clone(),
                    reason: format!("write request: {e}"),
                };
                self.fail(shared, error);
                return;
            }
            if out.report_written {
                // The owner may be gone; then nobody needs the event.
                let _ = events.deliver(T::from(ConnectionEvent {
                    connection_id: self.connection_id,
                    kind: ConnectionEventKind::Written {
                        correlation_id: out.correlation_id,
                    },
                }));
            }
        }
    }

    fn fail(&self, shared: &Shared, error: Error) {
        *shared.write_error.lock() = Some(error);
        let _ = self.out.tcp().shutdown(Shutdown::Both);
    }

    /// Authenticates again on the running connection.
    fn reauthenticate(&mut self, shared: &Shared) -> Result<(), Error> {
        let Some(mut reauth) = self.reauth.take() else {
            return Ok(());
        };
        let (credentials, versions) = (reauth.credentials.clone(), reauth.versions);
        let broker = self.broker.clone();
        let lifetime = {
            let mut channel = ReauthChannel {
                writer: self,
                shared,
                reauth: &mut reauth,
            };
            sasl::authenticate(&mut channel, &broker, versions, &credentials)?
        };
        log::debug!("{broker}: re-authenticated; next session lifetime {lifetime:?}");
        reauth.due = lifetime.map(|l| Instant::now() + sasl::reauthentication_delay(l));
        self.reauth = Some(reauth);
        Ok(())
    }
}

/// SASL round trips of a re-authentication: written by the writer thread, answered
/// through the reader thread.
struct ReauthChannel<'a> {
    writer: &'a mut Writer,
    shared: &'a Shared,
    reauth: &'a mut Reauthentication,
}

impl ReauthChannel<'_> {
    fn round_trip<R>(&mut self, request: &R, version: i16) -> Result<R::Response, Error>
    where
        R: Request,
        R::Response: TryFrom<ResponseBody>,
    {
        let correlation_id = self.reauth.next_correlation_id;
        // Stays negative: wraps from i32::MIN back to -1.
        self.reauth.next_correlation_id = correlation_id.checked_sub(1).unwrap_or(-1);
        let frame = encode_request(
            request,
            version,
            correlation_id,
            self.writer.client_id.as_deref(),
        );
        let pending = Pending {
            api_key: R::API_KEY,
            version,
            internal: true,
        };
        self.shared.pending.lock().insert(correlation_id, pending);
        let broker = &self.writer.broker;
        let network = |reason: String| Error::Network {
            broker: broker.clone(),
            reason,
        };
        self.writer
            .out
            .write_frame(&frame)
            .map_err(|e| network(format!("write re-authentication request: {e}")))?;
        let deadline = Instant::now() + self.reauth.timeout;
        loop {
            let (corr, body) = self.writer.answers.recv_deadline(deadline).map_err(|_| {
                network(format!(
                    "no answer to re-authentication within request.timeout.ms ({} ms)",
                    self.reauth.timeout.as_millis()
                ))
            })?;
            if corr != correlation_id {
                continue;
            }
            return R::Response::try_from(body?)
                .map_err(|_| network("re-authentication answered by another API".to_owned()));
        }
    }
}

impl SaslChannel for ReauthChannel<'_> {
    fn handshake(
        &mut self,
        request: &SaslHandshakeRequest,
        version: i16,
    ) -> Result<SaslHandshakeResponse, Error> {
        self.round_trip(request, version)
    }

    fn authenticate(
        &mut self,
        request: &SaslAuthenticateRequest,
        version: i16,
    ) -> Result<SaslAuthenticateResponse, Error> {
        self.round_trip(request, version)
    }
}

/// The reader thread: frames in, events out, until the socket closes. Answers to the
/// writer's re-authentication requests go to `internal` instead.
fn read_loop<T: From<ConnectionEvent>, S: EventSink<T>>(
    connection_id: u64,
    broker: String,
    mut stream: ReadHalf,
    max_size: usize,
    shared: Arc<Shared>,
    events: S,
    internal: Sender<InternalResponse>,
) {
    let send = |kind| {
        // The owner may be gone; then nobody needs the event.
        let _ = events.deliver(T::from(ConnectionEvent {
            connection_id,
            kind,
        }));
    };
    let error = loop {
        let frame = match read_frame(&mut stream, max_size) {
            Ok(f) => f,
            Err(e) => break e,
        };
        let Ok(correlation_id) = peek_correlation_id(&frame) else {
            break io::Error::new(io::ErrorKind::InvalidData, "frame shorter than a header");
        };
        let Some(p) = shared.pending.lock().remove(&correlation_id) else {
            log::debug!(
                "{broker}: dropping a response with correlation id {correlation_id} that no \
                 request awaits (tansu and librdkafka's mock answer acks=0 produce requests)"
            );
            continue;
        };
        let body = decode_any_response(p.api_key, p.version, &frame).map(|(_, b)| b);
        if p.internal {
            let _ = internal.send((correlation_id, body));
            continue;
        }
        send(ConnectionEventKind::Response {
            correlation_id,
            api_key: p.api_key,
            version: p.version,
            body,
        });
    };
    let error = if shared.closing.load(Ordering::Acquire) {
        Error::Network {
            broker,
            reason: "closed by the client".to_owned(),
        }
    } else if let Some(write_error) = shared.write_error.lock().clone() {
        write_error
    } else if let Some(cause) = tls_cause(&error, &broker) {
        // After setup a TLS failure is a broken connection, retried like any other (Java
        // treats an SSLException after the handshake as a disconnect); only a reconnect
        // that fails to authenticate fails records.
        Error::Network {
            broker,
            reason: format!("TLS failed: {cause}"),
        }
    } else {
        Error::Network {
            broker,
            reason: error.to_string(),
        }
    };
    let mut unanswered: Vec<i32> = shared
        .pending
        .lock()
        .drain()
        .filter(|(_, p)| !p.internal)
        .map(|(c, _)| c)
        .collect();
    unanswered.sort_unstable();
    let _ = SockRef::from(stream.tcp()).shutdown(Shutdown::Both);
    send(ConnectionEventKind::Closed { error, unanswered });
}

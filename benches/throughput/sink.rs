//! `sink`: a minimal Kafka endpoint that acknowledges everything and stores nothing, so that
//! both clients run against their own ceiling rather than against a broker's.
//!
//! It runs as threads of the bench's parent process, so its CPU time is never charged to
//! the client, which runs in a child process. One thread accepts connections; each
//! connection has a thread that reads a request, answers it and reads the next, so answers
//! keep the order of requests (clients pipeline up to max.in.flight requests).
//!
//! It answers, with the `kafka-protocol` crate decoding requests and encoding responses:
//! - ApiVersions (v0–v3; the response header is always v0, as in Kafka);
//! - Metadata: one broker (node 1, this endpoint) leading every partition; any topic asked
//!   for exists with the configured number of partitions;
//! - InitProducerId: a new producer id (epoch 0) for each request;
//! - Produce: success for every partition, with offsets increasing per partition by the
//!   record count of the batches; no response when acks=0.
//!
//! Anything else (an unknown API, a version outside the advertised range, a request that
//! does not decode) is printed to stderr and closes the connection: the sink never guesses.
//!
//! With `BENCH_SINK_LOG=1` each sink prints, when it stops, how many requests of each API
//! and version it answered (to check what the clients negotiated), and how many partition
//! record sets (batches) the Produce requests carried, with their average size.
//!
//! [`Sink::stall`] makes it stop answering (the stalled-broker scenario): a connection thread
//! that has read a request holds it and reads nothing more until the stall ends, so the
//! client's socket buffers fill up as with a stopped broker.
//!
//! [`Sink::capture`] makes it keep the Produce requests that arrive from then on (the
//! wire-limit scenario, 19): every Produce frame a connection reads, its size prefix
//! included and byte for byte as read off the socket, goes to a file of that connection's,
//! in arrival order; [`Sink::end_capture`] returns the files with the requests and records
//! each holds (the records counted from the batch headers, as for the offsets). Other
//! requests (Metadata, ApiVersions) are never captured. The connection thread hands each
//! frame (the buffer it was read into, no copy) to a writer thread before it sends the
//! response, and goes on: the file writes stay off the path of the requests, so the client
//! meets the same sink as without a capture, but for the writer's CPU time (the frames
//! written promptly, their buffers are reused; kept in memory to the end, every frame
//! would fault in fresh pages).

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::produce_response::{PartitionProduceResponse, TopicProduceResponse};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsResponse, BrokerId, InitProducerIdResponse, MetadataRequest,
    MetadataResponse, ProduceRequest, ProduceResponse, ProducerId, ResponseHeader, TopicName,
};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable, Encodable, StrBytes};

/// The APIs and versions the sink advertises.
///
/// Produce and Metadata stop at v9, the first flexible version of each, which both clients
/// speak (ours: Produce v3–v11, Metadata v1–v12; librdkafka 2.12: Produce up to v10,
/// Metadata up to v13), so both use the same versions here.
///
/// Fetch and FindCoordinator are advertised but never served: librdkafka derives features
/// from the broker's API list, and without Fetch v4+ it would not write RecordBatch v2
/// (message format 2), without FindCoordinator it would not compress with lz4. A producer
/// never sends either; if one arrives, the sink reports it and closes the connection.
const ADVERTISED: [(ApiKey, i16, i16); 6] = [
    (ApiKey::Produce, 3, 9),
    (ApiKey::Fetch, 4, 4),
    (ApiKey::Metadata, 1, 9),
    (ApiKey::FindCoordinator, 0, 0),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::InitProducerId, 0, 4),
];

/// The sink's node id in Metadata.
const NODE_ID: i32 = 1;
/// Kafka's error code for a version the broker does not support.
const UNSUPPORTED_VERSION: i16 = 35;
/// Kafka's error code for a partition that does not exist.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// Larger requests are refused (a client bug or a desynchronized stream).
const MAX_FRAME: usize = 64 * 1024 * 1024;

/// A running sink; stops its threads on drop.
pub struct Sink {
    state: Arc<State>,
    addr: SocketAddr,
    acceptor: Option<JoinHandle<()>>,
}

struct State {
    host: String,
    port: i32,
    partitions: i32,
    stalled: AtomicBool,
    stopping: AtomicBool,
    /// The next offset of each partition of each topic produced to.
    offsets: Mutex<HashMap<String, Vec<i64>>>,
    next_producer_id: AtomicI64,
    /// Requests answered per (API, version), for `BENCH_SINK_LOG`.
    served: Mutex<HashMap<(i16, i16), u64>>,
    /// Record batches received and their bytes, for `BENCH_SINK_LOG`.
    batches: AtomicU64,
    batch_bytes: AtomicU64,
    /// Every connection (a handle to shut it down on stop) and its thread.
    connections: Mutex<Vec<(TcpStream, JoinHandle<()>)>>,
    /// The number of the next connection accepted (names its capture file).
    next_connection: AtomicU64,
    /// While capturing: the way to the writer thread, and the thread (see
    /// [`Sink::capture`]).
    capture: Mutex<Option<CaptureWriter>>,
    /// Set with `capture`: read once per Produce request, without the lock.
    capturing: AtomicBool,
}

/// The writer thread of a capture, and what goes to it.
struct CaptureWriter {
    frames: mpsc::Sender<ToWriter>,
    thread: JoinHandle<io::Result<Vec<Capture>>>,
}

/// A message to the capture's writer thread.
enum ToWriter {
    /// A Produce request frame (size prefix included) of `records` records, read by
    /// connection `connection`.
    Frame {
        connection: u64,
        frame: Bytes,
        records: u64,
    },
    /// The capture ends: every frame before this one is to be written.
    End,
}

/// The Produce requests one connection carried while the sink captured, in a file.
#[derive(Debug, Clone)]
pub struct Capture {
    /// The file of their frames, back to back, each with its 4-byte size prefix.
    pub path: PathBuf,
    /// How many frames.
    pub requests: u64,
    /// The records of their batches.
    pub records: u64,
}

/// Why a connection ended other than by the client closing it.
enum ConnError {
    Io(io::Error),
    Protocol(String),
}

impl From<io::Error> for ConnError {
    fn from(e: io::Error) -> Self {
        ConnError::Io(e)
    }
}

impl Sink {
    /// Listens on a free loopback port; every topic has `partitions` partitions.
    pub fn start(partitions: i32) -> io::Result<Sink> {
        let listener = TcpListener::bind("127.0.0.1:0")?;
        let addr = listener.local_addr()?;
        let state = Arc::new(State {
            host: addr.ip().to_string(),
            port: i32::from(addr.port()),
            partitions,
            stalled: AtomicBool::new(false),
            stopping: AtomicBool::new(false),
            offsets: Mutex::new(HashMap::new()),
            next_producer_id: AtomicI64::new(1000),
            served: Mutex::new(HashMap::new()),
            batches: AtomicU64::new(0),
            batch_bytes: AtomicU64::new(0),
            connections: Mutex::new(Vec::new()),
            next_connection: AtomicU64::new(0),
            capture: Mutex::new(None),
            capturing: AtomicBool::new(false),
        });
        let accept_state = Arc::clone(&state);
        let acceptor = std::thread::Builder::new()
            .name("sink-accept".into())
            .spawn(move || accept(&listener, &accept_state))?;
        Ok(Sink {
            state,
            addr,
            acceptor: Some(acceptor),
        })
    }

    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// From now on, appends every Produce request frame each connection receives to
    /// `dir/connection-<n>.bin` (`dir` exists; see [`Capture`]), from a writer thread.
    pub fn capture(&self, dir: &Path) -> io::Result<()> {
        let (frames, to_write) = mpsc::channel();
        let dir = dir.to_path_buf();
        let thread = std::thread::Builder::new()
            .name("sink-capture".into())
            .spawn(move || write_capture(&dir, &to_write))?;
        *lock(&self.state.capture) = Some(CaptureWriter { frames, thread });
        self.state.capturing.store(true, Ordering::Release);
        Ok(())
    }

    /// Stops capturing, waits until the writer has written every frame handed to it, and
    /// returns what each connection captured, by connection number. A request whose
    /// response the client has received is in its file.
    pub fn end_capture(&self) -> io::Result<Vec<Capture>> {
        self.state.capturing.store(false, Ordering::Release);
        let writer = lock(&self.state.capture)
            .take()
            .ok_or_else(|| io::Error::other("the sink was not capturing"))?;
        // Handed over after every frame a connection sent before its response: it comes
        // last.
        let _ = writer.frames.send(ToWriter::End);
        writer
            .thread
            .join()
            .map_err(|_| io::Error::other("the capture's writer thread panicked"))?
    }

    /// Stops answering until the returned guard is dropped.
    pub fn stall(&self) -> Stall<'_> {
        self.state.stalled.store(true, Ordering::Release);
        Stall(self)
    }
}

/// A stalled sink; answers again when dropped.
pub struct Stall<'a>(&'a Sink);

impl Drop for Stall<'_> {
    fn drop(&mut self) {
        self.0.state.stalled.store(false, Ordering::Release);
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.state.stopping.store(true, Ordering::Release);
        self.state.stalled.store(false, Ordering::Release);
        // Wake the acceptor, blocked in accept(), with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
        let connections = std::mem::take(&mut *lock(&self.state.connections));
        for (stream, thread) in connections {
            let _ = stream.shutdown(Shutdown::Both);
            let _ = thread.join();
        }
        if std::env::var_os("BENCH_SINK_LOG").is_some() {
            let mut served: Vec<_> = lock(&self.state.served).drain().collect();
            served.sort_unstable();
            let served: Vec<String> = served
                .into_iter()
                .map(|((key, version), n)| match ApiKey::try_from(key) {
                    Ok(api) => format!("{api:?} v{version} ×{n}"),
                    Err(()) => format!("API {key} v{version} ×{n}"),
                })
                .collect();
            let batches = self.state.batches.swap(0, Ordering::Relaxed);
            let bytes = self.state.batch_bytes.swap(0, Ordering::Relaxed);
            eprintln!(
                "sink served: {}; {batches} partition record sets, {} B on average",
                served.join(", "),
                bytes.checked_div(batches).unwrap_or(0)
            );
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

fn accept(listener: &TcpListener, state: &Arc<State>) {
    for stream in listener.incoming() {
        if state.stopping.load(Ordering::Acquire) {
            return;
        }
        let stream = match stream {
            Ok(stream) => stream,
            Err(e) => {
                eprintln!("sink: accept failed: {e}");
                continue;
            }
        };
        let number = state.next_connection.fetch_add(1, Ordering::Relaxed);
        let spawned = stream.try_clone().and_then(|handle| {
            let conn_state = Arc::clone(state);
            let thread = std::thread::Builder::new()
                .name("sink-conn".into())
                .spawn(move || serve(&conn_state, stream, number))?;
            lock(&state.connections).push((handle, thread));
            Ok(())
        });
        if let Err(e) = spawned {
            eprintln!("sink: cannot serve a connection: {e}");
        }
    }
}

/// Serves connection `number` until the client closes it or the sink stops.
fn serve(state: &State, stream: TcpStream, number: u64) {
    let peer = stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    match serve_requests(state, stream, number) {
        Ok(()) => {}
        Err(ConnError::Io(e)) => {
            // A client closing its connection shows up as one of these: not a problem.
            let normal = matches!(
                e.kind(),
                io::ErrorKind::UnexpectedEof
                    | io::ErrorKind::ConnectionReset
                    | io::ErrorKind::ConnectionAborted
                    | io::ErrorKind::BrokenPipe
            );
            if !normal && !state.stopping.load(Ordering::Acquire) {
                eprintln!("sink: connection from {peer}: {e}");
            }
        }
        Err(ConnError::Protocol(e)) => {
            eprintln!("sink: connection from {peer} closed: {e}");
        }
    }
}

fn serve_requests(state: &State, stream: TcpStream, number: u64) -> Result<(), ConnError> {
    stream.set_nodelay(true)?;
    let mut reader = BufReader::with_capacity(256 * 1024, stream.try_clone()?);
    let mut writer = stream;
    let mut out = BytesMut::with_capacity(64 * 1024);
    loop {
        let mut size = [0u8; 4];
        match reader.read_exact(&mut size) {
            Ok(()) => {}
            // The client closed the connection between requests.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(e) => return Err(e.into()),
        }
        let size = i32::from_be_bytes(size);
        if size < 0 || size as usize > MAX_FRAME {
            return Err(ConnError::Protocol(format!("request size {size}")));
        }
        // The size prefix stays in front of the request, for a capture.
        let mut frame = BytesMut::zeroed(4 + size as usize);
        frame[..4].copy_from_slice(&size.to_be_bytes());
        reader.read_exact(&mut frame[4..])?;
        let frame = frame.freeze();
        // A stalled broker: hold this request, read nothing more.
        while state.stalled.load(Ordering::Acquire) && !state.stopping.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
        if state.stopping.load(Ordering::Acquire) {
            return Ok(());
        }
        out.clear();
        let answered = state.answer(frame.slice(4..), &mut out)?;
        // Handed to the writer before the response goes out: once the client has its
        // response, the end of the capture comes after the request in the writer's queue.
        if let Some(records) = answered.produced {
            if state.capturing.load(Ordering::Acquire) {
                let to_writer = ToWriter::Frame {
                    connection: number,
                    frame,
                    records,
                };
                if let Some(writer) = lock(&state.capture).as_ref() {
                    // The writer stops only at the end of the capture (or on an error,
                    // which the end reports).
                    let _ = writer.frames.send(to_writer);
                }
            }
        }
        if answered.respond {
            writer.write_all(&out)?;
        }
    }
}

/// What answering a request did.
struct Answered {
    /// Whether `out` holds a response to send (not for Produce with acks=0).
    respond: bool,
    /// Produce: the records of its batches.
    produced: Option<u64>,
}

impl State {
    /// Writes the response to `request` (size, header, body) into `out`, unless the request
    /// gets none (Produce with acks=0).
    fn answer(&self, mut request: Bytes, out: &mut BytesMut) -> Result<Answered, ConnError> {
        let header =
            decode_request_header_from_buffer(&mut request).map_err(protocol("request header"))?;
        let (key, version) = (header.request_api_key, header.request_api_version);
        let api = ApiKey::try_from(key)
            .map_err(|()| ConnError::Protocol(format!("unknown API key {key}")))?;
        let correlation_id = header.correlation_id;
        *lock(&self.served).entry((key, version)).or_default() += 1;
        if api == ApiKey::ApiVersions {
            // Kafka answers an ApiVersions request of a version it does not know with
            // UNSUPPORTED_VERSION in a v0 body, so that the client can retry with one it
            // supports.
            let (error_code, body_version) = if version <= advertised(api).1 {
                (0, version)
            } else {
                (UNSUPPORTED_VERSION, 0)
            };
            let body = ApiVersionsResponse::default()
                .with_error_code(error_code)
                .with_api_keys(
                    ADVERTISED
                        .iter()
                        .map(|&(api, min, max)| {
                            ApiVersion::default()
                                .with_api_key(api as i16)
                                .with_min_version(min)
                                .with_max_version(max)
                        })
                        .collect(),
                );
            respond(out, api, body_version, correlation_id, &body)?;
            return Ok(Answered {
                respond: true,
                produced: None,
            });
        }
        let (min, max) = advertised(api);
        if version < min || version > max {
            return Err(ConnError::Protocol(format!(
                "{api:?} v{version} requested; the sink advertises v{min}-v{max}"
            )));
        }
        match api {
            ApiKey::Metadata => {
                let request = MetadataRequest::decode(&mut request, version)
                    .map_err(protocol("Metadata request"))?;
                respond(out, api, version, correlation_id, &self.metadata(&request))?;
            }
            ApiKey::InitProducerId => {
                // The request (transactional id, timeout, current id and epoch) needs no
                // reading: every request gets a fresh producer id.
                let id = self.next_producer_id.fetch_add(1, Ordering::Relaxed);
                let body = InitProducerIdResponse::default()
                    .with_producer_id(ProducerId(id))
                    .with_producer_epoch(0);
                respond(out, api, version, correlation_id, &body)?;
            }
            ApiKey::Produce => {
                let request = ProduceRequest::decode(&mut request, version)
                    .map_err(protocol("Produce request"))?;
                let (body, records) = self.produce(&request)?;
                if request.acks != 0 {
                    respond(out, api, version, correlation_id, &body)?;
                }
                return Ok(Answered {
                    respond: request.acks != 0,
                    produced: Some(records),
                });
            }
            _ => {
                return Err(ConnError::Protocol(format!(
                    "{api:?} v{version} is advertised but not served"
                )))
            }
        }
        Ok(Answered {
            respond: true,
            produced: None,
        })
    }

    /// One broker, this endpoint, leading every partition of every topic asked for.
    fn metadata(&self, request: &MetadataRequest) -> MetadataResponse {
        let broker = MetadataResponseBroker::default()
            .with_node_id(BrokerId(NODE_ID))
            .with_host(StrBytes::from_string(self.host.clone()))
            .with_port(self.port);
        // A null topic list asks for every topic: the ones produced to so far.
        let names: Vec<TopicName> = match &request.topics {
            Some(topics) => topics.iter().filter_map(|t| t.name.clone()).collect(),
            None => lock(&self.offsets)
                .keys()
                .map(|name| TopicName(StrBytes::from_string(name.clone())))
                .collect(),
        };
        let topics = names
            .into_iter()
            .map(|name| {
                let partitions = (0..self.partitions)
                    .map(|p| {
                        MetadataResponsePartition::default()
                            .with_partition_index(p)
                            .with_leader_id(BrokerId(NODE_ID))
                            .with_leader_epoch(0)
                            .with_replica_nodes(vec![BrokerId(NODE_ID)])
                            .with_isr_nodes(vec![BrokerId(NODE_ID)])
                    })
                    .collect();
                MetadataResponseTopic::default()
                    .with_name(Some(name))
                    .with_partitions(partitions)
            })
            .collect();
        MetadataResponse::default()
            .with_brokers(vec![broker])
            .with_cluster_id(Some(StrBytes::from_static_str("bench-sink")))
            .with_controller_id(BrokerId(NODE_ID))
            .with_topics(topics)
    }

    /// Success for every partition; the base offset is the partition's next offset, which
    /// then advances by the number of records in the partition's batches. Also returns the
    /// records of the whole request.
    fn produce(&self, request: &ProduceRequest) -> Result<(ProduceResponse, u64), ConnError> {
        let mut offsets = lock(&self.offsets);
        let mut total = 0u64;
        let mut responses = Vec::with_capacity(request.topic_data.len());
        for topic in &request.topic_data {
            let next = offsets
                .entry(topic.name.as_str().to_string())
                .or_insert_with(|| vec![0; self.partitions as usize]);
            let mut partition_responses = Vec::with_capacity(topic.partition_data.len());
            for data in &topic.partition_data {
                let records = data.records.as_deref().unwrap_or_default();
                self.batches.fetch_add(1, Ordering::Relaxed);
                self.batch_bytes
                    .fetch_add(records.len() as u64, Ordering::Relaxed);
                let count = count_records(records).map_err(|e| {
                    ConnError::Protocol(format!(
                        "Produce to {}-{}: {e}",
                        topic.name.as_str(),
                        data.index
                    ))
                })?;
                total += count as u64;
                let response = PartitionProduceResponse::default()
                    .with_index(data.index)
                    .with_log_append_time_ms(-1)
                    .with_log_start_offset(0);
                let response = match next.get_mut(data.index as usize) {
                    Some(offset) if data.index >= 0 => {
                        let base = *offset;
                        *offset += count;
                        response.with_base_offset(base)
                    }
                    _ => response
                        .with_error_code(UNKNOWN_TOPIC_OR_PARTITION)
                        .with_base_offset(-1),
                };
                partition_responses.push(response);
            }
            responses.push(
                TopicProduceResponse::default()
                    .with_name(topic.name.clone())
                    .with_partition_responses(partition_responses),
            );
        }
        Ok((ProduceResponse::default().with_responses(responses), total))
    }
}

/// The capture's writer thread: appends each frame it gets to its connection's file in
/// `dir` (created on the connection's first frame) until [`ToWriter::End`], then returns
/// the files. After a failed write it keeps reading, writing nothing, and returns the
/// error at the end.
fn write_capture(dir: &Path, frames: &mpsc::Receiver<ToWriter>) -> io::Result<Vec<Capture>> {
    let mut files: BTreeMap<u64, (File, Capture)> = BTreeMap::new();
    let mut failed = None;
    // A sink dropped while capturing disconnects the channel: the thread ends too.
    while let Ok(ToWriter::Frame {
        connection,
        frame,
        records,
    }) = frames.recv()
    {
        if failed.is_some() {
            continue;
        }
        let written = match files.entry(connection) {
            std::collections::btree_map::Entry::Occupied(entry) => Ok(entry.into_mut()),
            std::collections::btree_map::Entry::Vacant(entry) => {
                let path = dir.join(format!("connection-{connection}.bin"));
                File::create(&path).map(|file| {
                    let capture = Capture {
                        path,
                        requests: 0,
                        records: 0,
                    };
                    entry.insert((file, capture))
                })
            }
        }
        .and_then(|(file, capture)| {
            file.write_all(&frame)?;
            capture.requests += 1;
            capture.records += records;
            Ok(())
        });
        failed = written.err();
    }
    match failed {
        Some(e) => Err(e),
        None => Ok(files.into_values().map(|(_, capture)| capture).collect()),
    }
}

/// Turns a decoding error into a `ConnError` that says what was being decoded.
fn protocol<E: std::fmt::Display>(what: &'static str) -> impl FnOnce(E) -> ConnError {
    move |e| ConnError::Protocol(format!("{what}: {e}"))
}

/// The advertised (min, max) versions of `api`; (0, -1) when it is not advertised.
fn advertised(api: ApiKey) -> (i16, i16) {
    ADVERTISED
        .iter()
        .find(|(a, _, _)| *a == api)
        .map_or((0, -1), |&(_, min, max)| (min, max))
}

/// Appends size, header and body of a response to `out`.
fn respond<R: Encodable>(
    out: &mut BytesMut,
    api: ApiKey,
    version: i16,
    correlation_id: i32,
    body: &R,
) -> Result<(), ConnError> {
    let start = out.len();
    out.put_i32(0); // the size, filled in below
    ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(out, api.response_header_version(version))
        .and_then(|()| body.encode(out, version))
        .map_err(|e| {
            ConnError::Protocol(format!("encoding the {api:?} v{version} response: {e}"))
        })?;
    let size = (out.len() - start - 4) as i32;
    out[start..start + 4].copy_from_slice(&size.to_be_bytes());
    Ok(())
}

/// The number of records in a sequence of RecordBatch v2: the `recordCount` field of each
/// batch header (byte 57 of the batch), batches found by their `batchLength`. The bare loop
/// of the wire-limit scenario counts its records with it too (`throughput/wire.rs`).
pub fn count_records(mut records: &[u8]) -> Result<i64, String> {
    const HEADER: usize = 61; // baseOffset .. recordCount
    const MAGIC_AT: usize = 16;
    let mut count = 0i64;
    while !records.is_empty() {
        if records.len() < HEADER {
            return Err(format!("a record batch of {} bytes", records.len()));
        }
        let be_i32 = |at: usize| i32::from_be_bytes(records[at..at + 4].try_into().unwrap());
        if records[MAGIC_AT] != 2 {
            return Err(format!("record batch magic {}", records[MAGIC_AT]));
        }
        let length = 12 + be_i32(8) as usize; // baseOffset and batchLength come first
        let in_batch = be_i32(57);
        if length < HEADER || length > records.len() || in_batch < 0 {
            return Err(format!(
                "a record batch of length {length} with {in_batch} records in {} bytes",
                records.len()
            ));
        }
        count += i64::from(in_batch);
        records = &records[length..];
    }
    Ok(count)
}

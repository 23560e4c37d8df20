//! A fault-injecting TCP proxy for the faults real brokers cannot produce (issue 4): a
//! connection cut after the broker answered a Produce request but before the client got the
//! answer, delayed responses, truncated response frames, a blackhole, and record batches
//! corrupted on their way to the broker.
//!
//! One [`Proxy`] stands in front of one single-broker upstream (a Kafka node). It listens on
//! 127.0.0.1:0 and forwards each client connection to the upstream, frame by frame (Kafka's
//! 4-byte size prefix). Metadata responses name the upstream's real address, so the proxy
//! rewrites every broker's host and port to its own: a producer bootstrapped through the
//! proxy then keeps talking through it.
//!
//! Threads: one accept thread, and two pumps per connection (client → broker requests,
//! broker → client responses). Dropping the proxy sets `stop`, wakes the accept thread with
//! a connection to itself, shuts every socket down (which unblocks the pumps' reads and
//! writes) and joins every thread.
//!
//! The [`Script`] lives behind a mutex, so a test may change it while traffic flows. Every
//! Produce request forwarded is kept as a [`CapturedProduce`] (unless capturing is turned
//! off for a long run), so a test can compare a retried request with the one whose response
//! was cut.
#![allow(dead_code)]

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::Range;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use kafka_producer::protocol::header::ResponseHeader;
use kafka_producer::protocol::metadata::MetadataResponse;
use kafka_producer::protocol::{ApiKey, DecodeResult, Reader, Response};
use kafka_producer::record_batch::RecordBatch;

/// Largest frame the proxy accepts (a guard against garbage, not a Kafka limit).
const MAX_FRAME: usize = 256 << 20;
/// Produce and Metadata become flexible (header v2 / v1) at v9.
const FIRST_FLEXIBLE: i16 = 9;

/// What the proxy does to the traffic; change it with [`Proxy::set_script`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Script {
    /// Cut the connection carrying the Nth Produce request (1-based, counted over the
    /// proxy's life) once the broker has answered it, without returning the answer. Fires
    /// once, then clears itself.
    pub cut_after_produce: Option<usize>,
    /// Hold every response this long before returning it.
    pub response_delay: Duration,
    /// Return only the first half of the next Produce response frame, then cut the
    /// connection. Fires once, then clears itself.
    pub truncate_next_produce_response: bool,
    /// Swallow every request (no response ever comes), as an unreachable broker would.
    pub blackhole: bool,
    /// Hold some Produce responses (and, the connection keeping its order, every response
    /// behind them) before returning them: a round-trip time above request.timeout.ms for
    /// some requests. Clears itself once its `times` ran out.
    pub delay_produce: Option<ProduceDelay>,
    /// Answer some Produce requests with an error for every partition in them, either in
    /// place of the broker (which never sees them) or instead of the broker's own answer.
    /// Clears itself once its `times` ran out.
    pub fail_produce: Option<ProduceFailure>,
    /// Corrupt the record batch of one partition in every Produce request on its way to the
    /// broker (the request's other batches pass untouched). Stays until changed.
    pub corrupt_batches: Option<BatchCorruption>,
}

/// Which batches [`Script::corrupt_batches`] corrupts: every batch for one partition.
///
/// The proxy flips every bit of the batch's last byte, which lies in its records, after the
/// CRC-32C field: the batch keeps its size and shape, but its stored CRC no longer matches,
/// so the broker refuses it with CORRUPT_MESSAGE (a retriable error) and writes the other
/// partitions' batches of the same request. Captures keep the bytes the client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchCorruption {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
}

/// Which Produce requests [`Script::fail_produce`] fails, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceFailure {
    /// Fail every `every`th Produce request (1-based, counted over the proxy's life).
    pub every: usize,
    /// The error codes to answer with, in turn.
    pub codes: Vec<i16>,
    /// How many more requests to fail; `None` for no limit.
    pub times: Option<usize>,
    /// `false`: the proxy answers and the broker never sees the request (nothing written).
    /// `true`: the request reaches the broker, whose answer is replaced (written, but the
    /// client hears an error).
    pub forward: bool,
    /// Batch indexes named as per-record errors in every failed partition (for
    /// INVALID_RECORD), each with the message `record N is invalid`.
    pub record_errors: Vec<i32>,
}

/// Which Produce responses [`Script::delay_produce`] holds, and for how long.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProduceDelay {
    /// Hold every `every`th Produce response (1-based, counted over the proxy's life among
    /// the responses the broker sent); 1 holds the next one.
    pub every: usize,
    /// How long to hold it.
    pub delay: Duration,
    /// How many more responses to hold; `None` for no limit.
    pub times: Option<usize>,
}

/// One record batch of a captured Produce request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedBatch {
    /// Topic name.
    pub topic: String,
    /// Partition index.
    pub partition: i32,
    /// The batch's producer id (-1 without idempotence).
    pub producer_id: i64,
    /// The batch's producer epoch.
    pub producer_epoch: i16,
    /// The batch's base sequence.
    pub base_sequence: i32,
    /// Records in the batch.
    pub record_count: i32,
    /// The whole encoded batch.
    pub bytes: Vec<u8>,
}

/// A Produce request the proxy forwarded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedProduce {
    /// The proxy's number for the client connection (in accept order).
    pub connection: usize,
    /// Request header correlation id.
    pub correlation_id: i32,
    /// Produce version.
    pub api_version: i16,
    /// The whole frame, size prefix included.
    pub frame: Vec<u8>,
    /// Every partition's batch, in request order.
    pub batches: Vec<CapturedBatch>,
    /// Whether the proxy cut the connection instead of returning the response.
    pub cut: bool,
}

/// A fault-injecting proxy in front of one broker; stops on drop.
#[derive(Debug)]
pub struct Proxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
    accept: Option<JoinHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    upstream: String,
    addr: SocketAddr,
    stop: AtomicBool,
    connections: AtomicUsize,
    produce_requests: AtomicUsize,
    produce_responses: AtomicUsize,
    delayed_responses: AtomicUsize,
    cuts: AtomicUsize,
    failed_produce: AtomicUsize,
    failed_batches: AtomicUsize,
    corrupted_batches: AtomicUsize,
    capture: AtomicBool,
    script: Mutex<Script>,
    captured: Mutex<Vec<CapturedProduce>>,
    /// Node id → the proxy in front of that node, when a cluster stands behind one proxy
    /// per node ([`Proxy::route`]); brokers not in it are rewritten to this proxy.
    routes: Mutex<HashMap<i32, SocketAddr>>,
    sockets: Mutex<Vec<TcpStream>>,
    pumps: Mutex<Vec<JoinHandle<()>>>,
}

impl Proxy {
    /// A proxy forwarding to `upstream` (`host:port`), passing everything through.
    pub fn start(upstream: &str) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
        let addr = listener.local_addr().unwrap();
        let shared = Arc::new(Shared {
            upstream: upstream.to_string(),
            addr,
            stop: AtomicBool::new(false),
            connections: AtomicUsize::new(0),
            produce_requests: AtomicUsize::new(0),
            produce_responses: AtomicUsize::new(0),
            delayed_responses: AtomicUsize::new(0),
            cuts: AtomicUsize::new(0),
            failed_produce: AtomicUsize::new(0),
            failed_batches: AtomicUsize::new(0),
            corrupted_batches: AtomicUsize::new(0),
            capture: AtomicBool::new(true),
            script: Mutex::new(Script::default()),
            captured: Mutex::new(Vec::new()),
            routes: Mutex::new(HashMap::new()),
            sockets: Mutex::new(Vec::new()),
            pumps: Mutex::new(Vec::new()),
        });
        let s = Arc::clone(&shared);
        let accept = thread::Builder::new()
            .name("proxy-accept".into())
            .spawn(move || accept_loop(&listener, &s))
            .unwrap();
        Proxy {
            addr,
            shared,
            accept: Some(accept),
        }
    }

    /// The `host:port` clients bootstrap from.
    pub fn bootstrap(&self) -> String {
        self.addr.to_string()
    }

    /// The address this proxy listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// For a cluster with one proxy in front of each node: Metadata responses name, for
    /// node id `n`, the proxy `routes[n]` instead of this one, so a client bootstrapped
    /// through any of the proxies talks to every node through its own proxy.
    pub fn route(&self, routes: &HashMap<i32, SocketAddr>) {
        *self.shared.routes.lock().unwrap() = routes.clone();
    }

    /// Replaces the script; takes effect for the next frame.
    pub fn set_script(&self, script: Script) {
        *self.shared.script.lock().unwrap() = script;
    }

    /// Changes the script in place, under its lock, so that a one-shot fault firing at the
    /// same time is not undone.
    pub fn update_script(&self, change: impl FnOnce(&mut Script)) {
        change(&mut self.shared.script.lock().unwrap());
    }

    /// The current script (one-shot faults clear themselves when they fire).
    pub fn script(&self) -> Script {
        self.shared.script.lock().unwrap().clone()
    }

    /// Every Produce request forwarded so far, in forwarding order.
    pub fn produce_requests(&self) -> Vec<CapturedProduce> {
        self.shared.captured.lock().unwrap().clone()
    }

    /// Client connections accepted so far.
    pub fn connections(&self) -> usize {
        self.shared.connections.load(Ordering::SeqCst)
    }

    /// Produce requests forwarded so far (what [`Script::cut_after_produce`] counts),
    /// whether or not they are captured.
    pub fn produce_count(&self) -> usize {
        self.shared.produce_requests.load(Ordering::SeqCst)
    }

    /// Connections cut by [`Script::cut_after_produce`] so far.
    pub fn cuts(&self) -> usize {
        self.shared.cuts.load(Ordering::SeqCst)
    }

    /// Produce requests [`Script::fail_produce`] failed so far.
    pub fn failed_produce(&self) -> usize {
        self.shared.failed_produce.load(Ordering::SeqCst)
    }

    /// Record batches in the Produce requests [`Script::fail_produce`] failed so far.
    pub fn failed_batches(&self) -> usize {
        self.shared.failed_batches.load(Ordering::SeqCst)
    }

    /// Batches [`Script::corrupt_batches`] corrupted so far.
    pub fn corrupted_batches(&self) -> usize {
        self.shared.corrupted_batches.load(Ordering::SeqCst)
    }

    /// Produce responses [`Script::delay_produce`] held so far.
    pub fn delayed_responses(&self) -> usize {
        self.shared.delayed_responses.load(Ordering::SeqCst)
    }

    /// Whether to keep every forwarded Produce request for [`Proxy::produce_requests`]
    /// (the default). Long runs turn it off: the captures hold every batch's bytes.
    pub fn set_capture(&self, capture: bool) {
        self.shared.capture.store(capture, Ordering::SeqCst);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.shared.stop.store(true, Ordering::SeqCst);
        // Wake the accept thread; it sees `stop` and returns.
        let _ = TcpStream::connect(self.addr);
        if let Some(accept) = self.accept.take() {
            let _ = accept.join();
        }
        for s in self.shared.sockets.lock().unwrap().drain(..) {
            let _ = s.shutdown(Shutdown::Both);
        }
        let pumps: Vec<_> = self.shared.pumps.lock().unwrap().drain(..).collect();
        for p in pumps {
            let _ = p.join();
        }
    }
}

fn accept_loop(listener: &TcpListener, shared: &Arc<Shared>) {
    for client in listener.incoming() {
        if shared.stop.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = client else { continue };
        // A failed upstream connect drops the client: it sees a broken connection.
        let Ok(upstream) = TcpStream::connect(&shared.upstream) else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = upstream.set_nodelay(true);
        if let Err(e) = start_pumps(shared, client, upstream) {
            eprintln!("proxy: could not start a connection: {e}");
        }
    }
}

/// What the request pump tells the response pump about a connection's requests.
#[derive(Debug, Default)]
struct Pending {
    /// (api key, api version, index into `captured` for Produce) by correlation id.
    requests: HashMap<i32, (ApiKey, i16, Option<usize>)>,
    /// Correlation id whose response is to be swallowed and the connection cut.
    cut: Option<i32>,
    /// Forwarded Produce requests whose answer is replaced by this error response frame.
    replace: HashMap<i32, Vec<u8>>,
}

/// One client connection: both sockets and the state the two pumps share.
#[derive(Debug)]
struct Conn {
    id: usize,
    /// Serializes whole frames written to the client (both pumps write to it).
    client_writes: Mutex<()>,
    client: TcpStream,
    upstream: TcpStream,
    pending: Mutex<Pending>,
}

impl Conn {
    fn cut(&self) {
        let _ = self.client.shutdown(Shutdown::Both);
        let _ = self.upstream.shutdown(Shutdown::Both);
    }
}

fn start_pumps(shared: &Arc<Shared>, client: TcpStream, upstream: TcpStream) -> io::Result<()> {
    {
        let mut sockets = shared.sockets.lock().unwrap();
        sockets.push(client.try_clone()?);
        sockets.push(upstream.try_clone()?);
    }
    let conn = Arc::new(Conn {
        id: shared.connections.fetch_add(1, Ordering::SeqCst),
        client_writes: Mutex::new(()),
        client,
        upstream,
        pending: Mutex::new(Pending::default()),
    });
    if shared.stop.load(Ordering::SeqCst) {
        // Drop may have drained `sockets` before we registered ours.
        conn.cut();
        return Ok(());
    }
    let (s1, c1) = (Arc::clone(shared), Arc::clone(&conn));
    let requests = thread::Builder::new()
        .name(format!("proxy-req-{}", conn.id))
        .spawn(move || {
            let _ = pump_requests(&s1, &c1);
            c1.cut();
        })?;
    let (s2, c2) = (Arc::clone(shared), conn);
    let responses = thread::Builder::new()
        .name(format!("proxy-resp-{}", c2.id))
        .spawn(move || {
            let _ = pump_responses(&s2, &c2);
            c2.cut();
        })?;
    shared.pumps.lock().unwrap().extend([requests, responses]);
    Ok(())
}

/// Reads one frame (size prefix included) or fails at EOF.
fn read_frame(mut from: &TcpStream) -> io::Result<Vec<u8>> {
    let mut size = [0u8; 4];
    from.read_exact(&mut size)?;
    let len = i32::from_be_bytes(size);
    if len < 0 || len as usize > MAX_FRAME {
        return Err(io::Error::new(io::ErrorKind::InvalidData, "bad frame size"));
    }
    let mut frame = vec![0u8; 4 + len as usize];
    frame[..4].copy_from_slice(&size);
    from.read_exact(&mut frame[4..])?;
    Ok(frame)
}

fn pump_requests(shared: &Shared, conn: &Conn) -> io::Result<()> {
    loop {
        let mut frame = read_frame(&conn.client)?;
        if shared.script.lock().unwrap().blackhole {
            continue;
        }
        let mut r = Reader::new(&frame[4..]);
        let (key, version, correlation_id) = match (r.i16(), r.i16(), r.i32()) {
            (Ok(k), Ok(v), Ok(c)) => (ApiKey(k), v, c),
            _ => return Err(io::Error::new(io::ErrorKind::InvalidData, "short header")),
        };
        let mut captured = None;
        if key == ApiKey::PRODUCE {
            captured = capture_produce(shared, conn, &frame, version, correlation_id);
            corrupt_batches(shared, &mut frame, version);
            if let Some((forward, response)) =
                produce_failure(shared, &frame, version, correlation_id)
            {
                if !forward {
                    // Answered here: the broker never sees it. (A broker answers in request
                    // order; this answer may overtake earlier ones, which Kafka clients
                    // match by correlation id anyway.)
                    let _guard = conn.client_writes.lock().unwrap();
                    (&conn.client).write_all(&response)?;
                    continue;
                }
                conn.pending
                    .lock()
                    .unwrap()
                    .replace
                    .insert(correlation_id, response);
            }
        }
        // Registered before forwarding, so the response pump always finds it.
        conn.pending
            .lock()
            .unwrap()
            .requests
            .insert(correlation_id, (key, version, captured));
        (&conn.upstream).write_all(&frame)?;
    }
}

/// Counts a Produce request, arms the cut when it is the scripted one, and keeps it unless
/// capturing is off (then `None`).
fn capture_produce(
    shared: &Shared,
    conn: &Conn,
    frame: &[u8],
    version: i16,
    correlation_id: i32,
) -> Option<usize> {
    let batches = decode_produce(&frame[4..], version).unwrap_or_else(|e| {
        panic!("the proxy could not decode Produce v{version} request {correlation_id}: {e}")
    });
    let n = shared.produce_requests.fetch_add(1, Ordering::SeqCst) + 1;
    {
        let mut script = shared.script.lock().unwrap();
        if script.cut_after_produce == Some(n) {
            script.cut_after_produce = None;
            conn.pending.lock().unwrap().cut = Some(correlation_id);
        }
    }
    if !shared.capture.load(Ordering::SeqCst) {
        return None;
    }
    let mut captured = shared.captured.lock().unwrap();
    captured.push(CapturedProduce {
        connection: conn.id,
        correlation_id,
        api_version: version,
        frame: frame.to_vec(),
        batches,
        cut: false,
    });
    Some(captured.len() - 1)
}

/// The batches of a Produce request frame (after the size prefix).
fn decode_produce(frame: &[u8], version: i16) -> DecodeResult<Vec<CapturedBatch>> {
    let spans = batch_spans(frame, version)?;
    Ok(spans
        .into_iter()
        .map(|(topic, partition, span)| capture_batch(&topic, partition, &frame[span]))
        .collect())
}

/// Applies [`Script::corrupt_batches`] to a Produce request frame (size prefix included).
fn corrupt_batches(shared: &Shared, frame: &mut [u8], version: i16) {
    let Some(target) = shared.script.lock().unwrap().corrupt_batches.clone() else {
        return;
    };
    let spans = batch_spans(&frame[4..], version)
        .unwrap_or_else(|e| panic!("the proxy could not walk a Produce v{version} request: {e}"));
    for (topic, partition, span) in spans {
        // A v2 batch header is 61 bytes; anything shorter has no records to corrupt.
        if topic == target.topic && partition == target.partition && span.len() > 61 {
            frame[4 + span.end - 1] ^= 0xff;
            shared.corrupted_batches.fetch_add(1, Ordering::SeqCst);
        }
    }
}

/// Where each record batch of a Produce request body (after the size prefix) lies: topic,
/// partition and byte range.
fn batch_spans(body: &[u8], version: i16) -> DecodeResult<Vec<(String, i32, Range<usize>)>> {
    let flexible = version >= FIRST_FLEXIBLE;
    let mut r = Reader::new(body);
    r.take(8)?; // api key, version, correlation id
    r.nullable_str(false)?; // client id
    r.skip_tagged_fields(flexible)?;
    r.nullable_str(flexible)?; // transactional id
    r.i16()?; // acks
    r.i32()?; // timeout
    let mut out = Vec::new();
    for _ in 0..r.array_len(flexible, 2)? {
        let topic = r.string(flexible)?;
        for _ in 0..r.array_len(flexible, 5)? {
            let partition = r.i32()?;
            if let Some(bytes) = r.nullable_bytes(flexible)? {
                let end = body.len() - r.remaining();
                out.push((topic.clone(), partition, end - bytes.len()..end));
            }
            r.skip_tagged_fields(flexible)?;
        }
        r.skip_tagged_fields(flexible)?;
    }
    Ok(out)
}

fn capture_batch(topic: &str, partition: i32, bytes: &[u8]) -> CapturedBatch {
    let (batch, _rest) = RecordBatch::parse(bytes)
        .unwrap_or_else(|e| panic!("a Produce batch for {topic}/{partition} does not parse: {e}"));
    CapturedBatch {
        topic: topic.to_string(),
        partition,
        producer_id: batch.producer_id(),
        producer_epoch: batch.producer_epoch(),
        base_sequence: batch.base_sequence(),
        record_count: batch.record_count(),
        bytes: bytes.to_vec(),
    }
}

fn pump_responses(shared: &Shared, conn: &Conn) -> io::Result<()> {
    loop {
        let mut frame = read_frame(&conn.upstream)?;
        let correlation_id = Reader::new(&frame[4..])
            .i32()
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "short response"))?;
        let (request, cut, replacement) = {
            let mut pending = conn.pending.lock().unwrap();
            let request = pending.requests.remove(&correlation_id);
            let cut = pending.cut == Some(correlation_id);
            let replacement = pending.replace.remove(&correlation_id);
            (request, cut, replacement)
        };
        if let Some(replacement) = replacement {
            frame = replacement;
        }
        if cut {
            if let Some((_, _, Some(i))) = request {
                shared.captured.lock().unwrap()[i].cut = true;
            }
            shared.cuts.fetch_add(1, Ordering::SeqCst);
            conn.cut();
            return Ok(());
        }
        let (delay, truncate) = {
            let mut script = shared.script.lock().unwrap();
            let is_produce = matches!(request, Some((ApiKey::PRODUCE, _, _)));
            let truncate = is_produce && script.truncate_next_produce_response;
            if truncate {
                script.truncate_next_produce_response = false;
            }
            let mut delay = script.response_delay;
            if is_produce {
                let n = shared.produce_responses.fetch_add(1, Ordering::SeqCst) + 1;
                delay += produce_delay(shared, &mut script, n);
            }
            (delay, truncate)
        };
        if !delay.is_zero() {
            thread::sleep(delay);
        }
        if let Some((ApiKey::METADATA, version, _)) = request {
            let routes = shared.routes.lock().unwrap().clone();
            frame = rewrite_metadata(&frame, version, shared.addr, &routes).unwrap_or_else(|e| {
                panic!("the proxy could not decode Metadata v{version} response: {e}")
            });
        }
        let _guard = conn.client_writes.lock().unwrap();
        if truncate {
            (&conn.client).write_all(&frame[..4 + (frame.len() - 4) / 2])?;
            conn.cut();
            return Ok(());
        }
        (&conn.client).write_all(&frame)?;
    }
}

/// How long [`Script::delay_produce`] holds the `n`th Produce response (zero when it does
/// not hold it); counts the held responses and clears the delay once its `times` ran out.
fn produce_delay(shared: &Shared, script: &mut Script, n: usize) -> Duration {
    let Some(d) = script.delay_produce.as_mut() else {
        return Duration::ZERO;
    };
    if d.times == Some(0) {
        script.delay_produce = None;
        return Duration::ZERO;
    }
    if d.every == 0 || n % d.every != 0 {
        return Duration::ZERO;
    }
    let delay = d.delay;
    if let Some(times) = d.times.as_mut() {
        *times = times.saturating_sub(1);
        if *times == 0 {
            script.delay_produce = None;
        }
    }
    shared.delayed_responses.fetch_add(1, Ordering::SeqCst);
    delay
}

/// Whether [`Script::fail_produce`] fails this Produce request; if so, whether it is still
/// forwarded and the error response frame to answer it with.
fn produce_failure(
    shared: &Shared,
    frame: &[u8],
    version: i16,
    correlation_id: i32,
) -> Option<(bool, Vec<u8>)> {
    let n = shared.produce_requests.load(Ordering::SeqCst);
    let (forward, code, record_errors) = {
        let mut script = shared.script.lock().unwrap();
        let f = script.fail_produce.as_mut()?;
        if f.every == 0 || n % f.every != 0 || f.codes.is_empty() {
            return None;
        }
        let failed = shared.failed_produce.fetch_add(1, Ordering::SeqCst);
        let picked = (
            f.forward,
            f.codes[failed % f.codes.len()],
            f.record_errors.clone(),
        );
        if let Some(times) = f.times.as_mut() {
            *times = times.saturating_sub(1);
            if *times == 0 {
                script.fail_produce = None;
            }
        }
        picked
    };
    // The answer is encoded by kafka-protocol, an implementation independent of ours, so the
    // producer is tested against a real encoder of Produce responses.
    use kafka_protocol::messages as kp;
    use kafka_protocol::messages::produce_response::{
        BatchIndexAndErrorMessage, PartitionProduceResponse, TopicProduceResponse,
    };
    use kafka_protocol::protocol::{Encodable, HeaderVersion, StrBytes};
    let batches = decode_produce(&frame[4..], version).expect("decoded once already");
    shared
        .failed_batches
        .fetch_add(batches.len(), Ordering::SeqCst);
    let mut topics: Vec<TopicProduceResponse> = Vec::new();
    for b in batches {
        let mut partition = PartitionProduceResponse::default()
            .with_index(b.partition)
            .with_error_code(code)
            .with_base_offset(-1);
        if version >= 8 {
            partition = partition
                .with_record_errors(
                    record_errors
                        .iter()
                        .map(|&i| {
                            BatchIndexAndErrorMessage::default()
                                .with_batch_index(i)
                                .with_batch_index_error_message(Some(StrBytes::from_string(
                                    format!("record {i} is invalid"),
                                )))
                        })
                        .collect(),
                )
                .with_error_message(Some(StrBytes::from_string(format!(
                    "injected by the test proxy (code {code})"
                ))));
        }
        let name = kp::TopicName(StrBytes::from_string(b.topic.clone()));
        match topics.iter_mut().find(|t| t.name == name) {
            Some(t) => t.partition_responses.push(partition),
            None => topics.push(
                TopicProduceResponse::default()
                    .with_name(name)
                    .with_partition_responses(vec![partition]),
            ),
        }
    }
    let response = kp::ProduceResponse::default().with_responses(topics);
    let mut out = vec![0u8; 4];
    kp::ResponseHeader::default()
        .with_correlation_id(correlation_id)
        .encode(&mut out, kp::ProduceResponse::header_version(version))
        .expect("kafka-protocol encodes a response header");
    response
        .encode(&mut out, version)
        .unwrap_or_else(|e| panic!("kafka-protocol cannot encode Produce v{version}: {e}"));
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Some((forward, out))
}

/// The Metadata response `frame` with every broker's address replaced by its proxy in
/// `routes`, or by `proxy` when it has none there.
fn rewrite_metadata(
    frame: &[u8],
    version: i16,
    proxy: SocketAddr,
    routes: &HashMap<i32, SocketAddr>,
) -> DecodeResult<Vec<u8>> {
    let header_version = i16::from(version >= FIRST_FLEXIBLE);
    let mut r = Reader::new(&frame[4..]);
    let header = ResponseHeader::decode(&mut r, header_version)?;
    let mut body = MetadataResponse::decode_body(&mut r, version)?;
    for b in &mut body.brokers {
        let to = routes.get(&b.node_id).copied().unwrap_or(proxy);
        b.host = to.ip().to_string();
        b.port = i32::from(to.port());
    }
    let mut out = vec![0u8; 4];
    header.encode(header_version, &mut out);
    body.encode_body(version, &mut out);
    let size = (out.len() - 4) as i32;
    out[..4].copy_from_slice(&size.to_be_bytes());
    Ok(out)
}

//! The bare loop of the wire-limit scenario (19): how fast the Produce requests ours sent
//! can be moved to the sink when nothing builds them.
//!
//! It is this bench's binary again, run as `--wire FILE ADDR WINDOW` in a process of its
//! own, so that its CPU time is measured as a client's is. `FILE` is what the sink captured
//! of ours' measured span over its one Produce connection (`throughput/sink.rs`: the frames
//! back to back, each with its size prefix, as read off the socket). Before the clock
//! starts, the loop reads the file into memory and decodes every request once: each must be
//! a Produce request expecting a response (acks ≠ 0), and its records are counted from its
//! batch headers (`sink::count_records`), so the records come from the capture, not from
//! the scenario. Then it connects one TCP socket to `ADDR`, a fresh sink, and times from the
//! first write to the last response:
//!
//! - One thread, blocking calls: it writes the frames in order, byte for byte (correlation
//!   ids included: the sink only echoes them), and keeps at most `WINDOW` requests without
//!   a response (the parent passes max.in.flight.requests.per.connection, 5, ours'
//!   setting): with `WINDOW` outstanding it reads one response before the next write, and
//!   after the last write it reads the rest. The sink answers a connection's requests in
//!   order, one at a time, so this is the pipelining ours is allowed, without its cost of
//!   building the requests. No ApiVersions first: the sink answers any request it
//!   advertises without one.
//! - The responses are kept as they arrive and checked after the clock stops: one per
//!   request, in order, each with its request's correlation id and no error in any
//!   partition. A response that does not come within [`RESPONSE_WAIT`], a closed
//!   connection or a response in error fails the run (exit status non-zero): a missing
//!   response is a failed run, not a figure.
//!
//! It prints the child protocol's `RESULT` line (`client::bare_result_line`): `sent` the
//! records of the capture, `acked` those whose response arrived, the wall and CPU time of
//! the timed span, and peak RSS (which holds the whole capture, read before the clock
//! starts: not a figure to compare).

use std::io::{BufReader, ErrorKind, Read, Write};
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::{ApiKey, ProduceRequest, ProduceResponse, ResponseHeader};
use kafka_protocol::protocol::{decode_request_header_from_buffer, Decodable};

use crate::{client, procfs, sink};

/// The first argument of the bare loop's process.
pub const WIRE_FLAG: &str = "--wire";

/// How long the loop waits for a response (or for the sink to take a write) before it
/// fails the run.
const RESPONSE_WAIT: Duration = Duration::from_secs(30);

/// One captured Produce request.
struct Request {
    /// Its frame, size prefix included: a slice of the capture.
    frame: Bytes,
    version: i16,
    correlation_id: i32,
    /// The records of its batches.
    records: u64,
}

/// `args`: the capture file, the sink's address, the window of outstanding requests.
pub fn child_main(args: &[String]) -> ExitCode {
    let parsed = match args {
        [file, addr, window] => window
            .parse::<usize>()
            .ok()
            .filter(|&w| w > 0)
            .map(|window| (file, addr, window)),
        _ => None,
    };
    let Some((file, addr, window)) = parsed else {
        eprintln!("wire: expected CAPTURE_FILE SINK_ADDRESS WINDOW (> 0), got {args:?}");
        return ExitCode::from(2);
    };
    match replay(file, addr, window) {
        Ok(line) => {
            println!("{line}");
            let _ = std::io::stdout().flush();
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("wire (bare loop): FAILED: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Replays the capture in `file` to `addr` with at most `window` requests outstanding, and
/// returns the result line.
fn replay(file: &str, addr: &str, window: usize) -> Result<String, String> {
    let capture = Bytes::from(std::fs::read(file).map_err(|e| format!("reading {file}: {e}"))?);
    let requests = parse(&capture).map_err(|e| format!("{file}: {e}"))?;
    if requests.is_empty() {
        return Err(format!("{file} holds no request"));
    }
    let records: u64 = requests.iter().map(|r| r.records).sum();

    let stream = TcpStream::connect(addr).map_err(|e| format!("connecting to {addr}: {e}"))?;
    let setup = |stream: &TcpStream| {
        stream.set_nodelay(true)?;
        stream.set_read_timeout(Some(RESPONSE_WAIT))?;
        stream.set_write_timeout(Some(RESPONSE_WAIT))
    };
    setup(&stream).map_err(|e| format!("setting up the socket: {e}"))?;
    let mut reader =
        BufReader::with_capacity(64 * 1024, stream.try_clone().map_err(|e| e.to_string())?);
    let mut writer = stream;
    // Every response's bytes (after its size), back to back, and where each one ends.
    let mut responses = Vec::with_capacity(requests.len() * 128);
    let mut ends = Vec::with_capacity(requests.len());

    let rss_before_kb = procfs::memory_kb("VmRSS")?;
    let cpu_before = procfs::cpu_ticks("self")?;
    let started = Instant::now();
    let moved = (|| {
        for (written, request) in requests.iter().enumerate() {
            // `written - ends.len()` requests are waiting for their response.
            if written - ends.len() >= window {
                read_response(&mut reader, &mut responses, &mut ends)?;
            }
            writer.write_all(&request.frame)?;
        }
        while ends.len() < requests.len() {
            read_response(&mut reader, &mut responses, &mut ends)?;
        }
        Ok::<(), std::io::Error>(())
    })();
    let elapsed = started.elapsed();
    let cpu_ticks = procfs::cpu_ticks("self")? - cpu_before;
    let peak_rss_kb = procfs::memory_kb("VmHWM")?;
    moved.map_err(|e| {
        let e = match e.kind() {
            ErrorKind::WouldBlock | ErrorKind::TimedOut => format!(
                "nothing for {RESPONSE_WAIT:?}: no response came, or the sink took no more bytes"
            ),
            ErrorKind::UnexpectedEof => "the sink closed the connection".to_string(),
            _ => e.to_string(),
        };
        format!(
            "{} of {} responses received, then {e}",
            ends.len(),
            requests.len()
        )
    })?;
    drop(writer);

    check(&requests, &responses, &ends)?;
    Ok(client::bare_result_line(
        records,
        records,
        elapsed,
        cpu_ticks,
        peak_rss_kb,
        rss_before_kb,
    ))
}

/// Reads one response, appending its bytes (size prefix excluded) to `responses` and where
/// they end to `ends`.
fn read_response(
    reader: &mut impl Read,
    responses: &mut Vec<u8>,
    ends: &mut Vec<usize>,
) -> std::io::Result<()> {
    let mut size = [0u8; 4];
    reader.read_exact(&mut size)?;
    let size = i32::from_be_bytes(size);
    let size = usize::try_from(size).map_err(|_| {
        std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("response size {size}"),
        )
    })?;
    let start = responses.len();
    responses.resize(start + size, 0);
    reader.read_exact(&mut responses[start..])?;
    ends.push(responses.len());
    Ok(())
}

/// Splits the capture into its frames and decodes each (outside the timed span).
fn parse(capture: &Bytes) -> Result<Vec<Request>, String> {
    let mut requests = Vec::new();
    let mut at = 0;
    while at < capture.len() {
        let n = requests.len() + 1;
        let size = capture
            .get(at..at + 4)
            .map(|s| i32::from_be_bytes([s[0], s[1], s[2], s[3]]))
            .ok_or(format!("request {n}: a truncated size at byte {at}"))?;
        let end = usize::try_from(size)
            .ok()
            .map(|size| at + 4 + size)
            .filter(|&end| end <= capture.len())
            .ok_or(format!("request {n}: size {size} at byte {at}"))?;
        let mut body = capture.slice(at + 4..end);
        let header = decode_request_header_from_buffer(&mut body)
            .map_err(|e| format!("request {n}: its header: {e}"))?;
        let version = header.request_api_version;
        if header.request_api_key != ApiKey::Produce as i16 {
            return Err(format!(
                "request {n} has API key {}, not Produce",
                header.request_api_key
            ));
        }
        let produce = ProduceRequest::decode(&mut body, version)
            .map_err(|e| format!("request {n}: Produce v{version}: {e}"))?;
        if produce.acks == 0 {
            return Err(format!(
                "request {n} has acks=0: no response would tell when it was handled"
            ));
        }
        let mut records = 0;
        for partition in produce.topic_data.iter().flat_map(|t| &t.partition_data) {
            let batches = partition.records.as_deref().unwrap_or_default();
            records += sink::count_records(batches).map_err(|e| format!("request {n}: {e}"))?;
        }
        requests.push(Request {
            frame: capture.slice(at..end),
            version,
            correlation_id: header.correlation_id,
            records: records as u64,
        });
        at = end;
    }
    Ok(requests)
}

/// One response per request, in order: its request's correlation id, no partition in error.
fn check(requests: &[Request], responses: &[u8], ends: &[usize]) -> Result<(), String> {
    let mut start = 0;
    for (i, (request, &end)) in requests.iter().zip(ends).enumerate() {
        let n = i + 1;
        let mut body = Bytes::copy_from_slice(&responses[start..end]);
        start = end;
        let version = request.version;
        let header =
            ResponseHeader::decode(&mut body, ApiKey::Produce.response_header_version(version))
                .map_err(|e| format!("response {n}: its header: {e}"))?;
        if header.correlation_id != request.correlation_id {
            return Err(format!(
                "response {n} has correlation id {}, its request {}",
                header.correlation_id, request.correlation_id
            ));
        }
        let produce = ProduceResponse::decode(&mut body, version)
            .map_err(|e| format!("response {n}: Produce v{version}: {e}"))?;
        let errors = produce
            .responses
            .iter()
            .flat_map(|t| &t.partition_responses)
            .find(|p| p.error_code != 0);
        if let Some(p) = errors {
            return Err(format!(
                "response {n}: partition {} has error code {}",
                p.index, p.error_code
            ));
        }
    }
    Ok(())
}

//! Throughput, CPU, latency and memory of this crate's producer against three peers with
//! equivalent settings: rdkafka's (librdkafka) `BaseProducer`, Java's `KafkaProducer` and
//! franz-go's `kgo.Client`, on a real broker and on a sink; the cost of TLS (SASL_SSL with
//! SCRAM-SHA-512) against plaintext; all as transactional producers (on the real broker);
//! and the instructions per record of ours and librdkafka under callgrind.
//!
//! ```text
//! cargo bench --bench throughput                     # full: 2-3 minutes on 2 cores
//! BENCH_QUICK=1 cargo bench --bench throughput       # a quarter of the records: ~1 minute
//! BENCH_SMOKE=1 cargo bench --bench throughput       # 20-30 s: delivery only
//! cargo test --bench throughput                      # the smoke run, in the test profile
//! BENCH_QUICK=1 BENCH_SCENARIOS=5,6 cargo bench --bench throughput   # TLS only: ~30 s
//! BENCH_QUICK=1 BENCH_SCENARIOS=7 cargo bench --bench throughput     # transactions only
//! ```
//!
//! Environment:
//! - `KAFKA_BOOTSTRAP_SERVERS`: use that cluster instead of starting a Kafka node (a fresh
//!   topic per run is created with CreateTopics; scenario 4 is skipped there, as the bench
//!   cannot stop an external broker, and so are the TLS scenarios 5 and 6, which need the
//!   SASL_SSL listener, CA and SCRAM user of the bench's own node; scenario 7 runs there,
//!   with transactional ids unique to each run).
//! - `KAFKA_VERSION`: the Kafka version of the bench's own node (as for the tests; default
//!   the version `scripts/kafka` pins).
//! - `BENCH_QUICK=1`, `BENCH_SMOKE=1`: the modes above. Without `--bench` among the
//!   arguments (as under `cargo test`) the bench runs the smoke mode, like criterion's test
//!   mode.
//! - `BENCH_PARTITIONS` (default 6): partitions of every topic.
//! - `BENCH_SCENARIOS=1,3`, `BENCH_BACKENDS=kafka` (or `broker`) or `sink`,
//!   `BENCH_CLIENTS=rdkafka,java,franz-go` (ours always runs, first unless the list names it elsewhere): run a subset, in that order.
//! - `BENCH_INSTRUCTIONS=0`: skip the instruction counts (`throughput/instructions.rs`;
//!   full and quick modes, with scenario 1 and the sink selected, when valgrind is
//!   installed; about a minute).
//!   `BENCH_SCENARIOS=5,6` runs the TLS comparison alone, `BENCH_SCENARIOS=7` the
//!   transactional one.
//!
//! How it measures:
//! - The real broker is Apache Kafka: one node (KRaft, broker and controller in one JVM,
//!   512 MiB heap, the test bed's settings; `throughput/kafka.rs`), started once for the
//!   bench from the jars `scripts/kafka fetch` fetches (a JVM takes 5–10 s to start) and
//!   stopped when the bench ends, also when it fails. Every run (backend × scenario ×
//!   client) gets a fresh topic, so no run reads another's data; the sink is new for every
//!   run. In the full and quick modes an unmeasured run warms the JVM up first, so that the
//!   first measured run does not meet a colder broker than the others; with a TLS scenario
//!   selected, a second one (scenario 5 at the quick size over SASL_SSL) warms its TLS and
//!   SCRAM paths; with scenario 7 selected, one of scenario 7 at the quick size warms the
//!   transaction coordinator (and creates `__transaction_state`).
//! - TLS: when scenario 5 or 6 is selected, the node gets a second client listener,
//!   SASL_SSL with SCRAM-SHA-512 only (`throughput/kafka.rs`), as the test bed's secure node
//!   (`tests/common/secure.rs`) has: a CA and a broker certificate for 127.0.0.1 and
//!   localhost made with rcgen when the node starts (`throughput/certs.rs`; the broker gets
//!   them inline as a PEM keystore, the clients trust `ca.pem` in the node's directory,
//!   removed with the node at the end), and a SCRAM user created when the storage is
//!   formatted. The plaintext listener is unchanged and still serves the other scenarios
//!   and topic creation; without a TLS scenario the node is configured exactly as before.
//!   Both clients verify the broker's certificate and host name.
//! - The client runs in a child process, so that the process's CPU time (user + system)
//!   and peak RSS (`VmHWM`) are the client's alone: this same binary re-executed with
//!   `--child` for ours and rdkafka, a JVM running `testbed/java/BenchProducer.java` for
//!   Java's producer, a Go program (`benches/peers/franz-go/`) for franz-go. The peers are
//!   built when the bench starts (`throughput/peers.rs`: javac through `scripts/kafka fetch`,
//!   `go build` with franz-go from the Go module proxy) and speak the same protocol as the
//!   Rust child: the scenario on the command line, one result line out. A peer whose
//!   toolchain is missing is skipped, and its runs say so. The child reports them as one `RESULT key=value ...` line on stdout (see
//!   `throughput/client.rs`). The sink runs in this parent process.
//! - Each child warms up (a few thousand records, acknowledged) before it measures. Records
//!   per second count from the first send to the last acknowledgement; CPU is the process's
//!   CPU time over the same span; peak RSS is `VmHWM` at its end.
//! - Every client must confirm every record (callbacks for ours and Java's, delivery
//!   reports for rdkafka, promises for franz-go); a child exits non-zero if any record
//!   failed, and the bench reports the run
//!   as failed (in the full and quick modes it retries once on a fresh topic, and says so).
//! - Transactions (scenario 7): each child is a transactional producer with a
//!   `transactional.id` of its own (its topic's name, unique to the run, plus `-txn`). It
//!   calls `init_transactions` once, timed apart and not measured, then warms up in
//!   transactions, then measures begin, 1,000 sends, commit, over and over: records per
//!   second from the first begin to the return of the last commit, CPU over the same span.
//!   Ours calls `commit_transaction`, which sends what lingers, waits for every
//!   acknowledgement and callback, then commits. rdkafka calls librdkafka's `rd_kafka_flush`
//!   (which sends what lingers at once and waits until the poll thread has served every
//!   delivery report), then `commit_transaction`: rdkafka-rust's commit flushes first with
//!   its own `flush`, which polls in 100 ms steps that run to their end while records are
//!   outstanding and would add up to 100 ms to each commit (`throughput/client.rs`).
//!   After the child exits, the parent reads the topic back with rdkafka's consumer at
//!   `isolation.level=read_committed` and the run fails unless it finds exactly the
//!   records committed (warm-up included), in every mode, smoke included.
//!
//! The scenarios (`throughput/scenario.rs` has the settings each client gets):
//! 1. 100-byte values, 1 sending thread, acks=1, linger 5 ms, batch 64 KiB, no compression,
//!    idempotence off, 2M records.
//! 2. 1 KiB values, 4 sending threads, acks=all with idempotence, lz4, 500k records.
//! 3. Latency: 10k records/s for 10 s, linger 0, acks=1; p50, p99 and p99.9 from send to
//!    acknowledgement.
//! 4. Stalled broker: the broker is stopped (SIGSTOP; the sink stops answering), then one
//!    thread sends for 5 s with a 32 MiB buffer; the figure is the client's peak RSS.
//! 5. TLS, 100-byte values: scenario 1's load (1 sending thread, acks=1, linger 5 ms,
//!    batch 64 KiB, no compression, so every value byte is encrypted; 2M records), run
//!    over plaintext and over SASL_SSL with SCRAM-SHA-512, by each client, on the real Kafka
//!    only (the sink speaks no TLS: both are shown as skipped there).
//! 6. TLS, 1 KiB values: the same, with 500k records of 1 KiB.
//! 7. Transactions of 1,000 records: scenario 1's defaults (100-byte values, 1 sending
//!    thread, linger 5 ms, batch 64 KiB, no compression) with what a transactional producer
//!    requires, acks=all and idempotence; begin, 1,000 records, commit, 500 times (500k
//!    records); on a real Kafka only (the sink cannot coordinate transactions: skipped
//!    there, and says so).
//!
//! Scenario 19, the wire limit (on the sink only; ours only): scenario 1's load run by ours
//! while the sink captures the Produce requests of its measured span (the child waits after
//! its warm-up, as in scenario 4, until the capture is on; the frames go to a file as they
//! arrive); a bare loop (`throughput/wire.rs`, this binary run with `--wire` in a process
//! of its own) then writes the same frames over one socket to a fresh sink, at most max.in.flight (5) outstanding, counting its records from the capture and
//! failing on any missing response; the table "wire limit" shows ours' records/s over the
//! bare loop's (target ≥ 0.5×): how close the client comes to the cost of moving its bytes.
//!
//! The runs against Kafka come first, then the sink. The bench ends with the ratios
//! ours / each peer and the targets of the performance issues, each marked met or missed
//! (see `target`; scenario 7 against rdkafka: records/s ≥ 1.0×), then the TLS table: for
//! each client and size, records/s and CPU per 1M records over plaintext and over SASL_SSL
//! and their ratio (the cost of TLS), ours / each peer, and ours / rdkafka over SASL_SSL
//! with its targets (records/s ≥ 1.0×, CPU ≤ 0.8×); then the instruction counts. Targets do
//! not affect the exit status; failed runs do. The wire-limit table comes after the scaling
//! and idle tables.
//!
//! Caveats when reading the figures:
//! - Each figure is one run. On a small machine, runs of a second or less vary by 10–20 %
//!   from one bench to the next, and the p99 of scenario 3 on the sink more than that.
//!   Compare several benches before you trust a ratio near its target. Every run line
//!   shows the load average, because other work on the machine skews everything.
//! - CPU time comes from `/proc` in clock ticks (10 ms). The broker's CPU is shown too
//!   (the Kafka JVM, or this process for the sink), to tell a client-bound run from a
//!   broker-bound one. The sink shares the machine's cores with the client.
//! - Scenario 3's CPU includes the pacing thread's sleeps (one per record), the same for
//!   both clients.
//! - TLS runs share the machine with the broker's TLS work too: on 2 cores a run whose
//!   client CPU is well below its wall time is bound by the broker (see its CPU column),
//!   and its records/s says more about the broker than the client. Ours is rustls on the
//!   ring provider; rdkafka is librdkafka on OpenSSL; the broker's JVM picks the protocol
//!   version and cipher suite for both.
//! - Scenario 7 is bound by the commits: each one waits for the last acknowledgement, then
//!   for EndTxn and the broker's markers, while nothing is sent, so its records/s is far
//!   below scenario 1's and depends on the broker's latency more than on the client's CPU.
//!   Each run line shows the commits' average time and how long `init_transactions` took.
//! - The peers get ours' Java properties: Java's producer as they are; franz-go mapped to
//!   its options (`benches/peers/franz-go/main.go` lists each, and where franz-go differs).
//!   Java's JVM has at most 1 GiB of heap; its peak RSS includes the JVM's own.
//! - Settings are equivalent, not identical. Each client copies a record's value once: ours
//!   gets it as a `bytes::Bytes` sharing the bench's buffer (a `Producer<Vec<u8>, Bytes>`)
//!   and copies it into the batch; rdkafka copies it from a borrowed slice. Ours shares one
//!   `Topic` (an `Arc<str>`) between records, as rdkafka shares its topic handle. Unkeyed
//!   records go to Java's uniform sticky partitioner in ours and to librdkafka's sticky
//!   partitioning (`sticky.partitioning.linger.ms`, twice linger.ms) in rdkafka. Both fill
//!   batches up to `batch.size` of uncompressed records (Java would estimate the compressed
//!   size), so with lz4 both send batches smaller than 64 KiB.
//! - Scenario 19: the sink's capture runs a writer thread (the frames go to a file, in the
//!   page cache), whose CPU time a 2-core machine takes from the client; the wire-limit
//!   table shows ours' scenario-1 rate beside it when scenario 1 ran. The bare loop's run is
//!   short (about 0.1 s for 2M records, 20 ms in the quick mode), so its rate varies more
//!   than the others'.

// A bench's root file looks for modules beside itself; these live in `throughput/`.
#[path = "throughput/broker.rs"]
mod broker;
#[path = "throughput/certs.rs"]
mod certs;
#[path = "throughput/client.rs"]
mod client;
#[path = "throughput/instructions.rs"]
mod instructions;
#[path = "throughput/kafka.rs"]
mod kafka;
#[path = "throughput/peers.rs"]
mod peers;
#[path = "throughput/procfs.rs"]
mod procfs;
#[path = "throughput/scenario.rs"]
mod scenario;
#[path = "throughput/sink.rs"]
mod sink;
#[path = "throughput/wire.rs"]
mod wire;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use broker::{Broker, Kind, LocalKafka};
use peers::{Peers, Unavailable};
use scenario::{Client, Mode, Scenario, Transport, BUFFER_MEMORY};

/// The first argument of a child process.
const CHILD_FLAG: &str = "--child";
const MIB: f64 = 1024.0 * 1024.0;
/// Ours may use at most buffer.memory plus this in scenario 4 (the issue's target).
const STALLED_RSS_ALLOWANCE: u64 = 16 * 1024 * 1024;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some(CHILD_FLAG) {
        return client::child_main(&args[1..]);
    }
    if args.first().map(String::as_str) == Some(wire::WIRE_FLAG) {
        return wire::child_main(&args[1..]);
    }
    let mode = if env_flag("BENCH_SMOKE") || !args.iter().any(|a| a == "--bench") {
        Mode::Smoke
    } else if env_flag("BENCH_QUICK") {
        Mode::Quick
    } else {
        Mode::Full
    };
    match bench(mode) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("throughput bench: {e}");
            ExitCode::FAILURE
        }
    }
}

fn env_flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

/// The bench's options, from the environment.
struct Options {
    mode: Mode,
    partitions: i32,
    scenarios: Vec<u8>,
    backends: Vec<Kind>,
    /// `BENCH_CLIENTS=ours,rdkafka,java,franz-go` (default all; ours always runs, first unless named elsewhere; in the order named).
    clients: Vec<Client>,
    /// The topics the clients share (backend, name), once created.
    shared_topics: std::sync::Mutex<std::collections::HashSet<(String, String)>>,
    clk_tck: f64,
}

impl Options {
    fn from_env(mode: Mode) -> Result<Options, String> {
        let partitions = match std::env::var("BENCH_PARTITIONS") {
            Ok(p) => p
                .parse()
                .ok()
                .filter(|&p| p > 0)
                .ok_or(format!("BENCH_PARTITIONS={p:?} is not a positive number"))?,
            Err(_) => scenario::DEFAULT_PARTITIONS,
        };
        let scenarios = match std::env::var("BENCH_SCENARIOS") {
            Ok(list) => list
                .split(',')
                .map(|id| {
                    id.trim()
                        .parse()
                        .ok()
                        .filter(|id| scenario::IDS.contains(id))
                        .ok_or(format!("BENCH_SCENARIOS: no scenario {id:?} (1 to 19)"))
                })
                .collect::<Result<_, _>>()?,
            Err(_) => scenario::IDS.to_vec(),
        };
        let broker = match std::env::var("KAFKA_BOOTSTRAP_SERVERS") {
            Ok(servers) if !servers.trim().is_empty() => Kind::External(servers),
            _ => Kind::Kafka,
        };
        let backends = match std::env::var("BENCH_BACKENDS") {
            Ok(list) => list
                .split(',')
                .map(|b| match b.trim() {
                    "broker" | "kafka" | "external" => Ok(broker.clone()),
                    "sink" => Ok(Kind::Sink),
                    other => Err(format!(
                        "BENCH_BACKENDS: {other:?} is not kafka (broker) or sink"
                    )),
                })
                .collect::<Result<_, _>>()?,
            Err(_) => vec![broker, Kind::Sink],
        };
        let clients = match std::env::var("BENCH_CLIENTS") {
            Ok(list) => {
                // In the order named; ours first unless named elsewhere.
                let mut clients = Vec::new();
                for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
                    let client = Client::parse(name).ok_or(format!(
                        "BENCH_CLIENTS: {name:?} is not ours, rdkafka, java or franz-go"
                    ))?;
                    if !clients.contains(&client) {
                        clients.push(client);
                    }
                }
                if !clients.contains(&Client::Ours) {
                    clients.insert(0, Client::Ours);
                }
                clients
            }
            Err(_) => Client::ALL.to_vec(),
        };
        Ok(Options {
            mode,
            partitions,
            scenarios,
            backends,
            clients,
            shared_topics: Default::default(),
            clk_tck: clk_tck(),
        })
    }

    /// Whether a TLS scenario (5 or 6) is selected.
    fn tls_selected(&self) -> bool {
        self.scenarios
            .iter()
            .any(|&id| scenario::scenario(id, self.mode).tls)
    }

    /// Whether the transactional scenario (7) is selected.
    fn transactions_selected(&self) -> bool {
        self.scenarios
            .iter()
            .any(|&id| scenario::scenario(id, self.mode).is_transactional())
    }

    /// How long a child may run before it is killed (and the run reported as failed).
    fn child_timeout(&self) -> Duration {
        Duration::from_secs(match self.mode {
            Mode::Full => 600,
            Mode::Quick => 180,
            Mode::Smoke => 120,
        })
    }
}

/// Clock ticks per second of `/proc/<pid>/stat` (`getconf CLK_TCK`; USER_HZ is 100 on
/// every common Linux platform, the fallback).
fn clk_tck() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// The 1-minute load average: other work on the machine skews every figure.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "?".to_string())
}

/// What one child reported, in the parent's units.
#[derive(Debug, Clone)]
struct Figures {
    sent: u64,
    acked: u64,
    refused: u64,
    queue_full: u64,
    elapsed: Duration,
    cpu_s: f64,
    peak_rss_kb: u64,
    rss_before_kb: u64,
    /// The broker's (the Kafka JVM's or the sink's) CPU time over the whole child run, warm-up
    /// included; None for an external broker.
    broker_cpu_s: Option<f64>,
    close_ms: u64,
    client_errors: u64,
    /// p50, p99, p99.9 and max in ms, where measured.
    latency_ms: Option<[f64; 4]>,
    /// Transactional scenario: what the child reported of its transactions.
    transactions: Option<TransactionFigures>,
    /// Transactional scenario: the records the parent read back at read_committed after
    /// the child exited (warm-up included).
    read_committed: Option<u64>,
    /// Idle scenario: the CPU time of the idle producer's threads, in ms (exact: from
    /// schedstat), and their context switches.
    idle: Option<(f64, u64)>,
    /// Wire-limit scenario, ours' run: the bare loop that replayed its requests (boxed: a
    /// `Figures` of its own).
    wire: Option<Box<Wire>>,
}

/// The bare loop of a wire-limit run (`throughput/wire.rs`).
#[derive(Debug, Clone)]
struct Wire {
    /// Its figures: `sent` the records of the capture, `acked` those whose response came.
    bare: Figures,
    /// The Produce requests it replayed (all ours sent in its measured span).
    requests: u64,
}

impl Wire {
    /// Ours' records/s over the bare loop's.
    fn ratio(&self, ours: &Figures, s: &Scenario) -> f64 {
        ours.records_per_s(s) / self.bare.records_per_s(s).max(1e-9)
    }
}

/// The transactions of one run.
#[derive(Debug, Clone, Copy)]
struct TransactionFigures {
    /// How long `init_transactions` took (before the warm-up; not measured).
    init_ms: u64,
    /// Measured transactions.
    count: u64,
    /// Time spent in their commits (from the call to its return).
    commit_us: u64,
}

impl Figures {
    fn parse(line: &str, clk_tck: f64) -> Result<Figures, String> {
        let fields: HashMap<&str, u64> = line
            .split_whitespace()
            .skip(1)
            .filter_map(|kv| kv.split_once('='))
            .filter_map(|(k, v)| Some((k, v.parse().ok()?)))
            .collect();
        let get = |key: &str| {
            fields
                .get(key)
                .copied()
                .ok_or(format!("no {key} in the child's line {line:?}"))
        };
        let latency_ms = match (
            fields.get("p50_us"),
            fields.get("p99_us"),
            fields.get("p999_us"),
            fields.get("max_us"),
        ) {
            (Some(&a), Some(&b), Some(&c), Some(&d)) => {
                Some([a, b, c, d].map(|us| us as f64 / 1000.0))
            }
            _ => None,
        };
        let transactions = match (
            fields.get("init_ms"),
            fields.get("transactions"),
            fields.get("commit_us"),
        ) {
            (Some(&init_ms), Some(&count), Some(&commit_us)) => Some(TransactionFigures {
                init_ms,
                count,
                commit_us,
            }),
            _ => None,
        };
        Ok(Figures {
            sent: get("sent")?,
            acked: get("acked")?,
            refused: get("refused")?,
            queue_full: get("queue_full")?,
            elapsed: Duration::from_micros(get("elapsed_us")?),
            cpu_s: get("cpu_ticks")? as f64 / clk_tck,
            peak_rss_kb: get("peak_rss_kb")?,
            rss_before_kb: get("rss_before_kb")?,
            broker_cpu_s: None,
            close_ms: get("close_ms")?,
            client_errors: get("client_errors")?,
            latency_ms,
            transactions,
            read_committed: None,
            idle: fields
                .get("idle_cpu_us")
                .zip(fields.get("wakeups"))
                .map(|(&us, &wakeups)| (us as f64 / 1000.0, wakeups)),
            wire: None,
        })
    }

    /// Records that count: acknowledged ones, or (stalled) those the client accepted.
    fn records(&self, s: &Scenario) -> u64 {
        if s.is_stalled() {
            self.sent - self.refused
        } else {
            self.acked
        }
    }

    fn records_per_s(&self, s: &Scenario) -> f64 {
        self.records(s) as f64 / self.elapsed.as_secs_f64().max(1e-9)
    }

    /// Value bytes per second in MB of 2^20 bytes, as Kafka's perf tool.
    fn mb_per_s(&self, s: &Scenario) -> f64 {
        self.records_per_s(s) * s.value_size as f64 / MIB
    }

    fn cpu_per_million(&self, s: &Scenario) -> f64 {
        self.cpu_s / self.records(s).max(1) as f64 * 1e6
    }

    fn peak_rss_mib(&self) -> f64 {
        self.peak_rss_kb as f64 / 1024.0
    }

    fn broker_cpu(&self) -> String {
        self.broker_cpu_s
            .map_or("—".to_string(), |s| format!("{s:.2}"))
    }
}

/// The outcome of one run.
enum Outcome {
    Done(Figures),
    Failed(String),
    Skipped(String),
}

/// A run: (backend name, scenario id, transport, client).
type RunKey = (&'static str, u8, Transport, Client);

/// Every run's outcome, and notes on retries.
struct Results {
    runs: HashMap<RunKey, Outcome>,
    retried: HashMap<RunKey, String>,
}

impl Results {
    fn figures(
        &self,
        backend: &str,
        id: u8,
        transport: Transport,
        client: Client,
    ) -> Option<&Figures> {
        match self
            .runs
            .get(&(backend_key(backend), id, transport, client))
        {
            Some(Outcome::Done(f)) => Some(f),
            _ => None,
        }
    }
}

/// How a run is named in lines and tables: `5 SASL_SSL` for the TLS scenarios' runs, the
/// bare id for the others.
fn run_label(s: &Scenario, transport: Transport) -> String {
    if s.tls {
        format!("{} {transport}", s.id)
    } else {
        s.id.to_string()
    }
}

/// Interns a backend name as the `'static` key the results use.
fn backend_key(name: &str) -> &'static str {
    ["kafka", "external", "sink"]
        .into_iter()
        .find(|k| *k == name)
        .unwrap_or("?")
}

fn bench(mode: Mode) -> Result<bool, String> {
    let options = Options::from_env(mode)?;
    for backend in &options.backends {
        if let Kind::External(servers) = backend {
            broker::check_reachable(servers)?;
        }
    }
    let (_, rdkafka_version) = rdkafka::util::get_rdkafka_version();
    println!(
        "throughput bench, {} mode: kafka-producer {} vs librdkafka {rdkafka_version} \
         (rdkafka BaseProducer); {} cores, load average {}; {} partitions per topic",
        mode.name(),
        env!("CARGO_PKG_VERSION"),
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        load_average(),
        options.partitions
    );
    if mode == Mode::Smoke {
        println!("smoke mode: tiny runs; checks delivery only, timings mean nothing");
    }
    for &id in &options.scenarios {
        let s = scenario::scenario(id, mode);
        println!("\nscenario {id}: {} — {}", s.title, s.load_description());
        let show = |props: Vec<(&str, String)>| {
            props
                .into_iter()
                .filter(|(k, _)| *k != "bootstrap.servers")
                .map(|(k, v)| format!("{k}={v}"))
                .collect::<Vec<_>>()
                .join(" ")
        };
        println!("  ours:    {}", show(s.java_properties("")));
        if s.wire {
            println!(
                "  no peer: the bare loop replays ours' requests, at most {} in flight",
                scenario::MAX_IN_FLIGHT
            );
            continue;
        }
        println!("  rdkafka: {}", show(s.rdkafka_properties("")));
        println!("  java, franz-go: ours' properties (client.id bench-java, bench-franz-go)");
        if s.is_transactional() {
            println!(
                "  both add: {}",
                show(s.transaction_properties("<the run's topic>-txn"))
            );
        }
        if s.tls {
            // The password is the bench's own, of a user that exists only in its node.
            println!(
                "  over SASL_SSL, ours adds:    {}",
                show(scenario::java_tls_properties("<bench CA>"))
            );
            println!(
                "  over SASL_SSL, rdkafka adds: {}",
                show(scenario::rdkafka_tls_properties("<bench CA>"))
            );
        }
    }

    println!("\npeers:");
    let peers = Peers::prepare(&options.clients);

    let started = Instant::now();
    let mut results = Results {
        runs: HashMap::new(),
        retried: HashMap::new(),
    };
    // Started by the first run against it (with the SASL_SSL listener when a TLS scenario
    // will run on it); stopped when `bench` returns (or unwinds).
    let kafka = LocalKafka::new(
        options.tls_selected() && options.backends.iter().any(|b| matches!(b, Kind::Kafka)),
    );
    for backend in &options.backends {
        println!("\n== {} ==", backend.name());
        warm_up(&options, &kafka, &peers, backend);
        for &id in &options.scenarios {
            let s = scenario::scenario(id, mode);
            if let Some(why) = unsupported(&s, backend) {
                println!("  [{}] scenario {id} skipped: {why}", backend.name());
                for &transport in s.transports() {
                    for &client in &options.clients {
                        let key = (backend_key(backend.name()), id, transport, client);
                        results.runs.insert(key, Outcome::Skipped(why.to_string()));
                    }
                }
                continue;
            }
            for &transport in s.transports() {
                for &client in &options.clients {
                    let outcome = if s.wire && client != Client::Ours {
                        Outcome::Skipped(
                            "the wire limit measures ours against a bare loop replaying ours' \
                             own requests; no peer runs it"
                                .to_string(),
                        )
                    } else {
                        run_with_retry(
                            &options,
                            &kafka,
                            &peers,
                            backend,
                            &s,
                            transport,
                            client,
                            &mut results,
                        )
                    };
                    print_run(backend.name(), &s, transport, client, &outcome);
                    results.runs.insert(
                        (backend_key(backend.name()), id, transport, client),
                        outcome,
                    );
                }
            }
        }
        if mode != Mode::Smoke {
            print_figures_table(&options, backend.name(), &results);
        }
    }
    if mode != Mode::Smoke {
        print_ratio_table(&options, &results);
        print_tls_table(&options, &results);
        print_scaling_tables(&options, &results);
        print_idle_table(&options, &results);
        print_wire_table(&options, &results);
        print_instructions(&options);
    }

    let mut failures: Vec<String> = results
        .runs
        .iter()
        .filter_map(
            |((backend, id, transport, client), outcome)| match outcome {
                Outcome::Failed(e) => {
                    Some(format!("{backend} scenario {id} {transport} {client}: {e}"))
                }
                _ => None,
            },
        )
        .collect();
    failures.sort();
    println!(
        "\nfinished in {:.0} s; load average now {}",
        started.elapsed().as_secs_f64(),
        load_average()
    );
    for ((backend, id, transport, client), first) in &results.retried {
        println!(
            "RETRIED: {backend} scenario {id} {transport} {client}: the first attempt failed: \
             {first}"
        );
    }
    if failures.is_empty() {
        if mode == Mode::Smoke {
            println!("smoke: every client delivered every record in every run");
        }
        Ok(true)
    } else {
        for failure in &failures {
            println!("FAILED: {failure}");
        }
        Ok(false)
    }
}

/// In the full and quick modes, one unmeasured run against the bench's Kafka (scenario 1
/// at the quick size, rdkafka) before the measured ones: the JVM compiles its hot paths
/// during the first run it serves, which would make the first measured run slower than
/// the others. With a TLS scenario selected, a second one over SASL_SSL (scenario 5 at the
/// quick size) warms the broker's TLS and SCRAM paths too; with the transactional scenario,
/// one of it (quick size) warms the transaction coordinator (and creates
/// `__transaction_state`, which a first `init_transactions` would wait for).
fn warm_up(options: &Options, kafka: &LocalKafka, peers: &Peers, backend: &Kind) {
    if options.mode == Mode::Smoke || !matches!(backend, Kind::Kafka) {
        return;
    }
    // Nothing selected runs on it (the wire limit alone, say): no node to start.
    let runs_here =
        |id: &u8| unsupported(&scenario::scenario(*id, options.mode), backend).is_none();
    if !options.scenarios.iter().any(runs_here) {
        return;
    }
    let mut warm_ups = vec![(1, Transport::Plaintext)];
    if options.tls_selected() {
        warm_ups.push((5, Transport::SaslSsl));
    }
    if options.transactions_selected() {
        warm_ups.push((7, Transport::Plaintext));
    }
    for (id, transport) in warm_ups {
        let s = scenario::scenario(id, Mode::Quick);
        let started = Instant::now();
        match run_once(
            options,
            kafka,
            peers,
            backend,
            &s,
            transport,
            Client::Rdkafka,
        ) {
            Outcome::Done(_) => println!(
                "  warmed Kafka up with an unmeasured run (scenario {id} over {transport}, {}, \
                 rdkafka) in {:.1} s",
                s.load_description(),
                started.elapsed().as_secs_f64()
            ),
            Outcome::Failed(e) | Outcome::Skipped(e) => {
                println!("  the warm-up run over {transport} failed (the runs go on): {e}")
            }
        }
    }
}

/// Why a scenario cannot run on `backend`, as a whole: only the bench's own node has a
/// SASL_SSL listener (with a CA and a SCRAM user the bench made), only a real Kafka
/// coordinates transactions, and only the sink captures requests for the wire limit.
fn unsupported(s: &Scenario, backend: &Kind) -> Option<&'static str> {
    match backend {
        Kind::Kafka | Kind::External(_) if s.wire => Some(
            "the wire limit runs on the sink only (it captures ours' Produce requests, and \
             measures the client against the cost of moving them, not a broker's)",
        ),
        Kind::Sink if s.is_transactional() => Some(
            "the sink cannot coordinate transactions (it serves no FindCoordinator, \
             InitProducerId, AddPartitionsToTxn or EndTxn, and keeps no records to read back \
             at read_committed); scenario 7 runs on a real Kafka only",
        ),
        _ if !s.tls => None,
        Kind::Kafka => None,
        Kind::Sink => Some("the sink speaks no TLS; the TLS scenarios run on the real Kafka only"),
        Kind::External(_) => Some(
            "the TLS scenarios need the bench's own Kafka node (its SASL_SSL listener, CA and \
             SCRAM user); unset KAFKA_BOOTSTRAP_SERVERS to run them",
        ),
    }
}

/// One run; in the full and quick modes a failed run is retried once on a fresh topic (the
/// partition scenarios' shared topic again, written once more unless it was; on the sink,
/// a fresh sink), and the first failure is kept for the report.
#[allow(clippy::too_many_arguments)]
fn run_with_retry(
    options: &Options,
    kafka: &LocalKafka,
    peers: &Peers,
    backend: &Kind,
    s: &Scenario,
    transport: Transport,
    client: Client,
    results: &mut Results,
) -> Outcome {
    let first = run_once(options, kafka, peers, backend, s, transport, client);
    let Outcome::Failed(error) = &first else {
        return first;
    };
    if options.mode == Mode::Smoke {
        return first;
    }
    println!(
        "  RUN FAILED: {} scenario {} {client}: {error}\n  retrying once",
        backend.name(),
        run_label(s, transport)
    );
    results.retried.insert(
        (backend_key(backend.name()), s.id, transport, client),
        error.clone(),
    );
    run_once(options, kafka, peers, backend, s, transport, client)
}

fn run_once(
    options: &Options,
    kafka: &LocalKafka,
    peers: &Peers,
    kind: &Kind,
    s: &Scenario,
    transport: Transport,
    client: Client,
) -> Outcome {
    if s.is_stalled() && matches!(kind, Kind::External(_)) {
        return Outcome::Skipped("an external broker cannot be stopped".to_string());
    }
    let partitions = s.partitions.unwrap_or(options.partitions);
    let broker = match Broker::start(kind, partitions, kafka) {
        Ok(broker) => broker,
        Err(e) => return Outcome::Failed(e),
    };
    // The partition scenarios share one topic per backend between the clients: a Kafka
    // node with a 6,000-partition topic per run would hold tens of thousands of
    // partitions, each with its memory-mapped indexes. They read nothing back.
    let topic = if s.partitions.is_some() {
        format!("bench-s{}-shared-{}", s.id, std::process::id())
    } else {
        unique_topic(s.id, client)
    };
    let shared_key = (kind.name().to_string(), topic.clone());
    let lock_shared = || {
        options
            .shared_topics
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    };
    let exists = s.partitions.is_some() && lock_shared().contains(&shared_key);
    // Topics are created over the plaintext listener, whatever the run uses.
    if !exists {
        let creating = Instant::now();
        if let Err(e) = broker.create_topic(&topic, partitions) {
            return Outcome::Failed(e);
        }
        if partitions > 100 && !matches!(kind, Kind::Sink) {
            println!(
                "  created {topic} with {partitions} partitions in {:.1} s",
                creating.elapsed().as_secs_f64()
            );
            // Kafka pays for a partition's first writes (its log segment and indexes):
            // the client that ran first on a fresh 6,000-partition topic paid that for all
            // of them (the broker's CPU grew tenfold), so the topic is written once first.
            let warming = Instant::now();
            if let Err(e) = warm_partitions(&broker.bootstrap(), &topic, partitions) {
                return Outcome::Failed(e);
            }
            println!(
                "  wrote {topic}'s partitions once in {:.1} s (unmeasured)",
                warming.elapsed().as_secs_f64()
            );
        }
        if s.partitions.is_some() {
            lock_shared().insert(shared_key);
        }
    }
    // The wire limit: the sink's capture files, removed when the run ends.
    let capture = if s.wire {
        match CaptureDir::create(s.id) {
            Ok(dir) => Some(dir),
            Err(e) => return Outcome::Failed(e),
        }
    } else {
        None
    };
    let capture_dir = capture.as_ref().map(|dir| dir.0.as_path());
    let figures = match run_child(
        options,
        peers,
        &broker,
        s,
        transport,
        client,
        &topic,
        capture_dir,
    ) {
        Ok(figures) => figures,
        Err(Unavailable::Skipped(why)) => return Outcome::Skipped(why),
        Err(Unavailable::Failed(e)) => return Outcome::Failed(e),
    };
    if capture.is_some() {
        return match wire_limit(options, kafka, broker, partitions, figures) {
            Ok(figures) => Outcome::Done(figures),
            Err(e) => Outcome::Failed(e),
        };
    }
    if !s.is_transactional() {
        return Outcome::Done(figures);
    }
    // Every committed record, warm-up included, must be visible at read_committed, and
    // nothing more.
    let expected = s.warmup_for(client) + figures.acked;
    match broker.count_committed(&topic, partitions, expected, Duration::from_secs(60)) {
        Ok(read) if read == expected => Outcome::Done(Figures {
            read_committed: Some(read),
            ..figures
        }),
        Ok(read) => Outcome::Failed(format!(
            "read back {read} records of {topic} at read_committed, expected {expected} \
             ({} warm-up + {} measured, all acknowledged and committed)",
            s.warmup_for(client),
            figures.acked
        )),
        Err(e) => Outcome::Failed(e),
    }
}

/// The capture files of a wire-limit run: a directory of their own in the system's
/// temporary directory, removed (with the files) when this is dropped.
struct CaptureDir(PathBuf);

impl CaptureDir {
    fn create(id: u8) -> Result<CaptureDir, String> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos());
        let path =
            std::env::temp_dir().join(format!("bench-wire-s{id}-{}-{nanos}", std::process::id()));
        std::fs::create_dir(&path).map_err(|e| format!("creating {}: {e}", path.display()))?;
        Ok(CaptureDir(path))
    }
}

impl Drop for CaptureDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The wire-limit scenario, once ours has run on `broker` (a sink) with its capture on:
/// checks the capture (one connection carried every Produce request, and it holds exactly
/// the records ours acknowledged in its measured span), then runs the bare loop
/// (`throughput/wire.rs`, this binary with `--wire`) against a fresh sink with `partitions`
/// partitions per topic, as ours', and adds its figures to ours'. The bare loop's records
/// are those its capture holds, and every one of its requests must get its response.
fn wire_limit(
    options: &Options,
    kafka: &LocalKafka,
    broker: Broker,
    partitions: i32,
    ours: Figures,
) -> Result<Figures, String> {
    let captures = broker.end_capture()?;
    drop(broker);
    let capture = match captures.as_slice() {
        [one] => one,
        [] => return Err("the sink captured no Produce request of ours".to_string()),
        several => {
            return Err(format!(
                "ours sent its Produce requests over {} connections; the bare loop replays one",
                several.len()
            ))
        }
    };
    if capture.records != ours.acked {
        return Err(format!(
            "the capture holds {} records in {} Produce requests, ours acknowledged {} in its \
             measured span",
            capture.records, capture.requests, ours.acked
        ));
    }
    let sink = Broker::start(&Kind::Sink, partitions, kafka)?;
    let exe = std::env::current_exe().map_err(|e| format!("locating the bench binary: {e}"))?;
    let mut command = Command::new(exe);
    command
        .arg(wire::WIRE_FLAG)
        .arg(&capture.path)
        .args([sink.bootstrap(), scenario::MAX_IN_FLIGHT.to_string()]);
    let bare = run_command(options, &sink, AtReady::Nothing, command)
        .map_err(|e| format!("the bare loop: {e}"))?;
    if bare.sent != capture.records || bare.acked != bare.sent {
        return Err(format!(
            "the bare loop counted {} records in the capture, {} answered; the sink counted {}",
            bare.sent, bare.acked, capture.records
        ));
    }
    Ok(Figures {
        wire: Some(Box::new(Wire {
            bare,
            requests: capture.requests,
        })),
        ..ours
    })
}

/// A topic name no other run uses.
/// Writes a few records to every partition of `topic` and waits for them, with this crate's
/// producer in the bench's own process (not measured).
fn warm_partitions(bootstrap: &str, topic: &str, partitions: i32) -> Result<(), String> {
    use kafka_producer::{Producer, ProducerRecord};
    let producer: Producer<Vec<u8>, Vec<u8>> = Producer::builder()
        .set("bootstrap.servers", bootstrap)
        .set("acks", "1")
        .set("linger.ms", "20")
        .key_serializer(kafka_producer::serialize::BytesSerializer)
        .value_serializer(kafka_producer::serialize::BytesSerializer)
        .build()
        .map_err(|e| format!("warming {topic}: {e}"))?;
    let mut futures = Vec::new();
    for round in 0..4u8 {
        for p in 0..partitions {
            let record = ProducerRecord::new(topic, vec![round; 100]).with_partition(p);
            futures.push(producer.send(record));
        }
    }
    for f in futures {
        f.wait().map_err(|e| format!("warming {topic}: {e}"))?;
    }
    producer
        .close()
        .map_err(|e| format!("warming {topic}: {e}"))
}

fn unique_topic(id: u8, client: Client) -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    format!("bench-s{id}-{client}-{}-{nanos}", std::process::id())
}

/// A child process, killed if it is still running when dropped.
struct ChildProcess(Child);

impl Drop for ChildProcess {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            eprintln!("killing child process {}", self.0.id());
            let _ = self.0.kill();
        }
        let _ = self.0.wait();
    }
}

/// Runs `client` through `s` in a child process against `broker`: this binary again
/// (ours, rdkafka) or a peer's program (Java, franz-go). `capture_dir`: the wire-limit
/// scenario's directory for the sink's capture files.
#[allow(clippy::too_many_arguments)]
fn run_child(
    options: &Options,
    peers: &Peers,
    broker: &Broker,
    s: &Scenario,
    transport: Transport,
    client: Client,
    topic: &str,
    capture_dir: Option<&Path>,
) -> Result<Figures, Unavailable> {
    let at_ready = match (s.is_stalled(), s.wire, capture_dir) {
        (true, ..) => AtReady::Stall,
        (false, true, Some(dir)) => AtReady::Capture(dir),
        (false, true, None) => {
            return Err(Unavailable::Failed(
                "the wire limit needs a directory for its capture".to_string(),
            ))
        }
        (false, false, _) => AtReady::Nothing,
    };
    let (bootstrap, ca) = match transport {
        Transport::Plaintext => (broker.bootstrap(), client::NO_CA.to_string()),
        Transport::SaslSsl => {
            let tls = broker.tls().ok_or(Unavailable::Failed(
                "this broker has no SASL_SSL listener (only the bench's own node does)".to_string(),
            ))?;
            (tls.bootstrap.clone(), tls.ca_path.display().to_string())
        }
    };
    let command = if client.in_this_binary() {
        let exe = std::env::current_exe()
            .map_err(|e| Unavailable::Failed(format!("locating the bench binary: {e}")))?;
        let mut command = Command::new(exe);
        command
            .arg(CHILD_FLAG)
            .args([client.name(), &s.id.to_string(), options.mode.name()])
            .args([transport.name(), &bootstrap, topic, &ca]);
        command
    } else {
        let values = peers
            .values_file(s.value_size)
            .map_err(Unavailable::Failed)?;
        let mut extra = s.transaction_properties(&scenario::transactional_id(topic));
        if transport == Transport::SaslSsl {
            extra.extend(scenario::java_tls_properties(&ca));
        }
        let args = s.peer_args(
            client,
            &bootstrap,
            topic,
            &values.display().to_string(),
            extra,
        );
        peers.command(client, &args)?
    };
    run_command(options, broker, at_ready, command).map_err(Unavailable::Failed)
}

/// What the parent does once a child that waits for `GO` (see `Scenario::waits_for_go`)
/// has printed `READY`.
enum AtReady<'a> {
    /// The child does not wait: it measures right after its warm-up.
    Nothing,
    /// Stall the broker (scenario 4); it resumes once the child has exited.
    Stall,
    /// Start the sink's capture into this directory (the wire limit, scenario 19).
    Capture(&'a Path),
}

/// Runs one child (see [`run_child`]; the bare loop of [`wire_limit`]) and collects its
/// figures.
fn run_command(
    options: &Options,
    broker: &Broker,
    at_ready: AtReady<'_>,
    mut command: Command,
) -> Result<Figures, String> {
    let broker_cpu_before = broker.cpu_ticks();
    let waits = !matches!(at_ready, AtReady::Nothing);
    let mut child = ChildProcess(
        command
            .stdin(if waits { Stdio::piped() } else { Stdio::null() })
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("starting the child: {e}"))?,
    );
    let stdout = child.0.stdout.take().ok_or("the child has no stdout")?;
    let (lines_tx, lines) = mpsc::channel::<String>();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let deadline = Instant::now() + options.child_timeout();
    let next_line = || {
        let left = deadline.saturating_duration_since(Instant::now());
        match lines.recv_timeout(left) {
            Ok(line) => Ok(Some(line)),
            Err(mpsc::RecvTimeoutError::Disconnected) => Ok(None),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(format!(
                "the child did not finish within {:?}",
                options.child_timeout()
            )),
        }
    };

    let mut stalled = None;
    if waits {
        match next_line()? {
            Some(line) if line == client::READY => {}
            other => {
                return Err(format!(
                    "expected {} from the child, got {other:?}",
                    client::READY
                ))
            }
        }
        match at_ready {
            AtReady::Stall => stalled = Some(broker.stall()?),
            AtReady::Capture(dir) => broker.capture(dir)?,
            AtReady::Nothing => {}
        }
        let stdin = child.0.stdin.as_mut().ok_or("the child has no stdin")?;
        writeln!(stdin, "{}", client::GO).map_err(|e| format!("writing GO: {e}"))?;
    }
    let mut result = None;
    while let Some(line) = next_line()? {
        if line.starts_with(client::RESULT_PREFIX) {
            result = Some(line);
        } else {
            eprintln!("child stdout: {line}");
        }
    }
    // Stdout closed: the child is exiting.
    let status = loop {
        match child.0.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(None) => return Err("the child closed stdout but did not exit".to_string()),
            Err(e) => return Err(format!("waiting for the child: {e}")),
        }
    };
    drop(stalled); // resume the broker only once the client is gone
    let broker_cpu_s = broker
        .cpu_ticks()
        .zip(broker_cpu_before)
        .map(|(after, before)| after.saturating_sub(before) as f64 / options.clk_tck);
    let figures = result
        .map(|line| Figures::parse(&line, options.clk_tck))
        .transpose()?
        .map(|f| Figures { broker_cpu_s, ..f });
    match (status.success(), figures) {
        (true, Some(figures)) => Ok(figures),
        (true, None) => Err("the child exited without a RESULT line".to_string()),
        (false, Some(f)) => Err(format!(
            "the child exited with {status} ({} of {} records acknowledged; its stderr above \
             has the reason)",
            f.acked, f.sent
        )),
        (false, None) => Err(format!(
            "the child exited with {status} (its stderr above has the reason)"
        )),
    }
}

fn print_run(backend: &str, s: &Scenario, transport: Transport, client: Client, outcome: &Outcome) {
    let who = format!(
        "[{backend}] scenario {} {client:<8}",
        run_label(s, transport)
    );
    match outcome {
        Outcome::Done(f) => {
            print_done(backend, &who, s, f);
            if let Some(wire) = &f.wire {
                let who = format!("[{backend}] scenario {} bare loop", run_label(s, transport));
                print_done(backend, &who, s, &wire.bare);
            }
        }
        Outcome::Failed(e) => println!("  {who} FAILED: {e}"),
        Outcome::Skipped(why) => println!("  {who} skipped: {why}"),
    }
}

/// The line of a run that succeeded: `who` did it, `f` are its figures.
fn print_done(backend: &str, who: &str, s: &Scenario, f: &Figures) {
    let latency = f.latency_ms.map_or(String::new(), |[p50, p99, p999, max]| {
        format!(", latency p50 {p50:.2} ms, p99 {p99:.2} ms, p99.9 {p999:.2} ms, max {max:.2} ms")
    });
    println!(
        "  {who} {} records in {:.2} s: {:.0} records/s, {:.1} MB/s, CPU {:.2} s \
         ({:.3} s per 1M records), peak RSS {:.1} MiB{latency}{}{} (load average {})",
        f.records(s),
        f.elapsed.as_secs_f64(),
        f.records_per_s(s),
        f.mb_per_s(s),
        f.cpu_s,
        f.cpu_per_million(s),
        f.peak_rss_mib(),
        f.broker_cpu_s
            .map_or(String::new(), |cpu| format!(", {backend} CPU {cpu:.2} s")),
        notes(s, f).map_or(String::new(), |n| format!("; {n}")),
        load_average()
    );
}

/// QueueFull retries, refused records, the stalled close, client errors.
fn notes(s: &Scenario, f: &Figures) -> Option<String> {
    let mut notes = Vec::new();
    if f.queue_full > 0 {
        notes.push(format!("QueueFull ×{}", f.queue_full));
    }
    if f.refused > 0 {
        notes.push(format!("{} sends failed with BufferExhausted", f.refused));
    }
    if s.is_stalled() {
        notes.push(format!(
            "RSS {:.1} MiB before sending",
            f.rss_before_kb as f64 / 1024.0
        ));
        notes.push(format!("close took {} ms", f.close_ms));
    }
    if let Some(t) = f.transactions {
        notes.push(format!(
            "{} transactions, commit {:.1} ms on average, init_transactions {} ms (unmeasured)",
            t.count,
            t.commit_us as f64 / 1000.0 / t.count.max(1) as f64,
            t.init_ms
        ));
    }
    if let Some((cpu_ms, wakeups)) = f.idle {
        notes.push(format!(
            "idle {:.1} s: CPU {cpu_ms:.2} ms, {wakeups} context switches ({:.1}/s)",
            f.elapsed.as_secs_f64(),
            wakeups as f64 / f.elapsed.as_secs_f64().max(1e-9)
        ));
    }
    if let Some(read) = f.read_committed {
        notes.push(format!("{read} records read back at read_committed"));
    }
    if let Some(wire) = &f.wire {
        notes.push(format!(
            "its {} Produce requests replayed by the bare loop: ours / bare loop {:.2}",
            wire.requests,
            wire.ratio(f, s)
        ));
    }
    if f.client_errors > 0 {
        notes.push(format!("{} client error reports", f.client_errors));
    }
    (!notes.is_empty()).then(|| notes.join(", "))
}

fn print_figures_table(options: &Options, backend: &str, results: &Results) {
    println!("\n### {backend}\n");
    println!(
        "| scenario | client | records | time s | records/s | MB/s | CPU s | CPU s / 1M records \
         | p50 ms | p99 ms | p99.9 ms | peak RSS MiB | {backend} CPU s | notes |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|");
    for &id in &options.scenarios {
        let s = scenario::scenario(id, options.mode);
        // A TLS, transactional or wire-limit scenario not run on this backend: one row says
        // why.
        let whole = s.tls || s.is_transactional() || s.wire;
        let last = *s.transports().last().unwrap_or(&Transport::Plaintext);
        let key = (backend_key(backend), id, last, Client::Ours);
        if let (true, Some(Outcome::Skipped(why))) = (whole, results.runs.get(&key)) {
            println!("| {id} | all | skipped: {why} ||||||||||||");
            continue;
        }
        for (&transport, client) in s
            .transports()
            .iter()
            .flat_map(|t| options.clients.iter().map(move |&c| (t, c)))
        {
            let key = (backend_key(backend), id, transport, client);
            let label = run_label(&s, transport);
            let retried = results.retried.contains_key(&key);
            match results.runs.get(&key) {
                Some(Outcome::Done(f)) => {
                    let mut note = notes(&s, f).unwrap_or_default();
                    if retried {
                        note += if note.is_empty() {
                            "retried"
                        } else {
                            "; retried"
                        };
                    }
                    print_figures_row(&label, client.name(), &s, f, &note);
                    if let Some(wire) = &f.wire {
                        let note = format!("replayed ours' {} Produce requests", wire.requests);
                        print_figures_row(&label, "bare loop", &s, &wire.bare, &note);
                    }
                }
                Some(Outcome::Failed(e)) => {
                    println!("| {label} | {client} | FAILED: {e} ||||||||||||");
                }
                Some(Outcome::Skipped(why)) => {
                    println!("| {label} | {client} | skipped: {why} ||||||||||||");
                }
                None => {}
            }
        }
    }
}

/// A row of [`print_figures_table`]: `who` ran scenario `label` with figures `f`.
fn print_figures_row(label: &str, who: &str, s: &Scenario, f: &Figures, note: &str) {
    let [p50, p99, p999] = f.latency_ms.map_or(["—", "—", "—"].map(String::from), |l| {
        [l[0], l[1], l[2]].map(|ms| format!("{ms:.2}"))
    });
    println!(
        "| {label} | {who} | {} | {:.2} | {:.0} | {:.1} | {:.2} | {:.3} | {p50} | {p99} | {p999} \
         | {:.1} | {} | {note} |",
        f.records(s),
        f.elapsed.as_secs_f64(),
        f.records_per_s(s),
        f.mb_per_s(s),
        f.cpu_s,
        f.cpu_per_million(s),
        f.peak_rss_mib(),
        f.broker_cpu(),
    );
}

/// What a ratio row compares.
#[derive(Clone, Copy)]
enum Metric {
    RecordsPerSec,
    CpuPerMillion,
    /// Index into `latency_ms`: 0 p50, 1 p99, 2 p99.9.
    Latency(usize),
    PeakRss,
}

/// A row's target on the ratio ours / a peer.
#[derive(Clone, Copy)]
enum Target {
    AtLeast(f64),
    AtMost(f64),
    /// Scenario 4: ours at most buffer.memory + 16 MiB, and below the peer.
    StalledRss,
    /// Shown for information.
    None,
}

/// The targets of the performance issues, ours / `peer`, for one row.
fn target(id: u8, is_sink: bool, metric: Metric, peer: Client) -> Target {
    let rdkafka = peer == Client::Rdkafka;
    match (id, metric) {
        // On Kafka ≥ 1.0× the best peer, that is ≥ 1.0× each; on the sink, where only
        // the client's own cost counts, ≥ 2.0× librdkafka and ≥ 1.2× Java and franz-go.
        (1, Metric::RecordsPerSec) if is_sink && rdkafka => Target::AtLeast(2.0),
        (1, Metric::RecordsPerSec) if is_sink => Target::AtLeast(1.2),
        (1, Metric::RecordsPerSec) => Target::AtLeast(1.0),
        (1, Metric::CpuPerMillion) if is_sink => Target::None,
        (1, Metric::CpuPerMillion) if rdkafka => Target::AtMost(0.5),
        (1, Metric::CpuPerMillion) => Target::AtMost(0.7),
        (2, Metric::RecordsPerSec) => Target::AtLeast(1.0),
        (3, Metric::Latency(1)) => Target::AtMost(1.0),
        (3, Metric::CpuPerMillion) if rdkafka => Target::AtMost(1.0),
        (4, Metric::PeakRss) => Target::StalledRss,
        (11, Metric::RecordsPerSec) => Target::AtLeast(1.0),
        // The transactions issue's target was set against librdkafka.
        (7, Metric::RecordsPerSec) if rdkafka => Target::AtLeast(1.0),
        _ => Target::None,
    }
}

fn print_ratio_table(options: &Options, results: &Results) {
    let broker = options
        .backends
        .iter()
        .find(|b| !matches!(b, Kind::Sink))
        .map(Kind::name);
    let sink = options
        .backends
        .iter()
        .any(|b| matches!(b, Kind::Sink))
        .then_some("sink");
    // (scenario, backend, is sink, metric): the rows with a target, and a few figures for
    // information. Scenario 7 runs on the broker only.
    let mut rows = Vec::new();
    for (backend, is_sink) in [(broker, false), (sink, true)] {
        let Some(backend) = backend else { continue };
        let mut add = |id, metric| rows.push((id, backend, is_sink, metric));
        add(1, Metric::RecordsPerSec);
        add(1, Metric::CpuPerMillion);
        add(2, Metric::RecordsPerSec);
        add(2, Metric::CpuPerMillion);
        add(3, Metric::Latency(0));
        add(3, Metric::Latency(1));
        add(3, Metric::Latency(2));
        add(3, Metric::CpuPerMillion);
        add(4, Metric::PeakRss);
        if !is_sink {
            add(7, Metric::RecordsPerSec);
            add(7, Metric::CpuPerMillion);
        }
        for id in [11, 14, 15, 16, 17] {
            add(id, Metric::RecordsPerSec);
        }
    }
    rows.sort_by_key(|&(id, backend, ..)| (id, backend == "sink"));
    if !rows.iter().any(|(id, ..)| options.scenarios.contains(id)) {
        return; // only TLS scenarios: their ratios are in the TLS table
    }
    let peers: Vec<Client> = options
        .clients
        .iter()
        .copied()
        .filter(|&c| c != Client::Ours)
        .collect();

    println!("\n### ours / each peer\n");
    println!("| scenario | metric | ours | peer | peer's | ours / peer | target | status |");
    println!("|---|---|--:|---|--:|--:|---|---|");
    let limit_mib = (BUFFER_MEMORY + STALLED_RSS_ALLOWANCE) as f64 / MIB;
    for (id, backend, is_sink, metric) in rows {
        if !options.scenarios.contains(&id) {
            continue;
        }
        let s = scenario::scenario(id, options.mode);
        let value = |f: &Figures| match metric {
            Metric::RecordsPerSec => Some(f.records_per_s(&s)),
            Metric::CpuPerMillion => Some(f.cpu_per_million(&s)),
            Metric::Latency(i) => f.latency_ms.map(|l| l[i]),
            Metric::PeakRss => Some(f.peak_rss_mib()),
        };
        let (name, unit_fmt): (&str, fn(f64) -> String) = match metric {
            Metric::RecordsPerSec => ("records/s", |v| format!("{v:.0}")),
            Metric::CpuPerMillion => ("CPU s per 1M records", |v| format!("{v:.3}")),
            Metric::Latency(0) => ("p50 latency ms", |v| format!("{v:.2}")),
            Metric::Latency(1) => ("p99 latency ms", |v| format!("{v:.2}")),
            Metric::Latency(_) => ("p99.9 latency ms", |v| format!("{v:.2}")),
            Metric::PeakRss => ("peak RSS MiB", |v| format!("{v:.1}")),
        };
        let plain = Transport::Plaintext;
        let ours = results
            .figures(backend, id, plain, Client::Ours)
            .and_then(value);
        let show = |v: Option<f64>| v.map_or("—".to_string(), unit_fmt);
        for &peer in &peers {
            let theirs = results.figures(backend, id, plain, peer).and_then(value);
            let ratio = ours.zip(theirs).map(|(o, t)| o / t);
            let target = target(id, is_sink, metric, peer);
            let target_text = match target {
                Target::AtLeast(t) => format!("≥ {t:.1}"),
                Target::AtMost(t) => format!("≤ {t:.1}"),
                Target::StalledRss => format!("ours ≤ {limit_mib:.0} MiB and < {peer}"),
                Target::None => "—".to_string(),
            };
            let status = match (target, ratio, ours) {
                (Target::None, ..) => "—",
                (_, None, _) | (_, _, None) => "n/a (run failed or skipped)",
                (Target::AtLeast(t), Some(r), _) => met(r >= t),
                (Target::AtMost(t), Some(r), _) => met(r <= t),
                (Target::StalledRss, Some(r), Some(o)) => met(o <= limit_mib && r < 1.0),
            };
            println!(
                "| {id} ({backend}) | {name} | {} | {peer} | {} | {} | {target_text} | {status} |",
                show(ours),
                show(theirs),
                ratio.map_or("—".to_string(), |r| format!("{r:.2}")),
            );
        }
    }
}

fn met(ok: bool) -> &'static str {
    if ok {
        "met"
    } else {
        "**missed**"
    }
}

/// The TLS scenarios on the bench's Kafka: each client's records/s and CPU over plaintext
/// and over SASL_SSL with the cost of TLS (SASL_SSL / plaintext), then ours / rdkafka over
/// SASL_SSL with the issue's targets (records/s ≥ 1.0×, CPU ≤ 0.8×).
fn print_tls_table(options: &Options, results: &Results) {
    let ids: Vec<u8> = options
        .scenarios
        .iter()
        .copied()
        .filter(|&id| scenario::scenario(id, options.mode).tls)
        .collect();
    if ids.is_empty() {
        return;
    }
    let backend = Kind::Kafka.name();
    println!("\n### TLS: SASL_SSL (SCRAM-SHA-512) vs plaintext, on {backend}\n");
    if !options.backends.iter().any(|b| matches!(b, Kind::Kafka)) {
        println!(
            "not run: the TLS scenarios need the bench's own Kafka node (no \
             KAFKA_BOOTSTRAP_SERVERS, BENCH_BACKENDS including kafka)"
        );
        return;
    }
    let (plain, tls) = (Transport::Plaintext, Transport::SaslSsl);
    let ratio = |a: Option<f64>, b: Option<f64>| a.zip(b).map(|(a, b)| a / b);
    let show = |v: Option<f64>, decimals: usize| {
        v.map_or("—".to_string(), |v| format!("{v:.decimals$}"))
    };
    println!(
        "| scenario | client | plaintext records/s | SASL_SSL records/s | records/s \
         SASL_SSL / plaintext | plaintext CPU s / 1M records | SASL_SSL CPU s / 1M records \
         | CPU SASL_SSL / plaintext |"
    );
    println!("|---|---|--:|--:|--:|--:|--:|--:|");
    for &id in &ids {
        let s = scenario::scenario(id, options.mode);
        let label = format!("{id} ({})", size_label(s.value_size));
        let rate = |t, c| {
            results
                .figures(backend, id, t, c)
                .map(|f| f.records_per_s(&s))
        };
        let cpu = |t, c| {
            results
                .figures(backend, id, t, c)
                .map(|f| f.cpu_per_million(&s))
        };
        for &client in &options.clients {
            let (rate_plain, rate_tls) = (rate(plain, client), rate(tls, client));
            let (cpu_plain, cpu_tls) = (cpu(plain, client), cpu(tls, client));
            println!(
                "| {label} | {client} | {} | {} | {} | {} | {} | {} |",
                show(rate_plain, 0),
                show(rate_tls, 0),
                show(ratio(rate_tls, rate_plain), 2),
                show(cpu_plain, 3),
                show(cpu_tls, 3),
                show(ratio(cpu_tls, cpu_plain), 2),
            );
        }
        let ours = Client::Ours;
        for theirs in options.clients.iter().copied().filter(|&c| c != ours) {
            println!(
                "| {label} | ours / {theirs} | {} | {} | — | {} | {} | — |",
                show(ratio(rate(plain, ours), rate(plain, theirs)), 2),
                show(ratio(rate(tls, ours), rate(tls, theirs)), 2),
                show(ratio(cpu(plain, ours), cpu(plain, theirs)), 2),
                show(ratio(cpu(tls, ours), cpu(tls, theirs)), 2),
            );
        }
    }

    println!("\n| scenario | metric over SASL_SSL | ours | rdkafka | ratio | target | status |");
    println!("|---|---|--:|--:|--:|---|---|");
    for &id in &ids {
        let s = scenario::scenario(id, options.mode);
        let label = format!("{id} ({})", size_label(s.value_size));
        let rows = [
            (Metric::RecordsPerSec, Target::AtLeast(1.0)),
            (Metric::CpuPerMillion, Target::AtMost(0.8)),
        ];
        for (metric, target) in rows {
            let (name, decimals) = match metric {
                Metric::RecordsPerSec => ("records/s", 0),
                _ => ("CPU s per 1M records", 3),
            };
            let get = |c| {
                results.figures(backend, id, tls, c).map(|f| match metric {
                    Metric::RecordsPerSec => f.records_per_s(&s),
                    _ => f.cpu_per_million(&s),
                })
            };
            let (ours, theirs) = (get(Client::Ours), get(Client::Rdkafka));
            let r = ratio(ours, theirs);
            let (target_text, status) = match (target, r) {
                (Target::AtLeast(t), Some(r)) => (format!("≥ {t:.1}"), met(r >= t)),
                (Target::AtMost(t), Some(r)) => (format!("≤ {t:.1}"), met(r <= t)),
                (Target::AtLeast(t), None) => (format!("≥ {t:.1}"), "n/a (run failed or skipped)"),
                (Target::AtMost(t), None) => (format!("≤ {t:.1}"), "n/a (run failed or skipped)"),
                (Target::StalledRss | Target::None, _) => ("—".to_string(), "—"),
            };
            println!(
                "| {label} | {name} | {} | {} | {} | {target_text} | {status} |",
                show(ours, decimals),
                show(theirs, decimals),
                show(r, 2),
            );
        }
    }
}

/// The scenarios that scale one thing (partitions, threads, value size): each client's
/// records/s (and MB/s for sizes) at every step and the last step over the first, with the
/// targets on ours: at 6,000 partitions at least half the 6-partition rate, at 16 threads
/// at least the 4-thread rate.
fn print_scaling_tables(options: &Options, results: &Results) {
    for (first, last, what) in scenario::SCALING {
        let ids: Vec<u8> = (first..=last)
            .filter(|id| options.scenarios.contains(id))
            .collect();
        if ids.is_empty() {
            continue;
        }
        let step = |id: u8| {
            let s = scenario::scenario(id, options.mode);
            match what {
                "partitions" => format!("{} partitions", s.partitions.unwrap_or(0)),
                "sending threads" => format!("{} threads", s.threads),
                _ => size_label(s.value_size),
            }
        };
        // (from, to, minimum ratio of ours)
        let target = match what {
            "partitions" => Some((8, 11, 0.5)),
            "sending threads" => Some((13, 14, 1.0)),
            _ => None,
        };
        println!("\n### scaling: {what} (records/s; MB/s for value sizes)\n");
        let steps: Vec<String> = ids
            .iter()
            .map(|&id| format!("{id}: {}", step(id)))
            .collect();
        println!(
            "| backend | client | {} | ours' target | status |",
            steps.join(" | ")
        );
        println!("|---|---|{}---|---|", "--:|".repeat(ids.len()));
        for backend in &options.backends {
            let backend = backend.name();
            for &client in &options.clients {
                let cells: Vec<String> = ids
                    .iter()
                    .map(|&id| {
                        let s = scenario::scenario(id, options.mode);
                        match results.figures(backend, id, Transport::Plaintext, client) {
                            Some(f) if what == "value size" => {
                                format!("{:.0} ({:.1} MB/s)", f.records_per_s(&s), f.mb_per_s(&s))
                            }
                            Some(f) => format!("{:.0}", f.records_per_s(&s)),
                            None => "—".to_string(),
                        }
                    })
                    .collect();
                let (target_text, status) = match target {
                    Some((from, to, min)) if client == Client::Ours => {
                        let rate = |id| {
                            let s = scenario::scenario(id, options.mode);
                            results
                                .figures(backend, id, Transport::Plaintext, client)
                                .map(|f| f.records_per_s(&s))
                        };
                        let text = format!("{}: ≥ {min:.1} × {}", step(to), step(from));
                        match rate(to).zip(rate(from)) {
                            Some((to, from)) => {
                                (format!("{text} ({:.2})", to / from), met(to / from >= min))
                            }
                            None => (text, "n/a (run failed or skipped)"),
                        }
                    }
                    _ => ("—".to_string(), "—"),
                };
                println!(
                    "| {backend} | {client} | {} | {target_text} | {status} |",
                    cells.join(" | ")
                );
            }
        }
    }
}

/// The idle scenario: each client's CPU time and context switches while connected and
/// idle for 10 s, with ours' target (under 10 ms of CPU).
fn print_idle_table(options: &Options, results: &Results) {
    const ID: u8 = 18;
    if !options.scenarios.contains(&ID) {
        return;
    }
    let s = scenario::scenario(ID, options.mode);
    println!("\n### idle (scenario {ID}): {}\n", s.load_description());
    println!("| backend | client | CPU ms | context switches | per s | target | status |");
    println!("|---|---|--:|--:|--:|---|---|");
    for backend in &options.backends {
        let backend = backend.name();
        for &client in &options.clients {
            let figures = results.figures(backend, ID, Transport::Plaintext, client);
            let Some((f, (cpu_ms, wakeups))) = figures.and_then(|f| Some((f, f.idle?))) else {
                println!("| {backend} | {client} | — | — | — | — | n/a (run failed or skipped) |");
                continue;
            };
            let (target, status) = if client == Client::Ours {
                ("< 10 ms", met(cpu_ms < 10.0))
            } else {
                ("—", "—")
            };
            println!(
                "| {backend} | {client} | {cpu_ms:.2} | {wakeups} | {:.1} | {target} | {status} |",
                wakeups as f64 / f.elapsed.as_secs_f64().max(1e-9)
            );
        }
    }
}

/// The wire limit (scenario 19, on the sink): ours' records/s against the bare loop's, which
/// wrote the same Produce requests (captured from ours' run) over one socket, with the
/// target on their ratio (ours at least half the bare loop's rate). Ours' rate in scenario
/// 1 on the sink, the same load without the capture, is shown beside it when it ran: the
/// capture's writer thread takes CPU time from a small machine.
fn print_wire_table(options: &Options, results: &Results) {
    const ID: u8 = scenario::WIRE_ID;
    const TARGET: f64 = 0.5;
    if !options.scenarios.contains(&ID) {
        return;
    }
    let s = scenario::scenario(ID, options.mode);
    println!(
        "\n### wire limit (scenario {ID}, sink): ours vs a bare loop writing ours' Produce \
         requests over one socket ({}, at most {} requests in flight)\n",
        s.load_description(),
        scenario::MAX_IN_FLIGHT
    );
    if !options.backends.iter().any(|b| matches!(b, Kind::Sink)) {
        println!("not run: the wire limit runs on the sink only (BENCH_BACKENDS including sink)");
        return;
    }
    println!(
        "| backend | Produce requests | ours records/s | bare loop records/s | ours / bare loop \
         | target | status | ours records/s in scenario 1 (no capture) |"
    );
    println!("|---|--:|--:|--:|--:|---|---|--:|");
    let backend = Kind::Sink.name();
    let scenario_1 = results
        .figures(backend, 1, Transport::Plaintext, Client::Ours)
        .map_or("—".to_string(), |f| {
            format!(
                "{:.0}",
                f.records_per_s(&scenario::scenario(1, options.mode))
            )
        });
    let figures = results.figures(backend, ID, Transport::Plaintext, Client::Ours);
    let Some((ours, wire)) = figures.and_then(|f| Some((f, f.wire.as_deref()?))) else {
        println!(
            "| {backend} | — | — | — | — | ≥ {TARGET:.1} | n/a (run failed or skipped) \
             | {scenario_1} |"
        );
        return;
    };
    let ratio = wire.ratio(ours, &s);
    println!(
        "| {backend} | {} | {:.0} | {:.0} | {ratio:.2} | ≥ {TARGET:.1} | {} | {scenario_1} |",
        wire.requests,
        ours.records_per_s(&s),
        wire.bare.records_per_s(&s),
        met(ratio >= TARGET)
    );
}

/// Instructions per record of ours and rdkafka under callgrind (`throughput/instructions.rs`),
/// in the full and quick modes when scenario 1 and the sink are selected, valgrind is
/// installed and `BENCH_INSTRUCTIONS` is not `0`.
fn print_instructions(options: &Options) {
    let Some(sizes) = instructions::sizes(options.mode) else {
        return;
    };
    let wanted = options.scenarios.contains(&1)
        && options.backends.iter().any(|b| matches!(b, Kind::Sink))
        && std::env::var("BENCH_INSTRUCTIONS").map_or(true, |v| v != "0");
    if !wanted {
        return;
    }
    let [n1, n2] = sizes;
    println!(
        "\n### instructions per record (callgrind; scenario 1's load on the sink, {n1} and \
         {n2} records: the difference of the totals / {})\n",
        n2 - n1
    );
    if !instructions::available() {
        println!("not measured: valgrind is not installed (apt install valgrind)");
        return;
    }
    let counts: Vec<_> = [Client::Ours, Client::Rdkafka]
        .into_iter()
        .filter(|c| options.clients.contains(c))
        .map(|c| (c, instructions::count(c, sizes, options.partitions)))
        .collect();
    let ours = counts.iter().find_map(|(c, r)| match r {
        Ok(count) if *c == Client::Ours => Some(count.per_record()),
        _ => None,
    });
    println!("| client | instructions, {n1} records | instructions, {n2} records | per record | ours / client |");
    println!("|---|--:|--:|--:|--:|");
    for (client, result) in &counts {
        match result {
            Ok(count) => {
                let per_record = count.per_record();
                println!(
                    "| {client} | {} | {} | {per_record:.0} | {} |",
                    count.runs[0].1,
                    count.runs[1].1,
                    ours.map_or("—".to_string(), |o| format!("{:.2}", o / per_record))
                );
            }
            Err(e) => println!("| {client} | FAILED: {e} |||"),
        }
    }
}

/// `100 B`, `1 KiB`.
fn size_label(bytes: usize) -> String {
    if bytes >= 1024 && bytes % 1024 == 0 {
        format!("{} KiB", bytes / 1024)
    } else {
        format!("{bytes} B")
    }
}

//! The exactly-once copier of `examples/transactions.rs` on real Apache Kafka, killed with
//! SIGKILL in the middle of its copy and started again, several times: the output topic,
//! read at `read_committed` by the rdkafka consumer and the Java consumer (which must
//! agree), holds every input record exactly once, per partition in input order, with key,
//! value, headers and timestamp unchanged; and the group's committed offsets are the input's
//! end offsets. Before the last run, one copier is still at work when the next starts
//! with the same `transactional.id` and group: fenced, it must exit (status 3) and leave
//! nothing visible behind.
//!
//! The copier runs as a child process (the example's binary, which this test has cargo
//! build first: `cargo test --test transactions_example` builds no examples). A guard
//! kills and reaps it when the test fails, so no copier outlives the test.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant};

use common::kafka;
use common::{read_back, read_back_isolated, read_back_within, unique_topic, ReadRecord};
use kafka_producer::{Headers, Producer, ProducerRecord};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

/// Input records, and partitions of the input and of the output topic.
const RECORDS: usize = 20_000;
const PARTITIONS: i32 = 3;
/// How many copiers are killed; each after it reported at least [`KILL_AFTER`] records.
const KILLS: usize = 3;
const KILL_AFTER: u64 = 2_500;
/// How long after the `copied` line each kill comes (varies where in the next
/// transaction it lands).
const KILL_DELAYS_MS: [u64; KILLS] = [0, 30, 7];

/// The variables cargo sets for a test it runs (besides `CARGO` and `CARGO_PKG_*`).
const CARGO_SET: [&str; 8] = [
    "CARGO_MANIFEST_DIR",
    "CARGO_MANIFEST_PATH",
    "CARGO_CRATE_NAME",
    "CARGO_BIN_NAME",
    "CARGO_PRIMARY_PACKAGE",
    "CARGO_TARGET_TMPDIR",
    "CARGO_RUSTC_CURRENT_DIR",
    "OUT_DIR",
];

/// The example's binary next to this test's (`target/<profile>/examples/`), built or
/// brought up to date by cargo once per test process.
fn example_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        // This test is target/<profile>/deps/transactions_example-<hash>.
        let exe = std::env::current_exe().expect("the test binary's path");
        let profile_dir = exe
            .parent()
            .and_then(Path::parent)
            .expect("target/<profile>");
        let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev",
            Some(other) => other,
        };
        let binary = profile_dir
            .join("examples")
            .join(format!("transactions{}", std::env::consts::EXE_SUFFIX));
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_owned());
        let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        let started = Instant::now();
        let mut build = Command::new(cargo);
        build
            .args(["build", "--example", "transactions", "--profile", profile])
            .arg("--manifest-path")
            .arg(&manifest)
            .stdout(Stdio::null());
        // Not the variables cargo set for this test: build scripts that watch one (ring's
        // watches CARGO_MANIFEST_DIR) would run again, and so would every later build in
        // this target directory, to put it back.
        for (name, _) in std::env::vars_os() {
            let name = name.to_string_lossy();
            if name.starts_with("CARGO_PKG_") || CARGO_SET.contains(&name.as_ref()) {
                build.env_remove(name.as_ref());
            }
        }
        let status = build
            .status()
            .expect("run cargo build --example transactions");
        assert!(
            status.success(),
            "cargo build --example transactions: {status}"
        );
        assert!(
            binary.is_file(),
            "cargo built the example, but not at {}",
            binary.display()
        );
        eprintln!(
            "example binary {} up to date in {:.1} s",
            binary.display(),
            started.elapsed().as_secs_f64()
        );
        binary
    })
}

/// A running copier. Dropping it kills (SIGKILL) and reaps the process, so a failing
/// test leaves none behind.
struct Copier {
    run: usize,
    child: Child,
    /// The copier's stdout and stderr, line by line (closed when it exits).
    lines: Receiver<String>,
}

impl Copier {
    fn start(run: usize, args: &[&str], bootstrap: &str) -> Copier {
        let mut child = Command::new(example_binary())
            .args(args)
            .env("KAFKA_BOOTSTRAP_SERVERS", bootstrap)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start the copier");
        let (tx, lines) = mpsc::channel();
        let stdout = child.stdout.take().expect("the copier's stdout");
        let stderr = child.stderr.take().expect("the copier's stderr");
        let tx2 = tx.clone();
        thread::spawn(move || forward(run, stdout, tx));
        thread::spawn(move || forward(run, stderr, tx2));
        Copier { run, child, lines }
    }

    /// Waits for a `copied N` line with N ≥ `at_least`; returns N.
    fn wait_for_copied(&mut self, at_least: u64, timeout: Duration) -> u64 {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let n = line.strip_prefix("copied ").and_then(|n| n.parse().ok());
                    if let Some(n) = n.filter(|&n| n >= at_least) {
                        return n;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!(
                        "copier {}: no `copied {at_least}` within {timeout:?}",
                        self.run
                    )
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "copier {} exited ({:?}) before copying {at_least} records",
                    self.run,
                    self.child.wait()
                ),
            }
        }
    }

    /// SIGKILL, and checks that the signal is what ended it.
    fn kill(mut self) {
        self.child.kill().expect("SIGKILL the copier");
        let status = self.child.wait().expect("reap the copier");
        assert_eq!(status.signal(), Some(9), "copier {}: {status}", self.run);
    }

    /// Waits for it to exit by itself; its status and its last `done` or `error` line.
    fn wait_for_exit(mut self, timeout: Duration) -> (ExitStatus, String) {
        let deadline = Instant::now() + timeout;
        let mut last = String::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with("done") || line.starts_with("error") => last = line,
                Ok(_) => {}
                Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {
                    panic!("copier {} still running after {timeout:?}", self.run)
                }
            }
        }
        (self.child.wait().expect("reap the copier"), last)
    }
}

impl Drop for Copier {
    fn drop(&mut self) {
        // Both fail harmlessly on a copier already reaped.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Echoes the copier's output lines (captured with the test's), and passes them on.
fn forward(run: usize, from: impl Read, to: mpsc::Sender<String>) {
    for line in BufReader::new(from).lines().map_while(Result::ok) {
        eprintln!("[copier {run}] {line}");
        let _ = to.send(line);
    }
}

/// Record `i` of the input: 200 keys, some headers, some of them null.
fn input_record(topic: &str, i: usize) -> ProducerRecord<Vec<u8>, Vec<u8>> {
    let mut headers = Headers::new();
    if i % 5 == 0 {
        headers.add("seq", i.to_string().into_bytes());
    }
    if i % 13 == 0 {
        headers.add_null("nothing");
    }
    ProducerRecord::new(topic, format!("value-{i:06}").into_bytes())
        .with_key(format!("key-{:03}", i % 200).into_bytes())
        .with_headers(headers)
}

/// What the copy must keep of a record: (key, value, headers, timestamp).
type Content = (
    Option<Vec<u8>>,
    Option<Vec<u8>>,
    Vec<(String, Option<Vec<u8>>)>,
    i64,
);

/// Each partition's records, in offset order, as [`Content`].
fn by_partition(records: &[ReadRecord]) -> HashMap<i32, Vec<Content>> {
    let mut out: HashMap<i32, Vec<Content>> = HashMap::new();
    for r in records {
        let content = (
            r.key.clone(),
            r.value.clone(),
            r.headers.clone(),
            r.timestamp,
        );
        out.entry(r.partition).or_default().push(content);
    }
    out
}

/// The offsets `group` committed for `topic`'s partitions (-1: none).
fn committed_offsets(bootstrap: &str, group: &str, topic: &str) -> Vec<i64> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("isolation.level", "read_committed")
        .create()
        .expect("an rdkafka consumer");
    let mut tpl = TopicPartitionList::new();
    for p in 0..PARTITIONS {
        tpl.add_partition(topic, p);
    }
    let got = consumer
        .committed_offsets(tpl, Duration::from_secs(30))
        .expect("the group's committed offsets");
    (0..PARTITIONS)
        .map(|p| match got.find_partition(topic, p).map(|e| e.offset()) {
            Some(Offset::Offset(o)) => o,
            _ => -1,
        })
        .collect()
}

#[test]
fn copier_killed_mid_copy_copies_every_record_exactly_once() {
    let started = Instant::now();
    let bs = kafka::shared().bootstrap().to_owned();
    let (input, output) = (unique_topic("copy-in"), unique_topic("copy-out"));
    for topic in [&input, &output] {
        kafka::shared().create_topic(topic, PARTITIONS, 1, &[]);
    }
    // Build the example while the input is written.
    let build = thread::spawn(example_binary);

    let plain = Producer::from_properties([("bootstrap.servers", bs.as_str()), ("linger.ms", "5")])
        .expect("a plain producer");
    let futures: Vec<_> = (0..RECORDS)
        .map(|i| plain.send(input_record(&input, i)))
        .collect();
    for f in futures {
        f.wait().expect("an input record");
    }
    plain.close().expect("close the plain producer");
    let written_in = read_back(&bs, &input, RECORDS);
    assert_eq!(written_in.len(), RECORDS, "{input}: the input, once");
    build.join().expect("building the example");

    let group = unique_topic("copy-group");
    let id = unique_topic("copy-txn");
    let args = [
        "--input",
        &input,
        "--output",
        &output,
        "--group",
        &group,
        "--transactional-id",
        &id,
    ];
    let mut killed_at = Vec::new();
    for (run, delay) in KILL_DELAYS_MS.iter().enumerate() {
        let mut copier = Copier::start(run, &args, &bs);
        let n = copier.wait_for_copied(KILL_AFTER, Duration::from_secs(120));
        thread::sleep(Duration::from_millis(*delay));
        copier.kill();
        killed_at.push(n);
        eprintln!("copier {run}: killed {delay} ms after it reported {n} records copied");
    }
    // A copier still at work when the next one starts: fenced (status 3), it must leave
    // nothing behind; the next one runs until the input is idle for 5 s.
    let mut zombie = Copier::start(KILLS, &args, &bs);
    let zombie_at = zombie.wait_for_copied(KILL_AFTER, Duration::from_secs(120));
    let last_args: Vec<&str> = args.iter().copied().chain(["--idle-secs", "5"]).collect();
    let last = Copier::start(KILLS + 1, &last_args, &bs);
    let (status, fenced) = zombie.wait_for_exit(Duration::from_secs(60));
    assert_eq!(
        status.code(),
        Some(3),
        "the fenced copier: {status}, {fenced:?}"
    );
    let (status, done) = last.wait_for_exit(Duration::from_secs(300));
    assert!(
        status.success(),
        "the last copier failed: {status}, {done:?}"
    );

    // Exactly the input, read at read_committed by both readers.
    let patience = Duration::from_secs(60);
    let (rdkafka, java) = thread::scope(|s| {
        let java = s.spawn(|| {
            let dist = kafka::distribution();
            kafka::java_read(dist, &bs, &output, RECORDS, patience, "read_committed")
        });
        let rdkafka = read_back_isolated(&bs, &output, RECORDS, patience, "read_committed");
        (rdkafka, java.join().expect("the Java reader"))
    });
    common::assert_same_records(&rdkafka, &java, &output);
    assert_eq!(rdkafka.len(), RECORDS, "{output}: every input record, once");
    let (want, got) = (by_partition(&written_in), by_partition(&rdkafka));
    for p in 0..PARTITIONS {
        let (want, got) = (&want[&p], got.get(&p).map_or(&[][..], Vec::as_slice));
        if let Some(i) = (0..want.len().max(got.len())).find(|&i| want.get(i) != got.get(i)) {
            panic!(
                "{output}-{p}: record {i} of {} differs from the input's ({} records):\n\
                 input:  {:?}\noutput: {:?}",
                got.len(),
                want.len(),
                want.get(i),
                got.get(i)
            );
        }
    }
    // The group resumes after the last input record.
    let ends: Vec<i64> = (0..PARTITIONS)
        .map(|p| want.get(&p).map_or(0, |records| records.len() as i64))
        .collect();
    let offsets = committed_offsets(&bs, &group, &input);
    assert_eq!(
        offsets, ends,
        "the group's committed offsets are the input's end"
    );
    // Read uncommitted: what the killed copiers' open transactions wrote, aborted since.
    let written_out = read_back_within(&bs, &output, RECORDS, Duration::from_secs(60)).len();
    eprintln!(
        "transactions example: {RECORDS} records in {PARTITIONS} partitions copied by {} \
         copiers, {KILLS} killed (SIGKILL) after reporting {killed_at:?} records, one fenced \
         by the next after {zombie_at} ({fenced:?}); the last: {done:?}. Output: {} records at read_committed (rdkafka and Java agree, per partition \
         in input order), {written_out} written in all ({} in aborted transactions); group \
         offsets {offsets:?}; {:.1} s",
        KILLS + 2,
        rdkafka.len(),
        written_out.saturating_sub(RECORDS),
        started.elapsed().as_secs_f64()
    );
}

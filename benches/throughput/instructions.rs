//! Instructions per record: a figure that does not move with the machine's load, next to
//! the wall-clock ones, so that a change can be judged on a small, noisy machine.
//!
//! The machine's virtualised CPU offers no hardware counters to `perf stat`, so the count
//! comes from valgrind's callgrind, which executes the client on a simulated CPU and counts
//! every instruction of every thread (librdkafka's included). Scenario 1's load (100 B
//! values, acks=1, linger 5 ms, no compression) runs on a fresh sink twice per client, with
//! two record counts and the same warm-up; the difference of the two totals over the
//! difference of the record counts is the cost of one more record, without the process's
//! start, the warm-up and the close. Under callgrind the client runs some 50 times slower
//! than natively, so batches fill differently than in the timed runs: read the figure as the
//! client's own work per record, not as a prediction of its records/s.
//!
//! Ours and rdkafka only: a JVM's JIT and Go's runtime under valgrind would count the
//! emulation's artefacts more than the clients' work. Each run's callgrind profile is kept
//! in `target/bench-peers/` (`callgrind_annotate <file>` shows where the instructions go).

use std::path::Path;
use std::process::{Command, Stdio};

use crate::client;
use crate::scenario::{Client, Mode};
use crate::sink::Sink;

/// One client's counts.
pub struct Count {
    /// (records, instructions) of the two runs.
    pub runs: [(u64, u64); 2],
}

impl Count {
    pub fn per_record(&self) -> f64 {
        let [(n1, i1), (n2, i2)] = self.runs;
        (i2 as f64 - i1 as f64) / (n2 - n1) as f64
    }
}

/// The record counts of the two runs in `mode` (none in the smoke mode).
pub fn sizes(mode: Mode) -> Option<[u64; 2]> {
    match mode {
        Mode::Full => Some([50_000, 150_000]),
        Mode::Quick => Some([20_000, 60_000]),
        Mode::Smoke => None,
    }
}

/// Whether valgrind can run here.
pub fn available() -> bool {
    Command::new("valgrind")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// Counts `client`'s instructions at both `sizes`; `partitions` of the sink's topic.
pub fn count(client: Client, sizes: [u64; 2], partitions: i32) -> Result<Count, String> {
    let mut runs = [(0, 0); 2];
    for (run, records) in runs.iter_mut().zip(sizes) {
        *run = (records, run_once(client, records, partitions)?);
    }
    Ok(Count { runs })
}

/// One child under callgrind on a fresh sink: its total instruction count.
fn run_once(client: Client, records: u64, partitions: i32) -> Result<u64, String> {
    let exe = std::env::current_exe().map_err(|e| format!("locating the bench binary: {e}"))?;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-peers");
    std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let profile = dir.join(format!("callgrind.{client}.{records}.out"));
    let sink = Sink::start(partitions).map_err(|e| format!("starting the sink: {e}"))?;
    let topic = format!("bench-instructions-{client}-{records}");
    let out = Command::new("valgrind")
        .arg("--tool=callgrind")
        .arg(format!("--callgrind-out-file={}", profile.display()))
        .arg(exe)
        .args([
            "--child",
            client.name(),
            "1",
            Mode::Quick.name(),
            "plaintext",
        ])
        .args([&sink.bootstrap(), &topic, client::NO_CA])
        .env(client::RECORDS_ENV, records.to_string())
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("running valgrind: {e}"))?;
    drop(sink);
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() {
        return Err(format!(
            "the child under callgrind exited with {}: {}",
            out.status,
            stderr.lines().rev().take(5).collect::<Vec<_>>().join(" | ")
        ));
    }
    // callgrind's summary: "==pid== Collected : 123456789"
    stderr
        .lines()
        .find_map(|line| {
            let (_, count) = line.split_once("Collected :")?;
            count.trim().parse().ok()
        })
        .ok_or_else(|| "no instruction count in callgrind's output".to_string())
}

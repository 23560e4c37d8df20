//! The delivery checker of the fault tests (issue 4): compares what producer threads sent,
//! what the producer acknowledged, and what an independent reader found in the log.
//!
//! Every record's value names its sender: [`encode`] writes `t{thread}-s{seq}-` padded to a
//! chosen size, and [`decode`] reads it back, so the checker needs nothing but the value to
//! know which send a log entry came from.
//!
//! A run over several topics keeps one [`Ledger`] per topic ([`TopicLedgers`]): each thread
//! numbers its sends to each topic on its own, so a value names its send together with the
//! topic it was read from, and [`check_topics`] checks each topic's log against its own
//! ledger ([`RunReport`]: a [`Report`] per topic and the totals).
//!
//! What is counted (per partition and in total, in [`Counts`]):
//! - **lost**: acknowledged, but not in the log;
//! - **duplicated**: every copy beyond the first of a record in the log;
//! - **reordered**: for each (thread, partition), a record whose sequence is lower than one
//!   before it in log order. Only first copies count: without idempotence a retried batch
//!   lands again after the original (`A A B`), which is a duplicate, not a reordering;
//! - **unexpected**: in the log, but never sent (or with a value that does not decode).
#![allow(dead_code)]

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Mutex;

use super::ReadRecord;

/// The value of record `seq` of producer thread `thread`, padded with `.` to `size` bytes
/// (never shorter than the id itself).
pub fn encode(thread: usize, seq: usize, size: usize) -> Vec<u8> {
    let mut value = format!("t{thread}-s{seq}-").into_bytes();
    if value.len() < size {
        value.resize(size, b'.');
    }
    value
}

/// The (thread, seq) of a value written by [`encode`], or `None` for any other value.
pub fn decode(value: &[u8]) -> Option<(usize, usize)> {
    let rest = value.strip_prefix(b"t")?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    let thread = std::str::from_utf8(&rest[..dash]).ok()?.parse().ok()?;
    let rest = rest[dash + 1..].strip_prefix(b"s")?;
    let dash = rest.iter().position(|&b| b == b'-')?;
    let seq = std::str::from_utf8(&rest[..dash]).ok()?.parse().ok()?;
    Some((thread, seq))
}

/// How a send completed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// The producer acknowledged the record.
    Acked,
    /// The producer completed the record with an error.
    Failed,
    /// No result arrived (a hang, if the producer was flushed or closed).
    Pending,
}

/// One send, as the sending thread saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sent {
    /// The sequence number written into the value.
    pub seq: usize,
    /// The partition the record went to, when known (from its metadata or the record).
    pub partition: Option<i32>,
    /// How the send completed.
    pub outcome: Outcome,
}

/// What every sender thread sent, filled in concurrently by the threads and callbacks.
#[derive(Debug)]
pub struct Ledger {
    threads: Vec<Mutex<Vec<Sent>>>,
}

impl Ledger {
    /// A ledger of `threads` threads sending `per_thread` records each, all still pending.
    pub fn new(threads: usize, per_thread: usize) -> Ledger {
        let pending = |seq| Sent {
            seq,
            partition: None,
            outcome: Outcome::Pending,
        };
        Ledger {
            threads: (0..threads)
                .map(|_| Mutex::new((0..per_thread).map(pending).collect()))
                .collect(),
        }
    }

    /// Adds a pending send to `thread` and returns its sequence number, for runs whose
    /// length is not known in advance (start them with `Ledger::new(threads, 0)`).
    pub fn push(&self, thread: usize) -> usize {
        let mut sends = self.threads[thread].lock().unwrap();
        let seq = sends.len();
        sends.push(Sent {
            seq,
            partition: None,
            outcome: Outcome::Pending,
        });
        seq
    }

    /// Records how send `seq` of `thread` completed, and where it went when known.
    pub fn complete(&self, thread: usize, seq: usize, partition: Option<i32>, outcome: Outcome) {
        let mut sends = self.threads[thread].lock().unwrap();
        let s = &mut sends[seq];
        s.partition = partition.or(s.partition);
        s.outcome = outcome;
    }

    /// The sends so far, per thread in send order.
    pub fn sends(&self) -> Vec<Vec<Sent>> {
        self.threads
            .iter()
            .map(|t| t.lock().unwrap().clone())
            .collect()
    }

    /// How many sends have no result yet.
    pub fn pending(&self) -> usize {
        self.count(Outcome::Pending)
    }

    /// How many sends completed with `outcome` (or are still pending).
    pub fn count(&self, outcome: Outcome) -> usize {
        self.threads
            .iter()
            .map(|t| {
                let sends = t.lock().unwrap();
                sends.iter().filter(|s| s.outcome == outcome).count()
            })
            .sum()
    }
}

/// The ledgers of a run over several topics: one [`Ledger`] per topic, each thread
/// numbering its sends to each topic from 0.
#[derive(Debug)]
pub struct TopicLedgers {
    topics: Vec<String>,
    ledgers: Vec<Ledger>,
}

impl TopicLedgers {
    /// Ledgers for `topics`, each of `threads` threads sending `per_thread` records to each
    /// topic (0 for open-ended runs that [`Ledger::push`] their sends).
    pub fn new(topics: &[String], threads: usize, per_thread: usize) -> TopicLedgers {
        TopicLedgers {
            topics: topics.to_vec(),
            ledgers: topics
                .iter()
                .map(|_| Ledger::new(threads, per_thread))
                .collect(),
        }
    }

    /// The topics, in index order.
    pub fn topics(&self) -> &[String] {
        &self.topics
    }

    /// The ledger of topic `index`.
    pub fn ledger(&self, index: usize) -> &Ledger {
        &self.ledgers[index]
    }

    /// How many sends of every topic have no result yet.
    pub fn pending(&self) -> usize {
        self.count(Outcome::Pending)
    }

    /// How many sends of every topic completed with `outcome`.
    pub fn count(&self, outcome: Outcome) -> usize {
        self.ledgers.iter().map(|l| l.count(outcome)).sum()
    }
}

/// The counts of one partition, or of the whole run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Records sent (by the partition they went to; unknown partitions count as -1).
    pub sent: usize,
    /// Records acknowledged.
    pub acked: usize,
    /// Records failed.
    pub failed: usize,
    /// Log entries read back (copies included).
    pub read_back: usize,
    /// Acknowledged records missing from the log.
    pub lost: usize,
    /// Copies beyond the first of a record in the log.
    pub duplicated: usize,
    /// First copies with a lower sequence than an earlier record of the same thread.
    pub reordered: usize,
    /// Log entries that match no send.
    pub unexpected: usize,
}

impl fmt::Display for Counts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "sent {}, acked {}, failed {}, read back {}, lost {}, duplicated {}, reordered {}",
            self.sent,
            self.acked,
            self.failed,
            self.read_back,
            self.lost,
            self.duplicated,
            self.reordered
        )?;
        if self.unexpected > 0 {
            write!(f, ", unexpected {}", self.unexpected)?;
        }
        Ok(())
    }
}

/// The checker's verdict: counts per partition (-1 for sends whose partition is unknown)
/// and in total.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Counts per partition.
    pub partitions: BTreeMap<i32, Counts>,
    /// Counts over the whole run.
    pub total: Counts,
}

impl Report {
    /// Prints one line per partition and the totals line, headed by `name`.
    pub fn print(&self, name: &str) {
        for (p, c) in &self.partitions {
            eprintln!("{name}: partition {p}: {c}");
        }
        eprintln!("{name}: {}", self.total);
    }
}

/// The checker's verdict on a run over several topics.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RunReport {
    /// Each topic's name and report, in topic index order.
    pub topics: Vec<(String, Report)>,
    /// Counts over every topic.
    pub total: Counts,
}

impl RunReport {
    /// Prints each topic's partitions and totals (topics named by index, `t0`, `t1`, …),
    /// then the totals line of the run, headed by `name`.
    pub fn print(&self, name: &str) {
        for (i, (topic, report)) in self.topics.iter().enumerate() {
            eprintln!("{name}: t{i} is topic {topic}");
            report.print(&format!("{name}: t{i}"));
        }
        eprintln!("{name}: TOTAL {}", self.total);
    }

    /// The report of topic `index`.
    pub fn topic(&self, index: usize) -> &Report {
        &self.topics[index].1
    }
}

/// Checks each topic's log (`reads[i]`, in (partition, offset) order) against its ledger.
pub fn check_topics(ledgers: &TopicLedgers, reads: &[Vec<ReadRecord>]) -> RunReport {
    assert_eq!(reads.len(), ledgers.topics.len(), "one log per topic");
    let mut run = RunReport::default();
    for ((topic, ledger), read) in ledgers.topics.iter().zip(&ledgers.ledgers).zip(reads) {
        let report = check(&ledger.sends(), read);
        add(&mut run.total, &report.total);
        run.topics.push((topic.clone(), report));
    }
    run
}

/// Checks `sent` (per thread, in send order) against `read` (the log, in (partition,
/// offset) order as [`super::read_back`] returns it).
pub fn check(sent: &[Vec<Sent>], read: &[ReadRecord]) -> Report {
    let mut report = Report::default();
    let mut by_id: HashMap<(usize, usize), &Sent> = HashMap::new();
    for (thread, sends) in sent.iter().enumerate() {
        for s in sends {
            by_id.insert((thread, s.seq), s);
            let c = report
                .partitions
                .entry(s.partition.unwrap_or(-1))
                .or_default();
            c.sent += 1;
            match s.outcome {
                Outcome::Acked => c.acked += 1,
                Outcome::Failed => c.failed += 1,
                Outcome::Pending => {}
            }
        }
    }
    let copies = count_log(&mut report, &by_id, read);
    for (&(thread, seq), s) in &by_id {
        if s.outcome == Outcome::Acked && !copies.contains_key(&(thread, seq)) {
            report
                .partitions
                .entry(s.partition.unwrap_or(-1))
                .or_default()
                .lost += 1;
        }
    }
    for c in report.partitions.values() {
        add(&mut report.total, c);
    }
    report
}

/// Counts read back, duplicated, reordered and unexpected entries of the log; returns how
/// many copies of each known record it holds.
fn count_log(
    report: &mut Report,
    by_id: &HashMap<(usize, usize), &Sent>,
    read: &[ReadRecord],
) -> HashMap<(usize, usize), usize> {
    let mut copies: HashMap<(usize, usize), usize> = HashMap::new();
    let mut highest: HashMap<(usize, i32), usize> = HashMap::new();
    for r in read {
        let c = report.partitions.entry(r.partition).or_default();
        c.read_back += 1;
        let id = r.value.as_deref().and_then(decode);
        let Some(id) = id.filter(|id| by_id.contains_key(id)) else {
            c.unexpected += 1;
            continue;
        };
        let n = copies.entry(id).or_default();
        *n += 1;
        if *n > 1 {
            c.duplicated += 1;
            continue;
        }
        let top = highest.entry((id.0, r.partition)).or_insert(id.1);
        if id.1 < *top {
            c.reordered += 1;
        }
        *top = (*top).max(id.1);
    }
    copies
}

fn add(total: &mut Counts, c: &Counts) {
    total.sent += c.sent;
    total.acked += c.acked;
    total.failed += c.failed;
    total.read_back += c.read_back;
    total.lost += c.lost;
    total.duplicated += c.duplicated;
    total.reordered += c.reordered;
    total.unexpected += c.unexpected;
}

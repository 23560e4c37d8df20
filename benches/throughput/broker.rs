//! The brokers the clients run against: a single-node Apache Kafka of our own (one for the
//! whole bench, started on first use: a JVM takes 5–10 s to start; every run gets a fresh
//! topic), an external cluster named by `KAFKA_BOOTSTRAP_SERVERS`, or the in-process
//! [`Sink`] (a fresh one for every run). Only the bench's own node serves the TLS
//! scenarios (its SASL_SSL listener, [`Broker::tls`]); only a real Kafka (own or external)
//! the transactional one, whose records are read back at read_committed
//! ([`Broker::count_committed`]).

use std::cell::OnceCell;
use std::future::Future;
use std::net::{TcpStream, ToSocketAddrs};
use std::path::Path;
use std::pin::pin;
use std::process::Command;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::RDKafkaErrorCode;
use rdkafka::{Offset, TopicPartitionList};

use crate::kafka::{Kafka, TlsListener};
use crate::procfs;
use crate::sink::{Capture, Sink, Stall};

/// Which kind of broker a run uses.
#[derive(Debug, Clone)]
pub enum Kind {
    /// The bench's own single-node Kafka ([`LocalKafka`]).
    Kafka,
    /// `KAFKA_BOOTSTRAP_SERVERS`: topics are created there; it cannot be stalled.
    External(String),
    /// The in-bench endpoint that acknowledges everything.
    Sink,
}

impl Kind {
    /// The name used in tables: `kafka`, `external` or `sink`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Kafka => "kafka",
            Kind::External(_) => "external",
            Kind::Sink => "sink",
        }
    }
}

/// The bench's Kafka node, started by the first run that needs it and stopped (its data
/// removed) when this is dropped at the end of the bench. A failed start is not retried:
/// every later run fails with the same error.
pub struct LocalKafka {
    node: OnceCell<Result<Kafka, String>>,
    /// Start the node with its SASL_SSL listener (a TLS scenario is selected).
    tls: bool,
}

impl LocalKafka {
    /// Not started yet; `tls`: with the SASL_SSL listener when it starts.
    pub fn new(tls: bool) -> LocalKafka {
        LocalKafka {
            node: OnceCell::new(),
            tls,
        }
    }

    /// The node, started now if no run started it yet.
    fn get(&self) -> Result<&Kafka, String> {
        let node = self.node.get_or_init(|| {
            let started = Instant::now();
            let kafka = Kafka::start(self.tls)?;
            let tls = kafka.tls().map_or(String::new(), |tls| {
                format!(
                    " and SASL_SSL (SCRAM-SHA-512) on {}, CA {}",
                    tls.bootstrap,
                    tls.ca_path.display()
                )
            });
            println!(
                "  (started a single-node Kafka, plaintext on {}{tls}, in {:.1} s; it serves \
                 every run)",
                kafka.bootstrap(),
                started.elapsed().as_secs_f64()
            );
            Ok(kafka)
        });
        node.as_ref().map_err(String::clone)
    }
}

/// A broker ready for one run.
pub enum Broker<'a> {
    Kafka(&'a Kafka),
    External(String),
    Sink(Sink),
}

/// A stalled broker, resumed on drop.
pub enum Stalled<'a> {
    /// SIGSTOPped; SIGCONT on drop.
    Process(u32),
    Sink(#[allow(dead_code)] Stall<'a>),
}

impl Drop for Stalled<'_> {
    fn drop(&mut self) {
        if let Stalled::Process(pid) = self {
            if let Err(e) = signal("-CONT", *pid) {
                eprintln!("RESUMING THE BROKER FAILED: {e}");
            }
        }
    }
}

impl<'a> Broker<'a> {
    /// The broker of `kind` for one run: the bench's Kafka node (started on first use), an
    /// external cluster, or a new sink.
    pub fn start(kind: &Kind, partitions: i32, kafka: &'a LocalKafka) -> Result<Self, String> {
        match kind {
            Kind::Kafka => kafka.get().map(Broker::Kafka),
            Kind::External(bootstrap) => Ok(Broker::External(bootstrap.clone())),
            Kind::Sink => Sink::start(partitions)
                .map(Broker::Sink)
                .map_err(|e| format!("starting the sink: {e}")),
        }
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Kafka(kafka) => kafka.bootstrap().to_string(),
            Broker::External(bootstrap) => bootstrap.clone(),
            Broker::Sink(sink) => sink.bootstrap(),
        }
    }

    /// The SASL_SSL listener: only the bench's own node has one, and only when a TLS
    /// scenario is selected.
    pub fn tls(&self) -> Option<&TlsListener> {
        match self {
            Broker::Kafka(kafka) => kafka.tls(),
            Broker::External(_) | Broker::Sink(_) => None,
        }
    }

    /// Creates `topic` (the sink has every topic already) and waits until its metadata
    /// shows every partition with a leader.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), String> {
        match self {
            Broker::Sink(_) => Ok(()),
            Broker::Kafka(_) | Broker::External(_) => {
                create_topic(&self.bootstrap(), topic, partitions)
            }
        }
    }

    /// Reads `topic` from the start of its `partitions` partitions with rdkafka's consumer
    /// at `isolation.level=read_committed` (records of aborted or open transactions, and
    /// the transaction markers, never show) and counts the records: until `expected`
    /// arrived and half a second more brings no other (so that extra records show too), or
    /// until `patience` passed. The sink keeps nothing to read.
    pub fn count_committed(
        &self,
        topic: &str,
        partitions: i32,
        expected: u64,
        patience: Duration,
    ) -> Result<u64, String> {
        if let Broker::Sink(_) = self {
            return Err("the sink keeps no records to read back".to_string());
        }
        let consumer: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", self.bootstrap())
            .set("group.id", format!("{topic}-read-back"))
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("isolation.level", "read_committed")
            .set("check.crcs", "true")
            .set("fetch.wait.max.ms", "50")
            .create()
            .map_err(|e| format!("creating the read_committed consumer: {e}"))?;
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment
                .add_partition_offset(topic, p, Offset::Beginning)
                .map_err(|e| format!("assigning {topic}/{p}: {e}"))?;
        }
        consumer
            .assign(&assignment)
            .map_err(|e| format!("assigning {topic}: {e}"))?;
        let quiet = Duration::from_millis(500);
        let deadline = Instant::now() + patience;
        let (mut count, mut last_new) = (0u64, Instant::now());
        loop {
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(_)) => {
                    count += 1;
                    last_new = Instant::now();
                }
                Some(Err(e)) => return Err(format!("reading {topic} at read_committed: {e}")),
                None => {}
            }
            if (count >= expected && last_new.elapsed() >= quiet) || Instant::now() >= deadline {
                return Ok(count);
            }
        }
    }

    /// The broker's CPU time so far in clock ticks: the Kafka JVM, or (sink) this whole
    /// process, whose other threads are idle while a child runs. None for an external one.
    pub fn cpu_ticks(&self) -> Option<u64> {
        let pid = match self {
            Broker::Kafka(kafka) => kafka.pid().to_string(),
            Broker::Sink(_) => "self".to_string(),
            Broker::External(_) => return None,
        };
        procfs::cpu_ticks(&pid).ok()
    }

    /// The sink only: captures the Produce requests that arrive from now on into files in
    /// `dir` (the wire-limit scenario; see [`Sink::capture`]).
    pub fn capture(&self, dir: &Path) -> Result<(), String> {
        match self {
            Broker::Sink(sink) => sink
                .capture(dir)
                .map_err(|e| format!("starting the sink's capture: {e}")),
            Broker::Kafka(_) | Broker::External(_) => {
                Err("only the sink captures requests".to_string())
            }
        }
    }

    /// The sink only: stops capturing and returns each connection's capture.
    pub fn end_capture(&self) -> Result<Vec<Capture>, String> {
        match self {
            Broker::Sink(sink) => sink
                .end_capture()
                .map_err(|e| format!("the sink's capture: {e}")),
            Broker::Kafka(_) | Broker::External(_) => {
                Err("only the sink captures requests".to_string())
            }
        }
    }

    /// Stops the broker answering: SIGSTOP for the Kafka JVM, a stall for the sink. An
    /// external cluster cannot be stalled.
    pub fn stall(&self) -> Result<Stalled<'_>, String> {
        match self {
            Broker::Kafka(kafka) => {
                let pid = kafka.pid();
                signal("-STOP", pid)?;
                Ok(Stalled::Process(pid))
            }
            Broker::Sink(sink) => Ok(Stalled::Sink(sink.stall())),
            Broker::External(_) => Err("an external cluster cannot be stalled".to_string()),
        }
    }
}

/// Fails unless one of the comma-separated `host:port` servers accepts a TCP connection
/// within 5 s: an unreachable cluster is a configuration error, not a slow run.
pub fn check_reachable(servers: &str) -> Result<(), String> {
    let mut errors = Vec::new();
    for server in servers.split(',').map(str::trim) {
        let addrs = match server.to_socket_addrs() {
            Ok(addrs) => addrs,
            Err(e) => {
                errors.push(format!("{server}: {e}"));
                continue;
            }
        };
        for addr in addrs {
            match TcpStream::connect_timeout(&addr, Duration::from_secs(5)) {
                Ok(_) => return Ok(()),
                Err(e) => errors.push(format!("{addr}: {e}")),
            }
        }
    }
    Err(format!(
        "KAFKA_BOOTSTRAP_SERVERS={servers}: no server reachable ({})",
        errors.join("; ")
    ))
}

/// `kill SIG PID`, as the tests do (no libc needed).
fn signal(sig: &str, pid: u32) -> Result<(), String> {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .map_err(|e| format!("running kill {sig} {pid}: {e}"))?;
    if status.success() {
        Ok(())
    } else {
        Err(format!("kill {sig} {pid} failed: {status}"))
    }
}

/// Creates `topic` with CreateTopics (rdkafka's admin client), then waits until metadata
/// shows all its partitions with a leader (after a stalled run, Kafka may take a moment to
/// lead again).
fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("creating an admin client: {e}"))?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    // A fresh node may take longer than a minute to set up thousands of partitions: the
    // admin client may then retry, and its retry finds the topic it created.
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(60)));
    let results = block_on(
        admin.create_topics([&new_topic], &options),
        Duration::from_secs(90),
    )
    .ok_or_else(|| format!("creating topic {topic}: no answer within 90 s"))?
    .map_err(|e| format!("creating topic {topic}: {e}"))?;
    for result in results {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => return Err(format!("creating topic {name}: {code}")),
        }
    }
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let seen = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|md| {
                md.topics()
                    .iter()
                    .find(|t| t.name() == topic && t.error().is_none())
                    .map(|t| t.partitions().iter().filter(|p| p.leader() >= 0).count())
            })
            .unwrap_or(0);
        if seen >= partitions as usize {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "topic {topic}: metadata shows {seen} of {partitions} partitions led after 90 s"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Runs a future to completion on this thread (the admin client's futures are completed by
/// librdkafka's threads); `None` after `timeout`.
fn block_on<F: Future>(future: F, timeout: Duration) -> Option<F::Output> {
    struct Unpark(Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut context = Context::from_waker(&waker);
    let mut future = pin!(future);
    let deadline = Instant::now() + timeout;
    loop {
        if let Poll::Ready(output) = future.as_mut().poll(&mut context) {
            return Some(output);
        }
        let now = Instant::now();
        if now >= deadline {
            return None;
        }
        std::thread::park_timeout(deadline - now);
    }
}

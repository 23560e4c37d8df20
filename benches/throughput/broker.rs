//! The brokers the clients run against: a tansu process of our own (a fresh one for every
//! run, so that each run starts from an empty broker), an external cluster named by
//! `KAFKA_BOOTSTRAP_SERVERS`, or the in-process [`Sink`].

use std::future::Future;
use std::net::{TcpListener, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::pin::pin;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::Thread;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;

use crate::procfs;
use crate::sink::{Sink, Stall};

/// Which kind of broker a run uses.
#[derive(Debug, Clone)]
pub enum Kind {
    /// A tansu 0.6 process started for the run, memory storage.
    Tansu,
    /// `KAFKA_BOOTSTRAP_SERVERS`: topics are created there; it cannot be stalled.
    External(String),
    /// The in-bench endpoint that acknowledges everything.
    Sink,
}

impl Kind {
    /// The name used in tables: `tansu`, `external` or `sink`.
    pub fn name(&self) -> &'static str {
        match self {
            Kind::Tansu => "tansu",
            Kind::External(_) => "external",
            Kind::Sink => "sink",
        }
    }
}

/// A broker ready for one run.
pub enum Broker {
    Tansu(Tansu),
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

impl Broker {
    /// Starts (or, for an external cluster, names) a broker of `kind`.
    pub fn start(kind: &Kind, partitions: i32) -> Result<Broker, String> {
        match kind {
            Kind::Tansu => Tansu::start().map(Broker::Tansu),
            Kind::External(bootstrap) => Ok(Broker::External(bootstrap.clone())),
            Kind::Sink => Sink::start(partitions)
                .map(Broker::Sink)
                .map_err(|e| format!("starting the sink: {e}")),
        }
    }

    pub fn bootstrap(&self) -> String {
        match self {
            Broker::Tansu(tansu) => tansu.bootstrap.clone(),
            Broker::External(bootstrap) => bootstrap.clone(),
            Broker::Sink(sink) => sink.bootstrap(),
        }
    }

    /// Creates `topic` (the sink has every topic already) and waits until its metadata
    /// shows every partition.
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), String> {
        match self {
            Broker::Sink(_) => Ok(()),
            Broker::Tansu(_) | Broker::External(_) => {
                create_topic(&self.bootstrap(), topic, partitions)
            }
        }
    }

    /// The broker's CPU time so far in clock ticks: tansu's process, or (sink) this whole
    /// process, whose other threads are idle while a child runs. None for an external one.
    pub fn cpu_ticks(&self) -> Option<u64> {
        let pid = match self {
            Broker::Tansu(tansu) => tansu.child.id().to_string(),
            Broker::Sink(_) => "self".to_string(),
            Broker::External(_) => return None,
        };
        procfs::cpu_ticks(&pid).ok()
    }

    /// Stops the broker answering: SIGSTOP for tansu, a stall for the sink. An external
    /// cluster cannot be stalled.
    pub fn stall(&self) -> Result<Stalled<'_>, String> {
        match self {
            Broker::Tansu(tansu) => {
                let pid = tansu.child.id();
                signal("-STOP", pid)?;
                Ok(Stalled::Process(pid))
            }
            Broker::Sink(sink) => Ok(Stalled::Sink(sink.stall())),
            Broker::External(_) => Err("an external cluster cannot be stalled".to_string()),
        }
    }
}

/// A tansu broker process on a free loopback port with memory storage; killed on drop.
pub struct Tansu {
    child: Child,
    bootstrap: String,
}

impl Tansu {
    /// Starts a broker and waits until it accepts connections (three tries on new ports, in
    /// case another process takes the port between our probe and tansu's bind).
    fn start() -> Result<Tansu, String> {
        let bin = tansu_binary()?;
        let mut last_error = String::new();
        for _attempt in 0..3 {
            let port = free_port()?;
            let url = format!("tcp://127.0.0.1:{port}");
            let child = Command::new(&bin)
                .args(["broker", "--listener-url", &url])
                .args(["--advertised-listener-url", &url])
                .args(["--storage-engine", "memory://tansu/"])
                .env("RUST_LOG", "error")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .map_err(|e| format!("starting {}: {e}", bin.display()))?;
            let mut tansu = Tansu {
                child,
                bootstrap: format!("127.0.0.1:{port}"),
            };
            match tansu.wait_listening(Duration::from_secs(30)) {
                Ok(()) => return Ok(tansu),
                Err(e) => last_error = e,
            }
        }
        Err(format!("tansu did not start: {last_error}"))
    }

    fn wait_listening(&mut self, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        let addr = self.bootstrap.parse().map_err(|e| format!("{e}"))?;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("tansu exited at start: {status}"));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(format!(
            "tansu not listening on {} within {timeout:?}",
            self.bootstrap
        ))
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        // SIGKILL also ends a stopped process.
        let _ = self.child.kill();
        let _ = self.child.wait();
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

/// `$TANSU`, else `tansu` on PATH, else `~/.cargo/bin/tansu`.
fn tansu_binary() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("TANSU") {
        return Ok(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join("tansu"))
            .find(|p| p.is_file())
    });
    let cargo_bin = std::env::var_os("HOME")
        .map(|home| PathBuf::from(home).join(".cargo/bin/tansu"))
        .filter(|p| p.is_file());
    on_path.or(cargo_bin).ok_or_else(|| {
        "the tansu broker is not installed: run scripts/test, or cargo install tansu --locked \
         --version 0.6.0 --features dynostore,libsql (or set KAFKA_BOOTSTRAP_SERVERS)"
            .to_string()
    })
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
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

/// Creates `topic` with CreateTopics (rdkafka's admin client, which tansu and Kafka both
/// serve), then waits until metadata shows all its partitions.
fn create_topic(bootstrap: &str, topic: &str, partitions: i32) -> Result<(), String> {
    let admin: AdminClient<DefaultClientContext> = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .map_err(|e| format!("creating an admin client: {e}"))?;
    let new_topic = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(20)));
    let results = block_on(
        admin.create_topics([&new_topic], &options),
        Duration::from_secs(30),
    )
    .ok_or_else(|| format!("creating topic {topic}: no answer within 30 s"))?
    .map_err(|e| format!("creating topic {topic}: {e}"))?;
    for result in results {
        result.map_err(|(name, code)| format!("creating topic {name}: {code}"))?;
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let seen = admin
            .inner()
            .fetch_metadata(Some(topic), Duration::from_secs(5))
            .ok()
            .and_then(|md| {
                md.topics()
                    .iter()
                    .find(|t| t.name() == topic && t.error().is_none())
                    .map(|t| t.partitions().len())
            })
            .unwrap_or(0);
        if seen >= partitions as usize {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(format!(
                "topic {topic}: metadata shows {seen} of {partitions} partitions after 30 s"
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

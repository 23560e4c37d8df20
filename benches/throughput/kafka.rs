//! The bench's own Apache Kafka: one node (KRaft, broker and controller in one JVM) from
//! the jars `scripts/kafka fetch` copies out of Maven Central, started as
//! `tests/common/kafka.rs` starts the test bed's nodes, and kept for the whole bench.
//!
//! When a TLS scenario is selected, the node gets a second client listener, `SASL_SSL`
//! with SCRAM-SHA-512 only (as `tests/common/secure.rs` configures its own): the broker
//! certificate of [`BenchCerts`] given inline as a PEM keystore, and the SCRAM user of
//! [`scenario::SCRAM_USER`] created when the storage is formatted. The plaintext listener
//! stays as it is (the other scenarios, topic creation, readiness); without a TLS scenario
//! the node is configured exactly as before.
//!
//! The JVM is started by a small `sh` wrapper whose stdin is a pipe from this process. The
//! wrapper prints the JVM's pid, then waits on that pipe; when the pipe closes (this
//! [`Kafka`] is dropped, or the bench process exits in any way: panic, abort, SIGKILL), the
//! wrapper kills that JVM, and only it, and removes the node's directory. The JVM carries
//! `-Dkafka_producer.bench=<its directory>`, so `pgrep -f kafka_producer.bench` finds any
//! that escaped.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

use kafka_producer::net::{BlockingClient, ConnectionConfig};

use crate::certs::BenchCerts;
use crate::procfs;
use crate::scenario;

/// The JVM system property that marks the bench's broker.
const MARKER_PROPERTY: &str = "kafka_producer.bench";
/// The broker's heap (the test bed's).
const HEAP: &str = "-Xmx512m";
/// Any valid cluster id will do: every bench formats a fresh directory. (A fixed one saves
/// the JVM start of `StorageTool random-uuid`.)
const CLUSTER_ID: &str = "tLzjYcjXSrWhLseSGQPegQ";
/// How long the node may take to answer ApiVersions (a JVM on a busy 2-core machine).
const START_TIMEOUT: Duration = Duration::from_secs(90);

/// Starts the JVM in the background with its output appended to the log, prints its pid,
/// waits for a line or the end of its own stdin, then kills and reaps the JVM and removes
/// the node's directory.
const WRAPPER: &str = r#"log=$1; dir=$2; shift 2
"$@" </dev/null >>"$log" 2>&1 &
jvm=$!
echo "$jvm"
read -r _
kill -KILL "$jvm" 2>/dev/null
wait "$jvm" 2>/dev/null
rm -rf "$dir"
"#;

/// The name of the TLS listener (and its prefix `listener.name.sasl_ssl.` in properties).
const TLS_LISTENER: &str = "SASL_SSL";

/// A running single-node Kafka; stopped, and its data removed, on drop.
pub struct Kafka {
    /// The `sh` wrapper; its stdin below is the pipe that keeps the JVM alive.
    wrapper: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
    bootstrap: String,
    dir: PathBuf,
    tls: Option<TlsListener>,
}

/// The node's SASL_SSL listener, when it has one.
#[derive(Debug, Clone)]
pub struct TlsListener {
    /// `127.0.0.1:port` of the SASL_SSL listener.
    pub bootstrap: String,
    /// The bench CA's certificate (PEM) in the node's directory: the clients' only trust.
    pub ca_path: PathBuf,
}

impl Kafka {
    /// Fetches the distribution (once per checkout), formats a fresh node and starts it;
    /// returns once it answers ApiVersions. Tries three times, on new ports, in case another
    /// process takes a port between the probe and the bind. With `tls`, the node also has
    /// the SASL_SSL listener (see the module docs), with certificates made now.
    pub fn start(tls: bool) -> Result<Kafka, String> {
        let dist = fetch()?;
        let certs = tls.then(BenchCerts::generate).transpose()?;
        let mut last_error = String::new();
        for _attempt in 0..3 {
            match Kafka::try_start(&dist, certs.as_ref()) {
                Ok(kafka) => return Ok(kafka),
                Err(e) => last_error = e,
            }
        }
        Err(format!("Kafka did not start: {last_error}"))
    }

    fn try_start(dist: &Path, certs: Option<&BenchCerts>) -> Result<Kafka, String> {
        let (port, controller_port) = (free_port()?, free_port()?);
        let tls = match certs {
            Some(certs) => Some((free_port()?, certs)),
            None => None,
        };
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let name = format!("kafka-producer-bench-{}-{nanos}", std::process::id());
        let dir = std::env::temp_dir().join(&name);
        std::fs::create_dir_all(&dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
        let config = dir.join("server.properties");
        let ca_path = dir.join("ca.pem");
        let written = std::fs::write(&config, properties(port, controller_port, &dir, tls))
            .map_err(|e| format!("writing {}: {e}", config.display()))
            .and_then(|()| match certs {
                Some(certs) => std::fs::write(&ca_path, &certs.ca_pem)
                    .map_err(|e| format!("writing {}: {e}", ca_path.display())),
                None => Ok(()),
            });
        if let Err(e) = written {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(e);
        }
        let mut format = java(dist);
        format
            .arg("kafka.tools.StorageTool")
            .args(["format", "-t", CLUSTER_ID, "-c"])
            .arg(&config);
        if certs.is_some() {
            format.arg("--add-scram").arg(format!(
                "{}=[name={},password={}]",
                scenario::SCRAM_MECHANISM,
                scenario::SCRAM_USER,
                scenario::SCRAM_PASSWORD
            ));
        }
        let format = format
            .output()
            .map_err(|e| format!("running Kafka's StorageTool (is java installed?): {e}"))?;
        if !format.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            return Err(format!(
                "formatting {}: {}\n{}",
                dir.display(),
                format.status,
                String::from_utf8_lossy(&format.stderr)
            ));
        }
        let mut command = vec![
            "java".to_string(),
            HEAP.to_string(),
            format!("-D{MARKER_PROPERTY}={name}"),
        ];
        command.extend(
            java(dist)
                .get_args()
                .map(|a| a.to_string_lossy().into_owned()),
        );
        command.push("kafka.Kafka".to_string());
        command.push(config.display().to_string());
        let mut kafka = spawn(&command, &dir)?;
        kafka.bootstrap = format!("127.0.0.1:{port}");
        kafka.tls = tls.map(|(tls_port, _)| TlsListener {
            bootstrap: format!("127.0.0.1:{tls_port}"),
            ca_path,
        });
        kafka.wait_ready(START_TIMEOUT)?;
        Ok(kafka)
    }

    /// Waits until the node answers ApiVersions (the handshake of `BlockingClient`).
    fn wait_ready(&self, timeout: Duration) -> Result<(), String> {
        let config = ConnectionConfig {
            setup_timeout: Duration::from_secs(2),
            ..ConnectionConfig::default()
        };
        let deadline = Instant::now() + timeout;
        loop {
            if !procfs::is_alive(self.pid) {
                return Err(format!(
                    "the JVM exited while starting:\n{}",
                    self.log_tail()
                ));
            }
            if BlockingClient::connect(&self.bootstrap, &config).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "no answer on {} within {timeout:?}:\n{}",
                    self.bootstrap,
                    self.log_tail()
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// `127.0.0.1:port`.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// The SASL_SSL listener, if the node was started with one.
    pub fn tls(&self) -> Option<&TlsListener> {
        self.tls.as_ref()
    }

    /// The JVM's pid (its CPU time; SIGSTOP and SIGCONT for the stalled scenario).
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The last lines of the node's log (its stdout and stderr: warnings and errors).
    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.dir.join("broker.log")).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }
}

impl Drop for Kafka {
    fn drop(&mut self) {
        // The end of its stdin makes the wrapper kill the JVM (also a stopped one) and
        // remove the directory.
        drop(self.stdin.take());
        let _ = self.wrapper.wait();
    }
}

/// Starts `command` under the wrapper, logging into `dir`; reads the JVM's pid.
fn spawn(command: &[String], dir: &Path) -> Result<Kafka, String> {
    let mut wrapper = Command::new("sh")
        .arg("-c")
        .arg(WRAPPER)
        .arg("kafka-bench")
        .arg(dir.join("broker.log"))
        .arg(dir)
        .args(command)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .map_err(|e| format!("starting the JVM's wrapper (sh): {e}"))?;
    let (stdin, stdout) = (wrapper.stdin.take(), wrapper.stdout.take());
    // From here on an error drops `kafka`, which ends the wrapper (and the JVM, if any).
    let mut kafka = Kafka {
        wrapper,
        stdin,
        pid: 0,
        bootstrap: String::new(),
        dir: dir.to_path_buf(),
        tls: None,
    };
    let mut line = String::new();
    BufReader::new(stdout.ok_or("the wrapper has no stdout")?)
        .read_line(&mut line)
        .map_err(|e| format!("reading the JVM's pid: {e}"))?;
    kafka.pid = line
        .trim()
        .parse()
        .map_err(|_| format!("the wrapper printed {line:?}, not a pid"))?;
    Ok(kafka)
}

/// `scripts/kafka fetch`: the distribution's directory (`target/kafka/<version>`), fetched
/// on first use (`KAFKA_VERSION` picks the version, as for the tests).
pub fn fetch() -> Result<PathBuf, String> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("scripts/kafka");
    let out = Command::new(&script)
        .arg("fetch")
        .stderr(Stdio::inherit())
        .output()
        .map_err(|e| {
            format!(
                "running {} (needs bash, java and mvn): {e}",
                script.display()
            )
        })?;
    if !out.status.success() {
        return Err(format!("{} fetch failed: {}", script.display(), out.status));
    }
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// `java` with the distribution's jars on the class path and the test bed's quiet logging.
fn java(dist: &Path) -> Command {
    let mut java = Command::new("java");
    java.arg(format!(
        "-Dlog4j2.configurationFile={}",
        dist.join("log4j2.properties").display()
    ))
    .arg("-cp")
    .arg(dist.join("libs/*"));
    java
}

/// The test bed's single-node properties (`tests/common/kafka.rs`): combined mode, topic
/// auto-creation off, replication factor 1, fewer threads than a production broker. With
/// `tls` (its port and the certificates), also the SASL_SSL listener.
fn properties(
    port: u16,
    controller_port: u16,
    dir: &Path,
    tls: Option<(u16, &BenchCerts)>,
) -> String {
    let mut properties = vec![
        ("process.roles", "broker,controller".to_string()),
        ("node.id", "1".to_string()),
        (
            "controller.quorum.voters",
            format!("1@127.0.0.1:{controller_port}"),
        ),
        (
            "listeners",
            format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}"),
        ),
        (
            "advertised.listeners",
            format!("PLAINTEXT://127.0.0.1:{port}"),
        ),
        ("controller.listener.names", "CONTROLLER".to_string()),
        ("inter.broker.listener.name", "PLAINTEXT".to_string()),
        (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_string(),
        ),
        ("log.dirs", dir.join("data").display().to_string()),
        ("auto.create.topics.enable", "false".to_string()),
        ("num.partitions", "1".to_string()),
        ("default.replication.factor", "1".to_string()),
        ("min.insync.replicas", "1".to_string()),
        ("offsets.topic.replication.factor", "1".to_string()),
        ("offsets.topic.num.partitions", "3".to_string()),
        ("transaction.state.log.replication.factor", "1".to_string()),
        ("transaction.state.log.min.isr", "1".to_string()),
        ("transaction.state.log.num.partitions", "3".to_string()),
        ("group.initial.rebalance.delay.ms", "0".to_string()),
        ("num.network.threads", "2".to_string()),
        ("num.io.threads", "4".to_string()),
        ("num.recovery.threads.per.data.dir", "1".to_string()),
        ("log.cleaner.enable", "false".to_string()),
        // Each partition's active segment preallocates its offset and time indexes at this
        // size and memory-maps them. The first touch of a page faults, and the kernel reads
        // ahead around it: with this machine's 8 MiB read-ahead, 16 MiB of zeroed page cache
        // per partition at the default 10 MiB. Thousands of partitions then cost the node
        // minutes of CPU, paid by whichever client writes first. 64 KiB holds 8,192 entries
        // (a segment of about 32 MiB at the default index interval), far more than a run
        // writes to one partition.
        ("log.index.size.max.bytes", "65536".to_string()),
    ];
    if let Some((tls_port, certs)) = tls {
        let listener = format!("{TLS_LISTENER}://127.0.0.1:{tls_port}");
        for (key, value) in properties.iter_mut() {
            match *key {
                "listeners" | "advertised.listeners" => *value += &format!(",{listener}"),
                "listener.security.protocol.map" => *value += &format!(",{TLS_LISTENER}:SASL_SSL"),
                _ => {}
            }
        }
        properties.extend([
            (
                "sasl.enabled.mechanisms",
                scenario::SCRAM_MECHANISM.to_string(),
            ),
            (
                // listener.name.<listener>.<mechanism>.sasl.jaas.config: SCRAM needs no
                // options; the users are in the metadata log (`--add-scram` at format time).
                "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config",
                "org.apache.kafka.common.security.scram.ScramLoginModule required;".to_string(),
            ),
            // The broker certificate given inline as PEM (a PEM key file would need an
            // encrypted key and `ssl.key.password`).
            ("ssl.keystore.type", "PEM".to_string()),
            (
                "ssl.keystore.certificate.chain",
                certs.broker_chain_pem.clone(),
            ),
            ("ssl.keystore.key", certs.broker_key_pem.clone()),
        ]);
    }
    properties
        .iter()
        .map(|(k, v)| format!("{k}={}\n", escape_property(v)))
        .collect()
}

/// `value` escaped for a Java properties file, so that a multi-line value (an inline PEM
/// certificate or key) stays one property.
fn escape_property(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('\n', "\\n")
        .replace('\r', "\\r")
}

fn free_port() -> Result<u16, String> {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("finding a free port: {e}"))
}

//! The real-Kafka test bed: Apache Kafka brokers (KRaft, combined broker and controller)
//! started by the tests themselves as plain JVM processes, from the jars that
//! `scripts/kafka fetch` copies out of Maven Central.
//!
//! - [`KafkaCluster::single`]: one node; the internal topics have replication factor 1, so
//!   groups and transactions work on it. [`shared`] is one per test binary.
//! - [`KafkaCluster::three_nodes`]: three nodes, topics with replication factor 3 and
//!   `min.insync.replicas=2`; a node can be killed (SIGKILL), stopped (SIGTERM: controlled
//!   shutdown), frozen (SIGSTOP) and restarted on the same ports and data.
//! - Topics are created, grown and deleted through the Admin protocol (librdkafka's admin
//!   client), with auto-creation off; reassignments and leader elections through Kafka's
//!   own tools ([`KafkaCluster::tool`]).
//! - [`java_read`] reads a topic with the Java consumer, [`java_partitions`] sends keys with
//!   the Java producer (both small programs in `testbed/java/`, compiled by the fetch).
//! - [`ClusterOptions`] adds listeners (each on its own free port, e.g. TLS and SASL ones;
//!   see `secure.rs`), storage-format arguments (SCRAM users) and local JMX to a cluster;
//!   PLAINTEXT stays the inter-broker, admin and readiness listener.
//!
//! # Processes and clean-up
//!
//! Each JVM is started by a small `sh` wrapper whose stdin is a pipe from the test process.
//! The wrapper prints the JVM's pid, then waits on that pipe. When the test process exits
//! in any way (success, panic, abort, SIGKILL), the pipe closes, and the wrapper kills the
//! JVM, reaps it and removes the node's directory. So no broker outlives its test binary,
//! also for brokers kept in statics (which Rust never drops). A deliberate kill or stop
//! writes `keep` to the pipe instead: the wrapper reaps the JVM and leaves the data for a
//! restart. Until the wrapper reaps it, an exited JVM stays a zombie, so its pid is never
//! reused by another process while a test may still signal it: every signal goes only to a
//! pid this test bed started. Every JVM carries `-Dkafka_producer.testbed=<marker>` (see
//! [`MARKER_PROPERTY`]), so `pgrep -f kafka_producer.testbed` finds any that escaped.
#![allow(dead_code)]

use std::collections::HashMap;
use std::fmt;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

use kafka_producer::net::{BlockingClient, ConnectionConfig};
use kafka_producer::protocol::metadata::{MetadataRequest, MetadataResponse};
use rdkafka::admin::{AdminClient, AdminOptions, NewPartitions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::ClientConfig;

use super::ReadRecord;

/// The JVM system property that marks every test-bed process (`pgrep -f` finds them).
pub const MARKER_PROPERTY: &str = "kafka_producer.testbed";

/// Heap of one broker.
const HEAP: &str = "-Xmx512m";

/// A fetched Kafka distribution: `target/kafka/<version>` with `libs/` and `classes/`.
#[derive(Debug)]
pub struct Distribution {
    /// The Kafka version.
    pub version: String,
    dir: PathBuf,
}

impl Distribution {
    /// The directory of its jars.
    pub fn libs(&self) -> PathBuf {
        self.dir.join("libs")
    }

    /// `java` with this distribution's jars (and the test bed's Java tools) on the class
    /// path and the test bed's quiet logging.
    pub fn java(&self) -> Command {
        let mut cmd = Command::new("java");
        cmd.arg(format!(
            "-Dlog4j2.configurationFile={}",
            self.dir.join("log4j2.properties").display()
        ))
        .arg("-cp")
        .arg(format!(
            "{}:{}",
            self.dir.join("classes").display(),
            self.dir.join("libs/*").display()
        ));
        cmd
    }
}

/// The distribution of `KAFKA_VERSION` (else the pinned default), fetched on first use.
pub fn distribution() -> &'static Distribution {
    let version = std::env::var("KAFKA_VERSION").unwrap_or_default();
    distribution_of(&version)
}

/// The distribution of `version` (empty: the default), fetched on first use with
/// `scripts/kafka fetch`.
pub fn distribution_of(version: &str) -> &'static Distribution {
    static FETCHED: OnceLock<Mutex<HashMap<String, &'static Distribution>>> = OnceLock::new();
    let mut fetched = FETCHED
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|e| e.into_inner());
    if let Some(d) = fetched.get(version) {
        return d;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut cmd = Command::new(root.join("scripts/kafka"));
    cmd.arg("fetch");
    if !version.is_empty() {
        cmd.arg(version);
    }
    let out = cmd
        .stderr(Stdio::inherit())
        .output()
        .expect("run scripts/kafka fetch (needs bash, java and mvn)");
    assert!(
        out.status.success(),
        "scripts/kafka fetch {version} failed: {}",
        out.status
    );
    let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let resolved = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let d: &'static Distribution = Box::leak(Box::new(Distribution {
        version: resolved.clone(),
        dir,
    }));
    fetched.insert(resolved, d);
    fetched.insert(version.to_owned(), d);
    d
}

/// How a test-bed cluster is made.
#[derive(Debug, Clone)]
pub struct ClusterOptions {
    /// Number of nodes (each broker and controller).
    pub nodes: usize,
    /// Kafka version (empty: `KAFKA_VERSION` or the pinned default).
    pub version: String,
    /// Broker properties added to (or replacing) the defaults.
    pub broker_properties: Vec<(String, String)>,
    /// Listeners beyond PLAINTEXT and CONTROLLER: (name, security protocol), each on its own
    /// free loopback port per node, advertised as `127.0.0.1:<port>`.
    pub listeners: Vec<(String, String)>,
    /// Extra arguments to `StorageTool format` (e.g. `--add-scram ...`).
    pub format_args: Vec<String>,
    /// Whether each node serves local JMX (no authentication, no TLS, bound to 127.0.0.1)
    /// on a free port ([`KafkaCluster::jmx_address`]).
    pub jmx: bool,
}

impl ClusterOptions {
    /// `nodes` nodes of the default version with the default properties.
    pub fn nodes(nodes: usize) -> ClusterOptions {
        ClusterOptions {
            nodes,
            version: std::env::var("KAFKA_VERSION").unwrap_or_default(),
            broker_properties: Vec::new(),
            listeners: Vec::new(),
            format_args: Vec::new(),
            jmx: false,
        }
    }

    /// Adds (or replaces) one broker property on every node.
    pub fn property(mut self, name: &str, value: &str) -> ClusterOptions {
        self.broker_properties
            .push((name.to_owned(), value.to_owned()));
        self
    }

    /// Uses Kafka `version`.
    pub fn version(mut self, version: &str) -> ClusterOptions {
        self.version = version.to_owned();
        self
    }

    /// Adds a listener `name` (upper case, e.g. `SASL_SSL` or `MTLS`) speaking security
    /// `protocol` (`PLAINTEXT`, `SSL`, `SASL_PLAINTEXT` or `SASL_SSL`) on a free port of
    /// every node; it joins `listeners`, `advertised.listeners` and
    /// `listener.security.protocol.map`. Its own settings go in as properties, e.g.
    /// `listener.name.<name in lower case>.ssl.client.auth`.
    pub fn listener(mut self, name: &str, protocol: &str) -> ClusterOptions {
        self.listeners.push((name.to_owned(), protocol.to_owned()));
        self
    }

    /// Adds arguments to the storage format of every node (e.g. `--add-scram` and its
    /// value, as two arguments).
    pub fn format_args(mut self, args: &[&str]) -> ClusterOptions {
        self.format_args
            .extend(args.iter().map(|a| (*a).to_owned()));
        self
    }

    /// Serves local JMX from every node (see [`ClusterOptions::jmx`]).
    pub fn jmx(mut self) -> ClusterOptions {
        self.jmx = true;
        self
    }
}

/// A Kafka cluster of the test bed; every node is stopped and its data removed on drop.
pub struct KafkaCluster {
    dist: &'static Distribution,
    root: PathBuf,
    nodes: Vec<Node>,
    bootstrap: String,
}

impl fmt::Debug for KafkaCluster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaCluster")
            .field("version", &self.dist.version)
            .field("bootstrap", &self.bootstrap)
            .field("nodes", &self.nodes.len())
            .finish()
    }
}

/// One node: its ports, directory and (while it runs) its process.
#[derive(Debug)]
struct Node {
    id: i32,
    port: u16,
    /// The extra listeners' (name, port).
    listeners: Vec<(String, u16)>,
    jmx_port: Option<u16>,
    dir: PathBuf,
    process: Option<Jvm>,
}

/// A running JVM and its wrapper (see the module docs).
#[derive(Debug)]
struct Jvm {
    wrapper: Child,
    stdin: Option<ChildStdin>,
    pid: u32,
}

impl KafkaCluster {
    /// A single node of the default version.
    pub fn single() -> KafkaCluster {
        KafkaCluster::start(ClusterOptions::nodes(1))
    }

    /// Three nodes of the default version: replication factor 3, `min.insync.replicas=2`.
    pub fn three_nodes() -> KafkaCluster {
        KafkaCluster::start(ClusterOptions::nodes(3))
    }

    /// Formats and starts a cluster, and waits until every node answers and knows every
    /// other. Retries with new ports if a port was taken between the probe and the bind.
    pub fn start(options: ClusterOptions) -> KafkaCluster {
        let dist = distribution_of(&options.version);
        let mut last = String::new();
        for _attempt in 0..3 {
            match KafkaCluster::try_start(dist, &options) {
                Ok(c) => return c,
                Err(e) => last = e,
            }
        }
        panic!("the Kafka {} test bed did not start: {last}", dist.version);
    }

    fn try_start(
        dist: &'static Distribution,
        options: &ClusterOptions,
    ) -> Result<KafkaCluster, String> {
        let root = test_bed_root().join(unique_marker());
        std::fs::create_dir_all(&root).map_err(|e| format!("create {root:?}: {e}"))?;
        let n = options.nodes;
        let ports: Vec<(u16, u16)> = (0..n).map(|_| (free_port(), free_port())).collect();
        let voters: Vec<String> = ports
            .iter()
            .enumerate()
            .map(|(i, (_, c))| format!("{}@127.0.0.1:{c}", i + 1))
            .collect();
        let cluster_id = storage_tool_output(dist, &["random-uuid"])?;
        let mut nodes = Vec::with_capacity(n);
        for (i, (port, cport)) in ports.iter().enumerate() {
            let id = i as i32 + 1;
            let dir = root.join(format!("node-{id}"));
            std::fs::create_dir_all(&dir).map_err(|e| format!("create {dir:?}: {e}"))?;
            let listeners: Vec<(String, u16)> = options
                .listeners
                .iter()
                .map(|(name, _)| (name.clone(), free_port()))
                .collect();
            let props = broker_properties(
                id,
                *port,
                *cport,
                &listeners,
                &voters.join(","),
                &dir,
                options,
            );
            std::fs::write(dir.join("server.properties"), props)
                .map_err(|e| format!("write server.properties: {e}"))?;
            nodes.push(Node {
                id,
                port: *port,
                listeners,
                jmx_port: options.jmx.then(free_port),
                dir,
                process: None,
            });
        }
        // Format every node (in parallel: each is a JVM start), then start them together.
        std::thread::scope(|s| {
            let handles: Vec<_> = nodes
                .iter()
                .map(|node| {
                    let config = node.dir.join("server.properties");
                    let cluster_id = cluster_id.clone();
                    s.spawn(move || {
                        let config = config.to_string_lossy();
                        let mut args = vec!["format", "-t", &cluster_id, "-c", &config];
                        args.extend(options.format_args.iter().map(String::as_str));
                        storage_tool_output(dist, &args)
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().expect("format thread"))
                .collect::<Result<Vec<_>, _>>()
        })?;
        let bootstrap = nodes
            .iter()
            .map(|n| format!("127.0.0.1:{}", n.port))
            .collect::<Vec<_>>()
            .join(",");
        let mut cluster = KafkaCluster {
            dist,
            root,
            nodes,
            bootstrap,
        };
        for i in 0..n {
            cluster.spawn(cluster.nodes[i].id);
        }
        for i in 0..n {
            let id = cluster.nodes[i].id;
            cluster.wait_ready(id, Duration::from_secs(90))?;
        }
        cluster.wait_for_brokers(n, Duration::from_secs(60))?;
        Ok(cluster)
    }

    /// The distribution this cluster runs.
    pub fn distribution(&self) -> &'static Distribution {
        self.dist
    }

    /// The Kafka version this cluster runs.
    pub fn version(&self) -> &str {
        &self.dist.version
    }

    /// Every node's `host:port`, comma-separated.
    pub fn bootstrap(&self) -> &str {
        &self.bootstrap
    }

    /// Node ids (1..=n).
    pub fn node_ids(&self) -> Vec<i32> {
        self.nodes.iter().map(|n| n.id).collect()
    }

    /// `host:port` of node `id`.
    pub fn address(&self, id: i32) -> String {
        format!("127.0.0.1:{}", self.node(id).port)
    }

    /// `host:port` of node `id`'s extra listener `name` (see [`ClusterOptions::listener`]).
    pub fn listener_address(&self, id: i32, name: &str) -> String {
        let port = self
            .node(id)
            .listeners
            .iter()
            .find(|(n, _)| n == name)
            .unwrap_or_else(|| panic!("no listener {name}"))
            .1;
        format!("127.0.0.1:{port}")
    }

    /// Every node's `host:port` of the extra listener `name`, comma-separated.
    pub fn listener_bootstrap(&self, name: &str) -> String {
        self.nodes
            .iter()
            .map(|n| self.listener_address(n.id, name))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// `host:port` of node `id`'s JMX server, when the cluster was started with
    /// [`ClusterOptions::jmx`].
    pub fn jmx_address(&self, id: i32) -> Option<String> {
        self.node(id).jmx_port.map(|p| format!("127.0.0.1:{p}"))
    }

    /// The JVM pid of node `id`, while it runs.
    pub fn pid(&self, id: i32) -> Option<u32> {
        self.node(id).process.as_ref().map(|p| p.pid)
    }

    fn node(&self, id: i32) -> &Node {
        self.nodes.iter().find(|n| n.id == id).expect("a node id")
    }

    fn node_mut(&mut self, id: i32) -> &mut Node {
        self.nodes
            .iter_mut()
            .find(|n| n.id == id)
            .expect("a node id")
    }

    /// Starts node `id`'s JVM (it must not be running).
    fn spawn(&mut self, id: i32) {
        let dist = self.dist;
        let node = self.node_mut(id);
        assert!(node.process.is_none(), "node {id} is already running");
        let marker = format!(
            "-D{MARKER_PROPERTY}={}",
            node.dir
                .parent()
                .unwrap()
                .file_name()
                .unwrap()
                .to_string_lossy()
        );
        let java = dist.java();
        let mut args: Vec<String> = vec!["java".into(), HEAP.into(), marker];
        if let Some(port) = node.jmx_port {
            args.extend([
                "-Dcom.sun.management.jmxremote".to_owned(),
                format!("-Dcom.sun.management.jmxremote.port={port}"),
                format!("-Dcom.sun.management.jmxremote.rmi.port={port}"),
                "-Dcom.sun.management.jmxremote.host=127.0.0.1".to_owned(),
                "-Djava.rmi.server.hostname=127.0.0.1".to_owned(),
                "-Dcom.sun.management.jmxremote.authenticate=false".to_owned(),
                "-Dcom.sun.management.jmxremote.ssl=false".to_owned(),
            ]);
        }
        args.extend(
            java.get_args()
                .map(|a| a.to_string_lossy().into_owned())
                .collect::<Vec<_>>(),
        );
        args.push("kafka.Kafka".into());
        args.push(node.dir.join("server.properties").display().to_string());
        node.process = Some(Jvm::spawn(&args, &node.dir.join("broker.log"), &node.dir));
    }

    /// Waits until node `id` answers ApiVersions on its client port.
    fn wait_ready(&mut self, id: i32, timeout: Duration) -> Result<(), String> {
        let address = self.address(id);
        let deadline = Instant::now() + timeout;
        let config = ConnectionConfig {
            setup_timeout: Duration::from_secs(2),
            ..ConnectionConfig::default()
        };
        loop {
            if !self.running(id) {
                return Err(format!(
                    "node {id} exited while starting:\n{}",
                    self.log_tail(id)
                ));
            }
            if BlockingClient::connect(&address, &config).is_ok() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(format!(
                    "node {id} did not answer within {timeout:?}:\n{}",
                    self.log_tail(id)
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Waits until every running node's metadata lists `expected` brokers.
    fn wait_for_brokers(&self, expected: usize, timeout: Duration) -> Result<(), String> {
        let deadline = Instant::now() + timeout;
        for node in self.nodes.iter().filter(|n| n.process.is_some()) {
            let address = format!("127.0.0.1:{}", node.port);
            loop {
                let seen = metadata_of(&address, &[]).map_or(0, |md| md.brokers.len());
                if seen >= expected {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(format!(
                        "node {} sees {seen} of {expected} brokers after {timeout:?}",
                        node.id
                    ));
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(())
    }

    /// Whether node `id`'s JVM is alive (running or frozen; not exited).
    pub fn running(&self, id: i32) -> bool {
        self.node(id)
            .process
            .as_ref()
            .is_some_and(|p| process_alive(p.pid))
    }

    /// The last lines of node `id`'s log (its stderr: warnings and errors).
    pub fn log_tail(&self, id: i32) -> String {
        let text =
            std::fs::read_to_string(self.node(id).dir.join("broker.log")).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    /// SIGKILL node `id` (a crash: no controlled shutdown) and reap it; its data stays for
    /// [`KafkaCluster::restart`].
    pub fn kill(&mut self, id: i32) {
        if let Some(jvm) = self.node_mut(id).process.take() {
            signal("-KILL", jvm.pid);
            jvm.reap_keeping_data();
        }
    }

    /// SIGTERM node `id` (controlled shutdown: its leaderships move first) and wait up to
    /// `timeout` for it to exit, then SIGKILL it. Its data stays for a restart.
    pub fn stop(&mut self, id: i32, timeout: Duration) {
        if let Some(jvm) = self.node_mut(id).process.take() {
            signal("-TERM", jvm.pid);
            let deadline = Instant::now() + timeout;
            while process_alive(jvm.pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            if process_alive(jvm.pid) {
                eprintln!("node {id} did not stop within {timeout:?}; killing it");
                signal("-KILL", jvm.pid);
            }
            jvm.reap_keeping_data();
        }
    }

    /// SIGSTOP node `id` until the returned guard drops (SIGCONT), so a failing test never
    /// leaves a broker frozen.
    pub fn freeze(&self, id: i32) -> Frozen {
        let pid = self.pid(id).expect("node is running");
        signal("-STOP", pid);
        Frozen { pid }
    }

    /// Starts node `id` again on its ports and data, and waits until it answers.
    pub fn restart(&mut self, id: i32) {
        self.restart_all(&[id]);
    }

    /// Starts nodes `ids` again together (a node answers only once the controller quorum
    /// has a majority, so nodes that are down together must come back together), and waits
    /// until each answers.
    pub fn restart_all(&mut self, ids: &[i32]) {
        for &id in ids {
            if self.node(id).process.is_some() {
                self.kill(id);
            }
            self.spawn(id);
        }
        for &id in ids {
            if let Err(e) = self.wait_ready(id, Duration::from_secs(120)) {
                panic!("restarting node {id}: {e}");
            }
        }
    }

    /// Restarts every node that is not running (after a test that took nodes down failed
    /// half-way).
    pub fn restart_stopped(&mut self) {
        let stopped: Vec<i32> = self
            .nodes
            .iter()
            .filter(|n| n.process.as_ref().is_none_or(|p| !process_alive(p.pid)))
            .map(|n| n.id)
            .collect();
        if !stopped.is_empty() {
            eprintln!("restarting stopped nodes {stopped:?}");
            self.restart_all(&stopped);
        }
    }

    /// Runs one of Kafka's command-line tools (`main_class`) against this cluster and
    /// returns its stdout; panics with its output if it fails.
    pub fn tool(&self, main_class: &str, args: &[&str]) -> String {
        let out = self
            .dist
            .java()
            .arg(main_class)
            .args(args)
            .output()
            .expect("run a Kafka tool");
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        assert!(
            out.status.success(),
            "{main_class} {args:?} failed: {}\n{stdout}\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        stdout
    }

    /// Metadata of `topics` as node `id` sees it (`None` if it does not answer).
    pub fn metadata_from(&self, id: i32, topics: &[&str]) -> Option<MetadataResponse> {
        metadata_of(&self.address(id), topics)
    }

    /// Metadata of `topics` from the first node that answers.
    pub fn metadata(&self, topics: &[&str]) -> MetadataResponse {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            for node in self.nodes.iter().filter(|n| n.process.is_some()) {
                if let Some(md) = metadata_of(&format!("127.0.0.1:{}", node.port), topics) {
                    return md;
                }
            }
            assert!(Instant::now() < deadline, "no node answers metadata");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Partition → leader of `topic` (-1 while leaderless).
    pub fn leaders(&self, topic: &str) -> Vec<(i32, i32)> {
        let md = self.metadata(&[topic]);
        let mut out: Vec<(i32, i32)> = md
            .topics
            .iter()
            .filter(|t| t.name.as_deref() == Some(topic))
            .flat_map(|t| t.partitions.iter())
            .map(|p| (p.partition_index, p.leader_id))
            .collect();
        out.sort_unstable();
        out
    }

    /// Creates `topic` with `partitions` partitions and replication factor `replicas` (and
    /// topic `configs`), and waits until every running node knows every partition's leader.
    pub fn create_topic(
        &self,
        topic: &str,
        partitions: i32,
        replicas: i32,
        configs: &[(&str, &str)],
    ) {
        create_topic(&self.bootstrap, topic, partitions, replicas, configs);
        self.wait_for_topic(topic, partitions as usize);
    }

    /// Creates `topic` with partition i on nodes `replicas[i]` (the first one leads), and
    /// waits until every running node knows every partition's leader.
    pub fn create_topic_assigned(
        &self,
        topic: &str,
        replicas: &[Vec<i32>],
        configs: &[(&str, &str)],
    ) {
        create_topic_assigned(&self.bootstrap, topic, replicas, configs);
        self.wait_for_topic(topic, replicas.len());
    }

    /// Waits until every running node reports `partitions` partitions of `topic`, each
    /// with a leader.
    pub fn wait_for_topic(&self, topic: &str, partitions: usize) {
        let deadline = Instant::now() + Duration::from_secs(60);
        for node in self.nodes.iter().filter(|n| n.process.is_some()) {
            let address = format!("127.0.0.1:{}", node.port);
            loop {
                let led = metadata_of(&address, &[topic]).map_or(0, |md| {
                    md.topics
                        .iter()
                        .filter(|t| t.name.as_deref() == Some(topic) && t.error_code == 0)
                        .flat_map(|t| t.partitions.iter())
                        .filter(|p| p.leader_id >= 0)
                        .count()
                });
                if led >= partitions {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "node {} shows {led} of {partitions} led partitions of {topic}",
                    node.id
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }
}

impl Drop for KafkaCluster {
    fn drop(&mut self) {
        for node in &mut self.nodes {
            if let Some(jvm) = node.process.take() {
                jvm.reap_removing_data();
            }
        }
        let _ = std::fs::remove_dir_all(&self.root);
    }
}

/// A frozen (SIGSTOPped) broker; SIGCONT on drop.
#[derive(Debug)]
pub struct Frozen {
    pid: u32,
}

impl Frozen {
    /// Thaws the broker now.
    pub fn thaw(self) {}
}

impl Drop for Frozen {
    fn drop(&mut self) {
        signal("-CONT", self.pid);
    }
}

/// The wrapper: starts the JVM with stdin from /dev/null and output appended to the log,
/// prints its pid, waits for a line or end of input on its own stdin, then kills and reaps
/// the JVM, and removes the node directory unless the line was `keep`.
const WRAPPER: &str = r#"log=$1; dir=$2; shift 2
"$@" </dev/null >>"$log" 2>&1 &
jvm=$!
echo "$jvm"
IFS= read -r cmd || cmd=
kill -KILL "$jvm" 2>/dev/null
wait "$jvm" 2>/dev/null
[ "$cmd" = keep ] || rm -rf "$dir"
"#;

impl Jvm {
    fn spawn(args: &[String], log: &Path, dir: &Path) -> Jvm {
        let mut wrapper = Command::new("sh")
            .arg("-c")
            .arg(WRAPPER)
            .arg("kafka-testbed")
            .arg(log)
            .arg(dir)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("spawn the JVM wrapper (sh)");
        let stdin = wrapper.stdin.take();
        let mut line = String::new();
        BufReader::new(wrapper.stdout.take().expect("wrapper stdout"))
            .read_line(&mut line)
            .expect("read the JVM pid");
        let pid = line.trim().parse().expect("the wrapper prints the JVM pid");
        Jvm {
            wrapper,
            stdin,
            pid,
        }
    }

    /// The JVM exited or was killed: let the wrapper reap it, keeping the node's data.
    fn reap_keeping_data(mut self) {
        if let Some(mut stdin) = self.stdin.take() {
            let _ = stdin.write_all(b"keep\n");
        }
        let _ = self.wrapper.wait();
    }

    /// Kill the JVM through its wrapper, which also removes the node's directory.
    fn reap_removing_data(mut self) {
        drop(self.stdin.take());
        let _ = self.wrapper.wait();
    }
}

/// Where the test bed's clusters live: one directory per cluster, named by its marker.
pub(super) fn test_bed_root() -> PathBuf {
    let root = std::env::temp_dir().join("kafka-producer-testbed");
    let _ = std::fs::create_dir_all(&root);
    remove_stale_dirs(&root);
    root
}

/// Removes cluster directories of test processes that are gone (their wrapper removed the
/// nodes' data; the empty cluster directory may remain).
fn remove_stale_dirs(root: &Path) {
    let Ok(entries) = std::fs::read_dir(root) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let pid = name.split('-').nth(1).and_then(|p| p.parse::<u32>().ok());
        if pid.is_some_and(|p| !Path::new(&format!("/proc/{p}")).exists()) {
            let _ = std::fs::remove_dir_all(entry.path());
        }
    }
}

/// `kp-<test process id>-<nanos>-<n>`: unique per cluster, and names its owner (the test
/// process id is the second field, which [`remove_stale_dirs`] reads).
pub(super) fn unique_marker() -> String {
    super::unique_topic("kp")
}

/// A loopback port that was free a moment ago, for a broker to bind soon after. It is
/// taken below the kernel's ephemeral range (32768-60999 by default), so that no outgoing
/// connection gets it as its local port in the meantime, and it is never one this process
/// handed out before. (Ephemeral ports from `bind(0)` once left a secure node's SSL
/// listener unbound on Kafka 3.9.2: "Address already in use", and every test on it hung.)
pub(super) fn free_port() -> u16 {
    static GIVEN: Mutex<Vec<u16>> = Mutex::new(Vec::new());
    let mut given = GIVEN.lock().unwrap_or_else(|e| e.into_inner());
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut state = nanos ^ (u64::from(std::process::id()) << 32);
    for _ in 0..20_000 {
        // splitmix64
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        let port = 20_000 + ((z ^ (z >> 31)) % 12_000) as u16;
        if !given.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok() {
            given.push(port);
            return port;
        }
    }
    panic!("no free loopback port between 20000 and 32000");
}

/// The properties file of node `id`: the defaults, the extra `listeners` (name, port)
/// with their protocols from `options`, then `options.broker_properties` over them.
fn broker_properties(
    id: i32,
    port: u16,
    cport: u16,
    listeners: &[(String, u16)],
    voters: &str,
    dir: &Path,
    options: &ClusterOptions,
) -> String {
    let n = options.nodes;
    let replication = n.min(3).to_string();
    let min_isr = if n >= 3 { "2" } else { "1" };
    let mut bound = format!("PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}");
    let mut advertised = format!("PLAINTEXT://127.0.0.1:{port}");
    let mut protocols = "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT".to_owned();
    for ((name, port), (_, protocol)) in listeners.iter().zip(&options.listeners) {
        bound.push_str(&format!(",{name}://127.0.0.1:{port}"));
        advertised.push_str(&format!(",{name}://127.0.0.1:{port}"));
        protocols.push_str(&format!(",{name}:{protocol}"));
    }
    let mut props: Vec<(String, String)> = [
        ("process.roles", "broker,controller".to_owned()),
        ("node.id", id.to_string()),
        ("controller.quorum.voters", voters.to_owned()),
        ("listeners", bound),
        ("advertised.listeners", advertised),
        ("controller.listener.names", "CONTROLLER".to_owned()),
        ("inter.broker.listener.name", "PLAINTEXT".to_owned()),
        ("listener.security.protocol.map", protocols),
        ("log.dirs", dir.join("data").display().to_string()),
        ("auto.create.topics.enable", "false".to_owned()),
        ("num.partitions", "1".to_owned()),
        ("default.replication.factor", replication.clone()),
        ("min.insync.replicas", min_isr.to_owned()),
        ("offsets.topic.replication.factor", replication.clone()),
        ("offsets.topic.num.partitions", "3".to_owned()),
        ("transaction.state.log.replication.factor", replication),
        ("transaction.state.log.min.isr", min_isr.to_owned()),
        ("transaction.state.log.num.partitions", "3".to_owned()),
        ("group.initial.rebalance.delay.ms", "0".to_owned()),
        // A test bed on two cores: fewer threads than a production broker.
        ("num.network.threads", "2".to_owned()),
        ("num.io.threads", "4".to_owned()),
        ("num.recovery.threads.per.data.dir", "1".to_owned()),
        ("log.cleaner.enable", "false".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    for (k, v) in &options.broker_properties {
        match props.iter_mut().find(|(name, _)| name == k) {
            Some(entry) => entry.1 = v.clone(),
            None => props.push((k.clone(), v.clone())),
        }
    }
    props
        .into_iter()
        .map(|(k, v)| format!("{k}={}\n", escape_property(&v)))
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

fn storage_tool_output(dist: &Distribution, args: &[&str]) -> Result<String, String> {
    let out = dist
        .java()
        .arg("kafka.tools.StorageTool")
        .args(args)
        .output()
        .map_err(|e| format!("run StorageTool: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "StorageTool {args:?} failed: {}\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

/// Whether `pid` is a live process (not gone, not a zombie).
fn process_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the command name in parentheses.
        Ok(stat) => stat
            .rsplit_once(')')
            .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
            .unwrap_or(false),
        Err(_) => false,
    }
}

fn signal(sig: &str, pid: u32) {
    let status = Command::new("kill")
        .args([sig, &pid.to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill {sig} {pid} failed: {status}");
}

/// Metadata of `topics` (all topics when empty) from the broker at `address`, or `None`
/// if it does not answer within a few seconds.
pub fn metadata_of(address: &str, topics: &[&str]) -> Option<MetadataResponse> {
    let config = ConnectionConfig {
        setup_timeout: Duration::from_secs(2),
        ..ConnectionConfig::default()
    };
    let mut client = BlockingClient::connect(address, &config).ok()?;
    let request = MetadataRequest {
        topics: Some(topics.iter().map(|t| (*t).to_owned()).collect()),
        allow_auto_topic_creation: false,
        include_topic_authorized_operations: false,
    };
    client.request(&request, Duration::from_secs(5)).ok()
}

// ---------------------------------------------------------------------------------------
// The shared single node and the Admin protocol
// ---------------------------------------------------------------------------------------

/// The single-node cluster this test binary shares between its tests (started on first
/// use, stopped when the test process exits; see the module docs).
pub fn shared() -> &'static KafkaCluster {
    static SHARED: OnceLock<KafkaCluster> = OnceLock::new();
    SHARED.get_or_init(KafkaCluster::single)
}

fn admin(bootstrap: &str) -> AdminClient<DefaultClientContext> {
    ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .create()
        .expect("create the rdkafka admin client")
}

fn admin_options() -> AdminOptions {
    AdminOptions::new()
        .operation_timeout(Some(Duration::from_secs(30)))
        .request_timeout(Some(Duration::from_secs(30)))
}

/// Creates `topic` through the Admin protocol (CreateTopics) on any cluster.
pub fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    replicas: i32,
    configs: &[(&str, &str)],
) {
    let replication = TopicReplication::Fixed(replicas);
    create(
        bootstrap,
        NewTopic::new(topic, partitions, replication),
        configs,
    );
}

/// Creates `topic` with an explicit replica assignment (partition i gets `replicas[i]`,
/// whose first node is its preferred leader).
pub fn create_topic_assigned(
    bootstrap: &str,
    topic: &str,
    replicas: &[Vec<i32>],
    configs: &[(&str, &str)],
) {
    let assignment: Vec<&[i32]> = replicas.iter().map(Vec::as_slice).collect();
    let replication = TopicReplication::Variable(&assignment);
    let partitions = replicas.len() as i32;
    create(
        bootstrap,
        NewTopic::new(topic, partitions, replication),
        configs,
    );
}

fn create<'a>(bootstrap: &str, mut new: NewTopic<'a>, configs: &[(&'a str, &'a str)]) {
    for (k, v) in configs {
        new = new.set(k, v);
    }
    let results = super::block_on(admin(bootstrap).create_topics([&new], &admin_options()));
    expect_done("creating topic", results);
}

/// Grows `topic` to `total` partitions (CreatePartitions).
pub fn create_partitions(bootstrap: &str, topic: &str, total: usize) {
    let new = NewPartitions::new(topic, total);
    let results = super::block_on(admin(bootstrap).create_partitions([&new], &admin_options()));
    expect_done("adding partitions to", results);
}

/// Deletes `topic` (DeleteTopics).
pub fn delete_topic(bootstrap: &str, topic: &str) {
    let results = super::block_on(admin(bootstrap).delete_topics(&[topic], &admin_options()));
    expect_done("deleting topic", results);
}

/// Panics unless an admin request and each of its topics succeeded.
fn expect_done(what: &str, results: rdkafka::error::KafkaResult<Vec<rdkafka::admin::TopicResult>>) {
    let results = results.unwrap_or_else(|e| panic!("{what}: the request failed: {e}"));
    for r in results {
        if let Err((name, code)) = r {
            panic!("{what} {name} failed: {code}");
        }
    }
}

// ---------------------------------------------------------------------------------------
// Java programs: the Java consumer as a reader, the Java producer's partitioner
// ---------------------------------------------------------------------------------------

/// Reads `topic` from the beginning with the Java consumer (`ReadTopic`, CRCs checked)
/// until `expected` records arrived and a quiet second followed, or `timeout` passed;
/// returns the records in (partition, offset) order.
pub fn java_read(
    dist: &Distribution,
    bootstrap: &str,
    topic: &str,
    expected: usize,
    timeout: Duration,
    isolation: &str,
) -> Vec<ReadRecord> {
    let out = dist
        .java()
        .arg("ReadTopic")
        .args([
            bootstrap,
            topic,
            &expected.to_string(),
            &timeout.as_millis().to_string(),
            isolation,
        ])
        .stderr(Stdio::inherit())
        .output()
        .expect("run the Java reader");
    assert!(
        out.status.success(),
        "the Java reader failed: {}",
        out.status
    );
    let mut records: Vec<ReadRecord> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(parse_java_record)
        .collect();
    records.sort_by_key(|r| (r.partition, r.offset));
    records
}

fn parse_java_record(line: &str) -> ReadRecord {
    let f: Vec<&str> = line.split('\t').collect();
    assert!(
        f.len() == 7,
        "a Java reader line with {} fields: {line}",
        f.len()
    );
    let bytes = |s: &str| (s != "-").then(|| unhex(s));
    let headers = if f[6].is_empty() {
        Vec::new()
    } else {
        f[6].split(',')
            .map(|h| {
                let (k, v) = h.split_once('=').expect("header key=value");
                (
                    String::from_utf8(unhex(k)).expect("utf-8 header key"),
                    bytes(v),
                )
            })
            .collect()
    };
    ReadRecord {
        partition: f[0].parse().expect("partition"),
        offset: f[1].parse().expect("offset"),
        timestamp: f[2].parse().expect("timestamp"),
        key: bytes(f[4]),
        value: bytes(f[5]),
        headers,
    }
}

/// Lowercase hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The bytes written as lowercase hex in `s`.
pub fn unhex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// Sends one record per key with the Java producer (default partitioner) and returns the
/// partition Java chose for each key, in order.
pub fn java_partitions(
    dist: &Distribution,
    bootstrap: &str,
    topic: &str,
    keys: &[Vec<u8>],
) -> Vec<i32> {
    let mut child = dist
        .java()
        .arg("ProduceKeys")
        .args([bootstrap, topic])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("run the Java producer");
    {
        let mut stdin = child.stdin.take().unwrap();
        for k in keys {
            writeln!(stdin, "{}", hex(k)).unwrap();
        }
    }
    let out = child.wait_with_output().expect("the Java producer");
    assert!(
        out.status.success(),
        "the Java producer failed: {}",
        out.status
    );
    let lines: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(
        lines.len(),
        keys.len(),
        "one line per key from the Java producer"
    );
    lines
        .iter()
        .zip(keys)
        .map(|(line, key)| {
            let mut f = line.split(' ');
            assert_eq!(f.next(), Some(hex(key).as_str()), "keys in order");
            f.next().unwrap().parse().expect("partition")
        })
        .collect()
}

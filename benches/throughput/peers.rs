//! The peers that are programs of their own: Java's `KafkaProducer` and franz-go. Each
//! speaks the child protocol of `throughput/client.rs`: it gets the scenario on its command
//! line (`Scenario::peer_args`: `key=value` words, the producer settings as Java
//! properties), warms up, measures, and prints the same `RESULT key=value ...` line (and,
//! in the stalled scenario, `READY`, then waits for `GO`).
//!
//! - Java: `testbed/java/BenchProducer.java`, compiled by `scripts/kafka fetch` with the
//!   test bed's other Java tools against the fetched Kafka's jars (`kafka-clients` among
//!   them), and run as `java -cp <kafka>/classes:<kafka>/libs/* BenchProducer ...` in a JVM
//!   of its own with at most a 1 GiB heap (a user's JVM would have a limit; the default, a
//!   quarter of the machine's memory, would make its peak RSS say more about the machine
//!   than about the client). Its warm-up is five times the others' (the JIT's).
//! - franz-go: `benches/peers/franz-go/` (its own `go.mod` and `go.sum`, franz-go pinned),
//!   built once per bench with `go build` into `target/bench-peers/` (the Go module proxy
//!   serves the modules on first use; later builds are cached by Go).
//!
//! A peer whose toolchain is missing (no `java`, no `go` on the PATH) is skipped, and each
//! of its runs says why; a build that fails fails its runs.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Mutex;

use crate::kafka;
use crate::scenario::{self, Client};

/// How a peer is started, or why it cannot be.
enum Program {
    /// The program and the arguments before the scenario's.
    Ready(PathBuf, Vec<String>),
    /// Its toolchain is missing: its runs are skipped.
    Missing(String),
    /// Its build failed: its runs fail.
    Broken(String),
}

/// The peers selected for this bench, prepared once.
pub struct Peers {
    programs: HashMap<Client, Program>,
    /// `target/bench-peers`: the franz-go binary and the values files.
    dir: PathBuf,
    /// Values files already written, by value size.
    values: Mutex<HashMap<usize, PathBuf>>,
}

/// Why a peer cannot run: skipped (its toolchain is missing) or failed (it did not build).
pub enum Unavailable {
    Skipped(String),
    Failed(String),
}

impl Peers {
    /// Builds (or finds) the programs of the selected peers among `clients`.
    pub fn prepare(clients: &[Client]) -> Peers {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-peers");
        let mut programs = HashMap::new();
        for &client in clients {
            let program = match client {
                Client::Java => java(),
                Client::FranzGo => franz_go(&dir),
                Client::Ours | Client::Rdkafka => continue,
            };
            match &program {
                Program::Ready(path, _) => println!("  {client}: {}", path.display()),
                Program::Missing(why) => println!("  {client}: skipped: {why}"),
                Program::Broken(why) => println!("  {client}: FAILED to build: {why}"),
            }
            programs.insert(client, program);
        }
        Peers {
            programs,
            dir,
            values: Mutex::new(HashMap::new()),
        }
    }

    /// The command that runs `client` (a peer) with `args`, stdin and stdout for the
    /// parent to set.
    pub fn command(&self, client: Client, args: &[String]) -> Result<Command, Unavailable> {
        match self.programs.get(&client) {
            Some(Program::Ready(program, before)) => {
                let mut command = Command::new(program);
                command.args(before).args(args).stderr(Stdio::inherit());
                Ok(command)
            }
            Some(Program::Missing(why)) => Err(Unavailable::Skipped(why.clone())),
            Some(Program::Broken(why)) => Err(Unavailable::Failed(why.clone())),
            None => Err(Unavailable::Failed(format!("{client} was not prepared"))),
        }
    }

    /// The file of [`scenario::values`] for `size`, written on first use: every client
    /// sends the same bytes.
    pub fn values_file(&self, size: usize) -> Result<PathBuf, String> {
        let mut written = self.values.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(path) = written.get(&size) {
            return Ok(path.clone());
        }
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| format!("creating {}: {e}", self.dir.display()))?;
        let path = self.dir.join(format!("values-{size}.bin"));
        std::fs::write(&path, scenario::values(size).concat())
            .map_err(|e| format!("writing {}: {e}", path.display()))?;
        written.insert(size, path.clone());
        Ok(path)
    }
}

/// Whether `program` runs (`program version`-style probe with `arg`).
fn on_path(program: &str, arg: &str) -> bool {
    Command::new(program)
        .arg(arg)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok()
}

/// Java's producer: the fetched Kafka's jars and the test bed's compiled tools.
fn java() -> Program {
    if !on_path("java", "-version") {
        return Program::Missing("no `java` on the PATH (JDK 17 or newer)".to_string());
    }
    let dist = match kafka::fetch() {
        Ok(dist) => dist,
        Err(e) => return Program::Broken(e),
    };
    let classes = dist.join("classes");
    if !classes.join("BenchProducer.class").is_file() {
        return Program::Broken(format!(
            "{} has no BenchProducer.class (scripts/kafka fetch compiles testbed/java/)",
            classes.display()
        ));
    }
    let class_path = format!("{}:{}", classes.display(), dist.join("libs/*").display());
    let args = vec![
        "-Xmx1g".to_string(),
        // Without it, a "Metadata GC Threshold" collection (60-100 ms) lands in the
        // measured part of the first runs.
        "-XX:MetaspaceSize=128m".to_string(),
        format!(
            "-Dlog4j2.configurationFile={}",
            dist.join("log4j2.properties").display()
        ),
        "-cp".to_string(),
        class_path,
        "BenchProducer".to_string(),
    ];
    Program::Ready(PathBuf::from("java"), args)
}

/// franz-go: `go build` of `benches/peers/franz-go` into `dir`.
fn franz_go(dir: &Path) -> Program {
    if !on_path("go", "version") {
        return Program::Missing(
            "no `go` on the PATH (Go 1.26 or newer, for franz-go 1.22)".to_string(),
        );
    }
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("benches/peers/franz-go");
    let binary = dir.join("franz-go-peer");
    let built = Command::new("go")
        .args(["build", "-o"])
        .arg(&binary)
        .arg(".")
        .current_dir(&source)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .status();
    match built {
        Ok(status) if status.success() => Program::Ready(binary, Vec::new()),
        Ok(status) => Program::Broken(format!(
            "go build in {} exited with {status}",
            source.display()
        )),
        Err(e) => Program::Broken(format!("running go build: {e}")),
    }
}

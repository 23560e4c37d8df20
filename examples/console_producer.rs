//! A console producer in the manner of Kafka's `kafka-console-producer`: each line read from
//! stdin becomes one record.
//!
//! ```text
//! cargo run --example console_producer -- --bootstrap-server localhost:9092 --topic test
//! cargo run --example console_producer -- --bootstrap-server localhost:9092 --topic test \
//!     --property parse.key=true --property key.separator=: \
//!     --producer-property acks=1 --producer-property compression.type=lz4
//! ```
//!
//! With `parse.key=true` each line is split at the first `key.separator` (default: a tab)
//! into key and value; a line without the separator is reported and skipped. Delivery
//! errors are reported on stderr with the line number. At end of input the producer
//! flushes and closes; the exit status is non-zero when any line was not written.

use std::io::{BufRead, Write};
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use kafka_producer::{Producer, ProducerRecord};

const USAGE: &str = "\
usage: console_producer --bootstrap-server HOST:PORT[,HOST:PORT...] --topic TOPIC
                        [--property parse.key=true] [--property key.separator=SEP]
                        [--producer-property NAME=VALUE]...

Reads lines from stdin and sends each as a record to TOPIC.
  --property parse.key=true        split each line into key and value
  --property key.separator=SEP     the separator for parse.key (default: tab)
  --producer-property NAME=VALUE   any Java producer property (repeatable)";

/// The command line.
#[derive(Debug)]
struct Options {
    bootstrap: String,
    topic: String,
    /// `Some(separator)` when lines carry a key.
    key_separator: Option<Vec<u8>>,
    producer_properties: Vec<(String, String)>,
}

fn main() -> ExitCode {
    let options = match parse_args(std::env::args().skip(1)) {
        Ok(Some(options)) => options,
        Ok(None) => {
            println!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{USAGE}");
            return ExitCode::from(2);
        }
    };
    match run(&options) {
        Ok(0) => ExitCode::SUCCESS,
        Ok(failed) => {
            eprintln!("{failed} lines were not written");
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sends every line of stdin; returns how many lines failed.
fn run(options: &Options) -> Result<u64, Box<dyn std::error::Error>> {
    let producer = options
        .producer_properties
        .iter()
        .fold(Producer::builder(), |builder, (name, value)| {
            builder.set(name, value)
        })
        .bootstrap_servers(&options.bootstrap)
        .build()?;
    let failed = Arc::new(AtomicU64::new(0));
    let mut stdin = std::io::stdin().lock();
    let mut line = Vec::new();
    let mut line_number = 0u64;
    while stdin.read_until(b'\n', &mut line)? > 0 {
        line_number += 1;
        trim_line_end(&mut line);
        match to_record(&options.topic, &line, options.key_separator.as_deref()) {
            Some(record) => send(&producer, record, line_number, &failed),
            None => {
                eprintln!("line {line_number}: no key separator found; line skipped");
                failed.fetch_add(1, Relaxed);
            }
        }
        line.clear();
    }
    // Every callback has run once close returns.
    producer.close()?;
    std::io::stderr().flush()?;
    Ok(failed.load(Relaxed))
}

/// Sends one line; a failure is reported on stderr by the callback.
fn send(
    producer: &Producer,
    record: ProducerRecord<Vec<u8>, Vec<u8>>,
    line: u64,
    failed: &Arc<AtomicU64>,
) {
    let failed = Arc::clone(failed);
    producer.send_with_callback(record, move |result| {
        if let Err(e) = result {
            eprintln!("line {line}: not written: {e}");
            failed.fetch_add(1, Relaxed);
        }
    });
}

/// The record for one line, or `None` when a key is expected and the separator is missing.
fn to_record(
    topic: &str,
    line: &[u8],
    key_separator: Option<&[u8]>,
) -> Option<ProducerRecord<Vec<u8>, Vec<u8>>> {
    let Some(separator) = key_separator else {
        return Some(ProducerRecord::new(topic, line.to_vec()));
    };
    let at = line
        .windows(separator.len())
        .position(|window| window == separator)?;
    let (key, value) = (&line[..at], &line[at + separator.len()..]);
    Some(ProducerRecord::new(topic, value.to_vec()).with_key(key.to_vec()))
}

/// Removes the line's `\n` or `\r\n`.
fn trim_line_end(line: &mut Vec<u8>) {
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
}

/// Parses the arguments; `Ok(None)` for `--help`.
fn parse_args(args: impl Iterator<Item = String>) -> Result<Option<Options>, String> {
    let mut args = args;
    let (mut bootstrap, mut topic) = (None, None);
    let (mut parse_key, mut separator) = (false, b"\t".to_vec());
    let mut producer_properties = Vec::new();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or(format!("{arg} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--bootstrap-server" => bootstrap = Some(value()?),
            "--topic" => topic = Some(value()?),
            "--property" => match name_value(&value()?)? {
                ("parse.key", v) => parse_key = parse_bool(v)?,
                ("key.separator", v) if !v.is_empty() => separator = v.as_bytes().to_vec(),
                (name, _) => return Err(format!("unsupported --property {name:?}")),
            },
            "--producer-property" => {
                let property = value()?;
                let (name, v) = name_value(&property)?;
                producer_properties.push((name.to_string(), v.to_string()));
            }
            other => return Err(format!("unknown argument {other:?}")),
        }
    }
    Ok(Some(Options {
        bootstrap: bootstrap.ok_or("--bootstrap-server is required")?,
        topic: topic.ok_or("--topic is required")?,
        key_separator: parse_key.then_some(separator),
        producer_properties,
    }))
}

fn name_value(arg: &str) -> Result<(&str, &str), String> {
    arg.split_once('=')
        .ok_or(format!("expected NAME=VALUE, got {arg:?}"))
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value {
        "true" => Ok(true),
        "false" => Ok(false),
        _ => Err(format!("expected true or false, got {value:?}")),
    }
}

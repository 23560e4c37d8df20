//! The nineteen scenarios (1-7 as first written; 8-11 partitions, 12-14 threads, 15-17
//! value sizes, 18 idle, 19 the wire limit), their sizes in each mode, and the equivalent
//! settings every client gets for them (over plaintext, and for scenarios 5 and 6 also
//! over SASL_SSL with SCRAM-SHA-512; for scenario 7 also a `transactional.id` unique to the
//! run).

use std::fmt;
use std::time::Duration;

/// How much work the bench does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// The sizes of the issue: 2M records, 500k records, 10 s at 10k records/s, 5 s stalled.
    Full,
    /// `BENCH_QUICK=1`: a quarter of `Full`'s records, a fifth of its durations; the whole
    /// bench takes well under 2 minutes. (A tenth would make scenario 1 last about 0.1 s,
    /// close to the 10 ms resolution of the CPU figures.)
    Quick,
    /// A few thousand records per run (`BENCH_SMOKE=1`, or run without `--bench`, as
    /// `cargo test` does): checks that every record is delivered, never timings.
    Smoke,
}

impl Mode {
    pub fn name(self) -> &'static str {
        match self {
            Mode::Full => "full",
            Mode::Quick => "quick",
            Mode::Smoke => "smoke",
        }
    }

    pub fn parse(name: &str) -> Option<Mode> {
        [Mode::Full, Mode::Quick, Mode::Smoke]
            .into_iter()
            .find(|m| m.name() == name)
    }
}

/// The client under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Client {
    /// This crate's `kafka_producer::Producer`.
    Ours,
    /// rdkafka's `BaseProducer` (librdkafka), polled from a dedicated thread.
    Rdkafka,
    /// Java's `KafkaProducer` (the `kafka-clients` jar of the fetched Kafka), in its own JVM:
    /// `testbed/java/BenchProducer.java`.
    Java,
    /// franz-go's `kgo.Client` (`Produce` with a promise per record), a Go program:
    /// `benches/peers/franz-go/`.
    FranzGo,
}

impl Client {
    pub const ALL: [Client; 4] = [Client::Ours, Client::Rdkafka, Client::Java, Client::FranzGo];

    pub fn name(self) -> &'static str {
        match self {
            Client::Ours => "ours",
            Client::Rdkafka => "rdkafka",
            Client::Java => "java",
            Client::FranzGo => "franz-go",
        }
    }

    pub fn parse(name: &str) -> Option<Client> {
        Client::ALL.into_iter().find(|c| c.name() == name)
    }

    /// Whether the bench's own binary runs it (`--child`); the others are programs of their
    /// own (see `throughput/peers.rs`).
    pub fn in_this_binary(self) -> bool {
        matches!(self, Client::Ours | Client::Rdkafka)
    }
}

impl fmt::Display for Client {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a client reaches the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    /// The PLAINTEXT listener: every scenario.
    Plaintext,
    /// The SASL_SSL listener of the bench's own Kafka node, SCRAM-SHA-512 as [`SCRAM_USER`],
    /// the bench's CA as the only trust (scenarios 5 and 6).
    SaslSsl,
}

impl Transport {
    pub const ALL: [Transport; 2] = [Transport::Plaintext, Transport::SaslSsl];

    /// The name in tables and on the child's command line.
    pub fn name(self) -> &'static str {
        match self {
            Transport::Plaintext => "plaintext",
            Transport::SaslSsl => "SASL_SSL",
        }
    }

    pub fn parse(name: &str) -> Option<Transport> {
        Transport::ALL.into_iter().find(|t| t.name() == name)
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// The SASL mechanism of the TLS scenarios.
pub const SCRAM_MECHANISM: &str = "SCRAM-SHA-512";
/// The SCRAM user the bench's Kafka node is formatted with, and its password.
pub const SCRAM_USER: &str = "bench";
pub const SCRAM_PASSWORD: &str = "bench-secret";

/// What a scenario's sending threads do.
#[derive(Debug, Clone, Copy)]
pub enum Load {
    /// Send this many records as fast as the client takes them, split over the threads.
    Count(u64),
    /// One thread sends `per_sec` records per second for `duration`; the time from each
    /// send to its acknowledgement is recorded.
    Rate { per_sec: u64, duration: Duration },
    /// The broker is stalled; one thread sends as fast as it can for `duration`. Nothing
    /// is expected to be delivered.
    Stalled { duration: Duration },
    /// One thread, a transactional producer: `records` records in transactions of
    /// `per_transaction` (begin, send them, commit), the next one begun once the last is
    /// committed. The warm-up is made of transactions too (the last one may be shorter).
    Transactions { records: u64, per_transaction: u64 },
    /// The producer, connected and warmed up, stays idle for `duration`: the CPU it uses
    /// meanwhile (every thread's, from `/proc/self/task/*/schedstat`) and its threads'
    /// context switches (how often they woke up).
    Idle { duration: Duration },
}

/// One scenario: the records, the load and the producer settings.
#[derive(Debug, Clone)]
pub struct Scenario {
    pub id: u8,
    pub title: &'static str,
    pub value_size: usize,
    pub threads: usize,
    pub acks: &'static str,
    pub linger_ms: u64,
    pub batch_size: u64,
    pub compression: &'static str,
    pub idempotence: bool,
    pub load: Load,
    /// Records sent and acknowledged before the measurement starts (connections, metadata,
    /// producer id and allocator warm); not counted.
    pub warmup: u64,
    /// Runs over SASL_SSL as well as plaintext ([`Scenario::transports`]); on the bench's
    /// own Kafka node only.
    pub tls: bool,
    /// Records have keys (see [`key`]) from a pool of this many, spread by Kafka's murmur2
    /// partitioner; 0: no keys (the sticky partitioner spreads them).
    pub keys: u64,
    /// The topic's partitions, when the scenario sets them (else `BENCH_PARTITIONS`).
    pub partitions: Option<i32>,
    /// The wire limit (scenario 19, ours on the sink only): the sink captures the Produce
    /// requests of ours' measured span, and a bare loop then replays them (`throughput/wire.rs`).
    pub wire: bool,
}

/// `buffer.memory` for ours and `queue.buffering.max.kbytes` for librdkafka, in every
/// scenario (Java's default, 32 MiB; librdkafka's default would be 1 GiB).
pub const BUFFER_MEMORY: u64 = 32 * 1024 * 1024;
/// Java's default, and librdkafka's cap with idempotence; librdkafka's own default is 1M.
/// Also the bare loop's window of outstanding requests in scenario 19.
pub const MAX_IN_FLIGHT: u32 = 5;
/// Java's default `delivery.timeout.ms`; librdkafka's `message.timeout.ms` defaults to 300 s.
const DELIVERY_TIMEOUT_MS: u64 = 120_000;
/// Java's default `max.request.size`; librdkafka's `message.max.bytes` defaults to 1000000.
const MAX_REQUEST_SIZE: u64 = 1024 * 1024;
/// Scenario 7: `transaction.timeout.ms`, Java's and librdkafka's default (60 s). It is
/// also the delivery timeout of both there: librdkafka refuses a `message.timeout.ms`
/// above `transaction.timeout.ms` (and lowers its own default to it).
const TRANSACTION_TIMEOUT_MS: u64 = 60_000;
/// Scenario 7: the records of one transaction.
pub const RECORDS_PER_TRANSACTION: u64 = 1_000;
/// Scenario 4, ours only: how long `send` may wait for buffer space before it fails the
/// record with `BufferExhausted`. librdkafka never blocks (it returns QueueFull), and
/// Java's default of 60 s would hold the sending thread far beyond the 5 s window.
const STALL_MAX_BLOCK_MS: u64 = 100;
/// The partitions of every bench topic (both backends), unless `BENCH_PARTITIONS` is set.
pub const DEFAULT_PARTITIONS: i32 = 6;

pub const IDS: [u8; 19] = [
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19,
];

/// The wire-limit scenario (see [`Scenario::wire`]).
pub const WIRE_ID: u8 = 19;

/// The scenarios that scale one thing, for the tables: (first id, last id, what scales).
pub const SCALING: [(u8, u8, &str); 3] = [
    (8, 11, "partitions"),
    (12, 14, "sending threads"),
    (15, 17, "value size"),
];

/// The key pool of the keyed scenarios: as many distinct keys as this, so that even 6,000
/// partitions get about 11 keys each.
pub const KEY_POOL: u64 = 65_536;

/// Scenario `id` (1 to 19) at the sizes of `mode`.
pub fn scenario(id: u8, mode: Mode) -> Scenario {
    // (full, quick, smoke)
    let pick = |full: u64, quick: u64, smoke: u64| match mode {
        Mode::Full => full,
        Mode::Quick => quick,
        Mode::Smoke => smoke,
    };
    let millis = |full, quick, smoke| Duration::from_millis(pick(full, quick, smoke));
    let base = Scenario {
        id,
        title: "",
        value_size: 100,
        threads: 1,
        acks: "1",
        linger_ms: 5,
        batch_size: 64 * 1024,
        compression: "none",
        idempotence: false,
        load: Load::Count(0),
        warmup: pick(20_000, 2_000, 20),
        tls: false,
        keys: 0,
        partitions: None,
        wire: false,
    };
    // Scenarios 8 to 17: scenario 1's settings with one thing scaled.
    let scaled = Scenario {
        load: Load::Count(pick(1_000_000, 250_000, 2_000)),
        ..base.clone()
    };
    match id {
        1 => Scenario {
            title: "100 B values, 1 thread, acks=1, linger 5 ms, batch 64 KiB, no compression",
            load: Load::Count(pick(2_000_000, 500_000, 2_000)),
            ..base
        },
        2 => Scenario {
            title: "1 KiB values, 4 threads, acks=all + idempotence, lz4, linger 5 ms, batch 64 KiB",
            value_size: 1024,
            threads: 4,
            acks: "all",
            compression: "lz4",
            idempotence: true,
            load: Load::Count(pick(500_000, 125_000, 1_000)),
            warmup: pick(5_000, 1_000, 20),
            ..base
        },
        3 => Scenario {
            title: "latency: 100 B values at 10k records/s, 1 thread, acks=1, linger 0",
            linger_ms: 0,
            load: Load::Rate {
                per_sec: 10_000,
                duration: millis(10_000, 2_000, 200),
            },
            warmup: pick(2_000, 500, 20),
            ..base
        },
        4 => Scenario {
            title: "stalled broker: 100 B values, 1 thread, acks=1, buffer 32 MiB, send as fast as accepted",
            load: Load::Stalled {
                duration: millis(5_000, 1_000, 300),
            },
            warmup: pick(2_000, 500, 20),
            ..base
        },
        // Scenario 1's load shape (one thread, acks=1, no compression, so that every value
        // byte is encrypted) over SASL_SSL and over plaintext, with 100 B and 1 KiB values.
        5 => Scenario {
            title: "TLS: 100 B values, 1 thread, acks=1, linger 5 ms, batch 64 KiB, no compression; \
                    SASL_SSL SCRAM-SHA-512 vs plaintext",
            load: Load::Count(pick(2_000_000, 500_000, 2_000)),
            tls: true,
            ..base
        },
        6 => Scenario {
            title: "TLS: 1 KiB values, 1 thread, acks=1, linger 5 ms, batch 64 KiB, no compression; \
                    SASL_SSL SCRAM-SHA-512 vs plaintext",
            value_size: 1024,
            load: Load::Count(pick(500_000, 125_000, 1_000)),
            warmup: pick(5_000, 1_000, 20),
            tls: true,
            ..base
        },
        // Scenario 1's defaults (100 B, one thread, linger 5 ms, batch 64 KiB, no
        // compression) with what transactions require: acks=all and idempotence.
        7 => Scenario {
            title: "transactions of 1,000 records: 100 B values, 1 thread, acks=all + idempotence, \
                    linger 5 ms, batch 64 KiB, no compression; commit after every 1,000",
            acks: "all",
            idempotence: true,
            load: Load::Transactions {
                records: pick(500_000, 125_000, 2_000),
                per_transaction: RECORDS_PER_TRANSACTION,
            },
            warmup: pick(5_000, 2_000, 20),
            ..base
        },
        8..=11 => {
            let partitions = [6, 60, 600, 6_000][usize::from(id - 8)];
            Scenario {
                title: match id {
                    8 => "partitions: 100 B keyed values over 6 partitions, scenario 1's settings",
                    9 => "partitions: 100 B keyed values over 60 partitions, scenario 1's settings",
                    10 => "partitions: 100 B keyed values over 600 partitions, scenario 1's settings",
                    _ => "partitions: 100 B keyed values over 6,000 partitions, scenario 1's settings",
                },
                keys: KEY_POOL,
                partitions: Some(partitions),
                ..scaled
            }
        }
        12..=14 => Scenario {
            title: match id {
                12 => "threads: 100 B values from 1 sending thread, scenario 1's settings",
                13 => "threads: 100 B values from 4 sending threads sharing one producer, scenario 1's settings",
                _ => "threads: 100 B values from 16 sending threads sharing one producer, scenario 1's settings",
            },
            threads: [1, 4, 16][usize::from(id - 12)],
            ..scaled
        },
        15 => Scenario {
            title: "value size: 10 B values, scenario 1's settings",
            value_size: 10,
            load: Load::Count(pick(2_000_000, 500_000, 2_000)),
            ..scaled
        },
        16 => Scenario {
            title: "value size: 1 KiB values, scenario 1's settings",
            value_size: 1024,
            load: Load::Count(pick(500_000, 125_000, 1_000)),
            warmup: pick(5_000, 1_000, 20),
            ..scaled
        },
        17 => Scenario {
            title: "value size: 100 KiB values (one per batch), scenario 1's settings",
            value_size: 100 * 1024,
            load: Load::Count(pick(10_000, 2_500, 100)),
            warmup: pick(500, 100, 10),
            ..scaled
        },
        18 => Scenario {
            title: "idle: a producer connected and warmed up, then no records for 10 s",
            load: Load::Idle {
                duration: millis(10_000, 10_000, 1_000),
            },
            warmup: pick(2_000, 500, 20),
            ..base
        },
        // Scenario 1's load and settings; only its requests' fate differs.
        WIRE_ID => Scenario {
            title: "wire limit: scenario 1's load by ours on the sink, its Produce requests then \
                    written again by a bare loop over one socket",
            load: Load::Count(pick(2_000_000, 500_000, 2_000)),
            wire: true,
            ..base
        },
        _ => panic!("there is no scenario {id}"),
    }
}

impl Scenario {
    pub fn is_idle(&self) -> bool {
        matches!(self.load, Load::Idle { .. })
    }

    pub fn is_stalled(&self) -> bool {
        matches!(self.load, Load::Stalled { .. })
    }

    /// Whether the child stops after its warm-up, prints `READY` and waits for `GO`: the
    /// parent stalls the broker then (scenario 4), or starts the sink's capture (19).
    pub fn waits_for_go(&self) -> bool {
        self.is_stalled() || self.wire
    }

    /// Whether the clients are transactional producers (scenario 7).
    pub fn is_transactional(&self) -> bool {
        matches!(self.load, Load::Transactions { .. })
    }

    /// `delivery.timeout.ms` / `message.timeout.ms`: Java's default, or with transactions
    /// the transaction timeout (see [`TRANSACTION_TIMEOUT_MS`]).
    fn delivery_timeout_ms(&self) -> u64 {
        if self.is_transactional() {
            TRANSACTION_TIMEOUT_MS
        } else {
            DELIVERY_TIMEOUT_MS
        }
    }

    /// The transports it runs over: plaintext, then (TLS scenarios) SASL_SSL.
    pub fn transports(&self) -> &'static [Transport] {
        if self.tls {
            &Transport::ALL
        } else {
            &[Transport::Plaintext]
        }
    }

    /// A one-line description of the load.
    pub fn load_description(&self) -> String {
        match self.load {
            Load::Count(n) => format!("{n} records"),
            Load::Rate { per_sec, duration } => format!(
                "{per_sec} records/s for {:.1} s ({} records)",
                duration.as_secs_f64(),
                records_at_rate(per_sec, duration)
            ),
            Load::Stalled { duration } => {
                format!(
                    "{:.1} s of sending to a stalled broker",
                    duration.as_secs_f64()
                )
            }
            Load::Transactions {
                records,
                per_transaction,
            } => format!(
                "{} transactions of {per_transaction} records ({records} records)",
                records.div_ceil(per_transaction.max(1))
            ),
            Load::Idle { duration } => format!("idle for {:.1} s", duration.as_secs_f64()),
        }
    }

    /// What a transactional scenario adds to both clients' properties (nothing for the
    /// others): `transactional.id`, unique to the run (see [`transactional_id`]), and
    /// `transaction.timeout.ms`, the same default for both.
    pub fn transaction_properties(&self, id: &str) -> Vec<(&'static str, String)> {
        if !self.is_transactional() {
            return Vec::new();
        }
        vec![
            ("transactional.id", id.to_string()),
            ("transaction.timeout.ms", TRANSACTION_TIMEOUT_MS.to_string()),
        ]
    }

    /// Ours: Java producer properties (`Producer::from_properties`).
    pub fn java_properties(&self, bootstrap: &str) -> Vec<(&'static str, String)> {
        self.java_properties_for(Client::Ours, bootstrap)
    }

    /// Java producer properties for `client` (ours, Java's, and franz-go's, which maps
    /// them to its options): the same but for `client.id`.
    pub fn java_properties_for(
        &self,
        client: Client,
        bootstrap: &str,
    ) -> Vec<(&'static str, String)> {
        let mut props = vec![
            ("bootstrap.servers", bootstrap.to_string()),
            ("client.id", format!("bench-{client}")),
            ("acks", self.acks.to_string()),
            ("linger.ms", self.linger_ms.to_string()),
            ("batch.size", self.batch_size.to_string()),
            ("compression.type", self.compression.to_string()),
            ("enable.idempotence", self.idempotence.to_string()),
            ("buffer.memory", BUFFER_MEMORY.to_string()),
            (
                "max.in.flight.requests.per.connection",
                MAX_IN_FLIGHT.to_string(),
            ),
            (
                "delivery.timeout.ms",
                self.delivery_timeout_ms().to_string(),
            ),
            ("max.request.size", MAX_REQUEST_SIZE.to_string()),
        ];
        if self.is_stalled() {
            props.push(("max.block.ms", STALL_MAX_BLOCK_MS.to_string()));
        }
        props
    }

    /// rdkafka: the librdkafka properties equivalent to [`Scenario::java_properties`].
    pub fn rdkafka_properties(&self, bootstrap: &str) -> Vec<(&'static str, String)> {
        vec![
            ("bootstrap.servers", bootstrap.to_string()),
            ("client.id", "bench-rdkafka".to_string()),
            ("acks", self.acks.to_string()),
            ("linger.ms", self.linger_ms.to_string()),
            ("batch.size", self.batch_size.to_string()),
            ("compression.type", self.compression.to_string()),
            ("enable.idempotence", self.idempotence.to_string()),
            (
                "queue.buffering.max.kbytes",
                (BUFFER_MEMORY / 1024).to_string(),
            ),
            // Java limits the buffer by bytes only; librdkafka's default also caps it at
            // 100000 messages, which 100-byte records hit long before 32 MiB. 0: no cap.
            ("queue.buffering.max.messages", "0".to_string()),
            (
                "max.in.flight.requests.per.connection",
                MAX_IN_FLIGHT.to_string(),
            ),
            ("message.timeout.ms", self.delivery_timeout_ms().to_string()),
            ("message.max.bytes", MAX_REQUEST_SIZE.to_string()),
            // Java's partitioner for keyed records (librdkafka's default hashes with CRC32).
            ("partitioner", "murmur2_random".to_string()),
        ]
    }
}

impl Scenario {
    /// The warm-up of `client`: Java's is five times the others', since its JIT compiles
    /// the per-batch and per-request paths only after thousands of calls, and the warm-up
    /// should leave the measured part running compiled code, as it does for the others.
    pub fn warmup_for(&self, client: Client) -> u64 {
        if client == Client::Java {
            self.warmup * 5
        } else {
            self.warmup
        }
    }

    /// The command line of a peer program (Java's, franz-go's): `key=value` words naming
    /// the topic, the values file (`values_file`, [`VALUE_POOL`] values of `value_size`
    /// bytes, see [`values`]), the load, and every Java producer property as
    /// `prop=NAME=VALUE` (with `extra`: the SASL_SSL and transaction properties). The
    /// protocol is the one `throughput/client.rs` speaks (see `throughput/peers.rs`).
    pub fn peer_args(
        &self,
        client: Client,
        bootstrap: &str,
        topic: &str,
        values_file: &str,
        extra: Vec<(&'static str, String)>,
    ) -> Vec<String> {
        let mut args = vec![
            format!("topic={topic}"),
            format!("values={values_file}"),
            format!("value_size={}", self.value_size),
            format!("value_count={VALUE_POOL}"),
            format!("threads={}", self.threads),
            format!("warmup={}", self.warmup_for(client)),
            format!("keys={}", self.keys),
        ];
        args.extend(match self.load {
            Load::Count(n) => vec!["load=count".to_string(), format!("records={n}")],
            Load::Rate { per_sec, duration } => vec![
                "load=rate".to_string(),
                format!("per_sec={per_sec}"),
                format!("duration_ms={}", duration.as_millis()),
            ],
            Load::Stalled { duration } => vec![
                "load=stalled".to_string(),
                format!("duration_ms={}", duration.as_millis()),
            ],
            Load::Transactions {
                records,
                per_transaction,
            } => vec![
                "load=transactions".to_string(),
                format!("records={records}"),
                format!("per_transaction={per_transaction}"),
            ],
            Load::Idle { duration } => vec![
                "load=idle".to_string(),
                format!("duration_ms={}", duration.as_millis()),
            ],
        });
        args.extend(
            self.java_properties_for(client, bootstrap)
                .into_iter()
                .chain(extra)
                .map(|(name, value)| format!("prop={name}={value}")),
        );
        args
    }
}

/// Ours over SASL_SSL: the properties added to [`Scenario::java_properties`]; `ca` is the
/// PEM file of the bench's CA.
pub fn java_tls_properties(ca: &str) -> Vec<(&'static str, String)> {
    vec![
        ("security.protocol", "SASL_SSL".to_string()),
        ("sasl.mechanism", SCRAM_MECHANISM.to_string()),
        (
            "sasl.jaas.config",
            format!(
                "org.apache.kafka.common.security.scram.ScramLoginModule required \
                 username=\"{SCRAM_USER}\" password=\"{SCRAM_PASSWORD}\";"
            ),
        ),
        ("ssl.truststore.type", "PEM".to_string()),
        ("ssl.truststore.location", ca.to_string()),
    ]
}

/// rdkafka over SASL_SSL: the properties added to [`Scenario::rdkafka_properties`].
pub fn rdkafka_tls_properties(ca: &str) -> Vec<(&'static str, String)> {
    vec![
        ("security.protocol", "sasl_ssl".to_string()),
        ("sasl.mechanism", SCRAM_MECHANISM.to_string()),
        ("sasl.username", SCRAM_USER.to_string()),
        ("sasl.password", SCRAM_PASSWORD.to_string()),
        ("ssl.ca.location", ca.to_string()),
    ]
}

/// The `transactional.id` of a run: its topic is unique to the run (client, time, process),
/// so no two producers, of this bench or an earlier one on the same cluster, share an id.
pub fn transactional_id(topic: &str) -> String {
    format!("{topic}-txn")
}

/// The number of records a rate load sends.
pub fn records_at_rate(per_sec: u64, duration: Duration) -> u64 {
    (per_sec as f64 * duration.as_secs_f64()).round() as u64
}

/// The key of record `i` of a phase in a keyed scenario (`keys` > 0): `k` and `i % keys`
/// in 7 digits (`k0000042`). Every client builds the same pool.
pub fn key(i: u64, keys: u64) -> Vec<u8> {
    format!("k{:07}", i % keys.max(1)).into_bytes()
}

/// How many distinct values the sending threads cycle through.
pub const VALUE_POOL: usize = 256;

/// `VALUE_POOL` distinct values of `size` bytes, the same for both clients: words of a small
/// vocabulary, so that they compress roughly like text or JSON (lz4 in scenario 2 has some
/// work to do) rather than like a run of one byte or like noise.
pub fn values(size: usize) -> Vec<Vec<u8>> {
    const WORDS: [&[u8]; 20] = [
        b"{\"id\":",
        b"\"user\":",
        b"\"amount\":",
        b"\"currency\":\"EUR\"",
        b"\"status\":",
        b"\"paid\"",
        b"\"shipped\"",
        b"\"returned\"",
        b"true",
        b"false",
        b"null",
        b"12.50",
        b"1999.00",
        b"\"2024-05-01T12:00:00Z\"",
        b"\"sku-",
        b"\"note\":\"",
        b"fragile",
        b"express",
        b"},",
        b",",
    ];
    // splitmix64, fixed seed: every run and both clients send the same bytes.
    let mut state = 0x5eed_u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    };
    (0..VALUE_POOL)
        .map(|_| {
            let mut value = Vec::with_capacity(size + 32);
            while value.len() < size {
                let r = next();
                value.extend_from_slice(WORDS[(r % WORDS.len() as u64) as usize]);
                // A number now and then, so that values are not all made of the same words.
                if r & 0x300 == 0 {
                    value.extend_from_slice((r >> 20).to_string().as_bytes());
                }
            }
            value.truncate(size);
            value
        })
        .collect()
}

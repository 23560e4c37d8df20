//! Producer configuration: Java's property names, parsed into typed fields.
//!
//! [`ProducerConfig`] holds every setting the producer reads, with Java KafkaProducer 4.x's
//! defaults. Settings come in by name ([`ProducerConfig::set`],
//! [`ProducerConfig::from_properties`]), each parsed and range-checked like Java's
//! `ConfigDef`, or by writing the public fields. [`ProducerConfig::validate`] then applies the
//! cross-field rules of Java's `ProducerConfig.postProcessParsedConfig` and
//! `KafkaProducer.configureDeliveryTimeout`; call it once before the config is used.
//!
//! Unlike Java, which logs and ignores names it does not know, an unknown name is an error
//! that suggests the closest known property: a typo should not silently run with defaults.

use std::collections::BTreeSet;
use std::fmt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use crate::error::Error;
use crate::net::ConnectionSecurity;
use crate::record_batch::Compression;
use crate::security::{SaslConfig, SecurityProtocol, SslConfig};

/// The entries of Java `.properties` text, read as `java.util.Properties.load` reads them
/// (see [`ProducerConfig::from_properties_file`]), in order: a key given twice appears
/// twice, and the last one counts when they are applied in order. Config provider
/// references are left as written.
///
/// ```
/// let entries = kafka_producer::config::parse_properties(
///     "# a comment\nacks : all\nsasl.jaas.config = a \\\n    b;\nclient.id=caf\\u00e9\n",
/// )?;
/// assert_eq!(
///     entries,
///     [("acks", "all"), ("sasl.jaas.config", "a b;"), ("client.id", "café")]
///         .map(|(k, v)| (k.to_owned(), v.to_owned()))
/// );
/// # Ok::<(), kafka_producer::Error>(())
/// ```
pub fn parse_properties(text: &str) -> Result<Vec<(String, String)>, Error> {
    crate::properties::parse(text)
}

/// Which acknowledgement the producer asks of the partition leader (`acks`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Acks {
    /// `acks=0`: the broker sends no response; a record counts as sent once written to the
    /// socket.
    None,
    /// `acks=1`: the leader has written the record to its own log.
    Leader,
    /// `acks=all` (or `-1`): every in-sync replica has the record. Java's default.
    #[default]
    All,
}

impl Acks {
    /// The value of the `acks` field of a Produce request: 0, 1 or -1.
    pub fn as_i16(self) -> i16 {
        match self {
            Acks::None => 0,
            Acks::Leader => 1,
            Acks::All => -1,
        }
    }

    /// The property value that selects this setting: `"0"`, `"1"` or `"all"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Acks::None => "0",
            Acks::Leader => "1",
            Acks::All => "all",
        }
    }
}

impl fmt::Display for Acks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Every property [`ProducerConfig`] understands, in [`ProducerConfig::to_properties`] order.
const PROPERTIES: &[&str] = &[
    "bootstrap.servers",
    "client.id",
    "acks",
    "linger.ms",
    "batch.size",
    "buffer.memory",
    "max.block.ms",
    "delivery.timeout.ms",
    "request.timeout.ms",
    "retries",
    "retry.backoff.ms",
    "retry.backoff.max.ms",
    "reconnect.backoff.ms",
    "reconnect.backoff.max.ms",
    "max.in.flight.requests.per.connection",
    "enable.idempotence",
    "compression.type",
    "compression.gzip.level",
    "compression.lz4.level",
    "compression.zstd.level",
    "max.request.size",
    "partitioner.ignore.keys",
    "partitioner.adaptive.partitioning.enable",
    "partitioner.availability.timeout.ms",
    "metadata.max.age.ms",
    "metadata.max.idle.ms",
    "send.buffer.bytes",
    "receive.buffer.bytes",
    "connections.max.idle.ms",
    "socket.connection.setup.timeout.ms",
    "statistics.interval.ms",
    "security.protocol",
    "transactional.id",
    "transaction.timeout.ms",
];

/// Java producer properties this crate does not implement and cannot ignore: what they
/// ask for would change what the producer does. Naming them gets a clearer error than a
/// "did you mean" for a property that exists, just not here. (`interceptor.classes`,
/// `partitioner.class` and `client.dns.lookup` are accepted with the values this client
/// matches, and the serializer encodings UTF-8: see [`ProducerConfig::set`].) Lenient mode
/// does not ignore them either.
const UNSUPPORTED_JAVA_PROPERTIES: &[&str] = &[
    "interceptor.classes",
    "partitioner.class",
    "client.dns.lookup",
    "transaction.two.phase.commit.enable",
    "key.serializer.encoding",
    "value.serializer.encoding",
    "serializer.encoding",
];

/// Java producer properties with no meaning for this client, accepted and ignored with a
/// warning (as Java logs unused settings), and why each is ignored. Any `metrics.*`
/// property is ignored too.
const IGNORED_JAVA_PROPERTIES: &[(&str, &str)] = &[
    (
        "metric.reporters",
        "metrics are read with Producer::metrics, not through Java reporter classes",
    ),
    (
        "auto.include.jmx.reporter",
        "there is no JMX here; metrics are read with Producer::metrics",
    ),
    (
        "enable.metrics.push",
        "this client does not push metrics to the broker (KIP-714)",
    ),
    (
        "security.providers",
        "TLS and SASL come from rustls and this crate, not from Java security providers",
    ),
    (
        "socket.connection.setup.timeout.max.ms",
        "every connection attempt has socket.connection.setup.timeout.ms, without Java's \
         exponential growth",
    ),
    (
        "metadata.recovery.strategy",
        "this client retries its known brokers and bootstrap.servers rather than \
         rebootstrapping",
    ),
    (
        "metadata.recovery.rebootstrap.trigger.ms",
        "this client does not rebootstrap (see metadata.recovery.strategy)",
    ),
];

/// Java's `max.in.flight.requests.per.connection` limit for the idempotent producer: the
/// broker keeps the last five batches per producer to detect duplicates.
const MAX_IN_FLIGHT_FOR_IDEMPOTENCE: usize = 5;

/// Java's `INT` properties hold an `i32`.
const INT_MAX: i64 = i32::MAX as i64;

/// The longest duration any setting holds: 36500 days, about 100 years. Longer ones
/// (Java's `Long.MAX_VALUE` milliseconds, or [`Duration::MAX`] written to a field) are
/// lowered to it by [`ProducerConfig::validate`], so that a deadline `now + setting` (and a
/// doubled backoff with jitter) never overflows; 100 years is "never" for every purpose.
/// `connections.max.idle.ms` is the exception: its "never" is [`Duration::MAX`] itself.
pub const MAX_DURATION: Duration = Duration::from_secs(36_500 * 24 * 60 * 60);

/// The shortest reconnect backoff: `reconnect.backoff.ms` and `reconnect.backoff.max.ms`
/// below it are raised to it by [`ProducerConfig::validate`]. Java takes 0 as "reconnect at
/// once"; here every attempt starts a connect thread, so a dead broker would make the
/// producer start thousands of them a second.
pub const MIN_RECONNECT_BACKOFF: Duration = Duration::from_millis(10);

/// Java's lower bound of `metadata.max.idle.ms`: a topic used on every sender pass must
/// never look idle.
const MIN_METADATA_MAX_IDLE: Duration = Duration::from_millis(5000);

/// The only `compression.lz4.level` supported: Java's default, at which Java uses the fast
/// LZ4 compressor (its higher levels switch to LZ4 HC), the one lz4_flex has.
const LZ4_LEVEL: i32 = 9;

/// Why other lz4 levels are refused.
const LZ4_LEVEL_ONLY: &str = "only 9, Java's default, is supported: this client's lz4 \
     compressor has a single (fast) mode, the one Java uses at level 9";

/// The longest `client.id` in bytes: the request header holds it as a string with an
/// `i16` length.
const MAX_CLIENT_ID_BYTES: usize = i16::MAX as usize;

/// The `N` of the next generated `client.id` `producer-N` (Java's
/// `PRODUCER_CLIENT_ID_SEQUENCE`). Written and read only by `fetch_add` in
/// [`ProducerConfig::validate`]; `Relaxed` suffices because only uniqueness matters.
static NEXT_CLIENT_ID: AtomicU32 = AtomicU32::new(1);

/// The producer's settings, one public field per Java property.
///
/// Build one with [`ProducerConfig::from_properties`], or start from [`Default`] and call
/// [`set`](ProducerConfig::set) and [`validate`](ProducerConfig::validate):
///
/// ```
/// use std::time::Duration;
/// use kafka_producer::{Acks, ProducerConfig};
///
/// let config = ProducerConfig::from_properties([
///     ("bootstrap.servers", "broker-1:9092,broker-2:9092"),
///     ("acks", "1"),
///     ("linger.ms", "20"),
/// ])?;
/// assert_eq!(config.acks, Acks::Leader);
/// assert_eq!(config.linger, Duration::from_millis(20));
/// // acks=1 without an explicit enable.idempotence turns idempotence off, as in Java.
/// assert!(!config.enable_idempotence);
/// # Ok::<(), kafka_producer::Error>(())
/// ```
///
/// Writing a field directly skips the range checks of `set` and is not recorded as set by
/// the user (see [`was_set`](ProducerConfig::was_set) and
/// [`mark_set`](ProducerConfig::mark_set)).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerConfig {
    /// `bootstrap.servers`: the `host:port` pairs to fetch the first metadata from
    /// (required; given as a comma-separated list).
    pub bootstrap_servers: Vec<String>,
    /// `client.id`: sent to brokers in every request header, for their logs and quotas.
    /// When the user does not set it, [`validate`](ProducerConfig::validate) fills in
    /// `producer-N`, N counting up from 1 in this process, as Java does.
    pub client_id: String,
    /// `acks` (default `all`).
    pub acks: Acks,
    /// `linger.ms` (default 5): how long a batch waits for more records before it is sent.
    pub linger: Duration,
    /// `batch.size` (default 16384): the size in bytes of a new batch; 0 disables batching.
    /// With compression it bounds the batch's estimated compressed size, as in Java.
    pub batch_size: usize,
    /// `buffer.memory` (default 33554432): bytes of records buffered before `send` blocks.
    pub buffer_memory: usize,
    /// `max.block.ms` (default 60000): how long `send` may block for metadata or memory.
    pub max_block: Duration,
    /// `delivery.timeout.ms` (default 120000): the time from `send` to success or failure,
    /// retries included. At least `linger.ms + request.timeout.ms`.
    pub delivery_timeout: Duration,
    /// `request.timeout.ms` (default 30000): how long to wait for a broker's response.
    pub request_timeout: Duration,
    /// `retries` (default `i32::MAX`): how often a failed batch is retried.
    pub retries: i32,
    /// `retry.backoff.ms` (default 100): the first wait before a retry.
    pub retry_backoff: Duration,
    /// `retry.backoff.max.ms` (default 1000): the cap of the exponential retry backoff.
    pub retry_backoff_max: Duration,
    /// `reconnect.backoff.ms` (default 50): the first wait before reconnecting to a broker.
    pub reconnect_backoff: Duration,
    /// `reconnect.backoff.max.ms` (default 1000): the cap of the reconnect backoff.
    pub reconnect_backoff_max: Duration,
    /// `max.in.flight.requests.per.connection` (default 5): unacknowledged requests per
    /// broker connection.
    pub max_in_flight_requests_per_connection: usize,
    /// `enable.idempotence` (default true): producer ids and sequence numbers so that
    /// retries write each record exactly once, in order.
    pub enable_idempotence: bool,
    /// `transactional.id` (default none): makes the producer transactional (see
    /// [`Producer::init_transactions`](crate::Producer::init_transactions)). Its records are
    /// written in transactions, and a newer producer with the same id fences this one.
    /// Needs idempotence: an explicit `enable.idempotence=false`, or a setting that turns
    /// idempotence off (acks other than all, retries=0, more than 5 requests in flight),
    /// is a configuration error.
    pub transactional_id: Option<String>,
    /// `transaction.timeout.ms` (default 60000): how long the transaction coordinator lets
    /// a transaction stay open before it aborts it. The broker refuses values above its
    /// transaction.max.timeout.ms (default 15 minutes).
    pub transaction_timeout: Duration,
    /// `compression.type` (default `none`): `none`, `gzip`, `snappy`, `lz4` or `zstd`.
    pub compression: Compression,
    /// `compression.gzip.level` (default -1, zlib's default): 1 to 9, or -1.
    pub compression_gzip_level: i32,
    /// `compression.lz4.level` (default 9): 1 to 17.
    pub compression_lz4_level: i32,
    /// `compression.zstd.level` (default 3): -131072 to 22.
    pub compression_zstd_level: i32,
    /// `max.request.size` (default 1048576): the largest request, and so record, in bytes.
    pub max_request_size: usize,
    /// `partitioner.ignore.keys` (default false): partition keyed records as if unkeyed.
    pub partitioner_ignore_keys: bool,
    /// `partitioner.adaptive.partitioning.enable` (default true): the sticky partitioner
    /// favours brokers that drain faster (KIP-794).
    pub partitioner_adaptive_partitioning_enable: bool,
    /// `partitioner.availability.timeout.ms` (default 0, off): with adaptive partitioning,
    /// the sticky partitioner skips the partitions of a leader that could not take its ready
    /// batches for this long.
    pub partitioner_availability_timeout: Duration,
    /// `metadata.max.age.ms` (default 300000): metadata is refreshed at least this often.
    pub metadata_max_age: Duration,
    /// `metadata.max.idle.ms` (default 300000, at least 5000): metadata of a topic not
    /// produced to for this long is dropped.
    pub metadata_max_idle: Duration,
    /// `send.buffer.bytes` (default 131072): the socket's SO_SNDBUF; `-1` (`None`) keeps
    /// the operating system's default.
    pub send_buffer_bytes: Option<usize>,
    /// `receive.buffer.bytes` (default 32768): the socket's SO_RCVBUF; `-1` (`None`) keeps
    /// the operating system's default.
    pub receive_buffer_bytes: Option<usize>,
    /// `connections.max.idle.ms` (default 540000): idle connections are closed after this.
    /// A negative value, as in Java, never closes them ([`Duration::MAX`]).
    pub connections_max_idle: Duration,
    /// `socket.connection.setup.timeout.ms` (default 10000): how long a TCP connect may
    /// take.
    pub socket_connection_setup_timeout: Duration,
    /// `statistics.interval.ms` (librdkafka's name; default 0, off): how often the
    /// statistics hook runs (see `ProducerBuilder::statistics_callback`); without a
    /// callback the statistics are logged at info level.
    pub statistics_interval: Duration,
    /// `security.protocol` (default `PLAINTEXT`): TLS (`SSL`), SASL (`SASL_PLAINTEXT`) or
    /// both (`SASL_SSL`).
    pub security_protocol: SecurityProtocol,
    /// The `ssl.*` settings, used when `security.protocol` is `SSL` or `SASL_SSL`.
    pub ssl: SslConfig,
    /// The `sasl.*` settings, used when `security.protocol` is `SASL_PLAINTEXT` or
    /// `SASL_SSL`.
    pub sasl: SaslConfig,
    /// The canonical names of the properties the user set (see
    /// [`was_set`](ProducerConfig::was_set)).
    explicit: BTreeSet<&'static str>,
    /// `key.serializer` and `value.serializer`: the Java class a properties file names,
    /// checked against the producer's serializers when it is built.
    java_serializers: (Option<String>, Option<String>),
    /// Properties accepted but ignored (see [`ignored`](ProducerConfig::ignored)).
    ignored: Vec<String>,
    /// Whether unknown and unsupported property names are ignored with a warning rather
    /// than refused (see [`set_lenient`](ProducerConfig::set_lenient)).
    lenient: bool,
    /// `partitioner.class` named Java's `RoundRobinPartitioner`.
    round_robin: bool,
    /// The statistics hook (`ProducerBuilder::statistics_callback`), if any.
    pub(crate) statistics_callback: Option<crate::statistics::StatisticsCallback>,
}

impl Default for ProducerConfig {
    /// Java's defaults, with no bootstrap servers and an empty `client.id` (filled in by
    /// [`validate`](ProducerConfig::validate)).
    fn default() -> Self {
        ProducerConfig {
            bootstrap_servers: Vec::new(),
            client_id: String::new(),
            acks: Acks::All,
            linger: Duration::from_millis(5),
            batch_size: 16384,
            buffer_memory: 32 * 1024 * 1024,
            max_block: Duration::from_millis(60_000),
            delivery_timeout: Duration::from_millis(120_000),
            request_timeout: Duration::from_millis(30_000),
            retries: i32::MAX,
            retry_backoff: Duration::from_millis(100),
            retry_backoff_max: Duration::from_millis(1000),
            reconnect_backoff: Duration::from_millis(50),
            reconnect_backoff_max: Duration::from_millis(1000),
            max_in_flight_requests_per_connection: 5,
            enable_idempotence: true,
            transactional_id: None,
            transaction_timeout: Duration::from_millis(60_000),
            compression: Compression::None,
            compression_gzip_level: -1,
            compression_lz4_level: 9,
            compression_zstd_level: 3,
            max_request_size: 1024 * 1024,
            partitioner_ignore_keys: false,
            partitioner_adaptive_partitioning_enable: true,
            partitioner_availability_timeout: Duration::ZERO,
            metadata_max_age: Duration::from_millis(300_000),
            metadata_max_idle: Duration::from_millis(300_000),
            send_buffer_bytes: Some(128 * 1024),
            receive_buffer_bytes: Some(32 * 1024),
            connections_max_idle: Duration::from_millis(540_000),
            socket_connection_setup_timeout: Duration::from_millis(10_000),
            statistics_interval: Duration::ZERO,
            security_protocol: SecurityProtocol::Plaintext,
            ssl: SslConfig::default(),
            sasl: SaslConfig::default(),
            explicit: BTreeSet::new(),
            java_serializers: (None, None),
            ignored: Vec::new(),
            lenient: false,
            round_robin: false,
            statistics_callback: None,
        }
    }
}

impl ProducerConfig {
    /// Builds a config from Java-style `(name, value)` properties: each is [`set`] in turn,
    /// then the result is [`validate`]d.
    ///
    /// [`set`]: ProducerConfig::set
    /// [`validate`]: ProducerConfig::validate
    pub fn from_properties<I, K, V>(props: I) -> Result<Self, Error>
    where
        I: IntoIterator<Item = (K, V)>,
        K: AsRef<str>,
        V: AsRef<str>,
    {
        let mut config = ProducerConfig::default();
        for (name, value) in props {
            config.set(name.as_ref(), value.as_ref())?;
        }
        config.validate()?;
        Ok(config)
    }

    /// Parses and range-checks one property and records that the user set it.
    ///
    /// Surrounding whitespace is ignored. A name this crate does not know is an
    /// [`Error::Config`] naming the closest known property; a bad value is an
    /// [`Error::Config`] naming the property, the value and what is allowed.
    pub fn set(&mut self, name: &str, value: &str) -> Result<(), Error> {
        // PEM text and JAAS text keep their inner whitespace: they go through untrimmed.
        let trimmed = name.trim();
        if trimmed.starts_with("ssl.") && self.ssl.set(trimmed, value)? {
            return Ok(());
        }
        if trimmed.starts_with("sasl.") && self.sasl.set(trimmed, value)? {
            return Ok(());
        }
        if self.set_java_only(trimmed, value.trim())? {
            return Ok(());
        }
        let name = match canonical_name(name) {
            Ok(name) => name,
            // Lenient mode ignores unknown names only: ssl.* and sasl.* settings this
            // client does not implement would loosen or change security.
            Err(e)
                if self.lenient
                    && !trimmed.starts_with("ssl.")
                    && !trimmed.starts_with("sasl.") =>
            {
                self.ignore(trimmed, &format!("lenient mode ({e})"));
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let v = value.trim();
        match name {
            "bootstrap.servers" => self.bootstrap_servers = parse_servers(v)?,
            "client.id" => self.client_id = v.to_string(),
            "acks" => self.acks = parse_acks(v)?,
            "linger.ms" => self.linger = parse_ms(name, v, 0, i64::MAX)?,
            "batch.size" => self.batch_size = parse_size(name, v, INT_MAX)?,
            "buffer.memory" => self.buffer_memory = parse_size(name, v, i64::MAX)?,
            "max.block.ms" => self.max_block = parse_ms(name, v, 0, i64::MAX)?,
            "delivery.timeout.ms" => self.delivery_timeout = parse_ms(name, v, 0, INT_MAX)?,
            "request.timeout.ms" => {
                let why = "0 would time out every request at once";
                self.request_timeout = parse_nonzero_ms(name, v, INT_MAX, why)?
            }
            "retries" => self.retries = parse_int(name, v, 0, INT_MAX)? as i32,
            "retry.backoff.ms" => self.retry_backoff = parse_ms(name, v, 0, i64::MAX)?,
            "retry.backoff.max.ms" => self.retry_backoff_max = parse_ms(name, v, 0, i64::MAX)?,
            "reconnect.backoff.ms" => self.reconnect_backoff = parse_ms(name, v, 0, i64::MAX)?,
            "reconnect.backoff.max.ms" => {
                self.reconnect_backoff_max = parse_ms(name, v, 0, i64::MAX)?
            }
            "max.in.flight.requests.per.connection" => {
                self.max_in_flight_requests_per_connection =
                    parse_int(name, v, 1, INT_MAX)? as usize
            }
            "enable.idempotence" => self.enable_idempotence = parse_bool(name, v)?,
            "transactional.id" => {
                if v.is_empty() {
                    return Err(Error::Config(
                        "transactional.id must not be empty: leave it unset for a \
                         non-transactional producer"
                            .to_owned(),
                    ));
                }
                self.transactional_id = Some(v.to_owned());
            }
            "transaction.timeout.ms" => {
                self.transaction_timeout = parse_ms(name, v, 1, INT_MAX)?;
            }
            "compression.type" => self.compression = parse_compression(v)?,
            "compression.gzip.level" => self.compression_gzip_level = parse_gzip_level(v)?,
            "compression.lz4.level" => self.compression_lz4_level = parse_lz4_level(v)?,
            "compression.zstd.level" => {
                self.compression_zstd_level = parse_int(name, v, -131_072, 22)? as i32
            }
            "max.request.size" => self.max_request_size = parse_size(name, v, INT_MAX)?,
            "partitioner.ignore.keys" => self.partitioner_ignore_keys = parse_bool(name, v)?,
            "partitioner.adaptive.partitioning.enable" => {
                self.partitioner_adaptive_partitioning_enable = parse_bool(name, v)?
            }
            "partitioner.availability.timeout.ms" => {
                self.partitioner_availability_timeout = parse_ms(name, v, 0, i64::MAX)?
            }
            "metadata.max.age.ms" => self.metadata_max_age = parse_ms(name, v, 0, i64::MAX)?,
            "metadata.max.idle.ms" => {
                let min = MIN_METADATA_MAX_IDLE.as_millis() as i64;
                self.metadata_max_idle = parse_ms(name, v, min, i64::MAX)?
            }
            "send.buffer.bytes" => self.send_buffer_bytes = parse_socket_buffer(name, v)?,
            "receive.buffer.bytes" => self.receive_buffer_bytes = parse_socket_buffer(name, v)?,
            "connections.max.idle.ms" => self.connections_max_idle = parse_idle_ms(name, v)?,
            "socket.connection.setup.timeout.ms" => {
                let why = "0 would fail every connection attempt";
                self.socket_connection_setup_timeout = parse_nonzero_ms(name, v, i64::MAX, why)?
            }
            "statistics.interval.ms" => {
                self.statistics_interval = parse_ms(name, v, 0, i64::from(i32::MAX))?
            }
            "security.protocol" => self.security_protocol = v.parse()?,
            _ => unreachable!("canonical_name returned {name:?}, which set() does not handle"),
        }
        self.explicit.insert(name);
        Ok(())
    }

    /// Records that the user chose the current value of `name`, for typed setters (such as
    /// a builder's) that write a field directly instead of calling [`set`](Self::set).
    ///
    /// It matters for `enable.idempotence`, `delivery.timeout.ms` and
    /// `reconnect.backoff.ms`, whose rules in [`validate`](Self::validate) depend on it.
    pub fn mark_set(&mut self, name: &str) -> Result<(), Error> {
        let name = canonical_name(name)?;
        self.explicit.insert(name);
        Ok(())
    }

    /// Java properties with no counterpart among this config's fields (see
    /// [`set`](Self::set)). Returns whether `name` was one of them.
    fn set_java_only(&mut self, name: &str, value: &str) -> Result<bool, Error> {
        match name {
            "key.serializer" | "value.serializer" => {
                let class = value.strip_prefix("class ").unwrap_or(value).trim();
                if class.is_empty() {
                    return Err(bad_value(name, value, "expected a Java serializer class"));
                }
                let slot = if name == "key.serializer" {
                    &mut self.java_serializers.0
                } else {
                    &mut self.java_serializers.1
                };
                *slot = Some(class.to_owned());
            }
            // The values this client's behaviour matches.
            "partitioner.class" if value.is_empty() => self.round_robin = false,
            "interceptor.classes" | "metric.reporters" if value.is_empty() => {}
            "key.serializer.encoding" | "value.serializer.encoding" | "serializer.encoding"
                if value.eq_ignore_ascii_case("UTF8") || value.eq_ignore_ascii_case("UTF-8") => {}
            "client.dns.lookup" if value == "use_all_dns_ips" => {}
            "transaction.two.phase.commit.enable" if value == "false" => {}
            "partitioner.class"
                if value == "org.apache.kafka.clients.producer.RoundRobinPartitioner" =>
            {
                // ProducerBuilder::build installs RoundRobinPartitioner unless the builder
                // was given a partitioner.
                self.round_robin = true;
            }
            _ => {
                if let Some((_, why)) = IGNORED_JAVA_PROPERTIES.iter().find(|(n, _)| *n == name) {
                    self.ignore(name, why);
                } else if name.starts_with("metrics.") {
                    self.ignore(name, "metrics are read with Producer::metrics");
                } else if UNSUPPORTED_JAVA_PROPERTIES.contains(&name) {
                    return Err(unsupported_value(name, value));
                } else {
                    return Ok(false);
                }
            }
        }
        Ok(true)
    }

    /// Records that `name` is ignored, with one warning saying why.
    fn ignore(&mut self, name: &str, why: &str) {
        if !self.ignored.iter().any(|n| n == name) {
            log::warn!("ignoring property {name}: {why}");
            self.ignored.push(name.to_owned());
        }
    }

    /// The properties [`set`](Self::set) accepted but ignored, each named once, in the
    /// order they came: Java producer properties with no meaning for this client (metric
    /// reporters, `metrics.*`, `enable.metrics.push`, `security.providers`, ...), and in
    /// lenient mode unknown ones. Each was also logged once as a warning.
    pub fn ignored(&self) -> &[String] {
        &self.ignored
    }

    /// Lenient mode: an unknown property name is ignored with a warning (and listed by
    /// [`ignored`](Self::ignored)) rather than refused, as Java's producer does with names
    /// it does not know. Still errors: bad values of known properties, Java settings whose
    /// values this client cannot honour (interceptor or partitioner classes, string
    /// encodings other than UTF-8, ...), and `ssl.*` / `sasl.*` settings it does not
    /// implement. Off by default: a typo should not run silently with defaults. Affects
    /// later calls to [`set`](Self::set).
    pub fn set_lenient(&mut self, lenient: bool) {
        self.lenient = lenient;
    }

    /// The Java class named by `key.serializer` and by `value.serializer`, if set.
    /// Building a producer checks that its serializers write what these classes write
    /// ([`Serializer::java_classes`](crate::Serializer::java_classes)).
    pub fn java_serializers(&self) -> (Option<&str>, Option<&str>) {
        (
            self.java_serializers.0.as_deref(),
            self.java_serializers.1.as_deref(),
        )
    }

    /// Whether `partitioner.class` named Java's `RoundRobinPartitioner`.
    pub(crate) fn wants_round_robin(&self) -> bool {
        self.round_robin
    }

    /// Sets every property of a Java `.properties` file, in file order, after resolving
    /// the references of Kafka's config providers (see [`from_properties_file`]); does not
    /// [`validate`](Self::validate).
    ///
    /// [`from_properties_file`]: Self::from_properties_file
    pub fn load_properties_file(&mut self, path: impl AsRef<std::path::Path>) -> Result<(), Error> {
        let path = path.as_ref();
        let entries = crate::properties::read_file(path)?;
        self.load_entries(entries)
    }

    /// [`load_properties_file`](Self::load_properties_file) for properties text read from
    /// `reader`.
    pub fn load_properties(&mut self, mut reader: impl std::io::Read) -> Result<(), Error> {
        let mut bytes = Vec::new();
        reader
            .read_to_end(&mut bytes)
            .map_err(|e| Error::Config(format!("cannot read properties: {e}")))?;
        let entries = crate::properties::parse(&crate::properties::decode(&bytes))?;
        self.load_entries(entries)
    }

    fn load_entries(&mut self, entries: Vec<(String, String)>) -> Result<(), Error> {
        // A key given twice counts once, the last time (java.util.Properties is a map).
        let mut last: Vec<(String, String)> = Vec::with_capacity(entries.len());
        for (name, value) in entries.into_iter().rev() {
            if !last.iter().any(|(n, _)| *n == name) {
                last.push((name, value));
            }
        }
        last.reverse();
        for (name, value) in crate::properties::resolve_providers(last)? {
            self.set(&name, &value)?;
        }
        Ok(())
    }

    /// A config from a Java producer `.properties` file, as it is: `java.util.Properties`
    /// syntax (`=`, `:` or whitespace between name and value, `#` and `!` comments, line
    /// continuations, `\uXXXX` and other escapes; UTF-8, else ISO-8859-1), and values may
    /// reference environment variables, properties files and directories through Kafka's
    /// config providers:
    ///
    /// ```properties
    /// config.providers=env
    /// config.providers.env.class=org.apache.kafka.common.config.provider.EnvVarConfigProvider
    /// sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required \
    ///     username="app" password="${env:KAFKA_PASSWORD}";
    /// ```
    ///
    /// Java-only properties are accepted where this client can honour or ignore them:
    /// `key.serializer` and `value.serializer` (checked against the producer's serializers
    /// when it is built), empty `interceptor.classes` and `partitioner.class` (or Java's
    /// `RoundRobinPartitioner`), `client.dns.lookup=use_all_dns_ips`, and the properties
    /// [`ignored`](Self::ignored) with a warning (metric reporters, `metrics.*`, ...).
    /// Then the config is [`validate`](Self::validate)d.
    ///
    /// ```
    /// use kafka_producer::ProducerConfig;
    ///
    /// let file = "\
    /// ! the Java producer's file, unchanged ('!' starts a comment, as '#' does)
    /// bootstrap.servers = broker-1:9092, broker-2:9092
    /// key.serializer = org.apache.kafka.common.serialization.ByteArraySerializer
    /// value.serializer = org.apache.kafka.common.serialization.ByteArraySerializer
    /// linger.ms: 20
    /// metric.reporters = com.example.MetricsReporter
    /// ";
    /// let mut config = ProducerConfig::default();
    /// config.load_properties(file.as_bytes())?;
    /// config.validate()?;
    /// assert_eq!(config.linger.as_millis(), 20);
    /// assert_eq!(config.ignored(), ["metric.reporters"]);
    /// # Ok::<(), kafka_producer::Error>(())
    /// ```
    pub fn from_properties_file(path: impl AsRef<std::path::Path>) -> Result<Self, Error> {
        let mut config = ProducerConfig::default();
        config.load_properties_file(path)?;
        config.validate()?;
        Ok(config)
    }

    /// Whether the user set property `name` explicitly (through [`set`](Self::set),
    /// [`from_properties`](Self::from_properties) or [`mark_set`](Self::mark_set)).
    pub fn was_set(&self, name: &str) -> bool {
        self.explicit.contains(name)
    }

    /// Applies Java's cross-field rules; call it once, after the last `set`, before use.
    ///
    /// - `bootstrap.servers` must name at least one broker.
    /// - `reconnect.backoff.max.ms` follows `reconnect.backoff.ms` when only the latter was
    ///   set (Java's `postProcessReconnectBackoffConfigs`: no exponential reconnect backoff).
    /// - `enable.idempotence` needs `acks=all`, `retries` > 0 and
    ///   `max.in.flight.requests.per.connection` ≤ 5. If the user did not set it, a conflict
    ///   turns it off; if the user set it to true, a conflict is an error naming the
    ///   conflicting property.
    /// - `delivery.timeout.ms` must be at least `linger.ms + request.timeout.ms`. When it is
    ///   lower: if the user set both it and `request.timeout.ms`, that is an error (Java's
    ///   `configureDeliveryTimeout`); if the user set only `delivery.timeout.ms`, the
    ///   default `request.timeout.ms` shrinks to fit under it (Java would refuse; this keeps
    ///   the user's delivery bound, which is what they asked for — see DESIGN.md §3, whose
    ///   contract sets `delivery.timeout.ms=30000` with the default request timeout); if the
    ///   user set neither, `delivery.timeout.ms` is raised to the sum, as in Java.
    /// - An unset, empty `client.id` becomes `producer-N`.
    ///
    /// Beyond Java's rules (see DESIGN.md §2.2):
    ///
    /// - Durations longer than [`MAX_DURATION`] are lowered to it (`delivery.timeout.ms` and
    ///   `request.timeout.ms`, Java `INT`s, to `i32::MAX` milliseconds), so that no deadline
    ///   computed from a setting overflows. `connections.max.idle.ms` keeps
    ///   [`Duration::MAX`], its "never".
    /// - `reconnect.backoff.ms` and `reconnect.backoff.max.ms` below
    ///   [`MIN_RECONNECT_BACKOFF`] (10 ms) are raised to it: Java reconnects at once after 0,
    ///   which here would start a connect thread after every failed attempt.
    /// - `client.id` longer than 32767 bytes, which a request header cannot hold, is an
    ///   error; so are, written to the fields directly (`set` refuses them already), a zero
    ///   `request.timeout.ms` or `socket.connection.setup.timeout.ms` (every request or
    ///   connection attempt would fail), `metadata.max.idle.ms` below 5000 and a
    ///   `compression.lz4.level` other than 9.
    pub fn validate(&mut self) -> Result<(), Error> {
        if self.bootstrap_servers.is_empty() {
            return Err(Error::Config(
                "property \"bootstrap.servers\" is required: set it to at least one host:port"
                    .to_string(),
            ));
        }
        self.check_values_set_directly()?;
        self.bound_durations();
        self.apply_backoff_rules();
        self.apply_idempotence_rules()?;
        self.apply_delivery_timeout_rule()?;
        self.check_security()?;
        if self.client_id.is_empty() && !self.was_set("client.id") {
            let n = NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
            self.client_id = format!("producer-{n}");
        }
        Ok(())
    }

    /// The security a connection needs for this config: the TLS client configuration
    /// (the stores are read now, so a missing or bad file is an error here) and the SASL
    /// credentials. The producer calls it once, when it is built.
    pub(crate) fn connection_security(&self) -> Result<ConnectionSecurity, Error> {
        let sasl = if self.security_protocol.uses_sasl() {
            Some(self.sasl.credentials()?)
        } else {
            None
        };
        ConnectionSecurity::new(self.security_protocol, &self.ssl, sasl)
    }

    /// Every property and its current value, in Java's notation (durations in
    /// milliseconds, `-1` for "operating system default" and "never"), for logs and
    /// debugging. The `ssl.*` and `sasl.*` properties follow, the set ones only, with
    /// passwords, keys and the JAAS text shown as `[hidden]` (as Java logs them). Feeding
    /// the result to [`from_properties`](Self::from_properties) reproduces this config,
    /// except for those secrets.
    pub fn to_properties(&self) -> Vec<(&'static str, String)> {
        let values = [
            self.bootstrap_servers.join(","),
            self.client_id.clone(),
            self.acks.to_string(),
            ms(self.linger),
            self.batch_size.to_string(),
            self.buffer_memory.to_string(),
            ms(self.max_block),
            ms(self.delivery_timeout),
            ms(self.request_timeout),
            self.retries.to_string(),
            ms(self.retry_backoff),
            ms(self.retry_backoff_max),
            ms(self.reconnect_backoff),
            ms(self.reconnect_backoff_max),
            self.max_in_flight_requests_per_connection.to_string(),
            self.enable_idempotence.to_string(),
            compression_name(self.compression).to_string(),
            self.compression_gzip_level.to_string(),
            self.compression_lz4_level.to_string(),
            self.compression_zstd_level.to_string(),
            self.max_request_size.to_string(),
            self.partitioner_ignore_keys.to_string(),
            self.partitioner_adaptive_partitioning_enable.to_string(),
            ms(self.partitioner_availability_timeout),
            ms(self.metadata_max_age),
            ms(self.metadata_max_idle),
            socket_buffer(self.send_buffer_bytes),
            socket_buffer(self.receive_buffer_bytes),
            idle_ms(self.connections_max_idle),
            ms(self.socket_connection_setup_timeout),
            ms(self.statistics_interval),
            self.security_protocol.name().to_owned(),
            self.transactional_id.clone().unwrap_or_default(),
            ms(self.transaction_timeout),
        ];
        let mut properties: Vec<_> = PROPERTIES.iter().copied().zip(values).collect();
        // No transactional.id is no property at all (an empty one is refused).
        properties.retain(|(name, value)| *name != "transactional.id" || !value.is_empty());
        properties.extend(self.ssl.to_properties());
        properties.extend(self.sasl.to_properties());
        properties
    }

    /// The `ssl.*` rules when TLS is used, and SASL credentials when SASL is (the JAAS text
    /// is parsed now, so its errors surface here). The stores are read later, by
    /// [`connection_security`](Self::connection_security).
    fn check_security(&self) -> Result<(), Error> {
        if self.security_protocol.uses_tls() {
            self.ssl.check()?;
            if !cfg!(feature = "tls") {
                return Err(Error::Config(format!(
                    "security.protocol={} needs TLS, and this build has no TLS support \
                     (enable the crate feature \"tls\")",
                    self.security_protocol
                )));
            }
        }
        if self.security_protocol.uses_sasl() {
            self.sasl.credentials()?;
        }
        Ok(())
    }

    /// The checks `set` makes, for values written to the fields directly, and the
    /// `client.id` length (a request header holds an `i16`-length string).
    fn check_values_set_directly(&self) -> Result<(), Error> {
        let zero = |name: &str, why: &str| {
            Err(Error::Config(format!(
                "{name} is 0 ms; it must be at least 1 ms ({why})"
            )))
        };
        if self.request_timeout.is_zero() {
            return zero(
                "request.timeout.ms",
                "0 would time out every request at once",
            );
        }
        if self.socket_connection_setup_timeout.is_zero() {
            let why = "0 would fail every connection attempt";
            return zero("socket.connection.setup.timeout.ms", why);
        }
        if self.metadata_max_idle < MIN_METADATA_MAX_IDLE {
            return Err(Error::Config(format!(
                "metadata.max.idle.ms is {} ms; it must be at least 5000 ms",
                ms(self.metadata_max_idle)
            )));
        }
        if self.compression_lz4_level != LZ4_LEVEL {
            return Err(Error::Config(format!(
                "compression.lz4.level is {}; {LZ4_LEVEL_ONLY}",
                self.compression_lz4_level
            )));
        }
        let length = self.client_id.len();
        if length > MAX_CLIENT_ID_BYTES {
            return Err(Error::Config(format!(
                "client.id is {length} bytes long; a request header holds a client.id of at \
                 most {MAX_CLIENT_ID_BYTES} bytes"
            )));
        }
        Ok(())
    }

    /// Lowers every duration to [`MAX_DURATION`], and the two Java `INT` ones to
    /// `i32::MAX` milliseconds (see [`validate`](Self::validate)).
    fn bound_durations(&mut self) {
        let int_max = Duration::from_millis(INT_MAX as u64);
        for (name, field, max) in [
            ("linger.ms", &mut self.linger, MAX_DURATION),
            ("max.block.ms", &mut self.max_block, MAX_DURATION),
            ("delivery.timeout.ms", &mut self.delivery_timeout, int_max),
            ("request.timeout.ms", &mut self.request_timeout, int_max),
            ("retry.backoff.ms", &mut self.retry_backoff, MAX_DURATION),
            (
                "retry.backoff.max.ms",
                &mut self.retry_backoff_max,
                MAX_DURATION,
            ),
            (
                "reconnect.backoff.ms",
                &mut self.reconnect_backoff,
                MAX_DURATION,
            ),
            (
                "reconnect.backoff.max.ms",
                &mut self.reconnect_backoff_max,
                MAX_DURATION,
            ),
            (
                "partitioner.availability.timeout.ms",
                &mut self.partitioner_availability_timeout,
                MAX_DURATION,
            ),
            (
                "metadata.max.age.ms",
                &mut self.metadata_max_age,
                MAX_DURATION,
            ),
            (
                "metadata.max.idle.ms",
                &mut self.metadata_max_idle,
                MAX_DURATION,
            ),
            (
                "socket.connection.setup.timeout.ms",
                &mut self.socket_connection_setup_timeout,
                MAX_DURATION,
            ),
            (
                "statistics.interval.ms",
                &mut self.statistics_interval,
                Duration::from_millis(i32::MAX as u64),
            ),
        ] {
            if *field > max {
                log::debug!("{name} lowered to {} ms, the longest setting", ms(max));
                *field = max;
            }
        }
    }

    /// Java's `CommonClientConfigs.postProcessReconnectBackoffConfigs` and
    /// `warnDisablingExponentialBackoff`, then the [`MIN_RECONNECT_BACKOFF`] floor.
    fn apply_backoff_rules(&mut self) {
        if self.was_set("reconnect.backoff.ms") && !self.was_set("reconnect.backoff.max.ms") {
            log::warn!(
                "disabling exponential reconnect backoff because reconnect.backoff.ms is set, \
                 but reconnect.backoff.max.ms is not"
            );
            self.reconnect_backoff_max = self.reconnect_backoff;
        }
        for (name, field) in [
            ("reconnect.backoff.ms", &mut self.reconnect_backoff),
            ("reconnect.backoff.max.ms", &mut self.reconnect_backoff_max),
        ] {
            if *field < MIN_RECONNECT_BACKOFF {
                log::warn!(
                    "{name} raised from {} to {} ms: every reconnect starts a thread",
                    ms(*field),
                    ms(MIN_RECONNECT_BACKOFF)
                );
                *field = MIN_RECONNECT_BACKOFF;
            }
        }
        if self.retry_backoff > self.retry_backoff_max {
            log::warn!(
                "retry.backoff.ms ({}) is greater than retry.backoff.max.ms ({}); a static \
                 backoff of {} ms will be applied",
                ms(self.retry_backoff),
                ms(self.retry_backoff_max),
                ms(self.retry_backoff_max),
            );
        }
    }

    /// Java's `ProducerConfig.postProcessAndValidateIdempotenceConfigs`.
    fn apply_idempotence_rules(&mut self) -> Result<(), Error> {
        self.apply_idempotence_conflicts()?;
        if self.transactional_id.is_some() && !self.enable_idempotence {
            let why = if self.was_set("enable.idempotence") {
                "enable.idempotence=false".to_owned()
            } else {
                "acks, retries or max.in.flight.requests.per.connection turned it off \
                 (a transactional producer needs acks=all, retries > 0 and at most 5 \
                 requests in flight)"
                    .to_owned()
            };
            return Err(Error::Config(format!(
                "transactional.id needs idempotence, but {why}"
            )));
        }
        Ok(())
    }

    /// The conflicts of idempotence with acks, retries and requests in flight.
    fn apply_idempotence_conflicts(&mut self) -> Result<(), Error> {
        if !self.enable_idempotence {
            return Ok(());
        }
        let conflict = if self.acks != Acks::All {
            Some(("acks", format!("{}, not all", self.acks)))
        } else if self.retries == 0 {
            Some(("retries", "0".to_string()))
        } else if self.max_in_flight_requests_per_connection > MAX_IN_FLIGHT_FOR_IDEMPOTENCE {
            let n = self.max_in_flight_requests_per_connection;
            Some((
                "max.in.flight.requests.per.connection",
                format!("{n}, more than 5"),
            ))
        } else {
            None
        };
        let Some((property, value)) = conflict else {
            return Ok(());
        };
        if self.was_set("enable.idempotence") {
            return Err(Error::Config(format!(
                "enable.idempotence=true conflicts with {property}={value}: the idempotent \
                 producer needs acks=all, retries > 0 and \
                 max.in.flight.requests.per.connection <= 5"
            )));
        }
        log::info!("idempotence will be disabled because {property} is {value}");
        self.enable_idempotence = false;
        Ok(())
    }

    /// Java's `KafkaProducer.configureDeliveryTimeout`, with the sum capped at `i32::MAX`
    /// milliseconds as there.
    fn apply_delivery_timeout_rule(&mut self) -> Result<(), Error> {
        let floor = (self.linger + self.request_timeout).min(Duration::from_millis(INT_MAX as u64));
        if self.delivery_timeout >= floor {
            return Ok(());
        }
        if self.was_set("delivery.timeout.ms") && !self.was_set("request.timeout.ms") {
            let fitted = self.delivery_timeout.saturating_sub(self.linger);
            if !fitted.is_zero() {
                log::info!(
                    "request.timeout.ms lowered to {} so that linger.ms + request.timeout.ms \
                     fits in the configured delivery.timeout.ms ({})",
                    ms(fitted),
                    ms(self.delivery_timeout)
                );
                self.request_timeout = fitted;
                return Ok(());
            }
        }
        if self.was_set("delivery.timeout.ms") {
            return Err(Error::Config(format!(
                "delivery.timeout.ms ({}) must be at least linger.ms + request.timeout.ms \
                 ({} + {} = {})",
                ms(self.delivery_timeout),
                ms(self.linger),
                ms(self.request_timeout),
                ms(floor),
            )));
        }
        log::warn!(
            "delivery.timeout.ms should be at least linger.ms + request.timeout.ms; setting it \
             to {}",
            ms(floor)
        );
        self.delivery_timeout = floor;
        Ok(())
    }
}

/// The `&'static` spelling of a known property, or the error for an unknown one.
fn canonical_name(name: &str) -> Result<&'static str, Error> {
    let name = name.trim();
    if let Some(known) = PROPERTIES.iter().find(|p| **p == name) {
        return Ok(known);
    }
    let unsupported = name.starts_with("ssl.") || name.starts_with("sasl.");
    if unsupported {
        return Err(Error::Config(format!(
            "property {name:?} is a Java producer property that this client does not support"
        )));
    }
    let closest = closest_property(name);
    // Only a near miss is a likely typo; otherwise still name the nearest property, but
    // without pretending it is what the user meant.
    let distance = edit_distance(&name.to_ascii_lowercase(), closest);
    if distance * 2 <= name.len().max(closest.len()) {
        Err(Error::Config(format!(
            "unknown property {name:?}; did you mean {closest:?}?"
        )))
    } else {
        Err(Error::Config(format!(
            "unknown property {name:?} (no known producer property is close; the nearest is \
             {closest:?})"
        )))
    }
}

/// The error for a Java property this client cannot honour with this value.
fn unsupported_value(name: &str, value: &str) -> Error {
    let what = match name {
        "interceptor.classes" => {
            "Java interceptor classes cannot run here; leave it empty and add Rust \
             interceptors with ProducerBuilder::interceptor"
                .to_owned()
        }
        "partitioner.class" => "a Java partitioner class cannot run here: leave it empty, name \
             org.apache.kafka.clients.producer.RoundRobinPartitioner, or give the builder a \
             Rust Partitioner (ProducerBuilder::partitioner)"
            .to_owned(),
        "client.dns.lookup" => {
            "this client connects to every address a name resolves to (use_all_dns_ips)".to_owned()
        }
        "key.serializer.encoding" | "value.serializer.encoding" | "serializer.encoding" => {
            "the string serializer writes UTF-8".to_owned()
        }
        _ => "this client does not support it".to_owned(),
    };
    Error::Config(format!(
        "property {name}={value:?} is not supported: {what}"
    ))
}

/// The known property with the smallest edit distance to `name` (case-insensitively, since
/// `Linger.ms` is most likely `linger.ms`).
fn closest_property(name: &str) -> &'static str {
    let name = name.to_ascii_lowercase();
    PROPERTIES
        .iter()
        .copied()
        .min_by_key(|p| edit_distance(&name, p))
        .expect("PROPERTIES is not empty")
}

/// Levenshtein distance between `a` and `b`, counted in chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    // `row[j]` is the distance between the prefix of `a` seen so far and `b[..j]`.
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(row[j + 1] + 1);
        }
    }
    row[b.len()]
}

/// The error for a value of `name` that is not allowed.
fn bad_value(name: &str, value: &str, allowed: &str) -> Error {
    Error::Config(format!(
        "invalid value {value:?} for property {name:?}: {allowed}"
    ))
}

/// A whole number in `min..=max` (Java's `INT` or `LONG` with a range validator).
fn parse_int(name: &str, value: &str, min: i64, max: i64) -> Result<i64, Error> {
    let range = if max == i64::MAX {
        format!("expected a whole number of at least {min}")
    } else {
        format!("expected a whole number from {min} to {max}")
    };
    match value.parse::<i64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(bad_value(name, value, &range)),
    }
}

/// Milliseconds in `min..=max`.
fn parse_ms(name: &str, value: &str, min: i64, max: i64) -> Result<Duration, Error> {
    let n = parse_int(name, value, min, max)?;
    Ok(Duration::from_millis(n as u64))
}

/// Milliseconds from 1 to `max`; `why` says what 0 would do.
fn parse_nonzero_ms(name: &str, value: &str, max: i64, why: &str) -> Result<Duration, Error> {
    match parse_int(name, value, 1, max) {
        Ok(n) => Ok(Duration::from_millis(n as u64)),
        Err(_) if max == i64::MAX => Err(bad_value(
            name,
            value,
            &format!("expected a whole number of at least 1 ({why})"),
        )),
        Err(_) => Err(bad_value(
            name,
            value,
            &format!("expected a whole number from 1 to {max} ({why})"),
        )),
    }
}

/// `compression.lz4.level`: Java's range is 1 to 17, but only its default, 9, is supported.
fn parse_lz4_level(value: &str) -> Result<i32, Error> {
    let name = "compression.lz4.level";
    let level = parse_int(name, value, 1, 17)? as i32;
    if level != LZ4_LEVEL {
        return Err(bad_value(name, value, LZ4_LEVEL_ONLY));
    }
    Ok(level)
}

/// A byte count from 0 to `max`.
fn parse_size(name: &str, value: &str, max: i64) -> Result<usize, Error> {
    let n = parse_int(name, value, 0, max)?;
    usize::try_from(n).map_err(|_| bad_value(name, value, "too large for this platform"))
}

/// A socket buffer size: -1 for the operating system's default, else a byte count.
fn parse_socket_buffer(name: &str, value: &str) -> Result<Option<usize>, Error> {
    let n = parse_int(name, value, -1, INT_MAX)?;
    Ok(usize::try_from(n).ok())
}

/// `connections.max.idle.ms`: Java has no range check, and its selector never closes idle
/// connections when the value is negative.
fn parse_idle_ms(name: &str, value: &str) -> Result<Duration, Error> {
    let n = parse_int(name, value, i64::MIN, i64::MAX)?;
    Ok(u64::try_from(n).map_or(Duration::MAX, Duration::from_millis))
}

/// `true` or `false`, in any case (Java's `BOOLEAN`).
fn parse_bool(name: &str, value: &str) -> Result<bool, Error> {
    if value.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if value.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(bad_value(name, value, "expected true or false"))
    }
}

/// `acks`: `all`, `-1`, `0` or `1`.
fn parse_acks(value: &str) -> Result<Acks, Error> {
    match value.to_ascii_lowercase().as_str() {
        "all" | "-1" => Ok(Acks::All),
        "1" => Ok(Acks::Leader),
        "0" => Ok(Acks::None),
        _ => Err(bad_value("acks", value, "expected all, -1, 0 or 1")),
    }
}

/// `compression.gzip.level`: 1 to 9, or -1 for zlib's default (Java's
/// `GzipCompression.LevelValidator`).
fn parse_gzip_level(value: &str) -> Result<i32, Error> {
    let name = "compression.gzip.level";
    match parse_int(name, value, -1, 9) {
        Ok(n) if n != 0 => Ok(n as i32),
        _ => Err(bad_value(
            name,
            value,
            "expected a whole number from 1 to 9, or -1",
        )),
    }
}

/// `compression.type`: `none`, `gzip`, `snappy`, `lz4` or `zstd`.
fn parse_compression(value: &str) -> Result<Compression, Error> {
    let name = "compression.type";
    match value.to_ascii_lowercase().as_str() {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        #[cfg(feature = "zstd")]
        "zstd" => Ok(Compression::Zstd),
        #[cfg(not(feature = "zstd"))]
        "zstd" => Err(bad_value(
            name,
            value,
            "this build has no zstd support (enable the crate feature \"zstd\")",
        )),
        _ => Err(bad_value(
            name,
            value,
            "expected none, gzip, snappy, lz4 or zstd",
        )),
    }
}

/// `bootstrap.servers`: a comma-separated list of `host:port` (IPv6 hosts in brackets).
/// Empty entries are skipped, as in Java.
fn parse_servers(value: &str) -> Result<Vec<String>, Error> {
    let name = "bootstrap.servers";
    let mut servers: Vec<String> = Vec::new();
    for server in value.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let valid = server.rsplit_once(':').is_some_and(|(host, port)| {
            let host = host.trim_start_matches('[').trim_end_matches(']');
            !host.is_empty() && port.parse::<u16>().is_ok()
        });
        if !valid {
            let allowed = format!("{server:?} is not host:port");
            return Err(bad_value(name, value, &allowed));
        }
        if servers.iter().any(|s| s == server) {
            let allowed = format!("{server:?} is listed twice");
            return Err(bad_value(name, value, &allowed));
        }
        servers.push(server.to_string());
    }
    if servers.is_empty() {
        return Err(bad_value(name, value, "expected at least one host:port"));
    }
    Ok(servers)
}

/// The `compression.type` value of `compression`.
fn compression_name(compression: Compression) -> &'static str {
    match compression {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

/// A duration in whole milliseconds.
fn ms(d: Duration) -> String {
    d.as_millis().to_string()
}

/// `connections.max.idle.ms`: `Duration::MAX` is Java's "never", -1.
fn idle_ms(d: Duration) -> String {
    if d == Duration::MAX {
        "-1".to_string()
    } else {
        ms(d)
    }
}

/// A socket buffer size: `None` is Java's "operating system default", -1.
fn socket_buffer(size: Option<usize>) -> String {
    size.map_or_else(|| "-1".to_string(), |n| n.to_string())
}

#[cfg(test)]
mod tests {
    /// The property table of the crate docs (`src/docs/guide.md`) lists every property this
    /// crate implements, and only names it accepts.
    #[test]
    fn the_crate_docs_list_every_property() {
        let guide = include_str!("docs/guide.md");
        let table = &guide[guide.find("# Properties").expect("a Properties section")..];
        let listed: Vec<&str> = table
            .lines()
            .filter_map(|l| l.strip_prefix("| `"))
            .flat_map(|l| {
                let cell = &l[..l.find(" |").expect("a table row")];
                cell.split(", ").map(|n| n.trim_matches('`'))
            })
            .collect();
        for name in PROPERTIES {
            assert!(
                listed.contains(name),
                "{name} is missing from the docs' table"
            );
        }
        for name in [
            "sasl.mechanism",
            "sasl.jaas.config",
            "ssl.truststore.location",
        ] {
            assert!(
                listed.contains(&name),
                "{name} is missing from the docs' table"
            );
        }
        for name in &listed {
            let mut config = ProducerConfig::default();
            if let Err(e) = config.set(name, "") {
                assert!(
                    !e.to_string().contains("unknown property"),
                    "the docs list {name}, which is not a property: {e}"
                );
            }
        }
    }

    use super::*;
    use std::time::Instant;

    fn config_error(result: Result<impl fmt::Debug, Error>) -> String {
        match result {
            Err(Error::Config(message)) => message,
            other => panic!("expected a config error, got {other:?}"),
        }
    }

    fn with(props: &[(&str, &str)]) -> Result<ProducerConfig, Error> {
        let base = [("bootstrap.servers", "localhost:9092")];
        ProducerConfig::from_properties(base.iter().chain(props).copied())
    }

    #[test]
    fn defaults_equal_javas() {
        let c = ProducerConfig::default();
        let expected: Vec<(&str, &str)> = vec![
            ("bootstrap.servers", ""),
            ("client.id", ""),
            ("acks", "all"),
            ("linger.ms", "5"),
            ("batch.size", "16384"),
            ("buffer.memory", "33554432"),
            ("max.block.ms", "60000"),
            ("delivery.timeout.ms", "120000"),
            ("request.timeout.ms", "30000"),
            ("retries", "2147483647"),
            ("retry.backoff.ms", "100"),
            ("retry.backoff.max.ms", "1000"),
            ("reconnect.backoff.ms", "50"),
            ("reconnect.backoff.max.ms", "1000"),
            ("max.in.flight.requests.per.connection", "5"),
            ("enable.idempotence", "true"),
            ("compression.type", "none"),
            ("compression.gzip.level", "-1"),
            ("compression.lz4.level", "9"),
            ("compression.zstd.level", "3"),
            ("max.request.size", "1048576"),
            ("partitioner.ignore.keys", "false"),
            ("partitioner.adaptive.partitioning.enable", "true"),
            ("partitioner.availability.timeout.ms", "0"),
            ("metadata.max.age.ms", "300000"),
            ("metadata.max.idle.ms", "300000"),
            ("send.buffer.bytes", "131072"),
            ("receive.buffer.bytes", "32768"),
            ("connections.max.idle.ms", "540000"),
            ("socket.connection.setup.timeout.ms", "10000"),
            ("statistics.interval.ms", "0"),
            ("security.protocol", "PLAINTEXT"),
            ("transaction.timeout.ms", "60000"),
            ("ssl.endpoint.identification.algorithm", "https"),
            ("ssl.enabled.protocols", "TLSv1.2,TLSv1.3"),
            ("ssl.protocol", "TLSv1.3"),
        ];
        let actual = c.to_properties();
        let actual: Vec<(&str, &str)> = actual.iter().map(|(k, v)| (*k, v.as_str())).collect();
        assert_eq!(actual, expected);
        assert!(PROPERTIES.iter().all(|p| !c.was_set(p)));
    }

    #[test]
    fn validated_defaults_keep_javas_values_and_name_the_client() {
        let c = with(&[]).unwrap();
        assert!(c.enable_idempotence);
        assert_eq!(c.delivery_timeout, Duration::from_millis(120_000));
        assert_eq!(c.reconnect_backoff_max, Duration::from_millis(1000));
        let number = |c: &ProducerConfig| -> u32 {
            c.client_id
                .strip_prefix("producer-")
                .unwrap()
                .parse()
                .unwrap()
        };
        // Other tests draw numbers concurrently, so the next one is larger, not n + 1.
        assert!(number(&with(&[]).unwrap()) > number(&c));
    }

    // Sets security.protocol=SSL or SASL_SSL, which a build without TLS refuses.
    #[cfg(feature = "tls")]
    #[test]
    fn every_property_parses() {
        let c = with(&[
            ("bootstrap.servers", " a:1, [::1]:9092 ,b.example:65535,, "),
            ("client.id", " app "),
            ("acks", "-1"),
            ("linger.ms", "0"),
            ("batch.size", "0"),
            ("buffer.memory", "1000000000000"),
            ("max.block.ms", "1"),
            ("delivery.timeout.ms", "2000000000"),
            ("request.timeout.ms", "1"),
            ("retries", "3"),
            ("retry.backoff.ms", "7"),
            ("retry.backoff.max.ms", "70"),
            ("reconnect.backoff.ms", "18"),
            ("reconnect.backoff.max.ms", "80"),
            ("max.in.flight.requests.per.connection", "1"),
            ("enable.idempotence", "TRUE"),
            ("compression.type", "snappy"),
            ("compression.gzip.level", "9"),
            ("compression.lz4.level", "9"),
            ("compression.zstd.level", "-131072"),
            ("max.request.size", "0"),
            ("partitioner.ignore.keys", "True"),
            ("partitioner.adaptive.partitioning.enable", "false"),
            ("partitioner.availability.timeout.ms", "9"),
            ("metadata.max.age.ms", "0"),
            ("metadata.max.idle.ms", "5000"),
            ("send.buffer.bytes", "-1"),
            ("receive.buffer.bytes", "0"),
            ("connections.max.idle.ms", "-1"),
            ("socket.connection.setup.timeout.ms", "11"),
            ("statistics.interval.ms", "60000"),
            ("security.protocol", "SSL"),
            ("transactional.id", "relay-1"),
            ("transaction.timeout.ms", "12345"),
        ])
        .unwrap();
        assert_eq!(c.transactional_id.as_deref(), Some("relay-1"));
        assert_eq!(c.transaction_timeout, Duration::from_millis(12345));
        assert_eq!(c.security_protocol, SecurityProtocol::Ssl);
        assert_eq!(
            c.bootstrap_servers,
            ["a:1", "[::1]:9092", "b.example:65535"]
        );
        assert_eq!(c.client_id, "app");
        assert_eq!((c.acks, c.acks.as_i16()), (Acks::All, -1));
        assert_eq!(c.linger, Duration::ZERO);
        assert_eq!((c.batch_size, c.buffer_memory), (0, 1_000_000_000_000));
        assert_eq!(c.max_block, Duration::from_millis(1));
        assert_eq!(c.delivery_timeout, Duration::from_millis(2_000_000_000));
        assert_eq!(c.request_timeout, Duration::from_millis(1));
        assert_eq!(c.retries, 3);
        assert_eq!(c.retry_backoff, Duration::from_millis(7));
        assert_eq!(c.retry_backoff_max, Duration::from_millis(70));
        assert_eq!(c.reconnect_backoff, Duration::from_millis(18));
        assert_eq!(c.reconnect_backoff_max, Duration::from_millis(80));
        assert_eq!(c.max_in_flight_requests_per_connection, 1);
        assert!(c.enable_idempotence);
        assert_eq!(c.compression, Compression::Snappy);
        assert_eq!(c.compression_gzip_level, 9);
        assert_eq!(c.compression_lz4_level, 9);
        assert_eq!(c.compression_zstd_level, -131_072);
        assert_eq!(c.max_request_size, 0);
        assert!(c.partitioner_ignore_keys);
        assert!(!c.partitioner_adaptive_partitioning_enable);
        assert_eq!(c.partitioner_availability_timeout, Duration::from_millis(9));
        assert_eq!(c.metadata_max_age, Duration::ZERO);
        assert_eq!(c.metadata_max_idle, Duration::from_millis(5000));
        assert_eq!(
            (c.send_buffer_bytes, c.receive_buffer_bytes),
            (None, Some(0))
        );
        assert_eq!(c.connections_max_idle, Duration::MAX);
        assert_eq!(c.socket_connection_setup_timeout, Duration::from_millis(11));
        assert_eq!(c.statistics_interval, Duration::from_secs(60));
        assert!(PROPERTIES.iter().all(|p| c.was_set(p)));
    }

    #[test]
    fn acks_and_compression_accept_every_java_spelling() {
        let acks = |v| with(&[("acks", v)]).unwrap().acks;
        assert_eq!(acks("all"), Acks::All);
        assert_eq!(acks("-1"), Acks::All);
        assert_eq!(acks("1"), Acks::Leader);
        assert_eq!(acks("0"), Acks::None);
        assert_eq!(Acks::None.as_i16(), 0);
        assert_eq!(Acks::Leader.as_i16(), 1);
        let compression = |v| with(&[("compression.type", v)]).unwrap().compression;
        assert_eq!(compression("none"), Compression::None);
        assert_eq!(compression("gzip"), Compression::Gzip);
        assert_eq!(compression("lz4"), Compression::Lz4);
        #[cfg(feature = "zstd")]
        assert_eq!(compression("zstd"), Compression::Zstd);
    }

    #[test]
    fn unknown_name_suggests_the_closest() {
        let message = config_error(with(&[("linger.msx", "5")]));
        assert_eq!(
            message,
            r#"unknown property "linger.msx"; did you mean "linger.ms"?"#
        );
        let message = config_error(with(&[("Batch_Size", "5")]));
        assert!(
            message.contains(r#"did you mean "batch.size"?"#),
            "{message}"
        );
        let message = config_error(with(&[("bogus", "5")]));
        assert!(!message.contains("did you mean"), "{message}");
        assert!(message.contains("the nearest is"), "{message}");
        let message = config_error(with(&[("max.in.flight.request.per.connection", "5")]));
        assert!(
            message.contains("max.in.flight.requests.per.connection"),
            "{message}"
        );
    }

    #[test]
    fn a_transactional_producer_needs_idempotence_as_in_java() {
        let c = with(&[("transactional.id", "t")]).unwrap();
        assert!(c.enable_idempotence);
        assert_eq!(c.transaction_timeout, Duration::from_millis(60_000));
        let message = config_error(with(&[
            ("transactional.id", "t"),
            ("enable.idempotence", "false"),
        ]));
        assert!(message.contains("enable.idempotence=false"), "{message}");
        for (name, value) in [
            ("acks", "1"),
            ("retries", "0"),
            ("max.in.flight.requests.per.connection", "6"),
        ] {
            let message = config_error(with(&[("transactional.id", "t"), (name, value)]));
            assert!(message.contains("needs idempotence"), "{name}: {message}");
            // With idempotence set explicitly the conflict itself is named.
            let message = config_error(with(&[
                ("transactional.id", "t"),
                ("enable.idempotence", "true"),
                (name, value),
            ]));
            assert!(message.contains(name), "{name}: {message}");
        }
        let message = config_error(with(&[("transactional.id", "")]));
        assert!(message.contains("must not be empty"), "{message}");
        let message = config_error(with(&[
            ("transactional.id", "t"),
            ("transaction.timeout.ms", "0"),
        ]));
        assert!(message.contains("transaction.timeout.ms"), "{message}");
    }

    #[test]
    fn unsupported_java_property_is_named_as_such() {
        let message = config_error(with(&[("interceptor.classes", "a.B")]));
        assert!(
            message.contains("interceptor.classes") && message.contains("not supported"),
            "{message}"
        );
        let message = config_error(with(&[("sasl.login.callback.handler.class", "x.Y")]));
        assert!(
            message.contains(r#""sasl.login.callback.handler.class""#),
            "{message}"
        );
    }

    #[test]
    fn bad_values_name_the_property_and_the_value() {
        let cases = [
            ("linger.ms", "-1", "at least 0"),
            ("linger.ms", "5ms", "whole number"),
            ("batch.size", "2147483648", "from 0 to 2147483647"),
            ("retries", "-1", "from 0"),
            ("max.in.flight.requests.per.connection", "0", "from 1"),
            ("request.timeout.ms", "-5", "from 1"),
            ("delivery.timeout.ms", "x", "whole number"),
            ("metadata.max.idle.ms", "4999", "at least 5000"),
            ("send.buffer.bytes", "-2", "from -1"),
            ("enable.idempotence", "yes", "true or false"),
            ("acks", "2", "all, -1, 0 or 1"),
            (
                "compression.type",
                "brotli",
                "none, gzip, snappy, lz4 or zstd",
            ),
            ("compression.gzip.level", "0", "1 to 9, or -1"),
            ("compression.lz4.level", "18", "from 1 to 17"),
            ("compression.zstd.level", "23", "to 22"),
            ("bootstrap.servers", "localhost", "not host:port"),
            ("bootstrap.servers", "a:1,a:1", "listed twice"),
            ("bootstrap.servers", "host:99999", "not host:port"),
            ("bootstrap.servers", ",,", "at least one"),
        ];
        for (name, value, allowed) in cases {
            let message = config_error(ProducerConfig::default().set(name, value));
            assert!(message.contains(&format!("{name:?}")), "{message}");
            assert!(message.contains(&format!("{value:?}")), "{message}");
            assert!(message.contains(allowed), "{name}={value}: {message}");
        }
    }

    #[test]
    fn bootstrap_servers_are_required() {
        let message = config_error(ProducerConfig::from_properties([("acks", "1")]));
        assert!(message.contains("bootstrap.servers"), "{message}");
    }

    #[test]
    fn idempotence_turns_off_when_unset_and_conflicting() {
        for conflict in [
            ("acks", "1"),
            ("acks", "0"),
            ("retries", "0"),
            ("max.in.flight.requests.per.connection", "6"),
        ] {
            let c = with(&[conflict]).unwrap();
            assert!(!c.enable_idempotence, "{conflict:?}");
        }
    }

    #[test]
    fn idempotence_set_true_with_a_conflict_is_an_error_naming_it() {
        for (name, value) in [
            ("acks", "1"),
            ("retries", "0"),
            ("max.in.flight.requests.per.connection", "6"),
        ] {
            let result = with(&[("enable.idempotence", "true"), (name, value)]);
            let message = config_error(result);
            assert!(message.contains(&format!("{name}={value}")), "{message}");
        }
        let c = with(&[("enable.idempotence", "false"), ("acks", "1")]).unwrap();
        assert!(!c.enable_idempotence);
    }

    #[test]
    fn delivery_timeout_is_raised_when_unset() {
        let c = with(&[("linger.ms", "100000"), ("request.timeout.ms", "30000")]).unwrap();
        assert_eq!(c.delivery_timeout, Duration::from_millis(130_000));
        let c = with(&[("linger.ms", "9223372036854775807")]).unwrap();
        assert_eq!(c.delivery_timeout, Duration::from_millis(i32::MAX as u64));
    }

    #[test]
    fn delivery_timeout_below_linger_plus_request_timeout_is_an_error_when_both_are_set() {
        let message = config_error(with(&[
            ("delivery.timeout.ms", "30004"),
            ("request.timeout.ms", "30000"),
            ("linger.ms", "5"),
        ]));
        assert!(message.contains("delivery.timeout.ms (30004)"), "{message}");
        assert!(with(&[
            ("delivery.timeout.ms", "30005"),
            ("request.timeout.ms", "30000")
        ])
        .is_ok());
        let message = config_error(with(&[("delivery.timeout.ms", "5"), ("linger.ms", "5")]));
        assert!(message.contains("delivery.timeout.ms (5)"), "{message}");
    }

    #[test]
    fn a_set_delivery_timeout_shrinks_the_default_request_timeout() {
        let c = with(&[("delivery.timeout.ms", "30000"), ("linger.ms", "5")]).unwrap();
        assert_eq!(c.delivery_timeout, Duration::from_millis(30_000));
        assert_eq!(c.request_timeout, Duration::from_millis(29_995));
    }

    #[test]
    fn reconnect_backoff_alone_disables_exponential_reconnect_backoff() {
        let c = with(&[("reconnect.backoff.ms", "200")]).unwrap();
        assert_eq!(c.reconnect_backoff_max, Duration::from_millis(200));
        let c = with(&[
            ("reconnect.backoff.ms", "200"),
            ("reconnect.backoff.max.ms", "5000"),
        ]);
        assert_eq!(
            c.unwrap().reconnect_backoff_max,
            Duration::from_millis(5000)
        );
    }

    #[test]
    fn explicit_empty_client_id_is_kept() {
        assert_eq!(with(&[("client.id", "")]).unwrap().client_id, "");
    }

    #[test]
    fn from_properties_round_trips_through_to_properties() {
        let original = with(&[
            ("acks", "1"),
            ("linger.ms", "25"),
            ("compression.type", "gzip"),
            ("send.buffer.bytes", "-1"),
            ("connections.max.idle.ms", "-7"),
            ("client.id", "round-trip"),
        ])
        .unwrap();
        let copy = ProducerConfig::from_properties(original.to_properties()).unwrap();
        assert_eq!(copy.to_properties(), original.to_properties());
        // Every property but transactional.id, which is absent when unset.
        assert!(PROPERTIES
            .iter()
            .all(|p| copy.was_set(p) == (*p != "transactional.id")));
        let transactional = with(&[("transactional.id", "t-1")]).unwrap();
        let copy = ProducerConfig::from_properties(transactional.to_properties()).unwrap();
        assert_eq!(copy.transactional_id.as_deref(), Some("t-1"));
        assert_eq!(copy.to_properties(), transactional.to_properties());
    }

    #[test]
    fn mark_set_makes_a_typed_setting_count_as_explicit() {
        let mut c = ProducerConfig::default();
        c.set("bootstrap.servers", "h:1").unwrap();
        c.acks = Acks::Leader;
        c.mark_set("enable.idempotence").unwrap();
        assert!(c.was_set("enable.idempotence"));
        config_error(c.validate());
        assert!(ProducerConfig::default().mark_set("nope").is_err());
    }

    #[test]
    fn zero_request_and_connection_setup_timeouts_are_rejected_naming_the_property() {
        for name in ["request.timeout.ms", "socket.connection.setup.timeout.ms"] {
            let message = config_error(ProducerConfig::default().set(name, "0"));
            assert!(message.contains(&format!("{name:?}")), "{message}");
            assert!(message.contains("\"0\""), "{message}");
            assert!(message.contains("(0 would"), "{message}");
        }
        // A zero written to the field directly is caught by validate.
        let mut c = with(&[]).unwrap();
        c.request_timeout = Duration::ZERO;
        let message = config_error(c.validate());
        assert!(message.contains("request.timeout.ms"), "{message}");
        let mut c = with(&[]).unwrap();
        c.socket_connection_setup_timeout = Duration::ZERO;
        let message = config_error(c.validate());
        assert!(
            message.contains("socket.connection.setup.timeout.ms"),
            "{message}"
        );
    }

    #[test]
    fn zero_reconnect_backoff_is_raised_to_the_floor() {
        let c = with(&[("reconnect.backoff.ms", "0")]).unwrap();
        assert_eq!(c.reconnect_backoff, MIN_RECONNECT_BACKOFF);
        assert_eq!(c.reconnect_backoff_max, MIN_RECONNECT_BACKOFF);
        let c = with(&[
            ("reconnect.backoff.ms", "0"),
            ("reconnect.backoff.max.ms", "0"),
        ])
        .unwrap();
        assert_eq!(c.reconnect_backoff_max, MIN_RECONNECT_BACKOFF);
        let c = with(&[
            ("reconnect.backoff.ms", "0"),
            ("reconnect.backoff.max.ms", "500"),
        ]);
        let c = c.unwrap();
        assert_eq!(
            (c.reconnect_backoff, c.reconnect_backoff_max),
            (MIN_RECONNECT_BACKOFF, Duration::from_millis(500))
        );
    }

    /// Every duration field that validate bounds, with its property name.
    fn bounded_durations(c: &mut ProducerConfig) -> [(&'static str, &mut Duration); 11] {
        [
            ("linger.ms", &mut c.linger),
            ("max.block.ms", &mut c.max_block),
            ("delivery.timeout.ms", &mut c.delivery_timeout),
            ("request.timeout.ms", &mut c.request_timeout),
            ("retry.backoff.ms", &mut c.retry_backoff),
            ("retry.backoff.max.ms", &mut c.retry_backoff_max),
            ("reconnect.backoff.ms", &mut c.reconnect_backoff),
            ("reconnect.backoff.max.ms", &mut c.reconnect_backoff_max),
            (
                "partitioner.availability.timeout.ms",
                &mut c.partitioner_availability_timeout,
            ),
            ("metadata.max.age.ms", &mut c.metadata_max_age),
            ("metadata.max.idle.ms", &mut c.metadata_max_idle),
        ]
    }

    #[test]
    fn huge_durations_are_clamped_so_that_no_deadline_overflows() {
        let far = Instant::now() + Duration::from_secs(3600);
        for i in 0..11 {
            let mut c = with(&[]).unwrap();
            let name = {
                let (name, field) = &mut bounded_durations(&mut c)[i];
                **field = Duration::MAX;
                *name
            };
            c.socket_connection_setup_timeout = Duration::MAX;
            c.validate().unwrap_or_else(|e| panic!("{name}: {e}"));
            for (other, field) in bounded_durations(&mut c) {
                assert!(*field <= MAX_DURATION, "{name}: {other} is {field:?}");
                // What the producer computes: deadlines, doubled backoffs with jitter.
                let _ = far + field.saturating_mul(2).mul_f64(1.2);
            }
            assert!(c.socket_connection_setup_timeout <= MAX_DURATION);
        }
        // By name: Java's largest LONG is taken, then bounded.
        let c = with(&[
            ("linger.ms", "9223372036854775807"),
            ("max.block.ms", "9223372036854775807"),
            ("metadata.max.age.ms", "9223372036854775807"),
        ])
        .unwrap();
        assert_eq!((c.linger, c.max_block), (MAX_DURATION, MAX_DURATION));
        assert_eq!(c.metadata_max_age, MAX_DURATION);
        // "Never" for connections.max.idle.ms stays Duration::MAX.
        let c = with(&[("connections.max.idle.ms", "-1")]).unwrap();
        assert_eq!(c.connections_max_idle, Duration::MAX);
    }

    #[test]
    fn client_id_longer_than_a_request_header_holds_is_rejected() {
        let fits = "x".repeat(i16::MAX as usize);
        assert_eq!(with(&[("client.id", &fits)]).unwrap().client_id, fits);
        let message = config_error(with(&[("client.id", &"x".repeat(32_768))]));
        assert!(message.contains("client.id"), "{message}");
        assert!(message.contains("32768 bytes"), "{message}");
        // Bytes count, not chars: 16384 two-byte chars are 32768 bytes.
        let message = config_error(with(&[("client.id", &"é".repeat(16_384))]));
        assert!(message.contains("32768 bytes"), "{message}");
        // A field written directly is caught by validate.
        let mut c = with(&[]).unwrap();
        c.client_id = "y".repeat(40_000);
        config_error(c.validate());
    }

    #[test]
    fn metadata_max_idle_written_below_5000_ms_is_rejected() {
        let mut c = with(&[]).unwrap();
        c.metadata_max_idle = Duration::ZERO;
        let message = config_error(c.validate());
        assert!(
            message.contains("metadata.max.idle.ms is 0 ms"),
            "{message}"
        );
        c.metadata_max_idle = Duration::from_millis(5000);
        c.validate().unwrap();
    }

    #[test]
    fn lz4_levels_other_than_the_default_are_rejected() {
        assert_eq!(
            with(&[("compression.lz4.level", "9")])
                .unwrap()
                .compression_lz4_level,
            9
        );
        let message = config_error(ProducerConfig::default().set("compression.lz4.level", "12"));
        assert!(message.contains("\"compression.lz4.level\""), "{message}");
        assert!(message.contains("\"12\""), "{message}");
        assert!(message.contains("only 9"), "{message}");
        let mut c = with(&[]).unwrap();
        c.compression_lz4_level = 1;
        let message = config_error(c.validate());
        assert!(message.contains("compression.lz4.level"), "{message}");
    }

    #[test]
    fn edit_distance_counts_insertions_deletions_and_substitutions() {
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("acks", "acks"), 0);
    }

    const SECRET: &str = "s3cr3t-xyz";

    fn scram_jaas(password: &str) -> String {
        format!(
            "org.apache.kafka.common.security.scram.ScramLoginModule required \
             username=\"alice\" password=\"{password}\";"
        )
    }

    // Sets security.protocol=SSL or SASL_SSL, which a build without TLS refuses.
    #[cfg(feature = "tls")]
    #[test]
    fn security_properties_take_javas_names_and_defaults() {
        let c = with(&[]).unwrap();
        assert_eq!(c.security_protocol, SecurityProtocol::Plaintext);
        let props = c.to_properties();
        let get = |k: &str| props.iter().find(|(n, _)| *n == k).map(|(_, v)| v.clone());
        assert_eq!(get("security.protocol").as_deref(), Some("PLAINTEXT"));
        assert_eq!(
            get("ssl.endpoint.identification.algorithm").as_deref(),
            Some("https")
        );
        assert_eq!(
            get("ssl.enabled.protocols").as_deref(),
            Some("TLSv1.2,TLSv1.3")
        );
        assert_eq!(get("ssl.protocol").as_deref(), Some("TLSv1.3"));

        let jaas = scram_jaas("alice-secret");
        let c = with(&[
            ("security.protocol", "sasl_ssl"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.jaas.config", &jaas),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", "/etc/kafka/ca.pem"),
            ("ssl.endpoint.identification.algorithm", ""),
        ])
        .unwrap();
        assert_eq!(c.security_protocol, SecurityProtocol::SaslSsl);
        assert_eq!(c.sasl.mechanism, Some(crate::SaslMechanism::ScramSha512));
        assert!(!c.ssl.verifies_host_name());
        assert_eq!(
            c.ssl.truststore_location.as_deref(),
            Some(std::path::Path::new("/etc/kafka/ca.pem"))
        );
    }

    // Sets security.protocol=SSL or SASL_SSL, which a build without TLS refuses.
    #[cfg(feature = "tls")]
    #[test]
    fn security_misconfigurations_are_config_errors_that_say_what_to_do() {
        let jaas = scram_jaas("pw");
        let sasl = [
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.jaas.config", jaas.as_str()),
        ];
        let cases: Vec<(Vec<(&str, &str)>, &str)> = vec![
            (
                vec![("security.protocol", "TLS")],
                "is not one of PLAINTEXT",
            ),
            (vec![("sasl.mechanism", "GSSAPI")], "GSSAPI"),
            (vec![("security.protocol", "SASL_SSL")], "GSSAPI"),
            (
                vec![
                    ("security.protocol", "SASL_PLAINTEXT"),
                    ("sasl.mechanism", "PLAIN"),
                ],
                "sasl.jaas.config",
            ),
            (
                vec![("security.protocol", "SSL"), ("ssl.truststore.type", "JKS")],
                "PEM",
            ),
            (
                vec![
                    ("security.protocol", "SSL"),
                    ("ssl.keystore.type", "PKCS12"),
                ],
                "PEM",
            ),
            (vec![("ssl.enabled.protocols", "TLSv1.1")], "no TLS version"),
            (vec![("ssl.protocol", "SSLv3")], "not supported"),
            (
                vec![("ssl.endpoint.identification.algorithm", "ldaps")],
                "https",
            ),
            (
                vec![("sasl.kerberos.service.name", "kafka")],
                "does not support",
            ),
            (vec![("ssl.cipher.suites", "X")], "does not support"),
        ];
        for (props, expected) in cases {
            let message = config_error(with(&props));
            assert!(message.contains(expected), "{props:?}: {message}");
        }
        // A SASL mechanism whose login module does not fit.
        let plain_module = "org.apache.kafka.common.security.plain.PlainLoginModule required \
                            username=\"a\" password=\"b\";";
        let message = config_error(with(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.jaas.config", plain_module),
        ]));
        assert!(message.contains("PlainLoginModule"), "{message}");
        assert!(with(&sasl).is_ok());
    }

    // Sets security.protocol=SSL or SASL_SSL, which a build without TLS refuses.
    #[cfg(feature = "tls")]
    #[test]
    fn stores_are_read_when_the_producer_is_built_and_bad_ones_are_named() {
        let missing = with(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.location", "/nonexistent/ca.pem"),
        ])
        .unwrap();
        let message = config_error(missing.connection_security());
        assert!(message.contains("/nonexistent/ca.pem"), "{message}");

        let dir = std::env::temp_dir().join(format!("kp-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let jks = dir.join("truststore.jks");
        std::fs::write(&jks, [0xfe, 0xed, 0xfe, 0xed, 0, 0, 0, 2]).unwrap();
        let c = with(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.location", jks.to_str().unwrap()),
        ])
        .unwrap();
        let message = config_error(c.connection_security());
        assert!(message.contains("not a PEM file"), "{message}");

        let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).unwrap();
        let ok = with(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.certificates", &ca.cert.pem()),
            ("ssl.keystore.certificate.chain", &ca.cert.pem()),
            ("ssl.keystore.key", &ca.key_pair.serialize_pem()),
        ])
        .unwrap();
        let security = ok.connection_security().unwrap();
        assert_eq!(security.protocol(), SecurityProtocol::Ssl);
        let garbage = with(&[
            ("security.protocol", "SSL"),
            ("ssl.truststore.certificates", &ca.cert.pem()),
            ("ssl.keystore.certificate.chain", &ca.cert.pem()),
            ("ssl.keystore.key", SECRET),
        ])
        .unwrap();
        let message = config_error(garbage.connection_security());
        assert!(message.contains("no private key"), "{message}");
        assert!(!message.contains(SECRET), "{message}");

        // An encrypted key (encrypted by the openssl tool, an independent implementation):
        // it needs ssl.key.password, and only the right one.
        let plain_key = dir.join("key.pem");
        std::fs::write(&plain_key, ca.key_pair.serialize_pem()).unwrap();
        let encrypted = std::process::Command::new("openssl")
            .args(["pkcs8", "-topk8", "-v2", "aes-256-cbc", "-passout"])
            .arg(format!("pass:{SECRET}"))
            .arg("-in")
            .arg(&plain_key)
            .output()
            .expect("the openssl tool");
        assert!(encrypted.status.success(), "{encrypted:?}");
        let encrypted = String::from_utf8(encrypted.stdout).unwrap();
        assert!(encrypted.contains("ENCRYPTED PRIVATE KEY"), "{encrypted}");
        let cert = ca.cert.pem();
        let keyed = |password: Option<&str>| {
            let mut props = vec![
                ("security.protocol", "SSL"),
                ("ssl.truststore.certificates", cert.as_str()),
                ("ssl.keystore.certificate.chain", cert.as_str()),
                ("ssl.keystore.key", encrypted.as_str()),
            ];
            if let Some(p) = password {
                props.push(("ssl.key.password", p));
            }
            with(&props).unwrap().connection_security()
        };
        assert!(keyed(Some(SECRET)).is_ok());
        let message = config_error(keyed(None));
        assert!(message.contains("set ssl.key.password"), "{message}");
        let message = config_error(keyed(Some("not-it")));
        assert!(message.contains("does not decrypt"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    // Sets security.protocol=SSL or SASL_SSL, which a build without TLS refuses.
    #[cfg(feature = "tls")]
    #[test]
    fn secrets_never_reach_debug_properties_or_errors() {
        let jaas = scram_jaas(SECRET);
        let mut c = with(&[
            ("security.protocol", "SASL_SSL"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.jaas.config", &jaas),
            ("ssl.keystore.key", SECRET),
            (
                "ssl.keystore.certificate.chain",
                "-----BEGIN CERTIFICATE-----",
            ),
        ])
        .unwrap();
        c.sasl.password = Some(crate::Secret::new(SECRET));
        let shown = [
            format!("{c:?}"),
            format!("{:?}", c.to_properties()),
            format!("{:?}", c.connection_security()),
            format!("{:?}", c.sasl.credentials()),
        ];
        for text in shown {
            assert!(!text.contains(SECRET), "{text}");
        }
        // A JAAS text broken right after the secret.
        let broken = format!(
            "{} required password=\"{SECRET}\" username",
            "x.y.ScramLoginModule"
        );
        let message = config_error(with(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-256"),
            ("sasl.jaas.config", &broken),
        ]));
        assert!(!message.contains(SECRET), "{message}");
    }

    #[test]
    fn credentials_that_cannot_work_are_refused_when_the_producer_is_built() {
        let scram = |user: &str| {
            let jaas = format!(
                "org.apache.kafka.common.security.scram.ScramLoginModule required \
                 username=\"{user}\" password=\"pw\";"
            );
            with(&[
                ("security.protocol", "SASL_PLAINTEXT"),
                ("sasl.mechanism", "SCRAM-SHA-256"),
                ("sasl.jaas.config", &jaas),
            ])
        };
        assert!(scram("alice").is_ok());
        let message = config_error(scram("al\u{7}ice"));
        assert!(message.contains("SASLprep"), "{message}");
        let token = "org.apache.kafka.common.security.scram.ScramLoginModule required \
                     username=\"id\" password=\"hmac\" tokenauth=\"true\";";
        let message = config_error(with(&[
            ("security.protocol", "SASL_PLAINTEXT"),
            ("sasl.mechanism", "SCRAM-SHA-512"),
            ("sasl.jaas.config", token),
        ]));
        assert!(message.contains("tokenauth"), "{message}");
        // The typed path is checked too.
        let mut c = with(&[("security.protocol", "SASL_PLAINTEXT")]).unwrap_err();
        assert!(matches!(c, Error::Config(_)));
        let mut typed = ProducerConfig::default();
        typed.set("bootstrap.servers", "localhost:9092").unwrap();
        typed.set("security.protocol", "SASL_PLAINTEXT").unwrap();
        typed.sasl.mechanism = Some(crate::SaslMechanism::Plain);
        typed.sasl.username = Some("a\0b".into());
        typed.sasl.password = Some(crate::Secret::new("pw"));
        c = typed.validate().unwrap_err();
        assert!(matches!(&c, Error::Config(m) if m.contains("NUL")), "{c:?}");
    }

    // Sets security.protocol=SSL or SASL_SSL, which a build without TLS refuses.
    #[cfg(feature = "tls")]
    #[test]
    fn a_malformed_keystore_file_is_named_without_quoting_its_key() {
        const KEY_TEXT: &str = "MIGHAgEAMBMGByqGSM49AgEGCCqGSM49AwEHBG0wawIBAQQg";
        let dir = std::env::temp_dir().join(format!("kp-keystore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("keystore.pem");
        // The key's base64 on its BEGIN line, as a mangled copy and paste leaves it.
        let text = format!(
            "-----BEGIN PRIVATE KEY-----{KEY_TEXT}\n{KEY_TEXT}\n-----END PRIVATE KEY-----\n\
             -----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
        );
        std::fs::write(&file, text).unwrap();
        let c = with(&[
            ("security.protocol", "SSL"),
            ("ssl.keystore.location", file.to_str().unwrap()),
        ])
        .unwrap();
        let message = config_error(c.connection_security());
        assert!(message.contains("ssl.keystore.location"), "{message}");
        assert!(!message.contains(KEY_TEXT), "{message}");
        // Nor as the byte list the PEM parser's own message prints ("M", "I", "G", "H").
        assert!(!message.contains("77, 73, 71, 72"), "{message}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn java_only_properties_are_accepted_or_ignored_once_with_their_names() {
        let c = with(&[
            (
                "key.serializer",
                "org.apache.kafka.common.serialization.StringSerializer",
            ),
            (
                "value.serializer",
                "class org.apache.kafka.common.serialization.BytesSerializer",
            ),
            ("interceptor.classes", ""),
            ("partitioner.class", ""),
            ("metric.reporters", ""),
            ("client.dns.lookup", "use_all_dns_ips"),
            ("metric.reporters", "com.example.Reporter"),
            ("metrics.recording.level", "INFO"),
            ("metrics.num.samples", "2"),
            ("enable.metrics.push", "false"),
            ("security.providers", ""),
            ("metrics.recording.level", "DEBUG"),
        ])
        .unwrap();
        assert_eq!(
            c.java_serializers(),
            (
                Some("org.apache.kafka.common.serialization.StringSerializer"),
                Some("org.apache.kafka.common.serialization.BytesSerializer")
            )
        );
        assert_eq!(
            c.ignored(),
            [
                "metric.reporters",
                "metrics.recording.level",
                "metrics.num.samples",
                "enable.metrics.push",
                "security.providers",
            ]
        );
        assert!(!c.wants_round_robin());
        let rr = with(&[(
            "partitioner.class",
            "org.apache.kafka.clients.producer.RoundRobinPartitioner",
        )])
        .unwrap();
        assert!(rr.wants_round_robin());
    }

    #[test]
    fn java_properties_that_would_change_behaviour_are_refused_even_when_lenient() {
        for (name, value) in [
            ("interceptor.classes", "com.example.TracingInterceptor"),
            ("partitioner.class", "com.example.RegionPartitioner"),
            (
                "client.dns.lookup",
                "resolve_canonical_bootstrap_servers_only",
            ),
            ("transaction.two.phase.commit.enable", "true"),
        ] {
            let message = config_error(with(&[(name, value)]));
            assert!(
                message.contains(name) && message.contains("not supported"),
                "{message}"
            );
            // Lenient mode ignores unknown names only: these would change what is written.
            let mut c = ProducerConfig::default();
            c.set_lenient(true);
            let message = config_error(c.set(name, value).map(|_| ()));
            assert!(message.contains(name), "{message}");
        }
        let message = config_error(with(&[("key.serializer", " ")]));
        assert!(message.contains("key.serializer"), "{message}");
    }

    #[test]
    fn lenient_mode_ignores_unknown_names_but_not_bad_values() {
        let mut c = ProducerConfig::default();
        assert!(config_error(c.set("linger.msx", "5").map(|_| ())).contains("did you mean"));
        c.set_lenient(true);
        c.set("linger.msx", "5").unwrap();
        c.set("some.plugin.setting", "x").unwrap();
        assert_eq!(c.ignored(), ["linger.msx", "some.plugin.setting"]);
        assert!(config_error(c.set("linger.ms", "soon").map(|_| ())).contains("linger.ms"));
    }

    #[test]
    fn a_properties_file_sets_every_property_in_order_after_its_providers() {
        let dir = std::env::temp_dir().join(format!("kp-config-file-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("secrets.properties"),
            "id = from-the-secrets-file\n",
        )
        .unwrap();
        let file = dir.join("producer.properties");
        std::fs::write(
            &file,
            format!(
                "# a Java producer's file\n\
                 bootstrap.servers = a:9092, \\\n    b:9092\n\
                 linger.ms: 7\n\
                 linger.ms 9\n\
                 config.providers = file\n\
                 config.providers.file.class = \
                 org.apache.kafka.common.config.provider.FileConfigProvider\n\
                 transactional.id = ${{file:{}:id}}\n",
                dir.join("secrets.properties").display()
            ),
        )
        .unwrap();
        let c = ProducerConfig::from_properties_file(&file).unwrap();
        assert_eq!(c.bootstrap_servers, ["a:9092", "b:9092"]);
        assert_eq!(c.linger, Duration::from_millis(9), "the later line wins");
        assert_eq!(c.transactional_id.as_deref(), Some("from-the-secrets-file"));
        let missing = config_error(ProducerConfig::from_properties_file(dir.join("nope")));
        assert!(missing.contains("nope"), "{missing}");
        std::fs::write(&file, "bootstrap.servers=a:9092\nlinger.ms=\\u00zz\n").unwrap();
        let malformed = config_error(ProducerConfig::from_properties_file(&file));
        assert!(
            malformed.contains("producer.properties") && malformed.contains("line 2"),
            "{malformed}"
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[cfg(not(feature = "tls"))]
    #[test]
    fn a_build_without_tls_names_the_feature_tls_needs() {
        for protocol in ["SSL", "SASL_SSL"] {
            let message = config_error(with(&[
                ("security.protocol", protocol),
                ("sasl.mechanism", "PLAIN"),
                (
                    "sasl.jaas.config",
                    "org.apache.kafka.common.security.plain.PlainLoginModule required \
                     username=\"u\" password=\"p\";",
                ),
            ]));
            assert_eq!(
                message,
                format!(
                    "security.protocol={protocol} needs TLS, and this build has no TLS support \
                     (enable the crate feature \"tls\")"
                )
            );
        }
    }

    #[test]
    fn lenient_mode_still_refuses_security_and_encoding_settings_it_cannot_honour() {
        let mut c = ProducerConfig::default();
        c.set_lenient(true);
        for (name, value) in [
            ("ssl.cipher.suites", "TLS_AES_256_GCM_SHA384"),
            ("sasl.login.callback.handler.class", "com.example.Login"),
            ("value.serializer.encoding", "UTF-16"),
            ("key.serializer.encoding", "ISO-8859-1"),
            ("serializer.encoding", "UTF-16"),
        ] {
            let message = config_error(c.set(name, value).map(|_| ()));
            assert!(message.contains(name), "{message}");
        }
        for (name, value) in [
            ("value.serializer.encoding", "UTF8"),
            ("key.serializer.encoding", "utf-8"),
        ] {
            c.set(name, value).unwrap();
        }
        assert!(c.ignored().is_empty(), "{:?}", c.ignored());
    }

    #[test]
    fn a_key_given_twice_in_a_file_counts_once_the_last_time_as_in_java() {
        let mut c = ProducerConfig::default();
        c.load_properties(
            &b"compression.type=foo\n\
               compression.type=lz4\n\
               partitioner.class=org.apache.kafka.clients.producer.RoundRobinPartitioner\n\
               partitioner.class=\n\
               client.id=${env:KP_CONFIG_TEST_UNSET}\n\
               client.id=last\n\
               config.providers=env\n\
               config.providers.env.class=\
               org.apache.kafka.common.config.provider.EnvVarConfigProvider\n"[..],
        )
        .unwrap();
        assert_eq!(c.compression, Compression::Lz4);
        assert!(
            !c.wants_round_robin(),
            "the later empty partitioner.class wins"
        );
        assert_eq!(c.client_id, "last");
    }

    #[cfg(feature = "tls")]
    #[test]
    fn passwords_are_trimmed_as_in_java() {
        let mut c = ProducerConfig::default();
        c.set("ssl.key.password", "secret\n").unwrap();
        c.set("ssl.truststore.password", " pw ").unwrap();
        assert_eq!(c.ssl.key_password.as_ref().unwrap().expose(), "secret");
        assert_eq!(c.ssl.truststore_password.as_ref().unwrap().expose(), "pw");
    }
}

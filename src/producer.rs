//! [`Producer`]: the public face. `send` runs on the caller's thread up to the accumulator;
//! the sender thread does the rest (see `DESIGN.md`).
//!
//! # Ownership
//!
//! Every clone of a `Producer` shares one `Handle`; the last clone to go drops it, and its
//! `Drop` closes the producer gracefully. The handle owns the serializers, the optional
//! custom partitioner, the shared [`Core`], and (behind the `lifecycle` lock, taken only by
//! close and by the rare early-error callback path) the sender and callback threads.

use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Condvar, Mutex};

use crate::accumulator::{AppendRecord, Completion, TopicQueues};
use crate::config::{Acks, ProducerConfig};
use crate::core::{instant_after, Core, Deadline, SenderEvent};
use crate::delivery::{
    deadline_after, on_callback_thread_of, Callback, CallbackJob, CallbackQueue, CallbackThread,
    SendFuture,
};
use crate::error::Error;
use crate::interceptor::{Interceptors, ProducerInterceptor};
use crate::metrics::ProducerMetrics;
use crate::mock::{MockBackend, MockCluster, MockParts, MockProducer};
use crate::partition::{partition_for_key, Partitioner, StickyPartitioner, StickyTopic};
use crate::record::{PartitionInfo, ProducerRecord, RecordMetadata, TopicPartition};
use crate::record_batch::{RecordBatchBuilder, HEADER_SIZE};
use crate::security::{OAuthBearerTokenProvider, SaslMechanism, Secret, SecurityProtocol};
use crate::sender::Sender;
use crate::serialize::{BytesSerializer, Serializer};
use crate::transaction::{ConsumerGroupMetadata, OffsetAndMetadata, SendCheck, TransactionManager};
use crate::Compression;

/// A thread-safe Kafka producer. `Producer` alone is `Producer<Vec<u8>, Vec<u8>>`.
///
/// Clones share one sender thread and one callback thread. Dropping the last clone closes
/// the producer gracefully: everything sent before is delivered (or fails) first.
///
/// ```no_run
/// use kafka_producer::{Producer, ProducerRecord};
/// # fn main() -> Result<(), kafka_producer::Error> {
/// let producer: Producer = Producer::from_properties([
///     ("bootstrap.servers", "127.0.0.1:9092"),
///     ("linger.ms", "5"),
/// ])?;
/// let md = producer
///     .send(ProducerRecord::new("orders", b"hello".to_vec()).with_key(b"k1".to_vec()))
///     .wait()?;
/// println!("{}-{}@{}", md.topic(), md.partition(), md.offset());
/// producer.close()?;
/// # Ok(()) }
/// ```
pub struct Producer<K = Vec<u8>, V = Vec<u8>> {
    backend: Backend<K, V>,
}

/// Where a producer's records go.
enum Backend<K, V> {
    /// A Kafka cluster: the accumulator, the sender and callback threads.
    Kafka(Arc<Handle<K, V>>),
    /// An in-memory history ([`crate::mock::MockProducer`]). Type-erased, so that a
    /// `Producer<K, V>` is `Send + Sync` whatever `K` and `V` are (a mock holds records).
    Mock(Arc<dyn MockBackend<K, V>>),
}

impl<K, V> Clone for Producer<K, V> {
    fn clone(&self) -> Self {
        Producer {
            backend: match &self.backend {
                Backend::Kafka(h) => Backend::Kafka(Arc::clone(h)),
                Backend::Mock(m) => Backend::Mock(Arc::clone(m)),
            },
        }
    }
}

impl<K, V> std::fmt::Debug for Producer<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut d = f.debug_struct("Producer");
        d.field("client_id", &self.config().client_id);
        match &self.backend {
            Backend::Kafka(h) => d.field("closed", &h.core.is_closed()),
            Backend::Mock(_) => d.field("mock", &true),
        };
        d.finish_non_exhaustive()
    }
}

struct Handle<K, V> {
    core: Arc<Core>,
    key_serializer: Box<dyn Serializer<K>>,
    value_serializer: Box<dyn Serializer<V>>,
    partitioner: Option<Box<dyn Partitioner>>,
    /// The interceptor chain; `None` when there is none, so plain sends pay nothing.
    interceptors: Option<Arc<Interceptors<K, V>>>,
    lifecycle: Mutex<Lifecycle>,
    /// Set by the sender thread when it exits; close waits on it with a deadline.
    sender_done: Arc<(Mutex<bool>, Condvar)>,
    /// The sender thread, which must never wait for itself (a last clone dropped there).
    sender_thread: std::thread::ThreadId,
}

/// The threads and the callback queue. Close *takes* them out under the lock and waits
/// for the threads after releasing it, so a callback that sends, flushes or closes while
/// the producer is closing never blocks on this lock.
struct Lifecycle {
    sender: Option<JoinHandle<()>>,
    callback_thread: Option<CallbackThread>,
    /// The producer's own handle on the callback queue (for records that fail before they
    /// reach a batch); dropped by close so the callback thread can end.
    callbacks: Option<CallbackQueue>,
}

/// A `try_send` that did not buffer its record: the reason, and the record back.
#[derive(Debug)]
pub struct TrySendError<K, V> {
    /// Why the record was not buffered (for example [`Error::BufferExhausted`]).
    pub error: Error,
    /// The record, untouched, to retry or drop.
    pub record: ProducerRecord<K, V>,
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::fmt::Display for TrySendError<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "record not buffered: {}", self.error)
    }
}

impl<K: std::fmt::Debug, V: std::fmt::Debug> std::error::Error for TrySendError<K, V> {}

/// Builds a [`Producer`]: typed settings, any Java property by name, serializers and
/// partitioner. Errors in settings surface from [`ProducerBuilder::build`].
///
/// ```no_run
/// use std::time::Duration;
/// use kafka_producer::{Acks, Compression, Producer, StringSerializer};
/// # fn main() -> Result<(), kafka_producer::Error> {
/// let producer: Producer<String, String> = Producer::builder()
///     .bootstrap_servers("127.0.0.1:9092")
///     .acks(Acks::All)
///     .linger(Duration::from_millis(5))
///     .compression(Compression::Lz4)
///     .set("delivery.timeout.ms", "30000")
///     .key_serializer(StringSerializer)
///     .value_serializer(StringSerializer)
///     .build()?;
/// # Ok(()) }
/// ```
pub struct ProducerBuilder<K, V> {
    config: ProducerConfig,
    error: Option<Error>,
    key_serializer: Box<dyn Serializer<K>>,
    value_serializer: Box<dyn Serializer<V>>,
    /// What the serializers' [`Serializer::java_classes`] said when they were set.
    key_java_classes: &'static [&'static str],
    value_java_classes: &'static [&'static str],
    partitioner: Option<Box<dyn Partitioner>>,
    interceptors: Vec<Box<dyn ProducerInterceptor<K, V>>>,
}

impl<K, V> std::fmt::Debug for ProducerBuilder<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProducerBuilder")
            .field("config", &self.config)
            .field("error", &self.error)
            .field("interceptors", &self.interceptors.len())
            .finish_non_exhaustive()
    }
}

impl Producer {
    /// A builder for a producer of bytes; set serializers to produce other types.
    pub fn builder() -> ProducerBuilder<Vec<u8>, Vec<u8>> {
        ProducerBuilder {
            config: ProducerConfig::default(),
            error: None,
            key_serializer: Box::new(BytesSerializer),
            value_serializer: Box::new(BytesSerializer),
            key_java_classes: Serializer::<Vec<u8>>::java_classes(&BytesSerializer),
            value_java_classes: Serializer::<Vec<u8>>::java_classes(&BytesSerializer),
            partitioner: None,
            interceptors: Vec::new(),
        }
    }

    /// A bytes producer from Java-style properties (`bootstrap.servers`, `acks`, …).
    pub fn from_properties<I, P, Q>(properties: I) -> Result<Producer, Error>
    where
        I: IntoIterator<Item = (P, Q)>,
        P: AsRef<str>,
        Q: AsRef<str>,
    {
        let config = ProducerConfig::from_properties(properties)?;
        Producer::with_config(config)
    }

    /// A bytes producer from a Java producer `.properties` file, as it is (see
    /// [`ProducerConfig::from_properties_file`]): its `key.serializer` and
    /// `value.serializer`, if set, must be Java's `ByteArraySerializer`, `BytesSerializer`
    /// or `ByteBufferSerializer`. For other key or value types, or lenient mode, use
    /// [`ProducerBuilder::properties_file`].
    pub fn from_properties_file(path: impl AsRef<std::path::Path>) -> Result<Producer, Error> {
        Producer::builder().properties_file(path).build()
    }

    /// A bytes producer from Java `.properties` text read from `reader` (see
    /// [`Producer::from_properties_file`]).
    pub fn from_properties_reader(reader: impl std::io::Read) -> Result<Producer, Error> {
        Producer::builder().properties_reader(reader).build()
    }

    /// A bytes producer from a validated (or default-filled) [`ProducerConfig`].
    pub fn with_config(config: ProducerConfig) -> Result<Producer, Error> {
        ProducerBuilder {
            config,
            error: None,
            key_serializer: Box::new(BytesSerializer),
            value_serializer: Box::new(BytesSerializer),
            key_java_classes: Serializer::<Vec<u8>>::java_classes(&BytesSerializer),
            value_java_classes: Serializer::<Vec<u8>>::java_classes(&BytesSerializer),
            partitioner: None,
            interceptors: Vec::new(),
        }
        .build()
    }
}

impl<K, V> ProducerBuilder<K, V> {
    /// Sets any Java producer property by name (for example `"delivery.timeout.ms"`).
    pub fn set(mut self, name: &str, value: impl AsRef<str>) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.config.set(name, value.as_ref()) {
                self.error = Some(e);
            }
        }
        self
    }

    /// Sets every property of a Java producer `.properties` file, as it is (see
    /// [`ProducerConfig::from_properties_file`]). Later settings override it.
    ///
    /// ```no_run
    /// use kafka_producer::{Producer, StringSerializer};
    ///
    /// // key.serializer / value.serializer = ...StringSerializer in the file
    /// let producer: Producer<String, String> = Producer::builder()
    ///     .properties_file("config/producer.properties")
    ///     .key_serializer(StringSerializer)
    ///     .value_serializer(StringSerializer)
    ///     .build()?;
    /// # Ok::<(), kafka_producer::Error>(())
    /// ```
    pub fn properties_file(mut self, path: impl AsRef<std::path::Path>) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.config.load_properties_file(path) {
                self.error = Some(e);
            }
        }
        self
    }

    /// [`properties_file`](Self::properties_file) for properties text read from `reader`.
    pub fn properties_reader(mut self, reader: impl std::io::Read) -> Self {
        if self.error.is_none() {
            if let Err(e) = self.config.load_properties(reader) {
                self.error = Some(e);
            }
        }
        self
    }

    /// Lenient mode for the properties set after it (see
    /// [`ProducerConfig::set_lenient`]): unknown and unsupported property names are
    /// ignored with a warning instead of failing the build.
    pub fn lenient(mut self) -> Self {
        self.config.set_lenient(true);
        self
    }

    /// `bootstrap.servers`: comma-separated `host:port` list.
    pub fn bootstrap_servers(self, servers: &str) -> Self {
        self.set("bootstrap.servers", servers)
    }

    /// `client.id`.
    pub fn client_id(self, id: &str) -> Self {
        self.set("client.id", id)
    }

    /// `acks`.
    pub fn acks(self, acks: Acks) -> Self {
        self.set("acks", acks.as_str())
    }

    /// `linger.ms`. Durations past the config's bound ([`crate::config::MAX_DURATION`],
    /// `Duration::MAX` included) are lowered to it.
    pub fn linger(self, linger: Duration) -> Self {
        self.set("linger.ms", duration_ms(linger))
    }

    /// `batch.size` in bytes.
    pub fn batch_size(self, bytes: usize) -> Self {
        self.set("batch.size", bytes.to_string())
    }

    /// `buffer.memory` in bytes.
    pub fn buffer_memory(self, bytes: usize) -> Self {
        self.set("buffer.memory", bytes.to_string())
    }

    /// `max.block.ms`. Durations past the config's bound ([`crate::config::MAX_DURATION`],
    /// `Duration::MAX` included) are lowered to it.
    pub fn max_block(self, max_block: Duration) -> Self {
        self.set("max.block.ms", duration_ms(max_block))
    }

    /// `compression.type`.
    pub fn compression(self, compression: Compression) -> Self {
        self.set("compression.type", compression.name())
    }

    /// `security.protocol`: TLS, SASL or both.
    pub fn security_protocol(self, protocol: SecurityProtocol) -> Self {
        self.set("security.protocol", protocol.name())
    }

    /// SASL with a user name and password: `sasl.mechanism` PLAIN, SCRAM-SHA-256 or
    /// SCRAM-SHA-512 (instead of `sasl.jaas.config`).
    pub fn sasl_credentials(
        mut self,
        mechanism: SaslMechanism,
        username: &str,
        password: impl Into<Secret>,
    ) -> Self {
        if mechanism == SaslMechanism::OAuthBearer && self.error.is_none() {
            self.error = Some(Error::Config(
                "OAUTHBEARER takes a token provider (sasl_oauthbearer), not a password".into(),
            ));
        }
        self.config.sasl.mechanism = Some(mechanism);
        self.config.sasl.username = Some(username.to_owned());
        self.config.sasl.password = Some(password.into());
        self
    }

    /// SASL/OAUTHBEARER with tokens from `provider` (called for every authentication and
    /// re-authentication, on a connection thread).
    pub fn sasl_oauthbearer(mut self, provider: impl OAuthBearerTokenProvider) -> Self {
        self.config.sasl.mechanism = Some(SaslMechanism::OAuthBearer);
        self.config.sasl.token_provider = Some(Arc::new(provider));
        self
    }

    /// `ssl.truststore.location`: a PEM file of the CA certificates to trust (without
    /// one, the system's trust roots).
    pub fn ssl_truststore_location(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.ssl.truststore_location = Some(path.into());
        self
    }

    /// `ssl.truststore.certificates`: the CA certificates to trust, as PEM text.
    pub fn ssl_truststore_certificates(mut self, pem: &str) -> Self {
        self.config.ssl.truststore_certificates = Some(pem.to_owned());
        self
    }

    /// A client certificate for brokers that require one (`ssl.client.auth=required`):
    /// `ssl.keystore.certificate.chain` and `ssl.keystore.key` as PEM text.
    pub fn ssl_client_certificate(mut self, chain_pem: &str, key_pem: impl Into<Secret>) -> Self {
        self.config.ssl.keystore_certificate_chain = Some(chain_pem.to_owned());
        self.config.ssl.keystore_key = Some(key_pem.into());
        self
    }

    /// `ssl.keystore.location`: a PEM file with the client's private key and certificate
    /// chain.
    pub fn ssl_keystore_location(mut self, path: impl Into<std::path::PathBuf>) -> Self {
        self.config.ssl.keystore_location = Some(path.into());
        self
    }

    /// `ssl.endpoint.identification.algorithm`: `true` (Java's default, `https`) checks
    /// that the broker's certificate names the host connected to; `false` (`""`) skips
    /// that check (the chain is still verified).
    pub fn ssl_endpoint_identification(mut self, verify_host_name: bool) -> Self {
        self.config.ssl.endpoint_identification_algorithm =
            if verify_host_name { "https" } else { "" }.to_owned();
        self
    }

    /// A custom partitioner for records without an explicit partition.
    pub fn partitioner(mut self, partitioner: impl Partitioner) -> Self {
        self.partitioner = Some(Box::new(partitioner));
        self
    }

    /// Adds an interceptor at the end of the chain (see [`ProducerInterceptor`]): it sees
    /// every record before it is serialized, and every acknowledgement before the record's
    /// callback. Set the serializers (which fix the key and value types) first.
    pub fn interceptor(mut self, interceptor: impl ProducerInterceptor<K, V> + 'static) -> Self {
        self.interceptors.push(Box::new(interceptor));
        self
    }

    /// The builder's error, or a new one when interceptors for the old key or value type
    /// would be lost by a serializer change.
    fn error_for_new_types(&mut self) -> Option<Error> {
        match self.error.take() {
            Some(e) => Some(e),
            None if !self.interceptors.is_empty() => Some(Error::Config(
                "set key_serializer and value_serializer before adding interceptors: \
                 interceptors are typed by the record's key and value"
                    .into(),
            )),
            None => None,
        }
    }

    /// The key serializer (and with it the key type).
    pub fn key_serializer<K2, S: Serializer<K2>>(
        mut self,
        serializer: S,
    ) -> ProducerBuilder<K2, V> {
        ProducerBuilder {
            error: self.error_for_new_types(),
            interceptors: Vec::new(),
            config: self.config,
            key_java_classes: serializer.java_classes(),
            value_java_classes: self.value_java_classes,
            key_serializer: Box::new(serializer),
            value_serializer: self.value_serializer,
            partitioner: self.partitioner,
        }
    }

    /// The value serializer (and with it the value type).
    pub fn value_serializer<V2, S: Serializer<V2>>(
        mut self,
        serializer: S,
    ) -> ProducerBuilder<K, V2> {
        ProducerBuilder {
            error: self.error_for_new_types(),
            interceptors: Vec::new(),
            config: self.config,
            key_java_classes: self.key_java_classes,
            value_java_classes: serializer.java_classes(),
            key_serializer: self.key_serializer,
            value_serializer: Box::new(serializer),
            partitioner: self.partitioner,
        }
    }

    /// Validates the settings and starts the producer's threads.
    pub fn build(self) -> Result<Producer<K, V>, Error> {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut config = self.config;
        config.validate()?;
        let (key_class, value_class) = config.java_serializers();
        check_java_serializer("key", key_class, self.key_java_classes)?;
        check_java_serializer("value", value_class, self.value_java_classes)?;
        let partitioner = match self.partitioner {
            None if config.wants_round_robin() => {
                Some(Box::new(crate::RoundRobinPartitioner::new()) as Box<dyn Partitioner>)
            }
            chosen => chosen,
        };
        let security = config.connection_security()?;
        if config.enable_idempotence {
            log::debug!(
                "enable.idempotence=true: batches carry a producer id, epoch and sequence \
                 numbers (InitProducerId), so the broker drops duplicated retries"
            );
        }
        let (events_tx, events_rx) = crate::channel::unbounded();
        let core = Arc::new(Core::new(config, events_tx));
        let (callback_thread, callbacks) = CallbackThread::start(
            format!("kafka-producer-callbacks-{}", core.config.client_id),
            core.id,
        );
        let sender = Sender::new(Arc::clone(&core), events_rx, callbacks.clone(), security);
        let sender_done = Arc::new((Mutex::new(false), Condvar::new()));
        let done = Arc::clone(&sender_done);
        let (panic_core, panic_callbacks) = (Arc::clone(&core), callbacks.clone());
        let thread = std::thread::Builder::new()
            .name(format!("kafka-producer-sender-{}", core.config.client_id))
            .spawn(move || {
                // Set `done` even if the sender panics, so close never waits forever.
                let _done = SetOnDrop(done);
                let run = std::panic::AssertUnwindSafe(move || sender.run());
                if std::panic::catch_unwind(run).is_err() {
                    // The sender's own batches answered their records as they dropped; the
                    // producer cannot go on: refuse new sends and fail what is queued.
                    log::error!("the producer's sender thread panicked; closing the producer");
                    panic_core.shut_down(&Error::Fatal("the sender thread panicked".into()));
                    let error = Error::Fatal("the sender thread panicked".into());
                    panic_core.accumulator.abort_all(&error, &panic_callbacks);
                }
            })
            .map_err(|e| Error::Fatal(format!("could not start the sender thread: {e}")))?;
        let sender_thread = thread.thread().id();
        Ok(Producer {
            backend: Backend::Kafka(Arc::new(Handle {
                core,
                key_serializer: self.key_serializer,
                value_serializer: self.value_serializer,
                partitioner,
                interceptors: Interceptors::new(self.interceptors),
                lifecycle: Mutex::new(Lifecycle {
                    sender: Some(thread),
                    callback_thread: Some(callback_thread),
                    callbacks: Some(callbacks),
                }),
                sender_done,
                sender_thread,
            })),
        })
    }

    /// Builds a [`MockProducer`]: a producer with these settings, serializers, partitioner
    /// and interceptors whose records go to an in-memory history instead of a cluster, for
    /// tests of code that uses a [`Producer`] (see [`crate::mock`]). `bootstrap.servers`
    /// is not needed; `cluster` lists the topics and their partition counts.
    pub fn build_mock(self, cluster: MockCluster) -> Result<MockProducer<K, V>, Error>
    where
        K: Send + 'static,
        V: Send + 'static,
    {
        if let Some(e) = self.error {
            return Err(e);
        }
        let mut config = self.config;
        if config.bootstrap_servers.is_empty() {
            config.bootstrap_servers = vec!["mock-cluster:9092".into()];
        }
        config.validate()?;
        let (key_class, value_class) = config.java_serializers();
        check_java_serializer("key", key_class, self.key_java_classes)?;
        check_java_serializer("value", value_class, self.value_java_classes)?;
        let partitioner = match self.partitioner {
            None if config.wants_round_robin() => {
                Some(Box::new(crate::RoundRobinPartitioner::new()) as Box<dyn Partitioner>)
            }
            chosen => chosen,
        };
        Ok(MockProducer::new(MockParts {
            config,
            cluster,
            key_serializer: self.key_serializer,
            value_serializer: self.value_serializer,
            partitioner,
            interceptors: Interceptors::new(self.interceptors),
        }))
    }
}

/// Checks a properties file's `key.serializer` or `value.serializer` (`class`) against the
/// Java classes the producer's serializer matches (`matching`; see
/// [`Serializer::java_classes`]).
fn check_java_serializer(what: &str, class: Option<&str>, matching: &[&str]) -> Result<(), Error> {
    let Some(class) = class else {
        return Ok(());
    };
    if matching.is_empty() {
        log::warn!(
            "ignoring property {what}.serializer={class}: {what}s are written by the \
             producer's Rust serializer, which names no Java equivalent"
        );
        return Ok(());
    }
    if matching.contains(&class) {
        return Ok(());
    }
    let hint = match class.rsplit('.').next() {
        Some("StringSerializer") => format!(" (for text: {what}_serializer(StringSerializer))"),
        Some("IntegerSerializer") => format!(" (for i32: {what}_serializer(IntegerSerializer))"),
        Some("LongSerializer") => format!(" (for i64: {what}_serializer(LongSerializer))"),
        Some("ByteArraySerializer" | "BytesSerializer" | "ByteBufferSerializer") => {
            format!(" (for bytes: {what}_serializer(BytesSerializer))")
        }
        _ => String::new(),
    };
    Err(Error::Config(format!(
        "property {what}.serializer={class} does not match this producer's {what} \
         serializer, which writes what {} write{}; build the producer with a {what} \
         serializer that writes what {class} writes{hint}, or remove the property",
        matching.join(", "),
        if matching.len() == 1 { "s" } else { "" },
    )))
}

/// Marks the sender thread done when dropped (also while unwinding from a panic).
struct SetOnDrop(Arc<(Mutex<bool>, Condvar)>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        *self.0 .0.lock() = true;
        self.0 .1.notify_all();
    }
}

/// What `send` needs about a topic: its partitions (from one metadata snapshot), its
/// partition queues and its sticky-partitioner state.
#[derive(Debug)]
struct Route {
    partitions: Arc<[PartitionInfo]>,
    queues: Arc<TopicQueues>,
    sticky: Arc<StickyTopic>,
}

/// A [`Route`] cached by a sending thread, valid while the metadata version is unchanged.
#[derive(Debug)]
struct CachedRoute {
    /// `Core::id` of the producer.
    producer: u64,
    version: u64,
    topic: Box<str>,
    route: Route,
}

/// How many routes a thread keeps (topics × producers it sends to); the oldest goes first.
const MAX_CACHED_ROUTES: usize = 16;

thread_local! {
    /// The routes this thread used recently. A send whose producer, topic and metadata
    /// version match finds everything it needs here, without the metadata lock, the
    /// accumulator's topic map, the sticky partitioner's map, or hashing the topic name.
    /// Owned by the thread; only `send` touches it, and a send nested in a send (user code
    /// that sends) skips it.
    static ROUTES: std::cell::RefCell<Vec<CachedRoute>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// A record's serialized key and value (`None` for null).
type SerializedKeyValue<'a> = (Option<Cow<'a, [u8]>>, Option<Cow<'a, [u8]>>);

/// How long `send` may block.
#[derive(Debug, Clone, Copy)]
enum Blocking<'a> {
    /// Up to max.block.ms (for metadata and buffer space).
    UpTo(&'a Deadline),
    /// Not at all (`try_send`).
    Never,
}

impl<K: 'static, V: 'static> Producer<K, V> {
    /// Sends a record. Blocks only while topic metadata or buffer space is missing (up to
    /// max.block.ms); errors found before the record is buffered complete the returned
    /// future. Dropping the future never cancels delivery.
    ///
    /// Buffer space includes the memory of records whose callbacks wait to run, so when
    /// callbacks fall behind, `send` waits for them. Inside one of this producer's own
    /// callbacks it does not wait for buffer space (only the callback thread could free
    /// it) and fails at once with [`Error::BufferExhausted`] when there is none.
    pub fn send(&self, record: ProducerRecord<K, V>) -> SendFuture {
        let deadline = Deadline::after(self.config().max_block);
        let mut record = record;
        let completion = match self.interceptors() {
            None => Completion::Future,
            Some(chain) => {
                chain.on_send(&mut record);
                Completion::FutureAndCallback(Interceptors::acknowledger(chain))
            }
        };
        match self.send_record(record, completion, Blocking::UpTo(&deadline)) {
            Ok(future) => future.unwrap_or_else(|| SendFuture::ready(Err(Error::Closed))),
            Err((error, completion, partition, record)) => {
                if let Completion::FutureAndCallback(acknowledge) = completion {
                    // The interceptors hear of it before the caller does, as in Java.
                    let tp = early_partition(&record, partition);
                    crate::delivery::run_one(acknowledge, &tp, Err(error.clone()));
                }
                SendFuture::ready(Err(error))
            }
        }
    }

    /// Sends a record; `callback` runs once with the result, on the producer's callback
    /// thread (one callback at a time, in send order per partition).
    pub fn send_with_callback<F>(&self, record: ProducerRecord<K, V>, callback: F)
    where
        F: FnOnce(Result<RecordMetadata, Error>) + Send + 'static,
    {
        let deadline = Deadline::after(self.config().max_block);
        let mut record = record;
        let callback: Callback = match self.interceptors() {
            None => Box::new(move |_, result| callback(result)),
            Some(chain) => {
                chain.on_send(&mut record);
                let chain = Arc::clone(chain);
                Box::new(move |tp, result| {
                    chain.on_acknowledgement(tp, &result);
                    callback(result)
                })
            }
        };
        let sent = self.send_record(
            record,
            Completion::Callback(callback),
            Blocking::UpTo(&deadline),
        );
        if let Err((error, Completion::Callback(cb), partition, record)) = sent {
            let tp = early_partition(&record, partition);
            match &self.backend {
                Backend::Kafka(h) => h.early_callback(cb, tp, error, &deadline),
                Backend::Mock(m) => m.early_callback(cb, tp, error),
            }
        }
    }

    /// Sends a record without ever blocking: when metadata is not cached yet or the buffer
    /// is full, returns the error with the record.
    ///
    /// Interceptors' `on_send` ran on a record that comes back (it runs again if the record
    /// is sent again). Their `on_acknowledgement` runs for a record refused for good (an
    /// invalid topic, a serialization error, ...), not for one that would have had to wait
    /// ([`Error::BufferExhausted`], or [`Error::MetadataTimeout`] without metadata yet): that
    /// one was not sent, and may be again.
    // The record comes back by value, like crossbeam's `TrySendError<T>`: boxing it would
    // cost an allocation on the path meant for back-pressure.
    #[allow(clippy::result_large_err)]
    pub fn try_send(&self, record: ProducerRecord<K, V>) -> Result<SendFuture, TrySendError<K, V>> {
        let mut record = record;
        let completion = match self.interceptors() {
            None => Completion::Future,
            Some(chain) => {
                chain.on_send(&mut record);
                Completion::FutureAndCallback(Interceptors::acknowledger(chain))
            }
        };
        match self.send_record(record, completion, Blocking::Never) {
            Ok(future) => Ok(future.unwrap_or_else(|| SendFuture::ready(Err(Error::Closed)))),
            Err((error, completion, partition, record)) => {
                let would_block = matches!(
                    error,
                    Error::BufferExhausted { .. } | Error::MetadataTimeout { waited_ms: 0, .. }
                );
                if let (Completion::FutureAndCallback(acknowledge), false) =
                    (completion, would_block)
                {
                    // Refused for good: the interceptors hear of it as for `send`.
                    let tp = early_partition(&record, partition);
                    crate::delivery::run_one(acknowledge, &tp, Err(error.clone()));
                }
                Err(TrySendError { error, record })
            }
        }
    }

    /// Hands `record` to the backend; on error it comes back with its completion.
    #[allow(clippy::result_large_err)]
    fn send_record(
        &self,
        record: ProducerRecord<K, V>,
        completion: Completion,
        blocking: Blocking<'_>,
    ) -> Result<Option<SendFuture>, RefusedRecord<K, V>> {
        match &self.backend {
            Backend::Kafka(h) => h
                .send(&record, completion, blocking)
                .map_err(|(e, c, p)| (e, c, p, record)),
            Backend::Mock(m) => m.send(record, completion),
        }
    }
}

impl<K, V> Producer<K, V> {
    /// A producer whose records go to `mock`.
    pub(crate) fn from_mock(mock: Arc<dyn MockBackend<K, V>>) -> Self {
        Producer {
            backend: Backend::Mock(mock),
        }
    }

    /// The interceptor chain, if any.
    fn interceptors(&self) -> Option<&Arc<Interceptors<K, V>>> {
        match &self.backend {
            Backend::Kafka(h) => h.interceptors.as_ref(),
            Backend::Mock(m) => m.interceptors(),
        }
    }

    /// Blocks until every record sent before the call has completed (and its callback ran).
    pub fn flush(&self) -> Result<(), Error> {
        match &self.backend {
            Backend::Kafka(h) => h.flush(None),
            Backend::Mock(m) => m.flush(),
        }
    }

    /// Like [`Producer::flush`], giving up with [`Error::Timeout`] after `timeout` (a timeout
    /// too long to express as an instant, such as `Duration::MAX`, waits without limit).
    pub fn flush_timeout(&self, timeout: Duration) -> Result<(), Error> {
        match &self.backend {
            Backend::Kafka(h) => h.flush(deadline_after(timeout)),
            Backend::Mock(m) => m.flush(),
        }
    }

    /// The partitions of `topic`, waiting up to max.block.ms for metadata.
    pub fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionInfo>, Error> {
        validate_topic(topic)?;
        let handle = match &self.backend {
            Backend::Kafka(h) => h,
            Backend::Mock(m) => return m.partitions_for(topic),
        };
        let core = &handle.core;
        let deadline = instant_after(core.config.max_block);
        let partitions = core
            .metadata
            .wait_for_topic(topic, deadline, || core.wake_sender())?;
        Ok(partitions.to_vec())
    }

    /// A snapshot of the producer's counters.
    pub fn metrics(&self) -> ProducerMetrics {
        let handle = match &self.backend {
            Backend::Kafka(h) => h,
            Backend::Mock(m) => return m.metrics(),
        };
        handle.core.metrics_snapshot()
    }

    /// Closes gracefully: delivers everything buffered (flush), then stops the threads.
    /// Later sends fail with [`Error::Closed`]. Waits as long as delivery takes (bounded by
    /// delivery.timeout.ms) and until every callback ran; inside one of this producer's
    /// callbacks it does not wait for the callback thread (itself).
    ///
    /// Inside this producer's own serializer or partitioner (which run inside a `send`),
    /// close only *starts* the graceful close and returns `Ok` at once, as Java's close
    /// from a callback does not block: the sender thread waits for that very send, so
    /// waiting for it would deadlock. The threads then end once everything is delivered;
    /// the send in progress completes normally or with [`Error::Closed`].
    pub fn close(&self) -> Result<(), Error> {
        match &self.backend {
            Backend::Kafka(h) => h.close(None),
            Backend::Mock(m) => m.close(),
        }
    }

    /// Like [`Producer::close`], but returns within `timeout` (plus at most 200 ms for the
    /// sender thread to fail what it holds, and scheduling delays). When the timeout passes
    /// first, it returns [`Error::Timeout`] and:
    /// - records not delivered yet fail with [`Error::Closed`], in send order per
    ///   partition (the sender thread fails those it holds as it stops, close fails those
    ///   still queued);
    /// - a send still inside a serializer or partitioner fails with [`Error::Closed`] when
    ///   it gets to buffer its record;
    /// - threads that did not end in time are detached, not waited for: in particular the
    ///   callback thread runs the callbacks still queued (those above included) and the
    ///   futures they precede resolve, after `close_timeout` returned.
    ///
    /// A timeout too long to express as an instant (`Duration::MAX`) waits like `close`.
    pub fn close_timeout(&self, timeout: Duration) -> Result<(), Error> {
        match &self.backend {
            Backend::Kafka(h) => h.close(deadline_after(timeout)),
            Backend::Mock(m) => m.close(),
        }
    }

    /// The validated configuration.
    pub fn config(&self) -> &ProducerConfig {
        match &self.backend {
            Backend::Kafka(h) => &h.core.config,
            Backend::Mock(m) => m.config(),
        }
    }

    /// The Kafka backend, or `Err` with the mock.
    fn kafka(&self) -> Result<&Handle<K, V>, &dyn MockBackend<K, V>> {
        match &self.backend {
            Backend::Kafka(h) => Ok(h),
            Backend::Mock(m) => Err(&**m),
        }
    }

    /// The transaction manager, or the error of a transactional call on a producer
    /// without `transactional.id`.
    fn transactions<'a>(
        handle: &'a Handle<K, V>,
        call: &str,
    ) -> Result<&'a TransactionManager, Error> {
        let core = &handle.core;
        if core.is_closed() {
            return Err(Error::Closed);
        }
        core.transactions.as_deref().ok_or_else(|| {
            Error::IllegalState(format!(
                "{call} on a producer without transactional.id: set transactional.id to \
                 use transactions"
            ))
        })
    }

    /// Prepares a transactional producer, once, before its first transaction: finds the
    /// transaction coordinator and gets a producer id and epoch for `transactional.id`.
    /// This fences off every older producer with the same id (their open transactions are
    /// aborted and their later calls fail with [`Error::Fenced`]), and waits until the
    /// transactions an older producer left unfinished are completed.
    ///
    /// May be called only when the producer is new. Blocks up to max.block.ms; on
    /// [`Error::Timeout`] the work goes on, and calling `init_transactions` again waits
    /// for it (any other transactional call fails meanwhile).
    ///
    /// Errors: [`Error::IllegalState`] without `transactional.id` or when called twice;
    /// [`Error::Fenced`] / [`Error::Fatal`] when the coordinator refuses (an authorization
    /// failure, a transaction timeout above the broker's maximum); [`Error::Timeout`].
    pub fn init_transactions(&self) -> Result<(), Error> {
        let handle = match self.kafka() {
            Ok(h) => h,
            Err(mock) => return mock.init_transactions(),
        };
        let txn = Self::transactions(handle, "init_transactions")?;
        let id = txn.begin_init()?;
        handle.core.wake_sender();
        txn.wait(id, "init_transactions", self.block_deadline())
    }

    /// Opens a transaction: the records sent from now on, and the offsets sent with
    /// [`send_offsets_to_transaction`](Self::send_offsets_to_transaction), become visible
    /// to read_committed consumers together when it commits, or never if it aborts. A
    /// local step: nothing is sent yet.
    ///
    /// May be called after [`init_transactions`](Self::init_transactions) when no
    /// transaction is open. Errors: [`Error::IllegalState`] before `init_transactions`,
    /// while a transaction is open, or while a commit or abort that timed out is not
    /// finished; [`Error::TransactionAbortable`] after an abortable error (abort first);
    /// [`Error::Fenced`] / [`Error::Fatal`] once the producer failed.
    pub fn begin_transaction(&self) -> Result<(), Error> {
        match self.kafka() {
            Ok(h) => Self::transactions(h, "begin_transaction")?.begin(),
            Err(mock) => mock.begin_transaction(),
        }
    }

    /// Adds consumer offsets to the open transaction: they are committed for the group
    /// `group` if and only if the transaction commits (the exactly-once read-process-write
    /// loop: the offsets of the input records consumed, with the output records produced
    /// from them). `group` should come from the consumer (generation and member id let
    /// the group coordinator fence a zombie consumer); [`ConsumerGroupMetadata::new`] with
    /// the group id alone skips that check.
    ///
    /// May be called inside a transaction. Blocks until the group coordinator has the
    /// offsets, up to max.block.ms ([`Error::Timeout`]: call it again to keep waiting).
    /// An empty map does nothing. Errors: [`Error::IllegalState`] outside a transaction;
    /// [`Error::TransactionAbortable`] when the coordinator refuses the offsets (for
    /// example a fenced consumer generation) or after an earlier abortable error;
    /// [`Error::Fenced`] / [`Error::Fatal`].
    pub fn send_offsets_to_transaction(
        &self,
        offsets: &HashMap<TopicPartition, OffsetAndMetadata>,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), Error> {
        let handle = match self.kafka() {
            Ok(h) => h,
            Err(mock) => return mock.send_offsets_to_transaction(offsets, group),
        };
        let txn = Self::transactions(handle, "send_offsets_to_transaction")?;
        let mut list: Vec<(TopicPartition, OffsetAndMetadata)> = offsets
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        list.sort_by(|a, b| a.0.cmp(&b.0));
        let Some(id) = txn.begin_send_offsets(list, group)? else {
            return Ok(());
        };
        handle.core.wake_sender();
        txn.wait(id, "send_offsets_to_transaction", self.block_deadline())
    }

    /// Commits the open transaction: sends every record of it still buffered (as
    /// [`flush`](Self::flush) does), waits until all of them are acknowledged, then asks the
    /// coordinator to commit. Returns once the transaction is committed: its records and
    /// offsets are visible to read_committed consumers (their callbacks ran before).
    ///
    /// May be called inside a transaction. Sends made during the commit fail with
    /// [`Error::IllegalState`]. Blocks up to max.block.ms; on [`Error::Timeout`] the
    /// commit goes on and calling `commit_transaction` again waits for it. Errors:
    /// [`Error::IllegalState`] without an open transaction; [`Error::TransactionAbortable`]
    /// when a record of the transaction failed or the coordinator refused: call
    /// [`abort_transaction`](Self::abort_transaction); [`Error::Fenced`] /
    /// [`Error::Fatal`].
    pub fn commit_transaction(&self) -> Result<(), Error> {
        self.end_transaction(true)
    }

    /// Aborts the open transaction: records of it not sent yet fail with
    /// [`Error::TransactionAborted`], records already sent are waited for, then the
    /// coordinator aborts it. None of its records or offsets ever become visible to
    /// read_committed consumers. The way out of an abortable error.
    ///
    /// May be called inside a transaction or after an abortable error. Blocks up to
    /// max.block.ms ([`Error::Timeout`]: call it again to keep waiting). Errors:
    /// [`Error::IllegalState`] without an open transaction; [`Error::Fenced`] /
    /// [`Error::Fatal`].
    pub fn abort_transaction(&self) -> Result<(), Error> {
        self.end_transaction(false)
    }

    fn end_transaction(&self, commit: bool) -> Result<(), Error> {
        let name = if commit {
            "commit_transaction"
        } else {
            "abort_transaction"
        };
        let handle = match self.kafka() {
            Ok(h) => h,
            Err(mock) => return mock.end_transaction(commit),
        };
        let txn = Self::transactions(handle, name)?;
        if on_callback_thread_of(handle.core.id) {
            return Err(Error::IllegalState(format!(
                "{name} inside a producer callback would deadlock"
            )));
        }
        let id = txn.begin_end(commit)?;
        let core = &handle.core;
        // Every batch is ready at once (no linger): the commit waits for all of them.
        core.accumulator.begin_flush();
        core.wake_sender();
        let result = txn.wait(id, name, self.block_deadline());
        core.accumulator.end_flush();
        if result.is_ok() {
            // Callbacks of the transaction's records run before the call returns.
            handle.wait_for_queued_callbacks(self.block_deadline());
        }
        result
    }

    fn block_deadline(&self) -> Option<Instant> {
        deadline_after(self.config().max_block)
    }
}

/// Metrics by Java's names and the records' whereabouts.
impl<K, V> Producer<K, V> {
    /// The producer's metrics under the names and groups Java's producer gives them
    /// (`record-send-total` in `producer-metrics`, `byte-total` per topic in
    /// `producer-topic-metrics`, `request-latency-avg` per broker in
    /// `producer-node-metrics`, ...), tagged with `client-id` and, where they apply, `topic`
    /// or `node-id`. These are the sender's and the buffer's metrics (DESIGN.md §2.3 lists
    /// them); Java's connection-level ones (`connection-*`, `incoming-byte-*`,
    /// `response-*`, `metadata-age`, ...) are not kept. `request-total` and
    /// `request-latency-*` count Produce requests, and latency only for answered ones.
    /// A topic's figures go when its metadata is forgotten (`metadata.max.idle.ms`).
    ///
    /// Totals count from the producer's start. Rates (`*-rate`) are per second over the
    /// last one to two sample windows (30 s, Java's `metrics.sample.window.ms` default)
    /// when metrics are read at least once a window, else since the previous read; times
    /// are in milliseconds. `record-send-total` counts records as they leave in Produce
    /// requests, retries again, as Java does ([`ProducerMetrics::records_sent`] counts
    /// acknowledgements).
    ///
    /// A mock producer ([`crate::mock`]) reports the same names with what it knows: its
    /// records sent and failed (rates 0), nothing of batches or brokers.
    pub fn metrics_by_name(&self) -> Vec<crate::Metric> {
        match &self.backend {
            Backend::Kafka(h) => h.core.metrics_by_name(),
            Backend::Mock(m) => {
                let snapshot = m.metrics();
                let gauges = crate::metrics::Gauges {
                    buffer_in_use: snapshot.buffer_bytes_in_use,
                    buffer_total: snapshot.buffer_total_bytes,
                    bufferpool_wait_ns: 0,
                };
                crate::metrics::Metrics::from_snapshot(&snapshot).by_name(
                    &m.config().client_id,
                    gauges,
                    std::time::Instant::now(),
                )
            }
        }
    }

    /// Records buffered and not sent yet (or waiting to be sent again after a retriable
    /// error). Looks at every partition queue in turn: meant for monitoring, not for
    /// every send. A mock producer buffers nothing (its records wait as if in flight): 0.
    pub fn queued_records(&self) -> u64 {
        match &self.backend {
            Backend::Kafka(h) => h.core.accumulator.queued_records(),
            Backend::Mock(_) => 0,
        }
    }

    /// Fails every buffered record that was not sent yet with [`Error::Purged`] (its
    /// future or callback gets it) and returns how many records that was, without closing
    /// the producer: later sends work as before. As librdkafka's purge of its queues.
    ///
    /// Records in requests awaiting an answer are not touched, nor are records the
    /// producer sent once and will send again (a retry, or part of a batch the broker
    /// asked to split): with idempotence they carry sequence numbers the broker may have
    /// seen, and dropping them would leave a gap the broker refuses. Records never sent
    /// hold no sequence numbers yet, so each partition's numbering goes on consistently.
    /// Purged records complete in order with their partition's records in flight, after
    /// them. In a transaction, purging a record makes the transaction abortable, as any
    /// failed record does.
    ///
    /// Purged: every record whose `send` returned before this call and that was not sent
    /// by the time the sender thread takes the request up; a record sent concurrently with
    /// this call may or may not be. Fails with [`Error::Closed`] once the producer's
    /// sender thread has stopped (after close).
    ///
    /// A mock producer has nothing unsent to purge (its waiting records count as in
    /// flight): `Ok(0)`.
    pub fn purge(&self) -> Result<u64, Error> {
        let core = match &self.backend {
            Backend::Kafka(h) => &h.core,
            Backend::Mock(_) => return Ok(0),
        };
        let (reply, answer) = std::sync::mpsc::sync_channel(1);
        core.events
            .send(crate::core::SenderEvent::Purge(reply))
            .map_err(|_| Error::Closed)?;
        // The sender answers between two passes, or drops the request as it exits.
        answer.recv().map_err(|_| Error::Closed)
    }

    /// Records in Produce requests awaiting the broker's answer (a mock producer: records
    /// waiting for the test to complete them).
    pub fn in_flight_records(&self) -> u64 {
        match &self.backend {
            Backend::Kafka(h) => h
                .core
                .metrics
                .records_in_flight
                .load(std::sync::atomic::Ordering::Relaxed),
            Backend::Mock(m) => m.waiting() as u64,
        }
    }
}

/// The statistics hook.
impl<K, V> ProducerBuilder<K, V> {
    /// Calls `callback` every `interval` with the producer's metrics: the
    /// [`ProducerMetrics`] snapshot and the list under Java's names
    /// ([`Producer::metrics_by_name`]). Sets `statistics.interval.ms` (librdkafka's
    /// property; a zero interval turns the hook off).
    ///
    /// The callback runs on a small thread of the producer's own, never on the sender
    /// thread, so a slow one only delays the next statistics. A panic in it is caught and
    /// logged. It stops with the producer: once `close` returned, no new call starts but
    /// for one that was about to start as the producer stopped; a call already running
    /// finishes.
    ///
    /// A mock producer ([`crate::mock`]) runs no hook.
    ///
    /// The producer keeps the callback: a callback that owns a clone of its own producer
    /// makes a cycle, and that producer then closes only when `close` is called, not when
    /// dropped.
    ///
    /// ```no_run
    /// use std::time::Duration;
    /// use kafka_producer::Producer;
    /// # fn main() -> Result<(), kafka_producer::Error> {
    /// let producer = Producer::builder()
    ///     .bootstrap_servers("127.0.0.1:9092")
    ///     .statistics_callback(Duration::from_secs(10), |snapshot, _by_name| {
    ///         println!("{} records sent", snapshot.records_sent);
    ///     })
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn statistics_callback(
        mut self,
        interval: Duration,
        callback: impl Fn(&ProducerMetrics, &[crate::Metric]) + Send + Sync + 'static,
    ) -> Self {
        self.config.statistics_callback =
            Some(crate::statistics::StatisticsCallback(Arc::new(callback)));
        self.set("statistics.interval.ms", duration_ms(interval))
    }

    /// Publishes the producer's metrics to the [`metrics`] crate's global recorder every
    /// `interval`, through the statistics hook (it replaces a
    /// [`statistics_callback`](Self::statistics_callback)); see
    /// [`metrics_export`](crate::metrics_export) for the names and labels. Feature
    /// `metrics`.
    #[cfg(feature = "metrics")]
    pub fn export_metrics(self, interval: Duration) -> Self {
        self.statistics_callback(interval, |_, by_name| {
            crate::metrics_export::publish(by_name)
        })
    }
}

impl<K: 'static, V: 'static> Handle<K, V> {
    /// The caller-thread half of a send. `Ok(None)` for a callback completion.
    fn send(
        &self,
        record: &ProducerRecord<K, V>,
        completion: Completion,
        blocking: Blocking,
    ) -> Result<Option<SendFuture>, Refused> {
        let core = &self.core;
        let fail = |e: Error, c: Completion| {
            crate::metrics::Metrics::add(&core.metrics.record_errors, 1);
            if let Some(txn) = &core.transactions {
                txn.send_failed(&e);
            }
            Err((e, c, None))
        };
        let Some(_append) = core.begin_append() else {
            return fail(Error::Closed, completion);
        };
        if let Some(fatal) = core.fatal() {
            return fail(fatal, completion);
        }
        let topic = record.topic();
        let version = core.metadata.version();
        ROUTES.with(|cell| match cell.try_borrow_mut() {
            Ok(mut routes) => {
                let cached = routes.iter().position(|r| {
                    r.producer == core.id && r.version == version && *r.topic == *topic
                });
                let route = match cached {
                    Some(i) => &routes[i].route,
                    None => {
                        let (route, version) = match self.route(topic, blocking) {
                            Ok(r) => r,
                            Err(e) => return fail(e, completion),
                        };
                        let Some(version) = version else {
                            return self.send_on(&route, record, completion, blocking);
                        };
                        routes.retain(|r| !(r.producer == core.id && *r.topic == *topic));
                        if routes.len() >= MAX_CACHED_ROUTES {
                            routes.remove(0);
                        }
                        routes.push(CachedRoute {
                            producer: core.id,
                            version,
                            topic: topic.into(),
                            route,
                        });
                        &routes.last().expect("just pushed").route
                    }
                };
                self.send_on(route, record, completion, blocking)
            }
            // A send from inside this thread's send (a serializer or partitioner that sends):
            // no cache, same result.
            Err(_) => match self.route(topic, blocking) {
                Ok((route, _)) => self.send_on(&route, record, completion, blocking),
                Err(e) => fail(e, completion),
            },
        })
    }

    /// What `send` needs about `topic`, waiting for its metadata as `blocking` allows, and
    /// the metadata version it belongs to (`None` when it came from a wait).
    fn route(&self, topic: &str, blocking: Blocking<'_>) -> Result<(Route, Option<u64>), Error> {
        let core = &self.core;
        validate_topic(topic)?;
        let (partitions, version) = match core.metadata.cached_partitions_versioned(topic) {
            Some((p, v)) => (p, Some(v)),
            None => match blocking {
                Blocking::UpTo(deadline) => {
                    let p = core
                        .metadata
                        .wait_for_topic(topic, deadline.at(), || core.wake_sender())?;
                    (p, None)
                }
                Blocking::Never => {
                    core.wake_sender();
                    return Err(Error::MetadataTimeout {
                        topic: topic.to_owned(),
                        waited_ms: 0,
                    });
                }
            },
        };
        let route = Route {
            queues: core.accumulator.topic_queues(topic, partitions.len()),
            sticky: core.sticky.topic(topic),
            partitions,
        };
        Ok((route, version))
    }

    /// The rest of `send`, once the topic's route is known.
    fn send_on(
        &self,
        route: &Route,
        record: &ProducerRecord<K, V>,
        completion: Completion,
        blocking: Blocking<'_>,
    ) -> Result<Option<SendFuture>, Refused> {
        let core = &self.core;
        // `partition`: the one chosen, once it was (interceptors are told it).
        let fail_in = |e: Error, c: Completion, partition: Option<i32>| {
            crate::metrics::Metrics::add(&core.metrics.record_errors, 1);
            if let Some(txn) = &core.transactions {
                txn.send_failed(&e);
            }
            Err((e, c, partition))
        };
        let fail = |e: Error, c: Completion| fail_in(e, c, None);
        let partitions = &route.partitions;
        let serialized = serialize(&*self.key_serializer, &*self.value_serializer, record);
        let (key, value) = match serialized {
            Ok(kv) => kv,
            Err(e) => return fail(e, completion),
        };
        let (key, value) = (key.as_deref(), value.as_deref());
        let headers = record.headers().as_slice();
        let payload = RecordBatchBuilder::payload_size(key, value, headers);
        let record_size = RecordBatchBuilder::record_size_with_payload(payload, 0, 0);
        if let Err(e) = check_size(HEADER_SIZE + record_size, &core.config) {
            return fail(e, completion);
        }
        let (partition, sticky) = match choose_partition(
            record,
            key,
            value,
            &route.partitions,
            self.partitioner.as_deref(),
            core.config.partitioner_ignore_keys,
            &core.sticky,
            &route.sticky,
        ) {
            Ok(p) => p,
            Err(e) => return fail(e, completion),
        };
        if let Some(txn) = &core.transactions {
            let tp = TopicPartition::new(record.topic(), partition);
            match txn.check_send(&tp) {
                Ok(SendCheck::Ok) => {}
                Ok(SendCheck::OkNewPartition) => core.wake_sender(),
                Err(e) => return fail_in(e, completion, Some(partition)),
            }
        }
        let timestamp = record.timestamp().unwrap_or_else(now_ms);
        let append = AppendRecord {
            timestamp,
            key,
            value,
            headers,
            payload,
        };
        let owned;
        let queue = match route.queues.get(partition) {
            Some(q) => q,
            None => {
                owned = core.accumulator.queue(record.topic(), partition);
                &owned
            }
        };
        let deadline = match blocking {
            // Inside this producer's callback only the callback thread itself could free
            // memory: waiting for it would only wait out max.block.ms.
            Blocking::UpTo(d) if !on_callback_thread_of(core.id) => Some(d),
            _ => None,
        };
        let appended = match core
            .accumulator
            .append(queue, &append, completion, deadline)
        {
            Ok(a) => a,
            Err((e, c)) => return fail_in(e, c, Some(partition)),
        };
        if appended.wake_sender {
            core.wake_sender();
        } else if let Some(at) = appended.lingers_until {
            core.batch_lingers_until(at);
        }
        if sticky {
            core.sticky.on_append_in(
                &route.sticky,
                partition,
                record_size,
                appended.batch_full,
                partitions,
            );
        }
        Ok(appended.future)
    }
}

impl<K, V> Handle<K, V> {
    /// Reports an error for a record that never reached a batch through its callback, on
    /// the callback thread (or inline once the producer is closed and that thread is gone).
    ///
    /// The queued callback holds its room in buffer.memory until it runs (see `delivery`),
    /// waiting for it up to max.block.ms (not at all on this producer's callback thread,
    /// where only this thread could free it). When no room came in time the callback runs
    /// here, on the sending thread, as Java runs every such callback: either way it runs
    /// exactly once, and memory stays bounded while callbacks fall behind.
    fn early_callback(
        &self,
        callback: Callback,
        tp: TopicPartition,
        error: Error,
        deadline: &Deadline,
    ) {
        let queue = self.lifecycle.lock().callbacks.clone();
        let Some(queue) = queue else {
            crate::delivery::run_one(callback, &tp, Err(error));
            return;
        };
        let wait = (!on_callback_thread_of(self.core.id)).then(|| deadline.at());
        match self.core.accumulator.reserve_callback(wait) {
            Ok(memory) => queue.submit(CallbackJob::Single {
                callback,
                tp,
                result: Err(error),
                memory: Some(memory),
            }),
            Err(_) => crate::delivery::run_one(callback, &tp, Err(error)),
        }
    }

    fn flush(&self, deadline: Option<Instant>) -> Result<(), Error> {
        if on_callback_thread_of(self.core.id) {
            // Java refuses this too: the batches flush waits for complete on this thread.
            return Err(Error::IllegalState(
                "flush() inside a producer callback would deadlock".into(),
            ));
        }
        let core = &self.core;
        let start = Instant::now();
        let timeout = || Error::Timeout {
            operation: "flush",
            waited_ms: start.elapsed().as_millis() as u64,
        };
        core.accumulator.begin_flush();
        core.wake_sender();
        let mut result = Ok(());
        for batch in core.accumulator.incomplete() {
            if !batch.wait_settled(deadline) {
                result = Err(timeout());
                break;
            }
        }
        core.accumulator.end_flush();
        // Batches that completed before the snapshot above are no longer in it, but their
        // callbacks may still be queued, and so may the callbacks of records that failed
        // before reaching a batch: wait for the callback thread to reach this point.
        if result.is_ok() && !self.wait_for_queued_callbacks(deadline) {
            result = Err(timeout());
        }
        result
    }

    /// Waits until the callback thread ran every job queued so far; false on timeout.
    fn wait_for_queued_callbacks(&self, deadline: Option<Instant>) -> bool {
        let Some(queue) = self.lifecycle.lock().callbacks.clone() else {
            return true; // closed: the callback thread already ran everything
        };
        let (done_tx, done_rx) = crossbeam_channel::bounded(1);
        queue.submit(CallbackJob::Barrier(done_tx));
        drop(queue);
        match deadline {
            // Disconnected means the callback thread ended: nothing is left to wait for.
            None => {
                let _ = done_rx.recv();
                true
            }
            Some(d) => !matches!(
                done_rx.recv_deadline(d),
                Err(crossbeam_channel::RecvTimeoutError::Timeout)
            ),
        }
    }

    fn close(&self, deadline: Option<Instant>) -> Result<(), Error> {
        let start = Instant::now();
        let core = &self.core;
        if core.mark_closed() {
            core.shut_down(&Error::Closed);
            let _ = core.events.send(SenderEvent::Close);
        }
        if std::thread::current().id() == self.sender_thread {
            // The last clone was dropped on the sender thread (a batch dropped by a
            // panicking sender answered a callback that held it): it cannot wait for
            // itself; it exits once everything is sent.
            return Ok(());
        }
        if core.sending_on_this_thread() {
            // Inside this producer's serializer or partitioner: the sender waits for this
            // thread's append before it exits, so waiting for the sender would deadlock.
            log::warn!("close() inside the producer's own send: closing without waiting");
            return Ok(());
        }
        let (sender_ended, in_time) = self.wait_for_sender(deadline);
        let (sender, callbacks, callback_thread) = {
            let mut l = self.lifecycle.lock();
            (
                l.sender.take(),
                l.callbacks.take(),
                l.callback_thread.take(),
            )
        };
        match sender {
            Some(sender) if sender_ended => {
                let _ = sender.join();
            }
            // Given up on: detached. It fails what it holds as it stops (ForceClose).
            _ => {}
        }
        // Refuse later appends (sends still inside a serializer or partitioner). A sender
        // that ended shut the queues and failed what they held, in send order; what is
        // left here (a sender that panicked) fails now, so that every record completes
        // exactly once (see `Accumulator::shut` for why none slips in between). A sender
        // given up on still fails what it holds, in order, when it gets to stop: failing
        // its queues from here could answer newer records before its older ones.
        core.accumulator.shut();
        if let Some(callbacks) = callbacks.filter(|_| sender_ended) {
            core.accumulator.abort_all(&Error::Closed, &callbacks);
        }
        // The callback thread ends once the sender's handle on its queue and ours are
        // gone and it ran what was queued; past the deadline it is detached.
        let joins_here = callback_thread.is_some() && !on_callback_thread_of(core.id);
        let callbacks_ended = callback_thread.is_none_or(|t| t.join(deadline));
        if joins_here && callbacks_ended {
            // Every acknowledgement ran: the interceptors close now, as in Java. Otherwise
            // (a close inside a callback, one that timed out, or a second close) they close
            // when the last acknowledgement holding them is gone (`Interceptors::drop`).
            if let Some(chain) = &self.interceptors {
                chain.close();
            }
        }
        if !in_time || !sender_ended || !callbacks_ended {
            return Err(Error::Timeout {
                operation: "close",
                waited_ms: start.elapsed().as_millis() as u64,
            });
        }
        Ok(())
    }

    /// Waits for the sender thread to finish, until `deadline`. Past the deadline it forces
    /// the sender (it fails what is left and stops) and waits [`FORCE_CLOSE_GRACE`] at most
    /// for it to stop. Returns whether the sender ended, and whether it ended before the
    /// deadline (a graceful close).
    fn wait_for_sender(&self, deadline: Option<Instant>) -> (bool, bool) {
        let core = &self.core;
        let (lock, cond) = &*self.sender_done;
        let mut done = lock.lock();
        while !*done {
            match deadline {
                None => cond.wait(&mut done),
                Some(d) => {
                    if cond.wait_until(&mut done, d).timed_out() && !*done {
                        let _ = core.events.send(SenderEvent::ForceClose);
                        // The sender may be blocked writing to a stalled broker: unblock it.
                        core.shut_down_sockets();
                        // A forced sender fails what it holds in send order (in flight and
                        // queued, oldest first) and exits at once; give it that moment, so
                        // that the queued records are not failed from here ahead of older
                        // ones in flight. Past the grace it is given up on.
                        let grace = Instant::now() + FORCE_CLOSE_GRACE;
                        while !*done {
                            if cond.wait_until(&mut done, grace).timed_out() {
                                return (*done, false);
                            }
                        }
                        return (true, false);
                    }
                }
            }
        }
        (true, true)
    }
}

/// A duration as the whole milliseconds of a property value, at most the config's bound.
fn duration_ms(d: Duration) -> String {
    d.min(crate::config::MAX_DURATION).as_millis().to_string()
}

/// How long a close past its timeout waits for the forced sender to fail what it holds
/// and stop (it needs a few milliseconds: it runs no user code and writes no socket).
/// Java's close joins its forced I/O thread without a bound.
const FORCE_CLOSE_GRACE: Duration = Duration::from_millis(200);

impl<K, V> Drop for Handle<K, V> {
    fn drop(&mut self) {
        if let Err(e) = self.close(None) {
            log::warn!("closing the producer on drop: {e}");
        }
    }
}

/// Serializes `record`'s key and value (borrowing them when the serializer can).
pub(crate) fn serialize<'a, K: 'static, V: 'static>(
    key_serializer: &dyn Serializer<K>,
    value_serializer: &dyn Serializer<V>,
    record: &'a ProducerRecord<K, V>,
) -> Result<SerializedKeyValue<'a>, Error> {
    let topic = record.topic();
    let key = record
        .key()
        .map(|k| key_serializer.serialize_borrowed(topic, k))
        .transpose()?;
    let value = record
        .value()
        .map(|v| value_serializer.serialize_borrowed(topic, v))
        .transpose()?;
    Ok((key, value))
}

/// Explicit partition, else the custom partitioner, else the key's murmur2 (unless
/// `ignore_keys`), else uniform sticky. Returns the partition and whether the sticky
/// partitioner chose it.
#[allow(clippy::too_many_arguments)]
pub(crate) fn choose_partition<K, V>(
    record: &ProducerRecord<K, V>,
    key: Option<&[u8]>,
    value: Option<&[u8]>,
    partitions: &[PartitionInfo],
    custom: Option<&dyn Partitioner>,
    ignore_keys: bool,
    sticky: &StickyPartitioner,
    sticky_topic: &StickyTopic,
) -> Result<(i32, bool), Error> {
    let topic = record.topic();
    let count = partitions.len();
    let check = |p: i32| {
        if p >= 0 && (p as usize) < count {
            Ok(p)
        } else {
            Err(Error::UnknownPartition {
                topic: topic.to_owned(),
                partition: p,
                partitions: count,
            })
        }
    };
    if let Some(p) = record.partition() {
        return check(p).map(|p| (p, false));
    }
    if let Some(custom) = custom {
        if let Some(p) = custom.partition(topic, key, value, partitions) {
            return check(p).map(|p| (p, false));
        }
    }
    if let (Some(key), false) = (key, ignore_keys) {
        return Ok((partition_for_key(key, count), false));
    }
    Ok((sticky.partition_in(sticky_topic, partitions), true))
}

/// A send refused before its record reached a batch: the error, the record's completion
/// (to report the error through), and its partition if one was chosen.
pub(crate) type Refused = (Error, Completion, Option<i32>);

/// [`Refused`] with the record itself, back to the caller.
pub(crate) type RefusedRecord<K, V> = (Error, Completion, Option<i32>, ProducerRecord<K, V>);

/// Where a record that failed before it reached a batch was going: its topic, and the
/// partition chosen for it, its explicit partition, or -1 (Java's onSendError reports the
/// same).
fn early_partition<K, V>(record: &ProducerRecord<K, V>, chosen: Option<i32>) -> TopicPartition {
    let partition = chosen.or(record.partition()).unwrap_or(-1);
    TopicPartition::new(record.topic(), partition)
}

/// Kafka's topic name rules: 1–249 characters of `[a-zA-Z0-9._-]`, not "." or "..".
pub(crate) fn validate_topic(topic: &str) -> Result<(), Error> {
    let invalid = |reason: &str| {
        Err(Error::InvalidTopic {
            topic: topic.to_owned(),
            reason: reason.to_owned(),
        })
    };
    if topic.is_empty() {
        return invalid("a topic name may not be empty");
    }
    if topic == "." || topic == ".." {
        return invalid("a topic name may not be \".\" or \"..\"");
    }
    if topic.len() > 249 {
        return invalid("a topic name is at most 249 characters long");
    }
    if let Some(c) = topic
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
    {
        return invalid(&format!(
            "{c:?} is not allowed; use ASCII letters, digits, '.', '_' and '-'"
        ));
    }
    Ok(())
}

pub(crate) fn check_size(size: usize, config: &ProducerConfig) -> Result<(), Error> {
    if size > config.max_request_size {
        return Err(Error::RecordTooLarge {
            size,
            limit: config.max_request_size,
            setting: "max.request.size",
        });
    }
    if size > config.buffer_memory {
        return Err(Error::RecordTooLarge {
            size,
            limit: config.buffer_memory,
            setting: "buffer.memory",
        });
    }
    Ok(())
}

pub(crate) fn now_ms() -> i64 {
    // Seconds and milliseconds apart: `as_millis` goes through u128 arithmetic, and this
    // runs once per record.
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs() as i64 * 1000 + i64::from(d.subsec_millis()))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_names_follow_kafka_rules() {
        assert!(validate_topic("orders.v1_a-b").is_ok());
        for bad in ["", ".", "..", "bad topic!", &"x".repeat(250)] {
            assert!(
                matches!(validate_topic(bad), Err(Error::InvalidTopic { .. })),
                "{bad:?}"
            );
        }
        assert!(validate_topic(&"x".repeat(249)).is_ok());
    }

    #[test]
    fn oversized_records_name_the_limit() {
        let config = ProducerConfig::default();
        let err = check_size(config.max_request_size + 1, &config).unwrap_err();
        assert!(matches!(
            err,
            Error::RecordTooLarge {
                setting: "max.request.size",
                ..
            }
        ));
    }
}

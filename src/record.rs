//! The records a caller sends and what comes back: [`ProducerRecord`], [`Headers`],
//! [`RecordMetadata`], [`TopicPartition`], [`PartitionInfo`].

use std::fmt;
use std::sync::Arc;

pub use crate::record_batch::Header;

/// Ordered record headers; keys may repeat, values may be null (as in Kafka).
///
/// ```
/// use kafka_producer::Headers;
/// let mut h = Headers::new();
/// h.add("trace-id", b"abc".to_vec()).add_null("empty");
/// assert_eq!(h.last("trace-id"), Some(&b"abc"[..]));
/// assert_eq!(h.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Headers(Vec<Header>);

impl Headers {
    /// No headers.
    pub fn new() -> Self {
        Headers(Vec::new())
    }

    /// Appends a header with a value.
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.0.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    /// Appends a header with a null value.
    pub fn add_null(&mut self, key: impl Into<String>) -> &mut Self {
        self.0.push(Header {
            key: key.into(),
            value: None,
        });
        self
    }

    /// Removes every header with `key`.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.0.retain(|h| h.key != key);
        self
    }

    /// The value of the last header with `key` (`None` when absent or null).
    pub fn last(&self, key: &str) -> Option<&[u8]> {
        self.0
            .iter()
            .rev()
            .find(|h| h.key == key)
            .and_then(|h| h.value.as_deref())
    }

    /// Every header, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.0.iter()
    }

    /// The headers as a slice, in order.
    pub fn as_slice(&self) -> &[Header] {
        &self.0
    }

    /// Number of headers.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<Vec<Header>> for Headers {
    fn from(v: Vec<Header>) -> Self {
        Headers(v)
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.iter()
    }
}

/// A topic name as a [`ProducerRecord`] holds it: shared, so a sender that keeps a `Topic`
/// (or an `Arc<str>`) and passes `&topic` to every record allocates nothing for the name.
/// Any `&str` or `String` converts into one.
///
/// ```
/// use kafka_producer::{ProducerRecord, Topic};
/// let orders = Topic::from("orders");
/// let a: ProducerRecord<Vec<u8>, Vec<u8>> = ProducerRecord::new(&orders, b"1".to_vec());
/// let b: ProducerRecord<Vec<u8>, Vec<u8>> = ProducerRecord::new("orders", b"2".to_vec());
/// assert_eq!(a.topic(), b.topic());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    /// The name.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::ops::Deref for Topic {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Topic {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for Topic {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<&str> for Topic {
    fn from(name: &str) -> Self {
        Topic(Arc::from(name))
    }
}

impl From<&String> for Topic {
    fn from(name: &String) -> Self {
        Topic(Arc::from(name.as_str()))
    }
}

impl From<String> for Topic {
    fn from(name: String) -> Self {
        Topic(Arc::from(name))
    }
}

impl From<Arc<str>> for Topic {
    fn from(name: Arc<str>) -> Self {
        Topic(name)
    }
}

impl From<&Arc<str>> for Topic {
    fn from(name: &Arc<str>) -> Self {
        Topic(Arc::clone(name))
    }
}

impl From<&Topic> for Topic {
    fn from(topic: &Topic) -> Self {
        topic.clone()
    }
}

/// A record to send: topic, optional partition, headers, optional key, value (or a null
/// value: a tombstone) and optional timestamp (default: the time of `send`, CreateTime).
///
/// ```
/// use kafka_producer::ProducerRecord;
/// let r = ProducerRecord::new("orders", "v".to_string())
///     .with_key("k".to_string())
///     .with_partition(2)
///     .with_timestamp(1_700_000_000_000)
///     .with_header("trace-id", b"abc".to_vec());
/// assert_eq!(r.topic(), "orders");
/// assert_eq!(r.partition(), Some(2));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord<K, V> {
    topic: Topic,
    partition: Option<i32>,
    headers: Headers,
    key: Option<K>,
    value: Option<V>,
    timestamp: Option<i64>,
}

impl<K, V> ProducerRecord<K, V> {
    /// A record with a value for `topic`; no key, partition, headers or timestamp yet.
    pub fn new(topic: impl Into<Topic>, value: V) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            headers: Headers::new(),
            key: None,
            value: Some(value),
            timestamp: None,
        }
    }

    /// A record with a null value (a tombstone in a compacted topic).
    pub fn tombstone(topic: impl Into<Topic>) -> Self {
        ProducerRecord {
            topic: topic.into(),
            partition: None,
            headers: Headers::new(),
            key: None,
            value: None,
            timestamp: None,
        }
    }

    /// Sets the key, which chooses the partition unless one is set explicitly.
    pub fn with_key(mut self, key: K) -> Self {
        self.key = Some(key);
        self
    }

    /// Sends to this partition, bypassing the partitioner.
    pub fn with_partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Sets the record's timestamp (ms since the epoch, CreateTime).
    pub fn with_timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// Appends a header.
    pub fn with_header(mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> Self {
        self.headers.add(key, value);
        self
    }

    /// Replaces all headers.
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// The explicit partition, if any.
    pub fn partition(&self) -> Option<i32> {
        self.partition
    }
    /// The headers.
    pub fn headers(&self) -> &Headers {
        &self.headers
    }
    /// Mutable headers.
    pub fn headers_mut(&mut self) -> &mut Headers {
        &mut self.headers
    }
    /// The key, if any.
    pub fn key(&self) -> Option<&K> {
        self.key.as_ref()
    }
    /// The value (`None` for a tombstone).
    pub fn value(&self) -> Option<&V> {
        self.value.as_ref()
    }
    /// The explicit timestamp, if any.
    pub fn timestamp(&self) -> Option<i64> {
        self.timestamp
    }

    /// Sends to another topic (for an interceptor that reroutes records).
    pub fn set_topic(&mut self, topic: impl Into<Topic>) {
        self.topic = topic.into();
    }
    /// Sets or clears the explicit partition.
    pub fn set_partition(&mut self, partition: Option<i32>) {
        self.partition = partition;
    }
    /// Sets or clears the key.
    pub fn set_key(&mut self, key: Option<K>) {
        self.key = key;
    }
    /// Sets the value (`None` makes the record a tombstone).
    pub fn set_value(&mut self, value: Option<V>) {
        self.value = value;
    }
    /// Sets or clears the explicit timestamp (ms since the epoch, CreateTime).
    pub fn set_timestamp(&mut self, timestamp_ms: Option<i64>) {
        self.timestamp = timestamp_ms;
    }
    /// The key, mutably.
    pub fn key_mut(&mut self) -> Option<&mut K> {
        self.key.as_mut()
    }
    /// The value, mutably.
    pub fn value_mut(&mut self) -> Option<&mut V> {
        self.value.as_mut()
    }

    /// Splits the record into its parts: (topic, partition, headers, key, value, timestamp).
    #[allow(clippy::type_complexity)]
    pub fn into_parts(
        self,
    ) -> (
        String,
        Option<i32>,
        Headers,
        Option<K>,
        Option<V>,
        Option<i64>,
    ) {
        (
            self.topic.as_str().to_owned(),
            self.partition,
            self.headers,
            self.key,
            self.value,
            self.timestamp,
        )
    }
}

/// A topic and partition.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TopicPartition {
    topic: Arc<str>,
    partition: i32,
}

impl TopicPartition {
    /// `topic`-`partition`.
    pub fn new(topic: impl Into<Arc<str>>, partition: i32) -> Self {
        TopicPartition {
            topic: topic.into(),
            partition,
        }
    }
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// The topic, shared.
    pub fn topic_arc(&self) -> &Arc<str> {
        &self.topic
    }
    /// The partition.
    pub fn partition(&self) -> i32 {
        self.partition
    }
}

impl fmt::Display for TopicPartition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}-{}", self.topic, self.partition)
    }
}

/// Where a record was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    topic_partition: TopicPartition,
    offset: i64,
    timestamp: i64,
    serialized_key_size: i32,
    serialized_value_size: i32,
}

impl RecordMetadata {
    /// Metadata for a written record. `offset` is -1 when unknown (acks=0); sizes are -1
    /// for a null key or value.
    pub fn new(
        topic_partition: TopicPartition,
        offset: i64,
        timestamp: i64,
        serialized_key_size: i32,
        serialized_value_size: i32,
    ) -> Self {
        RecordMetadata {
            topic_partition,
            offset,
            timestamp,
            serialized_key_size,
            serialized_value_size,
        }
    }
    /// The topic.
    pub fn topic(&self) -> &str {
        self.topic_partition.topic()
    }
    /// The partition.
    pub fn partition(&self) -> i32 {
        self.topic_partition.partition()
    }
    /// The topic and partition.
    pub fn topic_partition(&self) -> &TopicPartition {
        &self.topic_partition
    }
    /// The record's offset in its partition, or -1 when unknown (acks=0).
    pub fn offset(&self) -> i64 {
        self.offset
    }
    /// Whether the offset is known.
    pub fn has_offset(&self) -> bool {
        self.offset >= 0
    }
    /// The record's timestamp: the broker's LogAppendTime when the topic uses it, else the
    /// CreateTime the record was sent with.
    pub fn timestamp(&self) -> i64 {
        self.timestamp
    }
    /// Size of the serialized key in bytes, -1 for a null key.
    pub fn serialized_key_size(&self) -> i32 {
        self.serialized_key_size
    }
    /// Size of the serialized value in bytes, -1 for a null value.
    pub fn serialized_value_size(&self) -> i32 {
        self.serialized_value_size
    }
}

/// A partition as the cluster metadata describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionInfo {
    topic: Arc<str>,
    partition: i32,
    leader: Option<i32>,
    replicas: Vec<i32>,
    in_sync_replicas: Vec<i32>,
    offline_replicas: Vec<i32>,
}

impl PartitionInfo {
    /// A partition description; `leader` is the leader's node id, `None` when the partition
    /// has no leader right now.
    pub fn new(
        topic: impl Into<Arc<str>>,
        partition: i32,
        leader: Option<i32>,
        replicas: Vec<i32>,
        in_sync_replicas: Vec<i32>,
        offline_replicas: Vec<i32>,
    ) -> Self {
        PartitionInfo {
            topic: topic.into(),
            partition,
            leader,
            replicas,
            in_sync_replicas,
            offline_replicas,
        }
    }
    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }
    /// The partition number.
    pub fn partition(&self) -> i32 {
        self.partition
    }
    pub(crate) fn topic_arc(&self) -> &Arc<str> {
        &self.topic
    }
    /// The leader's node id, `None` when leaderless.
    pub fn leader(&self) -> Option<i32> {
        self.leader
    }
    /// Node ids of all replicas.
    pub fn replicas(&self) -> &[i32] {
        &self.replicas
    }
    /// Node ids of the in-sync replicas.
    pub fn in_sync_replicas(&self) -> &[i32] {
        &self.in_sync_replicas
    }
    /// Node ids of offline replicas.
    pub fn offline_replicas(&self) -> &[i32] {
        &self.offline_replicas
    }
}

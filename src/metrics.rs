//! Producer metrics: counters the sender thread updates, read as a [`ProducerMetrics`]
//! snapshot or, under Java's metric names, as a list of [`Metric`]s.
//!
//! # Ownership and cost
//!
//! The producer-wide figures are atomics written by the sender thread (or, for errors
//! found before a record was buffered, by the calling thread) with `Relaxed` ordering:
//! they are statistics, no other memory is published through them. Nothing here is
//! touched per record on the send path: the sender adds a batch's figures when it drains
//! the batch into a request and when the batch completes, so a record costs nothing
//! beyond its batch's share.
//!
//! The figures per topic and per broker node live in [`Metrics::detail`], a leaf mutex
//! the sender takes once per request it sends, once per response, and once per batch that
//! fails or is retried; readers ([`Metrics::by_name`]) take it to copy the figures out.
//!
//! # Rates
//!
//! Java keeps windowed rates (`metrics.sample.window.ms`, 30 s, two samples). Here a rate
//! is computed when metrics are read, from the matching total: the growth of the total
//! since a checkpoint divided by the time since it. The reader keeps two checkpoints,
//! rolled when the newer one is a sample window ([`SAMPLE_WINDOW`]) old, and measures
//! from the older one; so a producer whose metrics are read at least once a window (the
//! statistics hook does) reports the rate over the last one to two windows, and one read
//! rarely reports the rate since its previous read. Before the first roll a rate counts
//! from the producer's start.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// The sample window of the rates (Java's `metrics.sample.window.ms` default).
pub(crate) const SAMPLE_WINDOW: Duration = Duration::from_secs(30);

const PRODUCER_GROUP: &str = Metric::PRODUCER_GROUP;
const TOPIC_GROUP: &str = Metric::TOPIC_GROUP;
const NODE_GROUP: &str = Metric::NODE_GROUP;

/// A running count, sum and maximum of one kind of sample (written by one thread at a
/// time in practice, but atomics keep concurrent reads sound).
#[derive(Debug, Default)]
pub(crate) struct Stat {
    sum: AtomicU64,
    count: AtomicU64,
    max: AtomicU64,
}

impl Stat {
    /// Adds one sample.
    pub fn record(&self, value: u64) {
        self.sum.fetch_add(value, Relaxed);
        self.count.fetch_add(1, Relaxed);
        self.max.fetch_max(value, Relaxed);
    }

    /// The mean of the samples (0 without any).
    pub fn avg(&self) -> f64 {
        let count = self.count.load(Relaxed);
        if count == 0 {
            0.0
        } else {
            self.sum.load(Relaxed) as f64 / count as f64
        }
    }

    /// The largest sample (0 without any).
    pub fn max(&self) -> u64 {
        self.max.load(Relaxed)
    }

    /// How many samples were added.
    pub fn count(&self) -> u64 {
        self.count.load(Relaxed)
    }
}

/// The live counters.
#[derive(Debug)]
pub(crate) struct Metrics {
    pub records_sent: AtomicU64,
    pub bytes_sent: AtomicU64,
    pub batches_sent: AtomicU64,
    pub batch_retries: AtomicU64,
    pub batch_splits: AtomicU64,
    pub duplicate_batches: AtomicU64,
    pub leader_hints: AtomicU64,
    pub record_errors: AtomicU64,
    pub requests: AtomicU64,
    pub in_flight_requests: AtomicU64,
    /// Records in batches sent again after a retriable error (Java's record-retry-total).
    pub record_retries: AtomicU64,
    /// Records handed to brokers in Produce requests, retries included (Java's
    /// record-send-total), and the requests' bytes of record batches.
    pub records_drained: AtomicU64,
    pub bytes_drained: AtomicU64,
    /// Records in flight: drained into a request, not yet answered (or written, acks=0).
    pub records_in_flight: AtomicU64,
    /// Request round trips, in microseconds.
    latency_us: Stat,
    /// Throttle times of Produce responses, in milliseconds (every response counts, an
    /// unthrottled one as 0, as in Java).
    pub throttle_ms: Stat,
    /// Per drained batch: its bytes, its time in the queue (microseconds), its largest
    /// record's size, and its compressed / uncompressed size (millionths).
    pub batch_size: Stat,
    pub queue_time_us: Stat,
    pub record_size: Stat,
    pub compression_ppm: Stat,
    /// Per request: how many records it carried.
    pub records_per_request: Stat,
    /// The figures per topic and per node.
    pub detail: Mutex<Detail>,
    /// The rate checkpoints of readers (leaf lock, readers only).
    checkpoints: Mutex<Checkpoints>,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics {
            records_sent: AtomicU64::new(0),
            bytes_sent: AtomicU64::new(0),
            batches_sent: AtomicU64::new(0),
            batch_retries: AtomicU64::new(0),
            batch_splits: AtomicU64::new(0),
            duplicate_batches: AtomicU64::new(0),
            leader_hints: AtomicU64::new(0),
            record_errors: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            in_flight_requests: AtomicU64::new(0),
            record_retries: AtomicU64::new(0),
            records_drained: AtomicU64::new(0),
            bytes_drained: AtomicU64::new(0),
            records_in_flight: AtomicU64::new(0),
            latency_us: Stat::default(),
            throttle_ms: Stat::default(),
            batch_size: Stat::default(),
            queue_time_us: Stat::default(),
            record_size: Stat::default(),
            compression_ppm: Stat::default(),
            records_per_request: Stat::default(),
            detail: Mutex::new(Detail::default()),
            checkpoints: Mutex::new(Checkpoints::new(Instant::now())),
        }
    }
}

/// The figures of one topic (Java's producer-topic-metrics).
#[derive(Debug, Default, Clone)]
pub(crate) struct TopicStats {
    pub records_sent: u64,
    pub bytes_sent: u64,
    pub record_retries: u64,
    pub record_errors: u64,
    /// Sum and count of the compressed / uncompressed ratios of its drained batches.
    pub compression_sum: f64,
    pub compression_count: u64,
}

/// The figures of one broker node (Java's producer-node-metrics).
#[derive(Debug, Default, Clone)]
pub(crate) struct NodeStats {
    pub requests: u64,
    pub bytes_sent: u64,
    pub latency_sum_us: u64,
    pub latency_count: u64,
    pub latency_max_us: u64,
}

/// The figures per topic and per node, guarded by [`Metrics::detail`].
#[derive(Debug, Default)]
pub(crate) struct Detail {
    pub topics: HashMap<Arc<str>, TopicStats>,
    pub nodes: BTreeMap<i32, NodeStats>,
}

impl Detail {
    /// The figures of `topic`, created on first use (an allocation once per topic).
    pub fn topic(&mut self, topic: &Arc<str>) -> &mut TopicStats {
        if !self.topics.contains_key(&**topic) {
            self.topics.insert(Arc::clone(topic), TopicStats::default());
        }
        self.topics.get_mut(&**topic).expect("inserted above")
    }

    /// The figures of `node`.
    pub fn node(&mut self, node: i32) -> &mut NodeStats {
        self.nodes.entry(node).or_default()
    }
}

impl Metrics {
    /// Drops the per-topic figures of `topics` (forgotten after metadata.max.idle.ms).
    pub fn forget_topics(&self, topics: &[Arc<str>]) {
        let mut detail = self.detail.lock();
        for topic in topics {
            detail.topics.remove(&**topic);
        }
    }
}

/// A reader's rate checkpoints: totals by metric identity at two instants.
#[derive(Debug)]
struct Checkpoints {
    current: (Instant, HashMap<MetricKey, f64>),
    previous: Option<(Instant, HashMap<MetricKey, f64>)>,
}

/// A metric's identity: group, name and tags.
type MetricKey = (&'static str, String, Vec<(String, String)>);

impl Checkpoints {
    fn new(start: Instant) -> Self {
        Checkpoints {
            current: (start, HashMap::new()),
            previous: None,
        }
    }

    /// The per-second growth of each total since the base checkpoint, rolling the
    /// checkpoints when the newer one is a window old. A total without a checkpoint
    /// started at 0 with the producer.
    fn rates(&mut self, totals: &[Metric], now: Instant) -> Vec<f64> {
        if now.saturating_duration_since(self.current.0) >= SAMPLE_WINDOW {
            let snapshot = totals.iter().map(|m| (m.key(), m.value)).collect();
            self.previous = Some(std::mem::replace(&mut self.current, (now, snapshot)));
        }
        let (since, base) = self.previous.as_ref().unwrap_or(&self.current);
        let elapsed = now.saturating_duration_since(*since).as_secs_f64();
        totals
            .iter()
            .map(|m| {
                let before = base.get(&m.key()).copied().unwrap_or(0.0);
                if elapsed > 0.0 {
                    (m.value - before).max(0.0) / elapsed
                } else {
                    0.0
                }
            })
            .collect()
    }
}

/// One metric under Java's name (`Producer::metrics_by_name`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Metric {
    /// Java's metric name, such as `record-send-total`.
    pub name: String,
    /// Java's metric group: [`Metric::PRODUCER_GROUP`], [`Metric::TOPIC_GROUP`] or
    /// [`Metric::NODE_GROUP`].
    pub group: String,
    /// The tags: always `client-id`; `topic` in the topic group; `node-id` (`node-<id>`,
    /// as Java writes it) in the node group.
    pub tags: BTreeMap<String, String>,
    /// The value. Times are in milliseconds (Java's unit) except where the name says
    /// otherwise (`-ns-`); rates are per second.
    pub value: f64,
}

impl Metric {
    /// The metric group of producer-wide metrics (Java's name).
    pub const PRODUCER_GROUP: &'static str = "producer-metrics";
    /// The metric group of per-topic metrics (Java's name).
    pub const TOPIC_GROUP: &'static str = "producer-topic-metrics";
    /// The metric group of per-broker-node metrics (Java's name).
    pub const NODE_GROUP: &'static str = "producer-node-metrics";

    fn key(&self) -> MetricKey {
        let group = match self.group.as_str() {
            TOPIC_GROUP => TOPIC_GROUP,
            NODE_GROUP => NODE_GROUP,
            _ => PRODUCER_GROUP,
        };
        let tags = self
            .tags
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        (group, self.name.clone(), tags)
    }
}

/// The figures outside [`Metrics`] that a by-name listing includes.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Gauges {
    pub buffer_in_use: usize,
    pub buffer_total: usize,
    pub bufferpool_wait_ns: u64,
}

impl Metrics {
    /// Records one request's round trip to `node`.
    pub fn request_latency(&self, node: i32, latency: Duration) {
        let us = latency.as_micros().min(u128::from(u64::MAX)) as u64;
        self.latency_us.record(us);
        let mut detail = self.detail.lock();
        let n = detail.node(node);
        n.latency_sum_us += us;
        n.latency_count += 1;
        n.latency_max_us = n.latency_max_us.max(us);
    }

    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Relaxed);
    }

    /// Subtracts `n` from a gauge.
    pub fn sub(counter: &AtomicU64, n: u64) {
        counter.fetch_sub(n, Relaxed);
    }

    /// `records` records of `topic` failed for good (sender thread).
    pub fn topic_errors(&self, topic: &Arc<str>, records: u64) {
        Metrics::add(&self.record_errors, records);
        self.detail.lock().topic(topic).record_errors += records;
    }

    /// `records` records of `topic` go back to their queue to be sent again.
    pub fn topic_retries(&self, topic: &Arc<str>, records: u64) {
        Metrics::add(&self.record_retries, records);
        self.detail.lock().topic(topic).record_retries += records;
    }

    /// A snapshot with `buffer_in_use` of `buffer_total` bytes held and no pool waits
    /// (a mock producer's).
    pub fn snapshot(&self, buffer_in_use: usize, buffer_total: usize) -> ProducerMetrics {
        self.snapshot_with(Gauges {
            buffer_in_use,
            buffer_total,
            bufferpool_wait_ns: 0,
        })
    }

    /// A snapshot, with the buffer figures supplied by the accumulator.
    pub fn snapshot_with(&self, gauges: Gauges) -> ProducerMetrics {
        let batches = self.batches_sent.load(Relaxed);
        let bytes = self.bytes_sent.load(Relaxed);
        ProducerMetrics {
            records_sent: self.records_sent.load(Relaxed),
            bytes_sent: bytes,
            batches_sent: batches,
            average_batch_size: if batches == 0 {
                0.0
            } else {
                bytes as f64 / batches as f64
            },
            batch_retries: self.batch_retries.load(Relaxed),
            batch_splits: self.batch_splits.load(Relaxed),
            duplicate_batches: self.duplicate_batches.load(Relaxed),
            leader_hints: self.leader_hints.load(Relaxed),
            record_errors: self.record_errors.load(Relaxed),
            requests: self.requests.load(Relaxed),
            in_flight_requests: self.in_flight_requests.load(Relaxed),
            buffer_bytes_in_use: gauges.buffer_in_use,
            buffer_total_bytes: gauges.buffer_total,
            request_latency_avg: Duration::from_micros(self.latency_us.avg() as u64),
            request_latency_max: Duration::from_micros(self.latency_us.max()),
            record_retries: self.record_retries.load(Relaxed),
            records_in_flight: self.records_in_flight.load(Relaxed),
            throttle_time_avg: Duration::from_micros((self.throttle_ms.avg() * 1000.0) as u64),
            throttle_time_max: Duration::from_millis(self.throttle_ms.max()),
            bufferpool_wait_time: Duration::from_nanos(gauges.bufferpool_wait_ns),
        }
    }

    /// Counters that hold a snapshot's figures (a mock producer's by-name metrics: it
    /// knows records sent and failed, nothing of batches or brokers).
    pub fn from_snapshot(s: &ProducerMetrics) -> Metrics {
        let m = Metrics::default();
        Metrics::add(&m.records_sent, s.records_sent);
        Metrics::add(&m.records_drained, s.records_sent);
        Metrics::add(&m.record_errors, s.record_errors);
        m
    }

    /// Every metric under Java's name, with rates as the module docs describe.
    pub fn by_name(&self, client_id: &str, gauges: Gauges, now: Instant) -> Vec<Metric> {
        let mut out = Vec::with_capacity(64);
        self.producer_metrics(client_id, gauges, &mut out);
        let (topics, nodes) = {
            let detail = self.detail.lock();
            let mut topics: Vec<(Arc<str>, TopicStats)> = detail
                .topics
                .iter()
                .map(|(t, s)| (Arc::clone(t), s.clone()))
                .collect();
            topics.sort_by(|a, b| a.0.cmp(&b.0));
            (topics, detail.nodes.clone())
        };
        for (topic, s) in &topics {
            topic_metrics(client_id, topic, s, &mut out);
        }
        for (node, s) in &nodes {
            node_metrics(client_id, *node, s, &mut out);
        }
        self.add_rates(&mut out, now);
        out
    }

    fn producer_metrics(&self, client_id: &str, g: Gauges, out: &mut Vec<Metric>) {
        let ms = |us: f64| us / 1000.0;
        let f = |a: &AtomicU64| a.load(Relaxed) as f64;
        let values = [
            ("record-send-total", f(&self.records_drained)),
            ("record-error-total", f(&self.record_errors)),
            ("record-retry-total", f(&self.record_retries)),
            ("request-total", f(&self.requests)),
            ("outgoing-byte-total", f(&self.bytes_drained)),
            ("batch-split-total", f(&self.batch_splits)),
            ("batch-size-avg", self.batch_size.avg()),
            ("batch-size-max", self.batch_size.max() as f64),
            (
                "compression-rate-avg",
                if self.compression_ppm.count() == 0 {
                    0.0
                } else {
                    self.compression_ppm.avg() / 1e6
                },
            ),
            ("record-queue-time-avg", ms(self.queue_time_us.avg())),
            ("record-queue-time-max", ms(self.queue_time_us.max() as f64)),
            ("request-latency-avg", ms(self.latency_us.avg())),
            ("request-latency-max", ms(self.latency_us.max() as f64)),
            ("requests-in-flight", f(&self.in_flight_requests)),
            (
                "buffer-available-bytes",
                g.buffer_total.saturating_sub(g.buffer_in_use) as f64,
            ),
            ("buffer-total-bytes", g.buffer_total as f64),
            ("bufferpool-wait-time-ns-total", g.bufferpool_wait_ns as f64),
            ("produce-throttle-time-avg", self.throttle_ms.avg()),
            ("produce-throttle-time-max", self.throttle_ms.max() as f64),
            ("records-per-request-avg", self.records_per_request.avg()),
            ("record-size-avg", self.record_size.avg()),
            ("record-size-max", self.record_size.max() as f64),
        ];
        for (name, value) in values {
            out.push(metric(name, PRODUCER_GROUP, client_id, None, value));
        }
    }

    /// Adds `X-rate` for every `X-total` in `out`.
    fn add_rates(&self, out: &mut Vec<Metric>, now: Instant) {
        let totals: Vec<Metric> = out
            .iter()
            .filter(|m| m.name.ends_with("-total") && !m.name.contains("-ns-"))
            .cloned()
            .collect();
        let rates = self.checkpoints.lock().rates(&totals, now);
        for (total, rate) in totals.into_iter().zip(rates) {
            let name = format!("{}-rate", total.name.trim_end_matches("-total"));
            out.push(Metric {
                name,
                value: rate,
                ..total
            });
        }
    }
}

fn metric(
    name: &str,
    group: &'static str,
    client_id: &str,
    tag: Option<(&str, String)>,
    value: f64,
) -> Metric {
    let mut tags = BTreeMap::new();
    tags.insert("client-id".to_owned(), client_id.to_owned());
    if let Some((k, v)) = tag {
        tags.insert(k.to_owned(), v);
    }
    Metric {
        name: name.to_owned(),
        group: group.to_owned(),
        tags,
        value,
    }
}

fn topic_metrics(client_id: &str, topic: &str, s: &TopicStats, out: &mut Vec<Metric>) {
    let compression = if s.compression_count == 0 {
        0.0
    } else {
        s.compression_sum / s.compression_count as f64
    };
    let values = [
        ("record-send-total", s.records_sent as f64),
        ("byte-total", s.bytes_sent as f64),
        ("record-retry-total", s.record_retries as f64),
        ("record-error-total", s.record_errors as f64),
        ("compression-rate", compression),
    ];
    for (name, value) in values {
        let tag = Some(("topic", topic.to_owned()));
        out.push(metric(name, TOPIC_GROUP, client_id, tag, value));
    }
}

fn node_metrics(client_id: &str, node: i32, s: &NodeStats, out: &mut Vec<Metric>) {
    let avg = if s.latency_count == 0 {
        0.0
    } else {
        s.latency_sum_us as f64 / s.latency_count as f64 / 1000.0
    };
    let values = [
        ("request-total", s.requests as f64),
        ("outgoing-byte-total", s.bytes_sent as f64),
        ("request-latency-avg", avg),
        ("request-latency-max", s.latency_max_us as f64 / 1000.0),
    ];
    for (name, value) in values {
        let tag = Some(("node-id", format!("node-{node}")));
        out.push(metric(name, NODE_GROUP, client_id, tag, value));
    }
}

/// A point-in-time view of a producer's activity (`Producer::metrics`).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ProducerMetrics {
    /// Records acknowledged by brokers (or written with acks=0).
    pub records_sent: u64,
    /// Bytes of record batches acknowledged (after compression).
    pub bytes_sent: u64,
    /// Batches acknowledged.
    pub batches_sent: u64,
    /// `bytes_sent / batches_sent`.
    pub average_batch_size: f64,
    /// Batches sent again after a retriable error.
    pub batch_retries: u64,
    /// Batches split in two after MESSAGE_TOO_LARGE.
    pub batch_splits: u64,
    /// Batches the broker already held when they were retried (idempotence:
    /// DUPLICATE_SEQUENCE_NUMBER, counted as success).
    pub duplicate_batches: u64,
    /// Leader moves learned from a Produce response's CurrentLeader field (KIP-951).
    pub leader_hints: u64,
    /// Records that completed with an error.
    pub record_errors: u64,
    /// Produce requests sent.
    pub requests: u64,
    /// Produce requests awaiting a response now.
    pub in_flight_requests: u64,
    /// Bytes of `buffer.memory` held by batches now (never above `buffer_total_bytes`).
    pub buffer_bytes_in_use: usize,
    /// `buffer.memory`.
    pub buffer_total_bytes: usize,
    /// Mean Produce round trip.
    pub request_latency_avg: Duration,
    /// Longest Produce round trip.
    pub request_latency_max: Duration,
    /// Records sent again after a retriable error (Java's record-retry-total).
    pub record_retries: u64,
    /// Records in Produce requests awaiting a response now.
    pub records_in_flight: u64,
    /// Mean throttle time brokers reported in Produce responses (KIP-219; unthrottled
    /// responses count as zero).
    pub throttle_time_avg: Duration,
    /// Longest throttle time a broker reported in a Produce response.
    pub throttle_time_max: Duration,
    /// Total time `send`s waited for `buffer.memory` (Java's
    /// bufferpool-wait-time-ns-total).
    pub bufferpool_wait_time: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn gauges() -> Gauges {
        Gauges {
            buffer_in_use: 100,
            buffer_total: 1000,
            bufferpool_wait_ns: 7,
        }
    }

    fn find<'a>(list: &'a [Metric], group: &str, name: &str, tag: Option<&str>) -> &'a Metric {
        list.iter()
            .find(|m| {
                m.group == group
                    && m.name == name
                    && tag.is_none_or(|t| m.tags.values().any(|v| v == t))
            })
            .unwrap_or_else(|| panic!("no {group}/{name} {tag:?} in {list:#?}"))
    }

    #[test]
    fn stat_keeps_mean_and_maximum() {
        let s = Stat::default();
        assert_eq!(s.avg(), 0.0);
        s.record(10);
        s.record(30);
        assert_eq!((s.avg(), s.max(), s.count()), (20.0, 30, 2));
    }

    #[test]
    fn by_name_lists_java_names_with_tags() {
        let m = Metrics::default();
        Metrics::add(&m.records_drained, 5);
        m.batch_size.record(400);
        m.throttle_ms.record(0);
        m.throttle_ms.record(100);
        m.request_latency(2, Duration::from_millis(4));
        let topic: Arc<str> = Arc::from("t");
        m.detail.lock().topic(&topic).records_sent = 5;
        m.topic_errors(&topic, 2);
        let list = m.by_name("me", gauges(), Instant::now());
        let overall = |n| find(&list, PRODUCER_GROUP, n, None).value;
        assert_eq!(overall("record-send-total"), 5.0);
        assert_eq!(overall("record-error-total"), 2.0);
        assert_eq!(overall("batch-size-max"), 400.0);
        assert_eq!(overall("produce-throttle-time-avg"), 50.0);
        assert_eq!(overall("produce-throttle-time-max"), 100.0);
        assert_eq!(overall("buffer-available-bytes"), 900.0);
        assert_eq!(overall("bufferpool-wait-time-ns-total"), 7.0);
        assert!((overall("request-latency-avg") - 4.0).abs() < 1e-9);
        let t = find(&list, TOPIC_GROUP, "record-send-total", Some("t"));
        assert_eq!(t.value, 5.0);
        assert_eq!(t.tags["client-id"], "me");
        assert_eq!(t.tags["topic"], "t");
        let n = find(&list, NODE_GROUP, "request-latency-max", Some("node-2"));
        assert!((n.value - 4.0).abs() < 1e-9);
        // Every total has its rate, but for the nanosecond total.
        for total in list.iter().filter(|m| m.name.ends_with("-total")) {
            let rate = total.name.replace("-total", "-rate");
            let has_rate = list.iter().any(|m| m.name == rate && m.tags == total.tags);
            assert_eq!(has_rate, !total.name.contains("-ns-"), "{}", total.name);
        }
    }

    #[test]
    fn rates_measure_growth_since_the_older_checkpoint() {
        let start = Instant::now();
        let mut c = Checkpoints::new(start);
        let total = |v: f64| {
            vec![Metric {
                name: "record-send-total".into(),
                group: PRODUCER_GROUP.into(),
                tags: BTreeMap::new(),
                value: v,
            }]
        };
        // 10 s in: since the start.
        assert_eq!(
            c.rates(&total(100.0), start + Duration::from_secs(10)),
            [10.0]
        );
        // A window in: the checkpoints roll; the rate still counts from the start.
        let at = start + SAMPLE_WINDOW;
        assert_eq!(c.rates(&total(300.0), at), [10.0]);
        // Another window with no growth: the checkpoints roll again and the rate is
        // measured from the previous checkpoint only.
        let later = at + SAMPLE_WINDOW;
        assert_eq!(c.rates(&total(300.0), later), [0.0]);
    }
}

//! Choosing a partition for a record: [`murmur2`] key hashing, the [`Partitioner`] trait for
//! custom strategies, [`RoundRobinPartitioner`], and the built-in `StickyPartitioner`
//! (KIP-794 uniform sticky partitioning, optionally adaptive).
//!
//! The order of precedence follows Java's `KafkaProducer` (DESIGN.md §4): an explicit
//! partition wins; else a configured custom [`Partitioner`] may choose; else a key maps to
//! [`partition_for_key`]; else (and for keyed records when `partitioner.ignore.keys=true`)
//! the `StickyPartitioner` chooses.
//!
//! # Threads and locks
//!
//! Every type here is called from the callers' threads inside `send` (and the sticky
//! partitioner's load statistics from the sender thread), so every type is `Send + Sync`.
//!
//! - [`RoundRobinPartitioner`]: one `RwLock` over a map from topic to an atomic counter. The
//!   write lock is taken only the first time a topic is seen; afterwards a read lock and one
//!   relaxed `fetch_add` (the counter orders nothing else, it only has to hand out distinct
//!   values). The scan over the partitions runs after the lock is released.
//! - `StickyPartitioner`: one `RwLock` over a map from topic to its `StickyTopic`, a
//!   `Mutex` over that topic's state. The map's write lock is taken only the first time a
//!   topic is seen (the key is allocated before); the producer keeps each topic's
//!   `StickyTopic` in its per-thread route cache, so a send takes only the topic's lock.
//!   Under that lock we only do O(1) work: reading or writing the sticky partition and its
//!   byte count, and cloning or swapping an `Arc` of load statistics. Random draws, the scan
//!   over the partitions and the weighted pick all run with the lock released; the result is
//!   installed under the lock again only if the topic's `generation` has not moved meanwhile
//!   (the same race Java resolves with a compare-and-set on its `StickyPartitionInfo`).
//!
//!   Its per-leader availability record (`partitioner.availability.timeout.ms`) sits behind
//!   one more `Mutex`, taken only by the sender thread (which alone writes and reads it, in
//!   `StickyPartitioner::node_ready` and `StickyPartitioner::update_load_stats_by_leader`),
//!   never on the send path.
//!
//! No lock here is ever held while another lock is taken (the map's lock is released before
//! a topic's lock is taken), while user code runs, or while blocking, so there is no lock
//! order to respect.
//!
//! # Randomness
//!
//! There is no `rand` dependency. Each thread owns a xorshift64* generator seeded from the
//! clock and a process-wide counter (so threads started in the same nanosecond still differ),
//! like Java's `ThreadLocalRandom`. It is not cryptographic; it only spreads load.

use std::cell::Cell;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use parking_lot::{Mutex, RwLock};

use crate::record::PartitionInfo;

/// Chooses partitions for records without an explicit partition. Implementations must be
/// cheap and thread-safe: `send` calls it on the caller's thread.
///
/// # Example
///
/// A partitioner that sends records whose key starts with `vip:` to partition 0 and lets the
/// built-in partitioning handle every other record:
///
/// ```
/// use kafka_producer::{PartitionInfo, Partitioner};
///
/// #[derive(Debug)]
/// struct VipFirst;
///
/// impl Partitioner for VipFirst {
///     fn partition(
///         &self,
///         _topic: &str,
///         key: Option<&[u8]>,
///         _value: Option<&[u8]>,
///         partitions: &[PartitionInfo],
///     ) -> Option<i32> {
///         match key {
///             Some(k) if k.starts_with(b"vip:") && !partitions.is_empty() => Some(0),
///             _ => None, // the built-in choice (key hash, or uniform sticky)
///         }
///     }
/// }
///
/// let partitions: Vec<PartitionInfo> = (0..3)
///     .map(|p| PartitionInfo::new("orders", p, Some(1), vec![1], vec![1], vec![]))
///     .collect();
/// let p = VipFirst;
/// assert_eq!(p.partition("orders", Some(b"vip:42"), None, &partitions), Some(0));
/// assert_eq!(p.partition("orders", Some(b"user:7"), None, &partitions), None);
/// ```
pub trait Partitioner: Send + Sync + std::fmt::Debug + 'static {
    /// `partitions` lists every partition of the topic (index i = partition i) with its current
    /// leader. Return Some(p) with 0 <= p < partitions.len(), or None to let the built-in
    /// uniform sticky partitioner choose (Java's UNKNOWN_PARTITION).
    fn partition(
        &self,
        topic: &str,
        key: Option<&[u8]>,
        value: Option<&[u8]>,
        partitions: &[PartitionInfo],
    ) -> Option<i32>;
}

/// The 32-bit MurmurHash2 of `data`, bit-identical to Java's `Utils.murmur2` (seed
/// `0x9747b28c`), so keyed records land on the same partitions as with the Java client.
///
/// ```
/// use kafka_producer::partition::murmur2;
/// // A vector from Kafka's own unit tests.
/// assert_eq!(murmur2(b"21"), -973_932_308);
/// ```
pub fn murmur2(data: &[u8]) -> i32 {
    const SEED: u32 = 0x9747_b28c;
    const M: u32 = 0x5bd1_e995;
    const R: u32 = 24;

    // Java takes the length as an `int`; keys never approach 2 GiB, so truncation is moot.
    let mut h = SEED ^ data.len() as u32;
    let mut blocks = data.chunks_exact(4);
    for block in &mut blocks {
        let mut k = u32::from_le_bytes([block[0], block[1], block[2], block[3]]);
        k = k.wrapping_mul(M);
        k ^= k >> R;
        k = k.wrapping_mul(M);
        h = h.wrapping_mul(M) ^ k;
    }
    let tail = blocks.remainder();
    if !tail.is_empty() {
        // Little-endian fold of the 1..=3 trailing bytes, as Java's fall-through switch does.
        for (i, &byte) in tail.iter().enumerate() {
            h ^= u32::from(byte) << (8 * i);
        }
        h = h.wrapping_mul(M);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(M);
    h ^= h >> 15;
    h as i32
}

/// The partition Java's default partitioner gives a record with serialized key `key`:
/// `(murmur2(key) & 0x7fffffff) % num_partitions`. Masking the sign bit (Java's
/// `Utils.toPositive`) rather than taking `abs` is what makes `i32::MIN` map correctly.
///
/// # Panics
///
/// When `num_partitions` is 0 (a topic always has at least one partition).
///
/// ```
/// use kafka_producer::partition::partition_for_key;
/// // murmur2("21") = -973932308; masking the sign bit gives 1173551340, and 1173551340 % 7 = 3.
/// assert_eq!(partition_for_key(b"21", 7), 3);
/// ```
pub fn partition_for_key(key: &[u8], num_partitions: usize) -> i32 {
    assert!(num_partitions > 0, "a topic has at least one partition");
    let positive = (murmur2(key) & 0x7fff_ffff) as u32;
    (positive as usize % num_partitions) as i32
}

/// Java's classic `RoundRobinPartitioner`: every record of a topic, keyed or not, goes to the
/// next partition in turn. The turn counter is per topic; it cycles over the partitions that
/// have a leader, or over all partitions when none has one.
///
/// Like Java, the counter is shared by all partitions of the topic, so when the set of
/// partitions with a leader changes the cycle continues from the counter's value, not from
/// where the previous partition left off.
///
/// ```
/// use kafka_producer::{PartitionInfo, Partitioner, RoundRobinPartitioner};
/// let partitions: Vec<PartitionInfo> = (0..3)
///     .map(|p| PartitionInfo::new("t", p, Some(1), vec![1], vec![1], vec![]))
///     .collect();
/// let rr = RoundRobinPartitioner::default();
/// let picks: Vec<_> = (0..4).map(|_| rr.partition("t", None, None, &partitions)).collect();
/// assert_eq!(picks, [Some(0), Some(1), Some(2), Some(0)]);
/// ```
#[derive(Debug, Default)]
pub struct RoundRobinPartitioner {
    /// Next turn of each topic. Written with the write lock only to insert a topic; the
    /// counters themselves advance under the read lock (relaxed: they guard no other data).
    counters: RwLock<HashMap<String, AtomicU32>>,
}

impl RoundRobinPartitioner {
    /// A partitioner whose counters all start at 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// This topic's turn, advancing the counter. Wraps like Java's `int` counter.
    fn next_turn(&self, topic: &str) -> u32 {
        if let Some(counter) = self.counters.read().get(topic) {
            return counter.fetch_add(1, Ordering::Relaxed);
        }
        let key = topic.to_owned();
        let mut counters = self.counters.write();
        let counter = counters.entry(key).or_insert_with(|| AtomicU32::new(0));
        counter.fetch_add(1, Ordering::Relaxed)
    }
}

impl Partitioner for RoundRobinPartitioner {
    /// The next partition in turn; `None` only when `partitions` is empty.
    fn partition(
        &self,
        topic: &str,
        _key: Option<&[u8]>,
        _value: Option<&[u8]>,
        partitions: &[PartitionInfo],
    ) -> Option<i32> {
        if partitions.is_empty() {
            return None;
        }
        // Java's `Utils.toPositive` on the (wrapping) int counter.
        let turn = (self.next_turn(topic) & 0x7fff_ffff) as usize;
        let candidates = Candidates::new(partitions, None);
        Some(candidates.nth(turn % candidates.len))
    }
}

/// KIP-794 uniform sticky partitioning for records without key (and for keyed records when
/// partitioner.ignore.keys=true).
///
/// Each topic has one *sticky* partition that receives every record until about
/// `batch.size` bytes were appended to it, so batches fill up instead of spreading thin
/// over all partitions. Then a new sticky partition is drawn: uniformly among partitions
/// with a leader, or, with adaptive partitioning, weighted towards partitions whose leader
/// has fewer batches queued (KIP-794's "adaptive" part).
///
/// The accumulator drives it like Java's `RecordAccumulator` drives `BuiltInPartitioner`:
/// [`partition`](Self::partition) before appending, [`on_append`](Self::on_append) after,
/// and the sender thread feeds [`node_ready`](Self::node_ready) and
/// [`update_load_stats_by_leader`](Self::update_load_stats_by_leader).
///
/// With adaptive partitioning and a non-zero `partitioner.availability.timeout.ms`, a
/// partition whose leader had batches ready but could not take them (no ready connection,
/// or its in-flight requests at the limit) for longer than the timeout is left out of the
/// load statistics, so new sticky partitions avoid it until its leader drains again (Java's
/// `RecordAccumulator.partitionReady` with its `NodeLatencyStats`). As in Java, the setting
/// has no effect without adaptive partitioning, and keyed records still go to their
/// partition.
///
/// (Internal: the producer's own; `sticky_stays_on_one_partition_until_batch_size_then_switches`
/// shows it.)
#[derive(Debug)]
pub(crate) struct StickyPartitioner {
    /// Bytes to produce to a sticky partition before switching (Java: `batch.size`), >= 1.
    sticky_batch_size: usize,
    /// `partitioner.adaptive.partitioning.enable`; when false load stats are ignored.
    adaptive: bool,
    /// `partitioner.availability.timeout.ms`; zero disables the availability check.
    availability_timeout: Duration,
    /// When each leader last had a batch ready and last could take one (Java's
    /// `NodeLatencyStats`). Sender thread only; see the module doc.
    leaders: Mutex<HashMap<i32, LeaderReadiness>>,
    /// Guards the topic → state map (read-locked to find a topic, write-locked to add one);
    /// each topic's state has its own lock, which the producer's send path takes through a
    /// cached [`StickyTopic`] without touching the map.
    topics: RwLock<HashMap<String, Arc<StickyTopic>>>,
}

/// A leader's readiness record: the last pass that found a batch ready for it, and the last
/// pass that found it also able to take one.
#[derive(Debug, Clone, Copy)]
struct LeaderReadiness {
    ready: Instant,
    drained: Instant,
}

/// One topic's sticky state behind its own lock (see the module doc for what runs under
/// it).
#[derive(Debug, Default)]
pub(crate) struct StickyTopic(Mutex<TopicState>);

/// One topic's sticky partition and load statistics. Guarded by its [`StickyTopic`] lock.
#[derive(Debug, Default)]
struct TopicState {
    /// The sticky partition, `None` until the first record of the topic.
    current: Option<i32>,
    /// Bytes appended to `current` since it was chosen.
    produced_bytes: usize,
    /// Bumped whenever `current` changes, so a choice made with the lock released is
    /// installed only if nobody else switched meanwhile.
    generation: u64,
    /// Adaptive partitioning input; `None` means "choose uniformly".
    load: Option<Arc<LoadStats>>,
}

/// Java's partition load statistics: a cumulative frequency table over the partitions whose
/// leader is available. `cumulative[i]` is the sum of the weights of `ids[0..=i]`, and a
/// partition's weight is `max_queue + 1 - queue`, so shorter queues are drawn more often and
/// every listed partition keeps a weight of at least 1.
#[derive(Debug)]
struct LoadStats {
    cumulative: Vec<u64>,
    ids: Vec<i32>,
}

impl LoadStats {
    /// `None` when there is nothing to weigh (Java: `length < 1`).
    fn from_queue_sizes(queue_sizes: &[(i32, usize)]) -> Option<Self> {
        let max_plus_1 = queue_sizes.iter().map(|&(_, q)| q).max()? as u64 + 1;
        let mut sum = 0u64;
        let cumulative = queue_sizes
            .iter()
            .map(|&(_, q)| {
                sum += max_plus_1 - q as u64;
                sum
            })
            .collect();
        let ids = queue_sizes.iter().map(|&(p, _)| p).collect();
        Some(LoadStats { cumulative, ids })
    }

    /// The start of entry `i`'s range in the cumulative table.
    fn start(&self, i: usize) -> u64 {
        if i == 0 {
            0
        } else {
            self.cumulative[i - 1]
        }
    }

    /// A weighted random partition id. When `exclude` is listed and not alone, its range is
    /// cut out of the draw, so the other partitions keep their relative weights.
    fn pick(&self, exclude: Option<i32>) -> i32 {
        let total = *self.cumulative.last().expect("load stats are never empty");
        let skipped = exclude
            .and_then(|p| self.ids.iter().position(|&id| id == p))
            .filter(|_| self.ids.len() > 1)
            .map(|i| (self.start(i), self.cumulative[i] - self.start(i)));
        let mut r = random_below(total - skipped.map_or(0, |(_, w)| w));
        if let Some((start, weight)) = skipped {
            if r >= start {
                r += weight;
            }
        }
        // The first entry whose cumulative value is strictly greater than r.
        let i = self.cumulative.partition_point(|&c| c <= r);
        self.ids[i]
    }
}

impl StickyPartitioner {
    /// A sticky partitioner switching after `sticky_batch_size` bytes (Java uses
    /// `batch.size`; 0 is treated as 1). `adaptive` is
    /// `partitioner.adaptive.partitioning.enable`; `availability_timeout` is
    /// `partitioner.availability.timeout.ms` (zero disables it), kept here for the caller
    /// that builds the load statistics.
    pub fn new(sticky_batch_size: usize, adaptive: bool, availability_timeout: Duration) -> Self {
        StickyPartitioner {
            sticky_batch_size: sticky_batch_size.max(1),
            adaptive,
            availability_timeout,
            leaders: Mutex::new(HashMap::new()),
            topics: RwLock::new(HashMap::new()),
        }
    }

    /// Whether adaptive partitioning is on (`partitioner.adaptive.partitioning.enable`).
    pub fn adaptive(&self) -> bool {
        self.adaptive
    }

    /// Whether leaders' readiness is tracked: adaptive partitioning is on and the
    /// availability timeout is not zero.
    fn tracks_availability(&self) -> bool {
        self.adaptive && !self.availability_timeout.is_zero()
    }

    /// Records one sender pass for a leader that has a batch ready to send (Java's
    /// `RecordAccumulator.updateNodeLatencyStats`, called from `Sender.sendProducerData`):
    /// `drainable` says whether the sender can send to it now (a ready connection with
    /// room for another request in flight). Sender thread only; does nothing unless
    /// [`availability_timeout`](Self::availability_timeout) is non-zero and adaptive
    /// partitioning is on.
    pub fn node_ready(&self, node: i32, now: Instant, drainable: bool) {
        if !self.tracks_availability() {
            return;
        }
        let mut leaders = self.leaders.lock();
        let entry = leaders.entry(node).or_insert(LeaderReadiness {
            ready: now,
            drained: now,
        });
        entry.ready = now;
        if drainable {
            entry.drained = now;
        }
    }

    /// Whether `node` had batches ready but could take none for longer than the
    /// availability timeout (false while the check is off or the node was never seen).
    #[cfg(test)]
    pub fn is_node_unavailable(&self, node: i32) -> bool {
        self.tracks_availability()
            && self.leaders.lock().get(&node).is_some_and(|r| {
                r.ready.saturating_duration_since(r.drained) > self.availability_timeout
            })
    }

    /// [`update_load_stats`](Self::update_load_stats) from `(partition, leader, queued
    /// batches)` for each partition of `topic` with a leader: partitions whose leader is
    /// unavailable (see [`is_node_unavailable`](Self::is_node_unavailable)) are left out.
    /// Called by the sender thread with its periodic load statistics.
    pub fn update_load_stats_by_leader(&self, topic: &str, partitions: &[(i32, i32, usize)]) {
        if !self.adaptive {
            return;
        }
        let sizes: Vec<(i32, usize)> = if self.tracks_availability() {
            let leaders = self.leaders.lock();
            let timeout = self.availability_timeout;
            let unavailable = |node: &i32| {
                leaders
                    .get(node)
                    .is_some_and(|r| r.ready.saturating_duration_since(r.drained) > timeout)
            };
            partitions
                .iter()
                .filter(|(_, leader, _)| !unavailable(leader))
                .map(|&(p, _, q)| (p, q))
                .collect()
        } else {
            partitions.iter().map(|&(p, _, q)| (p, q)).collect()
        };
        self.update_load_stats(topic, &sizes);
    }

    /// The partition the next record of `topic` goes to (picks a new sticky partition when
    /// there is none yet).
    ///
    /// # Panics
    ///
    /// When `partitions` is empty (a topic always has at least one partition).
    #[cfg(test)]
    pub fn partition(&self, topic: &str, partitions: &[PartitionInfo]) -> i32 {
        assert!(!partitions.is_empty(), "topic {topic:?} has no partitions");
        self.partition_in(&self.topic(topic), partitions)
    }

    /// The state of `topic`, created on first use; the send path keeps it to skip the map.
    pub(crate) fn topic(&self, topic: &str) -> Arc<StickyTopic> {
        if let Some(t) = self.topics.read().get(topic) {
            return Arc::clone(t);
        }
        let key = topic.to_owned();
        Arc::clone(self.topics.write().entry(key).or_default())
    }

    /// [`StickyPartitioner::partition`] with the topic's state at hand.
    pub(crate) fn partition_in(&self, topic: &StickyTopic, partitions: &[PartitionInfo]) -> i32 {
        let load = {
            let state = topic.0.lock();
            match state.current {
                Some(p) => return p,
                None => state.load.clone(),
            }
        };
        let chosen = next_partition(load.as_deref(), None, partitions);
        // Like Java's compare-and-set: if another thread installed a partition meanwhile,
        // everyone uses that one.
        let mut state = topic.0.lock();
        match state.current {
            Some(p) => p,
            None => {
                state.install(chosen);
                chosen
            }
        }
    }

    /// Called after a record of `appended_bytes` was appended to `partition` of `topic`.
    /// Counts bytes produced to the sticky partition and switches to a new one once they
    /// reach batch.size (only when `batches_full` says the partition has no partly-filled
    /// batch, or unconditionally at 2 × batch.size), as Java does.
    ///
    /// Appends to any other partition (keyed records, or a sticky partition that another
    /// thread already replaced) are not counted, as in Java.
    #[cfg(test)]
    pub fn on_append(
        &self,
        topic: &str,
        partition: i32,
        appended_bytes: usize,
        batches_full: bool,
        partitions: &[PartitionInfo],
    ) {
        let Some(state) = self.topics.read().get(topic).cloned() else {
            return;
        };
        self.on_append_in(&state, partition, appended_bytes, batches_full, partitions);
    }

    /// [`StickyPartitioner::on_append`] with the topic's state at hand.
    pub(crate) fn on_append_in(
        &self,
        topic: &StickyTopic,
        partition: i32,
        appended_bytes: usize,
        batches_full: bool,
        partitions: &[PartitionInfo],
    ) {
        let (generation, load) = {
            let mut state = topic.0.lock();
            if state.current != Some(partition) {
                return;
            }
            state.produced_bytes = state.produced_bytes.saturating_add(appended_bytes);
            // Switching only when the batches are full avoids leaving a small batch behind
            // with a high linger.ms; the 2x cap stops a never-full partition from keeping us
            // forever (Java's `updatePartitionInfo`).
            let enough = state.produced_bytes >= self.sticky_batch_size;
            let too_much = state.produced_bytes >= self.sticky_batch_size.saturating_mul(2);
            if !(enough && batches_full || too_much) {
                return;
            }
            (state.generation, state.load.clone())
        };
        let next = next_partition(load.as_deref(), Some(partition), partitions);
        let mut state = topic.0.lock();
        if state.generation == generation {
            state.install(next);
        }
    }

    /// Adaptive partitioning input (called periodically from the sender thread): for each
    /// partition of `topic` whose leader is available, the number of batches queued for that
    /// partition's leader ([`update_load_stats_by_leader`](Self::update_load_stats_by_leader)
    /// leaves out the partitions of unavailable leaders and calls this). Builds the
    /// cumulative frequency table Java uses (weight = max_queue + 1 - queue).
    ///
    /// An empty list clears the statistics, so the next choice is uniform again. Ignored when
    /// adaptive partitioning is off. Java also drops the table when every queue is equal (or
    /// the topic has one partition); we keep it, which draws uniformly over the same listed
    /// partitions and so gives the same distribution.
    pub fn update_load_stats(&self, topic: &str, queue_sizes: &[(i32, usize)]) {
        if !self.adaptive {
            return;
        }
        let load = LoadStats::from_queue_sizes(queue_sizes).map(Arc::new);
        let topic = self.topic(topic);
        // The old table is dropped after the lock is released.
        let _old = std::mem::replace(&mut topic.0.lock().load, load);
    }
}

impl TopicState {
    /// Makes `partition` the sticky partition with a fresh byte count.
    fn install(&mut self, partition: i32) {
        self.current = Some(partition);
        self.produced_bytes = 0;
        self.generation = self.generation.wrapping_add(1);
    }
}

/// Java's `BuiltInPartitioner.nextPartition`: a weighted draw from the load statistics when
/// there are any, else a uniform draw among partitions with a leader (among all partitions
/// when none has one). Unlike Java, `current` is not drawn again when another partition is
/// eligible, so a switch always moves on.
fn next_partition(
    load: Option<&LoadStats>,
    current: Option<i32>,
    partitions: &[PartitionInfo],
) -> i32 {
    if let Some(load) = load {
        let p = load.pick(current);
        // Statistics are a few milliseconds old; never hand out a partition that the
        // metadata given to us does not have.
        if usize::try_from(p).is_ok_and(|p| p < partitions.len()) {
            return p;
        }
    }
    let candidates = Candidates::new(partitions, current);
    candidates.nth(random_below(candidates.len as u64) as usize)
}

/// The partitions a uniform choice draws from, without allocating: those with a leader, or
/// all of them when none has one, minus an excluded partition when something else is left.
struct Candidates<'a> {
    partitions: &'a [PartitionInfo],
    leaders_only: bool,
    exclude: Option<i32>,
    /// How many partitions qualify, always >= 1 for a non-empty topic.
    len: usize,
}

impl<'a> Candidates<'a> {
    fn new(partitions: &'a [PartitionInfo], exclude: Option<i32>) -> Self {
        let with_leader = partitions.iter().filter(|p| p.leader().is_some()).count();
        let leaders_only = with_leader > 0;
        let mut candidates = Candidates {
            partitions,
            leaders_only,
            exclude: None,
            len: if leaders_only {
                with_leader
            } else {
                partitions.len()
            },
        };
        if let Some(ex) = exclude {
            let listed = candidates.iter().any(|p| p.partition() == ex);
            if listed && candidates.len > 1 {
                candidates.exclude = Some(ex);
                candidates.len -= 1;
            }
        }
        candidates
    }

    fn iter(&self) -> impl Iterator<Item = &'a PartitionInfo> + '_ {
        self.partitions.iter().filter(|p| {
            (!self.leaders_only || p.leader().is_some()) && Some(p.partition()) != self.exclude
        })
    }

    /// The partition number of the `n`th candidate, `n < len`.
    fn nth(&self, n: usize) -> i32 {
        self.iter()
            .nth(n)
            .map(PartitionInfo::partition)
            .expect("n is below the number of candidates")
    }
}

thread_local! {
    /// This thread's xorshift64* state; never zero.
    static RNG: Cell<u64> = Cell::new(seed());
}

/// A seed from the clock and a process-wide counter, mixed with splitmix64's finalizer so
/// that nearby seeds give unrelated streams.
fn seed() -> u64 {
    static THREADS: AtomicU64 = AtomicU64::new(0);
    let n = THREADS.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let mut z = nanos ^ n.wrapping_mul(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    (z ^ (z >> 31)) | 1
}

/// A random number in `0..n`; `n` must be non-zero. The modulo bias is below 2^-40 for any
/// partition count or frequency table Kafka can have.
fn random_below(n: u64) -> u64 {
    debug_assert!(n > 0);
    let x = RNG.with(|state| {
        let mut x = state.get();
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        state.set(x);
        x
    });
    x.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partitions(leaders: &[Option<i32>]) -> Vec<PartitionInfo> {
        leaders
            .iter()
            .enumerate()
            .map(|(i, &leader)| PartitionInfo::new("t", i as i32, leader, vec![], vec![], vec![]))
            .collect()
    }

    fn all_led(n: usize) -> Vec<PartitionInfo> {
        partitions(&vec![Some(1); n])
    }

    #[test]
    fn murmur2_matches_java_test_vectors() {
        // Every case of Kafka's UtilsTest.testMurmur2.
        let cases: [(&[u8], i32); 6] = [
            (b"21", -973_932_308),
            (b"foobar", -790_332_482),
            (b"a-little-bit-long-string", -985_981_536),
            (b"a-little-bit-longer-string", -1_486_304_829),
            (
                b"lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8",
                -58_897_971,
            ),
            (b"abc", 479_470_107),
        ];
        for (key, expected) in cases {
            assert_eq!(murmur2(key), expected, "{}", String::from_utf8_lossy(key));
        }
    }

    #[test]
    fn keyed_records_land_on_java_partition() {
        // toPositive masks the sign bit: murmur2("21") = -973932308 is 3321034988 as
        // u32; minus 2^31 gives 1173551340. Its digit sum is 30, so % 3 == 0; it ends
        // in 0, so % 10 == 0; 7 * 167650191 = 1173551337, so % 7 == 3.
        assert_eq!(partition_for_key(b"21", 3), 0);
        assert_eq!(partition_for_key(b"21", 10), 0);
        assert_eq!(partition_for_key(b"21", 7), 3);
        // murmur2("foobar") = -790332482 -> 3504634814 - 2^31 = 1357151166; ends in 6, and
        // 7 * 193878738 = 1357151166 exactly.
        assert_eq!(partition_for_key(b"foobar", 10), 6);
        assert_eq!(partition_for_key(b"foobar", 7), 0);
        // murmur2("abc") = 479470107 is already positive; it ends in 7; 12 * 39955842 =
        // 479470104 leaves 3.
        assert_eq!(partition_for_key(b"abc", 10), 7);
        assert_eq!(partition_for_key(b"abc", 12), 3);
    }

    #[test]
    fn round_robin_cycles_in_order_and_skips_leaderless_partitions() {
        let rr = RoundRobinPartitioner::new();
        let parts = partitions(&[Some(1), None, Some(2), None, Some(1)]);
        let picks: Vec<_> = (0..6)
            .map(|_| rr.partition("t", None, None, &parts).unwrap())
            .collect();
        assert_eq!(picks, [0, 2, 4, 0, 2, 4]);
        // Another topic has its own counter.
        assert_eq!(rr.partition("other", None, None, &parts), Some(0));
    }

    #[test]
    fn round_robin_uses_all_partitions_when_none_has_a_leader() {
        let rr = RoundRobinPartitioner::new();
        let parts = partitions(&[None, None, None]);
        let picks: Vec<_> = (0..4)
            .map(|_| rr.partition("t", Some(b"key"), None, &parts).unwrap())
            .collect();
        assert_eq!(picks, [0, 1, 2, 0]);
    }

    #[test]
    fn sticky_stays_on_one_partition_until_batch_size_then_switches() {
        let parts = all_led(4);
        let sticky = StickyPartitioner::new(1000, false, Duration::ZERO);
        let first = sticky.partition("t", &parts);
        for _ in 0..9 {
            sticky.on_append("t", first, 100, true, &parts);
            assert_eq!(sticky.partition("t", &parts), first);
        }
        sticky.on_append("t", first, 100, true, &parts);
        let second = sticky.partition("t", &parts);
        assert_ne!(second, first);
        // The byte count starts over on the new partition.
        sticky.on_append("t", second, 999, true, &parts);
        assert_eq!(sticky.partition("t", &parts), second);
    }

    #[test]
    fn sticky_does_not_switch_while_batches_are_not_full() {
        let parts = all_led(3);
        let sticky = StickyPartitioner::new(1000, false, Duration::ZERO);
        let first = sticky.partition("t", &parts);
        sticky.on_append("t", first, 1999, false, &parts);
        assert_eq!(sticky.partition("t", &parts), first);
        sticky.on_append("t", first, 1, false, &parts);
        assert_ne!(
            sticky.partition("t", &parts),
            first,
            "2 x batch.size switches anyway"
        );
    }

    #[test]
    fn sticky_ignores_appends_to_other_partitions() {
        let parts = all_led(3);
        let sticky = StickyPartitioner::new(10, false, Duration::ZERO);
        let first = sticky.partition("t", &parts);
        let other = (first + 1) % 3;
        sticky.on_append("t", other, 100, true, &parts);
        sticky.on_append("unknown-topic", 0, 100, true, &parts);
        assert_eq!(sticky.partition("t", &parts), first);
    }

    #[test]
    fn sticky_prefers_partitions_with_a_leader() {
        let parts = partitions(&[None, Some(1), None, Some(2)]);
        let sticky = StickyPartitioner::new(1, false, Duration::ZERO);
        for _ in 0..200 {
            let p = sticky.partition("t", &parts);
            assert!(p == 1 || p == 3, "picked leaderless partition {p}");
            sticky.on_append("t", p, 1, true, &parts);
        }
    }

    #[test]
    fn adaptive_choice_never_picks_a_partition_absent_from_load_stats() {
        let parts = all_led(5);
        let sticky = StickyPartitioner::new(1, true, Duration::ZERO);
        sticky.update_load_stats("t", &[(0, 4), (2, 0), (4, 9)]);
        for _ in 0..1000 {
            let p = sticky.partition("t", &parts);
            assert!([0, 2, 4].contains(&p), "picked {p}, absent from load stats");
            sticky.on_append("t", p, 1, true, &parts);
        }
    }

    #[test]
    fn adaptive_choice_favours_short_queues() {
        // Weights 10, 1, 7 (max queue 9, plus 1, minus each queue): 55%, 6%, 39%.
        let stats = LoadStats::from_queue_sizes(&[(0, 0), (1, 9), (2, 3)]).unwrap();
        assert_eq!(stats.cumulative, [10, 11, 18]);
        let mut counts = [0u32; 3];
        for _ in 0..18_000 {
            counts[stats.pick(None) as usize] += 1;
        }
        // Expected 10000, 1000, 7000; the bounds are many standard deviations wide.
        assert!((9_000..11_000).contains(&counts[0]), "{counts:?}");
        assert!((500..1_500).contains(&counts[1]), "{counts:?}");
        assert!((6_000..8_000).contains(&counts[2]), "{counts:?}");
    }

    #[test]
    fn adaptive_choice_skips_the_current_partition() {
        let stats = LoadStats::from_queue_sizes(&[(0, 0), (1, 9), (2, 3)]).unwrap();
        let mut counts = [0u32; 3];
        for _ in 0..8_000 {
            counts[stats.pick(Some(0)) as usize] += 1;
        }
        // Without partition 0 the weights are 1 and 7: expected 1000 and 7000.
        assert_eq!(counts[0], 0);
        assert!((500..1_500).contains(&counts[1]), "{counts:?}");
    }

    #[test]
    fn empty_load_stats_fall_back_to_uniform_choice() {
        let parts = all_led(3);
        let sticky = StickyPartitioner::new(1, true, Duration::ZERO);
        sticky.update_load_stats("t", &[(1, 0)]);
        sticky.update_load_stats("t", &[]);
        let mut seen = [false; 3];
        for _ in 0..300 {
            let p = sticky.partition("t", &parts);
            seen[p as usize] = true;
            sticky.on_append("t", p, 1, true, &parts);
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn load_stats_are_ignored_when_adaptive_is_off() {
        let parts = all_led(3);
        let sticky = StickyPartitioner::new(1, false, Duration::ZERO);
        sticky.update_load_stats("t", &[(1, 0)]);
        let mut seen = [false; 3];
        for _ in 0..300 {
            let p = sticky.partition("t", &parts);
            seen[p as usize] = true;
            sticky.on_append("t", p, 1, true, &parts);
        }
        assert_eq!(seen, [true; 3]);
    }

    #[test]
    fn stale_load_stats_never_name_a_missing_partition() {
        let parts = all_led(2);
        let sticky = StickyPartitioner::new(1, true, Duration::ZERO);
        sticky.update_load_stats("t", &[(7, 0)]);
        let p = sticky.partition("t", &parts);
        assert!(p == 0 || p == 1);
    }

    /// Partitions 0..4 led by nodes 1, 2, 1, 2, every queue empty.
    const LED_BY_TWO: [(i32, i32, usize); 4] = [(0, 1, 0), (1, 2, 0), (2, 1, 0), (3, 2, 0)];

    /// Which of `parts` the sticky partitioner picks over many switches (after one switch,
    /// so the partition chosen under earlier statistics is not counted).
    fn picked(sticky: &StickyPartitioner, parts: &[PartitionInfo]) -> Vec<bool> {
        let first = sticky.partition("t", parts);
        sticky.on_append("t", first, 1, true, parts);
        let mut seen = vec![false; parts.len()];
        for _ in 0..400 {
            let p = sticky.partition("t", parts);
            seen[p as usize] = true;
            sticky.on_append("t", p, 1, true, parts);
        }
        seen
    }

    #[test]
    fn a_leader_unable_to_drain_for_longer_than_the_availability_timeout_is_skipped() {
        let parts = all_led(4);
        let timeout = Duration::from_millis(100);
        let sticky = StickyPartitioner::new(1, true, timeout);
        let t0 = Instant::now();
        sticky.node_ready(1, t0, true);
        sticky.node_ready(2, t0, true);
        // Node 2 has had batches ready for 100 ms without taking any: not yet.
        sticky.node_ready(2, t0 + timeout, false);
        assert!(!sticky.is_node_unavailable(2));
        sticky.update_load_stats_by_leader("t", &LED_BY_TWO);
        assert_eq!(picked(&sticky, &parts), [true; 4]);
        // Past the timeout its partitions are skipped.
        sticky.node_ready(1, t0 + timeout * 2, true);
        sticky.node_ready(2, t0 + timeout * 2, false);
        assert!(sticky.is_node_unavailable(2));
        assert!(!sticky.is_node_unavailable(1));
        sticky.update_load_stats_by_leader("t", &LED_BY_TWO);
        assert_eq!(picked(&sticky, &parts), [true, false, true, false]);
        // Once it drains again, it is available again.
        sticky.node_ready(2, t0 + timeout * 3, true);
        assert!(!sticky.is_node_unavailable(2));
        sticky.update_load_stats_by_leader("t", &LED_BY_TWO);
        assert_eq!(picked(&sticky, &parts), [true; 4]);
    }

    #[test]
    fn availability_is_not_tracked_when_the_timeout_is_zero_or_adaptive_is_off() {
        let parts = all_led(4);
        let t0 = Instant::now();
        let hour = Duration::from_secs(3600);
        for sticky in [
            StickyPartitioner::new(1, true, Duration::ZERO),
            StickyPartitioner::new(1, false, Duration::from_millis(100)),
        ] {
            sticky.node_ready(2, t0, true);
            sticky.node_ready(2, t0 + hour, false);
            assert!(!sticky.is_node_unavailable(2));
            sticky.update_load_stats_by_leader("t", &LED_BY_TWO);
            assert_eq!(picked(&sticky, &parts), [true; 4]);
        }
    }

    #[test]
    fn every_leader_unavailable_falls_back_to_uniform_choice() {
        let parts = all_led(4);
        let sticky = StickyPartitioner::new(1, true, Duration::from_millis(10));
        let t0 = Instant::now();
        for node in [1, 2] {
            sticky.node_ready(node, t0, true);
            sticky.node_ready(node, t0 + Duration::from_secs(1), false);
        }
        sticky.update_load_stats_by_leader("t", &LED_BY_TWO);
        assert_eq!(picked(&sticky, &parts), [true; 4]);
    }

    #[test]
    fn works_with_one_partition() {
        let parts = all_led(1);
        let sticky = StickyPartitioner::new(10, true, Duration::ZERO);
        assert_eq!(sticky.partition("t", &parts), 0);
        sticky.on_append("t", 0, 100, true, &parts);
        assert_eq!(sticky.partition("t", &parts), 0);
        sticky.update_load_stats("t", &[(0, 5)]);
        sticky.on_append("t", 0, 100, true, &parts);
        assert_eq!(sticky.partition("t", &parts), 0);

        let leaderless = partitions(&[None]);
        assert_eq!(sticky.partition("u", &leaderless), 0);
        let rr = RoundRobinPartitioner::new();
        assert_eq!(rr.partition("t", None, None, &parts), Some(0));
        assert_eq!(rr.partition("t", None, None, &parts), Some(0));
        assert_eq!(partition_for_key(b"anything", 1), 0);
    }

    #[test]
    fn partition_is_safe_to_call_from_many_threads_at_once() {
        let parts = Arc::new(all_led(3));
        let sticky = Arc::new(StickyPartitioner::new(50, true, Duration::ZERO));
        let rr = Arc::new(RoundRobinPartitioner::new());
        let threads: Vec<_> = (0..8)
            .map(|i| {
                let (parts, sticky, rr) = (parts.clone(), sticky.clone(), rr.clone());
                std::thread::spawn(move || {
                    let mut rr_counts = [0u32; 3];
                    for n in 0..300 {
                        let p = sticky.partition("t", &parts);
                        assert!((0..3).contains(&p));
                        sticky.on_append("t", p, 7, n % 2 == 0, &parts);
                        if i == 0 && n % 50 == 0 {
                            sticky.update_load_stats("t", &[(0, n % 4), (1, 1), (2, 0)]);
                        }
                        let r = rr.partition("t", None, None, &parts).unwrap();
                        rr_counts[r as usize] += 1;
                    }
                    rr_counts
                })
            })
            .collect();
        let mut totals = [0u32; 3];
        for t in threads {
            for (total, n) in totals.iter_mut().zip(t.join().unwrap()) {
                *total += n;
            }
        }
        // The shared counter hands out 2400 distinct turns: exactly 800 per partition.
        assert_eq!(totals, [800; 3]);
    }
}

//! The cluster metadata cache: brokers, topics, partitions and their leaders.
//!
//! # Ownership
//!
//! The sender thread is the only writer: it sends Metadata requests and installs each
//! answer as a new immutable [`Cluster`] snapshot. Caller threads read the current snapshot
//! (an `Arc` clone under a short read lock) to validate and partition records, and when a
//! topic is missing they register it as *wanted*, wake the sender, and wait on `changed`
//! until it appears or max.block.ms passes.
//!
//! # Idle topics (metadata.max.idle.ms)
//!
//! Each wanted topic remembers when it was last used, as Java's `ProducerMetadata` does.
//! Java refreshes that on every send; here sends go through a per-thread route cache that
//! does not touch this cache, so the uses are recorded where they are cheap: by the send
//! path when its route cache misses (`cached_partitions_versioned`, `wait_for_topic`), and
//! by the sender thread for every topic with queued batches on each pass ([`Metadata::touch`]).
//! Every record is queued before it is sent, so a topic in use is seen at least once per
//! batch. The sender then calls [`Metadata::forget_idle`], which drops the topics unused for
//! metadata.max.idle.ms from the wanted set and from the snapshot (Java drops them from its
//! cache at the next update; here the snapshot changes at once, so the route caches, keyed by
//! the snapshot version, miss and the next send to such a topic waits for its metadata as for
//! a new topic). A topic someone waits for is never dropped.
//!
//! # Lock
//!
//! `state` guards the snapshot, the wanted topics and the update request flag; `changed`
//! is notified after every install. It is a leaf lock.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::error::{Error, ErrorCode};
use crate::protocol::metadata::MetadataResponse;
use crate::protocol::produce::{LeaderIdAndEpoch, NodeEndpoint};
use crate::record::PartitionInfo;

/// A broker's address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Broker {
    pub node_id: i32,
    pub address: String,
}

/// One topic in a snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct TopicMetadata {
    /// The topic-level error, if the broker reported one.
    pub error: Option<ErrorCode>,
    /// Partitions in order: `partitions[i].partition() == i`.
    pub partitions: Arc<[PartitionInfo]>,
    /// Each partition's leader epoch (-1 when the broker did not say).
    pub leader_epochs: Arc<[i32]>,
}

/// An immutable snapshot of the cluster.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Cluster {
    pub brokers: HashMap<i32, Broker>,
    pub topics: HashMap<Arc<str>, TopicMetadata>,
    /// Topics that had partitions in an earlier snapshot and that the broker now reports as
    /// UNKNOWN_TOPIC_OR_PARTITION: deleted. Sends to them fail at once and their queued
    /// records fail (see [`Metadata::install`]); a snapshot that shows the topic again (it
    /// was created anew) clears the mark.
    pub deleted: HashSet<Arc<str>>,
}

impl Cluster {
    /// Builds a snapshot from a Metadata response.
    pub fn from_response(md: &MetadataResponse) -> Cluster {
        let brokers = md
            .brokers
            .iter()
            .map(|b| {
                let broker = Broker {
                    node_id: b.node_id,
                    address: format!("{}:{}", b.host, b.port),
                };
                (b.node_id, broker)
            })
            .collect();
        let mut topics = HashMap::new();
        for t in &md.topics {
            let Some(name) = t.name.as_deref() else {
                continue;
            };
            let name: Arc<str> = Arc::from(name);
            let error = (t.error_code != 0).then(|| ErrorCode::from_code(t.error_code));
            let mut parts: Vec<&crate::protocol::metadata::MetadataPartition> =
                t.partitions.iter().collect();
            parts.sort_by_key(|p| p.partition_index);
            // Partitions must be 0..n with no gap; a response that breaks this is partial
            // (some partitions unknown), so keep the prefix that is complete.
            let complete = parts
                .iter()
                .enumerate()
                .take_while(|(i, p)| p.partition_index == *i as i32)
                .count();
            let partitions: Arc<[PartitionInfo]> = parts[..complete]
                .iter()
                .map(|p| {
                    let leader = (p.leader_id >= 0
                        && p.error_code != ErrorCode::LeaderNotAvailable.code())
                    .then_some(p.leader_id);
                    PartitionInfo::new(
                        Arc::clone(&name),
                        p.partition_index,
                        leader,
                        p.replica_nodes.clone(),
                        p.isr_nodes.clone(),
                        p.offline_replicas.clone(),
                    )
                })
                .collect();
            let leader_epochs = parts[..complete].iter().map(|p| p.leader_epoch).collect();
            topics.insert(
                name,
                TopicMetadata {
                    error,
                    partitions,
                    leader_epochs,
                },
            );
        }
        Cluster {
            brokers,
            topics,
            deleted: HashSet::new(),
        }
    }

    /// The error of a send to, or a record queued for, a topic marked deleted.
    pub fn deleted_error(topic: &str) -> Error {
        Error::Broker {
            code: ErrorCode::UnknownTopicOrPartition,
            message: Some(format!("topic {topic:?} was deleted")),
        }
    }

    /// The leader of `topic`-`partition`, if known.
    pub fn leader(&self, topic: &str, partition: i32) -> Option<i32> {
        self.topics
            .get(topic)?
            .partitions
            .get(usize::try_from(partition).ok()?)?
            .leader()
    }

    /// A copy of this snapshot with `leader` (KIP-951: a Produce response's CurrentLeader)
    /// leading `topic`-`partition`, and `endpoints` added to the brokers; `None` when the
    /// hint is not newer than what the snapshot knows or names an unknown broker.
    pub fn with_leader_hint(
        &self,
        topic: &str,
        partition: i32,
        leader: LeaderIdAndEpoch,
        endpoints: &[NodeEndpoint],
    ) -> Option<Cluster> {
        let index = usize::try_from(partition).ok()?;
        let t = self.topics.get(topic)?;
        let known_epoch = *t.leader_epochs.get(index)?;
        let current = t.partitions.get(index)?;
        if leader.leader_id < 0 || leader.leader_epoch < 0 || leader.leader_epoch <= known_epoch {
            return None;
        }
        let mut brokers = self.brokers.clone();
        for e in endpoints {
            brokers.insert(
                e.node_id,
                Broker {
                    node_id: e.node_id,
                    address: format!("{}:{}", e.host, e.port),
                },
            );
        }
        if !brokers.contains_key(&leader.leader_id) {
            return None;
        }
        let mut partitions = t.partitions.to_vec();
        partitions[index] = PartitionInfo::new(
            Arc::clone(current.topic_arc()),
            partition,
            Some(leader.leader_id),
            current.replicas().to_vec(),
            current.in_sync_replicas().to_vec(),
            current.offline_replicas().to_vec(),
        );
        let mut leader_epochs = t.leader_epochs.to_vec();
        leader_epochs[index] = leader.leader_epoch;
        let mut topics = self.topics.clone();
        topics.insert(
            Arc::clone(self.topics.get_key_value(topic)?.0),
            TopicMetadata {
                error: t.error,
                partitions: partitions.into(),
                leader_epochs: leader_epochs.into(),
            },
        );
        Some(Cluster {
            brokers,
            topics,
            deleted: self.deleted.clone(),
        })
    }

    /// A topic's partitions, when the topic is known without error and has some.
    pub fn partitions(&self, topic: &str) -> Option<&Arc<[PartitionInfo]>> {
        self.topics
            .get(topic)
            .filter(|t| t.error.is_none() && !t.partitions.is_empty())
            .map(|t| &t.partitions)
    }
}

/// A wanted topic's use (see "Idle topics" in the module docs).
#[derive(Debug, Clone, Copy)]
struct Use {
    /// When a send, a wait or the sender last used the topic.
    last: Instant,
    /// Callers in `wait_for_topic` for it; a topic waited for is not forgotten.
    waiters: usize,
}

impl Use {
    fn at(now: Instant) -> Self {
        Use {
            last: now,
            waiters: 0,
        }
    }
}

#[derive(Debug, Default)]
struct State {
    cluster: Arc<Cluster>,
    /// Topics that callers wait for or produce to, with their last use.
    wanted: HashMap<Arc<str>, Use>,
    /// No wanted topic can be idle before this instant, so `forget_idle` need not look
    /// (`None`: look at the next call).
    next_idle_check: Option<Instant>,
    /// A refresh was requested (unknown topic, unknown leader, stale leader).
    update_requested: bool,
    /// Bumped on every install.
    version: u64,
    /// Set at close: waiting callers give up.
    closed: bool,
    /// A connection failed to authenticate (SASL or TLS) since the last install: waiting
    /// and new callers fail with it instead of waiting out max.block.ms, as Java's
    /// `Metadata.fatalError` makes `send` throw. The next install clears it.
    authentication_error: Option<Error>,
}

impl State {
    /// Marks `topic` wanted and used at `now`; its entry.
    fn used(&mut self, topic: &str, now: Instant) -> &mut Use {
        if !self.wanted.contains_key(topic) {
            self.wanted.insert(Arc::from(topic), Use::at(now));
        }
        let entry = self.wanted.get_mut(topic).expect("inserted above");
        entry.last = entry.last.max(now);
        entry
    }
}

/// The shared cache. See the module docs.
#[derive(Debug, Default)]
pub(crate) struct Metadata {
    state: Mutex<State>,
    changed: Condvar,
    /// `State::version`, published (Release, under the lock) after every change of the
    /// snapshot, so senders can tell lock-free whether what they cached is still current.
    published: std::sync::atomic::AtomicU64,
}

impl Metadata {
    /// The current snapshot.
    pub fn cluster(&self) -> Arc<Cluster> {
        Arc::clone(&self.state.lock().cluster)
    }

    /// The partitions of `topic`, waiting until `deadline` for the sender to fetch them.
    /// `wake` is called once when a fetch is needed (it wakes the sender).
    pub fn wait_for_topic(
        &self,
        topic: &str,
        deadline: Instant,
        wake: impl Fn(),
    ) -> Result<Arc<[PartitionInfo]>, Error> {
        let start = Instant::now();
        let mut s = self.state.lock();
        if let Some(p) = s.cluster.partitions(topic) {
            let p = Arc::clone(p);
            s.used(topic, start);
            return Ok(p);
        }
        if s.cluster.deleted.contains(topic) {
            // Fail fast, as librdkafka does for a deleted topic (Java waits max.block.ms):
            // the topic stays wanted, so a refresh that shows it created anew clears this.
            s.update_requested = true;
            return Err(Cluster::deleted_error(topic));
        }
        s.used(topic, start).waiters += 1;
        s.update_requested = true;
        let result = self.wait_in(&mut s, topic, start, deadline, wake);
        // The end of a wait counts as a use: the caller sends right after a success.
        let now = Instant::now();
        let entry = s.used(topic, now);
        entry.waiters -= 1;
        result
    }

    /// The waiting part of [`Metadata::wait_for_topic`], with the topic registered.
    fn wait_in(
        &self,
        s: &mut parking_lot::MutexGuard<'_, State>,
        topic: &str,
        start: Instant,
        deadline: Instant,
        wake: impl Fn(),
    ) -> Result<Arc<[PartitionInfo]>, Error> {
        let mut woken = false;
        loop {
            if let Some(p) = s.cluster.partitions(topic) {
                return Ok(Arc::clone(p));
            }
            if !woken {
                woken = true;
                parking_lot::MutexGuard::unlocked(s, &wake);
                continue;
            }
            if s.closed {
                return Err(Error::Closed);
            }
            if let Some(error) = &s.authentication_error {
                return Err(error.clone());
            }
            // A non-retriable topic error (authorization, invalid topic) will not go away:
            // fail at the first answer that carries it, as Java does.
            let topic_error = s.cluster.topics.get(topic).and_then(|t| t.error);
            if let Some(code) = topic_error.filter(|c| !c.is_retriable()) {
                return Err(Error::Broker {
                    code,
                    message: Some(format!("metadata for topic {topic:?}")),
                });
            }
            if self.changed.wait_until(s, deadline).timed_out()
                && s.cluster.partitions(topic).is_none()
            {
                return Err(Error::MetadataTimeout {
                    topic: topic.to_owned(),
                    waited_ms: start.elapsed().as_millis() as u64,
                });
            }
        }
    }

    /// Asks the sender for a refresh (a leader is unknown or moved).
    pub fn request_update(&self) {
        self.state.lock().update_requested = true;
    }

    /// Whether a refresh was requested since the last install.
    pub fn update_requested(&self) -> bool {
        self.state.lock().update_requested
    }

    /// The topics to ask for: every wanted topic.
    pub fn wanted_topics(&self) -> Vec<String> {
        let s = self.state.lock();
        let mut v: Vec<String> = s.wanted.keys().map(|t| t.to_string()).collect();
        v.sort();
        v
    }

    /// Installs a new snapshot (sender thread only) and wakes waiting callers. A topic that
    /// had partitions in the snapshot it replaces (or was deleted already) and that the new
    /// one reports as UNKNOWN_TOPIC_OR_PARTITION is marked deleted.
    pub fn install(&self, mut cluster: Cluster) {
        let mut s = self.state.lock();
        let previous = &s.cluster;
        cluster.deleted = cluster
            .topics
            .iter()
            .filter(|(name, t)| {
                t.error == Some(ErrorCode::UnknownTopicOrPartition)
                    && (previous.partitions(name).is_some() || previous.deleted.contains(*name))
            })
            .map(|(name, _)| Arc::clone(name))
            .chain(
                // Topics this answer does not mention keep their mark.
                previous
                    .deleted
                    .iter()
                    .filter(|name| !cluster.topics.contains_key(*name))
                    .cloned(),
            )
            .collect();
        for name in &cluster.deleted {
            if !previous.deleted.contains(name) {
                log::warn!("topic {name:?} was deleted; its queued records fail");
            }
        }
        // A refresh stays requested while some wanted topic is missing or leaderless.
        s.update_requested = s.wanted.keys().any(|t| match cluster.partitions(t) {
            None => true,
            Some(p) => p.iter().any(|p| p.leader().is_none()),
        });
        s.cluster = Arc::new(cluster);
        s.authentication_error = None;
        s.version += 1;
        self.published
            .store(s.version, std::sync::atomic::Ordering::Release);
        drop(s);
        self.changed.notify_all();
    }

    /// A connection failed to authenticate (sender thread only): callers waiting for
    /// metadata, and those that come before the next install, fail with `error`.
    pub fn authentication_failed(&self, error: Error) {
        self.state.lock().authentication_error = Some(error);
        self.changed.notify_all();
    }

    /// Applies a Produce response's CurrentLeader hint (sender thread only); true when it
    /// changed the snapshot. The periodic and requested refreshes still follow.
    pub fn apply_leader_hint(
        &self,
        topic: &str,
        partition: i32,
        leader: LeaderIdAndEpoch,
        endpoints: &[NodeEndpoint],
    ) -> bool {
        let mut s = self.state.lock();
        let Some(updated) = s
            .cluster
            .with_leader_hint(topic, partition, leader, endpoints)
        else {
            return false;
        };
        s.cluster = Arc::new(updated);
        s.version += 1;
        self.published
            .store(s.version, std::sync::atomic::Ordering::Release);
        drop(s);
        self.changed.notify_all();
        true
    }

    /// The version of the current snapshot (lock-free; see `published`).
    pub fn version(&self) -> u64 {
        self.published.load(std::sync::atomic::Ordering::Acquire)
    }

    /// A topic's partitions and the snapshot version they belong to, if cached; otherwise
    /// registers the topic as wanted and asks for a refresh (without waiting).
    /// Either way the topic counts as used now (this is the send path's route-cache miss).
    pub fn cached_partitions_versioned(&self, topic: &str) -> Option<(Arc<[PartitionInfo]>, u64)> {
        let now = Instant::now();
        let mut s = self.state.lock();
        s.used(topic, now);
        if let Some(p) = s.cluster.partitions(topic) {
            return Some((Arc::clone(p), s.version));
        }
        s.update_requested = true;
        None
    }

    /// Records that `topics` were used at `now` (sender thread: every topic with queued
    /// batches, on each pass; see the module docs). A topic that is no longer wanted (a
    /// send that raced with [`Metadata::forget_idle`] through a cached route queued a
    /// record for it) is wanted again, with a refresh requested when the snapshot lacks it.
    pub fn touch<'a>(&self, topics: impl IntoIterator<Item = &'a str>, now: Instant) {
        let mut s = self.state.lock();
        for topic in topics {
            if let Some(entry) = s.wanted.get_mut(topic) {
                entry.last = entry.last.max(now);
                continue;
            }
            s.wanted.insert(Arc::from(topic), Use::at(now));
            if s.cluster.partitions(topic).is_none() {
                s.update_requested = true;
            }
        }
    }

    /// Forgets the wanted topics unused for `max_idle` (metadata.max.idle.ms) at `now`:
    /// they leave the wanted set, so Metadata requests no longer name them, and the
    /// snapshot (with any deleted mark), so the next send to one waits for its metadata as
    /// for a new topic. A topic a caller waits for stays. Returns the topics forgotten.
    ///
    /// Sender thread only, once per pass after [`Metadata::touch`]. Cheap when nothing can
    /// be idle yet: it looks at the topics only once the earliest can have expired.
    pub fn forget_idle(&self, now: Instant, max_idle: Duration) -> Vec<Arc<str>> {
        let mut s = self.state.lock();
        if s.next_idle_check.is_some_and(|at| now < at) {
            return Vec::new();
        }
        let expiry = |last: Instant| last.checked_add(max_idle);
        let idle: Vec<Arc<str>> = s
            .wanted
            .iter()
            .filter(|(_, u)| u.waiters == 0 && expiry(u.last).is_some_and(|at| at <= now))
            .map(|(t, _)| Arc::clone(t))
            .collect();
        for topic in &idle {
            s.wanted.remove(topic);
        }
        // Waited-for topics count as used now: their wait's end renews them anyway.
        s.next_idle_check = s
            .wanted
            .values()
            .map(|u| if u.waiters > 0 { now } else { u.last })
            .chain(std::iter::once(now))
            .min()
            .and_then(expiry);
        if s.next_idle_check.is_none() {
            s.next_idle_check = Some(now + Duration::from_secs(3600));
        }
        if idle.is_empty() {
            return idle;
        }
        let mut cluster = (*s.cluster).clone();
        for topic in &idle {
            log::info!("forgetting topic {topic:?}: not used for metadata.max.idle.ms");
            cluster.topics.remove(topic);
            cluster.deleted.remove(topic);
        }
        s.cluster = Arc::new(cluster);
        s.version += 1;
        self.published
            .store(s.version, std::sync::atomic::Ordering::Release);
        drop(s);
        self.changed.notify_all();
        idle
    }

    /// Makes waiting and later waits for topics fail with [`Error::Closed`] (close).
    pub fn close(&self) {
        self.state.lock().closed = true;
        self.changed.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::protocol::metadata::{MetadataBroker, MetadataPartition, MetadataTopic};
    use std::time::Duration;

    fn response(partitions: i32) -> MetadataResponse {
        MetadataResponse {
            brokers: vec![MetadataBroker {
                node_id: 1,
                host: "h".into(),
                port: 9,
                rack: None,
            }],
            topics: vec![MetadataTopic {
                name: Some("t".into()),
                partitions: (0..partitions)
                    .rev()
                    .map(|i| MetadataPartition {
                        partition_index: i,
                        leader_id: if i == 1 { -1 } else { 1 },
                        ..MetadataPartition::default()
                    })
                    .collect(),
                ..MetadataTopic::default()
            }],
            ..MetadataResponse::default()
        }
    }

    #[test]
    fn a_newer_current_leader_hint_moves_the_partition_and_adds_the_endpoint() {
        let mut md = response(3);
        md.topics[0]
            .partitions
            .iter_mut()
            .for_each(|p| p.leader_epoch = 4);
        let c = Cluster::from_response(&md);
        let hint = |leader_id, leader_epoch| LeaderIdAndEpoch {
            leader_id,
            leader_epoch,
        };
        let endpoint = NodeEndpoint {
            node_id: 2,
            host: "b2".into(),
            port: 19,
            rack: None,
        };
        assert!(
            c.with_leader_hint("t", 0, hint(2, 4), std::slice::from_ref(&endpoint))
                .is_none(),
            "not newer"
        );
        assert!(
            c.with_leader_hint("t", 0, hint(2, 5), &[]).is_none(),
            "unknown broker"
        );
        assert!(
            c.with_leader_hint("t", 9, hint(1, 5), &[]).is_none(),
            "unknown partition"
        );
        let moved = c.with_leader_hint("t", 0, hint(2, 5), &[endpoint]).unwrap();
        assert_eq!(moved.leader("t", 0), Some(2));
        assert_eq!(moved.brokers[&2].address, "b2:19");
        assert_eq!(moved.leader("t", 2), Some(1), "other partitions unchanged");
        assert!(
            moved.with_leader_hint("t", 0, hint(1, 5), &[]).is_none(),
            "same epoch again"
        );

        let cache = Metadata::default();
        cache.install(c);
        assert!(cache.apply_leader_hint("t", 0, hint(1, 6), &[]));
        assert_eq!(cache.cluster().topics["t"].leader_epochs[0], 6);
    }

    /// The answer for topic `t` once it is gone.
    fn unknown_topic() -> MetadataResponse {
        let mut md = response(0);
        md.topics[0].error_code = ErrorCode::UnknownTopicOrPartition.code();
        md
    }

    #[test]
    fn a_topic_that_disappears_is_deleted_until_it_comes_back() {
        let cache = Metadata::default();
        let soon = || Instant::now() + Duration::from_secs(5);
        // Never seen: unknown is not deleted (it may be created yet).
        cache.install(Cluster::from_response(&unknown_topic()));
        assert!(cache.cluster().deleted.is_empty());
        cache.install(Cluster::from_response(&response(3)));
        cache.install(Cluster::from_response(&unknown_topic()));
        assert!(cache.cluster().deleted.contains("t"));
        let started = Instant::now();
        let err = cache.wait_for_topic("t", soon(), || {}).unwrap_err();
        assert!(started.elapsed() < Duration::from_secs(1), "fails fast");
        assert!(
            matches!(&err, Error::Broker { code: ErrorCode::UnknownTopicOrPartition, message: Some(m) } if m.contains("deleted")),
            "{err:?}"
        );
        // An answer that does not name the topic keeps the mark; one that shows it clears it.
        let mut other = response(1);
        other.topics[0].name = Some("other".into());
        cache.install(Cluster::from_response(&other));
        assert!(cache.cluster().deleted.contains("t"));
        cache.install(Cluster::from_response(&unknown_topic()));
        assert!(
            cache.cluster().deleted.contains("t"),
            "still unknown: still deleted"
        );
        cache.install(Cluster::from_response(&response(3)));
        assert!(cache.cluster().deleted.is_empty());
        assert_eq!(cache.wait_for_topic("t", soon(), || {}).unwrap().len(), 3);
    }

    #[test]
    fn partitions_are_ordered_and_leaderless_ones_have_no_leader() {
        let c = Cluster::from_response(&response(3));
        let p = c.partitions("t").unwrap();
        assert_eq!(
            p.iter().map(|p| p.partition()).collect::<Vec<_>>(),
            [0, 1, 2]
        );
        assert_eq!(c.leader("t", 0), Some(1));
        assert_eq!(c.leader("t", 1), None);
        assert_eq!(c.leader("t", 7), None);
        assert_eq!(c.brokers[&1].address, "h:9");
    }

    #[test]
    fn a_waiting_caller_sees_the_topic_once_installed() {
        let md = Arc::new(Metadata::default());
        let m = Arc::clone(&md);
        let waiter = std::thread::spawn(move || {
            m.wait_for_topic("t", Instant::now() + Duration::from_secs(5), || {})
                .map(|p| p.len())
        });
        while md.wanted_topics().is_empty() {
            std::thread::yield_now();
        }
        md.install(Cluster::from_response(&response(2)));
        assert_eq!(waiter.join().unwrap().unwrap(), 2);
    }

    const IDLE: Duration = Duration::from_secs(5);

    #[test]
    fn a_topic_unused_for_max_idle_is_forgotten_and_asked_for_again_on_the_next_send() {
        let md = Metadata::default();
        let t0 = Instant::now();
        assert!(md.cached_partitions_versioned("t").is_none());
        md.install(Cluster::from_response(&response(3)));
        let (_, version) = md.cached_partitions_versioned("t").unwrap();
        md.touch(["t"], t0 + Duration::from_secs(4));
        assert!(md.forget_idle(t0 + IDLE, IDLE).is_empty(), "used 1 s ago");
        assert_eq!(md.wanted_topics(), ["t"]);
        let forgotten = md.forget_idle(t0 + Duration::from_secs(9), IDLE);
        assert_eq!(forgotten, [Arc::from("t")]);
        assert!(md.wanted_topics().is_empty());
        assert!(
            md.cluster().partitions("t").is_none(),
            "dropped from the snapshot"
        );
        assert!(
            md.version() > version,
            "route caches keyed by the version miss"
        );
        // The next send registers it again and asks for it, as for a new topic.
        assert!(md.cached_partitions_versioned("t").is_none());
        assert_eq!(md.wanted_topics(), ["t"]);
        assert!(md.update_requested());
    }

    #[test]
    fn a_topic_someone_waits_for_is_never_forgotten() {
        let md = Arc::new(Metadata::default());
        let m = Arc::clone(&md);
        let waiter = std::thread::spawn(move || {
            m.wait_for_topic("t", Instant::now() + Duration::from_secs(10), || {})
                .map(|p| p.len())
        });
        while md.wanted_topics().is_empty() {
            std::thread::yield_now();
        }
        let later = Instant::now() + Duration::from_secs(3600);
        assert!(md.forget_idle(later, IDLE).is_empty());
        assert_eq!(md.wanted_topics(), ["t"]);
        md.install(Cluster::from_response(&response(2)));
        assert_eq!(waiter.join().unwrap().unwrap(), 2);
        // Once nobody waits, it ages like any topic, from the end of the wait.
        let much_later = later + Duration::from_secs(3600);
        assert_eq!(md.forget_idle(much_later, IDLE), [Arc::from("t")]);
    }

    #[test]
    fn touch_keeps_a_topic_and_wants_again_one_forgotten_while_records_were_queued() {
        let md = Metadata::default();
        let t0 = Instant::now();
        assert!(md.cached_partitions_versioned("t").is_none());
        assert!(md.cached_partitions_versioned("u").is_none());
        md.install(Cluster::from_response(&response(3)));
        md.touch(["u"], t0 + Duration::from_secs(8));
        assert_eq!(
            md.forget_idle(t0 + Duration::from_secs(10), IDLE),
            [Arc::from("t")]
        );
        assert_eq!(md.wanted_topics(), ["u"]);
        // A send through a cached route queued a record for "t" meanwhile: the sender's
        // next touch wants it again and asks for it.
        md.touch(["t"], t0 + Duration::from_secs(11));
        assert_eq!(md.wanted_topics(), ["t", "u"]);
        assert!(md.update_requested());
        assert!(md
            .forget_idle(t0 + Duration::from_secs(12), IDLE)
            .is_empty());
    }

    #[test]
    fn forgetting_a_deleted_topic_clears_its_mark() {
        let md = Metadata::default();
        let t0 = Instant::now();
        assert!(md.cached_partitions_versioned("t").is_none());
        md.install(Cluster::from_response(&response(3)));
        md.install(Cluster::from_response(&unknown_topic()));
        assert!(md.cluster().deleted.contains("t"));
        assert_eq!(md.forget_idle(t0 + IDLE * 2, IDLE), [Arc::from("t")]);
        assert!(md.cluster().deleted.is_empty());
        // No fast failure any more: the topic is looked up like a new one.
        let err = md
            .wait_for_topic("t", Instant::now() + Duration::from_millis(20), || {})
            .unwrap_err();
        assert!(matches!(err, Error::MetadataTimeout { .. }), "{err:?}");
    }

    #[test]
    fn a_missing_topic_times_out() {
        let md = Metadata::default();
        let err = md
            .wait_for_topic("nope", Instant::now() + Duration::from_millis(30), || {})
            .unwrap_err();
        assert!(matches!(err, Error::MetadataTimeout { .. }), "{err}");
        assert!(md.update_requested());
    }
}

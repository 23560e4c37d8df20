//! The sender's connections, one per broker node, and their states.
//!
//! Owned by the sender thread alone; no locks. A connect runs through the [`Connector`]
//! (on a short-lived thread in production, so a slow or dead broker never stalls the
//! sender) and reports back through the sender's inbox as [`SenderEvent::Connected`].
//! Bootstrap servers get negative node ids (-1, -2, …) as in Java, until metadata names
//! the real brokers.
//!
//! [`SenderEvent::Connected`]: crate::core::SenderEvent::Connected

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::link::{Connector, Link};

/// A node's connection state.
#[derive(Debug)]
enum NodeState {
    /// A connect is under way.
    Connecting,
    /// Connected, after the handshake; `last_used` is when it last sent or heard anything
    /// (connections.max.idle.ms counts from there).
    Ready {
        link: Box<dyn Link>,
        last_used: Instant,
    },
    /// The last attempt failed; no new one before `retry_at`.
    Backoff { retry_at: Instant },
}

#[derive(Debug)]
struct Node {
    state: NodeState,
    /// Failed connects in a row (the reconnect backoff grows with them).
    failures: u32,
    /// No request goes to the node before this instant: the broker asked the client to
    /// back off (KIP-219, see [`Nodes::throttle`]). Kept across reconnects, as Java's
    /// `ClusterConnectionStates` keeps it, so a new connection does not escape it.
    throttled_until: Option<Instant>,
}

/// Every node's connection.
#[derive(Debug)]
pub(crate) struct Nodes {
    nodes: HashMap<i32, Node>,
    /// Link id → node id, for routing link events.
    by_connection: HashMap<u64, i32>,
    connector: Box<dyn Connector>,
    backoff_min: Duration,
    backoff_max: Duration,
}

impl Nodes {
    pub fn new(
        connector: Box<dyn Connector>,
        backoff_min: Duration,
        backoff_max: Duration,
    ) -> Self {
        Nodes {
            nodes: HashMap::new(),
            by_connection: HashMap::new(),
            connector,
            backoff_min,
            backoff_max: backoff_max.max(backoff_min),
        }
    }

    /// The ready link of `node`, if any; using it counts as activity (idle timeout).
    pub fn ready(&mut self, node: i32, now: Instant) -> Option<&mut dyn Link> {
        match self.nodes.get_mut(&node).map(|n| &mut n.state) {
            Some(NodeState::Ready { link, last_used }) => {
                *last_used = now;
                Some(link.as_mut())
            }
            _ => None,
        }
    }

    /// Whether `node` has a ready link.
    /// The link to `node`, if it is connected.
    pub fn link(&self, node: i32) -> Option<&dyn Link> {
        match self.nodes.get(&node).map(|n| &n.state) {
            Some(NodeState::Ready { link, .. }) => Some(&**link),
            _ => None,
        }
    }

    pub fn is_ready(&self, node: i32) -> bool {
        matches!(
            self.nodes.get(&node).map(|n| &n.state),
            Some(NodeState::Ready { .. })
        )
    }

    /// The ready node with the least `load` (requests in flight), ties to the lowest id:
    /// where metadata and InitProducerId requests go. A node the broker throttles is
    /// left out until its throttle ends (KIP-219: no request of any kind goes there).
    pub fn least_loaded(&self, load: impl Fn(i32) -> usize, now: Instant) -> Option<i32> {
        self.nodes
            .iter()
            .filter(|(_, n)| matches!(n.state, NodeState::Ready { .. }))
            .filter(|(_, n)| n.throttled_until.is_none_or(|t| t <= now))
            .map(|(id, _)| *id)
            .min_by_key(|id| (load(*id), *id))
    }

    /// The broker behind `connection_id` answered with a throttle time the client must
    /// honour (KIP-219): no request goes to its node before `until`. A later answer can
    /// only extend the throttle, never shorten it.
    pub fn throttle(&mut self, connection_id: u64, until: Instant) {
        let Some(node) = self.by_connection.get(&connection_id) else {
            return;
        };
        if let Some(n) = self.nodes.get_mut(node) {
            n.throttled_until = Some(n.throttled_until.map_or(until, |t| t.max(until)));
        }
    }

    /// When the throttle of `node` ends, if it is throttled at `now`.
    pub fn throttled(&self, node: i32, now: Instant) -> Option<Instant> {
        self.nodes
            .get(&node)
            .and_then(|n| n.throttled_until)
            .filter(|t| *t > now)
    }

    /// Whether `node` is connecting or connected.
    pub fn is_active(&self, node: i32) -> bool {
        matches!(
            self.nodes.get(&node).map(|n| &n.state),
            Some(NodeState::Connecting | NodeState::Ready { .. })
        )
    }

    /// Starts connecting to `node` at `address` unless it is connecting, connected, or
    /// backing off. Returns when to try again if it is backing off.
    pub fn connect(&mut self, node: i32, address: &str, now: Instant) -> Option<Instant> {
        let entry = self.nodes.entry(node).or_insert(Node {
            state: NodeState::Backoff { retry_at: now },
            failures: 0,
            throttled_until: None,
        });
        match entry.state {
            NodeState::Connecting | NodeState::Ready { .. } => return None,
            NodeState::Backoff { retry_at } if retry_at > now => return Some(retry_at),
            NodeState::Backoff { .. } => {}
        }
        entry.state = NodeState::Connecting;
        if let Err(e) = self.connector.connect(node, address) {
            log::warn!("could not start connecting to node {node}: {e}");
            self.failed(node, now);
        }
        None
    }

    /// Installs the outcome of a connect attempt.
    pub fn connected(
        &mut self,
        node: i32,
        result: Result<Box<dyn Link>, crate::Error>,
        now: Instant,
    ) {
        match result {
            Ok(link) => {
                self.by_connection.insert(link.id(), node);
                let n = self.nodes.entry(node).or_insert(Node {
                    state: NodeState::Connecting,
                    failures: 0,
                    throttled_until: None,
                });
                n.failures = 0;
                n.state = NodeState::Ready {
                    link,
                    last_used: now,
                };
            }
            Err(e) => {
                log::warn!("connecting to node {node} failed: {e}");
                self.failed(node, now);
            }
        }
    }

    /// The node a link belongs to, if it is still the node's current link.
    pub fn node_of(&self, connection_id: u64) -> Option<i32> {
        self.by_connection.get(&connection_id).copied()
    }

    /// The link `connection_id` sent or received something at `now` (idle timeout).
    pub fn touch(&mut self, connection_id: u64, now: Instant) {
        let Some(node) = self.by_connection.get(&connection_id) else {
            return;
        };
        if let Some(Node {
            state: NodeState::Ready { last_used, .. },
            ..
        }) = self.nodes.get_mut(node)
        {
            *last_used = now;
        }
    }

    /// Drops the link `connection_id` (it closed or timed out) and starts the node's
    /// reconnect backoff.
    pub fn disconnected(&mut self, connection_id: u64, now: Instant) {
        if let Some(node) = self.by_connection.remove(&connection_id) {
            self.failed(node, now);
        }
    }

    /// Closes links idle for `max_idle` (connections.max.idle.ms, as Java's selector does)
    /// unless `busy(node, link id)` (requests in flight on it). Closing an idle link is no
    /// failure: the node may reconnect at once. Returns the ids of the closed links and
    /// when the next link would become idle.
    pub fn close_idle(
        &mut self,
        now: Instant,
        max_idle: Duration,
        busy: impl Fn(i32, u64) -> bool,
    ) -> (Vec<u64>, Option<Instant>) {
        let mut next: Option<Instant> = None;
        let mut idle = Vec::new();
        for (id, n) in &self.nodes {
            let NodeState::Ready { link, last_used } = &n.state else {
                continue;
            };
            let Some(due) = last_used.checked_add(max_idle) else {
                continue; // never idle
            };
            if busy(*id, link.id()) {
                // Its answer (or loss) wakes the sender and counts as use: no deadline yet.
                continue;
            }
            if due <= now {
                idle.push(*id);
            } else {
                next = Some(next.map_or(due, |t| t.min(due)));
            }
        }
        let mut closed = Vec::new();
        for id in idle {
            if let Some(Node {
                state: NodeState::Ready { link, .. },
                ..
            }) = self.nodes.remove(&id)
            {
                log::debug!("closing the idle connection to node {id}");
                self.by_connection.remove(&link.id());
                closed.push(link.id());
            }
        }
        (closed, next)
    }

    fn failed(&mut self, node: i32, now: Instant) {
        let (min, max) = (self.backoff_min, self.backoff_max);
        if let Some(n) = self.nodes.get_mut(&node) {
            if let NodeState::Ready { link, .. } = &n.state {
                self.by_connection.remove(&link.id());
            }
            n.failures = n.failures.saturating_add(1);
            n.state = NodeState::Backoff {
                retry_at: now + backoff(min, max, n.failures),
            };
        }
    }

    /// Closes every link (sender exit).
    pub fn close_all(&mut self) {
        self.by_connection.clear();
        self.nodes.clear();
    }
}

/// The backoff after `failures` failures in a row (at least 1): `base` doubling with each,
/// up to `max`, with ±20 % jitter. Java's formula for retry.backoff.ms /
/// retry.backoff.max.ms (KIP-580) and reconnect.backoff.ms / reconnect.backoff.max.ms.
pub(crate) fn backoff(base: Duration, max: Duration, failures: u32) -> Duration {
    let exp = base
        .saturating_mul(1 << failures.saturating_sub(1).min(16))
        .min(max.max(base));
    jitter(exp)
}

/// ±20 % jitter, as Java applies to its backoffs.
pub(crate) fn jitter(d: Duration) -> Duration {
    use std::sync::atomic::{AtomicU64, Ordering};
    static SEED: AtomicU64 = AtomicU64::new(0x9e37_79b9_7f4a_7c15);
    let mut x = SEED.fetch_add(0x6a09_e667_f3bc_c909, Ordering::Relaxed);
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    let factor = 0.8 + (x % 1000) as f64 / 1000.0 * 0.4;
    d.mul_f64(factor)
}

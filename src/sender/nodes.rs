//! The sender's connections, one per broker node, and their states.
//!
//! Owned by the sender thread alone; no locks. A connect runs on a short-lived thread (so
//! a slow or dead broker never stalls the sender) and reports back through the sender's
//! inbox as [`SenderEvent::Connected`]. Bootstrap servers get negative node ids (-1, -2, …)
//! as in Java, until metadata names the real brokers.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use crate::core::SenderEvent;
use crate::net::{Connection, ConnectionConfig};

/// A node's connection state.
#[derive(Debug)]
enum NodeState {
    /// A connect thread is running.
    Connecting,
    /// Connected, after the ApiVersions handshake.
    Ready(Connection),
    /// The last attempt failed; no new one before `retry_at`.
    Backoff { retry_at: Instant },
}

#[derive(Debug)]
struct Node {
    state: NodeState,
    /// The next reconnect backoff (exponential from reconnect.backoff.ms).
    backoff: Duration,
}

/// Every node's connection.
#[derive(Debug)]
pub(crate) struct Nodes {
    nodes: HashMap<i32, Node>,
    /// Connection id → node id, for routing reader-thread events.
    by_connection: HashMap<u64, i32>,
    config: ConnectionConfig,
    backoff_min: Duration,
    backoff_max: Duration,
    inbox: Sender<SenderEvent>,
}

impl Nodes {
    pub fn new(
        config: ConnectionConfig,
        backoff_min: Duration,
        backoff_max: Duration,
        inbox: Sender<SenderEvent>,
    ) -> Self {
        Nodes {
            nodes: HashMap::new(),
            by_connection: HashMap::new(),
            config,
            backoff_min,
            backoff_max: backoff_max.max(backoff_min),
            inbox,
        }
    }

    /// The ready connection of `node`, if any.
    pub fn ready(&mut self, node: i32) -> Option<&mut Connection> {
        match self.nodes.get_mut(&node).map(|n| &mut n.state) {
            Some(NodeState::Ready(c)) => Some(c),
            _ => None,
        }
    }

    /// Ids of nodes with a ready connection.
    pub fn ready_ids(&self) -> Vec<i32> {
        self.nodes
            .iter()
            .filter(|(_, n)| matches!(n.state, NodeState::Ready(_)))
            .map(|(id, _)| *id)
            .collect()
    }

    /// Whether `node` is connecting or connected.
    pub fn is_active(&self, node: i32) -> bool {
        matches!(
            self.nodes.get(&node).map(|n| &n.state),
            Some(NodeState::Connecting | NodeState::Ready(_))
        )
    }

    /// Starts connecting to `node` at `address` unless it is connecting, connected, or
    /// backing off. Returns when to try again if it is backing off.
    pub fn connect(&mut self, node: i32, address: &str, now: Instant) -> Option<Instant> {
        let entry = self.nodes.entry(node).or_insert(Node {
            state: NodeState::Backoff { retry_at: now },
            backoff: self.backoff_min,
        });
        match entry.state {
            NodeState::Connecting | NodeState::Ready(_) => return None,
            NodeState::Backoff { retry_at } if retry_at > now => return Some(retry_at),
            NodeState::Backoff { .. } => {}
        }
        entry.state = NodeState::Connecting;
        let (address, config, inbox) =
            (address.to_owned(), self.config.clone(), self.inbox.clone());
        let spawned = std::thread::Builder::new()
            .name(format!("kafka-connect-{node}"))
            .spawn(move || {
                let result = Connection::connect(&address, &config, inbox.clone());
                let _ = inbox.send(SenderEvent::Connected { node, result });
            });
        if let Err(e) = spawned {
            log::warn!("could not spawn a connect thread for node {node}: {e}");
            self.failed(node, now);
        }
        None
    }

    /// Installs the outcome of a connect attempt.
    pub fn connected(&mut self, node: i32, result: Result<Connection, crate::Error>, now: Instant) {
        match result {
            Ok(conn) => {
                self.by_connection.insert(conn.id(), node);
                let n = self.nodes.entry(node).or_insert(Node {
                    state: NodeState::Connecting,
                    backoff: self.backoff_min,
                });
                n.backoff = self.backoff_min;
                n.state = NodeState::Ready(conn);
            }
            Err(e) => {
                log::warn!("connecting to node {node} failed: {e}");
                self.failed(node, now);
            }
        }
    }

    /// The node a connection belongs to, if it is still the node's current connection.
    pub fn node_of(&self, connection_id: u64) -> Option<i32> {
        self.by_connection.get(&connection_id).copied()
    }

    /// Drops the connection `connection_id` (it closed or timed out) and starts the node's
    /// reconnect backoff.
    pub fn disconnected(&mut self, connection_id: u64, now: Instant) {
        if let Some(node) = self.by_connection.remove(&connection_id) {
            self.failed(node, now);
        }
    }

    fn failed(&mut self, node: i32, now: Instant) {
        let max = self.backoff_max;
        if let Some(n) = self.nodes.get_mut(&node) {
            if let NodeState::Ready(c) = &n.state {
                self.by_connection.remove(&c.id());
            }
            n.state = NodeState::Backoff {
                retry_at: now + jitter(n.backoff),
            };
            n.backoff = (n.backoff * 2).min(max);
        }
    }

    /// Closes every connection (sender exit).
    pub fn close_all(&mut self) {
        self.by_connection.clear();
        self.nodes.clear();
    }
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

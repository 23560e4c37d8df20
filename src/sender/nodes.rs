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
    /// What was logged of the node's failed connects (see [`ConnectLog`]).
    log: ConnectLog,
}

/// The least time between two warnings about one unreachable node: a broker down for an
/// hour logs two lines a minute, not one per reconnect attempt.
pub(crate) const CONNECT_WARN_EVERY: Duration = Duration::from_secs(30);

/// How a node's failed connects are logged: a warning for the first failure, then at most
/// one warning per [`CONNECT_WARN_EVERY`] (or `reconnect.backoff.max.ms`, if longer)
/// counting the attempts that failed since, each attempt at debug level, and one info
/// line when a connect succeeds again. Owned by the sender thread (inside [`Nodes`]).
#[derive(Debug, Default, Clone)]
struct ConnectLog {
    /// When the last warning was logged; `None` while the node connects fine.
    warned_at: Option<Instant>,
    /// Failed attempts since that warning.
    since_warning: u32,
    /// Failed attempts since the last success.
    in_a_row: u32,
}

/// What [`ConnectLog`] says to log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnectReport {
    /// A warning: the first failure (`attempts` 1) or a summary of `attempts` failures.
    Warn { first: bool, attempts: u32 },
    /// A debug line only.
    Debug,
}

impl ConnectLog {
    fn failed(&mut self, now: Instant, every: Duration) -> ConnectReport {
        self.in_a_row = self.in_a_row.saturating_add(1);
        self.since_warning = self.since_warning.saturating_add(1);
        let first = self.warned_at.is_none();
        let due = self
            .warned_at
            .is_none_or(|at| now.saturating_duration_since(at) >= every);
        if !due {
            return ConnectReport::Debug;
        }
        let attempts = std::mem::take(&mut self.since_warning);
        self.warned_at = Some(now);
        ConnectReport::Warn { first, attempts }
    }

    /// A connect succeeded: how many attempts had failed in a row before it (0: none).
    fn connected(&mut self) -> u32 {
        std::mem::take(self).in_a_row
    }
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
            log: ConnectLog::default(),
        });
        match entry.state {
            NodeState::Connecting | NodeState::Ready { .. } => return None,
            NodeState::Backoff { retry_at } if retry_at > now => return Some(retry_at),
            NodeState::Backoff { .. } => {}
        }
        entry.state = NodeState::Connecting;
        if let Err(e) = self.connector.connect(node, address) {
            self.connect_failed(node, &format!("could not start connecting: {e}"), now);
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
                    log: ConnectLog::default(),
                });
                n.failures = 0;
                let failed = n.log.connected();
                if failed > 0 {
                    log::info!("connected to node {node} again after {failed} failed attempt(s)");
                }
                n.state = NodeState::Ready {
                    link,
                    last_used: now,
                };
            }
            Err(e) => {
                self.connect_failed(node, &e.to_string(), now);
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

    /// Logs a failed connect to `node` as [`ConnectLog`] decides.
    fn connect_failed(&mut self, node: i32, error: &str, now: Instant) {
        let every = CONNECT_WARN_EVERY.max(self.backoff_max);
        let Some(n) = self.nodes.get_mut(&node) else {
            return;
        };
        match n.log.failed(now, every) {
            ConnectReport::Warn { first: true, .. } => {
                log::warn!("connecting to node {node} failed: {error}; retrying with backoff")
            }
            ConnectReport::Warn { attempts, .. } => log::warn!(
                "node {node} is still unreachable: {attempts} more connect attempt(s) failed \
                 since the last warning; the last: {error}"
            ),
            ConnectReport::Debug => log::debug!("connecting to node {node} failed: {error}"),
        }
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Error;
    use crate::sender::link::Outgoing;
    use std::cell::RefCell;

    thread_local! {
        /// The log records this test thread made.
        static RECORDS: RefCell<Vec<(log::Level, String)>> = const { RefCell::new(Vec::new()) };
    }

    /// Keeps each thread's log records of this module for that thread (tests run in
    /// parallel threads of one process, which has one logger).
    struct Capture;

    impl log::Log for Capture {
        fn enabled(&self, metadata: &log::Metadata<'_>) -> bool {
            metadata.target().ends_with("sender::nodes")
        }
        fn log(&self, record: &log::Record<'_>) {
            if self.enabled(record.metadata()) {
                let line = (record.level(), record.args().to_string());
                RECORDS.with(|r| r.borrow_mut().push(line));
            }
        }
        fn flush(&self) {}
    }

    fn capture() {
        static INSTALLED: std::sync::Once = std::sync::Once::new();
        INSTALLED.call_once(|| {
            // Another test of this binary may have installed a logger first; then this
            // test cannot observe the log and says so below.
            if log::set_logger(&Capture).is_ok() {
                log::set_max_level(log::LevelFilter::Trace);
            }
        });
        RECORDS.with(|r| r.borrow_mut().clear());
    }

    fn take() -> Vec<(log::Level, String)> {
        RECORDS.with(|r| std::mem::take(&mut *r.borrow_mut()))
    }

    #[derive(Debug)]
    struct NoConnector;
    impl Connector for NoConnector {
        fn connect(&mut self, _: i32, _: &str) -> Result<(), Error> {
            Ok(())
        }
    }

    #[derive(Debug)]
    struct NullLink;
    impl Link for NullLink {
        fn id(&self) -> u64 {
            7
        }
        fn submit(&mut self, _: Outgoing<'_>) -> Result<i32, Error> {
            Err(Error::Closed)
        }
        fn shutdown_handle(&self) -> Option<std::sync::Weak<std::net::TcpStream>> {
            None
        }
    }

    fn refused() -> Result<Box<dyn Link>, Error> {
        Err(Error::Network {
            broker: "b1:9092".into(),
            reason: "connection refused".into(),
        })
    }

    #[test]
    fn repeated_connect_failures_warn_once_per_period_and_recovery_once() {
        capture();
        let backoff = Duration::from_millis(10);
        let mut nodes = Nodes::new(Box::new(NoConnector), backoff, backoff * 10);
        let start = Instant::now();
        let mut now = start;
        // A broker down for 65 s, retried every 100 ms: 650 failed attempts.
        for _ in 0..650 {
            nodes.connect(1, "b1:9092", now);
            nodes.connected(1, refused(), now);
            now += Duration::from_millis(100);
        }
        nodes.connect(1, "b1:9092", now);
        nodes.connected(1, Ok(Box::new(NullLink)), now);
        let records = take();
        if records.is_empty() && log::max_level() < log::LevelFilter::Debug {
            panic!("another logger is installed in this test binary; the log is not observable");
        }
        let at = |level| {
            records
                .iter()
                .filter(|(l, _)| *l == level)
                .map(|(_, m)| m.as_str())
                .collect::<Vec<_>>()
        };
        let warnings = at(log::Level::Warn);
        // The first failure, then one summary at 30 s and one at 60 s.
        assert_eq!(warnings.len(), 3, "{warnings:#?}");
        assert!(
            warnings[0].contains("connecting to node 1 failed"),
            "{}",
            warnings[0]
        );
        assert!(warnings[0].contains("connection refused"));
        assert!(
            warnings[1].contains("still unreachable: 300 more connect attempt(s)"),
            "{}",
            warnings[1]
        );
        assert!(warnings[2].contains("300 more"), "{}", warnings[2]);
        assert_eq!(
            at(log::Level::Debug).len(),
            647,
            "every other attempt at debug"
        );
        let info = at(log::Level::Info);
        assert_eq!(
            info,
            ["connected to node 1 again after 650 failed attempt(s)"]
        );
        // Connected fine: the next failure warns at once again.
        nodes.disconnected(7, now);
        now += Duration::from_secs(1);
        nodes.connect(1, "b1:9092", now);
        nodes.connected(1, refused(), now);
        assert_eq!(
            take()
                .iter()
                .filter(|(l, _)| *l == log::Level::Warn)
                .count(),
            1
        );
    }
}

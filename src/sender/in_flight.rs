//! The Produce requests in flight, and the counts that bound them.
//!
//! Owned by the sender thread; no locks. A request enters with [`InFlightTable::insert`]
//! when its link accepted it and leaves with [`InFlightTable::remove`] when it is answered,
//! written (acks=0) or lost with its connection; the per-node and per-partition counts
//! follow both.

use std::collections::HashMap;
use std::time::Instant;

use crate::accumulator::ProducerBatch;
use crate::record::TopicPartition;

/// A Produce request awaiting its response (or, with acks=0, its write).
#[derive(Debug)]
pub(crate) struct InFlight {
    pub node: i32,
    pub batches: Vec<ProducerBatch>,
    pub sent_at: Instant,
    pub deadline: Instant,
}

/// (link id, correlation id) → request.
pub(crate) type RequestKey = (u64, i32);

/// Every Produce request in flight.
#[derive(Debug, Default)]
pub(crate) struct InFlightTable {
    requests: HashMap<RequestKey, InFlight>,
    /// Node → requests in flight there (max.in.flight.requests.per.connection).
    per_node: HashMap<i32, usize>,
    /// Partition → (node, batches in flight there). A partition whose leader moved sends
    /// nothing to the new leader until this count is zero, so batches never pass each
    /// other across a leader move.
    per_partition: HashMap<TopicPartition, (i32, usize)>,
}

impl InFlightTable {
    pub fn insert(&mut self, key: RequestKey, request: InFlight) {
        *self.per_node.entry(request.node).or_insert(0) += 1;
        for b in &request.batches {
            self.per_partition
                .entry(b.tp.clone())
                .or_insert((request.node, 0))
                .1 += 1;
        }
        self.requests.insert(key, request);
    }

    pub fn remove(&mut self, key: &RequestKey) -> Option<InFlight> {
        let request = self.requests.remove(key)?;
        if let Some(n) = self.per_node.get_mut(&request.node) {
            *n = n.saturating_sub(1);
        }
        for b in &request.batches {
            if let Some(entry) = self.per_partition.get_mut(&b.tp) {
                entry.1 = entry.1.saturating_sub(1);
                if entry.1 == 0 {
                    self.per_partition.remove(&b.tp);
                }
            }
        }
        Some(request)
    }

    /// Takes every request out (sender exit).
    pub fn take_all(&mut self) -> Vec<InFlight> {
        self.per_node.clear();
        self.per_partition.clear();
        self.requests.drain().map(|(_, r)| r).collect()
    }

    pub fn is_empty(&self) -> bool {
        self.requests.is_empty()
    }

    /// Requests in flight on `node`.
    pub fn on_node(&self, node: i32) -> usize {
        self.per_node.get(&node).copied().unwrap_or(0)
    }

    /// Where `tp` has batches in flight, and how many.
    pub fn partition(&self, tp: &TopicPartition) -> Option<(i32, usize)> {
        self.per_partition.get(tp).copied()
    }

    /// Keys of the requests on link `connection`.
    pub fn keys_on(&self, connection: u64) -> Vec<RequestKey> {
        self.requests
            .keys()
            .filter(|(c, _)| *c == connection)
            .copied()
            .collect()
    }

    /// Links with a request past its deadline.
    pub fn overdue(&self, now: Instant) -> impl Iterator<Item = u64> + '_ {
        self.requests
            .iter()
            .filter(move |(_, r)| r.deadline <= now)
            .map(|((c, _), _)| *c)
    }

    /// Every request, to look at or mark its batches.
    pub fn iter_mut(&mut self) -> impl Iterator<Item = (&RequestKey, &mut InFlight)> {
        self.requests.iter_mut()
    }

    /// The batch at `index` of request `key`.
    pub fn batch_mut(&mut self, key: &RequestKey, index: usize) -> Option<&mut ProducerBatch> {
        self.requests.get_mut(key)?.batches.get_mut(index)
    }
}

//! Completion in send order per partition, whatever order answers arrive in.
//!
//! Owned by the sender thread; no locks. Every batch the sender completes passes through
//! [`Completions::finish`]. A batch that was *sent* is *outstanding* from its first drain
//! until it completes (in flight, or queued again for a retry). A completion whose
//! partition still has an older outstanding batch is *held*, and released right after the
//! older ones complete. Batches never sent are newer than every outstanding batch of their
//! partition (the queue drains from the front; retries go back to their place), so holding
//! them behind the outstanding ones also keeps them in order.
//!
//! Positions are the batches' queue positions (`ProducerBatch::position`): they grow in
//! send order within a partition, and split halves and the groups of a batch with
//! rejected records take places inside their batch's gap.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use crate::accumulator::ProducerBatch;
use crate::delivery::BatchOutcome;
use crate::error::Error;
use crate::record::TopicPartition;

/// A batch's outcome, as the callbacks and futures will see it.
pub(crate) type Outcome = Result<BatchOutcome, Error>;

/// The outstanding positions and held completions of every partition.
#[derive(Debug, Default)]
pub(crate) struct Completions {
    /// Partition → positions of batches sent and not completed.
    outstanding: HashMap<TopicPartition, BTreeSet<u64>>,
    /// Partition → completions waiting for older outstanding batches, by position.
    held: HashMap<TopicPartition, BTreeMap<u64, (ProducerBatch, Outcome)>>,
}

impl Completions {
    /// `position` of `tp` was sent: later batches of `tp` complete after it.
    pub fn sent(&mut self, tp: &TopicPartition, position: u64) {
        if let Some(set) = self.outstanding.get_mut(tp) {
            set.insert(position);
        } else {
            self.outstanding
                .insert(tp.clone(), BTreeSet::from([position]));
        }
    }

    /// Whether the batch at `position` of `tp` was sent and is not complete (a batch put
    /// back for a retry, a split half or a resent group of records counts as sent).
    pub fn is_outstanding(&self, tp: &TopicPartition, position: u64) -> bool {
        self.outstanding
            .get(tp)
            .is_some_and(|set| set.contains(&position))
    }

    /// Whether a batch of `tp` older than `position` is outstanding.
    pub fn older_outstanding(&self, tp: &TopicPartition, position: u64) -> bool {
        self.outstanding
            .get(tp)
            .and_then(BTreeSet::first)
            .is_some_and(|&first| first < position)
    }

    /// `batch` completes with `outcome`: hands `complete` what may complete now, in order
    /// (the batch itself unless an older batch holds it back, then the held batches it no
    /// longer holds back). Allocates nothing unless the batch is held.
    pub fn finish(
        &mut self,
        batch: ProducerBatch,
        outcome: Outcome,
        mut complete: impl FnMut(ProducerBatch, Outcome),
    ) {
        let (tp, position) = (batch.tp.clone(), batch.position);
        if let Some(set) = self.outstanding.get_mut(&tp) {
            set.remove(&position);
        }
        if self.older_outstanding(&tp, position) {
            self.held
                .entry(tp)
                .or_default()
                .insert(position, (batch, outcome));
            return;
        }
        complete(batch, outcome);
        for (b, o) in self.release(&tp) {
            complete(b, o);
        }
    }

    /// `position` of `tp` leaves without passing through [`Completions::finish`] (it was
    /// answered out of band, or replaced by other batches): returns the held completions
    /// it no longer holds back, in order.
    pub fn forget(&mut self, tp: &TopicPartition, position: u64) -> Vec<(ProducerBatch, Outcome)> {
        if let Some(set) = self.outstanding.get_mut(tp) {
            set.remove(&position);
        }
        self.release(tp)
    }

    /// Every held completion, in order per partition, and nothing outstanding any more
    /// (the sender exits: nothing older can complete).
    pub fn release_all(&mut self) -> Vec<(ProducerBatch, Outcome)> {
        self.outstanding.clear();
        let tps: Vec<TopicPartition> = self.held.keys().cloned().collect();
        tps.iter().flat_map(|tp| self.release(tp)).collect()
    }

    /// Whether nothing is held (every completion was handed out).
    #[cfg(test)]
    pub fn nothing_held(&self) -> bool {
        self.held.is_empty()
    }

    /// The held completions of `tp` that no older outstanding batch holds back any more.
    fn release(&mut self, tp: &TopicPartition) -> Vec<(ProducerBatch, Outcome)> {
        let limit = match self.outstanding.get(tp).and_then(BTreeSet::first) {
            Some(&first) => first,
            None => {
                self.outstanding.remove(tp);
                u64::MAX
            }
        };
        let Some(held) = self.held.get_mut(tp) else {
            return Vec::new();
        };
        let mut ready = Vec::new();
        while let Some(entry) = held.first_entry().filter(|e| *e.key() < limit) {
            ready.push(entry.remove());
        }
        if held.is_empty() {
            self.held.remove(tp);
        }
        ready
    }
}

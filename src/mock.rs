//! A producer without brokers, for users' own tests: [`MockProducer`].
//!
//! A mock is a real [`Producer`] value (same type, same methods) whose records go to an
//! in-memory history instead of a cluster, so code written against `Producer<K, V>` is
//! tested unchanged. What runs as in a real producer: the interceptors, the serializers,
//! the record checks (topic name, size against max.request.size and buffer.memory, an
//! explicit partition out of range), the partitioners (explicit partition, custom
//! partitioner, the key's murmur2 hash, uniform sticky for records without a key, round
//! robin when configured) over the partitions of a [`MockCluster`], offsets per partition
//! from 0, `flush`, `close`, and the transactional calls' state checks.
//!
//! # Completion, order and threads
//!
//! With auto-completion (the default) every record succeeds as it is sent. Without it,
//! records wait until the test completes them, oldest first: [`MockProducer::complete_next`],
//! [`MockProducer::fail_next`], or `flush` (which completes every waiting record, as Java's
//! `MockProducer.flush` does).
//!
//! Results are handed out in completion order, which is send order, one at a time, by the
//! thread that completed them (the sending thread with auto-completion, else the thread
//! calling `complete_next`, `fail_next` or `flush`) or, when another thread is handing out
//! results at that moment, by that thread: interceptors' acknowledgements, then the record's
//! callback, then its future. While it runs them that thread counts as the mock's callback
//! thread, so waiting for a future or flushing inside a callback fails with
//! [`Error::IllegalState`] as with a real producer. A callback that sends again has its own
//! result handed out after the current one, by the same thread. `flush`, `close` and
//! `commit_transaction` return once every result is handed out (by any thread).
//!
//! `close` (and `close_timeout`, whose timeout does not matter here: nothing waits for a
//! network) completes what waits, as a graceful close delivers it; the interceptors close
//! after the last acknowledgement.
//!
//! # Lock
//!
//! `MockHandle::state` guards the history, the waiting and the finished records, the
//! offsets and the transaction state; `MockHandle::idle` is signalled (under it) when the
//! thread handing out results finds none left. No callback, interceptor or waker runs while
//! it is held (the `Clone` and `Drop` of keys and values may: `history` clones, `clear`
//! drops): results are taken out under it and handed out after it is released, one at a
//! time, by the one thread that set `draining`.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Condvar, Mutex};

use crate::config::ProducerConfig;
use crate::delivery::{
    on_callback_thread_of, run_one, with_callback_thread_of, BatchOutcome, BatchResult, Callback,
    RecordSlot, SendFuture,
};
use crate::error::Error;
use crate::interceptor::Interceptors;
use crate::metrics::ProducerMetrics;
use crate::partition::{Partitioner, StickyPartitioner};
use crate::producer::RefusedRecord;
use crate::record::{PartitionInfo, ProducerRecord, TopicPartition};
use crate::serialize::Serializer;
use crate::transaction::{ConsumerGroupMetadata, OffsetAndMetadata};
use crate::{accumulator::Completion, Producer};

/// The topics a [`MockProducer`] knows, with their partition counts, so that the real
/// partitioners run.
///
/// A topic not listed gets `auto_create_topics` partitions (1 by default, as a broker that
/// creates topics on first use with `num.partitions=1`); with
/// `auto_create_topics(None)` a send to it fails with [`Error::MetadataTimeout`] at once
/// and `partitions_for` returns that error.
///
/// ```
/// use kafka_producer::mock::MockCluster;
/// let cluster = MockCluster::new().topic("orders", 3).auto_create_topics(None);
/// # let _ = cluster;
/// ```
#[derive(Debug, Clone)]
pub struct MockCluster {
    topics: BTreeMap<String, usize>,
    auto_create: Option<usize>,
}

impl Default for MockCluster {
    fn default() -> Self {
        MockCluster {
            topics: BTreeMap::new(),
            auto_create: Some(1),
        }
    }
}

impl MockCluster {
    /// A cluster with no topics listed; unlisted topics get one partition.
    pub fn new() -> Self {
        MockCluster::default()
    }

    /// Lists `topic` with `partitions` partitions (at least 1).
    pub fn topic(mut self, topic: impl Into<String>, partitions: usize) -> Self {
        self.topics.insert(topic.into(), partitions.max(1));
        self
    }

    /// The partition count of topics not listed, or `None` to refuse them.
    pub fn auto_create_topics(mut self, partitions: Option<usize>) -> Self {
        self.auto_create = partitions.map(|p| p.max(1));
        self
    }

    /// `topic`'s partitions, every one led by node 0.
    fn partitions(&self, topic: &str) -> Option<Vec<PartitionInfo>> {
        let count = self.topics.get(topic).copied().or(self.auto_create)?;
        Some(
            (0..count as i32)
                .map(|p| PartitionInfo::new(topic, p, Some(0), vec![0], vec![0], vec![]))
                .collect(),
        )
    }
}

/// A producer without brokers, for tests (see the [module docs](self)). It dereferences
/// to the [`Producer`] it controls; [`MockProducer::producer`] hands out clones of it to
/// the code under test.
///
/// ```
/// use kafka_producer::mock::MockCluster;
/// use kafka_producer::{Producer, ProducerRecord, StringSerializer};
///
/// let mock = Producer::builder()
///     .key_serializer(StringSerializer)
///     .value_serializer(StringSerializer)
///     .build_mock(MockCluster::new().topic("orders", 3))?;
/// let producer: Producer<String, String> = mock.producer();
/// let md = producer
///     .send(ProducerRecord::new("orders", "v".to_string()).with_key("k".to_string()))
///     .wait()?;
/// assert_eq!(md.offset(), 0);
/// assert_eq!(mock.history()[0].value(), Some(&"v".to_string()));
/// # Ok::<(), kafka_producer::Error>(())
/// ```
pub struct MockProducer<K = Vec<u8>, V = Vec<u8>> {
    producer: Producer<K, V>,
    handle: Arc<MockHandle<K, V>>,
}

impl<K, V> std::fmt::Debug for MockProducer<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = self.handle.state.lock();
        f.debug_struct("MockProducer")
            .field("sent", &s.history.len())
            .field("waiting", &s.waiting.len())
            .field("closed", &s.closed)
            .finish_non_exhaustive()
    }
}

impl<K, V> std::ops::Deref for MockProducer<K, V> {
    type Target = Producer<K, V>;
    fn deref(&self) -> &Producer<K, V> {
        &self.producer
    }
}

impl<K, V> MockProducer<K, V> {
    /// A clone of the mock's [`Producer`], for the code under test.
    pub fn producer(&self) -> Producer<K, V> {
        self.producer.clone()
    }

    /// The records sent so far, in send order, as sent (after the interceptors' `on_send`)
    /// with the partition and timestamp the producer chose filled in. Inside a transaction
    /// they join the history when it commits (see [`MockProducer::uncommitted`]).
    pub fn history(&self) -> Vec<ProducerRecord<K, V>>
    where
        K: Clone,
        V: Clone,
    {
        self.handle.state.lock().history.clone()
    }

    /// The records of the open transaction, not yet committed.
    pub fn uncommitted(&self) -> Vec<ProducerRecord<K, V>>
    where
        K: Clone,
        V: Clone,
    {
        self.handle.state.lock().uncommitted.clone()
    }

    /// Forgets the history (the records and the committed offsets).
    pub fn clear(&self) {
        let mut s = self.handle.state.lock();
        s.history.clear();
        s.committed_offsets.clear();
    }

    /// The consumer offsets committed with transactions, one entry per
    /// `send_offsets_to_transaction` of a committed transaction: (group id, offsets).
    pub fn committed_offsets(&self) -> Vec<(String, HashMap<TopicPartition, OffsetAndMetadata>)> {
        self.handle.state.lock().committed_offsets.clone()
    }

    /// Records sent and not completed yet (always 0 with auto-completion).
    pub fn waiting(&self) -> usize {
        self.handle.state.lock().waiting.len()
    }

    /// Turns auto-completion on or off (on by default). Turning it on does not complete
    /// the records already waiting.
    pub fn set_auto_complete(&self, auto_complete: bool) {
        self.handle.state.lock().auto_complete = auto_complete;
    }

    /// Completes the oldest waiting record successfully; false when none waits.
    pub fn complete_next(&self) -> bool {
        self.handle.complete_next(None)
    }

    /// Fails the oldest waiting record with `error`; false when none waits.
    pub fn fail_next(&self, error: Error) -> bool {
        self.handle.complete_next(Some(error))
    }

    /// Whether `close` was called.
    pub fn is_closed(&self) -> bool {
        self.handle.state.lock().closed
    }

    /// How many transactions committed and aborted.
    pub fn transactions_ended(&self) -> (u64, u64) {
        let s = self.handle.state.lock();
        (s.commits, s.aborts)
    }

    /// Fences the producer as a newer one with the same `transactional.id` would: later
    /// transactional calls and sends fail with [`Error::Fenced`].
    pub fn fence(&self) {
        self.handle.state.lock().txn = TxnState::Fenced;
    }
}

/// A record sent and not completed.
struct Waiting {
    tp: TopicPartition,
    slot: RecordSlot,
    done: Done,
}

/// How a record reports its result.
enum Done {
    Future(Arc<BatchResult>),
    Callback(Callback),
    Both(Arc<BatchResult>, Callback),
}

/// A completed record whose result is not handed out yet.
struct Finished {
    tp: TopicPartition,
    slot: RecordSlot,
    outcome: Result<BatchOutcome, Error>,
    done: Done,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum TxnState {
    /// Not transactional, or `init_transactions` not called yet.
    Uninitialized,
    Ready,
    InTransaction,
    Fenced,
}

struct MockState<K, V> {
    history: Vec<ProducerRecord<K, V>>,
    uncommitted: Vec<ProducerRecord<K, V>>,
    waiting: VecDeque<Waiting>,
    finished: VecDeque<Finished>,
    /// Set while one thread hands out `finished` results (see the module docs).
    draining: bool,
    /// Set by a `close` inside a callback: the interceptors close once the results still
    /// to hand out are handed out.
    close_interceptors: bool,
    next_offsets: HashMap<TopicPartition, i64>,
    auto_complete: bool,
    closed: bool,
    txn: TxnState,
    uncommitted_offsets: Vec<(String, HashMap<TopicPartition, OffsetAndMetadata>)>,
    committed_offsets: Vec<(String, HashMap<TopicPartition, OffsetAndMetadata>)>,
    commits: u64,
    aborts: u64,
    records_sent: u64,
    record_errors: u64,
}

/// The mock behind a [`Producer`] made by [`crate::ProducerBuilder::build_mock`].
pub(crate) struct MockHandle<K, V> {
    /// A producer id of its own (as `Core::id`), marking the threads that hand out results.
    id: u64,
    pub(crate) config: ProducerConfig,
    cluster: MockCluster,
    key_serializer: Box<dyn Serializer<K>>,
    value_serializer: Box<dyn Serializer<V>>,
    partitioner: Option<Box<dyn Partitioner>>,
    interceptors: Option<Arc<Interceptors<K, V>>>,
    sticky: StickyPartitioner,
    state: Mutex<MockState<K, V>>,
    /// Signalled when the draining thread finds nothing left to hand out.
    idle: Condvar,
}

/// What `build_mock` hands over from the builder.
pub(crate) struct MockParts<K, V> {
    pub config: ProducerConfig,
    pub cluster: MockCluster,
    pub key_serializer: Box<dyn Serializer<K>>,
    pub value_serializer: Box<dyn Serializer<V>>,
    pub partitioner: Option<Box<dyn Partitioner>>,
    pub interceptors: Option<Arc<Interceptors<K, V>>>,
}

impl<K: Send + 'static, V: Send + 'static> MockProducer<K, V> {
    pub(crate) fn new(parts: MockParts<K, V>) -> MockProducer<K, V> {
        let sticky = StickyPartitioner::new(parts.config.batch_size.max(1), false, Duration::ZERO);
        let handle = Arc::new(MockHandle {
            id: crate::core::next_producer_id(),
            config: parts.config,
            cluster: parts.cluster,
            key_serializer: parts.key_serializer,
            value_serializer: parts.value_serializer,
            partitioner: parts.partitioner,
            interceptors: parts.interceptors,
            sticky,
            idle: Condvar::new(),
            state: Mutex::new(MockState {
                history: Vec::new(),
                uncommitted: Vec::new(),
                waiting: VecDeque::new(),
                finished: VecDeque::new(),
                draining: false,
                close_interceptors: false,
                next_offsets: HashMap::new(),
                auto_complete: true,
                closed: false,
                txn: TxnState::Uninitialized,
                uncommitted_offsets: Vec::new(),
                committed_offsets: Vec::new(),
                commits: 0,
                aborts: 0,
                records_sent: 0,
                record_errors: 0,
            }),
        });
        MockProducer {
            producer: Producer::from_mock(Arc::clone(&handle) as Arc<dyn MockBackend<K, V>>),
            handle,
        }
    }
}

impl<K: 'static, V: 'static> MockHandle<K, V> {
    /// Sends `record`: the mock's half of `Producer::send`, after the interceptors'
    /// `on_send`. On error the record comes back with the completion.
    #[allow(clippy::result_large_err)]
    pub(crate) fn send(
        &self,
        mut record: ProducerRecord<K, V>,
        completion: Completion,
    ) -> Result<Option<SendFuture>, RefusedRecord<K, V>> {
        let checked = self.check(&record);
        let (tp, slot) = match checked {
            Ok(found) => found,
            Err(e) => {
                self.state.lock().record_errors += 1;
                return Err((e, completion, None, record));
            }
        };
        let mut s = self.state.lock();
        if s.closed {
            drop(s);
            return Err((Error::Closed, completion, None, record));
        }
        record.set_partition(Some(tp.partition()));
        record.set_timestamp(Some(slot.timestamp));
        let (future, done) = match completion {
            Completion::Future => {
                let result = Arc::new(BatchResult::new(tp.clone(), self.id));
                let future = SendFuture::in_batch(Arc::clone(&result), slot.clone());
                (Some(future), Done::Future(result))
            }
            Completion::Callback(callback) => (None, Done::Callback(callback)),
            Completion::FutureAndCallback(callback) => {
                let result = Arc::new(BatchResult::new(tp.clone(), self.id));
                let future = SendFuture::in_batch(Arc::clone(&result), slot.clone());
                (Some(future), Done::Both(result, callback))
            }
        };
        match s.txn {
            TxnState::InTransaction => s.uncommitted.push(record),
            _ => s.history.push(record),
        }
        s.waiting.push_back(Waiting { tp, slot, done });
        if s.auto_complete {
            // Everything waiting was sent before this record (and waits only because
            // auto-completion was off then): it all completes, in order.
            while s.complete_oldest(None) {}
        }
        drop(s);
        self.drain();
        Ok(future)
    }

    /// The checks and choices of a real send: where `record` goes, and its slot.
    fn check(&self, record: &ProducerRecord<K, V>) -> Result<(TopicPartition, RecordSlot), Error> {
        {
            let s = self.state.lock();
            if s.closed {
                return Err(Error::Closed);
            }
            match s.txn {
                TxnState::Fenced => return Err(fenced()),
                TxnState::Ready if self.config.transactional_id.is_some() => {
                    return Err(Error::IllegalState(
                        "send outside a transaction on a transactional producer: call \
                         begin_transaction() first"
                            .into(),
                    ))
                }
                TxnState::Uninitialized if self.config.transactional_id.is_some() => {
                    return Err(Error::IllegalState(
                        "send on a transactional producer before init_transactions()".into(),
                    ))
                }
                _ => {}
            }
        }
        let topic = record.topic();
        crate::producer::validate_topic(topic)?;
        let partitions = self.partitions_for(topic)?;
        let (key, value) =
            crate::producer::serialize(&*self.key_serializer, &*self.value_serializer, record)?;
        let (key, value) = (key.as_deref(), value.as_deref());
        let headers = record.headers().as_slice();
        let payload = crate::record_batch::RecordBatchBuilder::payload_size(key, value, headers);
        let record_size =
            crate::record_batch::RecordBatchBuilder::record_size_with_payload(payload, 0, 0);
        crate::producer::check_size(crate::record_batch::HEADER_SIZE + record_size, &self.config)?;
        let sticky_topic = self.sticky.topic(topic);
        let (partition, sticky) = crate::producer::choose_partition(
            record,
            key,
            value,
            &partitions,
            self.partitioner.as_deref(),
            self.config.partitioner_ignore_keys,
            &self.sticky,
            &sticky_topic,
        )?;
        if sticky {
            // No batches here: the sticky partition moves on after batch.size bytes.
            self.sticky
                .on_append_in(&sticky_topic, partition, record_size, true, &partitions);
        }
        let size = |b: Option<&[u8]>| b.map_or(-1, |b| i32::try_from(b.len()).unwrap_or(i32::MAX));
        let slot = RecordSlot {
            relative_offset: 0,
            timestamp: record.timestamp().unwrap_or_else(crate::producer::now_ms),
            key_size: size(key),
            value_size: size(value),
        };
        Ok((TopicPartition::new(topic, partition), slot))
    }
}

impl<K, V> MockHandle<K, V> {
    /// A record that failed before it was sent: its callback gets `error`, in order after
    /// the results before it.
    pub(crate) fn early_callback(&self, callback: Callback, tp: TopicPartition, error: Error) {
        self.state.lock().finished.push_back(Finished {
            tp,
            slot: RecordSlot {
                relative_offset: 0,
                timestamp: -1,
                key_size: -1,
                value_size: -1,
            },
            outcome: Err(error),
            done: Done::Callback(callback),
        });
        self.drain();
    }

    /// Completes the oldest waiting record (with `error`, else successfully) and hands the
    /// result out. False when none waits.
    fn complete_next(&self, error: Option<Error>) -> bool {
        let completed = self.state.lock().complete_oldest(error);
        self.drain();
        completed
    }

    /// Hands out finished results in order, unless another thread (or an outer frame of
    /// this one) is already doing so and will take these too.
    fn drain(&self) {
        {
            let mut s = self.state.lock();
            if s.draining || s.finished.is_empty() {
                return;
            }
            s.draining = true;
        }
        with_callback_thread_of(self.id, || loop {
            let next = {
                let mut s = self.state.lock();
                match s.finished.pop_front() {
                    Some(f) => f,
                    None => {
                        s.draining = false;
                        let close = std::mem::take(&mut s.close_interceptors);
                        self.idle.notify_all();
                        drop(s);
                        if let (true, Some(chain)) = (close, &self.interceptors) {
                            chain.close();
                        }
                        return;
                    }
                }
            };
            let result = next.slot.metadata(&next.tp, &next.outcome);
            match next.done {
                Done::Future(batch) => batch.complete(next.outcome, true),
                Done::Callback(callback) => run_one(callback, &next.tp, result),
                Done::Both(batch, callback) => {
                    run_one(callback, &next.tp, result);
                    batch.complete(next.outcome, true);
                }
            }
        });
    }

    /// `Producer::flush`: completes every waiting record successfully.
    pub(crate) fn flush(&self) -> Result<(), Error> {
        if on_callback_thread_of(self.id) {
            return Err(Error::IllegalState(
                "flush() inside a producer callback would deadlock".into(),
            ));
        }
        {
            let mut s = self.state.lock();
            while s.complete_oldest(None) {}
        }
        self.drain();
        self.wait_handed_out();
        Ok(())
    }

    /// Waits until every finished result was handed out, by this thread or another one.
    /// Not on the draining thread (which would wait for itself).
    fn wait_handed_out(&self) {
        let mut s = self.state.lock();
        while s.draining || !s.finished.is_empty() {
            self.idle.wait(&mut s);
        }
    }

    /// `Producer::partitions_for`.
    pub(crate) fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionInfo>, Error> {
        crate::producer::validate_topic(topic)?;
        self.cluster
            .partitions(topic)
            .ok_or_else(|| Error::MetadataTimeout {
                topic: topic.to_owned(),
                waited_ms: 0,
            })
    }

    /// `Producer::metrics`: the record counts; nothing is sent over a network.
    pub(crate) fn metrics(&self) -> ProducerMetrics {
        let s = self.state.lock();
        let metrics = crate::metrics::Metrics::default();
        crate::metrics::Metrics::add(&metrics.records_sent, s.records_sent);
        crate::metrics::Metrics::add(&metrics.record_errors, s.record_errors);
        metrics.snapshot(0, self.config.buffer_memory)
    }

    /// `Producer::close`: completes what waits (as a graceful close delivers it), then
    /// refuses later sends.
    pub(crate) fn close(&self) -> Result<(), Error> {
        let inside_callback = on_callback_thread_of(self.id);
        {
            let mut s = self.state.lock();
            if s.closed {
                return Ok(());
            }
            s.closed = true;
            while s.complete_oldest(None) {}
            // Inside a callback this thread hands out the rest once the callback returns;
            // the interceptors close after that.
            s.close_interceptors = inside_callback;
        }
        if !inside_callback {
            self.drain();
            self.wait_handed_out();
            if let Some(chain) = &self.interceptors {
                chain.close();
            }
        }
        Ok(())
    }

    /// The checks every transactional call makes.
    fn txn_call(&self, call: &str) -> Result<parking_lot::MutexGuard<'_, MockState<K, V>>, Error> {
        let s = self.state.lock();
        if s.closed {
            return Err(Error::Closed);
        }
        if self.config.transactional_id.is_none() {
            return Err(Error::IllegalState(format!(
                "{call} on a producer without transactional.id: set transactional.id to use \
                 transactions"
            )));
        }
        if s.txn == TxnState::Fenced {
            return Err(fenced());
        }
        Ok(s)
    }

    pub(crate) fn init_transactions(&self) -> Result<(), Error> {
        let mut s = self.txn_call("init_transactions")?;
        if s.txn != TxnState::Uninitialized {
            return Err(Error::IllegalState(
                "init_transactions() may be called only once".into(),
            ));
        }
        s.txn = TxnState::Ready;
        Ok(())
    }

    pub(crate) fn begin_transaction(&self) -> Result<(), Error> {
        let mut s = self.txn_call("begin_transaction")?;
        match s.txn {
            TxnState::Ready => {
                s.txn = TxnState::InTransaction;
                Ok(())
            }
            TxnState::InTransaction => Err(Error::IllegalState(
                "begin_transaction() while a transaction is open".into(),
            )),
            _ => Err(Error::IllegalState(
                "begin_transaction() before init_transactions()".into(),
            )),
        }
    }

    pub(crate) fn send_offsets_to_transaction(
        &self,
        offsets: &HashMap<TopicPartition, OffsetAndMetadata>,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), Error> {
        let mut s = self.txn_call("send_offsets_to_transaction")?;
        if s.txn != TxnState::InTransaction {
            return Err(Error::IllegalState(
                "send_offsets_to_transaction() outside a transaction".into(),
            ));
        }
        if !offsets.is_empty() {
            s.uncommitted_offsets
                .push((group.group_id().to_owned(), offsets.clone()));
        }
        Ok(())
    }

    /// Commits (`commit`) or aborts the open transaction. A commit first completes every
    /// waiting record (as a real commit flushes); an abort fails them with
    /// [`Error::TransactionAborted`].
    pub(crate) fn end_transaction(&self, commit: bool) -> Result<(), Error> {
        let call = if commit {
            "commit_transaction"
        } else {
            "abort_transaction"
        };
        if on_callback_thread_of(self.id) {
            return Err(Error::IllegalState(format!(
                "{call}() inside a producer callback would deadlock"
            )));
        }
        {
            let mut s = self.txn_call(call)?;
            if s.txn != TxnState::InTransaction {
                return Err(Error::IllegalState(format!(
                    "{call}() outside a transaction"
                )));
            }
            let error = (!commit).then_some(Error::TransactionAborted);
            while s.complete_oldest(error.clone()) {}
            let records = std::mem::take(&mut s.uncommitted);
            let offsets = std::mem::take(&mut s.uncommitted_offsets);
            if commit {
                s.history.extend(records);
                s.committed_offsets.extend(offsets);
                s.commits += 1;
            } else {
                s.aborts += 1;
            }
            s.txn = TxnState::Ready;
        }
        self.drain();
        self.wait_handed_out();
        Ok(())
    }
}

/// The mock's side of a [`Producer`]; `Backend::Mock` holds it type-erased, so that the
/// producer's auto traits do not depend on its key and value types.
pub(crate) trait MockBackend<K, V>: Send + Sync {
    #[allow(clippy::result_large_err)]
    fn send(
        &self,
        record: ProducerRecord<K, V>,
        completion: Completion,
    ) -> Result<Option<SendFuture>, RefusedRecord<K, V>>;
    fn early_callback(&self, callback: Callback, tp: TopicPartition, error: Error);
    fn flush(&self) -> Result<(), Error>;
    fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionInfo>, Error>;
    fn metrics(&self) -> ProducerMetrics;
    /// Records sent and not completed yet (`Producer::in_flight_records`).
    fn waiting(&self) -> usize;
    fn close(&self) -> Result<(), Error>;
    fn config(&self) -> &ProducerConfig;
    fn interceptors(&self) -> Option<&Arc<Interceptors<K, V>>>;
    fn init_transactions(&self) -> Result<(), Error>;
    fn begin_transaction(&self) -> Result<(), Error>;
    fn send_offsets_to_transaction(
        &self,
        offsets: &HashMap<TopicPartition, OffsetAndMetadata>,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), Error>;
    fn end_transaction(&self, commit: bool) -> Result<(), Error>;
}

impl<K: Send + 'static, V: Send + 'static> MockBackend<K, V> for MockHandle<K, V> {
    fn send(
        &self,
        record: ProducerRecord<K, V>,
        completion: Completion,
    ) -> Result<Option<SendFuture>, RefusedRecord<K, V>> {
        MockHandle::send(self, record, completion)
    }
    fn early_callback(&self, callback: Callback, tp: TopicPartition, error: Error) {
        MockHandle::early_callback(self, callback, tp, error)
    }
    fn flush(&self) -> Result<(), Error> {
        MockHandle::flush(self)
    }
    fn partitions_for(&self, topic: &str) -> Result<Vec<PartitionInfo>, Error> {
        MockHandle::partitions_for(self, topic)
    }
    fn metrics(&self) -> ProducerMetrics {
        MockHandle::metrics(self)
    }
    fn waiting(&self) -> usize {
        self.state.lock().waiting.len()
    }
    fn close(&self) -> Result<(), Error> {
        MockHandle::close(self)
    }
    fn config(&self) -> &ProducerConfig {
        &self.config
    }
    fn interceptors(&self) -> Option<&Arc<Interceptors<K, V>>> {
        self.interceptors.as_ref()
    }
    fn init_transactions(&self) -> Result<(), Error> {
        MockHandle::init_transactions(self)
    }
    fn begin_transaction(&self) -> Result<(), Error> {
        MockHandle::begin_transaction(self)
    }
    fn send_offsets_to_transaction(
        &self,
        offsets: &HashMap<TopicPartition, OffsetAndMetadata>,
        group: &ConsumerGroupMetadata,
    ) -> Result<(), Error> {
        MockHandle::send_offsets_to_transaction(self, offsets, group)
    }
    fn end_transaction(&self, commit: bool) -> Result<(), Error> {
        MockHandle::end_transaction(self, commit)
    }
}

impl<K, V> MockState<K, V> {
    /// Completes the oldest waiting record: with `error`, or with the next offset of its
    /// partition. False when none waits.
    fn complete_oldest(&mut self, error: Option<Error>) -> bool {
        let Some(w) = self.waiting.pop_front() else {
            return false;
        };
        let outcome = match error {
            Some(e) => {
                self.record_errors += 1;
                Err(e)
            }
            None => {
                let next = self.next_offsets.entry(w.tp.clone()).or_insert(0);
                let offset = *next;
                *next += 1;
                self.records_sent += 1;
                Ok(BatchOutcome {
                    base_offset: offset,
                    log_append_time: -1,
                })
            }
        };
        self.finished.push_back(Finished {
            tp: w.tp,
            slot: w.slot,
            outcome,
            done: w.done,
        });
        true
    }
}

fn fenced() -> Error {
    Error::Fenced("the mock producer was fenced (MockProducer::fence)".into())
}

//! Testing code that produces, without a broker: a small order service takes a
//! `Producer<String, String>`, and its unit tests (at the bottom; `cargo test --example
//! mock_producer` runs them) give it a [`MockProducer`]'s producer instead of a real one.
//!
//! ```text
//! cargo run --example mock_producer
//! ```
//!
//! `main` runs the service against a mock too and prints what it "sent".

use kafka_producer::mock::{MockCluster, MockProducer};
use kafka_producer::{Error, Producer, ProducerRecord, StringSerializer};

/// The service under test: publishes order events, keyed by customer so that one
/// customer's events stay in order on one partition.
struct OrderService {
    producer: Producer<String, String>,
    topic: String,
}

impl OrderService {
    fn new(producer: Producer<String, String>, topic: &str) -> Self {
        OrderService {
            producer,
            topic: topic.to_owned(),
        }
    }

    /// Publishes one event and waits for it: returns the partition and offset.
    fn place(&self, customer: &str, order: &str) -> Result<(i32, i64), Error> {
        let record = ProducerRecord::new(self.topic.as_str(), format!("placed {order}"))
            .with_key(customer.to_owned())
            .with_header("event-type", b"order-placed".to_vec());
        let md = self.producer.send(record).wait()?;
        Ok((md.partition(), md.offset()))
    }

    /// Publishes a batch of cancellations without waiting; reports failures through the
    /// returned counter once `flush` returns.
    fn cancel_all(&self, customer: &str, orders: &[&str]) -> Result<usize, Error> {
        let failed = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for order in orders {
            let record = ProducerRecord::new(self.topic.as_str(), format!("cancelled {order}"))
                .with_key(customer.to_owned());
            let failed = std::sync::Arc::clone(&failed);
            self.producer.send_with_callback(record, move |result| {
                if result.is_err() {
                    failed.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
            });
        }
        self.producer.flush()?;
        Ok(failed.load(std::sync::atomic::Ordering::Relaxed))
    }
}

/// A mock with the topic's three partitions, so the real key partitioner runs.
fn mock() -> Result<MockProducer<String, String>, Error> {
    Producer::builder()
        .key_serializer(StringSerializer)
        .value_serializer(StringSerializer)
        .build_mock(MockCluster::new().topic("orders", 3))
}

fn main() -> Result<(), Error> {
    let mock = mock()?;
    let service = OrderService::new(mock.producer(), "orders");
    for (customer, order) in [("alice", "o-1"), ("bob", "o-2"), ("alice", "o-3")] {
        let (partition, offset) = service.place(customer, order)?;
        println!("{customer} {order}: partition {partition}, offset {offset}");
    }
    let failed = service.cancel_all("alice", &["o-1", "o-3"])?;
    println!("cancellations failed: {failed}");
    for r in mock.history() {
        println!(
            "sent: {:?} -> {}-{:?}: {:?}",
            r.key(),
            r.topic(),
            r.partition(),
            r.value()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use kafka_producer::partition::partition_for_key;

    #[test]
    fn one_customers_events_share_a_partition_in_order() {
        let mock = mock().unwrap();
        let service = OrderService::new(mock.producer(), "orders");
        let first = service.place("alice", "o-1").unwrap();
        let second = service.place("alice", "o-2").unwrap();
        // The real murmur2 partitioner ran over the mock's three partitions.
        let expected = partition_for_key(b"alice", 3);
        assert_eq!((first.0, second.0), (expected, expected));
        assert_eq!(second.1, first.1 + 1, "offsets rise per partition");
        let history = mock.history();
        assert_eq!(history.len(), 2);
        assert_eq!(history[0].value().map(String::as_str), Some("placed o-1"));
        assert_eq!(
            history[0].headers().last("event-type"),
            Some(&b"order-placed"[..])
        );
    }

    #[test]
    fn a_failed_send_reaches_the_caller() {
        let mock = mock().unwrap();
        mock.set_auto_complete(false);
        let service = OrderService::new(mock.producer(), "orders");
        std::thread::scope(|s| {
            let placing = s.spawn(|| service.place("bob", "o-9"));
            // The service waits for its record; the test fails it.
            while mock.waiting() == 0 {
                std::thread::yield_now();
            }
            assert!(mock.fail_next(Error::Network {
                broker: "broker-1:9092".into(),
                reason: "connection reset".into(),
            }));
            let result = placing.join().unwrap();
            assert!(matches!(result, Err(Error::Network { .. })), "{result:?}");
        });
    }

    #[test]
    fn flush_completes_every_waiting_cancellation() {
        let mock = mock().unwrap();
        mock.set_auto_complete(false);
        let service = OrderService::new(mock.producer(), "orders");
        // flush (inside cancel_all) completes what waits, as Java's MockProducer does.
        assert_eq!(
            service.cancel_all("carol", &["o-4", "o-5", "o-6"]).unwrap(),
            0
        );
        assert_eq!(mock.waiting(), 0);
        assert_eq!(mock.history().len(), 3);
    }
}

//! Publishing the producer's metrics to the [`metrics`] crate (feature `metrics`).
//!
//! [`metrics`] is the standard Rust metrics facade: an application installs one recorder
//! (a Prometheus or StatsD exporter, for example) and every library's metrics reach it.
//! [`publish`] hands it the list of [`Producer::metrics_by_name`]; the usual way to call it
//! is the statistics hook, which [`ProducerBuilder::export_metrics`] sets up.
//!
//! Names: `kafka_producer_` and Java's name with `-` turned into `_`, with the group in
//! between for the per-topic and per-node metrics, so that no name means two things:
//! `kafka_producer_record_send_total`, `kafka_producer_topic_record_send_total`,
//! `kafka_producer_node_request_latency_avg`. Labels: `client_id`, and `topic` or
//! `node_id` (Java's `node-<id>`). Totals (`*_total`) are counters set to their absolute
//! value; everything else (averages, maxima, rates, gauges) is a gauge.
//!
//! [`Producer::metrics_by_name`]: crate::Producer::metrics_by_name
//! [`ProducerBuilder::export_metrics`]: crate::ProducerBuilder::export_metrics

use crate::metrics::Metric;

/// Publishes `metrics` (from [`Producer::metrics_by_name`](crate::Producer::metrics_by_name)
/// or the statistics hook) to the [`metrics`] crate's recorder of the calling thread (the
/// global one unless a local one is set).
pub fn publish(metrics: &[Metric]) {
    for m in metrics {
        let name = exported_name(m);
        let labels: Vec<(String, String)> = m
            .tags
            .iter()
            .map(|(k, v)| (k.replace('-', "_"), v.clone()))
            .collect();
        if m.name.ends_with("-total") {
            // Totals only grow; a counter keeps the largest value it was set to.
            let value = if m.value.is_finite() && m.value > 0.0 {
                m.value as u64
            } else {
                0
            };
            metrics::counter!(name, &labels).absolute(value);
        } else {
            metrics::gauge!(name, &labels).set(m.value);
        }
    }
}

/// The exported name of `m` (see the module docs).
fn exported_name(m: &Metric) -> String {
    let group = match m.group.as_str() {
        Metric::TOPIC_GROUP => "topic_",
        Metric::NODE_GROUP => "node_",
        _ => "",
    };
    format!("kafka_producer_{group}{}", m.name.replace('-', "_"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};
    use std::sync::{Arc, Mutex};

    use metrics::{
        Counter, CounterFn, Gauge, GaugeFn, Histogram, Key, KeyName, Metadata, Recorder,
        SharedString, Unit,
    };

    /// Every counter and gauge by "name{label=value,...}", with its last value.
    #[derive(Debug, Default, Clone)]
    struct TestRecorder(Arc<Mutex<HashMap<String, (&'static str, f64)>>>);

    #[derive(Debug)]
    struct Cell(
        Arc<Mutex<HashMap<String, (&'static str, f64)>>>,
        String,
        &'static str,
    );

    impl CounterFn for Cell {
        fn increment(&self, value: u64) {
            let mut map = self.0.lock().unwrap();
            map.entry(self.1.clone()).or_insert((self.2, 0.0)).1 += value as f64;
        }
        fn absolute(&self, value: u64) {
            self.0
                .lock()
                .unwrap()
                .insert(self.1.clone(), (self.2, value as f64));
        }
    }

    impl GaugeFn for Cell {
        fn increment(&self, value: f64) {
            let mut map = self.0.lock().unwrap();
            map.entry(self.1.clone()).or_insert((self.2, 0.0)).1 += value;
        }
        fn decrement(&self, value: f64) {
            GaugeFn::increment(self, -value);
        }
        fn set(&self, value: f64) {
            self.0
                .lock()
                .unwrap()
                .insert(self.1.clone(), (self.2, value));
        }
    }

    impl TestRecorder {
        fn cell(&self, key: &Key, kind: &'static str) -> Arc<Cell> {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let id = format!("{}{{{}}}", key.name(), labels.join(","));
            Arc::new(Cell(Arc::clone(&self.0), id, kind))
        }

        fn get(&self, id: &str) -> Option<(&'static str, f64)> {
            self.0.lock().unwrap().get(id).copied()
        }
    }

    impl Recorder for TestRecorder {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            Counter::from_arc(self.cell(key, "counter"))
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            Gauge::from_arc(self.cell(key, "gauge"))
        }
        fn register_histogram(&self, _: &Key, _: &Metadata<'_>) -> Histogram {
            Histogram::noop()
        }
    }

    fn metric(name: &str, group: &str, tags: &[(&str, &str)], value: f64) -> Metric {
        Metric {
            name: name.into(),
            group: group.into(),
            tags: tags
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect::<BTreeMap<_, _>>(),
            value,
        }
    }

    #[test]
    fn totals_become_counters_and_the_rest_gauges_with_labels() {
        let recorder = TestRecorder::default();
        let list = [
            metric(
                "record-send-total",
                Metric::PRODUCER_GROUP,
                &[("client-id", "c")],
                12.0,
            ),
            metric(
                "record-send-total",
                Metric::TOPIC_GROUP,
                &[("client-id", "c"), ("topic", "t")],
                5.0,
            ),
            metric(
                "request-latency-avg",
                Metric::NODE_GROUP,
                &[("client-id", "c"), ("node-id", "node-1")],
                2.5,
            ),
        ];
        metrics::with_local_recorder(&recorder, || publish(&list));
        assert_eq!(
            recorder.get("kafka_producer_record_send_total{client_id=c}"),
            Some(("counter", 12.0))
        );
        assert_eq!(
            recorder.get("kafka_producer_topic_record_send_total{client_id=c,topic=t}"),
            Some(("counter", 5.0))
        );
        assert_eq!(
            recorder.get("kafka_producer_node_request_latency_avg{client_id=c,node_id=node-1}"),
            Some(("gauge", 2.5))
        );
        assert_eq!(recorder.0.lock().unwrap().len(), 3);
    }

    /// The statistics hook that `export_metrics` installs publishes a running producer's
    /// metrics to the global recorder (the hook runs on the producer's statistics thread,
    /// where a test's local recorder is not seen). The only test here that sets it.
    #[test]
    fn export_metrics_publishes_through_the_statistics_hook() {
        let recorder = TestRecorder::default();
        metrics::set_global_recorder(recorder.clone()).expect("first global recorder");
        let producer = crate::Producer::builder()
            .bootstrap_servers("127.0.0.1:1")
            .set("client.id", "exported")
            .export_metrics(std::time::Duration::from_millis(20))
            .build()
            .expect("producer");
        let id = "kafka_producer_buffer_total_bytes{client_id=exported}";
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while recorder.get(id).is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        producer.close().expect("close");
        assert_eq!(recorder.get(id), Some(("gauge", 33_554_432.0)));
        let sent = "kafka_producer_record_send_total{client_id=exported}";
        assert_eq!(recorder.get(sent), Some(("counter", 0.0)));
    }
}

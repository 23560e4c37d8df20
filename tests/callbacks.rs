//! The callback thread against Kafka: memory held for callbacks that fall behind, and user
//! wakers of polled futures (this test binary's shared single node, or the cluster
//! `KAFKA_BOOTSTRAP_SERVERS` names).

mod common;

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Wake, Waker};
use std::time::{Duration, Instant};

use common::{brokers, unique_topic};
use kafka_producer::{Producer, ProducerRecord};

/// This process's resident set size (VmRSS), in bytes.
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<usize>().ok())
        .map_or(0, |kb| kb * 1024)
}

#[test]
fn send_blocks_when_callbacks_fall_behind_instead_of_queueing_without_limit() {
    let brokers = brokers();
    let topic = unique_topic("slow-callbacks");
    brokers.create_topic(&topic, 1);
    let buffer_memory = 1 << 20;
    let p = Producer::from_properties([
        ("bootstrap.servers", brokers.bootstrap()),
        ("buffer.memory", &buffer_memory.to_string()),
        ("max.block.ms", "1000"),
        ("linger.ms", "5"),
    ])
    .unwrap();
    p.send(ProducerRecord::new(topic.clone(), b"warm-up".to_vec()))
        .wait()
        .unwrap();
    let rss_before = rss();
    // The first callback holds the callback thread until the test opens the gate: every
    // later callback falls behind.
    let (open_tx, open_rx) = crossbeam_channel::bounded::<()>(0);
    let (entered_tx, entered_rx) = crossbeam_channel::bounded::<()>(1);
    let ran = Arc::new(AtomicUsize::new(0));
    p.send_with_callback(
        ProducerRecord::new(topic.clone(), b"gate".to_vec()),
        move |_| {
            let _ = entered_tx.send(());
            let _ = open_rx.recv();
        },
    );
    entered_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the gate callback runs");
    let value = vec![7u8; 100];
    let (mut accepted, mut blocked) = (0usize, None);
    let start = Instant::now();
    while accepted < 200_000 && start.elapsed() < Duration::from_secs(20) {
        let r = Arc::clone(&ran);
        let t = Instant::now();
        p.send_with_callback(
            ProducerRecord::new(topic.clone(), value.clone()),
            move |_| {
                r.fetch_add(1, Ordering::Relaxed);
            },
        );
        if t.elapsed() >= Duration::from_millis(500) {
            blocked = Some(t.elapsed());
            break;
        }
        accepted += 1;
    }
    let in_use = p.metrics().buffer_bytes_in_use;
    let grown = rss().saturating_sub(rss_before);
    // Each callback is charged more than 32 bytes: buffer.memory holds fewer than 32k.
    let bound = buffer_memory / 32;
    assert!(
        blocked.is_some() && accepted <= bound,
        "{accepted} callbacks queued behind a stalled callback (bound {bound}) and send \
         never blocked; buffer in use {in_use} bytes, RSS grew {grown} bytes"
    );
    assert!(
        in_use > 0 && in_use <= buffer_memory,
        "the queued callbacks hold buffer memory: {in_use}"
    );
    assert!(
        grown <= buffer_memory + (64 << 20),
        "RSS grew {grown} bytes while callbacks were stalled"
    );
    drop(open_tx);
    p.flush().unwrap();
    assert!(ran.load(Ordering::Relaxed) >= accepted);
    assert_eq!(p.metrics().buffer_bytes_in_use, 0, "the memory comes back");
    p.close().unwrap();
}

/// A waker that panics when woken, and counts the wakes and the thread that ran them.
struct PanickingWaker(std::sync::Mutex<Vec<String>>);

impl Wake for PanickingWaker {
    fn wake(self: Arc<Self>) {
        let name = std::thread::current().name().unwrap_or("").to_string();
        self.0.lock().unwrap().push(name);
        panic!("a user waker panicked");
    }
}

#[test]
fn a_panicking_waker_neither_stops_the_sender_nor_runs_on_it() {
    let brokers = brokers();
    let topic = unique_topic("panicking-waker");
    brokers.create_topic(&topic, 1);
    // A long linger: the record is surely still pending when the test polls it.
    let p = Producer::from_properties([
        ("bootstrap.servers", brokers.bootstrap()),
        ("linger.ms", "300"),
    ])
    .unwrap();
    p.send(ProducerRecord::new(topic.clone(), b"warm-up".to_vec()))
        .wait()
        .unwrap();
    let woken = Arc::new(PanickingWaker(Default::default()));
    let waker = Waker::from(Arc::clone(&woken));
    let mut fut = p.send(ProducerRecord::new(topic.clone(), b"polled".to_vec()));
    assert!(Pin::new(&mut fut)
        .poll(&mut Context::from_waker(&waker))
        .is_pending());
    let start = Instant::now();
    while woken.0.lock().unwrap().is_empty() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let threads = woken.0.lock().unwrap().clone();
    assert_eq!(threads.len(), 1, "woken once");
    assert!(
        !threads[0].contains("sender"),
        "the waker ran on the sender thread ({})",
        threads[0]
    );
    let later = p
        .send(ProducerRecord::new(topic.clone(), b"later".to_vec()))
        .wait();
    assert!(later.is_ok(), "a send after the waker panicked: {later:?}");
    p.close().unwrap();
}

#[test]
fn callbacks_of_records_that_fail_before_buffering_do_not_queue_without_limit() {
    let brokers = brokers();
    let topic = unique_topic("slow-early-callbacks");
    brokers.create_topic(&topic, 1);
    let buffer_memory = 1 << 20;
    let p = Producer::from_properties([
        ("bootstrap.servers", brokers.bootstrap()),
        ("buffer.memory", &buffer_memory.to_string()),
        ("max.block.ms", "1000"),
    ])
    .unwrap();
    p.send(ProducerRecord::new(topic.clone(), b"warm-up".to_vec()))
        .wait()
        .unwrap();
    let (open_tx, open_rx) = crossbeam_channel::bounded::<()>(0);
    let (entered_tx, entered_rx) = crossbeam_channel::bounded::<()>(1);
    p.send_with_callback(
        ProducerRecord::new(topic.clone(), b"gate".to_vec()),
        move |_| {
            let _ = entered_tx.send(());
            let _ = open_rx.recv();
        },
    );
    // Only once the gate holds the callback thread do later callbacks fall behind (until
    // then the thread runs them at once, and gives their memory back).
    entered_rx
        .recv_timeout(Duration::from_secs(30))
        .expect("the gate callback runs");
    let ran = Arc::new(AtomicUsize::new(0));
    let (mut accepted, mut blocked) = (0usize, None);
    let start = Instant::now();
    while accepted < 200_000 && start.elapsed() < Duration::from_secs(20) {
        let r = Arc::clone(&ran);
        let t = Instant::now();
        // An invalid topic name: the record fails before it reaches a batch.
        p.send_with_callback(
            ProducerRecord::new("bad topic!", b"v".to_vec()),
            move |_| {
                r.fetch_add(1, Ordering::Relaxed);
            },
        );
        if t.elapsed() >= Duration::from_millis(500) {
            blocked = Some(t.elapsed());
            break;
        }
        accepted += 1;
    }
    // Each callback is charged more than 32 bytes: buffer.memory holds fewer than 32k.
    let bound = buffer_memory / 32;
    assert!(
        blocked.is_some() && accepted <= bound,
        "{accepted} callbacks of failed records queued behind a stalled callback (bound \
         {bound}) and send never blocked"
    );
    drop(open_tx);
    p.flush().unwrap();
    assert_eq!(
        ran.load(Ordering::Relaxed),
        accepted + 1,
        "every callback ran once"
    );
    assert_eq!(p.metrics().buffer_bytes_in_use, 0, "the memory comes back");
    p.close().unwrap();
}

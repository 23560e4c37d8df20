//! The periodic statistics hook (`statistics.interval.ms`, librdkafka's name).
//!
//! # Threads and ownership
//!
//! When the interval is not zero, the sender thread starts one small thread per producer
//! as it begins ([`start`]), named `kafka-producer-stats-<client.id>`. That thread keeps a
//! [`Weak`] reference to the producer's [`Core`], upgraded while it waits for the next run
//! (on the stop flag, below) and while it runs: every interval it reads the
//! metrics ([`Core::metrics_snapshot`], [`Core::metrics_by_name`]) and hands them to the
//! user's [`StatisticsCallback`], or logs them when there is none. User code therefore
//! never runs on the sender thread, and a slow callback delays only the next statistics,
//! never a send or a delivery callback.
//!
//! # Stopping
//!
//! [`Stop`] (a mutex-guarded flag and a condvar, in [`Core::statistics`]; a leaf lock) is
//! set by the sender thread when it exits (close, or a panic) and wakes the statistics
//! thread, which ends. The flag is checked before each run of the hook, so once the
//! sender has exited (before `close` returns) no new run starts, but for one that passed
//! its check just before; a run under way finishes on its own (the flag's lock is never
//! held while the hook runs: a hook that closes its producer must not deadlock). A producer
//! dropped without close also ends the thread: dropping it closes it, and the sender sets
//! the flag as it exits.

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use crate::core::Core;
use crate::metrics::{Metric, ProducerMetrics};

/// The user's statistics hook: called with the metrics snapshot and the metrics under
/// Java's names every `statistics.interval.ms`.
#[derive(Clone)]
pub(crate) struct StatisticsCallback(pub Arc<StatisticsFn>);

/// The hook's function type.
pub(crate) type StatisticsFn = dyn Fn(&ProducerMetrics, &[Metric]) + Send + Sync;

impl std::fmt::Debug for StatisticsCallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StatisticsCallback")
    }
}

/// Two configurations are equal only with the very same hook.
impl PartialEq for StatisticsCallback {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for StatisticsCallback {}

/// The statistics thread's stop signal. `stopped` is guarded by its mutex; the condvar
/// wakes the thread early when it is set.
#[derive(Debug, Default)]
pub(crate) struct Stop {
    stopped: Mutex<bool>,
    wake: Condvar,
}

impl Stop {
    /// Stops the statistics thread (no new run of the hook starts after this returns).
    pub fn stop(&self) {
        *self.stopped.lock() = true;
        self.wake.notify_all();
    }

    /// Waits until `deadline` or until stopped; returns whether to go on.
    fn wait_until(&self, deadline: Instant) -> bool {
        let mut stopped = self.stopped.lock();
        while !*stopped && Instant::now() < deadline {
            let _ = self.wake.wait_until(&mut stopped, deadline);
        }
        !*stopped
    }

    /// Whether the thread may go on (not stopped).
    fn running(&self) -> bool {
        !*self.stopped.lock()
    }
}

/// Starts the statistics thread of `core` if `statistics.interval.ms` is set; a failure to
/// start it is logged (statistics are not worth failing the producer for).
pub(crate) fn start(core: &Arc<Core>) {
    let interval = core.config.statistics_interval;
    if interval.is_zero() {
        return;
    }
    let weak = Arc::downgrade(core);
    let name = format!("kafka-producer-stats-{}", core.config.client_id);
    if let Err(e) = std::thread::Builder::new()
        .name(name)
        .spawn(move || run(weak, interval))
    {
        log::error!("could not start the statistics thread: {e}");
    }
}

/// The thread body: one run of the hook per interval, on a fixed schedule (a slow hook
/// delays the next run, which then comes at the next interval mark).
fn run(core: Weak<Core>, interval: Duration) {
    let mut next = Instant::now() + interval;
    loop {
        {
            let Some(c) = core.upgrade() else { return };
            if !c.statistics.wait_until(next) {
                return;
            }
        }
        let now = Instant::now();
        while next <= now {
            next += interval;
        }
        let Some(c) = core.upgrade() else { return };
        if !c.statistics.running() {
            return;
        }
        report(&c);
    }
}

/// One run: the metrics go to the hook, or to the log without one. A panicking hook is
/// caught and logged; the next interval calls it again.
fn report(core: &Core) {
    let snapshot = core.metrics_snapshot();
    let by_name = core.metrics_by_name();
    match &core.config.statistics_callback {
        Some(StatisticsCallback(callback)) => {
            let run = std::panic::AssertUnwindSafe(|| callback(&snapshot, &by_name));
            if std::panic::catch_unwind(run).is_err() {
                log::error!("the statistics callback panicked");
            }
        }
        None => log::info!("statistics of {}: {snapshot:?}", core.config.client_id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProducerConfig;

    #[test]
    fn a_stop_wakes_the_waiting_thread_at_once() {
        let stop = Arc::new(Stop::default());
        let waiter = Arc::clone(&stop);
        let started = Instant::now();
        let t =
            std::thread::spawn(move || waiter.wait_until(Instant::now() + Duration::from_secs(30)));
        std::thread::sleep(Duration::from_millis(20));
        stop.stop();
        assert!(!t.join().unwrap(), "a stopped thread goes on");
        assert!(started.elapsed() < Duration::from_secs(5));
        assert!(!stop.running());
    }

    #[test]
    fn an_unstopped_wait_ends_at_its_deadline() {
        let stop = Stop::default();
        let deadline = Instant::now() + Duration::from_millis(30);
        assert!(stop.wait_until(deadline));
        assert!(Instant::now() >= deadline);
    }

    #[test]
    fn statistics_interval_is_a_property_off_by_default() {
        let c = ProducerConfig::default();
        assert_eq!(c.statistics_interval, Duration::ZERO);
        let c = ProducerConfig::from_properties([
            ("bootstrap.servers", "b:9092"),
            ("statistics.interval.ms", "2500"),
        ])
        .unwrap();
        assert_eq!(c.statistics_interval, Duration::from_millis(2500));
        let too_long = ProducerConfig::from_properties([("statistics.interval.ms", "3000000000")]);
        assert!(too_long.is_err());
        let negative = ProducerConfig::from_properties([("statistics.interval.ms", "-1")]);
        assert!(negative.is_err());
    }
}

//! Time as the scheduler sees it: the wall clock (which jumps when the
//! machine sleeps or is set) and a monotonic sleep (which stops while the
//! machine sleeps). Tests drive a [`ManualClock`] instead of the system's.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::oneshot;

/// A source of wall-clock time and of sleeps.
pub trait Clock: Send + Sync + 'static {
    /// The wall-clock time now.
    fn now(&self) -> DateTime<Utc>;
    /// Completes after `duration` of monotonic time.
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>>;
}

/// The machine's clocks.
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(tokio::time::sleep(duration))
    }
}

/// A clock that moves only when told: [`ManualClock::advance`] moves both
/// clocks (time passing), [`ManualClock::jump_wall`] only the wall clock (the
/// machine slept, or its clock was set).
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<Mutex<ManualState>>,
}

struct ManualState {
    wall: DateTime<Utc>,
    monotonic: Duration,
    sleepers: Vec<(Duration, oneshot::Sender<()>)>,
}

impl ManualClock {
    /// A clock whose wall time is `start`.
    pub fn new(start: DateTime<Utc>) -> Self {
        Self {
            inner: Arc::new(Mutex::new(ManualState {
                wall: start,
                monotonic: Duration::ZERO,
                sleepers: Vec::new(),
            })),
        }
    }

    /// Lets `duration` pass: both clocks move and due sleeps complete.
    pub fn advance(&self, duration: Duration) {
        let mut state = self.inner.lock().unwrap();
        state.wall += duration;
        state.monotonic += duration;
        let now = state.monotonic;
        let (due, waiting): (Vec<_>, Vec<_>) = state.sleepers.drain(..).partition(|(at, _)| *at <= now);
        state.sleepers = waiting;
        for (_, wake) in due {
            let _ = wake.send(());
        }
    }

    /// Moves only the wall clock, as a machine waking from sleep sees it.
    pub fn jump_wall(&self, duration: Duration) {
        self.inner.lock().unwrap().wall += duration;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        self.inner.lock().unwrap().wall
    }

    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        let (wake, woken) = oneshot::channel();
        {
            let mut state = self.inner.lock().unwrap();
            if duration.is_zero() {
                return Box::pin(async {});
            }
            let at = state.monotonic + duration;
            state.sleepers.push((at, wake));
        }
        Box::pin(async move {
            let _ = woken.await;
        })
    }
}

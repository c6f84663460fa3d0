//! `/stop`: the Claude turns running for a chat, ended when a person asks.
//! Each call that serves a chat registers a [`Stop`] for as long as it
//! runs; [`Stops::stop_chat`] trips them all. The backend ends its turn its
//! own way: the persistent CLI is sent its `interrupt` control request, a
//! one-shot CLI's process group is killed, an API request is dropped.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

/// What a stopped call fails with (the desk's words for it).
pub use crate::approvals::STOPPED;

/// One call's stop signal.
#[derive(Default)]
pub struct Stop {
    requested: AtomicBool,
    notify: Notify,
}

impl Stop {
    /// Completes once a stop is requested (at once if it was already).
    pub async fn requested(&self) {
        loop {
            let notified = self.notify.notified();
            if self.requested.load(Ordering::Acquire) {
                return;
            }
            notified.await;
        }
    }

    fn trip(&self) {
        self.requested.store(true, Ordering::Release);
        self.notify.notify_waiters();
    }
}

/// The stop signals of the calls running now, by chat.
#[derive(Default)]
pub struct Stops {
    chats: Mutex<HashMap<i64, Vec<Arc<Stop>>>>,
}

impl Stops {
    /// A stop signal for a call serving `chat`, withdrawn when the returned
    /// registration is dropped.
    pub fn register(&self, chat: i64) -> Registration<'_> {
        let stop = Arc::new(Stop::default());
        let mut chats = self.chats.lock().unwrap_or_else(|p| p.into_inner());
        chats.entry(chat).or_default().push(stop.clone());
        Registration {
            stops: self,
            chat,
            stop,
        }
    }

    /// Trips every call running for `chat`; how many there were.
    pub fn stop_chat(&self, chat: i64) -> usize {
        let chats = self.chats.lock().unwrap_or_else(|p| p.into_inner());
        let running = chats.get(&chat).map_or(&[][..], Vec::as_slice);
        for stop in running {
            stop.trip();
        }
        running.len()
    }
}

/// A call's place in [`Stops`].
pub struct Registration<'a> {
    stops: &'a Stops,
    chat: i64,
    stop: Arc<Stop>,
}

impl Registration<'_> {
    /// The call's stop signal.
    pub fn stop(&self) -> &Stop {
        &self.stop
    }
}

impl Drop for Registration<'_> {
    fn drop(&mut self) {
        let mut chats = self.stops.chats.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(running) = chats.get_mut(&self.chat) {
            running.retain(|stop| !Arc::ptr_eq(stop, &self.stop));
            if running.is_empty() {
                chats.remove(&self.chat);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_chat_s_calls_are_stopped_and_others_are_not() {
        let stops = Stops::default();
        let first = stops.register(1);
        let second = stops.register(1);
        let other = stops.register(2);
        assert_eq!(stops.stop_chat(1), 2);
        first.stop().requested().await;
        second.stop().requested().await;
        let waited =
            tokio::time::timeout(std::time::Duration::from_millis(20), other.stop().requested()).await;
        assert!(waited.is_err(), "chat 2 was not stopped");
        drop((first, second));
        assert_eq!(stops.stop_chat(1), 0, "finished calls are gone");
    }
}

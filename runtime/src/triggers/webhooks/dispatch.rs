//! Running stored deliveries: one lane per webhook runs its deliveries in
//! the order they arrived, each until a run finishes well or its retries
//! are spent. A delivery is done only once a run of it has finished, so one
//! cut short by a stopped host runs again at the next start, and one that
//! finished just before the stop is not run twice.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;

use super::deliveries::{self, Arrival};
use crate::capabilities::Event;
use crate::host::runs::{RunOutcome, StartedBy};
use crate::host::TaskRun;
use crate::plugin::call::Invocation;
use crate::triggers::{stopping, Invoker};
use crate::wasm::bindings::task::mission::plugin::event::WebhookRequest;

/// A delivery ready to run, with how long its acknowledgement took.
struct Ready {
    id: i64,
    ack: Option<Duration>,
}

/// The lanes of every webhook, and how many deliveries wait in each.
pub struct Lanes {
    invoker: Invoker,
    lanes: Mutex<HashMap<String, LaneHandle>>,
    tasks: Mutex<JoinSet<()>>,
    stop: watch::Sender<bool>,
}

/// A running lane: where its deliveries go, and how many it holds.
struct LaneHandle {
    ready: mpsc::UnboundedSender<Ready>,
    waiting: Arc<AtomicUsize>,
}

impl Lanes {
    /// Lanes running deliveries through `invoker`.
    pub fn new(invoker: Invoker) -> Lanes {
        Lanes {
            invoker,
            lanes: Mutex::default(),
            tasks: Mutex::new(JoinSet::new()),
            stop: watch::channel(false).0,
        }
    }

    /// Deliveries of `webhook` stored and not yet done: its backlog, which
    /// no other webhook's fills.
    pub fn waiting(&self, webhook: &str) -> usize {
        let lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        lanes
            .get(webhook)
            .map_or(0, |lane| lane.waiting.load(Ordering::Relaxed))
    }

    /// Queues delivery `id` of `webhook` behind the others of its lane.
    pub fn push(&self, webhook: &str, id: i64, ack: Option<Duration>) {
        let mut lanes = self.lanes.lock().unwrap_or_else(|p| p.into_inner());
        let lane = lanes.entry(webhook.to_owned()).or_insert_with(|| {
            let (ready, receiver) = mpsc::unbounded_channel();
            let waiting = Arc::<AtomicUsize>::default();
            let lane = Lane {
                invoker: self.invoker.clone(),
                waiting: waiting.clone(),
                stop: self.stop.subscribe(),
            };
            self.tasks
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .spawn(lane.run(receiver));
            LaneHandle { ready, waiting }
        });
        lane.waiting.fetch_add(1, Ordering::Relaxed);
        let _ = lane.ready.send(Ready { id, ack });
    }

    /// Stops every lane: a run going on finishes (up to `grace`); what is
    /// left waits in the database for the next start.
    pub async fn stop(&self, grace: Duration) {
        let _ = self.stop.send(true);
        self.lanes.lock().unwrap_or_else(|p| p.into_inner()).clear();
        let mut tasks = std::mem::take(&mut *self.tasks.lock().unwrap_or_else(|p| p.into_inner()));
        let finished =
            tokio::time::timeout(grace, async { while tasks.join_next().await.is_some() {} }).await;
        if finished.is_err() {
            tracing::warn!("webhook runs still going at shutdown run again at the next start");
            tasks.shutdown().await;
        }
    }
}

struct Lane {
    invoker: Invoker,
    waiting: Arc<AtomicUsize>,
    stop: watch::Receiver<bool>,
}

impl Lane {
    async fn run(mut self, mut ready: mpsc::UnboundedReceiver<Ready>) {
        loop {
            let next = tokio::select! {
                next = ready.recv() => next,
                () = stopping(&mut self.stop) => None,
            };
            let Some(Ready { id, ack }) = next else {
                return;
            };
            if let Err(e) = self.deliver(id, ack).await {
                tracing::error!(delivery = id, "failed to run the webhook delivery: {e:#}");
            }
            self.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Runs delivery `id` until it is done, or the host stops.
    async fn deliver(&mut self, id: i64, ack: Option<Duration>) -> anyhow::Result<()> {
        let Some((arrival, prior)) = deliveries::to_run(self.invoker.db(), id).await? else {
            return Ok(());
        };
        let config = self.invoker.config();
        let Some(hook) = config
            .webhooks
            .as_ref()
            .and_then(|w| w.hook(&arrival.webhook))
            .cloned()
        else {
            tracing::warn!(
                webhook = arrival.webhook,
                delivery = id,
                "the webhook is no longer configured: its delivery waits until it is"
            );
            return Ok(());
        };
        let attempts = hook.retries + 1;
        if let Some(last) = prior
            .last
            .filter(|&last| last == RunOutcome::Succeeded || prior.finished >= attempts)
        {
            return deliveries::finish(self.invoker.db(), id, last, ack).await;
        }
        // Stored while the plugins load at start: run once they are there,
        // with their config values.
        self.invoker.loaded().await;
        let values = match self.invoker.plugin(hook.plugin.as_str()) {
            Some(plugin) => plugin.config.values.clone(),
            None => Vec::new(),
        };
        let event = Arc::new(Event::Webhook(request(&arrival)));
        let mut attempt = prior.finished + 1;
        loop {
            let run = TaskRun {
                plugin: hook.plugin.as_str(),
                schedule: None,
                trigger: StartedBy::Webhook(id),
                invocation: Invocation {
                    name: arrival.webhook.clone(),
                    scheduled_at: arrival.received_at,
                    attempt,
                    config: values.clone(),
                },
                event: Some(event.clone()),
                timeout: hook.timeout,
                follow_ups: &[],
            };
            let record = self.invoker.run(run).await?;
            if record.succeeded() || attempt >= attempts {
                return deliveries::finish(self.invoker.db(), id, record.outcome, ack).await;
            }
            let wait = hook.retry_backoff.saturating_mul(1 << (attempt - 1).min(16));
            tracing::info!(
                webhook = arrival.webhook,
                delivery = id,
                attempt,
                ?wait,
                "retrying the delivery's run"
            );
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = stopping(&mut self.stop) => return Ok(()),
            }
            attempt += 1;
        }
    }
}

/// What the plugin is told of `arrival`.
pub fn request(arrival: &Arrival) -> WebhookRequest {
    WebhookRequest {
        webhook: arrival.webhook.clone(),
        delivery_id: arrival.delivery_id.clone(),
        received_at: arrival.received_at,
        method: arrival.method.clone(),
        path: arrival.path.clone(),
        query: arrival.query.clone(),
        headers: arrival.headers.clone(),
        body: arrival.body.clone(),
    }
}

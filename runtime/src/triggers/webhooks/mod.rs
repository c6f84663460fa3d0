//! The webhook trigger: its own listener (`[webhooks] listen`, never the
//! status page's), where `POST /hooks/NAME` is [`receive`]d — verified
//! with a secret the plugin never sees ([`verify`]), held to its limits
//! ([`rate`]), and stored on disk ([`deliveries`]) before the 2xx — and the
//! lanes that run each stored delivery's task plugin once ([`dispatch`]).
//!
//! The webhooks are read from the config of the moment on each request, so
//! a hot reload adds, changes and removes them at once; only `listen`
//! waits for a restart.

pub mod deliveries;
pub mod dispatch;
pub mod intake;
mod rate;
mod receive;
pub mod status;
pub mod verify;

use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::config::Config;
use crate::os::fd_limit::{self, AcceptBackoff, Connections};
use crate::triggers::{Invoker, Stopped, Trigger};
use dispatch::Lanes;
use intake::Intake;
use receive::Receiver;

/// Connections held at once, at most; fewer under a low open-file limit
/// (half of what it leaves, see [`fd_limit::connection_cap`]). At the cap a
/// new connection sheds the oldest idle one.
const MAX_CONNECTIONS: usize = 512;

/// The most a request's head (request line and headers) may take.
const MAX_HEAD: usize = 16 << 10;

/// Entries waiting for the database writer before new ones get 503.
const INTAKE_QUEUE: usize = 4096;

/// The webhook listener, if `[webhooks]` is configured.
pub fn trigger(invoker: &Invoker) -> Option<Box<dyn Trigger>> {
    invoker.config().webhooks.as_ref()?;
    Some(Box::new(Webhooks {
        invoker: invoker.clone(),
    }))
}

/// `[webhooks] listen` is bound once, at start; the webhooks themselves
/// are read on each request, so a change to them applies at once.
pub fn keep_restart_settings(old: &Config, new: &mut Config) -> Option<String> {
    if new.webhooks == old.webhooks {
        return None;
    }
    let listen = |c: &Config| c.webhooks.as_ref().map(|w| w.listen);
    if listen(old) == listen(new) {
        return Some("[webhooks] changed: applied to the next request".to_owned());
    }
    match (&mut new.webhooks, &old.webhooks) {
        (Some(new), Some(old)) => new.listen = old.listen,
        (new, None) => *new = None,
        (new @ None, Some(old)) => *new = Some(old.clone()),
    }
    Some("webhooks.listen changed: restart to apply (the webhooks themselves are applied)".to_owned())
}

struct Webhooks {
    invoker: Invoker,
}

#[async_trait::async_trait]
impl Trigger for Webhooks {
    fn name(&self) -> &'static str {
        "webhooks"
    }

    async fn run(self: Box<Self>, stopped: Stopped) {
        let config = self.invoker.config();
        let Some(listen) = config.webhooks.as_ref().map(|w| w.listen) else {
            return;
        };
        let listener = match TcpListener::bind(listen).await {
            Ok(listener) => listener,
            Err(e) => {
                tracing::error!("webhooks.listen: cannot listen on {listen}: {e}: no webhook is received");
                return;
            }
        };
        let lanes = Arc::new(Lanes::new(self.invoker.clone()));
        match deliveries::pending(self.invoker.db()).await {
            Ok(pending) => {
                if !pending.is_empty() {
                    tracing::info!(
                        count = pending.len(),
                        "running webhook deliveries stored before a restart"
                    );
                }
                for (id, webhook) in pending {
                    lanes.push(&webhook, id, None);
                }
            }
            Err(e) => tracing::error!("failed to read the stored webhook deliveries: {e:#}"),
        }
        let receiver = Arc::new(Receiver {
            intake: Intake::start(self.invoker.db().clone(), INTAKE_QUEUE),
            invoker: self.invoker.clone(),
            lanes: lanes.clone(),
            rates: Default::default(),
        });
        let bound = listener.local_addr().map_or(listen, |a| a);
        tracing::info!("webhooks listening on http://{bound}/hooks/");
        accept(listener, receiver.clone(), stopped).await;
        receiver.intake.write_counts().await;
        lanes.stop(self.invoker.config().shutdown_grace).await;
    }
}

/// Serves connections on `listener` until `stopped`; then lets requests in
/// progress finish their answer (they are stored or not, never half).
async fn accept(listener: TcpListener, receiver: Arc<Receiver>, mut stopped: Stopped) {
    let held = Connections::new(fd_limit::connection_cap(MAX_CONNECTIONS, 2));
    tracing::debug!(cap = held.cap(), "webhooks: connections held at most");
    let mut backoff = AcceptBackoff::new("webhooks");
    let mut connections = JoinSet::new();
    let (closing, closed) = watch::channel(false);
    loop {
        let accepted = tokio::select! {
            () = &mut stopped => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, _) = match accepted {
            Ok(accepted) => accepted,
            Err(e) => {
                tokio::select! {
                    () = &mut stopped => break,
                    () = backoff.failed(&e) => continue,
                }
            }
        };
        backoff.accepted();
        let admitted = tokio::select! {
            () = &mut stopped => break,
            admitted = held.admit() => admitted,
        };
        let _ = stream.set_nodelay(true);
        let receiver = receiver.clone();
        let timeout = receiver
            .invoker
            .config()
            .webhooks
            .as_ref()
            .map_or(Duration::from_secs(10), |w| w.request_timeout);
        while connections.try_join_next().is_some() {}
        let mut closed = closed.clone();
        connections.spawn(async move {
            let answering = admitted.clone();
            let service = service_fn(move |request| {
                let receiver = receiver.clone();
                let busy = answering.busy();
                async move {
                    let answer = receiver.answer(request).await;
                    drop(busy);
                    Ok::<_, std::convert::Infallible>(answer)
                }
            });
            let connection = http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(timeout)
                .max_buf_size(MAX_HEAD)
                .serve_connection(TokioIo::new(stream), service);
            tokio::pin!(connection);
            let served = tokio::select! {
                served = connection.as_mut() => served,
                () = async { let _ = closed.wait_for(|closed| *closed).await; } => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
                () = admitted.shed() => {
                    // A request that began meanwhile gets its answer.
                    if !admitted.is_busy() {
                        tracing::debug!("webhooks: an idle connection shed for a new one");
                        return;
                    }
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = served {
                tracing::debug!("webhooks: a connection ended: {e}");
            }
        });
    }
    drop(listener);
    // Answers being written finish; idle keep-alive connections close.
    let _ = closing.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while connections.join_next().await.is_some() {}
    })
    .await;
}

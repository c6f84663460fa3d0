//! `mission up`'s pruning: [`retention`](crate::db::retention) applied a
//! minute after start and every ten minutes after, with the compile cache
//! swept in the same rounds.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;

use crate::db::retention::{prune, Policy};
use crate::host::Host;
use crate::triggers::telegram::files;

/// How often `mission up` prunes.
const EVERY: Duration = Duration::from_secs(600);

/// `mission up`'s pruning: a minute after start, then every ten minutes,
/// until `shutdown`, by the config of the moment (a reloaded `[retention]`
/// applies from the next round). Each round also sweeps the compile cache
/// and the chat attachments (in and out).
pub async fn keep_pruned(host: Arc<Host>, shutdown: impl Future<Output = ()>) {
    tokio::pin!(shutdown);
    let mut wait = Duration::from_secs(60);
    loop {
        tokio::select! {
            () = &mut shutdown => return,
            () = tokio::time::sleep(wait) => {}
        }
        wait = EVERY;
        let policy = Policy::of(&host.config());
        match prune(host.db(), &policy, Utc::now()).await {
            Ok(pruned) if pruned.total() > 0 => tracing::info!(?pruned, "pruned old records"),
            Ok(_) => {}
            Err(e) => tracing::warn!("failed to prune old records: {e:#}"),
        }
        // A reply's files left by a call whose answer was never stored go
        // with the attachments.
        let data_dir = host.config().data_dir.clone();
        let cutoff = std::time::SystemTime::now() - policy.retention.attachments;
        let swept = tokio::task::spawn_blocking(move || {
            Ok::<_, std::io::Error>(
                files::sweep(&data_dir.join("attachments"), cutoff)?
                    + files::sweep(&data_dir.join("outbox"), cutoff)?,
            )
        });
        match swept.await {
            Ok(Ok(0)) => {}
            Ok(Ok(removed)) => tracing::info!(removed, "removed chat attachments past their period"),
            Ok(Err(e)) => tracing::warn!("failed to sweep the chat attachments: {e}"),
            Err(e) => tracing::warn!("the attachments sweep panicked: {e}"),
        }
        match host.sweep_compile_cache(policy.retention.compile_cache).await {
            Ok(swept) if swept.files > 0 => tracing::info!(
                files = swept.files,
                bytes = swept.bytes,
                "removed compiled code no plugin uses"
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!("failed to sweep the compile cache: {e:#}"),
        }
    }
}

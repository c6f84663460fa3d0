//! The `claude` CLI as a backend: a one-shot process per call
//! ([`oneshot`]) or a long-lived one per session ([`persistent`]), each a
//! [`process`] of its own whose [`result`] object ends the turn. Both
//! continue the session stored under the plugin's key (`--resume`), and
//! start afresh if the CLI no longer has it.

pub(crate) mod oneshot;
pub(crate) mod persistent;
pub(crate) mod process;
pub(crate) mod result;

use super::permission::Gate;
use super::{log_unstored, sessions, unreadable_session, Backends, Call, Completion, Failure};
use crate::capabilities::claude::stop::STOPPED;
use crate::config::claude::Backend;

/// What the CLI prints when `--resume` names a session it does not have.
const SESSION_NOT_FOUND: &str = "No conversation found with session ID";

/// Asks through the one-shot or the persistent CLI, resuming the session
/// stored under the call's key, and stores the session it answered in.
pub(crate) async fn ask(backends: &Backends, call: &Call<'_>) -> Result<Completion, Failure> {
    let (plugin, request) = (call.scope.plugin, call.request);
    let key = request.session_key.as_deref();
    let resume = match key {
        Some(key) => sessions::session_id(&backends.db, plugin, key)
            .await
            .map_err(|e| unreadable_session(plugin, e))?,
        None => None,
    };
    let (outright, asked_about) = request.cli_tools();
    let (outright, asked_about) = (&outright, &asked_about);
    let ask = |resume: Option<String>| async move {
        if request.backend == Backend::Cli {
            // Dropping the call kills the CLI's process group.
            let asked = oneshot::ask(call, resume.as_deref());
            tokio::select! {
                completion = asked => completion,
                () = call.stop.requested() => Err(Failure::failed(STOPPED.into())),
            }
        } else {
            let gate = Gate {
                approvals: call.approvals,
                asking: call.scope.asking(key),
                outright,
                ask: asked_about,
                place: call.place,
                stop: call.stop,
            };
            backends.pool.ask(call, resume, &gate).await
        }
    };
    let completion = match ask(resume.clone()).await {
        // The CLI's own session store lost it (a wiped home, another
        // machine): start the conversation afresh rather than fail forever.
        Err(Failure::Failed { reason, .. }) if resume.is_some() && reason.contains(SESSION_NOT_FOUND) => {
            tracing::warn!(%plugin, session_key = key, "claude no longer has the session: starting a new one");
            ask(None).await?
        }
        result => result?,
    };
    if let (Some(key), Some(id)) = (key, completion.session_id.as_deref()) {
        let stored = sessions::remember(&backends.db, plugin, key, id).await;
        log_unstored(plugin, key, stored);
    }
    Ok(completion)
}

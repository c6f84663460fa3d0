//! One call of a plugin: a fresh store and instance with the plugin's memory
//! cap, deadline and output limit, and the call's result sorted into what a
//! user needs to know (returned, failed, trapped, timed out, out of memory).

use std::time::{Duration, Instant};

use anyhow::bail;
use wasmtime::{Store, Trap};

use crate::capabilities::http::records::Origin;
use crate::capabilities::{CallContext, CallStats, MessageIo, Services};
use crate::db::text_enum;
use crate::plugin::store::HostState;
use crate::plugin::tools::ToolSpec;
use crate::plugin::{hash::ContentHash, Plugin, PluginPre};
use crate::wasm::bindings::{chat, task, tools};
use crate::wasm::limits::{epoch_deadline, DeadlineExceeded};
use crate::wasm::output::{cut, CapturedOutput};

pub use chat::mission::plugin::chat_types::{Message, ParseMode, Reply};
pub use task::mission::plugin::task_types::Invocation;
pub use tools::mission::plugin::tool_types::{ToolCall, ToolOutput};

/// The most of a summary, an error or a reply a plugin hands back that is
/// kept, logged, stored or sent: the rest is cut, and the text says so.
pub const MAX_RESULT_TEXT: usize = 64 << 10;

/// What a caller commits in the same transaction as a chat plugin's answer
/// (see [`Host::chat`](crate::host::Host::chat)), given the reply if there is
/// one: the bot stores the reply it is about to send.
pub type AnswerRecord =
    Box<dyn FnOnce(&rusqlite::Transaction<'_>, Option<&Reply>) -> rusqlite::Result<()> + Send>;

/// Why a call produced no result.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// The plugin ran to the end and returned an error.
    #[error("the plugin returned an error: {message}")]
    Failed {
        /// The plugin's error text.
        message: String,
    },
    /// The plugin trapped (a panic, an `unreachable`, a bad memory access).
    #[error("the plugin trapped: {trap}")]
    Trapped {
        /// What the trap was.
        trap: String,
    },
    /// The call ran past its deadline and was interrupted.
    #[error("the plugin timed out after {}", crate::config::units::HumanDuration(*after))]
    TimedOut {
        /// The deadline it had.
        after: Duration,
    },
    /// The plugin tried to grow its memory past its limit.
    #[error("the plugin ran out of memory: its limit is {}", crate::config::units::ByteSize(*limit))]
    OutOfMemory {
        /// The limit in bytes.
        limit: u64,
    },
}

impl CallError {
    /// A one-word name for run records and `--json` output.
    pub fn kind(&self) -> &'static str {
        match self {
            CallError::Failed { .. } => "failed",
            CallError::Trapped { .. } => "trapped",
            CallError::TimedOut { .. } => "timed_out",
            CallError::OutOfMemory { .. } => "out_of_memory",
        }
    }
}

/// What one call did.
#[derive(Debug, Clone)]
pub struct CallReport<T> {
    /// The plugin's result, or why there is none.
    pub result: Result<T, CallError>,
    /// What it printed.
    pub output: CapturedOutput,
    /// How long it took, instantiation included.
    pub duration: Duration,
    /// What it drew on through its capabilities.
    pub stats: CallStats,
}

text_enum! {
    /// Which part a chat plugin plays for a message.
    pub enum HandlerRole {
        /// It answers: its reply is sent.
        Live = "live",
        /// It runs beside the live handler: its reply is recorded, never sent,
        /// and Claude's tool use cannot be asked about.
        Shadow = "shadow",
    }
}

/// A chat plugin's instance kept between the messages of one chat (the
/// `warm` instance mode), with the store it lives in.
pub struct WarmInstance {
    store: Store<HostState>,
    instance: chat::Chat,
    hash: ContentHash,
}

/// Gives `store` a fresh deadline `timeout` from now, a fresh output limit,
/// a fresh HTTP request count and fresh stats, for the call about to start
/// for `origin` in `context`.
fn arm(store: &mut Store<HostState>, timeout: Duration, origin: Origin, context: CallContext) {
    store.data().output.restart();
    store.data().files.restart();
    store.data_mut().capabilities.begin(context);
    store
        .data_mut()
        .outbound
        .arm(tokio::time::Instant::now() + timeout, origin);
    let mut deadline = epoch_deadline(Instant::now() + timeout);
    store.epoch_deadline_callback(move |_| deadline());
    store.set_epoch_deadline(1);
}

impl Plugin {
    /// Runs a task plugin's `run` once for `event` (what started it, if
    /// more than its invocation says) with the deadline `timeout`, for
    /// `origin` (its run record); returns the summary it reports.
    pub async fn run_task(
        &self,
        services: &Services,
        invocation: &Invocation,
        context: CallContext,
        timeout: Duration,
        origin: Origin,
    ) -> anyhow::Result<CallReport<String>> {
        let PluginPre::Task(pre) = &self.pre else {
            bail!(
                "plugin `{}` is a {} plugin, not a task",
                self.name(),
                self.config.world
            );
        };
        let mut store = self.new_store(services);
        arm(&mut store, timeout, origin, context);
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_run(&mut store, invocation).await
        })
        .await;
        let result = result.map(|call| {
            call.map(|ran| {
                ran.map(|outcome| {
                    let mut summary = outcome.summary;
                    cut(&mut summary, MAX_RESULT_TEXT);
                    summary
                })
            })
        });
        Ok(self.report(&store, started, timeout, result))
    }

    /// Hands one chat message, with what it has beside it (`io`), to a chat
    /// plugin's `handle`, in `role`; returns its reply. With `warm`, the instance kept there (if it is of
    /// this version) is used instead of a fresh one, and the instance is
    /// kept there after the call unless it trapped, timed out or ran out of
    /// memory.
    pub async fn handle_message(
        &self,
        services: &Services,
        message: &Message,
        io: MessageIo,
        role: HandlerRole,
        mut warm: Option<&mut Option<WarmInstance>>,
    ) -> anyhow::Result<CallReport<Option<Reply>>> {
        let PluginPre::Chat(pre) = &self.pre else {
            bail!(
                "plugin `{}` is a {} plugin, not a chat handler",
                self.name(),
                self.config.world
            );
        };
        let timeout = self.config.limits.timeout;
        let (mut store, mut instance) = match warm.as_deref_mut().and_then(Option::take) {
            Some(kept) if kept.hash == self.hash => (kept.store, Some(kept.instance)),
            _ => (self.new_store(services), None),
        };
        let context = CallContext {
            chat: Some(message.chat_id),
            shadow: role == HandlerRole::Shadow,
            io,
            ..CallContext::default()
        };
        arm(&mut store, timeout, Origin::Chat(message.chat_id), context);
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, async {
            if instance.is_none() {
                instance = Some(pre.instantiate_async(&mut store).await?);
            }
            let instance = instance.as_ref().expect("instantiated above");
            instance.call_handle(&mut store, message).await
        })
        .await;
        let reusable = matches!(result, Ok(Ok(_)));
        let result = result.map(|call| {
            call.map(|answered| {
                answered.map(|reply| {
                    reply.map(|mut reply| {
                        cut(&mut reply.text, MAX_RESULT_TEXT);
                        reply
                    })
                })
            })
        });
        let report = self.report(&store, started, timeout, result);
        if let (Some(warm), true, Some(instance)) = (warm, reusable, instance) {
            *warm = Some(WarmInstance {
                store,
                instance,
                hash: self.hash.clone(),
            });
        }
        Ok(report)
    }

    /// Reads a tools plugin's `tools` export, in a fresh instance under
    /// its limits, and checks the list.
    pub async fn list_tools(&self, services: &Services) -> Result<Vec<ToolSpec>, String> {
        let PluginPre::Tools(pre) = &self.pre else {
            return Err(format!(
                "it is a {} plugin, not a tools plugin",
                self.config.world
            ));
        };
        let timeout = self.config.limits.timeout;
        let mut store = self.new_store(services);
        arm(&mut store, timeout, Origin::Unrecorded, CallContext::default());
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_tools(&mut store).await.map(Ok)
        })
        .await;
        let listed = self.report(&store, started, timeout, result).result;
        let listed = listed.map_err(|e| format!("its `tools` export: {e}"))?;
        ToolSpec::checked(
            listed
                .into_iter()
                .map(|t| (t.name, t.description, t.input_schema)),
        )
    }

    /// Runs a tools plugin's `call` once for `call`, in a fresh instance
    /// with its own deadline, for `context` (the chat or run Claude was
    /// asked for) and `origin` (what its HTTP requests are recorded under).
    pub async fn call_tool(
        &self,
        services: &Services,
        call: &ToolCall,
        context: CallContext,
        origin: Origin,
    ) -> anyhow::Result<CallReport<ToolOutput>> {
        let PluginPre::Tools(pre) = &self.pre else {
            bail!(
                "plugin `{}` is a {} plugin, not a tools plugin",
                self.name(),
                self.config.world
            );
        };
        let timeout = self.config.limits.timeout;
        let mut store = self.new_store(services);
        arm(&mut store, timeout, origin, context);
        let started = Instant::now();
        let result = tokio::time::timeout(timeout, async {
            let instance = pre.instantiate_async(&mut store).await?;
            instance.call_call(&mut store, call).await
        })
        .await;
        let result = result.map(|call| {
            call.map(|answered| {
                answered.map(|mut output| {
                    match &mut output {
                        ToolOutput::Text(text) | ToolOutput::Json(text) => cut(text, MAX_RESULT_TEXT),
                    }
                    output
                })
            })
        });
        Ok(self.report(&store, started, timeout, result))
    }

    fn new_store(&self, services: &Services) -> Store<HostState> {
        let mut store = Store::new(&self.engine, HostState::new(&self.config, services));
        store.limiter(|state| &mut state.limiter);
        store
    }

    fn report<T>(
        &self,
        store: &Store<HostState>,
        started: Instant,
        timeout: Duration,
        result: Result<wasmtime::Result<Result<T, String>>, tokio::time::error::Elapsed>,
    ) -> CallReport<T> {
        let memory = self.config.limits.memory;
        let state = store.data();
        let result = match result {
            Ok(Ok(Ok(value))) => Ok(value),
            Ok(Ok(Err(mut message))) => {
                cut(&mut message, MAX_RESULT_TEXT);
                Err(CallError::Failed { message })
            }
            Err(_elapsed) => Err(CallError::TimedOut { after: timeout }),
            Ok(Err(_)) if state.limiter.exceeded() => Err(CallError::OutOfMemory { limit: memory }),
            Ok(Err(e)) if e.is::<DeadlineExceeded>() => Err(CallError::TimedOut { after: timeout }),
            Ok(Err(e)) => {
                let mut logged = format!("{e:?}");
                cut(&mut logged, MAX_RESULT_TEXT);
                tracing::warn!(plugin = %self.name(), "call trapped: {logged}");
                let mut trap = match e.downcast_ref::<Trap>() {
                    Some(trap) => trap.to_string(),
                    None => format!("{e:#}"),
                };
                cut(&mut trap, MAX_RESULT_TEXT);
                Err(CallError::Trapped { trap })
            }
        };
        CallReport {
            result,
            output: state.output.finish(),
            duration: started.elapsed(),
            stats: CallStats {
                files_written: state.files.written(),
                ..state.capabilities.stats().clone()
            },
        }
    }
}

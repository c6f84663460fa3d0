//! One Claude call's scope: who asks, under which grant, for which chat or
//! task run. The `claude` import makes it once per call from the plugin's
//! config and its `CallContext`; admission, the backends and the ledger
//! read it, and it gives the approvals desk its [`Asking`] and the
//! tool-call gateway its [`ToolCaller`].

use super::draft::Draft;
use super::tools::ToolCaller;
use crate::approvals::Asking;
use crate::capabilities::CallRun;
use crate::config::claude::{Budget, ClaudeGrant};
use crate::config::{HistoryPolicy, PluginName};

/// The plugin a tools plugin's Claude call is made for: the one whose
/// Claude called the tool. Its budgets count what the call spends, and a
/// spent one refuses it.
#[derive(Debug, Clone, PartialEq)]
pub struct OnBehalfOf {
    /// The calling plugin.
    pub plugin: PluginName,
    /// Its `[plugins.NAME.claude]` budget.
    pub budget: Budget,
}

/// Who is asking: the plugin, what its config allows it, and what the call
/// serves.
pub struct CallScope<'a> {
    /// The plugin.
    pub plugin: &'a PluginName,
    /// Its `[plugins.NAME.claude]` grant.
    pub grant: &'a ClaudeGrant,
    /// How much of a session the API backend sends again.
    pub history: HistoryPolicy,
    /// The chat the call serves, where a tool use is asked about.
    pub chat: Option<i64>,
    /// A task's run, and how long its tool use waits for a person.
    pub run: Option<CallRun>,
    /// Whether the call is a shadow handler's: it waits in its own line
    /// and can ask nobody.
    pub shadow: bool,
    /// Where Claude's text is shown while it is being written, for a call
    /// that streams (`ask-streamed` in a chat that shows it).
    pub draft: Option<&'a Draft>,
    /// The plugin the call is made for, if a tool of the asker's makes it.
    pub on_behalf_of: Option<&'a OnBehalfOf>,
}

impl<'a> CallScope<'a> {
    /// Who the approvals desk asks for, in the session `key`.
    pub(crate) fn asking(&self, key: Option<&'a str>) -> Asking<'a> {
        Asking {
            plugin: self.plugin,
            session_key: key,
            chat: self.chat,
            run: self.run.map(|run| run.id),
            wait: self.run.map(|run| run.approval_wait),
            shadow: self.shadow,
        }
    }

    /// Who the plugins' tools are called for (the gateway keeps it as long
    /// as a CLI process holds its pass).
    pub(crate) fn tool_caller(&self) -> ToolCaller {
        ToolCaller {
            plugin: self.plugin.clone(),
            tools_from: self.grant.tools_from.clone(),
            chat: self.chat,
            run: self.run.map(|run| run.id),
            shadow: self.shadow,
        }
    }
}

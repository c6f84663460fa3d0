//! What came of one tool use asked about, as stored in `tool_approvals`.

use crate::db::text_enum;

text_enum! {
    /// What came of one tool use asked about.
    pub enum ApprovalOutcome {
        /// Posted in the chat, no answer yet.
        Pending = "pending",
        /// A person allowed this one use.
        AllowedOnce = "allowed_once",
        /// A person allowed the tool for the rest of the conversation.
        AllowedConversation = "allowed_conversation",
        /// Allowed without asking: a person allowed it earlier in this conversation.
        AllowedEarlier = "allowed_earlier",
        /// A person denied it.
        Denied = "denied",
        /// Nobody answered in time.
        TimedOut = "timed_out",
        /// There was nobody to ask (a task, a shadow handler, no bot).
        NoOneToAsk = "no_one_to_ask",
        /// The call or the host ended while waiting.
        Abandoned = "abandoned",
    }
}

impl ApprovalOutcome {
    /// Whether the tool ran.
    pub fn allowed(self) -> bool {
        matches!(
            self,
            ApprovalOutcome::AllowedOnce
                | ApprovalOutcome::AllowedConversation
                | ApprovalOutcome::AllowedEarlier
        )
    }
}

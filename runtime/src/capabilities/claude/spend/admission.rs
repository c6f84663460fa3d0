//! Admission: what a call must pass before it may spend. Before it waits,
//! `[claude.credit] then` for a call that would draw from a spent credit
//! ([`when_credit_spent`]); then a place in line ([`Place`]) under
//! `max_concurrent`, and only then the budgets ([`admit`]), so a call that
//! waited sees what the calls before it spent.

use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;

use super::{credit, ledger};
use crate::capabilities::claude::request::Request;
use crate::capabilities::claude::scope::CallScope;
use crate::config::claude::{Backend, Budget, ClaudeConfig};
use crate::config::credit::WhenSpent;
use crate::db::Database;
use crate::os::zone::host_zone;
use crate::wasm::bindings::CapabilityError;
use ledger::CallOutcome;

/// A call's place in line (a permit of `max_concurrent`), given up while
/// the call waits for a person to allow a tool use, so a person away does
/// not hold up other chats' calls, and taken again before it goes on.
pub(crate) struct Place {
    line: Arc<Semaphore>,
    permit: std::sync::Mutex<Option<OwnedSemaphorePermit>>,
}

impl Place {
    /// The place `permit` holds in `line`.
    pub fn held(line: Arc<Semaphore>, permit: OwnedSemaphorePermit) -> Place {
        Place {
            line,
            permit: std::sync::Mutex::new(Some(permit)),
        }
    }

    /// Gives the place up (until [`Place::retake`]).
    pub fn give_up(&self) {
        self.permit.lock().unwrap_or_else(|p| p.into_inner()).take();
    }

    /// Waits for a place again, until `deadline`; whether it got one.
    pub async fn retake(&self, deadline: Instant) -> bool {
        match tokio::time::timeout_at(deadline, self.line.clone().acquire_owned()).await {
            Ok(Ok(permit)) => {
                *self.permit.lock().unwrap_or_else(|p| p.into_inner()) = Some(permit);
                true
            }
            _ => false,
        }
    }
}

/// A call let through: its place, and how much the tightest budget has
/// left.
pub(crate) struct Admitted {
    pub place: Place,
    pub budget_left: Option<f64>,
}

/// A call turned away: its ledger outcome and what the plugin gets.
pub(crate) struct Refusal {
    pub outcome: CallOutcome,
    pub error: CapabilityError,
}

/// Waits for a place in `line` (until `deadline`), then checks the budgets
/// that count `scope`'s call against the `global` ones.
pub(crate) async fn admit(
    db: &Database,
    line: &Arc<Semaphore>,
    scope: &CallScope<'_>,
    global: Budget,
    deadline: Instant,
) -> Result<Admitted, Refusal> {
    let Ok(Ok(permit)) = tokio::time::timeout_at(deadline, line.clone().acquire_owned()).await else {
        return Err(Refusal {
            outcome: CallOutcome::TimedOut,
            error: CapabilityError::TimedOut,
        });
    };
    let budget = budget_levels(db, scope, global, Utc::now(), host_zone())
        .await
        .map(ledger::BudgetStatus::of);
    match budget {
        Err(e) => {
            tracing::error!(plugin = %scope.plugin, "checking the budgets failed: {e:#}");
            Err(Refusal {
                outcome: CallOutcome::Failed,
                error: CapabilityError::Failed("checking the budgets failed".into()),
            })
        }
        Ok(ledger::BudgetStatus {
            spent: Some(reason), ..
        }) => Err(Refusal {
            outcome: CallOutcome::OverBudget,
            error: CapabilityError::OverBudget(reason),
        }),
        Ok(status) => Ok(Admitted {
            place: Place::held(line.clone(), permit),
            budget_left: status.left,
        }),
    }
}

/// The budgets that count `scope`'s call: its own, the `global` ones, and
/// those of the plugin it is made for, if any.
pub(crate) async fn budget_levels(
    db: &Database,
    scope: &CallScope<'_>,
    global: Budget,
    now: chrono::DateTime<Utc>,
    zone: chrono_tz::Tz,
) -> anyhow::Result<Vec<ledger::BudgetLevel>> {
    let mut levels = ledger::budget_levels(db, scope.plugin, scope.grant.budget, global, now, zone).await?;
    if let Some(caller) = scope.on_behalf_of {
        let global = Budget::default();
        levels.extend(ledger::budget_levels(db, &caller.plugin, caller.budget, global, now, zone).await?);
    }
    Ok(levels)
}

/// What `[claude.credit] then` says, for a call that would draw from a
/// credit that is spent: `Err` with the reason it is refused (`stop`,
/// or `api` for a plugin that may not use the API backend or asks for
/// tools), else the call goes on, rerouted to the API for `api`.
pub(crate) async fn when_credit_spent(
    db: &Database,
    config: &ClaudeConfig,
    scope: &CallScope<'_>,
    request: &mut Request,
) -> Result<(), String> {
    let Some(settings) = config
        .credit
        .filter(|_| credit::draws(config, request.backend, None))
    else {
        return Ok(());
    };
    let (now, zone) = (Utc::now(), host_zone());
    let status = match credit::status(db, &settings, now, zone).await {
        Ok(status) if status.spent() => status,
        Ok(_) => return Ok(()),
        Err(e) => {
            tracing::error!(plugin = %scope.plugin, "reading the Agent SDK credit failed: {e:#}");
            return Ok(());
        }
    };
    let spent = format!(
        "the Agent SDK credit of ${:.2} is spent until {}",
        settings.monthly_usd,
        status.period.1.with_timezone(&zone).format("%b %-d")
    );
    match settings.then {
        WhenSpent::Stop => Err(format!(
            "{spent}: calls through the claude CLI stop until then (claude.credit.then = \"stop\")"
        )),
        WhenSpent::Api if !scope.grant.allowed_backends(config).contains(&Backend::Api) => Err(format!(
            "{spent}, and plugin `{}`'s grant does not allow the api backend to take over \
             (claude.credit.then = \"api\")",
            scope.plugin
        )),
        WhenSpent::Api if !request.tools.is_empty() || !request.ask_tools.is_empty() => Err(format!(
            "{spent}, and the api backend that would take over runs no tools (claude.credit.then = \"api\")"
        )),
        WhenSpent::Api => {
            tracing::info!(plugin = %scope.plugin, "{spent}: this call goes to the API backend");
            request.backend = Backend::Api;
            Ok(())
        }
        WhenSpent::Continue => {
            tracing::warn!(plugin = %scope.plugin, "{spent}: the call goes on as extra usage at API rates");
            Ok(())
        }
    }
}

//! Due times that did not run: how many, the first and the last, and why
//! (the host was down, the previous run was still going, the machine
//! slept).

use chrono::{DateTime, Utc};

use crate::triggers::schedule::Schedule;

/// The most missed due times counted at once.
const MAX_COUNTED: u32 = 10_000;

/// Due times of a schedule that did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Missed {
    /// Why.
    pub reason: MissReason,
    /// The first of them.
    pub first: DateTime<Utc>,
    /// The last of them: what the next count starts after, so no due time
    /// is counted twice.
    pub last: DateTime<Utc>,
    /// How many (at most [`MAX_COUNTED`]).
    pub count: u32,
}

/// Why due times did not run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MissReason {
    /// The host was down, and `catch_up = "none"`.
    HostDown,
    /// The previous run was still going, and `overlap = "skip"`.
    Overlap,
    /// The wall clock jumped past them: the machine slept (one run made up
    /// for them on wake).
    Slept,
}

impl MissReason {
    /// Its name in records.
    pub fn as_str(self) -> &'static str {
        match self {
            MissReason::HostDown => "host_down",
            MissReason::Overlap => "overlap",
            MissReason::Slept => "slept",
        }
    }
}

/// The due times of `schedule` after `after` up to `until`, if any, as
/// missed for `reason` (counted up to [`MAX_COUNTED`]; the last is the
/// latest, counted or not).
pub(super) fn due_times_between(
    schedule: &Schedule,
    after: DateTime<Utc>,
    until: DateTime<Utc>,
    reason: MissReason,
) -> Option<Missed> {
    let first = schedule
        .timing
        .next_after(after, schedule.zone)
        .filter(|t| *t <= until)?;
    let mut count = 1;
    let mut at = first;
    while count < MAX_COUNTED {
        match schedule.timing.next_after(at, schedule.zone) {
            Some(next) if next <= until => {
                count += 1;
                at = next;
            }
            _ => break,
        }
    }
    let last = match count {
        MAX_COUNTED => schedule
            .timing
            .previous_at_or_before(until, schedule.zone)
            .unwrap_or(at),
        _ => at,
    };
    Some(Missed {
        reason,
        first,
        last,
        count,
    })
}

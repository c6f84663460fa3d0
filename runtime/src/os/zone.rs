//! The machine's time zone, which schedules without a `timezone`, the
//! Claude budgets' days and months, and the page's times are read in.

use chrono_tz::Tz;

/// The host's time zone (from `TZ` or the system), or UTC if it has none
/// that chrono-tz knows.
pub fn host_zone() -> Tz {
    std::env::var("TZ")
        .ok()
        .and_then(|name| name.trim_start_matches(':').parse().ok())
        .or_else(|| {
            iana_time_zone::get_timezone()
                .ok()
                .and_then(|name| name.parse().ok())
        })
        .unwrap_or(Tz::UTC)
}

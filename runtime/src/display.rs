//! How the host shows a person times, durations, sizes and errors: in host time
//! or a schedule's zone (named), `1.4 s`, and an error in brief with where
//! the rest of it is. The status page and each trigger's section of it
//! use these.

use std::time::Duration;

use chrono::{DateTime, Local, Utc};

/// The lines of an error the page shows.
pub const BRIEF_LINES: usize = 3;
/// The characters of each.
pub const BRIEF_LINE_CHARS: usize = 200;

/// `error` cut to its first few lines, each cut short, saying where the
/// whole of it is: the page stays small whatever a plugin returned.
pub fn brief(error: &str, run: Option<i64>) -> String {
    let mut lines = error.lines();
    let mut shown: Vec<String> = Vec::new();
    let mut cut = false;
    for line in lines.by_ref().take(BRIEF_LINES) {
        let kept: String = line.chars().take(BRIEF_LINE_CHARS).collect();
        cut |= kept.len() < line.len();
        shown.push(kept);
    }
    cut |= lines.next().is_some();
    let mut brief = shown.join("\n");
    if cut {
        brief.push_str(&match run {
            Some(id) => format!(" … (the whole error: mission runs --id {id})"),
            None => " … (the whole error is in the host's log)".to_owned(),
        });
    }
    brief
}

/// `2026-12-01 07:00:00 CET`: a time in `zone`, which it names.
pub fn in_zone(time: DateTime<Utc>, zone: chrono_tz::Tz) -> String {
    time.with_timezone(&zone)
        .format("%Y-%m-%d %H:%M:%S %Z")
        .to_string()
}

/// `2026-12-01 07:30:00`, host time.
pub fn local(time: DateTime<Utc>) -> String {
    time.with_timezone(&Local).format("%Y-%m-%d %H:%M:%S").to_string()
}

/// `1.4 s`, `250 ms`.
pub fn seconds(took: Duration) -> String {
    match took.as_millis() {
        ms if ms < 1000 => format!("{ms} ms"),
        ms => format!("{:.1} s", ms as f64 / 1000.0),
    }
}

/// `1.5 MiB` and the like.
pub fn bytes(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    match unit {
        0 => format!("{bytes} B"),
        _ => format!("{value:.1} {}", UNITS[unit]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_error_is_shown_in_brief_with_where_the_rest_is() {
        let error = format!("{}\nsecond\nthird\nfourth", "x".repeat(5 << 20));
        let shown = brief(&error, Some(42));
        assert!(shown.len() < 300, "{} bytes", shown.len());
        assert!(shown.starts_with(&"x".repeat(200)));
        assert!(shown.contains("second\nthird …"), "{shown}");
        assert!(
            shown.ends_with("(the whole error: mission runs --id 42)"),
            "{shown}"
        );
        assert_eq!(brief("short\nand sweet", Some(1)), "short\nand sweet");
    }
}

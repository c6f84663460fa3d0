//! When an imported job runs: launchd's `StartCalendarInterval` and
//! `StartInterval` as cron expressions (or a fixed interval where no cron
//! step can say it), each remembering the key it came from.

use std::collections::BTreeSet;
use std::time::Duration;

use plist::{Dictionary, Value};

use super::toml_string;
use crate::config::units::HumanDuration;

/// When an imported schedule fires, and which launchd key said so.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImportedTiming {
    /// A cron expression.
    Cron {
        /// The expression.
        expr: String,
        /// Where it came from, for the file's comment.
        from: String,
    },
    /// A fixed interval (`StartInterval` that no cron step can say).
    Every {
        /// The interval.
        interval: Duration,
        /// Where it came from.
        from: String,
    },
}

/// The fields of one calendar entry in cron order (minute, hour, day,
/// month, weekday); `None` is a wildcard.
type CalendarFields = [Option<BTreeSet<u32>>; 5];

const CALENDAR_KEYS: [(&str, u32, u32); 5] = [
    ("Minute", 0, 59),
    ("Hour", 0, 23),
    ("Day", 1, 31),
    ("Month", 1, 12),
    ("Weekday", 0, 7),
];

/// `StartCalendarInterval` (one dictionary, or an array of them) as cron
/// expressions: entries that differ in one field only share an expression
/// with a list in that field; the rest get one each.
pub fn calendar_timings(value: &Value) -> Result<Vec<ImportedTiming>, String> {
    let entries: Vec<&Dictionary> = match value {
        Value::Dictionary(d) => vec![d],
        Value::Array(items) => items
            .iter()
            .map(Value::as_dictionary)
            .collect::<Option<_>>()
            .ok_or("StartCalendarInterval: every item must be a dictionary")?,
        _ => return Err("StartCalendarInterval: must be a dictionary or an array of them".into()),
    };
    if entries.is_empty() {
        return Err("StartCalendarInterval: an empty array never fires".into());
    }
    let mut merged: Vec<(CalendarFields, Vec<String>)> = Vec::new();
    for entry in entries {
        merged.push((calendar_fields(entry)?, vec![describe(entry)]));
    }
    // Merge pairs differing in exactly one listed field until none do.
    'again: loop {
        for i in 0..merged.len() {
            for j in i + 1..merged.len() {
                if let Some(field) = sole_difference(&merged[i].0, &merged[j].0) {
                    let (mut other, from) = merged.remove(j);
                    if let (Some(into), Some(from_set)) = (&mut merged[i].0[field], other[field].take()) {
                        into.extend(from_set);
                    }
                    merged[i].1.extend(from);
                    continue 'again;
                }
            }
        }
        break;
    }
    Ok(merged
        .into_iter()
        .map(|(fields, from)| ImportedTiming::Cron {
            expr: fields
                .iter()
                .map(|f| match f {
                    None => "*".to_owned(),
                    Some(set) => set.iter().map(u32::to_string).collect::<Vec<_>>().join(","),
                })
                .collect::<Vec<_>>()
                .join(" "),
            from: format!("StartCalendarInterval {}", from.join(", ")),
        })
        .collect())
}

/// One calendar dictionary as fields; `Weekday` 7 is Sunday, 0.
fn calendar_fields(entry: &Dictionary) -> Result<CalendarFields, String> {
    if let Some(unknown) = entry
        .keys()
        .find(|k| !CALENDAR_KEYS.iter().any(|(name, ..)| name == k))
    {
        return Err(format!(
            "StartCalendarInterval: unknown key `{unknown}` (launchd knows Minute, Hour, Day, Weekday, Month)"
        ));
    }
    let mut fields: CalendarFields = Default::default();
    for (field, (key, low, high)) in fields.iter_mut().zip(CALENDAR_KEYS) {
        if let Some(value) = entry.get(key) {
            let n = value
                .as_signed_integer()
                .filter(|n| (i64::from(low)..=i64::from(high)).contains(n))
                .ok_or_else(|| {
                    format!("StartCalendarInterval.{key}: must be a number from {low} to {high}")
                })?;
            let n = if key == "Weekday" && n == 7 { 0 } else { n as u32 };
            *field = Some(BTreeSet::from([n]));
        }
    }
    Ok(fields)
}

/// The one field two entries differ in, if they differ in exactly one and
/// neither is a wildcard there.
fn sole_difference(a: &CalendarFields, b: &CalendarFields) -> Option<usize> {
    let differing: Vec<usize> = (0..5).filter(|&i| a[i] != b[i]).collect();
    match differing[..] {
        [field] if a[field].is_some() && b[field].is_some() => Some(field),
        _ => None,
    }
}

/// `{Hour=9, Minute=0}`, for the schedule file's comment.
fn describe(entry: &Dictionary) -> String {
    let fields: Vec<String> = CALENDAR_KEYS
        .iter()
        .filter_map(|(key, ..)| {
            let value = entry.get(key)?.as_signed_integer()?;
            Some(format!("{key}={value}"))
        })
        .collect();
    format!("{{{}}}", fields.join(", "))
}

/// `StartInterval` seconds as a cron step when it divides the hour or the
/// day, else as a fixed interval.
pub fn interval_timing(seconds: u64) -> ImportedTiming {
    let from = format!("StartInterval {seconds}");
    let cron = |expr: String| ImportedTiming::Cron {
        expr,
        from: from.clone(),
    };
    match (seconds % 60, seconds / 60) {
        (0, 1) => cron("* * * * *".into()),
        (0, minutes) if minutes < 60 && 60 % minutes == 0 => cron(format!("*/{minutes} * * * *")),
        (0, 60) => cron("0 * * * *".into()),
        (0, minutes) if minutes % 60 == 0 && minutes / 60 < 24 && 24 % (minutes / 60) == 0 => {
            cron(format!("0 */{} * * *", minutes / 60))
        }
        (0, 1440) => cron("0 0 * * *".into()),
        _ => ImportedTiming::Every {
            interval: Duration::from_secs(seconds),
            from,
        },
    }
}

impl ImportedTiming {
    /// The schedule file's line: `cron = "..."` or `every = "..."`.
    pub fn toml_line(&self) -> String {
        match self {
            ImportedTiming::Cron { expr, .. } => format!("cron = {}", toml_string(expr)),
            ImportedTiming::Every { interval, .. } => {
                format!("every = {}", toml_string(&HumanDuration(*interval).to_string()))
            }
        }
    }

    /// Which launchd key it came from.
    pub fn from(&self) -> &str {
        match self {
            ImportedTiming::Cron { from, .. } | ImportedTiming::Every { from, .. } => from,
        }
    }
}

impl std::fmt::Display for ImportedTiming {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ImportedTiming::Cron { expr, .. } => f.write_str(expr),
            ImportedTiming::Every { interval, .. } => write!(f, "every {}", HumanDuration(*interval)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crons(xml: &str) -> Vec<String> {
        let value = Value::from_reader_xml(xml.as_bytes()).unwrap();
        calendar_timings(&value)
            .unwrap()
            .iter()
            .map(ToString::to_string)
            .collect()
    }

    #[test]
    fn a_missing_calendar_key_is_a_wildcard_and_weekday_7_is_sunday() {
        assert_eq!(
            crons("<dict><key>Hour</key><integer>9</integer></dict>"),
            ["* 9 * * *"]
        );
        assert_eq!(
            crons(
                "<dict><key>Minute</key><integer>30</integer><key>Weekday</key><integer>7</integer></dict>"
            ),
            ["30 * * * 0"]
        );
    }

    #[test]
    fn entries_differing_in_one_field_share_a_list_and_others_stay_apart() {
        let days = |d: &[u32]| {
            d.iter()
                .map(|d| format!("<dict><key>Weekday</key><integer>{d}</integer><key>Hour</key><integer>9</integer><key>Minute</key><integer>0</integer></dict>"))
                .collect::<String>()
        };
        assert_eq!(
            crons(&format!("<array>{}</array>", days(&[5, 1, 3]))),
            ["0 9 * * 1,3,5"]
        );
        let mixed = "<array>\
            <dict><key>Hour</key><integer>9</integer><key>Minute</key><integer>0</integer></dict>\
            <dict><key>Hour</key><integer>17</integer><key>Minute</key><integer>30</integer></dict>\
            <dict><key>Hour</key><integer>17</integer><key>Minute</key><integer>0</integer></dict>\
            </array>";
        // 9:00 and 17:00 share the minute; 17:30 and 17:00 share the hour:
        // one merge is taken, and what is left stands alone.
        let got = crons(mixed);
        assert_eq!(got.len(), 2, "{got:?}");
        assert!(got.contains(&"0 9,17 * * *".to_owned()), "{got:?}");
        assert!(got.contains(&"30 17 * * *".to_owned()), "{got:?}");
    }

    #[test]
    fn a_calendar_value_out_of_range_is_named() {
        let value =
            Value::from_reader_xml("<dict><key>Hour</key><integer>24</integer></dict>".as_bytes()).unwrap();
        let error = calendar_timings(&value).unwrap_err();
        assert_eq!(error, "StartCalendarInterval.Hour: must be a number from 0 to 23");
    }

    #[test]
    fn an_interval_is_a_cron_step_when_it_divides_the_hour_or_day() {
        let shown = |s| interval_timing(s).to_string();
        assert_eq!(shown(60), "* * * * *");
        assert_eq!(shown(900), "*/15 * * * *");
        assert_eq!(shown(3600), "0 * * * *");
        assert_eq!(shown(7200), "0 */2 * * *");
        assert_eq!(shown(86400), "0 0 * * *");
        assert_eq!(shown(5400), "every 90m");
        assert_eq!(shown(45), "every 45s");
        assert_eq!(shown(420), "every 7m");
    }
}

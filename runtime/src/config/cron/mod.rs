//! Cron expressions: five fields (or an `@` macro) read as Vixie cron and
//! cronie read them, with the next and previous fire times in a time zone.

mod words;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::parser::{CronParser, Seconds, Year};

/// A standard 5-field cron expression, with names (`jan`, `mon`), ranges,
/// steps, lists and the `@hourly` .. `@yearly` macros; day-of-week 0 and 7
/// are Sunday. The day fields combine as in Vixie cron and cronie: if
/// either one begins with `*` (`*`, `*/2`) a day must match both; otherwise
/// a day matching either fires (`0 0 13 * fri`: every Friday and every 13th).
#[derive(Debug, Clone)]
pub struct CronExpr {
    text: String,
    cron: croner::Cron,
}

impl PartialEq for CronExpr {
    fn eq(&self, other: &CronExpr) -> bool {
        self.text == other.text
    }
}

impl CronExpr {
    /// Parses `text`; the error says what is wrong with it.
    pub fn parse(text: &str) -> Result<CronExpr, String> {
        let fields = text.split_whitespace().count();
        if !text.trim_start().starts_with('@') && fields != 5 {
            return Err(format!(
                "`{text}` has {fields} fields; write 5: minute hour day-of-month month day-of-week"
            ));
        }
        // Vixie cron flags a day field as unrestricted by its first
        // character, so `*/2` counts as a star for the either-day rule.
        let day_fields: Vec<&str> = text.split_whitespace().skip(2).step_by(2).collect();
        let both_days = day_fields.iter().any(|field| field.starts_with('*'));
        let cron = CronParser::builder()
            .seconds(Seconds::Disallowed)
            .year(Year::Disallowed)
            .dom_and_dow(both_days)
            .build()
            .parse(text)
            .map_err(|e| format!("`{text}` is not a valid cron expression: {e}"))?;
        Ok(CronExpr {
            text: text.to_owned(),
            cron,
        })
    }

    /// The first fire time strictly after `after`, in `zone`. Spring-forward
    /// gaps fire at the first instant after the gap; a fixed time repeated by
    /// fall-back fires once. Chain calls from the returned instant.
    pub fn next_after(&self, after: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = after.with_timezone(&zone);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The latest fire time at or before `at`, in `zone`.
    pub fn previous_at_or_before(&self, at: DateTime<Utc>, zone: Tz) -> Option<DateTime<Utc>> {
        let local = at.with_timezone(&zone);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).unwrap().with_timezone(&Utc)
    }

    /// The next `count` fire times after `from`, as RFC 3339 in `zone`.
    fn next(expr: &str, zone: &str, from: &str, count: usize) -> Vec<String> {
        let cron = CronExpr::parse(expr).unwrap();
        let zone: Tz = zone.parse().unwrap();
        let mut at = utc(from);
        (0..count)
            .map(|_| {
                at = cron.next_after(at, zone).unwrap();
                at.with_timezone(&zone).to_rfc3339()
            })
            .collect()
    }

    #[test]
    fn weekdays_are_numbered_from_sunday_and_seven_is_sunday_too() {
        // 2026-11-27 is a Friday.
        assert_eq!(
            next("0 9 * * 1-5", "UTC", "2026-11-27T00:00:00Z", 2),
            ["2026-11-27T09:00:00+00:00", "2026-11-30T09:00:00+00:00"]
        );
        for sunday in ["0", "7", "sun"] {
            assert_eq!(
                next(&format!("0 0 * * {sunday}"), "UTC", "2026-11-24T00:00:00Z", 1),
                ["2026-11-29T00:00:00+00:00"],
                "{sunday}"
            );
        }
    }

    #[test]
    fn names_ranges_steps_and_lists() {
        assert_eq!(
            next("0 0 1 jan *", "UTC", "2026-11-24T00:00:00Z", 1),
            ["2027-01-01T00:00:00+00:00"]
        );
        assert_eq!(
            next("*/20 9-10 * * mon", "UTC", "2026-11-30T09:30:00Z", 4),
            [
                "2026-11-30T09:40:00+00:00",
                "2026-11-30T10:00:00+00:00",
                "2026-11-30T10:20:00+00:00",
                "2026-11-30T10:40:00+00:00"
            ]
        );
        assert_eq!(
            next("0 8,12,18 * * *", "UTC", "2026-11-24T09:00:00Z", 3),
            [
                "2026-11-24T12:00:00+00:00",
                "2026-11-24T18:00:00+00:00",
                "2026-11-25T08:00:00+00:00"
            ]
        );
    }

    #[test]
    fn day_of_month_or_day_of_week_when_both_are_restricted() {
        // Fridays, and the 13th whatever its weekday (2026-12-13 is a Sunday).
        assert_eq!(
            next("0 0 13 * fri", "UTC", "2026-12-01T00:00:00Z", 3),
            [
                "2026-12-04T00:00:00+00:00",
                "2026-12-11T00:00:00+00:00",
                "2026-12-13T00:00:00+00:00"
            ]
        );
    }

    #[test]
    fn a_day_field_beginning_with_a_star_makes_both_day_fields_apply() {
        // Odd-numbered days that are Mondays: 2026-12-07, 2026-12-21, 2027-01-11.
        assert_eq!(
            next("0 0 */2 * mon", "UTC", "2026-12-01T00:00:00Z", 3),
            [
                "2026-12-07T00:00:00+00:00",
                "2026-12-21T00:00:00+00:00",
                "2027-01-11T00:00:00+00:00"
            ]
        );
        // The case found against cronie: days 22-27 or the 5th, in months
        // 1, 6 and 11, that are also Sundays, Tuesdays, Thursdays or
        // Saturdays (`*/2` from Sunday).
        assert_eq!(
            next(
                "* * 22-27,5 */5 */2",
                "America/Los_Angeles",
                "2026-10-31T00:00:00-07:00",
                1
            ),
            ["2026-11-05T00:00:00-08:00"]
        );
        // A plain `*` in either day field still means "the other field".
        assert_eq!(
            next("0 0 * * */3", "UTC", "2026-12-01T00:00:00Z", 3),
            [
                "2026-12-02T00:00:00+00:00",
                "2026-12-05T00:00:00+00:00",
                "2026-12-06T00:00:00+00:00"
            ]
        );
    }

    #[test]
    fn macros() {
        let from = "2026-11-24T10:30:00Z";
        assert_eq!(next("@hourly", "UTC", from, 1), ["2026-11-24T11:00:00+00:00"]);
        assert_eq!(next("@daily", "UTC", from, 1), ["2026-11-25T00:00:00+00:00"]);
        assert_eq!(next("@weekly", "UTC", from, 1), ["2026-11-29T00:00:00+00:00"]);
        assert_eq!(next("@monthly", "UTC", from, 1), ["2026-12-01T00:00:00+00:00"]);
        assert_eq!(next("@yearly", "UTC", from, 1), ["2027-01-01T00:00:00+00:00"]);
    }

    #[test]
    fn a_time_skipped_by_spring_forward_fires_right_after_the_gap() {
        assert_eq!(
            next("30 2 * * *", "Europe/Berlin", "2026-03-28T12:00:00Z", 2),
            ["2026-03-29T03:00:00+02:00", "2026-03-30T02:30:00+02:00"]
        );
        assert_eq!(
            next("30 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 2),
            ["2026-03-08T03:00:00-04:00", "2026-03-09T02:30:00-04:00"]
        );
    }

    #[test]
    fn a_time_repeated_by_fall_back_fires_once() {
        assert_eq!(
            next("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 2),
            ["2026-10-25T02:30:00+02:00", "2026-10-26T02:30:00+01:00"]
        );
        assert_eq!(
            next("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
        );
    }

    #[test]
    fn wildcard_hours_follow_real_elapsed_hours_across_fall_back() {
        assert_eq!(
            next("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 3),
            [
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00"
            ]
        );
        assert_eq!(
            next("0 * * * *", "America/New_York", "2026-11-01T04:30:00Z", 3),
            [
                "2026-11-01T01:00:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T02:00:00-05:00"
            ]
        );
    }

    #[test]
    fn refuses_six_fields_and_out_of_range_values() {
        assert!(CronExpr::parse("0 0 * * * *")
            .unwrap_err()
            .contains("has 6 fields; write 5"));
        assert!(CronExpr::parse("61 * * * *")
            .unwrap_err()
            .contains("not a valid cron expression"));
        assert!(CronExpr::parse("* * *").unwrap_err().contains("has 3 fields"));
    }
}

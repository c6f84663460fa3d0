//! A schedule's run durations over the last 30 days, for the page: p50 and
//! p95 over the period, and per day as the points of two lines in a small
//! inline SVG (no outside assets, nothing but numbers in the markup).

use chrono::{DateTime, Utc};
use serde::Serialize;

/// The days charted.
pub const DAYS: i64 = 30;
/// The chart's size in SVG units: a column per day.
const WIDTH: f64 = 150.0;
const HEIGHT: f64 = 32.0;

/// The chart of one schedule's durations.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DurationChart {
    /// The runs measured.
    pub runs: usize,
    /// Their median duration: `1.4 s`.
    pub p50: String,
    /// Their 95th percentile.
    pub p95: String,
    /// The per-day medians, as SVG polyline points.
    pub p50_points: String,
    /// The per-day 95th percentiles.
    pub p95_points: String,
}

/// The chart of `runs` (start, milliseconds) as of `now`; none without runs.
pub fn chart(
    runs: &[(DateTime<Utc>, u64)],
    now: DateTime<Utc>,
    format: impl Fn(u64) -> String,
) -> Option<DurationChart> {
    if runs.is_empty() {
        return None;
    }
    let mut all: Vec<u64> = runs.iter().map(|(_, ms)| *ms).collect();
    all.sort_unstable();
    let mut days: Vec<Vec<u64>> = vec![Vec::new(); DAYS as usize];
    for (at, ms) in runs {
        let age = (now - *at).num_days();
        if (0..DAYS).contains(&age) {
            days[(DAYS - 1 - age) as usize].push(*ms);
        }
    }
    for day in &mut days {
        day.sort_unstable();
    }
    // The scale: the longest run, but at most twice the p95, so that one
    // outlier does not flatten the rest.
    let top = all[all.len() - 1].min(percentile(&all, 0.95) * 2).max(1);
    let column = WIDTH / DAYS as f64;
    let with_runs = days.iter().filter(|day| !day.is_empty()).count();
    let points = |share: f64| -> String {
        days.iter()
            .enumerate()
            .filter(|(_, day)| !day.is_empty())
            .map(|(i, day)| {
                let value = percentile(day, share).min(top) as f64;
                let y = HEIGHT - 1.0 - value / top as f64 * (HEIGHT - 2.0);
                match with_runs {
                    // One day alone: a dash across its column, since a line
                    // of one point draws nothing.
                    1 => format!(
                        "{:.1},{y:.1} {:.1},{y:.1}",
                        i as f64 * column,
                        (i + 1) as f64 * column
                    ),
                    _ => format!("{:.1},{y:.1}", (i as f64 + 0.5) * column),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    Some(DurationChart {
        runs: all.len(),
        p50: format(percentile(&all, 0.5)),
        p95: format(percentile(&all, 0.95)),
        p50_points: points(0.5),
        p95_points: points(0.95),
    })
}

/// The value at `share` of `sorted` (nearest rank).
fn percentile(sorted: &[u64], share: f64) -> u64 {
    let rank = ((sorted.len() as f64 * share).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_and_one_point_per_day_with_runs() {
        let now = DateTime::parse_from_rfc3339("2026-12-02T12:00:00Z")
            .unwrap()
            .to_utc();
        let day = chrono::Duration::days(1);
        // Today ten runs of 100..1000 ms; three days ago one of 5 s.
        let mut runs: Vec<(DateTime<Utc>, u64)> = (1..=10).map(|i| (now, i * 100)).collect();
        runs.push((now - day * 3, 5000));
        let chart = chart(&runs, now, |ms| format!("{ms} ms")).unwrap();
        assert_eq!(chart.runs, 11);
        assert_eq!(chart.p50, "600 ms");
        assert_eq!(chart.p95, "5000 ms");
        let points: Vec<&str> = chart.p50_points.split(' ').collect();
        assert_eq!(points.len(), 2, "{points:?}");
        assert!(
            points[0].starts_with("132.5,") && points[1].starts_with("147.5,"),
            "{points:?}"
        );
        // The longer day sits higher (a smaller y).
        let y = |p: &str| p.split(',').nth(1).unwrap().parse::<f64>().unwrap();
        assert!(y(points[0]) < y(points[1]));
        assert_eq!(super::chart(&[], now, |ms: u64| ms.to_string()), None);
    }
}

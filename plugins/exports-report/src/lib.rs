//! Example task plugin for the `files` grant and a watch: reads every CSV
//! export in its read directory (`/read/exports`), and writes a summary —
//! rows per file, and the total of an `amount` column where there is one —
//! to `/write/reports/summary.txt`, with Rust's own `std::fs`. Started by a
//! watch, it also says which files changed.

use std::fmt::Write as _;

use mission_task_sdk::mission::plugin::event;
use mission_task_sdk::{config_value, export_task, Guest, Invocation, Outcome};

struct ExportsReport;

impl Guest for ExportsReport {
    fn run(invocation: Invocation) -> Result<Outcome, String> {
        let exports = config_value(&invocation.config, "exports").unwrap_or("/read/exports");
        let reports = config_value(&invocation.config, "reports").unwrap_or("/write/reports");
        let mut names: Vec<String> = std::fs::read_dir(exports)
            .map_err(|e| format!("cannot list {exports}: {e} (is it in the plugin's files grant?)"))?
            .filter_map(|entry| entry.ok())
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".csv"))
            .collect();
        names.sort();
        let mut report = String::new();
        let (mut rows, mut total) = (0usize, 0f64);
        for name in &names {
            let text =
                std::fs::read_to_string(format!("{exports}/{name}")).map_err(|e| format!("{name}: {e}"))?;
            let (count, sum) = summarize(&text);
            rows += count;
            total += sum.unwrap_or(0.0);
            let sum = sum.map(|s| format!(", amount {s:.2}")).unwrap_or_default();
            let _ = writeln!(report, "{name}: {count} rows{sum}");
        }
        let _ = writeln!(
            report,
            "total: {rows} rows in {} files, amount {total:.2}",
            names.len()
        );
        if let Some(watch) = event::watch() {
            let changed: Vec<String> = watch
                .changes
                .iter()
                .map(|c| format!("{:?} {}", c.kind, c.path))
                .collect();
            let _ = writeln!(
                report,
                "started by watch `{}`: {}",
                watch.watch,
                changed.join(", ")
            );
        }
        std::fs::write(format!("{reports}/summary.txt"), &report)
            .map_err(|e| format!("cannot write {reports}/summary.txt: {e}"))?;
        Ok(Outcome {
            summary: format!(
                "{rows} rows in {} files, written to {reports}/summary.txt",
                names.len()
            ),
        })
    }
}

/// Data rows (after the header), and the sum of an `amount` column if the
/// header has one.
fn summarize(text: &str) -> (usize, Option<f64>) {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header: Vec<&str> = lines
        .next()
        .map(|h| h.split(',').map(str::trim).collect())
        .unwrap_or_default();
    let amount = header.iter().position(|h| h.eq_ignore_ascii_case("amount"));
    let (mut rows, mut sum) = (0, 0.0);
    for line in lines {
        rows += 1;
        if let Some(value) = amount
            .and_then(|i| line.split(',').nth(i))
            .and_then(|v| v.trim().parse::<f64>().ok())
        {
            sum += value;
        }
    }
    (rows, amount.map(|_| sum))
}

export_task!(ExportsReport);

//! What the benchmarks share: the figures they print, the fake `claude`
//! they ask, and a [`year`] of load in the SQLite file.

pub mod year;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// The median and the 99th percentile of `samples`.
pub fn median_and_p99(mut samples: Vec<Duration>) -> (Duration, Duration) {
    samples.sort();
    (
        samples[samples.len() / 2],
        samples[((samples.len() - 1) as f64 * 0.99).round() as usize],
    )
}

/// The fake `claude` (tests/fake-claude), built in release under `root`.
pub fn fake_claude(root: &Path) -> PathBuf {
    let status = Command::new(env!("CARGO"))
        .args(["build", "--release", "--quiet", "-p", "fake-claude"])
        .current_dir(root)
        .status()
        .unwrap();
    assert!(status.success(), "building tests/fake-claude failed");
    root.join("target/release/fake-claude")
}

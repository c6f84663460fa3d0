//! Benchmark: a scrape of `/metrics` on a host with 100 plugins and the
//! year-long database's 50 schedules (a schedule file each), its counters
//! holding a run of every plugin for every trigger and outcome. Prints the
//! render's median and p99 beside the status page's JSON (`/api/status`)
//! gathered in the same run. Aim: a scrape ≤ 5 ms.

#[allow(dead_code, reason = "shared by the benchmarks, which each use part of it")]
mod measure;

use std::sync::Arc;
use std::time::{Duration, Instant};

use measure::median_and_p99;
use measure::year::{pruned_year, schedule_names};
use mission::config::Config;
use mission::host::Host;
use mission::serve::web::{metrics, status};

const PLUGINS: usize = 100;
const SCRAPES: usize = 300;

#[tokio::main]
async fn main() {
    let wasm = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../plugins/target/wasm32-wasip2/release/briefing.wasm");
    assert!(wasm.exists(), "{} is missing: run `./dev bench`", wasm.display());
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("data/mission.db");
    std::fs::create_dir_all(database.parent().unwrap()).unwrap();
    drop(pruned_year(&database).await);

    let mut toml = "data_dir = \"data\"\n".to_owned();
    for n in 0..PLUGINS {
        toml.push_str(&format!(
            "[plugins.job-{n:03}]\nworld = \"task\"\nwasm = {wasm:?}\ngrants = [\"state\"]\n"
        ));
    }
    std::fs::write(dir.path().join("mission.toml"), toml).unwrap();
    std::fs::create_dir(dir.path().join("schedules")).unwrap();
    for (n, name) in schedule_names().iter().enumerate() {
        std::fs::write(
            dir.path().join(format!("schedules/{name}.toml")),
            format!("plugin = \"job-{:03}\"\ncron = \"0 7 * * *\"\n", n * 2),
        )
        .unwrap();
    }
    let config = Config::load(&dir.path().join("mission.toml")).unwrap();
    let host = Arc::new(Host::open(config).await.unwrap());
    assert!(host.load_all().await.is_empty());
    for n in 0..PLUGINS {
        for trigger in ["schedule", "webhook", "watch", "trigger"] {
            for outcome in ["succeeded", "failed", "timed_out"] {
                mission::metrics::get().run_ended(
                    &format!("job-{n:03}"),
                    trigger,
                    outcome,
                    Some(Duration::from_millis(40)),
                );
            }
        }
    }

    let mut scrapes = Vec::new();
    let mut pages = Vec::new();
    let mut bytes = 0;
    for _ in 0..SCRAPES {
        let started = Instant::now();
        let text = metrics::render(&*host).await.unwrap();
        scrapes.push(started.elapsed());
        bytes = text.len();
        let started = Instant::now();
        status::gather(&*host, chrono::Utc::now()).await.unwrap();
        pages.push(started.elapsed());
    }
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    let (scrape_median, scrape_p99) = median_and_p99(scrapes);
    let (page_median, page_p99) = median_and_p99(pages);
    println!(
        "a scrape of /metrics ({PLUGINS} plugins, {} schedules, {} KiB): median {:.2} ms, p99 {:.2} ms (aim: at most 5 ms)",
        schedule_names().len(),
        bytes / 1024,
        ms(scrape_median),
        ms(scrape_p99)
    );
    println!(
        "the page's data (/api/status) in the same run: median {:.2} ms, p99 {:.2} ms; scrape / page {:.2}x",
        ms(page_median),
        ms(page_p99),
        scrape_median.as_secs_f64() / page_median.as_secs_f64()
    );
}

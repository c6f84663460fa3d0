//! The data of one call's store, assembled from the plugin's config and the
//! host's services: a WASI context that denies everything but the granted
//! directories, the output capture, the memory limiter, the plugin's
//! capabilities, and the per-call state of the two that WASI's own
//! interfaces carry (outbound HTTP, file writes).

use std::sync::Arc;

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::files::{self, FileWrites};
use crate::capabilities::http::OutboundHttp;
use crate::capabilities::{Capabilities, Services};
use crate::config::PluginConfig;
use crate::wasm::limits::MemoryLimiter;
use crate::wasm::output::OutputCapture;

/// Everything a plugin's instance can reach, for one call.
pub struct HostState {
    wasi: WasiCtx,
    table: ResourceTable,
    /// The memory cap, consulted by wasmtime on every growth.
    pub limiter: MemoryLimiter,
    /// Where stdout and stderr go.
    pub output: OutputCapture,
    /// The `mission:plugin` imports, checked against the plugin's grants.
    pub capabilities: Capabilities,
    http: WasiHttpCtx,
    /// Decides and sends the plugin's HTTP requests.
    pub outbound: OutboundHttp,
    /// What the call has written to, and created in, its granted
    /// directories.
    pub files: FileWrites,
}

impl HostState {
    /// State for a call of the plugin configured as `config`, drawing on
    /// `services`: its output captured under its limit and log rate, its
    /// memory capped, its capabilities checked against its grants. WASI
    /// gets no environment, no arguments, no network and no stdin, and no
    /// directories but those of the plugin's `files` grant; only the clocks
    /// and randomness are real.
    pub fn new(config: &Arc<PluginConfig>, services: &Services) -> Self {
        let output = OutputCapture::new(
            config.name.clone(),
            config.limits.output,
            services.log_rates.clone(),
        );
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(output.stdout())
            .stderr(output.stderr())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if let Some(grant) = &config.files {
            files::preopen(&mut wasi, &config.name, grant);
        }
        Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(config.limits.memory),
            capabilities: Capabilities::new(config.clone(), services, output.clone()),
            http: WasiHttpCtx::new(),
            outbound: OutboundHttp::new(
                config.name.clone(),
                config.http.clone(),
                services.db.clone(),
                output.clone(),
            ),
            files: FileWrites::new(output.clone(), config.files.as_deref()),
            output,
        }
    }
}

impl WasiHttpView for HostState {
    fn http(&mut self) -> WasiHttpCtxView<'_> {
        WasiHttpCtxView {
            ctx: &mut self.http,
            table: &mut self.table,
            hooks: &mut self.outbound,
        }
    }
}

impl WasiView for HostState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

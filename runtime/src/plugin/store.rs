//! The data of one call's store: a WASI context that denies everything but
//! the granted directories, the output capture, the memory limiter and the
//! plugin's capabilities.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::files::{self, FileWrites};
use crate::capabilities::http::OutboundHttp;
use crate::capabilities::Capabilities;
use crate::config::files::FilesGrant;
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
    /// State for a call with the given output capture, memory cap and
    /// capabilities. WASI gets no environment, no arguments, no network and
    /// no stdin, and no directories but those of the plugin's `files` grant;
    /// only the clocks and randomness are real.
    pub fn new(
        output: OutputCapture,
        memory_limit: u64,
        capabilities: Capabilities,
        outbound: OutboundHttp,
        files: Option<&FilesGrant>,
    ) -> Self {
        let plugin = capabilities.plugin().clone();
        let mut wasi = WasiCtxBuilder::new();
        wasi.stdout(output.stdout())
            .stderr(output.stderr())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false);
        if let Some(grant) = files {
            files::preopen(&mut wasi, &plugin, grant);
        }
        let writes = FileWrites::new(output.clone(), files);
        Self {
            wasi: wasi.build(),
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            output,
            capabilities,
            http: WasiHttpCtx::new(),
            outbound,
            files: writes,
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

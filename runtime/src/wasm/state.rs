//! The data of one call's store: a WASI context that denies everything, the
//! output capture, the memory limiter and the plugin's capabilities.

use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxBuilder, WasiCtxView, WasiView};
use wasmtime_wasi_http::{WasiHttpCtx, WasiHttpCtxView, WasiHttpView};

use crate::capabilities::http::OutboundHttp;
use crate::capabilities::Capabilities;
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
}

impl HostState {
    /// State for a call with the given output capture, memory cap and
    /// capabilities. WASI gets no environment, no arguments, no directories,
    /// no network and no stdin; only the clocks and randomness are real.
    pub fn new(
        output: OutputCapture,
        memory_limit: u64,
        capabilities: Capabilities,
        outbound: OutboundHttp,
    ) -> Self {
        let wasi = WasiCtxBuilder::new()
            .stdout(output.stdout())
            .stderr(output.stderr())
            .allow_tcp(false)
            .allow_udp(false)
            .allow_ip_name_lookup(false)
            .build();
        Self {
            wasi,
            table: ResourceTable::new(),
            limiter: MemoryLimiter::new(memory_limit),
            output,
            capabilities,
            http: WasiHttpCtx::new(),
            outbound,
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

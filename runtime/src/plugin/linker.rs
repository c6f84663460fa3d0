//! The linker that provides WASI's imports, `wasi:http` (decided per
//! request by the store's `OutboundHttp`) and every `mission:plugin`
//! capability to every plugin, of both worlds.

use wasmtime::component::Linker;
use wasmtime::error::Context;
use wasmtime::Engine;

use super::store::HostState;

/// A linker with WASI p2 and every `mission:plugin` capability, shared by
/// all plugins of both worlds.
pub fn linker(engine: &Engine) -> anyhow::Result<Linker<HostState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker).context("failed to add WASI to the linker")?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)
        .context("failed to add WASI HTTP to the linker")?;
    fn capabilities(state: &mut HostState) -> &mut crate::capabilities::Capabilities {
        &mut state.capabilities
    }
    crate::capabilities::add_to_linker(&mut linker, capabilities)
        .context("failed to add the capabilities to the linker")?;
    // The `files` capability links its quotas and `open-at` over WASI's own.
    linker.allow_shadowing(true);
    crate::capabilities::files::add_to_linker(&mut linker, |state: &mut HostState| &state.files)
        .context("failed to add the files capability's quotas to the linker")?;
    linker.allow_shadowing(false);
    Ok(linker)
}

//! Per-call limits enforced inside a store: the memory cap and the deadline.

use std::time::Instant;

use wasmtime::{ResourceLimiter, UpdateDeadline};

/// Caps the linear memory of one instance (all its memories together) and
/// remembers whether the cap was hit, so the call is reported as out of
/// memory rather than as a generic trap.
#[derive(Debug)]
pub struct MemoryLimiter {
    limit: u64,
    used: u64,
    exceeded: bool,
}

impl MemoryLimiter {
    /// A limiter allowing `limit` bytes of linear memory.
    pub fn new(limit: u64) -> Self {
        Self {
            limit,
            used: 0,
            exceeded: false,
        }
    }

    /// Whether the plugin tried to grow past its limit.
    pub fn exceeded(&self) -> bool {
        self.exceeded
    }
}

/// The error a growth past the limit traps with.
#[derive(Debug, thiserror::Error)]
#[error("memory limit of {limit} bytes exceeded (asked for {asked} bytes in all)")]
pub struct MemoryLimitExceeded {
    /// The limit in bytes.
    pub limit: u64,
    /// What the instance would have had after the growth.
    pub asked: u64,
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let asked = self.used + (desired - current) as u64;
        if asked > self.limit {
            self.exceeded = true;
            return Err(MemoryLimitExceeded {
                limit: self.limit,
                asked,
            }
            .into());
        }
        self.used = asked;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        Ok(desired <= 100_000)
    }
}

/// The error a call that ran past its deadline traps with.
#[derive(Debug, thiserror::Error)]
#[error("deadline exceeded")]
pub struct DeadlineExceeded;

/// The epoch callback for a call due to end at `deadline`: past it the call
/// traps with [`DeadlineExceeded`]; before it, the guest yields to the async
/// runtime once per epoch tick so a spinning plugin cannot starve others.
pub fn epoch_deadline(
    deadline: Instant,
) -> impl FnMut() -> wasmtime::Result<UpdateDeadline> + Send + Sync + 'static {
    move || {
        if Instant::now() >= deadline {
            Err(DeadlineExceeded.into())
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    }
}

//! `files`: the directories of `[plugins.NAME.files]`, through
//! wasmtime-wasi's own `wasi:filesystem` (no file API of ours). Each
//! directory is preopened — a read-only one with `FsPerms::ReadOnly`, which
//! refuses every mutation of it and opens its files for reading only — and
//! cap-std keeps every path, `..` or symlink inside it.
//! What is added here is the write quota: the three ways
//! `wasi:filesystem/types` writes a file are linked again, over
//! wasmtime-wasi's, to count each call's bytes against `max_write`. A
//! write that would pass it fails whole, as a full disk would: `write`
//! with `insufficient-space`, a stream's write with `last-operation-failed`
//! (whose `filesystem-error-code` is `insufficient-space`; wasi-libc, and so
//! Rust's `std::fs`, reports it as EIO). The bytes written are kept for the
//! run's record.
//!
//! `open-at` is linked again too: only a regular file or a directory is
//! opened. A FIFO, a socket or a device in a granted directory is refused
//! with `unsupported` (ENOTSUP) before wasmtime-wasi opens it, since opening
//! a FIFO that has no writer would hold a thread of the blocking pool until
//! one came — past the run's deadline, and past the host's shutdown. (The
//! check is a `stat-at` through the same sandbox; a plugin cannot make a
//! special file, so only another process swapping one in between the check
//! and the open could still block.)
//!
//! And the create quota: each new file (an `open-at` with `create` of a
//! path that was not there), directory (`create-directory-at`) and link
//! (`symlink-at`, `link-at`) counts against `max_create`; past it the call
//! fails with `quota` (EDQUOT), and a creation that fails gives its count
//! back.
//!
//! A directory's listing leaves out the names that are not UTF-8 (a WASI
//! name is a string, so the plugin could not open them anyway) instead of
//! failing at the first with `illegal-byte-sequence`: the directory entry
//! stream's `read-directory-entry` is linked again to skip them, and a
//! listing that left some out says how many in the log, with the plugin.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use wasmtime::component::{Linker, Resource};
use wasmtime_wasi::filesystem::{Descriptor, WasiFilesystemView};
use wasmtime_wasi::p2::bindings::filesystem::types::{
    DescriptorFlags, DescriptorType, DirectoryEntryStream, ErrorCode, HostDescriptor,
    HostDirectoryEntryStream, OpenFlags, PathFlags,
};
use wasmtime_wasi::p2::{DynOutputStream, OutputStream, Pollable, StreamError, StreamResult};
use wasmtime_wasi::{FsPerms, WasiCtxBuilder};

use crate::config::files::FilesGrant;
use crate::config::PluginName;
use crate::wasm::output::OutputCapture;

/// The `wasi:filesystem/types` instance wasmtime-wasi links.
const TYPES: &str = "wasi:filesystem/types@0.2.12";

/// What one call has written to its files and how many it has created,
/// against its quotas. Cheap to clone: every stream of the call shares it.
#[derive(Clone)]
pub struct FileWrites {
    /// Where the lines the plugin's file calls cause are logged, within
    /// its log rate.
    output: OutputCapture,
    written: Arc<AtomicU64>,
    max: u64,
    created: Arc<AtomicU64>,
    max_create: u64,
    /// Names left out of each directory listing still being read, by the
    /// listing's resource.
    left_out: Arc<Mutex<HashMap<u32, u64>>>,
}

impl FileWrites {
    /// The counter of a plugin's calls under `grant` (without one, nothing
    /// may be written or created), what they cause logged through `output`.
    pub fn new(output: OutputCapture, grant: Option<&FilesGrant>) -> FileWrites {
        FileWrites {
            output,
            written: Arc::default(),
            max: grant.map_or(0, |g| g.max_write),
            created: Arc::default(),
            max_create: grant.map_or(0, |g| g.max_create),
            left_out: Arc::default(),
        }
    }

    /// Starts a call at zero.
    pub fn restart(&self) {
        self.written.store(0, Ordering::Relaxed);
        self.created.store(0, Ordering::Relaxed);
        self.listings().clear();
    }

    fn listings(&self) -> std::sync::MutexGuard<'_, HashMap<u32, u64>> {
        self.left_out
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Notes a name left out of `listing`.
    fn leave_out(&self, listing: u32) {
        *self.listings().entry(listing).or_default() += 1;
    }

    /// `listing` has been read to its end: logs what it left out, if anything.
    fn listed(&self, listing: u32) {
        if let Some(left_out) = self.listings().remove(&listing) {
            self.output.caused(
                tracing::Level::WARN,
                "cut directory listings",
                format_args!("directory listing cut: names that are not UTF-8 left out ({left_out})"),
            );
        }
    }

    /// Bytes the call has written so far.
    pub fn written(&self) -> u64 {
        self.written.load(Ordering::Relaxed)
    }

    /// Takes `bytes` from the quota, or logs and refuses the write.
    fn take(&self, bytes: u64) -> Result<(), ()> {
        if bytes > self.max.saturating_sub(self.written()) {
            self.output.caused(
                tracing::Level::WARN,
                "refused file writes",
                format_args!(
                    "file write refused: over the call's max_write ({bytes} bytes asked, {} of {} written)",
                    self.written(),
                    self.max
                ),
            );
            return Err(());
        }
        self.written.fetch_add(bytes, Ordering::Relaxed);
        Ok(())
    }

    /// Takes one creation from the quota, or logs and refuses it.
    fn create(&self) -> Result<(), ErrorCode> {
        let taken = self
            .created
            .fetch_update(Ordering::Relaxed, Ordering::Relaxed, |n| {
                (n < self.max_create).then_some(n + 1)
            });
        if taken.is_err() {
            self.output.caused(
                tracing::Level::WARN,
                "refused file creations",
                format_args!(
                    "file create refused: over the call's max_create ({})",
                    self.max_create
                ),
            );
            return Err(ErrorCode::Quota);
        }
        Ok(())
    }

    /// Gives back a creation that did not happen.
    fn uncreate(&self) {
        self.created.fetch_sub(1, Ordering::Relaxed);
    }

    /// Runs `creation` within the create quota: refused past it, counted
    /// only if it succeeds.
    async fn creating(
        &self,
        creation: impl std::future::Future<Output = wasmtime_wasi::p2::FsResult<()>>,
    ) -> wasmtime::Result<Result<(), ErrorCode>> {
        if let Err(code) = self.create() {
            return Ok(Err(code));
        }
        match creation.await {
            Ok(()) => Ok(Ok(())),
            Err(e) => {
                self.uncreate();
                Ok(Err(e.downcast()?))
            }
        }
    }
}

/// Preopens `grant`'s directories in `builder`; a directory that cannot be
/// opened is logged (naming the plugin and the path) and left out.
pub fn preopen(builder: &mut WasiCtxBuilder, plugin: &PluginName, grant: &FilesGrant) {
    let dirs = grant
        .read
        .iter()
        .map(|d| (d, FsPerms::ReadOnly))
        .chain(grant.write.iter().map(|d| (d, FsPerms::ReadWrite)));
    for (dir, perms) in dirs {
        if let Err(e) = builder.preopened_dir(&dir.host, &dir.guest, perms) {
            tracing::error!(
                plugin = %plugin,
                path = %dir.host.display(),
                "files: cannot open the granted directory, the plugin does not see {}: {e:#}",
                dir.guest
            );
        }
    }
}

/// Links the writes, the creations and `open-at` of `wasi:filesystem/types`
/// again, over wasmtime-wasi's (the linker must allow shadowing), so
/// `writes` finds each call's quotas.
pub fn add_to_linker<T: WasiFilesystemView + 'static>(
    linker: &mut Linker<T>,
    writes: fn(&mut T) -> &FileWrites,
) -> wasmtime::Result<()> {
    let mut types = linker.instance(TYPES)?;
    types.func_wrap(
        "[method]descriptor.write-via-stream",
        move |mut store, (fd, offset): (Resource<Descriptor>, u64)| {
            let quota = writes(store.data_mut()).clone();
            let mut view = store.data_mut().filesystem();
            let stream = HostDescriptor::write_via_stream(&mut view, fd, offset);
            Ok((counted(&mut view, stream, quota)?,))
        },
    )?;
    types.func_wrap(
        "[method]descriptor.append-via-stream",
        move |mut store, (fd,): (Resource<Descriptor>,)| {
            let quota = writes(store.data_mut()).clone();
            let mut view = store.data_mut().filesystem();
            let stream = HostDescriptor::append_via_stream(&mut view, fd);
            Ok((counted(&mut view, stream, quota)?,))
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.open-at",
        move |mut store,
              (fd, path_flags, path, open_flags, flags): (
            Resource<Descriptor>,
            PathFlags,
            String,
            OpenFlags,
            DescriptorFlags,
        )| {
            Box::new(async move {
                let quota = writes(store.data_mut()).clone();
                let mut view = store.data_mut().filesystem();
                let probe = Resource::new_borrow(fd.rep());
                let mut creates = false;
                // A path that cannot be stat'ed gets open-at's own error below.
                match HostDescriptor::stat_at(&mut view, probe, path_flags, path.clone()).await {
                    Ok(stat) if !openable(stat.type_) => {
                        quota.output.caused(
                            tracing::Level::WARN,
                            "refused file opens",
                            format_args!(
                                "file open refused: {path:?} is a {:?}, not a regular file or a directory",
                                stat.type_
                            ),
                        );
                        return Ok((Err(ErrorCode::Unsupported),));
                    }
                    Ok(_) => {}
                    Err(e) => {
                        creates = open_flags.contains(OpenFlags::CREATE)
                            && matches!(e.downcast()?, ErrorCode::NoEntry);
                    }
                }
                if creates {
                    if let Err(code) = quota.create() {
                        return Ok((Err(code),));
                    }
                }
                match HostDescriptor::open_at(&mut view, fd, path_flags, path, open_flags, flags).await {
                    Ok(opened) => Ok((Ok(opened),)),
                    Err(e) => {
                        if creates {
                            quota.uncreate();
                        }
                        Ok((Err(e.downcast()?),))
                    }
                }
            })
        },
    )?;
    types.func_wrap_async(
        "[method]directory-entry-stream.read-directory-entry",
        move |mut store, (listing,): (Resource<DirectoryEntryStream>,)| {
            Box::new(async move {
                let quota = writes(store.data_mut()).clone();
                let mut view = store.data_mut().filesystem();
                loop {
                    let next = Resource::new_borrow(listing.rep());
                    match HostDirectoryEntryStream::read_directory_entry(&mut view, next).await {
                        Ok(None) => {
                            quota.listed(listing.rep());
                            return Ok((Ok(None),));
                        }
                        Ok(Some(entry)) => return Ok((Ok(Some(entry)),)),
                        Err(e) => match e.downcast()? {
                            ErrorCode::IllegalByteSequence => quota.leave_out(listing.rep()),
                            code => return Ok((Err(code),)),
                        },
                    }
                }
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.create-directory-at",
        move |mut store, (fd, path): (Resource<Descriptor>, String)| {
            Box::new(async move {
                let quota = writes(store.data_mut()).clone();
                let mut view = store.data_mut().filesystem();
                let made = quota.creating(HostDescriptor::create_directory_at(&mut view, fd, path));
                Ok((made.await?,))
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.symlink-at",
        move |mut store, (fd, old_path, new_path): (Resource<Descriptor>, String, String)| {
            Box::new(async move {
                let quota = writes(store.data_mut()).clone();
                let mut view = store.data_mut().filesystem();
                let made = quota.creating(HostDescriptor::symlink_at(&mut view, fd, old_path, new_path));
                Ok((made.await?,))
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.link-at",
        move |mut store,
              (fd, old_flags, old_path, new_fd, new_path): (
            Resource<Descriptor>,
            PathFlags,
            String,
            Resource<Descriptor>,
            String,
        )| {
            Box::new(async move {
                let quota = writes(store.data_mut()).clone();
                let mut view = store.data_mut().filesystem();
                let made = quota.creating(HostDescriptor::link_at(
                    &mut view, fd, old_flags, old_path, new_fd, new_path,
                ));
                Ok((made.await?,))
            })
        },
    )?;
    types.func_wrap_async(
        "[method]descriptor.write",
        move |mut store, (fd, buffer, offset): (Resource<Descriptor>, Vec<u8>, u64)| {
            Box::new(async move {
                let quota = writes(store.data_mut()).clone();
                if quota.take(buffer.len() as u64).is_err() {
                    return Ok((Err(ErrorCode::InsufficientSpace),));
                }
                let mut view = store.data_mut().filesystem();
                match HostDescriptor::write(&mut view, fd, buffer, offset).await {
                    Ok(written) => Ok((Ok(written),)),
                    Err(e) => Ok((Err(e.downcast()?),)),
                }
            })
        },
    )?;
    Ok(())
}

/// Whether a file of type `kind` may be opened: one that cannot block its
/// opener (a symbolic link is left to open-at, which refuses or follows it
/// as the path flags say).
fn openable(kind: DescriptorType) -> bool {
    matches!(
        kind,
        DescriptorType::RegularFile | DescriptorType::Directory | DescriptorType::SymbolicLink
    )
}

/// The stream `opened` gave, wrapped to count against `quota`.
fn counted(
    view: &mut wasmtime_wasi::filesystem::WasiFilesystemCtxView<'_>,
    opened: wasmtime_wasi::p2::FsResult<Resource<DynOutputStream>>,
    quota: FileWrites,
) -> wasmtime::Result<Result<Resource<DynOutputStream>, ErrorCode>> {
    let stream = match opened {
        Ok(stream) => stream,
        Err(e) => return Ok(Err(e.downcast()?)),
    };
    let inner = view.table.delete(stream)?;
    let counted: DynOutputStream = Box::new(Counted { inner, quota });
    Ok(Ok(view.table.push(counted)?))
}

/// A file's output stream that writes only within its call's quota.
struct Counted {
    inner: DynOutputStream,
    quota: FileWrites,
}

fn over_quota() -> StreamError {
    StreamError::LastOperationFailed(std::io::Error::from_raw_os_error(libc::ENOSPC).into())
}

#[async_trait::async_trait]
impl OutputStream for Counted {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        self.quota.take(bytes.len() as u64).map_err(|()| over_quota())?;
        self.inner.write(bytes)
    }

    fn flush(&mut self) -> StreamResult<()> {
        self.inner.flush()
    }

    /// The file's own permit: a write that would pass the quota is then
    /// refused whole, rather than cut to fit.
    fn check_write(&mut self) -> StreamResult<usize> {
        self.inner.check_write()
    }

    async fn cancel(&mut self) {
        self.inner.cancel().await;
    }
}

#[async_trait::async_trait]
impl Pollable for Counted {
    async fn ready(&mut self) {
        self.inner.ready().await;
    }
}

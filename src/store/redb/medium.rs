//! Where the redb file lives, and how it is opened: at start-up and again each time the writer
//! heals after a failure. The data file is created readable by its owner alone; a simulated
//! disk (tests, tools) stands in for it through the same path.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};

use redb::backends::FileBackend;
use redb::{Builder, ConcurrencyMode, Database};

use super::open_error;
use super::simulated::SimulatedDisk;
use crate::store::{Limits, OpenError, warn_if_others_can_access};

/// Where the database is.
#[derive(Clone)]
pub(in crate::store) enum Medium {
    File(PathBuf),
    Simulated(SimulatedDisk),
}

impl Medium {
    /// Opens (or creates) the database. `first`: the store's own open, which warns of a data
    /// file that others can read; reopens after a failure say nothing more.
    pub(super) fn open(&self, limits: &Limits, first: bool) -> Result<Database, OpenError> {
        let mut builder = Builder::new();
        builder
            .set_cache_size(limits.cache_bytes)
            // The whole file is locked once at open, so read transactions take no file locks
            // (`SingleWriter` takes byte-range locks in each). Another process cannot open the
            // file meanwhile: `rogeriq backup` and `export` then ask this server (`src/ops.rs`).
            .set_concurrency_mode(ConcurrencyMode::ExclusiveWriter);
        match self {
            Medium::File(path) => {
                let mut options = OpenOptions::new();
                options.read(true).write(true).create(true).truncate(false);
                // Customer data: a new file is its owner's alone, whatever the umask.
                #[cfg(unix)]
                std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
                let file = options.open(path).map_err(|err| {
                    OpenError::Other(format!("cannot open {}: {err}", path.display()))
                })?;
                if first {
                    warn_if_others_can_access(path);
                }
                FileBackend::new(file)
                    .and_then(|file| builder.create_with_backend(file))
                    .map_err(|err| open_error(path, err))
            }
            Medium::Simulated(disk) => builder
                .create_with_backend(disk.open())
                .map_err(|err| OpenError::Other(format!("cannot open a simulated disk: {err}"))),
        }
    }

    /// Bytes still free where the database grows, when known.
    pub(super) fn free_bytes(&self) -> Option<u64> {
        match self {
            Medium::File(path) => {
                let folder = path.parent().filter(|p| !p.as_os_str().is_empty());
                let stats = rustix::fs::statvfs(folder.unwrap_or(Path::new("."))).ok()?;
                Some(stats.f_bavail.saturating_mul(stats.f_frsize))
            }
            Medium::Simulated(disk) => disk.free_bytes(),
        }
    }
}

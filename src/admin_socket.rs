//! The server's local admin socket: a Unix domain socket in the data folder (`admin.sock`),
//! mode 0600 and owned by the server's user. Whoever can open it can read the data file too,
//! so the file system is the credential: `rogeriq backup`, `export` and `restore` reach a
//! running server there with no key (`src/ops.rs`), and the server answers only its owner's
//! user (and root) on it (`server.rs`).
//!
//! A socket's path must fit `sun_path` (108 bytes on Linux with its terminating NUL, 104 on
//! the BSDs and macOS). A longer data folder is reached on Linux through its open descriptor,
//! `/proc/self/fd/N/admin.sock`, which the kernel resolves to the same file.

use std::fs::{self, File};
use std::io;
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::UnixListener;
use std::path::{Path, PathBuf};

/// The socket's name in the data folder.
pub const FILE_NAME: &str = "admin.sock";

/// The longest path a socket address holds, without its NUL.
const MAX_PATH_BYTES: usize = if cfg!(target_os = "linux") { 107 } else { 103 };

/// The socket's path in a data folder, short enough to bind or connect to; valid while it
/// lives (it may hold the folder open).
pub struct SocketPath {
    path: PathBuf,
    /// The data folder, open, when the path goes through its descriptor.
    _folder: Option<File>,
}

impl SocketPath {
    pub fn of(data_dir: &Path) -> io::Result<SocketPath> {
        let path = data_dir.join(FILE_NAME);
        if path.as_os_str().len() <= MAX_PATH_BYTES {
            return Ok(SocketPath {
                path,
                _folder: None,
            });
        }
        if cfg!(target_os = "linux") {
            use std::os::fd::AsRawFd;
            let folder = File::open(data_dir)?;
            return Ok(SocketPath {
                path: PathBuf::from(format!("/proc/self/fd/{}/{FILE_NAME}", folder.as_raw_fd())),
                _folder: Some(folder),
            });
        }
        Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            format!(
                "{} is too long for a Unix socket ({MAX_PATH_BYTES} bytes at most); choose a \
                 shorter data_dir",
                path.display()
            ),
        ))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The bound socket and the user it answers.
pub struct Bound {
    pub listener: UnixListener,
    /// The server's user, who owns the socket file.
    pub owner: u32,
}

/// Binds the admin socket in `data_dir`, mode 0600. Call it only while holding the store, so
/// that a socket found there is a stale one, left by a server that did not stop cleanly: it is
/// removed. A file of that name that is not a socket is left alone and the bind fails.
pub fn bind(data_dir: &Path) -> io::Result<Bound> {
    let at = SocketPath::of(data_dir)?;
    match fs::symlink_metadata(at.path()) {
        Ok(meta) if meta.file_type().is_socket() => fs::remove_file(at.path())?,
        Ok(_) => {
            return Err(io::Error::new(
                io::ErrorKind::AlreadyExists,
                format!(
                    "{} exists and is not a socket; move it away",
                    data_dir.join(FILE_NAME).display()
                ),
            ));
        }
        Err(err) if err.kind() == io::ErrorKind::NotFound => {}
        Err(err) => return Err(err),
    }
    let listener = UnixListener::bind(at.path())?;
    // The folder is the owner's alone when the server made it; the mode and the server's check
    // of each peer (`owner`) hold where it is not.
    fs::set_permissions(at.path(), fs::Permissions::from_mode(0o600))?;
    let owner = fs::metadata(at.path())?.uid();
    Ok(Bound { listener, owner })
}

/// Removes the socket of its data folder when dropped: held by the server's state, so it goes
/// when the server stops.
pub struct Remover(PathBuf);

impl Remover {
    pub fn new(data_dir: &Path) -> Remover {
        Remover(data_dir.to_path_buf())
    }
}

impl Drop for Remover {
    fn drop(&mut self) {
        remove(&self.0);
    }
}

/// Removes the socket of `data_dir`.
pub fn remove(data_dir: &Path) {
    if let Ok(at) = SocketPath::of(data_dir)
        && let Err(err) = fs::remove_file(at.path())
        && err.kind() != io::ErrorKind::NotFound
    {
        tracing::warn!(error = %err, "cannot remove the admin socket");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_data_folder_is_reached_through_its_descriptor_and_a_stale_socket_goes() {
        let base = tempfile::tempdir().unwrap();
        let long = base.path().join("a".repeat(60)).join("b".repeat(60));
        fs::create_dir_all(&long).unwrap();
        assert!(long.join(FILE_NAME).as_os_str().len() > MAX_PATH_BYTES);

        let first = bind(&long).unwrap();
        let mode = fs::metadata(long.join(FILE_NAME)).unwrap().mode();
        assert_eq!(mode & 0o777, 0o600);
        let at = SocketPath::of(&long).unwrap();
        std::os::unix::net::UnixStream::connect(at.path()).unwrap();
        // A crash leaves the file; the next start replaces it.
        drop(first);
        let again = bind(&long).unwrap();
        std::os::unix::net::UnixStream::connect(at.path()).unwrap();
        drop(again);
        remove(&long);
        assert!(!long.join(FILE_NAME).exists());

        fs::write(long.join(FILE_NAME), b"not a socket").unwrap();
        assert!(bind(&long).is_err());
    }
}

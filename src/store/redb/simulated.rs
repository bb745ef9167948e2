//! A disk in memory for tests and tools (`Store::open_on`): the crash simulation of redb's own
//! tests, plus a capacity.
//!
//! - **Power cuts.** The disk keeps what was synced (`durable`) apart from what was written
//!   since (`unsynced`, in order). `cut_power_after(n)` lets `n` more writes, length changes
//!   and syncs through; the next one and every access after it fail, as the machine is gone.
//!   `restart(kept)` brings the disk back with only the synced bytes and the first `kept`
//!   pieces of what was written since: each write counts one piece per 4 KiB block it touches,
//!   so a write is torn at a 4 KiB boundary of the file, as a disk that persists whole sectors
//!   in order tears it. The file is then opened again.
//! - **A full disk.** With a capacity, a write or length change that would make the file
//!   larger fails with `ErrorKind::StorageFull` (ENOSPC), and `free_bytes` is what is left.
//! - **A failing disk.** While `set_failing(true)`, every write, length change and sync fails
//!   with EIO; reads still work.
//!
//! Handles opened before a restart stay dead after it: a store that was not closed cannot
//! write into the next boot.

use std::fmt;
use std::io::{self, ErrorKind};
use std::sync::{Arc, Mutex, MutexGuard};

/// The block a torn write is cut at.
const BLOCK: u64 = 4096;

/// A data file in memory. Clones share the disk.
#[derive(Clone, Default)]
pub struct SimulatedDisk {
    state: Arc<Mutex<DiskState>>,
}

impl fmt::Debug for SimulatedDisk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.lock();
        f.debug_struct("SimulatedDisk")
            .field("len", &state.live.len())
            .field("unsynced", &state.unsynced.len())
            .field("capacity", &state.capacity)
            .finish()
    }
}

#[derive(Default)]
struct DiskState {
    /// The file as readers see it now.
    live: Vec<u8>,
    /// The file as a power cut would leave it.
    durable: Vec<u8>,
    /// What was done since the last sync, oldest first.
    unsynced: Vec<Change>,
    /// The file's largest size, if any.
    capacity: Option<u64>,
    /// Writes, length changes and syncs fail with EIO.
    failing: bool,
    /// Changes and syncs still allowed before the power goes; `None`: no cut planned.
    power_left: Option<u64>,
    /// The power is off: every access fails until `restart`.
    off: bool,
    /// Counts restarts; a handle of an earlier boot fails.
    boot: u64,
}

enum Change {
    Write { offset: u64, data: Vec<u8> },
    SetLen(u64),
}

impl Change {
    /// The pieces a cut may keep of it: one per 4 KiB block a write touches.
    fn pieces(&self) -> u64 {
        match self {
            Change::SetLen(_) => 1,
            Change::Write { offset, data } => {
                let end = offset + data.len() as u64;
                end.div_ceil(BLOCK).saturating_sub(offset / BLOCK).max(1)
            }
        }
    }

    /// Applies its first `pieces` pieces to `file`.
    fn apply(&self, file: &mut Vec<u8>, pieces: u64) {
        match self {
            Change::SetLen(len) => file.resize(*len as usize, 0),
            Change::Write { offset, data } => {
                let kept = if pieces >= self.pieces() {
                    data.len()
                } else {
                    let cut = (offset / BLOCK + pieces) * BLOCK;
                    (cut - offset) as usize
                };
                let start = *offset as usize;
                if file.len() < start + kept {
                    file.resize(start + kept, 0);
                }
                file[start..start + kept].copy_from_slice(&data[..kept]);
            }
        }
    }
}

fn power_cut() -> io::Error {
    io::Error::other("the power is off (simulated power cut)")
}

impl SimulatedDisk {
    pub fn new() -> SimulatedDisk {
        SimulatedDisk::default()
    }

    fn lock(&self) -> MutexGuard<'_, DiskState> {
        // A panic while it was held (a failed assertion of a test) leaves bytes, not invariants.
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Limits the file to `bytes` (a full disk beyond), or lifts the limit with `None`.
    pub fn set_capacity(&self, bytes: Option<u64>) {
        self.lock().capacity = bytes;
    }

    /// Makes every write, length change and sync fail with EIO (`true`), or work again.
    pub fn set_failing(&self, failing: bool) {
        self.lock().failing = failing;
    }

    /// What the file may still grow by, if the disk has a capacity.
    pub fn free_bytes(&self) -> Option<u64> {
        let state = self.lock();
        let capacity = state.capacity?;
        Some(capacity.saturating_sub(state.live.len() as u64))
    }

    /// The file's size now.
    pub fn len(&self) -> u64 {
        self.lock().live.len() as u64
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Lets `calls` more writes, length changes and syncs through, then cuts the power.
    pub fn cut_power_after(&self, calls: u64) {
        self.lock().power_left = Some(calls);
    }

    /// Whether the power is off.
    pub fn is_off(&self) -> bool {
        self.lock().off
    }

    /// The pieces of unsynced work a restart may keep (see `restart`).
    pub fn unsynced_pieces(&self) -> u64 {
        self.lock().unsynced.iter().map(Change::pieces).sum()
    }

    /// Powers the disk back on with what was synced plus the first `kept` pieces of what was
    /// done since (0 drops all of it). Handles opened before stay dead.
    pub fn restart(&self, kept: u64) {
        let mut state = self.lock();
        let mut file = std::mem::take(&mut state.durable);
        let mut left = kept;
        for change in std::mem::take(&mut state.unsynced) {
            if left == 0 {
                break;
            }
            let pieces = change.pieces().min(left);
            change.apply(&mut file, pieces);
            left -= pieces;
        }
        state.live = file.clone();
        state.durable = file;
        state.off = false;
        state.power_left = None;
        state.boot += 1;
    }

    /// A handle on the file for redb, valid until the next restart.
    pub(super) fn open(&self) -> SimulatedFile {
        SimulatedFile {
            boot: self.lock().boot,
            disk: self.clone(),
        }
    }
}

/// The file of a `SimulatedDisk`, as redb's storage backend.
#[derive(Debug)]
pub(super) struct SimulatedFile {
    disk: SimulatedDisk,
    boot: u64,
}

impl SimulatedFile {
    /// The disk, if this handle may use it now.
    fn state(&self) -> io::Result<MutexGuard<'_, DiskState>> {
        let state = self.disk.lock();
        if state.off || state.boot != self.boot {
            return Err(power_cut());
        }
        Ok(state)
    }

    /// The disk, for a change or a sync: counts down to a planned power cut.
    fn changing(&self) -> io::Result<MutexGuard<'_, DiskState>> {
        let mut state = self.state()?;
        if state.failing {
            return Err(rustix::io::Errno::IO.into());
        }
        match state.power_left {
            Some(0) => {
                state.off = true;
                Err(power_cut())
            }
            Some(left) => {
                state.power_left = Some(left - 1);
                Ok(state)
            }
            None => Ok(state),
        }
    }
}

fn check_capacity(state: &DiskState, len: u64) -> io::Result<()> {
    match state.capacity {
        Some(capacity) if len > capacity && len > state.live.len() as u64 => Err(io::Error::new(
            ErrorKind::StorageFull,
            "no space left on device (simulated)",
        )),
        _ => Ok(()),
    }
}

impl redb::StorageBackend for SimulatedFile {
    fn len(&self) -> io::Result<u64> {
        Ok(self.state()?.live.len() as u64)
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        let state = self.state()?;
        let start = usize::try_from(offset).map_err(io::Error::other)?;
        let bytes = start
            .checked_add(out.len())
            .and_then(|end| state.live.get(start..end))
            .ok_or_else(|| io::Error::from(ErrorKind::UnexpectedEof))?;
        out.copy_from_slice(bytes);
        Ok(())
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        let mut state = self.changing()?;
        check_capacity(&state, len)?;
        let change = Change::SetLen(len);
        change.apply(&mut state.live, 1);
        state.unsynced.push(change);
        Ok(())
    }

    fn sync_data(&self) -> io::Result<()> {
        let mut state = self.changing()?;
        let DiskState {
            durable, unsynced, ..
        } = &mut *state;
        for change in unsynced.drain(..) {
            change.apply(durable, u64::MAX);
        }
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        let mut state = self.changing()?;
        check_capacity(&state, offset + data.len() as u64)?;
        let change = Change::Write {
            offset,
            data: data.to_vec(),
        };
        change.apply(&mut state.live, u64::MAX);
        state.unsynced.push(change);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use redb::StorageBackend;

    use super::*;

    #[test]
    fn a_restart_keeps_what_was_synced_and_the_pieces_asked_for() {
        let disk = SimulatedDisk::new();
        let file = disk.open();
        file.write(0, &[1; 100]).unwrap();
        file.sync_data().unwrap();
        // Three blocks from 4000: pieces [4000, 4096), [4096, 8192), [8192, 10000).
        file.write(4000, &[2; 6000]).unwrap();
        assert_eq!(disk.unsynced_pieces(), 3);
        assert_eq!(file.len().unwrap(), 10_000);

        disk.restart(2);
        assert!(file.len().is_err(), "a handle of the last boot is dead");
        let file = disk.open();
        assert_eq!(file.len().unwrap(), 8192);
        let mut head = [0; 100];
        file.read(0, &mut head).unwrap();
        assert_eq!(head, [1; 100]);
        let mut torn = [0; 2];
        file.read(8190, &mut torn).unwrap();
        assert_eq!(torn, [2, 2]);

        file.write(0, &[3; 10]).unwrap();
        disk.restart(0);
        let file = disk.open();
        let mut head = [0; 10];
        file.read(0, &mut head).unwrap();
        assert_eq!(head, [1; 10], "unsynced work is gone");
    }

    #[test]
    fn the_power_goes_after_the_calls_allowed_and_a_full_disk_refuses_growth() {
        let disk = SimulatedDisk::new();
        let file = disk.open();
        disk.cut_power_after(2);
        file.write(0, &[1; 10]).unwrap();
        file.sync_data().unwrap();
        assert!(file.write(10, &[1; 10]).is_err());
        assert!(disk.is_off());
        assert!(file.read(0, &mut [0; 1]).is_err(), "everything fails");
        disk.restart(0);

        let file = disk.open();
        disk.set_capacity(Some(4096));
        assert_eq!(disk.free_bytes(), Some(4086));
        file.write(0, &[5; 4096]).unwrap();
        let full = file.write(4096, &[5; 1]).unwrap_err();
        assert_eq!(full.kind(), ErrorKind::StorageFull);
        assert_eq!(
            file.set_len(8192).unwrap_err().kind(),
            ErrorKind::StorageFull
        );
        file.write(0, &[6; 4096]).unwrap();
        file.set_len(100).unwrap();
        assert_eq!(disk.free_bytes(), Some(3996));
    }
}

//! Online backup and restore of the data file.
//!
//! A backup is itself a redb file: every table as of one read transaction (one commit), copied
//! table by table into a new database in bounded write transactions, plus a `backup` table
//! that holds the backup format. It is written to a hidden temporary file beside the target and
//! published under its name only once complete and durable, so a crash mid-backup never leaves
//! a file that looks complete. A read transaction never waits for the writer, nor the writer
//! for it: the server keeps committing while the copy runs (redb keeps the pages the snapshot
//! still reads).
//!
//! The server opens the data file in redb's default `ConcurrencyMode::ExclusiveWriter`: it locks
//! the whole file once, so its read transactions take no file locks, and no other process can
//! open the file while it runs. `ReadSource::open` (`rogeriq backup`, `rogeriq export`) therefore
//! reads the file directly only when no server holds it, and reports `OpenError::AlreadyOpen`
//! otherwise; the binary then asks the running server for the backup over HTTP (`src/ops.rs`).
//!
//! A restore copies the backup into the data folder, verifies the copy (every page's checksum,
//! the format, every table read to its end), and only then keeps the current data file aside
//! and renames the copy over it. It holds the current file's writer lock throughout, so it
//! refuses to run beside a server and no server can start on the old file meanwhile.

use std::fs::{self, File, OpenOptions};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use redb::{
    ConcurrencyMode, Database, DatabaseError, Durability, Key, ReadOnlyDatabase, ReadTransaction,
    ReadableDatabase, ReadableTable, TableDefinition, TableHandle, Value,
};

use super::{META, SECRETS, definition, open_error, rx_of};
use crate::error::{ApiError, ApiResult};
use crate::ids;
use crate::store::{Limits, OpenError, Rx, panic_message, tables};

/// The layout of a backup file, kept in its `backup` table. A restore refuses a higher one.
pub const BACKUP_FORMAT: u64 = 1;
const BACKUP_INFO: TableDefinition<'static, &'static str, u64> = TableDefinition::new("backup");
const FORMAT_KEY: &str = "format";

/// Most entries, and most bytes of keys and values, copied into the backup in one write
/// transaction: what the copy holds in memory at once, whatever the store's size.
const BATCH_ENTRIES: u64 = 10_000;
const BATCH_BYTES: usize = 16 * 1024 * 1024;
/// redb's page cache for the backup file and the restore's copy: they are written or read once.
const COPY_CACHE_BYTES: usize = 16 * 1024 * 1024;

/// A finished backup.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BackupInfo {
    pub file: PathBuf,
    /// Bytes of the backup file.
    pub size: u64,
    /// Entries copied, over every table.
    pub entries: u64,
}

/// A data file (or a backup file) opened to read from outside the server, which must not hold
/// it.
pub struct ReadSource(Source);

enum Source {
    /// A read-only handle. It keeps a server from opening the file until it is dropped.
    ReadOnly(ReadOnlyDatabase),
    /// A file that needed the repair an unclean stop leaves, which a read-only handle may not
    /// make: opened, and so repaired, as a writer, since no server holds it.
    Repaired(Database),
}

impl ReadSource {
    /// Opens an existing data file for reading; refused while another process holds it.
    pub fn open(path: &Path) -> Result<ReadSource, OpenError> {
        if !path.is_file() {
            return Err(OpenError::Other(format!(
                "no data file at {}",
                path.display()
            )));
        }
        let mut builder = Database::builder();
        builder
            .set_cache_size(COPY_CACHE_BYTES)
            .set_concurrency_mode(ConcurrencyMode::ExclusiveWriter);
        match builder.open_read_only(path) {
            Ok(db) => Ok(ReadSource(Source::ReadOnly(db))),
            Err(DatabaseError::RepairAborted) => match builder.open(path) {
                Ok(db) => Ok(ReadSource(Source::Repaired(db))),
                Err(err) => Err(open_error(path, err)),
            },
            Err(err) => Err(open_error(path, err)),
        }
    }

    fn begin_read(&self) -> ApiResult<ReadTransaction> {
        Ok(match &self.0 {
            Source::ReadOnly(db) => db.begin_read()?,
            Source::Repaired(db) => db.begin_read()?,
        })
    }

    /// Runs `op` in one read transaction: one snapshot of the store.
    pub fn read<T>(&self, op: impl FnOnce(&Rx) -> ApiResult<T>) -> ApiResult<T> {
        // Tools read whole tables; no list page is served from here.
        op(&rx_of(self.begin_read()?, Limits::default()))
    }

    /// Copies one snapshot of every table to a new backup file at `dest`.
    pub fn backup_to(&self, dest: &Path) -> ApiResult<BackupInfo> {
        write_backup(&self.begin_read()?, dest)
    }
}

/// Every table of the store, as the copy and the verification walk them.
fn copy_tables(mut each: impl FnMut(&dyn CopyTable) -> ApiResult<()>) -> ApiResult<Vec<String>> {
    let mut names = Vec::new();
    let mut visit = |table: &dyn CopyTable| {
        names.push(table.table_name());
        each(table)
    };
    for table in tables::ALL {
        visit(&definition(table))?;
    }
    visit(&META)?;
    visit(&SECRETS)?;
    Ok(names)
}

/// One table, whatever its key and value types: copied, or read to its end.
trait CopyTable {
    fn table_name(&self) -> String;
    /// Copies the table's entries from `source` into `dest`, in batches; returns how many.
    fn copy(&self, source: &ReadTransaction, dest: &Database) -> ApiResult<u64>;
    /// Reads every entry of the table; returns how many, or `None` when it is missing.
    fn read_all(&self, source: &ReadTransaction) -> ApiResult<Option<u64>>;
}

impl<K: Key + 'static, V: Value + 'static> CopyTable for TableDefinition<'static, K, V> {
    fn table_name(&self) -> String {
        self.name().to_string()
    }

    fn copy(&self, source: &ReadTransaction, dest: &Database) -> ApiResult<u64> {
        let table = match source.open_table(*self) {
            Ok(table) => table,
            // A table the store never made is copied as an empty one.
            Err(redb::TableError::TableDoesNotExist(_)) => {
                let txn = dest.begin_write()?;
                txn.open_table(*self)?;
                txn.commit()?;
                return Ok(0);
            }
            Err(err) => return Err(err.into()),
        };
        let mut entries = table.iter()?;
        let mut copied = 0;
        loop {
            let mut txn = dest.begin_write()?;
            // Durable once the backup's last transaction commits (`write_backup`).
            txn.set_durability(Durability::None)?;
            let mut finished = true;
            {
                let mut out = txn.open_table(*self)?;
                let (mut count, mut bytes) = (0u64, 0usize);
                for entry in entries.by_ref() {
                    let (key, value) = entry?;
                    out.insert(key.value(), value.value())?;
                    count += 1;
                    bytes += K::as_bytes(&key.value()).as_ref().len()
                        + V::as_bytes(&value.value()).as_ref().len();
                    if count >= BATCH_ENTRIES || bytes >= BATCH_BYTES {
                        finished = false;
                        break;
                    }
                }
                copied += count;
            }
            txn.commit()?;
            if finished {
                return Ok(copied);
            }
        }
    }

    fn read_all(&self, source: &ReadTransaction) -> ApiResult<Option<u64>> {
        let table = match source.open_table(*self) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(err) => return Err(err.into()),
        };
        let mut count = 0;
        for entry in table.iter()? {
            let (key, value) = entry?;
            // Decoding each key and value is what a reader of the table will do.
            let _ = (key.value(), value.value());
            count += 1;
        }
        Ok(Some(count))
    }
}

/// The tables `txn` holds that no table of the store names: a file of another program, or of a
/// newer rogeriq.
fn unknown_tables(txn: &ReadTransaction, known: &[String]) -> ApiResult<Vec<String>> {
    Ok(txn
        .list_tables()?
        .map(|t| t.name().to_string())
        .filter(|name| !known.contains(name))
        .collect())
}

/// A hidden file beside `dest`, in its folder, so that the final rename stays on one file
/// system.
fn temporary_beside(dest: &Path, what: &str) -> ApiResult<PathBuf> {
    let name = dest
        .file_name()
        .ok_or_else(|| ApiError::internal(format!("{} names no file", dest.display())))?;
    Ok(dest.with_file_name(format!(
        ".{}.{what}-{}",
        name.to_string_lossy(),
        ids::random_alphanumeric(8)
    )))
}

/// Copies the snapshot `source` into a new backup file at `dest`, which must not exist; its
/// folder is made if missing.
pub(super) fn write_backup(source: &ReadTransaction, dest: &Path) -> ApiResult<BackupInfo> {
    if dest.exists() {
        return Err(ApiError::internal(format!(
            "{} already exists; a backup never overwrites a file",
            dest.display()
        )));
    }
    if let Some(folder) = dest.parent().filter(|f| !f.as_os_str().is_empty()) {
        fs::create_dir_all(folder).map_err(|err| ApiError::internal_from("backup", err))?;
    }
    let temp = temporary_beside(dest, "partial")?;
    let written = write_backup_file(source, &temp).and_then(|entries| {
        publish(&temp, dest)?;
        Ok(entries)
    });
    match written {
        Ok(entries) => Ok(BackupInfo {
            file: dest.to_path_buf(),
            size: fs::metadata(dest)
                .map_err(|err| ApiError::internal_from("backup", err))?
                .len(),
            entries,
        }),
        Err(err) => {
            let _ = fs::remove_file(&temp);
            Err(err)
        }
    }
}

/// Gives the finished backup file `from` a second name `dest`, which must not exist: a hard
/// link where it can (the same file system), else a copy published as `write_backup` publishes
/// its file. Returns the size. The caller removes `from`.
pub fn place_backup(from: &Path, dest: &Path) -> ApiResult<u64> {
    let io = |err| ApiError::internal_from("backup", err);
    if dest.exists() {
        return Err(ApiError::internal(format!(
            "{} already exists; a backup never overwrites a file",
            dest.display()
        )));
    }
    if let Some(folder) = dest.parent().filter(|f| !f.as_os_str().is_empty()) {
        fs::create_dir_all(folder).map_err(io)?;
    }
    match fs::hard_link(from, dest) {
        Ok(()) => sync_folder(dest).map_err(io)?,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return Err(io(err)),
        // Another file system, or links refused: copy.
        Err(_) => {
            let temp = temporary_beside(dest, "partial")?;
            let copied = copy_synced(from, &temp)
                .map_err(io)
                .and_then(|()| publish(&temp, dest));
            if let Err(err) = copied {
                let _ = fs::remove_file(&temp);
                return Err(err);
            }
        }
    }
    Ok(fs::metadata(dest).map_err(io)?.len())
}

fn copy_synced(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut out = create_private(to)?;
    std::io::copy(&mut File::open(from)?, &mut out)?;
    out.sync_all()
}

fn write_backup_file(source: &ReadTransaction, temp: &Path) -> ApiResult<u64> {
    // Readable by its owner alone, like the data it holds; redb fills the empty file.
    create_private(temp).map_err(|err| ApiError::internal_from("backup", err))?;
    let dest = Database::builder()
        .set_cache_size(COPY_CACHE_BYTES)
        .create(temp)
        .map_err(|err| ApiError::internal(format!("cannot create {}: {err}", temp.display())))?;
    let mut entries = 0;
    let known = copy_tables(|table| {
        entries += table.copy(source, &dest)?;
        Ok(())
    })?;
    let unknown = unknown_tables(source, &known)?;
    if !unknown.is_empty() {
        return Err(ApiError::internal(format!(
            "the store holds tables this rogeriq does not know: {unknown:?}"
        )));
    }
    // The one durable commit: it makes every batch before it durable too.
    let mut txn = dest.begin_write()?;
    txn.set_durability(Durability::Immediate)?;
    txn.open_table(BACKUP_INFO)?
        .insert(FORMAT_KEY, BACKUP_FORMAT)?;
    txn.commit()?;
    dest.close()
        .map_err(|err| ApiError::internal(format!("closing the backup: {err}")))?;
    Ok(entries)
}

fn create_private(path: &Path) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)
}

/// Gives the finished `temp` its final name `dest` without replacing a file that appeared
/// meanwhile: a hard link fails when `dest` exists; where links are not supported, a rename.
fn publish(temp: &Path, dest: &Path) -> ApiResult<()> {
    let io = |err| ApiError::internal_from("backup", err);
    match fs::hard_link(temp, dest) {
        Ok(()) => fs::remove_file(temp).map_err(io)?,
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => return Err(io(err)),
        Err(_) => fs::rename(temp, dest).map_err(io)?,
    }
    sync_folder(dest).map_err(io)
}

/// Makes a rename or link in `path`'s folder durable.
fn sync_folder(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        #[cfg(unix)]
        Some(folder) => File::open(if folder.as_os_str().is_empty() {
            Path::new(".")
        } else {
            folder
        })?
        .sync_all(),
        _ => Ok(()),
    }
}

/// Why a restore did not happen.
#[derive(Debug)]
pub enum RestoreError {
    /// A server (or another writer) holds the data file.
    InUse(PathBuf),
    /// The backup file failed verification; nothing was replaced.
    Invalid(String),
    /// Reading or writing files failed; nothing was replaced.
    Io(String),
}

impl std::fmt::Display for RestoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RestoreError::InUse(path) => write!(
                f,
                "the data file {} is in use by a running rogeriq server: stop it before \
                 restoring",
                path.display()
            ),
            RestoreError::Invalid(why) => write!(f, "not a usable backup: {why}"),
            RestoreError::Io(why) => f.write_str(why),
        }
    }
}

/// A finished restore.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Restored {
    pub data_file: PathBuf,
    /// Where the data file that was replaced now is, if there was one.
    pub previous: Option<PathBuf>,
    /// Entries restored, over every table.
    pub entries: u64,
}

/// Replaces the data file `data_file` with the backup `from`, after verifying a copy of it.
pub fn restore(data_file: &Path, from: &Path) -> Result<Restored, RestoreError> {
    let io = |what: &str, path: &Path, err: std::io::Error| {
        RestoreError::Io(format!("cannot {what} {}: {err}", path.display()))
    };
    if !from.is_file() {
        return Err(RestoreError::Io(format!(
            "no backup file at {}",
            from.display()
        )));
    }
    if let Some(folder) = data_file.parent() {
        fs::create_dir_all(folder).map_err(|err| io("create", folder, err))?;
    }
    // A read-only handle in the default mode refuses to open beside a writer and keeps one from
    // opening, without writing to the file. Held until the new file is in place: no server
    // starts on the old one meanwhile.
    let held = if data_file.exists() {
        let opened = Database::builder()
            .set_cache_size(COPY_CACHE_BYTES)
            .open_read_only(data_file);
        match opened {
            Ok(db) => Some(db),
            Err(DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch) => {
                return Err(RestoreError::InUse(data_file.to_path_buf()));
            }
            // A damaged data file is what a restore is for: it is kept aside all the same.
            Err(_) => None,
        }
    } else {
        None
    };

    let staging = temporary_beside(data_file, "restoring")
        .map_err(|err| RestoreError::Io(err.to_string()))?;
    let verified = fs::copy(from, &staging)
        .map_err(|err| io("copy the backup to", &staging, err))
        .and_then(|_| verify_and_finish(&staging));
    let entries = match verified {
        Ok(entries) => entries,
        Err(err) => {
            let _ = fs::remove_file(&staging);
            return Err(err);
        }
    };

    let previous = if data_file.exists() {
        let aside = aside_name(data_file);
        // A link keeps the old file under a second name while the rename below replaces the
        // first, so the data file's name never names nothing.
        if fs::hard_link(data_file, &aside).is_err() {
            fs::copy(data_file, &aside).map_err(|err| io("keep aside", data_file, err))?;
        }
        Some(aside)
    } else {
        None
    };
    fs::rename(&staging, data_file).map_err(|err| io("replace", data_file, err))?;
    sync_folder(data_file).map_err(|err| io("sync the folder of", data_file, err))?;
    drop(held);
    Ok(Restored {
        data_file: data_file.to_path_buf(),
        previous,
        entries,
    })
}

/// `rogeriq.redb.before-restore-<unix seconds>`, numbered when taken.
fn aside_name(data_file: &Path) -> PathBuf {
    let named = |suffix: String| {
        let mut name = data_file.as_os_str().to_owned();
        name.push(suffix);
        PathBuf::from(name)
    };
    let base = format!(
        ".before-restore-{}",
        crate::timestamp::Timestamp::now().unix()
    );
    let mut aside = named(base.clone());
    let mut n = 1;
    while aside.exists() {
        n += 1;
        aside = named(format!("{base}-{n}"));
    }
    aside
}

/// Verifies the restore's copy of a backup and makes it a plain data file: every page's
/// checksum (redb's integrity check on open), the format, and every table of the store present
/// and read to its end, with no table the store does not know. Then drops the `backup` table.
/// Returns the entries read. A damaged file can make redb panic; that is a failed check too.
fn verify_and_finish(staging: &Path) -> Result<u64, RestoreError> {
    let checked = catch_unwind(AssertUnwindSafe(|| verify_copy(staging)));
    match checked {
        Ok(result) => result,
        Err(panic) => Err(RestoreError::Invalid(format!(
            "reading it failed: {}",
            panic_message(panic.as_ref())
        ))),
    }
}

fn verify_copy(staging: &Path) -> Result<u64, RestoreError> {
    let invalid = |why: String| RestoreError::Invalid(why);
    let db = Database::builder()
        .set_cache_size(COPY_CACHE_BYTES)
        .set_check_integrity_on_open(true)
        .open(staging)
        .map_err(|err| invalid(format!("not a redb file, or a damaged one ({err})")))?;
    let txn = db
        .begin_read()
        .map_err(|err| invalid(format!("unreadable: {err}")))?;
    let format = match txn.open_table(BACKUP_INFO) {
        Ok(info) => info
            .get(FORMAT_KEY)
            .map_err(|err| invalid(format!("unreadable: {err}")))?
            .map(|v| v.value()),
        Err(_) => None,
    };
    match format {
        None => {
            return Err(invalid(
                "it has no backup format: not a file written by `rogeriq backup`".into(),
            ));
        }
        Some(format) if format > BACKUP_FORMAT => {
            return Err(invalid(format!(
                "its format {format} is newer than this rogeriq reads ({BACKUP_FORMAT}); \
                 restore it with a newer rogeriq"
            )));
        }
        Some(_) => {}
    }
    let mut entries = 0;
    let mut missing = Vec::new();
    let known = copy_tables(|table| {
        match table.read_all(&txn)? {
            Some(n) => entries += n,
            None => missing.push(table.table_name()),
        }
        Ok(())
    })
    .map_err(|err| invalid(format!("a table is unreadable: {err}")))?;
    if !missing.is_empty() {
        return Err(invalid(format!("it lacks the tables {missing:?}")));
    }
    let mut unknown =
        unknown_tables(&txn, &known).map_err(|err| invalid(format!("unreadable: {err}")))?;
    unknown.retain(|name| name != BACKUP_INFO.name());
    if !unknown.is_empty() {
        return Err(invalid(format!(
            "it holds tables this rogeriq does not know: {unknown:?}"
        )));
    }
    drop(txn);
    let finish = || -> Result<(), redb::Error> {
        let txn = db.begin_write()?;
        txn.delete_table(BACKUP_INFO)?;
        txn.commit()?;
        Ok(())
    };
    finish().map_err(|err| RestoreError::Io(format!("cannot finish the restored file: {err}")))?;
    db.close()
        .map_err(|err| RestoreError::Io(format!("cannot close the restored file: {err}")))?;
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{Reader, Store};

    fn store_with_entries(dir: &Path, n: u32) -> Store {
        let store = Store::open(&dir.join("rogeriq.redb")).unwrap();
        store
            .write_blocking(move |tx| {
                for i in 0..n {
                    tx.put_raw(tables::AUDIT, &i.to_be_bytes(), &[7u8; 100])?;
                }
                Ok(())
            })
            .unwrap();
        store
    }

    fn backup_of(store: &Store, dest: &Path) -> BackupInfo {
        write_backup(&store.redb().db.begin_read().unwrap(), dest).unwrap()
    }

    #[test]
    fn a_backup_copies_every_table_in_batches_and_restores_into_a_new_folder() {
        let dir = tempfile::tempdir().unwrap();
        let n = u32::try_from(BATCH_ENTRIES).unwrap() * 2 + 7;
        let store = store_with_entries(dir.path(), n);
        let salt = store.salted_hash("x");
        let dest = dir.path().join("copy.redb");
        let info = backup_of(&store, &dest);
        assert!(info.entries >= u64::from(n), "{info:?}");
        assert!(info.size > 0);
        // Nothing but the backup is left in the folder.
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(names.iter().all(|n| !n.starts_with('.')), "{names:?}");
        assert!(
            write_backup(&store.redb().db.begin_read().unwrap(), &dest).is_err(),
            "never overwrites"
        );

        let target = dir.path().join("new").join("rogeriq.redb");
        let restored = restore(&target, &dest).unwrap();
        assert_eq!(restored.previous, None);
        assert_eq!(restored.entries, info.entries);
        let copy = Store::open(&target).unwrap();
        assert_eq!(
            copy.read_blocking(|rx| rx.len(tables::AUDIT)).unwrap(),
            u64::from(n)
        );
        assert_eq!(copy.salted_hash("x"), salt, "the secrets came along");
        let meta_tables = copy
            .redb()
            .db
            .begin_read()
            .unwrap()
            .list_tables()
            .unwrap()
            .map(|t| t.name().to_string())
            .collect::<Vec<_>>();
        assert!(!meta_tables.contains(&"backup".to_string()));
    }

    #[test]
    fn a_placed_backup_is_the_same_file_under_a_new_name_and_never_overwrites() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_entries(dir.path(), 3);
        let made = dir.path().join("backups").join("made.redb");
        backup_of(&store, &made);
        let dest = dir.path().join("out").join("placed.redb");
        let size = place_backup(&made, &dest).unwrap();
        assert_eq!(fs::read(&dest).unwrap(), fs::read(&made).unwrap());
        assert_eq!(size, fs::metadata(&made).unwrap().len());
        let err = place_backup(&made, &dest).unwrap_err();
        assert!(format!("{err}").contains("already exists"), "{err}");
    }

    #[test]
    fn a_restore_keeps_the_old_file_aside_and_refuses_a_held_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_entries(dir.path(), 3);
        let dest = dir.path().join("b.redb");
        backup_of(&store, &dest);
        let data_file = dir.path().join("rogeriq.redb");
        // The store holds the file (in this process; another process meets the file lock).
        assert!(matches!(
            restore(&data_file, &dest),
            Err(RestoreError::InUse(_))
        ));
        store.close(std::time::Duration::from_secs(5)).unwrap();
        let restored = restore(&data_file, &dest).unwrap();
        let previous = restored.previous.expect("kept aside");
        assert!(previous.to_string_lossy().contains("before-restore"));
        assert!(Store::open(&previous).is_ok());
    }

    #[test]
    fn a_damaged_or_foreign_file_is_refused_before_anything_is_replaced() {
        let dir = tempfile::tempdir().unwrap();
        let store = store_with_entries(dir.path(), 2000);
        let dest = dir.path().join("b.redb");
        backup_of(&store, &dest);
        store.close(std::time::Duration::from_secs(5)).unwrap();
        let data_file = dir.path().join("rogeriq.redb");
        let before = fs::read(&data_file).unwrap();

        let mut damaged = fs::read(&dest).unwrap();
        let middle = damaged.len() / 2;
        for byte in &mut damaged[middle..middle + 64] {
            *byte ^= 0x5a;
        }
        let cases: Vec<(&str, Vec<u8>)> = vec![
            ("damaged", damaged),
            ("empty", Vec::new()),
            ("text", b"not a database".to_vec()),
        ];
        for (what, bytes) in cases {
            let bad = dir.path().join(format!("{what}.redb"));
            fs::write(&bad, bytes).unwrap();
            let err = restore(&data_file, &bad).unwrap_err();
            assert!(matches!(err, RestoreError::Invalid(_)), "{what}: {err}");
        }
        // A plain data file is not a backup either.
        let err = restore(&dir.path().join("other.redb"), &data_file).unwrap_err();
        assert!(err.to_string().contains("backup format"), "{err}");

        assert!(fs::read(&data_file).unwrap() == before, "untouched");
        let names: Vec<String> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(
            names
                .iter()
                .all(|n| !n.starts_with('.') && !n.contains("before-restore")),
            "{names:?}"
        );
    }
}

//! The operator's tools that open the store directly rather than speak HTTP: `backup`, `restore`
//! and `export`. They find the store the way `serve` does (`--config`, `--data-dir`,
//! `ROGERIQ_DATA_DIR`), print one JSON object when done, and fail with one line on stderr.

use std::fs::{self, OpenOptions};
use std::io::BufWriter;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;
use rogeriq::config::{Flags, Settings};
use rogeriq::error::ApiError;
use rogeriq::project_owned::export::export_org;
use rogeriq::store::backup::{self, ReadSource, RestoreError};
use serde_json::json;

/// Exit code of a restore refused because a server holds the data file.
const EXIT_IN_USE: u8 = 3;
/// Exit code of settings that do not load, as for `serve`.
const EXIT_SETTINGS: u8 = 2;

/// Where the store is: the settings `serve` reads.
#[derive(Debug, Args)]
pub struct StoreFlags {
    /// TOML settings file (see config.toml.example)
    #[arg(long, env = "ROGERIQ_CONFIG", value_name = "FILE")]
    config: Option<PathBuf>,
    /// Folder of the data file [env: ROGERIQ_DATA_DIR; else the settings file; default: ./data]
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup file to write; it must not exist
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    #[command(flatten)]
    store: StoreFlags,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file to restore (made by `rogeriq backup` or POST /api/v1/admin/backup)
    #[arg(long, value_name = "FILE")]
    from: PathBuf,
    #[command(flatten)]
    store: StoreFlags,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Write to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    store: StoreFlags,
}

fn settings(flags: &StoreFlags) -> Result<Settings, ExitCode> {
    let flags = Flags {
        config: flags.config.clone(),
        data_dir: flags.data_dir.clone(),
        ..Flags::default()
    };
    Settings::load(&flags, |k| std::env::var(k).ok()).map_err(|err| {
        eprintln!("rogeriq: {err}");
        ExitCode::from(EXIT_SETTINGS)
    })
}

fn fail(err: impl std::fmt::Display) -> ExitCode {
    eprintln!("rogeriq: {err}");
    ExitCode::FAILURE
}

/// An error of the library as one line for the operator: its cause where it has one (the
/// "internal error" wrapping is for HTTP clients), else its message.
fn describe(err: &ApiError) -> String {
    match std::error::Error::source(err) {
        Some(cause) => cause.to_string(),
        None => err.message().to_string(),
    }
}

fn done(summary: serde_json::Value) -> ExitCode {
    println!("{summary}");
    ExitCode::SUCCESS
}

/// `rogeriq backup --to FILE`: one snapshot of the store, whether or not a server holds it.
pub fn backup(args: &BackupArgs) -> ExitCode {
    let settings = match settings(&args.store) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let source = match ReadSource::open(&settings.data_file()) {
        Ok(source) => source,
        Err(err) => return fail(err),
    };
    match source.backup_to(&args.to) {
        Ok(info) => done(json!(info)),
        Err(err) => fail(describe(&err)),
    }
}

/// `rogeriq restore --from FILE`: refused while a server holds the data file.
pub fn restore(args: &RestoreArgs) -> ExitCode {
    let settings = match settings(&args.store) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    match backup::restore(&settings.data_file(), &args.from) {
        Ok(restored) => done(json!(restored)),
        Err(err @ RestoreError::InUse(_)) => {
            eprintln!("rogeriq: {err}");
            ExitCode::from(EXIT_IN_USE)
        }
        Err(err) => fail(err),
    }
}

/// `rogeriq export --org ORG [--out FILE]`: the organisation's projects and all they own, as
/// JSON lines.
pub fn export(args: &ExportArgs, org: Option<String>) -> ExitCode {
    let Some(org) = org else {
        eprintln!("rogeriq: export needs --org ORG_ID");
        return crate::cli::usage_exit();
    };
    let settings = match settings(&args.store) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    let source = match ReadSource::open(&settings.data_file()) {
        Ok(source) => source,
        Err(err) => return fail(err),
    };
    match &args.out {
        None => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            match source.read(|rx| export_org(rx, &org, &mut out)) {
                Ok(_) => ExitCode::SUCCESS,
                Err(err) => fail(describe(&err)),
            }
        }
        Some(path) => match export_to_file(&source, &org, path) {
            Ok(summary) => done(summary),
            Err(err) => {
                let _ = fs::remove_file(path);
                fail(err)
            }
        },
    }
}

fn export_to_file(
    source: &ReadSource,
    org: &str,
    path: &Path,
) -> Result<serde_json::Value, String> {
    let mut options = OpenOptions::new();
    options.write(true).create(true).truncate(true);
    // Customer data: readable by its owner alone.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let file = options
        .open(path)
        .map_err(|err| format!("cannot write {}: {err}", path.display()))?;
    let mut out = BufWriter::new(file);
    let exported = source
        .read(|rx| export_org(rx, org, &mut out))
        .map_err(|err| describe(&err))?;
    out.into_inner()
        .map_err(|err| err.to_string())?
        .sync_all()
        .map_err(|err| err.to_string())?;
    Ok(json!({"file": path, "projects": exported.projects, "objects": exported.objects}))
}

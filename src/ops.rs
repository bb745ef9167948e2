//! The operator's tools that read the server's settings, and open the store directly rather than
//! speak HTTP: `config show`, `backup`, `restore` and `export`. They find the settings and the
//! store the way `serve` does (`--config`, `--data-dir`, `ROGERIQ_DATA_DIR`, …). The store's
//! tools print one JSON object when done, and fail with one line on stderr.
//!
//! A running server holds its data file alone (redb's `ExclusiveWriter` mode, which keeps file
//! locks off its read transactions). Beside one, `backup` and `export` ask that server for a
//! backup (`POST /api/v1/admin/backup`) over its admin socket in the data folder
//! (`rogeriq::admin_socket`), where no key is needed: whoever may open the socket may read the
//! data file. Where the socket does not answer, they ask over HTTP, at the address and with
//! the master key of the same settings. The server writes the backup under
//! `data_dir/backups/`: `backup` gives that file its name, `export` reads it, and both remove
//! it from there. `restore` is refused while a server answers on the socket, or anything else
//! holds the file.

use std::fs::{self, OpenOptions};
use std::io::{BufWriter, Write};
use std::net::SocketAddr;
use std::path::{Component, Path, PathBuf};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand};
use reqwest::Method;
use rogeriq::admin_socket;
use rogeriq::config::{Flags, Origin, Settings, StoreBackend};
use rogeriq::error::ApiError;
use rogeriq::ids::OrgId;
use rogeriq::org_owned::org;
use rogeriq::project_owned::export::{Exported, export_org};
use rogeriq::server;
use rogeriq::store::backup::{self, ReadSource, RestoreError};
use rogeriq::store::{Limits, Location, OpenError, Store, postgres};
use serde_json::json;

use crate::cli::client::{Api, Credential};
use crate::cli::error::CliError;
use crate::cli::output::{Format, Output};

/// Exit code of a restore refused because a server holds the data file.
const EXIT_IN_USE: u8 = 3;
/// Exit code of settings that do not load, as for `serve`.
const EXIT_SETTINGS: u8 = 2;
/// The longest wait for a running server's backup: it copies the whole store.
const SERVER_BACKUP_TIMEOUT: Duration = Duration::from_secs(3600);

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

/// Where a server that holds the store listens.
#[derive(Debug, Args)]
pub struct ServerFlags {
    /// The address of the server that may hold the store, host:port, asked for a backup with
    /// the settings' master key [env: ROGERIQ_LISTEN; else the settings file; default:
    /// 127.0.0.1:8080]
    #[arg(long, value_name = "ADDR")]
    listen: Option<String>,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup file to write; it must not exist
    #[arg(long, value_name = "FILE")]
    to: PathBuf,
    #[command(flatten)]
    store: StoreFlags,
    #[command(flatten)]
    server: ServerFlags,
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
    /// The organisation to export (org_…)
    #[arg(long, value_name = "ORG_ID")]
    org: String,
    /// Write to this file instead of stdout
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    store: StoreFlags,
    #[command(flatten)]
    server: ServerFlags,
}

#[derive(Debug, Subcommand)]
pub enum ConfigCommand {
    /// Print each setting's effective value and where it came from: the default, the --config
    /// file, an environment variable or a flag; secrets show as "(hidden)"
    #[command(after_help = "Examples:\n  rogeriq config show\n  \
                      rogeriq config show --config /etc/rogeriq/config.toml --json")]
    Show(ShowArgs),
}

#[derive(Debug, Args)]
pub struct ShowArgs {
    #[command(flatten)]
    flags: Flags,
    /// Print JSON, one object per setting: key, value, source and from (the file, variable or
    /// flag), instead of a table
    #[arg(long)]
    json: bool,
}

/// `rogeriq config show`: the settings `serve` would run with (the same flags, environment
/// variables and file), each with its source.
pub fn config(command: ConfigCommand) -> ExitCode {
    let ConfigCommand::Show(args) = command;
    let settings = match Settings::effective(&args.flags, |k| std::env::var(k).ok()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("rogeriq: {err}");
            return ExitCode::from(EXIT_SETTINGS);
        }
    };
    let rows = settings.into_iter().map(|setting| {
        let (source, from) = match setting.origin {
            Origin::Default => ("default", None),
            Origin::File(path) => ("file", Some(path.display().to_string())),
            Origin::Env(var) => ("env", Some(var)),
            Origin::Flag(flag) => ("flag", Some(flag)),
        };
        if args.json {
            json!({"key": setting.key, "value": setting.value, "source": source, "from": from})
        } else {
            // As TOML and `serve --help` write values: text in quotes, lists in brackets.
            let from = from.map(|from| format!("{source} {from}"));
            json!({"key": setting.key, "value": setting.value.to_string(), "source": from.as_deref().unwrap_or(source)})
        }
    });
    let output = Output::list(rows.collect(), &["key", "value", "source"]);
    let (text, _) = output.render(if args.json {
        Format::Json
    } else {
        Format::Table
    });
    println!("{text}");
    ExitCode::SUCCESS
}

fn settings(flags: &StoreFlags, listen: Option<&str>) -> Result<Settings, ExitCode> {
    let flags = Flags {
        config: flags.config.clone(),
        data_dir: flags.data_dir.clone(),
        listen: listen.map(str::to_string),
        ..Flags::default()
    };
    Settings::load_from_process(&flags).map_err(|err| {
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

/// `backup` and `restore` of a PostgreSQL store: refused, pointing to PostgreSQL's tools.
fn refuse_postgres(settings: &Settings) -> Option<ExitCode> {
    (settings.store.backend == StoreBackend::Postgres).then(|| fail(postgres::BACKUP_REFUSED))
}

/// `rogeriq backup --to FILE`: one snapshot of the store, whether or not a server holds it.
pub fn backup(args: &BackupArgs) -> ExitCode {
    let settings = match settings(&args.store, args.server.listen.as_deref()) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if let Some(refused) = refuse_postgres(&settings) {
        return refused;
    }
    match ReadSource::open(&settings.data_file()) {
        Ok(source) => match source.backup_to(&args.to) {
            Ok(info) => done(json!(info)),
            Err(err) => fail(describe(&err)),
        },
        Err(OpenError::AlreadyOpen(_)) => match backup_by_server(&settings, &args.to) {
            Ok(summary) => done(summary),
            Err(err) => fail(err),
        },
        Err(err) => fail(err),
    }
}

/// The backup of the server that holds the store, moved to `to`.
fn backup_by_server(settings: &Settings, to: &Path) -> Result<serde_json::Value, String> {
    // Checked first, so that no backup is made for nothing; `place_backup` checks again.
    if to.exists() {
        return Err(format!(
            "{} already exists; a backup never overwrites a file",
            to.display()
        ));
    }
    let made = ServerBackup::ask(settings, "backup")?;
    let size = backup::place_backup(&made.file, to).map_err(|err| describe(&err))?;
    Ok(json!({"file": to, "size": size, "entries": made.entries, "server": made.server}))
}

/// A backup that the server holding the store wrote under `data_dir/backups/` for this tool;
/// removed from there when dropped.
struct ServerBackup {
    file: PathBuf,
    entries: Option<u64>,
    /// The server's base URL.
    server: String,
}

impl ServerBackup {
    /// Asks the server that holds the store for a backup, after `ReadSource::open` found the
    /// data file held: over its admin socket, else over HTTP at `listen` with `master_key`.
    /// `tool` names the command, for messages.
    fn ask(settings: &Settings, tool: &str) -> Result<ServerBackup, String> {
        let held = format!(
            "the data file {} is held by a running rogeriq server",
            settings.data_file().display()
        );
        let socket = settings.data_dir.join(admin_socket::FILE_NAME);
        let unanswered = match ask_over_socket(&settings.data_dir) {
            Ok(answer) => {
                let server = format!("unix:{}", socket.display());
                return ServerBackup::made(settings, answer, server, &held, "");
            }
            Err(why) => why,
        };
        let fix = format!(
            "run `rogeriq {tool}` as the server's user, so that it reaches the server's admin \
             socket {}; or give it the settings of that server (its address: listen, --listen \
             or ROGERIQ_LISTEN; its master key: master_key or ROGERIQ_MASTER_KEY; or its \
             --config file); or stop the server",
            socket.display()
        );
        if settings.master_key.is_empty() {
            return Err(format!(
                "{held}, its admin socket does not answer ({unanswered}), and no master key is \
                 set to ask it for a backup over HTTP (POST /api/v1/admin/backup): {fix}"
            ));
        }
        let server =
            server_base(&settings.listen).map_err(|why| format!("{held}, but {why}: {fix}"))?;
        let asked = Api::with_timeout(&server, SERVER_BACKUP_TIMEOUT).and_then(|api| {
            let url = api.url(&["admin", "backup"])?;
            api.call(
                Method::POST,
                url,
                Credential::Master(&settings.master_key),
                &Vec::new(),
                None,
            )
        });
        let answer = asked.map_err(|err| {
            format!(
                "{held}, its admin socket does not answer ({unanswered}), and asking the server \
                 at {server} for a backup failed ({}): {fix}",
                err.one_line()
            )
        })?;
        ServerBackup::made(settings, answer, server, &held, &fix)
    }

    /// The backup a server answered `answer` about, once found in this data folder.
    fn made(
        settings: &Settings,
        answer: serde_json::Value,
        server: String,
        held: &str,
        fix: &str,
    ) -> Result<ServerBackup, String> {
        let name = answer["data"]["name"]
            .as_str()
            .filter(|name| is_plain_file_name(name))
            .ok_or_else(|| format!("the server at {server} answered no backup name: {answer}"))?;
        let folder = settings.data_dir.join("backups");
        let made = ServerBackup {
            file: folder.join(name),
            entries: answer["data"]["entries"].as_u64(),
            server,
        };
        if !made.file.is_file() {
            return Err(format!(
                "{held}, but the server at {} wrote its backup {name} elsewhere than {}: it \
                 serves another data folder. {fix}",
                made.server,
                folder.display()
            ));
        }
        Ok(made)
    }
}

/// Asks the server on the admin socket of `data_dir` for a backup; says why not otherwise.
fn ask_over_socket(data_dir: &Path) -> Result<serde_json::Value, String> {
    let at = admin_socket::SocketPath::of(data_dir).map_err(|err| err.to_string())?;
    let api = Api::over_socket(at.path(), SERVER_BACKUP_TIMEOUT).map_err(|e| e.one_line())?;
    let url = api.url(&["admin", "backup"]).map_err(|e| e.one_line())?;
    api.call(Method::POST, url, Credential::Socket, &Vec::new(), None)
        .map_err(|err| err.one_line())
}

/// Whether a server answers on the admin socket of `data_dir`.
fn server_answers(data_dir: &Path) -> bool {
    let Ok(at) = admin_socket::SocketPath::of(data_dir) else {
        return false;
    };
    // `/healthz` answers 503 while the store cannot write: still a server.
    let Ok(api) = Api::over_socket(at.path(), Duration::from_secs(10)) else {
        return false;
    };
    match api.url(&[]) {
        Ok(mut url) => {
            url.set_path("/healthz");
            match api.call(Method::GET, url, Credential::Socket, &Vec::new(), None) {
                Ok(_) => true,
                Err(err) => matches!(err, CliError::Api(_)),
            }
        }
        Err(_) => false,
    }
}

impl Drop for ServerBackup {
    fn drop(&mut self) {
        match fs::remove_file(&self.file) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => eprintln!(
                "rogeriq: warning: cannot remove the server's backup {}: {err}",
                self.file.display()
            ),
        }
    }
}

/// The base URL of a server that listens on `listen`: an unspecified address (all interfaces)
/// is reached on loopback.
fn server_base(listen: &str) -> Result<String, String> {
    match listen.parse::<SocketAddr>() {
        Ok(addr) if addr.port() == 0 => Err(format!(
            "its address is not known (listen = {listen:?} picks a free port)"
        )),
        Ok(addr) => Ok(format!("http://{}", server::reachable_at(addr))),
        // host:port, as the server binds it.
        Err(_) => Ok(format!("http://{listen}")),
    }
}

/// A name the server gave that cannot lead out of the backups folder.
fn is_plain_file_name(name: &str) -> bool {
    let mut parts = Path::new(name).components();
    matches!(parts.next(), Some(Component::Normal(_))) && parts.next().is_none()
}

/// `rogeriq restore --from FILE`: refused while a server answers on the data folder's admin
/// socket, or anything else holds the data file.
pub fn restore(args: &RestoreArgs) -> ExitCode {
    let settings = match settings(&args.store, None) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if let Some(refused) = refuse_postgres(&settings) {
        return refused;
    }
    if server_answers(&settings.data_dir) {
        eprintln!(
            "rogeriq: a rogeriq server is running on {} (it answers on its admin socket); the \
             data file is in use: stop the server before restoring",
            settings.data_dir.display()
        );
        return ExitCode::from(EXIT_IN_USE);
    }
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
pub fn export(args: &ExportArgs) -> ExitCode {
    let org = &args.org;
    let settings = match settings(&args.store, args.server.listen.as_deref()) {
        Ok(settings) => settings,
        Err(code) => return code,
    };
    if settings.store.backend == StoreBackend::Postgres {
        // Servers may use the database meanwhile: one snapshot of it is read directly.
        let store = match Store::open_at(&Location::of(&settings), Limits::default()) {
            Ok(store) => store,
            Err(err @ OpenError::Refused(_)) => {
                eprintln!("rogeriq: {err}");
                return ExitCode::from(EXIT_SETTINGS);
            }
            Err(err) => return fail(err),
        };
        let exited = write_export(&Exporting::Database(&store), org, args.out.as_deref(), None);
        if let Err(err) = store.close(Duration::from_secs(5)) {
            eprintln!("rogeriq: warning: {err}");
        }
        return exited;
    }
    // Beside a running server, its backup is read, then removed when `by_server` drops.
    let (source, by_server) = match ReadSource::open(&settings.data_file()) {
        Ok(source) => (source, None),
        Err(OpenError::AlreadyOpen(_)) => {
            let made = match ServerBackup::ask(&settings, "export") {
                Ok(made) => made,
                Err(err) => return fail(err),
            };
            match ReadSource::open(&made.file) {
                Ok(source) => (source, Some(made)),
                Err(err) => return fail(err),
            }
        }
        Err(err) => return fail(err),
    };
    let server = by_server.as_ref().map(|made| made.server.as_str());
    write_export(&Exporting::File(&source), org, args.out.as_deref(), server)
}

/// What `export` reads: a redb file, or a PostgreSQL database.
enum Exporting<'a> {
    File(&'a ReadSource),
    Database(&'a Store),
}

impl Exporting<'_> {
    /// The organisation's export, read in one snapshot, written to `out`.
    fn export(&self, org: &str, out: &mut dyn Write) -> Result<Exported, ApiError> {
        let org = &OrgId::parse(org).ok_or_else(org::not_found)?;
        match self {
            Exporting::File(source) => source.read(|rx| export_org(rx, org, out)),
            Exporting::Database(store) => store.read_blocking(|rx| export_org(rx, org, out)),
        }
    }
}

/// Writes the export to stdout, or to the file `out` with a summary on stdout (naming the
/// `server` whose backup was read, if any).
fn write_export(
    source: &Exporting<'_>,
    org: &str,
    out: Option<&Path>,
    server: Option<&str>,
) -> ExitCode {
    match out {
        None => {
            let mut out = BufWriter::new(std::io::stdout().lock());
            match source.export(org, &mut out) {
                Ok(_) => ExitCode::SUCCESS,
                Err(err) => fail(describe(&err)),
            }
        }
        Some(path) => match export_to_file(source, org, path) {
            Ok(mut summary) => {
                if let Some(server) = server {
                    summary["server"] = json!(server);
                }
                done(summary)
            }
            Err(err) => {
                let _ = fs::remove_file(path);
                fail(err)
            }
        },
    }
}

fn export_to_file(
    source: &Exporting<'_>,
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
    let exported = source.export(org, &mut out).map_err(|err| describe(&err))?;
    out.into_inner()
        .map_err(|err| err.to_string())?
        .sync_all()
        .map_err(|err| err.to_string())?;
    Ok(json!({"file": path, "projects": exported.projects, "objects": exported.objects}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_server_is_reached_where_it_listens_and_on_loopback_for_all_interfaces() {
        let base = |listen: &str| server_base(listen);
        assert_eq!(base("127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert_eq!(base("0.0.0.0:9000").unwrap(), "http://127.0.0.1:9000");
        assert_eq!(base("[::]:9000").unwrap(), "http://[::1]:9000");
        assert_eq!(base("[::1]:9000").unwrap(), "http://[::1]:9000");
        assert_eq!(base("localhost:8080").unwrap(), "http://localhost:8080");
        assert!(base("127.0.0.1:0").unwrap_err().contains("free port"));
    }

    #[test]
    fn a_backup_name_from_the_server_stays_in_the_backups_folder() {
        assert!(is_plain_file_name("rogeriq-20261129T042525Z-tk01nt.redb"));
        for bad in ["", ".", "..", "../x.redb", "a/b.redb", "/etc/passwd"] {
            assert!(!is_plain_file_name(bad), "{bad}");
        }
    }
}

use std::io::{IsTerminal, Write};
use std::pin::Pin;
use std::process::ExitCode;
use std::task::Poll;

use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use rogeriq::config::{Flags, LogFormat, Settings};
use rogeriq::mcp::stdio;
use rogeriq::server::{self, Options};
use rogeriq::store::Location;

mod cli;
mod ops;

const ABOUT: &str = "Self-hosted RogerIQ API server (`rogeriq serve`) and the command-line \
                     client of any RogerIQ-compatible server (every other command)";

#[derive(Parser)]
#[command(
    name = "rogeriq",
    version,
    about = ABOUT,
    after_help = "Examples:\n  rogeriq serve\n  rogeriq projects list\n  \
                  rogeriq projects create \"Acme Support\" --domain support.acme.com"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing buys nothing"
)]
enum Command {
    /// Run the API server
    #[command(after_help = "Examples:\n  rogeriq serve\n  \
                      rogeriq serve --listen 0.0.0.0:9000 --data-dir /var/lib/rogeriq")]
    Serve(Flags),
    /// The server's settings as `serve` would use them
    #[command(subcommand, after_help = "Examples:\n  rogeriq config show")]
    Config(ops::ConfigCommand),
    /// Copy the store to a backup file: one consistent snapshot, while a server runs or not
    #[command(
        after_help = "Examples:\n  rogeriq backup --to /var/backups/rogeriq-$(date +%F).redb\n  \
                      rogeriq backup --data-dir /var/lib/rogeriq --to rogeriq.backup.redb"
    )]
    Backup(ops::BackupArgs),
    /// Replace the data file with a verified backup (the server must be stopped)
    #[command(
        after_help = "Examples:\n  rogeriq restore --from /var/backups/rogeriq-2026-11-29.redb\n  \
                      rogeriq restore --data-dir /var/lib/rogeriq --from rogeriq.backup.redb"
    )]
    Restore(ops::RestoreArgs),
    /// Write an organisation's projects and all they own as JSON lines (--org ORG_ID)
    #[command(
        after_help = "Examples:\n  rogeriq export --org org_abc123def456 > acme.jsonl\n  \
                      rogeriq export --org org_abc123def456 --out acme.jsonl"
    )]
    Export(ops::ExportArgs),
    /// Serve the API as MCP tools over stdio, for an LLM agent; its calls go to the configured
    /// server with the client options' key
    #[command(after_help = "Examples:\n  rogeriq mcp\n  \
                      RIQ_API_KEY=riq_… RIQ_API_BASE=https://support.example.com rogeriq mcp\n  \
                      rogeriq mcp --list-tools")]
    Mcp(McpArgs),
    #[command(flatten)]
    Client(cli::Command),
}

#[derive(clap::Args)]
struct McpArgs {
    /// Print the tools as a Markdown table (as docs/mcp.md lists them) and exit
    #[arg(long)]
    list_tools: bool,
    #[command(flatten)]
    client: cli::Options,
}

/// The whole command line. The client options are the client commands' own (`cli::Group`);
/// here they are added to the top level as well, so that they may also come before the command
/// (`rogeriq --json projects list`). Not as global options: `serve` and the operator's tools
/// neither take nor list them.
fn command_line() -> clap::Command {
    // Adding the options' struct also makes its doc comment the description: put ours back.
    let command = cli::Options::augment_args(Cli::command())
        .mut_args(|arg| arg.global(false))
        .about(ABOUT)
        .long_about(None::<&str>);
    // `serve --help` lists every setting with its default and environment variable.
    command.mut_subcommand("serve", |serve| {
        let examples = serve.get_after_help().map(ToString::to_string);
        let text = format!(
            "{}\n{}",
            Settings::help_table(),
            examples.unwrap_or_default()
        );
        serve.after_help(text)
    })
}

fn main() -> ExitCode {
    let parsed = command_line().try_get_matches().and_then(|matches| {
        let cli = Cli::from_arg_matches(&matches)?;
        let before = cli::Options::from_arg_matches(&matches)?;
        let name = matches.subcommand_name().unwrap_or_default().to_string();
        Ok((cli.command, before, name))
    });
    let (command, before, name) = match parsed {
        Ok(parsed) => parsed,
        Err(err) => {
            let _ = err.print();
            // Help and version are answers, not errors; anything else is a usage error.
            return if err.use_stderr() {
                cli::usage_exit()
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if !matches!(command, Command::Client(_) | Command::Mcp(_))
        && let Some(option) = before.first_given()
    {
        eprintln!("rogeriq: {option} is a client option; `rogeriq {name}` does not take it");
        return cli::usage_exit();
    }
    match command {
        Command::Client(command) => cli::run(before, command, command_line),
        Command::Mcp(args) => mcp(before.then(args.client), args.list_tools),
        Command::Serve(flags) => serve(&flags),
        Command::Config(command) => ops::config(command),
        Command::Backup(args) => ops::backup(&args),
        Command::Restore(args) => ops::restore(&args),
        Command::Export(args) => ops::export(&args),
    }
}

/// `rogeriq mcp`: the tools of this build (`api::mcp::tool_table`), served over stdio against
/// the server the client options name (`mcp::stdio`).
fn mcp(client: cli::Options, list_tools: bool) -> ExitCode {
    let table = match rogeriq::api::mcp::tool_table() {
        Ok(table) => table,
        Err(err) => {
            eprintln!("rogeriq: {err}");
            return ExitCode::FAILURE;
        }
    };
    if list_tools {
        print!("{}", table.markdown());
        return ExitCode::SUCCESS;
    }
    let access = match cli::ServerAccess::resolve(&client) {
        Ok(access) => access,
        Err(code) => return code,
    };
    let endpoint = stdio::Endpoint {
        api_base: access.api_base,
        api_key: access.api_key,
        org: access.org,
    };
    match stdio::serve(table, endpoint) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("rogeriq mcp: {err}");
            ExitCode::FAILURE
        }
    }
}

fn init_logging(settings: &Settings) {
    // `Settings::load` refused a filter that does not parse.
    let mut filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // actix-http logs every malformed request at ERROR, without the peer; the server logs each
    // at debug level with the peer instead (`api::connection`). A filter that names actix_http
    // keeps actix's own lines.
    if !settings.log_level.contains("actix_http")
        && let Ok(directive) = "actix_http::h1::dispatcher=off".parse()
    {
        filter = filter.add_directive(directive);
    }
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Pretty => builder.init(),
    }
}

/// glibc gives threads that allocate at once arenas of their own, up to eight per core, and
/// memory freed into one arena is reused only from it: under `make soak`'s mix the server's
/// resident memory grew 22% in ten minutes with glibc's default and 4.8% with two arenas
/// (docs/performance.md, "Soak"). One arena per core keeps allocation uncontended enough. An
/// operator's `MALLOC_ARENA_MAX` stands.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
fn limit_malloc_arenas() {
    if std::env::var_os("MALLOC_ARENA_MAX").is_some() {
        return;
    }
    let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
    let arenas = libc::c_int::try_from(cores).unwrap_or(libc::c_int::MAX);
    // SAFETY: `mallopt` only sets a parameter of the allocator, and no other thread exists yet.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, arenas);
    }
}

fn serve(flags: &Flags) -> ExitCode {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    limit_malloc_arenas();
    let settings = match Settings::load_from_process(flags) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("rogeriq: {err}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings);

    let store = Location::of(&settings);
    let launched = match server::launch(
        settings,
        Options {
            handle_signals: true,
        },
    ) {
        Ok(launched) => launched,
        Err(err) => {
            eprintln!("rogeriq: {err}");
            return ExitCode::from(err.exit_code());
        }
    };
    if let Some(first) = &launched.bootstrap {
        // A closed or full standard output must not stop a server that is already serving
        // (println! would panic): the banner is then lost, and the log says so.
        let mut stdout = std::io::stdout().lock();
        if let Err(err) =
            writeln!(stdout, "{}", first.banner(launched.addr)).and_then(|()| stdout.flush())
        {
            tracing::error!(error = %err, "the first-start banner could not be printed: mint a new admin key with the master key");
        }
    }
    let mut server = launched.server;
    let result = actix_web::rt::System::new().block_on(async {
        // The server installs its SIGTERM/SIGINT handlers when first polled; until then a signal
        // kills the process outright. Poll it once before announcing that it listens.
        if let Poll::Ready(result) =
            std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut server).poll(cx))).await
        {
            return result;
        }
        tracing::info!(addr = %launched.addr, store = %store, "listening");
        server.await
    });
    server::close(launched.dispatcher, launched.store);
    match result {
        Ok(()) => {
            tracing::info!("stopped");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("rogeriq: server error: {err}");
            ExitCode::FAILURE
        }
    }
}

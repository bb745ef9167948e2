use std::io::IsTerminal;
use std::net::TcpListener;
use std::path::PathBuf;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::Poll;

use clap::{Parser, Subcommand};
use rogeriq::auth::MasterKey;
use rogeriq::config::{LogFormat, Settings};
use rogeriq::server;
use rogeriq::store::Store;

#[derive(Parser)]
#[command(name = "rogeriq", version, about = "Self-hosted RogerIQ API server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server.
    Serve(ServeArgs),
}

#[derive(clap::Args)]
struct ServeArgs {
    /// TOML settings file (see config.toml.example).
    #[arg(long, env = "ROGERIQ_CONFIG")]
    config: Option<PathBuf>,
    /// Address to bind, host:port (port 0 picks a free port).
    #[arg(long)]
    listen: Option<String>,
    /// Folder for the data file.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// pretty or json.
    #[arg(long)]
    log_format: Option<String>,
    /// Log filter, e.g. info or rogeriq=debug.
    #[arg(long)]
    log_level: Option<String>,
    /// Largest request body accepted, in bytes.
    #[arg(long)]
    max_body_bytes: Option<i64>,
    /// HTTP worker threads; 0 means one per core.
    #[arg(long)]
    workers: Option<i64>,
}

impl ServeArgs {
    fn flags(&self) -> Vec<(&'static str, toml::Value)> {
        let text = |v: &Option<String>| v.clone().map(toml::Value::String);
        [
            ("listen", text(&self.listen)),
            (
                "data_dir",
                self.data_dir
                    .as_ref()
                    .map(|p| toml::Value::String(p.display().to_string())),
            ),
            ("log_format", text(&self.log_format)),
            ("log_level", text(&self.log_level)),
            (
                "max_body_bytes",
                self.max_body_bytes.map(toml::Value::Integer),
            ),
            ("workers", self.workers.map(toml::Value::Integer)),
        ]
        .into_iter()
        .filter_map(|(key, value)| value.map(|v| (key, v)))
        .collect()
    }
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(args) => serve(args),
    }
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_new(&settings.log_level)
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal());
    match settings.log_format {
        LogFormat::Json => builder.json().flatten_event(true).init(),
        LogFormat::Pretty => builder.init(),
    }
}

fn serve(args: ServeArgs) -> ExitCode {
    let mut settings = match Settings::load(
        args.config.as_deref(),
        |k| std::env::var(k).ok(),
        &args.flags(),
    ) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("rogeriq: {err}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings);

    if let Err(err) = std::fs::create_dir_all(&settings.data_dir) {
        eprintln!(
            "rogeriq: cannot create data_dir {}: {err}",
            settings.data_dir.display()
        );
        return ExitCode::FAILURE;
    }
    let store = match Store::open(&settings.data_file()) {
        Ok(store) => store,
        // A held lock names the file and the other server (OpenError's Display).
        Err(err) => {
            eprintln!("rogeriq: {err}");
            return ExitCode::FAILURE;
        }
    };
    match server::bootstrap(&store) {
        Ok(Some(first)) => println!("{}", first.banner()),
        Ok(None) => {}
        Err(err) => {
            eprintln!("rogeriq: first-start setup failed: {err}");
            return ExitCode::FAILURE;
        }
    }

    let listener = match TcpListener::bind(&settings.listen) {
        Ok(listener) => listener,
        Err(err) => {
            eprintln!("rogeriq: cannot listen on {}: {err}", settings.listen);
            return ExitCode::FAILURE;
        }
    };
    // From here on only the master key's hash is kept (API.md §18.1).
    let master = MasterKey::from_setting(&std::mem::take(&mut settings.master_key));
    let result = actix_web::rt::System::new().block_on(async {
        let running = server::start(&settings, master, store.clone(), listener, true)?;
        let mut server = running.server;
        // The server installs its SIGTERM/SIGINT handlers when first polled; until then a signal
        // kills the process outright. Poll it once before announcing that it listens.
        if let Poll::Ready(result) = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut server).poll(cx))).await {
            return result;
        }
        tracing::info!(addr = %running.addr, data_file = %settings.data_file().display(), "listening");
        server.await
    });
    server::close_store(store);
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

use std::io::IsTerminal;
use std::pin::Pin;
use std::process::ExitCode;
use std::task::Poll;

use clap::{Parser, Subcommand};
use rogeriq::config::{Flags, LogFormat, Settings};
use rogeriq::server::{self, Options};

#[derive(Parser)]
#[command(name = "rogeriq", version, about = "Self-hosted RogerIQ API server")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the API server.
    Serve(Flags),
}

fn main() -> ExitCode {
    match Cli::parse().command {
        Command::Serve(flags) => serve(&flags),
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

fn serve(flags: &Flags) -> ExitCode {
    let settings = match Settings::load(flags, |k| std::env::var(k).ok()) {
        Ok(settings) => settings,
        Err(err) => {
            eprintln!("rogeriq: {err}");
            return ExitCode::from(2);
        }
    };
    init_logging(&settings);

    let data_file = settings.data_file();
    let launched = match server::launch(
        settings,
        Options {
            handle_signals: true,
        },
    ) {
        Ok(launched) => launched,
        Err(err) => {
            eprintln!("rogeriq: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(first) = &launched.bootstrap {
        println!("{}", first.banner());
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
        tracing::info!(addr = %launched.addr, data_file = %data_file.display(), "listening");
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

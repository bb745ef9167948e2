//! The `rogeriq` command-line client (API.md §14): every subcommand but `serve`. It speaks HTTP
//! only, to this server or any RogerIQ-compatible one; it never opens the store and no server
//! module imports it (it is part of the binary, not of the library).

/// An `after_help` text: "Examples:" and one indented command line per argument. Defined
/// before the modules so that each of them can use it.
macro_rules! examples {
    ($($line:expr),+ $(,)?) => {
        concat!("Examples:", $("\n  ", $line),+)
    };
}

mod admin;
mod agent;
mod api;
mod auth;
pub(crate) mod client;
mod config;
mod contacts;
mod conversations;
pub(crate) mod error;
mod integrations;
mod kb;
mod keys;
mod output;
mod projects;
mod webhooks;
mod widget;

use std::cell::OnceCell;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Map, Value};

use crate::cli::client::{Api, Credential, Query};
use crate::cli::config::{ConfigFile, Overrides, Resolved};
use crate::cli::error::{CliError, CliResult, EXIT_USAGE};
use crate::cli::output::{Format, Output};

/// The options every client command takes, before or after the subcommand.
#[derive(Debug, Args)]
#[command(next_help_heading = "Client options")]
pub struct Options {
    /// API key (riq_…) [env: RIQ_API_KEY; else the config file]
    #[arg(long, global = true, value_name = "KEY")]
    api_key: Option<String>,
    /// Organisation id (org_…) [env: RIQ_ORG_ID; else the config file; else the key's own]
    #[arg(long, global = true, value_name = "ORG_ID")]
    org: Option<String>,
    /// Project id (prj_…) for project commands [env: RIQ_PROJECT_ID; else the config file]
    #[arg(long, global = true, value_name = "PROJECT_ID")]
    project: Option<String>,
    /// Server root; the CLI adds /api/v1 [env: RIQ_API_BASE; else the config file; default:
    /// http://127.0.0.1:8080]
    #[arg(long, global = true, value_name = "URL")]
    api_base: Option<String>,
    /// Master key, for `admin` commands [env: ROGERIQ_MASTER_KEY]
    #[arg(long, global = true, value_name = "KEY")]
    master_key: Option<String>,
    /// Print JSON (the default when stdout is not a terminal)
    #[arg(long, global = true, conflicts_with = "output")]
    json: bool,
    /// Output format [default: a table on a terminal, else JSON]
    #[arg(long, global = true, value_enum, value_name = "FORMAT")]
    output: Option<OutputFormat>,
    /// Print only ids, one per line
    #[arg(long, short, global = true)]
    quiet: bool,
    /// Send each request once: no retry, with the same Idempotency-Key, after a lost answer
    /// (a connection error, or 502/503/504)
    #[arg(long, global = true)]
    no_retry: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum OutputFormat {
    Table,
    Json,
}

impl Options {
    /// The first client option given on the command line, for commands that take none.
    pub fn first_given(&self) -> Option<&'static str> {
        [
            (self.api_key.is_some(), "--api-key"),
            (self.org.is_some(), "--org"),
            (self.project.is_some(), "--project"),
            (self.api_base.is_some(), "--api-base"),
            (self.master_key.is_some(), "--master-key"),
            (self.json, "--json"),
            (self.output.is_some(), "--output"),
            (self.quiet, "--quiet"),
            (self.no_retry, "--no-retry"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }

    /// Takes `--org` out, for `rogeriq export`, which reads it as the organisation to export.
    pub fn take_org(&mut self) -> Option<String> {
        self.org.take()
    }

    /// JSON unless asked otherwise or printing to a terminal.
    fn json_wanted(&self, stdout_is_terminal: bool) -> bool {
        match self.output {
            Some(OutputFormat::Json) => true,
            Some(OutputFormat::Table) => false,
            None => self.json || !stdout_is_terminal,
        }
    }

    fn format(&self, stdout_is_terminal: bool) -> Format {
        if self.quiet {
            Format::Quiet
        } else if self.json_wanted(stdout_is_terminal) {
            Format::Json
        } else {
            Format::Table
        }
    }

    fn overrides(&self) -> Overrides {
        Overrides {
            api_key: self.api_key.clone(),
            org: self.org.clone(),
            project: self.project.clone(),
            api_base: self.api_base.clone(),
            master_key: self.master_key.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
#[allow(
    clippy::large_enum_variant,
    reason = "parsed once per process; boxing buys nothing"
)]
pub enum Command {
    #[command(flatten)]
    Call(Call),
    /// Print shell completions
    #[command(after_help = examples!["rogeriq completions bash > ~/.local/share/bash-completion/completions/rogeriq"])]
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
}

/// The commands that read the settings and call the server.
#[derive(Debug, Subcommand)]
pub enum Call {
    /// Store, show or delete the CLI's credentials
    #[command(subcommand, after_help = examples!["rogeriq auth login --api-key riq_…"])]
    Auth(auth::Command),
    /// Projects of the organisation
    #[command(subcommand, after_help = examples!["rogeriq projects list"])]
    Projects(projects::Command),
    /// Conversations and their messages
    #[command(
        subcommand,
        after_help = examples!["rogeriq conversations list --status open --quiet"]
    )]
    Conversations(conversations::Command),
    /// Contacts (upserted by external id or email)
    #[command(subcommand, after_help = examples!["rogeriq contacts list --email jane@example.com"])]
    Contacts(contacts::Command),
    /// The AI agent: status, configuration, respond, classify, suggest
    #[command(subcommand, after_help = examples!["rogeriq agent status"])]
    Agent(agent::Command),
    /// Knowledge-base articles and search
    #[command(subcommand, after_help = examples!["rogeriq kb search refund"])]
    Kb(kb::Command),
    /// The chat widget's configuration
    #[command(subcommand, after_help = examples!["rogeriq widget set --theme dark"])]
    Widget(widget::Command),
    /// Installed integrations and the catalog
    #[command(subcommand, after_help = examples!["rogeriq integrations list"])]
    Integrations(integrations::Command),
    /// Webhook endpoints, their deliveries and secrets
    #[command(subcommand, after_help = examples!["rogeriq webhooks list"])]
    Webhooks(webhooks::Command),
    /// The organisation's API keys
    #[command(subcommand, after_help = examples!["rogeriq keys create \"kb bot\" --scopes kb:write,conversations:read"])]
    Keys(keys::Command),
    /// The organisation's audit log
    #[command(subcommand, after_help = examples!["rogeriq audit list --action project.deleted"])]
    Audit(keys::AuditCommand),
    /// Self-hosted administration with the master key: organisations, first keys, installs
    #[command(subcommand, after_help = examples!["rogeriq admin orgs create Acme"])]
    Admin(admin::Command),
    /// Any API call: METHOD and a path under /api/v1 ({org} and {project} are filled in)
    #[command(after_help = examples![
        "rogeriq api GET /projects/{project}/forms",
        "rogeriq api POST /projects/{project}/forms --data '{\"name\": \"Contact us\"}'"
    ])]
    Api(api::Args),
}

/// Runs one client command; returns the exit code of API.md §14.3. `cli` builds the whole
/// command line's definition, for completions.
pub fn run(options: Options, command: Command, cli: fn() -> clap::Command) -> ExitCode {
    let command = match command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut cli(), "rogeriq", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Call(command) => command,
    };
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let format = options.format(stdout_is_terminal);
    let env = |name: &str| std::env::var(name).ok();
    let result = match command {
        // Needs no settings, so it also clears a config file that cannot be read.
        Call::Auth(auth::Command::Logout) => auth::logout(config::config_path(&env).as_deref()),
        command => Ctx::new(&options, &env).and_then(|ctx| execute(command, &ctx)),
    };
    match result {
        Ok(output) => {
            let (out, note) = output.render(format);
            let mut stdout = std::io::stdout().lock();
            // A closed pipe (`| head`) is not an error of the command.
            if !out.is_empty() {
                let _ = writeln!(stdout, "{out}");
            }
            if let Some(note) = note {
                eprintln!("{note}");
            }
            ExitCode::SUCCESS
        }
        Err(err) => {
            if options.json_wanted(stdout_is_terminal) {
                eprintln!("{}", err.to_json());
            } else {
                eprintln!("{}", err.to_text());
            }
            ExitCode::from(err.exit_code())
        }
    }
}

/// What `rogeriq mcp` takes of the client's settings (flag > `RIQ_*` > config file > default).
pub struct ServerAccess {
    pub api_base: String,
    pub api_key: String,
    /// The configured organisation; without one the key's own is asked of the server.
    pub org: Option<String>,
}

impl ServerAccess {
    /// The settings, or the exit code after the error is printed as every command prints it.
    pub fn resolve(options: &Options) -> Result<ServerAccess, ExitCode> {
        let env = |name: &str| std::env::var(name).ok();
        let resolved = Ctx::new(options, &env).and_then(|ctx| {
            Ok(ServerAccess {
                api_key: ctx.key()?.to_string(),
                api_base: ctx.settings.api_base.value,
                org: ctx.settings.org.map(|org| org.value),
            })
        });
        resolved.map_err(|err| {
            eprintln!("{}", err.to_text());
            ExitCode::from(err.exit_code())
        })
    }
}

/// The exit code for a command line clap could not parse (a usage error, API.md §14.3).
pub fn usage_exit() -> ExitCode {
    ExitCode::from(EXIT_USAGE)
}

fn execute(command: Call, ctx: &Ctx) -> CliResult<Output> {
    match command {
        Call::Auth(cmd) => auth::run(cmd, ctx),
        Call::Projects(cmd) => projects::run(cmd, ctx),
        Call::Conversations(cmd) => conversations::run(cmd, ctx),
        Call::Contacts(cmd) => contacts::run(cmd, ctx),
        Call::Agent(cmd) => agent::run(cmd, ctx),
        Call::Kb(cmd) => kb::run(cmd, ctx),
        Call::Widget(cmd) => widget::run(cmd, ctx),
        Call::Integrations(cmd) => integrations::run(cmd, ctx),
        Call::Webhooks(cmd) => webhooks::run(cmd, ctx),
        Call::Keys(cmd) => keys::run(cmd, ctx),
        Call::Audit(cmd) => keys::run_audit(cmd, ctx),
        Call::Admin(cmd) => admin::run(cmd, ctx),
        Call::Api(args) => api::run(args, ctx),
    }
}

/// What a command needs: the resolved settings and, on first use, the HTTP client.
pub struct Ctx {
    settings: Resolved,
    /// `--no-retry`.
    no_retry: bool,
    /// The config file as read (for `auth login`, which rewrites it).
    file: ConfigFile,
    api: OnceCell<Api>,
    /// The key's organisation, once asked of the server.
    learned_org: OnceCell<String>,
}

impl Ctx {
    fn new(options: &Options, env: &impl Fn(&str) -> Option<String>) -> CliResult<Ctx> {
        let path = config::config_path(env);
        let file = match &path {
            Some(path) => ConfigFile::load(path)?,
            None => ConfigFile::default(),
        };
        Ok(Ctx {
            settings: Resolved::resolve(&options.overrides(), env, &file, path),
            no_retry: options.no_retry,
            file,
            api: OnceCell::new(),
            learned_org: OnceCell::new(),
        })
    }

    fn api(&self) -> CliResult<&Api> {
        if let Some(api) = self.api.get() {
            return Ok(api);
        }
        let mut api = Api::new(&self.settings.api_base.value)?;
        if self.no_retry {
            api = api.without_retries();
        }
        Ok(self.api.get_or_init(|| api))
    }

    fn key(&self) -> CliResult<&str> {
        self.settings
            .api_key
            .as_ref()
            .map(|s| s.value.as_str())
            .ok_or_else(|| {
                CliError::NoCredentials(
                    "no API key: run `rogeriq auth login --api-key riq_…`, set RIQ_API_KEY or \
                     pass --api-key"
                        .into(),
                )
            })
    }

    fn master_key(&self) -> CliResult<&str> {
        self.settings
            .master_key
            .as_ref()
            .map(|s| s.value.as_str())
            .ok_or_else(|| {
                CliError::NoCredentials(
                    "admin commands need the master key: set ROGERIQ_MASTER_KEY or pass \
                     --master-key"
                        .into(),
                )
            })
    }

    /// One call with the API key; returns the whole JSON body.
    fn call(
        &self,
        method: Method,
        segments: &[&str],
        query: &Query,
        body: Option<&Value>,
    ) -> CliResult<Value> {
        let api = self.api()?;
        let url = api.url(segments)?;
        api.call(method, url, Credential::Key(self.key()?), query, body)
    }

    fn get(&self, segments: &[&str], query: &Query) -> CliResult<Value> {
        self.call(Method::GET, segments, query, None)
    }

    fn post(&self, segments: &[&str], body: Option<&Value>) -> CliResult<Value> {
        self.call(Method::POST, segments, &Query::new(), body)
    }

    fn patch(&self, segments: &[&str], body: &Value) -> CliResult<Value> {
        self.call(Method::PATCH, segments, &Query::new(), Some(body))
    }

    fn delete(&self, segments: &[&str]) -> CliResult<Value> {
        self.call(Method::DELETE, segments, &Query::new(), None)
    }

    /// One call with the master key (the admin API); returns the whole JSON body.
    fn master_call(
        &self,
        method: Method,
        segments: &[&str],
        body: Option<&Value>,
    ) -> CliResult<Value> {
        let api = self.api()?;
        let url = api.url(segments)?;
        api.call(
            method,
            url,
            Credential::Master(self.master_key()?),
            &Query::new(),
            body,
        )
    }

    /// The configured organisation, else the one the key belongs to, asked of the server
    /// (`GET /api/v1/auth/whoami`, which a RogerIQ server may not have).
    fn org(&self) -> CliResult<String> {
        if let Some(org) = &self.settings.org {
            return Ok(org.value.clone());
        }
        if let Some(org) = self.learned_org.get() {
            return Ok(org.clone());
        }
        let org = self.key_org()?.ok_or_else(|| {
            CliError::usage(
                "no organisation: pass --org org_…, set RIQ_ORG_ID, or `rogeriq auth login \
                 --org org_…` (this server cannot tell a key's organisation)",
            )
        })?;
        Ok(self.learned_org.get_or_init(|| org).clone())
    }

    /// The organisation of the API key as the server reports it; `None` when the server has no
    /// `auth/whoami` route (404).
    fn key_org(&self) -> CliResult<Option<String>> {
        match self.get(&["auth", "whoami"], &Query::new()) {
            Ok(body) => Ok(body["data"]["org_id"].as_str().map(str::to_string)),
            Err(CliError::Api(failure)) if failure.status == 404 => Ok(None),
            Err(err) => Err(err),
        }
    }

    fn project(&self) -> CliResult<String> {
        self.settings
            .project
            .as_ref()
            .map(|s| s.value.clone())
            .ok_or_else(|| {
                CliError::usage(
                    "no project: pass --project prj_…, set RIQ_PROJECT_ID, or `rogeriq auth \
                     login --project prj_…`",
                )
            })
    }
}

/// `data` of an answer (`{"data": …}`); the answer itself when it has none.
fn data(mut body: Value) -> Value {
    match body.get_mut("data") {
        Some(data) => data.take(),
        None => body,
    }
}

/// A JSON body of the fields that were given.
#[derive(Default)]
struct Body(Map<String, Value>);

impl Body {
    fn new() -> Body {
        Body::default()
    }

    fn set(mut self, name: &str, value: Option<impl Into<Value>>) -> Body {
        if let Some(value) = value {
            self.0.insert(name.to_string(), value.into());
        }
        self
    }

    /// A field that accepts `null`: an empty value clears it.
    fn nullable(self, name: &str, value: Option<String>) -> Body {
        let value = value.map(|v| {
            if v.is_empty() {
                Value::Null
            } else {
                Value::String(v)
            }
        });
        self.set(name, value)
    }

    fn value(self) -> Value {
        Value::Object(self.0)
    }

    /// For updates: at least one field, else a usage error naming the flags.
    fn changes(self, flags: &str) -> CliResult<Value> {
        if self.0.is_empty() {
            return Err(CliError::usage(format!(
                "nothing to update: give at least one of {flags}"
            )));
        }
        Ok(self.value())
    }
}

/// The query parameters that were given.
fn query<const N: usize>(pairs: [(&'static str, Option<String>); N]) -> Query {
    pairs
        .into_iter()
        .filter_map(|(name, value)| value.map(|v| (name, v)))
        .collect()
}

/// `--limit` and `--cursor` of the paginated lists.
#[derive(Debug, Args)]
pub struct Paging {
    /// Items per page (the server clamps it to 100)
    #[arg(long)]
    limit: Option<u32>,
    /// Continue after the previous page (its `cursor`)
    #[arg(long)]
    cursor: Option<String>,
}

impl Paging {
    fn pairs(self) -> [(&'static str, Option<String>); 2] {
        [
            ("limit", self.limit.map(|l| l.to_string())),
            ("cursor", self.cursor),
        ]
    }
}

/// `--sort` and `--order` of conversations and articles.
#[derive(Debug, Args)]
pub struct Sorting {
    /// Sort field
    #[arg(long, value_parser = ["created_at", "updated_at"])]
    sort: Option<String>,
    /// Sort order
    #[arg(long, value_parser = ["asc", "desc"])]
    order: Option<String>,
}

impl Sorting {
    fn pairs(self) -> [(&'static str, Option<String>); 2] {
        [("sort", self.sort), ("order", self.order)]
    }
}

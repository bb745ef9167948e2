//! The `rogeriq` command-line client (docs/cli.md): every subcommand but `serve`. It speaks HTTP
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
pub(crate) mod output;
mod projects;
mod webhooks;
mod widget;

use std::cell::OnceCell;
use std::io::{IsTerminal, Write};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Subcommand, ValueEnum};
use reqwest::Method;
use serde_json::{Map, Value};

use crate::cli::client::{Api, Credential, Query};
use crate::cli::config::{ConfigFile, Overrides, Resolved};
use crate::cli::error::{CliError, CliResult, EXIT_USAGE};
use crate::cli::output::{Format, Output};

/// The options every client command takes, before the command (`rogeriq --json projects list`)
/// or after any word of it (`rogeriq projects list --json`). Each client command group flattens
/// them in (`Group`), as global arguments of that group only, so that the server's and the
/// operator's commands show none; `main` adds them to the top level too, not global there.
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
    /// Longest wait for each answer, in seconds [default: 90]
    #[arg(long, global = true, value_name = "SECONDS", value_parser = clap::value_parser!(u64).range(1..))]
    timeout: Option<u64>,
    /// Print each request's method, URL, status and request id to stderr (never the key)
    #[arg(long, short, global = true)]
    verbose: bool,
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
            (self.timeout.is_some(), "--timeout"),
            (self.verbose, "--verbose"),
        ]
        .into_iter()
        .find_map(|(given, name)| given.then_some(name))
    }

    /// These options (given before the command) with `after`'s (given after it) on top.
    pub fn then(self, after: Options) -> Options {
        Options {
            api_key: after.api_key.or(self.api_key),
            org: after.org.or(self.org),
            project: after.project.or(self.project),
            api_base: after.api_base.or(self.api_base),
            master_key: after.master_key.or(self.master_key),
            json: self.json || after.json,
            output: after.output.or(self.output),
            quiet: self.quiet || after.quiet,
            no_retry: self.no_retry || after.no_retry,
            timeout: after.timeout.or(self.timeout),
            verbose: self.verbose || after.verbose,
        }
    }

    /// Clap refuses `--json` with `--output` where both come on the same side of the command;
    /// this, where they come on either side.
    fn check(&self) -> CliResult<()> {
        if self.json && self.output.is_some() {
            return Err(CliError::usage(
                "--json and --output cannot be used together",
            ));
        }
        Ok(())
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

/// A client command group (`projects`, `kb`, …) with the client options.
#[derive(Debug, Args)]
pub struct Group<C: Subcommand> {
    #[command(flatten)]
    options: Options,
    #[command(subcommand)]
    command: C,
}

/// A client command without subcommands (`api`) with the client options.
#[derive(Debug, Args)]
pub struct Single<A: Args> {
    #[command(flatten)]
    options: Options,
    #[command(flatten)]
    args: A,
}

/// What a client command does once its options are known.
enum Action {
    /// `auth logout`, which needs no settings, so it also clears a config file that cannot be
    /// read.
    Logout,
    Call(Run),
}

/// A client command with its arguments, waiting for its settings.
type Run = Box<dyn FnOnce(&Ctx) -> CliResult<Output>>;

impl<C: Subcommand + 'static> Group<C> {
    fn run_by(self, run: fn(C, &Ctx) -> CliResult<Output>) -> (Options, Action) {
        let command = self.command;
        (
            self.options,
            Action::Call(Box::new(move |ctx| run(command, ctx))),
        )
    }
}

impl<A: Args + 'static> Single<A> {
    fn run_by(self, run: fn(A, &Ctx) -> CliResult<Output>) -> (Options, Action) {
        let args = self.args;
        (
            self.options,
            Action::Call(Box::new(move |ctx| run(args, ctx))),
        )
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
    #[command(after_help = examples![
        "rogeriq completions fish | source",
        "mkdir -p ~/.local/share/bash-completion/completions && rogeriq completions bash > ~/.local/share/bash-completion/completions/rogeriq"
    ])]
    Completions {
        /// The shell to complete for
        shell: clap_complete::Shell,
    },
}

/// The commands that read the settings and call the server.
#[derive(Debug, Subcommand)]
pub enum Call {
    /// Store, show or delete the CLI's credentials
    #[command(after_help = examples!["rogeriq auth login --api-key riq_…"])]
    Auth(Group<auth::Command>),
    /// Projects of the organisation
    #[command(after_help = examples!["rogeriq projects list"])]
    Projects(Group<projects::Command>),
    /// Conversations and their messages
    #[command(after_help = examples!["rogeriq conversations list --status open --quiet"])]
    Conversations(Group<conversations::Command>),
    /// Contacts (upserted by external id or email)
    #[command(after_help = examples!["rogeriq contacts list --email jane@example.com"])]
    Contacts(Group<contacts::Command>),
    /// The AI agent: status, configuration, respond, classify, suggest
    #[command(after_help = examples!["rogeriq agent status"])]
    Agent(Group<agent::Command>),
    /// Knowledge-base articles and search
    #[command(after_help = examples!["rogeriq kb search refund"])]
    Kb(Group<kb::Command>),
    /// The chat widget's configuration
    #[command(after_help = examples!["rogeriq widget set --theme dark"])]
    Widget(Group<widget::Command>),
    /// Installed integrations and the catalog
    #[command(after_help = examples!["rogeriq integrations list"])]
    Integrations(Group<integrations::Command>),
    /// Webhook endpoints, their deliveries and secrets
    #[command(after_help = examples!["rogeriq webhooks list"])]
    Webhooks(Group<webhooks::Command>),
    /// The organisation's API keys
    #[command(after_help = examples!["rogeriq keys create \"kb bot\" --scopes kb:write,conversations:read"])]
    Keys(Group<keys::Command>),
    /// The organisation's audit log
    #[command(after_help = examples!["rogeriq audit list --action project.deleted"])]
    Audit(Group<keys::AuditCommand>),
    /// Self-hosted administration with the master key: organisations, first keys, installs
    #[command(after_help = examples!["rogeriq admin orgs create Acme"])]
    Admin(Group<admin::Command>),
    /// Any API call: METHOD and a path under /api/v1 ({org} and {project} are filled in)
    #[command(after_help = examples![
        "rogeriq api GET /projects/{project}/forms",
        "rogeriq api POST /projects/{project}/forms --data '{\"name\": \"Contact us\"}'"
    ])]
    Api(Single<api::Args>),
}

impl Call {
    /// The options given after the command, and what the command does.
    fn split(self) -> (Options, Action) {
        match self {
            Call::Auth(Group {
                options,
                command: auth::Command::Logout,
            }) => (options, Action::Logout),
            Call::Auth(group) => group.run_by(auth::run),
            Call::Projects(group) => group.run_by(projects::run),
            Call::Conversations(group) => group.run_by(conversations::run),
            Call::Contacts(group) => group.run_by(contacts::run),
            Call::Agent(group) => group.run_by(agent::run),
            Call::Kb(group) => group.run_by(kb::run),
            Call::Widget(group) => group.run_by(widget::run),
            Call::Integrations(group) => group.run_by(integrations::run),
            Call::Webhooks(group) => group.run_by(webhooks::run),
            Call::Keys(group) => group.run_by(keys::run),
            Call::Audit(group) => group.run_by(keys::run_audit),
            Call::Admin(group) => group.run_by(admin::run),
            Call::Api(single) => single.run_by(api::run),
        }
    }
}

/// Runs one client command; returns the exit code of docs/cli.md. `before` are the client
/// options given before the command; `cli` builds the whole command line's definition, for
/// completions.
pub fn run(before: Options, command: Command, cli: fn() -> clap::Command) -> ExitCode {
    let call = match command {
        Command::Completions { shell } => {
            clap_complete::generate(shell, &mut cli(), "rogeriq", &mut std::io::stdout());
            return ExitCode::SUCCESS;
        }
        Command::Call(call) => call,
    };
    let (after, action) = call.split();
    let options = before.then(after);
    let stdout_is_terminal = std::io::stdout().is_terminal();
    let format = options.format(stdout_is_terminal);
    let env = |name: &str| std::env::var(name).ok();
    let result = options.check().and_then(|()| match action {
        Action::Logout => auth::logout(config::config_path(&env).as_deref()),
        Action::Call(call) => Ctx::new(&options, &env).and_then(|ctx| call(&ctx)),
    });
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

/// The exit code for a command line clap could not parse (a usage error, docs/cli.md).
pub fn usage_exit() -> ExitCode {
    ExitCode::from(EXIT_USAGE)
}

/// What a command needs: the resolved settings and, on first use, the HTTP client.
pub struct Ctx {
    settings: Resolved,
    /// `--no-retry`.
    no_retry: bool,
    /// `--timeout`, else the client's default.
    timeout: Duration,
    /// `--verbose`.
    verbose: bool,
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
            timeout: options.timeout.map_or(client::TIMEOUT, Duration::from_secs),
            verbose: options.verbose,
            file,
            api: OnceCell::new(),
            learned_org: OnceCell::new(),
        })
    }

    fn api(&self) -> CliResult<&Api> {
        if let Some(api) = self.api.get() {
            return Ok(api);
        }
        let mut api =
            Api::with_timeout(&self.settings.api_base.value, self.timeout)?.verbose(self.verbose);
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

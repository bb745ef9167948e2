//! `auth login|whoami|logout`: the config file `~/.rogeriq/config.json` (docs/cli.md).

use std::path::Path;

use clap::Subcommand;
use serde_json::{Value, json};

use crate::cli::Ctx;
use crate::cli::config::{ConfigFile, DEFAULT_API_BASE, Setting, Source, key_prefix};
use crate::cli::error::{CliError, CliResult};
use crate::cli::output::Output;

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Store an API key (no browser step): checks it with the server, learns its organisation
    /// and writes ~/.rogeriq/config.json (mode 0600)
    #[command(after_help = examples![
        "rogeriq auth login --api-key riq_…",
        "rogeriq auth login --api-key riq_… --api-base https://rogeriq.example.com --project prj_…"
    ])]
    Login,
    /// Show the credentials in use and where each comes from (computed locally; the key is
    /// shown by its prefix only)
    #[command(after_help = examples!["rogeriq auth whoami"])]
    Whoami,
    /// Delete the config file
    #[command(after_help = examples!["rogeriq auth logout"])]
    Logout,
}

pub fn run(command: Command, ctx: &Ctx) -> CliResult<Output> {
    match command {
        Command::Login => login(ctx),
        Command::Whoami => {
            let key = ctx.settings.api_key.as_ref().ok_or_else(|| {
                CliError::NoCredentials(
                    "not logged in: run `rogeriq auth login --api-key riq_…` or set RIQ_API_KEY"
                        .into(),
                )
            })?;
            Ok(describe(
                ctx,
                key,
                &ctx.settings.api_base,
                ctx.settings.org.as_ref(),
                ctx.settings.project.as_ref(),
            ))
        }
        Command::Logout => logout(ctx.settings.config_path.as_deref()),
    }
}

/// Deletes the config file. It needs nothing else, so it works on a file too broken to read.
pub fn logout(path: Option<&Path>) -> CliResult<Output> {
    let path = path.ok_or_else(no_home)?;
    let deleted = match std::fs::remove_file(path) {
        Ok(()) => true,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => false,
        Err(err) => {
            return Err(CliError::usage(format!(
                "cannot delete {}: {err}",
                path.display()
            )));
        }
    };
    let note = if deleted {
        "logged out"
    } else {
        "there was no config file"
    };
    Ok(
        Output::object(json!({"config_file": path.display().to_string(), "deleted": deleted}))
            .note(note),
    )
}

fn no_home() -> CliError {
    CliError::usage("HOME is not set, so there is no ~/.rogeriq/config.json")
}

fn config_path(ctx: &Ctx) -> CliResult<&Path> {
    ctx.settings.config_path.as_deref().ok_or_else(no_home)
}

/// Checks the key with the server and stores it with its base, organisation and project. The
/// organisation is the one given (`--org`, `RIQ_ORG_ID`) or else the key's own; a project is
/// stored only when given, since a new key may belong elsewhere than the old file's project.
fn login(ctx: &Ctx) -> CliResult<Output> {
    let path = config_path(ctx)?;
    let key = ctx
        .settings
        .api_key
        .as_ref()
        .filter(|k| k.source != Source::ConfigFile)
        .ok_or_else(|| {
            CliError::usage(
                "give the key to store: `rogeriq auth login --api-key riq_…` (or set \
                 RIQ_API_KEY); the browser flow is not supported",
            )
        })?;
    let given = |setting: Option<&Setting>| {
        setting
            .filter(|s| matches!(s.source, Source::Flag | Source::Env))
            .cloned()
    };
    // A key the server refuses is not stored.
    let key_org = ctx.key_org()?;
    let org = match (given(ctx.settings.org.as_ref()), key_org) {
        (Some(given), Some(own)) if given.value != own => {
            return Err(CliError::usage(format!(
                "this key belongs to {own}, not {}",
                given.value
            )));
        }
        (Some(given), _) => Some(given.value),
        (None, own) => own,
    };
    let project = given(ctx.settings.project.as_ref()).map(|p| p.value);
    let base = &ctx.settings.api_base;
    let file = ConfigFile {
        api_key: Some(key.value.clone()),
        api_base: (base.value != DEFAULT_API_BASE).then(|| base.value.clone()),
        org_id: org,
        project_id: project,
    };
    file.save(path)?;
    let stored = |value: &Option<String>| {
        value.clone().map(|value| Setting {
            value,
            source: Source::ConfigFile,
        })
    };
    let verb = if ctx.file.api_key.is_some() {
        "replaced the key in"
    } else {
        "stored the key in"
    };
    let shown_base = match &file.api_base {
        Some(_) => stored(&file.api_base),
        None => Some(base.clone()),
    };
    Ok(describe(
        ctx,
        &Setting {
            value: key.value.clone(),
            source: Source::ConfigFile,
        },
        shown_base.as_ref().unwrap_or(base),
        stored(&file.org_id).as_ref(),
        stored(&file.project_id).as_ref(),
    )
    .note(format!("{verb} {}", path.display())))
}

/// The credentials as `auth whoami` shows them: the key's prefix only, never the secret.
fn describe(
    ctx: &Ctx,
    key: &Setting,
    base: &Setting,
    org: Option<&Setting>,
    project: Option<&Setting>,
) -> Output {
    let value = |s: Option<&Setting>| s.map_or(Value::Null, |s| json!(s.value));
    let source = |s: Option<&Setting>| s.map_or(Value::Null, |s| json!(s.source.as_str()));
    Output::object(json!({
        "api_key_prefix": key_prefix(&key.value),
        "api_key_source": key.source.as_str(),
        "api_base": base.value,
        "api_base_source": base.source.as_str(),
        "org_id": value(org),
        "org_id_source": source(org),
        "project_id": value(project),
        "project_id_source": source(project),
        "config_file": ctx.settings.config_path.as_ref().map(|p| p.display().to_string()),
    }))
    .id_field("api_key_prefix")
}

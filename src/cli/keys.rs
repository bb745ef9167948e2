//! `keys …` and `audit list`: the organisation's API keys and audit log (docs/administration.md).

use clap::{Args, Subcommand};

use crate::cli::error::CliResult;
use crate::cli::output::Output;
use crate::cli::{Body, Ctx, Paging, Query, data, query};

pub const KEY_COLUMNS: &[&str] = &[
    "id",
    "name",
    "prefix",
    "scopes",
    "tier",
    "expires_at",
    "last_used_at",
    "revoked_at",
];
const AUDIT_COLUMNS: &[&str] = &[
    "id",
    "created_at",
    "action",
    "project_id",
    "target_id",
    "actor",
    "api_key_id",
];
const TIERS: [&str; 4] = ["starter", "pro", "scale", "enterprise"];
/// Shown with every new key's secret.
pub const KEEP_THE_KEY: &str = "keep the key: it is not shown again";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the organisation's keys (never their secrets)
    #[command(after_help = examples!["rogeriq keys list"])]
    List,
    /// Create a key; the answer's `key` is the secret, shown this once
    #[command(after_help = examples![
        "rogeriq keys create \"kb bot\" --scopes kb:write,conversations:read",
        "rogeriq keys create ci --scopes write --expires-at 2027-12-31T00:00:00Z"
    ])]
    Create {
        #[command(flatten)]
        key: NewKey,
    },
    /// Revoke a key (from its next request on)
    #[command(after_help = examples!["rogeriq keys revoke key_xxxxxxxxxxxx"])]
    Revoke {
        /// Key id (key_…)
        key_id: String,
    },
}

/// A new key's name, scopes, tier and expiry (`keys create`, `admin keys create`).
#[derive(Debug, Args)]
pub struct NewKey {
    /// A name to recognise the key by
    name: String,
    /// Scopes, comma-separated: read, write, admin or <resource>:<read|write|admin>
    #[arg(long, value_delimiter = ',', required = true)]
    scopes: Vec<String>,
    /// Rate-limit tier [default: starter]
    #[arg(long, value_parser = TIERS)]
    tier: Option<String>,
    /// Expiry, RFC 3339 (e.g. 2027-12-31T00:00:00Z)
    #[arg(long)]
    expires_at: Option<String>,
}

impl NewKey {
    pub fn body(self) -> serde_json::Value {
        Body::new()
            .set("name", Some(self.name))
            .set("scopes", Some(self.scopes))
            .set("tier", self.tier)
            .set("expires_at", self.expires_at)
            .value()
    }
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit entries, newest first, with filters
    #[command(after_help = examples![
        "rogeriq audit list --action project.deleted --limit 10",
        "rogeriq audit list --project-id prj_xxx --since 2026-05-01T00:00:00Z"
    ])]
    List {
        /// Only entries about this project (prj_…)
        #[arg(long)]
        project_id: Option<String>,
        /// Only this action, e.g. project.created
        #[arg(long)]
        action: Option<String>,
        /// Only entries made with this key (key_…)
        #[arg(long)]
        api_key_id: Option<String>,
        /// From this time on (RFC 3339)
        #[arg(long)]
        since: Option<String>,
        /// Up to this time (RFC 3339)
        #[arg(long)]
        until: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
}

pub fn run(command: Command, ctx: &Ctx) -> CliResult<Output> {
    let org = ctx.org()?;
    let keys = ["orgs", org.as_str(), "keys"];
    let output = match command {
        Command::List => Output::list(data(ctx.get(&keys, &Query::new())?), KEY_COLUMNS),
        Command::Create { key } => {
            Output::object(data(ctx.post(&keys, Some(&key.body()))?)).note(KEEP_THE_KEY)
        }
        Command::Revoke { key_id } => {
            Output::object(data(ctx.delete(&["orgs", &org, "keys", &key_id])?))
        }
    };
    Ok(output)
}

pub fn run_audit(command: AuditCommand, ctx: &Ctx) -> CliResult<Output> {
    let AuditCommand::List {
        project_id,
        action,
        api_key_id,
        since,
        until,
        paging,
    } = command;
    let org = ctx.org()?;
    let mut q = query([
        ("project_id", project_id),
        ("action", action),
        ("api_key_id", api_key_id),
        ("since", since),
        ("until", until),
    ]);
    q.extend(query(paging.pairs()));
    Ok(Output::page(
        ctx.get(&["orgs", &org, "audit-log"], &q)?,
        AUDIT_COLUMNS,
    ))
}

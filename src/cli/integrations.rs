//! `integrations …`: its endpoints (OpenAPI document) in the configured project. Installing needs
//! the master key (`rogeriq admin integrations install`) or, on RogerIQ, a browser.

use clap::Subcommand;

use crate::cli::error::CliResult;
use crate::cli::output::Output;
use crate::cli::{Body, Ctx, Query, data, query};

pub const COLUMNS: &[&str] = &[
    "id",
    "provider",
    "status",
    "display_name",
    "health_status",
    "updated_at",
];
const CATALOG_COLUMNS: &[&str] = &["provider", "name", "category", "status", "setup_type"];

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the integrations installed in the project
    #[command(after_help = examples!["rogeriq integrations list"])]
    List,
    /// Browse the providers the server knows
    #[command(after_help = examples!["rogeriq integrations catalog --category engineering --status available"])]
    Catalog {
        /// Free text
        #[arg(long)]
        search: Option<String>,
        /// messaging, commerce or engineering
        #[arg(long)]
        category: Option<String>,
        /// installed or available
        #[arg(long)]
        status: Option<String>,
    },
    /// Show one provider of the catalog
    #[command(after_help = examples!["rogeriq integrations get github"])]
    Get {
        /// Provider name, e.g. slack
        provider: String,
    },
    /// Get the URL where a person connects a provider in a browser
    #[command(after_help = examples!["rogeriq integrations install-url slack"])]
    InstallUrl {
        /// Provider name, e.g. slack
        provider: String,
    },
    /// Pause, resume, rename or hide an installed integration
    #[command(after_help = examples!["rogeriq integrations update slack --status paused --sidebar false"])]
    Update {
        /// Provider name, e.g. slack
        provider: String,
        /// active or paused
        #[arg(long, value_parser = ["active", "paused"])]
        status: Option<String>,
        /// Name shown in the dashboard
        #[arg(long)]
        display_name: Option<String>,
        /// Show it in the inbox sidebar
        #[arg(long)]
        sidebar: Option<bool>,
    },
    /// Disconnect an integration (it stays listed as disconnected)
    #[command(after_help = examples!["rogeriq integrations disconnect slack"])]
    Disconnect {
        /// Provider name, e.g. slack
        provider: String,
    },
}

pub fn run(command: Command, ctx: &Ctx) -> CliResult<Output> {
    let project = ctx.project()?;
    let project = project.as_str();
    let output = match command {
        Command::List => Output::list(
            data(ctx.get(&["projects", project, "integrations"], &Query::new())?),
            COLUMNS,
        ),
        Command::Catalog {
            search,
            category,
            status,
        } => Output::list(
            data(ctx.get(
                &["projects", project, "integrations", "catalog"],
                &query([("q", search), ("category", category), ("status", status)]),
            )?),
            CATALOG_COLUMNS,
        )
        .id_field("provider"),
        Command::Get { provider } => Output::object(data(ctx.get(
            &["projects", project, "integrations", "catalog", &provider],
            &Query::new(),
        )?))
        .id_field("provider"),
        Command::InstallUrl { provider } => Output::object(data(ctx.post(
            &[
                "projects",
                project,
                "integrations",
                &provider,
                "install-url",
            ],
            None,
        )?)),
        Command::Update {
            provider,
            status,
            display_name,
            sidebar,
        } => {
            let body = Body::new()
                .set("status", status)
                .set("display_name", display_name)
                .set("sidebar_enabled", sidebar)
                .changes("--status, --display-name, --sidebar")?;
            Output::object(data(ctx.patch(
                &["projects", project, "integrations", &provider, "lifecycle"],
                &body,
            )?))
        }
        Command::Disconnect { provider } => Output::object(data(ctx.delete(&[
            "projects",
            project,
            "integrations",
            &provider,
        ])?)),
    };
    Ok(output)
}

//! `projects …`: its endpoints (OpenAPI document) under the configured (or the key's) organisation.

use clap::Subcommand;

use crate::cli::error::{CliError, CliResult};
use crate::cli::output::Output;
use crate::cli::{Body, Ctx, Query, data};

const COLUMNS: &[&str] = &[
    "id",
    "name",
    "slug",
    "domain",
    "agent_mode",
    "ai_model",
    "created_at",
];
const AGENT_MODES: [&str; 3] = ["autopilot", "copilot", "assist"];

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the organisation's projects
    #[command(after_help = examples!["rogeriq projects list", "rogeriq projects list --quiet"])]
    List,
    /// Show one project
    #[command(after_help = examples!["rogeriq projects get prj_xxxxxxxxxxxx"])]
    Get {
        /// Project id (prj_…)
        project_id: String,
    },
    /// Create a project
    #[command(after_help = examples![
        "rogeriq projects create \"Acme Support\" --domain support.acme.com",
        "rogeriq projects create Docs --slug docs"
    ])]
    Create {
        /// Project name (1-100 characters)
        name: String,
        /// Custom domain, e.g. support.acme.com
        #[arg(long)]
        domain: Option<String>,
        /// URL slug; derived from the name when left out
        #[arg(long)]
        slug: Option<String>,
    },
    /// Change a project's name, domain, agent mode or AI model
    #[command(after_help = examples![
        "rogeriq projects update prj_xxx --agent-mode autopilot --ai-model anthropic/claude-sonnet-4",
        "rogeriq projects update prj_xxx --domain ''   # clears the domain"
    ])]
    Update {
        /// Project id (prj_…)
        project_id: String,
        /// New name
        #[arg(long)]
        name: Option<String>,
        /// Custom domain; '' clears it
        #[arg(long)]
        domain: Option<String>,
        /// How the AI agent acts
        #[arg(long, value_parser = AGENT_MODES)]
        agent_mode: Option<String>,
        /// OpenRouter model id, e.g. anthropic/claude-sonnet-4; '' clears it
        #[arg(long, alias = "ai-mode")]
        ai_model: Option<String>,
    },
    /// Delete a project and everything it owns (needs projects:admin)
    #[command(after_help = examples!["rogeriq projects delete prj_xxxxxxxxxxxx --yes"])]
    Delete {
        /// Project id (prj_…)
        project_id: String,
        /// Confirm: every conversation, contact, article, webhook, form and beacon of the
        /// project is deleted with it
        #[arg(long)]
        yes: bool,
    },
}

pub fn run(command: Command, ctx: &Ctx) -> CliResult<Output> {
    if let Command::Delete {
        project_id,
        yes: false,
    } = &command
    {
        return Err(CliError::usage(format!(
            "deleting {project_id} deletes everything it owns; add --yes to confirm"
        )));
    }
    let org = ctx.org()?;
    let org = org.as_str();
    let output = match command {
        Command::List => Output::list(
            data(ctx.get(&["orgs", org, "projects"], &Query::new())?),
            COLUMNS,
        ),
        Command::Get { project_id } => Output::object(data(
            ctx.get(&["orgs", org, "projects", &project_id], &Query::new())?,
        )),
        Command::Create { name, domain, slug } => {
            let body = Body::new()
                .set("name", Some(name))
                .set("domain", domain)
                .set("slug", slug)
                .value();
            Output::object(data(ctx.post(&["orgs", org, "projects"], Some(&body))?))
        }
        Command::Update {
            project_id,
            name,
            domain,
            agent_mode,
            ai_model,
        } => {
            let body = Body::new()
                .set("name", name)
                .nullable("domain", domain)
                .set("agent_mode", agent_mode)
                .nullable("ai_model", ai_model)
                .changes("--name, --domain, --agent-mode, --ai-model")?;
            Output::object(data(
                ctx.patch(&["orgs", org, "projects", &project_id], &body)?,
            ))
        }
        Command::Delete { project_id, .. } => {
            Output::object(data(ctx.delete(&["orgs", org, "projects", &project_id])?))
        }
    };
    Ok(output)
}

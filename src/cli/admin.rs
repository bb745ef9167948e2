//! `admin …`: the self-hosted admin API with the master key (docs/administration.md), so a server
//! can be set up from the CLI alone.

use clap::Subcommand;
use reqwest::Method;

use crate::cli::error::{CliError, CliResult};
use crate::cli::keys::{KEEP_THE_KEY, NewKey};
use crate::cli::output::Output;
use crate::cli::{Body, Ctx, data};

const ORG_COLUMNS: &[&str] = &["id", "name", "created_at"];

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Organisations
    #[command(subcommand, after_help = examples!["rogeriq admin orgs list"])]
    Orgs(Orgs),
    /// An organisation's keys, minted with the master key
    #[command(subcommand, after_help = examples!["rogeriq admin keys create ops --org org_xxx --scopes admin"])]
    Keys(Keys),
    /// Integrations, installed without the browser step
    #[command(subcommand, after_help = examples!["rogeriq admin integrations install slack --project prj_xxx"])]
    Integrations(Integrations),
}

#[derive(Debug, Subcommand)]
pub enum Orgs {
    /// Create an organisation
    #[command(after_help = examples!["rogeriq admin orgs create Acme"])]
    Create {
        /// Organisation name (1-100 characters)
        name: String,
    },
    /// List every organisation
    #[command(after_help = examples!["rogeriq admin orgs list"])]
    List,
}

#[derive(Debug, Subcommand)]
pub enum Keys {
    /// Create a key for the organisation given by --org (any scope may be granted)
    #[command(after_help = examples!["rogeriq admin keys create ops --org org_xxxxxxxxxxxx --scopes admin"])]
    Create {
        #[command(flatten)]
        key: NewKey,
    },
}

#[derive(Debug, Subcommand)]
pub enum Integrations {
    /// Install a catalog provider in the project given by --project
    #[command(after_help = examples![
        "rogeriq admin integrations install slack --project prj_xxxxxxxxxxxx --display-name 'Support Slack'"
    ])]
    Install {
        /// Provider name, e.g. slack
        provider: String,
        /// Name shown in the dashboard
        #[arg(long)]
        display_name: Option<String>,
    },
}

pub fn run(command: Command, ctx: &Ctx) -> CliResult<Output> {
    let output = match command {
        Command::Orgs(Orgs::Create { name }) => {
            let body = Body::new().set("name", Some(name)).value();
            Output::object(data(ctx.master_call(
                Method::POST,
                &["admin", "orgs"],
                Some(&body),
            )?))
        }
        Command::Orgs(Orgs::List) => Output::list(
            data(ctx.master_call(Method::GET, &["admin", "orgs"], None)?),
            ORG_COLUMNS,
        ),
        Command::Keys(Keys::Create { key }) => {
            // The admin API names the organisation itself; no key is there to ask.
            let org = ctx.settings.org.as_ref().ok_or_else(|| {
                CliError::usage("name the organisation: --org org_… (or RIQ_ORG_ID)")
            })?;
            Output::object(data(ctx.master_call(
                Method::POST,
                &["admin", "orgs", &org.value, "keys"],
                Some(&key.body()),
            )?))
            .note(KEEP_THE_KEY)
        }
        Command::Integrations(Integrations::Install {
            provider,
            display_name,
        }) => {
            let project = ctx.project()?;
            let body = Body::new().set("display_name", display_name).value();
            Output::object(data(ctx.master_call(
                Method::POST,
                &["admin", "projects", &project, "integrations", &provider],
                Some(&body),
            )?))
        }
    };
    Ok(output)
}

//! `webhooks …`: its endpoints (OpenAPI document) in the configured project.

use clap::Subcommand;

use crate::cli::error::CliResult;
use crate::cli::output::Output;
use crate::cli::{Body, Ctx, Query, data};

const COLUMNS: &[&str] = &[
    "id",
    "url",
    "events",
    "status",
    "failure_count",
    "last_triggered_at",
];
const DELIVERY_COLUMNS: &[&str] = &[
    "id",
    "event",
    "status",
    "status_code",
    "attempt",
    "duration_ms",
    "created_at",
];

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the project's webhooks
    #[command(after_help = examples!["rogeriq webhooks list"])]
    List,
    /// Show one webhook
    #[command(after_help = examples!["rogeriq webhooks get wh_xxxxxxxxxxxx"])]
    Get {
        /// Webhook id (wh_…)
        webhook_id: String,
    },
    /// Create a webhook; the answer holds its signing secret, shown this once
    #[command(after_help = examples![
        "rogeriq webhooks create --url https://hooks.example.com/rogeriq --events 'conversation.*,message.created'"
    ])]
    Create {
        /// Receiver URL (https)
        #[arg(long)]
        url: String,
        /// Events, comma-separated; `*` and `<group>.*` wildcards allowed
        #[arg(long, value_delimiter = ',', required = true)]
        events: Vec<String>,
    },
    /// Change a webhook's URL, events or status
    #[command(after_help = examples![
        "rogeriq webhooks update wh_xxx --status disabled",
        "rogeriq webhooks update wh_xxx --events '*'"
    ])]
    Update {
        /// Webhook id (wh_…)
        webhook_id: String,
        /// active or disabled (active resets the failure count)
        #[arg(long, value_parser = ["active", "disabled"])]
        status: Option<String>,
        /// Receiver URL
        #[arg(long)]
        url: Option<String>,
        /// Events, comma-separated (replaces the list)
        #[arg(long, value_delimiter = ',')]
        events: Option<Vec<String>>,
    },
    /// Send one test event now and report the receiver's answer
    #[command(after_help = examples!["rogeriq webhooks test wh_xxxxxxxxxxxx"])]
    Test {
        /// Webhook id (wh_…)
        webhook_id: String,
    },
    /// The 50 latest delivery attempts, newest first
    #[command(after_help = examples!["rogeriq webhooks deliveries wh_xxxxxxxxxxxx"])]
    Deliveries {
        /// Webhook id (wh_…)
        webhook_id: String,
    },
    /// Replace the signing secret (the old one stops working at once)
    #[command(after_help = examples!["rogeriq webhooks rotate-secret wh_xxxxxxxxxxxx"])]
    RotateSecret {
        /// Webhook id (wh_…)
        webhook_id: String,
    },
    /// Delete a webhook and its delivery history
    #[command(after_help = examples!["rogeriq webhooks delete wh_xxxxxxxxxxxx"])]
    Delete {
        /// Webhook id (wh_…)
        webhook_id: String,
    },
}

pub fn run(command: Command, ctx: &Ctx) -> CliResult<Output> {
    let project = ctx.project()?;
    let project = project.as_str();
    let list = ["projects", project, "webhooks"];
    let output = match command {
        Command::List => Output::list(data(ctx.get(&list, &Query::new())?), COLUMNS),
        Command::Get { webhook_id } => Output::object(data(ctx.get(
            &["projects", project, "webhooks", &webhook_id],
            &Query::new(),
        )?)),
        Command::Create { url, events } => {
            let body = Body::new()
                .set("url", Some(url))
                .set("events", Some(events))
                .value();
            Output::object(data(ctx.post(&list, Some(&body))?))
                .note("keep the secret: it is not shown again (rotate-secret makes a new one)")
        }
        Command::Update {
            webhook_id,
            status,
            url,
            events,
        } => {
            let body = Body::new()
                .set("status", status)
                .set("url", url)
                .set("events", events)
                .changes("--status, --url, --events")?;
            Output::object(data(
                ctx.patch(&["projects", project, "webhooks", &webhook_id], &body)?,
            ))
        }
        Command::Test { webhook_id } => Output::object(data(ctx.post(
            &["projects", project, "webhooks", &webhook_id, "test"],
            None,
        )?)),
        Command::Deliveries { webhook_id } => Output::list(
            data(ctx.get(
                &["projects", project, "webhooks", &webhook_id, "deliveries"],
                &Query::new(),
            )?),
            DELIVERY_COLUMNS,
        ),
        Command::RotateSecret { webhook_id } => Output::object(data(ctx.post(
            &[
                "projects",
                project,
                "webhooks",
                &webhook_id,
                "rotate-secret",
            ],
            None,
        )?)),
        Command::Delete { webhook_id } => Output::object(data(ctx.delete(&[
            "projects",
            project,
            "webhooks",
            &webhook_id,
        ])?)),
    };
    Ok(output)
}

//! `conversations …`: its endpoints (OpenAPI document) (the SDK's `resolve`, `snooze`, `assign` and
//! `reply` included) in the configured project.

use clap::{Args, Subcommand};
use serde_json::json;

use crate::cli::error::CliResult;
use crate::cli::output::Output;
use crate::cli::{Body, Ctx, Paging, Query, Sorting, data, query};

const COLUMNS: &[&str] = &[
    "id",
    "subject",
    "status",
    "priority",
    "channel",
    "assigned_to",
    "updated_at",
];
const MESSAGE_COLUMNS: &[&str] = &["id", "sender_type", "is_internal", "content", "created_at"];
const STATUSES: [&str; 4] = ["open", "snoozed", "resolved", "closed"];
const PRIORITIES: [&str; 4] = ["low", "normal", "high", "urgent"];
const CHANNELS: [&str; 7] = [
    "email", "chat", "slack", "discord", "telegram", "api", "widget",
];

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List conversations, newest first, with filters
    #[command(after_help = examples![
        "rogeriq conversations list --status open --quiet",
        "rogeriq conversations list --priority urgent --search refund --limit 20"
    ])]
    List {
        #[command(flatten)]
        filter: ListFilter,
        #[command(flatten)]
        sorting: Sorting,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one conversation
    #[command(after_help = examples!["rogeriq conversations get con_xxxxxxxxxxxx"])]
    Get {
        /// Conversation id (con_…)
        conversation_id: String,
    },
    /// Open a conversation
    #[command(after_help = examples![
        "rogeriq conversations create --subject \"Refund for order 1001\" --priority high --tags billing"
    ])]
    Create {
        /// Subject line
        #[arg(long)]
        subject: Option<String>,
        /// Contact of this project (ct_…)
        #[arg(long)]
        contact_id: Option<String>,
        /// Channel [default: api]
        #[arg(long, value_parser = CHANNELS)]
        channel: Option<String>,
        /// Priority [default: normal]
        #[arg(long, value_parser = PRIORITIES)]
        priority: Option<String>,
        /// Tags, comma-separated
        #[arg(long, value_delimiter = ',')]
        tags: Option<Vec<String>>,
    },
    /// Change a conversation's subject, status, priority, assignee or tags
    #[command(after_help = examples!["rogeriq conversations update con_xxx --priority urgent --tags billing,vip"])]
    Update {
        /// Conversation id (con_…)
        conversation_id: String,
        /// Subject line
        #[arg(long)]
        subject: Option<String>,
        /// Status
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
        /// Priority
        #[arg(long, value_parser = PRIORITIES)]
        priority: Option<String>,
        /// Assignee (a user id); '' unassigns
        #[arg(long)]
        assigned_to: Option<String>,
        /// Tags, comma-separated (replaces the list)
        #[arg(long, value_delimiter = ',')]
        tags: Option<Vec<String>>,
    },
    /// Mark a conversation resolved
    #[command(after_help = examples!["rogeriq conversations resolve con_xxxxxxxxxxxx"])]
    Resolve {
        /// Conversation id (con_…)
        conversation_id: String,
    },
    /// Snooze a conversation
    #[command(after_help = examples!["rogeriq conversations snooze con_xxxxxxxxxxxx"])]
    Snooze {
        /// Conversation id (con_…)
        conversation_id: String,
    },
    /// Assign a conversation to a user
    #[command(after_help = examples!["rogeriq conversations assign con_xxxxxxxxxxxx user_42"])]
    Assign {
        /// Conversation id (con_…)
        conversation_id: String,
        /// User id
        user: String,
    },
    /// List a conversation's messages, oldest first
    #[command(after_help = examples!["rogeriq conversations messages con_xxxxxxxxxxxx --limit 20"])]
    Messages {
        /// Conversation id (con_…)
        conversation_id: String,
        #[command(flatten)]
        paging: Paging,
    },
    /// Post a reply, or an internal note with --internal
    #[command(after_help = examples![
        "rogeriq conversations reply con_xxx \"Your refund is on its way.\"",
        "rogeriq conversations reply con_xxx \"Customer is a VIP\" --internal"
    ])]
    Reply {
        /// Conversation id (con_…)
        conversation_id: String,
        /// Message text
        content: String,
        /// Visible to the team only
        #[arg(long)]
        internal: bool,
    },
}

#[derive(Debug, Args)]
pub struct ListFilter {
    /// Only this status
    #[arg(long, value_parser = STATUSES)]
    status: Option<String>,
    /// Only this priority
    #[arg(long, value_parser = PRIORITIES)]
    priority: Option<String>,
    /// Only this channel
    #[arg(long, value_parser = CHANNELS)]
    channel: Option<String>,
    /// Only conversations assigned to this user
    #[arg(long)]
    assigned_to: Option<String>,
    /// Only conversations of this contact (ct_…)
    #[arg(long)]
    contact_id: Option<String>,
    /// Text in the subject
    #[arg(long)]
    search: Option<String>,
}

pub fn run(command: Command, ctx: &Ctx) -> CliResult<Output> {
    let project = ctx.project()?;
    let list = ["projects", project.as_str(), "conversations"];
    let output = match command {
        Command::List {
            filter,
            sorting,
            paging,
        } => {
            let mut q = query([
                ("status", filter.status),
                ("priority", filter.priority),
                ("channel", filter.channel),
                ("assigned_to", filter.assigned_to),
                ("contact_id", filter.contact_id),
                ("q", filter.search),
            ]);
            q.extend(query(sorting.pairs()));
            q.extend(query(paging.pairs()));
            Output::page(ctx.get(&list, &q)?, COLUMNS)
        }
        Command::Get { conversation_id } => Output::object(data(ctx.get(
            &["projects", &project, "conversations", &conversation_id],
            &Query::new(),
        )?)),
        Command::Create {
            subject,
            contact_id,
            channel,
            priority,
            tags,
        } => {
            let body = Body::new()
                .set("subject", subject)
                .set("contact_id", contact_id)
                .set("channel", channel)
                .set("priority", priority)
                .set("tags", tags)
                .value();
            Output::object(data(ctx.post(&list, Some(&body))?))
        }
        Command::Update {
            conversation_id,
            subject,
            status,
            priority,
            assigned_to,
            tags,
        } => {
            let body = Body::new()
                .set("subject", subject)
                .set("status", status)
                .set("priority", priority)
                .nullable("assigned_to", assigned_to)
                .set("tags", tags)
                .changes("--subject, --status, --priority, --assigned-to, --tags")?;
            update(ctx, &project, &conversation_id, &body)?
        }
        Command::Resolve { conversation_id } => update(
            ctx,
            &project,
            &conversation_id,
            &json!({"status": "resolved"}),
        )?,
        Command::Snooze { conversation_id } => update(
            ctx,
            &project,
            &conversation_id,
            &json!({"status": "snoozed"}),
        )?,
        Command::Assign {
            conversation_id,
            user,
        } => update(
            ctx,
            &project,
            &conversation_id,
            &json!({"assigned_to": user}),
        )?,
        Command::Messages {
            conversation_id,
            paging,
        } => Output::page(
            ctx.get(
                &[
                    "projects",
                    &project,
                    "conversations",
                    &conversation_id,
                    "messages",
                ],
                &query(paging.pairs()),
            )?,
            MESSAGE_COLUMNS,
        ),
        Command::Reply {
            conversation_id,
            content,
            internal,
        } => {
            // As the SDK's `reply`: `is_internal` always present, no `sender_type`.
            let body = json!({"content": content, "is_internal": internal});
            Output::object(data(ctx.post(
                &[
                    "projects",
                    &project,
                    "conversations",
                    &conversation_id,
                    "messages",
                ],
                Some(&body),
            )?))
        }
    };
    Ok(output)
}

fn update(
    ctx: &Ctx,
    project: &str,
    conversation_id: &str,
    body: &serde_json::Value,
) -> CliResult<Output> {
    Ok(Output::object(data(ctx.patch(
        &["projects", project, "conversations", conversation_id],
        body,
    )?)))
}

//! `agent …`: its endpoints (OpenAPI document) in the configured project.

use clap::Subcommand;
use serde_json::json;

use crate::cli::error::CliResult;
use crate::cli::output::Output;
use crate::cli::{Body, Ctx, Query, data};

const AGENT_MODES: [&str; 3] = ["autopilot", "copilot", "assist"];

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show whether the agent is on, its mode and model, and this month's usage
    #[command(after_help = examples!["rogeriq agent status"])]
    Status,
    /// Show the agent's configuration, or change it with any of the flags
    #[command(after_help = examples![
        "rogeriq agent config",
        "rogeriq agent config --mode copilot --model openai/gpt-4o --confidence-threshold 0.7"
    ])]
    Config {
        /// How the agent acts: autopilot posts replies, copilot drafts internal notes, assist
        /// only suggests
        #[arg(long, value_parser = AGENT_MODES)]
        mode: Option<String>,
        /// OpenRouter model id, e.g. anthropic/claude-sonnet-4
        #[arg(long)]
        model: Option<String>,
        /// Replies less confident than this (0-1) are held for review
        #[arg(long)]
        confidence_threshold: Option<f64>,
    },
    /// Let the agent answer a conversation (autopilot posts, copilot drafts an internal note)
    #[command(after_help = examples![
        "rogeriq agent respond con_xxxxxxxxxxxx",
        "rogeriq agent respond con_xxxxxxxxxxxx --mode assist"
    ])]
    Respond {
        /// Conversation id (con_…)
        conversation_id: String,
        /// Use this mode instead of the project's, for this reply only
        #[arg(long, value_parser = AGENT_MODES)]
        mode: Option<String>,
    },
    /// Classify a conversation: category, intent, priority, sentiment
    #[command(after_help = examples!["rogeriq agent classify con_xxxxxxxxxxxx"])]
    Classify {
        /// Conversation id (con_…)
        conversation_id: String,
    },
    /// Suggest a reply without posting it
    #[command(after_help = examples!["rogeriq agent suggest con_xxxxxxxxxxxx"])]
    Suggest {
        /// Conversation id (con_…)
        conversation_id: String,
    },
}

pub fn run(command: Command, ctx: &Ctx) -> CliResult<Output> {
    let project = ctx.project()?;
    let path = |action: &'static str| ["projects", project.as_str(), "agent", action];
    let output = match command {
        Command::Status => Output::object(data(ctx.get(&path("status"), &Query::new())?)),
        Command::Config {
            mode,
            model,
            confidence_threshold,
        } => {
            let body = Body::new()
                .set("agent_mode", mode)
                .set("ai_model", model)
                .set("confidence_threshold", confidence_threshold)
                .value();
            let answer = if body.as_object().is_some_and(|b| b.is_empty()) {
                ctx.get(&path("config"), &Query::new())?
            } else {
                ctx.patch(&path("config"), &body)?
            };
            Output::object(data(answer))
        }
        Command::Respond {
            conversation_id,
            mode,
        } => {
            let body = Body::new()
                .set("conversation_id", Some(conversation_id))
                .set("mode_override", mode)
                .value();
            Output::object(data(ctx.post(&path("respond"), Some(&body))?)).id_field("message_id")
        }
        Command::Classify { conversation_id } => {
            let body = json!({"conversation_id": conversation_id});
            Output::object(data(ctx.post(&path("classify"), Some(&body))?))
        }
        Command::Suggest { conversation_id } => {
            let body = json!({"conversation_id": conversation_id});
            Output::object(data(ctx.post(&path("suggest"), Some(&body))?))
        }
    };
    Ok(output)
}

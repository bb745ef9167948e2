//! `widget config|set`: its endpoints (OpenAPI document) in the configured project.

use clap::Subcommand;

use crate::cli::error::CliResult;
use crate::cli::output::Output;
use crate::cli::{Body, Ctx, Query, data};

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Show the widget's configuration
    #[command(after_help = examples!["rogeriq widget config"])]
    Config,
    /// Change the widget's configuration
    #[command(after_help = examples![
        "rogeriq widget set --theme dark --primary-color '#0A84FF' --welcome-message 'Hi there!'"
    ])]
    Set {
        /// light, dark or auto
        #[arg(long, value_parser = ["light", "dark", "auto"])]
        theme: Option<String>,
        /// Hex colour, #RGB or #RRGGBB (the `color` field)
        #[arg(long)]
        primary_color: Option<String>,
        /// Greeting shown when a visitor opens the widget
        #[arg(long)]
        welcome_message: Option<String>,
        /// Corner of the page
        #[arg(long, value_parser = ["bottom-right", "bottom-left"])]
        position: Option<String>,
        /// Two-letter language code, e.g. en
        #[arg(long)]
        locale: Option<String>,
        /// Show the widget (false hides it while the embed snippet stays)
        #[arg(long)]
        enabled: Option<bool>,
        /// Show the "Powered by RogerIQ" footer
        #[arg(long)]
        show_branding: Option<bool>,
    },
}

pub fn run(command: Command, ctx: &Ctx) -> CliResult<Output> {
    let project = ctx.project()?;
    let path = ["projects", project.as_str(), "widget", "config"];
    let answer = match command {
        Command::Config => ctx.get(&path, &Query::new())?,
        Command::Set {
            theme,
            primary_color,
            welcome_message,
            position,
            locale,
            enabled,
            show_branding,
        } => {
            let body = Body::new()
                .set("theme", theme)
                .set("color", primary_color)
                .set("welcome_message", welcome_message)
                .set("position", position)
                .set("locale", locale)
                .set("enabled", enabled)
                .set("show_branding", show_branding)
                .changes(
                    "--theme, --primary-color, --welcome-message, --position, --locale, \
                     --enabled, --show-branding",
                )?;
            ctx.patch(&path, &body)?
        }
    };
    Ok(Output::object(data(answer)).id_field("project_id"))
}

//! `contacts …`: its endpoints (OpenAPI document) in the configured project.

use clap::{Args, Subcommand};
use serde_json::Value;

use crate::cli::error::{CliError, CliResult};
use crate::cli::output::Output;
use crate::cli::{Body, Ctx, Paging, Query, data, query};

const COLUMNS: &[&str] = &[
    "id",
    "name",
    "email",
    "external_id",
    "company",
    "created_at",
];

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List contacts, newest first
    #[command(after_help = examples![
        "rogeriq contacts list --search jane",
        "rogeriq contacts list --email jane@example.com"
    ])]
    List {
        /// Text in the name or email
        #[arg(long)]
        search: Option<String>,
        /// This email (any case)
        #[arg(long)]
        email: Option<String>,
        /// This external id
        #[arg(long)]
        external_id: Option<String>,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one contact
    #[command(after_help = examples!["rogeriq contacts get ct_xxxxxxxxxxxx"])]
    Get {
        /// Contact id (ct_…)
        contact_id: String,
    },
    /// Create a contact, or update the one with the same external id or email
    #[command(after_help = examples![
        "rogeriq contacts upsert --email jane@example.com --name Jane --external-id u-42 --metadata '{\"plan\": \"pro\"}'"
    ])]
    Upsert {
        #[command(flatten)]
        fields: Fields,
    },
    /// Change a contact (metadata merges key by key)
    #[command(after_help = examples!["rogeriq contacts update ct_xxx --company Acme --job-title CTO"])]
    Update {
        /// Contact id (ct_…)
        contact_id: String,
        #[command(flatten)]
        fields: Fields,
    },
}

#[derive(Debug, Args)]
pub struct Fields {
    /// Email address
    #[arg(long)]
    email: Option<String>,
    /// Name
    #[arg(long)]
    name: Option<String>,
    /// Phone number
    #[arg(long)]
    phone: Option<String>,
    /// Your product's id for the person
    #[arg(long)]
    external_id: Option<String>,
    /// Company
    #[arg(long)]
    company: Option<String>,
    /// Job title
    #[arg(long)]
    job_title: Option<String>,
    /// A JSON object of extra fields
    #[arg(long, value_name = "JSON")]
    metadata: Option<String>,
}

impl Fields {
    fn body(self) -> CliResult<Body> {
        let metadata = self
            .metadata
            .map(|text| {
                serde_json::from_str::<Value>(&text)
                    .ok()
                    .filter(Value::is_object)
                    .ok_or_else(|| CliError::usage("--metadata must be a JSON object"))
            })
            .transpose()?;
        Ok(Body::new()
            .set("email", self.email)
            .set("name", self.name)
            .set("phone", self.phone)
            .set("external_id", self.external_id)
            .set("company", self.company)
            .set("job_title", self.job_title)
            .set("metadata", metadata))
    }
}

const FIELD_FLAGS: &str =
    "--email, --name, --phone, --external-id, --company, --job-title, --metadata";

pub fn run(command: Command, ctx: &Ctx) -> CliResult<Output> {
    let project = ctx.project()?;
    let list = ["projects", project.as_str(), "contacts"];
    let output = match command {
        Command::List {
            search,
            email,
            external_id,
            paging,
        } => {
            let mut q = query([
                ("q", search),
                ("email", email),
                ("external_id", external_id),
            ]);
            q.extend(query(paging.pairs()));
            Output::page(ctx.get(&list, &q)?, COLUMNS)
        }
        Command::Get { contact_id } => Output::object(data(ctx.get(
            &["projects", &project, "contacts", &contact_id],
            &Query::new(),
        )?)),
        Command::Upsert { fields } => {
            let body = fields.body()?.changes(FIELD_FLAGS)?;
            Output::object(data(ctx.post(&list, Some(&body))?))
        }
        Command::Update { contact_id, fields } => {
            let body = fields.body()?.changes(FIELD_FLAGS)?;
            Output::object(data(
                ctx.patch(&["projects", &project, "contacts", &contact_id], &body)?,
            ))
        }
    };
    Ok(output)
}

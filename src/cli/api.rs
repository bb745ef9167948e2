//! `api METHOD PATH`: any call of the API with the CLI's credentials, output and exit codes,
//! for what has no command of its own (forms, beacons, …).

use reqwest::Method;
use serde_json::Value;

use crate::cli::client::{Credential, Query};
use crate::cli::error::{CliError, CliResult};
use crate::cli::output::Output;
use crate::cli::{Ctx, data};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// HTTP method: GET, POST, PATCH, PUT or DELETE
    method: String,
    /// Path under /api/v1, with an optional query string; {org} and {project} are replaced by
    /// the configured organisation and project
    path: String,
    /// JSON body, or @FILE to read it from a file
    #[arg(long, value_name = "JSON")]
    data: Option<String>,
    /// Authenticate with the master key (admin routes)
    #[arg(long)]
    master: bool,
}

pub fn run(args: Args, ctx: &Ctx) -> CliResult<Output> {
    let method = match args.method.to_ascii_uppercase().as_str() {
        "GET" => Method::GET,
        "POST" => Method::POST,
        "PATCH" => Method::PATCH,
        "PUT" => Method::PUT,
        "DELETE" => Method::DELETE,
        other => return Err(CliError::usage(format!("unknown method {other}"))),
    };
    let body = args.data.map(|text| parse_body(&text)).transpose()?;
    let (path, query_string) = match args.path.split_once('?') {
        Some((path, query)) => (path.to_string(), Some(query.to_string())),
        None => (args.path.clone(), None),
    };
    let mut segments = Vec::new();
    for segment in path.split('/').filter(|s| !s.is_empty()) {
        segments.push(match segment {
            "{org}" => ctx.org()?,
            "{project}" => ctx.project()?,
            other => other.to_string(),
        });
    }
    let segments: Vec<&str> = segments.iter().map(String::as_str).collect();
    let api = ctx.api()?;
    let mut url = api.url(&segments)?;
    url.set_query(query_string.as_deref());
    let credential = if args.master {
        Credential::Master(ctx.master_key()?)
    } else {
        Credential::Key(ctx.key()?)
    };
    let answer = api.call(method, url, credential, &Query::new(), body.as_ref())?;
    Ok(shape(answer))
}

fn parse_body(text: &str) -> CliResult<Value> {
    let text = match text.strip_prefix('@') {
        Some(path) => std::fs::read_to_string(path)
            .map_err(|e| CliError::usage(format!("cannot read {path}: {e}")))?,
        None => text.to_string(),
    };
    serde_json::from_str(&text).map_err(|e| CliError::usage(format!("--data is not JSON: {e}")))
}

/// A paginated answer stays whole; otherwise `data` is shown as a list or an object.
fn shape(answer: Value) -> Output {
    if answer.get("has_more").is_some() {
        return Output::page(answer, &[]);
    }
    let value = data(answer);
    if value.is_array() {
        Output::list(value, &[])
    } else {
        Output::object(value)
    }
}

//! `kb …`: its endpoints (OpenAPI document) in the configured project. (`kb crawl` is out of scope:
//! RogerIQ documents no crawl endpoint, docs/api/README.md.)

use std::io::Read;

use clap::{Args, Subcommand};

use crate::cli::error::{CliError, CliResult};
use crate::cli::output::Output;
use crate::cli::{Body, Ctx, Paging, Query, Sorting, data, query};

const COLUMNS: &[&str] = &[
    "id",
    "title",
    "status",
    "category",
    "is_public",
    "updated_at",
];
const HIT_COLUMNS: &[&str] = &["id", "title", "score", "category", "status"];
const STATUSES: [&str; 3] = ["draft", "published", "archived"];

#[derive(Debug, Subcommand)]
pub enum Command {
    /// List articles
    #[command(after_help = examples![
        "rogeriq kb list --limit 10",
        "rogeriq kb list --status published --category billing"
    ])]
    List {
        /// Only this status
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
        /// Only this category
        #[arg(long)]
        category: Option<String>,
        /// Text in the title or content
        #[arg(long)]
        search: Option<String>,
        #[command(flatten)]
        sorting: Sorting,
        #[command(flatten)]
        paging: Paging,
    },
    /// Show one article
    #[command(after_help = examples!["rogeriq kb get kba_xxxxxxxxxxxx"])]
    Get {
        /// Article id (kba_…)
        article_id: String,
    },
    /// Write an article (a draft unless --status says otherwise)
    #[command(after_help = examples![
        "rogeriq kb create --title \"Refund policy\" --content-file refunds.md --status published",
        "echo 'Refunds take 30 days.' | rogeriq kb create --title Refunds --content-file -"
    ])]
    Create {
        /// Title
        #[arg(long)]
        title: String,
        #[command(flatten)]
        content: Content,
        /// draft, published or archived [default: draft]
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
        /// Category label
        #[arg(long)]
        category: Option<String>,
        /// Shown on the public docs site [default: true]
        #[arg(long)]
        public: Option<bool>,
    },
    /// Change an article
    #[command(after_help = examples!["rogeriq kb update kba_xxx --title \"Refunds\" --content-file refunds.md"])]
    Update {
        /// Article id (kba_…)
        article_id: String,
        /// Title
        #[arg(long)]
        title: Option<String>,
        #[command(flatten)]
        content: Content,
        /// draft, published or archived
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
        /// Category label
        #[arg(long)]
        category: Option<String>,
        /// Shown on the public docs site
        #[arg(long)]
        public: Option<bool>,
    },
    /// Publish an article (it becomes searchable)
    #[command(after_help = examples!["rogeriq kb publish kba_xxxxxxxxxxxx"])]
    Publish {
        /// Article id (kba_…)
        article_id: String,
    },
    /// Delete an article
    #[command(after_help = examples!["rogeriq kb delete kba_xxxxxxxxxxxx"])]
    Delete {
        /// Article id (kba_…)
        article_id: String,
    },
    /// Search published articles (best 10, score 0-1)
    #[command(after_help = examples!["rogeriq kb search \"refund policy\""])]
    Search {
        /// Words to look for
        query: String,
    },
}

/// The article's Markdown, given inline or read from a file (`-` is standard input).
#[derive(Debug, Args)]
#[group(multiple = false)]
pub struct Content {
    /// Markdown text
    #[arg(long)]
    content: Option<String>,
    /// File holding the Markdown; - reads standard input
    #[arg(long, value_name = "PATH")]
    content_file: Option<String>,
}

impl Content {
    fn read(self) -> CliResult<Option<String>> {
        match (self.content, self.content_file) {
            (Some(text), _) => Ok(Some(text)),
            (None, Some(path)) if path == "-" => {
                let mut text = String::new();
                std::io::stdin()
                    .read_to_string(&mut text)
                    .map_err(|e| CliError::usage(format!("cannot read standard input: {e}")))?;
                Ok(Some(text))
            }
            (None, Some(path)) => std::fs::read_to_string(&path)
                .map(Some)
                .map_err(|e| CliError::usage(format!("cannot read {path}: {e}"))),
            (None, None) => Ok(None),
        }
    }
}

pub fn run(command: Command, ctx: &Ctx) -> CliResult<Output> {
    let project = ctx.project()?;
    let project = project.as_str();
    let articles = ["projects", project, "kb", "articles"];
    let output = match command {
        Command::List {
            status,
            category,
            search,
            sorting,
            paging,
        } => {
            let mut q = query([("status", status), ("category", category), ("q", search)]);
            q.extend(query(sorting.pairs()));
            q.extend(query(paging.pairs()));
            Output::page(ctx.get(&articles, &q)?, COLUMNS)
        }
        Command::Get { article_id } => Output::object(data(ctx.get(
            &["projects", project, "kb", "articles", &article_id],
            &Query::new(),
        )?)),
        Command::Create {
            title,
            content,
            status,
            category,
            public,
        } => {
            let content = content.read()?.ok_or_else(|| {
                CliError::usage("give the article's text with --content or --content-file")
            })?;
            let body = Body::new()
                .set("title", Some(title))
                .set("content", Some(content))
                .set("status", status)
                .set("category", category)
                .set("is_public", public)
                .value();
            Output::object(data(ctx.post(&articles, Some(&body))?))
        }
        Command::Update {
            article_id,
            title,
            content,
            status,
            category,
            public,
        } => {
            let body = Body::new()
                .set("title", title)
                .set("content", content.read()?)
                .set("status", status)
                .set("category", category)
                .set("is_public", public)
                .changes("--title, --content, --content-file, --status, --category, --public")?;
            Output::object(data(
                ctx.patch(&["projects", project, "kb", "articles", &article_id], &body)?,
            ))
        }
        Command::Publish { article_id } => Output::object(data(ctx.post(
            &[
                "projects",
                project,
                "kb",
                "articles",
                &article_id,
                "publish",
            ],
            None,
        )?)),
        Command::Delete { article_id } => Output::object(data(ctx.delete(&[
            "projects",
            project,
            "kb",
            "articles",
            &article_id,
        ])?)),
        Command::Search { query: words } => Output::list(
            data(ctx.get(&["projects", project, "kb", "search"], &vec![("q", words)])?),
            HIT_COLUMNS,
        ),
    };
    Ok(output)
}

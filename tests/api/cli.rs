//! The `rogeriq` CLI (docs/cli.md), run as the built binary against a real server on port 0:
//! every command, the precedence of flags over environment over the config file, the config
//! file's mode, JSON, table and id output, and each exit code. A small stub server stands in
//! for a rate-limited server and for a RogerIQ server without `auth/whoami`.

use std::cell::RefCell;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tempfile::TempDir;

use crate::fixtures::*;
use crate::helpers::*;

/// One finished run of the CLI.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    #[track_caller]
    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:#?}"))
    }

    /// The error, the last line on stderr (after `--verbose`'s lines).
    #[track_caller]
    fn error_json(&self) -> Value {
        serde_json::from_str(self.stderr.trim().lines().last().unwrap_or_default())
            .unwrap_or_else(|e| panic!("stderr is not JSON ({e}): {self:#?}"))
    }

    #[track_caller]
    fn assert_code(&self, code: i32) -> &Run {
        assert_eq!(self.code, code, "{self:#?}");
        self
    }
}

/// The CLI with its own HOME (so its own config file) and only the environment given here.
struct Cli {
    home: TempDir,
    env: RefCell<Vec<(String, String)>>,
}

impl Cli {
    /// Pointed at `base` through `RIQ_API_BASE`.
    fn new(base: &str) -> Cli {
        let cli = Cli {
            home: temp_dir(),
            env: RefCell::new(Vec::new()),
        };
        cli.set("RIQ_API_BASE", base);
        cli
    }

    fn set(&self, name: &str, value: &str) {
        let mut env = self.env.borrow_mut();
        env.retain(|(n, _)| n != name);
        env.push((name.to_string(), value.to_string()));
    }

    fn unset(&self, name: &str) {
        self.env.borrow_mut().retain(|(n, _)| n != name);
    }

    fn config_path(&self) -> PathBuf {
        self.home.path().join(".rogeriq").join("config.json")
    }

    fn run(&self, args: &[&str]) -> Run {
        self.run_with(args, &[], None)
    }

    /// Runs with extra environment variables and optional standard input.
    fn run_with(&self, args: &[&str], env: &[(&str, &str)], stdin: Option<&str>) -> Run {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_rogeriq"));
        cmd.args(args)
            .env_clear()
            .env("HOME", self.home.path())
            .envs(self.env.borrow().iter().map(|(n, v)| (n, v)))
            .envs(env.iter().copied())
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn rogeriq");
        if let Some(text) = stdin {
            child
                .stdin
                .take()
                .unwrap()
                .write_all(text.as_bytes())
                .unwrap();
        }
        let out = child.wait_with_output().expect("rogeriq ran");
        Run {
            code: out.status.code().expect("exit code"),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Runs, asserts exit 0, returns stdout as JSON.
    #[track_caller]
    fn ok(&self, args: &[&str]) -> Value {
        self.run(args).assert_code(0).json()
    }
}

fn id(v: &Value) -> String {
    v["id"]
        .as_str()
        .unwrap_or_else(|| panic!("no id in {v}"))
        .to_string()
}

fn list_ids(v: &Value) -> Vec<String> {
    let items = v.get("data").unwrap_or(v);
    items
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {v}"))
        .iter()
        .map(id)
        .collect()
}

/// The command paths of the CLI, read from its own `--help` (the "Commands:" sections),
/// with whether each is a group or a leaf; every help text is returned too.
/// A command's path of subcommand names, e.g. `["admin", "orgs", "create"]`.
type CommandPath = Vec<String>;

fn command_tree(cli: &Cli) -> (Vec<CommandPath>, Vec<(CommandPath, String)>) {
    fn names(help: &str) -> Vec<String> {
        help.lines()
            .skip_while(|l| l.trim() != "Commands:")
            .skip(1)
            .take_while(|l| !l.trim().is_empty())
            .filter_map(|l| l.split_whitespace().next())
            .filter(|n| *n != "help")
            .map(str::to_string)
            .collect()
    }
    let mut leaves = Vec::new();
    let mut helps = Vec::new();
    let mut todo: Vec<CommandPath> = vec![vec![]];
    while let Some(path) = todo.pop() {
        let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
        args.push("--help");
        let help = cli.run(&args).assert_code(0).stdout.clone();
        let children = names(&help);
        if children.is_empty() {
            leaves.push(path.clone());
        }
        for child in children {
            let mut next = path.clone();
            next.push(child);
            todo.push(next);
        }
        helps.push((path, help));
    }
    leaves.sort();
    (leaves, helps)
}

/// The server of the command walks below. The webhooks' receiver is a closed local port.
static SERVER: Shared = Shared::new(|| {
    TestApp::spawn_with(|s| {
        s.webhooks.allow_http = true;
        s.webhooks.allow_private_targets = true;
    })
});

/// A walk through one command group on the shared server, in an organisation of its own: the
/// CLI holds that organisation's admin key and the master key.
struct Walk {
    app: Arc<TestApp>,
    cli: Cli,
    org: String,
    key: String,
}

impl Walk {
    fn new(org_name: &str) -> Walk {
        let app = SERVER.get();
        let (org, key) = app.new_org(org_name, &["admin"]);
        let cli = Cli::new(&app.base);
        cli.set("RIQ_API_KEY", &key);
        cli.set("RIQ_ORG_ID", &org);
        cli.set("ROGERIQ_MASTER_KEY", MASTER_KEY);
        Walk { app, cli, org, key }
    }

    /// As `new`, with a project of its own as the CLI's project; returns its id too.
    fn in_project(org_name: &str) -> (Walk, String) {
        let walk = Walk::new(org_name);
        let project = walk.app.project_in(&walk.org, &walk.key, "Walk");
        walk.cli.set("RIQ_PROJECT_ID", &project);
        (walk, project)
    }
}

#[test]
fn auth_login_whoami_logout() {
    let walk = Walk::new("Auth walk");
    let cli = &walk.cli;
    cli.unset("RIQ_API_KEY");
    cli.unset("RIQ_ORG_ID");
    // login learns the key's organisation from the server.
    let login = cli.ok(&["auth", "login", "--api-key", &walk.key]);
    assert_eq!(login["org_id"], walk.org.as_str());
    assert_eq!(login["api_key_prefix"], &walk.key[..12]);
    let whoami = cli.ok(&["auth", "whoami"]);
    assert_eq!(whoami["org_id_source"], "config file");
    assert!(!whoami.to_string().contains(&walk.key[16..]));
    assert_eq!(cli.ok(&["auth", "logout"])["deleted"], true);
    assert!(!cli.config_path().exists());
}

#[test]
fn projects() {
    let walk = Walk::new("Projects walk");
    let cli = &walk.cli;
    // The seed's three commands, verbatim.
    assert_eq!(cli.ok(&["projects", "list"]), json!([]));
    let project = cli.ok(&[
        "projects",
        "create",
        "Acme Support",
        "--domain",
        "support.acme.com",
    ]);
    let p = id(&project);
    assert_eq!(
        (&project["slug"], &project["domain"]),
        (&json!("acme-support"), &json!("support.acme.com"))
    );
    let updated = cli.ok(&[
        "projects",
        "update",
        &p,
        "--agent-mode",
        "autopilot",
        "--ai-model",
        "anthropic/claude-sonnet-4",
    ]);
    assert_eq!(updated["agent_mode"], "autopilot");
    assert_eq!(updated["ai_model"], "anthropic/claude-sonnet-4");
    assert_eq!(
        cli.ok(&["projects", "get", &p])["ai_model"],
        updated["ai_model"]
    );
    assert_eq!(list_ids(&cli.ok(&["projects", "list"])), [p.as_str()]);
    // delete, after a refusal without --yes
    cli.run(&["projects", "delete", &p]).assert_code(1);
    assert_eq!(
        cli.ok(&["projects", "delete", &p, "--yes"])["deleted"],
        true
    );
    assert_eq!(cli.ok(&["projects", "list"]), json!([]));
}

#[test]
fn contacts() {
    let (walk, _) = Walk::in_project("Contacts walk");
    let cli = &walk.cli;
    let contact = cli.ok(&[
        "contacts",
        "upsert",
        "--email",
        "jane@example.com",
        "--name",
        "Jane",
        "--external-id",
        "u-42",
        "--metadata",
        r#"{"plan": "pro"}"#,
    ]);
    let ct = id(&contact);
    let found = cli.ok(&["contacts", "list", "--email", "JANE@example.com"]);
    assert_eq!(list_ids(&found), [ct.as_str()]);
    assert_eq!(found["has_more"], false);
    assert_eq!(cli.ok(&["contacts", "get", &ct])["metadata"]["plan"], "pro");
    let changed = cli.ok(&["contacts", "update", &ct, "--company", "Acme"]);
    assert_eq!(changed["company"], "Acme");
}

#[test]
fn conversations_and_messages() {
    let (walk, p) = Walk::in_project("Conversations walk");
    let cli = &walk.cli;
    let ct = id_of(&created(
        &walk.app,
        &walk.key,
        &pp(&p, "/contacts"),
        json!({"email": "jane@example.com"}),
    ));
    let conversation = cli.ok(&[
        "conversations",
        "create",
        "--subject",
        "Refund for order 1001",
        "--priority",
        "high",
        "--tags",
        "billing",
        "--contact-id",
        &ct,
    ]);
    let con = id(&conversation);
    assert_eq!(conversation["tags"], json!(["billing"]));
    let open = cli.ok(&["conversations", "list", "--status", "open", "--limit", "5"]);
    assert_eq!(list_ids(&open), [con.as_str()]);
    let quiet = cli.run(&["conversations", "list", "--status", "open", "--quiet"]);
    assert_eq!(quiet.assert_code(0).stdout.trim(), con);
    assert_eq!(
        cli.ok(&["conversations", "get", &con])["subject"],
        "Refund for order 1001"
    );
    let retagged = cli.ok(&["conversations", "update", &con, "--tags", "billing,vip"]);
    assert_eq!(retagged["tags"], json!(["billing", "vip"]));
    assert_eq!(
        cli.ok(&["conversations", "assign", &con, "user_42"])["assigned_to"],
        "user_42"
    );
    assert_eq!(
        cli.ok(&["conversations", "snooze", &con])["status"],
        "snoozed"
    );
    assert_eq!(
        cli.ok(&["conversations", "resolve", &con])["status"],
        "resolved"
    );
    let reply = cli.ok(&["conversations", "reply", &con, "Your refund is on its way."]);
    assert_eq!(
        (&reply["is_internal"], &reply["sender_type"]),
        (&json!(false), &json!("agent"))
    );
    let note = cli.ok(&["conversations", "reply", &con, "VIP", "--internal"]);
    assert_eq!(note["is_internal"], true);
    let messages = cli.ok(&["conversations", "messages", &con]);
    assert_eq!(list_ids(&messages), [id(&reply), id(&note)]);
}

#[test]
fn knowledge_base() {
    // A file, standard input, publish, search, delete.
    let (walk, _) = Walk::in_project("Knowledge base walk");
    let cli = &walk.cli;
    let file = cli.home.path().join("refunds.md");
    std::fs::write(&file, "Refunds are paid within 30 days.").unwrap();
    let article = cli.ok(&[
        "kb",
        "create",
        "--title",
        "Refund policy",
        "--content-file",
        file.to_str().unwrap(),
    ]);
    let kba = id(&article);
    assert_eq!(article["status"], "draft");
    let from_stdin = cli
        .run_with(
            &["kb", "create", "--title", "Scratch", "--content-file", "-"],
            &[],
            Some("Temporary text."),
        )
        .assert_code(0)
        .json();
    assert_eq!(from_stdin["content"], "Temporary text.");
    assert_eq!(
        list_ids(&cli.ok(&[
            "kb",
            "list",
            "--limit",
            "10",
            "--sort",
            "created_at",
            "--order",
            "asc"
        ])),
        [kba.clone(), id(&from_stdin)]
    );
    assert_eq!(cli.ok(&["kb", "get", &kba])["title"], "Refund policy");
    assert_eq!(
        cli.ok(&["kb", "update", &kba, "--category", "billing"])["category"],
        "billing"
    );
    assert_eq!(cli.ok(&["kb", "publish", &kba])["status"], "published");
    let hits = cli.ok(&["kb", "search", "refund"]);
    assert_eq!(list_ids(&hits), [kba.as_str()]);
    assert_eq!(cli.ok(&["kb", "delete", &id(&from_stdin)])["deleted"], true);
}

#[test]
fn agent() {
    // The offline responder, in a project on autopilot.
    let (walk, p) = Walk::in_project("Agent walk");
    let cli = &walk.cli;
    ok_patch(
        &walk.app,
        &walk.key,
        &format!("/api/v1/orgs/{}/projects/{p}", walk.org),
        json!({"agent_mode": "autopilot"}),
    );
    let con = id_of(&created(
        &walk.app,
        &walk.key,
        &convs(&p),
        json!({"subject": "Refund for order 1001"}),
    ));
    assert_eq!(cli.ok(&["agent", "status"])["mode"], "autopilot");
    assert_eq!(cli.ok(&["agent", "config"])["agent_mode"], "autopilot");
    let configured = cli.ok(&[
        "agent",
        "config",
        "--mode",
        "copilot",
        "--confidence-threshold",
        "0.2",
    ]);
    assert_eq!(configured["agent_mode"], "copilot");
    assert_eq!(configured["settings"]["confidence_threshold"], 0.2);
    let responded = cli.ok(&["agent", "respond", &con]);
    assert_eq!(responded["effective_mode"], "copilot");
    let quiet = cli.run(&["agent", "respond", &con, "--mode", "copilot", "-q"]);
    assert!(
        quiet.assert_code(0).stdout.trim().starts_with("msg_"),
        "{quiet:?}"
    );
    assert!(cli.ok(&["agent", "classify", &con])["sentiment"].is_string());
    assert!(cli.ok(&["agent", "suggest", &con])["suggested_response"].is_string());
}

#[test]
fn widget() {
    let (walk, p) = Walk::in_project("Widget walk");
    let cli = &walk.cli;
    assert_eq!(cli.ok(&["widget", "config"])["project_id"], p.as_str());
    let widget = cli.ok(&[
        "widget",
        "set",
        "--theme",
        "dark",
        "--primary-color",
        "#0A84FF",
        "--welcome-message",
        "Hi there!",
    ]);
    assert_eq!(
        (
            &widget["theme"],
            &widget["color"],
            &widget["welcome_message"]
        ),
        (&json!("dark"), &json!("#0A84FF"), &json!("Hi there!"))
    );
}

#[test]
fn integrations() {
    // One installed with the master key.
    let (walk, p) = Walk::in_project("Integrations walk");
    let cli = &walk.cli;
    let catalog = cli.ok(&["integrations", "catalog", "--category", "engineering"]);
    assert_eq!(catalog.as_array().unwrap().len(), 2, "{catalog}");
    let quiet = cli.run(&["integrations", "catalog", "--status", "available", "-q"]);
    assert!(quiet.assert_code(0).stdout.lines().any(|l| l == "slack"));
    assert_eq!(
        cli.ok(&["integrations", "get", "github"])["provider"],
        "github"
    );
    assert!(
        cli.ok(&["integrations", "install-url", "github"])["install_url"]
            .as_str()
            .unwrap()
            .contains(&p)
    );
    let installed = cli.ok(&[
        "admin",
        "integrations",
        "install",
        "slack",
        "--display-name",
        "Support Slack",
    ]);
    assert_eq!(installed["status"], "active");
    assert_eq!(
        list_ids(&cli.ok(&["integrations", "list"])),
        [id(&installed)]
    );
    let paused = cli.ok(&[
        "integrations",
        "update",
        "slack",
        "--status",
        "paused",
        "--sidebar",
        "false",
    ]);
    assert_eq!(
        (&paused["status"], &paused["sidebar_enabled"]),
        (&json!("paused"), &json!(false))
    );
    assert_eq!(
        cli.ok(&["integrations", "disconnect", "slack"])["status"],
        "disconnected"
    );
}

#[test]
fn webhooks() {
    // The receiver is a closed local port.
    let (walk, _) = Walk::in_project("Webhooks walk");
    let cli = &walk.cli;
    let webhook = cli.ok(&[
        "webhooks",
        "create",
        "--url",
        "http://127.0.0.1:9/hook",
        "--events",
        "conversation.*,message.created",
    ]);
    let wh = id(&webhook);
    assert!(webhook["secret"].as_str().unwrap().starts_with("whsec_"));
    assert_eq!(
        webhook["events"],
        json!(["conversation.*", "message.created"])
    );
    assert_eq!(list_ids(&cli.ok(&["webhooks", "list"])), [wh.as_str()]);
    assert!(cli.ok(&["webhooks", "get", &wh]).get("secret").is_none());
    assert_eq!(
        cli.ok(&["webhooks", "update", &wh, "--status", "disabled"])["status"],
        "disabled"
    );
    let tested = cli.ok(&["webhooks", "test", &wh]);
    assert_eq!(
        (&tested["delivered"], &tested["error"]),
        (&json!(false), &json!("connect")),
        "{tested}"
    );
    assert!(tested["message"].is_string(), "{tested}");
    assert!(cli.ok(&["webhooks", "deliveries", &wh]).is_array());
    let rotated = cli.ok(&["webhooks", "rotate-secret", &wh]);
    assert_ne!(rotated["secret"], webhook["secret"]);
    assert_eq!(cli.ok(&["webhooks", "delete", &wh])["deleted"], true);
}

#[test]
fn keys() {
    let walk = Walk::new("Keys walk");
    let cli = &walk.cli;
    let key = cli.ok(&[
        "keys",
        "create",
        "kb bot",
        "--scopes",
        "kb:write,conversations:read",
    ]);
    assert!(key["key"].as_str().unwrap().starts_with("riq_"));
    assert_eq!(key["scopes"], json!(["kb:write", "conversations:read"]));
    assert!(list_ids(&cli.ok(&["keys", "list"])).contains(&id(&key)));
    assert_eq!(cli.ok(&["keys", "revoke", &id(&key)])["revoked"], true);
}

#[test]
fn audit() {
    // The log with filters, after a project's creation and two changes.
    let (walk, p) = Walk::in_project("Audit walk");
    let cli = &walk.cli;
    for mode in ["autopilot", "assist"] {
        cli.ok(&["projects", "update", &p, "--agent-mode", mode]);
    }
    let created = cli.ok(&["audit", "list", "--action", "project.created"]);
    assert_eq!(list_ids(&created).len(), 1, "{created}");
    assert_eq!(created["data"][0]["target_id"], p.as_str());
    let recent = cli.ok(&["audit", "list", "--project-id", &p, "--limit", "2"]);
    assert_eq!(recent["data"].as_array().unwrap().len(), 2);
    assert_eq!(recent["has_more"], true);
}

#[test]
fn admin() {
    // A new organisation and its first key, which then works on its own.
    let walk = Walk::new("Admin walk");
    let cli = &walk.cli;
    let org = cli.ok(&["admin", "orgs", "create", "Acme"]);
    let org_id = id(&org);
    assert!(list_ids(&cli.ok(&["admin", "orgs", "list"])).contains(&org_id));
    let first = cli.ok(&[
        "admin", "keys", "create", "ops", "--org", &org_id, "--scopes", "admin",
    ]);
    let first_key = first["key"].as_str().unwrap().to_string();
    assert_eq!(first["org_id"], org_id.as_str());
    // With no org configured, the key's own organisation is used.
    let other = Cli::new(&walk.app.base);
    other.set("RIQ_API_KEY", &first_key);
    other.ok(&["projects", "create", "Acme Docs"]);
    let listed = other.ok(&["projects", "list"]);
    assert_eq!(listed[0]["org_id"], org_id.as_str());
}

#[test]
fn api() {
    // Forms have no command of their own.
    let (walk, p) = Walk::in_project("API walk");
    let cli = &walk.cli;
    let con = id_of(&created(&walk.app, &walk.key, &convs(&p), json!({})));
    let form = cli.ok(&[
        "api",
        "POST",
        "/projects/{project}/forms",
        "--data",
        r#"{"name": "Contact us"}"#,
    ]);
    assert_eq!(
        list_ids(&cli.ok(&["api", "GET", "/projects/{project}/forms"])),
        [id(&form)]
    );
    let page = cli.ok(&["api", "get", "/projects/{project}/conversations?limit=1"]);
    assert_eq!(list_ids(&page), [con.as_str()]);
}

#[test]
fn completions() {
    // For each shell clap_complete knows.
    let cli = Cli::new("http://127.0.0.1:1");
    for shell in ["bash", "zsh", "fish", "elvish", "powershell"] {
        let run = cli.run(&["completions", shell]);
        assert!(
            run.assert_code(0).stdout.contains("rogeriq") && run.stdout.contains("webhooks"),
            "{shell}"
        );
    }
}

/// The string literals of Rust source, in order, outside `//` comments: the argument lists
/// that the tests above pass to the CLI.
fn string_literals(source: &str) -> Vec<String> {
    let mut literals = Vec::new();
    for line in source.lines() {
        let code = line.split("//").next().unwrap_or("");
        let mut parts = code.split('"');
        parts.next();
        while let (Some(literal), Some(_)) = (parts.next(), parts.next()) {
            literals.push(literal.to_string());
        }
    }
    literals
}

/// Every command the CLI lists is run by a test of this file, and every command's help shows
/// an example.
#[test]
fn every_command_is_walked_and_shows_an_example() {
    let (leaves, helps) = command_tree(&Cli::new("http://127.0.0.1:1"));
    let literals = string_literals(include_str!("cli.rs"));
    let missed: Vec<&CommandPath> = leaves
        .iter()
        .filter(|leaf| {
            // The server, the tools that open the store and the MCP server have their own
            // tests (process.rs, backup.rs, mcp.rs).
            let elsewhere =
                ["serve", "backup", "restore", "export", "mcp"].contains(&leaf[0].as_str());
            !elsewhere
                && !literals
                    .windows(leaf.len())
                    .any(|run| run == leaf.as_slice())
        })
        .collect();
    assert!(missed.is_empty(), "commands never run: {missed:?}");
    assert!(leaves.len() >= 50, "{leaves:?}");
    for (path, help) in helps {
        assert!(
            help.contains("Examples:\n  rogeriq"),
            "no example in {path:?}: {help}"
        );
    }
}

/// The client options are the client commands' own: before the command or after any word of
/// it, and nowhere else.
#[test]
fn client_options_come_before_or_after_client_commands_only() {
    let walk = Walk::new("Options walk");
    let cli = &walk.cli;
    let project = walk.app.project_in(&walk.org, &walk.key, "Placed");
    cli.unset("RIQ_API_KEY");
    for args in [
        vec!["-q", "--api-key", &walk.key, "projects", "list"],
        vec!["projects", "-q", "--api-key", &walk.key, "list"],
        vec!["projects", "list", "-q", "--api-key", &walk.key],
        vec![
            "--api-key",
            "riq_unknown",
            "projects",
            "list",
            "-q",
            "--api-key",
            &walk.key,
        ],
    ] {
        let run = cli.run(&args);
        assert_eq!(
            run.assert_code(0).stdout,
            format!("{project}\n"),
            "{args:?}"
        );
    }
    // `--json` and `--output` still contradict each other on either side of the command.
    cli.run(&["--json", "projects", "list", "--output", "table"])
        .assert_code(1);

    for tool in [
        &["serve", "--help"][..],
        &["backup", "--help"],
        &["restore", "--help"],
        &["export", "--help"],
        &["config", "show", "--help"],
    ] {
        let help = cli.run(tool).assert_code(0).stdout.clone();
        assert!(
            !help.contains("Client options") && !help.contains("--api-key"),
            "{tool:?}: {help}"
        );
    }
    let top = cli.run(&["--help"]);
    assert!(
        top.assert_code(0)
            .stdout
            .starts_with("Self-hosted RogerIQ API server"),
        "{top:?}"
    );
    let help = cli.run(&["projects", "list", "--help"]);
    for option in ["--api-key", "--timeout", "--verbose"] {
        assert!(help.stdout.contains(option), "{option}: {help:?}");
    }
    let typo = cli.run(&["serve", "--port", "9000"]);
    assert!(!typo.assert_code(1).stderr.contains("--org"), "{typo:?}");
    let misplaced = cli.run(&["--json", "serve"]);
    assert!(
        misplaced
            .assert_code(1)
            .stderr
            .contains("--json is a client option"),
        "{misplaced:?}"
    );
}

/// `--verbose` describes each request on stderr, without the key; `--timeout` bounds the wait.
#[test]
fn verbose_requests_and_a_timeout() {
    let walk = Walk::new("Verbose walk");
    let run = walk
        .cli
        .run(&["audit", "list", "--limit", "5", "--verbose"]);
    let prefix = format!(
        "GET {}/api/v1/orgs/{}/audit-log?limit=5 -> 200 req_",
        walk.app.base, walk.org
    );
    assert!(
        run.assert_code(0).stderr.starts_with(&prefix),
        "{run:?}\nwanted {prefix}"
    );
    assert!(!run.stderr.contains(&walk.key[4..]), "{run:?}");
    assert_eq!(run.json()["data"][0]["action"], "api_key.created");

    // A server that takes the connection and never answers.
    let silent = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", silent.local_addr().unwrap());
    let cli = Cli::new(&base);
    let run = cli.run(&[
        "projects",
        "list",
        "--api-key",
        "riq_x",
        "--org",
        "org_x",
        "--timeout",
        "1",
        "-v",
    ]);
    let err = run.assert_code(2).error_json();
    assert_eq!(err["code"], "NETWORK_ERROR");
    assert!(
        err["error"].as_str().unwrap().contains("within 1 s"),
        "{err}"
    );
    assert!(run.stderr.contains("-> no answer after"), "{run:?}");
    cli.run(&["projects", "list", "--timeout", "0"])
        .assert_code(1);
}

/// `config show`: each server setting as `serve` would use it, where it came from, and no
/// secret.
#[test]
fn config_show_names_each_source_and_hides_secrets() {
    let cli = Cli::new("http://127.0.0.1:1");
    let file = cli.home.path().join("rogeriq.toml");
    std::fs::write(
        &file,
        "workers = 3\n[agent]\nprovider_url = \"https://me:sesame@models.example.com/v1\"\n",
    )
    .unwrap();
    let file = file.to_str().unwrap();
    let master = "do-not-print-this-master-key";
    let env = [
        ("ROGERIQ_MASTER_KEY", master),
        ("ROGERIQ_LOG_LEVEL", "debug"),
    ];
    let args = [
        "config",
        "show",
        "--config",
        file,
        "--listen",
        "127.0.0.1:9",
    ];
    let run = cli.run_with(&[&args[..], &["--json"]].concat(), &env, None);
    let shown = run.assert_code(0).json();
    let of = |key: &str| {
        shown
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["key"] == key)
            .unwrap_or_else(|| panic!("no {key} in {shown}"))
            .clone()
    };
    assert_eq!(
        of("listen"),
        json!({"key": "listen", "value": "127.0.0.1:9", "source": "flag", "from": "--listen"})
    );
    assert_eq!(
        of("workers"),
        json!({"key": "workers", "value": 3, "source": "file", "from": file})
    );
    assert_eq!(
        of("log_level"),
        json!({"key": "log_level", "value": "debug", "source": "env", "from": "ROGERIQ_LOG_LEVEL"})
    );
    assert_eq!(of("master_key")["value"], "(hidden)");
    assert_eq!(of("body_timeout_secs")["source"], "default");
    assert!(
        !run.stdout.contains(master) && !run.stdout.contains("sesame"),
        "{run:?}"
    );
    let table = cli.run_with(&args, &env, None);
    let text = &table.assert_code(0).stdout;
    for cell in [
        "flag --listen",
        "env ROGERIQ_LOG_LEVEL",
        &format!("file {file}"),
        "\"(hidden)\"",
    ] {
        assert!(text.contains(cell), "{cell}: {text}");
    }
    assert!(!text.contains(master), "{text}");
    // Settings that `serve` would refuse are refused the same way.
    let bad = cli.run_with(&["config", "show"], &[("ROGERIQ_WORKERS", "many")], None);
    assert!(
        bad.assert_code(2).stderr.contains("ROGERIQ_WORKERS"),
        "{bad:?}"
    );
}

/// Writes the config file as `auth login` would, with chosen values.
fn write_config(cli: &Cli, config: Value) {
    let path = cli.config_path();
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(&path, config.to_string()).unwrap();
}

#[test]
fn flags_beat_environment_beat_the_config_file() {
    let app = TestApp::spawn();
    // Three organisations, each with one project and an admin key.
    let orgs: Vec<(String, String, String)> = ["File", "Env", "Flag"]
        .iter()
        .map(|name| {
            let (org, key) = app.new_org(name, &["admin"]);
            let project = app.project_in(&org, &key, &format!("{name} project"));
            (org, key, project)
        })
        .collect();
    let [
        (file_org, file_key, file_prj),
        (env_org, env_key, env_prj),
        (flag_org, flag_key, flag_prj),
    ] = orgs.as_slice()
    else {
        unreachable!()
    };
    let cli = Cli::new("http://127.0.0.1:1");
    cli.unset("RIQ_API_BASE");
    write_config(
        &cli,
        json!({"apiKey": file_key, "apiBase": app.base, "orgId": file_org, "projectId": file_prj}),
    );
    let projects = |run: Run| list_ids(&run.assert_code(0).json());

    // The key (and with it the organisation): file, then environment, then flag.
    assert_eq!(
        projects(cli.run(&["projects", "list"])),
        [file_prj.as_str()]
    );
    let env = [
        ("RIQ_API_KEY", env_key.as_str()),
        ("RIQ_ORG_ID", env_org.as_str()),
    ];
    assert_eq!(
        projects(cli.run_with(&["projects", "list"], &env, None)),
        [env_prj.as_str()]
    );
    assert_eq!(
        projects(cli.run_with(
            &["projects", "list", "--api-key", flag_key, "--org", flag_org],
            &env,
            None
        )),
        [flag_prj.as_str()]
    );
    // The file's organisation goes with the file's key: another key uses its own.
    let run = cli.run(&["projects", "list", "--api-key", flag_key]);
    assert_eq!(projects(run), [flag_prj.as_str()]);
    let run = cli.run_with(&["projects", "list"], &[("RIQ_API_KEY", env_key)], None);
    assert_eq!(projects(run), [env_prj.as_str()]);
    // The organisation alone: a wrong one in a higher layer wins, and the server refuses it.
    let run = cli.run_with(&["projects", "list"], &[("RIQ_ORG_ID", env_org)], None);
    assert_eq!(
        run.assert_code(3).error_json()["code"],
        "API_KEY_ORG_MISMATCH"
    );
    let run = cli.run_with(
        &["projects", "list", "--org", file_org],
        &[("RIQ_ORG_ID", env_org)],
        None,
    );
    assert_eq!(projects(run), [file_prj.as_str()]);

    // The project: file, then environment, then flag (the widget config names its project).
    let widget_project = |run: Run| run.assert_code(0).json()["project_id"].clone();
    assert_eq!(
        widget_project(cli.run(&["widget", "config"])),
        file_prj.as_str()
    );
    let env = [
        ("RIQ_API_KEY", env_key.as_str()),
        ("RIQ_PROJECT_ID", env_prj.as_str()),
    ];
    assert_eq!(
        widget_project(cli.run_with(&["widget", "config"], &env, None)),
        env_prj.as_str()
    );
    let args = [
        "widget",
        "config",
        "--api-key",
        flag_key,
        "--project",
        flag_prj,
    ];
    assert_eq!(
        widget_project(cli.run_with(&args, &env, None)),
        flag_prj.as_str()
    );

    // The server: file, then environment, then flag (a closed port fails as a network error).
    let dead = "http://127.0.0.1:1";
    let run = cli.run_with(&["projects", "list"], &[("RIQ_API_BASE", dead)], None);
    assert_eq!(run.assert_code(2).error_json()["code"], "NETWORK_ERROR");
    let run = cli.run_with(
        &["projects", "list", "--api-base", &app.base],
        &[("RIQ_API_BASE", dead)],
        None,
    );
    run.assert_code(0);

    // whoami says where each value came from, and shows only the key's prefix.
    let who = cli
        .run_with(
            &["auth", "whoami", "--project", flag_prj],
            &[("RIQ_ORG_ID", env_org)],
            None,
        )
        .assert_code(0)
        .json();
    assert_eq!(
        who,
        json!({
            "api_key_prefix": &file_key[..12],
            "api_key_source": "config file",
            "api_base": app.base,
            "api_base_source": "config file",
            "org_id": env_org,
            "org_id_source": "env",
            "project_id": flag_prj,
            "project_id_source": "flag",
            "config_file": cli.config_path().display().to_string(),
        })
    );
    // Empty values count as absent.
    let run = cli.run_with(&["projects", "list"], &[("RIQ_API_KEY", "")], None);
    assert_eq!(projects(run), [file_prj.as_str()]);
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn login_writes_a_private_config_file_and_logout_deletes_it() {
    let app = TestApp::spawn();
    let cli = Cli::new(&app.base);

    // A key the server refuses is not stored.
    let (kept, last) = app.admin_key.split_at(app.admin_key.len() - 1);
    let bad = format!("{kept}{}", if last == "x" { "y" } else { "x" });
    let run = cli.run(&["auth", "login", "--api-key", &bad]);
    assert_eq!(run.assert_code(3).error_json()["code"], "UNAUTHORIZED");
    assert!(!cli.config_path().exists());
    // login needs a key to store.
    cli.run(&["auth", "login"]).assert_code(1);
    cli.run(&["auth", "whoami"]).assert_code(3);

    let project = app.project("Stored");
    cli.run_with(
        &["auth", "login", "--project", &project],
        &[("RIQ_API_KEY", app.admin_key.as_str())],
        None,
    )
    .assert_code(0);
    let path = cli.config_path();
    assert_eq!(mode(&path), 0o600);
    assert_eq!(mode(path.parent().unwrap()), 0o700);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(
        stored,
        json!({"apiKey": app.admin_key, "apiBase": app.base, "orgId": app.org_id, "projectId": project})
    );

    // A second login replaces the file and keeps it private, even if it was opened up.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let other = app.key(&["read"]);
    cli.run(&["auth", "login", "--api-key", &other])
        .assert_code(0);
    assert_eq!(mode(&path), 0o600);
    let stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    assert_eq!(stored["apiKey"], other.as_str());
    assert!(stored.get("projectId").is_none(), "{stored}");

    // A given org must be the key's own.
    let (foreign, _) = app.new_org("Foreign", &["read"]);
    cli.run(&["auth", "login", "--api-key", &other, "--org", &foreign])
        .assert_code(1);

    cli.run(&["auth", "logout"]).assert_code(0);
    assert!(!path.exists());
    cli.run(&["projects", "list"]).assert_code(3);

    // A broken file is a usage error that names it, and logout clears it.
    std::fs::write(&path, "{not json").unwrap();
    let run = cli.run(&["projects", "list"]);
    assert!(run.assert_code(1).stderr.contains("config.json"), "{run:?}");
    cli.run(&["auth", "logout"]).assert_code(0);
    assert!(!path.exists());
}

#[test]
fn json_table_and_quiet_output_and_error_output() {
    let app = TestApp::spawn();
    let cli = Cli::new(&app.base);
    cli.set("RIQ_API_KEY", &app.admin_key);
    let a = app.project("Alpha");
    let b = app.project("Beta");

    // stdout is a pipe here: JSON by default, and with --json or --output json.
    for args in [
        vec!["projects", "list"],
        vec!["projects", "list", "--json"],
        vec!["--output", "json", "projects", "list"],
    ] {
        assert_eq!(list_ids(&cli.ok(&args)), [a.clone(), b.clone()], "{args:?}");
    }
    // A table when asked for (as on a terminal): a header and one row per project.
    let table = cli.run(&["projects", "list", "--output", "table"]);
    let text = &table.assert_code(0).stdout;
    assert!(
        text.contains("│ id") && text.contains("agent_mode"),
        "{text}"
    );
    assert!(text.contains("Alpha") && text.contains(&b), "{text}");
    assert_eq!(text.lines().count(), 6, "{text}");
    assert!(serde_json::from_str::<Value>(text).is_err());
    let one = cli.run(&["projects", "get", &a, "--output", "table"]);
    assert!(one.assert_code(0).stdout.contains("│ slug"), "{one:?}");
    // Ids only.
    let quiet = cli.run(&["-q", "projects", "list"]);
    assert_eq!(quiet.assert_code(0).stdout, format!("{a}\n{b}\n"));
    // --json and --output table contradict each other.
    cli.run(&["projects", "list", "--json", "--output", "table"])
        .assert_code(1);

    // Errors go to stderr: JSON in JSON mode, a line for people in table mode.
    let missing = cli.run(&["projects", "get", "prj_000000000000"]);
    assert!(missing.assert_code(2).stdout.is_empty());
    let err = missing.error_json();
    assert_eq!(
        (&err["code"], &err["status_code"]),
        (&json!("PROJECT_NOT_FOUND"), &json!(404))
    );
    assert!(is_request_id(err["request_id"].as_str().unwrap()), "{err}");
    assert!(err["error"].is_string());
    let invalid = cli.run(&["projects", "create", " "]);
    assert_eq!(
        invalid.assert_code(2).error_json()["issues"][0]["path"],
        "name"
    );
    let text = cli.run(&["projects", "get", "prj_000000000000", "--output", "table"]);
    assert!(
        text.assert_code(2)
            .stderr
            .starts_with("error: Project not found (PROJECT_NOT_FOUND, HTTP 404, request req_"),
        "{text:?}"
    );
    let usage = cli.run(&["conversations", "list"]);
    assert_eq!(usage.assert_code(1).error_json()["code"], "USAGE_ERROR");
}

#[test]
fn exit_codes() {
    let app = TestApp::spawn();
    let cli = Cli::new(&app.base);
    let reader = app.key(&["read"]);
    cli.set("RIQ_API_KEY", &reader);
    let project = app.project("Codes");

    // 0: success.
    cli.run(&["projects", "list"]).assert_code(0);
    // 1: usage errors, from clap and from the command.
    cli.run(&["projects", "frobnicate"]).assert_code(1);
    cli.run(&["projects", "update", &project, "--agent-mode", "turbo"])
        .assert_code(1);
    cli.run(&["projects", "update", &project]).assert_code(1);
    cli.run(&["kb", "create", "--title", "T", "--project", &project])
        .assert_code(1);
    cli.run(&["serve", "--json"]).assert_code(1);
    cli.run(&["--api-base", "ftp://x", "projects", "list"])
        .assert_code(1);
    cli.run(&["kb", "get", "..", "--project", &project])
        .assert_code(1);
    // Help and version are not errors.
    cli.run(&["--help"]).assert_code(0);
    cli.run(&["--version"]).assert_code(0);
    // 2: API errors and no answer at all.
    cli.run(&["kb", "get", "kba_000000000000", "--project", &project])
        .assert_code(2);
    cli.run(&["--api-base", "http://127.0.0.1:1", "projects", "list"])
        .assert_code(2);
    // 3: no key, an unknown key, a key without the scope, another org.
    cli.run_with(&["projects", "list"], &[("RIQ_API_KEY", "")], None)
        .assert_code(3);
    cli.run(&["projects", "list", "--api-key", "riq_nope"])
        .assert_code(3);
    let run = cli.run(&["projects", "create", "Nope"]);
    assert_eq!(
        run.assert_code(3).error_json()["code"],
        "INSUFFICIENT_SCOPE"
    );
    cli.run(&["admin", "orgs", "list"]).assert_code(3);
    cli.run(&["admin", "orgs", "list", "--master-key", &reader])
        .assert_code(3);
    // 4 is in `a_429_is_retried_once`, against a rate-limited stub.
}

/// A stand-in HTTP server that answers each request with the next canned answer (then 500),
/// and counts requests.
struct Stub {
    base: String,
    served: Arc<AtomicUsize>,
    paths: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Stub {
    fn new(answers: Vec<(u16, Value)>) -> Stub {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let served = Arc::new(AtomicUsize::new(0));
        let paths = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let (served, paths, stop) = (served.clone(), paths.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut answers = answers.into_iter();
                while !stop.load(Ordering::Relaxed) {
                    let Ok((mut stream, _)) = listener.accept() else {
                        std::thread::sleep(Duration::from_millis(5));
                        continue;
                    };
                    stream.set_nonblocking(false).unwrap();
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).unwrap_or(0) == 1 {
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).into_owned();
                    let path = head.split_whitespace().nth(1).unwrap_or("").to_string();
                    paths.lock().unwrap().push(path);
                    let (status, body) = answers
                        .next()
                        .unwrap_or((500, json!({"error": "no more", "code": "INTERNAL_ERROR"})));
                    let body = body.to_string();
                    let reply = format!(
                        "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n\
                         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    // Counted before the reply: the client may read it and exit at once.
                    served.fetch_add(1, Ordering::Relaxed);
                    let _ = stream.write_all(reply.as_bytes());
                }
            })
        };
        Stub {
            base,
            served,
            paths,
            stop,
            thread: Some(thread),
        }
    }

    fn served(&self) -> usize {
        self.served.load(Ordering::Relaxed)
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn limited(retry_after: u64) -> (u16, Value) {
    (
        429,
        json!({"error": "Too many requests", "code": "RATE_LIMITED", "request_id": "req_stub", "retry_after": retry_after}),
    )
}

#[test]
fn a_429_is_retried_once() {
    let ok = (200, json!({"data": [{"id": "prj_stub00000000"}]}));
    let args = [
        "projects",
        "list",
        "--api-key",
        "riq_x",
        "--org",
        "org_stub00000000",
    ];

    // A short retry_after: waited for, then the second answer counts.
    let stub = Stub::new(vec![limited(1), ok.clone()]);
    let cli = Cli::new(&stub.base);
    let started = Instant::now();
    let run = cli.run(&args);
    assert_eq!(list_ids(&run.assert_code(0).json()), ["prj_stub00000000"]);
    assert!(started.elapsed() >= Duration::from_secs(1), "it waited");
    assert_eq!(stub.served(), 2);

    // Still limited after the one retry: exit 4, after exactly two requests.
    let stub = Stub::new(vec![limited(0), limited(0), ok.clone()]);
    let run = Cli::new(&stub.base).run(&args);
    let err = run.assert_code(4).error_json();
    assert_eq!(
        (&err["code"], &err["status_code"], &err["request_id"]),
        (&json!("RATE_LIMITED"), &json!(429), &json!("req_stub"))
    );
    assert_eq!(stub.served(), 2);

    // Too long to wait (over 30 s): exit 4 at once, no retry.
    let stub = Stub::new(vec![limited(31), ok]);
    Cli::new(&stub.base).run(&args).assert_code(4);
    assert_eq!(stub.served(), 1);
}

/// A RogerIQ server has no `auth/whoami`: with no org configured the CLI says how to give one,
/// and `auth login` stores the key without an org.
#[test]
fn a_server_without_whoami_needs_a_configured_org() {
    let not_found = (
        404,
        json!({"error": "Not found", "code": "RESOURCE_NOT_FOUND", "request_id": "req_stub"}),
    );
    let stub = Stub::new(vec![not_found.clone(), not_found]);
    let cli = Cli::new(&stub.base);
    let run = cli.run(&["projects", "list", "--api-key", "riq_x"]);
    let err = run.assert_code(1).error_json();
    assert!(err["error"].as_str().unwrap().contains("--org"), "{err}");
    let login = cli
        .run(&["auth", "login", "--api-key", "riq_x"])
        .assert_code(0)
        .json();
    assert_eq!(login["org_id"], Value::Null);
    assert_eq!(
        *stub.paths.lock().unwrap(),
        ["/api/v1/auth/whoami", "/api/v1/auth/whoami"]
    );
}

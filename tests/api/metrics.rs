//! `GET /metrics` (Prometheus text) and audit retention, over HTTP against a real server. The
//! exposition is parsed line by line here, so a malformed line fails the test; counters are
//! read before and after requests and must move by exactly what the requests did.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rogeriq::config::{Flags, Settings};
use rogeriq::org_owned::audit::{self, Actor, Event};
use rogeriq::timestamp::Timestamp;

use crate::fixtures::*;
use crate::helpers::*;
use crate::receiver::{Answer, Receiver};

/// Long enough for a delivery or a sweep on a busy test machine; tests poll for what they expect.
const PATIENCE: Duration = Duration::from_secs(20);

/// One sample line: name, labels, value.
#[derive(Debug, Clone, PartialEq)]
struct Sample {
    name: String,
    labels: BTreeMap<String, String>,
    value: f64,
}

/// Parses Prometheus' text format: every line is a `# HELP` or `# TYPE` comment or a sample
/// `name{label="value",…} value`. Panics, naming the line, on anything else.
fn parse(text: &str) -> Vec<Sample> {
    let mut samples = Vec::new();
    for line in text.lines() {
        if let Some(comment) = line.strip_prefix("# ") {
            let mut words = comment.splitn(3, ' ');
            let (kind, name) = (words.next(), words.next());
            assert!(
                matches!(kind, Some("HELP" | "TYPE")) && name.is_some_and(is_metric_name),
                "bad comment line: {line:?}"
            );
            if kind == Some("TYPE") {
                let metric_type = words.next().unwrap_or("");
                assert!(
                    ["counter", "gauge", "histogram", "summary", "untyped"].contains(&metric_type),
                    "bad type: {line:?}"
                );
            }
            continue;
        }
        samples.push(parse_sample(line).unwrap_or_else(|| panic!("bad sample line: {line:?}")));
    }
    samples
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

fn parse_sample(line: &str) -> Option<Sample> {
    let name_end = line.find(['{', ' '])?;
    let name = &line[..name_end];
    if !is_metric_name(name) {
        return None;
    }
    let mut labels = BTreeMap::new();
    let mut rest = &line[name_end..];
    if let Some(inner) = rest.strip_prefix('{') {
        let mut text = inner;
        loop {
            if let Some(after) = text.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = text.find('=')?;
            let label = &text[..eq];
            if !is_metric_name(label) || label.contains(':') {
                return None;
            }
            // A quoted value; `\\`, `\"` and `\n` are its escapes.
            let mut chars = text[eq + 1..].strip_prefix('"')?.char_indices();
            let mut value = String::new();
            let end = loop {
                match chars.next()? {
                    (i, '"') => break i,
                    (_, '\\') => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c @ ('\\' | '"') => value.push(c),
                        _ => return None,
                    },
                    (_, c) => value.push(c),
                }
            };
            labels.insert(label.to_string(), value);
            text = &text[eq + 1..][1 + end + 1..];
            text = text.strip_prefix(',').unwrap_or(text);
        }
    }
    let value = rest.strip_prefix(' ')?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        number => number.parse().ok()?,
    };
    Some(Sample {
        name: name.to_string(),
        labels,
        value,
    })
}

/// The scraped samples of a server's metrics endpoint.
struct Scrape(Vec<Sample>);

impl Scrape {
    /// The sample `name` whose labels include `labels`; 0 when there is none.
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .find(|s| {
                s.name == name
                    && labels
                        .iter()
                        .all(|(k, v)| s.labels.get(*k).map(String::as_str) == Some(*v))
            })
            .map_or(0.0, |s| s.value)
    }

    fn has(&self, name: &str) -> bool {
        self.0.iter().any(|s| s.name == name)
    }
}

/// GETs `path` as a scraper would: status, content type, body.
fn get_text(app: &TestApp, path: &str) -> (u16, String, String) {
    let response = reqwest::blocking::get(format!("{}{path}", app.base)).expect("scraped");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (status, content_type, response.text().expect("a text body"))
}

#[track_caller]
fn scrape_at(app: &TestApp, path: &str) -> Scrape {
    let (status, content_type, text) = get_text(app, path);
    assert_eq!(status, 200, "{text}");
    assert!(content_type.starts_with("text/plain"), "{content_type}");
    Scrape(parse(&text))
}

#[track_caller]
fn scrape(app: &TestApp) -> Scrape {
    scrape_at(app, "/metrics")
}

/// Polls the metrics until `done` holds (at most `PATIENCE`).
#[track_caller]
fn scrape_until(app: &TestApp, done: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = Instant::now() + PATIENCE;
    loop {
        let scraped = scrape(app);
        if done(&scraped) {
            return scraped;
        }
        assert!(Instant::now() < deadline, "metrics never got there");
        std::thread::sleep(Duration::from_millis(20));
    }
}

const REQUESTS: &str = "rogeriq_http_requests_total";
const LATENCY_COUNT: &str = "rogeriq_http_request_duration_seconds_count";
const PROJECT_ROUTE: &str = "/api/v1/orgs/{org_id}/projects/{project_id}";

#[test]
fn the_text_parser_takes_samples_and_refuses_what_is_not_one() {
    let samples = parse(
        "# HELP a_total A counter.\n# TYPE a_total counter\na_total{x=\"1\",y=\"q\\\"t\"} 3\nb 0.5\n",
    );
    assert_eq!(samples.len(), 2);
    assert_eq!(samples[0].labels["y"], "q\"t");
    assert_eq!(samples[1].value, 0.5);
    for bad in ["a b c", "a{x=1} 2", "a{x=\"1\"}", "9a 1", "a{x=\"1\" 2"] {
        assert!(parse_sample(bad).is_none(), "{bad}");
    }
}

#[test]
fn metrics_parse_and_their_counters_move_with_requests() {
    let app = TestApp::spawn_with(|s| {
        s.webhooks.allow_http = true;
        s.webhooks.allow_private_targets = true;
        s.webhooks.retry_delays = vec![0.05];
        s.webhooks.timeout_secs = 2;
    });
    let p = app.project("Support");
    let before = scrape(&app);
    let get_2xx = [
        ("method", "GET"),
        ("route", PROJECT_ROUTE),
        ("status", "2xx"),
    ];
    let get_4xx = [
        ("method", "GET"),
        ("route", PROJECT_ROUTE),
        ("status", "4xx"),
    ];
    let unmatched = [("route", "unmatched"), ("status", "4xx")];

    let project = format!("/api/v1/orgs/{}/projects/{p}", app.org_id);
    for _ in 0..2 {
        assert_eq!(app.get(&project, &app.admin_key).status, 200);
    }
    let missing = format!("/api/v1/orgs/{}/projects/prj_000000000000", app.org_id);
    assert_eq!(app.get(&missing, &app.admin_key).status, 404);
    assert_eq!(app.get("/no/such/path/9", &app.admin_key).status, 404);
    let after = scrape(&app);

    let moved =
        |labels: &[(&str, &str)]| after.value(REQUESTS, labels) - before.value(REQUESTS, labels);
    assert_eq!(moved(&get_2xx), 2.0);
    assert_eq!(moved(&get_4xx), 1.0);
    assert_eq!(moved(&unmatched), 1.0);
    assert_eq!(
        after.value(LATENCY_COUNT, &get_2xx) - before.value(LATENCY_COUNT, &get_2xx),
        2.0,
        "one latency observation per request"
    );
    assert!(
        after
            .0
            .iter()
            .any(|s| s.name == "rogeriq_http_request_duration_seconds_bucket"
                && s.labels.get("le").map(String::as_str) == Some("+Inf")),
        "histogram buckets"
    );
    // Routes are patterns: no raw path, id or unknown path becomes a label.
    for sample in &after.0 {
        for value in sample.labels.values() {
            assert!(
                !value.contains(&p) && !value.contains("/no/such") && !value.contains(&app.org_id),
                "a raw path in {sample:?}"
            );
        }
    }

    // Writes: one durable commit each, counted by kind in the store's records.
    let commits = "rogeriq_writer_batch_jobs_count";
    let records = "rogeriq_store_records";
    let receiver = Receiver::start("unset");
    receiver.script(&[Answer::Status(500)]);
    let hook = created(
        &app,
        &app.admin_key,
        &pp(&p, "/webhooks"),
        json!({"url": receiver.url, "events": ["conversation.created"]}),
    );
    receiver.set_secret(hook["secret"].as_str().unwrap());
    let mid = scrape(&app);
    created(&app, &app.admin_key, &convs(&p), json!({}));
    created(&app, &app.admin_key, &convs(&p), json!({"subject": "two"}));
    let written = scrape(&app);
    assert!(written.value(commits, &[]) >= mid.value(commits, &[]) + 2.0);
    assert_eq!(
        written.value("rogeriq_writer_commit_duration_seconds_count", &[]),
        written.value(commits, &[])
    );
    assert!(written.has("rogeriq_writer_queue_depth"));
    // A healthy store (faults.rs has the failing one).
    assert_eq!(written.value("rogeriq_store_writable", &[]), 1.0);
    assert_eq!(
        written.value("rogeriq_store_failed_commits_total", &[]),
        0.0
    );
    assert_eq!(
        written.value("rogeriq_store_reopen_attempts_total", &[]),
        0.0
    );
    // redb's file; a PostgreSQL store has no file of its own.
    assert_eq!(
        written.value("rogeriq_store_file_bytes", &[]) > 0.0,
        !on_postgres()
    );
    // The pool of a PostgreSQL store (8 connections in tests); none on redb.
    let pool = if on_postgres() { 8.0 } else { 0.0 };
    assert_eq!(
        written.value("rogeriq_store_pool_max_connections", &[]),
        pool
    );
    assert!(written.has("rogeriq_store_serialization_retries_total"));
    let conversations = [("kind", "conversations")];
    assert_eq!(
        written.value(records, &conversations) - mid.value(records, &conversations),
        2.0
    );
    assert_eq!(written.value(records, &[("kind", "projects")]), 1.0);
    assert_eq!(written.value(records, &[("kind", "webhooks")]), 1.0);
    assert_eq!(written.value(records, &[("kind", "orgs")]), 1.0);
    let audited = [("kind", "audit_entries")];
    assert_eq!(
        written.value(records, &audited) - mid.value(records, &audited),
        2.0
    );

    // Webhook attempts by outcome: the first answer is a 500, retried, then delivered.
    receiver.wait_for(3, PATIENCE);
    let attempts = "rogeriq_webhook_attempts_total";
    let delivered = scrape_until(&app, |s| {
        s.value(attempts, &[("outcome", "delivered")]) == 2.0
    });
    assert_eq!(
        delivered.value(attempts, &[("outcome", "retryable_failure")]),
        1.0
    );
    assert_eq!(
        delivered.value(attempts, &[("outcome", "permanent_failure")]),
        0.0
    );
}

#[test]
fn rate_limit_refusals_are_counted_by_tier() {
    let app = TestApp::spawn_with(|s| {
        s.rate_limit.tiers.starter = 2;
        s.rate_limit.tiers.anonymous = 1;
    });
    let projects = format!("/api/v1/orgs/{}/projects", app.org_id);
    let statuses: Vec<u16> = (0..3)
        .map(|_| app.get(&projects, &app.admin_key).status)
        .collect();
    assert_eq!(statuses, [200, 200, 429]);
    let anonymous: Vec<u16> = (0..2).map(|_| app.get(&projects, "").status).collect();
    assert_eq!(anonymous, [401, 429]);
    let scraped = scrape(&app);
    let refused = "rogeriq_rate_limited_total";
    assert_eq!(scraped.value(refused, &[("tier", "starter")]), 1.0);
    assert_eq!(scraped.value(refused, &[("tier", "anonymous")]), 1.0);
    let too_many = [
        ("route", "/api/v1/orgs/{org_id}/projects"),
        ("status", "4xx"),
    ];
    assert_eq!(scraped.value(REQUESTS, &too_many), 3.0, "401 + two 429s");
}

#[test]
fn a_setting_moves_the_endpoint_or_turns_it_off() {
    let moved = TestApp::spawn_with(|s| s.metrics.path = "/ops/prometheus".into());
    let scraped = scrape_at(&moved, "/ops/prometheus");
    assert!(scraped.has("rogeriq_store_file_bytes"));
    let (status, _, body) = get_text(&moved, "/metrics");
    assert_eq!(status, 404, "{body}");
    let again = scrape_at(&moved, "/ops/prometheus");
    assert_eq!(
        again.value(REQUESTS, &[("route", "/ops/prometheus"), ("status", "2xx")]),
        1.0,
        "the first scrape is counted under its route"
    );

    let off = TestApp::spawn_with(|s| s.metrics.enabled = false);
    let (status, _, body) = get_text(&off, "/metrics");
    assert_eq!(status, 404, "{body}");
    assert_eq!(
        serde_json::from_str::<Value>(&body).unwrap()["code"],
        "RESOURCE_NOT_FOUND"
    );
}

/// Writes an audit entry of `org_id` dated `days` days ago, beneath the API (no client can
/// date an entry): the audit module's own `record`, in a write transaction whose clock is set.
fn audit_entry_days_ago(app: &TestApp, days: i64, target: &'static str) {
    let org_id = org_id_of(&app.org_id);
    app.store
        .write_blocking(move |tx| {
            tx.now = Timestamp::from_unix(Timestamp::now().unix() - days * 86_400);
            let event = Event {
                org_id: &org_id,
                project_id: None,
                action: "org.updated",
                target_id: target,
                before: None,
                after: None,
                cascade: Vec::new(),
            };
            audit::record(tx, &Actor::master(None), event)
        })
        .unwrap();
}

fn audit_targets(app: &TestApp) -> Vec<String> {
    let path = format!("/api/v1/orgs/{}/audit-log?limit=100", app.org_id);
    let r = app.get(&path, &app.admin_key);
    assert_eq!(r.status, 200, "{}", r.body);
    r.data()
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["target_id"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_retention_sweep_deletes_the_entries_older_than_the_cut_in_batches() {
    let app = TestApp::spawn_with(|s| {
        s.audit.retention_days = 30;
        s.audit.sweep_interval_secs = 0.05;
        s.audit.sweep_batch = 2;
    });
    let young_before = audit_targets(&app);
    assert!(!young_before.is_empty(), "the first start's entries");
    for (days, target) in [
        (400, "old-1"),
        (31, "old-2"),
        (29, "young-1"),
        (45, "old-3"),
    ] {
        audit_entry_days_ago(&app, days, target);
    }
    app.project("Support");
    for (days, target) in [(90, "old-4"), (1, "young-2"), (31, "old-5")] {
        audit_entry_days_ago(&app, days, target);
    }
    let deadline = Instant::now() + PATIENCE;
    let left = loop {
        let left = audit_targets(&app);
        if !left.iter().any(|t| t.starts_with("old-")) {
            break left;
        }
        assert!(Instant::now() < deadline, "old entries left: {left:?}");
        std::thread::sleep(Duration::from_millis(20));
    };
    for young in ["young-1", "young-2"] {
        assert!(left.iter().any(|t| t == young), "{young} kept: {left:?}");
    }
    assert!(young_before.iter().all(|t| left.contains(t)), "{left:?}");
    assert_eq!(
        left.len(),
        young_before.len() + 3,
        "+ the project and two young entries"
    );
    // The sweep counts what it deleted when it ends.
    let scraped = scrape_until(&app, |s| s.value("rogeriq_audit_expired_total", &[]) >= 5.0);
    assert_eq!(scraped.value("rogeriq_audit_expired_total", &[]), 5.0);
    assert_eq!(
        scraped.value("rogeriq_store_records", &[("kind", "audit_entries")]),
        left.len() as f64
    );
}

#[test]
fn bad_metrics_and_audit_settings_are_refused_naming_the_key() {
    let load = |var: &str, value: &str| {
        let (var, value) = (var.to_string(), value.to_string());
        Settings::load(&Flags::default(), move |name| {
            (name == var).then(|| value.clone())
        })
    };
    for (var, value, named) in [
        ("ROGERIQ_METRICS_PATH", "/api/v1/metrics", "metrics.path"),
        ("ROGERIQ_METRICS_PATH", "/healthz", "metrics.path"),
        ("ROGERIQ_METRICS_PATH", "metrics", "metrics.path"),
        ("ROGERIQ_METRICS_PATH", "/a/{id}", "metrics.path"),
        ("ROGERIQ_AUDIT_SWEEP_BATCH", "0", "audit.sweep_batch"),
        (
            "ROGERIQ_AUDIT_SWEEP_INTERVAL_SECS",
            "0",
            "audit.sweep_interval_secs",
        ),
        (
            "ROGERIQ_AUDIT_RETENTION_DAYS",
            "-1",
            "ROGERIQ_AUDIT_RETENTION_DAYS",
        ),
    ] {
        let err = load(var, value).expect_err(value);
        assert!(err.contains(named), "{var}={value}: {err}");
    }
    let fine = load("ROGERIQ_METRICS_PATH", "/internal/metrics").unwrap();
    assert_eq!(fine.metrics.path, "/internal/metrics");
    assert_eq!(
        load("ROGERIQ_AUDIT_RETENTION_DAYS", "0")
            .unwrap()
            .audit
            .retention_days,
        0
    );
}

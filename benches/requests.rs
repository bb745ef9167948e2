//! Request throughput and latency over HTTP against the real server (release build, loopback),
//! loaded by wrk (`make bench` installs it when missing) at 1 and at 64 connections:
//! - a ceiling: an actix-web hello-JSON endpoint that this bench serves itself, loaded by the
//!   same wrk with the same connection count in the same run. It shows what the generator and
//!   the HTTP stack manage at best; every other row is given as a share of it;
//! - reads (GET one project with its key; a page of 20 conversations) on three servers over
//!   the same data: one with rate limiting off, two with it on (every request counted in its
//!   key's window, none refused). The second limited server shows how far two identical
//!   servers measure apart: the noise floor for "on / off";
//! - the server's floor: `GET /healthz` through the middleware chain (request id and CORS
//!   headers, log line, metrics) with no key, no store and, outside `/api/v1/`, no rate
//!   limiter: less than any API request costs;
//! - durable creates (POST a project, audited), rate limiting off, committed in groups;
//! - the rate limiter alone, in process: its cost per request without HTTP;
//! - then the store at scale (`scale/mod.rs`): the project cascade, the server's memory under
//!   load and its restart time, over stores of a million records and more (at smoke size, a
//!   few thousand);
//! - then the PostgreSQL backend (`postgres.rs`), beside PostgreSQL's own ceiling measured by
//!   pgbench in the same run. `cargo bench --bench requests -- http` (or `-- scale`, or
//!   `-- postgres`) runs one part.
//!
//! wrk runs out of process on the same machine, so it takes CPU from the server as it does
//! from the ceiling; the shares compare like with like. `cargo bench --bench requests` (or
//! `make bench`) runs each row for 5 s; without `--bench` (as `cargo test --all-targets` does)
//! each row runs 1 s as a smoke test. Without wrk the smoke test checks every workload with one
//! request and says that it skipped the load rows; `--bench` without wrk fails.

use std::io::Write as _;
use std::process::Command;
use std::time::Instant;

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpResponse, HttpServer, web};
use reqwest::blocking::Client;
use rogeriq::config::{Settings, StoreBackend, TierLimits};
use rogeriq::project_owned::webhooks::dispatch::Dispatcher;
use rogeriq::rate_limit::{Bucket, RateLimiter};
use rogeriq::server::{self, Options};
use rogeriq::store::Store;
use serde_json::{Value, json};
use tempfile::TempDir;

#[allow(dead_code)]
#[path = "../tests/api/pg_cluster.rs"]
mod pg_cluster;
mod postgres;
mod scale;

/// Conversations made on each server before the reads.
const SEEDED: usize = 100;

/// Connection counts of every row.
const CONNECTIONS: [usize; 2] = [1, 64];

/// A running server with its first-start key and one project.
struct Target {
    base: String,
    org_id: String,
    key: String,
    project_id: String,
    handle: ServerHandle,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
    store: Store,
    dispatcher: Dispatcher,
    _dir: TempDir,
}

/// The ceiling: a hello-JSON endpoint on actix-web with the same worker count as the server.
struct Ceiling {
    url: String,
    handle: ServerHandle,
    thread: std::thread::JoinHandle<std::io::Result<()>>,
}

/// One load: a URL with its key, and for creates the lua script that makes each body unique.
struct Load {
    url: String,
    key: Option<String>,
    script: Option<String>,
}

struct Measured {
    per_sec: f64,
    p50_ms: f64,
    p99_ms: f64,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    // `cargo bench --bench requests -- http` (or `-- scale`) runs one part of the table.
    let only = |part: &str| {
        let parts = ["http", "scale", "postgres"];
        let chosen: Vec<String> = std::env::args()
            .filter(|a| parts.contains(&a.as_str()))
            .collect();
        chosen.is_empty() || chosen.iter().any(|a| a == part)
    };
    let seconds = if full { 5 } else { 1 };
    let wrk_found = Command::new("wrk").arg("--version").output().is_ok();
    assert!(
        wrk_found || !full,
        "wrk is missing: `make bench` installs it (apt-get install wrk)"
    );
    if only("http") {
        http_rows(full, seconds, wrk_found);
    }
    if only("scale") {
        scale_rows(full, seconds, wrk_found);
    }
    if only("postgres") {
        postgres::rows(full, seconds, wrk_found);
    }
}

/// The store at scale (benches/scale): cascade, memory and restart, printed as a second part of
/// the same table.
fn scale_rows(full: bool, seconds: u64, wrk_found: bool) {
    let sizes = if full {
        scale::Sizes {
            records: 100_000,
            other_projects: 10,
            load_seconds: seconds,
        }
    } else {
        scale::Sizes {
            records: 500,
            other_projects: 1,
            load_seconds: seconds,
        }
    };
    println!(
        "store at scale: projects of {} records (contacts, conversations, messages, published \
         articles) written through their create operations, beside {} other projects",
        sizes.records, sizes.other_projects
    );
    println!("{:<72} {:>9}  goal", "measure", "value");
    let rows = scale::rows(&sizes, wrk_found).unwrap_or_else(|err| panic!("scale rows: {err:?}"));
    for row in rows {
        println!("{:<72} {:>9}  {}", row.name, row.value, row.goal);
    }
}

/// Ceiling, reads and durable creates over HTTP at 1 and 64 connections, and the limiter.
fn http_rows(full: bool, seconds: u64, wrk_found: bool) {
    let ceiling = start_ceiling();
    let servers = [
        ("limit off", start(false)),
        ("limit on", start(true)),
        ("limit on, 2nd server", start(true)),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let mut runs = 0;
    let mut loads: Vec<(String, Load)> = vec![(
        "hello JSON (ceiling)".into(),
        Load {
            url: ceiling.url.clone(),
            key: None,
            script: None,
        },
    )];
    // Less than every API request pays before its own work: the request id and CORS headers,
    // the log line and the metrics, but no key, no store and no rate limiter.
    loads.push((
        "GET /healthz, limit off (the server's floor)".into(),
        Load {
            url: format!("{}/healthz", servers[0].1.base),
            key: None,
            script: None,
        },
    ));
    let first_get = loads.len();
    for (name, server) in &servers {
        loads.push((format!("GET one project, {name}"), get_project(server)));
    }
    let first_list = loads.len();
    for (name, server) in &servers {
        loads.push((format!("GET 20 conversations, {name}"), list(server)));
    }

    if !wrk_found {
        println!("requests over HTTP: wrk not found, load rows skipped (one request each instead)");
        for (_, load) in &loads {
            check_once(load);
        }
        runs += 1;
        check_once(&create_project(&servers[0].1, &dir, runs));
    } else {
        println!(
            "requests over HTTP, wrk, {seconds} s a row ({})",
            if full { "full size" } else { "smoke size" }
        );
        println!(
            "{:<44} {:>5} {:>9} {:>8} {:>8} {:>8}",
            "workload", "conns", "req/s", "ceiling", "p50 ms", "p99 ms"
        );
        for connections in CONNECTIONS {
            let measured: Vec<Measured> = loads
                .iter()
                .map(|(_, load)| wrk(load, connections, seconds))
                .collect();
            let top = measured[0].per_sec;
            for ((name, _), m) in loads.iter().zip(&measured) {
                row(name, m, top, connections);
            }
            for (first, what) in [
                (first_get, "GET one project"),
                (first_list, "GET 20 conversations"),
            ] {
                println!(
                    "  {what}: on / off {:.1}% (2nd server / 1st, the noise floor: {:.1}%)",
                    measured[first + 1].per_sec / measured[first].per_sec * 100.0,
                    measured[first + 2].per_sec / measured[first + 1].per_sec * 100.0
                );
            }
            runs += 1;
            let created = wrk(
                &create_project(&servers[0].1, &dir, runs),
                connections,
                seconds,
            );
            row(
                "POST a project (durable, audited)",
                &created,
                top,
                connections,
            );
            if connections == 1 {
                let (p50, p99) = disk_floor(dir.path(), if full { 2000 } else { 200 });
                println!(
                    "  the disk alone, as a lone create commits ({DISK_FLOOR_PAGES} page writes, \
                     one fdatasync): p50 {p50:.2} ms, p99 {p99:.2} ms"
                );
            }
        }
    }
    limiter_alone(if full { 2_000_000 } else { 100_000 });

    for (_, server) in servers {
        stop(server);
    }
    actix_web::rt::System::new().block_on(ceiling.handle.stop(true));
    let _ = ceiling.thread.join();
    if let Some(peak) = peak_rss_kib() {
        println!(
            "peak resident memory of the bench process (servers, no generator): {} MiB",
            peak / 1024
        );
    }
}

fn start_ceiling() -> Ceiling {
    let workers = Settings::default().workers;
    let mut http = HttpServer::new(|| {
        App::new().route(
            "/hello",
            web::get().to(|| async { HttpResponse::Ok().json(json!({"message": "hello"})) }),
        )
    });
    if workers > 0 {
        http = http.workers(workers as usize);
    }
    let http = http.bind("127.0.0.1:0").expect("ceiling bound");
    let addr = http.addrs()[0];
    let server = http.disable_signals().run();
    let handle = server.handle();
    let thread = std::thread::spawn(move || actix_web::rt::System::new().block_on(server));
    Ceiling {
        url: format!("http://{addr}/hello"),
        handle,
        thread,
    }
}

/// Starts a server with limiting `enabled`; its tiers are far above what the bench sends, so
/// every request is counted and none refused. Makes a project with `SEEDED` conversations.
fn start(enabled: bool) -> Target {
    start_on(enabled, None)
}

/// `start` on the PostgreSQL database at `postgres_url`, if given.
fn start_on(enabled: bool, postgres_url: Option<&str>) -> Target {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    if let Some(url) = postgres_url {
        settings.store.backend = StoreBackend::Postgres;
        settings.store.postgres_url = url.to_string();
    }
    let huge = 1_000_000_000;
    settings.rate_limit.enabled = enabled;
    settings.rate_limit.tiers = TierLimits {
        starter: huge,
        pro: huge,
        scale: huge,
        enterprise: huge,
        anonymous: huge,
    };
    let launched = server::launch(
        settings,
        Options {
            handle_signals: false,
        },
    )
    .expect("server started");
    let first = launched.bootstrap.expect("a fresh store");
    let server = launched.server;
    let thread = std::thread::spawn(move || actix_web::rt::System::new().block_on(server));
    let base = format!("http://{}", launched.addr);
    let client = Client::new();
    let project = client
        .post(format!("{base}/api/v1/orgs/{}/projects", first.org_id))
        .header("X-API-Key", &first.key)
        .json(&json!({"name": "Bench"}))
        .send()
        .and_then(|r| r.json::<Value>())
        .expect("project created");
    let target = Target {
        base,
        org_id: first.org_id.to_string(),
        key: first.key,
        project_id: project["data"]["id"]
            .as_str()
            .expect("project id")
            .to_string(),
        handle: launched.handle,
        thread,
        store: launched.store,
        dispatcher: launched.dispatcher,
        _dir: dir,
    };
    for i in 0..SEEDED {
        let response = client
            .post(format!(
                "{}/api/v1/projects/{}/conversations",
                target.base, target.project_id
            ))
            .header("X-API-Key", &target.key)
            .json(&json!({"subject": format!("Bench {i}")}))
            .send()
            .expect("conversation created");
        assert!(response.status().is_success(), "{}", response.status());
    }
    target
}

fn stop(target: Target) {
    actix_web::rt::System::new().block_on(target.handle.stop(true));
    let _ = target.thread.join();
    server::close(target.dispatcher, target.store);
}

fn get_project(target: &Target) -> Load {
    Load {
        url: format!(
            "{}/api/v1/orgs/{}/projects/{}",
            target.base, target.org_id, target.project_id
        ),
        key: Some(target.key.clone()),
        script: None,
    }
}

fn list(target: &Target) -> Load {
    Load {
        url: format!(
            "{}/api/v1/projects/{}/conversations?limit=20",
            target.base, target.project_id
        ),
        key: Some(target.key.clone()),
        script: None,
    }
}

/// Creates projects with names unique per run, wrk thread and request, so that no slug
/// collides and every create is a full insert. The script is written to `dir`.
fn create_project(target: &Target, dir: &TempDir, run: usize) -> Load {
    let path = dir.path().join(format!("create-{run}.lua"));
    let script = format!(
        r#"local counter = 0
local next_thread = 0
function setup(thread)
  next_thread = next_thread + 1
  thread:set("thread_id", next_thread)
end
function request()
  counter = counter + 1
  local body = '{{"name":"Bench {run} ' .. thread_id .. ' ' .. counter .. '"}}'
  return wrk.format("POST", nil, {{["Content-Type"] = "application/json", ["X-API-Key"] = "{key}"}}, body)
end
"#,
        key = target.key
    );
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(script.as_bytes()))
        .expect("lua script written");
    Load {
        url: format!("{}/api/v1/orgs/{}/projects", target.base, target.org_id),
        key: None,
        script: Some(path.to_string_lossy().into_owned()),
    }
}

/// One request of the load with reqwest, for the smoke pass without wrk.
fn check_once(load: &Load) {
    let client = Client::new();
    let response = match &load.script {
        // The script's key is the first server's key; the body is a fresh name.
        Some(path) => {
            let script = std::fs::read_to_string(path).expect("lua script");
            let key = script
                .split("[\"X-API-Key\"] = \"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .expect("key in the script");
            client
                .post(&load.url)
                .header("X-API-Key", key)
                .json(&json!({"name": "Bench smoke"}))
                .send()
        }
        None => {
            let mut builder = client.get(&load.url);
            if let Some(key) = &load.key {
                builder = builder.header("X-API-Key", key);
            }
            builder.send()
        }
    }
    .expect("request");
    assert!(response.status().is_success(), "{}", response.status());
}

/// Runs wrk against `load`; panics when any response was not a success, so that a broken
/// workload never passes for a fast one.
fn wrk(load: &Load, connections: usize, seconds: u64) -> Measured {
    let mut command = Command::new("wrk");
    command
        .arg(format!("-t{}", connections.min(2)))
        .arg(format!("-c{connections}"))
        .arg(format!("-d{seconds}s"))
        .arg("--latency");
    if let Some(key) = &load.key {
        command.arg("-H").arg(format!("X-API-Key: {key}"));
    }
    if let Some(script) = &load.script {
        command.arg("-s").arg(script);
    }
    let output = command.arg(&load.url).output().expect("wrk ran");
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "wrk failed: {text}");
    assert!(
        !text.contains("Non-2xx") && !text.contains("Socket errors"),
        "failed requests under load: {text}"
    );
    let field = |label: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|line| line.strip_prefix(label))
            .map(str::trim)
            .unwrap_or_else(|| panic!("no {label:?} in wrk's output: {text}"))
            .to_string()
    };
    Measured {
        per_sec: field("Requests/sec:").parse().expect("a rate"),
        p50_ms: millis(&field("50%")),
        p99_ms: millis(&field("99%")),
    }
}

/// The pages a lone project create writes at its commit (strace of the writer: its four
/// tables' leaves, the table tree, the allocator's state and the header).
const DISK_FLOOR_PAGES: u64 = 9;

/// The latency floor of a durable create on this file system, in milliseconds (p50, p99):
/// `commits` rounds of `DISK_FLOOR_PAGES` 4 KiB page writes and one `fdatasync`, in a file of
/// `dir`, which is on the servers' file system.
fn disk_floor(dir: &std::path::Path, commits: u64) -> (f64, f64) {
    use std::os::unix::fs::FileExt;
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(dir.join("disk-floor"))
        .expect("disk floor file");
    let page = [0x5a_u8; 4096];
    let mut millis: Vec<f64> = (0..commits)
        .map(|round| {
            let started = Instant::now();
            for i in 0..DISK_FLOOR_PAGES {
                let offset = (round * DISK_FLOOR_PAGES + i) % 256 * 4096;
                file.write_all_at(&page, offset).expect("page written");
            }
            file.sync_data().expect("fdatasync");
            started.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    millis.sort_by(f64::total_cmp);
    let at = |share: f64| millis[((millis.len() - 1) as f64 * share) as usize];
    (at(0.5), at(0.99))
}

/// A wrk duration such as `635.91us`, `1.23ms` or `1.01s`, in milliseconds.
fn millis(value: &str) -> f64 {
    let split = value
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(value.len());
    let (number, unit) = value.split_at(split);
    let number: f64 = number.parse().expect("a number");
    match unit {
        "us" => number / 1000.0,
        "ms" => number,
        "s" => number * 1000.0,
        "m" => number * 60_000.0,
        other => panic!("unknown unit {other:?} in {value:?}"),
    }
}

fn row(name: &str, m: &Measured, ceiling: f64, connections: usize) {
    println!(
        "{:<44} {:>5} {:>9.0} {:>7.1}% {:>8.2} {:>8.2}",
        name,
        connections,
        m.per_sec,
        m.per_sec / ceiling * 100.0,
        m.p50_ms,
        m.p99_ms,
    );
}

/// The limiter's own cost per request, without HTTP: one key from 1 thread, and one key and
/// one key per thread from 8 threads.
fn limiter_alone(calls: usize) {
    let limiter = RateLimiter::new(60, 100_000);
    let measure = |threads: usize, shared_key: bool| {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..threads {
                let limiter = &limiter;
                scope.spawn(move || {
                    let id = if shared_key {
                        "key_shared".to_string()
                    } else {
                        format!("key_{t}")
                    };
                    for _ in 0..calls / threads {
                        let decision =
                            limiter.admit(Bucket::Key(id.clone()), u32::MAX, Instant::now());
                        assert!(decision.allowed);
                    }
                });
            }
        });
        started.elapsed().as_nanos() as f64 / calls as f64
    };
    println!(
        "rate limiter alone, ns per request: {:.0} (1 thread), {:.0} (8 threads, one key), \
         {:.0} (8 threads, a key each)",
        measure(1, true),
        measure(8, true),
        measure(8, false)
    );
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

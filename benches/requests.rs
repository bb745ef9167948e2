//! Request throughput and latency over HTTP against the real server (release build, loopback):
//! durable writes (POST a conversation) and reads (GET a page of 20), from 1 and from 8
//! concurrent clients. Every write is its own durable commit, so concurrent writers show what a
//! batched commit path would gain.
//!
//! `cargo bench --bench requests` (or `make bench`) runs the full counts; without `--bench` (as
//! `cargo test --all-targets` does) it runs 1/20 of them as a smoke test.

use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use rogeriq::config::Settings;
use rogeriq::server::{self, Options};
use serde_json::{Value, json};

struct Target {
    base: String,
    key: String,
    project_id: String,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let requests = if full { 2_000 } else { 100 };
    let dir = tempfile::tempdir().expect("temp dir");
    let settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    let launched = server::launch(
        settings,
        Options {
            handle_signals: false,
        },
    )
    .expect("server started");
    let first = launched.bootstrap.expect("a fresh store");
    let (addr, handle, server) = (launched.addr, launched.handle, launched.server);
    let thread = std::thread::spawn(move || actix_web::rt::System::new().block_on(server));
    let base = format!("http://{addr}/api/v1");
    let project = Client::new()
        .post(format!("{base}/orgs/{}/projects", first.org_id))
        .header("X-API-Key", &first.key)
        .json(&json!({"name": "Bench"}))
        .send()
        .and_then(|r| r.json::<Value>())
        .expect("project created");
    let target = Target {
        base,
        key: first.key,
        project_id: project["data"]["id"]
            .as_str()
            .expect("project id")
            .to_string(),
    };

    println!(
        "requests over HTTP ({})",
        if full {
            "full size"
        } else {
            "smoke size, 1/20"
        }
    );
    println!(
        "{:<28} {:>8} {:>10} {:>9} {:>9}",
        "workload", "requests", "req/s", "p50 ms", "p99 ms"
    );
    for clients in [1, 8] {
        run(
            &target,
            "POST conversation (write)",
            clients,
            requests,
            true,
        );
        run(
            &target,
            "GET 20 conversations (read)",
            clients,
            requests,
            false,
        );
    }

    actix_web::rt::System::new().block_on(handle.stop(true));
    let _ = thread.join();
    server::close(launched.dispatcher, launched.store);
    if let Some(peak) = peak_rss_kib() {
        println!("peak resident memory: {} MiB", peak / 1024);
    }
}

/// `total` requests split over `clients` threads; prints throughput and latency percentiles.
fn run(target: &Target, name: &str, clients: usize, total: usize, write: bool) {
    let started = Instant::now();
    let mut latencies: Vec<Duration> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..clients)
            .map(|_| {
                scope.spawn(|| {
                    let client = Client::new();
                    let url = format!(
                        "{}/projects/{}/conversations",
                        target.base, target.project_id
                    );
                    (0..total / clients)
                        .map(|i| {
                            let sent = Instant::now();
                            let request = if write {
                                client
                                    .post(&url)
                                    .json(&json!({"subject": format!("Bench {i}")}))
                            } else {
                                client.get(format!("{url}?limit=20"))
                            };
                            let response = request
                                .header("X-API-Key", &target.key)
                                .send()
                                .expect("request");
                            assert!(response.status().is_success(), "{}", response.status());
                            response.bytes().expect("body");
                            sent.elapsed()
                        })
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        workers
            .into_iter()
            .flat_map(|w| w.join().expect("client thread"))
            .collect()
    });
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let percentile =
        |p: f64| latencies[((latencies.len() - 1) as f64 * p) as usize].as_secs_f64() * 1000.0;
    println!(
        "{:<28} {:>8} {:>10.0} {:>9.2} {:>9.2}   ({clients} client{})",
        name,
        latencies.len(),
        latencies.len() as f64 / elapsed,
        percentile(0.5),
        percentile(0.99),
        if clients == 1 { "" } else { "s" }
    );
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

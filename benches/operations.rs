//! What operating the server costs: the audit retention sweep over a large log, how long it
//! keeps other writes waiting, the store's point reads beneath a GET, and the metrics' cost per
//! request and per scrape.
//!
//! `cargo bench --bench operations` (or `make bench`) runs the full size: a log of 1 000 000
//! entries of which 100 000 are past the cut; `-- reads` (or `sweep`, `metrics`) runs one part. Run without `--bench` (as `cargo test
//! --all-targets` does) it runs the same code at 1/100 scale, as a smoke test.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Barrier, LazyLock};
use std::time::{Duration, Instant};

use rogeriq::ids::OrgId;
use rogeriq::metrics::{Metrics, StoreSnapshot};
use rogeriq::org_owned::audit::{self, Actor, Event};
use rogeriq::org_owned::org::{self, OrgCreate};
use rogeriq::org_owned::project::{self, Project, ProjectCreate, Slug};
use rogeriq::org_owned::retention;
use rogeriq::store::{Reader, Store, layout, tables};
use rogeriq::timestamp::Timestamp;

/// Entries written per write transaction while loading.
const LOAD_BATCH: usize = 20_000;
/// Entries one sweep transaction deletes: `[audit] sweep_batch`'s default.
const SWEEP_BATCH: usize = 500;
const DAY: i64 = 86_400;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { 1 } else { 100 };
    println!(
        "operations ({})",
        if full {
            "full size"
        } else {
            "smoke size, 1/100"
        }
    );
    // `cargo bench --bench operations -- reads` (or `sweep`, `metrics`) runs one part.
    let named: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with('-'))
        .collect();
    let only = |part: &str| named.is_empty() || named.iter().any(|n| n == part);
    if only("sweep") {
        sweep(1_000_000 / scale, 100_000 / scale);
    }
    if only("reads") {
        point_reads(1_000_000 / scale);
    }
    if only("metrics") {
        metrics_per_request(2_000_000 / scale);
        scrape(1_000 / scale);
    }
}

/// Loads `total` audit entries, `old` of them past the cut, sweeps them while another thread
/// writes one small transaction after another, and reports the sweep's time and those writes'
/// latency during the sweep and without it.
fn sweep(total: usize, old: usize) {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(&dir.path().join("sweep.redb")).expect("a store");
    let now = Timestamp::now().unix();
    let cut = Timestamp::from_unix(now - 365 * DAY);
    // Old entries first, as time writes them; spread over 10 organisations.
    let mut written = 0;
    while written < total {
        let n = LOAD_BATCH.min(total - written);
        let first = written;
        store
            .write_blocking(move |tx| {
                for i in first..first + n {
                    let at = if i < old { now - 400 * DAY } else { now };
                    tx.now = Timestamp::from_unix(at);
                    audit::record(tx, &Actor::master(None), event(i))?;
                }
                Ok(())
            })
            .expect("loaded");
        written += n;
    }

    let started = Instant::now();
    let mut swept = retention::Swept::default();
    let during = probe_writes(&store, Duration::ZERO, || {
        swept = retention::expire(&store, cut, SWEEP_BATCH, || false).expect("swept");
    });
    let took = started.elapsed();
    // After the sweep, not before it: right after the load the OS is still writing back the
    // loaded pages, which slows every sync.
    let idle = probe_writes(&store, Duration::from_millis(500), || {});
    assert_eq!(swept.deleted, old as u64);
    println!(
        "audit retention sweep: {total} entries, {old} past the cut, batches of {SWEEP_BATCH}: \
         {:.0} ms ({:.2} µs per entry read), {} write transactions, the longest {:.2} ms before its commit",
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e6 / total as f64,
        swept.batches,
        swept.longest_batch.as_secs_f64() * 1e3,
    );
    println!(
        "  a concurrent one-key write: idle p50 {:.2} ms, max {:.2} ms; during the sweep p50 {:.2} ms, \
         p99 {:.2} ms, max {:.2} ms ({} writes)",
        idle.p(0.5),
        idle.max(),
        during.p(0.5),
        during.p(0.99),
        during.max(),
        during.0.len(),
    );
    store.close(Duration::from_secs(5)).expect("closed");
}

/// What the store part of a GET costs: a read transaction with one `Reader::get` of a project,
/// and one with the project resolved as a request resolves it (its index, then its record),
/// `reads` times each, on one thread; the best of three rounds, in ns per read.
fn point_reads(reads: usize) {
    const PROJECTS: usize = 1_000;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let store = Store::open(&dir.path().join("reads.redb")).expect("a store");
    let (org_id, ids) = store
        .write_blocking(|tx| {
            let actor = Actor::master(None);
            let org = org::create(
                tx,
                &actor,
                OrgCreate {
                    name: "Acme".into(),
                },
            )?;
            let mut ids = Vec::with_capacity(PROJECTS);
            for i in 0..PROJECTS {
                let input = ProjectCreate {
                    name: format!("Project {i}"),
                    slug: Slug::try_from(format!("project-{i}")).expect("a slug"),
                    domain: None,
                };
                ids.push(project::create(tx, &actor, &org.id, input)?.id);
            }
            Ok((org.id, ids))
        })
        .expect("projects made");
    let keys: Vec<Vec<u8>> = ids
        .iter()
        .map(|id| layout::org_child(&org_id, id.as_str()))
        .collect();
    let best_of_three = |read: &dyn Fn(usize)| {
        (0..3)
            .map(|_| {
                let started = Instant::now();
                for i in 0..reads {
                    read(i % PROJECTS);
                }
                started.elapsed().as_nanos() as f64 / reads as f64
            })
            .fold(f64::INFINITY, f64::min)
    };
    let get = best_of_three(&|i| {
        let found = store
            .read_blocking(|rx| rx.get::<Project>(tables::PROJECTS, &keys[i]))
            .expect("a read");
        assert!(found.is_some());
    });
    let resolve = best_of_three(&|i| {
        store
            .read_blocking(|rx| project::resolve(rx, &org_id, &ids[i]))
            .expect("a project");
    });
    println!(
        "point reads, {reads} per round, best of 3: Reader::get of a project {get:.0} ns, \
         project::resolve {resolve:.0} ns"
    );
    store.close(Duration::from_secs(5)).expect("closed");
}

fn event(i: usize) -> Event<'static> {
    const ORGS: [&str; 10] = [
        "org_aaaaaaaaaaa0",
        "org_aaaaaaaaaaa1",
        "org_aaaaaaaaaaa2",
        "org_aaaaaaaaaaa3",
        "org_aaaaaaaaaaa4",
        "org_aaaaaaaaaaa5",
        "org_aaaaaaaaaaa6",
        "org_aaaaaaaaaaa7",
        "org_aaaaaaaaaaa8",
        "org_aaaaaaaaaaa9",
    ];
    static ORG_IDS: LazyLock<Vec<OrgId>> = LazyLock::new(|| {
        ORGS.iter()
            .map(|id| OrgId::parse(id).expect("an org id"))
            .collect()
    });
    Event {
        org_id: &ORG_IDS[i % ORGS.len()],
        project_id: None,
        action: "conversation.updated",
        target_id: "con_aaaaaaaaaaaa",
        before: Some(serde_json::json!({"status": "open", "subject": "Where is my order?"})),
        after: Some(serde_json::json!({"status": "closed", "subject": "Where is my order?"})),
        cascade: Vec::new(),
    }
}

/// Latencies of one-key writes, in ms.
struct Latencies(Vec<f64>);

impl Latencies {
    fn p(&self, q: f64) -> f64 {
        let mut sorted = self.0.clone();
        sorted.sort_by(f64::total_cmp);
        sorted
            .get(((sorted.len() as f64 - 1.0) * q).round() as usize)
            .copied()
            .unwrap_or(0.0)
    }

    fn max(&self) -> f64 {
        self.0.iter().copied().fold(0.0, f64::max)
    }
}

/// Runs `work` on this thread while another writes one key per transaction, back to back, for
/// as long as `work` runs and at least `at_least`; returns those writes' latencies.
fn probe_writes(store: &Store, at_least: Duration, work: impl FnOnce()) -> Latencies {
    let done = Arc::new(AtomicBool::new(false));
    let probe = {
        let (store, done) = (store.clone(), Arc::clone(&done));
        std::thread::spawn(move || {
            let mut latencies = Vec::new();
            let mut i = 0u64;
            while !done.load(Ordering::Relaxed) {
                let started = Instant::now();
                store
                    .write_blocking(move |tx| {
                        tx.put_raw(rogeriq::store::tables::COUNTS, b"probe", &i.to_be_bytes())
                    })
                    .expect("a probe write");
                latencies.push(started.elapsed().as_secs_f64() * 1e3);
                i += 1;
            }
            store
                .write_blocking(|tx| tx.remove(rogeriq::store::tables::COUNTS, b"probe"))
                .expect("probe removed");
            latencies
        })
    };
    let started = Instant::now();
    work();
    if let Some(rest) = at_least.checked_sub(started.elapsed()) {
        std::thread::sleep(rest);
    }
    done.store(true, Ordering::Relaxed);
    Latencies(probe.join().expect("the probe thread"))
}

/// `Metrics::request` as the request middleware calls it, on 1 and 2 threads.
fn metrics_per_request(calls: usize) {
    const ROUTES: [&str; 4] = [
        "/api/v1/orgs/{org_id}/projects/{project_id}",
        "/api/v1/projects/{project_id}/conversations",
        "/api/v1/projects/{project_id}/conversations/{conversation_id}",
        "/healthz",
    ];
    for threads in [1, 2] {
        let metrics = Arc::new(Metrics::new());
        let barrier = Arc::new(Barrier::new(threads));
        let started = Instant::now();
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let (metrics, barrier) = (Arc::clone(&metrics), Arc::clone(&barrier));
                std::thread::spawn(move || {
                    barrier.wait();
                    for i in 0..calls / threads {
                        let route = ROUTES[(i + t) % ROUTES.len()];
                        metrics.request("GET", route, 200, Duration::from_micros(90));
                    }
                })
            })
            .collect();
        for worker in workers {
            worker.join().expect("a metrics thread");
        }
        let took = started.elapsed();
        println!(
            "metrics per request ({threads} thread{}): {:.0} ns",
            if threads == 1 { "" } else { "s" },
            took.as_secs_f64() * 1e9 / (calls / threads) as f64
        );
    }
}

/// One scrape's rendering with 100 routes seen, each with two status classes.
fn scrape(scrapes: usize) {
    let metrics = Metrics::new();
    let routes: Vec<String> = (0..100)
        .map(|i| format!("/api/v1/route{i}/{{id}}"))
        .collect();
    for route in &routes {
        for status in [200, 404] {
            metrics.request("GET", route, status, Duration::from_micros(90));
        }
    }
    let snapshot = StoreSnapshot {
        queue_depth: 0,
        file_bytes: 1 << 30,
        records: vec![("conversations", 1_000_000)],
        writable: true,
        ..StoreSnapshot::default()
    };
    let scrapes = scrapes.max(1);
    let started = Instant::now();
    let mut bytes = 0;
    for _ in 0..scrapes {
        bytes = metrics.render(&snapshot).len();
    }
    println!(
        "one scrape, 200 request series: {:.0} µs, {} KiB",
        started.elapsed().as_secs_f64() * 1e6 / scrapes as f64,
        bytes / 1024
    );
}

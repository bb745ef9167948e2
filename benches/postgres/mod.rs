//! The PostgreSQL backend over HTTP, beside PostgreSQL's own ceiling in the same run: a durable
//! cluster of its own on disk (`pg_cluster.rs`), servers with the default pool (16
//! connections), and pgbench through 16 connections running the statements a request needs at
//! the least, with no HTTP and no server:
//! - GET one project (64 connections) beside pgbench's primary-key select of that project;
//! - durable creates (POST a project, 64 connections) beside pgbench's "insert a project row
//!   and an audit row" in one serializable transaction;
//! - two nodes on the one database, 32 connections each, beside one node at 64;
//! - issue #21's row: redb's durable creates beside PostgreSQL's insert rate, medians of three.
//!
//! Without PostgreSQL 15+ it says so in one line and measures nothing.

use std::io::Write as _;
use std::path::Path;

use rogeriq::config::Settings;
use rogeriq::server::{self, Options};
use tempfile::TempDir;

use super::pg_cluster::{Cluster, binaries};
use super::{
    CONNECTIONS, Target, check_once, create_project, get_project, row, start, start_on, stop, wrk,
};

/// The server's pool, and so pgbench's connections.
const POOL: usize = 16;

pub fn rows(full: bool, seconds: u64, wrk_found: bool) {
    if binaries().is_none() {
        println!(
            "postgres rows: PostgreSQL 15+ is not installed (apt-get install postgresql): skipped"
        );
        return;
    }
    let cluster = Cluster::durable().unwrap_or_else(|why| panic!("a durable cluster: {why}"));
    let database = cluster.new_database();
    let url = cluster.url(&database);
    let one = start_on(false, Some(&url));
    let two = second_node(&one, &url);
    let dir = tempfile::tempdir().expect("temp dir");
    if !wrk_found {
        println!("postgres rows: wrk not found, load rows skipped (one request each instead)");
        check_once(&get_project(&one));
        check_once(&get_project(&two));
        check_once(&create_project(&one, &dir, 1));
    } else {
        measure(&cluster, &database, &one, &two, &dir, full, seconds);
    }
    stop(two);
    stop(one);
}

fn measure(
    cluster: &Cluster,
    database: &str,
    one: &Target,
    two: &Target,
    dir: &TempDir,
    full: bool,
    seconds: u64,
) {
    let connections = CONNECTIONS[1];
    println!(
        "postgres backend over HTTP, wrk, {seconds} s a row ({}); ceiling: pgbench, {POOL} \
         connections (the server's pool), the same statements without HTTP",
        if full { "full size" } else { "smoke size" }
    );
    println!(
        "{:<44} {:>5} {:>9} {:>8} {:>8} {:>8}",
        "workload", "conns", "req/s", "ceiling", "p50 ms", "p99 ms"
    );
    let select = script(dir, "select.sql", &select_script(one));
    let select_rate = pgbench(cluster, database, &select, seconds);
    ceiling_row("pgbench: primary-key select of the project", select_rate);
    let got = wrk(&get_project(one), connections, seconds);
    row("GET one project, postgres", &got, select_rate, connections);

    let insert = script(dir, "insert.sql", INSERT_SCRIPT);
    let insert_rate = pgbench(cluster, database, &insert, seconds);
    ceiling_row("pgbench: insert a project row + an audit row", insert_rate);
    let created = wrk(&create_project(one, dir, 1), connections, seconds);
    row(
        "POST a project (durable, audited), postgres",
        &created,
        insert_rate,
        connections,
    );

    // Two nodes at once, half the connections each, beside one node with them all.
    let (a, b) = std::thread::scope(|scope| {
        let a = scope.spawn(|| wrk(&get_project(one), connections / 2, seconds));
        let b = scope.spawn(|| wrk(&get_project(two), connections / 2, seconds));
        (a.join().expect("wrk a"), b.join().expect("wrk b"))
    });
    println!(
        "  two nodes on one database, GET one project, {} conns each: {:.0} + {:.0} = {:.0} \
         req/s; one node at {connections}: {:.0} req/s ({:.0}%)",
        connections / 2,
        a.per_sec,
        b.per_sec,
        a.per_sec + b.per_sec,
        got.per_sec,
        (a.per_sec + b.per_sec) / got.per_sec * 100.0
    );

    // Issue #21: redb's durable creates beside PostgreSQL's insert rate, medians of three.
    let redb = start(false);
    let redb_creates = median(
        (2..5)
            .map(|run| wrk(&create_project(&redb, dir, run), connections, seconds).per_sec)
            .collect(),
    );
    stop(redb);
    let inserts = median(
        (0..3)
            .map(|_| pgbench(cluster, database, &insert, seconds))
            .collect(),
    );
    println!(
        "  redb durable creates (POST, {connections} conns, median of 3): {redb_creates:.0}/s; \
         PostgreSQL's insert of a project + an audit row (pgbench, {POOL} conns, median of 3): \
         {inserts:.0}/s; redb / PostgreSQL {:.2}x (goal 2x)",
        redb_creates / inserts
    );
}

fn ceiling_row(name: &str, per_sec: f64) {
    println!(
        "{name:<44} {POOL:>5} {per_sec:>9.0} {:>7.1}% {:>8} {:>8}",
        100.0, "-", "-"
    );
}

fn pgbench(cluster: &Cluster, database: &str, script: &Path, seconds: u64) -> f64 {
    cluster
        .pgbench(database, script, POOL, seconds)
        .unwrap_or_else(|why| panic!("{why}"))
}

fn median(mut runs: Vec<f64>) -> f64 {
    runs.sort_by(f64::total_cmp);
    runs[runs.len() / 2]
}

fn script(dir: &TempDir, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(text.as_bytes()))
        .expect("pgbench script written");
    path
}

/// The GET's project row by its primary key, as the server's store reads it.
fn select_script(target: &Target) -> String {
    let key: String = format!("{}{}", target.org_id, target.project_id)
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("SELECT v FROM projects WHERE k = '\\x{key}'::bytea;\n")
}

/// A project create's two rows at the least, with values of a project's and an audit entry's
/// size, in one serializable transaction as the server writes them.
const INSERT_SCRIPT: &str = "BEGIN ISOLATION LEVEL SERIALIZABLE;
INSERT INTO projects (k, v) VALUES (convert_to(gen_random_uuid()::text, 'UTF8'), decode(repeat('5a', 160), 'hex'));
INSERT INTO audit (k, v) VALUES (convert_to(gen_random_uuid()::text, 'UTF8'), decode(repeat('5a', 420), 'hex'));
COMMIT;
";

/// A second server on the database of `first`, serving its organisation, key and project.
fn second_node(first: &Target, url: &str) -> Target {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        ..Settings::default()
    };
    settings.rate_limit.enabled = false;
    settings.store.backend = rogeriq::config::StoreBackend::Postgres;
    settings.store.postgres_url = url.to_string();
    let launched = server::launch(
        settings,
        Options {
            handle_signals: false,
        },
    )
    .expect("the second node started");
    let server = launched.server;
    let thread = std::thread::spawn(move || actix_web::rt::System::new().block_on(server));
    Target {
        base: format!("http://{}", launched.addr),
        org_id: first.org_id.clone(),
        key: first.key.clone(),
        project_id: first.project_id.clone(),
        handle: launched.handle,
        thread,
        store: launched.store,
        dispatcher: launched.dispatcher,
        _dir: dir,
    }
}

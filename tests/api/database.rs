//! A PostgreSQL store's database as an operator meets it: a URL that does not parse, a
//! database that cannot be reached, or a schema newer than the binary each stop the start with
//! status 2 and one line that never shows the password; a database lost while the server runs
//! is answered 503 `SERVICE_UNAVAILABLE` with `Retry-After`, and the server recovers by itself
//! when it is back. PostgreSQL only: on redb each test says it skipped.

use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::process::{PATIENCE, command, start};

const POSTGRES_ONLY: &str = "a PostgreSQL store's database";

/// Starts `rogeriq serve` on a fresh data folder with `env`; expects it to exit 2 with one
/// line on stderr, which it returns.
fn refused_start(env: &[(&str, &str)]) -> String {
    let dir = temp_dir();
    let mut process = start(command(dir.path(), &["--listen", "127.0.0.1:0"], env));
    let status = process.wait();
    let said = process.stderr_text();
    assert_eq!(status.code(), Some(2), "{said}");
    assert_eq!(said.lines().count(), 1, "{said}");
    said
}

#[test]
fn bad_urls_unreachable_databases_and_newer_schemas_stop_the_start() {
    if skipped_on_redb(POSTGRES_ONLY) {
        return;
    }
    let said = refused_start(&[(
        "ROGERIQ_STORE_POSTGRES_URL",
        "postgres://rogeriq:s3cret-pass@db:port/x",
    )]);
    assert!(
        said.contains("store.postgres_url is not a PostgreSQL URL"),
        "{said}"
    );
    assert!(!said.contains("s3cret-pass"), "{said}");

    // Nothing listens on port 1.
    let said = refused_start(&[(
        "ROGERIQ_STORE_POSTGRES_URL",
        "postgres://rogeriq:s3cret-pass@127.0.0.1:1/rogeriq",
    )]);
    assert!(
        said.contains("cannot reach the database rogeriq@127.0.0.1:1/rogeriq"),
        "{said}"
    );
    assert!(!said.contains("s3cret-pass"), "{said}");

    let cluster = crate::pg_cluster::cluster();
    let database = cluster.new_database();
    cluster
        .admin_in(
            &database,
            "UPDATE meta SET v = 99 WHERE name = 'schema_version'",
        )
        .unwrap();
    let said = refused_start(&[("ROGERIQ_STORE_POSTGRES_URL", &cluster.url(&database))]);
    assert!(
        said.contains("holds schema version 99, newer than this rogeriq's"),
        "{said}"
    );
    cluster.drop_database(&database);
}

#[test]
fn a_lost_database_is_answered_503_and_the_server_recovers() {
    if skipped_on_redb(POSTGRES_ONLY) {
        return;
    }
    let app = TestApp::spawn();
    let project = app.project("Kept");
    let path = format!("/api/v1/orgs/{}/projects/{project}", app.org_id);
    assert_eq!(app.get(&path, &app.admin_key).status, 200);
    let cluster = crate::pg_cluster::cluster();
    let database = app.database().expect("a database").to_string();
    // The database refuses connections and drops those it has: lost, as far as the server sees.
    cluster
        .admin(&format!(
            "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS false; \
             SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
        ))
        .unwrap();
    for _ in 0..3 {
        let read = app.get(&path, &app.admin_key);
        read.assert_error(503, "SERVICE_UNAVAILABLE");
        assert_eq!(read.header("retry-after"), Some("1"));
        assert_eq!(read.body["retry_after"], 1);
        let write = app.post(
            &format!("/api/v1/orgs/{}/projects", app.org_id),
            &app.admin_key,
            json!({"name": "Not now"}),
        );
        write.assert_error(503, "SERVICE_UNAVAILABLE");
    }
    assert_eq!(
        app.get("/healthz", &app.admin_key).status,
        200,
        "the node runs on"
    );

    cluster
        .admin(&format!(
            "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true"
        ))
        .unwrap();
    let deadline = Instant::now() + PATIENCE;
    while app.get(&path, &app.admin_key).status != 200 {
        assert!(Instant::now() < deadline, "the server did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
    let listed = app.get(
        &format!("/api/v1/orgs/{}/projects", app.org_id),
        &app.admin_key,
    );
    assert_eq!(
        listed.data().as_array().map(Vec::len),
        Some(1),
        "nothing half-written"
    );
}

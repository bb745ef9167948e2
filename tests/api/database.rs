//! A PostgreSQL store's database as an operator meets it: a URL that does not parse, a
//! database that cannot be reached, or a schema newer than the binary each stop the start with
//! status 2 and one line that never shows the password; a database lost while the server runs
//! or turned read-only is answered 503 `STORAGE_UNAVAILABLE` with `Retry-After`, `/healthz`
//! says degraded, and the server recovers by itself once a write commits again. PostgreSQL
//! only: on redb each test says it skipped.

use std::time::{Duration, Instant};

use crate::helpers::*;
use crate::process::{PATIENCE, command, start};

const POSTGRES_ONLY: &str = "a PostgreSQL store's database";

/// Starts `rogeriq serve` on a fresh data folder with `env`; expects it to exit 2 with one
/// line on stderr, which it returns.
fn refused_start(env: &[(&str, &str)]) -> String {
    let dir = temp_dir();
    // The owner's alone, so that the start says nothing of its modes.
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o700),
    )
    .unwrap();
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
        read.assert_error(503, "STORAGE_UNAVAILABLE");
        assert_eq!(read.header("retry-after"), Some("5"));
        assert_eq!(read.body["retry_after"], 5);
        let write = app.post(
            &format!("/api/v1/orgs/{}/projects", app.org_id),
            &app.admin_key,
            json!({"name": "Not now"}),
        );
        write.assert_error(503, "STORAGE_UNAVAILABLE");
    }
    assert_degraded(&app);

    cluster
        .admin(&format!(
            "ALTER DATABASE {database} WITH ALLOW_CONNECTIONS true"
        ))
        .unwrap();
    await_healed(&app);
    assert_eq!(app.get(&path, &app.admin_key).status, 200);
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

/// A database that still answers but refuses writes (a standby after a failover, a full disk)
/// leaves reads served and writes refused until a write commits again.
#[test]
fn a_read_only_database_refuses_writes_until_one_commits_again() {
    if skipped_on_redb(POSTGRES_ONLY) {
        return;
    }
    let app = TestApp::spawn();
    let project = app.project("Kept");
    let path = format!("/api/v1/orgs/{}/projects/{project}", app.org_id);
    let cluster = crate::pg_cluster::cluster();
    let database = app.database().expect("a database").to_string();
    let read_only = |on: bool| {
        cluster
            .admin(&format!(
                "ALTER DATABASE {database} SET default_transaction_read_only = {on}; \
                 SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{database}'"
            ))
            .unwrap();
    };
    read_only(true);
    let create = || {
        app.post(
            &format!("/api/v1/orgs/{}/projects", app.org_id),
            &app.admin_key,
            json!({"name": "Not now"}),
        )
    };
    // The first request may meet a terminated connection; the write then meets read-only.
    let deadline = Instant::now() + PATIENCE;
    loop {
        let refused = create();
        assert_ne!(refused.status, 201, "{}", refused.body);
        if refused.status == 503 && app.get("/healthz", "").status == 503 {
            refused.assert_error(503, "STORAGE_UNAVAILABLE");
            break;
        }
        assert!(Instant::now() < deadline, "no write was refused");
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_degraded(&app);
    let deadline = Instant::now() + PATIENCE;
    while app.get(&path, &app.admin_key).status != 200 {
        assert!(Instant::now() < deadline, "reads were not served");
        std::thread::sleep(Duration::from_millis(50));
    }
    create().assert_error(503, "STORAGE_UNAVAILABLE");

    read_only(false);
    await_healed(&app);
    assert_eq!(create().status, 201);
}

/// `/healthz` and the metrics say the store cannot write.
fn assert_degraded(app: &TestApp) {
    let health = app.get("/healthz", "");
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(health.body["status"], "degraded");
    assert_eq!(health.header("retry-after"), Some("5"));
    let metrics = app.request(Method::GET, "/metrics", None, None);
    let text = metrics.body.as_str().unwrap_or_default();
    assert!(text.contains("rogeriq_store_writable 0\n"), "{text}");
}

/// Waits until `/healthz` says ok again (the store's probe write committed).
fn await_healed(app: &TestApp) {
    let deadline = Instant::now() + PATIENCE;
    while app.get("/healthz", "").status != 200 {
        assert!(Instant::now() < deadline, "the server did not recover");
        std::thread::sleep(Duration::from_millis(100));
    }
}

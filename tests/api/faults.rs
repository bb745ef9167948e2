//! A full or failing disk heals without a restart (issue #21). The store runs on a simulated
//! disk (`store::SimulatedDisk`) whose capacity the tests set: a write that would grow the
//! data file past it fails with ENOSPC, as on a full file system, with no root and no small
//! real file system needed; or it fails every write with EIO. Also: the data folder and file
//! are their owner's alone.

use std::ops::ControlFlow;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use rogeriq::config::Settings;
use rogeriq::error::{ApiResult, ErrorCode};
use rogeriq::ids::{OrgId, ProjectId};
use rogeriq::org_owned::audit::Actor;
use rogeriq::org_owned::project::{self, ProjectCreate, Slug};
use rogeriq::project_owned::kb::Article;
use rogeriq::project_owned::{Id, Kind, ProjectScope, Routed};
use rogeriq::store::{Limits, Reader, SimulatedDisk, Store, Trouble, layout, tables};

use crate::helpers::*;
use crate::store_model::{input_settings, make_orgs};

/// Why these tests skip on PostgreSQL: they run a redb store on a simulated disk (a
/// PostgreSQL store's faults are tests/api/database.rs').
const SIMULATED_DISK: &str =
    "a redb store on a simulated disk; database.rs tests PostgreSQL's faults";
const FILE_MODES: &str = "the modes of redb's data file";

/// How long healing may take: the writer's next attempt after space is back (at most a
/// second's look at the free space, or the backoff so far).
const HEALING: Duration = Duration::from_secs(30);

/// Article text of about 40 KB: a few of them fill a small disk.
fn long_text(n: usize) -> String {
    (0..5000)
        .map(|i| format!("w{}x{}", n, i % 97))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Polls `done` until it holds, or fails after `HEALING`.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + HEALING;
    while !done() {
        assert!(Instant::now() < deadline, "{what}: not within {HEALING:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A store on `disk` with an organisation and a project, through the domain functions.
fn store_with_project(disk: &SimulatedDisk, limits: Limits) -> (Store, OrgId, ProjectId) {
    let store = Store::open_on(disk.clone(), limits).unwrap();
    let org = org_id_of(&make_orgs(&store).remove(0));
    let input = ProjectCreate {
        name: "Docs".into(),
        slug: Slug::try_from("docs".to_string()).unwrap(),
        domain: None,
    };
    let o = org.clone();
    let project = store
        .write_blocking(move |tx| Ok(project::create(tx, &Actor::master(None), &o, input)?.id))
        .unwrap();
    (store, org, project)
}

fn write_article(store: &Store, org: &OrgId, project: &ProjectId, n: usize) -> ApiResult<String> {
    let (org, project) = (org.clone(), project.clone());
    let body = json!({"title": format!("Article {n}"), "content": long_text(n)});
    let input = Article::parse_create(body, input_settings()).unwrap();
    store.write_blocking(move |tx| {
        let scope = ProjectScope::resolve(tx, &org, &project)?;
        Ok(Article::create(tx, &scope, &Actor::master(None), input)?.id)
    })
}

/// The ids of the articles the store holds in `project`.
fn stored_articles(store: &Store, org: &OrgId, project: &ProjectId) -> ApiResult<Vec<String>> {
    let mut prefix = layout::project_prefix(org, project);
    prefix.push(Article::TAG);
    store.read_blocking(move |rx| {
        let mut ids = Vec::new();
        rx.scan(
            tables::OWNED,
            layout::prefix_range(&prefix),
            false,
            &mut |key, _| {
                ids.push(String::from_utf8_lossy(&key[prefix.len()..]).into_owned());
                Ok(ControlFlow::Continue(()))
            },
        )?;
        Ok(ids)
    })
}

/// A commit that meets a full disk refuses its writes with STORAGE_UNAVAILABLE and nothing of
/// them is stored; every later write is refused at once while the disk stays full, reads
/// answer or refuse (never fail otherwise), and once space is back the store reopens itself:
/// writes succeed, every acknowledged one is there and no refused one is.
#[test]
fn a_full_disk_refuses_writes_and_the_store_heals_when_space_is_back() {
    if skipped_on_postgres(SIMULATED_DISK) {
        return;
    }
    let disk = SimulatedDisk::new();
    let limits = Limits {
        min_free_bytes: 0,
        ..Limits::default()
    };
    let (store, org, project) = store_with_project(&disk, limits);
    disk.set_capacity(Some(disk.len() + 512 * 1024));
    let mut acked = Vec::new();
    let mut n = 0;
    let refused = loop {
        n += 1;
        match write_article(&store, &org, &project, n) {
            Ok(id) => acked.push(id),
            Err(err) => break err,
        }
        assert!(n < 200, "the disk never filled");
    };
    assert_eq!(refused.code(), ErrorCode::StorageUnavailable, "{refused}");
    assert!(!acked.is_empty());
    let health = store.health();
    assert_eq!(health.trouble, Some(Trouble::DiskFull));
    assert_eq!(health.failed_commits, 1);
    // Less than the reopen floor is free: no attempt is made, and writes are refused untried.
    for m in 0..3 {
        let err = write_article(&store, &org, &project, 1000 + m).unwrap_err();
        assert_eq!(err.code(), ErrorCode::StorageUnavailable);
    }
    assert_eq!(store.health().failed_commits, 1, "refused, not tried");
    match stored_articles(&store, &org, &project) {
        Ok(ids) => assert_eq!(ids.len(), acked.len()),
        Err(err) => assert_eq!(err.code(), ErrorCode::StorageUnavailable, "{err}"),
    }
    // What the background writers wait on: it returns only once the store has healed, which
    // it cannot before space is back.
    let waiting = store.clone();
    let waiter = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(waiting.writable());
        waiting.health()
    });
    assert!(!waiter.is_finished());

    disk.set_capacity(None);
    assert!(waiter.join().unwrap().writable(), "woken once writable");
    eventually("the store heals", || store.health().writable());
    assert!(store.health().reopen_attempts >= 1);
    let after = write_article(&store, &org, &project, 2000).expect("writes succeed again");
    acked.push(after);
    let mut stored = stored_articles(&store, &org, &project).unwrap();
    stored.sort();
    acked.sort();
    assert_eq!(stored, acked, "every acknowledged article, no refused one");
    store.close(Duration::from_secs(5)).unwrap();
}

/// A disk that fails writes with EIO refuses them the same way, says "failing" rather than
/// "full", and heals once it works again: the reopens that fail meanwhile are counted, and
/// nothing refused is stored.
#[test]
fn a_disk_failing_with_eio_refuses_writes_and_the_store_heals_when_it_works_again() {
    if skipped_on_postgres(SIMULATED_DISK) {
        return;
    }
    let disk = SimulatedDisk::new();
    let (store, org, project) = store_with_project(&disk, Limits::default());
    let before = write_article(&store, &org, &project, 1).unwrap();

    disk.set_failing(true);
    let err = write_article(&store, &org, &project, 2).unwrap_err();
    assert_eq!(err.code(), ErrorCode::StorageUnavailable, "{err}");
    assert_eq!(store.health().trouble, Some(Trouble::Failing));
    // Each write is refused at once, or wakes a reopen attempt, which fails on the disk.
    eventually("a reopen attempt fails", || {
        let err = write_article(&store, &org, &project, 3).unwrap_err();
        assert_eq!(err.code(), ErrorCode::StorageUnavailable, "{err}");
        store.health().reopen_attempts >= 1
    });
    assert!(!store.health().writable());

    disk.set_failing(false);
    let mut after = None;
    eventually("writes succeed again", || {
        after = write_article(&store, &org, &project, 4).ok();
        after.is_some()
    });
    let health = store.health();
    assert!(health.writable());
    assert!(
        health.failed_commits >= 1 && health.reopen_attempts >= 2,
        "{health:?}"
    );
    let mut stored = stored_articles(&store, &org, &project).unwrap();
    stored.sort();
    let mut acked = vec![before, after.unwrap()];
    acked.sort();
    assert_eq!(stored, acked, "every acknowledged article, no refused one");
    store.close(Duration::from_secs(5)).unwrap();
}

/// Below `min_free_bytes` new writes are refused before the disk is full, untried; deletes
/// still run; the guard lifts by itself when space is back.
#[test]
fn below_the_free_space_floor_only_deletes_run() {
    if skipped_on_postgres(SIMULATED_DISK) {
        return;
    }
    let disk = SimulatedDisk::new();
    let limits = Limits {
        min_free_bytes: 1024 * 1024,
        ..Limits::default()
    };
    disk.set_capacity(Some(64 * 1024 * 1024));
    let (store, org, project) = store_with_project(&disk, limits);
    let first = write_article(&store, &org, &project, 1).unwrap();
    write_article(&store, &org, &project, 2).unwrap();

    disk.set_capacity(Some(disk.len() + 512 * 1024));
    let err = write_article(&store, &org, &project, 3).unwrap_err();
    assert_eq!(err.code(), ErrorCode::StorageUnavailable);
    let health = store.health();
    assert_eq!(health.trouble, Some(Trouble::LowSpace));
    assert_eq!(health.failed_commits, 0, "refused before any commit");
    let (o, p, id) = (org.clone(), project.clone(), first.clone());
    store
        .write_blocking_freeing(move |tx| {
            let scope = ProjectScope::resolve(tx, &o, &p)?;
            Article::delete(tx, &scope, &Actor::master(None), &Id::parse_found(&id)?)
        })
        .expect("a delete runs below the floor");
    assert_eq!(stored_articles(&store, &org, &project).unwrap().len(), 1);

    disk.set_capacity(None);
    eventually("the guard lifts", || store.health().writable());
    write_article(&store, &org, &project, 4).expect("writes run again");
    store.close(Duration::from_secs(5)).unwrap();
}

/// Through HTTP (`server::launch` on a simulated disk): a full disk answers 503
/// STORAGE_UNAVAILABLE with the contract's body and Retry-After, `/healthz` says degraded and
/// `/metrics` counts; once space is back the same server writes again, without a restart.
#[test]
fn over_http_a_full_disk_answers_503_and_heals_without_a_restart() {
    if skipped_on_postgres(SIMULATED_DISK) {
        return;
    }
    let disk = SimulatedDisk::new();
    let app = TestApp::spawn_on(disk.clone(), |s| s.store.min_free_mb = 0);
    let key = app.admin_key.clone();
    let project = app.project("Docs");
    let articles = format!("/api/v1/projects/{project}/kb/articles");
    let health = app.request(Method::GET, "/healthz", None, None);
    assert_eq!(
        (health.status, &health.body),
        (200, &json!({"status": "ok"}))
    );

    disk.set_capacity(Some(disk.len() + 512 * 1024));
    let mut acked = Vec::new();
    let refused = loop {
        let n = acked.len();
        let r = app.post(
            &articles,
            &key,
            json!({"title": format!("Article {n}"), "content": long_text(n)}),
        );
        if r.status != 201 {
            break r;
        }
        acked.push(r.data()["id"].as_str().unwrap().to_string());
        assert!(acked.len() < 200, "the disk never filled");
    };
    refused.assert_error(503, "STORAGE_UNAVAILABLE");
    assert_eq!(refused.header("retry-after"), Some("5"));
    assert_eq!(refused.body["retry_after"], 5);
    let again = app.post(&articles, &key, json!({"title": "More", "content": "x"}));
    again.assert_error(503, "STORAGE_UNAVAILABLE");

    let health = app.request(Method::GET, "/healthz", None, None);
    assert_eq!(health.status, 503, "{}", health.body);
    assert_eq!(health.body["status"], "degraded");
    assert!(
        health.body["reason"]
            .as_str()
            .unwrap()
            .contains("disk full"),
        "{}",
        health.body
    );
    let metrics = app.request(Method::GET, "/metrics", None, None);
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(text.contains("rogeriq_store_writable 0\n"), "{text}");
    assert!(
        text.contains("rogeriq_store_failed_commits_total 1\n"),
        "{text}"
    );
    // A read answers from the last good state, or refuses: never a 500.
    let read = app.get(&format!("{articles}/{}", acked[0]), &key);
    assert!(matches!(read.status, 200 | 503), "{}", read.body);

    disk.set_capacity(None);
    eventually("/healthz says ok", || {
        app.request(Method::GET, "/healthz", None, None).status == 200
    });
    let made = app.post(&articles, &key, json!({"title": "After", "content": "x"}));
    assert_eq!(made.status, 201, "{}", made.body);
    acked.push(made.data()["id"].as_str().unwrap().to_string());
    let listed = app.get(&format!("{articles}?limit=100"), &key);
    assert_eq!(listed.status, 200, "{}", listed.body);
    let mut ids: Vec<String> = listed
        .data()
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["id"].as_str().unwrap().to_string())
        .collect();
    ids.sort();
    acked.sort();
    assert_eq!(ids, acked, "every acknowledged article, no refused one");
    let metrics = app.request(Method::GET, "/metrics", None, None);
    let text = metrics.body.as_str().unwrap_or_default().to_string();
    assert!(text.contains("rogeriq_store_writable 1\n"), "{text}");
    assert!(
        !text.contains("rogeriq_store_reopen_attempts_total 0\n"),
        "{text}"
    );
}

/// Below `store.min_free_mb` a server refuses new writes over HTTP with 503 and `/healthz` says
/// so, while deletes make room; it starts on such a disk all the same, and the guard lifts by
/// itself once space is back.
#[test]
fn over_http_below_the_floor_deletes_run_and_the_server_still_starts() {
    if skipped_on_postgres(SIMULATED_DISK) {
        return;
    }
    let disk = SimulatedDisk::new();
    let floor = |s: &mut Settings| s.store.min_free_mb = 1;
    let app = TestApp::spawn_on(disk.clone(), floor);
    let key = app.admin_key.clone();
    let project = app.project("Docs");
    let articles = format!("/api/v1/projects/{project}/kb/articles");
    let article = app.post(&articles, &key, json!({"title": "Old", "content": "x"}));
    assert_eq!(article.status, 201, "{}", article.body);
    let old = article.data()["id"].as_str().unwrap().to_string();

    disk.set_capacity(Some(disk.len() + 512 * 1024));
    let refused = app.post(&articles, &key, json!({"title": "New", "content": "x"}));
    refused.assert_error(503, "STORAGE_UNAVAILABLE");
    let health = app.request(Method::GET, "/healthz", None, None);
    assert_eq!(health.status, 503, "{}", health.body);
    assert!(
        health.body["reason"]
            .as_str()
            .unwrap()
            .contains("store.min_free_mb"),
        "{}",
        health.body
    );
    let deleted = app.delete(&format!("{articles}/{old}"), &key);
    assert_eq!(deleted.status, 200, "{}", deleted.body);

    let (org, dir) = (app.org_id.clone(), app.stop());
    drop(dir);
    let app = TestApp::spawn_on(disk.clone(), floor);
    let projects = app.get(&format!("/api/v1/orgs/{org}/projects"), &key);
    assert_eq!(projects.status, 200, "{}", projects.body);
    let refused = app.post(&articles, &key, json!({"title": "New", "content": "x"}));
    refused.assert_error(503, "STORAGE_UNAVAILABLE");
    let gone = app.delete(&format!("/api/v1/orgs/{org}/projects/{project}"), &key);
    assert_eq!(gone.status, 200, "{}", gone.body);

    disk.set_capacity(None);
    eventually("/healthz says ok", || {
        app.request(Method::GET, "/healthz", None, None).status == 200
    });
    let made = app.post(
        &format!("/api/v1/orgs/{org}/projects"),
        &key,
        json!({"name": "Room again"}),
    );
    assert_eq!(made.status, 201, "{}", made.body);
}

/// The server makes its data folder 0700 and its data file 0600, whatever the umask; a file
/// that exists keeps its mode (the server warns of it).
#[test]
fn the_data_folder_and_file_are_their_owners_alone() {
    if skipped_on_postgres(FILE_MODES) {
        return;
    }
    let base = temp_dir();
    let dir = base.path().join("made").join("data");
    let data_dir = dir.clone();
    let app = TestApp::spawn_with(move |s| s.data_dir = data_dir);
    let mode =
        |path: &std::path::Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("rogeriq.redb")), 0o600);
    assert_eq!(mode(&dir.join("admin.sock")), 0o600);
    drop(app);

    let kept = temp_dir();
    let file = kept.path().join("rogeriq.redb");
    std::fs::write(&file, b"").unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let app = TestApp::spawn_in(kept);
    assert_eq!(mode(&app.data_dir().join("rogeriq.redb")), 0o644);
}

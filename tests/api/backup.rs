//! Online backup, restore and export: `POST /api/v1/admin/backup`, and the binary's `backup`,
//! `restore` and `export` run as subprocesses beside a real server.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, ControlFlow};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use rogeriq::store::{Reader, tables};

use crate::helpers::*;

/// `rogeriq ARGS` with no `ROGERIQ_*` or `RIQ_*` variable of the test's environment.
fn rogeriq(args: &[&str]) -> Output {
    rogeriq_with(args, &[])
}

/// `rogeriq ARGS` with only the `ROGERIQ_*` and `RIQ_*` variables of `env`.
fn rogeriq_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rogeriq"));
    cmd.args(args);
    for (name, _) in std::env::vars_os() {
        let name = name.to_string_lossy();
        if name.starts_with("ROGERIQ_") || name.starts_with("RIQ_") {
            cmd.env_remove(name.as_ref());
        }
    }
    cmd.envs(env.iter().copied());
    cmd.output().expect("run rogeriq")
}

/// The settings that let a tool reach `app`, which holds its data file: its address and master
/// key, as `ROGERIQ_*` variables.
fn server_of(app: &TestApp) -> [(&'static str, &str); 2] {
    [
        ("ROGERIQ_LISTEN", listen_of(app)),
        ("ROGERIQ_MASTER_KEY", MASTER_KEY),
    ]
}

/// `server_of` with the variables that name the store where it is not a file in `--data-dir`
/// (a PostgreSQL database).
fn tool_env(app: &TestApp) -> Vec<(&'static str, String)> {
    let mut env: Vec<(&str, String)> = server_of(app)
        .iter()
        .map(|(name, value)| (*name, value.to_string()))
        .collect();
    env.extend(app.store_env());
    env
}

fn as_pairs<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter()
        .map(|(name, value)| (*name, value.as_str()))
        .collect()
}

/// What the file backup tests say on PostgreSQL.
const FILE_BACKUPS: &str = "file backup and restore are redb's; a PostgreSQL store is backed up \
     with pg_dump (a_postgres_store_points_backups_to_pg_dump)";

/// `host:port` of a test server.
fn listen_of(app: &TestApp) -> &str {
    app.base.trim_start_matches("http://")
}

/// The files a server's backups left in its `backups` folder.
fn server_backups_left(app: &TestApp) -> Vec<String> {
    match std::fs::read_dir(app.data_dir().join("backups")) {
        Ok(entries) => entries
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// `rogeriq backup --data-dir D --to TO` for the data folder `D` of `app`, which is running:
/// no address, no key (the tool reaches the server on its admin socket).
fn backup_beside(app: &TestApp, to: &Path) -> Output {
    rogeriq(&[
        "backup",
        "--data-dir",
        path_arg(app.data_dir()),
        "--to",
        path_arg(to),
    ])
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("a UTF-8 path")
}

#[track_caller]
fn succeeded(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{:?}: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("one JSON object on stdout")
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Every item of a list, following cursors where the list has them.
fn all_of(app: &TestApp, path: &str, key: &str) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let sep = if path.contains('?') { '&' } else { '?' };
        let page = match &cursor {
            Some(c) => format!("{path}{sep}limit=100&cursor={c}"),
            None => format!("{path}{sep}limit=100"),
        };
        let r = app.get(&page, key);
        assert_eq!(r.status, 200, "{page}: {}", r.body);
        out.extend(r.data().as_array().expect("a list").iter().cloned());
        match r.body["cursor"].as_str() {
            Some(c) if r.body["has_more"] == true => cursor = Some(c.to_string()),
            _ => return out,
        }
    }
}

fn id(v: &Value) -> String {
    v["id"].as_str().expect("an id").to_string()
}

/// One acknowledged write of a writer client: what it made, when it was sent and answered.
#[derive(Debug, Clone)]
struct Write {
    id: String,
    sent: Instant,
    acked: Instant,
}

/// A client that makes, over and over, a project, a conversation in it and a message in that:
/// each write depends on the one before, so a consistent snapshot holds a prefix of them.
fn writer(app: &TestApp, n: usize, stop: &AtomicBool, total: &AtomicUsize) -> Vec<Write> {
    let key = &app.admin_key;
    let mut writes: Vec<Write> = Vec::new();
    let mut timed = |make: &dyn Fn() -> Resp| {
        let sent = Instant::now();
        let r = make();
        assert!(r.status == 201, "{}", r.body);
        writes.push(Write {
            id: id(r.data()),
            sent,
            acked: Instant::now(),
        });
        total.fetch_add(1, Ordering::Relaxed);
        id(r.data())
    };
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        let project = timed(&|| {
            app.post(
                &format!("/api/v1/orgs/{}/projects", app.org_id),
                key,
                json!({"name": format!("Writer {n} round {round}")}),
            )
        });
        let conversation = timed(&|| {
            app.post(
                &format!("/api/v1/projects/{project}/conversations"),
                key,
                json!({"subject": format!("{n}/{round}")}),
            )
        });
        timed(&|| {
            app.post(
                &format!("/api/v1/projects/{project}/conversations/{conversation}/messages"),
                key,
                json!({"content": "hello"}),
            )
        });
        round += 1;
    }
    writes
}

fn wait_for(total: &AtomicUsize, at_least: usize) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while total.load(Ordering::Relaxed) < at_least {
        assert!(Instant::now() < deadline, "the writers stalled");
        thread::sleep(Duration::from_millis(5));
    }
}

/// What a restored server shows of the writers' objects: ids of projects, conversations and
/// messages, and the objects each `*.created` audit entry names.
fn restored_ids(app: &TestApp, org: &str, key: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut seen = BTreeSet::new();
    for project in all_of(app, &format!("/api/v1/orgs/{org}/projects"), key) {
        let p = id(&project);
        for conversation in all_of(app, &format!("/api/v1/projects/{p}/conversations"), key) {
            let c = id(&conversation);
            for message in all_of(
                app,
                &format!("/api/v1/projects/{p}/conversations/{c}/messages"),
                key,
            ) {
                seen.insert(id(&message));
            }
            seen.insert(c);
        }
        seen.insert(p);
    }
    let audited = all_of(app, &format!("/api/v1/orgs/{org}/audit-log"), key)
        .iter()
        .filter(|e| {
            ["project.created", "conversation.created", "message.created"]
                .contains(&e["action"].as_str().unwrap_or(""))
        })
        .map(|e| e["target_id"].as_str().expect("target").to_string())
        .collect();
    (seen, audited)
}

/// Every key of the owned table belongs to a project the projects table holds.
fn assert_no_orphans(app: &TestApp) {
    let orphans = app
        .store
        .read_blocking(|rx| {
            let mut projects = BTreeSet::new();
            rx.scan(
                tables::PROJECTS,
                (Bound::Unbounded, Bound::Unbounded),
                false,
                &mut |key, _| {
                    projects.insert(key.to_vec());
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            let mut orphans = 0;
            rx.scan(
                tables::OWNED,
                (Bound::Unbounded, Bound::Unbounded),
                false,
                &mut |key, _| {
                    if !projects.contains(&key[..32]) {
                        orphans += 1;
                    }
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok(orphans)
        })
        .unwrap();
    assert_eq!(orphans, 0, "owned entries without their project");
}

/// A backup, with when it was asked for and when it was made.
struct Taken {
    file: PathBuf,
    began: Instant,
    ended: Instant,
}

/// `writers` clients writing to `app` meanwhile, `take` makes backups; then each backup,
/// restored into a new data folder, holds exactly a prefix of each client's writes: everything
/// acknowledged before the backup began, nothing sent after it ended, no object without its
/// parent, and an audit entry for exactly the objects there.
fn backups_under_writers_restore_prefixes(
    app: TestApp,
    writers: usize,
    take: impl FnOnce(&TestApp, &dyn Fn(usize)) -> Vec<Taken>,
) {
    let app = Arc::new(app);
    let stop = Arc::new(AtomicBool::new(false));
    let total = Arc::new(AtomicUsize::new(0));
    let clients: Vec<_> = (0..writers)
        .map(|n| {
            let (app, stop, total) = (app.clone(), stop.clone(), total.clone());
            thread::spawn(move || writer(&app, n, &stop, &total))
        })
        .collect();
    // Waits until `more` further writes were acknowledged.
    let more_writes = |more: usize| wait_for(&total, total.load(Ordering::Relaxed) + more);
    let backups = take(&app, &more_writes);
    more_writes(40);
    stop.store(true, Ordering::Relaxed);
    let writes: Vec<Vec<Write>> = clients.into_iter().map(|c| c.join().unwrap()).collect();

    let org = app.org_id.clone();
    let key = app.admin_key.clone();
    for Taken { file, began, ended } in backups {
        let dir = temp_dir();
        let restored = succeeded(&rogeriq(&[
            "restore",
            "--data-dir",
            path_arg(dir.path()),
            "--from",
            path_arg(&file),
        ]));
        assert_eq!(restored["previous"], Value::Null);
        let copy = TestApp::spawn_in(dir);
        let (seen, audited) = restored_ids(&copy, &org, &key);
        let mut expected = BTreeSet::new();
        for (n, client) in writes.iter().enumerate() {
            let present: Vec<bool> = client.iter().map(|w| seen.contains(&w.id)).collect();
            let kept = present.iter().take_while(|p| **p).count();
            assert!(
                present[kept..].iter().all(|p| !p),
                "client {n}: not a prefix: {present:?}"
            );
            for (i, w) in client.iter().enumerate() {
                if w.acked < began {
                    assert!(
                        i < kept,
                        "client {n}: write {i} acknowledged before the backup"
                    );
                }
                if w.sent > ended {
                    assert!(i >= kept, "client {n}: write {i} sent after the backup");
                }
            }
            expected.extend(client[..kept].iter().map(|w| w.id.clone()));
        }
        assert_eq!(seen, expected, "objects no writer made");
        assert_eq!(audited, expected, "the audit log matches the objects");
        assert!(!expected.is_empty());
        assert_no_orphans(&copy);
        // The restored server takes writes too.
        copy.project_in(&org, &key, "After the restore");
    }
}

/// A backup taken through the API, then by the binary beside the server (given only the data
/// folder: it reaches the server on its admin socket), while 4 clients write, restores to a
/// prefix of the acknowledged writes.
#[test]
fn a_backup_under_four_writers_restores_a_prefix_of_the_acknowledged_writes() {
    if skipped_on_postgres(FILE_BACKUPS) {
        return;
    }
    backups_under_writers_restore_prefixes(TestApp::spawn(), 4, |app, more_writes| {
        more_writes(40);
        let began = Instant::now();
        let r = app.post("/api/v1/admin/backup", MASTER_KEY, json!({}));
        let ended = Instant::now();
        assert_eq!(r.status, 201, "{}", r.body);
        let name = r.data()["name"].as_str().unwrap().to_string();
        assert!(
            name.starts_with("rogeriq-") && name.ends_with(".redb"),
            "{name}"
        );
        let file = app.data_dir().join("backups").join(&name);
        assert_eq!(
            r.data()["size"].as_u64(),
            Some(std::fs::metadata(&file).unwrap().len())
        );
        let by_api = Taken { file, began, ended };

        more_writes(40);
        let cli_file = app.data_dir().join("by-cli.redb");
        let began = Instant::now();
        let out = backup_beside(app, &cli_file);
        let ended = Instant::now();
        let summary = succeeded(&out);
        assert_eq!(summary["file"], path_arg(&cli_file));
        // The server holds the file alone, so the tool asked it, on its socket, and took its
        // file away.
        let socket = app.data_dir().join("admin.sock");
        assert_eq!(summary["server"], format!("unix:{}", socket.display()));
        assert_eq!(
            summary["size"].as_u64(),
            Some(std::fs::metadata(&cli_file).unwrap().len())
        );
        assert!(summary["entries"].as_u64() > Some(0), "{summary}");
        assert_eq!(server_backups_left(app), [name.as_str()]);
        vec![
            by_api,
            Taken {
                file: cli_file,
                began,
                ended,
            },
        ]
    });
}

/// An online backup needs no master key: a server run without one, in a data folder whose
/// socket path is too long for a socket address and where a crash left a stale socket, is
/// backed up under write load by `rogeriq backup` given only `--data-dir`, with no key
/// anywhere; the backup restores to a prefix of the acknowledged writes.
#[test]
fn a_server_without_a_master_key_is_backed_up_by_its_data_folder_alone() {
    if skipped_on_postgres(FILE_BACKUPS) {
        return;
    }
    let base = temp_dir();
    let data_dir = base.path().join("d".repeat(100));
    std::fs::create_dir(&data_dir).unwrap();
    assert!(data_dir.join("admin.sock").as_os_str().len() > 108);
    // What a killed server leaves behind (the path goes through the folder's descriptor).
    let stale = rogeriq::admin_socket::bind(&data_dir).unwrap();
    drop(stale);
    assert!(data_dir.join("admin.sock").exists());

    let dir = data_dir.clone();
    let app = TestApp::spawn_with(move |s| {
        s.data_dir = dir;
        s.master_key = String::new();
    });
    backups_under_writers_restore_prefixes(app, 2, |_, more_writes| {
        more_writes(30);
        let to = base.path().join("by-data-dir.redb");
        let began = Instant::now();
        let summary = succeeded(&rogeriq(&[
            "backup",
            "--data-dir",
            path_arg(&data_dir),
            "--to",
            path_arg(&to),
        ]));
        let ended = Instant::now();
        assert!(
            summary["server"].as_str().unwrap().starts_with("unix:"),
            "{summary}"
        );
        vec![Taken {
            file: to,
            began,
            ended,
        }]
    });
}

/// A restore refuses a data folder a server holds, and a damaged backup leaves the data file as
/// it was; a good one then replaces it and keeps the old one aside.
#[test]
fn a_restore_is_refused_beside_a_server_and_for_a_damaged_file() {
    if skipped_on_postgres(FILE_BACKUPS) {
        return;
    }
    let app = TestApp::spawn();
    let before = app.project("Before the backup");
    let backup = temp_dir();
    let good = backup.path().join("good.redb");
    succeeded(&backup_beside(&app, &good));
    // The target must not exist: a backup never overwrites.
    let again = backup_beside(&app, &good);
    assert!(
        stderr(&again).contains("already exists"),
        "{}",
        stderr(&again)
    );
    let after = app.project("After the backup");

    let refused = rogeriq(&[
        "restore",
        "--data-dir",
        path_arg(app.data_dir()),
        "--from",
        path_arg(&good),
    ]);
    assert_eq!(refused.status.code(), Some(3), "{}", stderr(&refused));
    assert!(stderr(&refused).contains("in use"), "{}", stderr(&refused));

    let (org, key) = (app.org_id.clone(), app.admin_key.clone());
    let dir = app.stop();
    let data_file = dir.path().join("rogeriq.redb");
    let original = std::fs::read(&data_file).unwrap();
    let listing = |dir: &Path| -> BTreeSet<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    };
    let files_before = listing(dir.path());

    // Damage in every page past the file header (damage to free pages alone would be harmless,
    // and is not looked for), and a file cut short.
    let bytes = std::fs::read(&good).unwrap();
    let mut damaged = bytes.clone();
    for page in damaged.chunks_mut(4096).skip(1) {
        for byte in page.iter_mut().skip(64).take(32) {
            *byte = !*byte;
        }
    }
    let cut = bytes[..bytes.len() / 2].to_vec();
    for (what, content) in [("damaged", damaged), ("cut", cut)] {
        let bad = backup.path().join(format!("{what}.redb"));
        std::fs::write(&bad, &content).unwrap();
        let out = rogeriq(&[
            "restore",
            "--data-dir",
            path_arg(dir.path()),
            "--from",
            path_arg(&bad),
        ]);
        assert_eq!(out.status.code(), Some(1), "{what}: {}", stderr(&out));
        assert!(
            stderr(&out).contains("not a usable backup"),
            "{}",
            stderr(&out)
        );
        assert!(
            std::fs::read(&data_file).unwrap() == original,
            "the data file changed"
        );
        assert_eq!(listing(dir.path()), files_before);
    }

    let restored = succeeded(&rogeriq(&[
        "restore",
        "--data-dir",
        path_arg(dir.path()),
        "--from",
        path_arg(&good),
    ]));
    let previous = restored["previous"].as_str().expect("kept aside");
    assert!(std::fs::read(previous).unwrap() == original);
    let app = TestApp::spawn_in(dir);
    let names: Vec<String> = all_of(&app, &format!("/api/v1/orgs/{org}/projects"), &key)
        .iter()
        .map(id)
        .collect();
    assert_eq!(names, [before], "the backup's projects, not {after}");
}

/// The JSON lines of `rogeriq export`, written beside a running server, are the organisation's
/// objects exactly as the API returns them, and all of them.
#[test]
fn an_export_reads_back_to_the_objects_the_api_returns() {
    let app = TestApp::spawn();
    let env = tool_env(&app);
    let key = app.admin_key.clone();
    let org = app.org_id.clone();
    let mut made: BTreeMap<String, &str> = BTreeMap::new();
    let mut post = |path: String, body: Value, kind: &'static str| -> String {
        let r = app.post(&path, &key, body);
        assert_eq!(r.status, 201, "{path}: {}", r.body);
        made.insert(id(r.data()), kind);
        id(r.data())
    };
    for n in 0..2 {
        let p = post(
            format!("/api/v1/orgs/{org}/projects"),
            json!({"name": format!("Export {n}")}),
            "project",
        );
        let pp = |rest: &str| format!("/api/v1/projects/{p}{rest}");
        let c = post(
            pp("/conversations"),
            json!({"subject": "Order"}),
            "conversation",
        );
        for text in ["Where is it?", "On its way"] {
            post(
                pp(&format!("/conversations/{c}/messages")),
                json!({"content": text}),
                "message",
            );
        }
        post(
            pp("/contacts"),
            json!({"email": format!("ann{n}@example.com"), "metadata": {"plan": "pro"}}),
            "contact",
        );
        post(
            pp("/kb/articles"),
            json!({"title": "Refunds", "content": "Within 30 days.", "status": "published"}),
            "kb_article",
        );
        let form = post(pp("/forms"), json!({"name": "Contact"}), "form");
        let submitted = app.request(
            Method::POST,
            &format!("/api/f/{form}"),
            None,
            Some(json!({"name": "Ann", "email": "ann@example.com", "message": "Hi"})),
        );
        assert_eq!(submitted.status, 200, "{}", submitted.body);
        post(pp("/beacons"), json!({"form_id": form}), "beacon");
        let widget = app.patch(&pp("/widget/config"), &key, json!({"theme": "dark"}));
        assert_eq!(widget.status, 200, "{}", widget.body);
        // Last, and for an event nothing fires: no delivery is made while the test reads.
        post(
            pp("/webhooks"),
            json!({"url": "https://hooks.example.com/x", "events": ["agent.escalated"]}),
            "webhook",
        );
    }
    let (other_org, other_key) = app.new_org("Other", &["admin"]);
    app.project_in(&other_org, &other_key, "Not exported");

    let out = rogeriq_with(
        &[
            "export",
            "--data-dir",
            path_arg(app.data_dir()),
            "--org",
            &org,
        ],
        &as_pairs(&env),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    // It read a backup of the server, and removed it.
    assert_eq!(server_backups_left(&app), Vec::<String>::new());
    let lines: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect();
    assert_eq!(lines[0]["kind"], "organisation");
    assert_eq!(lines[0]["data"]["id"], org.as_str());

    let mut exported: BTreeMap<String, String> = BTreeMap::new();
    let mut current_project = String::new();
    for line in &lines[1..] {
        let kind = line["kind"].as_str().unwrap();
        let data = &line["data"];
        if kind == "project" {
            current_project = id(data);
        } else {
            assert_eq!(line["project_id"], current_project.as_str(), "{line}");
        }
        let p = &current_project;
        let pp = |rest: &str| format!("/api/v1/projects/{p}{rest}");
        let get = |path: String| {
            let r = app.get(&path, &key);
            assert_eq!(r.status, 200, "{path}: {}", r.body);
            r.data().clone()
        };
        let find = |path: String| {
            all_of(&app, &path, &key)
                .into_iter()
                .find(|v| v["id"] == data["id"])
                .unwrap_or_else(|| panic!("{path} lacks {data}"))
        };
        let from_api = match kind {
            "project" => get(format!("/api/v1/orgs/{org}/projects/{}", id(data))),
            "conversation" => get(pp(&format!("/conversations/{}", id(data)))),
            "message" => find(pp(&format!(
                "/conversations/{}/messages",
                data["conversation_id"].as_str().unwrap()
            ))),
            "contact" => get(pp(&format!("/contacts/{}", id(data)))),
            "kb_article" => get(pp(&format!("/kb/articles/{}", id(data)))),
            "form" => get(pp(&format!("/forms/{}", id(data)))),
            "form_submission" => find(pp(&format!(
                "/forms/{}/submissions",
                data["form_id"].as_str().unwrap()
            ))),
            "beacon" => get(pp(&format!("/beacons/{}", id(data)))),
            "widget_config" => get(pp("/widget/config")),
            "webhook" => get(pp(&format!("/webhooks/{}", id(data)))),
            other => panic!("no object of kind {other} was made: {line}"),
        };
        assert_eq!(data, &from_api, "{kind}");
        // One-per-project objects have no id of their own.
        let object = data["id"]
            .as_str()
            .map_or_else(|| format!("{kind} of {p}"), String::from);
        exported.insert(object, kind.to_string());
    }
    for (made_id, kind) in &made {
        assert_eq!(exported.get(made_id).map(String::as_str), Some(*kind));
    }
    let count = |kind: &str| exported.values().filter(|k| *k == kind).count();
    assert_eq!(
        (
            count("project"),
            count("form_submission"),
            count("widget_config")
        ),
        (2, 2, 2)
    );

    // To a file, with a summary; an unknown organisation is an error.
    let file = app.data_dir().join("export.jsonl");
    let summary = succeeded(&rogeriq_with(
        &[
            "export",
            "--data-dir",
            path_arg(app.data_dir()),
            "--org",
            &org,
            "--out",
            path_arg(&file),
        ],
        &as_pairs(&env),
    ));
    assert_eq!(summary["projects"], 2);
    // Beside a server it read the server's backup of its file, asked on its admin socket; a
    // database, directly.
    let socket = app.data_dir().join("admin.sock");
    let by_server = if on_postgres() {
        Value::Null
    } else {
        json!(format!("unix:{}", socket.display()))
    };
    assert_eq!(summary["server"], by_server);
    assert_eq!(
        std::fs::read_to_string(&file).unwrap().lines().count(),
        lines.len()
    );
    let unknown = rogeriq_with(
        &[
            "export",
            "--data-dir",
            path_arg(app.data_dir()),
            "--org",
            "org_000000000000",
        ],
        &as_pairs(&env),
    );
    assert!(!unknown.status.success());
    assert!(
        stderr(&unknown).contains("not found"),
        "{}",
        stderr(&unknown)
    );
}

/// The tools find the store, and the server that holds it, as `serve` does: `--data-dir`,
/// `--listen`, `ROGERIQ_*` variables, or the settings file (`--config` or `ROGERIQ_CONFIG`); and
/// they take no client option.
#[test]
fn the_tools_find_the_store_like_serve() {
    if skipped_on_postgres(FILE_BACKUPS) {
        return;
    }
    let app = TestApp::spawn();
    let data_dir = path_arg(app.data_dir());
    let out = temp_dir();
    let by_env = out.path().join("by-env.redb");
    let [listen, master] = server_of(&app);
    succeeded(&rogeriq_with(
        &["backup", "--to", path_arg(&by_env)],
        &[("ROGERIQ_DATA_DIR", data_dir), listen, master],
    ));
    let by_listen_flag = out.path().join("by-listen-flag.redb");
    succeeded(&rogeriq_with(
        &[
            "backup",
            "--data-dir",
            data_dir,
            "--listen",
            listen_of(&app),
            "--to",
            path_arg(&by_listen_flag),
        ],
        &[master],
    ));
    let config = out.path().join("rogeriq.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\nlisten = {:?}\nmaster_key = {MASTER_KEY:?}\n",
            data_dir,
            listen_of(&app)
        ),
    )
    .unwrap();
    let exported = rogeriq_with(
        &["export", "--org", &app.org_id],
        &[("ROGERIQ_CONFIG", path_arg(&config))],
    );
    assert!(exported.status.success(), "{}", stderr(&exported));
    assert!(String::from_utf8_lossy(&exported.stdout).contains(&app.org_id));
    let by_flag = out.path().join("by-flag.redb");
    succeeded(&rogeriq(&[
        "backup",
        "--config",
        path_arg(&config),
        "--to",
        path_arg(&by_flag),
    ]));
    // Without any of them, the default ./data of the working folder, which has no store here.
    let none = Command::new(env!("CARGO_BIN_EXE_rogeriq"))
        .args(["backup", "--to", "none.redb"])
        .current_dir(out.path())
        .env_remove("ROGERIQ_DATA_DIR")
        .env_remove("ROGERIQ_CONFIG")
        .output()
        .unwrap();
    assert!(
        stderr(&none).contains("no data file at ./data"),
        "{}",
        stderr(&none)
    );
    assert!(!none.status.success());
    let client_option = rogeriq(&["backup", "--json", "--data-dir", data_dir, "--to", "x"]);
    assert_eq!(
        client_option.status.code(),
        Some(1),
        "{}",
        stderr(&client_option)
    );
}

/// Beside a running server that the tool cannot ask (its admin socket out of reach, and no
/// master key in its settings, nothing listening at the address, or another server there),
/// `backup` and `export` fail with what to do, and leave nothing behind; without a server,
/// they read the file themselves.
#[test]
fn beside_a_server_it_cannot_ask_a_backup_fails_clearly() {
    if skipped_on_postgres(FILE_BACKUPS) {
        return;
    }
    let app = TestApp::spawn();
    app.project("Kept");
    // A server whose admin socket the tool cannot reach (another user's, or gone): HTTP with
    // the master key is the way left.
    std::fs::remove_file(app.data_dir().join("admin.sock")).unwrap();
    let data_dir = path_arg(app.data_dir());
    let out = temp_dir();
    let to = out.path().join("b.redb");
    let backup = |env: &[(&str, &str)]| {
        let result = rogeriq_with(
            &["backup", "--data-dir", data_dir, "--to", path_arg(&to)],
            env,
        );
        assert_eq!(result.status.code(), Some(1), "{}", stderr(&result));
        stderr(&result)
    };

    let no_key = backup(&[("ROGERIQ_LISTEN", listen_of(&app))]);
    assert!(
        no_key.contains("held by a running rogeriq server") && no_key.contains("no master key"),
        "{no_key}"
    );
    assert!(no_key.contains("ROGERIQ_MASTER_KEY"), "{no_key}");

    // A port nobody listens on: one just taken and given back.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .to_string();
    let unreachable = backup(&[
        ("ROGERIQ_LISTEN", &closed),
        ("ROGERIQ_MASTER_KEY", MASTER_KEY),
    ]);
    assert!(
        unreachable.contains("held by a running rogeriq server")
            && unreachable.contains(&format!("asking the server at http://{closed}"))
            && unreachable.contains("--listen"),
        "{unreachable}"
    );

    let wrong_key = backup(&[
        ("ROGERIQ_LISTEN", listen_of(&app)),
        ("ROGERIQ_MASTER_KEY", "not-the-master-key-0000"),
    ]);
    assert!(wrong_key.contains("HTTP 401"), "{wrong_key}");

    // Another server at the address: its backup is of another store, and is refused.
    let other = TestApp::spawn();
    let elsewhere = backup(&server_of(&other));
    assert!(elsewhere.contains("another data folder"), "{elsewhere}");

    let export = rogeriq_with(
        &["export", "--data-dir", data_dir, "--org", &app.org_id],
        &[
            ("ROGERIQ_LISTEN", &closed),
            ("ROGERIQ_MASTER_KEY", MASTER_KEY),
        ],
    );
    assert_eq!(export.status.code(), Some(1), "{}", stderr(&export));
    assert!(
        stderr(&export).contains("`rogeriq export`"),
        "{}",
        stderr(&export)
    );
    assert!(!to.exists());
    assert_eq!(server_backups_left(&app), Vec::<String>::new());

    // Stopped, the server's file is read directly: no address or key needed.
    let (org, dir) = (app.org_id.clone(), app.stop());
    let data_dir = path_arg(dir.path());
    let summary = succeeded(&rogeriq(&[
        "backup",
        "--data-dir",
        data_dir,
        "--to",
        path_arg(&to),
    ]));
    assert_eq!(summary["server"], Value::Null);
    let exported = rogeriq(&["export", "--data-dir", data_dir, "--org", &org]);
    assert!(
        String::from_utf8_lossy(&exported.stdout).contains("Kept"),
        "{}",
        stderr(&exported)
    );
}

/// A PostgreSQL store is backed up and restored with PostgreSQL's own tools: `backup`,
/// `restore` and `POST /api/v1/admin/backup` say so in one line and touch nothing.
#[test]
fn a_postgres_store_points_backups_to_pg_dump() {
    if skipped_on_redb("only a PostgreSQL store refuses file backups") {
        return;
    }
    let app = TestApp::spawn();
    let env = tool_env(&app);
    let out = temp_dir();
    let to = out.path().join("b.redb");
    for args in [
        ["backup", "--to", path_arg(&to)],
        ["restore", "--from", path_arg(&to)],
    ] {
        let refused = rogeriq_with(&args, &as_pairs(&env));
        assert_eq!(refused.status.code(), Some(1), "{}", stderr(&refused));
        let said = stderr(&refused);
        assert_eq!(said.lines().count(), 1, "{said}");
        assert!(
            said.contains("pg_dump") && said.contains("pg_restore"),
            "{said}"
        );
    }
    assert!(!to.exists());
    let refused = app.request(Method::POST, "/api/v1/admin/backup", Some(MASTER_KEY), None);
    refused.assert_error(400, "BAD_REQUEST");
    assert!(refused.body["error"].as_str().unwrap().contains("pg_dump"));
}

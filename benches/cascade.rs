//! Project deletion cost: deletes a project of N children on a store that also holds M records
//! of other projects, for several N and M. The cascade is a range delete over the project's key
//! prefix, so its time should follow N and stay flat in M.
//!
//! `cargo bench --bench cascade` (or `make bench`) runs the full sizes: N = 100 000 beside
//! M = 1 000 000. Run without `--bench` (as `cargo test --all-targets` does) it runs the same
//! code at 1/100 scale, as a smoke test.

use std::time::Instant;

use rogeriq::error::ApiResult;
use rogeriq::org_owned::audit::Actor;
use rogeriq::org_owned::org::{self, OrgCreate};
use rogeriq::org_owned::project::{self, ProjectCreate};
use rogeriq::project_owned::contact::{Contact, Email};
use rogeriq::project_owned::{self, IndexEntry, Kind, ProjectScope};
use rogeriq::store::{Store, tables};
use rogeriq::timestamp::Timestamp;

/// Children written per write transaction while loading.
const LOAD_BATCH: usize = 20_000;

struct Scenario {
    background: usize,
    deleted: usize,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { 1 } else { 100 };
    let scenarios = [
        Scenario {
            background: 1_000_000,
            deleted: 100_000,
        },
        Scenario {
            background: 100_000,
            deleted: 100_000,
        },
        Scenario {
            background: 1_000_000,
            deleted: 10_000,
        },
    ];
    println!(
        "project cascade delete ({})",
        if full {
            "full size"
        } else {
            "smoke size, 1/100"
        }
    );
    println!(
        "{:>14} {:>14} {:>12} {:>14}",
        "other records", "deleted", "delete ms", "µs per child"
    );
    for s in &scenarios {
        let (background, deleted) = (s.background / scale, s.deleted / scale);
        match run(background, deleted) {
            Ok(ms) => println!(
                "{background:>14} {deleted:>14} {ms:>12.1} {:>14.2}",
                ms * 1000.0 / deleted as f64
            ),
            Err(err) => {
                eprintln!("scenario failed: {err}");
                std::process::exit(1);
            }
        }
    }
    if let Some(peak) = peak_rss_kib() {
        println!("peak resident memory: {} MiB", peak / 1024);
    }
}

/// Builds a store with `background` children spread over ten projects plus one project of
/// `deleted` children, then times the deletion of that project (one durable commit).
fn run(background: usize, deleted: usize) -> ApiResult<f64> {
    let dir = tempfile::tempdir().map_err(rogeriq::error::ApiError::internal)?;
    let store =
        Store::open(&dir.path().join("bench.redb")).map_err(rogeriq::error::ApiError::internal)?;
    let actor = Actor::master(None);
    let org_id = store.write_blocking({
        let actor = actor.clone();
        move |tx| {
            Ok(org::create(
                tx,
                &actor,
                OrgCreate {
                    name: "bench".into(),
                },
            )?
            .id)
        }
    })?;
    let mut target = None;
    for (i, size) in std::iter::repeat_n(background / 10, 10)
        .chain([deleted])
        .enumerate()
    {
        let (org, actor) = (org_id.clone(), actor.clone());
        let scope = store.write_blocking(move |tx| {
            let input =
                ProjectCreate::from_json(serde_json::json!({"name": format!("project {i}")}))?;
            let created = project::create(tx, &actor, &org, input)?;
            ProjectScope::resolve(tx, &org, &created.id)
        })?;
        load_children(&store, &scope, size)?;
        target = Some(scope);
    }
    let target = target.expect("the deleted project was created last");
    let started = Instant::now();
    let removed = store.write_blocking(move |tx| {
        project_owned::registry::delete_project(tx, &actor, &org_id, &target.project_id)
    })?;
    let elapsed = started.elapsed().as_secs_f64() * 1000.0;
    let counted: u64 = removed.iter().map(|(_, n)| n).sum();
    assert_eq!(counted, deleted as u64, "cascade removed {removed:?}");
    store
        .close(std::time::Duration::from_secs(5))
        .map_err(rogeriq::error::ApiError::internal)?;
    Ok(elapsed)
}

/// Writes `count` contacts, with their index entries, into `scope` in large transactions.
fn load_children(store: &Store, scope: &ProjectScope, count: usize) -> ApiResult<()> {
    let mut written = 0;
    while written < count {
        let batch = LOAD_BATCH.min(count - written);
        let scope = scope.clone();
        store.write_blocking(move |tx| {
            for _ in 0..batch {
                let contact = sample_contact(&scope.project_id, tx.next_seq());
                tx.put(
                    tables::OWNED,
                    &scope.key(Contact::TAG, contact.id.as_bytes()),
                    &contact,
                )?;
                for entry in contact.index()? {
                    if let IndexEntry::Key { tag, key, value } = entry {
                        tx.put_raw(tables::OWNED, &scope.key(tag, &key), &value)?;
                    }
                }
            }
            Ok(())
        })?;
        written += batch;
    }
    Ok(())
}

fn sample_contact(project_id: &str, seq: u64) -> Contact {
    let id = project_owned::new_id::<Contact>();
    Contact {
        email: Email::try_from(format!("{id}@example.com")).ok(),
        name: Some(format!("Customer {seq}")),
        phone: Some("+15551234567".into()),
        external_id: Some(format!("user-{seq}")),
        company: Some("Example Inc".into()),
        job_title: None,
        metadata: r#"{"plan":"pro","seats":3}"#.into(),
        last_seen_at: None,
        created_at: Timestamp::now(),
        project_id: project_id.to_string(),
        id,
        seq,
    }
}

fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

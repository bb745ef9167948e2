//! A model test of the store beneath the API: seeded random sequences of project creates,
//! updates and deletes across three organisations, with raw records written under project
//! prefixes of the owned table, checked after every step against an in-memory model. Above all:
//! a project delete removes exactly its own prefix and nothing else, byte for byte.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, ControlFlow};

use rogeriq::error::ErrorCode;
use rogeriq::model::audit::Actor;
use rogeriq::model::org::{self, OrgCreate};
use rogeriq::model::project::{self, Domain, ProjectCreate, ProjectUpdate, Slug};
use rogeriq::store::{Reader, Store, Table, keys, tables};
use rogeriq::validate::Patch;

type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// xorshift64*: small, seeded, deterministic.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn bytes(&mut self, max_len: usize) -> Vec<u8> {
        let len = self.below(max_len + 1);
        (0..len).map(|_| self.next() as u8).collect()
    }
}

#[derive(Debug, Clone, PartialEq)]
struct ModelProject {
    org: String,
    name: String,
    slug: Slug,
    domain: Option<Domain>,
}

#[derive(Default)]
struct Model {
    projects: BTreeMap<String, ModelProject>,
    owned: Entries,
}

impl Model {
    fn slug_taken(&self, org: &str, slug: &Slug) -> bool {
        self.projects
            .values()
            .any(|p| p.org == org && p.slug == *slug)
    }
}

fn domain(text: &str) -> Domain {
    Domain::try_from(text.to_string()).unwrap()
}

fn actor() -> Actor {
    Actor {
        api_key_id: Some("key_modeltest0001".into()),
        request_id: None,
    }
}

fn scan(store: &Store, table: Table) -> Entries {
    store
        .read_blocking(|rx| {
            let mut out = Entries::new();
            rx.scan(
                table,
                (Bound::Unbounded, Bound::Unbounded),
                false,
                &mut |k, v| {
                    out.insert(k.to_vec(), v.to_vec());
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok(out)
        })
        .expect("scan")
}

/// The store agrees with the model: the owned table exactly, and the three project tables.
fn check(store: &Store, model: &Model, step: usize) {
    assert!(
        scan(store, tables::OWNED) == model.owned,
        "step {step}: owned table differs from the model"
    );

    let index: BTreeMap<Vec<u8>, Vec<u8>> = model
        .projects
        .iter()
        .map(|(id, p)| (id.as_bytes().to_vec(), p.org.as_bytes().to_vec()))
        .collect();
    assert_eq!(
        scan(store, tables::PROJECT_INDEX),
        index,
        "step {step}: project index"
    );

    let slugs: BTreeMap<Vec<u8>, Vec<u8>> = model
        .projects
        .iter()
        .map(|(id, p)| {
            (
                keys::org_child(&p.org, p.slug.as_str()),
                id.as_bytes().to_vec(),
            )
        })
        .collect();
    assert_eq!(
        scan(store, tables::PROJECT_SLUGS),
        slugs,
        "step {step}: slug table"
    );

    let records: BTreeSet<Vec<u8>> = scan(store, tables::PROJECTS).into_keys().collect();
    let expected: BTreeSet<Vec<u8>> = model
        .projects
        .iter()
        .map(|(id, p)| keys::org_child(&p.org, id))
        .collect();
    assert_eq!(records, expected, "step {step}: project records");

    let orgs: BTreeSet<&String> = model.projects.values().map(|p| &p.org).collect();
    for org_id in orgs {
        let org_id = org_id.clone();
        let stored = store
            .read_blocking(move |rx| project::list(rx, &org_id))
            .unwrap();
        for p in stored {
            let m = &model.projects[&p.id];
            let got = ModelProject {
                org: p.org_id,
                name: p.name,
                slug: p.slug,
                domain: p.domain,
            };
            assert_eq!(&got, m, "step {step}: project {}", p.id);
        }
    }
}

/// A 16-byte id next to `id` in byte order that names no project (a boundary decoy).
fn neighbour(id: &str) -> String {
    let mut bytes = id.as_bytes().to_vec();
    let last = bytes.last_mut().unwrap();
    *last = if *last == b'z' {
        b'y'
    } else if *last == b'9' {
        b'8'
    } else {
        *last + 1
    };
    String::from_utf8(bytes).unwrap()
}

const NAMES: &[&str] = &[
    "Alpha",
    "alpha!",
    "Beta",
    "Help Desk",
    "help-desk",
    "Gamma 2",
    "Delta",
    "Omega",
];
const SLUGS: &[&str] = &["alpha", "beta", "custom-1", "zz"];
const DOMAINS: &[Option<&str>] = &[None, Some("a.io"), Some("support.b.com")];
/// Kind tags at both ends of the byte range, and in between.
const TAGS: &[u8] = &[0x00, 0x01, 0x02, 0x7f, 0xfe, 0xff];

fn run(seed: u64, steps: usize) {
    let dir = crate::helpers::temp_dir();
    let store = Store::open(&dir.path().join("model.redb")).expect("open store");
    let mut rng = Rng(seed);
    let mut model = Model::default();

    let orgs: Vec<String> = (0..3)
        .map(|i| {
            let input = OrgCreate {
                name: format!("Org {i}"),
            };
            store
                .write_blocking(move |tx| org::create(tx, &Actor::master(None), input))
                .unwrap()
                .id
        })
        .collect();
    // Prefixes that belong to no project: one per org, and neighbours of real project ids.
    let mut deletes_with_records = 0;
    let mut decoys: Vec<(String, String)> = orgs
        .iter()
        .map(|o| (o.clone(), "prj_zzzzzzzzzzzz".to_string()))
        .collect();

    for step in 0..steps {
        let ids: Vec<String> = model.projects.keys().cloned().collect();
        let roll = rng.below(100);
        if roll < 25 || ids.is_empty() {
            // Create, sometimes with an explicit slug; a taken slug must be refused.
            let org = rng.pick(&orgs).clone();
            let name = rng.pick(NAMES).to_string();
            let slug = if rng.below(3) == 0 {
                Slug::try_from(rng.pick(SLUGS).to_string()).unwrap()
            } else {
                project::derive_slug(&name).unwrap()
            };
            let domain = rng.pick(DOMAINS).map(domain);
            let taken = model.slug_taken(&org, &slug);
            let input = ProjectCreate {
                name: name.clone(),
                slug: slug.clone(),
                domain: domain.clone(),
            };
            let (o, a) = (org.clone(), actor());
            let result = store.write_blocking(move |tx| project::create(tx, &a, &o, input));
            match result {
                Ok(p) => {
                    assert!(!taken, "step {step}: slug {slug} reused in {org}");
                    decoys.push((org.clone(), neighbour(&p.id)));
                    model.projects.insert(
                        p.id,
                        ModelProject {
                            org,
                            name,
                            slug,
                            domain,
                        },
                    );
                }
                Err(err) => {
                    assert!(taken, "step {step}: create failed: {err}");
                    assert_eq!(err.code(), ErrorCode::SlugConflict);
                }
            }
        } else if roll < 40 {
            // Update name and/or domain.
            let id = rng.pick(&ids).clone();
            let org = model.projects[&id].org.clone();
            let name = (rng.below(2) == 0).then(|| rng.pick(NAMES).to_string());
            let domain = match rng.below(3) {
                0 => Patch::Absent,
                1 => Patch::Null,
                _ => Patch::Set(domain(rng.pick(&DOMAINS[1..]).unwrap())),
            };
            let input = ProjectUpdate {
                name: name.clone(),
                domain: domain.clone(),
                agent_mode: None,
                ai_model: Patch::Absent,
            };
            let (o, i, a) = (org.clone(), id.clone(), actor());
            store
                .write_blocking(move |tx| project::update(tx, &a, &o, &i, input))
                .unwrap();
            let m = model.projects.get_mut(&id).unwrap();
            if let Some(name) = name {
                m.name = name;
            }
            if let Some(domain) = domain.into_change() {
                m.domain = domain;
            }
        } else if roll < 52 {
            // Delete: exactly the project's prefix goes, everything else stays byte for byte.
            let id = rng.pick(&ids).clone();
            let org = model.projects[&id].org.clone();
            let prefix = keys::project_prefix(&org, &id);
            let before = scan(&store, tables::OWNED);
            deletes_with_records += usize::from(before.keys().any(|k| k.starts_with(&prefix)));
            let (o, i, a) = (org.clone(), id.clone(), actor());
            store
                .write_blocking(move |tx| project::delete(tx, &a, &o, &i))
                .unwrap();
            let after = scan(&store, tables::OWNED);
            assert!(
                after.keys().all(|k| !k.starts_with(&prefix)),
                "step {step}: records left under the deleted prefix"
            );
            let outside: Entries = before
                .into_iter()
                .filter(|(k, _)| !k.starts_with(&prefix))
                .collect();
            assert!(
                after == outside,
                "step {step}: a delete touched records outside its project"
            );
            model.projects.remove(&id);
            model.owned.retain(|k, _| !k.starts_with(&prefix));
            // The project is gone for every look-up.
            let (o, i) = (org.clone(), id.clone());
            let err = store
                .read_blocking(move |rx| project::resolve(rx, &o, &i))
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::ProjectNotFound);
        } else if roll < 55 {
            // Deleting a project that does not exist (or another org's) changes nothing.
            let id = rng.pick(&ids).clone();
            let owner = model.projects[&id].org.clone();
            let stranger = orgs.iter().find(|o| **o != owner).unwrap().clone();
            let a = actor();
            let err = store
                .write_blocking(move |tx| project::delete(tx, &a, &stranger, &id))
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::ApiKeyProjectMismatch);
            let (o, a) = (owner.clone(), actor());
            let err = store
                .write_blocking(move |tx| project::delete(tx, &a, &o, "prj_doesnotexist"))
                .unwrap_err();
            assert_eq!(err.code(), ErrorCode::ProjectNotFound);
        } else {
            // A raw owned record under a live project, or under a decoy prefix.
            let (org, prj) = if rng.below(4) == 0 {
                rng.pick(&decoys).clone()
            } else {
                let id = rng.pick(&ids).clone();
                (model.projects[&id].org.clone(), id)
            };
            let mut key = keys::project_prefix(&org, &prj);
            key.push(*rng.pick(TAGS));
            key.extend(rng.bytes(6));
            let value = if rng.below(5) == 0 {
                b"v".to_vec()
            } else {
                rng.bytes(12)
            };
            let (k, v) = (key.clone(), value.clone());
            store
                .write_blocking(move |tx| tx.put_raw(tables::OWNED, &k, &v))
                .unwrap();
            model.owned.insert(key, value);
        }
        check(&store, &model, step);
    }

    assert!(
        deletes_with_records >= 3,
        "seed {seed}: too few deletes had records to remove"
    );

    // Finally delete everything that is left; only decoy records remain.
    for (id, p) in std::mem::take(&mut model.projects) {
        let a = actor();
        store
            .write_blocking(move |tx| project::delete(tx, &a, &p.org, &id))
            .unwrap();
    }
    let decoy_prefixes: Vec<Vec<u8>> = decoys
        .iter()
        .map(|(o, p)| keys::project_prefix(o, p))
        .collect();
    model
        .owned
        .retain(|k, _| decoy_prefixes.iter().any(|d| k.starts_with(d)));
    check(&store, &model, steps);
    rogeriq::server::close_store(store);
}

#[test]
fn project_deletes_remove_exactly_their_prefix() {
    // Each seed has its own store; they run side by side (the steps wait on disk syncs).
    let runs: Vec<_> = [0x9E37_79B9_7F4A_7C15, 42, 7]
        .into_iter()
        .map(|seed| std::thread::spawn(move || run(seed, 100)))
        .collect();
    for r in runs {
        if let Err(panic) = r.join() {
            std::panic::resume_unwind(panic);
        }
    }
}

#[test]
fn the_rng_is_deterministic() {
    let (mut a, mut b) = (Rng(5), Rng(5));
    let xs: Vec<u64> = (0..5).map(|_| a.next()).collect();
    let ys: Vec<u64> = (0..5).map(|_| b.next()).collect();
    assert_eq!(xs, ys);
    assert_ne!(xs[0], xs[1]);
}

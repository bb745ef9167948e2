//! A model test of the store beneath the API: seeded random sequences of real operations —
//! project creates, updates and deletes, and the create, update, delete, publish and archive
//! operations of every project-owned kind — across three organisations, checked after every
//! step against an in-memory model. After every step:
//! - every record is exactly what the model holds (its wire view, timestamps aside);
//! - the index entries and counters (orderings, look-ups, search postings and statistics) are
//!   exactly those the stored records imply, nothing more, nothing less;
//! - the records of public kinds, and only those, are found by id alone (`public_ids`);
//! - a project delete removed exactly its own prefix and left everything else byte for byte;
//! - every webhook outbox entry has its due entry and belongs to an active webhook of its
//!   project, and its event names a record of that project.
//!
//! The steps and the checks serve the power-cut test too (`crash.rs`), where a write may be
//! refused: a step then ends early with `Refused`, its model unchanged.

use std::collections::{BTreeMap, BTreeSet};
use std::ops::{Bound, ControlFlow};
use std::sync::LazyLock;
use std::time::Duration;

use rogeriq::codec;
use rogeriq::config::{Settings, WebhookSettings};
use rogeriq::error::{ApiResult, ErrorCode};
use rogeriq::ids::ID_LEN;
use rogeriq::org_owned::audit::Actor;
use rogeriq::org_owned::org::{self, OrgCreate};
use rogeriq::org_owned::project::{self, Domain, ProjectCreate, ProjectUpdate, Slug};
use rogeriq::project_owned::beacon::Beacon;
use rogeriq::project_owned::contact::Contact;
use rogeriq::project_owned::conversation::Conversation;
use rogeriq::project_owned::form::Form;
use rogeriq::project_owned::kb::{self, Article};
use rogeriq::project_owned::message::{self, MessageCreate};
use rogeriq::project_owned::webhooks::outbox::{self, PendingDelivery};
use rogeriq::project_owned::webhooks::webhook::Webhook;
use rogeriq::project_owned::{
    self, FIRST_INDEX_TAG, Id, IndexEntry, InputSettings, Kind, ProjectScope, Routed, routed,
};
use rogeriq::store::{Reader, Store, Table, Tx, layout, tables};
use rogeriq::validate::Patch;
use serde_json::{Value, json};

use crate::helpers::{Rng, org_id_of, project_id_of};

pub type Entries = BTreeMap<Vec<u8>, Vec<u8>>;

/// A write the store refused with `STORAGE_UNAVAILABLE`: the step ended there, its model
/// unchanged. `project` is the project it worked in (`None`: the organisation, for a project
/// create or a refused look-up), whose model a test adopts from the store if the write turns
/// out to have been made after all.
#[derive(Debug)]
pub struct Refused {
    pub project: Option<String>,
}

/// The result of a write of a step.
pub trait Acked<T> {
    /// Its value, or `Refused` when the store refused it; any other error is a failure of the
    /// test.
    fn acked(self, project: &str) -> Result<T, Refused>;
    /// Its result, unless the store refused it.
    fn settled(self, project: Option<&str>) -> Result<ApiResult<T>, Refused>;
}

impl<T> Acked<T> for ApiResult<T> {
    #[track_caller]
    fn acked(self, project: &str) -> Result<T, Refused> {
        match self {
            Ok(value) => Ok(value),
            Err(err) if err.code() == ErrorCode::StorageUnavailable => Err(Refused {
                project: Some(project.to_string()),
            }),
            Err(err) => panic!("a write failed: {err}"),
        }
    }

    fn settled(self, project: Option<&str>) -> Result<ApiResult<T>, Refused> {
        match self {
            Err(err) if err.code() == ErrorCode::StorageUnavailable => Err(Refused {
                project: project.map(str::to_string),
            }),
            result => Ok(result),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct ModelProject {
    org: String,
    name: String,
    slug: Slug,
    domain: Option<Domain>,
    /// `(record tag, id)` → the record's wire view without its timestamps.
    records: BTreeMap<(u8, String), Value>,
}

#[derive(Default)]
pub struct Model {
    projects: BTreeMap<String, ModelProject>,
}

impl Model {
    /// Takes from the store what it holds of `project` (its row and its records, or its
    /// absence), or with `None` of every project the model does not know: for a write that
    /// was refused and reached the disk all the same.
    pub fn adopt(&mut self, store: &Store, project: Option<&str>) {
        let index = scan(store, tables::PROJECT_INDEX);
        let ids: Vec<String> = match project {
            Some(id) => vec![id.to_string()],
            None => index
                .keys()
                .map(|id| String::from_utf8(id.clone()).unwrap())
                .filter(|id| !self.projects.contains_key(id))
                .collect(),
        };
        for id in ids {
            let Some(org) = index.get(id.as_bytes()) else {
                self.projects.remove(&id);
                continue;
            };
            let org = String::from_utf8(org.clone()).unwrap();
            let (o, i) = (org_id_of(&org), project_id_of(&id));
            let prefix = layout::project_prefix(&o, &i);
            let stored = store
                .read_blocking(move |rx| project::resolve(rx, &o, &i))
                .unwrap();
            let records = scan(store, tables::OWNED)
                .into_iter()
                .filter(|(key, _)| key.starts_with(&prefix) && key[prefix.len()] < FIRST_INDEX_TAG)
                .collect();
            let project = ModelProject {
                org,
                name: stored.name,
                slug: stored.slug,
                domain: stored.domain,
                records: views(&prefix, &records),
            };
            self.projects.insert(id, project);
        }
    }

    fn slug_taken(&self, org: &str, slug: &Slug) -> bool {
        self.projects
            .values()
            .any(|p| p.org == org && p.slug == *slug)
    }

    /// Ids of the records of kind `K` in `project`.
    fn ids_of<K: Kind>(&self, project: &str) -> Vec<String> {
        self.projects[project]
            .records
            .keys()
            .filter(|(tag, _)| *tag == K::TAG)
            .map(|(_, id)| id.clone())
            .collect()
    }

    fn put<K: Kind>(&mut self, project: &str, record: &K) {
        let view = comparable(serde_json::to_value(record.view()).unwrap());
        let records = &mut self.projects.get_mut(project).unwrap().records;
        records.insert((K::TAG, record.id().to_string()), view);
    }
}

/// The default settings' input rules.
pub fn input_settings() -> InputSettings<'static> {
    static WEBHOOKS: LazyLock<WebhookSettings> = LazyLock::new(|| Settings::default().webhooks);
    InputSettings {
        webhooks: &WEBHOOKS,
    }
}

/// A view without its timestamps, which follow the clock rather than the operations.
fn comparable(mut view: Value) -> Value {
    if let Some(fields) = view.as_object_mut() {
        fields.retain(|name, _| !name.ends_with("_at"));
    }
    view
}

fn domain(text: &str) -> Domain {
    Domain::try_from(text.to_string()).unwrap()
}

fn actor() -> Actor {
    Actor {
        api_key_id: Some("key_modeltest0001".into()),
        request_id: None,
        public: false,
    }
}

pub fn scan(store: &Store, table: Table) -> Entries {
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

/// Runs `op` in one write transaction inside project `project_id` of `org_id`.
fn in_project<T: Send + 'static>(
    store: &Store,
    org_id: &str,
    project_id: &str,
    op: impl FnOnce(&mut Tx<'_>, &ProjectScope, &Actor) -> ApiResult<T> + Clone + Send + 'static,
) -> ApiResult<T> {
    let (org_id, project_id) = (org_id_of(org_id), project_id_of(project_id));
    store.write_blocking(move |tx| {
        let scope = ProjectScope::resolve(tx, &org_id, &project_id)?;
        op(tx, &scope, &actor())
    })
}

/// What the records under one project prefix imply: index entries by key, counters summed.
fn implied_index(prefix: &[u8], records: &Entries) -> Entries {
    let mut implied = Entries::new();
    let mut counters: BTreeMap<Vec<u8>, u64> = BTreeMap::new();
    for (key, value) in records {
        let kind = project_owned::registry::kind_of_tag(key[prefix.len()])
            .expect("a registered record tag");
        for entry in (kind.index_of)(value).expect("record decodes") {
            let mut full = prefix.to_vec();
            match entry {
                IndexEntry::Key { tag, key, value } => {
                    full.push(tag);
                    full.extend(key);
                    assert!(
                        implied.insert(full, value).is_none(),
                        "two records, one entry"
                    );
                }
                IndexEntry::Counter { tag, key, amount } => {
                    full.push(tag);
                    full.extend(key);
                    *counters.entry(full).or_default() += amount;
                }
            }
        }
    }
    for (key, sum) in counters {
        if sum > 0 {
            implied.insert(key, sum.to_be_bytes().to_vec());
        }
    }
    implied
}

/// The wire views (timestamps aside) of the records under one project prefix.
fn views(prefix: &[u8], records: &Entries) -> BTreeMap<(u8, String), Value> {
    let mut views = BTreeMap::new();
    for (key, value) in records {
        let tag = key[prefix.len()];
        let kind = project_owned::registry::kind_of_tag(tag).expect("a registered record tag");
        let record_id = String::from_utf8(key[prefix.len() + 1..].to_vec()).unwrap();
        views.insert((tag, record_id), comparable((kind.view_of)(value).unwrap()));
    }
    views
}

/// The webhook outbox agrees with its due order and with the model: each entry has exactly
/// one due entry (and the reverse), belongs to an active webhook of a project of the model,
/// carries an event that webhook is subscribed to, about a record of that project.
fn check_outbox(store: &Store, model: &Model, step: usize) {
    let outbox = scan(store, tables::OUTBOX);
    let due = scan(store, tables::OUTBOX_DUE);
    assert_eq!(
        due.len(),
        outbox.len(),
        "step {step}: outbox entries and due entries"
    );
    for (due_key, key) in &due {
        let value = outbox
            .get(key)
            .unwrap_or_else(|| panic!("step {step}: a due entry of no outbox entry"));
        let pending: PendingDelivery = codec::decode(value).unwrap();
        assert_eq!(due_key[..8], pending.due_ms.to_be_bytes(), "step {step}");
        assert_eq!(due_key[8..], pending.seq.to_be_bytes(), "step {step}");
        let (org, project) = outbox::owner(key).unwrap();
        let m = model
            .projects
            .get(project.as_str())
            .unwrap_or_else(|| panic!("step {step}: an outbox entry of no project"));
        assert_eq!(m.org, org.as_str(), "step {step}");
        let mut expected_key = layout::project_prefix(&org, &project);
        expected_key.extend(
            pending
                .webhook_id
                .bytes()
                .chain(pending.delivery_id.bytes()),
        );
        assert_eq!(*key, expected_key, "step {step}: an outbox key");
        let webhook = m
            .records
            .get(&(Webhook::TAG, pending.webhook_id.clone()))
            .unwrap_or_else(|| panic!("step {step}: an outbox entry of no webhook"));
        assert_eq!(webhook["status"], "active", "step {step}");
        let subscribed = webhook["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|pattern| outbox::pattern_matches(pattern.as_str().unwrap(), &pending.event));
        assert!(subscribed, "step {step}: {} not subscribed", pending.event);
        let envelope: Value = serde_json::from_str(&pending.body).unwrap();
        assert_eq!(envelope["event"], pending.event.as_str(), "step {step}");
        let about = envelope["data"]["id"]
            .as_str()
            .expect("an event about a record");
        assert!(
            m.records.keys().any(|(_, id)| id == about),
            "step {step}: an event about {about}, which its project does not hold"
        );
    }
}

/// The store agrees with the model: project tables, every record, every index entry, the
/// webhook outbox.
pub fn check(store: &Store, model: &Model, step: usize) {
    check_outbox(store, model, step);
    let index: Entries = model
        .projects
        .iter()
        .map(|(id, p)| (id.as_bytes().to_vec(), p.org.as_bytes().to_vec()))
        .collect();
    assert_eq!(
        scan(store, tables::PROJECT_INDEX),
        index,
        "step {step}: project index"
    );
    let slugs: Entries = model
        .projects
        .iter()
        .map(|(id, p)| {
            (
                layout::org_child(&org_id_of(&p.org), p.slug.as_str()),
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
        .map(|(id, p)| layout::org_child(&org_id_of(&p.org), id))
        .collect();
    assert_eq!(records, expected, "step {step}: project records");
    for (id, m) in &model.projects {
        let (org, project_id) = (org_id_of(&m.org), project_id_of(id));
        let p = store
            .read_blocking(move |rx| project::resolve(rx, &org, &project_id))
            .unwrap();
        let got = (p.name, p.slug, p.domain);
        let want = (m.name.clone(), m.slug.clone(), m.domain.clone());
        assert_eq!(got, want, "step {step}: project {id}");
    }

    // The owned table, split by project prefix: nothing may live under a prefix of no project.
    let mut by_project: BTreeMap<Vec<u8>, (Entries, Entries)> = BTreeMap::new();
    for (key, value) in scan(store, tables::OWNED) {
        let prefix = key[..2 * ID_LEN].to_vec();
        let (records, index) = by_project.entry(prefix.clone()).or_default();
        if key[prefix.len()] < FIRST_INDEX_TAG {
            records.insert(key, value);
        } else {
            index.insert(key, value);
        }
    }
    let live: BTreeSet<Vec<u8>> = model
        .projects
        .iter()
        .map(|(id, p)| layout::project_prefix(&org_id_of(&p.org), &project_id_of(id)))
        .collect();
    let stored: BTreeSet<Vec<u8>> = by_project.keys().cloned().collect();
    assert!(
        stored.is_subset(&live),
        "step {step}: owned entries under a prefix of no project"
    );

    // Records of public kinds, and only those, are found by id alone.
    let public: Entries = model
        .projects
        .iter()
        .flat_map(|(id, p)| {
            let prefix = layout::project_prefix(&org_id_of(&p.org), &project_id_of(id));
            p.records
                .keys()
                .filter(|(tag, _)| {
                    project_owned::registry::kind_of_tag(*tag).is_some_and(|k| k.public)
                })
                .map(move |(_, record)| (record.as_bytes().to_vec(), prefix.clone()))
        })
        .collect();
    assert_eq!(
        scan(store, tables::PUBLIC_IDS),
        public,
        "step {step}: public ids"
    );

    for (id, m) in &model.projects {
        let prefix = layout::project_prefix(&org_id_of(&m.org), &project_id_of(id));
        let (records, index) = by_project.remove(&prefix).unwrap_or_default();
        assert_eq!(
            views(&prefix, &records),
            m.records,
            "step {step}: records of project {id}"
        );
        assert!(
            index == implied_index(&prefix, &records),
            "step {step}: the index entries of project {id} differ from what its records imply"
        );
    }
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
/// Few addresses and external ids, so that contact upserts often find an existing contact.
const EMAILS: &[&str] = &["ann@example.com", "ANN@example.com", "bob@example.org"];
const EXTERNAL_IDS: &[&str] = &["user-1", "user-2"];
const FORM_SLUGS: &[&str] = &["contact", "refund-billing", "demo"];
const WORDS: &[&str] = &[
    "refund", "password", "reset", "billing", "invoice", "login", "the", "shipping", "Refund",
];

fn words(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| *rng.pick(WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One random operation of a project-owned kind in `project`; the model follows what it returns.
/// A write the store refuses (`STORAGE_UNAVAILABLE`) ends the step with the model unchanged.
pub fn kind_step(
    store: &Store,
    model: &mut Model,
    rng: &mut Rng,
    project: &str,
    step: usize,
) -> Result<(), Refused> {
    let org = model.projects[project].org.clone();
    let conversations = model.ids_of::<Conversation>(project);
    let contacts = model.ids_of::<Contact>(project);
    let articles = model.ids_of::<Article>(project);
    let forms = model.ids_of::<Form>(project);
    let beacons = model.ids_of::<Beacon>(project);
    let slug_taken = |model: &Model, slug: &str| {
        model.projects[project]
            .records
            .iter()
            .any(|((tag, _), view)| *tag == Form::TAG && view["slug"] == slug)
    };
    let webhooks = model.ids_of::<Webhook>(project);
    match rng.below(14) {
        0 => {
            let mut body =
                json!({"subject": words(rng, 3), "priority": "high", "tags": ["a", "b"]});
            if !contacts.is_empty() && rng.below(2) == 0 {
                body["contact_id"] = json!(rng.pick(&contacts));
            }
            let input = Conversation::parse_create(body, input_settings()).unwrap();
            let created = in_project(store, &org, project, move |tx, scope, actor| {
                Conversation::create(tx, scope, actor, input)
            })
            .acked(project)?;
            model.put(project, &created);
        }
        1 if !conversations.is_empty() => {
            let id = rng.pick(&conversations).clone();
            // Status, assignee and subject move the conversation between filter postings.
            let body = json!({
                "status": *rng.pick(&["open", "resolved", "closed"]),
                "tags": [words(rng, 1)],
                "assigned_to": *rng.pick(&[None, Some("agent-a"), Some("agent-b")]),
                "subject": words(rng, 2),
            });
            let input = Conversation::parse_update(body, input_settings()).unwrap();
            let updated = in_project(store, &org, project, move |tx, scope, actor| {
                Conversation::update(tx, scope, actor, &Id::parse_found(&id)?, input)
            })
            .acked(project)?;
            model.put(project, &updated);
        }
        2 if !conversations.is_empty() => {
            let id = rng.pick(&conversations).clone();
            let input = MessageCreate::from_json(json!({"content": words(rng, 4)})).unwrap();
            let posted = in_project(store, &org, project, move |tx, scope, actor| {
                message::post(tx, scope, actor, &Id::parse_found(&id)?, input)
            })
            .acked(project)?;
            model.put(project, &posted);
        }
        3 | 4 => {
            // An upsert: by external id, else email (case-insensitively), else a new contact.
            let mut body = json!({"name": words(rng, 1), "metadata": {"plan": words(rng, 1)}});
            if rng.below(2) == 0 {
                body["email"] = json!(rng.pick(EMAILS));
            }
            if rng.below(3) == 0 {
                body["external_id"] = json!(rng.pick(EXTERNAL_IDS));
            }
            let input = Contact::parse_create(body, input_settings()).unwrap();
            let saved = in_project(store, &org, project, move |tx, scope, actor| {
                Contact::create(tx, scope, actor, input)
            })
            .acked(project)?;
            model.put(project, &saved);
        }
        5 if !contacts.is_empty() => {
            let id = rng.pick(&contacts).clone();
            let body = match rng.below(3) {
                0 => json!({"email": null}),
                1 => json!({"external_id": rng.pick(EXTERNAL_IDS)}),
                _ => json!({"email": rng.pick(EMAILS), "company": "Acme"}),
            };
            let input = Contact::parse_update(body, input_settings()).unwrap();
            let updated = in_project(store, &org, project, move |tx, scope, actor| {
                Contact::update(tx, scope, actor, &Id::parse_found(&id)?, input)
            })
            .acked(project)?;
            model.put(project, &updated);
        }
        6 => {
            let status = *rng.pick(&["draft", "published"]);
            let body = json!({"title": words(rng, 2), "content": words(rng, 6), "status": status});
            let input = Article::parse_create(body, input_settings()).unwrap();
            let created = in_project(store, &org, project, move |tx, scope, actor| {
                Article::create(tx, scope, actor, input)
            })
            .acked(project)?;
            model.put(project, &created);
        }
        7 if !articles.is_empty() => {
            let id = rng.pick(&articles).clone();
            let body = match rng.below(3) {
                0 => {
                    json!({"content": words(rng, 5), "category": *rng.pick(&["general", "billing"])})
                }
                1 => json!({"status": "archived"}),
                _ => json!({"title": words(rng, 2), "status": "published"}),
            };
            let input = Article::parse_update(body, input_settings()).unwrap();
            let updated = in_project(store, &org, project, move |tx, scope, actor| {
                Article::update(tx, scope, actor, &Id::parse_found(&id)?, input)
            })
            .acked(project)?;
            model.put(project, &updated);
        }
        8 if !articles.is_empty() => {
            let id = rng.pick(&articles).clone();
            let published = in_project(store, &org, project, move |tx, scope, actor| {
                kb::publish(tx, scope, actor, &Id::parse_found(&id)?)
            })
            .acked(project)?;
            model.put(project, &published);
        }
        9 if !articles.is_empty() => {
            let id = rng.pick(&articles).clone();
            let deleted = id.clone();
            in_project(store, &org, project, move |tx, scope, actor| {
                Article::delete(tx, scope, actor, &Id::parse_found(&id)?)
            })
            .acked(project)?;
            let records = &mut model.projects.get_mut(project).unwrap().records;
            assert!(records.remove(&(Article::TAG, deleted)).is_some());
        }
        10 => {
            // A form: its slug derived and numbered, or given and perhaps taken.
            let mut body = json!({"name": words(rng, 2)});
            let given = (rng.below(2) == 0).then(|| *rng.pick(FORM_SLUGS));
            if let Some(slug) = given {
                body["slug"] = json!(slug);
            }
            let taken = given.is_some_and(|slug| slug_taken(model, slug));
            let input = Form::parse_create(body, input_settings()).unwrap();
            let result = in_project(store, &org, project, move |tx, scope, actor| {
                Form::create(tx, scope, actor, input)
            })
            .settled(Some(project))?;
            match result {
                Ok(form) => {
                    assert!(!taken, "step {step}: form slug reused");
                    assert!(!slug_taken(model, form.slug.as_str()), "step {step}");
                    model.put(project, &form);
                }
                Err(err) => {
                    assert!(taken, "step {step}: form create failed: {err}");
                    assert_eq!(err.code(), ErrorCode::SlugConflict);
                }
            }
        }
        11 if !forms.is_empty() => {
            let id = rng.pick(&forms).clone();
            let updated = match rng.below(3) {
                0 => {
                    let slug = *rng.pick(FORM_SLUGS);
                    let own =
                        model.projects[project].records[&(Form::TAG, id.clone())]["slug"] == slug;
                    let taken = !own && slug_taken(model, slug);
                    let input = Form::parse_update(
                        json!({"slug": slug, "name": words(rng, 1)}),
                        input_settings(),
                    )
                    .unwrap();
                    let result = in_project(store, &org, project, move |tx, scope, actor| {
                        Form::update(tx, scope, actor, &Id::parse_found(&id)?, input)
                    })
                    .settled(Some(project))?;
                    if taken {
                        assert_eq!(result.unwrap_err().code(), ErrorCode::SlugConflict);
                        return Ok(());
                    }
                    result.unwrap()
                }
                archive => in_project(store, &org, project, move |tx, scope, actor| {
                    routed::set_archived::<Form>(
                        tx,
                        scope,
                        actor,
                        &Id::parse_found(&id)?,
                        archive == 1,
                    )
                })
                .acked(project)?,
            };
            model.put(project, &updated);
        }
        12 if !forms.is_empty() => {
            let form_id = rng.pick(&forms).clone();
            let saved = if beacons.is_empty() || rng.below(2) == 0 {
                let input =
                    Beacon::parse_create(json!({"form_id": form_id}), input_settings()).unwrap();
                in_project(store, &org, project, move |tx, scope, actor| {
                    Beacon::create(tx, scope, actor, input)
                })
            } else {
                let id = rng.pick(&beacons).clone();
                let body = json!({"form_id": form_id, "settings": {"n": rng.below(9)}});
                let input = Beacon::parse_update(body, input_settings()).unwrap();
                in_project(store, &org, project, move |tx, scope, actor| {
                    Beacon::update(tx, scope, actor, &Id::parse_found(&id)?, input)
                })
            };
            model.put(project, &saved.acked(project)?);
        }
        13 if webhooks.is_empty() || rng.below(3) == 0 => {
            // A webhook: the events of later changes queue outbox entries for it.
            let events = *rng.pick(&[
                &["*"][..],
                &["conversation.*", "message.created"],
                &["contact.created", "contact.updated"],
            ]);
            let body =
                json!({"url": format!("https://hooks.example.com/{step}"), "events": events});
            let input = Webhook::parse_create(body, input_settings()).unwrap();
            let created = in_project(store, &org, project, move |tx, scope, actor| {
                Webhook::create(tx, scope, actor, input)
            })
            .acked(project)?;
            model.put(project, &created);
        }
        13 => {
            // Disabling or deleting a webhook drops its pending deliveries with it.
            let id = rng.pick(&webhooks).clone();
            if rng.below(3) == 0 {
                let deleted = id.clone();
                in_project(store, &org, project, move |tx, scope, actor| {
                    Webhook::delete(tx, scope, actor, &Id::parse_found(&id)?)
                })
                .acked(project)?;
                let records = &mut model.projects.get_mut(project).unwrap().records;
                assert!(records.remove(&(Webhook::TAG, deleted)).is_some());
            } else {
                let status = *rng.pick(&["active", "disabled"]);
                let input =
                    Webhook::parse_update(json!({"status": status}), input_settings()).unwrap();
                let updated = in_project(store, &org, project, move |tx, scope, actor| {
                    Webhook::update(tx, scope, actor, &Id::parse_found(&id)?, input)
                })
                .acked(project)?;
                model.put(project, &updated);
            }
        }
        _ => {
            // A look-up of a missing record answers the kind's own not-found code.
            let err = in_project(store, &org, project, |tx, scope, _| {
                project_owned::get::<Contact>(tx, scope, &Id::parse_found("ct_doesnotexist")?)
            })
            .settled(Some(project))?
            .unwrap_err();
            assert_eq!(err.code(), ErrorCode::ContactNotFound, "step {step}");
        }
    }
    Ok(())
}

/// One random step: a project create, update or delete (a delete removes exactly its
/// project's prefix), or an operation of a project-owned kind. The model follows what each
/// returns; a write the store refuses ends the step with the model unchanged.
pub fn step(
    store: &Store,
    model: &mut Model,
    rng: &mut Rng,
    orgs: &[String],
    step: usize,
    deletes_with_records: &mut usize,
) -> Result<(), Refused> {
    let ids: Vec<String> = model.projects.keys().cloned().collect();
    let roll = rng.below(100);
    if roll < 12 || ids.is_empty() {
        // Create, sometimes with an explicit slug; a taken slug must be refused.
        let org = rng.pick(orgs).clone();
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
        let (o, a) = (org_id_of(&org), actor());
        let result = store
            .write_blocking(move |tx| project::create(tx, &a, &o, input))
            .settled(None)?;
        match result {
            Ok(p) => {
                assert!(!taken, "step {step}: slug {slug} reused in {org}");
                model.projects.insert(
                    p.id.to_string(),
                    ModelProject {
                        org,
                        name,
                        slug,
                        domain,
                        records: BTreeMap::new(),
                    },
                );
            }
            Err(err) => {
                assert!(taken, "step {step}: create failed: {err}");
                assert_eq!(err.code(), ErrorCode::SlugConflict);
            }
        }
    } else if roll < 18 {
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
        let (o, i, a) = (org_id_of(&org), project_id_of(&id), actor());
        store
            .write_blocking(move |tx| project::update(tx, &a, &o, &i, input))
            .acked(&id)?;
        let m = model.projects.get_mut(&id).unwrap();
        if let Some(name) = name {
            m.name = name;
        }
        if let Some(domain) = domain.into_change() {
            m.domain = domain;
        }
    } else if roll < 24 {
        // Delete: exactly the project's prefix goes, everything else stays byte for byte.
        let id = rng.pick(&ids).clone();
        let org = model.projects[&id].org.clone();
        let prefix = layout::project_prefix(&org_id_of(&org), &project_id_of(&id));
        let before = scan(store, tables::OWNED);
        *deletes_with_records += usize::from(before.keys().any(|k| k.starts_with(&prefix)));
        let (o, i, a) = (org_id_of(&org), project_id_of(&id), actor());
        let cascade = store
            .write_blocking_freeing(move |tx| {
                project_owned::registry::delete_project(tx, &a, &o, &i)
            })
            .acked(&id)?;
        let after = scan(store, tables::OWNED);
        let outside: Entries = before
            .into_iter()
            .filter(|(k, _)| !k.starts_with(&prefix))
            .collect();
        assert!(
            after == outside,
            "step {step}: a delete left records of its project or touched another's"
        );
        // The cascade counts name each kind by its registry name.
        let mut counted: BTreeMap<String, u64> = BTreeMap::new();
        for (tag, _) in model.projects[&id].records.keys() {
            let kind = project_owned::registry::kind_of_tag(*tag).unwrap();
            *counted.entry(kind.plural.to_string()).or_default() += 1;
        }
        assert_eq!(
            cascade.into_iter().collect::<BTreeMap<_, _>>(),
            counted,
            "step {step}: cascade counts"
        );
        model.projects.remove(&id);
        let (o, i) = (org_id_of(&org), project_id_of(&id));
        let err = store
            .read_blocking(move |rx| project::resolve(rx, &o, &i))
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ProjectNotFound);
    } else if roll < 26 {
        // Deleting a project that does not exist (or another org's) changes nothing.
        let id = rng.pick(&ids).clone();
        let owner = model.projects[&id].org.clone();
        let stranger = org_id_of(orgs.iter().find(|o| **o != owner).unwrap());
        let (i, a) = (project_id_of(&id), actor());
        let err = store
            .write_blocking(move |tx| {
                project_owned::registry::delete_project(tx, &a, &stranger, &i)
            })
            .settled(None)?
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ApiKeyProjectMismatch);
        let (o, i, a) = (
            org_id_of(&owner),
            project_id_of("prj_doesnotexist"),
            actor(),
        );
        let err = store
            .write_blocking(move |tx| project_owned::registry::delete_project(tx, &a, &o, &i))
            .settled(None)?
            .unwrap_err();
        assert_eq!(err.code(), ErrorCode::ProjectNotFound);
    } else {
        let id = rng.pick(&ids).clone();
        kind_step(store, model, rng, &id, step)?;
    }
    Ok(())
}

/// Three organisations to work in.
pub fn make_orgs(store: &Store) -> Vec<String> {
    (0..3)
        .map(|i| {
            let input = OrgCreate {
                name: format!("Org {i}"),
            };
            store
                .write_blocking(move |tx| org::create(tx, &Actor::master(None), input))
                .unwrap()
                .id
                .to_string()
        })
        .collect()
}

fn run(seed: u64, steps: usize) {
    let data = crate::helpers::TestData::new();
    let store = data.open_store();
    let mut rng = Rng(seed);
    let mut model = Model::default();
    let orgs = make_orgs(&store);
    let mut deletes_with_records = 0;

    for n in 0..steps {
        step(
            &store,
            &mut model,
            &mut rng,
            &orgs,
            n,
            &mut deletes_with_records,
        )
        .unwrap_or_else(|_| panic!("step {n}: a write refused on a healthy disk"));
        check(&store, &model, n);
    }

    assert!(
        deletes_with_records >= 3,
        "seed {seed}: too few deletes had records to remove"
    );

    // Finally delete everything that is left: the owned table is then empty.
    for (id, p) in std::mem::take(&mut model.projects) {
        let (o, i, a) = (org_id_of(&p.org), project_id_of(&id), actor());
        store
            .write_blocking(move |tx| project_owned::registry::delete_project(tx, &a, &o, &i))
            .unwrap();
    }
    assert!(scan(&store, tables::OWNED).is_empty());
    check(&store, &model, steps);
    store.close(Duration::from_secs(5)).unwrap();
}

#[test]
fn real_operations_keep_records_and_indexes_exactly_as_the_model_says() {
    // Each seed has its own store; they run side by side (the steps wait on disk syncs).
    let runs: Vec<_> = [0x9E37_79B9_7F4A_7C15, 42, 7]
        .into_iter()
        .map(|seed| std::thread::spawn(move || run(seed, 300)))
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

//! Filtered lists walk indexes within a scan budget (`[store] list_scan_budget`): for every
//! filter of conversations, contacts and KB articles, a walk of every page equals a brute-force
//! filter of all records, over random data, random pages and orders, and inserts during the
//! walk; a page that runs out of budget says `has_more` and the walk still ends with exactly the
//! matches; a data file without the filter indexes gets them built on open, with the same
//! answers.

use std::ops::{Bound, ControlFlow};

use rogeriq::config::Settings;
use rogeriq::project_owned::registry::INDEX_VERSION_KEY;
use rogeriq::project_owned::{contact, conversation, kb};
use rogeriq::store::{Reader, Store, tables};

use crate::fixtures::*;
use crate::helpers::*;

/// The least budget a page gets, so that filtered pages run out often.
const BUDGET: u64 = 64;

fn spawn() -> TestApp {
    TestApp::spawn_with(|s| s.store.list_scan_budget = BUDGET)
}

const WORDS: &[&str] = &[
    "Refund", "password", "reset", "billing", "Über", "login", "ab", "shipping", "invoice",
];
const STATUSES: &[&str] = &["open", "snoozed", "resolved", "closed"];
const PRIORITIES: &[&str] = &["low", "normal", "high", "urgent"];
const CHANNELS: &[&str] = &["email", "chat", "api", "widget"];
const AGENTS: &[&str] = &["agent-a", "agent-b", "Agent-A"];
const EMAILS: &[&str] = &["ann@example.com", "Ann@Example.com", "bob@example.org"];
const EXTERNAL_IDS: &[&str] = &["u-1", "u-2", "U-1"];
const CATEGORIES: &[&str] = &["billing", "Billing", "setup"];
const ARTICLE_STATUSES: &[&str] = &["draft", "published", "archived"];

fn words(rng: &mut Rng, n: usize) -> String {
    (0..n)
        .map(|_| *rng.pick(WORDS))
        .collect::<Vec<_>>()
        .join(" ")
}

/// One list and how its filters compare.
struct ListSpec {
    path: String,
    /// Fields compared exactly, and case-insensitively.
    exact: &'static [&'static str],
    caseless: &'static [&'static str],
    /// Fields `q` is a case-insensitive substring of (any one).
    q_fields: &'static [&'static str],
    sortable: bool,
}

fn conversation_list(p: &str) -> ListSpec {
    ListSpec {
        path: convs(p),
        exact: &["status", "priority", "channel", "assigned_to", "contact_id"],
        caseless: &[],
        q_fields: &["subject"],
        sortable: true,
    }
}

fn contact_list(p: &str) -> ListSpec {
    ListSpec {
        path: contacts(p),
        exact: &["external_id"],
        caseless: &["email"],
        q_fields: &["name", "email"],
        sortable: false,
    }
}

fn article_list(p: &str) -> ListSpec {
    ListSpec {
        path: articles(p),
        exact: &["status", "category"],
        caseless: &[],
        q_fields: &["title", "content"],
        sortable: true,
    }
}

/// What a brute-force filter keeps: every filter holds on the record's view.
fn passes(spec: &ListSpec, view: &Value, filters: &[(&str, String)]) -> bool {
    filters.iter().all(|(name, value)| {
        let field = |f: &str| view[f].as_str().map(str::to_string);
        if *name == "q" {
            let q = value.to_lowercase();
            spec.q_fields
                .iter()
                .any(|f| field(f).is_some_and(|t| t.to_lowercase().contains(&q)))
        } else if spec.caseless.contains(name) {
            field(name).is_some_and(|t| t.to_lowercase() == value.to_lowercase())
        } else {
            field(name).as_deref() == Some(value.as_str())
        }
    })
}

/// The ids of every page of `path`, following cursors, calling `between` before each next page;
/// and
/// how many pages were short of `limit` while saying `has_more` (out of budget).
fn walk_pages(
    app: &TestApp,
    path: &str,
    limit: usize,
    mut between: impl FnMut(),
) -> (Vec<String>, usize) {
    let mut seen = Vec::new();
    let mut short = 0;
    let mut next = path.to_string();
    for page in 0.. {
        let body = ok_get(app, &app.admin_key, &next);
        assert_page_shape(&body);
        let got = ids(&body);
        assert!(got.len() <= limit, "{path}: {} > {limit}", got.len());
        seen.extend(got.clone());
        if body["has_more"] == false {
            break;
        }
        between();
        if got.len() < limit {
            short += 1;
        }
        next = with_cursor(path, body["cursor"].as_str().unwrap());
        assert!(page < 5_000, "{path}: the walk does not end");
    }
    (seen, short)
}

/// Every record's view, all pages, in the order of `query` (`sort`/`order`, or nothing).
fn all_views(app: &TestApp, list: &str, query: &str) -> Vec<Value> {
    let path = format!("{list}?limit=100{query}");
    let mut views = Vec::new();
    let mut next = path.clone();
    loop {
        let body = ok_get(app, &app.admin_key, &next);
        views.extend(body["data"].as_array().unwrap().iter().cloned());
        if body["has_more"] == false {
            return views;
        }
        next = with_cursor(&path, body["cursor"].as_str().unwrap());
    }
}

fn query_string(filters: &[(&str, String)]) -> String {
    filters
        .iter()
        .map(|(name, value)| format!("&{name}={}", encode(value)))
        .collect()
}

/// Random filters for `spec`, drawn from the values the records hold.
fn random_filters(rng: &mut Rng, spec: &ListSpec, views: &[Value]) -> Vec<(&'static str, String)> {
    let mut filters: Vec<(&'static str, String)> = Vec::new();
    let fields: Vec<&'static str> = spec
        .exact
        .iter()
        .chain(spec.caseless)
        .copied()
        .chain(["q"])
        .collect();
    for _ in 0..1 + rng.below(3) {
        let name = *rng.pick(&fields);
        if filters.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let enumerated = ["status", "priority", "channel"].contains(&name);
        let value = if !enumerated && (views.is_empty() || rng.below(8) == 0) {
            "nothing-holds-this".to_string()
        } else if name == "q" {
            // A substring of a record's text, one to eight characters, in another case.
            let view = rng.pick(views);
            let text: Vec<char> = view[*rng.pick(spec.q_fields)]
                .as_str()
                .unwrap_or("xyz")
                .chars()
                .collect();
            let start = rng.below(text.len().max(1));
            let len = 1 + rng.below(8);
            let q: String = text.iter().skip(start).take(len).collect();
            if rng.below(2) == 0 {
                q.to_uppercase()
            } else {
                q
            }
        } else {
            let view = rng.pick(views);
            match view[name].as_str() {
                Some(value) if spec.caseless.contains(&name) => value.to_uppercase(),
                Some(value) => value.to_string(),
                None => continue,
            }
        };
        if !value.trim().is_empty() {
            filters.push((name, value));
        }
    }
    filters
}

/// Compares `rounds` random filtered walks of `spec` with a brute-force filter of all records.
/// Every other walk inserts a record (through `insert`) after each page: a descending walk
/// then still yields exactly the records that matched when it started, and an ascending one
/// those followed by the matching inserts, in insertion order.
fn check_random_walks(
    app: &TestApp,
    rng: &mut Rng,
    spec: &ListSpec,
    rounds: usize,
    mut insert: impl FnMut(&mut Rng) -> String,
) -> usize {
    let mut out_of_budget = 0;
    for round in 0..rounds {
        let sort = if spec.sortable && rng.below(2) == 0 {
            "&sort=updated_at"
        } else {
            ""
        };
        let ascending = spec.sortable && rng.below(2) == 0;
        let order = if ascending { "&order=asc" } else { "" };
        let query = format!("{sort}{order}");
        let before = all_views(app, &spec.path, &query);
        let filters = random_filters(rng, spec, &before);
        let expected: Vec<String> = before
            .iter()
            .filter(|v| passes(spec, v, &filters))
            .map(id_of)
            .collect();
        let limit = *rng.pick(&[1, 2, 5, 20, 100]);
        let path = format!(
            "{}?limit={limit}{query}{}",
            spec.path,
            query_string(&filters)
        );
        let concurrent = round % 2 == 1;
        let mut inserted = Vec::new();
        let (seen, short) = walk_pages(app, &path, limit, || {
            if concurrent && inserted.len() < 30 {
                inserted.push(insert(rng));
            }
        });
        out_of_budget += short;
        let mut want = expected.clone();
        if ascending && concurrent {
            // The inserts that match, in the order they were made.
            let after = all_views(app, &spec.path, &query);
            want.extend(
                after
                    .iter()
                    .filter(|v| inserted.contains(&id_of(v)) && passes(spec, v, &filters))
                    .map(id_of),
            );
        }
        assert_eq!(seen, want, "{path} (concurrent inserts: {concurrent})");
    }
    out_of_budget
}

fn new_random_conversation(
    app: &TestApp,
    p: &str,
    rng: &mut Rng,
    contact_ids: &[String],
) -> String {
    let n = 1 + rng.below(3);
    let mut body = json!({
        "subject": words(rng, n),
        "priority": rng.pick(PRIORITIES),
        "channel": rng.pick(CHANNELS),
    });
    if !contact_ids.is_empty() && rng.below(2) == 0 {
        body["contact_id"] = json!(rng.pick(contact_ids));
    }
    id_of(&new_conversation(app, p, body))
}

fn new_random_article(app: &TestApp, p: &str, rng: &mut Rng) -> String {
    let mut body = json!({
        "title": words(rng, 2),
        "content": words(rng, 5),
        "status": rng.pick(ARTICLE_STATUSES),
    });
    if rng.below(3) > 0 {
        body["category"] = json!(rng.pick(CATEGORIES));
    }
    id_of(&new_article(app, p, body))
}

/// Contacts are upserted by email and external id, so shared values come from updates.
fn new_random_contact(app: &TestApp, p: &str, rng: &mut Rng, n: usize) -> String {
    let id = id_of(&new_contact(
        app,
        p,
        json!({"name": format!("{} {n}", words(rng, 1))}),
    ));
    let mut body = json!({});
    if rng.below(3) > 0 {
        body["email"] = json!(rng.pick(EMAILS));
    }
    if rng.below(2) == 0 {
        body["external_id"] = json!(rng.pick(EXTERNAL_IDS));
    }
    if body != json!({}) {
        ok_patch(app, &app.admin_key, &contact(p, &id), body);
    }
    id
}

/// At the least budget pages run short often; at the default one a page has the budget to
/// sample the postings of a long `q` and intersect only the sparsest.
#[test]
fn every_filter_equals_a_brute_force_filter_over_random_walks() {
    random_walks(BUDGET, 0x5eed_1234_abcd_0001);
}

#[test]
fn every_filter_equals_a_brute_force_filter_with_the_default_budget() {
    random_walks(
        Settings::default().store.list_scan_budget,
        0x5eed_1234_abcd_0002,
    );
}

fn random_walks(budget: u64, seed: u64) {
    let app = TestApp::spawn_with(|s| s.store.list_scan_budget = budget);
    let p = app.project("Filters");
    let mut rng = Rng(seed);

    let mut contact_ids = Vec::new();
    for n in 0..60 {
        contact_ids.push(new_random_contact(&app, &p, &mut rng, n));
    }
    let mut conversations = Vec::new();
    for _ in 0..120 {
        conversations.push(new_random_conversation(&app, &p, &mut rng, &contact_ids));
    }
    // Updates move records between postings and in the update order.
    for _ in 0..60 {
        let id = rng.pick(&conversations).clone();
        let mut body = json!({"status": rng.pick(STATUSES)});
        if rng.below(2) == 0 {
            body["assigned_to"] = if rng.below(4) == 0 {
                Value::Null
            } else {
                json!(rng.pick(AGENTS))
            };
        }
        if rng.below(3) == 0 {
            body["subject"] = json!(words(&mut rng, 2));
        }
        ok_patch(&app, &app.admin_key, &conv(&p, &id), body);
    }
    for i in 0..20 {
        new_message(
            &app,
            &p,
            &conversations[i * 5],
            "a message moves updated_at",
        );
    }
    let mut article_ids = Vec::new();
    for _ in 0..50 {
        article_ids.push(new_random_article(&app, &p, &mut rng));
    }
    for _ in 0..20 {
        let id = rng.pick(&article_ids).clone();
        let body = match rng.below(3) {
            0 => json!({"status": rng.pick(ARTICLE_STATUSES)}),
            1 => json!({"category": "general", "content": words(&mut rng, 3)}),
            _ => json!({"category": rng.pick(CATEGORIES), "title": words(&mut rng, 2)}),
        };
        ok_patch(&app, &app.admin_key, &article(&p, &id), body);
    }

    let mut short_pages = 0;
    short_pages += check_random_walks(&app, &mut rng, &conversation_list(&p), 40, |rng| {
        new_random_conversation(&app, &p, rng, &contact_ids)
    });
    let mut n = 1_000;
    short_pages += check_random_walks(&app, &mut rng, &contact_list(&p), 30, |rng| {
        n += 1;
        new_random_contact(&app, &p, rng, n)
    });
    short_pages += check_random_walks(&app, &mut rng, &article_list(&p), 30, |rng| {
        new_random_article(&app, &p, rng)
    });
    if budget == BUDGET {
        assert!(short_pages > 0, "some page ran out of its budget");
    }
}

#[test]
fn a_page_out_of_budget_says_has_more_and_the_walk_yields_each_match_once() {
    let app = spawn();
    let p = app.project("Budget");
    // A two-character q has no trigram: it is checked on every record the walk reaches.
    let mut wanted = Vec::new();
    for i in 0..200 {
        let name = if i % 90 == 45 {
            format!("zq target {i}")
        } else {
            format!("person {i}")
        };
        let id = id_of(&new_contact(&app, &p, json!({ "name": name })));
        if name.starts_with("zq") {
            wanted.push(id);
        }
    }
    wanted.reverse();
    let path = format!("{}?q=ZQ&limit=5", contacts(&p));
    let first = ok_get(&app, &app.admin_key, &path);
    assert_eq!(first["has_more"], true, "{first}");
    assert!(
        ids(&first).is_empty(),
        "the newest 64 contacts hold no match"
    );
    let (seen, short) = walk_pages(&app, &path, 5, || {});
    assert_eq!(seen, wanted);
    assert!(short >= 2, "{short} short pages");

    // Two filters that each hold half the conversations and together one: the intersection
    // alternates between the two postings and runs out of budget too.
    let mut both = Vec::new();
    for i in 0..200 {
        let body = if i == 150 {
            json!({"priority": "urgent", "channel": "chat"})
        } else if i % 2 == 0 {
            json!({"priority": "urgent"})
        } else {
            json!({"channel": "chat"})
        };
        let id = id_of(&new_conversation(&app, &p, body));
        if i == 150 {
            both.push(id);
        }
    }
    for query in [
        "",
        "&sort=updated_at",
        "&order=asc",
        "&sort=updated_at&order=asc",
    ] {
        let path = format!("{}?priority=urgent&channel=chat&limit=3{query}", convs(&p));
        let (seen, short) = walk_pages(&app, &path, 3, || {});
        assert_eq!(seen, both, "{path}");
        assert!(short >= 1, "{path}: the intersection fit in one budget");
    }
    // The unfiltered list is unaffected: full pages.
    let (all, short) = walk_pages(&app, &format!("{}?limit=50", convs(&p)), 50, || {});
    assert_eq!((all.len(), short), (200, 0));
}

#[test]
fn selective_filters_answer_in_one_page() {
    let app = spawn();
    let p = app.project("Selective");
    for i in 0..150 {
        new_contact(
            &app,
            &p,
            json!({"name": format!("user {i}"), "email": format!("user-{i}@example.com"), "external_id": format!("user-{i}")}),
        );
    }
    for (query, n) in [
        ("email=USER-77@example.com", 1),
        ("external_id=user-77", 1),
        ("external_id=nobody", 0),
        ("q=user-77@", 1),
        ("q=ser 14", 11),
    ] {
        let body = ok_get(
            &app,
            &app.admin_key,
            &format!("{}?{query}&limit=20", contacts(&p)),
        );
        assert_eq!(ids(&body).len(), n, "{query}: {body}");
        assert_eq!(body["has_more"], false, "{query}");
    }
}

/// The tags of the index entries that index version 1 added.
const VERSION_1_TAGS: &[u8] = &[
    contact::TRIGRAMS,
    conversation::FIELDS_BY_CREATED,
    conversation::FIELDS_BY_UPDATED,
    conversation::TRIGRAMS,
    kb::FIELDS_BY_CREATED,
    kb::FIELDS_BY_UPDATED,
    kb::TRIGRAMS,
];

/// How many owned entries carry a version-1 tag.
fn version_1_entries(store: &Store) -> Vec<Vec<u8>> {
    store
        .read_blocking(|rx| {
            let mut keys = Vec::new();
            rx.scan(
                tables::OWNED,
                (Bound::Unbounded, Bound::Unbounded),
                false,
                &mut |key, _| {
                    if VERSION_1_TAGS.contains(&key[2 * rogeriq::ids::ID_LEN]) {
                        keys.push(key.to_vec());
                    }
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok(keys)
        })
        .unwrap()
}

#[test]
fn indexes_built_on_open_from_an_older_file_give_the_same_answers() {
    let app = spawn();
    let p = app.project("Older");
    let mut rng = Rng(0x01d0_f11e);
    let mut contact_ids = Vec::new();
    for n in 0..30 {
        contact_ids.push(new_random_contact(&app, &p, &mut rng, n));
    }
    for _ in 0..40 {
        new_random_conversation(&app, &p, &mut rng, &contact_ids);
    }
    for _ in 0..15 {
        new_random_article(&app, &p, &mut rng);
    }
    let queries: Vec<String> = vec![
        format!("{}?status=open&priority=high", convs(&p)),
        format!("{}?channel=chat&sort=updated_at&order=asc", convs(&p)),
        format!("{}?q=refund", convs(&p)),
        format!("{}?email=ANN@example.com", contacts(&p)),
        format!("{}?external_id=u-1&q=ann", contacts(&p)),
        format!("{}?q=login", contacts(&p)),
        format!("{}?status=published&category=billing", articles(&p)),
        format!("{}?q=invoice", articles(&p)),
    ];
    let answers = |app: &TestApp| -> Vec<Vec<String>> {
        queries
            .iter()
            .map(|q| walk_pages(app, &format!("{q}&limit=4"), 4, || {}).0)
            .collect()
    };
    let before = answers(&app);
    assert!(before.iter().any(|a| !a.is_empty()));
    let built = version_1_entries(&app.store);
    assert!(!built.is_empty());
    let key = app.admin_key.clone();
    let dir = app.stop();

    // The same records as an older build wrote them: no version-1 entries, no index version.
    let store = dir.open_store();
    let stale = version_1_entries(&store);
    store
        .write_blocking(move |tx| {
            for key in &stale {
                tx.remove(tables::OWNED, key)?;
            }
            tx.set_meta(INDEX_VERSION_KEY, 0)
        })
        .unwrap();
    assert!(version_1_entries(&store).is_empty());
    store.close(std::time::Duration::from_secs(5)).unwrap();

    let mut app = TestApp::spawn_in_with(dir, |s| s.store.list_scan_budget = BUDGET);
    app.admin_key = key;
    assert_eq!(version_1_entries(&app.store), built, "rebuilt exactly");
    assert_eq!(answers(&app), before);
    let version = app
        .store
        .write_blocking(|tx| tx.meta(INDEX_VERSION_KEY))
        .unwrap();
    assert_eq!(
        version,
        Some(rogeriq::project_owned::registry::INDEX_VERSION)
    );
}

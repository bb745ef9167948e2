//! Cursor pagination under concurrent inserts (docs/api/README.md): a walk returns every item that
//! existed when it started exactly once, in order.

use std::collections::HashSet;

use serde_json::json;

use crate::fixtures::*;
use crate::helpers::*;

const ORIGINAL: usize = 250;

/// `ORIGINAL` conversations, oldest first.
fn seed(app: &TestApp, p: &str) -> Vec<String> {
    (0..ORIGINAL)
        .map(|i| {
            id_of(&new_conversation(
                app,
                p,
                json!({"subject": format!("original {i}")}),
            ))
        })
        .collect()
}

fn assert_each_once(seen: &[String]) {
    let distinct: HashSet<&String> = seen.iter().collect();
    assert_eq!(distinct.len(), seen.len(), "an item appeared twice");
}

#[test]
fn descending_walk_is_stable_under_inserts() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let original = seed(&app, &p);
    let mut inserted = Vec::new();
    let mut pages = 0;
    let seen = walk(
        &app,
        &app.admin_key,
        &format!("{}?limit=7", convs(&p)),
        |_| {
            pages += 1;
            for _ in 0..3 {
                inserted.push(id_of(&new_conversation(
                    &app,
                    &p,
                    json!({"subject": "inserted during the walk"}),
                )));
            }
        },
    );
    assert_each_once(&seen);
    let newest_first: Vec<String> = original.iter().rev().cloned().collect();
    assert_eq!(
        seen, newest_first,
        "the desc walk returns exactly the original items, newest first"
    );
    assert_eq!(pages, ORIGINAL.div_ceil(7));
    let inserted: HashSet<&String> = inserted.iter().collect();
    assert!(seen.iter().all(|id| !inserted.contains(id)));
    // A fresh walk sees everything, newest first.
    let all = all_ids(&app, &app.admin_key, &convs(&p));
    assert_eq!(all.len(), ORIGINAL + inserted.len());
    assert_each_once(&all);
    assert_eq!(all[inserted.len()..], newest_first[..]);
}

#[test]
fn ascending_walk_is_stable_under_inserts() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let original = seed(&app, &p);
    let mut inserted = Vec::new();
    let seen = walk(
        &app,
        &app.admin_key,
        &format!("{}?limit=7&order=asc", convs(&p)),
        |page| {
            // Stop inserting eventually so that the walk ends.
            if page < 40 {
                for _ in 0..2 {
                    inserted.push(id_of(&new_conversation(
                        &app,
                        &p,
                        json!({"subject": "inserted during the walk"}),
                    )));
                }
            }
        },
    );
    assert_each_once(&seen);
    // Every original item exactly once, in creation order, before anything inserted later.
    assert_eq!(seen[..ORIGINAL], original[..]);
    // Items inserted after the walk started come after them, in their insertion order.
    assert_eq!(seen[ORIGINAL..], inserted[..]);
}

#[test]
fn has_more_and_cursor_go_together() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    for i in 0..10 {
        let c = id_of(&new_conversation(
            &app,
            &p,
            json!({"subject": format!("c{i}")}),
        ));
        new_contact(&app, &p, json!({"name": format!("n{i}")}));
        new_article(
            &app,
            &p,
            json!({"title": format!("Article {i}"), "content": "x"}),
        );
        if i == 0 {
            for j in 0..10 {
                new_message(&app, &p, &c, &format!("m{j}"));
            }
        }
    }
    let first = ids(&ok_get(
        &app,
        &app.admin_key,
        &format!("{}?order=asc&limit=1", convs(&p)),
    ))[0]
        .clone();
    let lists = [convs(&p), contacts(&p), articles(&p), msgs(&p, &first)];
    for list in &lists {
        for limit in [1, 3, 5, 9, 10, 11, 100] {
            let mut seen = Vec::new();
            let mut next = format!("{list}?limit={limit}");
            loop {
                let body = ok_get(&app, &app.admin_key, &next);
                assert_page_shape(&body);
                let page = ids(&body);
                assert!(page.len() <= limit);
                seen.extend(page.clone());
                if body["has_more"] == false {
                    assert!(body["cursor"].is_null());
                    break;
                }
                assert_eq!(page.len(), limit, "a non-last page is full");
                next = with_cursor(
                    &format!("{list}?limit={limit}"),
                    body["cursor"].as_str().unwrap(),
                );
            }
            assert_eq!(seen.len(), 10, "{list} limit {limit}");
            assert_each_once(&seen);
        }
    }
    // An empty list is a last page.
    let empty = app.project("Empty");
    for list in [convs(&empty), contacts(&empty), articles(&empty)] {
        let body = ok_get(&app, &app.admin_key, &list);
        assert_eq!(body, json!({"data": [], "cursor": null, "has_more": false}));
    }
}

/// The walks above, through filters: exact fields and `q` walk their index postings, within a
/// small scan budget, and still return every matching original item exactly once, in order,
/// however many pages run short of `limit`.
#[test]
fn filtered_walks_are_stable_under_inserts() {
    let app = TestApp::spawn_with(|s| s.store.list_scan_budget = 64);
    let p = app.project("Main");
    let original = seed(&app, &p);
    for id in original.iter().step_by(3) {
        ok_patch(
            &app,
            &app.admin_key,
            &conv(&p, id),
            json!({"priority": "high"}),
        );
    }
    let subject = |id: &String| original.iter().position(|o| o == id).unwrap();
    for (query, keep) in [
        (
            "priority=high",
            Box::new(|i: usize| i.is_multiple_of(3)) as Box<dyn Fn(usize) -> bool>,
        ),
        (
            "q=inal 1",
            Box::new(|i: usize| format!("original {i}").contains("inal 1")),
        ),
        (
            "priority=high&q=l 2",
            Box::new(|i: usize| i.is_multiple_of(3) && format!("original {i}").contains("l 2")),
        ),
    ] {
        for order in ["desc", "asc"] {
            let mut want: Vec<String> = original
                .iter()
                .filter(|id| keep(subject(id)))
                .cloned()
                .collect();
            if order == "desc" {
                want.reverse();
            }
            let seen = walk(
                &app,
                &app.admin_key,
                &format!("{}?limit=7&order={order}&{query}", convs(&p)),
                |_| {
                    // Inserts that match no filter above, so the expected walk stays the same.
                    new_conversation(&app, &p, json!({"subject": "zzz"}));
                },
            );
            assert_each_once(&seen);
            assert_eq!(seen, want, "{query} {order}");
        }
    }
}

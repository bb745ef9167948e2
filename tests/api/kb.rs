//! Knowledge base: its endpoints (OpenAPI document), docs/api/README.md, the OpenAPI document.

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;
use crate::shapes::*;

fn publish(app: &TestApp, p: &str, id: &str) -> Value {
    let r = app.request(
        Method::POST,
        &format!("{}/publish", article(p, id)),
        Some(&app.admin_key),
        None,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    r.data().clone()
}

fn published(app: &TestApp, p: &str, title: &str, content: &str) -> String {
    id_of(&new_article(
        app,
        p,
        json!({"title": title, "content": content, "status": "published"}),
    ))
}

fn hits(app: &TestApp, p: &str, q: &str) -> Vec<Value> {
    let r = app.get(&search(p, q), &app.admin_key);
    assert_eq!(r.status, 200, "{}", r.body);
    let hits = r
        .data()
        .as_array()
        .unwrap_or_else(|| panic!("not an array: {}", r.body))
        .clone();
    assert!(
        r.body.get("cursor").is_none() && r.body.get("has_more").is_none(),
        "plain list: {}",
        r.body
    );
    hits
}

fn hit_ids(app: &TestApp, p: &str, q: &str) -> Vec<String> {
    hits(app, p, q).iter().map(id_of).collect()
}

#[test]
fn create_applies_defaults_and_derives_the_slug() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let d = new_article(
        &app,
        &p,
        json!({"title": "How to reset your Password?", "content": "Click *Forgot*."}),
    );
    assert_eq!(field_names(&d), ARTICLE_FIELDS);
    let id = id_of(&d);
    assert!(id.starts_with("kba_") && id.len() == 16, "{id}");
    assert_eq!(d["project_id"], p.as_str());
    assert_eq!(d["title"], "How to reset your Password?");
    assert_eq!(d["slug"], "how-to-reset-your-password");
    assert_eq!(d["content"], "Click *Forgot*.");
    assert_eq!(d["category"], Value::Null);
    assert_eq!(d["status"], "draft");
    assert_eq!(d["is_public"], true);
    for counter in ["view_count", "helpful_count", "not_helpful_count"] {
        assert_eq!(d[counter], 0, "{counter}");
    }
    assert_eq!(d["ai_generated"], false);
    assert_eq!(d["updated_at"], d["created_at"]);
    assert_eq!(ok_get(&app, &app.admin_key, &article(&p, &id))["data"], d);

    let d = new_article(
        &app,
        &p,
        json!({"title": "Billing FAQ", "content": "x", "category": "billing", "status": "published", "is_public": false}),
    );
    assert_eq!(
        (
            d["category"].as_str(),
            d["status"].as_str(),
            d["is_public"].as_bool()
        ),
        (Some("billing"), Some("published"), Some(false))
    );
    let d = new_article(
        &app,
        &p,
        json!({"title": "Old", "content": "x", "status": "archived"}),
    );
    assert_eq!(d["status"], "archived");
    let raw = app.request_raw(
        Method::POST,
        &articles(&p),
        Some(&app.admin_key),
        r#"{"title":"Raw","content":"body"}"#,
    );
    assert_eq!(raw.status, 201, "{}", raw.body);
}

#[test]
fn same_title_gets_numbered_slugs() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let other = app.project("Other");
    let slugs: Vec<Value> = (0..3)
        .map(|_| {
            new_article(
                &app,
                &p,
                json!({"title": "Getting Started", "content": "x"}),
            )["slug"]
                .clone()
        })
        .collect();
    assert_eq!(
        slugs,
        [
            json!("getting-started"),
            json!("getting-started-2"),
            json!("getting-started-3")
        ]
    );
    // Slugs are unique per project only.
    assert_eq!(
        new_article(
            &app,
            &other,
            json!({"title": "Getting started!", "content": "y"})
        )["slug"],
        "getting-started"
    );
}

#[test]
fn create_validation() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let r = app.post(&articles(&p), &app.admin_key, json!({}));
    r.assert_error(400, "BAD_REQUEST");
    let mut paths = r.issue_paths();
    paths.sort();
    assert_eq!(paths, ["content", "title"]);
    assert!(
        r.body["issues"]
            .as_array()
            .unwrap()
            .iter()
            .all(|i| i["message"] == "Required"),
        "{}",
        r.body
    );
    for (body, field) in [
        (json!({"content": "x"}), "title"),
        (json!({"title": "x"}), "content"),
        (json!({"title": "  ", "content": "x"}), "title"),
        (json!({"title": "x", "content": ""}), "content"),
        (json!({"title": 1, "content": "x"}), "title"),
        (json!({"title": "t".repeat(256), "content": "x"}), "title"),
        (
            json!({"title": "x", "content": "x", "status": "live"}),
            "status",
        ),
        (
            json!({"title": "x", "content": "x", "is_public": "yes"}),
            "is_public",
        ),
        (
            json!({"title": "x", "content": "x", "category": 3}),
            "category",
        ),
    ] {
        let r = app.post(&articles(&p), &app.admin_key, body.clone());
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), [field], "{body}");
    }
    assert!(ids(&ok_get(&app, &app.admin_key, &articles(&p))).is_empty());
}

#[test]
fn unknown_articles_are_resource_not_found() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    for unknown in ["kba_aaaaaaaaaaaa", "nope"] {
        let path = article(&p, unknown);
        app.get(&path, &app.admin_key)
            .assert_error(404, "RESOURCE_NOT_FOUND");
        app.patch(&path, &app.admin_key, json!({"title": "x"}))
            .assert_error(404, "RESOURCE_NOT_FOUND");
        app.delete(&path, &app.admin_key)
            .assert_error(404, "RESOURCE_NOT_FOUND");
        app.request(
            Method::POST,
            &format!("{path}/publish"),
            Some(&app.admin_key),
            None,
        )
        .assert_error(404, "RESOURCE_NOT_FOUND");
    }
}

#[test]
fn update_keeps_the_slug_and_validates() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let a = new_article(
        &app,
        &p,
        json!({"title": "First title", "content": "body", "category": "c1"}),
    );
    let path = article(&p, &id_of(&a));
    let d = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"title": "Second title"}),
    );
    assert_eq!(d["title"], "Second title");
    assert_eq!(d["slug"], "first-title");
    assert_eq!(d["content"], "body");
    assert!(d["updated_at"].as_str().unwrap() >= a["updated_at"].as_str().unwrap());
    assert_eq!(d["created_at"], a["created_at"]);
    let d = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"content": "new body", "is_public": false, "status": "archived"}),
    );
    assert_eq!(
        (
            d["content"].as_str(),
            d["category"].is_string(),
            d["is_public"].as_bool()
        ),
        (Some("new body"), true, Some(false))
    );
    assert_eq!(d["status"], "archived");
    assert_eq!(ok_get(&app, &app.admin_key, &path)["data"], d);
    // The old slug stays taken: a new article with the first title is numbered.
    assert_eq!(
        new_article(&app, &p, json!({"title": "First title", "content": "x"}))["slug"],
        "first-title-2"
    );

    app.patch(&path, &app.admin_key, json!({}))
        .assert_error(400, "NO_UPDATES");
    app.patch(&path, &app.admin_key, json!({"slug": "x", "view_count": 5}))
        .assert_error(400, "NO_UPDATES");
    for (body, field) in [
        (json!({"status": "live"}), "status"),
        (json!({"title": ""}), "title"),
        (json!({"title": null}), "title"),
        (json!({"content": "  "}), "content"),
        (json!({"is_public": null}), "is_public"),
    ] {
        let r = app.patch(&path, &app.admin_key, body.clone());
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), [field], "{body}");
    }
    assert_eq!(ok_get(&app, &app.admin_key, &path)["data"], d);
}

#[test]
fn publish_is_idempotent_and_needs_no_body() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let a = new_article(&app, &p, json!({"title": "T", "content": "c"}));
    let id = id_of(&a);
    let first = publish(&app, &p, &id);
    assert_eq!(first["status"], "published");
    assert_eq!(first["slug"], a["slug"]);
    let again = publish(&app, &p, &id);
    assert_eq!(again, first);
    // A bodiless raw POST (no Content-Type, empty body), and one carrying an ignored body.
    let raw = app.request_raw(
        Method::POST,
        &format!("{}/publish", article(&p, &id)),
        Some(&app.admin_key),
        "",
    );
    assert_eq!(
        (raw.status, raw.data()["status"].as_str()),
        (200, Some("published")),
        "{}",
        raw.body
    );
    let with_body = app.post(
        &format!("{}/publish", article(&p, &id)),
        &app.admin_key,
        json!({"status": "draft"}),
    );
    assert_eq!(
        (with_body.status, with_body.data()["status"].as_str()),
        (200, Some("published"))
    );
    assert_eq!(
        ok_get(&app, &app.admin_key, &article(&p, &id))["data"]["status"],
        "published"
    );
    // Also from archived.
    let archived = id_of(&new_article(
        &app,
        &p,
        json!({"title": "A", "content": "c", "status": "archived"}),
    ));
    assert_eq!(publish(&app, &p, &archived)["status"], "published");
}

#[test]
fn delete_removes_the_article() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let a = id_of(&new_article(
        &app,
        &p,
        json!({"title": "Doomed", "content": "c"}),
    ));
    let keep = id_of(&new_article(
        &app,
        &p,
        json!({"title": "Kept", "content": "c"}),
    ));
    let r = app.delete(&article(&p, &a), &app.admin_key);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.body, json!({"data": {"id": a, "deleted": true}}));
    app.get(&article(&p, &a), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
    app.delete(&article(&p, &a), &app.admin_key)
        .assert_error(404, "RESOURCE_NOT_FOUND");
    assert_eq!(ids(&ok_get(&app, &app.admin_key, &articles(&p))), [keep]);
    // Its slug is free again.
    assert_eq!(
        new_article(&app, &p, json!({"title": "Doomed", "content": "c"}))["slug"],
        "doomed"
    );
}

#[test]
fn list_filters_sort_and_pagination() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let a1 = id_of(&new_article(
        &app,
        &p,
        json!({"title": "Refund policy", "content": "Money back.", "category": "billing"}),
    ));
    let a2 = id_of(&new_article(
        &app,
        &p,
        json!({"title": "Shipping", "content": "We REFUND shipping.", "category": "shipping", "status": "published"}),
    ));
    let a3 = id_of(&new_article(
        &app,
        &p,
        json!({"title": "Invoices", "content": "PDF", "category": "billing", "status": "archived"}),
    ));
    let list = |query: &str| -> Vec<String> {
        let body = ok_get(&app, &app.admin_key, &format!("{}?{query}", articles(&p)));
        assert_page_shape(&body);
        ids(&body)
    };
    assert_eq!(list(""), [a3.clone(), a2.clone(), a1.clone()]);
    assert_eq!(list("status=draft"), [a1.as_str()]);
    assert_eq!(list("status=published"), [a2.as_str()]);
    assert_eq!(list("status=archived"), [a3.as_str()]);
    assert_eq!(list("category=billing"), [a3.clone(), a1.clone()]);
    assert_eq!(list("category=Billing"), Vec::<String>::new());
    assert_eq!(list("q=refund"), [a2.clone(), a1.clone()]);
    assert_eq!(list("q=MONEY"), [a1.as_str()]);
    assert_eq!(list("q=pdf&category=billing"), [a3.as_str()]);
    assert_eq!(list("q=refund&status=published"), [a2.as_str()]);
    assert_eq!(list("order=asc"), [a1.clone(), a2.clone(), a3.clone()]);
    assert_eq!(
        list("sort=created_at&order=desc"),
        [a3.clone(), a2.clone(), a1.clone()]
    );
    ok_patch(
        &app,
        &app.admin_key,
        &article(&p, &a1),
        json!({"category": "billing"}),
    );
    assert_eq!(
        list("sort=updated_at"),
        [a1.clone(), a3.clone(), a2.clone()]
    );
    assert_eq!(
        list("sort=updated_at&order=asc"),
        [a2.clone(), a3.clone(), a1.clone()]
    );
    publish(&app, &p, &a2); // already published: nothing changes
    assert_eq!(
        list("sort=updated_at"),
        [a1.clone(), a3.clone(), a2.clone()]
    );
    publish(&app, &p, &a3);
    assert_eq!(
        list("sort=updated_at"),
        [a3.clone(), a1.clone(), a2.clone()]
    );

    assert_eq!(
        walk(
            &app,
            &app.admin_key,
            &format!("{}?limit=1", articles(&p)),
            |_| {}
        ),
        [a3.clone(), a2.clone(), a1.clone()]
    );
    assert_eq!(
        walk(
            &app,
            &app.admin_key,
            &format!("{}?limit=2&order=asc", articles(&p)),
            |_| {}
        ),
        [a1.clone(), a2.clone(), a3.clone()]
    );
    assert_eq!(list("limit=1000").len(), 3);
    for bad in [
        "status=live",
        "sort=title",
        "order=sideways",
        "limit=0",
        "limit=x",
        "cursor=%21",
    ] {
        app.get(&format!("{}?{bad}", articles(&p)), &app.admin_key)
            .assert_error(400, "BAD_REQUEST");
    }
}

#[test]
fn search_requires_q() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    for path in [
        pp(&p, "/kb/search"),
        pp(&p, "/kb/search?q="),
        pp(&p, "/kb/search?q=%20%20"),
        pp(&p, "/kb/search?query=x"),
    ] {
        app.get(&path, &app.admin_key)
            .assert_error(400, "BAD_REQUEST");
    }
    // No published articles: no hits.
    assert!(hits(&app, &p, "anything").is_empty());
}

#[test]
fn search_hits_have_the_contract_shape_and_at_most_ten() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    for i in 0..12 {
        published(
            &app,
            &p,
            &format!("Widget guide {i}"),
            &format!("Install the widget on page {i}."),
        );
    }
    published(&app, &p, "Unrelated", "Nothing to see");
    let found = hits(&app, &p, "widget");
    assert_eq!(found.len(), 10);
    let mut last = f64::INFINITY;
    for hit in &found {
        for field in ["id", "title", "content", "slug"] {
            assert!(hit[field].is_string(), "{field} in {hit}");
        }
        let score = hit["score"]
            .as_f64()
            .unwrap_or_else(|| panic!("score in {hit}"));
        assert!(score > 0.0 && score <= 1.0, "{hit}");
        assert!(score <= last, "hits best first");
        last = score;
        assert!(hit["title"].as_str().unwrap().starts_with("Widget guide"));
    }
    let one = hits(&app, &p, "Unrelated");
    assert_eq!(one.len(), 1);
    let stored = ok_get(&app, &app.admin_key, &article(&p, &id_of(&one[0])))["data"].clone();
    for field in ["id", "title", "content", "slug"] {
        assert_eq!(one[0][field], stored[field], "{field}");
    }
}

#[test]
fn only_published_articles_are_found() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let live = published(&app, &p, "Zebra care", "Feed the zebra.");
    let draft = id_of(&new_article(
        &app,
        &p,
        json!({"title": "Zebra draft", "content": "zebra"}),
    ));
    new_article(
        &app,
        &p,
        json!({"title": "Zebra archive", "content": "zebra", "status": "archived"}),
    );
    // is_public does not matter.
    let private = id_of(&new_article(
        &app,
        &p,
        json!({"title": "Zebra private", "content": "x", "status": "published", "is_public": false}),
    ));
    let mut found = hit_ids(&app, &p, "zebra");
    found.sort();
    let mut expected = vec![live.clone(), private.clone()];
    expected.sort();
    assert_eq!(found, expected);
    publish(&app, &p, &draft);
    assert_eq!(hit_ids(&app, &p, "zebra").len(), 3);
    assert!(hit_ids(&app, &p, "archive").is_empty());
}

#[test]
fn title_matches_outrank_body_matches() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let body_only = published(
        &app,
        &p,
        "Shipping times",
        "We refund shipping costs sometimes.",
    );
    let title = published(&app, &p, "Refund policy", "How money comes back to you.");
    published(&app, &p, "Other", "Nothing relevant here.");
    let found = hits(&app, &p, "refund");
    assert_eq!(
        found.iter().map(id_of).collect::<Vec<_>>(),
        [title, body_only]
    );
    assert!(found[0]["score"].as_f64().unwrap() > found[1]["score"].as_f64().unwrap());
    // Case and punctuation in the query do not matter.
    assert_eq!(hit_ids(&app, &p, "REFUND?!"), hit_ids(&app, &p, "refund"));
}

#[test]
fn unpublishing_deleting_and_editing_update_the_index() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let a = published(&app, &p, "Alpha article", "bravo words here");
    let b = published(&app, &p, "Second article", "bravo again");
    assert_eq!(hit_ids(&app, &p, "bravo").len(), 2);

    // Unpublish.
    ok_patch(
        &app,
        &app.admin_key,
        &article(&p, &a),
        json!({"status": "draft"}),
    );
    assert_eq!(hit_ids(&app, &p, "bravo"), [b.as_str()]);
    assert!(hit_ids(&app, &p, "alpha").is_empty());
    // Archive, then republish.
    publish(&app, &p, &a);
    assert_eq!(hit_ids(&app, &p, "alpha"), [a.as_str()]);
    ok_patch(
        &app,
        &app.admin_key,
        &article(&p, &a),
        json!({"status": "archived"}),
    );
    assert!(hit_ids(&app, &p, "alpha").is_empty());
    publish(&app, &p, &a);

    // Editing a published article re-indexes it.
    ok_patch(
        &app,
        &app.admin_key,
        &article(&p, &a),
        json!({"content": "charlie delta"}),
    );
    assert_eq!(hit_ids(&app, &p, "bravo"), [b.as_str()]);
    assert_eq!(hit_ids(&app, &p, "charlie"), [a.as_str()]);
    let hit = &hits(&app, &p, "delta")[0];
    assert_eq!(hit["content"], "charlie delta");
    ok_patch(
        &app,
        &app.admin_key,
        &article(&p, &a),
        json!({"title": "Echo"}),
    );
    assert!(hit_ids(&app, &p, "alpha").is_empty());
    assert_eq!(hit_ids(&app, &p, "echo"), [a.as_str()]);
    assert_eq!(hits(&app, &p, "echo")[0]["title"], "Echo");

    // Deleting removes it.
    app.delete(&article(&p, &b), &app.admin_key);
    assert!(hit_ids(&app, &p, "bravo").is_empty());
    app.delete(&article(&p, &a), &app.admin_key);
    assert!(hit_ids(&app, &p, "charlie").is_empty());
    assert!(hit_ids(&app, &p, "article").is_empty());
}

#[test]
fn kb_routes_require_kb_scopes() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let a = published(&app, &p, "Scoped", "content");
    let reader = app.key(&["kb:read"]);
    assert_eq!(app.get(&search(&p, "scoped"), &reader).status, 200);
    assert_eq!(app.get(&articles(&p), &reader).status, 200);
    app.post(
        &articles(&p),
        &reader,
        json!({"title": "x", "content": "y"}),
    )
    .assert_error(403, "INSUFFICIENT_SCOPE");
    app.delete(&article(&p, &a), &reader)
        .assert_error(403, "INSUFFICIENT_SCOPE");
    app.request(
        Method::POST,
        &format!("{}/publish", article(&p, &a)),
        Some(&reader),
        None,
    )
    .assert_error(403, "INSUFFICIENT_SCOPE");
    let writer = app.key(&["kb:write"]);
    assert_eq!(
        app.patch(&article(&p, &a), &writer, json!({"title": "Edited"}))
            .status,
        200
    );
    let other = app.key(&["conversations:read"]);
    app.get(&search(&p, "scoped"), &other)
        .assert_error(403, "INSUFFICIENT_SCOPE");
}

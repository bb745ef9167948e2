//! Contacts: its endpoints (OpenAPI document), docs/api/README.md, the OpenAPI document.

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;
use crate::shapes::*;

fn count(app: &TestApp, p: &str) -> usize {
    all_ids(app, &app.admin_key, &contacts(p)).len()
}

#[test]
fn upsert_creates_with_defaults() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let d = new_contact(&app, &p, json!({"email": "ann@example.com"}));
    assert_eq!(field_names(&d), CONTACT_FIELDS);
    let id = id_of(&d);
    assert!(id.starts_with("ct_") && id.len() == 15, "{id}");
    assert_eq!(d["project_id"], p.as_str());
    assert_eq!(d["email"], "ann@example.com");
    for field in [
        "name",
        "phone",
        "external_id",
        "company",
        "job_title",
        "last_seen_at",
    ] {
        assert_eq!(d[field], Value::Null, "{field}");
    }
    assert_eq!(d["metadata"], json!({}));
    assert!(d["created_at"].as_str().unwrap().ends_with('Z'));

    let full = json!({
        "email": "bob@example.com",
        "name": "Bob Smith",
        "phone": "+15551234567",
        "external_id": "user_123",
        "company": "Acme",
        "job_title": "CTO",
        "metadata": {"plan": "pro", "seats": 3, "beta": true, "tags": ["a"], "nested": {"x": 1}},
    });
    let d = new_contact(&app, &p, full.clone());
    for field in [
        "email",
        "name",
        "phone",
        "external_id",
        "company",
        "job_title",
        "metadata",
    ] {
        assert_eq!(d[field], full[field], "{field}");
    }
    assert_eq!(d["last_seen_at"], Value::Null);
    assert_eq!(
        ok_get(&app, &app.admin_key, &contact(&p, &id_of(&d)))["data"],
        d
    );
    // Only a name, or only an external id, is enough.
    assert_eq!(
        new_contact(&app, &p, json!({"name": "Only Name"}))["email"],
        Value::Null
    );
    assert_eq!(
        new_contact(&app, &p, json!({"external_id": "ext-only"}))["name"],
        Value::Null
    );
    // Without Content-Type.
    let raw = app.request_raw(
        Method::POST,
        &contacts(&p),
        Some(&app.admin_key),
        r#"{"name":"Raw"}"#,
    );
    assert_eq!(raw.status, 201, "{}", raw.body);
    assert_eq!(count(&app, &p), 5);
}

#[test]
fn upsert_by_external_id_updates_that_contact() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let first = new_contact(
        &app,
        &p,
        json!({"external_id": "u-1", "name": "Ann", "email": "ann@example.com", "company": "Acme"}),
    );
    let r = app.post(
        &contacts(&p),
        &app.admin_key,
        json!({"external_id": "u-1", "name": "Ann Lee", "job_title": "CEO"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let d = r.data();
    assert_eq!(id_of(d), id_of(&first));
    assert_eq!(d["name"], "Ann Lee");
    assert_eq!(d["job_title"], "CEO");
    // Fields not supplied are kept.
    assert_eq!(d["email"], "ann@example.com");
    assert_eq!(d["company"], "Acme");
    assert_eq!(d["created_at"], first["created_at"]);
    assert_eq!(count(&app, &p), 1);
    // external_id matches exactly (case-sensitive).
    let other = new_contact(&app, &p, json!({"external_id": "U-1"}));
    assert_ne!(id_of(&other), id_of(&first));
    assert_eq!(count(&app, &p), 2);
}

/// Upserts of one `external_id` racing from many connections make one contact: each one
/// looks the contact up and writes in one transaction (a shared commit on redb; a
/// serializable transaction, run again after a conflict, on PostgreSQL).
#[test]
fn concurrent_upserts_of_one_external_id_make_one_contact() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let answers: Vec<(u16, String)> = std::thread::scope(|threads| {
        let racing: Vec<_> = (0..32)
            .map(|i| {
                let (app, p) = (&app, &p);
                threads.spawn(move || {
                    let r = app.post(
                        &contacts(p),
                        &app.admin_key,
                        json!({"external_id": "racer", "name": format!("Racer {i}")}),
                    );
                    (r.status, id_of(r.data()))
                })
            })
            .collect();
        racing.into_iter().map(|t| t.join().unwrap()).collect()
    });
    // On PostgreSQL a racer that meets a conflict ten times gives up with a retryable 503
    // (`SERVICE_UNAVAILABLE`), which a loaded machine can reach; it wrote nothing.
    let written: Vec<&(u16, String)> = answers
        .iter()
        .filter(|(status, _)| *status == 201)
        .collect();
    assert!(
        !written.is_empty()
            && answers
                .iter()
                .all(|(status, _)| matches!(status, 201 | 503)),
        "{answers:?}"
    );
    let ids: std::collections::BTreeSet<&String> = written.iter().map(|(_, id)| id).collect();
    assert_eq!(ids.len(), 1, "{answers:?}");
    assert_eq!(count(&app, &p), 1);
}

#[test]
fn upsert_by_email_is_case_insensitive() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let first = new_contact(&app, &p, json!({"email": "Ann@Example.com", "name": "Ann"}));
    let d = new_contact(&app, &p, json!({"email": "ann@EXAMPLE.COM", "phone": "+1"}));
    assert_eq!(id_of(&d), id_of(&first));
    assert_eq!(d["phone"], "+1");
    assert_eq!(d["name"], "Ann");
    assert_eq!(
        d["email"].as_str().unwrap().to_lowercase(),
        "ann@example.com"
    );
    assert_eq!(count(&app, &p), 1);
    // A name alone never matches: two contacts named alike are two contacts.
    let a = new_contact(&app, &p, json!({"name": "Sam"}));
    let b = new_contact(&app, &p, json!({"name": "Sam"}));
    assert_ne!(id_of(&a), id_of(&b));
    assert_eq!(count(&app, &p), 3);
}

#[test]
fn external_id_match_wins_over_email_match() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let by_ext = new_contact(
        &app,
        &p,
        json!({"external_id": "u-1", "email": "one@example.com"}),
    );
    let by_email = new_contact(&app, &p, json!({"email": "two@example.com", "name": "Two"}));
    let d = new_contact(
        &app,
        &p,
        json!({"external_id": "u-1", "email": "two@example.com", "name": "Winner"}),
    );
    assert_eq!(id_of(&d), id_of(&by_ext));
    assert_eq!(d["name"], "Winner");
    assert_eq!(d["email"], "two@example.com");
    let untouched = ok_get(&app, &app.admin_key, &contact(&p, &id_of(&by_email)))["data"].clone();
    assert_eq!(untouched, by_email);
    // An external id nobody has falls back to the email match. (Both contacts now hold
    // two@example.com, so use a third address, held by one contact only.)
    let third = new_contact(
        &app,
        &p,
        json!({"email": "three@example.com", "name": "Three"}),
    );
    let d = new_contact(
        &app,
        &p,
        json!({"external_id": "u-2", "email": "THREE@example.com"}),
    );
    assert_eq!(id_of(&d), id_of(&third));
    assert_eq!(d["external_id"], "u-2");
    assert_eq!(d["name"], "Three");
    assert_eq!(count(&app, &p), 3);
    // Neither matches: a new contact.
    let d = new_contact(
        &app,
        &p,
        json!({"external_id": "u-4", "email": "four@example.com"}),
    );
    assert!(
        ![&by_ext, &by_email, &third]
            .iter()
            .any(|c| id_of(c) == id_of(&d))
    );
    assert_eq!(count(&app, &p), 4);
}

#[test]
fn metadata_merges_shallowly_on_upsert_and_patch() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let c = new_contact(
        &app,
        &p,
        json!({"email": "m@example.com", "metadata": {"plan": "pro", "seats": 3, "nested": {"a": 1, "b": 2}}}),
    );
    let d = new_contact(
        &app,
        &p,
        json!({"email": "m@example.com", "metadata": {"seats": 5, "nested": {"c": 3}}}),
    );
    assert_eq!(id_of(&d), id_of(&c));
    assert_eq!(
        d["metadata"],
        json!({"plan": "pro", "seats": 5, "nested": {"c": 3}})
    );
    // An upsert without metadata keeps it.
    let d = new_contact(&app, &p, json!({"email": "m@example.com", "name": "M"}));
    assert_eq!(
        d["metadata"],
        json!({"plan": "pro", "seats": 5, "nested": {"c": 3}})
    );
    let path = contact(&p, &id_of(&c));
    let d = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"metadata": {"region": "eu", "plan": "team"}}),
    );
    assert_eq!(
        d["metadata"],
        json!({"plan": "team", "seats": 5, "nested": {"c": 3}, "region": "eu"})
    );
    let d = ok_patch(&app, &app.admin_key, &path, json!({"metadata": {}}));
    assert_eq!(
        d["metadata"],
        json!({"plan": "team", "seats": 5, "nested": {"c": 3}, "region": "eu"})
    );
    let d = ok_patch(&app, &app.admin_key, &path, json!({"name": "Renamed"}));
    assert_eq!(d["metadata"]["region"], "eu");
    assert_eq!(ok_get(&app, &app.admin_key, &path)["data"], d);
}

#[test]
fn upsert_validation() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    for body in [
        json!({}),
        json!({"phone": "+1", "company": "Acme"}),
        json!({"email": null, "name": null}),
        json!({"metadata": {}}),
    ] {
        let r = app.post(&contacts(&p), &app.admin_key, body.clone());
        r.assert_error(400, "BAD_REQUEST");
        assert!(!r.issue_paths().is_empty(), "{body}: {}", r.body);
    }
    for bad in [
        "not-an-email",
        "a@b",
        "@example.com",
        "a b@example.com",
        "ann@",
        "a@@example.com",
    ] {
        let r = app.post(
            &contacts(&p),
            &app.admin_key,
            json!({"email": bad, "name": "X"}),
        );
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(
            r.body["issues"],
            json!([{"path": "email", "message": "Invalid email"}]),
            "{bad}"
        );
    }
    for (body, field) in [
        (json!({"name": "X", "metadata": "plan=pro"}), "metadata"),
        (json!({"name": "X", "metadata": [1, 2]}), "metadata"),
        (json!({"name": "X", "metadata": 5}), "metadata"),
        (
            json!({"email": "n@example.com", "name": "n".repeat(256)}),
            "name",
        ),
        (json!({"external_id": "e", "name": 5}), "name"),
        (json!({"email": 5, "name": "X"}), "email"),
        (json!({"name": "X", "phone": true}), "phone"),
    ] {
        let r = app.post(&contacts(&p), &app.admin_key, body.clone());
        r.assert_error(400, "BAD_REQUEST");
        assert_eq!(r.issue_paths(), [field], "{body}");
    }
    app.post(&contacts(&p), &app.admin_key, json!("x"))
        .assert_error(400, "BAD_JSON");
    assert_eq!(count(&app, &p), 0);
}

#[test]
fn get_unknown_contact_is_404() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let conversation = id_of(&new_conversation(&app, &p, json!({})));
    for unknown in ["ct_aaaaaaaaaaaa", "ct_", "nope", conversation.as_str()] {
        app.get(&contact(&p, unknown), &app.admin_key)
            .assert_error(404, "CONTACT_NOT_FOUND");
        app.patch(&contact(&p, unknown), &app.admin_key, json!({"name": "x"}))
            .assert_error(404, "CONTACT_NOT_FOUND");
    }
}

#[test]
fn patch_updates_clears_and_validates() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let c = new_contact(
        &app,
        &p,
        json!({"email": "old@example.com", "name": "Old", "company": "Acme", "external_id": "x-1", "phone": "+1"}),
    );
    let path = contact(&p, &id_of(&c));
    let d = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"name": "New", "company": null, "job_title": "VP"}),
    );
    assert_eq!(d["name"], "New");
    assert_eq!(d["company"], Value::Null);
    assert_eq!(d["job_title"], "VP");
    assert_eq!(d["phone"], "+1");
    assert_eq!(d["created_at"], c["created_at"]);
    // Every string field can be cleared, even all identifying ones.
    let d = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"email": null, "phone": null, "external_id": null}),
    );
    for field in ["email", "phone", "external_id", "company"] {
        assert_eq!(d[field], Value::Null, "{field}");
    }
    assert_eq!(ok_get(&app, &app.admin_key, &path)["data"], d);
    // The cleared email and external id no longer match an upsert.
    let fresh = new_contact(&app, &p, json!({"email": "old@example.com"}));
    assert_ne!(id_of(&fresh), id_of(&c));
    let fresh2 = new_contact(&app, &p, json!({"external_id": "x-1"}));
    assert_ne!(id_of(&fresh2), id_of(&c));
    // A new external id / email does.
    ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"external_id": "x-9", "email": "new@example.com"}),
    );
    assert_eq!(
        id_of(&new_contact(&app, &p, json!({"external_id": "x-9"}))),
        id_of(&c)
    );
    // Changing an email to one another contact holds is allowed.
    let d = ok_patch(
        &app,
        &app.admin_key,
        &path,
        json!({"email": "OLD@example.com"}),
    );
    assert_eq!(d["email"], "OLD@example.com");

    app.patch(&path, &app.admin_key, json!({}))
        .assert_error(400, "NO_UPDATES");
    app.patch(
        &path,
        &app.admin_key,
        json!({"id": "ct_aaaaaaaaaaaa", "created_at": "2020-01-01T00:00:00Z"}),
    )
    .assert_error(400, "NO_UPDATES");
    let r = app.patch(&path, &app.admin_key, json!({"email": "bad"}));
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(
        r.body["issues"],
        json!([{"path": "email", "message": "Invalid email"}])
    );
    let r = app.patch(&path, &app.admin_key, json!({"metadata": "x"}));
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["metadata"]);
    let r = app.patch(&path, &app.admin_key, json!({"metadata": null}));
    r.assert_error(400, "BAD_REQUEST");
    assert_eq!(r.issue_paths(), ["metadata"]);
    let raw = app.request_raw(
        Method::PATCH,
        &path,
        Some(&app.admin_key),
        r#"{"name":"Raw"}"#,
    );
    assert_eq!(
        (raw.status, raw.data()["name"].as_str()),
        (200, Some("Raw")),
        "{}",
        raw.body
    );
}

#[test]
fn list_newest_first_with_filters_and_pagination() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    let ann = id_of(&new_contact(
        &app,
        &p,
        json!({"name": "Ann Lee", "email": "ann@acme.io", "external_id": "e-1"}),
    ));
    let bob = id_of(&new_contact(
        &app,
        &p,
        json!({"name": "Bob", "email": "Robert@Example.com"}),
    ));
    let cat = id_of(&new_contact(
        &app,
        &p,
        json!({"name": "Catherine LEE", "external_id": "E-1"}),
    ));
    let dan = id_of(&new_contact(&app, &p, json!({"email": "dan@acme.io"})));
    let list = |query: &str| -> Vec<String> {
        let body = ok_get(&app, &app.admin_key, &format!("{}?{query}", contacts(&p)));
        assert_page_shape(&body);
        ids(&body)
    };
    assert_eq!(
        list(""),
        [dan.clone(), cat.clone(), bob.clone(), ann.clone()]
    );
    assert_eq!(list("q=lee"), [cat.clone(), ann.clone()]);
    assert_eq!(list("q=ACME"), [dan.clone(), ann.clone()]);
    assert_eq!(list("q=robert%40"), [bob.as_str()]);
    assert_eq!(list("q=zzz"), Vec::<String>::new());
    assert_eq!(list("email=robert%40example.com"), [bob.as_str()]);
    assert_eq!(list("email=ROBERT%40EXAMPLE.COM"), [bob.as_str()]);
    assert_eq!(list("email=robert"), Vec::<String>::new());
    assert_eq!(list("email=acme.io"), Vec::<String>::new());
    assert_eq!(list("external_id=e-1"), [ann.as_str()]);
    assert_eq!(list("external_id=E-1"), [cat.as_str()]);
    assert_eq!(list("external_id=e"), Vec::<String>::new());
    assert_eq!(list("q=lee&external_id=E-1"), [cat.as_str()]);
    // An upsert that updates does not move the contact.
    new_contact(
        &app,
        &p,
        json!({"external_id": "e-1", "name": "Ann Lee-Smith"}),
    );
    assert_eq!(
        list(""),
        [dan.clone(), cat.clone(), bob.clone(), ann.clone()]
    );

    assert_eq!(
        walk(
            &app,
            &app.admin_key,
            &format!("{}?limit=3", contacts(&p)),
            |_| {}
        ),
        [dan.clone(), cat.clone(), bob.clone(), ann.clone()]
    );
    assert_eq!(
        walk(
            &app,
            &app.admin_key,
            &format!("{}?limit=1&q=lee", contacts(&p)),
            |_| {}
        ),
        [cat, ann]
    );
    let body = ok_get(
        &app,
        &app.admin_key,
        &format!("{}?limit=1000", contacts(&p)),
    );
    assert_eq!(ids(&body).len(), 4);
    for bad in ["limit=0", "limit=many", "cursor=%21"] {
        app.get(&format!("{}?{bad}", contacts(&p)), &app.admin_key)
            .assert_error(400, "BAD_REQUEST");
    }
}

#[test]
fn list_default_page_is_50_and_max_100() {
    let app = TestApp::spawn();
    let p = app.project("Main");
    for i in 0..101 {
        new_contact(&app, &p, json!({"name": format!("c{i}")}));
    }
    let body = ok_get(&app, &app.admin_key, &contacts(&p));
    assert_eq!(ids(&body).len(), 50);
    assert_eq!(body["data"][0]["name"], "c100");
    assert_eq!(body["has_more"], true);
    let body = ok_get(&app, &app.admin_key, &format!("{}?limit=500", contacts(&p)));
    assert_eq!(ids(&body).len(), 100);
    assert_eq!(body["has_more"], true);
    assert_eq!(count(&app, &p), 101);
}

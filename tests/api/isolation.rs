//! Project isolation (docs/administration.md and docs/design.md and docs/api/errors.md): objects of
//! one project are invisible from every other project, of the same organisation or not.

use reqwest::Method;
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;

/// One object of every kind in a project.
struct Objects {
    conversation: String,
    contact: String,
    article: String,
}

fn fill(app: &TestApp, key: &str, p: &str, word: &str) -> Objects {
    let contact = id_of(&created(
        app,
        key,
        &contacts(p),
        json!({"email": format!("{word}@example.com"), "external_id": format!("ext-{word}"), "name": word}),
    ));
    let conversation = id_of(&created(
        app,
        key,
        &convs(p),
        json!({"subject": format!("{word} subject"), "contact_id": contact}),
    ));
    created(
        app,
        key,
        &msgs(p, &conversation),
        json!({"content": format!("{word} message")}),
    );
    let article = id_of(&created(
        app,
        key,
        &articles(p),
        json!({"title": format!("{word} article"), "content": format!("{word} body"), "status": "published"}),
    ));
    Objects {
        conversation,
        contact,
        article,
    }
}

/// Every object route of `o`'s objects under project `p`, with the code that an object of
/// another project gets.
fn object_requests(p: &str, o: &Objects) -> Vec<(Method, String, Option<Value>, &'static str)> {
    let conv_path = conv(p, &o.conversation);
    let contact_path = contact(p, &o.contact);
    let article_path = article(p, &o.article);
    vec![
        (
            Method::GET,
            conv_path.clone(),
            None,
            "CONVERSATION_NOT_FOUND",
        ),
        (
            Method::PATCH,
            conv_path,
            Some(json!({"status": "closed"})),
            "CONVERSATION_NOT_FOUND",
        ),
        (
            Method::GET,
            msgs(p, &o.conversation),
            None,
            "CONVERSATION_NOT_FOUND",
        ),
        (
            Method::POST,
            msgs(p, &o.conversation),
            Some(json!({"content": "intruder"})),
            "CONVERSATION_NOT_FOUND",
        ),
        (
            Method::POST,
            convs(p),
            Some(json!({"contact_id": o.contact})),
            "CONTACT_NOT_FOUND",
        ),
        (Method::GET, contact_path.clone(), None, "CONTACT_NOT_FOUND"),
        (
            Method::PATCH,
            contact_path,
            Some(json!({"name": "intruder"})),
            "CONTACT_NOT_FOUND",
        ),
        (
            Method::GET,
            article_path.clone(),
            None,
            "RESOURCE_NOT_FOUND",
        ),
        (
            Method::PATCH,
            article_path.clone(),
            Some(json!({"title": "intruder"})),
            "RESOURCE_NOT_FOUND",
        ),
        (
            Method::POST,
            format!("{article_path}/publish"),
            None,
            "RESOURCE_NOT_FOUND",
        ),
        (Method::DELETE, article_path, None, "RESOURCE_NOT_FOUND"),
    ]
}

/// Every route of project `p` (lists, creates and object routes).
fn all_project_requests(p: &str, o: &Objects) -> Vec<(Method, String, Option<Value>)> {
    let mut out: Vec<(Method, String, Option<Value>)> = object_requests(p, o)
        .into_iter()
        .map(|(m, path, body, _)| (m, path, body))
        .collect();
    out.extend([
        (Method::GET, convs(p), None),
        (Method::POST, convs(p), Some(json!({}))),
        (Method::GET, contacts(p), None),
        (Method::POST, contacts(p), Some(json!({"name": "x"}))),
        (Method::GET, articles(p), None),
        (
            Method::POST,
            articles(p),
            Some(json!({"title": "x", "content": "y"})),
        ),
        (Method::GET, search(p, "anything"), None),
    ]);
    out
}

/// A's objects, read through A, exactly as they were.
fn snapshot(app: &TestApp, p: &str, o: &Objects) -> Vec<Value> {
    vec![
        ok_get(app, &app.admin_key, &conv(p, &o.conversation))["data"].clone(),
        ok_get(app, &app.admin_key, &msgs(p, &o.conversation))["data"].clone(),
        ok_get(app, &app.admin_key, &contact(p, &o.contact))["data"].clone(),
        ok_get(app, &app.admin_key, &article(p, &o.article))["data"].clone(),
    ]
}

#[test]
fn objects_of_another_project_of_the_same_org_are_not_found() {
    let app = TestApp::spawn();
    let a = app.project("Project A");
    let b = app.project("Project B");
    let objects = fill(&app, &app.admin_key, &a, "apple");
    fill(&app, &app.admin_key, &b, "banana");
    let before = snapshot(&app, &a, &objects);
    for (method, path, body, code) in object_requests(&b, &objects) {
        let r = app.request(method.clone(), &path, Some(&app.admin_key), body);
        assert_eq!(
            (r.status, r.code()),
            (404, code),
            "{method} {path}: {}",
            r.body
        );
        r.assert_error(404, code);
    }
    assert_eq!(snapshot(&app, &a, &objects), before);
}

#[test]
fn lists_and_search_of_a_project_never_show_another_projects_objects() {
    let app = TestApp::spawn();
    let a = app.project("Project A");
    let b = app.project("Project B");
    let oa = fill(&app, &app.admin_key, &a, "apple");
    let ob = fill(&app, &app.admin_key, &b, "banana");
    assert_eq!(
        all_ids(&app, &app.admin_key, &convs(&b)),
        [ob.conversation.as_str()]
    );
    assert_eq!(
        all_ids(&app, &app.admin_key, &contacts(&b)),
        [ob.contact.as_str()]
    );
    assert_eq!(
        all_ids(&app, &app.admin_key, &articles(&b)),
        [ob.article.as_str()]
    );
    assert_eq!(
        ids(&ok_get(&app, &app.admin_key, &msgs(&b, &ob.conversation))).len(),
        1
    );
    // Filters that name A's objects find nothing in B.
    assert!(
        ids(&ok_get(
            &app,
            &app.admin_key,
            &format!("{}?contact_id={}", convs(&b), oa.contact)
        ))
        .is_empty()
    );
    assert!(
        ids(&ok_get(
            &app,
            &app.admin_key,
            &format!("{}?q=apple", convs(&b))
        ))
        .is_empty()
    );
    assert!(
        ids(&ok_get(
            &app,
            &app.admin_key,
            &format!("{}?email=apple%40example.com", contacts(&b))
        ))
        .is_empty()
    );
    assert!(
        ids(&ok_get(
            &app,
            &app.admin_key,
            &format!("{}?external_id=ext-apple", contacts(&b))
        ))
        .is_empty()
    );
    assert!(
        ids(&ok_get(
            &app,
            &app.admin_key,
            &format!("{}?q=apple", articles(&b))
        ))
        .is_empty()
    );
    assert!(
        ok_get(&app, &app.admin_key, &search(&b, "apple"))["data"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    assert_eq!(
        ok_get(&app, &app.admin_key, &search(&b, "banana"))["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(
        ok_get(&app, &app.admin_key, &search(&a, "apple"))["data"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    // An upsert in B with A's contact's email and external id makes a new contact in B.
    let before = ok_get(&app, &app.admin_key, &contact(&a, &oa.contact))["data"].clone();
    let twin = new_contact(
        &app,
        &b,
        json!({"email": "apple@example.com", "external_id": "ext-apple", "name": "Twin"}),
    );
    assert_ne!(id_of(&twin), oa.contact);
    assert_eq!(twin["project_id"], b.as_str());
    assert_eq!(
        ok_get(&app, &app.admin_key, &contact(&a, &oa.contact))["data"],
        before
    );
    assert_eq!(
        all_ids(&app, &app.admin_key, &contacts(&a)),
        [oa.contact.as_str()]
    );
    // Same slug in both projects.
    let slug_b =
        new_article(&app, &b, json!({"title": "apple article", "content": "x"}))["slug"].clone();
    assert_eq!(slug_b, "apple-article");
}

#[test]
fn a_project_of_another_org_is_forbidden_and_its_objects_invisible() {
    let app = TestApp::spawn();
    let a = app.project("Project A");
    let oa = fill(&app, &app.admin_key, &a, "apple");
    let (org2, key2) = app.new_org("Other org", &["admin"]);
    let r = app.post(
        &format!("/api/v1/orgs/{org2}/projects"),
        &key2,
        json!({"name": "Project C"}),
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let c = id_of(r.data());
    let oc = fill(&app, &key2, &c, "cherry");
    let before = snapshot(&app, &a, &oa);

    // A's objects under org2's own project: simply not there.
    for (method, path, body, code) in object_requests(&c, &oa) {
        let r = app.request(method.clone(), &path, Some(&key2), body);
        assert_eq!(
            (r.status, r.code()),
            (404, code),
            "{method} {path}: {}",
            r.body
        );
    }
    // Project A's paths with org2's key: 403, whatever the object.
    for (method, path, body) in all_project_requests(&a, &oa) {
        let r = app.request(method.clone(), &path, Some(&key2), body);
        assert_eq!(
            (r.status, r.code()),
            (403, "API_KEY_PROJECT_MISMATCH"),
            "{method} {path}: {}",
            r.body
        );
        r.assert_error(403, "API_KEY_PROJECT_MISMATCH");
    }
    // And the other way round.
    for (method, path, body) in all_project_requests(&c, &oc) {
        let r = app.request(method.clone(), &path, Some(&app.admin_key), body);
        assert_eq!(
            (r.status, r.code()),
            (403, "API_KEY_PROJECT_MISMATCH"),
            "{method} {path}: {}",
            r.body
        );
    }
    // The project is checked before the body is read.
    let r = app.request_raw(Method::POST, &convs(&a), Some(&key2), "{not json");
    r.assert_error(403, "API_KEY_PROJECT_MISMATCH");
    assert_eq!(snapshot(&app, &a, &oa), before);
    assert_eq!(
        all_ids(&app, &app.admin_key, &convs(&a)),
        [oa.conversation.as_str()]
    );
    assert_eq!(all_ids(&app, &key2, &convs(&c)), [oc.conversation.as_str()]);
}

#[test]
fn unknown_or_malformed_projects_are_project_not_found() {
    let app = TestApp::spawn();
    let a = app.project("Project A");
    let oa = fill(&app, &app.admin_key, &a, "apple");
    let unknowns = [
        "prj_aaaaaaaaaaaa".to_string(),
        "nope".to_string(),
        "prj_".to_string(),
        a.to_uppercase(),
        format!("{a}x"),
        a[..a.len() - 1].to_string(),
        oa.conversation.clone(),
        app.org_id.clone(),
    ];
    for p in &unknowns {
        for (method, path, body) in all_project_requests(p, &oa) {
            let r = app.request(method.clone(), &path, Some(&app.admin_key), body);
            assert_eq!(
                (r.status, r.code()),
                (404, "PROJECT_NOT_FOUND"),
                "{method} {path}: {}",
                r.body
            );
            r.assert_error(404, "PROJECT_NOT_FOUND");
        }
    }
    app.request_raw(
        Method::POST,
        &convs("prj_aaaaaaaaaaaa"),
        Some(&app.admin_key),
        "{not json",
    )
    .assert_error(404, "PROJECT_NOT_FOUND");
}

//! The public browser endpoints of docs/api/forms-and-beacons.md (issue #26): a form's schema, a
//! beacon's config, and the submit path under both names; their CORS by the object's
//! `allowed_origins`, their rate limit per client address, and the README's embedded form, served
//! and submitted the way a browser would.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;

use rogeriq::config::AllowedOrigin;

use crate::fixtures::*;
use crate::helpers::*;
use crate::shapes::*;

const SHOP: &str = "https://shop.example.com";
const EVIL: &str = "https://evil.example.com";

fn schema(id_or_slug: &str) -> String {
    format!("/api/forms/{id_or_slug}/public")
}

fn config(beacon_id: &str) -> String {
    format!("/api/beacons/{beacon_id}/public")
}

const SUBMIT_PATHS: [&str; 2] = ["/api/f", "/api/v1/f"];

fn new_form(app: &TestApp, p: &str, body: Value) -> Value {
    created(app, &app.admin_key, &pp(p, "/forms"), body)
}

fn new_beacon(app: &TestApp, p: &str, body: Value) -> Value {
    created(app, &app.admin_key, &pp(p, "/beacons"), body)
}

/// A GET without a key, from a page at `origin` if any.
fn get_from(app: &TestApp, path: &str, origin: Option<&str>) -> Resp {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("Origin", o)).into_iter().collect();
    app.send(Method::GET, path, &headers, None)
}

/// A JSON submission without a key, with extra headers.
fn submit_to(app: &TestApp, path: &str, body: &Value, headers: &[(&str, &str)]) -> Resp {
    let mut all = vec![("Content-Type", "application/json")];
    all.extend_from_slice(headers);
    app.send(Method::POST, path, &all, Some(&body.to_string()))
}

/// A browser's preflight for `method` from `origin`.
fn preflight(app: &TestApp, path: &str, origin: &str, method: &str) -> Resp {
    app.send(
        Method::OPTIONS,
        path,
        &[
            ("Origin", origin),
            ("Access-Control-Request-Method", method),
            ("Access-Control-Request-Headers", "content-type"),
        ],
        None,
    )
}

fn ann() -> Value {
    json!({"name": "Ann Lee", "email": "ann@example.com", "message": "Hello"})
}

/// A form of every field shape, open to `SHOP` only, with generous submission limits.
fn shop_form(app: &TestApp, p: &str) -> Value {
    new_form(
        app,
        p,
        json!({
            "name": "Contact us",
            "fields": [
                {"type": "short_text", "label": "Name", "required": true, "placeholder": "Jane"},
                {"type": "email", "label": "Email", "required": true},
                {"type": "single_select", "label": "Topic", "options": ["billing", "bugs"]},
                {"type": "long_text", "label": "Message"},
            ],
            "allowed_origins": [SHOP],
            "rate_limit_per_ip": 1000,
            "submit_button_label": "Send",
            "submit_button_color": "#112233",
            "logo_url": "https://shop.example.com/logo.png",
        }),
    )
}

#[track_caller]
fn assert_public_form(d: &Value, form: &Value) {
    assert_eq!(field_names(d), PUBLIC_FORM_FIELDS, "{d}");
    for key in PUBLIC_FORM_FIELDS {
        assert_eq!(d[key], form[key], "{key}");
    }
    for field in d["fields"].as_array().unwrap() {
        assert_eq!(field_names(field), FORMFIELD_FIELDS, "{field}");
    }
}

#[test]
fn a_live_form_serves_exactly_its_public_schema() {
    let app = TestApp::spawn();
    let p = app.project("Site");
    let form = shop_form(&app, &p);
    let id = id_of(&form);
    let r = get_from(&app, &schema(&id), Some(SHOP));
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(field_names(&r.body), ["data"]);
    let d = r.data();
    assert_public_form(d, &form);
    assert_eq!(d["fields"][2]["options"], json!(["billing", "bugs"]));
    assert_eq!(d["fields"][0]["options"], json!([]));
    assert_eq!(d["fields"][0]["placeholder"], "Jane");
    for private in [
        "project_id",
        "slug",
        "allowed_origins",
        "rate_limit_per_ip",
        "public_api",
        "logo_url",
    ] {
        assert!(d.get(private).is_none(), "{private} leaks");
    }
    assert!(!r.body.to_string().contains(SHOP), "no origin leaks");
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
    // The server's `[cors]` allows any origin, but this form does not.
    let foreign = get_from(&app, &schema(&id), Some(EVIL));
    assert_eq!(foreign.body, r.body);
    assert!(foreign.header("access-control-allow-origin").is_none());
    // No key needed, and one changes nothing; the address's anonymous bucket counts it.
    let with_key = app.request(Method::GET, &schema(&id), Some(&app.admin_key), None);
    assert_eq!(with_key.body["data"], *d);
    assert!(with_key.header("x-ratelimit-limit").is_some());
    assert!(with_key.header("x-ratelimit-tier").is_none());
}

#[test]
fn form_schemas_answer_404_410_and_403() {
    let app = TestApp::spawn();
    let p = app.project("Site");
    for unknown in [
        "frm_doesnotexist",
        "not-a-slug",
        "Bad Slug",
        "con_abcdefghijkl",
    ] {
        get_from(&app, &schema(unknown), None).assert_error(404, "RESOURCE_NOT_FOUND");
    }
    // A beacon's id names no form.
    let form = new_form(&app, &p, json!({"name": "F"}));
    let id = id_of(&form);
    let beacon = id_of(&new_beacon(&app, &p, json!({"form_id": id})));
    get_from(&app, &schema(&beacon), None).assert_error(404, "RESOURCE_NOT_FOUND");

    assert_eq!(
        action(&app, &pp(&p, &format!("/forms/{id}/archive"))).status,
        200
    );
    get_from(&app, &schema(&id), None).assert_error(410, "FORM_ARCHIVED");
    assert_eq!(
        action(&app, &pp(&p, &format!("/forms/{id}/unarchive"))).status,
        200
    );
    assert_eq!(get_from(&app, &schema(&id), None).status, 200);
    ok_patch(
        &app,
        &app.admin_key,
        &pp(&p, &format!("/forms/{id}")),
        json!({"public_api": false}),
    );
    get_from(&app, &schema(&id), None).assert_error(403, "FORBIDDEN");

    // Its project gone, the form is unknown.
    let r = app.delete(
        &format!("/api/v1/orgs/{}/projects/{p}", app.org_id),
        &app.admin_key,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    get_from(&app, &schema(&id), None).assert_error(404, "RESOURCE_NOT_FOUND");
}

/// A slug is unique only within its project, so it names a form only on a server with one
/// project; with more, the answer says to use the id.
#[test]
fn a_slug_names_a_form_on_a_single_project_server() {
    let app = TestApp::spawn();
    let p = app.project("Site");
    let form = new_form(&app, &p, json!({"name": "Contact us"}));
    assert_eq!(form["slug"], "contact-us");
    let r = get_from(&app, &schema("contact-us"), None);
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["id"], form["id"]);
    get_from(&app, &schema("no-such-form"), None).assert_error(404, "RESOURCE_NOT_FOUND");

    app.project("Another");
    let r = get_from(&app, &schema("contact-us"), None);
    r.assert_error(404, "RESOURCE_NOT_FOUND");
    assert!(
        r.body["error"]
            .as_str()
            .unwrap()
            .contains("use the form's id"),
        "{}",
        r.body
    );
    assert_eq!(get_from(&app, &schema(&id_of(&form)), None).status, 200);
}

#[test]
fn a_live_beacon_serves_its_appearance_and_its_forms_schema() {
    let app = TestApp::spawn();
    let p = app.project("Site");
    let form = shop_form(&app, &p);
    let form_id = id_of(&form);
    let beacon = new_beacon(
        &app,
        &p,
        json!({
            "form_id": form_id,
            "button_label": "Help",
            "position": "bottom-left",
            "allowed_origins": [SHOP],
            "settings": {"internal": "not for browsers"},
            "chat_enabled": true,
        }),
    );
    let id = id_of(&beacon);
    let r = get_from(&app, &config(&id), Some(SHOP));
    assert_eq!(r.status, 200, "{}", r.body);
    let d = r.data();
    assert_eq!(field_names(d), PUBLIC_BEACON_FIELDS);
    for key in &PUBLIC_BEACON_FIELDS[..PUBLIC_BEACON_FIELDS.len() - 1] {
        assert_eq!(d[key], beacon[key], "{key}");
    }
    assert_public_form(&d["form"], &form);
    assert_eq!(
        d["form"],
        get_from(&app, &schema(&form_id), None).body["data"]
    );
    assert!(!r.body.to_string().contains("not for browsers"));
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
    let foreign = get_from(&app, &config(&id), Some(EVIL));
    assert_eq!(foreign.status, 200);
    assert!(foreign.header("access-control-allow-origin").is_none());

    // A form that is not served publicly is `null` in the config.
    let form_path = pp(&p, &format!("/forms/{form_id}"));
    assert_eq!(action(&app, &format!("{form_path}/archive")).status, 200);
    assert_eq!(
        get_from(&app, &config(&id), None).data()["form"],
        Value::Null
    );
    assert_eq!(action(&app, &format!("{form_path}/unarchive")).status, 200);
    ok_patch(
        &app,
        &app.admin_key,
        &form_path,
        json!({"public_api": false}),
    );
    assert_eq!(
        get_from(&app, &config(&id), None).data()["form"],
        Value::Null
    );

    let beacon_path = pp(&p, &format!("/beacons/{id}"));
    assert_eq!(action(&app, &format!("{beacon_path}/archive")).status, 200);
    get_from(&app, &config(&id), None).assert_error(410, "BEACON_ARCHIVED");
    for unknown in ["bcn_doesnotexist", "nonsense", form_id.as_str()] {
        get_from(&app, &config(unknown), None).assert_error(404, "RESOURCE_NOT_FOUND");
    }
}

/// Each endpoint follows the `allowed_origins` of the object it names, not `[cors]`: here the
/// server's own list names another page, and the form's and the beacon's name `SHOP`.
#[test]
fn cors_follows_the_objects_allowed_origins() {
    let app = TestApp::spawn_with(|s| {
        s.cors.allowed_origins =
            vec![AllowedOrigin::try_from("https://app.example.com".to_string()).unwrap()];
    });
    let p = app.project("Site");
    let form_id = id_of(&shop_form(&app, &p));
    let beacon_id = id_of(&new_beacon(
        &app,
        &p,
        json!({"form_id": form_id, "allowed_origins": [SHOP]}),
    ));
    let endpoints = [
        (schema(&form_id), "GET"),
        (config(&beacon_id), "GET"),
        (format!("/api/f/{form_id}"), "POST"),
        (format!("/api/v1/f/{form_id}"), "POST"),
    ];
    for (path, method) in &endpoints {
        let r = preflight(&app, path, SHOP, method);
        assert_eq!(r.status, 200, "{path}: {}", r.body);
        assert_eq!(
            r.header("access-control-allow-origin"),
            Some(SHOP),
            "{path}"
        );
        assert_eq!(r.header("access-control-allow-methods"), Some(*method));
        assert!(r.header("vary").unwrap().contains("Origin"), "{path}");
        assert!(r.header("access-control-max-age").is_some(), "{path}");

        let r = preflight(&app, path, EVIL, method);
        r.assert_error(400, "BAD_REQUEST");
        assert!(r.header("access-control-allow-origin").is_none(), "{path}");
    }
    // Actual requests: the allow header and the exposed headers only for an allowed origin.
    for path in [schema(&form_id), config(&beacon_id)] {
        let r = get_from(&app, &path, Some(SHOP));
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
        let exposed = r.header("access-control-expose-headers").unwrap();
        assert!(exposed.contains("x-ratelimit-remaining"), "{exposed}");
        // Served (only a browser enforces CORS), but without the header that lets it read.
        let r = get_from(&app, &path, Some(EVIL));
        assert_eq!(r.status, 200, "{}", r.body);
        assert!(r.header("access-control-allow-origin").is_none(), "{path}");
        assert!(
            r.header("access-control-expose-headers").is_none(),
            "{path}"
        );
    }
    for base in SUBMIT_PATHS {
        let path = format!("{base}/{form_id}");
        let r = submit_to(&app, &path, &ann(), &[("Origin", SHOP)]);
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
        let r = submit_to(&app, &path, &ann(), &[("Origin", EVIL)]);
        r.assert_error(403, "FORBIDDEN");
        assert!(r.header("access-control-allow-origin").is_none());
    }
    // An archived form keeps its rules, so that its page can read the 410.
    assert_eq!(
        action(&app, &pp(&p, &format!("/forms/{form_id}/archive"))).status,
        200
    );
    let r = get_from(&app, &schema(&form_id), Some(SHOP));
    r.assert_error(410, "FORM_ARCHIVED");
    assert_eq!(r.header("access-control-allow-origin"), Some(SHOP));
    // Nothing to consult for an unknown object.
    let r = preflight(&app, &schema("frm_doesnotexist"), SHOP, "GET");
    r.assert_error(400, "BAD_REQUEST");
    // The rest of the API keeps the server's list.
    let r = preflight(&app, &pp(&p, "/forms"), SHOP, "GET");
    r.assert_error(400, "BAD_REQUEST");
    let r = preflight(&app, &pp(&p, "/forms"), "https://app.example.com", "GET");
    assert_eq!(r.status, 200, "{}", r.body);
}

/// A form that allows any origin lets every page read it, its own origin echoed.
#[test]
fn an_open_form_allows_every_origin() {
    let app = TestApp::spawn();
    let p = app.project("Site");
    let form_id = id_of(&new_form(&app, &p, json!({"name": "Open"})));
    for origin in [SHOP, EVIL] {
        let r = preflight(&app, &format!("/api/f/{form_id}"), origin, "POST");
        assert_eq!(r.status, 200, "{}", r.body);
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
        let r = get_from(&app, &schema(&form_id), Some(origin));
        assert_eq!(r.header("access-control-allow-origin"), Some(origin));
    }
}

/// One handler serves both submit paths: the same answers, case by case.
#[test]
fn both_submit_paths_give_the_same_results() {
    let app = TestApp::spawn();
    let p = app.project("Site");
    let form = shop_form(&app, &p);
    let id = id_of(&form);
    let archived = id_of(&new_form(&app, &p, json!({"name": "Old"})));
    assert_eq!(
        action(&app, &pp(&p, &format!("/forms/{archived}/archive"))).status,
        200
    );
    let closed = id_of(&new_form(
        &app,
        &p,
        json!({"name": "Closed", "public_api": false}),
    ));
    // What does not depend on the request: ids and the request id.
    let outcome = |r: &Resp| {
        let mut body = r.body.clone();
        if let Some(data) = body.get_mut("data").and_then(Value::as_object_mut) {
            data.remove("id");
            data.remove("conversation_id");
        }
        if let Some(body) = body.as_object_mut() {
            body.remove("request_id");
        }
        let limited = r.header("x-ratelimit-limit").map(str::to_string);
        (r.status, body, limited)
    };
    let bogus_key = "riq_notakeyatall_0123456789";
    // (form id, body, headers)
    type Case<'a> = (&'a str, Value, Vec<(&'a str, &'a str)>);
    let cases: Vec<Case> = vec![
        (&id, ann(), vec![("Origin", SHOP)]),
        (&id, ann(), vec![("Origin", SHOP), ("X-API-Key", bogus_key)]),
        (
            &id,
            json!({"name": " ", "email": "nope"}),
            vec![("Origin", SHOP)],
        ),
        (&id, json!({"topic": "gold"}), vec![("Origin", SHOP)]),
        (&id, ann(), vec![("Origin", EVIL)]),
        (&id, ann(), vec![]),
        ("frm_doesnotexist", ann(), vec![]),
        ("nonsense", ann(), vec![]),
        (&archived, ann(), vec![]),
        (&closed, ann(), vec![]),
    ];
    for (form_id, body, headers) in &cases {
        let [old, v1] =
            SUBMIT_PATHS.map(|base| submit_to(&app, &format!("{base}/{form_id}"), body, headers));
        assert_eq!(outcome(&old), outcome(&v1), "{form_id} {body} {headers:?}");
        assert!(old.header("x-request-id").is_some());
    }
    // A browser's form-encoded post is taken on both.
    for base in SUBMIT_PATHS {
        let r = app.send(
            Method::POST,
            &format!("{base}/{id}"),
            &[
                ("Content-Type", "application/x-www-form-urlencoded"),
                ("Origin", SHOP),
            ],
            Some("name=Ann&email=ann%40example.com&topic=bugs"),
        );
        assert_eq!(r.status, 200, "{base}: {}", r.body);
    }
    // Two accepted submissions per path and two form posts: six in all.
    let listed = ok_get(
        &app,
        &app.admin_key,
        &pp(&p, &format!("/forms/{id}/submissions")),
    );
    assert_eq!(listed["data"].as_array().unwrap().len(), 6);
}

/// Both GETs count per client address in the anonymous tier, whatever key they carry.
#[test]
fn public_reads_are_rate_limited_per_address() {
    let app = TestApp::spawn_with(|s| s.rate_limit.tiers.anonymous = 3);
    let p = app.project("Site");
    let form_id = id_of(&new_form(&app, &p, json!({"name": "F"})));
    let beacon_id = id_of(&new_beacon(&app, &p, json!({"form_id": form_id})));
    let limits = |r: &Resp| {
        (
            r.header("x-ratelimit-limit").map(str::to_string),
            r.header("x-ratelimit-remaining").map(str::to_string),
        )
    };
    let r = get_from(&app, &schema(&form_id), None);
    assert_eq!(limits(&r), (Some("3".into()), Some("2".into())));
    let r = get_from(&app, &config(&beacon_id), None);
    assert_eq!(limits(&r), (Some("3".into()), Some("1".into())));
    // A key changes nothing: the same address's bucket.
    let r = app.request(Method::GET, &schema(&form_id), Some(&app.admin_key), None);
    assert_eq!(limits(&r), (Some("3".into()), Some("0".into())));
    let r = get_from(&app, &config(&beacon_id), None);
    r.assert_error(429, "RATE_LIMITED");
    assert!(r.body["retry_after"].as_u64().unwrap() >= 1);
    get_from(&app, &schema(&form_id), None).assert_error(429, "RATE_LIMITED");
    // Preflights are not counted, and the key's own bucket is untouched.
    let r = preflight(&app, &schema(&form_id), SHOP, "GET");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(app.get(&pp(&p, "/forms"), &app.admin_key).status, 200);
}

/// README's forms section embeds docs/examples/embedded-form.html verbatim. A page serves
/// it, and the test does what its script does: fetch the schema, fill the fields, post them.
#[test]
fn the_readme_embedded_form_works_as_served() {
    let snippet = include_str!("../../docs/examples/embedded-form.html");
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(&format!("```html\n{snippet}```\n")),
        "README must include docs/examples/embedded-form.html verbatim"
    );
    // The requests below are the script's own.
    for call in [
        "fetch(`${api}/api/forms/${formId}/public`)",
        "fetch(`${api}/api/f/${schema.id}`",
        "body: new URLSearchParams(new FormData(form))",
        "input.name = field.name",
    ] {
        assert!(snippet.contains(call), "the script no longer does {call}");
    }

    let app = TestApp::spawn();
    let page = TcpListener::bind("127.0.0.1:0").unwrap();
    let page_origin = format!("http://{}", page.local_addr().unwrap());
    let p = app.project("Site");
    let form = new_form(
        &app,
        &p,
        json!({
            "name": "Contact us",
            "fields": [
                {"type": "short_text", "label": "Name", "required": true},
                {"type": "email", "label": "Email", "required": true},
                {"type": "single_select", "label": "Topic", "options": ["billing", "bugs"]},
                {"type": "checkbox", "label": "Subscribe"},
                {"type": "long_text", "label": "Message"},
            ],
            "allowed_origins": [page_origin],
        }),
    );
    let form_id = id_of(&form);
    let served = snippet
        .replace("http://localhost:8080", &app.base)
        .replace("frm_yourformid00", &form_id);
    assert_ne!(served, snippet, "the placeholders are in the snippet");
    let html = served.clone();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = page.accept().unwrap();
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut line = String::new();
        while reader.read_line(&mut line).unwrap() > 0 && line != "\r\n" {
            line.clear();
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{html}",
            html.len()
        );
        stream.write_all(response.as_bytes()).unwrap();
    });

    // The browser loads the page.
    let loaded = reqwest::blocking::get(format!("{page_origin}/contact.html"))
        .unwrap()
        .text()
        .unwrap();
    server.join().unwrap();
    assert_eq!(loaded, served);
    let attribute = |name: &str| {
        let start = loaded.find(&format!("{name}=\"")).unwrap() + name.len() + 2;
        loaded[start..start + loaded[start..].find('"').unwrap()].to_string()
    };
    let (api, form_attr) = (attribute("data-api"), attribute("data-form"));
    assert_eq!(
        (api.as_str(), form_attr.as_str()),
        (app.base.as_str(), form_id.as_str())
    );

    // Its script fetches the schema (a simple GET: no preflight) and may read it.
    let client = reqwest::blocking::Client::new();
    let r = client
        .get(format!("{api}/api/forms/{form_attr}/public"))
        .header("Origin", &page_origin)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"].to_str().unwrap(),
        page_origin
    );
    let schema: Value = r.json::<Value>().unwrap()["data"].clone();
    // A visitor fills in every control the script made, and the form data goes out encoded.
    let mut pairs: Vec<(String, String)> = Vec::new();
    for field in schema["fields"].as_array().unwrap() {
        let name = field["name"].as_str().unwrap().to_string();
        let value = match field["type"].as_str().unwrap() {
            "email" => "ann@example.com".to_string(),
            "checkbox" => "on".to_string(),
            _ if !field["options"].as_array().unwrap().is_empty() => {
                field["options"][1].as_str().unwrap().to_string()
            }
            _ => format!("Ann's {}", field["label"].as_str().unwrap()),
        };
        pairs.push((name, value));
    }
    let body = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(&pairs)
        .finish();
    let r = client
        .post(format!("{api}/api/f/{}", schema["id"].as_str().unwrap()))
        .header("Origin", &page_origin)
        .header(
            "Content-Type",
            "application/x-www-form-urlencoded;charset=UTF-8",
        )
        .body(body)
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"].to_str().unwrap(),
        page_origin
    );
    let answer: Value = r.json().unwrap();
    assert_eq!(answer["data"]["success_action"], "inline");
    assert_eq!(answer["data"]["success_message"], form["success_message"]);

    let stored = ok_get(
        &app,
        &app.admin_key,
        &pp(&p, &format!("/forms/{form_id}/submissions")),
    );
    assert_eq!(
        stored["data"][0]["payload"],
        json!({
            "name": "Ann's Name",
            "email": "ann@example.com",
            "topic": "bugs",
            "subscribe": true,
            "message": "Ann's Message",
        })
    );
}

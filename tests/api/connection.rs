//! Hostile clients at the connection level, over raw sockets: `Expect: 100-continue` is refused
//! before the body when the body would be, and a body that stalls is answered with the JSON
//! error once `body_timeout_secs` is up, its connection closed.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::helpers::*;

/// A bound on every read, so that a server that holds a connection fails the test, not hangs it.
const READ_PATIENCE: Duration = Duration::from_secs(10);

fn connect(app: &TestApp) -> TcpStream {
    let addr = app.base.trim_start_matches("http://");
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(READ_PATIENCE)).unwrap();
    stream
}

/// Reads until the server closes the connection; a read timeout fails the test.
fn read_to_close(stream: &mut TcpStream) -> String {
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .expect("the server closes the connection");
    String::from_utf8_lossy(&answer).into_owned()
}

/// Reads until a whole response head has arrived.
fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        let n = stream.read(&mut byte).expect("a response head");
        assert_eq!(n, 1, "closed after {:?}", String::from_utf8_lossy(&head));
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// The JSON body of a whole response.
fn json_body(response: &str) -> Value {
    let body = response.split_once("\r\n\r\n").expect("head and body").1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {response}"))
}

fn projects_head(app: &TestApp, key: Option<&str>, length: u64, extra: &str) -> String {
    let key_line = key.map_or(String::new(), |k| format!("X-API-Key: {k}\r\n"));
    format!(
        "POST /api/v1/orgs/{}/projects HTTP/1.1\r\nHost: test\r\n{key_line}\
         Content-Type: application/json\r\nContent-Length: {length}\r\n{extra}\r\n",
        app.org_id
    )
}

#[test]
fn expect_continue_is_refused_before_the_body_without_a_key_or_over_the_limit() {
    let app = TestApp::spawn_with(|s| s.max_body_bytes = 1_000);
    let expect = "Expect: 100-continue\r\n";
    let refusals = [
        (None, 20, 401, "UNAUTHORIZED"),
        (Some("riq_not_a_key"), 20, 401, "UNAUTHORIZED"),
        (Some(app.admin_key.as_str()), 5_000_000, 400, "BAD_REQUEST"),
    ];
    for (key, length, status, code) in refusals {
        let mut stream = connect(&app);
        stream
            .write_all(projects_head(&app, key, length, expect).as_bytes())
            .unwrap();
        // No body is sent: the answer must come without it, and close the connection.
        let response = read_to_close(&mut stream);
        assert!(
            response.starts_with(&format!("HTTP/1.1 {status} ")),
            "{key:?} {length}: {response}"
        );
        assert!(!response.contains("100 Continue"), "{response}");
        let body = json_body(&response);
        assert_eq!(body["code"], code, "{response}");
        assert!(body["request_id"].is_string(), "{response}");
    }

    // A usable key and a body within the limit are told to go on.
    let body = r#"{"name": "Continued"}"#;
    let mut stream = connect(&app);
    let head = projects_head(
        &app,
        Some(&app.admin_key),
        body.len() as u64,
        &format!("{expect}Connection: close\r\n"),
    );
    stream.write_all(head.as_bytes()).unwrap();
    assert!(read_head(&mut stream).starts_with("HTTP/1.1 100 Continue"));
    stream.write_all(body.as_bytes()).unwrap();
    let response = read_to_close(&mut stream);
    assert!(response.starts_with("HTTP/1.1 201 "), "{response}");
    assert_eq!(json_body(&response)["data"]["name"], "Continued");

    // The master key may upload to the admin API.
    let mut stream = connect(&app);
    let body = r#"{"name": "Acme"}"#;
    stream
        .write_all(
            format!(
                "POST /api/v1/admin/orgs HTTP/1.1\r\nHost: test\r\nAuthorization: Bearer \
                 {MASTER_KEY}\r\nContent-Length: {}\r\n{expect}Connection: close\r\n\r\n",
                body.len()
            )
            .as_bytes(),
        )
        .unwrap();
    assert!(read_head(&mut stream).starts_with("HTTP/1.1 100 Continue"));
    stream.write_all(body.as_bytes()).unwrap();
    assert!(read_to_close(&mut stream).starts_with("HTTP/1.1 201 "));
}

/// The public submit path under `/api/v1` takes no key, so it is told to send its body.
#[test]
fn expect_continue_needs_no_key_on_the_public_submit_path() {
    let app = TestApp::spawn();
    let p = app.project("Site");
    let form = app.post(
        &format!("/api/v1/projects/{p}/forms"),
        &app.admin_key,
        json!({"name": "Contact"}),
    );
    assert_eq!(form.status, 201, "{}", form.body);
    let body = r#"{"name": "Ann", "email": "ann@example.com", "message": "Hi"}"#;
    let mut stream = connect(&app);
    let head = format!(
        "POST /api/v1/f/{} HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n",
        form.data()["id"].as_str().unwrap(),
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    assert!(read_head(&mut stream).starts_with("HTTP/1.1 100 Continue"));
    stream.write_all(body.as_bytes()).unwrap();
    let response = read_to_close(&mut stream);
    assert!(response.starts_with("HTTP/1.1 200 "), "{response}");
}

#[test]
fn a_stalled_body_is_answered_and_its_connection_closed() {
    let app = TestApp::spawn_with(|s| s.body_timeout_secs = 1);
    let mut stream = connect(&app);
    let head = projects_head(&app, Some(&app.admin_key), 100, "");
    stream.write_all(head.as_bytes()).unwrap();
    stream.write_all(br#"{"name": "St"#).unwrap();
    let started = Instant::now();
    let response = read_to_close(&mut stream);
    let waited = started.elapsed();
    assert!(response.starts_with("HTTP/1.1 400 "), "{response}");
    let body = json_body(&response);
    assert_eq!(body["code"], "BAD_REQUEST", "{response}");
    assert!(
        body["error"].as_str().unwrap().contains("within 1 s"),
        "{response}"
    );
    assert!(
        waited >= Duration::from_millis(900) && waited < Duration::from_secs(5),
        "answered after {waited:?}"
    );
    // Nothing was created, and the server serves on.
    let list = app.get(
        &format!("/api/v1/orgs/{}/projects", app.org_id),
        &app.admin_key,
    );
    assert_eq!((list.status, list.data().clone()), (200, json!([])));
}

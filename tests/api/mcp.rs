//! MCP: the official Python client (PyPI `mcp`, in a virtualenv made on first use) against a
//! real server, over `rogeriq mcp` (stdio) and over `/mcp` (streamable HTTP); see
//! mcp_client.py for what it checks. The server scenarios of the MCP conformance suite (npm)
//! against `/mcp`. Beside them, `/mcp` spoken to as plain JSON-RPC: each tool call spends one
//! request of the key's rate limit, a write lands in the audit log under the caller's key, and
//! `mcp.enabled = false` leaves `/mcp` unknown.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use reqwest::blocking::Client;
use rogeriq::config::TierLimits;
use rogeriq::mcp::catalog::CATALOG;

use crate::helpers::*;

/// The client release the tests run.
const MCP_CLIENT: &str = "mcp==2.3.0";

/// `python` of `<target>/mcp-venv`, made and filled from PyPI once per test run.
fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let made = PYTHON.get_or_init(|| {
        let target = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        let venv = target.join("mcp-venv");
        let python = venv.join("bin").join("python");
        let marker = venv.join(MCP_CLIENT);
        if marker.exists() {
            return Ok(python);
        }
        let ok = Command::new("python3")
            .args(["-m", "venv", "--clear"])
            .arg(&venv)
            .status()
            .is_ok_and(|s| s.success())
            && Command::new(venv.join("bin").join("pip"))
                .args([
                    "install",
                    "--quiet",
                    "--disable-pip-version-check",
                    MCP_CLIENT,
                ])
                .status()
                .is_ok_and(|s| s.success())
            && std::fs::write(&marker, "").is_ok();
        if ok {
            Ok(python)
        } else {
            Err(format!(
                "could not install {MCP_CLIENT} into {} (needs python3 with venv and PyPI)",
                venv.display()
            ))
        }
    });
    match made {
        Ok(python) => python,
        Err(err) => panic!("{err}"),
    }
}

/// Each tool's route and effect, as the catalog declares them, for the client's checks.
fn expected_tools() -> Value {
    let tools: serde_json::Map<String, Value> = CATALOG
        .iter()
        .map(|def| {
            let fixed: Vec<&str> = def.fixed.iter().map(|(name, _)| *name).collect();
            let route = json!({
                "method": def.method,
                "path": def.path,
                "fixed": fixed,
                "effect": format!("{:?}", def.effect),
            });
            (def.name.to_string(), route)
        })
        .collect();
    Value::Object(tools)
}

#[test]
fn the_official_client_over_stdio_and_http() {
    let python = python();
    let app = TestApp::spawn();
    let read_key = app.key(&["read"]);
    let home = temp_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/api/mcp_client.py");
    let out = Command::new(python)
        .arg(script)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home.path())
        .env("RIQ_BIN", env!("CARGO_BIN_EXE_rogeriq"))
        .env("RIQ_BASE", &app.base)
        .env("RIQ_ADMIN_KEY", &app.admin_key)
        .env("RIQ_READ_KEY", &read_key)
        .env("RIQ_EXPECTED", expected_tools().to_string())
        .output()
        .expect("run the MCP client");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "the MCP client failed\nstdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("stdio: ") && stdout.contains("403"),
        "{stdout}"
    );
}

/// The conformance suite and a Node.js it runs on (22 or later; Debian's is 20), from npm.
const CONFORMANCE: [&str; 2] = ["@modelcontextprotocol/conformance@0.1.16", "node@22"];

/// `<target>/mcp-conformance`, filled from npm on first use.
fn conformance() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("mcp-conformance");
    let marker = dir.join(CONFORMANCE.join(" ").replace('/', "_"));
    if !marker.exists() {
        let installed = Command::new("npm")
            .args(["install", "--no-audit", "--no-fund", "--silent", "--prefix"])
            .arg(&dir)
            .args(CONFORMANCE)
            .status()
            .is_ok_and(|s| s.success());
        assert!(
            installed && std::fs::write(&marker, "").is_ok(),
            "could not install {CONFORMANCE:?} into {} (needs npm and its registry)",
            dir.display()
        );
    }
    dir
}

/// A loopback proxy that adds `Authorization: Bearer <key>` to every request it forwards, for
/// a client that sends no header of its own (the conformance suite). It reads each request's
/// head and its `Content-Length` body, so keep-alive connections work; answers pass through.
fn key_proxy(target: &str, key: &str) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let (target, key) = (target.to_string(), key.to_string());
    std::thread::spawn(move || {
        for client in listener.incoming().map_while(Result::ok) {
            let (target, key) = (target.clone(), key.clone());
            std::thread::spawn(move || forward(client, &target, &key));
        }
    });
    format!("http://{addr}")
}

fn forward(client: TcpStream, target: &str, key: &str) -> std::io::Result<()> {
    let mut upstream = TcpStream::connect(target)?;
    let (mut answers, mut to_client) = (upstream.try_clone()?, client.try_clone()?);
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut answers, &mut to_client);
        let _ = to_client.shutdown(Shutdown::Write);
    });
    let mut requests = BufReader::new(client);
    loop {
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if requests.read_line(&mut line)? == 0 {
                return upstream.shutdown(Shutdown::Write);
            }
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
            if head.lines().count() == 1 {
                head.push_str(&format!("Authorization: Bearer {key}\r\n"));
            }
        }
        let mut body = vec![0; length];
        requests.read_exact(&mut body)?;
        upstream.write_all(head.as_bytes())?;
        upstream.write_all(b"\r\n")?;
        upstream.write_all(&body)?;
    }
}

/// The suite's server scenarios against `/mcp`; the ones rogeriq cannot pass, and why, are in
/// mcp_conformance_baseline.yml.
#[test]
fn the_conformance_suites_server_scenarios() {
    let dir = conformance();
    let app = TestApp::spawn();
    let proxy = key_proxy(app.base.trim_start_matches("http://"), &app.admin_key);
    let results = temp_dir();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(dir.join("node_modules/.bin/node"))
        .arg(dir.join("node_modules/@modelcontextprotocol/conformance/dist/index.js"))
        .args([
            "server",
            "--url",
            &format!("{proxy}/mcp"),
            "--expected-failures",
        ])
        .arg(manifest.join("tests/api/mcp_conformance_baseline.yml"))
        .arg("--output-dir")
        .arg(results.path())
        .output()
        .expect("run the conformance suite");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary = stdout.split("=== SUMMARY ===").nth(1).unwrap_or(&stdout);
    assert!(
        out.status.success(),
        "conformance: {summary}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for passing in [
        "server-initialize",
        "ping",
        "tools-list",
        "resources-list",
        "dns-rebinding-protection",
    ] {
        assert!(summary.contains(&format!("✓ {passing}")), "{summary}");
    }
}

/// One JSON-RPC request to `/mcp` as `key` (stateless: no session, no handshake needed).
fn rpc(app: &TestApp, key: &str, method: &str, params: Value) -> Value {
    let response = Client::new()
        .post(format!("{}/mcp", app.base))
        .bearer_auth(key)
        .header("Accept", "application/json, text/event-stream")
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}))
        .send()
        .expect("POST /mcp");
    assert_eq!(response.status(), 200);
    response.json().expect("a JSON-RPC answer")
}

fn call_tool(app: &TestApp, key: &str, name: &str, arguments: Value) -> Value {
    rpc(
        app,
        key,
        "tools/call",
        json!({"name": name, "arguments": arguments}),
    )["result"]
        .clone()
}

#[test]
fn each_tool_call_spends_the_keys_rate_limit() {
    let app = TestApp::spawn_with(|settings| {
        settings.rate_limit.tiers = TierLimits {
            starter: 3,
            ..settings.rate_limit.tiers
        };
    });
    let key = app.key(&["read"]);
    // Listing the tools makes no API request.
    let tools = rpc(&app, &key, "tools/list", json!({}));
    assert!(tools["result"]["tools"].as_array().unwrap().len() > 50);
    for _ in 0..3 {
        let result = call_tool(&app, &key, "projects_list", json!({}));
        assert_eq!(result["isError"], false, "{result}");
    }
    let limited = call_tool(&app, &key, "projects_list", json!({}));
    assert_eq!(limited["isError"], true);
    assert_eq!(limited["structuredContent"]["code"], "RATE_LIMITED");
    assert_eq!(limited["structuredContent"]["status"], 429);
    assert!(limited["structuredContent"]["retry_after"].is_u64());
    // The same bucket as the API's.
    app.get("/api/v1/auth/whoami", &key)
        .assert_error(429, "RATE_LIMITED");
}

#[test]
fn a_write_is_audited_under_the_callers_key() {
    let app = TestApp::spawn();
    let key = app.key(&["projects:write", "audit:read"]);
    let created = call_tool(
        &app,
        &key,
        "projects_create",
        json!({"name": "Audited", "idempotency_key": "k-1"}),
    );
    assert_eq!(created["isError"], false, "{created}");
    let project_id = created["structuredContent"]["data"]["id"].as_str().unwrap();
    let summary = created["content"][0]["text"].as_str().unwrap();
    assert_eq!(
        summary,
        format!("projects_create: created {project_id} (Audited)")
    );
    let entries = app.get(
        &format!(
            "/api/v1/orgs/{}/audit-log?action=project.created",
            app.org_id
        ),
        &key,
    );
    let entry = &entries.data()[0];
    assert_eq!(entry["target_id"], project_id, "{entry}");
    assert_eq!(entry["api_key_id"], key_id(&key));
}

#[test]
fn without_mcp_enabled_the_path_is_unknown() {
    let app = TestApp::spawn_with(|settings| settings.mcp.enabled = false);
    let response = Client::new()
        .post(format!("{}/mcp", app.base))
        .bearer_auth(&app.admin_key)
        .json(&json!({"jsonrpc": "2.0", "id": 1, "method": "ping"}))
        .send()
        .unwrap();
    assert_eq!(response.status(), 404);
    let body: Value = response.json().unwrap();
    assert_eq!(body["code"], "RESOURCE_NOT_FOUND");
}

//! The real binary: first-start banner, the data-file lock, SIGTERM, request logs and config
//! layering (docs/operations.md, config.toml.example).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{Receiver, channel};
use std::time::{Duration, Instant};

use crate::helpers::*;

/// How long to wait for the child to say something before giving up (a hang guard only).
pub(crate) const PATIENCE: Duration = Duration::from_secs(30);

/// A `rogeriq serve` child with its output collected line by line; killed when dropped.
/// `idempotency.rs` kills one too.
pub(crate) struct Proc {
    pub(crate) child: Child,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
    out_lines: Vec<String>,
    err_lines: Vec<String>,
}

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn lines_of(stream: impl std::io::Read + Send + 'static) -> Receiver<String> {
    let (sender, receiver) = channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if sender.send(line).is_err() {
                break;
            }
        }
    });
    receiver
}

/// `rogeriq serve --data-dir DIR --log-format json ARGS` with only the `ROGERIQ_*` variables
/// given here (plus the master key).
pub(crate) fn command(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rogeriq"));
    cmd.arg("serve")
        .arg("--data-dir")
        .arg(dir)
        .args(["--log-format", "json"])
        .args(args);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ROGERIQ_") {
            cmd.env_remove(name);
        }
    }
    cmd.env("ROGERIQ_MASTER_KEY", MASTER_KEY);
    cmd.envs(store_env_for(dir));
    // The data folder may be in a small /dev/shm (helpers::temp_dir): no free-space guard.
    cmd.env("ROGERIQ_STORE_MIN_FREE_MB", "0");
    cmd.envs(env.iter().copied());
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

pub(crate) fn start(mut cmd: Command) -> Proc {
    let mut child = cmd.spawn().expect("spawn rogeriq");
    let stdout = lines_of(child.stdout.take().unwrap());
    let stderr = lines_of(child.stderr.take().unwrap());
    Proc {
        child,
        stdout,
        stderr,
        out_lines: Vec::new(),
        err_lines: Vec::new(),
    }
}

/// Starts a server listening on a free loopback port.
pub(crate) fn serve(dir: &Path) -> Proc {
    start(command(dir, &["--listen", "127.0.0.1:0"], &[]))
}

pub(crate) fn json_line(line: &str) -> Option<Value> {
    serde_json::from_str::<Value>(line)
        .ok()
        .filter(Value::is_object)
}

impl Proc {
    /// The next stderr log line (JSON) whose `message` is `message`.
    pub(crate) fn log(&mut self, message: &str) -> Value {
        let deadline = Instant::now() + PATIENCE;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let line = self.stderr.recv_timeout(left).unwrap_or_else(|_| {
                panic!(
                    "no log line {message:?}; stderr so far: {:#?}",
                    self.err_lines
                )
            });
            self.err_lines.push(line.clone());
            if let Some(v) = json_line(&line).filter(|v| v["message"] == message) {
                return v;
            }
        }
    }

    /// Waits for the `listening` line; returns the bound address.
    pub(crate) fn addr(&mut self) -> String {
        self.log("listening")["addr"]
            .as_str()
            .expect("addr field")
            .to_string()
    }

    /// Stdout up to the line containing `needle`.
    pub(crate) fn stdout_until(&mut self, needle: &str) {
        while !self.out_lines.iter().any(|l| l.contains(needle)) {
            let line = self
                .stdout
                .recv_timeout(PATIENCE)
                .unwrap_or_else(|_| panic!("stdout never said {needle:?}: {:#?}", self.out_lines));
            self.out_lines.push(line);
        }
    }

    pub(crate) fn terminate(&mut self) -> ExitStatus {
        let status = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
        self.wait()
    }

    /// Waits for the exit (bounded by `PATIENCE`), then collects the rest of both streams.
    pub(crate) fn wait(&mut self) -> ExitStatus {
        let deadline = Instant::now() + PATIENCE;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "rogeriq did not exit; stderr: {:#?}",
                self.err_lines
            );
            std::thread::sleep(Duration::from_millis(20));
        };
        self.out_lines.extend(self.stdout.iter());
        self.err_lines.extend(self.stderr.iter());
        status
    }

    pub(crate) fn stdout_text(&self) -> String {
        self.out_lines.join("\n")
    }

    pub(crate) fn stderr_text(&self) -> String {
        self.err_lines.join("\n")
    }
}

/// One request over a fresh connection (no idle keep-alive left to delay shutdown).
pub(crate) fn http(method: Method, url: &str, headers: &[(&str, &str)]) -> (u16, String, Value) {
    let client = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap();
    let mut req = client.request(method, url);
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    let r = req.send().expect("request");
    let status = r.status().as_u16();
    let request_id = r
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let body = r.json::<Value>().unwrap_or(Value::Null);
    (status, request_id, body)
}

/// The value after `label` on the banner line that has it.
pub(crate) fn banner_value(stdout: &str, label: &str) -> String {
    let line = stdout
        .lines()
        .find(|l| l.contains(label))
        .unwrap_or_else(|| panic!("no {label:?} in {stdout}"));
    line.split_once(label).unwrap().1.trim().to_string()
}

#[test]
fn banner_on_first_start_only_and_sigterm_exits_cleanly() {
    let dir = crate::helpers::temp_dir();
    let mut first = serve(dir.path());
    let addr = first.addr();
    first.stdout_until("will not be shown again");
    let out = first.stdout_text();
    let org_id = banner_value(&out, "org id:");
    let key = banner_value(&out, "API key:");
    assert!(
        org_id.starts_with("org_") && key.starts_with("riq_"),
        "{out}"
    );
    assert_eq!(banner_value(&out, "listening:"), format!("http://{addr}"));

    // The printed key is the org's admin key.
    let (status, _, body) = http(
        Method::GET,
        &format!("http://{addr}/api/v1/orgs/{org_id}/projects"),
        &[("X-API-Key", &key)],
    );
    assert_eq!((status, body), (200, json!({"data": []})));
    let (status, _, body) = http(Method::GET, &format!("http://{addr}/healthz"), &[]);
    assert_eq!((status, body), (200, json!({"status": "ok"})));

    let status = first.terminate();
    assert_eq!(status.code(), Some(0), "stderr: {}", first.stderr_text());
    assert!(
        first
            .err_lines
            .iter()
            .filter_map(|l| json_line(l))
            .any(|v| v["message"] == "stopped"),
        "{}",
        first.stderr_text()
    );
    assert!(
        !first.stderr_text().contains(&key),
        "the key is printed to stdout only"
    );

    // Second start: no banner, same org and key.
    let mut second = serve(dir.path());
    let addr = second.addr();
    let (status, _, _) = http(
        Method::GET,
        &format!("http://{addr}/api/v1/orgs/{org_id}/projects"),
        &[("X-API-Key", &key)],
    );
    assert_eq!(status, 200);
    let (_, _, orgs) = http(
        Method::GET,
        &format!("http://{addr}/api/v1/admin/orgs"),
        &[("X-API-Key", MASTER_KEY)],
    );
    assert_eq!(orgs["data"].as_array().unwrap().len(), 1);
    assert_eq!(second.terminate().code(), Some(0));
    let out = second.stdout_text();
    assert!(
        !out.contains("API key:")
            && !out.contains("will not be shown again")
            && !out.contains(&key),
        "{out}"
    );
}

#[test]
fn a_second_server_on_the_same_data_dir_exits() {
    if skipped_on_postgres("servers share a PostgreSQL database by design (nodes.rs)") {
        return;
    }
    let dir = crate::helpers::temp_dir();
    let mut holder = serve(dir.path());
    holder.addr();
    let mut intruder = serve(dir.path());
    let status = intruder.wait();
    assert!(!status.success(), "the second server must not run");
    let err = intruder.stderr_text();
    let data_file = dir.path().join("rogeriq.redb");
    assert!(
        err.contains(&data_file.display().to_string()),
        "names the data file: {err}"
    );
    assert!(
        err.contains("another") && err.contains("holds it"),
        "says another server holds it: {err}"
    );
    // The holder is unharmed.
    assert_eq!(holder.terminate().code(), Some(0));
}

#[test]
fn one_log_line_per_request_without_secrets() {
    let dir = crate::helpers::temp_dir();
    let mut server = serve(dir.path());
    let addr = server.addr();
    server.stdout_until("will not be shown again");
    let out = server.stdout_text();
    let (org_id, key) = (
        banner_value(&out, "org id:"),
        banner_value(&out, "API key:"),
    );
    let url = format!("http://{addr}/api/v1/orgs/{org_id}/projects");
    let bearer = format!("Bearer {key}");
    let (ok_status, ok_id, _) = http(Method::GET, &url, &[("Authorization", &bearer)]);
    let wrong = format!(
        "{}{}",
        &key[..key.len() - 1],
        if key.ends_with('x') { 'y' } else { 'x' }
    );
    let (bad_status, bad_id, _) = http(Method::GET, &url, &[("X-API-Key", &wrong)]);
    let (admin_status, admin_id, _) = http(
        Method::GET,
        &format!("http://{addr}/api/v1/admin/orgs"),
        &[("X-API-Key", MASTER_KEY)],
    );
    let (missing_status, missing_id, _) = http(Method::GET, &format!("http://{addr}/nope"), &[]);
    assert_eq!(
        [ok_status, bad_status, admin_status, missing_status],
        [200, 401, 200, 404]
    );
    assert_eq!(server.terminate().code(), Some(0));

    let requests: Vec<Value> = server
        .err_lines
        .iter()
        .filter_map(|l| json_line(l))
        .filter(|v| v["message"] == "request")
        .collect();
    let line_for = |request_id: &str| {
        let found: Vec<&Value> = requests
            .iter()
            .filter(|v| v["request_id"] == request_id)
            .collect();
        assert_eq!(found.len(), 1, "one line for {request_id}: {requests:#?}");
        found[0].clone()
    };
    let line = line_for(&ok_id);
    assert_eq!(line["method"], "GET");
    assert_eq!(line["route"], "/api/v1/orgs/{org_id}/projects");
    assert_eq!(line["status"], 200);
    let latency = line["latency_ms"].as_f64().expect("latency_ms is a number");
    assert_eq!(latency, (latency * 10.0).round() / 10.0, "rounded: {line}");
    assert_eq!(line["key_id"], key_id(&key).as_str());
    assert_eq!(line_for(&bad_id)["status"], 401);
    assert_eq!(line_for(&admin_id)["route"], "/api/v1/admin/orgs");
    assert_eq!(line_for(&missing_id)["status"], 404);

    let err = server.stderr_text();
    let secret = key.rsplit('_').next().unwrap();
    let wrong_secret = wrong.rsplit('_').next().unwrap();
    for s in [
        key.as_str(),
        secret,
        wrong.as_str(),
        wrong_secret,
        MASTER_KEY,
    ] {
        assert!(!err.contains(s), "the log holds a secret: {err}");
    }
}

/// POSTs JSON with a key over a fresh connection; returns the response's `data`.
pub(crate) fn post_json(url: &str, key: &str, body: Value) -> Value {
    let r = reqwest::blocking::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap()
        .post(url)
        .header("X-API-Key", key)
        .json(&body)
        .send()
        .expect("request");
    assert!(r.status().is_success(), "{}", r.status());
    r.json::<Value>().unwrap()["data"].clone()
}

#[test]
fn webhook_attempts_are_logged_without_the_secret() {
    let dir = crate::helpers::temp_dir();
    let env = [
        ("ROGERIQ_WEBHOOKS_ALLOW_HTTP", "true"),
        ("ROGERIQ_WEBHOOKS_ALLOW_PRIVATE_TARGETS", "true"),
        ("ROGERIQ_WEBHOOKS_RETRY_DELAYS", "[0.1]"),
    ];
    let mut server = start(command(dir.path(), &["--listen", "127.0.0.1:0"], &env));
    let addr = server.addr();
    server.stdout_until("will not be shown again");
    let out = server.stdout_text();
    let (org_id, key) = (
        banner_value(&out, "org id:"),
        banner_value(&out, "API key:"),
    );
    let api = format!("http://{addr}/api/v1");
    let project = post_json(
        &format!("{api}/orgs/{org_id}/projects"),
        &key,
        json!({"name": "Logged"}),
    );
    let p = project["id"].as_str().unwrap();
    let receiver = crate::receiver::Receiver::start("unset");
    receiver.script(&[crate::receiver::Answer::Status(503)]);
    let hook = post_json(
        &format!("{api}/projects/{p}/webhooks"),
        &key,
        json!({"url": receiver.url, "events": ["conversation.created"]}),
    );
    let secret = hook["secret"].as_str().unwrap().to_string();
    receiver.set_secret(&secret);
    post_json(
        &format!("{api}/projects/{p}/conversations"),
        &key,
        json!({}),
    );

    let failed = server.log("webhook attempt");
    let delivered = server.log("webhook attempt");
    let delivery = failed["delivery_id"].as_str().unwrap();
    assert!(delivery.starts_with("whd_"), "{failed}");
    assert_eq!(
        (&failed["attempt"], &failed["status_code"], &failed["level"]),
        (&json!(1), &json!(503), &json!("WARN")),
        "{failed}"
    );
    assert!(
        failed["outcome"].as_str().unwrap().starts_with("failed"),
        "{failed}"
    );
    assert_eq!(delivered["delivery_id"], delivery);
    assert_eq!(
        (
            &delivered["attempt"],
            &delivered["outcome"],
            &delivered["webhook_id"]
        ),
        (&json!(2), &json!("delivered"), &hook["id"]),
        "{delivered}"
    );
    assert!(receiver.received().iter().all(|r| r.verified));
    assert_eq!(server.terminate().code(), Some(0));
    let err = server.stderr_text();
    let random = secret.strip_prefix("whsec_").unwrap();
    assert!(
        !err.contains(random),
        "the log holds the webhook secret: {err}"
    );
}

fn write_config(dir: &Path, text: &str) -> String {
    let path = dir.join("config.toml");
    std::fs::write(&path, text).unwrap();
    path.display().to_string()
}

#[test]
fn environment_overrides_the_config_file() {
    let dir = crate::helpers::temp_dir();
    let config = write_config(
        dir.path(),
        "listen = \"127.0.0.2:0\"\nmaster_key = \"from-the-file-0123456789\"\n",
    );
    let mut server = start(command(
        dir.path(),
        &["--config", &config],
        &[("ROGERIQ_LISTEN", "127.0.0.1:0")],
    ));
    let addr = server.addr();
    assert!(
        addr.starts_with("127.0.0.1:"),
        "env listen wins over the file: {addr}"
    );
    // The environment's master key wins over the file's too.
    let admin = format!("http://{addr}/api/v1/admin/orgs");
    assert_eq!(
        http(Method::GET, &admin, &[("X-API-Key", MASTER_KEY)]).0,
        200
    );
    assert_eq!(
        http(
            Method::GET,
            &admin,
            &[("X-API-Key", "from-the-file-0123456789")]
        )
        .0,
        401
    );
    assert_eq!(server.terminate().code(), Some(0));
}

#[test]
fn flags_override_the_environment_and_the_file_applies_alone() {
    let dir = crate::helpers::temp_dir();
    let config = write_config(dir.path(), "listen = \"127.0.0.2:0\"\n");
    let mut flagged = start(command(
        dir.path(),
        &["--config", &config, "--listen", "127.0.0.1:0"],
        &[("ROGERIQ_LISTEN", "127.0.0.3:0")],
    ));
    let addr = flagged.addr();
    assert!(addr.starts_with("127.0.0.1:"), "flag wins: {addr}");
    assert_eq!(flagged.terminate().code(), Some(0));

    // The file given through ROGERIQ_CONFIG, with nothing overriding it.
    let mut filed = start(command(dir.path(), &[], &[("ROGERIQ_CONFIG", &config)]));
    let addr = filed.addr();
    assert!(addr.starts_with("127.0.0.2:"), "file applies: {addr}");
    assert_eq!(filed.terminate().code(), Some(0));
}

#[test]
fn bad_config_values_exit_naming_the_setting() {
    let dir = crate::helpers::temp_dir();
    let cases: [(&[(&str, &str)], &str); 3] = [
        (&[("ROGERIQ_WORKERS", "lots")], "ROGERIQ_WORKERS"),
        (
            &[("ROGERIQ_MAX_BODY_BYTES", "1MB")],
            "ROGERIQ_MAX_BODY_BYTES",
        ),
        (&[("ROGERIQ_MASTER_KEY", "short")], "master_key"),
    ];
    for (env, named) in cases {
        let mut proc = start(command(dir.path(), &["--listen", "127.0.0.1:0"], env));
        let status = proc.wait();
        assert!(!status.success(), "{env:?}");
        assert!(
            proc.stderr_text().contains(named),
            "{env:?}: {}",
            proc.stderr_text()
        );
    }
    let config = write_config(dir.path(), "lisen = \"127.0.0.1:0\"\n");
    let mut proc = start(command(dir.path(), &["--config", &config], &[]));
    assert!(!proc.wait().success());
    let err = proc.stderr_text();
    assert!(
        err.contains("lisen") || err.contains("config.toml"),
        "{err}"
    );
}

/// A mistyped variable is refused like a mistyped key of the file: `ROGERIQ_STORE_BAKEND`
/// would otherwise start silently on the default store.
#[test]
fn an_unknown_rogeriq_variable_is_refused_naming_the_closest_one() {
    let dir = crate::helpers::temp_dir();
    let mut proc = start(command(
        dir.path(),
        &["--listen", "127.0.0.1:0"],
        &[("ROGERIQ_STORE_BAKEND", "postgres")],
    ));
    assert_eq!(proc.wait().code(), Some(2));
    let err = proc.stderr_text();
    assert!(
        err.contains("ROGERIQ_STORE_BAKEND") && err.contains("did you mean ROGERIQ_STORE_BACKEND?"),
        "{err}"
    );
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// Nothing acknowledged is lost: a writer creates projects as fast as it can, the server is
/// killed with SIGKILL mid-stream, and after a restart (with redb's repair, or on the same
/// PostgreSQL database) every project that got its 201 is there.
#[test]
fn acknowledged_writes_survive_a_kill() {
    let dir = crate::helpers::temp_dir();
    let mut server = serve(dir.path());
    let addr = server.addr();
    server.stdout_until("will not be shown again");
    let out = server.stdout_text();
    let (org_id, key) = (
        banner_value(&out, "org id:"),
        banner_value(&out, "API key:"),
    );

    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let writer = {
        let (acknowledged, url, key) = (
            acknowledged.clone(),
            format!("http://{addr}/api/v1/orgs/{org_id}/projects"),
            key.clone(),
        );
        std::thread::spawn(move || {
            let client = reqwest::blocking::Client::new();
            for i in 0..5_000 {
                let sent = client
                    .post(&url)
                    .header("X-API-Key", &key)
                    .json(&json!({"name": format!("Crash test {i}")}))
                    .send();
                let Ok(response) = sent else { return };
                if response.status().as_u16() != 201 {
                    return;
                }
                let Ok(body) = response.json::<Value>() else {
                    return;
                };
                let id = body["data"]["id"].as_str().unwrap_or_default().to_string();
                acknowledged.lock().unwrap().push(id);
            }
        })
    };
    let deadline = Instant::now() + PATIENCE;
    while acknowledged.lock().unwrap().len() < 50 {
        assert!(Instant::now() < deadline, "the writer made no progress");
        std::thread::sleep(Duration::from_millis(5));
    }
    server.child.kill().expect("SIGKILL");
    server.wait();
    writer.join().expect("writer thread");
    let acknowledged = acknowledged.lock().unwrap().clone();

    let mut restarted = serve(dir.path());
    let addr = restarted.addr();
    let (status, _, body) = http(
        Method::GET,
        &format!("http://{addr}/api/v1/orgs/{org_id}/projects"),
        &[("X-API-Key", &key)],
    );
    assert_eq!(status, 200, "{body}");
    let stored = crate::fixtures::ids(&body);
    let lost: Vec<&String> = acknowledged
        .iter()
        .filter(|id| !stored.contains(id))
        .collect();
    assert!(
        lost.is_empty(),
        "acknowledged but lost after the crash: {lost:?}"
    );
    assert!(stored.len() >= acknowledged.len());
    assert_eq!(restarted.terminate().code(), Some(0));
}

impl Proc {
    pub(crate) fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.child.id().to_string())
            .status()
            .expect("kill");
        assert!(status.success());
    }

    /// The banner's org id and key (after a first start).
    pub(crate) fn banner(&mut self) -> (String, String) {
        self.stdout_until("will not be shown again");
        let out = self.stdout_text();
        (
            banner_value(&out, "org id:"),
            banner_value(&out, "API key:"),
        )
    }
}

/// A raw connection that has sent a project create's head and half its body: a request in
/// flight, which the test completes with [`finish_create`].
fn start_create(addr: &str, org_id: &str, key: &str) -> (std::net::TcpStream, &'static str) {
    use std::io::Write;
    let body = r#"{"name": "In flight"}"#;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(PATIENCE)).unwrap();
    let head = format!(
        "POST /api/v1/orgs/{org_id}/projects HTTP/1.1\r\nHost: test\r\nX-API-Key: {key}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).unwrap();
    let (sent, rest) = body.split_at(10);
    stream.write_all(sent.as_bytes()).unwrap();
    (stream, rest)
}

/// Sends the rest of the body; returns the whole answer.
fn finish_create(mut stream: std::net::TcpStream, rest: &str) -> String {
    use std::io::{Read, Write};
    stream.write_all(rest.as_bytes()).unwrap();
    let mut answer = [0u8; 4096];
    let n = stream.read(&mut answer).expect("an answer");
    String::from_utf8_lossy(&answer[..n]).into_owned()
}

#[test]
fn sigint_drains_in_flight_requests_and_a_second_signal_forces() {
    let dir = crate::helpers::temp_dir();
    let mut server = serve(dir.path());
    let addr = server.addr();
    let (org_id, key) = server.banner();
    let (stream, rest) = start_create(&addr, &org_id, &key);
    // Let the request reach its handler, which waits for the body.
    std::thread::sleep(Duration::from_millis(200));
    server.signal("INT");
    server.log("draining in-flight requests; a second signal stops at once");
    let answer = finish_create(stream, rest);
    assert!(answer.starts_with("HTTP/1.1 201 "), "{answer}");
    assert_eq!(server.wait().code(), Some(0), "{}", server.stderr_text());
    assert!(
        server
            .err_lines
            .iter()
            .filter_map(|l| json_line(l))
            .any(|v| v["message"] == "stopped"),
        "{}",
        server.stderr_text()
    );

    // A request that never finishes holds the drain until a second signal ends it at once.
    let mut again = serve(dir.path());
    let addr = again.addr();
    let (_stalled, _) = start_create(&addr, &org_id, &key);
    std::thread::sleep(Duration::from_millis(200));
    again.signal("INT");
    again.log("draining in-flight requests; a second signal stops at once");
    let started = Instant::now();
    again.signal("TERM");
    assert_eq!(again.wait().code(), Some(143));
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn a_busy_port_leaves_no_banner_and_no_data_directory() {
    let dir = crate::helpers::temp_dir();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listen = taken.local_addr().unwrap().to_string();
    let data_dir = dir.path().join("data");
    let mut proc = start(command(&data_dir, &["--listen", &listen], &[]));
    let status = proc.wait();
    assert_eq!(status.code(), Some(1), "{}", proc.stderr_text());
    assert!(
        proc.stderr_text()
            .contains(&format!("cannot listen on {listen}")),
        "{}",
        proc.stderr_text()
    );
    assert!(
        !proc.stdout_text().contains("API key"),
        "{}",
        proc.stdout_text()
    );
    assert!(!data_dir.exists(), "the data directory was created");
}

#[test]
fn a_bad_log_filter_is_refused() {
    let dir = crate::helpers::temp_dir();
    let data_dir = dir.path().join("data");
    let args = ["--listen", "127.0.0.1:0", "--log-level", "rogeriq=loud,,="];
    let mut proc = start(command(&data_dir, &args, &[]));
    assert_eq!(proc.wait().code(), Some(2));
    let err = proc.stderr_text();
    assert!(
        err.contains("log_level 'rogeriq=loud,,=' is not a log filter"),
        "{err}"
    );
    assert!(!data_dir.exists());
}

/// Malformed HTTP from anyone is a client's doing: logged at debug level with the peer's
/// address, never at ERROR.
#[test]
fn malformed_requests_are_logged_at_debug_with_the_peer() {
    use std::io::{Read, Write};
    let dir = crate::helpers::temp_dir();
    let args = [
        "--listen",
        "127.0.0.1:0",
        "--log-level",
        "info,rogeriq=debug",
    ];
    let mut server = start(command(dir.path(), &args, &[]));
    let addr = server.addr();
    let long_uri = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(70_000));
    let huge_head = format!(
        "GET / HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "b".repeat(200_000)
    );
    for garbage in ["GARBAGE\r\n\r\n", long_uri.as_str(), huge_head.as_str()] {
        let mut stream = std::net::TcpStream::connect(&addr).unwrap();
        stream.set_read_timeout(Some(PATIENCE)).unwrap();
        let _ = stream.write_all(garbage.as_bytes());
        let mut answer = Vec::new();
        let _ = stream.read_to_end(&mut answer);
        let answer = String::from_utf8_lossy(&answer);
        assert!(answer.starts_with("HTTP/1.1 4"), "{answer}");
        let peer = stream.local_addr().unwrap().to_string();
        let line = loop {
            let line = server.log("connection closed: client error");
            if line["peer"] == peer.as_str() {
                break line;
            }
        };
        assert_eq!(line["level"], "DEBUG", "{line}");
    }
    server.terminate();
    let errors: Vec<&String> = server
        .err_lines
        .iter()
        .filter(|l| json_line(l).is_some_and(|v| v["level"] == "ERROR"))
        .collect();
    assert!(errors.is_empty(), "{errors:#?}");
}

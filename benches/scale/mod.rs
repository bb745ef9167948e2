//! The store at scale, for `benches/requests.rs`'s table: the project cascade, the server's
//! memory under load and its restart time, over stores filled through the kinds' own write
//! operations (records, index entries, search postings, audit entries), never raw puts.
//!
//! - **Cascade.** A project of `records` children is deleted in one durable write, as
//!   `DELETE /api/v1/orgs/{org}/projects/{id}` does: first on a store that holds only it, then on
//!   a store that also holds `other_projects` projects of the same size; each `REPEATS` times,
//!   and the row shows the median.
//! - **Memory.** The larger store is served by the real binary in a child process, with its
//!   default settings (`[store] cache_mb` = 64), while wrk GETs records by id from all over the
//!   store; the row is the child's peak resident memory (VmHWM).
//! - **Restart.** The same server is stopped with SIGTERM (a clean shutdown) and started again;
//!   the row is the time from spawning the process to its first `/healthz` answer.

use std::io::{Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use rogeriq::auth::scope::{Scope, Verb};
use rogeriq::error::{ApiError, ApiResult};
use rogeriq::ids::{OrgId, ProjectId};
use rogeriq::org_owned::api_key::{self, KeyCreate};
use rogeriq::org_owned::audit::Actor;
use rogeriq::org_owned::org::{self, OrgCreate};
use rogeriq::org_owned::project::{self, ProjectCreate};
use rogeriq::project_owned::contact::{self, ContactFields, Upserted};
use rogeriq::project_owned::conversation::{Conversation, ConversationCreate};
use rogeriq::project_owned::kb::{self, Article, ArticleCreate};
use rogeriq::project_owned::message::{self, MessageCreate};
use rogeriq::project_owned::{self, Id, ProjectScope, routed};
use rogeriq::rate_limit::Tier;
use rogeriq::store::{Limits, Reader, Store, layout, tables};
use serde_json::json;

/// Records of one unit of load, written in this mix: a support project is mostly messages.
const CONTACTS: usize = 15;
const CONVERSATIONS: usize = 15;
const MESSAGES: usize = 65;
/// Published, so each also has its search postings.
const ARTICLES: usize = 5;
const UNIT: usize = CONTACTS + CONVERSATIONS + MESSAGES + ARTICLES;

/// Units written per write transaction while loading (10 000 records).
const UNITS_PER_WRITE: usize = 100;

/// Deletions timed in each cascade row; the row shows the median.
const REPEATS: usize = 3;

/// Conversations per project whose ids the memory load GETs.
const SAMPLED_PER_PROJECT: usize = 1_000;

/// How long a child server may take to start or stop before the bench gives up (a hang guard).
const PATIENCE: Duration = Duration::from_secs(60);

/// What the scale rows measure, and on how much.
pub struct Sizes {
    /// Records of the deleted project, and of each other project.
    pub records: usize,
    pub other_projects: usize,
    /// How long wrk loads the child server.
    pub load_seconds: u64,
}

/// One row of the printed table: what was measured, its value and the goal.
pub struct Row {
    pub name: String,
    pub value: String,
    pub goal: String,
}

/// A project filled by `fill_project`.
struct Filled {
    project_id: ProjectId,
    /// Ids of up to `SAMPLED_PER_PROJECT` of its conversations, spread over the project.
    conversations: Vec<String>,
}

/// A store built for the bench: its folder (the server's `data_dir`), the org and its key.
struct Built {
    dir: tempfile::TempDir,
    org_id: OrgId,
    key: String,
    /// Records of each project.
    records: usize,
    /// The projects that the cascade deletes, one per repetition: created last.
    targets: Vec<Filled>,
    others: Vec<Filled>,
}

impl Built {
    fn data_file(&self) -> PathBuf {
        self.dir.path().join("rogeriq.redb")
    }
}

/// Measures every scale row; `wrk_found` says whether the memory row can run a load.
pub fn rows(sizes: &Sizes, wrk_found: bool) -> ApiResult<Vec<Row>> {
    let mut rows = Vec::new();
    let records = sizes.records;

    let mut alone = Vec::new();
    for _ in 0..REPEATS {
        let built = build(records, 0, 1)?;
        alone.push(time_cascade(&built, &built.targets[0])?);
    }
    let alone = Cascade::median(alone);
    rows.push(Row {
        name: format!(
            "cascade: delete a project of {} records ({} keys, {} MB), alone",
            count(records),
            alone.keys,
            alone.bytes / 1_000_000
        ),
        value: format!("{:.1} ms", alone.wall_ms),
        goal: format!("≤ 80 ms ({}; {})", alone.spread(), alone.split()),
    });

    let large = build(records, sizes.other_projects, REPEATS)?;
    let file_bytes = std::fs::metadata(large.data_file())
        .map_err(ApiError::internal)?
        .len();
    let others = records * sizes.other_projects;

    let port = free_port()?;
    let mut server = spawn_server(large.dir.path(), port)?;
    wait_for_health(port, &mut server)?;
    let started_kib = memory_kib(server.id(), "VmRSS:").unwrap_or(0);
    let load_name = if wrk_found {
        let script = memory_load_script(&large)?;
        run_wrk(port, &script, sizes.load_seconds)?;
        format!("GET by id under wrk, 64 conns, {} s", sizes.load_seconds)
    } else {
        get_once(port, &large)?;
        "wrk not found: one GET".into()
    };
    let peak_kib = memory_kib(server.id(), "VmHWM:").unwrap_or(0);
    stop_server(server)?;
    rows.push(Row {
        name: format!(
            "memory: server peak RSS, {} records, {load_name}",
            count(others + records * REPEATS)
        ),
        value: format!("{} MiB", peak_kib / 1024),
        goal: format!("≤ 128 MB (at start: {} MiB)", started_kib / 1024),
    });

    let mut restarts = Vec::new();
    for _ in 0..3 {
        let started = Instant::now();
        let mut server = spawn_server(large.dir.path(), port)?;
        wait_for_health(port, &mut server)?;
        restarts.push(started.elapsed().as_secs_f64() * 1000.0);
        stop_server(server)?;
    }
    restarts.sort_by(f64::total_cmp);
    rows.push(Row {
        name: format!(
            "restart: clean stop, start to /healthz, {} MB store",
            file_bytes / 1_000_000
        ),
        value: format!("{:.0} ms", restarts[restarts.len() / 2]),
        goal: format!(
            "≤ 200 ms (median of {}, max {:.0} ms)",
            restarts.len(),
            restarts[restarts.len() - 1]
        ),
    });

    // Each target is deleted beside the others and the targets not yet deleted: at least
    // `others` records.
    let mut beside = Vec::new();
    for target in &large.targets {
        beside.push(time_cascade(&large, target)?);
    }
    let beside = Cascade::median(beside);
    rows.push(Row {
        name: format!(
            "cascade: the same ({} keys) beside ≥ {} records of other projects",
            beside.keys,
            count(others),
        ),
        value: format!("{:.1} ms", beside.wall_ms),
        goal: format!(
            "≤ 1.2× alone: {:.2}× ({}; {})",
            beside.wall_ms / alone.wall_ms,
            beside.spread(),
            beside.split(),
        ),
    });
    Ok(rows)
}

/// `1000000` as `1M`, `100000` as `100k`; other numbers as they are.
fn count(n: usize) -> String {
    match n {
        n if n >= 1_000_000 && n.is_multiple_of(100_000) => {
            format!("{}M", n as f64 / 1_000_000.0)
        }
        n if n >= 1_000 && n.is_multiple_of(1_000) => format!("{}k", n / 1_000),
        n => n.to_string(),
    }
}

/// A store with one org and an admin key, `other_projects` projects of `records` records and
/// then `targets` projects of `records` records; closed again, so that the next open (the
/// server's, the cascade's) starts from a cleanly shut file.
fn build(records: usize, other_projects: usize, targets: usize) -> ApiResult<Built> {
    let dir = tempfile::tempdir().map_err(ApiError::internal)?;
    let store = Store::open(&dir.path().join("rogeriq.redb")).map_err(ApiError::internal)?;
    // Marks the new file as holding the current index layout and complete record counts, as
    // the server's first start does; the records below keep both up to date as they are written.
    project_owned::registry::build_indexes(&store)?;
    store.write_blocking(project_owned::registry::count_records_once)?;
    let (org_id, key) = store.write_blocking(|tx| {
        let actor = Actor::master(None);
        let created = org::create(
            tx,
            &actor,
            OrgCreate {
                name: "bench".into(),
            },
        )?;
        let input = KeyCreate {
            name: "bench".into(),
            scopes: vec![Scope::Coarse(Verb::Admin)],
            tier: Tier::Enterprise,
            expires_at: None,
        };
        let (_, key) = api_key::create(tx, &actor, &created.id, input)?;
        Ok((created.id, key))
    })?;
    let mut others = Vec::new();
    for i in 0..other_projects {
        others.push(fill_project(
            &store,
            &org_id,
            &format!("Other {i}"),
            records,
        )?);
    }
    let targets = (0..targets)
        .map(|i| fill_project(&store, &org_id, &format!("Deleted {i}"), records))
        .collect::<ApiResult<Vec<_>>>()?;
    store
        .close(Duration::from_secs(5))
        .map_err(ApiError::internal)?;
    Ok(Built {
        dir,
        org_id,
        key,
        records,
        targets,
        others,
    })
}

/// Creates a project and writes `records` records into it through the kinds' create
/// operations, many per write transaction.
fn fill_project(store: &Store, org_id: &OrgId, name: &str, records: usize) -> ApiResult<Filled> {
    let units = records / UNIT;
    assert_eq!(units * UNIT, records, "records come in units of {UNIT}");
    let scope = store.write_blocking({
        let (org_id, name) = (org_id.clone(), name.to_string());
        move |tx| {
            let input = ProjectCreate::from_json(json!({ "name": name }))?;
            let created = project::create(tx, &Actor::master(None), &org_id, input)?;
            ProjectScope::resolve(tx, &org_id, &created.id)
        }
    })?;
    let sample_every = (units * CONVERSATIONS).div_ceil(SAMPLED_PER_PROJECT).max(1);
    let mut conversations = Vec::new();
    let mut first = 0;
    while first < units {
        let last = (first + UNITS_PER_WRITE).min(units);
        let scope = scope.clone();
        let written = store.write_blocking(move |tx| {
            let actor = Actor::master(None);
            let mut ids = Vec::new();
            for unit in first..last {
                ids.extend(write_unit(tx, &scope, &actor, unit)?);
            }
            Ok(ids)
        })?;
        let offset = first * CONVERSATIONS;
        conversations.extend(
            written
                .into_iter()
                .enumerate()
                .filter(|(i, _)| (offset + i).is_multiple_of(sample_every))
                .map(|(_, id)| id),
        );
        first = last;
    }
    Ok(Filled {
        project_id: scope.project_id,
        conversations,
    })
}

/// One unit: contacts, a conversation with each, messages spread over those conversations and
/// published articles, each through the operation its route runs. Returns the conversations'
/// ids.
fn write_unit(
    tx: &mut rogeriq::store::Tx<'_>,
    scope: &ProjectScope,
    actor: &Actor,
    unit: usize,
) -> ApiResult<Vec<String>> {
    let mut words = Words::new(unit as u64);
    let mut contacts = Vec::new();
    for i in 0..CONTACTS {
        let fields = ContactFields::upsert_from_json(json!({
            "email": format!("customer-{unit}-{i}@example.com"),
            "name": format!("Customer {unit} {i}"),
            "external_id": format!("user-{unit}-{i}"),
            "phone": "+15551234567",
            "company": "Example Inc",
            "metadata": {"plan": "pro", "seats": 3},
        }))?;
        match contact::upsert(tx, scope, actor, fields)? {
            Upserted::Created(created) => contacts.push(created.id),
            Upserted::Updated(_) => {
                return Err(ApiError::internal("a bench contact matched an older one"));
            }
        }
    }
    let mut conversations = Vec::new();
    for (i, contact_id) in contacts.iter().enumerate().take(CONVERSATIONS) {
        let input = ConversationCreate::from_json(json!({
            "subject": words.sentence(6),
            "contact_id": contact_id,
            "channel": "email",
            "priority": if i % 5 == 0 { "high" } else { "normal" },
            "tags": ["billing"],
        }))?;
        conversations.push(routed::create::<Conversation>(tx, scope, actor, input)?.id);
    }
    for i in 0..MESSAGES {
        let input = MessageCreate::from_json(json!({
            "content": words.sentence(16),
            "sender_type": if i % 8 == 0 { "system" } else { "agent" },
        }))?;
        message::post(
            tx,
            scope,
            actor,
            &Id::parse_found(&conversations[i % CONVERSATIONS])?,
            input,
        )?;
    }
    for i in 0..ARTICLES {
        let input = ArticleCreate::from_json(json!({
            "title": format!("{} {unit} {i}", words.sentence(4)),
            "content": words.sentence(40),
            "category": "billing",
        }))?;
        let article = routed::create::<Article>(tx, scope, actor, input)?;
        kb::publish(tx, scope, actor, &Id::of(&article))?;
    }
    Ok(conversations)
}

/// Made-up words from a vocabulary of a few thousand, chosen by a small deterministic
/// generator, so that articles share some search terms and not others.
struct Words(u64);

impl Words {
    const SYLLABLES: [&str; 16] = [
        "ka", "lo", "mi", "ren", "tas", "vo", "pel", "dir", "sun", "gra", "bel", "tor", "nix",
        "qua", "zem", "fol",
    ];

    fn new(seed: u64) -> Words {
        Words(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    fn next(&mut self) -> usize {
        // xorshift64
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 as usize
    }

    fn word(&mut self) -> String {
        let syllables = 2 + self.next() % 2;
        (0..syllables)
            .map(|_| Self::SYLLABLES[self.next() % Self::SYLLABLES.len()])
            .collect()
    }

    fn sentence(&mut self, words: usize) -> String {
        (0..words)
            .map(|_| self.word())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// What the range delete of one project covered, and how long it took.
struct Cascade {
    wall_ms: f64,
    /// CPU time of the writer thread during the delete: on a busy machine the wall time also
    /// counts the time other processes held the cores.
    cpu_ms: f64,
    /// Wall time of the durable commit after the delete, and of handing the job to the writer.
    commit_ms: f64,
    keys: usize,
    bytes: usize,
    /// Wall times of every repetition, fastest first, once `median` has gathered them.
    walls: Vec<f64>,
}

impl Cascade {
    /// The repetition of median wall time, with every repetition's wall time.
    fn median(mut runs: Vec<Cascade>) -> Cascade {
        runs.sort_by(|a, b| a.wall_ms.total_cmp(&b.wall_ms));
        let walls: Vec<f64> = runs.iter().map(|r| r.wall_ms).collect();
        let mut middle = runs.swap_remove(runs.len() / 2);
        middle.walls = walls;
        middle
    }

    /// Where the median's wall time went: `writer CPU 70.1 ms, commit 9.0 ms`.
    fn split(&self) -> String {
        format!(
            "writer CPU {:.1} ms, commit {:.1} ms",
            self.cpu_ms, self.commit_ms
        )
    }

    /// `median of 3: 70, 75, 90 ms`.
    fn spread(&self) -> String {
        let walls: Vec<String> = self.walls.iter().map(|w| format!("{w:.0}")).collect();
        format!("median of {}: {} ms", walls.len(), walls.join(", "))
    }
}

/// Counts the keys under `target`'s prefix, closes the store, then opens it again as the
/// server would (default page cache, nothing cached yet) and times the deletion in one durable
/// write, as `DELETE /api/v1/orgs/{org}/projects/{id}` runs it.
fn time_cascade(built: &Built, target: &Filled) -> ApiResult<Cascade> {
    let open =
        || Store::open_with(&built.data_file(), Limits::default()).map_err(ApiError::internal);
    let close = |store: Store| {
        store
            .close(Duration::from_secs(5))
            .map_err(ApiError::internal)
    };
    let prefix = layout::project_prefix(&built.org_id, &target.project_id);
    let store = open()?;
    let (keys, bytes) = store.read_blocking(|rx| {
        let (mut keys, mut bytes) = (0, 0);
        rx.scan(
            tables::OWNED,
            layout::prefix_range(&prefix),
            false,
            &mut |key, value| {
                keys += 1;
                bytes += key.len() + value.len();
                Ok(ControlFlow::Continue(()))
            },
        )?;
        Ok((keys, bytes))
    })?;
    close(store)?;

    let store = open()?;
    let (org_id, project_id) = (built.org_id.clone(), target.project_id.clone());
    let started = Instant::now();
    let (removed, cpu_ns, in_transaction) = store.write_blocking(move |tx| {
        let (cpu_before, wall_before) = (thread_cpu_ns(), Instant::now());
        let removed = project_owned::registry::delete_project(
            tx,
            &Actor::master(None),
            &org_id,
            &project_id,
        )?;
        let cpu = thread_cpu_ns().saturating_sub(cpu_before);
        Ok((removed, cpu, wall_before.elapsed()))
    })?;
    let wall = started.elapsed();
    let wall_ms = wall.as_secs_f64() * 1000.0;
    close(store)?;
    let counted: u64 = removed.iter().map(|(_, n)| n).sum();
    if counted != built.records as u64 {
        return Err(ApiError::internal(format!(
            "the cascade removed {removed:?}, not {} records",
            built.records
        )));
    }
    Ok(Cascade {
        wall_ms,
        cpu_ms: cpu_ns as f64 / 1e6,
        commit_ms: wall.saturating_sub(in_transaction).as_secs_f64() * 1000.0,
        keys,
        bytes,
        walls: Vec::new(),
    })
}

/// Nanoseconds the calling thread has run on a CPU (the first field of its schedstat); 0 where
/// the kernel does not say. The delete's commit waits on the disk, which this leaves out.
fn thread_cpu_ns() -> u64 {
    std::fs::read_to_string("/proc/thread-self/schedstat")
        .ok()
        .and_then(|s| s.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// A loopback port that was free a moment ago, so that the restarted server listens where the
/// bench polls.
fn free_port() -> ApiResult<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").map_err(ApiError::internal)?;
    Ok(listener.local_addr().map_err(ApiError::internal)?.port())
}

/// `rogeriq serve` on `data_dir` with its default settings, except rate limiting (off, as in
/// the request rows) and request logs (warnings only, so that logging is not what is measured).
fn spawn_server(data_dir: &Path, port: u16) -> ApiResult<Child> {
    let mut command = Command::new(env!("CARGO_BIN_EXE_rogeriq"));
    command
        .arg("serve")
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--listen")
        .arg(format!("127.0.0.1:{port}"))
        .args(["--log-level", "warn"]);
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("ROGERIQ_") {
            command.env_remove(name);
        }
    }
    command
        .env("ROGERIQ_RATE_LIMIT_ENABLED", "false")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|err| ApiError::internal(format!("cannot start rogeriq: {err}")))
}

/// Polls `GET /healthz` every millisecond until it answers 200.
fn wait_for_health(port: u16, server: &mut Child) -> ApiResult<()> {
    let deadline = Instant::now() + PATIENCE;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    while Instant::now() < deadline {
        if let Ok(Some(status)) = server.try_wait() {
            return Err(ApiError::internal(format!("rogeriq exited: {status}")));
        }
        if http_get(addr, "/healthz", None).is_ok_and(|status| status == 200) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    Err(ApiError::internal("rogeriq did not answer /healthz"))
}

/// One HTTP/1.1 GET over a fresh connection; returns the status code.
fn http_get(addr: SocketAddr, path: &str, key: Option<&str>) -> std::io::Result<u16> {
    let mut stream = TcpStream::connect(addr)?;
    let key_header = key
        .map(|k| format!("X-API-Key: {k}\r\n"))
        .unwrap_or_default();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\n{key_header}Connection: close\r\n\r\n"
    )?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("not an HTTP answer: {response:?}")))
}

/// SIGTERM, then waits for the process to exit (the server's clean shutdown).
fn stop_server(mut server: Child) -> ApiResult<()> {
    let signalled = Command::new("kill")
        .args(["-TERM", &server.id().to_string()])
        .status()
        .map_err(ApiError::internal)?;
    if !signalled.success() {
        return Err(ApiError::internal("kill -TERM failed"));
    }
    let deadline = Instant::now() + PATIENCE;
    loop {
        match server.try_wait().map_err(ApiError::internal)? {
            Some(status) if status.success() => return Ok(()),
            Some(status) => return Err(ApiError::internal(format!("rogeriq exited: {status}"))),
            None if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(5)),
            None => {
                let _ = server.kill();
                return Err(ApiError::internal("rogeriq did not stop on SIGTERM"));
            }
        }
    }
}

/// A line of `/proc/<pid>/status` in KiB: `VmRSS:` now, `VmHWM:` the peak.
fn memory_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Every path the memory load GETs: each project, and sampled conversations of every project.
fn load_paths(built: &Built) -> Vec<String> {
    let mut paths = Vec::new();
    for filled in built.others.iter().chain(&built.targets) {
        paths.push(format!(
            "/api/v1/orgs/{}/projects/{}",
            built.org_id, filled.project_id
        ));
        for id in &filled.conversations {
            paths.push(format!(
                "/api/v1/projects/{}/conversations/{id}",
                filled.project_id
            ));
        }
    }
    paths
}

/// A wrk script that GETs a random one of `load_paths` with the org's key on every request.
fn memory_load_script(built: &Built) -> ApiResult<PathBuf> {
    let path = built.dir.path().join("memory-load.lua");
    let mut script = String::from("local paths = {\n");
    for p in load_paths(built) {
        script.push_str(&format!("  \"{p}\",\n"));
    }
    script.push_str(&format!(
        "}}\nlocal headers = {{[\"X-API-Key\"] = \"{}\"}}\n\
         function request()\n  return wrk.format(\"GET\", paths[math.random(#paths)], headers)\nend\n",
        built.key
    ));
    std::fs::File::create(&path)
        .and_then(|mut f| f.write_all(script.as_bytes()))
        .map_err(ApiError::internal)?;
    Ok(path)
}

/// Runs wrk with `script` at 64 connections; fails when any response was not a success.
fn run_wrk(port: u16, script: &Path, seconds: u64) -> ApiResult<()> {
    let output = Command::new("wrk")
        .args(["-t2", "-c64", &format!("-d{seconds}s"), "-s"])
        .arg(script)
        .arg(format!("http://127.0.0.1:{port}"))
        .output()
        .map_err(ApiError::internal)?;
    let text = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() || text.contains("Non-2xx") || text.contains("Socket errors") {
        return Err(ApiError::internal(format!(
            "the memory load failed: {text}"
        )));
    }
    Ok(())
}

/// Without wrk: each of the load's kinds of path once, so the smoke pass still checks them.
fn get_once(port: u16, built: &Built) -> ApiResult<()> {
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let paths = load_paths(built);
    for path in [paths.first(), paths.last()].into_iter().flatten() {
        let status = http_get(addr, path, Some(&built.key)).map_err(ApiError::internal)?;
        if status != 200 {
            return Err(ApiError::internal(format!("GET {path}: {status}")));
        }
    }
    Ok(())
}

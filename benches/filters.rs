//! Filtered list cost: one project of 100 000 contacts and 100 000 conversations among 1 000 000
//! other records (ten messages per conversation, in the same project) and 5 000 KB articles.
//! Each workload runs the store operations its handler runs (resolve the project, then the
//! list or the read, then serialise the answer to JSON) in one read transaction on the calling
//! thread, timed in-process: no HTTP. Every row is also given as a multiple of `GET by id`
//! measured the same way in the same run (p50 of p50, p99 of p99). The goal: every filtered
//! page within 3x a GET by id at p50 and 10x at p99.
//!
//! `cargo bench --bench filters` (or `make bench`) runs the full size. Run without `--bench`
//! (as `cargo test --all-targets` does) it runs the same code at 1/100 scale, as a smoke test.

use std::time::{Duration, Instant};

use serde_json::Value;

use reqwest::blocking::Client;
use rogeriq::config::Settings;
use rogeriq::error::{ApiError, ApiResult};
use rogeriq::org_owned::api_key::{self, KeyCreate};
use rogeriq::org_owned::audit::Actor;
use rogeriq::org_owned::org::{self, OrgCreate};
use rogeriq::org_owned::project::{self, ProjectCreate, Slug};
use rogeriq::project_owned::contact::{Contact, Email};
use rogeriq::project_owned::conversation::{Channel, Conversation, Priority, Status};
use rogeriq::project_owned::kb::{Article, ArticleStatus};
use rogeriq::project_owned::message::{ContentType, Message, SenderType};
use rogeriq::project_owned::{self, Id, IndexEntry, Kind, ProjectScope, Routed, routed};
use rogeriq::query::QueryParams;
use rogeriq::rate_limit::Tier;
use rogeriq::server::{self, Options};
use rogeriq::store::{Reader, Store, Tx, tables};

/// Records written per write transaction while loading.
const LOAD_BATCH: usize = 10_000;
const AGENTS: usize = 20;
const CATEGORIES: &[&str] = &["billing", "setup", "account", "shipping", "returns"];

struct Sizes {
    contacts: usize,
    conversations: usize,
    messages_per_conversation: usize,
    articles: usize,
    iterations: usize,
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let sizes = if full {
        Sizes {
            contacts: 100_000,
            conversations: 100_000,
            messages_per_conversation: 10,
            articles: 5_000,
            iterations: 2_000,
        }
    } else {
        Sizes {
            contacts: 1_000,
            conversations: 1_000,
            messages_per_conversation: 10,
            articles: 50,
            iterations: 20,
        }
    };
    if let Err(err) = run(&sizes, full) {
        eprintln!("filters bench failed: {err}");
        std::process::exit(1);
    }
}

fn run(sizes: &Sizes, full: bool) -> ApiResult<()> {
    let dir = tempfile::tempdir().map_err(ApiError::internal)?;
    let store = Store::open(&dir.path().join("rogeriq.redb")).map_err(ApiError::internal)?;
    // As the server does on open: a new file is marked as holding the current index layout.
    project_owned::registry::build_indexes(&store)?;
    let started = Instant::now();
    let (scope, key) = load(&store, sizes)?;
    println!(
        "filtered lists ({}): {} contacts, {} conversations, {} messages, {} articles in one \
         project; loaded in {:.0} s; budget {} entries a page",
        if full {
            "full size"
        } else {
            "smoke size, 1/100"
        },
        sizes.contacts,
        sizes.conversations,
        sizes.conversations * sizes.messages_per_conversation,
        sizes.articles,
        started.elapsed().as_secs_f64(),
        rogeriq::store::Limits::default().list_scan_budget,
    );
    let n = sizes.iterations;
    let workloads = workloads(sizes);
    let ids: Vec<String> = (0..n)
        .map(|i| contact_record_id(i * 7919 % sizes.contacts))
        .collect();

    println!("\nin process: the handler's store operations and JSON, no HTTP");
    let get = measure(n, |i| {
        let id = ids[i].clone();
        let scope = scope.clone();
        store.read_blocking(move |rx| {
            let scope = ProjectScope::resolve(rx, &scope.org_id, &scope.project_id)?;
            let record: Contact = project_owned::get(rx, &scope, &Id::parse_found(&id)?)?;
            to_json(&record.view())
        })
    })?;
    report(&get, &workloads, |list, query, i| {
        let query = format!("limit=20&{}", query(i));
        let scope = scope.clone();
        store.read_blocking(move |rx| page(rx, &scope, list, &query))
    })?;
    store
        .close(Duration::from_secs(5))
        .map_err(ApiError::internal)?;

    println!(
        "\nover HTTP: the server on loopback (release build under `cargo bench`), one connection, requests in sequence"
    );
    let mut settings = Settings {
        listen: "127.0.0.1:0".into(),
        data_dir: dir.path().to_path_buf(),
        workers: 2,
        ..Settings::default()
    };
    settings.rate_limit.enabled = false;
    let launched = server::launch(
        settings,
        Options {
            handle_signals: false,
        },
    )
    .map_err(ApiError::internal)?;
    let server = launched.server;
    let thread = std::thread::spawn(move || actix_web::rt::System::new().block_on(server));
    let base = format!(
        "http://{}/api/v1/projects/{}",
        launched.addr, scope.project_id
    );
    let client = Client::new();
    let fetch = |url: String| -> ApiResult<usize> {
        let response = client
            .get(url)
            .header("X-API-Key", &key)
            .send()
            .map_err(ApiError::internal)?;
        if !response.status().is_success() {
            return Err(ApiError::internal(format!("status {}", response.status())));
        }
        let body: Value = response.json().map_err(ApiError::internal)?;
        Ok(body["data"].as_array().map_or(1, Vec::len))
    };
    let get = measure(n, |i| fetch(format!("{base}/contacts/{}", ids[i])))?;
    report(&get, &workloads, |list, query, i| {
        let path = match list {
            "c" => "contacts",
            "v" => "conversations",
            _ => "kb/articles",
        };
        fetch(format!("{base}/{path}?limit=20&{}", query(i)))
    })?;
    actix_web::rt::System::new().block_on(launched.handle.stop(true));
    let _ = thread.join();
    server::close(launched.dispatcher, launched.store);
    Ok(())
}

/// Prints `get` and each workload's timing, as microseconds and as multiples of `get`.
fn report(
    get: &Timing,
    workloads: &[(&str, &'static str, Query)],
    run: impl Fn(&'static str, &Query, usize) -> ApiResult<usize>,
) -> ApiResult<()> {
    println!(
        "{:<42} {:>9} {:>9} {:>7} {:>7} {:>6}",
        "workload (limit 20)", "p50 µs", "p99 µs", "p50 x", "p99 x", "items"
    );
    println!(
        "{:<42} {:>9.1} {:>9.1} {:>7.2} {:>7.2} {:>6}",
        "GET by id",
        micros(get.p50),
        micros(get.p99),
        1.0,
        1.0,
        1
    );
    let mut worst = (0.0f64, 0.0f64);
    for (name, list, query) in workloads {
        let timing = measure(get.n, |i| run(list, query, i))?;
        let (x50, x99) = (
            timing.p50.as_secs_f64() / get.p50.as_secs_f64(),
            timing.p99.as_secs_f64() / get.p99.as_secs_f64(),
        );
        if !name.contains("budget") && !name.contains("unfiltered") {
            worst = (worst.0.max(x50), worst.1.max(x99));
        }
        println!(
            "{name:<42} {:>9.1} {:>9.1} {:>7.2} {:>7.2} {:>6.1}",
            micros(timing.p50),
            micros(timing.p99),
            x50,
            x99,
            timing.items
        );
    }
    println!(
        "  worst filtered page: p50 {:.2}x, p99 {:.2}x a GET by id (goal 3x, 10x)",
        worst.0, worst.1
    );
    Ok(())
}

type Query = Box<dyn Fn(usize) -> String>;

/// Each workload: its name, its list (`c`ontacts, con`v`ersations, `k`b articles) and its
/// query for iteration `i` (values spread over the records).
fn workloads(sizes: &Sizes) -> Vec<(&'static str, &'static str, Query)> {
    let (contacts, conversations) = (sizes.contacts, sizes.conversations);
    let contact = move |i: usize| format!("user-{}", i % contacts);
    let conversation = move |i: usize| i % conversations;
    vec![
        (
            "contacts, unfiltered page",
            "c",
            Box::new(|_| String::new()),
        ),
        (
            "contacts, email (1 match)",
            "c",
            Box::new(move |i| format!("email={}%40example.com", contact(i * 7919))),
        ),
        (
            "contacts, email (no match)",
            "c",
            Box::new(|_| "email=nobody%40example.com".into()),
        ),
        (
            "contacts, external_id (1 match)",
            "c",
            Box::new(move |i| format!("external_id={}", contact(i * 7919))),
        ),
        (
            "contacts, q selective (1 match)",
            "c",
            Box::new(move |i| format!("q={}%40", contact(i * 7919))),
        ),
        (
            "contacts, q unselective",
            "c",
            Box::new(|_| "q=customer".into()),
        ),
        (
            "contacts, q of 2 chars (budget)",
            "c",
            Box::new(|_| "q=zq".into()),
        ),
        (
            "conversations, unfiltered page",
            "v",
            Box::new(|_| String::new()),
        ),
        (
            "conversations, status",
            "v",
            Box::new(|i| format!("status={}", Status::VALUES[i % 4].0)),
        ),
        (
            "conversations, priority",
            "v",
            Box::new(|i| format!("priority={}", Priority::VALUES[i % 4].0)),
        ),
        (
            "conversations, channel",
            "v",
            Box::new(|i| format!("channel={}", Channel::VALUES[i % 7].0)),
        ),
        (
            "conversations, assigned_to",
            "v",
            Box::new(|i| format!("assigned_to=agent-{}", i % AGENTS)),
        ),
        (
            "conversations, contact_id (1 match)",
            "v",
            Box::new(move |i| format!("contact_id={}", contact_id(conversation(i * 7919)))),
        ),
        (
            "conversations, status+priority",
            "v",
            Box::new(|i| {
                format!(
                    "status={}&priority={}",
                    Status::VALUES[i % 4].0,
                    Priority::VALUES[(i / 4) % 4].0
                )
            }),
        ),
        (
            "conversations, status, updated_at asc",
            "v",
            Box::new(|i| {
                format!(
                    "status={}&sort=updated_at&order=asc",
                    Status::VALUES[i % 4].0
                )
            }),
        ),
        (
            "conversations, q selective (1 match)",
            "v",
            Box::new(move |i| format!("q=%23{}%3A", conversation(i * 7919))),
        ),
        (
            "conversations, q unselective",
            "v",
            Box::new(|_| "q=refund".into()),
        ),
        (
            "kb, status",
            "k",
            Box::new(|i| format!("status={}", ["draft", "published", "archived"][i % 3])),
        ),
        (
            "kb, category",
            "k",
            Box::new(|i| format!("category={}", CATEGORIES[i % CATEGORIES.len()])),
        ),
    ]
}

/// One list page as its handler answers it: the project resolved, the page, its JSON. Returns
/// how many items it held.
fn page(rx: &impl Reader, scope: &ProjectScope, list: &str, query: &str) -> ApiResult<usize> {
    let scope = ProjectScope::resolve(rx, &scope.org_id, &scope.project_id)?;
    let params = QueryParams::from_pairs(query.split('&').filter_map(|pair| {
        let (name, value) = pair.split_once('=')?;
        Some((name.to_string(), decode(value)))
    }));
    match list {
        "c" => rendered::<Contact>(rx, &scope, &params),
        "v" => rendered::<Conversation>(rx, &scope, &params),
        _ => rendered::<Article>(rx, &scope, &params),
    }
}

fn rendered<K: Routed>(
    rx: &impl Reader,
    scope: &ProjectScope,
    params: &QueryParams,
) -> ApiResult<usize> {
    let page = routed::list_page::<K>(rx, scope, params, routed::page_budget(rx))?.page;
    to_json(&page.render(K::view))?;
    Ok(page.items.len())
}

fn to_json(value: &impl serde::Serialize) -> ApiResult<usize> {
    Ok(serde_json::to_vec(value).map_err(ApiError::internal)?.len())
}

/// `%XX` escapes, as the query strings above use them.
fn decode(value: &str) -> String {
    let bytes = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && let Some(byte) = value
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        {
            out.push(byte);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

struct Timing {
    n: usize,
    p50: Duration,
    p99: Duration,
    items: f64,
}

/// Runs `op` for `n` warm-up and then `n` timed iterations.
fn measure(n: usize, op: impl Fn(usize) -> ApiResult<usize>) -> ApiResult<Timing> {
    for i in 0..n.min(200) {
        op(i)?;
    }
    let mut times = Vec::with_capacity(n);
    let mut items = 0;
    for i in 0..n {
        let started = Instant::now();
        items += op(i)?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok(Timing {
        n,
        p50: times[n / 2],
        p99: times[(n * 99 / 100).min(n - 1)],
        items: items as f64 / n as f64,
    })
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// Ids are made from their number, so a workload can name a record without a look-up.
fn contact_record_id(i: usize) -> String {
    format!("ct_{i:012}")
}

fn contact_id(conversation: usize) -> String {
    contact_record_id(conversation)
}

fn conversation_id(i: usize) -> String {
    format!("con_{i:012}")
}

/// The project, and an admin key of its organisation for the HTTP rows.
fn load(store: &Store, sizes: &Sizes) -> ApiResult<(ProjectScope, String)> {
    let actor = Actor::master(None);
    let (scope, key) = store.write_blocking(move |tx| {
        let org = org::create(
            tx,
            &actor,
            OrgCreate {
                name: "bench".into(),
            },
        )?;
        let input = ProjectCreate {
            name: "Support".into(),
            slug: Slug::try_from("support".to_string()).map_err(ApiError::internal)?,
            domain: None,
        };
        let created = project::create(tx, &actor, &org.id, input)?;
        let key = KeyCreate::from_json(
            serde_json::json!({"name": "bench", "scopes": ["admin"]}),
            tx.now,
            Tier::Enterprise,
        )?;
        let (_, secret) = api_key::create(tx, &actor, &org.id, key)?;
        Ok((ProjectScope::resolve(tx, &org.id, &created.id)?, secret))
    })?;
    let project_id = scope.project_id.clone();
    batched(store, &scope, sizes.contacts, move |tx, i| {
        Ok(vec![Box::new(Contact {
            id: contact_record_id(i),
            project_id: project_id.clone(),
            email: Email::try_from(format!("user-{i}@example.com")).ok(),
            name: Some(format!("Customer {i}")),
            phone: None,
            external_id: Some(format!("user-{i}")),
            company: Some("Example Inc".into()),
            job_title: None,
            metadata: "{}".into(),
            last_seen_at: None,
            created_at: tx.now,
            seq: tx.next_seq(),
        }) as Box<dyn Stored>])
    })?;
    let (project_id, per) = (scope.project_id.clone(), sizes.messages_per_conversation);
    let contacts = sizes.contacts;
    batched(store, &scope, sizes.conversations, move |tx, i| {
        let seq = tx.next_seq();
        let id = conversation_id(i);
        let mut records: Vec<Box<dyn Stored>> = vec![Box::new(Conversation {
            id: id.clone(),
            project_id: project_id.clone(),
            contact_id: Some(contact_id(i % contacts)),
            subject: Some(format!("Order #{i}: refund request")),
            status: Status::VALUES[i % 4].1,
            priority: Priority::VALUES[(i / 4) % 4].1,
            channel: Channel::VALUES[i % 7].1,
            assigned_to: (i % 10 != 0).then(|| format!("agent-{}", i % AGENTS)),
            tags: Vec::new(),
            ai_resolved: false,
            created_at: tx.now,
            updated_at: tx.now,
            seq,
            updated_seq: seq,
        })];
        for m in 0..per {
            records.push(Box::new(Message {
                id: format!("msg_{i:08}{m:04}"),
                conversation_id: id.clone(),
                sender_type: SenderType::Agent,
                sender_id: None,
                content: "Thanks, we are looking into it.".into(),
                content_type: ContentType::Text,
                is_internal: false,
                created_at: tx.now,
                seq: tx.next_seq(),
            }));
        }
        Ok(records)
    })?;
    let project_id = scope.project_id.clone();
    batched(store, &scope, sizes.articles, move |tx, i| {
        let seq = tx.next_seq();
        Ok(vec![Box::new(Article {
            id: format!("kba_{i:012}"),
            project_id: project_id.clone(),
            title: format!("How to fix problem {i}"),
            slug: Slug::try_from(format!("how-to-fix-problem-{i}")).map_err(ApiError::internal)?,
            content: "Open the settings, choose the account tab and follow the steps.".into(),
            category: Some(CATEGORIES[i % CATEGORIES.len()].into()),
            status: [
                ArticleStatus::Draft,
                ArticleStatus::Published,
                ArticleStatus::Archived,
            ][i % 3],
            is_public: true,
            view_count: 0,
            helpful_count: 0,
            not_helpful_count: 0,
            ai_generated: false,
            created_at: tx.now,
            updated_at: tx.now,
            seq,
            updated_seq: seq,
        }) as Box<dyn Stored>])
    })?;
    Ok((scope, key))
}

/// A record of any kind, written with its index entries (as `project_owned::insert` writes
/// them, without the audit entry per record that a bulk load would not keep).
trait Stored {
    fn store(&self, tx: &mut Tx<'_>, scope: &ProjectScope) -> ApiResult<()>;
}

impl<K: Kind> Stored for K {
    fn store(&self, tx: &mut Tx<'_>, scope: &ProjectScope) -> ApiResult<()> {
        tx.put(
            tables::OWNED,
            &scope.key(K::TAG, self.id().as_bytes()),
            self,
        )?;
        for entry in self.index()? {
            match entry {
                IndexEntry::Key { tag, key, value } => {
                    tx.put_raw(tables::OWNED, &scope.key(tag, &key), &value)?
                }
                IndexEntry::Counter { .. } => {
                    // Search statistics: no list reads them.
                }
            }
        }
        Ok(())
    }
}

/// Writes `count` items made by `make` (each one or more records) in large transactions.
fn batched(
    store: &Store,
    scope: &ProjectScope,
    count: usize,
    make: impl Fn(&mut Tx<'_>, usize) -> ApiResult<Vec<Box<dyn Stored>>> + Clone + Send + 'static,
) -> ApiResult<()> {
    let mut written = 0;
    while written < count {
        let batch = LOAD_BATCH.min(count - written);
        let (scope, make) = (scope.clone(), make.clone());
        store.write_blocking(move |tx| {
            for i in written..written + batch {
                for record in make(tx, i)? {
                    record.store(tx, &scope)?;
                }
            }
            Ok(())
        })?;
        written += batch;
    }
    Ok(())
}

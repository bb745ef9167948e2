//! Webhook delivery (docs/api/webhooks.md test and deliveries) to a real receiver on a loopback
//! port that verifies signatures as docs/api/webhooks.md tells receivers to. Retry delays and
//! timeouts are shortened through `[webhooks]` settings, never by a test-only code path.

use std::ops::ControlFlow;
use std::time::{Duration, Instant};

use rogeriq::config::WebhookSettings;
use rogeriq::error::ApiError;
use rogeriq::org_owned::audit::Actor;
use rogeriq::project_owned::conversation::{Conversation, ConversationCreate};
use rogeriq::project_owned::webhooks::delivery_log::{IN_WEBHOOK, WebhookDelivery};
use rogeriq::project_owned::{Id, Kind, ProjectScope, Routed};
use rogeriq::store::{Reader, layout, tables};
use serde_json::{Value, json};

use crate::fixtures::*;
use crate::helpers::*;
use crate::receiver::{Answer, Received, Receiver, verify};

/// Long enough for any delivery on a busy test machine; tests wait for what they expect.
pub const PATIENCE: Duration = Duration::from_secs(20);

/// A server that may send to loopback receivers over plain http, with quick retries.
pub fn spawn(configure: impl FnOnce(&mut WebhookSettings)) -> TestApp {
    TestApp::spawn_with(|settings| {
        quick(&mut settings.webhooks);
        configure(&mut settings.webhooks);
    })
}

pub fn quick(webhooks: &mut WebhookSettings) {
    webhooks.allow_http = true;
    webhooks.allow_private_targets = true;
    webhooks.retry_delays = vec![0.1, 0.1, 0.1];
    webhooks.timeout_secs = 1;
}

pub fn webhooks(project: &str) -> String {
    pp(project, "/webhooks")
}

fn webhook(project: &str, id: &str) -> String {
    pp(project, &format!("/webhooks/{id}"))
}

/// Creates a webhook; returns its id and secret.
pub fn hook(app: &TestApp, project: &str, url: &str, events: Value) -> (String, String) {
    let data = created(
        app,
        &app.admin_key,
        &webhooks(project),
        json!({"url": url, "events": events}),
    );
    (id_of(&data), data["secret"].as_str().unwrap().to_string())
}

/// A receiver and a webhook of `project` subscribed to `events` that sends to it.
pub fn hooked(app: &TestApp, project: &str, events: Value) -> (Receiver, String) {
    let receiver = Receiver::start("unset");
    let (id, secret) = hook(app, project, &receiver.url, events);
    receiver.set_secret(&secret);
    (receiver, id)
}

pub fn act(app: &TestApp, project: &str, id: &str, action: &str) -> Resp {
    app.request(
        Method::POST,
        &pp(project, &format!("/webhooks/{id}/{action}")),
        Some(&app.admin_key),
        None,
    )
}

/// The webhook's delivery records, newest first.
pub fn deliveries(app: &TestApp, project: &str, id: &str) -> Vec<Value> {
    let body = ok_get(
        app,
        &app.admin_key,
        &pp(project, &format!("/webhooks/{id}/deliveries")),
    );
    body["data"].as_array().unwrap().clone()
}

fn get_webhook(app: &TestApp, project: &str, id: &str) -> Value {
    ok_get(app, &app.admin_key, &webhook(project, id))["data"].clone()
}

/// Waits until `done` holds (at most `PATIENCE`).
#[track_caller]
pub fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !done() {
        assert!(Instant::now() < deadline, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The webhook's records once there are `n`.
#[track_caller]
fn records(app: &TestApp, project: &str, id: &str, n: usize) -> Vec<Value> {
    let mut found = Vec::new();
    eventually(&format!("{n} delivery records"), || {
        found = deliveries(app, project, id);
        found.len() >= n
    });
    found
}

/// Entries left in the outbox, beneath the API.
pub fn outbox_len(app: &TestApp) -> u64 {
    app.store
        .read_blocking(|rx| rx.len(tables::OUTBOX))
        .expect("outbox")
}

/// Every request of `received` for `event`.
fn of_event<'a>(received: &'a [Received], event: &str) -> Vec<&'a Received> {
    received.iter().filter(|r| r.event() == event).collect()
}

/// Checks one first attempt against docs/api/webhooks.md, and returns its envelope's `data`.
#[track_caller]
fn check_request(r: &Received, secret: &str) -> Value {
    assert!(r.verified, "signature of {}", r.event());
    let signature = r.header("x-rogeriq-signature").unwrap();
    let hex = signature.strip_prefix("sha256=").expect("sha256= prefix");
    assert!(
        hex.len() == 64
            && hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)),
        "{signature}"
    );
    assert!(
        verify(secret, &r.body, hex),
        "a bare hex value verifies too"
    );
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.header("user-agent"), Some("RogerIQ-Webhook/1.0"));
    assert_eq!(r.attempt(), "1");
    let sent_at: i64 = r.header("x-rogeriq-timestamp").unwrap().parse().unwrap();
    assert!((sent_at - rogeriq::timestamp::Timestamp::now().unix()).abs() < 60);
    let envelope = r.json();
    let fields: Vec<&str> = envelope
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(fields, ["id", "event", "timestamp", "data"], "{envelope}");
    let delivery = r.delivery();
    assert!(
        delivery.starts_with("whd_") && delivery.len() == 16,
        "{delivery}"
    );
    assert_eq!(envelope["id"], delivery.as_str());
    assert_eq!(envelope["event"], r.event().as_str());
    assert!((envelope["timestamp"].as_i64().unwrap() - sent_at).abs() < 60);
    assert!(envelope["data"].is_object(), "{envelope}");
    envelope["data"].clone()
}

#[test]
fn every_event_arrives_signed_with_the_contracts_headers_and_envelope() {
    let app = spawn(|_| {});
    let p = app.project("Main");
    let key = app.admin_key.clone();
    let (receiver, id) = hooked(&app, &p, json!(["*"]));

    let contact_id = id_of(&new_contact(&app, &p, json!({"email": "ann@example.com"})));
    ok_patch(
        &app,
        &key,
        &contact(&p, &contact_id),
        json!({"name": "Ann"}),
    );
    let conversation_id = id_of(&new_conversation(
        &app,
        &p,
        json!({"subject": "Help", "contact_id": contact_id}),
    ));
    let message_id = id_of(&new_message(&app, &p, &conversation_id, "Hello"));
    // The agent's reply is a message like any other.
    ok_patch(
        &app,
        &key,
        &pp(&p, "/agent/config"),
        json!({"agent_mode": "autopilot", "confidence_threshold": 0}),
    );
    let r = app.post(
        &pp(&p, "/agent/respond"),
        &key,
        json!({"conversation_id": conversation_id}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let reply_id = r.data()["message_id"].as_str().unwrap().to_string();
    ok_patch(
        &app,
        &key,
        &conv(&p, &conversation_id),
        json!({"subject": "Help!"}),
    );
    ok_patch(
        &app,
        &key,
        &conv(&p, &conversation_id),
        json!({"status": "resolved"}),
    );
    let form = id_of(&created(
        &app,
        &key,
        &pp(&p, "/forms"),
        json!({"name": "Contact"}),
    ));
    let r = app.post(
        &format!("/api/f/{form}"),
        &key,
        json!({"name": "Bo", "email": "bo@example.com", "message": "Hi"}),
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let r = act(&app, &p, &id, "test");
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(r.data()["delivered"], json!(true), "{}", r.body);
    assert_eq!(r.data()["status_code"], json!(200));
    assert!(r.data()["duration_ms"].is_u64());

    let received = receiver.wait_for(13, PATIENCE);
    let secret = get_secret(&app, &p, &id);
    let count = |event: &str| of_event(&received, event).len();
    assert_eq!(
        [
            count("contact.created"),
            count("contact.updated"),
            count("conversation.created"),
            count("message.created"),
            count("conversation.updated"),
            count("conversation.resolved"),
            count("form.submitted"),
            count("webhook.test"),
        ],
        // Posting a message moves the conversation's `updated_at` only: no conversation.updated.
        [2, 1, 2, 3, 2, 1, 1, 1],
        "{:?}",
        received.iter().map(Received::event).collect::<Vec<_>>()
    );
    let mut deliveries_seen: Vec<String> = received.iter().map(Received::delivery).collect();
    deliveries_seen.sort();
    deliveries_seen.dedup();
    assert_eq!(deliveries_seen.len(), 13, "one delivery id per event");
    for r in &received {
        check_request(r, &secret);
    }

    // `data` is the object as the API shows it after the change.
    let get = |path: &str| ok_get(&app, &key, path)["data"].clone();
    let contact_now = get(&contact(&p, &contact_id));
    let updated = check_request(of_event(&received, "contact.updated")[0], &secret);
    assert_eq!(updated, contact_now);
    let first_contact = of_event(&received, "contact.created")
        .into_iter()
        .map(|r| r.json()["data"].clone())
        .find(|d| d["id"] == contact_id.as_str())
        .unwrap();
    assert_eq!(first_contact["name"], Value::Null);
    assert_eq!(first_contact["email"], "ann@example.com");
    let conversation_now = get(&conv(&p, &conversation_id));
    let resolved = check_request(of_event(&received, "conversation.resolved")[0], &secret);
    assert_eq!(resolved, conversation_now);
    assert_eq!(resolved["status"], "resolved");
    let opened = of_event(&received, "conversation.created")
        .into_iter()
        .map(|r| r.json()["data"].clone())
        .find(|d| d["id"] == conversation_id.as_str())
        .unwrap();
    assert_eq!(
        (&opened["subject"], &opened["status"], &opened["contact_id"]),
        (&json!("Help"), &json!("open"), &json!(contact_id))
    );
    assert_eq!(field_names(&opened), field_names(&conversation_now));
    let listed = ok_get(&app, &key, &msgs(&p, &conversation_id));
    let message = of_event(&received, "message.created")
        .into_iter()
        .map(|r| r.json()["data"].clone())
        .find(|d| d["id"] == message_id.as_str())
        .unwrap();
    assert_eq!(message, listed["data"][0]);
    let reply = of_event(&received, "message.created")
        .into_iter()
        .map(|r| r.json()["data"].clone())
        .find(|d| d["id"] == reply_id.as_str())
        .expect("the agent's reply");
    assert_eq!(reply["sender_type"], "ai");

    let submitted = of_event(&received, "form.submitted")[0].json()["data"].clone();
    let submissions = ok_get(&app, &key, &pp(&p, &format!("/forms/{form}/submissions")));
    assert_eq!(
        field_names(&submitted),
        ["form_id", "submission", "conversation_id"]
    );
    assert_eq!(submitted["form_id"], form.as_str());
    assert_eq!(submitted["submission"], submissions["data"][0]);
    let opened_by_form = get(&conv(&p, submitted["conversation_id"].as_str().unwrap()));
    assert_eq!(opened_by_form["subject"], "Form: Contact");

    let test = of_event(&received, "webhook.test")[0].json()["data"].clone();
    assert_eq!(
        test,
        json!({"webhook_id": id, "project_id": p, "message": "This is a test event"})
    );

    // Every attempt is recorded, delivered; the webhook counts no failure.
    let rows = records(&app, &p, &id, 13);
    assert_eq!(rows.len(), 13);
    for row in &rows {
        assert_eq!(
            (&row["status"], &row["status_code"], &row["attempt"]),
            (&json!("delivered"), &json!(200), &json!(1)),
            "{row}"
        );
    }
    let view = get_webhook(&app, &p, &id);
    assert_eq!(view["failure_count"], 0);
    assert!(view["last_triggered_at"].is_string(), "{view}");
    eventually("an empty outbox", || outbox_len(&app) == 0);
}

/// The secret of webhook `id`, read beneath the API (the API shows it only once).
fn get_secret(app: &TestApp, project: &str, id: &str) -> String {
    let (org_id, project_id, id) = (
        org_id_of(&app.org_id),
        project_id_of(project),
        id.to_string(),
    );
    let webhook = app
        .store
        .read_blocking(move |rx| {
            let scope = ProjectScope::resolve(rx, &org_id, &project_id)?;
            rogeriq::project_owned::get::<rogeriq::project_owned::webhooks::webhook::Webhook>(
                rx,
                &scope,
                &Id::parse_found(&id)?,
            )
        })
        .unwrap();
    String::from_utf8(webhook.secret.signing_key().to_vec()).unwrap()
}

#[test]
fn each_webhook_gets_what_it_subscribes_to_in_its_own_project() {
    let app = spawn(|_| {});
    let p = app.project("Main");
    let other = app.project("Other");
    let (conversations, _) = hooked(&app, &p, json!(["conversation.*"]));
    let (messages, _) = hooked(&app, &p, json!(["message.created"]));
    let (disabled, disabled_id) = hooked(&app, &p, json!(["*"]));
    ok_patch(
        &app,
        &app.admin_key,
        &webhook(&p, &disabled_id),
        json!({"status": "disabled"}),
    );
    let (elsewhere, _) = hooked(&app, &other, json!(["*"]));

    let c = id_of(&new_conversation(&app, &p, json!({})));
    new_message(&app, &p, &c, "Hi");
    // A marker after the others: once it arrived, so did everything sent before it.
    let (marker, _) = hooked(&app, &p, json!(["contact.created"]));
    new_contact(&app, &p, json!({"email": "x@example.com"}));
    marker.wait_for(1, PATIENCE);
    let got = |r: &Receiver| {
        r.wait_for(1, PATIENCE)
            .iter()
            .map(Received::event)
            .collect::<Vec<_>>()
    };
    assert_eq!(got(&conversations), ["conversation.created"]);
    assert_eq!(got(&messages), ["message.created"]);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(conversations.count(), 1);
    assert_eq!(messages.count(), 1);
    assert_eq!(disabled.count(), 0, "a disabled webhook gets nothing");
    assert_eq!(
        elsewhere.count(),
        0,
        "another project's webhook gets nothing"
    );
}

#[test]
fn a_failing_receiver_is_retried_until_attempt_3_succeeds() {
    let app = spawn(|_| {});
    let p = app.project("Main");
    let (receiver, id) = hooked(&app, &p, json!(["conversation.created"]));
    // A timeout (no status), a 429, then success.
    receiver.script(&[Answer::Hang(Duration::from_secs(3)), Answer::Status(429)]);
    new_conversation(&app, &p, json!({"subject": "retry me"}));

    let received = receiver.wait_for(3, PATIENCE);
    assert_eq!(received.len(), 3);
    let attempts: Vec<String> = received.iter().map(Received::attempt).collect();
    assert_eq!(attempts, ["1", "2", "3"]);
    let delivery = received[0].delivery();
    for r in &received {
        assert!(r.verified);
        assert_eq!(r.delivery(), delivery, "one delivery id on every attempt");
        assert_eq!(r.body, received[0].body, "the same bytes on every attempt");
    }
    let rows = records(&app, &p, &id, 3);
    let summary: Vec<(Value, Value, Value, Value)> = rows
        .iter()
        .map(|r| {
            (
                r["id"].clone(),
                r["attempt"].clone(),
                r["status"].clone(),
                r["status_code"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (json!(delivery), json!(3), json!("delivered"), json!(200)),
            (json!(delivery), json!(2), json!("failed"), json!(429)),
            (json!(delivery), json!(1), json!("failed"), Value::Null),
        ]
    );
    assert_eq!(rows[0]["event"], "conversation.created");
    let view = get_webhook(&app, &p, &id);
    assert_eq!(view["failure_count"], 0, "a success resets the count");
    assert_eq!(view["status"], "active");
    eventually("an empty outbox", || outbox_len(&app) == 0);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.count(), 3, "nothing after the success");
}

#[test]
fn a_permanent_failure_stops_at_once_and_redirects_are_not_followed() {
    let app = spawn(|_| {});
    let p = app.project("Main");
    let (gone, gone_id) = hooked(&app, &p, json!(["conversation.created"]));
    gone.always(Answer::Status(410));
    let (moved, moved_id) = hooked(&app, &p, json!(["conversation.created"]));
    moved.always(Answer::Redirect);
    new_conversation(&app, &p, json!({}));

    for (receiver, id, status) in [(&gone, &gone_id, 410), (&moved, &moved_id, 302)] {
        let rows = records(&app, &p, id, 1);
        assert_eq!(
            (
                &rows[0]["status"],
                &rows[0]["status_code"],
                &rows[0]["attempt"]
            ),
            (&json!("failed"), &json!(status), &json!(1))
        );
        assert_eq!(get_webhook(&app, &p, id)["failure_count"], 1);
        assert_eq!(receiver.wait_for(1, PATIENCE).len(), 1);
    }
    eventually("an empty outbox", || outbox_len(&app) == 0);
    // Retries would have come after 0.1 s.
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(gone.count(), 1);
    assert_eq!(moved.count(), 1);
    assert!(
        moved.received().iter().all(|r| r.path == "/hook"),
        "no redirect followed"
    );
    assert_eq!(deliveries(&app, &p, &gone_id).len(), 1);
}

#[test]
fn ten_failures_disable_the_webhook() {
    let app = spawn(|webhooks| webhooks.retry_delays = vec![0.02; 12]);
    let p = app.project("Main");
    let (receiver, id) = hooked(&app, &p, json!(["conversation.created"]));
    receiver.always(Answer::Status(500));
    new_conversation(&app, &p, json!({}));

    let rows = records(&app, &p, &id, 10);
    eventually("the webhook disabled", || {
        get_webhook(&app, &p, &id)["status"] == "disabled"
    });
    let view = get_webhook(&app, &p, &id);
    assert_eq!(view["failure_count"], 10);
    assert!(
        rows.iter()
            .all(|r| r["status"] == "failed" && r["status_code"] == 500)
    );
    let attempts: Vec<u64> = rows
        .iter()
        .map(|r| r["attempt"].as_u64().unwrap())
        .collect();
    assert_eq!(attempts, (1..=10).rev().collect::<Vec<u64>>());
    assert_eq!(outbox_len(&app), 0, "its pending deliveries went with it");
    // No further attempt, and a new event is not queued for it.
    new_conversation(&app, &p, json!({}));
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(receiver.count(), 10);
    assert_eq!(outbox_len(&app), 0);
    // Re-enabled by a client, it gets new events with a fresh count.
    receiver.always(Answer::Status(200));
    ok_patch(
        &app,
        &app.admin_key,
        &webhook(&p, &id),
        json!({"status": "active"}),
    );
    new_conversation(&app, &p, json!({}));
    receiver.wait_for(11, PATIENCE);
    eventually("a delivered record", || {
        deliveries(&app, &p, &id)[0]["status"] == "delivered"
    });
    assert_eq!(get_webhook(&app, &p, &id)["failure_count"], 0);
}

#[test]
fn a_retry_uses_the_rotated_secret_and_the_new_url() {
    let app = spawn(|webhooks| webhooks.retry_delays = vec![2.0]);
    let p = app.project("Main");
    let (first, id) = hooked(&app, &p, json!(["conversation.created"]));
    let old_secret = get_secret(&app, &p, &id);
    first.always(Answer::Status(503));
    new_conversation(&app, &p, json!({}));
    records(&app, &p, &id, 1);

    // Between the attempts: a new secret and a new URL.
    let second = Receiver::start("unset");
    let r = act(&app, &p, &id, "rotate-secret");
    assert_eq!(r.status, 200, "{}", r.body);
    let new_secret = r.data()["secret"].as_str().unwrap().to_string();
    second.set_secret(&new_secret);
    ok_patch(
        &app,
        &app.admin_key,
        &webhook(&p, &id),
        json!({"url": second.url}),
    );

    let retried = second.wait_for(1, PATIENCE);
    let before = &first.received()[0];
    let after = &retried[0];
    assert_eq!(after.attempt(), "2");
    assert_eq!(after.delivery(), before.delivery());
    assert_eq!(after.body, before.body);
    let signature = |r: &Received| r.header("x-rogeriq-signature").unwrap().to_string();
    assert!(verify(&old_secret, &before.body, &signature(before)));
    assert!(after.verified, "signed with the new secret");
    assert!(!verify(&old_secret, &after.body, &signature(after)));
    assert_eq!(first.count(), 1);
    let rows = records(&app, &p, &id, 2);
    assert_eq!(rows[0]["status"], "delivered");
}

#[test]
fn deleting_or_disabling_a_webhook_or_its_project_stops_its_retries() {
    let app = spawn(|webhooks| webhooks.retry_delays = vec![1.5]);
    let p = app.project("Main");
    let doomed = app.project("Doomed");
    let (deleted, deleted_id) = hooked(&app, &p, json!(["conversation.created"]));
    let (disabled, disabled_id) = hooked(&app, &p, json!(["conversation.created"]));
    let (orphaned, orphaned_id) = hooked(&app, &doomed, json!(["conversation.created"]));
    for receiver in [&deleted, &disabled, &orphaned] {
        receiver.always(Answer::Status(503));
    }
    new_conversation(&app, &p, json!({}));
    new_conversation(&app, &doomed, json!({}));
    records(&app, &p, &deleted_id, 1);
    records(&app, &p, &disabled_id, 1);
    records(&app, &doomed, &orphaned_id, 1);
    assert_eq!(outbox_len(&app), 3, "three retries pending");

    let r = app.delete(&webhook(&p, &deleted_id), &app.admin_key);
    assert_eq!(r.status, 200, "{}", r.body);
    ok_patch(
        &app,
        &app.admin_key,
        &webhook(&p, &disabled_id),
        json!({"status": "disabled"}),
    );
    let r = app.delete(
        &format!("/api/v1/orgs/{}/projects/{doomed}", app.org_id),
        &app.admin_key,
    );
    assert_eq!(r.status, 200, "{}", r.body);
    assert_eq!(outbox_len(&app), 0, "dropped in the same transactions");
    let due = app
        .store
        .read_blocking(|rx| rx.len(tables::OUTBOX_DUE))
        .unwrap();
    assert_eq!(due, 0);

    // The retries would have come 1.5 s after the first attempts.
    std::thread::sleep(Duration::from_millis(1800));
    assert_eq!(
        [deleted.count(), disabled.count(), orphaned.count()],
        [1, 1, 1]
    );
    assert_eq!(deliveries(&app, &p, &disabled_id).len(), 1);
}

#[test]
fn a_pending_retry_survives_a_restart() {
    let retry = |webhooks: &mut WebhookSettings| {
        quick(webhooks);
        webhooks.retry_delays = vec![3.0];
    };
    let app = TestApp::spawn_with(|settings| retry(&mut settings.webhooks));
    let (key, p) = (app.admin_key.clone(), app.project("Main"));
    let (receiver, id) = hooked(&app, &p, json!(["conversation.created"]));
    receiver.script(&[Answer::Status(503)]);
    new_conversation(&app, &p, json!({}));
    records(&app, &p, &id, 1);
    assert_eq!(outbox_len(&app), 1);
    let dir = app.stop();

    let restarted = Instant::now();
    let app = TestApp::spawn_in_with(dir, |settings| retry(&mut settings.webhooks));
    let received = receiver.wait_for(2, PATIENCE);
    assert!(received[1].at > restarted, "sent by the restarted server");
    assert_eq!(received[1].attempt(), "2");
    assert_eq!(received[1].delivery(), received[0].delivery());
    assert_eq!(received[1].body, received[0].body);
    assert!(received[1].verified);
    let mut rows = Vec::new();
    eventually("two records", || {
        let body = ok_get(&app, &key, &pp(&p, &format!("/webhooks/{id}/deliveries")));
        rows = body["data"].as_array().unwrap().clone();
        rows.len() == 2
    });
    assert_eq!(
        (&rows[0]["attempt"], &rows[0]["status"]),
        (&json!(2), &json!("delivered"))
    );
    eventually("an empty outbox", || outbox_len(&app) == 0);
}

#[test]
fn a_change_whose_transaction_fails_emits_nothing() {
    let app = spawn(|_| {});
    let p = app.project("Main");
    let (receiver, _) = hooked(&app, &p, json!(["*"]));
    let (org_id, project_id) = (org_id_of(&app.org_id), project_id_of(&p));
    let failed = app.store.write_blocking(move |tx| {
        let scope = ProjectScope::resolve(tx, &org_id, &project_id)?;
        let input = ConversationCreate::from_json(json!({"subject": "rolled back"}))?;
        Conversation::create(tx, &scope, &Actor::master(None), input)?;
        assert_eq!(tx.len(tables::OUTBOX)?, 1, "queued inside the transaction");
        Err::<(), _>(ApiError::internal(
            "the change fails after its event was queued",
        ))
    });
    assert!(failed.is_err());
    assert_eq!(outbox_len(&app), 0);
    // A request that fails validation fires nothing either.
    let r = app.post(&convs(&p), &app.admin_key, json!({"priority": "whenever"}));
    assert_eq!(r.status, 400);

    let committed = id_of(&new_conversation(&app, &p, json!({"subject": "kept"})));
    let received = receiver.wait_for(1, PATIENCE);
    std::thread::sleep(Duration::from_millis(200));
    let received_now = receiver.received();
    assert_eq!(received_now.len(), 1, "{received:?}");
    assert_eq!(received_now[0].json()["data"]["id"], committed.as_str());
}

#[test]
fn a_full_outbox_drops_new_events_and_the_api_goes_on() {
    if skipped_on_postgres(
        "the outbox's bound is checked against a count up to 500 ms old there, so it may be \
         overshot (docs/scaling.md)",
    ) {
        return;
    }
    let app = spawn(|webhooks| {
        webhooks.max_pending = 2;
        webhooks.timeout_secs = 2;
    });
    let p = app.project("Main");
    let (receiver, _) = hooked(&app, &p, json!(["conversation.created"]));
    receiver.always(Answer::Hang(Duration::from_secs(5)));
    let mut created_ids = Vec::new();
    for i in 0..5 {
        let started = Instant::now();
        created_ids.push(id_of(&new_conversation(
            &app,
            &p,
            json!({"subject": format!("n{i}")}),
        )));
        assert!(
            started.elapsed() < Duration::from_millis(1500),
            "a hanging receiver does not slow the API"
        );
    }
    assert_eq!(outbox_len(&app), 2, "the first two events, and no more");
    let received = receiver.wait_for(2, PATIENCE);
    std::thread::sleep(Duration::from_millis(300));
    let mut subjects: Vec<Value> = receiver
        .received()
        .iter()
        .map(|r| r.json()["data"]["subject"].clone())
        .collect();
    subjects.sort_by_key(Value::to_string);
    subjects.dedup();
    assert_eq!(subjects, [json!("n0"), json!("n1")], "{received:?}");
    let listed = ok_get(&app, &app.admin_key, &convs(&p));
    assert_eq!(
        listed["data"].as_array().unwrap().len(),
        5,
        "every change committed"
    );
}

#[test]
fn the_history_keeps_the_50_most_recent_attempts_of_each_webhook() {
    let app = spawn(|_| {});
    let p = app.project("Main");
    let (receiver, id) = hooked(&app, &p, json!(["conversation.created"]));
    for i in 0..53 {
        new_conversation(&app, &p, json!({"subject": format!("n{i}")}));
    }
    receiver.wait_for(53, PATIENCE);
    eventually("an empty outbox", || outbox_len(&app) == 0);
    let rows = deliveries(&app, &p, &id);
    assert_eq!(rows.len(), 50);
    // Beneath the API too: the three oldest records are gone, with their index entries.
    let (org_id, project_id, webhook_id) = (org_id_of(&app.org_id), project_id_of(&p), id.clone());
    let stored = app
        .store
        .read_blocking(move |rx| {
            let scope = ProjectScope::resolve(rx, &org_id, &project_id)?;
            let mut records = 0;
            let mut ordered = 0;
            rx.scan(
                tables::OWNED,
                layout::prefix_range(&scope.key(WebhookDelivery::TAG, b"")),
                false,
                &mut |_, _| {
                    records += 1;
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            rx.scan(
                tables::OWNED,
                layout::prefix_range(&scope.key(IN_WEBHOOK, webhook_id.as_bytes())),
                false,
                &mut |_, _| {
                    ordered += 1;
                    Ok(ControlFlow::Continue(()))
                },
            )?;
            Ok((records, ordered))
        })
        .unwrap();
    assert_eq!(stored, (50, 50));
}

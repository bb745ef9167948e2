//! Webhook delivery (docs/api/webhooks.md): the dispatcher, which sends the outbox's deliveries as
//! they fall due, and the test action's single attempt.
//!
//! The dispatcher runs on a thread of its own with a single-threaded async runtime, started by
//! the app builder and stopped before the store closes, so a slow or dead receiver never holds
//! an HTTP worker. It sleeps until the earliest entry falls due, a commit writes the outbox, or
//! an attempt finishes. It runs at most `max_in_flight` attempts at once, each limited to
//! `timeout_secs`. Before each attempt it reloads the webhook: the attempt goes to its current
//! URL, signed with its current secret, and a webhook that was disabled or deleted meanwhile
//! stops the delivery. The outcomes of the attempts that ended meanwhile are written back
//! together, in one write transaction, while further attempts go on: one delivery record per
//! attempt, the webhook's `failure_count` and `last_triggered_at` (and auto-disable), and each
//! outbox entry, removed or moved to its next attempt. A retry is therefore stored, never held
//! in memory.
//!
//! At shutdown, attempts still in flight are abandoned unrecorded. Their entries stay due, and
//! the next start sends them again with the same delivery id and attempt number; receivers
//! de-duplicate by delivery id (docs/api/webhooks.md).

use std::collections::HashSet;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::json;
use tokio::sync::{mpsc, oneshot};

use crate::config::WebhookSettings;
use crate::error::{ApiError, ApiResult, ErrorCode, with_sources};
use crate::metrics::Metrics;
use crate::project_owned::Id;
use crate::project_owned::webhooks::delivery_log::{self, Attempt, WebhookDelivery};
use crate::project_owned::webhooks::outbound::{self, TargetPolicy};
use crate::project_owned::webhooks::outbox::{self, Event, PendingDelivery};
use crate::project_owned::webhooks::signing::signature;
use crate::project_owned::webhooks::webhook::{Secret, Webhook, WebhookStatus};
use crate::project_owned::{self, ProjectScope};
use crate::store::{Reader, Rx, Store, Tx, layout, tables};
use crate::timestamp::Timestamp;

/// A webhook is disabled when its `failure_count` reaches this (docs/api/webhooks.md).
const AUTO_DISABLE_AT: u32 = 10;
/// Sent only by the test action, to its one webhook.
const TEST_EVENT: &str = "webhook.test";
/// Most bytes of a receiver's response body read (and discarded) before the connection is
/// given back to the pool.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;
/// The wait before reading the outbox again after the store failed.
const STORE_RETRY: Duration = Duration::from_secs(1);
/// Most writes of one batch of outcomes, `STORE_RETRY` apart.
const WRITE_BACK_TRIES: u32 = 5;
/// Where several processes share the store, how long a claimed entry stays this process's
/// beyond the attempt's own time limit (twice it, for the attempt and its write-back): then
/// another process takes it, as it takes the entries of a process that died.
const CLAIM_MARGIN: Duration = Duration::from_secs(10);

/// One attempt to send: where, signed with what, which bytes.
#[derive(Debug, Clone)]
pub struct Outgoing {
    webhook_id: String,
    url: String,
    secret: Secret,
    delivery_id: String,
    event: String,
    attempt: u32,
    /// The envelope, sent and signed as these exact bytes.
    body: String,
}

/// What a receiver's answer means for the delivery (docs/api/webhooks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    /// A 2xx.
    Delivered,
    /// 5xx, 408, 425, 429, a timeout or a network error: retried.
    Transient,
    /// Any other status (3xx included: redirects are not followed), or a refused target.
    Permanent,
}

impl Verdict {
    fn of_status(status: u16) -> Verdict {
        match status {
            200..=299 => Verdict::Delivered,
            408 | 425 | 429 | 500..=599 => Verdict::Transient,
            _ => Verdict::Permanent,
        }
    }

    /// The outcome label of the attempt metrics.
    fn metric_label(self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Transient => "retryable_failure",
            Verdict::Permanent => "permanent_failure",
        }
    }

    fn as_str(self) -> &'static str {
        match self {
            Verdict::Delivered => "delivered",
            Verdict::Transient => "failed, will retry if attempts remain",
            Verdict::Permanent => "failed permanently",
        }
    }
}

/// What one attempt came to.
#[derive(Debug, Clone)]
pub struct Sent {
    /// `None` when no response came (connection error, timeout, refused target).
    status_code: Option<u16>,
    duration_ms: u64,
    verdict: Verdict,
    /// Why it was not delivered.
    failure: Option<Failure>,
}

/// Why an attempt was not delivered, for the test action's result (docs/api/webhooks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FailureReason {
    /// The address is private and private targets are refused (`outbound::TargetPolicy`).
    PrivateTarget,
    /// The host name did not resolve.
    Dns,
    /// No answer: the connection was refused, reset or closed.
    Connect,
    /// No answer within `webhooks.timeout_secs`.
    Timeout,
    /// The TLS handshake failed (a certificate not trusted, a receiver not speaking TLS).
    Tls,
    /// The receiver answered with a status other than 2xx.
    Status,
}

/// Why, and in a few words for a person.
#[derive(Debug, Clone)]
struct Failure {
    reason: FailureReason,
    message: String,
}

impl Failure {
    fn new(reason: FailureReason, message: impl Into<String>) -> Failure {
        Failure {
            reason,
            message: message.into(),
        }
    }
}

impl Sent {
    /// Counts this attempt in the server's metrics, by outcome.
    pub fn count_in(&self, metrics: &Metrics) {
        metrics.webhook_attempt(self.verdict.metric_label());
    }
}

/// Sends one attempt: the headers of docs/api/webhooks.md, the body as stored, signed with the
/// secret it carries; at most `timeout`; no redirect followed; only to a target that `policy`
/// allows. Logs the outcome, never the secret.
pub async fn send(
    client: &reqwest::Client,
    outgoing: &Outgoing,
    timeout: Duration,
    policy: &TargetPolicy,
) -> Sent {
    let started = Instant::now();
    let result = match policy.check_literal(&outgoing.url) {
        Err(refused) => Err(Attempted {
            failure: Failure::new(FailureReason::PrivateTarget, refused.to_string()),
            detail: refused.to_string(),
        }),
        Ok(()) => post(client, outgoing, timeout).await,
    };
    let duration_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    let (status_code, verdict, failure, detail) = match result {
        Ok(status) => {
            let verdict = Verdict::of_status(status);
            let failure = (verdict != Verdict::Delivered).then(|| {
                let unfollowed = if (300..400).contains(&status) {
                    " (redirects are not followed)"
                } else {
                    ""
                };
                Failure::new(
                    FailureReason::Status,
                    format!("the receiver answered {status}{unfollowed}"),
                )
            });
            (Some(status), verdict, failure, None)
        }
        Err(Attempted { failure, detail }) => {
            let verdict = match failure.reason {
                FailureReason::PrivateTarget => Verdict::Permanent,
                _ => Verdict::Transient,
            };
            (None, verdict, Some(failure), Some(detail))
        }
    };
    let (delivery_id, attempt) = (outgoing.delivery_id.as_str(), outgoing.attempt);
    let (webhook_id, event) = (outgoing.webhook_id.as_str(), outgoing.event.as_str());
    let outcome = verdict.as_str();
    match (verdict, detail) {
        (Verdict::Delivered, _) => tracing::info!(
            delivery_id,
            attempt,
            webhook_id,
            event,
            status_code,
            duration_ms,
            outcome,
            "webhook attempt"
        ),
        (_, None) => tracing::warn!(
            delivery_id,
            attempt,
            webhook_id,
            event,
            status_code,
            duration_ms,
            outcome,
            "webhook attempt"
        ),
        (_, Some(error)) => tracing::warn!(
            delivery_id,
            attempt,
            webhook_id,
            event,
            duration_ms,
            outcome,
            error,
            "webhook attempt"
        ),
    }
    Sent {
        status_code,
        duration_ms,
        verdict,
        failure,
    }
}

/// Why no response came: the failure as the test action reports it, and the whole chain of
/// causes for the log.
struct Attempted {
    failure: Failure,
    detail: String,
}

/// The status of the receiver's answer, or why none came. Texts leave out the URL, which may
/// hold a token.
async fn post(
    client: &reqwest::Client,
    outgoing: &Outgoing,
    timeout: Duration,
) -> Result<u16, Attempted> {
    let body = outgoing.body.as_bytes();
    let request = client
        .post(&outgoing.url)
        .timeout(timeout)
        .header("Content-Type", "application/json")
        .header("User-Agent", "RogerIQ-Webhook/1.0")
        .header("X-RogerIQ-Event", &outgoing.event)
        .header("X-RogerIQ-Delivery", &outgoing.delivery_id)
        .header(
            "X-RogerIQ-Signature",
            signature(outgoing.secret.signing_key(), body),
        )
        .header("X-RogerIQ-Timestamp", Timestamp::now().unix().to_string())
        .header("X-RogerIQ-Attempt", outgoing.attempt.to_string())
        .body(outgoing.body.clone());
    let mut response = request.send().await.map_err(|err| {
        let err = err.without_url();
        let failure = if err.is_timeout() {
            let message = format!("no answer within {} s", timeout.as_secs_f64());
            Failure::new(FailureReason::Timeout, message)
        } else {
            failure_of(&err)
        };
        Attempted {
            failure,
            detail: with_sources(&err),
        }
    })?;
    let status = response.status().as_u16();
    // Read what the receiver sends, up to a bound, so its connection can be reused; its
    // content and any error reading it do not change the outcome.
    let mut read = 0;
    while let Ok(Some(chunk)) = response.chunk().await {
        read += chunk.len();
        if read > MAX_RESPONSE_BYTES {
            break;
        }
    }
    Ok(status)
}

/// What a request error that is not a timeout comes to, found among its causes.
fn failure_of(err: &(dyn std::error::Error + 'static)) -> Failure {
    if let Some(refused) = outbound::find::<outbound::PrivateTarget>(err) {
        return Failure::new(FailureReason::PrivateTarget, refused.to_string());
    }
    if let Some(dns) = outbound::find::<outbound::DnsFailure>(err) {
        return Failure::new(FailureReason::Dns, dns.to_string());
    }
    if let Some(tls) = outbound::find::<rustls::Error>(err) {
        return Failure::new(FailureReason::Tls, format!("TLS handshake failed: {tls}"));
    }
    let innermost = outbound::causes(err).last().unwrap_or(err);
    Failure::new(
        FailureReason::Connect,
        format!("connection failed: {innermost}"),
    )
}

/// The test action (docs/api/webhooks.md): one `webhook.test` attempt, whatever the webhook
/// subscribes to and whether or not it is active.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct TestResult {
    pub delivered: bool,
    pub status_code: Option<u16>,
    pub duration_ms: u64,
    /// Why it was not delivered; `null` when it was.
    pub error: Option<FailureReason>,
    /// The same in a few words for a person; `null` when it was delivered.
    pub message: Option<String>,
}

/// What the test action sends to webhook `id` (404 if it has none).
pub fn test_delivery(
    reader: &impl Reader,
    scope: &ProjectScope,
    id: &Id<Webhook>,
) -> ApiResult<Outgoing> {
    let webhook: Webhook = project_owned::get(reader, scope, id)?;
    let delivery_id = outbox::new_delivery_id();
    let event = Event {
        name: TEST_EVENT,
        data: json!({
            "webhook_id": webhook.id,
            "project_id": scope.project_id,
            "message": "This is a test event",
        }),
    };
    Ok(Outgoing {
        body: outbox::envelope(&delivery_id, &event, Timestamp::now().unix())?,
        url: webhook.url.as_str().to_string(),
        webhook_id: webhook.id,
        secret: webhook.secret,
        delivery_id,
        event: TEST_EVENT.to_string(),
        attempt: 1,
    })
}

/// Records the test attempt and sets `last_triggered_at`; `failure_count` stays as it is. A
/// webhook deleted while it was being tested gets no record.
pub fn record_test(
    tx: &mut Tx<'_>,
    scope: &ProjectScope,
    outgoing: &Outgoing,
    sent: &Sent,
) -> ApiResult<TestResult> {
    if let Some(before) = project_owned::find_text::<Webhook>(tx, scope, &outgoing.webhook_id)? {
        let record = attempt_record(tx, outgoing, sent);
        delivery_log::record(tx, scope, &record)?;
        let mut after = before.clone();
        after.last_triggered_at = Some(tx.now);
        project_owned::write_unaudited(tx, scope, Some(&before), Some(&after))?;
    }
    Ok(TestResult {
        delivered: sent.verdict == Verdict::Delivered,
        status_code: sent.status_code,
        duration_ms: sent.duration_ms,
        error: sent.failure.as_ref().map(|f| f.reason),
        message: sent.failure.as_ref().map(|f| f.message.clone()),
    })
}

fn attempt_record(tx: &mut Tx<'_>, outgoing: &Outgoing, sent: &Sent) -> WebhookDelivery {
    WebhookDelivery::new(
        tx,
        &outgoing.webhook_id,
        Attempt {
            delivery_id: outgoing.delivery_id.clone(),
            event: outgoing.event.clone(),
            attempt: outgoing.attempt,
            status_code: sent.status_code,
            duration_ms: sent.duration_ms,
            delivered: sent.verdict == Verdict::Delivered,
        },
    )
}

/// The dispatcher's settings, read once from `[webhooks]`.
struct Config {
    client: reqwest::Client,
    timeout: Duration,
    retry_delays: Vec<Duration>,
    max_in_flight: usize,
    policy: TargetPolicy,
    metrics: Arc<Metrics>,
}

impl Config {
    fn new(client: reqwest::Client, settings: &WebhookSettings, metrics: Arc<Metrics>) -> Config {
        Config {
            client,
            metrics,
            timeout: Duration::from_secs(settings.timeout_secs),
            // Settings::load refuses delays that are not a number of seconds; a negative or
            // non-finite one from elsewhere means no wait.
            retry_delays: settings
                .retry_delays
                .iter()
                .map(|s| Duration::try_from_secs_f64(*s).unwrap_or_default())
                .collect(),
            max_in_flight: usize::try_from(settings.max_in_flight)
                .unwrap_or(usize::MAX)
                .max(1),
            policy: TargetPolicy::of(settings),
        }
    }
}

/// The running dispatcher. `stop` (or dropping it) ends it and waits for its thread.
pub struct Dispatcher {
    stop: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Dispatcher {
    /// Starts delivering from `store`'s outbox with `client`, counting attempts in `metrics`.
    pub fn start(
        store: Store,
        client: reqwest::Client,
        settings: &WebhookSettings,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Dispatcher> {
        let config = Arc::new(Config::new(client, settings, metrics));
        let (stop, stopped) = oneshot::channel();
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        let thread = std::thread::Builder::new()
            .name("rogeriq-webhooks".into())
            .spawn(move || {
                runtime.block_on(run(store, config, stopped));
                // Attempts still in flight are dropped here, unrecorded (see the module's notes);
                // a name lookup still running may hold the runtime a moment longer.
                runtime.shutdown_timeout(Duration::from_secs(1));
            })?;
        Ok(Dispatcher {
            stop: Some(stop),
            thread: Some(thread),
        })
    }

    pub fn stop(mut self) {
        self.halt();
    }

    fn halt(&mut self) {
        if let Some(stop) = self.stop.take() {
            // The thread may have ended already; then there is nothing to stop.
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the webhook dispatcher panicked");
        }
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.halt();
    }
}

/// What is written back for one outbox entry.
#[derive(Clone)]
enum Settle {
    /// An attempt finished.
    Attempted {
        key: Vec<u8>,
        outgoing: Outgoing,
        sent: Sent,
    },
    /// The entry's webhook is disabled or gone: the delivery stops, unattempted.
    Stopped { key: Vec<u8> },
}

impl Settle {
    fn key(&self) -> &[u8] {
        match self {
            Settle::Attempted { key, .. } | Settle::Stopped { key } => key,
        }
    }
}

/// What the dispatcher's tasks report back to its loop.
enum Progress {
    /// An attempt ended, or an entry is to be stopped: to be written back.
    Settled(Settle),
    /// A write-back committed (or failed, and its entries stay due): its entries are released.
    Written { keys: Vec<Vec<u8>> },
}

/// The dispatcher's loop. Attempts run as tasks; their outcomes are written back in batches, one
/// write transaction at a time, while further attempts go on: `max_in_flight` counts attempts,
/// not outcomes waiting for their commit.
async fn run(store: Store, config: Arc<Config>, mut stop: oneshot::Receiver<()>) {
    let commits = store.commits_to(tables::OUTBOX_DUE);
    // Where other processes deliver from the same outbox, entries are claimed in the store.
    let claim_for = store.is_shared().then(|| {
        config
            .timeout
            .saturating_mul(2)
            .saturating_add(CLAIM_MARGIN)
    });
    let (report, mut reports) = mpsc::unbounded_channel::<Progress>();
    let mut work = Work::default();
    loop {
        if !store.health().writable() {
            // Nothing is sent while outcomes cannot be stored: an attempt now would be sent
            // again after the store heals. The store logs its own state.
            tokio::select! {
                _ = &mut stop => break,
                () = store.writable() => {}
            }
        }
        if !work.writing && !work.ready.is_empty() {
            work.writing = true;
            let batch = std::mem::take(&mut work.ready);
            let (store, config, report) = (store.clone(), Arc::clone(&config), report.clone());
            tokio::spawn(async move {
                let keys = batch.iter().map(|s| s.key().to_vec()).collect();
                write_back(&store, &config, batch).await;
                // The loop is gone only when the dispatcher stopped.
                let _ = report.send(Progress::Written { keys });
            });
        }
        let mut wake_at = None;
        let room = config.max_in_flight.saturating_sub(work.attempts);
        if room > 0 {
            let now = outbox::now_ms();
            let claimed = match claim_for {
                Some(lease) => {
                    let until = now.saturating_add(lease.as_millis() as u64);
                    store
                        .write(move |tx| {
                            let due = outbox::claim(tx, now, room, until)?;
                            with_webhooks(tx, due)
                        })
                        .await
                }
                None => {
                    let skip = work.held.clone();
                    store.read(move |rx| claim(rx, now, room, &skip)).await
                }
            };
            match claimed {
                Ok((claimed, next_due_ms)) => {
                    wake_at = next_due_ms;
                    for item in claimed {
                        work.held.insert(item.key().to_vec());
                        match item {
                            Claimed::Send { key, outgoing } => {
                                work.attempts += 1;
                                let (config, report) = (Arc::clone(&config), report.clone());
                                tokio::spawn(async move {
                                    let sent = send(
                                        &config.client,
                                        &outgoing,
                                        config.timeout,
                                        &config.policy,
                                    )
                                    .await;
                                    sent.count_in(&config.metrics);
                                    let settle = Settle::Attempted {
                                        key,
                                        outgoing,
                                        sent,
                                    };
                                    let _ = report.send(Progress::Settled(settle));
                                });
                            }
                            Claimed::Stop { key } => work.ready.push(Settle::Stopped { key }),
                        }
                    }
                }
                Err(err) => {
                    log_store_failure(&err, "webhook dispatcher cannot read the outbox");
                    wake_at = Some(now.saturating_add(STORE_RETRY.as_millis() as u64));
                }
            }
        }
        if !work.writing && !work.ready.is_empty() {
            continue;
        }
        let until_due = async {
            match wake_at {
                Some(at) => {
                    let wait = at.saturating_sub(outbox::now_ms());
                    tokio::time::sleep(Duration::from_millis(wait)).await
                }
                None => std::future::pending().await,
            }
        };
        tokio::select! {
            _ = &mut stop => break,
            Some(progress) = reports.recv() => {
                work.take(progress);
                while let Ok(more) = reports.try_recv() {
                    work.take(more);
                }
            }
            () = commits.committed() => {}
            () = until_due => {}
        }
    }
    // Outcomes already in are recorded; attempts still running are abandoned.
    while let Ok(progress) = reports.try_recv() {
        work.take(progress);
    }
    if !work.ready.is_empty() {
        write_back(&store, &config, work.ready).await;
    }
}

/// The dispatcher loop's state.
#[derive(Default)]
struct Work {
    /// The outbox keys of the entries being attempted or waiting to be written back: a claim
    /// skips them.
    held: HashSet<Vec<u8>>,
    /// Attempts in progress.
    attempts: usize,
    /// Outcomes waiting for the next write-back.
    ready: Vec<Settle>,
    /// Whether a write-back is running.
    writing: bool,
}

impl Work {
    fn take(&mut self, progress: Progress) {
        match progress {
            Progress::Settled(settle) => {
                if matches!(settle, Settle::Attempted { .. }) {
                    self.attempts = self.attempts.saturating_sub(1);
                }
                self.ready.push(settle);
            }
            Progress::Written { keys } => {
                self.writing = false;
                for key in &keys {
                    self.held.remove(key);
                }
            }
        }
    }
}

/// An outbox entry taken for an attempt, or to be stopped.
enum Claimed {
    Send { key: Vec<u8>, outgoing: Outgoing },
    Stop { key: Vec<u8> },
}

impl Claimed {
    fn key(&self) -> &[u8] {
        match self {
            Claimed::Send { key, .. } | Claimed::Stop { key } => key,
        }
    }
}

/// Up to `room` due entries not in `held`, each with its webhook as it is now; and when the
/// next entry falls due, if none beyond those is due already.
fn claim(
    rx: &Rx,
    now_ms: u64,
    room: usize,
    held: &HashSet<Vec<u8>>,
) -> ApiResult<(Vec<Claimed>, Option<u64>)> {
    with_webhooks(rx, outbox::due(rx, now_ms, room, held)?)
}

/// Each entry of `due` with its webhook as it is now: to be sent, or stopped.
fn with_webhooks(reader: &impl Reader, due: outbox::Due) -> ApiResult<(Vec<Claimed>, Option<u64>)> {
    let mut claimed = Vec::with_capacity(due.entries.len());
    for (key, pending) in due.entries {
        let webhook = match project_of(reader, &key)? {
            Some(scope) => {
                project_owned::find_text::<Webhook>(reader, &scope, &pending.webhook_id)?
            }
            None => None,
        };
        claimed.push(match webhook {
            Some(webhook) if webhook.status == WebhookStatus::Active => Claimed::Send {
                outgoing: outgoing(webhook, pending),
                key,
            },
            _ => Claimed::Stop { key },
        });
    }
    Ok((claimed, due.next_due_ms))
}

fn outgoing(webhook: Webhook, pending: PendingDelivery) -> Outgoing {
    Outgoing {
        webhook_id: webhook.id,
        url: webhook.url.as_str().to_string(),
        secret: webhook.secret,
        delivery_id: pending.delivery_id,
        event: pending.event,
        attempt: pending.attempt,
        body: pending.body,
    }
}

/// Writes back a batch in one transaction, trying again a few times (the store may be busy or
/// away for a moment); says whether it was written. If not, the entries stay as they were and
/// are attempted again once due: a delivery made twice rather than lost.
async fn write_back(store: &Store, config: &Config, batch: Vec<Settle>) -> bool {
    let entries = batch.len();
    for tried in 1..=WRITE_BACK_TRIES {
        let (batch, delays) = (batch.clone(), config.retry_delays.clone());
        let written = store
            .write(move |tx| {
                for settle in &batch {
                    settle_one(tx, settle, &delays)?;
                }
                Ok(())
            })
            .await;
        match written {
            Ok(()) => return true,
            // A store that cannot write heals by itself; the dispatcher waits for it.
            Err(err)
                if err.code() == ErrorCode::StorageUnavailable || tried == WRITE_BACK_TRIES =>
            {
                log_store_failure(
                    &err,
                    &format!("{entries} webhook outcomes not recorded; their entries stay due"),
                );
                break;
            }
            Err(err) => {
                tracing::warn!(error = %err, entries, tried, "webhook outcomes not recorded yet");
                tokio::time::sleep(STORE_RETRY).await;
            }
        }
    }
    false
}

/// A failure of the store met by the dispatcher: an unexpected one is an error of its own; the
/// store being unavailable is logged by the store, once and in summaries, so only at debug
/// level here.
fn log_store_failure(err: &ApiError, what: &str) {
    if err.code() == ErrorCode::StorageUnavailable {
        tracing::debug!(error = %err, "{what}");
    } else {
        tracing::error!(error = %err, "{what}");
    }
}

/// Records what became of one entry. An attempt is recorded whenever its webhook still exists,
/// even if its delivery was stopped while it ran (the webhook disabled); what happens next
/// (done, a retry, nothing) follows from the entry, if it is still there.
fn settle_one(tx: &mut Tx<'_>, settle: &Settle, delays: &[Duration]) -> ApiResult<()> {
    let pending = outbox::get(tx, settle.key())?;
    let Settle::Attempted {
        key,
        outgoing,
        sent,
    } = settle
    else {
        return match pending {
            Some(pending) => outbox::remove(tx, settle.key(), &pending),
            None => Ok(()),
        };
    };
    // Gone with its project, or with the webhook itself: no record is left to keep.
    let Some(scope) = project_of(tx, key)? else {
        return Ok(());
    };
    let Some(before) = project_owned::find_text::<Webhook>(tx, &scope, &outgoing.webhook_id)?
    else {
        return Ok(());
    };
    let record = attempt_record(tx, outgoing, sent);
    delivery_log::record(tx, &scope, &record)?;
    let mut after = before.clone();
    after.last_triggered_at = Some(tx.now);
    if sent.verdict == Verdict::Delivered {
        after.failure_count = 0;
    } else {
        after.failure_count = after.failure_count.saturating_add(1);
        if after.failure_count >= AUTO_DISABLE_AT && after.status == WebhookStatus::Active {
            after.status = WebhookStatus::Disabled;
            tracing::warn!(
                webhook_id = %after.id,
                failure_count = after.failure_count,
                "webhook disabled after repeated failures"
            );
        }
    }
    // Unchanged (delivered again within the same second): no write, and so no conflict with
    // other write-backs of this webhook where several processes deliver.
    let counters = |w: &Webhook| (w.last_triggered_at, w.failure_count, w.status);
    if counters(&after) != counters(&before) {
        project_owned::write_unaudited(tx, &scope, Some(&before), Some(&after))?;
    }
    let Some(pending) = pending else {
        return Ok(());
    };
    if after.status == WebhookStatus::Disabled {
        // Its other pending deliveries stop too, this one with them.
        return outbox::drop_webhook(tx, &scope.org_id, &scope.project_id, &after.id).map(drop);
    }
    let retry_after = match sent.verdict {
        Verdict::Transient => usize::try_from(pending.attempt)
            .ok()
            .and_then(|n| delays.get(n.checked_sub(1)?)),
        Verdict::Delivered | Verdict::Permanent => None,
    };
    match retry_after {
        Some(delay) => {
            let due = outbox::now_ms().saturating_add(delay.as_millis() as u64);
            outbox::reschedule(tx, key, &pending, due)
        }
        None => outbox::remove(tx, key, &pending),
    }
}

/// The project of an outbox key, unless it was deleted.
fn project_of(reader: &impl Reader, key: &[u8]) -> ApiResult<Option<ProjectScope>> {
    let (org_id, project_id) = outbox::owner(key)?;
    let project = layout::org_child(&org_id, project_id.as_str());
    if reader.get_raw(tables::PROJECTS, &project)?.is_none() {
        return Ok(None);
    }
    ProjectScope::resolve(reader, &org_id, &project_id).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_are_classified_as_the_contract_says() {
        for (status, verdict) in [
            (200, Verdict::Delivered),
            (204, Verdict::Delivered),
            (299, Verdict::Delivered),
            (301, Verdict::Permanent),
            (302, Verdict::Permanent),
            (400, Verdict::Permanent),
            (404, Verdict::Permanent),
            (410, Verdict::Permanent),
            (408, Verdict::Transient),
            (425, Verdict::Transient),
            (429, Verdict::Transient),
            (500, Verdict::Transient),
            (503, Verdict::Transient),
        ] {
            assert_eq!(Verdict::of_status(status), verdict, "{status}");
        }
    }
}

//! A webhook receiver on a free loopback port, as a RogerIQ customer would write one: it
//! verifies each request's signature the way docs/api/webhooks.md tells receivers to (HMAC-SHA256
//! of the raw body under the secret, an optional `sha256=` prefix, a constant-time comparison,
//! before parsing anything), records what it got, and answers as it is told: a status, or a hang.
//! benches/webhooks.rs uses it too.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::dev::ServerHandle;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// How the receiver answers one request.
#[derive(Debug, Clone, Copy)]
pub enum Answer {
    Status(u16),
    /// A redirect to another path of the receiver itself.
    Redirect,
    /// A redirect to `/hook` at another address.
    RedirectTo(SocketAddr),
    /// No answer for this long (longer than the server waits).
    Hang(Duration),
}

/// One request as it arrived.
#[derive(Debug, Clone)]
pub struct Received {
    pub path: String,
    /// Header names in lower case, with their values.
    pub headers: Vec<(String, String)>,
    /// The raw body, exactly as sent.
    pub body: Vec<u8>,
    /// Whether the signature matched the receiver's secret when the request arrived.
    pub verified: bool,
    pub at: Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    pub fn event(&self) -> String {
        self.header("x-rogeriq-event").unwrap_or("").to_string()
    }

    pub fn delivery(&self) -> String {
        self.header("x-rogeriq-delivery").unwrap_or("").to_string()
    }

    pub fn attempt(&self) -> String {
        self.header("x-rogeriq-attempt").unwrap_or("").to_string()
    }
}

struct State {
    secret: String,
    /// Answers for the next requests, in order; then `default`.
    script: VecDeque<Answer>,
    default: Answer,
    received: Vec<Received>,
}

pub struct Receiver {
    /// `http://127.0.0.1:<port>/hook`.
    pub url: String,
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    handle: ServerHandle,
    thread: Option<JoinHandle<std::io::Result<()>>>,
}

/// Whether `signature` (`sha256=<hex>` or bare hex) is the HMAC-SHA256 of `body` under
/// `secret`, compared in constant time.
pub fn verify(secret: &str, body: &[u8], signature: &str) -> bool {
    let hex = signature.strip_prefix("sha256=").unwrap_or(signature);
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(body);
    let expected: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    expected.as_bytes().ct_eq(hex.as_bytes()).into()
}

async fn receive(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<State>>>,
) -> HttpResponse {
    let answer = {
        let mut state = state.lock().unwrap();
        let signature = req
            .headers()
            .get("x-rogeriq-signature")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        let verified = verify(&state.secret, &body, signature);
        let headers = req
            .headers()
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_ascii_lowercase(),
                    v.to_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        state.received.push(Received {
            path: req.path().to_string(),
            headers,
            body: body.to_vec(),
            verified,
            at: Instant::now(),
        });
        if !verified {
            return HttpResponse::Unauthorized().finish();
        }
        let default = state.default;
        state.script.pop_front().unwrap_or(default)
    };
    match answer {
        Answer::Status(code) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(code).expect("a status"))
                .body("ok")
        }
        Answer::Redirect => HttpResponse::Found()
            .insert_header(("Location", "/elsewhere"))
            .finish(),
        Answer::RedirectTo(addr) => HttpResponse::Found()
            .insert_header(("Location", format!("http://{addr}/hook")))
            .finish(),
        Answer::Hang(time) => {
            actix_web::rt::time::sleep(time).await;
            HttpResponse::Ok().finish()
        }
    }
}

impl Receiver {
    /// A receiver that verifies with `secret` and answers 200 unless told otherwise.
    pub fn start(secret: &str) -> Receiver {
        let state = Arc::new(Mutex::new(State {
            secret: secret.to_string(),
            script: VecDeque::new(),
            default: Answer::Status(200),
            received: Vec::new(),
        }));
        let data = web::Data::new(Arc::clone(&state));
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .app_data(web::PayloadConfig::new(16 * 1024 * 1024))
                .default_service(web::to(receive))
        })
        .workers(2)
        .disable_signals()
        .shutdown_timeout(0)
        .bind("127.0.0.1:0")
        .expect("bind a receiver");
        let addr = server.addrs()[0];
        let server = server.run();
        let handle = server.handle();
        let thread = std::thread::spawn(move || actix_web::rt::System::new().block_on(server));
        Receiver {
            url: format!("http://{addr}/hook"),
            addr,
            state,
            handle,
            thread: Some(thread),
        }
    }

    pub fn set_secret(&self, secret: &str) {
        self.state.lock().unwrap().secret = secret.to_string();
    }

    /// Answers the next requests with `answers`, in order, then as before.
    pub fn script(&self, answers: &[Answer]) {
        self.state
            .lock()
            .unwrap()
            .script
            .extend(answers.iter().copied());
    }

    /// Answers every request not scripted with `answer`.
    pub fn always(&self, answer: Answer) {
        self.state.lock().unwrap().default = answer;
    }

    pub fn received(&self) -> Vec<Received> {
        self.state.lock().unwrap().received.clone()
    }

    pub fn count(&self) -> usize {
        self.state.lock().unwrap().received.len()
    }

    /// Waits until at least `n` requests arrived (at most `patience`); returns them all.
    #[track_caller]
    pub fn wait_for(&self, n: usize, patience: Duration) -> Vec<Received> {
        let deadline = Instant::now() + patience;
        loop {
            let received = self.received();
            if received.len() >= n {
                return received;
            }
            assert!(
                Instant::now() < deadline,
                "the receiver got {} requests, not {n}: {:#?}",
                received.len(),
                received
                    .iter()
                    .map(|r| (r.event(), r.attempt()))
                    .collect::<Vec<_>>()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(thread) = self.thread.take() {
            actix_web::rt::System::new().block_on(self.handle.stop(false));
            let _ = thread.join();
        }
    }
}

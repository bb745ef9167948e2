//! The dashboard at `/dashboard`: a page of plain ES modules and one style sheet
//! (`src/dashboard/`), compiled into the binary, that calls `/api/v1` with the session of the
//! key it signed in with (`api::session`). Every page path answers the same HTML shell; the
//! modules route in the browser.
//!
//! The files are read once, at the first request: each gzipped once and kept, with a strong
//! `ETag`, and served under `/dashboard/assets/<version>/`, where `version` is a hash of every
//! file, so they may be cached for a year (`immutable`) while a new build changes every URL.
//! The shell itself is `no-cache`. Pages carry a strict Content-Security-Policy: only this
//! origin's scripts and styles, no inline script, no `eval`, no framing.

use std::collections::HashMap;
use std::io::Write;
use std::sync::OnceLock;

use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::DefaultHeaders;
use actix_web::{HttpRequest, HttpResponse, web};
use flate2::Compression;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::api::{routes, session};

#[derive(rust_embed::Embed)]
#[folder = "src/dashboard/"]
struct Files;

/// Where the files are served: `ASSETS/<version>/<name>`.
const ASSETS: &str = "/dashboard/assets";
const SHELL: &str = "index.html";

pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; script-src 'self'; \
     style-src 'self'; img-src 'self' data:; connect-src 'self'; font-src 'self'; \
     object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// One file, as sent.
struct Asset {
    content_type: &'static str,
    plain: Vec<u8>,
    gzip: Vec<u8>,
    /// Strong validators, one per representation.
    etag: String,
    gzip_etag: String,
}

struct Assets {
    /// A hash of every file: the URL segment that changes whenever any file does.
    version: String,
    /// `index.html` with the assets' folder filled in.
    shell: String,
    files: HashMap<String, Asset>,
}

fn assets() -> &'static Assets {
    static ASSETS_ONCE: OnceLock<Assets> = OnceLock::new();
    ASSETS_ONCE.get_or_init(load)
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn load() -> Assets {
    let mut names: Vec<String> = Files::iter().map(|name| name.into_owned()).collect();
    names.sort();
    let mut version = Sha256::new();
    let mut files = HashMap::new();
    let mut shell = String::new();
    for name in names {
        let Some(file) = Files::get(&name) else {
            continue;
        };
        let plain = file.data.into_owned();
        version.update(name.as_bytes());
        version.update((plain.len() as u64).to_be_bytes());
        version.update(&plain);
        if name == SHELL {
            shell = String::from_utf8_lossy(&plain).into_owned();
            continue;
        }
        let digest = hex(&Sha256::digest(&plain)[..12]);
        files.insert(
            name.clone(),
            Asset {
                content_type: content_type(&name),
                gzip: gzip(&plain),
                plain,
                etag: format!("\"{digest}\""),
                gzip_etag: format!("\"{digest}-gz\""),
            },
        );
    }
    let version = hex(&version.finalize()[..8]);
    let shell = shell.replace("{{assets}}", &format!("{ASSETS}/{version}"));
    Assets {
        version,
        shell,
        files,
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::best());
    // Writing to a Vec cannot fail.
    encoder
        .write_all(data)
        .and_then(|()| encoder.finish())
        .unwrap_or_default()
}

fn content_type(name: &str) -> &'static str {
    match name.rsplit_once('.').map(|(_, ext)| ext) {
        Some("js") => "text/javascript; charset=utf-8",
        Some("css") => "text/css; charset=utf-8",
        Some("svg") => "image/svg+xml",
        Some("html") => "text/html; charset=utf-8",
        _ => "application/octet-stream",
    }
}

/// Serves the dashboard when `enabled`; otherwise its paths fall through to the JSON 404.
pub fn configure(cfg: &mut web::ServiceConfig, enabled: bool) {
    if !enabled {
        return;
    }
    cfg.route("/", web::get().to(to_dashboard));
    cfg.service(
        web::scope("/dashboard")
            .wrap(
                DefaultHeaders::new()
                    .add((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
                    .add((header::X_FRAME_OPTIONS, "DENY"))
                    .add((header::REFERRER_POLICY, "same-origin"))
                    .add((header::X_CONTENT_TYPE_OPTIONS, "nosniff")),
            )
            .service(
                web::resource("/session")
                    .route(web::get().to(session::current))
                    .route(web::post().to(session::sign_in))
                    .route(web::delete().to(session::sign_out)),
            )
            .route("/assets/{version}/{name}", web::get().to(asset))
            .route("", web::get().to(shell))
            .route("/{page:.*}", web::get().to(shell))
            .default_service(web::to(routes::not_found)),
    );
}

async fn to_dashboard() -> HttpResponse {
    HttpResponse::Found()
        .insert_header((header::LOCATION, "/dashboard"))
        .finish()
}

/// Every page of the dashboard: the same shell, which loads the modules.
async fn shell() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(assets().shell.clone())
}

async fn asset(req: HttpRequest, path: web::Path<(String, String)>) -> HttpResponse {
    let (version, name) = path.into_inner();
    let assets = assets();
    let found = (version == assets.version)
        .then(|| assets.files.get(&name))
        .flatten();
    let Some(asset) = found else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found");
    };
    let gzipped = accepts_gzip(&req);
    let (etag, body) = if gzipped {
        (&asset.gzip_etag, &asset.gzip)
    } else {
        (&asset.etag, &asset.plain)
    };
    let unchanged = matches_etag(&req, etag);
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::CACHE_CONTROL, IMMUTABLE))
        .insert_header((header::ETAG, etag.as_str()))
        .insert_header((header::VARY, "Accept-Encoding"));
    if unchanged {
        return response.finish();
    }
    response.insert_header((header::CONTENT_TYPE, asset.content_type));
    if gzipped {
        response.insert_header((header::CONTENT_ENCODING, "gzip"));
    }
    response.body(body.clone())
}

/// Whether `Accept-Encoding` takes gzip (and does not refuse it with `q=0`).
fn accepts_gzip(req: &HttpRequest) -> bool {
    req.headers()
        .get_all(header::ACCEPT_ENCODING)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|coding| {
            let mut parts = coding.split(';').map(str::trim);
            let name = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q == 0.0)
            });
            (name.eq_ignore_ascii_case("gzip") || name == "*") && !refused
        })
}

fn matches_etag(req: &HttpRequest, etag: &str) -> bool {
    req.headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|v: &HeaderValue| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            tag == "*" || tag.trim_start_matches("W/") == etag
        })
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    #[test]
    fn every_file_is_served_under_the_version_the_shell_names() {
        let assets = assets();
        assert!(
            assets
                .shell
                .contains(&format!("{ASSETS}/{}/app.js", assets.version))
        );
        assert!(!assets.shell.contains("{{"), "every placeholder is filled");
        for (name, asset) in &assets.files {
            assert!(!asset.gzip.is_empty(), "{name}");
            assert_ne!(asset.etag, asset.gzip_etag);
        }
    }

    #[test]
    fn gzip_is_sent_unless_refused() {
        let with = |value: &str| {
            TestRequest::get()
                .insert_header((header::ACCEPT_ENCODING, value))
                .to_http_request()
        };
        assert!(accepts_gzip(&with("gzip, deflate, br")));
        assert!(accepts_gzip(&with("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(&with("*")));
        assert!(!accepts_gzip(&with("gzip;q=0")));
        assert!(!accepts_gzip(&with("br")));
        assert!(!accepts_gzip(&TestRequest::get().to_http_request()));
    }
}

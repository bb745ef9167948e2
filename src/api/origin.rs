//! The server's own origin as a browser sees it, for the dashboard: whether a request reached
//! it over HTTPS (its own TLS, or a trusted proxy that says so in `X-Forwarded-Proto`), and
//! whether a request's `Origin` is this server's. Forwarded headers count only from the proxies
//! of `rate_limit.trusted_proxies`; from anyone else they are ignored.

use actix_web::HttpRequest;
use actix_web::http::header;

use crate::rate_limit::IpRange;

const FORWARDED_PROTO: &str = "x-forwarded-proto";
const FORWARDED_HOST: &str = "x-forwarded-host";

/// The first value of a forwarded header, when the peer is a trusted proxy.
fn forwarded<'r>(req: &'r HttpRequest, name: &str, trusted: &[IpRange]) -> Option<&'r str> {
    let peer = req.peer_addr()?.ip();
    if !trusted.iter().any(|range| range.contains(peer)) {
        return None;
    }
    let value = req.headers().get(name)?.to_str().ok()?;
    value.split(',').next().map(str::trim)
}

/// Whether the browser reached this server over HTTPS.
pub fn is_https(req: &HttpRequest, trusted: &[IpRange]) -> bool {
    req.app_config().secure()
        || forwarded(req, FORWARDED_PROTO, trusted).is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// `scheme://host[:port]` of this server, as the browser addressed it.
fn own_origin(req: &HttpRequest, trusted: &[IpRange]) -> Option<String> {
    let host = match forwarded(req, FORWARDED_HOST, trusted) {
        Some(host) => host,
        None => req
            .headers()
            .get(header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri().authority().map(|a| a.as_str()))?,
    };
    let scheme = if is_https(req, trusted) {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}"))
}

/// Whether the request carries an `Origin` header naming this server. Browsers send one with
/// every POST, PATCH and DELETE, so a write without one did not come from the dashboard.
pub fn is_same_origin(req: &HttpRequest, trusted: &[IpRange]) -> bool {
    let Some(origin) = req
        .headers()
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
    else {
        return false;
    };
    own_origin(req, trusted).is_some_and(|own| own.eq_ignore_ascii_case(origin))
}

#[cfg(test)]
mod tests {
    use actix_web::test::TestRequest;

    use super::*;

    fn proxies() -> Vec<IpRange> {
        vec!["10.0.0.1".parse().unwrap()]
    }

    #[test]
    fn the_origin_must_name_the_host_the_browser_used() {
        let req = |origin: &str| {
            TestRequest::post()
                .peer_addr("192.0.2.7:5000".parse().unwrap())
                .insert_header((header::HOST, "riq.example.com:8080"))
                .insert_header((header::ORIGIN, origin))
                .to_http_request()
        };
        assert!(is_same_origin(&req("http://riq.example.com:8080"), &[]));
        assert!(is_same_origin(&req("http://RIQ.example.com:8080"), &[]));
        for foreign in [
            "http://evil.example",
            "https://riq.example.com:8080",
            "http://riq.example.com",
            "null",
        ] {
            assert!(!is_same_origin(&req(foreign), &[]), "{foreign}");
        }
        let without = TestRequest::post()
            .insert_header((header::HOST, "riq.example.com"))
            .to_http_request();
        assert!(!is_same_origin(&without, &[]), "no Origin at all");
    }

    #[test]
    fn only_a_trusted_proxy_speaks_for_the_scheme_and_host() {
        let through = |peer: &str| {
            TestRequest::post()
                .peer_addr(format!("{peer}:5000").parse().unwrap())
                .insert_header((header::HOST, "127.0.0.1:8080"))
                .insert_header((FORWARDED_PROTO, "https"))
                .insert_header((FORWARDED_HOST, "riq.example.com"))
                .insert_header((header::ORIGIN, "https://riq.example.com"))
                .to_http_request()
        };
        let trusted = through("10.0.0.1");
        assert!(is_https(&trusted, &proxies()));
        assert!(is_same_origin(&trusted, &proxies()));
        let stranger = through("10.0.0.2");
        assert!(!is_https(&stranger, &proxies()));
        assert!(!is_same_origin(&stranger, &proxies()));
    }
}

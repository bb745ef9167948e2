//! The rate limit in front of the API (docs/api/rate-limits-and-cors.md, in the order of
//! docs/administration.md). Every request under
//! `/api/v1/` spends one request of a bucket before routing, scopes and bodies: its org key's,
//! sized by the key's tier, or, without a usable key, its client address's (the anonymous
//! tier; master-key requests count there too). The public browser endpoints (`browser`: a
//! form's schema, a beacon's config, both submit paths) take no key and always count in their
//! client address's bucket, whatever key they carry. Every response they answer, errors
//! included, carries the `X-RateLimit-*` headers. CORS preflights are answered before this
//! middleware, so they never count.

use std::net::{IpAddr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpMessage, HttpRequest};

use crate::api::browser;
use crate::api::extract::{self, AuthenticatedKeyId, Caller};
use crate::api::response::State;
use crate::api::state::AppState;
use crate::error::ApiError;
use crate::metrics::ANONYMOUS_TIER;
use crate::rate_limit::{self, Bucket, Decision, IpRange, Tier};

/// The paths the limit covers besides the browser endpoints: the API, not `/healthz`.
pub const LIMITED_PREFIX: &str = "/api/v1/";

pub const LIMIT: &str = "x-ratelimit-limit";
pub const REMAINING: &str = "x-ratelimit-remaining";
pub const RESET: &str = "x-ratelimit-reset";
pub const TIER: &str = "x-ratelimit-tier";
const FORWARDED_FOR: &str = "x-forwarded-for";

pub async fn rate_limit(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let browser = browser::is_browser_path(req.path());
    if !browser && !req.path().starts_with(LIMITED_PREFIX) {
        return next
            .call(req)
            .await
            .map(ServiceResponse::map_into_boxed_body);
    }
    let Some(state) = req.app_data::<State>().cloned() else {
        return Ok(req.error_response(ApiError::internal("application state missing")));
    };
    // A browser endpoint reads no key, so none is looked up: it counts as anonymous.
    let identified = if browser {
        Ok(Caller::Anonymous { presented: false })
    } else {
        extract::identify(&state, req.request()).await
    };
    let caller = match identified {
        Ok(caller) => caller,
        Err(err) => return Ok(req.error_response(err)),
    };
    let (decision, tier) = decide(&state, req.request(), &caller);
    if let Caller::Key(key, _) = &caller {
        req.extensions_mut()
            .insert(AuthenticatedKeyId(key.id.to_string()));
    }
    let mut response = if decision.allowed {
        req.extensions_mut().insert(caller);
        next.call(req).await?.map_into_boxed_body()
    } else {
        state
            .metrics
            .rate_limited(tier.map_or(ANONYMOUS_TIER, Tier::as_str));
        req.error_response(ApiError::rate_limited(decision.retry_after()))
    };
    add_headers(response.headers_mut(), &decision, tier);
    Ok(response)
}

/// Counts the request in its bucket, or, with limiting off, reports the nominal limit. The
/// dashboard's sign-in counts in the anonymous bucket of its client this way too.
pub fn decide(state: &AppState, req: &HttpRequest, caller: &Caller) -> (Decision, Option<Tier>) {
    let settings = &state.rate_limit;
    let (limit, tier) = match caller {
        Caller::Key(key, _) => (settings.tiers.of(key.tier), Some(key.tier)),
        Caller::Anonymous { .. } => (settings.tiers.anonymous, None),
    };
    if !settings.enabled {
        return (Decision::nominal(limit), tier);
    }
    let bucket = match caller {
        Caller::Key(key, _) => Bucket::Key(key.id.to_string()),
        Caller::Anonymous { .. } => Bucket::client(
            // Without a peer address (not over TCP) every such client shares one bucket.
            client_address(req, &settings.trusted_proxies)
                .unwrap_or(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
        ),
    };
    (state.limiter.admit(bucket, limit, Instant::now()), tier)
}

/// The connection's peer, or the client that a trusted proxy names in `X-Forwarded-For`;
/// `None` without a peer address (not over TCP).
pub fn client_address(req: &HttpRequest, trusted: &[IpRange]) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    let forwarded: Vec<&str> = req
        .headers()
        .get_all(FORWARDED_FOR)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .collect();
    Some(rate_limit::client_address(
        peer,
        forwarded.into_iter(),
        trusted,
    ))
}

// Built at compile time: `from_static` at run time checks the name on every request.
const LIMIT_NAME: HeaderName = HeaderName::from_static(LIMIT);
const REMAINING_NAME: HeaderName = HeaderName::from_static(REMAINING);
const RESET_NAME: HeaderName = HeaderName::from_static(RESET);
const TIER_NAME: HeaderName = HeaderName::from_static(TIER);

fn add_headers(headers: &mut HeaderMap, decision: &Decision, tier: Option<Tier>) {
    headers.insert(LIMIT_NAME, HeaderValue::from(decision.limit));
    headers.insert(REMAINING_NAME, HeaderValue::from(decision.remaining));
    headers.insert(
        RESET_NAME,
        HeaderValue::from(unix_seconds_after(decision.reset_in)),
    );
    if let Some(tier) = tier {
        headers.insert(TIER_NAME, HeaderValue::from_static(tier.as_str()));
    }
}

/// The Unix second by which `wait` has passed, rounded up: at that time the window has freed up.
fn unix_seconds_after(wait: Duration) -> u64 {
    let at = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        + wait;
    at.as_secs() + u64::from(at.subsec_nanos() > 0)
}

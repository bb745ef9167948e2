//! HTTP calls that leave the machine: the agent's model provider and webhook deliveries. Both
//! clients use rustls, follow no redirect (a receiver's 3xx is a failed delivery,
//! docs/api/webhooks.md) and ignore proxy variables, so that the address checked is the address
//! connected to.
//!
//! Webhook URLs come from clients, so webhooks have a client of their own, guarded by a
//! [`TargetPolicy`]: unless `webhooks.allow_private_targets` is on, it connects to no address of
//! a special-purpose range ([`special_range`], docs/api/webhooks.md lists them) that
//! `webhooks.allowed_private_targets` does not name. Names are resolved and checked before
//! connecting, by the client's resolver, at every attempt (so DNS rebinding gains nothing); a
//! URL whose host is an address literal is never resolved, so its sender checks it first
//! ([`TargetPolicy::check_literal`]). Creating or updating a webhook refuses what can be known
//! then ([`TargetPolicy::check`]): such literals, and `localhost` names. The provider's URL is
//! set by the operator, not by a client, so its client is not guarded.

use std::error::Error;
use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::WebhookSettings;
use crate::rate_limit::IpRange;

/// The server's two outgoing clients, built once (each holds a connection pool).
pub struct Clients {
    /// For the agent's model provider.
    pub provider: reqwest::Client,
    /// For webhook deliveries, guarded by the webhook settings' [`TargetPolicy`].
    pub webhooks: reqwest::Client,
}

pub fn clients(settings: &WebhookSettings) -> Result<Clients, String> {
    let plain = || {
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
    };
    let guarded = Guarded {
        policy: TargetPolicy::of(settings),
    };
    let built = |builder: reqwest::ClientBuilder| {
        builder
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))
    };
    Ok(Clients {
        provider: built(plain())?,
        webhooks: built(plain().dns_resolver(Arc::new(guarded)))?,
    })
}

/// A special-purpose range: `net`, and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpecialRange {
    pub net: IpNet,
    pub what: &'static str,
}

const fn v4(a: u8, b: u8, c: u8, d: u8, prefix: u8, what: &'static str) -> SpecialRange {
    SpecialRange {
        net: IpNet::V4(Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), prefix)),
        what,
    }
}

const fn v6(segments: [u16; 8], prefix: u8, what: &'static str) -> SpecialRange {
    let [a, b, c, d, e, f, g, h] = segments;
    SpecialRange {
        net: IpNet::V6(Ipv6Net::new_assert(
            Ipv6Addr::new(a, b, c, d, e, f, g, h),
            prefix,
        )),
        what,
    }
}

const RFC_1918: &str = "private (RFC 1918)";
const DOCUMENTATION: &str = "documentation";

/// The IPv4 ranges a webhook may not reach: none of them is a public receiver. Broadcast comes
/// before the reserved 240.0.0.0/4 that holds it, to be named as what it is.
const SPECIAL_V4: &[SpecialRange] = &[
    v4(0, 0, 0, 0, 8, "unspecified (\"this network\")"),
    v4(10, 0, 0, 0, 8, RFC_1918),
    v4(100, 64, 0, 0, 10, "shared (carrier-grade NAT)"),
    v4(127, 0, 0, 0, 8, "loopback"),
    v4(169, 254, 0, 0, 16, "link-local"),
    v4(172, 16, 0, 0, 12, RFC_1918),
    v4(192, 0, 0, 0, 24, "IETF protocol assignment"),
    v4(192, 0, 2, 0, 24, DOCUMENTATION),
    v4(192, 168, 0, 0, 16, RFC_1918),
    v4(198, 18, 0, 0, 15, "benchmarking"),
    v4(198, 51, 100, 0, 24, DOCUMENTATION),
    v4(203, 0, 113, 0, 24, DOCUMENTATION),
    v4(224, 0, 0, 0, 4, "multicast"),
    v4(255, 255, 255, 255, 32, "broadcast"),
    v4(240, 0, 0, 0, 4, "reserved"),
];

/// The IPv6 ranges a webhook may not reach. `::` and `::1` come before the IPv4-compatible
/// `::/96` that holds them.
const SPECIAL_V6: &[SpecialRange] = &[
    v6([0, 0, 0, 0, 0, 0, 0, 0], 128, "unspecified"),
    v6([0, 0, 0, 0, 0, 0, 0, 1], 128, "loopback"),
    v6([0, 0, 0, 0, 0, 0, 0, 0], 96, "IPv4-compatible (deprecated)"),
    v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48, "local-use NAT64"),
    v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64, "discard-only"),
    v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32, "Teredo"),
    v6([0x2001, 2, 0, 0, 0, 0, 0, 0], 48, "benchmarking"),
    v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32, DOCUMENTATION),
    v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7, "unique-local"),
    v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10, "link-local"),
    v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10, "site-local (deprecated)"),
    v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8, "multicast"),
];

/// The special-purpose range `ip` falls in, if any. An IPv6 address that carries an IPv4
/// address to connect to (IPv4-mapped `::ffff:0:0/96`, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`)
/// is judged by that IPv4 address.
pub fn special_range(ip: IpAddr) -> Option<SpecialRange> {
    let v6 = match ip {
        IpAddr::V4(v4) => return special_v4(v4),
        IpAddr::V6(v6) => v6,
    };
    if let Some(v4) = embedded_v4(v6) {
        return special_v4(v4);
    }
    SPECIAL_V6
        .iter()
        .find(|range| range.net.contains(&IpAddr::V6(v6)))
        .copied()
}

fn special_v4(ip: Ipv4Addr) -> Option<SpecialRange> {
    SPECIAL_V4
        .iter()
        .find(|range| range.net.contains(&IpAddr::V4(ip)))
        .copied()
}

/// The IPv4 address an IPv6 address leads to, for the forms that lead to one.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let bits = u128::from(ip);
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    match ip.segments() {
        [0, 0, 0, 0, 0, 0xffff, _, _] | [0x64, 0xff9b, 0, 0, 0, 0, _, _] => Some(low),
        [0x2002, ..] => Some(Ipv4Addr::from((bits >> 80) as u32)),
        _ => None,
    }
}

/// Which addresses webhooks may reach, from `[webhooks]`: every address when
/// `allow_private_targets` is on; otherwise those outside the special-purpose ranges, and
/// those that `allowed_private_targets` names.
#[derive(Debug, Clone)]
pub struct TargetPolicy {
    allow_private: bool,
    allowed: Vec<IpRange>,
}

impl TargetPolicy {
    pub fn of(settings: &WebhookSettings) -> TargetPolicy {
        TargetPolicy {
            allow_private: settings.allow_private_targets,
            allowed: settings.allowed_private_targets.clone(),
        }
    }

    /// The range that keeps webhooks from `ip`, if one does.
    pub fn refuses(&self, ip: IpAddr) -> Option<SpecialRange> {
        if self.allow_private || self.allowed.iter().any(|range| range.contains(ip)) {
            return None;
        }
        special_range(ip)
    }

    /// What a client may send as a webhook URL: not one [`check_literal`] refuses, nor one
    /// whose host is a `localhost` name (RFC 6761: always loopback; refused unless 127.0.0.1
    /// or ::1 is allowed). Other names are left to the resolver, at each attempt.
    ///
    /// [`check_literal`]: TargetPolicy::check_literal
    pub fn check(&self, url: &str) -> Result<(), PrivateTarget> {
        self.check_literal(url)?;
        let Some(name) = host_of(url).and_then(|host| match host {
            url::Host::Domain(name) => Some(name),
            _ => None,
        }) else {
            return Ok(());
        };
        if name != "localhost" && !name.ends_with(".localhost") {
            return Ok(());
        }
        let loopback = [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ];
        match loopback.map(|ip| self.refuses(ip)) {
            [Some(range), Some(_)] => Err(PrivateTarget {
                host: name,
                why: Why::LocalhostName(range),
            }),
            _ => Ok(()),
        }
    }

    /// Refuses `url` if its host is a refused address literal, which no resolver sees: checked
    /// before each attempt. A URL that does not parse is not this check's concern.
    pub fn check_literal(&self, url: &str) -> Result<(), PrivateTarget> {
        let ip = match host_of(url) {
            Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
            Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
            _ => return Ok(()),
        };
        match self.refuses(ip) {
            Some(range) => Err(PrivateTarget {
                host: ip.to_string(),
                why: Why::InRange(range),
            }),
            None => Ok(()),
        }
    }
}

/// The host of `url`, as the WHATWG parser reads it: every spelling of an IPv4 address
/// (`0x7f000001`, `2130706433`, `0177.0.0.1`, `127.1`) is an address, and names are lowercase.
fn host_of(url: &str) -> Option<url::Host<String>> {
    url::Url::parse(url)
        .ok()?
        .host()
        .map(|host| host.to_owned())
}

/// A webhook target refused because it is private; found among a request error's sources by
/// [`find`].
#[derive(Debug)]
pub struct PrivateTarget {
    host: String,
    why: Why,
}

#[derive(Debug)]
enum Why {
    /// An address in this range.
    InRange(SpecialRange),
    /// `localhost` or a name under it: loopback.
    LocalhostName(SpecialRange),
    /// A name whose every address is refused.
    ResolvesPrivate,
}

impl fmt::Display for PrivateTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let host = &self.host;
        match self.why {
            Why::InRange(SpecialRange { net, what }) => {
                write!(f, "{host} is a {what} address ({net})")?
            }
            Why::LocalhostName(SpecialRange { net, what }) => {
                write!(f, "{host} is a {what} name ({net})")?
            }
            Why::ResolvesPrivate => write!(f, "{host} resolves to private addresses only")?,
        }
        f.write_str(
            "; this server sends no webhook to private addresses (webhooks.allow_private_targets)",
        )
    }
}

impl Error for PrivateTarget {}

/// A name that could not be resolved.
#[derive(Debug)]
pub struct DnsFailure {
    host: String,
    cause: io::Error,
}

impl fmt::Display for DnsFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "cannot resolve {}: {}", self.host, self.cause)
    }
}

impl Error for DnsFailure {}

/// `err` and its causes, outermost first. An `io::Error` wrapping another error is followed into
/// it (its own `source` skips the wrapped error: TLS failures come that way).
pub fn causes<'a>(
    err: &'a (dyn Error + 'static),
) -> impl Iterator<Item = &'a (dyn Error + 'static)> {
    std::iter::successors(Some(err), |&e: &&'a (dyn Error + 'static)| match e
        .downcast_ref::<io::Error>()
    {
        Some(io) => io.get_ref().map(|inner| inner as &(dyn Error + 'static)),
        None => e.source(),
    })
}

/// The first cause of `err` (itself included) that is an `E`.
pub fn find<'a, E: Error + 'static>(err: &'a (dyn Error + 'static)) -> Option<&'a E> {
    causes(err).find_map(|e| e.downcast_ref::<E>())
}

/// Resolves names as the system does, then keeps only the addresses the policy allows. A name
/// with none left fails with `PrivateTarget`, one that does not resolve with `DnsFailure`.
struct Guarded {
    policy: TargetPolicy,
}

impl Resolve for Guarded {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let policy = self.policy.clone();
        Box::pin(async move {
            let looked_up = tokio::net::lookup_host((host.as_str(), 0))
                .await
                .map(Iterator::collect::<Vec<SocketAddr>>);
            let found = match looked_up {
                Ok(found) => found,
                Err(cause) => return Err(Box::new(DnsFailure { host, cause }) as _),
            };
            if found.is_empty() {
                let cause = io::Error::new(io::ErrorKind::NotFound, "no address");
                return Err(Box::new(DnsFailure { host, cause }) as _);
            }
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| policy.refuses(addr.ip()).is_none())
                .collect();
            if allowed.is_empty() {
                let why = Why::ResolvesPrivate;
                return Err(Box::new(PrivateTarget { host, why }) as _);
            }
            Ok(Box::new(allowed.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> TargetPolicy {
        TargetPolicy {
            allow_private: false,
            allowed: Vec::new(),
        }
    }

    fn what(ip: &str) -> Option<&'static str> {
        special_range(ip.parse().unwrap()).map(|range| range.what)
    }

    #[test]
    fn special_ranges_are_named() {
        for (ip, named) in [
            ("127.0.0.1", "loopback"),
            ("127.8.9.10", "loopback"),
            ("10.1.2.3", RFC_1918),
            ("172.16.0.1", RFC_1918),
            ("172.31.255.255", RFC_1918),
            ("192.168.1.1", RFC_1918),
            ("169.254.169.254", "link-local"),
            ("0.0.0.0", "unspecified (\"this network\")"),
            ("0.1.2.3", "unspecified (\"this network\")"),
            ("100.64.0.1", "shared (carrier-grade NAT)"),
            ("100.127.255.254", "shared (carrier-grade NAT)"),
            ("255.255.255.255", "broadcast"),
            ("240.0.0.1", "reserved"),
            ("224.0.0.1", "multicast"),
            ("192.0.2.7", DOCUMENTATION),
            ("198.19.0.1", "benchmarking"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("::127.0.0.1", "IPv4-compatible (deprecated)"),
            ("::8.8.8.8", "IPv4-compatible (deprecated)"),
            ("fc00::1", "unique-local"),
            ("fd12:3456::1", "unique-local"),
            ("fe80::1", "link-local"),
            ("fec0::1", "site-local (deprecated)"),
            ("ff02::1", "multicast"),
            ("2001:db8::1", DOCUMENTATION),
            ("2001:0:4136:e378::1", "Teredo"),
            ("2001:2::1", "benchmarking"),
            ("64:ff9b:1::1", "local-use NAT64"),
            ("100::1", "discard-only"),
            // The forms that carry an IPv4 address are judged by it.
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", RFC_1918),
            ("::ffff:169.254.169.254", "link-local"),
            ("64:ff9b::7f00:1", "loopback"),
            ("2002:a9fe:a9fe::1", "link-local"),
        ] {
            assert_eq!(what(ip), Some(named), "{ip}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "2002:808:808::1",
            "2001:4860::8888",
        ] {
            assert_eq!(what(public), None, "{public}");
        }
    }

    #[test]
    fn literals_and_localhost_are_checked_without_a_lookup() {
        let policy = refused();
        for url in [
            "http://127.0.0.1:8080/h",
            "https://[::1]/h",
            "https://10.0.0.5/h",
            "https://0x7f000001/h",
            "https://2130706433/h",
            "https://0177.0.0.1/h",
            "https://127.1/h",
            "https://[::ffff:7f00:1]/h",
            "https://localhost/h",
            "https://LOCALHOST:9/h",
            "https://api.localhost/h",
        ] {
            assert!(policy.check(url).is_err(), "{url}");
        }
        for url in [
            "https://8.8.8.8/h",
            "https://example.com/h",
            "https://localhost.example.com/h",
            "https://notlocalhost/h",
            "not a url",
        ] {
            assert!(policy.check(url).is_ok(), "{url}");
        }
        // At an attempt, names go to the resolver, `localhost` too.
        assert!(policy.check_literal("https://localhost/h").is_ok());
        assert!(policy.check_literal("https://0x7f000001/h").is_err());
        let all = TargetPolicy {
            allow_private: true,
            allowed: Vec::new(),
        };
        assert!(all.check("http://127.0.0.1:8080/h").is_ok());
        assert!(all.check("http://localhost:8080/h").is_ok());
    }

    #[test]
    fn the_allow_list_lets_exactly_its_addresses_through() {
        let policy = TargetPolicy {
            allow_private: false,
            allowed: vec!["127.0.0.1".parse().unwrap(), "10.1.0.0/16".parse().unwrap()],
        };
        for url in [
            "http://127.0.0.1:9000/h",
            "http://[::ffff:127.0.0.1]:9000/h",
            "http://10.1.200.3/h",
            // localhost leads to 127.0.0.1 too; the resolver drops its other addresses.
            "http://localhost:9000/h",
        ] {
            assert!(policy.check(url).is_ok(), "{url}");
        }
        for url in ["http://127.0.0.2/h", "http://[::1]/h", "http://10.2.0.1/h"] {
            assert!(policy.check(url).is_err(), "{url}");
        }
    }

    #[test]
    fn refusals_say_why() {
        let text = |url: &str| refused().check(url).unwrap_err().to_string();
        assert_eq!(
            text("https://169.254.169.254/latest/meta-data/"),
            "169.254.169.254 is a link-local address (169.254.0.0/16); this server sends no \
             webhook to private addresses (webhooks.allow_private_targets)"
        );
        assert!(
            text("https://[::ffff:10.0.0.1]/")
                .starts_with("::ffff:10.0.0.1 is a private (RFC 1918) address (10.0.0.0/8);")
        );
        assert!(text("https://localhost/").starts_with("localhost is a loopback name"));
    }

    #[test]
    fn causes_are_found_through_wrapping_errors() {
        #[derive(Debug)]
        struct Wrapper(io::Error);
        impl fmt::Display for Wrapper {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("connect error")
            }
        }
        impl Error for Wrapper {
            fn source(&self) -> Option<&(dyn Error + 'static)> {
                Some(&self.0)
            }
        }
        let refused = refused().check("https://localhost/").unwrap_err();
        // As a TLS failure arrives: an io::Error wrapping an io::Error wrapping the cause.
        let wrapped = Wrapper(io::Error::other(io::Error::new(
            io::ErrorKind::InvalidData,
            refused,
        )));
        assert!(find::<PrivateTarget>(&wrapped).is_some());
        assert_eq!(causes(&wrapped).count(), 4);
        assert!(find::<PrivateTarget>(&io::Error::other("reset")).is_none());
    }
}

//! The server's one HTTP client for calls that leave the machine: the agent's model provider and
//! webhook deliveries. It uses rustls, follows no redirect (a receiver's 3xx is a failed
//! delivery, API.md §10.4) and ignores proxy variables, so that the address checked below is the
//! address connected to. With `webhooks.allow_private_targets = false` it connects to no
//! loopback, private, link-local, shared or multicast address (`is_private`): names are resolved
//! and checked before connecting, by the client's resolver; a URL whose host is an address
//! literal is never resolved, so its sender checks it with `check_literal` first. The agent's
//! provider is configured by the operator, not by a client, so its host is exempt.

use std::error::Error;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::config::Settings;

/// The client, built once per server and shared (it holds the connection pool).
pub fn client(settings: &Settings) -> Result<reqwest::Client, String> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy();
    if !settings.webhooks.allow_private_targets {
        let trusted_host = url::Url::parse(&settings.agent.provider_url)
            .ok()
            .and_then(|url| url.host_str().map(str::to_ascii_lowercase));
        builder = builder.dns_resolver(Arc::new(PublicOnly { trusted_host }));
    }
    builder
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Whether `ip` is an address a receiver may not have when private targets are refused.
pub fn is_private(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_private_v4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => is_private_v4(v4),
            None => {
                v6.is_loopback()
                    || v6.is_unspecified()
                    || v6.is_unique_local()
                    || v6.is_unicast_link_local()
                    || v6.is_multicast()
            }
        },
    }
}

fn is_private_v4(ip: Ipv4Addr) -> bool {
    let [first, second, ..] = ip.octets();
    ip.is_private()
        || ip.is_loopback()
        || ip.is_link_local()
        || ip.is_unspecified()
        || ip.is_broadcast()
        || ip.is_multicast()
        // 0.0.0.0/8 ("this network") and 100.64.0.0/10 (shared address space, carrier NAT).
        || first == 0
        || (first == 100 && (64..128).contains(&second))
}

/// A connection refused because its target is private; found among a request error's sources
/// with `is_refused_target`.
#[derive(Debug)]
pub struct PrivateTarget {
    host: String,
}

impl fmt::Display for PrivateTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} is a private address, and webhooks.allow_private_targets is false",
            self.host
        )
    }
}

impl Error for PrivateTarget {}

/// Whether `err` (a request error) or one of its sources is a refused private target.
pub fn is_refused_target(err: &(dyn Error + 'static)) -> bool {
    let mut current = Some(err);
    while let Some(e) = current {
        if e.is::<PrivateTarget>() {
            return true;
        }
        current = e.source();
    }
    false
}

/// Refuses `url` if its host is a private address literal and private targets are not allowed.
/// Names are left to the client's resolver.
pub fn check_literal(url: &str, allow_private: bool) -> Result<(), PrivateTarget> {
    if allow_private {
        return Ok(());
    }
    let literal = match url::Url::parse(url)
        .ok()
        .and_then(|u| u.host().map(|h| h.to_owned()))
    {
        Some(url::Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(url::Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    if is_private(literal) {
        Err(PrivateTarget {
            host: literal.to_string(),
        })
    } else {
        Ok(())
    }
}

/// Resolves names as the system does, then keeps only public addresses (all of them for the
/// trusted host). A name with none left fails with `PrivateTarget`.
struct PublicOnly {
    trusted_host: Option<String>,
}

impl Resolve for PublicOnly {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_ascii_lowercase();
        let trusted = self.trusted_host.as_deref() == Some(host.as_str());
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            if trusted {
                return Ok(Box::new(found.into_iter()) as Addrs);
            }
            let public: Vec<SocketAddr> = found
                .iter()
                .copied()
                .filter(|addr| !is_private(addr.ip()))
                .collect();
            if public.is_empty() && !found.is_empty() {
                return Err(Box::new(PrivateTarget { host }) as Box<dyn Error + Send + Sync>);
            }
            Ok(Box::new(public.into_iter()) as Addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_addresses() {
        for private in [
            "127.0.0.1",
            "127.8.9.10",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "0.1.2.3",
            "100.64.0.1",
            "100.127.255.254",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "ff02::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
        ] {
            assert!(is_private(private.parse().unwrap()), "{private}");
        }
        for public in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "100.128.0.1",
            "93.184.216.34",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
        ] {
            assert!(!is_private(public.parse().unwrap()), "{public}");
        }
    }

    #[test]
    fn address_literals_are_checked_before_sending() {
        assert!(check_literal("http://127.0.0.1:8080/h", false).is_err());
        assert!(check_literal("https://[::1]/h", false).is_err());
        assert!(check_literal("https://10.0.0.5/h", false).is_err());
        assert!(check_literal("https://8.8.8.8/h", false).is_ok());
        // Names go to the resolver.
        assert!(check_literal("https://localhost/h", false).is_ok());
        assert!(check_literal("http://127.0.0.1:8080/h", true).is_ok());
    }

    #[test]
    fn refusals_are_found_among_sources() {
        #[derive(Debug)]
        struct Wrapper(PrivateTarget);
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
        let wrapped = Wrapper(PrivateTarget {
            host: "localhost".into(),
        });
        assert!(is_refused_target(&wrapped));
        assert!(!is_refused_target(&std::io::Error::other("reset")));
    }
}

//! Value types that several project-owned kinds share: colours, http(s) URLs and the origins a
//! browser sends. Each is valid by construction and stored as the string it was read from.

use serde::{Deserialize, Serialize};

use utoipa::openapi::schema::ArrayBuilder;

use crate::schema;
use crate::validate::{Check, Input, Presence, SHORT_TEXT_MAX, parsed};

/// At most this many allowed origins per form or beacon.
pub const MAX_ORIGINS: usize = 50;
/// URLs may be longer than short strings; they are still capped.
const URL_MAX: usize = 2048;

/// An origin a browser sends: `scheme://host[:port]`, http or https, kept in lowercase and
/// without the scheme's default port, so that it compares equal to the `Origin` header.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct Origin(String);

impl TryFrom<String> for Origin {
    type Error = String;

    fn try_from(origin: String) -> Check<Origin> {
        let invalid = || "Must be an origin such as https://example.com or http://localhost:3000";
        let lower = origin.to_ascii_lowercase();
        let (scheme, authority) = lower.split_once("://").ok_or_else(invalid)?;
        let default_port = match scheme {
            "http" => "80",
            "https" => "443",
            _ => return Err(invalid().into()),
        };
        let (host, port) = if authority.starts_with('[') {
            // An IPv6 address: `[…]`, then perhaps `:port`.
            let end = authority.find(']').ok_or_else(invalid)? + 1;
            match authority.split_at(end) {
                (host, "") => (host, None),
                (host, rest) => (host, Some(rest.strip_prefix(':').ok_or_else(invalid)?)),
            }
        } else {
            match authority.split_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            }
        };
        let host_ok = if let Some(v6) = host.strip_prefix('[') {
            v6.strip_suffix(']').is_some_and(is_ipv6_literal)
        } else {
            !host.is_empty()
                && host.split('.').all(|label| {
                    !label.is_empty()
                        && label
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                })
        };
        let port_ok = port.is_none_or(|p| {
            !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()) && p.parse::<u16>().is_ok()
        });
        if !host_ok || !port_ok || lower.len() > SHORT_TEXT_MAX {
            return Err(invalid().into());
        }
        Ok(Origin(match port {
            Some(p) if p != default_port => format!("{scheme}://{host}:{p}"),
            _ => format!("{scheme}://{host}"),
        }))
    }
}

impl From<Origin> for String {
    fn from(origin: Origin) -> String {
        origin.0
    }
}

/// An IPv6 address in hex groups, as written between `[` and `]` in a URL (no zone, no embedded
/// IPv4: what `openapi::IPV6` matches).
pub fn is_ipv6_literal(text: &str) -> bool {
    !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b':')
        && text.parse::<std::net::Ipv6Addr>().is_ok()
}

/// The authority of a URL: brackets only around one IPv6 address.
fn brackets_ok(authority: &str) -> bool {
    match (authority.find('['), authority.find(']')) {
        (None, None) => true,
        (Some(open), Some(close)) if open < close => {
            authority.matches('[').count() == 1
                && authority.matches(']').count() == 1
                && is_ipv6_literal(&authority[open + 1..close])
        }
        _ => false,
    }
}

/// An absolute http(s) URL with a host, at most 2048 characters, no whitespace. Kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct HttpUrl(String);

impl TryFrom<String> for HttpUrl {
    type Error = String;

    fn try_from(url: String) -> Check<HttpUrl> {
        let after_scheme = ["https://", "http://"].iter().find_map(|scheme| {
            url.get(..scheme.len())
                .filter(|head| head.eq_ignore_ascii_case(scheme))
                .map(|_| &url[scheme.len()..])
        });
        let host_ok = after_scheme.is_some_and(|rest| {
            rest.split(['/', '?', '#'])
                .next()
                .is_some_and(|host| !host.is_empty() && brackets_ok(host))
        });
        let ok = host_ok
            && url.chars().count() <= URL_MAX
            && !url.chars().any(|c| c.is_whitespace() || c.is_control());
        if ok {
            Ok(HttpUrl(url))
        } else {
            Err("Must be an absolute http or https URL".into())
        }
    }
}

impl From<HttpUrl> for String {
    fn from(url: HttpUrl) -> String {
        url.0
    }
}

/// A colour as `#RGB` or `#RRGGBB`, case kept as sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(try_from = "String", into = "String")]
pub struct HexColor(String);

impl TryFrom<String> for HexColor {
    type Error = String;

    fn try_from(color: String) -> Check<HexColor> {
        let ok = color.strip_prefix('#').is_some_and(|hex| {
            (hex.len() == 3 || hex.len() == 6) && hex.bytes().all(|b| b.is_ascii_hexdigit())
        });
        if ok {
            Ok(HexColor(color))
        } else {
            Err("Must be a hex colour such as #F26B3A or #fff".into())
        }
    }
}

impl From<HexColor> for String {
    fn from(color: HexColor) -> String {
        color.0
    }
}

impl HexColor {
    /// The brand colour that forms and beacons start with (docs/api/forms-and-beacons.md).
    pub fn brand() -> HexColor {
        HexColor("#F26B3A".into())
    }
}

/// Whether a browser at `origin` (its `Origin` header, if any) may use a form or beacon whose
/// `allowed_origins` is `allowed`: any origin when the list is empty, else only a listed one.
pub fn origin_allowed(allowed: &[Origin], origin: Option<&str>) -> bool {
    allowed.is_empty()
        || origin
            .and_then(|o| Origin::try_from(o.to_string()).ok())
            .is_some_and(|o| allowed.contains(&o))
}

/// Origins allowed to use a form or beacon; shared with beacons.
pub fn read_origins(input: &mut Input) -> Option<Vec<Origin>> {
    input.array(
        "allowed_origins",
        Presence::Updatable,
        MAX_ORIGINS,
        parsed::<Origin>,
    )
}

/// The schema of an `allowed_origins` list (`read_origins`).
pub fn origins_schema() -> ArrayBuilder {
    schema::array(schema::origin(), 0, MAX_ORIGINS)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::assert_string_newtype;

    #[test]
    fn origins_are_normalised() {
        let o = |s: &str| Origin::try_from(s.to_string()).map(String::from);
        assert_eq!(o("https://Example.com").unwrap(), "https://example.com");
        assert_eq!(o("https://example.com:443").unwrap(), "https://example.com");
        assert_eq!(o("http://localhost:3000").unwrap(), "http://localhost:3000");
        assert_eq!(o("http://127.0.0.1:80").unwrap(), "http://127.0.0.1");
        assert_eq!(o("http://[::1]:8080").unwrap(), "http://[::1]:8080");
        assert_eq!(o("http://[::1]").unwrap(), "http://[::1]");
        for bad in [
            "example.com",
            "ftp://example.com",
            "https://",
            "https://example.com/",
            "https://example.com/path",
            "https://a..b",
            "https://example.com:",
            "https://example.com:99999",
            "https://user@example.com",
            "null",
            "http://[93516f77]",
            "http://[::1%eth0]",
            "http://[::ffff:1.2.3.4]",
        ] {
            assert!(o(bad).is_err(), "{bad}");
        }
    }

    /// The cases that the document's `IPV6` pattern and Python's `ipaddress` (schemathesis
    /// parses URLs in responses with it) decide alike.
    #[test]
    fn ipv6_literals() {
        for good in [
            "::",
            "::1",
            "1::",
            "1:2:3:4:5:6:7:8",
            "1:2:3:4:5:6:7::",
            "::1:2:3:4:5:6:7",
            "1::2:3:4:5:6:7",
            "fe80::1",
            "ABCD::ef",
        ] {
            assert!(is_ipv6_literal(good), "{good}");
        }
        for bad in [
            "",
            ":",
            ":::",
            "1:::2",
            "12345::",
            "1:2:3:4:5:6:7:8:9",
            "1::2::3",
            "93516f77",
            "g::1",
            "::ffff:1.2.3.4",
            "1:2:3:4:5:6:7:8::",
        ] {
            assert!(!is_ipv6_literal(bad), "{bad}");
        }
    }

    #[test]
    fn urls_and_colours() {
        for good in [
            "https://example.com",
            "HTTP://a.io/x?y=1#z",
            "http://localhost:3000/",
            "https://[::1]:8080/p?q=[x]",
        ] {
            assert!(HttpUrl::try_from(good.to_string()).is_ok(), "{good}");
        }
        for bad in [
            "https://[93516f77]",
            "https://[::1",
            "https://a]b",
            "https://[::1][::2]",
        ] {
            assert!(HttpUrl::try_from(bad.to_string()).is_err(), "{bad}");
        }
        for bad in [
            "",
            "example.com",
            "https://",
            "https:///x",
            "https://a b.com",
            "javascript:alert(1)",
        ] {
            assert!(HttpUrl::try_from(bad.to_string()).is_err(), "{bad}");
        }
        for good in ["#fff", "#F26B3A", "#abcdef"] {
            assert!(HexColor::try_from(good.to_string()).is_ok(), "{good}");
        }
        for bad in ["fff", "#ffff", "#ggg", "#F26B3A0", ""] {
            assert!(HexColor::try_from(bad.to_string()).is_err(), "{bad}");
        }
        assert_string_newtype::<Origin>("https://example.com", "example.com");
        assert_string_newtype::<HttpUrl>("https://example.com/thanks", "/thanks");
        assert_string_newtype::<HexColor>("#F26B3A", "red");
    }
}

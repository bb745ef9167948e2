//! The API's rate limits (docs/api/rate-limits-and-cors.md), without HTTP: key tiers, a sliding
//! window counted per second for each bucket (an API key, or a client address), and the client
//! address behind trusted proxies. `api/limits.rs` turns a [`Decision`] into headers and 429s.
//!
//! No crate fit: the web-framework middlewares and the general limiters (GCRA, token or leaky
//! buckets, fixed windows) do not count "requests in the trailing window", so they cannot say
//! truthfully how many remain or when the oldest counted request leaves the window, which the
//! headers report.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr};
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use ipnet::IpNet;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::validate::wire_enum;

wire_enum! {
    /// A key's rate-limit tier; each has its own requests per window.
    pub enum Tier {
        Starter = "starter",
        Pro = "pro",
        Scale = "scale",
        Enterprise = "enterprise",
    }
}

/// Whose budget a request spends.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Bucket {
    /// An API key, by its id.
    Key(String),
    /// A client without a usable key, by address.
    Client(IpAddr),
}

impl Bucket {
    /// The bucket of a client address. An IPv6 client counts by its /64 network: one host
    /// usually holds a whole /64, and could otherwise take a new address per request.
    pub fn client(ip: IpAddr) -> Bucket {
        Bucket::Client(match ip.to_canonical() {
            IpAddr::V6(v6) => {
                let network = u128::from(v6) & !(u128::from(u64::MAX));
                IpAddr::V6(Ipv6Addr::from(network))
            }
            v4 => v4,
        })
    }
}

/// What the limiter says about one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decision {
    pub allowed: bool,
    /// Requests per window.
    pub limit: u32,
    /// Requests left in the window after this one.
    pub remaining: u32,
    /// Until the oldest counted request leaves the window; for a refused request, until a
    /// request is admitted again.
    pub reset_in: Duration,
}

impl Decision {
    /// What limiting that is switched off reports: the whole budget, free now.
    pub fn nominal(limit: u32) -> Decision {
        Decision {
            allowed: true,
            limit,
            remaining: limit,
            reset_in: Duration::ZERO,
        }
    }

    /// Whole seconds until the window frees up, rounded up and at least 1: a client that waits
    /// this long is admitted (docs/api/rate-limits-and-cors.md).
    pub fn retry_after(&self) -> u64 {
        let d = self.reset_in;
        (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
    }
}

/// Shards of the map of buckets: requests of different buckets rarely wait for one another.
const SHARDS: usize = 32;

/// A sliding window per bucket, at one-second granularity. Each bucket keeps the seconds of its
/// window in which it made requests and how many it made in each, so its memory follows its
/// activity and never exceeds one entry per second of the window. Buckets idle for a whole
/// window are dropped by a sweep that each shard runs at most once per window length, and at
/// most `capacity` buckets are kept in all.
pub struct RateLimiter {
    window_secs: u32,
    /// Second 0 of the limiter's clock: monotonic, so wall-clock jumps change no count.
    epoch: Instant,
    shards: Box<[Mutex<Shard>]>,
    hasher: RandomState,
    per_shard: usize,
}

#[derive(Default)]
struct Shard {
    windows: HashMap<Bucket, Window>,
    /// The second at or after which the next sweep of idle windows runs.
    next_sweep: u32,
    /// The second of the last sweep: a full shard sweeps at most once a second, so that a
    /// flood of new addresses does not cost a scan each.
    swept_at: Option<u32>,
}

#[derive(Default)]
struct Window {
    /// `(second, requests counted in it)`, oldest first, only seconds inside the window.
    seconds: VecDeque<(u32, u32)>,
    counted: u32,
}

impl Window {
    /// Drops the seconds that have left a window of `length` ending at `now`.
    fn slide(&mut self, now: u32, length: u32) {
        while let Some(&(second, count)) = self.seconds.front() {
            if second.saturating_add(length) > now {
                break;
            }
            self.seconds.pop_front();
            self.counted -= count;
        }
    }

    fn count(&mut self, now: u32) {
        match self.seconds.back_mut() {
            Some((second, count)) if *second == now => *count += 1,
            _ => self.seconds.push_back((now, 1)),
        }
        self.counted += 1;
    }

    fn is_idle(&self, now: u32, length: u32) -> bool {
        self.seconds
            .back()
            .is_none_or(|&(second, _)| second.saturating_add(length) <= now)
    }
}

impl RateLimiter {
    /// A limiter over windows of `window_secs` (at least 1) that tracks up to `capacity`
    /// buckets.
    pub fn new(window_secs: u32, capacity: usize) -> RateLimiter {
        RateLimiter {
            window_secs: window_secs.max(1),
            epoch: Instant::now(),
            shards: (0..SHARDS).map(|_| Mutex::default()).collect(),
            hasher: RandomState::new(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// Counts one request of `bucket` at `now` if fewer than `limit` fall inside the window,
    /// and reports what is left. The lock held is one shard's, for a few map operations.
    pub fn admit(&self, bucket: Bucket, limit: u32, now: Instant) -> Decision {
        let elapsed = now.saturating_duration_since(self.epoch);
        let second = u32::try_from(elapsed.as_secs()).unwrap_or(u32::MAX);
        let length = self.window_secs;
        // The index is below SHARDS, so the conversion is exact.
        let shard_index = (self.hasher.hash_one(&bucket) % SHARDS as u64) as usize;
        let mut shard = self.shards[shard_index]
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if second >= shard.next_sweep {
            shard.sweep(second, length);
            shard.next_sweep = second.saturating_add(length);
        }
        if !shard.windows.contains_key(&bucket) && shard.windows.len() >= self.per_shard {
            shard.make_room(second, length, self.per_shard);
        }
        let window = shard.windows.entry(bucket).or_default();
        window.slide(second, length);
        let allowed = window.counted < limit;
        if allowed {
            window.count(second);
        }
        let oldest = window.seconds.front().map_or(second, |&(s, _)| s);
        let frees_at = self.epoch + Duration::from_secs(u64::from(oldest) + u64::from(length));
        Decision {
            allowed,
            limit,
            remaining: limit.saturating_sub(window.counted),
            reset_in: frees_at.saturating_duration_since(now),
        }
    }

    #[cfg(test)]
    fn tracked(&self) -> usize {
        self.shards
            .iter()
            .map(|s| {
                s.lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .windows
                    .len()
            })
            .sum()
    }
}

impl Shard {
    /// Drops the windows with no request left inside.
    fn sweep(&mut self, now: u32, length: u32) {
        self.windows.retain(|_, w| !w.is_idle(now, length));
        self.swept_at = Some(now);
    }

    /// Frees a place for a new bucket: idle windows first, else any one. Only a flood from more
    /// addresses than the capacity gets here; forgetting one of them lets that one start over.
    fn make_room(&mut self, now: u32, length: u32, room: usize) {
        if self.swept_at != Some(now) {
            self.sweep(now, length);
        }
        if self.windows.len() >= room
            && let Some(victim) = self.windows.keys().next().cloned()
        {
            self.windows.remove(&victim);
        }
    }
}

/// An address or a network, as `127.0.0.1`, `::1` or `10.0.0.0/8`: a trusted proxy, or a
/// private webhook target allowed all the same.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange(IpNet);

impl IpRange {
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&ip.to_canonical())
    }
}

impl FromStr for IpRange {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        if let Ok(ip) = text.parse::<IpAddr>() {
            return Ok(IpRange(IpNet::from(ip.to_canonical())));
        }
        text.parse::<IpNet>().map(IpRange).map_err(|_| {
            format!("'{text}' is neither an IP address nor a network such as 10.0.0.0/8")
        })
    }
}

impl fmt::Display for IpRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.prefix_len() == self.0.max_prefix_len() {
            self.0.addr().fmt(f)
        } else {
            self.0.fmt(f)
        }
    }
}

impl Serialize for IpRange {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpRange {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// The client behind a request from `peer`. `X-Forwarded-For` (`forwarded_for`, its entries in
/// order, the nearest hop last) is read only while the hop that reports it is a trusted proxy:
/// from the right, each trusted hop vouches for the entry before it, and the first untrusted
/// address is the client. So a client cannot pick its bucket by sending the header itself.
pub fn client_address<'a>(
    peer: IpAddr,
    forwarded_for: impl DoubleEndedIterator<Item = &'a str>,
    trusted: &[IpRange],
) -> IpAddr {
    let is_trusted = |ip: IpAddr| trusted.iter().any(|range| range.contains(ip));
    let mut client = peer.to_canonical();
    for entry in forwarded_for.rev() {
        if !is_trusted(client) {
            break;
        }
        match forwarded_entry(entry) {
            Some(ip) => client = ip,
            None => break,
        }
    }
    client
}

/// One `X-Forwarded-For` entry: an address, perhaps with a port (`1.2.3.4:80`, `[::1]:80`).
fn forwarded_entry(entry: &str) -> Option<IpAddr> {
    let entry = entry.trim();
    entry
        .parse::<IpAddr>()
        .ok()
        .or_else(|| entry.parse::<std::net::SocketAddr>().ok().map(|s| s.ip()))
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    fn key(id: &str) -> Bucket {
        Bucket::Key(id.into())
    }

    #[test]
    fn exactly_the_limit_passes_inside_the_window() {
        let limiter = RateLimiter::new(60, 100);
        let t0 = limiter.epoch + Duration::from_millis(10_250);
        for left in (0..3).rev() {
            let d = limiter.admit(key("a"), 3, t0);
            assert!(d.allowed);
            assert_eq!(d.remaining, left);
        }
        let refused = limiter.admit(key("a"), 3, t0 + Duration::from_secs(30));
        assert!(!refused.allowed);
        assert_eq!(refused.remaining, 0);
        // Counted in second 10, they leave the window at second 70: 29.75 s after 40.25 s.
        assert_eq!(refused.reset_in, Duration::from_millis(29_750));
        assert_eq!(refused.retry_after(), 30);
        let later = t0 + Duration::from_secs(30) + Duration::from_secs(refused.retry_after());
        assert!(limiter.admit(key("a"), 3, later).allowed);
    }

    #[test]
    fn the_window_slides_one_second_at_a_time() {
        let limiter = RateLimiter::new(10, 100);
        let at = |s: u64| limiter.epoch + Duration::from_secs(s);
        assert!(limiter.admit(key("a"), 2, at(0)).allowed);
        let second = limiter.admit(key("a"), 2, at(5));
        assert_eq!(
            (second.remaining, second.reset_in),
            (0, Duration::from_secs(5))
        );
        assert!(!limiter.admit(key("a"), 2, at(9)).allowed);
        // Second 0 has left; second 5 is still inside, so only one more fits.
        let third = limiter.admit(key("a"), 2, at(10));
        assert!(third.allowed);
        assert_eq!(third.reset_in, Duration::from_secs(5));
        let refused = limiter.admit(key("a"), 2, at(11));
        assert_eq!((refused.allowed, refused.retry_after()), (false, 4));
        assert!(limiter.admit(key("a"), 2, at(15)).allowed);
    }

    #[test]
    fn buckets_are_separate() {
        let limiter = RateLimiter::new(60, 100);
        let now = Instant::now();
        assert!(limiter.admit(key("a"), 1, now).allowed);
        assert!(!limiter.admit(key("a"), 1, now).allowed);
        assert!(limiter.admit(key("b"), 1, now).allowed);
        let ip = Bucket::client(IpAddr::V4(Ipv4Addr::LOCALHOST));
        assert!(limiter.admit(ip, 1, now).allowed);
    }

    #[test]
    fn idle_buckets_are_swept() {
        let limiter = RateLimiter::new(10, 100_000);
        let t0 = limiter.epoch;
        for n in 0..1000 {
            limiter.admit(key(&format!("old{n}")), 5, t0);
        }
        assert_eq!(limiter.tracked(), 1000);
        // A window later, each shard's first request sweeps its idle buckets away (1000 new
        // buckets reach all 32 shards).
        let later = t0 + Duration::from_secs(10);
        for n in 0..1000 {
            limiter.admit(key(&format!("new{n}")), 5, later);
        }
        assert_eq!(limiter.tracked(), 1000);
    }

    #[test]
    fn the_capacity_holds() {
        let limiter = RateLimiter::new(10, SHARDS * 4);
        let t0 = limiter.epoch;
        for n in 0..1000 {
            limiter.admit(key(&format!("k{n}")), 5, t0);
        }
        assert!(limiter.tracked() <= SHARDS * 4, "{}", limiter.tracked());
    }

    #[test]
    fn ipv6_clients_count_by_their_network() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(Bucket::client(a), Bucket::client(b));
        assert_ne!(Bucket::client(a), Bucket::client(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(
            Bucket::client(mapped),
            Bucket::Client("192.0.2.7".parse().unwrap())
        );
    }

    #[test]
    fn forwarded_for_counts_only_behind_trusted_proxies() {
        let trusted: Vec<IpRange> = ["127.0.0.1", "10.0.0.0/8"]
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        let ip = |t: &str| t.parse::<IpAddr>().unwrap();
        let client =
            |peer: &str, xff: &[&str]| client_address(ip(peer), xff.iter().copied(), &trusted);
        // An untrusted peer is the client, whatever it forwards.
        assert_eq!(client("203.0.113.9", &["198.51.100.1"]), ip("203.0.113.9"));
        // A trusted proxy vouches for the hop before it.
        assert_eq!(client("127.0.0.1", &["198.51.100.1"]), ip("198.51.100.1"));
        // Through two trusted proxies; a spoofed entry before the real client is ignored.
        assert_eq!(
            client("127.0.0.1", &["6.6.6.6", "198.51.100.1", "10.1.2.3"]),
            ip("198.51.100.1")
        );
        assert_eq!(
            client("127.0.0.1", &["198.51.100.1:4242"]),
            ip("198.51.100.1")
        );
        assert_eq!(client("127.0.0.1", &["garbage"]), ip("127.0.0.1"));
        assert_eq!(client("127.0.0.1", &[]), ip("127.0.0.1"));
        assert_eq!(
            client("::ffff:127.0.0.1", &["[2001:db8::1]:80"]),
            ip("2001:db8::1")
        );
    }

    #[test]
    fn ip_ranges_read_addresses_and_networks() {
        let range: IpRange = "10.0.0.0/8".parse().unwrap();
        assert!(range.contains("10.200.0.1".parse().unwrap()));
        assert!(!range.contains("11.0.0.1".parse().unwrap()));
        let host: IpRange = "::1".parse().unwrap();
        assert_eq!(host.to_string(), "::1");
        assert_eq!(range.to_string(), "10.0.0.0/8");
        assert!("10.0.0.0/33".parse::<IpRange>().is_err());
        assert!("example.com".parse::<IpRange>().is_err());
        assert_eq!(Tier::Enterprise.as_str(), "enterprise");
    }
}

//! Identifiers: `<prefix>_` plus 12 characters from `[a-z0-9]` (API.md §12), and the random
//! secrets behind API keys and request ids. All randomness comes from the operating system.
//!
//! Object ids are ordered by creation (`generate`): stored under keys that start with their
//! id, records of one table then land side by side, so that a commit of many creates rewrites a
//! few B-tree leaves instead of one leaf per create (see docs/design.md, "Performance"). Secrets
//! stay wholly random.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

use std::cell::RefCell;

const ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";

/// Length of the random part of every generated object id.
pub const ID_SUFFIX_LEN: usize = 12;

/// Org and project ids have this many bytes, so that concatenated they form a key prefix.
pub const ID_LEN: usize = 4 + ID_SUFFIX_LEN;

/// `len` characters drawn uniformly from `[a-z0-9]`.
pub fn random_alphanumeric(len: usize) -> String {
    let mut out = String::with_capacity(len);
    let mut buf = [0u8; 64];
    while out.len() < len {
        let wanted = &mut buf[..(len - out.len()).min(64)];
        fill_random(wanted);
        // Rejection sampling keeps the distribution uniform: 252 = 7 * 36.
        for &b in wanted.iter().filter(|&&b| b < 252) {
            out.push(ALPHABET[(b % 36) as usize] as char);
        }
    }
    out
}

/// Fills `buf` with bytes from the operating system's random source, drawn from a per-thread
/// pool that fetches them 4 KiB at a time: a request id then costs no system call. Each byte
/// is handed out once, so a drawn byte is as good as one asked of the OS directly.
pub fn fill_random(buf: &mut [u8]) {
    RANDOM_POOL.with_borrow_mut(|pool| pool.fill(buf));
}

thread_local! {
    static RANDOM_POOL: RefCell<RandomPool> = const {
        RefCell::new(RandomPool {
            bytes: [0; RANDOM_POOL_BYTES],
            used: RANDOM_POOL_BYTES,
        })
    };
}

const RANDOM_POOL_BYTES: usize = 4096;

struct RandomPool {
    bytes: [u8; RANDOM_POOL_BYTES],
    /// Bytes already handed out, from the start; all of them when it must be refilled.
    used: usize,
}

impl RandomPool {
    fn fill(&mut self, out: &mut [u8]) {
        let mut done = 0;
        while done < out.len() {
            if self.used == RANDOM_POOL_BYTES {
                // getrandom fails only when the OS has no usable random source, which no
                // request can cause; without it no key or id can be issued safely, so there
                // is no fallback.
                getrandom::fill(&mut self.bytes)
                    .expect("the operating system's random number generator failed");
                self.used = 0;
            }
            let n = (out.len() - done).min(RANDOM_POOL_BYTES - self.used);
            out[done..done + n].copy_from_slice(&self.bytes[self.used..self.used + n]);
            // A byte handed out is not kept: a later look at this memory cannot recover it.
            self.bytes[self.used..self.used + n].fill(0);
            self.used += n;
            done += n;
        }
    }
}

/// Characters of an object id that count up (`ORDER_DIGITS`, in ASCII order); the rest of its
/// `ID_SUFFIX_LEN` are random.
const ORDER_DIGITS: usize = 10;
const ORDERED: &[u8; 36] = b"0123456789abcdefghijklmnopqrstuvwxyz";
/// The count starts at the microseconds since 2024-01-01 (Unix 1 704 067 200 s): ten base-36
/// digits hold 36^10 µs, about 115 years.
const ORDER_EPOCH: Duration = Duration::from_secs(1_704_067_200);
/// The last count this process handed out.
static LAST_ORDER: AtomicU64 = AtomicU64::new(0);

/// A count above every count this process made before, and at least the microseconds since
/// `ORDER_EPOCH`: ids of one process never share it, and a restart continues above the last
/// run's (unless the clock was set back by more than the restart took, when the random
/// characters still keep ids apart).
fn next_order() -> u64 {
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH + ORDER_EPOCH)
        .map_or(0, |since| since.as_micros() as u64);
    let mut last = LAST_ORDER.load(Ordering::Relaxed);
    loop {
        let next = now.max(last + 1);
        match LAST_ORDER.compare_exchange_weak(last, next, Ordering::Relaxed, Ordering::Relaxed) {
            Ok(_) => return next,
            Err(seen) => last = seen,
        }
    }
}

/// A new object id: `prefix`, then `ORDER_DIGITS` base-36 digits of a count that grows with
/// every id (unique within the process), then random characters up to `ID_SUFFIX_LEN`. Ids made
/// later sort after earlier ones, byte for byte.
pub fn generate(prefix: &str) -> String {
    let mut order = next_order();
    let mut digits = [0u8; ORDER_DIGITS];
    for digit in digits.iter_mut().rev() {
        *digit = ORDERED[(order % 36) as usize];
        order /= 36;
    }
    let mut id = String::with_capacity(prefix.len() + ID_SUFFIX_LEN);
    id.push_str(prefix);
    id.extend(digits.iter().map(|&b| b as char));
    id.push_str(&random_alphanumeric(ID_SUFFIX_LEN - ORDER_DIGITS));
    id
}

/// A new id of wholly random characters, for objects that anyone who knows the id may use
/// (a public form): unordered, so that one id tells nothing about the next.
pub fn random_id(prefix: &str) -> String {
    format!("{prefix}{}", random_alphanumeric(ID_SUFFIX_LEN))
}

/// Whether `id` has the shape of an id with `prefix`. Ids from paths that fail this can never
/// name a stored object, so they are "not found" without a look-up.
pub fn has_shape(prefix: &str, id: &str) -> bool {
    id.strip_prefix(prefix).is_some_and(|suffix| {
        suffix.len() == ID_SUFFIX_LEN && suffix.bytes().all(|b| ALPHABET.contains(&b))
    })
}

/// The org-level kinds of object that carry an id, each with its prefix. Project-owned kinds
/// declare theirs with their `Kind` impl.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdKind {
    Org,
    Project,
    ApiKey,
    Audit,
}

impl IdKind {
    pub const fn prefix(self) -> &'static str {
        match self {
            IdKind::Org => "org_",
            IdKind::Project => "prj_",
            IdKind::ApiKey => "key_",
            IdKind::Audit => "aud_",
        }
    }

    pub fn generate(self) -> String {
        generate(self.prefix())
    }

    pub fn matches(self, id: &str) -> bool {
        has_shape(self.prefix(), id)
    }
}

pub fn request_id() -> String {
    format!("req_{}", random_alphanumeric(16))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_ids_have_prefix_and_alphabet() {
        for kind in [IdKind::Org, IdKind::Project, IdKind::ApiKey, IdKind::Audit] {
            let id = kind.generate();
            assert!(kind.matches(&id), "{id}");
            assert_eq!(id.len(), kind.prefix().len() + ID_SUFFIX_LEN);
        }
        assert_eq!(IdKind::Org.generate().len(), ID_LEN);
        let random = random_id(IdKind::Project.prefix());
        assert!(IdKind::Project.matches(&random), "{random}");
    }

    #[test]
    fn generated_ids_sort_in_creation_order() {
        let ids: Vec<String> = (0..1000).map(|_| IdKind::Project.generate()).collect();
        assert!(ids.windows(2).all(|pair| pair[0] < pair[1]), "{ids:?}");
        assert!(ids.iter().all(|id| IdKind::Project.matches(id)));
    }

    #[test]
    fn foreign_shapes_do_not_match() {
        assert!(!IdKind::Project.matches("org_abcdefghijkl"));
        assert!(!IdKind::Project.matches("prj_ABCDEFGHIJKL"));
        assert!(!IdKind::Project.matches("prj_short"));
        assert!(!IdKind::Project.matches("prj_abcdefghijkl/"));
    }

    #[test]
    fn random_strings_are_distinct() {
        let a = random_alphanumeric(32);
        let b = random_alphanumeric(32);
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
    }
}

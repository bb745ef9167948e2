//! Identifiers: `<prefix>_` plus random characters from `[a-z0-9]` (API.md §12), and the random
//! secrets behind API keys and request ids. All randomness comes from the operating system.

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
        fill_random(&mut buf);
        // Rejection sampling keeps the distribution uniform: 252 = 7 * 36.
        for &b in buf.iter().filter(|&&b| b < 252) {
            if out.len() == len {
                break;
            }
            out.push(ALPHABET[(b % 36) as usize] as char);
        }
    }
    out
}

pub fn fill_random(buf: &mut [u8]) {
    // getrandom fails only when the OS has no usable random source, which no request can
    // cause; without it no key or id can be issued safely, so there is no fallback.
    getrandom::fill(buf).expect("the operating system's random number generator failed");
}

/// A new id: `prefix` plus `ID_SUFFIX_LEN` random characters.
pub fn generate(prefix: &str) -> String {
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

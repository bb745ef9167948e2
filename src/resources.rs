//! Project-owned resource kinds. Each kind stores its records under the project's prefix of the
//! owned table, behind a one-byte kind tag.

/// The name of the record kind behind a tag of the owned table, for cascade counts; index
/// entries have no name and are not counted.
pub fn record_kind_name(_tag: u8) -> Option<&'static str> {
    None
}

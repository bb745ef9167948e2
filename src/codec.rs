//! The record codec: every stored value is one format-version byte followed by the record's
//! postcard encoding. Postcard is not self-describing, so when a record type gains a field its
//! `VERSION` goes up and `upgrade` decodes the older layouts; a data file stays readable.

use serde::Serialize;
use serde::de::DeserializeOwned;

#[derive(Debug)]
pub enum CodecError {
    Empty,
    UnknownVersion { record: &'static str, version: u8 },
    Postcard(postcard::Error),
}

impl std::fmt::Display for CodecError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CodecError::Empty => write!(f, "empty record"),
            CodecError::UnknownVersion { record, version } => {
                write!(f, "{record} record has unknown format version {version}")
            }
            CodecError::Postcard(err) => write!(f, "postcard: {err}"),
        }
    }
}

impl std::error::Error for CodecError {}

/// A type stored in redb. Implementors name their current layout's version and decode older ones.
pub trait Record: Serialize + DeserializeOwned {
    const NAME: &'static str;
    const VERSION: u8 = 1;

    /// Decodes a record written with an older `version`. The default knows no older layouts.
    fn upgrade(version: u8, _bytes: &[u8]) -> Result<Self, CodecError> {
        Err(CodecError::UnknownVersion {
            record: Self::NAME,
            version,
        })
    }
}

/// For `Record::upgrade`: decodes a record written in the layout `Old` of format version
/// `from` and converts it; any other version is unknown.
pub fn upgrade_from<Old: DeserializeOwned, New: Record>(
    version: u8,
    from: u8,
    bytes: &[u8],
    convert: impl FnOnce(Old) -> New,
) -> Result<New, CodecError> {
    if version != from {
        return Err(CodecError::UnknownVersion {
            record: New::NAME,
            version,
        });
    }
    postcard::from_bytes(bytes)
        .map(convert)
        .map_err(CodecError::Postcard)
}

pub fn encode<T: Record>(record: &T) -> Result<Vec<u8>, CodecError> {
    postcard::to_extend(record, vec![T::VERSION]).map_err(CodecError::Postcard)
}

pub fn decode<T: Record>(bytes: &[u8]) -> Result<T, CodecError> {
    let (&version, body) = bytes.split_first().ok_or(CodecError::Empty)?;
    if version == T::VERSION {
        postcard::from_bytes(body).map_err(CodecError::Postcard)
    } else {
        T::upgrade(version, body)
    }
}

impl From<CodecError> for crate::error::ApiError {
    fn from(err: CodecError) -> Self {
        crate::error::ApiError::internal_from("codec", err)
    }
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;

    use super::*;

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct NoteV1 {
        text: String,
    }

    impl Record for NoteV1 {
        const NAME: &'static str = "note";
    }

    #[derive(Debug, PartialEq, Serialize, Deserialize)]
    struct Note {
        text: String,
        pinned: bool,
    }

    impl Record for Note {
        const NAME: &'static str = "note";
        const VERSION: u8 = 2;

        fn upgrade(version: u8, bytes: &[u8]) -> Result<Self, CodecError> {
            match version {
                1 => {
                    let old: NoteV1 = postcard::from_bytes(bytes).map_err(CodecError::Postcard)?;
                    Ok(Note {
                        text: old.text,
                        pinned: false,
                    })
                }
                _ => Err(CodecError::UnknownVersion {
                    record: Self::NAME,
                    version,
                }),
            }
        }
    }

    #[test]
    fn round_trips_with_version_byte() {
        let note = Note {
            text: "hi".into(),
            pinned: true,
        };
        let bytes = encode(&note).unwrap();
        assert_eq!(bytes[0], 2);
        assert_eq!(decode::<Note>(&bytes).unwrap(), note);
    }

    #[test]
    fn older_layout_is_upgraded() {
        let bytes = encode(&NoteV1 { text: "old".into() }).unwrap();
        assert_eq!(
            decode::<Note>(&bytes).unwrap(),
            Note {
                text: "old".into(),
                pinned: false
            }
        );
    }

    #[test]
    fn unknown_version_and_empty_are_errors() {
        assert!(matches!(
            decode::<Note>(&[9, 0]),
            Err(CodecError::UnknownVersion { version: 9, .. })
        ));
        assert!(matches!(decode::<Note>(&[]), Err(CodecError::Empty)));
    }

    #[test]
    fn a_codec_error_stays_the_api_errors_source() {
        use std::error::Error;

        let err = crate::error::ApiError::from(CodecError::Empty);
        assert_eq!(
            err.to_string(),
            "INTERNAL_ERROR: Internal server error: codec: empty record"
        );
        let source = err.source().and_then(|s| s.downcast_ref::<CodecError>());
        assert!(matches!(source, Some(CodecError::Empty)));
    }
}

//! Timestamps: stored as Unix seconds, rendered as RFC 3339 in UTC with a `Z` and no fraction
//! (docs/api/README.md).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Timestamp(i64);

/// In the OpenAPI document: an RFC 3339 date-time string.
impl utoipa::PartialSchema for Timestamp {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::DateTime)))
            .into()
    }
}

impl utoipa::ToSchema for Timestamp {}

impl Timestamp {
    pub fn now() -> Self {
        Timestamp(OffsetDateTime::now_utc().unix_timestamp())
    }

    pub fn from_unix(seconds: i64) -> Self {
        Timestamp(seconds)
    }

    pub fn unix(self) -> i64 {
        self.0
    }

    /// Parses any RFC 3339 date-time (offsets and fractions allowed), truncated to the second.
    pub fn parse(text: &str) -> Option<Self> {
        OffsetDateTime::parse(text, &Rfc3339)
            .ok()
            .map(|t| Timestamp(t.unix_timestamp()))
    }
}

impl Timestamp {
    /// `YYYY-MM-DDTHH:MM:SSZ`, written digit by digit (a page renders two per record, and
    /// formatting machinery cost a tenth of a list's CPU). `None` outside the years 0-9999,
    /// which RFC 3339 cannot write.
    fn rfc3339(self) -> Option<[u8; 20]> {
        let t = OffsetDateTime::from_unix_timestamp(self.0).ok()?;
        let year = u16::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
        let mut out = *b"0000-00-00T00:00:00Z";
        let mut put = |at: usize, value: u16, digits: usize| {
            let mut rest = value;
            for i in (at..at + digits).rev() {
                out[i] = b'0' + (rest % 10) as u8;
                rest /= 10;
            }
        };
        put(0, year, 4);
        put(5, u8::from(t.month()).into(), 2);
        put(8, t.day().into(), 2);
        put(11, t.hour().into(), 2);
        put(14, t.minute().into(), 2);
        put(17, t.second().into(), 2);
        Some(out)
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // A whole second in UTC renders with no fraction and a `Z`. Outside the years 0-9999
        // RFC 3339 has no form; such a value shows as its Unix seconds.
        match self.rfc3339() {
            Some(text) => f.write_str(std::str::from_utf8(&text).map_err(|_| fmt::Error)?),
            None => write!(f, "{}", self.0),
        }
    }
}

/// Text in JSON, an integer in stored records: the same type serves the wire and the store.
impl Serialize for Timestamp {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        if !serializer.is_human_readable() {
            return serializer.serialize_i64(self.0);
        }
        match self.rfc3339() {
            Some(text) => serializer
                .serialize_str(std::str::from_utf8(&text).map_err(serde::ser::Error::custom)?),
            None => serializer.collect_str(self),
        }
    }
}

impl<'de> Deserialize<'de> for Timestamp {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        if deserializer.is_human_readable() {
            let text = String::deserialize(deserializer)?;
            Timestamp::parse(&text).ok_or_else(|| serde::de::Error::custom("invalid timestamp"))
        } else {
            i64::deserialize(deserializer).map(Timestamp)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_second_precision_utc() {
        assert_eq!(
            Timestamp::from_unix(1_779_040_800).to_string(),
            "2026-05-17T18:00:00Z"
        );
    }

    /// The hand-written rendering agrees with the `time` crate's RFC 3339 over the years RFC
    /// 3339 can write, and falls back to Unix seconds outside them.
    #[test]
    fn renders_like_rfc3339_in_every_year_it_can_write() {
        let first = OffsetDateTime::new_utc(
            time::Date::from_calendar_date(0, time::Month::January, 1).unwrap(),
            time::Time::MIDNIGHT,
        )
        .unix_timestamp();
        let mut seconds = first;
        while let Ok(t) = OffsetDateTime::from_unix_timestamp(seconds) {
            let expected = t.format(&Rfc3339).unwrap();
            assert_eq!(Timestamp::from_unix(seconds).to_string(), expected);
            seconds += 7_777_777;
        }
        assert!(seconds > first + 9_999 * 365 * 86_400);
        for outside in [first - 1, seconds] {
            assert_eq!(
                Timestamp::from_unix(outside).to_string(),
                outside.to_string()
            );
        }
    }

    #[test]
    fn parses_offsets_and_fractions() {
        let t = Timestamp::parse("2026-05-17T20:00:00.750+02:00").unwrap();
        assert_eq!(t.to_string(), "2026-05-17T18:00:00Z");
        assert!(Timestamp::parse("2026-05-17").is_none());
    }

    #[test]
    fn json_and_postcard_forms() {
        let t = Timestamp::from_unix(1_779_040_800);
        assert_eq!(
            serde_json::to_string(&t).unwrap(),
            "\"2026-05-17T18:00:00Z\""
        );
        let bytes = postcard::to_allocvec(&t).unwrap();
        assert_eq!(postcard::from_bytes::<Timestamp>(&bytes).unwrap(), t);
    }
}

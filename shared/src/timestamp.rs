//! Timestamps on the per-record path: parsed once while deserialising, written without `core::fmt`.
//!
//! - [`EventTime`] reads RFC 3339 text or epoch milliseconds and keeps either the parsed time or
//!   why it is not one, so that validation reports a field error (not a JSON error) and the
//!   transform reuses the parsed value instead of parsing the text a second time.
//! - [`rfc3339`] serialises `DateTime<Utc>` exactly as chrono's serde support does
//!   (`2026-11-22T07:15:00Z`, with `.mmm`, `.uuuuuu` or `.nnnnnnnnn` only when the fraction is
//!   not zero) at a fraction of the cost; use it with `#[serde(serialize_with = ...)]`.

use std::fmt;

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Serialize, Serializer};

/// A time as a record sent it: RFC 3339 text (any offset, converted to UTC) or epoch
/// milliseconds. `Invalid` holds the reason, for a field-level validation error.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventTime {
    /// A time, in UTC.
    Valid(DateTime<Utc>),
    /// Not a time: why, for the field error.
    Invalid(String),
}

impl EventTime {
    /// Parses RFC 3339 text (surrounding whitespace ignored).
    pub fn from_text(s: &str) -> Self {
        match DateTime::parse_from_rfc3339(s.trim()) {
            Ok(t) => EventTime::Valid(t.with_timezone(&Utc)),
            Err(e) => EventTime::Invalid(format!("{s:?} is not an RFC 3339 time: {e}")),
        }
    }

    /// A time from epoch milliseconds; out of chrono's range is `Invalid`.
    pub fn from_millis(ms: i64) -> Self {
        match Utc.timestamp_millis_opt(ms).single() {
            Some(t) => EventTime::Valid(t),
            None => EventTime::Invalid(format!("{ms} is not a valid epoch-milliseconds time")),
        }
    }

    /// The parsed time, or why there is none.
    pub fn get(&self) -> Result<DateTime<Utc>, &str> {
        match self {
            EventTime::Valid(t) => Ok(*t),
            EventTime::Invalid(reason) => Err(reason),
        }
    }
}

impl<'de> serde::Deserialize<'de> for EventTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(EventTimeVisitor)
    }
}

struct EventTimeVisitor;

impl Visitor<'_> for EventTimeVisitor {
    type Value = EventTime;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an RFC 3339 time or epoch milliseconds")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<EventTime, E> {
        Ok(EventTime::from_text(v))
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<EventTime, E> {
        Ok(EventTime::from_millis(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<EventTime, E> {
        Ok(i64::try_from(v).map_or_else(
            |_| EventTime::Invalid(format!("{v} is not a valid epoch-milliseconds time")),
            EventTime::from_millis,
        ))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<EventTime, E> {
        Ok(EventTime::Invalid(format!(
            "{v} is not whole epoch milliseconds"
        )))
    }
}

/// Deserialises an [`EventTime`] from RFC 3339 text only (`#[serde(deserialize_with = ...)]`):
/// for formats such as CSV, whose fields are all text, where a field of digits must not be taken
/// for epoch milliseconds. A value that is not text is a deserialisation error.
pub fn text_only<'de, D: Deserializer<'de>>(deserializer: D) -> Result<EventTime, D::Error> {
    struct Text;
    impl Visitor<'_> for Text {
        type Value = EventTime;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC 3339 time as text")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<EventTime, E> {
            Ok(EventTime::from_text(v))
        }
    }
    deserializer.deserialize_str(Text)
}

/// Serialises a UTC time as chrono's serde support does, without the formatting machinery.
pub fn rfc3339<S: Serializer>(t: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 30];
    match format_rfc3339(t, &mut buf) {
        Some(n) => serializer.serialize_str(std::str::from_utf8(&buf[..n]).expect("ASCII digits")),
        // Years outside 0000-9999 and leap seconds: chrono's own format.
        None => t.serialize(serializer),
    }
}

/// [`rfc3339`] for optional fields (`None` serialises as `null`; pair it with
/// `skip_serializing_if = "Option::is_none"` to omit the field).
pub fn rfc3339_opt<S: Serializer>(
    t: &Option<DateTime<Utc>>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    match t {
        Some(t) => rfc3339(t, serializer),
        None => serializer.serialize_none(),
    }
}

/// Writes `YYYY-MM-DDTHH:MM:SS[.fraction]Z` into `buf`; `None` when the fast form does not apply.
fn format_rfc3339(t: &DateTime<Utc>, buf: &mut [u8; 30]) -> Option<usize> {
    let year = t.year();
    let nanos = t.timestamp_subsec_nanos();
    if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
        return None;
    }
    let mut put = |at: usize, value: u32, width: usize| {
        let mut v = value;
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
    };
    put(0, year as u32, 4);
    put(5, t.month(), 2);
    put(8, t.day(), 2);
    put(11, t.hour(), 2);
    put(14, t.minute(), 2);
    put(17, t.second(), 2);
    let mut n = 19;
    if nanos != 0 {
        let (value, width) = if nanos.is_multiple_of(1_000_000) {
            (nanos / 1_000_000, 3)
        } else if nanos.is_multiple_of(1_000) {
            (nanos / 1_000, 6)
        } else {
            (nanos, 9)
        };
        put(20, value, width);
        n = 20 + width;
    }
    buf[4] = b'-';
    buf[7] = b'-';
    buf[10] = b'T';
    buf[13] = b':';
    buf[16] = b':';
    if nanos != 0 {
        buf[19] = b'.';
    }
    buf[n] = b'Z';
    Some(n + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[derive(Serialize)]
    struct Fast(#[serde(serialize_with = "rfc3339")] DateTime<Utc>);

    fn fast(t: DateTime<Utc>) -> String {
        serde_json::to_string(&Fast(t)).unwrap()
    }

    proptest! {
        #[test]
        fn matches_chronos_serde_format(
            secs in -62_167_219_200i64..253_402_300_800,
            nanos in prop_oneof![Just(0u32), (0u32..1000).prop_map(|m| m * 1_000_000),
                                 (0u32..1_000_000).prop_map(|u| u * 1_000), 0u32..1_000_000_000],
        ) {
            let t = Utc.timestamp_opt(secs, nanos).unwrap();
            prop_assert_eq!(fast(t), serde_json::to_string(&t).unwrap());
        }
    }

    #[test]
    fn outside_the_fast_form_falls_back_to_chrono() {
        let far = Utc.with_ymd_and_hms(12_000, 1, 1, 0, 0, 0).unwrap();
        assert_eq!(fast(far), serde_json::to_string(&far).unwrap());
        let leap = DateTime::parse_from_rfc3339("2016-12-31T23:59:60.5Z")
            .unwrap()
            .with_timezone(&Utc);
        assert_eq!(fast(leap), serde_json::to_string(&leap).unwrap());
        assert_eq!(
            fast(Utc.timestamp_opt(0, 0).unwrap()),
            "\"1970-01-01T00:00:00Z\""
        );
    }

    #[test]
    fn event_time_accepts_text_and_millis_and_explains_the_rest() {
        let t: EventTime = serde_json::from_str("\"2026-11-22T08:15:00+01:00\"").unwrap();
        assert_eq!(t.get().unwrap().to_rfc3339(), "2026-11-22T07:15:00+00:00");
        let t: EventTime = serde_json::from_str("1763795700000").unwrap();
        assert_eq!(t.get().unwrap().timestamp(), 1_763_795_700);
        let t: EventTime = serde_json::from_str("\"yesterday\"").unwrap();
        assert!(t.get().unwrap_err().contains("not an RFC 3339 time"));
        let t: EventTime = serde_json::from_str("1.5").unwrap();
        assert!(t
            .get()
            .unwrap_err()
            .contains("not whole epoch milliseconds"));
        let t: EventTime = serde_json::from_str("18446744073709551615").unwrap();
        assert!(t.get().unwrap_err().contains("not a valid epoch"));
        let err = serde_json::from_str::<EventTime>("[1]").unwrap_err();
        assert!(err
            .to_string()
            .contains("RFC 3339 time or epoch milliseconds"));
    }
}

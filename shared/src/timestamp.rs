//! Timestamps on the per-record path: parsed once while deserialising, written without `core::fmt`.
//!
//! - [`EventTime`] reads RFC 3339 text or epoch milliseconds and keeps either the parsed time or
//!   why it is not one, so that validation reports a field error (not a JSON error) and the
//!   transform reuses the parsed value instead of parsing the text a second time.
//! - [`rfc3339`] serialises `DateTime<Utc>` exactly as chrono's serde support does
//!   (`2026-11-22T07:15:00Z`, with `.mmm`, `.uuuuuu` or `.nnnnnnnnn` only when the fraction is
//!   not zero) at a fraction of the cost; use it with `#[serde(serialize_with = ...)]`.
//! - Reading takes a fast path for the usual UTC form (`2026-11-22T07:15:00Z`, with up to nine
//!   fraction digits) and leaves every other form, and every error, to chrono.

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
        let s = s.trim();
        if let Some(t) = parse_utc_fast(s.as_bytes()) {
            return EventTime::Valid(t);
        }
        match DateTime::parse_from_rfc3339(s) {
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

/// `YYYY-MM-DDTHH:MM:SS[.fraction]Z` read by hand, as chrono reads it; `None` for any other
/// shape (offsets, lower-case letters, a leap second, more than nine fraction digits) and for
/// dates that do not exist, which chrono then parses or explains.
fn parse_utc_fast(b: &[u8]) -> Option<DateTime<Utc>> {
    fn digits(b: &[u8]) -> Option<u32> {
        b.iter().try_fold(0u32, |n, &c| {
            c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))
        })
    }
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let shape = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if shape.iter().any(|&(at, c)| b[at] != c) {
        return None;
    }
    let nanos = match &b[19..b.len() - 1] {
        [] => 0,
        [b'.', fraction @ ..] if (1..=9).contains(&fraction.len()) => {
            digits(fraction)? * 10u32.pow(9 - fraction.len() as u32)
        }
        _ => return None,
    };
    let (second, minute, hour) = (
        digits(&b[17..19])?,
        digits(&b[14..16])?,
        digits(&b[11..13])?,
    );
    if second > 59 {
        return None;
    }
    let date = chrono::NaiveDate::from_ymd_opt(
        digits(&b[0..4])? as i32,
        digits(&b[5..7])?,
        digits(&b[8..10])?,
    )?;
    let time = chrono::NaiveTime::from_hms_nano_opt(hour, minute, second, nanos)?;
    Some(Utc.from_utc_datetime(&date.and_time(time)))
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

/// `00` to `99` as ASCII: the date and time fields are written two digits at a time.
const TWO_DIGITS: [[u8; 2]; 100] = {
    let mut table = [[0; 2]; 100];
    let mut i = 0;
    while i < 100 {
        table[i] = [b'0' + (i / 10) as u8, b'0' + (i % 10) as u8];
        i += 1;
    }
    table
};

/// Writes `YYYY-MM-DDTHH:MM:SS[.fraction]Z` into `buf`; `None` when the fast form does not apply.
fn format_rfc3339(t: &DateTime<Utc>, buf: &mut [u8; 30]) -> Option<usize> {
    // The naive UTC value directly: `DateTime`'s own accessors apply the (zero) offset anew in
    // every call.
    let naive = t.naive_utc();
    let year = naive.year();
    let nanos = naive.nanosecond();
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
    let date = naive.date();
    let seconds = naive.num_seconds_from_midnight();
    let year = year as u32;
    for (at, value) in [
        (0, year / 100),
        (2, year % 100),
        (5, date.month()),
        (8, date.day()),
        (11, seconds / 3600),
        (14, seconds / 60 % 60),
        (17, seconds % 60),
    ] {
        buf[at..at + 2].copy_from_slice(&TWO_DIGITS[value as usize]);
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

    proptest! {
        /// The fast reading path agrees with chrono on the usual form and near it.
        #[test]
        fn reading_matches_chrono(
            text in "[0-9]{4}-[01][0-9]-[0-3][0-9][T ][0-2][0-9]:[0-6][0-9]:[0-6][0-9](\\.[0-9]{0,11})?(Z|z|[+-]0[0-9]:[0-5][0-9])?",
        ) {
            let chrono = DateTime::parse_from_rfc3339(&text).map(|t| t.with_timezone(&Utc));
            match (EventTime::from_text(&text), chrono) {
                (EventTime::Valid(ours), Ok(theirs)) => prop_assert_eq!(ours, theirs),
                (EventTime::Invalid(_), Err(_)) => {}
                (ours, theirs) => prop_assert!(false, "{text}: {ours:?} against {theirs:?}"),
            }
        }
    }

    #[test]
    fn the_usual_form_takes_the_fast_path() {
        let t = parse_utc_fast(b"2026-11-22T07:15:00.25Z").unwrap();
        assert_eq!(t.timestamp_millis(), 1_795_331_700_250);
        for other in [
            &b"2026-11-22T07:15:00+00:00"[..],
            b"2026-11-22t07:15:00Z",
            b"2016-12-31T23:59:60Z",
            b"2026-02-30T07:15:00Z",
            b"2026-11-22T07:15:00.1234567890Z",
        ] {
            assert_eq!(parse_utc_fast(other), None);
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

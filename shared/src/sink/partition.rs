//! Partitioners: the Hive-style folder (`dt=2026-11-22/hour=07`) an output lands in.
//!
//! A partitioner sees the typed output and its event time, so partitions can follow the clock
//! ([`Hourly`], [`Daily`]) or a field ([`ByField`], followed by a time partitioner). Partitions
//! only group documents: object keys stay deterministic because the processor derives them from
//! the position of each run's first document.

use chrono::{DateTime, Datelike, Timelike, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Picks the partition path of one output.
pub trait Partitioner<O>: Send + Sync {
    /// Appends the partition path (no leading or trailing slash) of `output`, whose event time
    /// is `time`, to `path`.
    fn write(&self, output: &O, time: DateTime<Utc>, path: &mut String);
}

/// `dt=YYYY-MM-DD/hour=HH` of the event time: the default for streams.
#[derive(Debug, Clone, Copy, Default)]
pub struct Hourly;

/// `dt=YYYY-MM-DD` of the event time: the default for object ingest.
#[derive(Debug, Clone, Copy, Default)]
pub struct Daily;

/// Appends `dt=YYYY-MM-DD`, and `/hour=HH` when `hour`, written into a stack buffer and
/// appended at once: this runs once per output document.
fn push_time(path: &mut String, time: DateTime<Utc>, hour: bool) {
    fn two(out: &mut [u8], v: u32) {
        out[0] = b'0' + (v / 10 % 10) as u8;
        out[1] = b'0' + (v % 10) as u8;
    }
    // The naive UTC value directly: `DateTime`'s accessors apply the (zero) offset in every call.
    let time = time.naive_utc();
    let (year, month, day) = (time.year(), time.month(), time.day());
    if !(0..=9999).contains(&year) {
        path.push_str(&format!("dt={year:04}-{month:02}-{day:02}"));
        if hour {
            path.push_str(&format!("/hour={:02}", time.hour()));
        }
        return;
    }
    let mut text = *b"dt=0000-00-00/hour=00";
    two(&mut text[3..5], year as u32 / 100);
    two(&mut text[5..7], year as u32 % 100);
    two(&mut text[8..10], month);
    two(&mut text[11..13], day);
    let len = if hour {
        two(&mut text[19..21], time.hour());
        text.len()
    } else {
        13
    };
    path.push_str(std::str::from_utf8(&text[..len]).expect("digits and ASCII"));
}

impl<O> Partitioner<O> for Daily {
    fn write(&self, _output: &O, time: DateTime<Utc>, path: &mut String) {
        push_time(path, time, false);
    }
}

impl<O> Partitioner<O> for Hourly {
    fn write(&self, _output: &O, time: DateTime<Utc>, path: &mut String) {
        push_time(path, time, true);
    }
}

/// The Hive-style partition path of an event time: `dt=YYYY-MM-DD/hour=HH`.
pub fn hourly_partition(time: DateTime<Utc>) -> String {
    let mut path = String::with_capacity(22);
    Partitioner::<()>::write(&Hourly, &(), time, &mut path);
    path
}

/// The Hive-style partition path of a day: `dt=YYYY-MM-DD`.
pub fn daily_partition(time: DateTime<Utc>) -> String {
    let mut path = String::with_capacity(13);
    push_time(&mut path, time, false);
    path
}

/// Characters kept as they are in a partition value; the rest are percent-encoded, so a value
/// can never add a folder level (`/`) or break Hive's `name=value` form.
const VALUE_SAFE: &AsciiSet = &NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.');

/// `name=<value of a field>/` followed by another partitioner's path, e.g.
/// `country=CH/dt=2026-11-22`.
pub struct ByField<F, P> {
    name: String,
    value: F,
    then: P,
}

impl<F, P> ByField<F, P> {
    /// Partitions by `value(output)` under `name`, then by `then`.
    pub fn new(name: impl Into<String>, value: F, then: P) -> Self {
        ByField {
            name: name.into(),
            value,
            then,
        }
    }
}

impl<O, F, P> Partitioner<O> for ByField<F, P>
where
    F: Fn(&O) -> String + Send + Sync,
    P: Partitioner<O>,
{
    fn write(&self, output: &O, time: DateTime<Utc>, path: &mut String) {
        let value = (self.value)(output);
        path.push_str(&self.name);
        path.push('=');
        if value.is_empty() {
            // Hive's name for a missing partition value.
            path.push_str("__HIVE_DEFAULT_PARTITION__");
        } else {
            path.extend(utf8_percent_encode(&value, VALUE_SAFE));
        }
        path.push('/');
        self.then.write(output, time, path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(y: i32, m: u32, d: u32, h: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(y, m, d, h, 4, 5).unwrap()
    }

    #[test]
    fn time_partitions_are_hive_style_and_match_chrono_formatting() {
        assert_eq!(hourly_partition(at(2026, 1, 2, 3)), "dt=2026-01-02/hour=03");
        assert_eq!(daily_partition(at(2026, 1, 2, 3)), "dt=2026-01-02");
        for (y, m, d, h) in [(1, 1, 1, 0), (999, 12, 31, 23), (2100, 6, 15, 10)] {
            let t = at(y, m, d, h);
            assert_eq!(
                hourly_partition(t),
                t.format("dt=%Y-%m-%d/hour=%H").to_string()
            );
        }
    }

    #[test]
    fn field_partitions_escape_values_and_nest_a_time_partition() {
        struct Click {
            country: String,
        }
        let p = ByField::new("country", |c: &Click| c.country.clone(), Daily);
        let mut path = String::new();
        p.write(
            &Click {
                country: "CH".into(),
            },
            at(2026, 11, 22, 7),
            &mut path,
        );
        assert_eq!(path, "country=CH/dt=2026-11-22");
        path.clear();
        p.write(
            &Click {
                country: "a/b c".into(),
            },
            at(2026, 11, 22, 7),
            &mut path,
        );
        assert_eq!(path, "country=a%2Fb%20c/dt=2026-11-22");
        path.clear();
        p.write(
            &Click {
                country: String::new(),
            },
            at(2026, 11, 22, 7),
            &mut path,
        );
        assert_eq!(path, "country=__HIVE_DEFAULT_PARTITION__/dt=2026-11-22");
    }
}

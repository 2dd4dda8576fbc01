//! Mergeable measure states, the pane and merged rows they are written as, and the one place each
//! measure's merge is defined (the SQL of [`super::sql`] follows the same table of columns).

use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{Map, Value};

pub(crate) use super::sketch::{Sketch, SKETCH_PRECISION};

/// What a measure keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum MeasureKind {
    Count,
    Sum,
    Min,
    Max,
    Stats,
    Last,
    Distinct,
}

/// One output's value for one measure.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Observed {
    /// Counted, no value (count).
    One,
    /// The output has no value for the measure.
    Nothing,
    Number(f64),
    /// A value and when it was taken (epoch milliseconds).
    Timed(f64, i64),
    /// The hash of a value counted by the sketch.
    Hash(u64),
}

/// A stable 64-bit hash for the sketch: xxh3 is specified, so panes written by any version of
/// the function merge with each other.
pub(crate) fn sketch_hash(bytes: &[u8]) -> u64 {
    xxhash_rust::xxh3::xxh3_64(bytes)
}

/// The state of one measure in one pane or merged row.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MeasureState {
    Count(u64),
    Sum(f64),
    Min(Option<f64>),
    Max(Option<f64>),
    Stats {
        count: u64,
        sum: f64,
        min: Option<f64>,
        max: Option<f64>,
    },
    /// The latest value: (when, value).
    Last(Option<(i64, f64)>),
    Distinct(Sketch),
}

fn least(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.min(y)),
        (x, y) => x.or(y),
    }
}

fn greatest(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    }
}

/// The later of two timed values; in the same millisecond, the greater value (so the result does
/// not depend on the order of merging).
fn later(a: Option<(i64, f64)>, b: Option<(i64, f64)>) -> Option<(i64, f64)> {
    match (a, b) {
        (Some(x), Some(y)) => Some(if (y.0, y.1) > (x.0, x.1) { y } else { x }),
        (x, y) => x.or(y),
    }
}

impl MeasureState {
    pub(crate) fn empty(kind: MeasureKind) -> Self {
        match kind {
            MeasureKind::Count => MeasureState::Count(0),
            MeasureKind::Sum => MeasureState::Sum(0.0),
            MeasureKind::Min => MeasureState::Min(None),
            MeasureKind::Max => MeasureState::Max(None),
            MeasureKind::Stats => MeasureState::Stats {
                count: 0,
                sum: 0.0,
                min: None,
                max: None,
            },
            MeasureKind::Last => MeasureState::Last(None),
            MeasureKind::Distinct => MeasureState::Distinct(Sketch::default()),
        }
    }

    /// Adds one output's value.
    pub(crate) fn add(&mut self, observed: Observed) {
        match (self, observed) {
            (MeasureState::Count(n), Observed::One) => *n += 1,
            (MeasureState::Sum(s), Observed::Number(v)) => *s += v,
            (MeasureState::Min(m), Observed::Number(v)) => *m = least(*m, Some(v)),
            (MeasureState::Max(m), Observed::Number(v)) => *m = greatest(*m, Some(v)),
            (
                MeasureState::Stats {
                    count,
                    sum,
                    min,
                    max,
                },
                Observed::Number(v),
            ) => {
                *count += 1;
                *sum += v;
                *min = least(*min, Some(v));
                *max = greatest(*max, Some(v));
            }
            (MeasureState::Last(l), Observed::Timed(v, at)) => *l = later(*l, Some((at, v))),
            (MeasureState::Distinct(s), Observed::Hash(h)) => s.add_hash(h),
            _ => {}
        }
    }

    /// Merges another state of the same measure: the one definition of each measure's merge.
    pub(crate) fn merge(&mut self, other: &MeasureState) {
        match (self, other) {
            (MeasureState::Count(a), MeasureState::Count(b)) => *a += b,
            (MeasureState::Sum(a), MeasureState::Sum(b)) => *a += b,
            (MeasureState::Min(a), MeasureState::Min(b)) => *a = least(*a, *b),
            (MeasureState::Max(a), MeasureState::Max(b)) => *a = greatest(*a, *b),
            (
                MeasureState::Stats {
                    count,
                    sum,
                    min,
                    max,
                },
                MeasureState::Stats {
                    count: c,
                    sum: s,
                    min: lo,
                    max: hi,
                },
            ) => {
                *count += c;
                *sum += s;
                *min = least(*min, *lo);
                *max = greatest(*max, *hi);
            }
            (MeasureState::Last(a), MeasureState::Last(b)) => *a = later(*a, *b),
            (MeasureState::Distinct(a), MeasureState::Distinct(b)) => a.merge(b),
            (a, b) => debug_assert!(false, "merging {a:?} with {b:?}"),
        }
    }

    /// Writes the pane columns of the measure `name`.
    pub(crate) fn write_pane<C: Columns>(&self, name: &str, row: &mut C) {
        match self {
            // Sparse: [register, rank] for each register in use.
            MeasureState::Distinct(sketch) => row.registers(name, "_hll", &sketch.used()),
            other => other.write_common(name, row),
        }
    }

    /// Writes the merged columns of the measure `name` (a mean for stats, an estimate for a
    /// sketch).
    pub(crate) fn write_merged<C: Columns>(&self, name: &str, row: &mut C) {
        match self {
            MeasureState::Distinct(sketch) => row.integer(name, "", Some(estimate(sketch))),
            MeasureState::Stats { count, sum, .. } => {
                self.write_common(name, row);
                let mean = (*count > 0).then(|| sum / *count as f64);
                row.number(name, "_mean", mean);
            }
            other => other.write_common(name, row),
        }
    }

    fn write_common<C: Columns>(&self, name: &str, row: &mut C) {
        match self {
            MeasureState::Count(n) => row.integer(name, "", Some(*n)),
            MeasureState::Sum(s) => row.number(name, "", Some(*s)),
            MeasureState::Min(m) | MeasureState::Max(m) => row.number(name, "", *m),
            MeasureState::Stats {
                count,
                sum,
                min,
                max,
            } => {
                row.integer(name, "_count", Some(*count));
                row.number(name, "_sum", Some(*sum));
                row.number(name, "_min", *min);
                row.number(name, "_max", *max);
            }
            MeasureState::Last(l) => {
                row.number(name, "", l.map(|(_, v)| v));
                row.signed(name, "_at", l.map(|(at, _)| at));
            }
            MeasureState::Distinct(_) => unreachable!("written by write_pane / write_merged"),
        }
    }

    /// Reads the pane columns of the measure `name`.
    pub(crate) fn read_pane(
        kind: MeasureKind,
        name: &str,
        row: &Map<String, Value>,
    ) -> Result<Self, String> {
        let num = |column: &str| -> Result<Option<f64>, String> {
            match row.get(column) {
                None | Some(Value::Null) => Ok(None),
                Some(v) => v
                    .as_f64()
                    .map(Some)
                    .ok_or_else(|| format!("{column}: not a number: {v}")),
            }
        };
        let int = |column: &str| -> Result<u64, String> {
            row.get(column)
                .and_then(Value::as_u64)
                .ok_or_else(|| format!("{column}: missing or not a count"))
        };
        Ok(match kind {
            MeasureKind::Count => MeasureState::Count(int(name)?),
            MeasureKind::Sum => MeasureState::Sum(num(name)?.unwrap_or(0.0)),
            MeasureKind::Min => MeasureState::Min(num(name)?),
            MeasureKind::Max => MeasureState::Max(num(name)?),
            MeasureKind::Stats => MeasureState::Stats {
                count: int(&format!("{name}_count"))?,
                sum: num(&format!("{name}_sum"))?.unwrap_or(0.0),
                min: num(&format!("{name}_min"))?,
                max: num(&format!("{name}_max"))?,
            },
            MeasureKind::Last => {
                let at = row.get(&format!("{name}_at")).and_then(Value::as_i64);
                MeasureState::Last(match (at, num(name)?) {
                    (Some(at), Some(v)) => Some((at, v)),
                    _ => None,
                })
            }
            MeasureKind::Distinct => {
                let column = format!("{name}_hll");
                let used = row
                    .get(&column)
                    .and_then(Value::as_array)
                    .ok_or_else(|| format!("{column}: missing or not a list"))?;
                let pairs = used
                    .iter()
                    .map(|pair| {
                        pair.as_array()
                            .and_then(|p| Some((p.first()?.as_u64()?, p.get(1)?.as_u64()?)))
                            .ok_or_else(|| format!("{column}: not a [register, rank] pair: {pair}"))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                MeasureState::Distinct(Sketch::from_used(pairs).ok_or_else(|| {
                    format!("{column}: a register beyond 4096 or a rank beyond 53")
                })?)
            }
        })
    }
}

fn number(v: Option<f64>) -> Value {
    v.and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// Where a row's columns go: a JSON map (merged rows, a window's state), or a line written
/// straight into an object's bytes ([`JsonLine`], the panes of every batch). A column is named by
/// its measure and a suffix (`_sum`, `_hll`, ...); a value that is not a finite number is null.
pub(crate) trait Columns {
    fn text(&mut self, name: &str, value: &str);
    fn number(&mut self, name: &str, suffix: &str, value: Option<f64>);
    fn integer(&mut self, name: &str, suffix: &str, value: Option<u64>);
    fn signed(&mut self, name: &str, suffix: &str, value: Option<i64>);
    fn registers(&mut self, name: &str, suffix: &str, used: &[(u16, u8)]);
}

impl Columns for Map<String, Value> {
    fn text(&mut self, name: &str, value: &str) {
        self.insert(name.to_string(), Value::from(value));
    }

    fn number(&mut self, name: &str, suffix: &str, value: Option<f64>) {
        self.insert(format!("{name}{suffix}"), number(value));
    }

    fn integer(&mut self, name: &str, suffix: &str, value: Option<u64>) {
        self.insert(
            format!("{name}{suffix}"),
            value.map_or(Value::Null, Value::from),
        );
    }

    fn signed(&mut self, name: &str, suffix: &str, value: Option<i64>) {
        self.insert(
            format!("{name}{suffix}"),
            value.map_or(Value::Null, Value::from),
        );
    }

    fn registers(&mut self, name: &str, suffix: &str, used: &[(u16, u8)]) {
        let pairs = used
            .iter()
            .map(|&(i, r)| Value::from(vec![u64::from(i), u64::from(r)]))
            .collect();
        self.insert(format!("{name}{suffix}"), Value::Array(pairs));
    }
}

/// One JSON object and its newline, written into `out` as its columns come: no map, no key or
/// value allocated per column.
pub(crate) struct JsonLine<'a> {
    out: &'a mut Vec<u8>,
    first: bool,
}

/// A name written into JSON as it is (column names are checked identifiers; keys are escaped).
fn plain(name: &str) -> bool {
    name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

impl<'a> JsonLine<'a> {
    pub(crate) fn start(out: &'a mut Vec<u8>) -> Self {
        out.push(b'{');
        JsonLine { out, first: true }
    }

    pub(crate) fn end(self) {
        self.out.extend_from_slice(b"}\n");
    }

    fn key(&mut self, name: &str, suffix: &str) {
        if !std::mem::take(&mut self.first) {
            self.out.push(b',');
        }
        if plain(name) && plain(suffix) {
            self.out.push(b'"');
            self.out.extend_from_slice(name.as_bytes());
            self.out.extend_from_slice(suffix.as_bytes());
            self.out.extend_from_slice(b"\":");
        } else {
            self.value(&format!("{name}{suffix}"));
            self.out.push(b':');
        }
    }

    fn value<V: serde::Serialize + ?Sized>(&mut self, value: &V) {
        serde_json::to_writer(&mut *self.out, value).expect("a text or number serialises");
    }

    fn or_null<V: serde::Serialize>(&mut self, value: Option<V>) {
        match value {
            Some(v) => self.value(&v),
            None => self.out.extend_from_slice(b"null"),
        }
    }
}

impl Columns for JsonLine<'_> {
    fn text(&mut self, name: &str, value: &str) {
        self.key(name, "");
        self.value(value);
    }

    fn number(&mut self, name: &str, suffix: &str, value: Option<f64>) {
        self.key(name, suffix);
        self.or_null(value.filter(|v| v.is_finite()));
    }

    fn integer(&mut self, name: &str, suffix: &str, value: Option<u64>) {
        self.key(name, suffix);
        self.or_null(value);
    }

    fn signed(&mut self, name: &str, suffix: &str, value: Option<i64>) {
        self.key(name, suffix);
        self.or_null(value);
    }

    fn registers(&mut self, name: &str, suffix: &str, used: &[(u16, u8)]) {
        self.key(name, suffix);
        self.out.push(b'[');
        for (n, &(i, r)) in used.iter().enumerate() {
            if n > 0 {
                self.out.push(b',');
            }
            self.value(&[u64::from(i), u64::from(r)]);
        }
        self.out.push(b']');
    }
}

/// The sketch's estimate: HyperLogLog's raw estimate with linear counting while registers are
/// empty and the raw estimate is small (Flajolet et al. 2007), rounded. The merge SQL computes the
/// same formula over the merged registers.
pub(crate) fn estimate(sketch: &Sketch) -> u64 {
    let registers = sketch.registers();
    let m = registers.len() as f64;
    let (mut z, mut empty) = (0.0, 0usize);
    for r in registers.iter() {
        z += (-f64::from(*r)).exp2();
        empty += usize::from(*r == 0);
    }
    let raw = ALPHA_NUMERATOR / (1.0 + ALPHA_DENOMINATOR / m) * m * m / z;
    let estimate = if raw <= 2.5 * m && empty > 0 {
        m * (m / empty as f64).ln()
    } else {
        raw
    };
    estimate.round() as u64
}

/// HyperLogLog's bias constant for m ≥ 128 registers: 0.7213 / (1 + 1.079 / m).
pub(crate) const ALPHA_NUMERATOR: f64 = 0.7213;
pub(crate) const ALPHA_DENOMINATOR: f64 = 1.079;

/// A window start or end as written in rows: RFC 3339 in UTC, fractions only when not whole.
pub(crate) fn window_time(ms: i64) -> String {
    DateTime::<Utc>::from_timestamp_millis(ms)
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// Reads a window time written by [`window_time`].
pub(crate) fn read_window_time(value: Option<&Value>) -> Result<i64, String> {
    let text = value
        .and_then(Value::as_str)
        .ok_or("window_start: missing or not text")?;
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.timestamp_millis())
        .map_err(|e| format!("window_start {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_estimate_is_exact_for_a_few_values_and_close_for_many() {
        let mut sketch = Sketch::default();
        for i in 0..20u32 {
            sketch.add_hash(sketch_hash(format!("device-{i}").as_bytes()));
        }
        assert_eq!(estimate(&sketch), 20);
        for i in 20..50_000u32 {
            sketch.add_hash(sketch_hash(format!("device-{i}").as_bytes()));
        }
        let e = estimate(&sketch) as f64;
        // Three standard errors of 1.04 / sqrt(4096).
        assert!((e - 50_000.0).abs() / 50_000.0 < 3.0 * 0.01625, "{e}");
    }

    #[test]
    fn last_values_merge_in_any_order_to_the_same_value() {
        let values = [(5, 1.0), (9, 2.0), (9, 3.0), (1, 9.0)];
        let mut forward = MeasureState::Last(None);
        let mut backward = MeasureState::Last(None);
        for (at, v) in values {
            forward.add(Observed::Timed(v, at));
        }
        for (at, v) in values.iter().rev() {
            backward.merge(&MeasureState::Last(Some((*at, *v))));
        }
        assert_eq!(forward, MeasureState::Last(Some((9, 3.0))));
        assert_eq!(forward, backward);
    }

    #[test]
    fn pane_columns_read_back_as_written() {
        let mut sketch = Sketch::default();
        sketch.add_hash(sketch_hash(b"a"));
        let states = [
            (MeasureKind::Count, MeasureState::Count(3)),
            (MeasureKind::Sum, MeasureState::Sum(2.5)),
            (MeasureKind::Min, MeasureState::Min(None)),
            (MeasureKind::Max, MeasureState::Max(Some(-1.0))),
            (
                MeasureKind::Stats,
                MeasureState::Stats {
                    count: 2,
                    sum: 3.0,
                    min: Some(1.0),
                    max: Some(2.0),
                },
            ),
            (MeasureKind::Last, MeasureState::Last(Some((17, 4.0)))),
            (MeasureKind::Distinct, MeasureState::Distinct(sketch)),
        ];
        for (kind, state) in states {
            let mut row = Map::new();
            state.write_pane("m", &mut row);
            assert_eq!(MeasureState::read_pane(kind, "m", &row), Ok(state));
        }
    }

    #[test]
    fn window_times_are_rfc3339_and_read_back() {
        assert_eq!(window_time(60_000), "1970-01-01T00:01:00Z");
        assert_eq!(window_time(1_500), "1970-01-01T00:00:01.500Z");
        let text = Value::from(window_time(1_765_100_000_000));
        assert_eq!(read_window_time(Some(&text)), Ok(1_765_100_000_000));
    }
}

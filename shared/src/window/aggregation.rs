//! The user's description of a windowed aggregate: keys, a tumbling window, measures.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::state::{MeasureKind, Observed};

type TimeFn<I> = Arc<dyn Fn(&I) -> Option<DateTime<Utc>> + Send + Sync>;

/// Which clock cuts the windows.
pub(crate) enum Clock<I> {
    /// A time inside the output (falls back to the record's arrival when it gives none).
    Event(TimeFn<I>),
    /// The record's arrival time at the source (Kinesis: approximate arrival).
    Arrival,
}

pub(crate) type KeyFn<I> = Arc<dyn Fn(&I) -> Option<String> + Send + Sync>;
type ValueFn<I> = Arc<dyn Fn(&I) -> Option<f64> + Send + Sync>;
type TimedFn<I> = Arc<dyn Fn(&I) -> Option<(f64, DateTime<Utc>)> + Send + Sync>;
type TextFn<I> = Arc<dyn Fn(&I) -> Option<String> + Send + Sync>;

/// How one measure reads its value from an output.
pub(crate) enum Extract<I> {
    /// Every output counts.
    Every,
    /// A number, when the output has one.
    Value(ValueFn<I>),
    /// A number and the time it was taken at.
    Timed(TimedFn<I>),
    /// A value whose distinct occurrences are counted (hashed).
    Text(TextFn<I>),
}

/// One named measure.
pub(crate) struct Measure<I> {
    pub(crate) name: String,
    pub(crate) kind: MeasureKind,
    pub(crate) extract: Extract<I>,
}

/// A windowed aggregate over a pipeline's outputs (`I` is the transform's output type):
/// grouping keys, a tumbling window and mergeable measures.
///
/// ```
/// use std::time::Duration;
/// use chrono::{DateTime, Utc};
/// use runnel::window::Aggregation;
///
/// struct Reading { device_id: String, ts: DateTime<Utc>, temperature_c: f64, battery: Option<f64> }
///
/// let per_device_minute = Aggregation::new("device_minute")
///     .key("device_id", |r: &Reading| Some(r.device_id.clone()))
///     .tumbling(Duration::from_secs(60))
///     .event_time(|r: &Reading| Some(r.ts))
///     .count("readings")
///     .stats("temperature_c", |r: &Reading| Some(r.temperature_c))
///     .last("battery", |r: &Reading| r.battery.map(|b| (b, r.ts)));
/// assert_eq!(per_device_minute.name(), "device_minute");
/// ```
pub struct Aggregation<I> {
    pub(crate) name: String,
    pub(crate) keys: Vec<(String, KeyFn<I>)>,
    pub(crate) size_ms: i64,
    pub(crate) clock: Clock<I>,
    pub(crate) measures: Vec<Measure<I>>,
}

// By hand: the closures are shared, so no `I: Clone` is needed.
impl<I> Clock<I> {
    /// The time an output falls at: its own, else its record's arrival, else the epoch.
    pub(crate) fn time_of(&self, output: &I, arrival: Option<DateTime<Utc>>) -> DateTime<Utc> {
        match self {
            Clock::Event(time) => time(output).or(arrival),
            Clock::Arrival => arrival,
        }
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
    }
}

/// An output's values of key columns, `None` when one is missing.
pub(crate) fn key_values<I>(keys: &[(String, KeyFn<I>)], output: &I) -> Option<Vec<String>> {
    keys.iter().map(|(_, key)| key(output)).collect()
}

impl<I> Clone for Clock<I> {
    fn clone(&self) -> Self {
        match self {
            Clock::Event(f) => Clock::Event(f.clone()),
            Clock::Arrival => Clock::Arrival,
        }
    }
}

impl<I> Clone for Extract<I> {
    fn clone(&self) -> Self {
        match self {
            Extract::Every => Extract::Every,
            Extract::Value(f) => Extract::Value(f.clone()),
            Extract::Timed(f) => Extract::Timed(f.clone()),
            Extract::Text(f) => Extract::Text(f.clone()),
        }
    }
}

impl<I> Clone for Measure<I> {
    fn clone(&self) -> Self {
        Measure {
            name: self.name.clone(),
            kind: self.kind,
            extract: self.extract.clone(),
        }
    }
}

impl<I> Clone for Aggregation<I> {
    fn clone(&self) -> Self {
        Aggregation {
            name: self.name.clone(),
            keys: self.keys.clone(),
            size_ms: self.size_ms,
            clock: self.clock.clone(),
            measures: self.measures.clone(),
        }
    }
}

impl<I: 'static> Aggregation<I> {
    /// An aggregate named `name` (the pane table's name and the default key prefix), over
    /// one-minute windows of arrival time until [`Aggregation::tumbling`] and
    /// [`Aggregation::event_time`] say otherwise.
    pub fn new(name: impl Into<String>) -> Self {
        Aggregation {
            name: name.into(),
            keys: Vec::new(),
            size_ms: 60_000,
            clock: Clock::Arrival,
            measures: Vec::new(),
        }
    }

    /// The aggregate's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Groups by a key column (several calls: several columns). An output whose key is `None`
    /// is not aggregated (it still lands).
    pub fn key(
        mut self,
        column: impl Into<String>,
        key: impl Fn(&I) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.keys.push((column.into(), Arc::new(key)));
        self
    }

    /// Tumbling windows of `size` (whole milliseconds, at least one), aligned to the Unix epoch.
    pub fn tumbling(mut self, size: Duration) -> Self {
        self.size_ms = (size.as_millis() as i64).max(1);
        self
    }

    /// Windows by a time inside the output. An output without one falls in the window of its
    /// record's arrival (the same fallback that picks its partition).
    pub fn event_time(
        mut self,
        time: impl Fn(&I) -> Option<DateTime<Utc>> + Send + Sync + 'static,
    ) -> Self {
        self.clock = Clock::Event(Arc::new(time));
        self
    }

    /// Windows by the record's arrival at the source (the default).
    pub fn arrival_time(mut self) -> Self {
        self.clock = Clock::Arrival;
        self
    }

    fn measure(mut self, name: impl Into<String>, kind: MeasureKind, extract: Extract<I>) -> Self {
        self.measures.push(Measure {
            name: name.into(),
            kind,
            extract,
        });
        self
    }

    /// The number of outputs in the window: column `name`.
    pub fn count(self, name: impl Into<String>) -> Self {
        self.measure(name, MeasureKind::Count, Extract::Every)
    }

    /// The sum of a value: column `name`.
    pub fn sum(
        self,
        name: impl Into<String>,
        value: impl Fn(&I) -> Option<f64> + Send + Sync + 'static,
    ) -> Self {
        self.measure(name, MeasureKind::Sum, Extract::Value(Arc::new(value)))
    }

    /// The least value: column `name` (null when no output had one).
    pub fn min(
        self,
        name: impl Into<String>,
        value: impl Fn(&I) -> Option<f64> + Send + Sync + 'static,
    ) -> Self {
        self.measure(name, MeasureKind::Min, Extract::Value(Arc::new(value)))
    }

    /// The greatest value: column `name` (null when no output had one).
    pub fn max(
        self,
        name: impl Into<String>,
        value: impl Fn(&I) -> Option<f64> + Send + Sync + 'static,
    ) -> Self {
        self.measure(name, MeasureKind::Max, Extract::Value(Arc::new(value)))
    }

    /// Count, sum, least, greatest and mean of a value: columns `name_count`, `name_sum`,
    /// `name_min`, `name_max` and `name_mean` (the mean is the sum over the count, so it merges
    /// exactly).
    pub fn stats(
        self,
        name: impl Into<String>,
        value: impl Fn(&I) -> Option<f64> + Send + Sync + 'static,
    ) -> Self {
        self.measure(name, MeasureKind::Stats, Extract::Value(Arc::new(value)))
    }

    /// The value taken last: column `name`, and `name_at` (epoch milliseconds) for when. Of
    /// values taken in the same millisecond, the greatest.
    pub fn last(
        self,
        name: impl Into<String>,
        value: impl Fn(&I) -> Option<(f64, DateTime<Utc>)> + Send + Sync + 'static,
    ) -> Self {
        self.measure(name, MeasureKind::Last, Extract::Timed(Arc::new(value)))
    }

    /// An estimate of how many distinct values occur: column `name`. A HyperLogLog sketch of
    /// 4,096 registers (standard error 1.04/√4096 ≈ 1.6 %), exact for a handful of values.
    pub fn distinct(
        self,
        name: impl Into<String>,
        value: impl Fn(&I) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.measure(name, MeasureKind::Distinct, Extract::Text(Arc::new(value)))
    }

    /// The window start (epoch milliseconds) of a time.
    pub(crate) fn window_of(&self, at: DateTime<Utc>) -> i64 {
        at.timestamp_millis().div_euclid(self.size_ms) * self.size_ms
    }

    /// What one output adds to its pane: its keys, window and measured values. `None` when a
    /// key is missing.
    pub(crate) fn observe(
        &self,
        output: &I,
        arrival: Option<DateTime<Utc>>,
    ) -> Option<Observation> {
        let keys = key_values(&self.keys, output)?;
        let at = self.clock.time_of(output, arrival);
        let values = self
            .measures
            .iter()
            .map(|m| match &m.extract {
                Extract::Every => Observed::One,
                Extract::Value(f) => f(output).map_or(Observed::Nothing, Observed::Number),
                Extract::Timed(f) => f(output).map_or(Observed::Nothing, |(v, t)| {
                    Observed::Timed(v, t.timestamp_millis())
                }),
                Extract::Text(f) => f(output).map_or(Observed::Nothing, |s| {
                    Observed::Hash(super::state::sketch_hash(s.as_bytes()))
                }),
            })
            .collect();
        Some(Observation {
            keys,
            window_start: self.window_of(at),
            values,
        })
    }
}

/// What one output contributes to the pane of its key and window.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Observation {
    pub(crate) keys: Vec<String>,
    pub(crate) window_start: i64,
    pub(crate) values: Vec<Observed>,
}

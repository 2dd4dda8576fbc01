//! Real-time rules: conditions checked on every output as its batch lands, not when a window
//! closes. What a match becomes, and how it is sent once: [`super::alerts`].

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::aggregation::{key_values, Clock, KeyFn};

type ValueFn<I> = Arc<dyn Fn(&I) -> Option<f64> + Send + Sync>;

/// Which side of its limit a value must be on to count.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Condition {
    /// Strictly greater than the limit.
    Above,
    /// Strictly less than the limit.
    Below,
}

/// A rule over a pipeline's outputs (`I` is the transform's output type): a value beyond a
/// limit, on one output or on `n` consecutive outputs of the same key, alerted at most once per
/// key and window.
///
/// ```
/// use std::time::Duration;
/// use runnel::window::Rule;
///
/// struct Reading { device_id: String, temperature_c: f64 }
///
/// // Three readings of one device in a row above 80 °C: one alert per device and 15 minutes.
/// let overheating = Rule::above("overheating", "temperature_c", 80.0, |r: &Reading| Some(r.temperature_c))
///     .key("device_id", |r: &Reading| Some(r.device_id.clone()))
///     .consecutive(3)
///     .once_per(Duration::from_secs(15 * 60));
/// assert_eq!(overheating.name(), "overheating");
/// ```
pub struct Rule<I> {
    pub(crate) name: String,
    pub(crate) keys: Vec<(String, KeyFn<I>)>,
    pub(crate) field: String,
    pub(crate) value: ValueFn<I>,
    pub(crate) condition: Condition,
    pub(crate) limit: f64,
    pub(crate) consecutive: u32,
    pub(crate) window_ms: i64,
    pub(crate) clock: Clock<I>,
}

impl<I> Clone for Rule<I> {
    fn clone(&self) -> Self {
        Rule {
            name: self.name.clone(),
            keys: self.keys.clone(),
            field: self.field.clone(),
            value: self.value.clone(),
            condition: self.condition,
            limit: self.limit,
            consecutive: self.consecutive,
            window_ms: self.window_ms,
            clock: self.clock.clone(),
        }
    }
}

impl<I: 'static> Rule<I> {
    fn new(
        name: impl Into<String>,
        field: impl Into<String>,
        condition: Condition,
        limit: f64,
        value: impl Fn(&I) -> Option<f64> + Send + Sync + 'static,
    ) -> Self {
        Rule {
            name: name.into(),
            keys: Vec::new(),
            field: field.into(),
            value: Arc::new(value),
            condition,
            limit,
            consecutive: 1,
            window_ms: 60 * 60_000,
            clock: Clock::Arrival,
        }
    }

    /// Matches an output whose value (`field`, as the alert names it) is above `limit`.
    pub fn above(
        name: impl Into<String>,
        field: impl Into<String>,
        limit: f64,
        value: impl Fn(&I) -> Option<f64> + Send + Sync + 'static,
    ) -> Self {
        Self::new(name, field, Condition::Above, limit, value)
    }

    /// Matches an output whose value (`field`, as the alert names it) is below `limit`.
    pub fn below(
        name: impl Into<String>,
        field: impl Into<String>,
        limit: f64,
        value: impl Fn(&I) -> Option<f64> + Send + Sync + 'static,
    ) -> Self {
        Self::new(name, field, Condition::Below, limit, value)
    }

    /// The rule's name (the alert's `rule`, and its dedupe markers' folder).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Keys the rule by a column (several calls: several columns): streaks and alerts are per
    /// key. An output whose key is `None` is not checked.
    pub fn key(
        mut self,
        column: impl Into<String>,
        key: impl Fn(&I) -> Option<String> + Send + Sync + 'static,
    ) -> Self {
        self.keys.push((column.into(), Arc::new(key)));
        self
    }

    /// Matches only after `n` outputs of one key in a row are beyond the limit (an output of
    /// the key within limits, or without the value, starts the count again). The streak is
    /// counted over the records of one invocation, in their order: a stream's batch holds a
    /// shard's records in sequence (1 when `n` is 0).
    pub fn consecutive(mut self, n: u32) -> Self {
        self.consecutive = n.max(1);
        self
    }

    /// At most one alert per key and tumbling window of `size` (default one hour): the window
    /// of the time of the output that completes the match.
    pub fn once_per(mut self, size: Duration) -> Self {
        self.window_ms = (size.as_millis() as i64).max(1);
        self
    }

    /// Windows by a time inside the output (the record's arrival when it gives none).
    pub fn event_time(
        mut self,
        time: impl Fn(&I) -> Option<DateTime<Utc>> + Send + Sync + 'static,
    ) -> Self {
        self.clock = Clock::Event(Arc::new(time));
        self
    }

    fn passes(&self, value: f64) -> bool {
        match self.condition {
            Condition::Above => value > self.limit,
            Condition::Below => value < self.limit,
        }
    }

    /// What the rule sees of one output, `None` when a key is missing.
    fn probe(&self, rule: usize, output: &I, arrival: Option<DateTime<Utc>>) -> Option<Probe> {
        Some(Probe {
            rule,
            keys: key_values(&self.keys, output)?,
            value: (self.value)(output).filter(|v| self.passes(*v)),
            at_ms: self.clock.time_of(output, arrival).timestamp_millis(),
        })
    }
}

/// What one output shows one rule: its key, its value when beyond the limit, its time.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Probe {
    rule: usize,
    keys: Vec<String>,
    value: Option<f64>,
    at_ms: i64,
}

/// A rule that matched: which, for which key and window, and the output that completed it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Match {
    pub(crate) rule: usize,
    pub(crate) keys: Vec<String>,
    pub(crate) window_start: i64,
    pub(crate) value: f64,
    pub(crate) at_ms: i64,
    /// The record (its place in the batch) of the output that completed the match.
    pub(crate) record: usize,
}

/// A pipeline's rules, checked together on each output.
pub(crate) struct Rules<I> {
    pub(crate) rules: Vec<Rule<I>>,
}

impl<I: 'static> Rules<I> {
    /// What every rule sees of one output (none when no rule applies to it).
    pub(crate) fn probe(&self, output: &I, arrival: Option<DateTime<Utc>>) -> Vec<Probe> {
        self.rules
            .iter()
            .enumerate()
            .filter_map(|(i, rule)| rule.probe(i, output, arrival))
            .collect()
    }

    /// The matches in a batch's probes, given in output order with their records: one per rule,
    /// key and window, at the output that first completes the streak.
    pub(crate) fn evaluate<'a>(
        &self,
        probes: impl IntoIterator<Item = (usize, &'a [Probe])>,
    ) -> Vec<Match> {
        let mut streaks: HashMap<(usize, &'a [String]), u32> = HashMap::new();
        let mut matched: HashSet<(usize, &'a [String], i64)> = HashSet::new();
        let mut matches = Vec::new();
        for (record, probes) in probes {
            for probe in probes {
                let rule = &self.rules[probe.rule];
                let streak = streaks
                    .entry((probe.rule, probe.keys.as_slice()))
                    .or_default();
                let Some(value) = probe.value else {
                    *streak = 0;
                    continue;
                };
                *streak += 1;
                if *streak < rule.consecutive {
                    continue;
                }
                let window_start = probe.at_ms.div_euclid(rule.window_ms) * rule.window_ms;
                if matched.insert((probe.rule, probe.keys.as_slice(), window_start)) {
                    matches.push(Match {
                        rule: probe.rule,
                        keys: probe.keys.clone(),
                        window_start,
                        value,
                        at_ms: probe.at_ms,
                        record,
                    });
                }
            }
        }
        matches
    }

    /// Refuses rules whose names could not name a folder or that repeat.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut seen = HashSet::new();
        for rule in &self.rules {
            let usable = !rule.name.is_empty()
                && rule
                    .name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
            if !usable {
                return Err(format!(
                    "rule name {:?}: use letters, digits, '_' or '-' (it names the rule's folder)",
                    rule.name
                ));
            }
            if !seen.insert(rule.name.as_str()) {
                return Err(format!("two rules are named {:?}", rule.name));
            }
            if !rule.limit.is_finite() {
                return Err(format!("rule {:?}: the limit is not a number", rule.name));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Reading {
        device: &'static str,
        t: Option<f64>,
        minute: i64,
    }

    fn reading(device: &'static str, t: Option<f64>, minute: i64) -> Reading {
        Reading { device, t, minute }
    }

    fn rules(consecutive: u32) -> Rules<Reading> {
        Rules {
            rules: vec![Rule::above("hot", "t", 80.0, |r: &Reading| r.t)
                .key("device", |r: &Reading| Some(r.device.to_string()))
                .event_time(|r: &Reading| DateTime::from_timestamp(r.minute * 60, 0))
                .consecutive(consecutive)
                .once_per(Duration::from_secs(600))],
        }
    }

    fn matches(rules: &Rules<Reading>, readings: &[Reading]) -> Vec<(String, i64, usize)> {
        let probes: Vec<Vec<Probe>> = readings.iter().map(|r| rules.probe(r, None)).collect();
        rules
            .evaluate(probes.iter().enumerate().map(|(i, p)| (i, p.as_slice())))
            .into_iter()
            .map(|m| (m.keys.join("/"), m.window_start / 60_000, m.record))
            .collect()
    }

    #[test]
    fn a_threshold_matches_once_per_key_and_window() {
        let readings = [
            reading("a", Some(81.0), 1),
            reading("a", Some(90.0), 2),
            reading("b", Some(80.0), 3),
            reading("b", Some(85.0), 4),
            reading("a", Some(95.0), 12),
        ];
        assert_eq!(
            matches(&rules(1), &readings),
            vec![("a".into(), 0, 0), ("b".into(), 0, 3), ("a".into(), 10, 4)]
        );
    }

    #[test]
    fn a_streak_needs_consecutive_readings_of_the_same_key() {
        let readings = [
            reading("a", Some(81.0), 1),
            reading("b", Some(99.0), 1),
            reading("a", Some(82.0), 2),
            reading("a", Some(70.0), 3),
            reading("a", Some(83.0), 4),
            reading("a", None, 4),
            reading("a", Some(84.0), 5),
            reading("a", Some(85.0), 6),
            reading("a", Some(86.0), 7),
        ];
        // The streak of three ends at the ninth reading; b never has three.
        assert_eq!(matches(&rules(3), &readings), vec![("a".into(), 0, 8)]);
    }

    #[test]
    fn below_limits_and_bad_names() {
        let low = Rules {
            rules: vec![Rule::below("low", "t", 10.0, |r: &Reading| r.t)],
        };
        assert_eq!(
            matches(
                &low,
                &[reading("a", Some(10.0), 0), reading("a", Some(9.5), 0)]
            )
            .len(),
            1
        );
        let bad = Rules {
            rules: vec![Rule::below("a b", "t", 10.0, |r: &Reading| r.t)],
        };
        assert!(bad.check().unwrap_err().contains("rule name"));
        let twice = Rules {
            rules: vec![rules(1).rules.remove(0), rules(2).rules.remove(0)],
        };
        assert!(twice.check().unwrap_err().contains("two rules"));
    }
}

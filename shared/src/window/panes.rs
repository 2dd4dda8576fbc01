//! Panes: the partial aggregates of one run, written under the run's own key, and their merge.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::sink::{Encoder, Location, NdjsonGzip, PutObject};

use super::aggregation::{Aggregation, Observation};
use super::state::{read_window_time, window_time, Columns, JsonLine, MeasureState};

/// A pane or merged row that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("pane row {row}: {reason}")]
pub struct PaneError {
    /// The row's place among the rows given.
    pub row: usize,
    /// What is wrong with it.
    pub reason: String,
}

/// Keys and window start: what one pane row, and one merged row, is about.
type Group = (Vec<String>, i64);

/// The measures of each key and window, folded from outputs or merged from panes.
pub(crate) struct Folded<'a, I> {
    aggregation: &'a Aggregation<I>,
    groups: BTreeMap<Group, Vec<MeasureState>>,
}

impl<'a, I: 'static> Folded<'a, I> {
    pub(crate) fn new(aggregation: &'a Aggregation<I>) -> Self {
        Folded {
            aggregation,
            groups: BTreeMap::new(),
        }
    }

    fn states(&mut self, keys: &[String], window_start: i64) -> &mut Vec<MeasureState> {
        let measures = &self.aggregation.measures;
        self.groups
            .entry((keys.to_vec(), window_start))
            .or_insert_with(|| {
                measures
                    .iter()
                    .map(|m| MeasureState::empty(m.kind))
                    .collect()
            })
    }

    /// Every key and window with its measures, in key and window order.
    fn each(&self) -> impl Iterator<Item = (&[String], i64, &[MeasureState])> {
        self.groups
            .iter()
            .map(|((keys, start), states)| (keys.as_slice(), *start, states.as_slice()))
    }

    fn add(&mut self, observation: &Observation) {
        self.add_in(observation.window_start, observation);
    }

    /// Adds an output's values to the window starting at `window_start` (a tumbling window
    /// Lambda cut), whatever window the aggregation's clock would give it.
    pub(crate) fn add_in(&mut self, window_start: i64, observation: &Observation) {
        let states = self.states(&observation.keys, window_start);
        for (state, value) in states.iter_mut().zip(&observation.values) {
            state.add(*value);
        }
    }

    fn merge(&mut self, keys: &[String], window_start: i64, pane: &[MeasureState]) {
        for (state, other) in self.states(keys, window_start).iter_mut().zip(pane) {
            state.merge(other);
        }
    }

    /// One row per group, in key and window order; `pane` rows keep sketches whole and carry
    /// the pane's id, merged rows carry means and estimates.
    pub(crate) fn aggregation(&self) -> &'a Aggregation<I> {
        self.aggregation
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub(crate) fn rows(&self, pane_id: Option<&str>) -> Vec<Map<String, Value>> {
        self.each()
            .map(|(keys, start, states)| {
                let mut row = Map::new();
                let window = self.window_times(start);
                self.write_row(keys, &window, states, pane_id, &mut row);
                row
            })
            .collect()
    }

    /// The pane rows as NDJSON into `out`: the same columns as [`Folded::rows`], written
    /// straight into the bytes (a test checks they read back as the rows). Each window's times
    /// are formatted once.
    pub(crate) fn write_pane_lines(&self, pane_id: &str, out: &mut Vec<u8>) {
        let mut windows: BTreeMap<i64, (String, String)> = BTreeMap::new();
        for (keys, start, states) in self.each() {
            let window = windows
                .entry(start)
                .or_insert_with(|| self.window_times(start));
            let mut line = JsonLine::start(out);
            self.write_row(keys, window, states, Some(pane_id), &mut line);
            line.end();
        }
    }

    fn window_times(&self, start: i64) -> (String, String) {
        (
            window_time(start),
            window_time(start + self.aggregation.size_ms),
        )
    }

    /// One row: the keys, the window, each measure's columns, and for a pane its id.
    fn write_row<C: Columns>(
        &self,
        keys: &[String],
        (start, end): &(String, String),
        states: &[MeasureState],
        pane_id: Option<&str>,
        row: &mut C,
    ) {
        let aggregation = self.aggregation;
        for ((column, _), key) in aggregation.keys.iter().zip(keys) {
            row.text(column, key);
        }
        row.text("window_start", start);
        row.text("window_end", end);
        for (measure, state) in aggregation.measures.iter().zip(states) {
            match pane_id {
                Some(_) => state.write_pane(&measure.name, row),
                None => state.write_merged(&measure.name, row),
            }
        }
        if let Some(id) = pane_id {
            row.text("_pane", id);
        }
    }
}

impl<I: 'static> Aggregation<I> {
    /// The pane rows of a run's observations, as NDJSON.
    pub(crate) fn pane_lines<'o>(
        &self,
        observations: impl Iterator<Item = &'o Observation>,
        pane_id: &str,
    ) -> Vec<u8> {
        let mut folded = Folded::new(self);
        for observation in observations {
            folded.add(observation);
        }
        let mut lines = Vec::new();
        folded.write_pane_lines(pane_id, &mut lines);
        lines
    }

    /// Merges pane rows (as the pane objects hold them, from any number of runs, shards,
    /// batches and deliveries) into one row per key and window: what the merge SQL
    /// ([`Aggregation::merge_sql`]) answers, computed here.
    pub fn merge_panes<'r>(
        &self,
        rows: impl IntoIterator<Item = &'r Value>,
    ) -> Result<Vec<Map<String, Value>>, PaneError> {
        let mut merged = Folded::new(self);
        merged.merge_rows(rows)?;
        Ok(merged.rows(None))
    }
}

impl<I: 'static> Folded<'_, I> {
    /// Merges pane rows into the groups.
    pub(crate) fn merge_rows<'r>(
        &mut self,
        rows: impl IntoIterator<Item = &'r Value>,
    ) -> Result<(), PaneError> {
        let aggregation = self.aggregation;
        for (n, row) in rows.into_iter().enumerate() {
            let fail = |reason: String| PaneError { row: n, reason };
            let row = row
                .as_object()
                .ok_or_else(|| fail("not a JSON object".into()))?;
            let keys = aggregation
                .keys
                .iter()
                .map(|(column, _)| {
                    row.get(column)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| fail(format!("{column}: missing or not text")))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let start = read_window_time(row.get("window_start")).map_err(fail)?;
            let states = aggregation
                .measures
                .iter()
                .map(|m| MeasureState::read_pane(m.kind, &m.name, row).map_err(fail))
                .collect::<Result<Vec<_>, _>>()?;
            self.merge(&keys, start, &states);
        }
        Ok(())
    }
}

impl<I: 'static> Aggregation<I> {
    /// The merged rows of outputs aggregated directly, with their arrival times: what merging
    /// the panes of any deliveries of exactly these outputs must give.
    pub fn aggregate_directly<'o>(
        &self,
        outputs: impl IntoIterator<Item = (&'o I, Option<chrono::DateTime<chrono::Utc>>)>,
    ) -> Vec<Map<String, Value>> {
        let mut folded = Folded::new(self);
        for (output, arrival) in outputs {
            if let Some(observation) = self.observe(output, arrival) {
                folded.add(&observation);
            }
        }
        folded.rows(None)
    }
}

/// Where a pipeline's panes go, and how they are written.
pub struct PaneSink<O> {
    pub(crate) aggregation: Aggregation<O>,
    pub(crate) location: Location,
    encoder: NdjsonGzip,
    /// Whether each run writes a pane object; otherwise the processor hands the observations
    /// back in its outcome (a tumbling window's state folds them).
    pub(crate) per_run: bool,
    pub(crate) state_limit: usize,
}

impl<O: 'static> PaneSink<O> {
    /// Panes of `aggregation` under `location`.
    pub fn new(aggregation: Aggregation<O>, location: Location) -> Self {
        PaneSink {
            aggregation,
            location,
            encoder: NdjsonGzip::default(),
            per_run: true,
            // Set with the window state it bounds (in_window_state).
            state_limit: 0,
        }
    }

    /// The same aggregation kept in a tumbling window's state instead of per-run panes
    /// (Lambda tumbling windows, [`Aggregation::tumbling`](crate::window::Aggregation::tumbling)): its rows are written under `location` when the window
    /// ends, or when the state would pass `state_limit` bytes
    /// ([`STATE_LIMIT`](crate::window::tumbling::STATE_LIMIT) by default).
    pub fn in_window_state(mut self, state_limit: usize) -> Self {
        self.per_run = false;
        self.state_limit = state_limit;
        self
    }

    /// The aggregation.
    pub fn aggregation(&self) -> &Aggregation<O> {
        &self.aggregation
    }

    /// Where the panes go.
    pub fn location(&self) -> &Location {
        &self.location
    }

    /// The pane objects' file name ending.
    pub(crate) fn extension(&self) -> &'static str {
        self.encoder.extension()
    }

    /// The pane object of one run: `name` is the run's object name (made with
    /// [`PaneSink::extension`]), `pane_id` the id of its first document. Written for every run of
    /// curated output, even one with nothing to aggregate, so that a re-delivered run that
    /// reaches fewer records overwrites what a longer one wrote under the same key.
    pub(crate) fn put<'o>(
        &self,
        name: &str,
        pane_id: &str,
        observations: impl Iterator<Item = &'o Observation>,
    ) -> Result<PutObject, String> {
        self.put_lines(name, self.aggregation.pane_lines(observations, pane_id))
    }

    /// The object of rows already folded (a tumbling window's), under `name`.
    pub(crate) fn put_rows(
        &self,
        name: &str,
        rows: Vec<Map<String, Value>>,
    ) -> Result<PutObject, String> {
        let mut lines = Vec::new();
        for row in rows {
            serde_json::to_writer(&mut lines, &row).expect("a map of JSON values serialises");
            lines.push(b'\n');
        }
        self.put_lines(name, lines)
    }

    fn put_lines(&self, name: &str, lines: Vec<u8>) -> Result<PutObject, String> {
        let key = self.location.key(name);
        let body = self
            .encoder
            .encode(&lines)
            .map_err(|e| format!("encode s3://{}/{key}: {e}", self.location.bucket))?;
        Ok(PutObject {
            bucket: self.location.bucket.clone(),
            key,
            body,
            content_type: self.encoder.content_type(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{DateTime, Utc};
    use proptest::prelude::*;

    struct Reading {
        device: String,
        at: DateTime<Utc>,
        value: Option<f64>,
        label: String,
    }

    fn aggregation() -> Aggregation<Reading> {
        Aggregation::new("readings")
            .key("device", |r: &Reading| Some(r.device.clone()))
            .tumbling(std::time::Duration::from_secs(60))
            .event_time(|r: &Reading| Some(r.at))
            .count("n")
            .sum("total", |r: &Reading| r.value)
            .stats("value", |r: &Reading| r.value)
            .min("low", |r: &Reading| r.value)
            .last("latest", |r: &Reading| r.value.map(|v| (v, r.at)))
            .distinct("labels", |r: &Reading| Some(r.label.clone()))
    }

    proptest! {
        /// The pane lines written straight into bytes read back as the rows built as maps
        /// written as JSON:
        /// keys needing escapes, missing and non-finite values, many windows.
        #[test]
        fn pane_lines_read_back_as_the_pane_rows(
            readings in proptest::collection::vec(
                ("[a\"\\\\é\n]{0,3}", 0i64..600_000, proptest::option::of(any::<f64>()), "[a-c]{1,2}"),
                0..60,
            ),
        ) {
            let aggregation = aggregation();
            let mut folded = Folded::new(&aggregation);
            for (device, ms, value, label) in readings {
                let reading = Reading {
                    device,
                    at: DateTime::<Utc>::from_timestamp_millis(ms).unwrap(),
                    value,
                    label,
                };
                if let Some(observation) = aggregation.observe(&reading, None) {
                    folded.add(&observation);
                }
            }
            let mut lines = Vec::new();
            folded.write_pane_lines("shard:1:0", &mut lines);
            let read: Vec<Map<String, Value>> = lines
                .split(|b| *b == b'\n')
                .filter(|l| !l.is_empty())
                .map(|l| serde_json::from_slice(l).unwrap())
                .collect();
            // Both through text, as the maps were written before (serde_json reads a float back
            // to within an ulp without its float_roundtrip feature).
            let rows: Vec<Map<String, Value>> = folded
                .rows(Some("shard:1:0"))
                .iter()
                .map(|row| serde_json::from_slice(&serde_json::to_vec(row).unwrap()).unwrap())
                .collect();
            prop_assert_eq!(read, rows);
        }
    }
}

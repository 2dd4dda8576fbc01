//! Lambda's tumbling windows (Kinesis and DynamoDB Streams mappings with
//! `TumblingWindowInSeconds`): the aggregate kept in the window's state from invocation to
//! invocation, and one set of rows per shard and window written when the window ends.
//!
//! # The state
//! Lambda hands each invocation the state the last successful one answered with (a map of
//! strings, at most 1 MB per shard) and discards the state of a failed one. Runnel keeps one
//! entry, `runnel`: the aggregation's name, the window, the position of the first and of the
//! last record counted, and the partial rows (the pane format). Records are processed in order
//! and only those before the first transient failure are counted, so the records Lambda
//! re-delivers after a partial batch response are exactly those not yet counted; a record at or
//! before the last one counted (a re-delivery of an already counted record) is landed again but
//! never counted twice.
//!
//! # The rows
//! When Lambda says the window is over (`isFinalInvokeForWindow`) or ended early
//! (`isWindowTerminatedEarly`, state over 1 MB), the rows are written under
//! `<aggregates>/<aggregation>/dt=…/hour=…/<shard>-<window start ms>-<first position>.json.gz`:
//! a retried final invocation writes the same key. The state is kept well under Lambda's bound
//! ([`STATE_LIMIT`]): past it, the rows so far are written under the key of their first record
//! and the state starts afresh within the same window, so the window is never cut by Lambda. A
//! window's rows are pane rows: the aggregation's merge query and `merge_panes` join the parts of
//! a window and the shards of a stream. A shard that closes (resharding) ends its windows; its
//! children start their own, so a window's rows may come from parent and child shards.
//!
//! # A state that cannot be used
//! A state that does not parse (another program's, or one a deployment with another aggregate
//! wrote mid-window), names another aggregation or another window, or holds rows that do not
//! read, is never used and never fails the shard: it is written to quarantine whole (kind
//! `window_state`, with the reason) and the window goes on with a fresh state, so the rows of
//! that window count only what came after it; the quarantine entry holds what came before.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::aggregation::{Aggregation, Observation};
use super::panes::Folded;

/// The state's one entry.
pub const STATE_KEY: &str = "runnel";
/// Most bytes the state's entry may take, escaped as it goes into the response: well under
/// Lambda's 1 MB per shard.
pub const STATE_LIMIT: usize = 700_000;

/// The state as Runnel writes it.
#[derive(Debug, Serialize, Deserialize)]
struct Stored {
    /// Format version.
    v: u32,
    aggregation: String,
    /// Window start, epoch milliseconds.
    window: i64,
    first: Option<String>,
    last: Option<String>,
    rows: Vec<Value>,
}

/// The aggregate of one shard's window so far.
pub(crate) struct WindowState<'a, I> {
    folded: Folded<'a, I>,
    window: i64,
    /// Position of the first record counted since the state was last written out.
    pub(crate) first: Option<String>,
    /// Position of the last record counted in this window.
    pub(crate) last: Option<String>,
}

/// Orders positions as the numbers they are (Kinesis and DynamoDB sequence numbers are decimal
/// strings of up to 128 digits).
pub(crate) fn position_after(position: &str, last: Option<&str>) -> bool {
    match last {
        None => true,
        Some(last) => {
            let (p, l) = (
                position.trim_start_matches('0'),
                last.trim_start_matches('0'),
            );
            (p.len(), p) > (l.len(), l)
        }
    }
}

impl<'a, I: 'static> WindowState<'a, I> {
    /// A fresh state for the window starting at `window` (epoch milliseconds).
    pub(crate) fn fresh(aggregation: &'a Aggregation<I>, window: i64) -> Self {
        WindowState {
            folded: Folded::new(aggregation),
            window,
            first: None,
            last: None,
        }
    }

    /// Reads the state Lambda handed over; an empty map is a fresh window.
    pub(crate) fn read(
        aggregation: &'a Aggregation<I>,
        window: i64,
        state: &HashMap<String, String>,
    ) -> Result<Self, String> {
        let mut fresh = Self::fresh(aggregation, window);
        if state.is_empty() {
            return Ok(fresh);
        }
        let text = state.get(STATE_KEY).ok_or_else(|| {
            let mut keys: Vec<&String> = state.keys().collect();
            keys.sort();
            format!("the state has no {STATE_KEY:?} entry (keys {keys:?})")
        })?;
        let stored: Stored =
            serde_json::from_str(text).map_err(|e| format!("the state does not parse: {e}"))?;
        if stored.v != 1 {
            return Err(format!("state format {} is not 1", stored.v));
        }
        if stored.aggregation != aggregation.name {
            return Err(format!(
                "the state is aggregation {:?}'s, not {:?}'s",
                stored.aggregation, aggregation.name
            ));
        }
        if stored.window != window {
            return Err(format!(
                "the state is of the window starting {} ms, not {window} ms",
                stored.window
            ));
        }
        fresh
            .folded
            .merge_rows(&stored.rows)
            .map_err(|e| format!("the state's rows do not read: {e}"))?;
        fresh.first = stored.first;
        fresh.last = stored.last;
        Ok(fresh)
    }

    /// Counts one record's outputs, unless the record was counted before. Records come in
    /// order; `position` is the record's.
    pub(crate) fn count<'o>(
        &mut self,
        position: &str,
        observations: impl Iterator<Item = &'o Observation>,
    ) {
        if !position_after(position, self.last.as_deref()) {
            return;
        }
        for observation in observations {
            self.folded.add_in(self.window, observation);
        }
        self.first.get_or_insert_with(|| position.to_string());
        self.last = Some(position.to_string());
    }

    /// Whether anything was counted since the state was last written out.
    pub(crate) fn has_rows(&self) -> bool {
        self.first.is_some() || !self.folded.is_empty()
    }

    /// The rows to write, with their pane id (`shard:window:first`), and the key name
    /// (`dt=…/hour=…/<shard>-<window>-<first>.<extension>`).
    pub(crate) fn rows(&self, shard: &str, extension: &str) -> (String, Vec<Map<String, Value>>) {
        let first = self.first.as_deref().unwrap_or("0");
        let start = DateTime::<Utc>::from_timestamp_millis(self.window).unwrap_or_default();
        let name = format!(
            "{}/{shard}-{}-{first}.{extension}",
            crate::sink::hourly_partition(start),
            self.window
        );
        let id = format!("{shard}:{}:{first}", self.window);
        (name, self.folded.rows(Some(&id)))
    }

    /// Starts afresh within the same window after its rows were written out; the last position
    /// stays, so nothing is counted twice.
    pub(crate) fn written_out(&mut self) {
        self.folded = Folded::new(self.folded.aggregation());
        self.first = None;
    }

    /// The state to answer with.
    pub(crate) fn to_map(&self) -> HashMap<String, String> {
        let stored = Stored {
            v: 1,
            aggregation: self.folded.aggregation().name.clone(),
            window: self.window,
            first: self.first.clone(),
            last: self.last.clone(),
            rows: self
                .folded
                .rows(Some(""))
                .into_iter()
                .map(Value::Object)
                .collect(),
        };
        let text = serde_json::to_string(&stored).expect("a state of JSON values serialises");
        HashMap::from([(STATE_KEY.to_string(), text)])
    }

    /// How many bytes the state takes in the response (escaped).
    pub(crate) fn size(map: &HashMap<String, String>) -> usize {
        serde_json::to_string(map).map_or(usize::MAX, |s| s.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn aggregation() -> Aggregation<(String, f64)> {
        Aggregation::new("t")
            .key("k", |r: &(String, f64)| Some(r.0.clone()))
            .count("n")
            .stats("v", |r: &(String, f64)| Some(r.1))
    }

    fn observed(a: &Aggregation<(String, f64)>, k: &str, v: f64) -> Observation {
        a.observe(&(k.to_string(), v), None).unwrap()
    }

    #[test]
    fn positions_compare_as_numbers() {
        assert!(position_after("10", Some("9")));
        assert!(!position_after("9", Some("10")));
        assert!(!position_after("10", Some("10")));
        assert!(position_after("1", None));
        assert!(position_after("0010", Some("9")));
    }

    #[test]
    fn a_state_reads_back_as_it_was_answered_and_counts_a_record_once() {
        let a = aggregation();
        let mut state = WindowState::fresh(&a, 60_000);
        state.count("5", [observed(&a, "x", 1.0)].iter());
        state.count("5", [observed(&a, "x", 1.0)].iter());
        state.count("7", [observed(&a, "x", 2.0), observed(&a, "y", 3.0)].iter());
        let map = state.to_map();
        let mut back = WindowState::read(&a, 60_000, &map).unwrap();
        back.count("6", [observed(&a, "x", 9.0)].iter());
        assert_eq!(
            (back.first.as_deref(), back.last.as_deref()),
            (Some("5"), Some("7"))
        );
        let (name, rows) = back.rows("shardId-1", "json.gz");
        assert_eq!(name, "dt=1970-01-01/hour=00/shardId-1-60000-5.json.gz");
        let rows: Vec<Value> = rows.into_iter().map(Value::Object).collect();
        let merged = a.merge_panes(&rows).unwrap();
        assert_eq!(merged[0]["n"], 2);
        assert_eq!(merged[0]["v_sum"], 3.0);
        assert_eq!(merged[1]["k"], "y");
    }

    #[test]
    fn a_state_that_cannot_be_used_says_why() {
        let a = aggregation();
        let read = |pairs: &[(&str, &str)]| {
            let map = pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            WindowState::read(&a, 60_000, &map).err().unwrap()
        };
        assert!(read(&[("count", "3")]).contains("no \"runnel\" entry"));
        assert!(read(&[(STATE_KEY, "{")]).contains("does not parse"));
        let theirs_aggregation = Aggregation::<(String, f64)>::new("u").count("n");
        let other = WindowState::fresh(&theirs_aggregation, 60_000);
        let map = other.to_map();
        let theirs = WindowState::read(&a, 60_000, &map).err().unwrap();
        assert!(theirs.contains("aggregation \"u\"'s"), "{theirs}");
        let old_window = WindowState::fresh(&a, 0).to_map();
        assert!(WindowState::read(&a, 60_000, &old_window)
            .err()
            .unwrap()
            .contains("window starting 0 ms"));
        let mut changed = WindowState::fresh(&a, 60_000);
        changed.count("1", [observed(&a, "x", 1.0)].iter());
        let text = changed.to_map()[STATE_KEY].replace("v_count", "v_total");
        let broken = read(&[(STATE_KEY, text.as_str())]);
        assert!(
            broken.contains("rows do not read") && broken.contains("v_count"),
            "{broken}"
        );
    }
}

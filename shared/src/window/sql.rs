//! The pane table's columns and the SQL that merges its rows: the same merges as
//! [`super::state::MeasureState::merge`], written for Athena (Trino) and the DuckDB behind the
//! emulator's Athena alike.

use super::aggregation::Aggregation;
use super::state::{MeasureKind, ALPHA_DENOMINATOR, ALPHA_NUMERATOR, SKETCH_PRECISION};

/// Why an aggregation cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("aggregation {name:?}: {reason}")]
pub struct AggregationError {
    /// The aggregation's name.
    pub name: String,
    /// What is wrong.
    pub reason: String,
}

fn is_column_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

impl<I: 'static> Aggregation<I> {
    /// Checks that every column name is a plain lower-case SQL name (Glue and Athena fold names
    /// to lower case), that no two columns share a name, and that there is a measure.
    pub fn check(&self) -> Result<(), AggregationError> {
        let fail = |reason: String| AggregationError {
            name: self.name.clone(),
            reason,
        };
        if !is_column_name(&self.name) {
            return Err(fail(
                "the name must be lower-case letters, digits and _ (it names the table)".into(),
            ));
        }
        if self.measures.is_empty() {
            return Err(fail("no measure: add count, sum, stats, ...".into()));
        }
        let mut seen = std::collections::BTreeSet::new();
        for (column, _) in self.pane_columns() {
            if !is_column_name(&column) {
                return Err(fail(format!(
                    "column {column:?} is not lower-case letters, digits and _"
                )));
            }
            if !seen.insert(column.clone()) {
                return Err(fail(format!("two columns are named {column:?}")));
            }
        }
        Ok(())
    }

    /// The pane table's columns and their Hive types, in row order (for a Glue table or an
    /// Athena `CREATE TABLE`).
    pub fn pane_columns(&self) -> Vec<(String, &'static str)> {
        let mut columns: Vec<(String, &'static str)> = self
            .keys
            .iter()
            .map(|(column, _)| (column.clone(), "string"))
            .collect();
        columns.push(("window_start".into(), "string"));
        columns.push(("window_end".into(), "string"));
        for m in &self.measures {
            let n = &m.name;
            match m.kind {
                MeasureKind::Count => columns.push((n.clone(), "bigint")),
                MeasureKind::Sum | MeasureKind::Min | MeasureKind::Max => {
                    columns.push((n.clone(), "double"))
                }
                MeasureKind::Stats => {
                    columns.push((format!("{n}_count"), "bigint"));
                    for part in ["sum", "min", "max"] {
                        columns.push((format!("{n}_{part}"), "double"));
                    }
                }
                MeasureKind::Last => {
                    columns.push((n.clone(), "double"));
                    columns.push((format!("{n}_at"), "bigint"));
                }
                MeasureKind::Distinct => columns.push((format!("{n}_hll"), "array<array<bigint>>")),
            }
        }
        columns.push(("_pane".into(), "string"));
        columns
    }

    /// A query over the pane table `table` that answers one row per key and window, with the
    /// columns [`Aggregation::merge_panes`] gives: keys, `window_start`, `window_end`, then each
    /// measure's merged columns. An Athena view on AWS; run as a query where views are missing.
    pub fn merge_sql(&self, table: &str) -> String {
        let keys: Vec<&str> = self.keys.iter().map(|(c, _)| c.as_str()).collect();
        let group = |extra: &[&str]| {
            keys.iter()
                .copied()
                .chain(extra.iter().copied())
                .collect::<Vec<_>>()
                .join(", ")
        };
        let mut merged = vec![group(&["window_start", "window_end"])];
        let mut sketches = Vec::new();
        for m in &self.measures {
            let n = &m.name;
            match m.kind {
                MeasureKind::Count | MeasureKind::Sum => merged.push(format!("sum({n}) AS {n}")),
                MeasureKind::Min => merged.push(format!("min({n}) AS {n}")),
                MeasureKind::Max => merged.push(format!("max({n}) AS {n}")),
                MeasureKind::Stats => {
                    merged.push(format!("sum({n}_count) AS {n}_count"));
                    merged.push(format!("sum({n}_sum) AS {n}_sum"));
                    merged.push(format!("min({n}_min) AS {n}_min"));
                    merged.push(format!("max({n}_max) AS {n}_max"));
                    merged.push(format!(
                        "sum({n}_sum) / nullif(sum({n}_count), 0) AS {n}_mean"
                    ));
                }
                MeasureKind::Last => {
                    merged.push(format!("max_by({n}, {n}_at) AS {n}"));
                    merged.push(format!("max({n}_at) AS {n}_at"));
                }
                MeasureKind::Distinct => sketches.push(n.as_str()),
            }
        }
        let window_keys = group(&["window_start"]);
        let mut ctes = vec![
            format!("panes AS (SELECT * FROM {table})"),
            format!(
                "merged AS (SELECT {} FROM panes GROUP BY {})",
                merged.join(", "),
                group(&["window_start", "window_end"])
            ),
        ];
        let m = 1u64 << SKETCH_PRECISION;
        let alpha_mm = ALPHA_NUMERATOR / (1.0 + ALPHA_DENOMINATOR / m as f64) * (m * m) as f64;
        let mut select = vec!["merged.*".to_string()];
        let mut joins = String::new();
        for n in &sketches {
            // Registers merged by their greatest rank; the estimate as `state::estimate` has it.
            ctes.push(format!(
                "{n}_registers AS (SELECT {window_keys}, r[1] AS register, max(r[2]) AS rank \
                 FROM panes CROSS JOIN UNNEST({n}_hll) AS u(r) GROUP BY {window_keys}, r[1])"
            ));
            ctes.push(format!(
                "{n}_sums AS (SELECT {window_keys}, count(*) AS used, \
                 sum(power(2.0, -rank)) AS z FROM {n}_registers GROUP BY {window_keys})"
            ));
            ctes.push(format!(
                "{n}_sketch AS (SELECT {window_keys}, CASE \
                 WHEN {alpha_mm:?} / (z + ({m} - used)) <= {limit:?} AND used < {m} \
                 THEN {m}.0 * ln({m}.0 / ({m} - used)) \
                 ELSE {alpha_mm:?} / (z + ({m} - used)) END AS estimate FROM {n}_sums)",
                limit = 2.5 * m as f64,
            ));
            select.push(format!(
                "CAST(round(coalesce({n}_sketch.estimate, 0)) AS BIGINT) AS {n}"
            ));
            joins.push_str(&format!(" LEFT JOIN {n}_sketch USING ({window_keys})"));
        }
        format!(
            "WITH {} SELECT {} FROM merged{joins} ORDER BY {window_keys}",
            ctes.join(", "),
            select.join(", ")
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> Aggregation<f64> {
        Aggregation::new("per_minute").key("device_id", |_| Some("d".into()))
    }

    #[test]
    fn names_that_sql_cannot_hold_as_they_are_are_refused() {
        assert!(base().count("readings").check().is_ok());
        let no_measure = base().check().unwrap_err();
        assert!(no_measure.reason.contains("no measure"), "{no_measure}");
        let upper = base().count("Readings").check().unwrap_err();
        assert!(upper.reason.contains("\"Readings\""), "{upper}");
        let table = Aggregation::<f64>::new("per-minute").count("n").check();
        assert!(table.unwrap_err().reason.contains("names the table"));
    }

    #[test]
    fn columns_that_two_measures_would_share_are_refused() {
        let clash = base()
            .sum("temperature_sum", |v| Some(*v))
            .stats("temperature", |v| Some(*v))
            .check()
            .unwrap_err();
        assert_eq!(clash.reason, "two columns are named \"temperature_sum\"");
        let key_clash = base().count("device_id").check().unwrap_err();
        assert_eq!(key_clash.reason, "two columns are named \"device_id\"");
    }
}

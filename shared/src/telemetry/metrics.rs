//! CloudWatch Embedded Metric Format (EMF).
//!
//! Metrics are gathered during an invocation and written once, at its end, as EMF JSON lines on
//! stdout, where the Lambda log agent turns them into CloudWatch metrics. One document holds at most
//! 100 metrics (a CloudWatch limit); more are split across documents. Repeated values of one metric
//! are kept as an array (at most 100 values each, also a CloudWatch limit).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

/// CloudWatch's limit on metric definitions per EMF document.
pub const MAX_METRICS_PER_DOCUMENT: usize = 100;
/// CloudWatch's limit on values in one metric's array.
pub const MAX_VALUES_PER_METRIC: usize = 100;

/// The units CloudWatch accepts in EMF that this crate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    /// A number of things (records, calls).
    Count,
    /// A duration in milliseconds.
    Milliseconds,
    /// A duration in seconds.
    Seconds,
    /// A size in bytes.
    Bytes,
    /// A rate of things (`Count/Second`).
    CountPerSecond,
    /// A throughput (`Bytes/Second`).
    BytesPerSecond,
    /// A value without a unit (a ratio).
    None,
}

impl Unit {
    /// The name EMF writes (`Count/Second`).
    pub fn as_str(&self) -> &'static str {
        match self {
            Unit::Count => "Count",
            Unit::Milliseconds => "Milliseconds",
            Unit::Seconds => "Seconds",
            Unit::Bytes => "Bytes",
            Unit::CountPerSecond => "Count/Second",
            Unit::BytesPerSecond => "Bytes/Second",
            Unit::None => "None",
        }
    }
}

#[derive(Debug, Clone)]
struct Series {
    unit: Unit,
    values: Vec<f64>,
}

/// Metrics of one invocation under one namespace and one dimension set.
#[derive(Debug, Clone)]
pub struct Metrics {
    namespace: String,
    dimensions: BTreeMap<String, String>,
    properties: BTreeMap<String, Value>,
    // Insertion order is kept so documents read in the order metrics were added.
    series: Vec<(String, Series)>,
}

impl Metrics {
    /// Empty metrics under a CloudWatch namespace, without dimensions.
    pub fn new(namespace: impl Into<String>) -> Self {
        Metrics {
            namespace: namespace.into(),
            dimensions: BTreeMap::new(),
            properties: BTreeMap::new(),
            series: Vec::new(),
        }
    }

    /// Adds a dimension (e.g. `service`, `pipeline`). CloudWatch allows at most 30 per set.
    pub fn dimension(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.dimensions.insert(name.into(), value.into());
        self
    }

    /// Adds a searchable property that is not a metric (e.g. the request id).
    pub fn property(&mut self, name: impl Into<String>, value: impl Into<Value>) {
        self.properties.insert(name.into(), value.into());
    }

    /// Records one value. Adding the same name again appends to that metric's values.
    pub fn add(&mut self, name: &str, unit: Unit, value: f64) {
        if let Some((_, s)) = self.series.iter_mut().find(|(n, _)| n == name) {
            s.values.push(value);
        } else {
            self.series.push((
                name.to_string(),
                Series {
                    unit,
                    values: vec![value],
                },
            ));
        }
    }

    /// Records a count ([`Unit::Count`]).
    pub fn count(&mut self, name: &str, value: u64) {
        self.add(name, Unit::Count, value as f64);
    }

    /// Whether no value has been recorded since the last [`Metrics::take_documents`].
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Renders the EMF documents and clears the recorded values (properties are cleared too).
    pub fn take_documents(&mut self, timestamp_ms: i64) -> Vec<Value> {
        let series = std::mem::take(&mut self.series);
        let properties = std::mem::take(&mut self.properties);
        // A metric with more values than one array holds continues in the next document.
        let mut entries: Vec<(String, Unit, Vec<f64>)> = Vec::new();
        for (name, s) in series {
            for chunk in s.values.chunks(MAX_VALUES_PER_METRIC) {
                entries.push((name.clone(), s.unit, chunk.to_vec()));
            }
        }
        let mut docs: Vec<Vec<(String, Unit, Vec<f64>)>> = Vec::new();
        for entry in entries {
            let fits = docs.last().is_some_and(|d| {
                d.len() < MAX_METRICS_PER_DOCUMENT && !d.iter().any(|(n, _, _)| *n == entry.0)
            });
            if !fits {
                docs.push(Vec::new());
            }
            docs.last_mut().expect("pushed above").push(entry);
        }
        docs.into_iter()
            .map(|metrics| self.document(&metrics, &properties, timestamp_ms))
            .collect()
    }

    fn document(
        &self,
        metrics: &[(String, Unit, Vec<f64>)],
        properties: &BTreeMap<String, Value>,
        timestamp_ms: i64,
    ) -> Value {
        let mut root = Map::new();
        for (k, v) in properties {
            root.insert(k.clone(), v.clone());
        }
        for (k, v) in &self.dimensions {
            root.insert(k.clone(), Value::String(v.clone()));
        }
        let definitions: Vec<Value> = metrics
            .iter()
            .map(|(name, unit, _)| json!({"Name": name, "Unit": unit.as_str()}))
            .collect();
        for (name, _, values) in metrics {
            let value = if values.len() == 1 {
                json!(values[0])
            } else {
                json!(values)
            };
            root.insert(name.clone(), value);
        }
        let dimension_names: Vec<&String> = self.dimensions.keys().collect();
        root.insert(
            "_aws".into(),
            json!({
                "Timestamp": timestamp_ms,
                "CloudWatchMetrics": [{
                    "Namespace": self.namespace,
                    "Dimensions": [dimension_names],
                    "Metrics": definitions,
                }]
            }),
        );
        Value::Object(root)
    }

    /// Writes the documents to stdout, one line each, and clears the recorded values.
    pub fn flush(&mut self) {
        use std::io::Write;
        if self.series.is_empty() {
            return;
        }
        let docs = self.take_documents(chrono::Utc::now().timestamp_millis());
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        for doc in docs {
            let _ = writeln!(out, "{doc}");
        }
        let _ = out.flush();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Checks a document against the rules of the EMF specification.
    fn assert_valid_emf(doc: &Value) {
        let aws = &doc["_aws"];
        assert!(aws["Timestamp"].is_i64());
        let directives = aws["CloudWatchMetrics"].as_array().unwrap();
        assert_eq!(directives.len(), 1);
        let d = &directives[0];
        assert!(!d["Namespace"].as_str().unwrap().is_empty());
        for set in d["Dimensions"].as_array().unwrap() {
            let set = set.as_array().unwrap();
            assert!(set.len() <= 30);
            for name in set {
                assert!(
                    doc[name.as_str().unwrap()].is_string(),
                    "dimension {name} missing"
                );
            }
        }
        let metrics = d["Metrics"].as_array().unwrap();
        assert!(!metrics.is_empty() && metrics.len() <= MAX_METRICS_PER_DOCUMENT);
        for m in metrics {
            let name = m["Name"].as_str().unwrap();
            let v = &doc[name];
            assert!(
                v.is_number()
                    || v.as_array()
                        .is_some_and(|a| a.len() <= 100 && a.iter().all(Value::is_number)),
                "{name}: {v}"
            );
        }
    }

    #[test]
    fn document_has_the_emf_shape() {
        let mut m = Metrics::new("Runnel").dimension("service", "kinesis-processor");
        m.count("RecordsIn", 6);
        m.add("BatchLatency", Unit::Milliseconds, 12.5);
        m.add("BatchLatency", Unit::Milliseconds, 7.0);
        m.property("request_id", "abc");
        let docs = m.take_documents(1_700_000_000_000);
        assert_eq!(docs.len(), 1);
        let doc = &docs[0];
        assert_valid_emf(doc);
        assert_eq!(doc["_aws"]["Timestamp"], 1_700_000_000_000_i64);
        assert_eq!(doc["_aws"]["CloudWatchMetrics"][0]["Namespace"], "Runnel");
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Dimensions"],
            json!([["service"]])
        );
        assert_eq!(
            doc["_aws"]["CloudWatchMetrics"][0]["Metrics"],
            json!([{"Name":"RecordsIn","Unit":"Count"},{"Name":"BatchLatency","Unit":"Milliseconds"}])
        );
        assert_eq!(doc["RecordsIn"], 6.0);
        assert_eq!(doc["BatchLatency"], json!([12.5, 7.0]));
        assert_eq!(doc["service"], "kinesis-processor");
        assert_eq!(doc["request_id"], "abc");
        assert!(m.is_empty(), "values are cleared after rendering");
    }

    #[test]
    fn more_than_100_metrics_split_across_documents() {
        let mut m = Metrics::new("Runnel").dimension("service", "s");
        for i in 0..250 {
            m.count(&format!("m{i}"), i);
        }
        let docs = m.take_documents(0);
        let sizes: Vec<usize> = docs
            .iter()
            .map(|d| {
                d["_aws"]["CloudWatchMetrics"][0]["Metrics"]
                    .as_array()
                    .unwrap()
                    .len()
            })
            .collect();
        assert_eq!(sizes, [100, 100, 50]);
        docs.iter().for_each(assert_valid_emf);
        assert_eq!(docs[2]["m249"], 249.0);
    }

    #[test]
    fn more_than_100_values_continue_in_the_next_document() {
        let mut m = Metrics::new("Runnel");
        for i in 0..150 {
            m.add("Latency", Unit::Milliseconds, i as f64);
        }
        let docs = m.take_documents(0);
        assert_eq!(docs.len(), 2);
        assert_eq!(docs[0]["Latency"].as_array().unwrap().len(), 100);
        assert_eq!(docs[1]["Latency"].as_array().unwrap().len(), 50);
        docs.iter().for_each(assert_valid_emf);
    }
}

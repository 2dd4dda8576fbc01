//! The demo transform: IoT sensor readings, validated and normalised.
//!
//! Input (one JSON object per reading; a record may hold several as NDJSON):
//! `{"device_id":"sensor-0042","ts":"2026-11-22T07:15:00Z","temperature":71.6,"unit":"F","humidity":40.5,"battery":87}`
//! - `ts`: RFC 3339, or epoch milliseconds as a number;
//! - `unit`: `C` (default) or `F`; output is always °C;
//! - `humidity` and `battery` are optional percentages.
//!
//! Unknown fields are dropped: the curated table has a fixed schema, so Glue and Athena tables stay
//! stable when devices add fields; the raw record stays in the stream and in quarantine.

use chrono::{DateTime, Utc};
use runnel::records::{FieldError, Validate};
use runnel::timestamp::{rfc3339, rfc3339_opt, EventTime};
use runnel::transform::{Outputs, RecordContext, Transform, TransformError};
use runnel::window::{Aggregation, Rule};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Deserialize, PartialEq, Eq, Default)]
pub enum TemperatureUnit {
    #[default]
    #[serde(alias = "c", alias = "celsius")]
    C,
    #[serde(alias = "f", alias = "fahrenheit")]
    F,
}

/// A reading as devices send it.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Reading {
    pub device_id: String,
    pub ts: EventTime,
    pub temperature: f64,
    #[serde(default)]
    pub unit: TemperatureUnit,
    #[serde(default)]
    pub humidity: Option<f64>,
    #[serde(default)]
    pub battery: Option<f64>,
}

/// Plausible range for the sensors this demo models, in °C.
pub const TEMPERATURE_RANGE_C: std::ops::RangeInclusive<f64> = -60.0..=90.0;

impl Reading {
    pub fn temperature_c(&self) -> f64 {
        match self.unit {
            TemperatureUnit::C => self.temperature,
            TemperatureUnit::F => (self.temperature - 32.0) * 5.0 / 9.0,
        }
    }
}

impl Validate for Reading {
    fn validate(&self) -> Result<(), Vec<FieldError>> {
        let mut errors = Vec::new();
        let id = self.device_id.trim();
        if id.is_empty() {
            errors.push(FieldError::new("device_id", "must not be empty"));
        } else if id.len() > 128 {
            errors.push(FieldError::new(
                "device_id",
                "must be at most 128 characters",
            ));
        }
        match self.ts.get() {
            Ok(t) if t.timestamp() < 946_684_800 || t.timestamp() >= 4_102_444_800 => errors.push(
                FieldError::new("ts", format!("{t} is outside 2000-01-01..2100-01-01")),
            ),
            Ok(_) => {}
            Err(e) => errors.push(FieldError::new("ts", e)),
        }
        let t = self.temperature_c();
        if !t.is_finite() || !TEMPERATURE_RANGE_C.contains(&t) {
            errors.push(FieldError::new(
                "temperature",
                format!("{:.2} °C is outside {:?}", t, TEMPERATURE_RANGE_C),
            ));
        }
        for (field, value) in [("humidity", self.humidity), ("battery", self.battery)] {
            if let Some(v) = value {
                if !(0.0..=100.0).contains(&v) {
                    errors.push(FieldError::new(field, format!("{v} is outside 0..=100 %")));
                }
            }
        }
        runnel::records::check(errors)
    }
}

/// A curated reading.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CuratedReading {
    pub device_id: String,
    #[serde(serialize_with = "rfc3339")]
    pub event_time: DateTime<Utc>,
    pub temperature_c: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub humidity_pct: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub battery_pct: Option<f64>,
    #[serde(
        skip_serializing_if = "Option::is_none",
        serialize_with = "rfc3339_opt"
    )]
    pub arrival_time: Option<DateTime<Utc>>,
}

/// The demo pipeline's transform.
#[derive(Debug, Clone, Copy, Default)]
pub struct IotTransform;

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

impl Transform for IotTransform {
    type Input = Reading;
    type Output = CuratedReading;

    fn validate(&self, input: &Reading) -> Result<(), Vec<FieldError>> {
        input.validate()
    }

    fn apply(
        &self,
        input: Reading,
        ctx: &RecordContext<'_>,
        out: &mut Outputs<CuratedReading>,
    ) -> Result<(), TransformError> {
        // Parsed while deserialising; validation has already rejected an invalid one.
        let event_time = input
            .ts
            .get()
            .map_err(|reason| TransformError::Reject(reason.to_string()))?;
        out.push(CuratedReading {
            temperature_c: round2(input.temperature_c()),
            // Reuse the parsed string unless it needs trimming.
            device_id: if input.device_id.trim().len() == input.device_id.len() {
                input.device_id
            } else {
                input.device_id.trim().to_string()
            },
            event_time,
            humidity_pct: input.humidity,
            battery_pct: input.battery,
            arrival_time: ctx.arrival,
        });
        Ok(())
    }

    fn event_time(&self, output: &CuratedReading) -> Option<DateTime<Utc>> {
        Some(output.event_time)
    }
}

/// The function's pipeline: Kinesis in, [`IotTransform`], gzip NDJSON by hour to S3. Tests and
/// benchmarks build the same pipeline with another store.
pub fn pipeline() -> runnel::pipeline::StreamPipeline<runnel::source::Kinesis, IotTransform> {
    pipeline_from(runnel::source::Kinesis)
}

/// The same pipeline behind another batch source.
pub fn pipeline_from<S: runnel::source::BatchSource>(
    source: S,
) -> runnel::pipeline::StreamPipeline<S, IotTransform> {
    runnel::pipeline::Pipeline::new("kinesis-processor")
        .source(source)
        .transform(IotTransform)
}

/// The pipeline behind a DynamoDB stream of a readings table: each inserted or modified item's
/// new image is a reading; removals make no output.
pub fn table_pipeline() -> runnel::pipeline::StreamPipeline<
    runnel::source::DynamoDb,
    runnel::source::dynamodb::NewImages<IotTransform>,
> {
    table_pipeline_from(runnel::source::DynamoDb)
}

/// The table's pipeline behind a source of DynamoDB stream records (the mapping, or the
/// mapping with tumbling windows).
pub fn table_pipeline_from<S: runnel::source::BatchSource>(
    source: S,
) -> runnel::pipeline::StreamPipeline<S, runnel::source::dynamodb::NewImages<IotTransform>> {
    runnel::pipeline::Pipeline::new("kinesis-processor")
        .source(source)
        .transform(runnel::source::dynamodb::NewImages(IotTransform))
}

/// Per device and minute of event time: how many readings, the temperature's count, sum, range
/// and mean, the highest humidity, the last battery level, and how many distinct temperatures
/// (a sensor stuck on one value reports one). Its panes are the `device_minute_panes` table;
/// `infra/athena/device_minute.sql` merges them.
pub fn device_minute() -> Aggregation<CuratedReading> {
    Aggregation::new("device_minute")
        .key("device_id", |r: &CuratedReading| Some(r.device_id.clone()))
        .tumbling(std::time::Duration::from_secs(60))
        .event_time(|r: &CuratedReading| Some(r.event_time))
        .count("readings")
        .stats("temperature_c", |r: &CuratedReading| Some(r.temperature_c))
        .max("humidity_max", |r: &CuratedReading| r.humidity_pct)
        .last("battery_pct", |r: &CuratedReading| {
            r.battery_pct.map(|b| (b, r.event_time))
        })
        .distinct("temperature_values", |r: &CuratedReading| {
            Some(r.temperature_c.to_string())
        })
}

/// A device too hot on one reading: above 80 °C (the sensors' range ends at 90 °C). At most one
/// alert per device and 15 minutes of reading time.
pub fn too_hot() -> Rule<CuratedReading> {
    Rule::above("too_hot", "temperature_c", 80.0, |r: &CuratedReading| {
        Some(r.temperature_c)
    })
    .key("device_id", |r: &CuratedReading| Some(r.device_id.clone()))
    .event_time(|r: &CuratedReading| Some(r.event_time))
    .once_per(std::time::Duration::from_secs(15 * 60))
}

/// A device overheating: three readings in a row above 60 °C. At most one alert per device and
/// 15 minutes of reading time.
pub fn overheating() -> Rule<CuratedReading> {
    Rule::above(
        "overheating",
        "temperature_c",
        60.0,
        |r: &CuratedReading| Some(r.temperature_c),
    )
    .key("device_id", |r: &CuratedReading| Some(r.device_id.clone()))
    .event_time(|r: &CuratedReading| Some(r.event_time))
    .consecutive(3)
    .once_per(std::time::Duration::from_secs(15 * 60))
}

/// The pipeline's rules: [`too_hot`] and [`overheating`].
pub fn with_rules<S, T>(
    pipeline: runnel::pipeline::StreamPipeline<S, T>,
) -> runnel::pipeline::StreamPipeline<S, T>
where
    S: runnel::source::BatchSource,
    T: Transform<Output = CuratedReading>,
{
    pipeline.rule(too_hot()).rule(overheating())
}

/// [`pipeline_from`] with the [`device_minute`] aggregate and the rules: what the function runs
/// for every source whose output it writes itself.
pub fn aggregating_pipeline_from<S: runnel::source::BatchSource>(
    source: S,
) -> runnel::pipeline::StreamPipeline<S, IotTransform> {
    with_rules(pipeline_from(source).aggregate(device_minute()))
}

/// The batch source the function is wired to (`SOURCE`, default `kinesis`): one binary serves
/// the stream, queue and table mappings and the delivery stream's transformation of the template,
/// and stream and table mappings with tumbling windows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Source {
    /// A Kinesis stream mapping.
    #[default]
    Kinesis,
    /// An SQS queue mapping, standard or FIFO.
    Sqs,
    /// A DynamoDB stream mapping of a table of readings.
    DynamoDb,
    /// The data transformation of a Firehose delivery stream.
    Firehose,
    /// A Kafka mapping (Amazon MSK or self-managed).
    Kafka,
    /// A Kinesis stream mapping with tumbling windows: one set of `device_minute` rows per shard
    /// and window instead of panes per run.
    KinesisWindows,
    /// A DynamoDB stream mapping with tumbling windows.
    DynamoDbWindows,
}

impl Source {
    /// Reads `SOURCE`; unset means Kinesis.
    pub fn from_env() -> Result<Self, String> {
        match std::env::var("SOURCE") {
            Err(_) => Ok(Source::Kinesis),
            Ok(v) => v.parse(),
        }
    }
}

impl std::str::FromStr for Source {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s.trim().to_ascii_lowercase().as_str() {
            "" | "kinesis" => Ok(Source::Kinesis),
            "sqs" => Ok(Source::Sqs),
            "dynamodb" => Ok(Source::DynamoDb),
            "firehose" => Ok(Source::Firehose),
            "kafka" => Ok(Source::Kafka),
            "kinesis-windows" => Ok(Source::KinesisWindows),
            "dynamodb-windows" => Ok(Source::DynamoDbWindows),
            other => Err(format!(
                "SOURCE={other:?} is not a source this function reads; use kinesis, sqs, dynamodb, firehose, kafka, kinesis-windows or dynamodb-windows"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_source_is_named_by_the_environment() {
        assert_eq!("".parse::<Source>(), Ok(Source::Kinesis));
        assert_eq!(" SQS ".parse::<Source>(), Ok(Source::Sqs));
        assert_eq!("dynamodb".parse::<Source>(), Ok(Source::DynamoDb));
        assert_eq!("kafka".parse::<Source>(), Ok(Source::Kafka));
        assert_eq!(
            "Kinesis-Windows".parse::<Source>(),
            Ok(Source::KinesisWindows)
        );
        assert_eq!(
            "dynamodb-windows".parse::<Source>(),
            Ok(Source::DynamoDbWindows)
        );
        assert!("kinesis-v2".parse::<Source>().unwrap_err().contains(
            "kinesis, sqs, dynamodb, firehose, kafka, kinesis-windows or dynamodb-windows"
        ));
    }

    fn reading(json: &str) -> Reading {
        serde_json::from_str(json).unwrap()
    }

    fn curate(r: Reading) -> CuratedReading {
        let mut out = Outputs::default();
        IotTransform.apply(r, &ctx(), &mut out).unwrap();
        assert_eq!(out.len(), 1, "one reading in, one out");
        let (_, reading) = out.drain().next().unwrap();
        reading
    }

    fn ctx() -> RecordContext<'static> {
        RecordContext {
            stream: "shardId-000000000000",
            position: "1",
            index: 0,
            partition_key: None,
            arrival: None,
        }
    }

    #[test]
    fn fahrenheit_is_normalised_to_celsius() {
        let r = reading(
            r#"{"device_id":"d","ts":"2026-11-22T07:15:00Z","temperature":71.6,"unit":"F"}"#,
        );
        r.validate().unwrap();
        let out = curate(r);
        assert_eq!(out.temperature_c, 22.0);
        assert_eq!(out.event_time.to_rfc3339(), "2026-11-22T07:15:00+00:00");
    }

    #[test]
    fn epoch_millis_time_is_accepted() {
        let r = reading(r#"{"device_id":"d","ts":1763795700000,"temperature":20}"#);
        r.validate().unwrap();
        assert_eq!(curate(r).event_time.timestamp(), 1_763_795_700);
    }

    #[test]
    fn every_broken_rule_is_reported_with_its_field() {
        let r = reading(
            r#"{"device_id":" ","ts":"yesterday","temperature":500,"humidity":120,"battery":-1}"#,
        );
        let fields: Vec<String> = r
            .validate()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            ["device_id", "ts", "temperature", "humidity", "battery"]
        );
    }

    #[test]
    fn unknown_fields_are_dropped_from_output() {
        let r = reading(
            r#"{"device_id":"d","ts":"2026-11-22T07:15:00Z","temperature":1,"firmware":"1.2"}"#,
        );
        let out = serde_json::to_value(curate(r)).unwrap();
        assert!(out.get("firmware").is_none());
        assert_eq!(out["device_id"], "d");
    }
}

#[cfg(test)]
mod merge_query {
    /// The merge of `device_minute`'s panes as the demo and the template run it: generated by
    /// `Aggregation::merge_sql`, kept as a file so that SQL tools and the template can read it.
    /// `RUNNEL_BLESS=1 cargo test -p kinesis-processor merge_query` rewrites it.
    #[test]
    fn the_checked_in_merge_query_is_the_aggregation_s() {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../infra/athena/device_minute.sql"
        );
        let sql = super::device_minute().merge_sql("device_minute_panes") + "\n";
        if std::env::var_os("RUNNEL_BLESS").is_some() {
            std::fs::write(path, &sql).unwrap();
        }
        let checked_in = std::fs::read_to_string(path).unwrap_or_default();
        assert_eq!(
            checked_in, sql,
            "{path} is stale: RUNNEL_BLESS=1 cargo test -p kinesis-processor merge_query"
        );
        super::device_minute().check().unwrap();
    }

    /// The template's named query creates the view from the same merge.
    #[test]
    fn the_template_s_view_is_the_checked_in_merge_query() {
        let template = include_str!("../../../infra/template.yaml");
        let sql = super::device_minute().merge_sql("device_minute_panes");
        let view = format!("        CREATE OR REPLACE VIEW device_minute AS {sql}\n");
        assert!(
            template.contains(&view),
            "infra/template.yaml's DeviceMinuteView must hold the line:\n{view}"
        );
    }

    /// The template's `device_minute_panes` table declares the columns the panes have.
    #[test]
    fn the_template_s_pane_table_has_the_pane_columns() {
        let template = include_str!("../../../infra/template.yaml");
        let table = template
            .split("Name: device_minute_panes")
            .nth(1)
            .and_then(|rest| rest.split("Columns:").nth(1))
            .expect("the template declares device_minute_panes");
        let declared: Vec<(String, String)> = table
            .lines()
            .map(str::trim)
            .skip_while(|l| l.is_empty())
            .take_while(|l| l.starts_with("- { Name:"))
            .map(|l| {
                let inner = l.trim_start_matches("- {").trim_end_matches('}');
                let (name, kind) = inner.split_once(", Type:").unwrap();
                let name = name.trim().trim_start_matches("Name:").trim();
                (name.to_string(), kind.trim().trim_matches('"').to_string())
            })
            .collect();
        let expected: Vec<(String, String)> = super::device_minute()
            .pane_columns()
            .into_iter()
            .map(|(n, t)| (n, t.to_string()))
            .collect();
        assert_eq!(declared, expected);
    }
}

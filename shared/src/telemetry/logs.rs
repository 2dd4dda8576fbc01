//! Structured logs through `tracing`.
//!
//! Every JSON line carries `timestamp`, `level`, `message`, the event's own fields and the
//! invocation context: `service`, `function`, `request_id`, `cold_start`, `correlation_id`.
//! `AWS_LAMBDA_LOG_FORMAT=JSON|Text` picks the format (JSON when unset); `AWS_LAMBDA_LOG_LEVEL`
//! (TRACE…FATAL) sets the level, and `RUST_LOG` refines it per module when set.

use std::sync::RwLock;

use serde_json::{Map, Value};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::EnvFilter;

/// What every log line of one invocation shares.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InvocationContext {
    /// Lambda's request id of the invocation.
    pub request_id: Option<String>,
    /// Whether this is the process's first invocation.
    pub cold_start: bool,
    /// Ties the logs to the input (the batch's first sequence number, the object's key).
    pub correlation_id: Option<String>,
}

/// Process-wide facts and the current invocation. A Lambda process handles one event at a time,
/// so one slot for the current invocation is exact.
#[derive(Debug)]
struct LogContext {
    service: String,
    function: String,
    invocation: RwLock<InvocationContext>,
}

static CONTEXT: RwLock<Option<LogContext>> = RwLock::new(None);

fn with_context<R>(f: impl FnOnce(&LogContext) -> R) -> Option<R> {
    let guard = CONTEXT.read().unwrap_or_else(|e| e.into_inner());
    guard.as_ref().map(f)
}

/// Sets the invocation context that later log lines carry.
pub fn set_invocation(invocation: InvocationContext) {
    with_context(|c| *c.invocation.write().unwrap_or_else(|e| e.into_inner()) = invocation);
}

/// Changes the current invocation context in place.
pub(crate) fn update_invocation(f: impl FnOnce(&mut InvocationContext)) {
    with_context(|c| f(&mut c.invocation.write().unwrap_or_else(|e| e.into_inner())));
}

/// The log format chosen by `AWS_LAMBDA_LOG_FORMAT`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// One JSON object per line (the default).
    Json,
    /// Plain text lines without timestamps (CloudWatch adds its own).
    Text,
}

impl LogFormat {
    /// The format of an `AWS_LAMBDA_LOG_FORMAT` value: `Text` (any case) or else JSON.
    pub fn from_env_value(value: Option<&str>) -> Self {
        match value.map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if v == "text" => LogFormat::Text,
            _ => LogFormat::Json,
        }
    }
}

/// Maps `AWS_LAMBDA_LOG_LEVEL` to a `tracing` filter directive (FATAL has no own level: ERROR).
pub fn level_directive(value: Option<&str>) -> &'static str {
    match value.map(|v| v.trim().to_ascii_uppercase()).as_deref() {
        Some("TRACE") => "trace",
        Some("DEBUG") => "debug",
        Some("WARN") => "warn",
        Some("ERROR") | Some("FATAL") => "error",
        _ => "info",
    }
}

/// Installs the global subscriber. `service` names the pipeline component; the function name comes
/// from `AWS_LAMBDA_FUNCTION_NAME` when Lambda sets it. Calling it twice keeps the first subscriber.
pub fn init_logging(service: &str) {
    let function =
        std::env::var("AWS_LAMBDA_FUNCTION_NAME").unwrap_or_else(|_| service.to_string());
    {
        let mut guard = CONTEXT.write().unwrap_or_else(|e| e.into_inner());
        *guard = Some(LogContext {
            service: service.to_string(),
            function,
            invocation: RwLock::new(InvocationContext::default()),
        });
    }
    let level = level_directive(std::env::var("AWS_LAMBDA_LOG_LEVEL").ok().as_deref());
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| {
            EnvFilter::new(format!(
                "{level},aws_smithy_runtime=warn,aws_config=warn,hyper=warn"
            ))
        });
    let format = LogFormat::from_env_value(std::env::var("AWS_LAMBDA_LOG_FORMAT").ok().as_deref());
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stdout)
        .with_ansi(false);
    let _ = match format {
        LogFormat::Json => builder.event_format(JsonLine).try_init(),
        LogFormat::Text => builder.without_time().with_target(false).try_init(),
    };
}

/// Formats one event as one flat JSON object.
pub struct JsonLine;

#[derive(Default)]
struct FieldsVisitor {
    message: Option<String>,
    fields: Map<String, Value>,
}

impl Visit for FieldsVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.put(field, Value::String(value.to_string()));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.put(field, Value::from(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.put(field, Value::from(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.put(field, Value::from(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.put(field, Value::Bool(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole chain: the outer message alone rarely says which input failed.
        self.put(field, Value::String(crate::error::chain(value)));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.put(field, Value::String(format!("{value:?}")));
    }
}

impl FieldsVisitor {
    fn put(&mut self, field: &Field, value: Value) {
        if field.name() == "message" {
            self.message = Some(match value {
                Value::String(s) => s,
                other => other.to_string(),
            });
        } else {
            self.fields.insert(field.name().to_string(), value);
        }
    }
}

fn level_name(level: &Level) -> &'static str {
    match *level {
        Level::TRACE => "TRACE",
        Level::DEBUG => "DEBUG",
        Level::INFO => "INFO",
        Level::WARN => "WARN",
        Level::ERROR => "ERROR",
    }
}

/// Builds the JSON object for one event; separate from the subscriber so tests can check the shape.
pub fn render_line(
    level: &Level,
    target: &str,
    visit: impl FnOnce(&mut dyn Visit),
    timestamp: chrono::DateTime<chrono::Utc>,
) -> Value {
    let mut visitor = FieldsVisitor::default();
    visit(&mut visitor);
    let mut line = Map::new();
    line.insert(
        "timestamp".into(),
        Value::String(timestamp.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)),
    );
    line.insert("level".into(), Value::String(level_name(level).into()));
    line.insert(
        "message".into(),
        Value::String(visitor.message.unwrap_or_default()),
    );
    line.insert("target".into(), Value::String(target.into()));
    with_context(|c| {
        line.insert("service".into(), Value::String(c.service.clone()));
        line.insert("function".into(), Value::String(c.function.clone()));
        let inv = c.invocation.read().unwrap_or_else(|e| e.into_inner());
        if let Some(id) = &inv.request_id {
            line.insert("request_id".into(), Value::String(id.clone()));
        }
        line.insert("cold_start".into(), Value::Bool(inv.cold_start));
        if let Some(id) = &inv.correlation_id {
            line.insert("correlation_id".into(), Value::String(id.clone()));
        }
    });
    for (k, v) in visitor.fields {
        // Fields never overwrite the fixed keys a log query relies on.
        line.entry(k).or_insert(v);
    }
    Value::Object(line)
}

impl<S, N> FormatEvent<S, N> for JsonLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        _ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> std::fmt::Result {
        let meta = event.metadata();
        let line = render_line(
            meta.level(),
            meta.target(),
            |v| event.record(v),
            chrono::Utc::now(),
        );
        writeln!(writer, "{line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_and_level_follow_lambda_variables() {
        assert_eq!(LogFormat::from_env_value(None), LogFormat::Json);
        assert_eq!(LogFormat::from_env_value(Some("Text")), LogFormat::Text);
        assert_eq!(LogFormat::from_env_value(Some("JSON")), LogFormat::Json);
        assert_eq!(level_directive(Some("DEBUG")), "debug");
        assert_eq!(level_directive(Some("fatal")), "error");
        assert_eq!(level_directive(None), "info");
    }

    /// Captures lines through the real subscriber and checks their shape.
    #[test]
    fn json_line_has_context_and_fields() {
        use std::sync::{Arc, Mutex};
        #[derive(Clone, Default)]
        struct Buf(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Buf {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        init_logging("ingest");
        set_invocation(InvocationContext {
            request_id: Some("req-1".into()),
            cold_start: true,
            correlation_id: Some(
                "shardId-000000000000:49590338271490256608559692538361571095921575989136588898"
                    .into(),
            ),
        });
        let buf = Buf::default();
        let writer = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .event_format(JsonLine)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(records = 3_u64, bucket = "curated", "batch written");
        });
        let text = String::from_utf8(buf.0.lock().unwrap().clone()).unwrap();
        let line: Value = serde_json::from_str(text.trim()).unwrap();
        assert_eq!(line["level"], "WARN");
        assert_eq!(line["message"], "batch written");
        assert_eq!(line["service"], "ingest");
        assert_eq!(line["request_id"], "req-1");
        assert_eq!(line["cold_start"], true);
        assert!(line["correlation_id"]
            .as_str()
            .unwrap()
            .starts_with("shardId-"));
        assert_eq!(line["records"], 3);
        assert_eq!(line["bucket"], "curated");
        let ts = line["timestamp"].as_str().unwrap();
        assert!(chrono::DateTime::parse_from_rfc3339(ts).is_ok(), "{ts}");
        assert_eq!(text.lines().count(), 1);
    }
}

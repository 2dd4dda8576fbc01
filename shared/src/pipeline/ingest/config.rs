//! Configuration of object ingest: the shared output variables plus ingest's own.

use crate::config::{self, ConfigError, Env};
use crate::pipeline::config::OutputConfig;
use crate::sink::Location;

/// Where ingest reads and writes, and its limits.
///
/// Reads the shared output variables ([`OutputConfig`]: `OUTPUT_BUCKET`, `OUTPUT_PREFIX`, …)
/// plus `STATE_PREFIX` (default `state/<name>`, in the output bucket), `MAX_ROW_BYTES` (65536)
/// and `MAX_OBJECT_BYTES` (10 GiB).
#[derive(Debug, Clone, PartialEq)]
pub struct IngestConfig {
    /// Curated output, quarantine and names.
    pub output: OutputConfig,
    /// Manifests, the ingested-object index ([`super::index_key`]), and hooks' own state (e.g. Glue start
    /// claims).
    pub state: Location,
    /// Longest row accepted; longer rows are quarantined and reading goes on.
    pub max_row_bytes: usize,
    /// Largest object accepted; larger objects are quarantined whole.
    pub max_object_bytes: u64,
}

impl IngestConfig {
    /// Defaults around an output bucket: state under `state/<name>`, 64 KiB rows, 10 GiB objects.
    pub fn new(name: &str, bucket: &str) -> Self {
        IngestConfig {
            output: OutputConfig::new(name, bucket),
            state: Location::new(bucket, format!("state/{name}")),
            max_row_bytes: 65_536,
            max_object_bytes: 10 * 1024 * 1024 * 1024,
        }
    }

    /// Reads the variables inside a larger [`config::load`] call.
    pub fn read(env: &mut Env<'_>, name: &str) -> Self {
        let output = OutputConfig::read(env, name);
        let state_prefix: String =
            env.optional_or("STATE_PREFIX", format!("state/{name}"), "a key prefix");
        let max_row_bytes: usize = env.optional_or("MAX_ROW_BYTES", 65_536, "a size in bytes");
        let max_object_bytes: u64 = env.optional_or(
            "MAX_OBJECT_BYTES",
            10 * 1024 * 1024 * 1024,
            "a size in bytes",
        );
        if max_row_bytes < 16 {
            env.problem(
                "MAX_ROW_BYTES",
                "a size in bytes of at least 16",
                Some(max_row_bytes.to_string()),
                "too small",
            );
        }
        IngestConfig {
            state: Location::new(output.curated.bucket.clone(), state_prefix),
            output,
            max_row_bytes,
            max_object_bytes,
        }
    }

    /// Reads the variables on their own.
    pub fn from_lookup(
        name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        config::load(lookup, |env| Self::read(env, name))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::lookup_in;

    #[test]
    fn ingest_reads_the_same_output_variables_as_streams() {
        let c = IngestConfig::from_lookup(
            "transactions",
            lookup_in(&[("OUTPUT_BUCKET", "b"), ("OUTPUT_PREFIX", "tx")]),
        )
        .unwrap();
        assert_eq!(c.output.curated, Location::new("b", "tx"));
        assert_eq!(
            c.output.quarantine,
            Location::new("b", "quarantine/transactions")
        );
        assert_eq!(c.state, Location::new("b", "state/transactions"));
        let defaults = IngestConfig::from_lookup("t", lookup_in(&[("OUTPUT_BUCKET", "b")]));
        assert_eq!(defaults.unwrap(), IngestConfig::new("t", "b"));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let err = IngestConfig::from_lookup(
            "t",
            lookup_in(&[("MAX_ROW_BYTES", "8"), ("MAX_OBJECT_BYTES", "big")]),
        )
        .unwrap_err();
        let vars: Vec<&str> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(vars, ["OUTPUT_BUCKET", "MAX_OBJECT_BYTES", "MAX_ROW_BYTES"]);
    }
}

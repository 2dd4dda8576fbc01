//! Typed configuration read from environment variables.
//!
//! A handler declares every variable it needs inside one [`load`] call; every missing or malformed
//! variable is collected, and the call fails once with all of them, before the first event is handled.
//!
//! ```
//! use runnel::config::{load, Env};
//! let vars = [("OUTPUT_BUCKET", "curated"), ("BATCH_LIMIT", "12")];
//! let lookup = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
//! let (bucket, limit): (String, u32) = load(lookup, |env: &mut Env| {
//!     (env.required("OUTPUT_BUCKET", "an S3 bucket name"), env.optional_or("BATCH_LIMIT", 100, "a whole number"))
//! })
//! .unwrap();
//! assert_eq!((bucket.as_str(), limit), ("curated", 12));
//! ```

use std::fmt;
use std::str::FromStr;

/// One problem with one variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// The environment variable (`OUTPUT_BUCKET`).
    pub variable: String,
    /// What a valid value looks like (`a whole number 1-20`).
    pub expected: String,
    /// `None` when the variable is not set at all.
    pub found: Option<String>,
    /// Why the value was rejected (the parser's message), when known.
    pub reason: Option<String>,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.found {
            None => write!(
                f,
                "{} is not set (expected {})",
                self.variable, self.expected
            ),
            Some(v) => {
                write!(
                    f,
                    "{}={:?} is not valid (expected {})",
                    self.variable, v, self.expected
                )?;
                if let Some(reason) = &self.reason {
                    write!(f, ": {reason}")?;
                }
                Ok(())
            }
        }
    }
}

/// Every problem found while loading a configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ConfigError {
    /// Every problem, in the order found.
    pub problems: Vec<ConfigProblem>,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "invalid configuration: {} problem(s)",
            self.problems.len()
        )?;
        for p in &self.problems {
            write!(f, "\n  - {p}")?;
        }
        Ok(())
    }
}

/// The view of the environment handed to a configuration's builder.
pub struct Env<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<ConfigProblem>,
}

impl Env<'_> {
    fn raw(&self, name: &str) -> Option<String> {
        // An empty value is treated as unset: templates often render optional parameters as "".
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    fn parse<T: FromStr>(&mut self, name: &str, raw: String, expected: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        match raw.trim().parse::<T>() {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(ConfigProblem {
                    variable: name.to_string(),
                    expected: expected.to_string(),
                    found: Some(raw),
                    reason: Some(e.to_string()),
                });
                None
            }
        }
    }

    /// A variable that must be set. On a problem the default value stands in until [`load`] fails.
    pub fn required<T: FromStr + Default>(&mut self, name: &str, expected: &str) -> T
    where
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            Some(raw) => self.parse(name, raw, expected).unwrap_or_default(),
            None => {
                self.problems.push(ConfigProblem {
                    variable: name.to_string(),
                    expected: expected.to_string(),
                    found: None,
                    reason: None,
                });
                T::default()
            }
        }
    }

    /// A variable that may be absent; a present but malformed value is still a problem.
    pub fn optional<T: FromStr>(&mut self, name: &str, expected: &str) -> Option<T>
    where
        T::Err: fmt::Display,
    {
        let raw = self.raw(name)?;
        self.parse(name, raw, expected)
    }

    /// A variable with a default used when it is absent.
    pub fn optional_or<T: FromStr>(&mut self, name: &str, default: T, expected: &str) -> T
    where
        T::Err: fmt::Display,
    {
        match self.raw(name) {
            Some(raw) => self.parse(name, raw, expected).unwrap_or(default),
            None => default,
        }
    }

    /// Records a problem found by a cross-field check (e.g. two variables that contradict).
    pub fn problem(&mut self, variable: &str, expected: &str, found: Option<String>, reason: &str) {
        self.problems.push(ConfigProblem {
            variable: variable.to_string(),
            expected: expected.to_string(),
            found,
            reason: Some(reason.to_string()),
        });
    }
}

/// Builds a configuration from `lookup`, failing with every problem at once.
pub fn load<T>(
    lookup: impl Fn(&str) -> Option<String>,
    build: impl FnOnce(&mut Env<'_>) -> T,
) -> Result<T, ConfigError> {
    let mut env = Env {
        lookup: &lookup,
        problems: Vec::new(),
    };
    let value = build(&mut env);
    if env.problems.is_empty() {
        Ok(value)
    } else {
        Err(ConfigError {
            problems: env.problems,
        })
    }
}

/// Builds a configuration from the process environment.
pub fn from_process_env<T>(build: impl FnOnce(&mut Env<'_>) -> T) -> Result<T, ConfigError> {
    load(|name| std::env::var(name).ok(), build)
}

/// Logs a configuration failure as a structured line before it ends the process, so the reason
/// is in the function's logs (Lambda reports only the exit).
pub fn logged<T>(result: Result<T, ConfigError>) -> Result<T, ConfigError> {
    if let Err(e) = &result {
        tracing::error!(error = %e, "configuration is invalid; not starting");
    }
    result
}

/// Looks variables up in a fixed list; for tests and for configuration handed over in code.
pub fn lookup_in<'a>(pairs: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, Default)]
    struct Cfg {
        bucket: String,
        size: u64,
        prefix: Option<String>,
        retries: u32,
    }

    fn build(env: &mut Env<'_>) -> Cfg {
        Cfg {
            bucket: env.required("BUCKET", "an S3 bucket name"),
            size: env.required("MAX_SIZE", "a size in bytes"),
            prefix: env.optional("PREFIX", "a key prefix"),
            retries: env.optional_or("RETRIES", 3, "a whole number 0-10"),
        }
    }

    #[test]
    fn all_present_values_are_typed() {
        let cfg = load(
            lookup_in(&[("BUCKET", "b"), ("MAX_SIZE", " 1024 "), ("RETRIES", "7")]),
            build,
        )
        .unwrap();
        assert_eq!(cfg.bucket, "b");
        assert_eq!(cfg.size, 1024);
        assert_eq!(cfg.prefix, None);
        assert_eq!(cfg.retries, 7);
    }

    #[test]
    fn missing_variable_is_named_with_expectation() {
        let err = load(lookup_in(&[("MAX_SIZE", "1")]), build).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        assert_eq!(err.problems[0].variable, "BUCKET");
        assert_eq!(err.problems[0].found, None);
        assert_eq!(
            err.to_string(),
            "invalid configuration: 1 problem(s)\n  - BUCKET is not set (expected an S3 bucket name)"
        );
    }

    #[test]
    fn malformed_value_reports_value_and_parse_error() {
        let err = load(lookup_in(&[("BUCKET", "b"), ("MAX_SIZE", "ten")]), build).unwrap_err();
        assert_eq!(err.problems.len(), 1);
        let text = err.to_string();
        assert!(
            text.contains(
                "MAX_SIZE=\"ten\" is not valid (expected a size in bytes): invalid digit"
            ),
            "{text}"
        );
    }

    #[test]
    fn several_problems_are_reported_together() {
        let err = load(
            lookup_in(&[("MAX_SIZE", "-1"), ("RETRIES", "many"), ("PREFIX", "")]),
            build,
        )
        .unwrap_err();
        let vars: Vec<_> = err.problems.iter().map(|p| p.variable.as_str()).collect();
        assert_eq!(vars, ["BUCKET", "MAX_SIZE", "RETRIES"]);
    }

    #[test]
    fn empty_value_counts_as_unset() {
        let err = load(lookup_in(&[("BUCKET", "  "), ("MAX_SIZE", "1")]), build).unwrap_err();
        assert_eq!(err.problems[0].variable, "BUCKET");
        assert_eq!(err.problems[0].found, None);
    }

    #[test]
    fn cross_field_problem_is_collected() {
        let err = load(lookup_in(&[]), |env| {
            env.problem(
                "MODE",
                "ordered or report-all",
                Some("x".into()),
                "unknown mode",
            )
        })
        .unwrap_err();
        assert!(err.to_string().contains("MODE=\"x\" is not valid"));
    }
}

//! A model of a Kinesis or DynamoDB Streams mapping with tumbling windows
//! (`TumblingWindowInSeconds`), for one shard, as the Lambda documentation describes it (the
//! emulator ignores the setting):
//! - each record falls in the window of its arrival time (windows of `window_ms`, aligned to the
//!   epoch); a batch holds records of one window only, at most `max_batch`, from the checkpoint;
//! - every invocation receives the state the last successful invocation of the window answered
//!   with (empty at the window's start); a failed invocation's state is discarded and its batch
//!   retried with the state it had;
//! - a response with `batchItemFailures` is a successful invocation: its state is kept and the
//!   window resumes from the lowest reported record (an identifier not in the batch fails the
//!   whole batch);
//! - once every record of the window is checkpointed, a final invocation with no records and
//!   `isFinalInvokeForWindow` receives the state; it is retried until it succeeds, and the next
//!   window starts with an empty state;
//! - optionally, every n-th successful batch keeps its state but not its checkpoint, and its
//!   records are delivered again (the rare double delivery the documentation allows);
//! - a state larger than `state_limit` bytes ends the window early: the next invocation is told
//!   `isWindowTerminatedEarly` and the window goes on with an empty state after it.

use std::collections::HashMap;
use std::future::Future;
use std::ops::Range;

/// The mapping's settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowConfig {
    /// `TumblingWindowInSeconds`, in milliseconds.
    pub window_ms: i64,
    /// Most records in a batch.
    pub max_batch: usize,
    /// Lambda's bound on the state (1 MB per shard).
    pub state_limit: usize,
    /// Bound on invocations, so that a test of a handler that never succeeds ends.
    pub max_invocations: usize,
    /// Every n-th successful batch keeps its state but not its checkpoint, so its records come
    /// again: the rare double delivery the documentation allows ("some records might be
    /// processed more than once").
    pub lose_checkpoint_every: Option<usize>,
}

impl Default for WindowConfig {
    fn default() -> Self {
        WindowConfig {
            window_ms: 60_000,
            max_batch: 100,
            state_limit: 1_000_000,
            max_invocations: 10_000,
            lose_checkpoint_every: None,
        }
    }
}

/// One invocation as the function receives it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WindowInvoke {
    /// The batch, as record indexes (empty for a final invocation).
    pub records: Range<usize>,
    /// The window, epoch milliseconds.
    pub start: i64,
    /// The window's end, epoch milliseconds.
    pub end: i64,
    /// The state the last successful invocation of the window answered with.
    pub state: HashMap<String, String>,
    /// `isFinalInvokeForWindow`.
    pub is_final: bool,
    /// `isWindowTerminatedEarly`.
    pub terminated_early: bool,
}

/// What one invocation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WindowAnswer {
    /// A response: the state and the reported item identifiers.
    Response {
        /// The state for the next invocation.
        state: HashMap<String, String>,
        /// Reported records (empty: success).
        failures: Vec<String>,
    },
    /// The function failed as a whole.
    FunctionError,
}

/// What happened over a run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowReport {
    /// Invocations made.
    pub invocations: usize,
    /// Final invocations that succeeded (one per window, plus one per early end).
    pub windows_closed: usize,
    /// Invocations that failed as a whole.
    pub function_errors: usize,
    /// States answered over `state_limit`.
    pub oversized_states: usize,
    /// Whether every record was checkpointed and every window closed.
    pub completed: bool,
}

fn size(state: &HashMap<String, String>) -> usize {
    state.iter().map(|(k, v)| k.len() + v.len()).sum()
}

/// Drives the mapping over the records (`ids` in shard order, `arrivals` their arrival times in
/// epoch milliseconds, not decreasing). `batch_size` picks each batch's size.
pub async fn drive<F, Fut>(
    ids: &[String],
    arrivals: &[i64],
    config: WindowConfig,
    mut batch_size: impl FnMut() -> usize,
    mut invoke: F,
) -> WindowReport
where
    F: FnMut(WindowInvoke) -> Fut,
    Fut: Future<Output = WindowAnswer>,
{
    let n = ids.len();
    let window_of = |i: usize| arrivals[i].div_euclid(config.window_ms) * config.window_ms;
    let mut report = WindowReport::default();
    let mut checkpoint = 0;
    let mut state = HashMap::new();
    // The window in progress, from its first successful invocation to its final one.
    let mut open: Option<i64> = None;
    let mut early = false;
    let mut successes = 0usize;
    while report.invocations < config.max_invocations {
        if checkpoint >= n && open.is_none() {
            report.completed = true;
            break;
        }
        let start = open.unwrap_or_else(|| window_of(checkpoint));
        let window_end = (checkpoint..n)
            .find(|&i| window_of(i) != start)
            .unwrap_or(n);
        let is_final = open.is_some() && checkpoint >= window_end && !early;
        let records = if is_final || early {
            checkpoint..checkpoint
        } else {
            let size = batch_size().clamp(1, config.max_batch.max(1));
            checkpoint..(checkpoint + size).min(window_end)
        };
        report.invocations += 1;
        let answer = invoke(WindowInvoke {
            records: records.clone(),
            start,
            end: start + config.window_ms,
            state: state.clone(),
            is_final,
            terminated_early: early,
        })
        .await;
        let (returned, failures) = match answer {
            // The state is discarded; the same batch comes again with the state it had.
            WindowAnswer::FunctionError => {
                report.function_errors += 1;
                continue;
            }
            WindowAnswer::Response { state, failures } => (state, failures),
        };
        let reported: Option<Vec<usize>> = failures
            .iter()
            .map(|f| records.clone().find(|&i| ids[i] == *f))
            .collect();
        let Some(reported) = reported else {
            // An identifier not in the batch: the whole batch failed.
            report.function_errors += 1;
            continue;
        };
        if is_final || early {
            report.windows_closed += 1;
            state.clear();
            if is_final {
                open = None;
            }
            early = false;
            continue;
        }
        open = Some(start);
        successes += 1;
        let lost = config
            .lose_checkpoint_every
            .is_some_and(|k| k > 0 && successes.is_multiple_of(k));
        if !lost {
            checkpoint = reported.into_iter().min().unwrap_or(records.end);
        }
        if size(&returned) > config.state_limit {
            // Lambda cannot keep it: the window ends early with the last state it kept.
            report.oversized_states += 1;
            early = true;
            continue;
        }
        state = returned;
    }
    report
}

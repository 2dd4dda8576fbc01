//! An in-process model of the Kinesis event source mapping (ESM) contract, for tests.
//!
//! No free emulator implements what Lambda does with a batch's outcome, so this model does, as
//! AWS documents it, for one shard:
//! - batches are taken from the checkpoint, at most `max_batch` records;
//! - a response with `batchItemFailures` checkpoints before the lowest reported record and
//!   re-delivers from it (a retry); an identifier not in the batch fails the whole batch;
//! - a function error (crash, timeout) retries the batch, or with `bisect_on_error` splits it in
//!   two halves processed in order (splitting does not use up retries);
//! - after `max_retries` retries the batch goes to the on-failure destination and the
//!   checkpoint moves past it.
//!
//! Users can drive their own transforms through it to test idempotency.

use std::collections::{HashMap, VecDeque};
use std::future::Future;

/// The mapping's settings that shape re-delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EsmConfig {
    /// Most records in a fresh batch (`BatchSize`, default 100).
    pub max_batch: usize,
    /// `None`: retry until success (`MaximumRetryAttempts: -1`).
    pub max_retries: Option<u32>,
    /// Whether a function error splits the batch in two (`BisectBatchOnFunctionError`, default on).
    pub bisect_on_error: bool,
    /// Bound on invocations, so a test of a handler that never succeeds ends.
    pub max_invocations: usize,
}

impl Default for EsmConfig {
    fn default() -> Self {
        EsmConfig {
            max_batch: 100,
            max_retries: None,
            bisect_on_error: true,
            max_invocations: 10_000,
        }
    }
}

/// What one invocation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Invocation {
    /// A response: the reported item identifiers (empty: success).
    Response(Vec<String>),
    /// The function failed as a whole (error, crash, timeout).
    FunctionError,
}

/// What happened over a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EsmReport {
    /// Invocations made.
    pub invocations: usize,
    /// Responses that reported item failures.
    pub partial_failures: usize,
    /// Invocations that failed as a whole.
    pub function_errors: usize,
    /// Batches sent to the on-failure destination, as record index ranges.
    pub discarded: Vec<std::ops::Range<usize>>,
    /// Whether the checkpoint reached the end of the shard.
    pub completed: bool,
}

/// Drives the mapping over `ids` (the records' item identifiers, in shard order).
///
/// `batch_size` picks each fresh batch's size (1..=max_batch), standing in for the batching
/// window; `invoke` receives the batch as a range of record indexes.
pub async fn drive<F, Fut>(
    ids: &[String],
    config: EsmConfig,
    mut batch_size: impl FnMut() -> usize,
    mut invoke: F,
) -> EsmReport
where
    F: FnMut(std::ops::Range<usize>) -> Fut,
    Fut: Future<Output = Invocation>,
{
    let n = ids.len();
    let position: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut report = EsmReport::default();
    let mut checkpoint = 0;
    let mut pending: VecDeque<std::ops::Range<usize>> = VecDeque::new();
    let mut retries: HashMap<usize, u32> = HashMap::new();
    while report.invocations < config.max_invocations {
        let from_half = !pending.is_empty();
        let batch = match pending.pop_front() {
            Some(b) => b,
            None if checkpoint >= n => {
                report.completed = true;
                break;
            }
            None => {
                let size = batch_size().clamp(1, config.max_batch.max(1));
                checkpoint..(checkpoint + size).min(n)
            }
        };
        report.invocations += 1;
        let result = invoke(batch.clone()).await;
        let retry_from = match result {
            Invocation::Response(failures) if failures.is_empty() => {
                retries.remove(&batch.start);
                checkpoint = batch.end;
                continue;
            }
            Invocation::Response(failures) => {
                report.partial_failures += 1;
                let lowest = failures
                    .iter()
                    .map(|f| {
                        position
                            .get(f.as_str())
                            .copied()
                            .filter(|p| batch.contains(p))
                    })
                    .collect::<Option<Vec<usize>>>()
                    .and_then(|ps| ps.into_iter().min())
                    .unwrap_or(batch.start);
                Some(lowest)
            }
            Invocation::FunctionError => {
                report.function_errors += 1;
                None
            }
        };
        let start = retry_from.unwrap_or(batch.start);
        let count = retries.entry(start).or_insert(0);
        *count += 1;
        if config.max_retries.is_some_and(|max| *count > max) {
            retries.remove(&start);
            report.discarded.push(start..batch.end);
            checkpoint = batch.end;
            continue;
        }
        checkpoint = start;
        match retry_from {
            // Inside a bisected half, the retry stays within the half so later halves follow in order.
            Some(lowest) if from_half => pending.push_front(lowest..batch.end),
            // Otherwise the next batch is read afresh from the lowest failure: it may end before or
            // after the old batch's end.
            Some(_) => {}
            None if config.bisect_on_error && batch.len() > 1 => {
                // Splitting does not use up retries.
                if let Some(c) = retries.get_mut(&start) {
                    *c -= 1;
                }
                let mid = batch.start + batch.len() / 2;
                pending.push_front(mid..batch.end);
                pending.push_front(batch.start..mid);
            }
            None if from_half => pending.push_front(batch),
            // A whole batch that failed is read again from its start.
            None => {}
        }
    }
    report
}

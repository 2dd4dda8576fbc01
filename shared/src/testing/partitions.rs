//! An in-process model of a Kafka event source mapping's re-delivery, for tests: several
//! partitions in one batch, each resumed on its own.
//!
//! - Each batch takes, from every partition with records left, a run of records starting at that
//!   partition's checkpoint (a random count, at least one), partitions in order.
//! - A response's failures (partition, offset) move each partition with a failure to its lowest
//!   reported offset, and every other partition of the batch past the records it sent: Lambda
//!   retries only the failed records of each partition, from the first. An identifier not in the
//!   batch fails the whole batch.
//! - A function error retries the whole batch.

use std::future::Future;

/// What one invocation returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PartitionInvocation {
    /// The reported records as (partition index, offset index).
    Response(Vec<(usize, usize)>),
    /// A reported identifier the batch did not hold.
    UnknownIdentifier,
    /// The function failed as a whole.
    FunctionError,
}

/// What happened over a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PartitionReport {
    /// Invocations made.
    pub invocations: usize,
    /// Whether every partition's checkpoint reached its end.
    pub completed: bool,
}

/// Drives the mapping over partitions of `lengths[p]` records each. `random(n)` returns a number
/// in `0..n`; `invoke` receives, per partition, the range of record indexes in the batch.
pub async fn drive<F, Fut>(
    lengths: &[usize],
    max_invocations: usize,
    max_per_partition: usize,
    mut random: impl FnMut(usize) -> usize,
    mut invoke: F,
) -> PartitionReport
where
    F: FnMut(Vec<(usize, std::ops::Range<usize>)>) -> Fut,
    Fut: Future<Output = PartitionInvocation>,
{
    let mut checkpoints = vec![0usize; lengths.len()];
    let mut report = PartitionReport::default();
    while report.invocations < max_invocations {
        let batch: Vec<(usize, std::ops::Range<usize>)> = (0..lengths.len())
            .filter(|p| checkpoints[*p] < lengths[*p])
            .map(|p| {
                let left = lengths[p] - checkpoints[p];
                let n = 1 + random(left.min(max_per_partition.max(1)));
                (p, checkpoints[p]..checkpoints[p] + n)
            })
            .collect();
        if batch.is_empty() {
            report.completed = true;
            break;
        }
        report.invocations += 1;
        match invoke(batch.clone()).await {
            PartitionInvocation::FunctionError | PartitionInvocation::UnknownIdentifier => {}
            PartitionInvocation::Response(failures) => {
                for (p, range) in &batch {
                    let lowest = failures
                        .iter()
                        .filter(|(fp, off)| fp == p && range.contains(off))
                        .map(|(_, off)| *off)
                        .min();
                    checkpoints[*p] = lowest.unwrap_or(range.end);
                }
            }
        }
    }
    report
}

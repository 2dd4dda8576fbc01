//! An in-process model of the SQS event source mapping, for tests: what Lambda does with a
//! batch's outcome, as AWS documents it, for one queue.
//!
//! - A **standard** queue hands out visible messages in any order and any grouping: each batch
//!   is a random pick of at most `max_batch` of them.
//! - A **FIFO** queue hands them out in queue order: each batch is the first `max_batch`
//!   messages still in the queue (a sequential model of "one batch per message group at a
//!   time": a group's messages never overtake each other).
//! - A response deletes every message it does not report; the reported ones stay for a later
//!   receive. An identifier that is empty or not in the batch fails the whole batch, like a
//!   function error (crash, timeout): every message of the batch stays.
//! - A message received `max_receives` times and still not deleted moves to the dead-letter
//!   queue (`maxReceiveCount` of the redrive policy).

use std::collections::HashMap;
use std::future::Future;

pub use super::esm::Invocation;

/// The queue's settings that shape re-delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueueConfig {
    /// Most messages in a batch (`BatchSize`, 1-10,000).
    pub max_batch: usize,
    /// Whether the queue is FIFO.
    pub fifo: bool,
    /// `None`: no dead-letter queue, messages are received until deleted.
    pub max_receives: Option<u32>,
    /// Bound on invocations, so a test of a handler that never succeeds ends.
    pub max_invocations: usize,
}

/// What happened over a whole run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueReport {
    /// Invocations made.
    pub invocations: usize,
    /// Responses that reported some messages.
    pub partial_failures: usize,
    /// Invocations that failed as a whole (function error or a bad identifier).
    pub batch_failures: usize,
    /// Messages moved to the dead-letter queue, by index.
    pub dead_lettered: Vec<usize>,
    /// Whether the queue was emptied.
    pub completed: bool,
}

/// Drives the mapping over `ids` (the messages' ids, in send order).
///
/// `random(n)` returns a number in `0..n` (the test's seeded generator): it picks each batch's
/// size and, for a standard queue, its messages. `invoke` receives the batch as message indexes
/// in delivery order.
pub async fn drive<F, Fut>(
    ids: &[String],
    config: QueueConfig,
    mut random: impl FnMut(usize) -> usize,
    mut invoke: F,
) -> QueueReport
where
    F: FnMut(Vec<usize>) -> Fut,
    Fut: Future<Output = Invocation>,
{
    let position: HashMap<&str, usize> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.as_str(), i))
        .collect();
    let mut report = QueueReport::default();
    // Messages still in the queue, in send order.
    let mut queue: Vec<usize> = (0..ids.len()).collect();
    let mut receives = vec![0u32; ids.len()];
    while report.invocations < config.max_invocations {
        if queue.is_empty() {
            report.completed = true;
            break;
        }
        let size = 1 + random(config.max_batch.max(1).min(queue.len()));
        let batch: Vec<usize> = if config.fifo {
            queue[..size].to_vec()
        } else {
            let mut visible = queue.clone();
            // A partial Fisher-Yates shuffle: `size` messages in a random order.
            for k in 0..size {
                let j = k + random(visible.len() - k);
                visible.swap(k, j);
            }
            visible.truncate(size);
            visible
        };
        report.invocations += 1;
        for m in &batch {
            receives[*m] += 1;
        }
        let stays: Vec<usize> = match invoke(batch.clone()).await {
            Invocation::Response(failures) => {
                let reported: Option<Vec<usize>> = failures
                    .iter()
                    .map(|f| {
                        position
                            .get(f.as_str())
                            .copied()
                            .filter(|p| batch.contains(p))
                    })
                    .collect();
                match reported {
                    Some(r) if r.is_empty() => Vec::new(),
                    Some(r) => {
                        report.partial_failures += 1;
                        r
                    }
                    None => {
                        report.batch_failures += 1;
                        batch.clone()
                    }
                }
            }
            Invocation::FunctionError => {
                report.batch_failures += 1;
                batch.clone()
            }
        };
        queue.retain(|m| !batch.contains(m) || stays.contains(m));
        if let Some(max) = config.max_receives {
            let dead: Vec<usize> = queue
                .iter()
                .copied()
                .filter(|m| receives[*m] >= max)
                .collect();
            queue.retain(|m| receives[*m] < max);
            report.dead_lettered.extend(dead);
        }
    }
    report
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("m{i}")).collect()
    }

    fn config(fifo: bool) -> QueueConfig {
        QueueConfig {
            max_batch: 3,
            fifo,
            max_receives: Some(2),
            max_invocations: 100,
        }
    }

    #[test]
    fn reported_messages_come_back_until_the_dead_letter_queue_takes_them() {
        let ids = ids(5);
        let mut seen = Vec::new();
        let report = futures::executor::block_on(drive(
            &ids,
            config(true),
            |n| n - 1,
            |batch| {
                seen.push(batch.clone());
                // m1 always fails.
                let failed = batch
                    .iter()
                    .filter(|m| **m == 1)
                    .map(|m| format!("m{m}"))
                    .collect();
                async move { Invocation::Response(failed) }
            },
        ));
        assert!(report.completed);
        assert_eq!(report.dead_lettered, [1]);
        assert_eq!(seen, vec![vec![0, 1, 2], vec![1, 3, 4]]);
    }

    #[test]
    fn an_unknown_identifier_fails_the_whole_batch() {
        let ids = ids(2);
        let mut calls = 0;
        let report = futures::executor::block_on(drive(
            &ids,
            QueueConfig {
                max_receives: None,
                ..config(false)
            },
            |n| n - 1,
            |_| {
                calls += 1;
                let answer = if calls == 1 {
                    Invocation::Response(vec![String::new()])
                } else {
                    Invocation::Response(Vec::new())
                };
                async move { answer }
            },
        ));
        assert!(report.completed);
        assert_eq!((report.invocations, report.batch_failures), (2, 1));
    }
}

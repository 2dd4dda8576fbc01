//! What a batch's processing concludes, record by record: which records are held back before
//! anything is written, which are reported, and each record's status.

use crate::source::{BatchOutcome, FailureMode, RecordStatus, SourceRecord};
use crate::window::Observation;

use super::plan::{Dest, Prepared};

/// The records reported before anything is written: ordered, every record from the first that
/// failed transiently; per group, every record of a group from its first such record;
/// report-all, those records alone.
pub(super) fn blocked(
    records: &[SourceRecord<'_>],
    transient: &[bool],
    mode: FailureMode,
) -> Vec<bool> {
    match mode {
        FailureMode::ReportAll => transient.to_vec(),
        FailureMode::Ordered => {
            let cut = transient.iter().position(|t| *t).unwrap_or(records.len());
            (0..records.len()).map(|i| i >= cut).collect()
        }
        FailureMode::PerGroup => {
            let mut failed_groups = std::collections::HashSet::new();
            records
                .iter()
                .zip(transient)
                .map(|(r, t)| match r.partition_key {
                    Some(key) if failed_groups.contains(key) => true,
                    Some(key) if *t => {
                        failed_groups.insert(key);
                        true
                    }
                    _ => *t,
                })
                .collect()
        }
    }
}

/// Fills in what to report and each record's status once the batch is written.
pub(super) fn settle_statuses(
    records: &[SourceRecord<'_>],
    prepared: &Prepared,
    failed: &[bool],
    outcome: &mut BatchOutcome,
) {
    outcome.failures = records
        .iter()
        .zip(failed)
        .filter(|(_, f)| **f)
        .map(|(r, _)| r.item_identifier.to_string())
        .collect();
    outcome.records = statuses(prepared, failed);
    outcome.stats.records_failed = outcome.failures.len();
}

/// The observations of the outputs of records not reported, in item order.
pub(super) fn observed(prepared: Prepared, failed: &[bool]) -> Vec<(usize, Observation)> {
    prepared
        .items
        .into_iter()
        .filter(|item| !failed[item.record])
        .filter_map(|item| Some((item.record, *item.observed?)))
        .collect()
}

/// What happened to each record, from its items and whether it is reported.
fn statuses(prepared: &Prepared, failed: &[bool]) -> Vec<RecordStatus> {
    let mut written = vec![false; failed.len()];
    let mut quarantined = vec![false; failed.len()];
    for item in &prepared.items {
        match item.dest {
            Dest::Data(_) => written[item.record] = true,
            Dest::Quarantine(_) => quarantined[item.record] = true,
        }
    }
    (0..failed.len())
        .map(|i| {
            if failed[i] {
                RecordStatus::Failed
            } else if written[i] {
                RecordStatus::Written
            } else if quarantined[i] {
                RecordStatus::Quarantined
            } else {
                RecordStatus::Filtered
            }
        })
        .collect()
}

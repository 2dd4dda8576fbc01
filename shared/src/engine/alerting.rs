//! The rules' step of a batch: after its runs are written, the outputs of the records not
//! reported for retry are checked in order and their alerts published once
//! ([`crate::window::alerts`]).

use crate::source::{BatchOutcome, SourceRecord};
use crate::transform::Transform;

use super::plan::Prepared;
use super::Processor;

impl<T: Transform> Processor<T> {
    /// Publishes the alerts of what landed. When they cannot all be published every record is
    /// reported, so the retry (landing again under the same keys) publishes the rest.
    pub(super) async fn alert(
        &self,
        records: &[SourceRecord<'_>],
        prepared: &Prepared,
        mut failed: Vec<bool>,
        outcome: &mut BatchOutcome,
    ) -> Vec<bool> {
        let Some(alerts) = &self.alerts else {
            return failed;
        };
        let landed = prepared
            .items
            .iter()
            .filter(|item| !failed[item.record] && !item.probes.is_empty())
            .map(|item| (item.record, item.probes.as_slice()));
        let matches = alerts.rules.evaluate(landed);
        match alerts.deliver(self.store(), &matches, records).await {
            Ok(published) => outcome.stats.alerts_published += published,
            Err(e) => {
                tracing::warn!(error = %e, "alerts not published: the batch is reported for retry");
                outcome.errors.push(format!("alerts not published: {e}"));
                failed.fill(true);
            }
        }
        failed
    }
}

//! Every metric the framework records, named once: the pipelines, the Glue trigger and the alert
//! function use these constants, and a test checks the README's metric lists against `ALL`.

// The Glue trigger's and the alert function's names are used only with their features.
#![allow(dead_code)]

macro_rules! metric_names {
    ($($(#[$doc:meta])* $name:ident = $value:literal;)*) => {
        $($(#[$doc])* pub(crate) const $name: &str = $value;)*
        /// Every name above.
        #[cfg(test)]
        pub(crate) const ALL: &[&str] = &[$($name),*];
    };
}

metric_names! {
    /// Stream pipelines: records in the batch.
    RECORDS_IN = "RecordsIn";
    /// Stream pipelines: documents written to the curated output.
    DOCUMENTS_WRITTEN = "DocumentsWritten";
    /// Stream pipelines: documents (or whole records) quarantined.
    DOCUMENTS_QUARANTINED = "DocumentsQuarantined";
    /// Stream pipelines: records reported for retry.
    RECORDS_FAILED = "RecordsFailed";
    /// Stream pipelines: objects put.
    OBJECTS_WRITTEN = "ObjectsWritten";
    /// Stream pipelines (rules) and the alert function: alerts published.
    ALERTS_PUBLISHED = "AlertsPublished";
    /// Stream pipelines and object ingest: bytes read.
    BYTES_IN = "BytesIn";
    /// Stream pipelines: time to process the batch.
    BATCH_LATENCY = "BatchLatency";
    /// Stream sources: now minus the oldest record's arrival.
    ITERATOR_AGE = "IteratorAge";
    /// SQS: now minus the oldest message's `SentTimestamp` (instead of [`ITERATOR_AGE`]).
    MESSAGE_AGE = "MessageAge";

    /// Object ingest: objects whose rows were read.
    OBJECTS_INGESTED = "ObjectsIngested";
    /// Object ingest: rows read.
    ROWS_IN = "RowsIn";
    /// Object ingest: output documents written.
    ROWS_OUT = "RowsOut";
    /// Object ingest: rows quarantined.
    ROWS_QUARANTINED = "RowsQuarantined";
    /// Object ingest: time to ingest an object.
    INGEST_LATENCY = "IngestLatency";
    /// Object ingest: objects quarantined whole.
    OBJECTS_QUARANTINED = "ObjectsQuarantined";
    /// Object ingest: deliveries of a version already ingested.
    DUPLICATE_DELIVERIES = "DuplicateDeliveries";
    /// Object ingest: objects gone before they were read.
    OBJECTS_MISSING = "ObjectsMissing";
    /// Object ingest: markers (`_SUCCESS`) seen.
    MARKERS_SEEN = "MarkersSeen";
    /// Object ingest: objects (or invocations) that failed and are retried.
    INGEST_FAILURES = "IngestFailures";
    /// Object ingest: quarantined rows a redrive landed.
    ROWS_REDRIVEN = "RowsRedriven";

    /// The Glue trigger: a job run started.
    GLUE_RUNS_STARTED = "GlueRunsStarted";
    /// The Glue trigger: the day's input is not complete yet.
    GLUE_WAITING = "GlueWaiting";
    /// The Glue trigger: a run of the job is in progress.
    GLUE_ALREADY_RUNNING = "GlueAlreadyRunning";
    /// The Glue trigger: the day's run was started before.
    GLUE_ALREADY_STARTED = "GlueAlreadyStarted";

    /// The alert function: alerts held back inside the dedupe window.
    ALERTS_SUPPRESSED = "AlertsSuppressed";
    /// The alert function: events that call for no alert.
    ALERTS_IGNORED = "AlertsIgnored";
    /// The alert function: Glue `GetJobRun` lookups that failed.
    ENRICHMENT_FAILURES = "EnrichmentFailures";
    /// The alert function: stored on-failure records alerted on without their content.
    UNREAD_RECORDS = "UnreadRecords";
    /// The alert function: publishes that failed.
    PUBLISH_FAILURES = "PublishFailures";
}

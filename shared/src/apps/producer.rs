//! A Kinesis producer: PutRecords in batches within the API's limits, resending only the records
//! that failed (throughput exceeded, internal failure) with exponential backoff and full jitter.

use std::time::Duration;

use aws_sdk_kinesis::primitives::Blob;
use aws_sdk_kinesis::types::PutRecordsRequestEntry;

use crate::util::backoff::Backoff;

/// Most records in one PutRecords call.
pub const MAX_RECORDS_PER_CALL: usize = 500;
/// Most bytes in one PutRecords call (data and partition keys).
pub const MAX_BYTES_PER_CALL: usize = 5 * 1024 * 1024;
/// Most bytes in one record (data and partition key).
pub const MAX_RECORD_BYTES: usize = 1024 * 1024;

/// One record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// Chooses the shard (hashed by Kinesis).
    pub partition_key: String,
    /// The record's bytes.
    pub data: Vec<u8>,
}

impl Entry {
    fn size(&self) -> usize {
        self.data.len() + self.partition_key.len()
    }
}

/// Retry settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Most PutRecords calls per batch, the first included (default 10).
    pub max_attempts: u32,
    /// Bound of the first retry's wait (default 100 ms).
    pub base: Duration,
    /// Longest wait between calls (default 5 s).
    pub cap: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 10,
            base: Duration::from_millis(100),
            cap: Duration::from_secs(5),
        }
    }
}

impl RetryPolicy {
    /// The wait before resending after `attempt` calls: full jitter up to `base × 2^attempt`,
    /// at most `cap` (see [`Backoff`]).
    pub fn backoff(&self, attempt: u32, salt: u64) -> Duration {
        Backoff::new(self.base, self.cap).delay(attempt, salt)
    }
}

/// Progress after each call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Records accepted so far.
    pub sent: u64,
    /// Records to send.
    pub total: u64,
    /// Records resent so far (counted once per resend).
    pub retried: u64,
    /// Data bytes accepted so far.
    pub bytes: u64,
}

/// What a send came to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProduceReport {
    /// Records accepted.
    pub sent: u64,
    /// PutRecords calls made, retries included.
    pub calls: u64,
    /// Records resent (counted once per resend).
    pub retried_records: u64,
    /// Data bytes accepted.
    pub bytes: u64,
    /// Sequence number of each sent record, in input order.
    pub sequence_numbers: Vec<String>,
}

/// Why a send stopped. Records of earlier batches may have been sent already.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProduceError {
    /// A record is over [`MAX_RECORD_BYTES`]; checked before anything is sent.
    #[error("record {index} is {size} bytes; Kinesis accepts at most {MAX_RECORD_BYTES}")]
    RecordTooLarge {
        /// The record's position in the input.
        index: usize,
        /// Its data and partition key, in bytes.
        size: usize,
    },
    /// Records of a batch still failed after [`RetryPolicy::max_attempts`] calls.
    #[error("{failed} record(s) still failing after {attempts} attempts to {stream} (last error: {last})")]
    GaveUp {
        /// The stream.
        stream: String,
        /// Records of the batch not accepted.
        failed: usize,
        /// Calls made for the batch.
        attempts: u32,
        /// The last call's error, or the last failed record's code and message.
        last: String,
    },
}

/// Splits entries into PutRecords calls: at most 500 records and 5 MiB each.
pub fn batches(entries: &[Entry]) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut bytes = 0;
    for (i, e) in entries.iter().enumerate() {
        if i > start && (i - start == MAX_RECORDS_PER_CALL || bytes + e.size() > MAX_BYTES_PER_CALL)
        {
            out.push(start..i);
            start = i;
            bytes = 0;
        }
        bytes += e.size();
    }
    if start < entries.len() {
        out.push(start..entries.len());
    }
    out
}

/// Sends records to one stream.
#[derive(Debug, Clone)]
pub struct Producer {
    client: aws_sdk_kinesis::Client,
    stream: String,
    retry: RetryPolicy,
}

impl Producer {
    /// A producer for `stream` with the given retry settings.
    pub fn new(
        client: aws_sdk_kinesis::Client,
        stream: impl Into<String>,
        retry: RetryPolicy,
    ) -> Self {
        Producer {
            client,
            stream: stream.into(),
            retry,
        }
    }

    /// Sends every entry; calls `progress` after each PutRecords call.
    pub async fn send(
        &self,
        entries: &[Entry],
        mut progress: impl FnMut(Progress),
    ) -> Result<ProduceReport, ProduceError> {
        if let Some((index, e)) = entries
            .iter()
            .enumerate()
            .find(|(_, e)| e.size() > MAX_RECORD_BYTES)
        {
            return Err(ProduceError::RecordTooLarge {
                index,
                size: e.size(),
            });
        }
        let mut report = ProduceReport {
            sequence_numbers: vec![String::new(); entries.len()],
            ..Default::default()
        };
        for range in batches(entries) {
            let mut pending: Vec<usize> = range.collect();
            let mut attempt = 0;
            let mut last_error = String::new();
            while !pending.is_empty() {
                if attempt > 0 {
                    if attempt >= self.retry.max_attempts {
                        return Err(ProduceError::GaveUp {
                            stream: self.stream.clone(),
                            failed: pending.len(),
                            attempts: attempt,
                            last: last_error,
                        });
                    }
                    tokio::time::sleep(self.retry.backoff(attempt, pending[0] as u64)).await;
                    report.retried_records += pending.len() as u64;
                }
                attempt += 1;
                let records: Vec<PutRecordsRequestEntry> = pending
                    .iter()
                    .map(|&i| {
                        PutRecordsRequestEntry::builder()
                            .partition_key(&entries[i].partition_key)
                            .data(Blob::new(entries[i].data.clone()))
                            .build()
                            .expect("partition key and data are set")
                    })
                    .collect();
                report.calls += 1;
                let out = match self
                    .client
                    .put_records()
                    .stream_name(&self.stream)
                    .set_records(Some(records))
                    .send()
                    .await
                {
                    Ok(out) => out,
                    Err(e) => {
                        // The whole call failed (throttled, unavailable): resend all of it.
                        last_error = crate::error::chain(&e);
                        continue;
                    }
                };
                let mut still = Vec::new();
                for (&i, r) in pending.iter().zip(out.records()) {
                    match (r.error_code(), r.sequence_number()) {
                        (None, Some(seq)) => {
                            report.sequence_numbers[i] = seq.to_string();
                            report.sent += 1;
                            report.bytes += entries[i].data.len() as u64;
                        }
                        (code, _) => {
                            last_error = format!(
                                "{}: {}",
                                code.unwrap_or("unknown"),
                                r.error_message().unwrap_or_default()
                            );
                            still.push(i);
                        }
                    }
                }
                pending = still;
                progress(Progress {
                    sent: report.sent,
                    total: entries.len() as u64,
                    retried: report.retried_records,
                    bytes: report.bytes,
                });
            }
        }
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: usize) -> Entry {
        Entry {
            partition_key: "k".into(),
            data: vec![b'x'; n],
        }
    }

    #[test]
    fn batches_respect_count_and_size_limits() {
        let small: Vec<Entry> = (0..1201).map(|_| entry(10)).collect();
        assert_eq!(batches(&small), vec![0..500, 500..1000, 1000..1201]);
        let big: Vec<Entry> = (0..12).map(|_| entry(1_000_000)).collect();
        let b = batches(&big);
        assert_eq!(b, vec![0..5, 5..10, 10..12]);
        assert!(batches(&[]).is_empty());
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let p = RetryPolicy {
            max_attempts: 5,
            base: Duration::from_millis(100),
            cap: Duration::from_millis(800),
        };
        for attempt in 0..10 {
            let d = p.backoff(attempt, 7);
            assert!(
                d <= Duration::from_millis((100u64 << attempt.min(16)).min(800)),
                "{attempt}: {d:?}"
            );
        }
    }
}

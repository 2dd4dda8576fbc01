//! `runnel replay`: invokes a function again with a batch its event source mapping gave up on,
//! from the on-failure record (see `runnel::apps::replay`).

use std::io::Read;

use anyhow::{bail, Context};
use runnel::apps::replay::{
    invoke, read_kinesis_batch, OnFailureRecord, ReplayEvent, StreamBatchInfo,
};

#[derive(clap::Args)]
pub struct ReplayArgs {
    /// The on-failure record: a file, `s3://bucket/key` (an S3 on-failure destination's object),
    /// or `-` for standard input (an SQS or SNS destination's message body).
    #[arg(long, conflicts_with = "stream_arn")]
    record: Option<String>,
    /// Or the Kinesis batch itself: the stream's ARN (with --shard, --from and --to, as a
    /// failure alert prints them).
    #[arg(long, requires_all = ["shard", "from", "to"])]
    stream_arn: Option<String>,
    /// The batch's shard.
    #[arg(long)]
    shard: Option<String>,
    /// The batch's first sequence number.
    #[arg(long)]
    from: Option<String>,
    /// The batch's last sequence number.
    #[arg(long)]
    to: Option<String>,
    /// The function to invoke (default: the one the record names).
    #[arg(long)]
    function: Option<String>,
    /// Print the event instead of invoking (for `sam local invoke -e` or `cargo lambda invoke`).
    #[arg(long)]
    print_event: bool,
}

pub async fn run(args: ReplayArgs) -> anyhow::Result<()> {
    let aws = runnel::aws::Aws::from_env().await;
    let (record, range) = match (&args.record, &args.stream_arn) {
        (Some(source), _) => {
            let text = read_record(&aws, source).await?;
            let record =
                OnFailureRecord::parse(&text).with_context(|| format!("reading {source}"))?;
            let event = record.replay_event()?;
            (Some(record), event)
        }
        (None, Some(arn)) => {
            let batch = StreamBatchInfo {
                shard_id: args.shard.clone().unwrap_or_default(),
                start_sequence_number: args.from.clone().unwrap_or_default(),
                end_sequence_number: args.to.clone().unwrap_or_default(),
                batch_size: None,
                stream_arn: arn.clone(),
            };
            (None, ReplayEvent::KinesisRange(batch))
        }
        (None, None) => bail!("give --record, or --stream-arn with --shard, --from and --to"),
    };
    let (event, described) = match range {
        ReplayEvent::Payload(bytes) => {
            // Checked here so a corrupt payload is not sent to the function.
            serde_json::from_slice::<serde::de::IgnoredAny>(&bytes)
                .context("the record's payload is not JSON")?;
            (bytes, "the batch from the record's payload".to_string())
        }
        ReplayEvent::KinesisRange(batch) => {
            eprintln!(
                "replay: reading {} {}..{} from {}",
                batch.shard_id,
                batch.start_sequence_number,
                batch.end_sequence_number,
                batch.stream_arn
            );
            let event = read_kinesis_batch(&aws.kinesis(), &batch).await?;
            let described = format!(
                "{} records of {} read again from the stream",
                event.records.len(),
                batch.shard_id
            );
            (serde_json::to_vec(&event)?, described)
        }
    };
    if args.print_event {
        println!("{}", String::from_utf8_lossy(&event));
        eprintln!("replay: printed {described}");
        return Ok(());
    }
    let function = args
        .function
        .clone()
        .or_else(|| {
            record
                .as_ref()
                .and_then(|r| r.function_name().map(str::to_string))
        })
        .context("give --function: the record names no function")?;
    let answer = invoke(&aws.lambda(), &function, event)
        .await
        .with_context(|| format!("invoking {function}"))?;
    if let Some(error) = &answer.function_error {
        bail!(
            "{function} failed on {described} ({error}): {}",
            answer.body
        );
    }
    if !answer.failed.is_empty() {
        bail!(
            "{function} reported {} of {described} for retry: {}; run the replay again (it is \
             idempotent) once the cause is fixed",
            answer.failed.len(),
            answer.failed.join(", ")
        );
    }
    println!("replay: {function} processed {described}; none reported for retry");
    Ok(())
}

/// The record's text from a file, an S3 object or standard input.
async fn read_record(aws: &runnel::aws::Aws, source: &str) -> anyhow::Result<Vec<u8>> {
    if source == "-" {
        let mut text = Vec::new();
        std::io::stdin().read_to_end(&mut text)?;
        return Ok(text);
    }
    if let Some(path) = source.strip_prefix("s3://") {
        let (bucket, key) = path
            .split_once('/')
            .context("an S3 record is s3://bucket/key")?;
        let object = aws
            .s3()
            .get_object()
            .bucket(bucket)
            .key(key)
            .send()
            .await
            .with_context(|| format!("reading {source}"))?;
        return Ok(object.body.collect().await?.into_bytes().to_vec());
    }
    std::fs::read(source).with_context(|| format!("reading {source}"))
}

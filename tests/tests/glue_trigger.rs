//! Starting the day's Glue job: preconditions against the emulator's S3 and Glue API, the
//! no-second-run rule, and retries on a throttled start (injected with aws-smithy-mocks).

use std::time::Duration;

use aws_sdk_glue::operation::get_job_runs::GetJobRunsOutput;
use aws_sdk_glue::operation::start_job_run::{StartJobRunError, StartJobRunOutput};
use aws_sdk_glue::types::error::ConcurrentRunsExceededException;
use aws_sdk_glue::types::{JobRun, JobRunState};
use aws_sdk_glue::Client as GlueClient;
use aws_smithy_mocks::{mock, mock_client, RuleMode};
use runnel::apps::glue_trigger::{Decision, GlueTrigger, GlueTriggerConfig, Precondition};
use runnel::ingest::index_key;
use runnel::ingest::{HookConfig, Ingest, IngestConfig};
use runnel::sink::Location;
use runnel::sink::S3Store;
use runnel::util::backoff::Backoff;
use runnel_tests::*;
use s3_ingest::TransactionTransform;

const DAY: &str = "2026-11-22";
const CSV: &str = "transaction_id,account_id,amount,currency,timestamp,merchant,category,country\ntx-1,acc-1,1.00,EUR,2026-11-22T10:00:00Z,Shop,,DE\n";

async fn new_job(aws: &runnel::aws::Aws) -> String {
    let job = unique_name("daily-etl");
    aws.glue()
        .create_job()
        .name(&job)
        .role("arn:aws:iam::000000000000:role/glue")
        .command(
            aws_sdk_glue::types::JobCommand::builder()
                .name("glueetl")
                .script_location("s3://scripts/daily_etl.py")
                .build(),
        )
        .send()
        .await
        .unwrap();
    job
}

fn ingest(
    aws: &runnel::aws::Aws,
    curated: &str,
    job: &str,
    precondition: &str,
) -> Ingest<TransactionTransform> {
    let vars = [
        ("OUTPUT_BUCKET", curated.to_string()),
        ("OUTPUT_PREFIX", "transactions".to_string()),
        ("STATE_PREFIX", "manifests/transactions".to_string()),
        ("GLUE_JOB_NAME", job.to_string()),
        ("GLUE_PRECONDITION", precondition.to_string()),
        (
            "GLUE_OUTPUT_PATH",
            "s3://analytics/transactions/".to_string(),
        ),
    ];
    let lookup = |n: &str| vars.iter().find(|(k, _)| *k == n).map(|(_, v)| v.clone());
    let cfg = IngestConfig::from_lookup("s3-ingest", lookup).unwrap();
    let hook = GlueTriggerConfig::from_lookup(lookup)
        .unwrap()
        .expect("GLUE_JOB_NAME is set");
    let hook = hook.build(&cfg, aws);
    s3_ingest::pipeline()
        .store(S3Store::new(aws.s3()))
        .config(cfg)
        .hook(hook)
        .build()
        .unwrap()
        .into_ingest()
}

async fn deliver(
    aws: &runnel::aws::Aws,
    ingest: &Ingest<TransactionTransform>,
    bucket: &str,
    key: &str,
    body: &str,
) -> Option<Decision> {
    let etag = put_object(aws, bucket, key, body.as_bytes().to_vec()).await;
    let objs =
        runnel::s3event::objects(&s3_put_notification(bucket, key, &etag, body.len() as u64))
            .unwrap();
    let (_, report) = ingest.ingest(&objs[0]).await.unwrap();
    let report = report?;
    assert_eq!(report.hook, "glue");
    let decision = Decision::from_report(&report).expect("a Glue decision");
    assert_eq!(report.metric, decision.metric());
    Some(decision)
}

#[tokio::test]
async fn marker_precondition_starts_one_run_per_set_of_inputs() {
    let aws = emulator().await;
    let raw = new_bucket(&aws, "raw").await;
    let curated = new_bucket(&aws, "curated").await;
    let job = new_job(&aws).await;
    let ingest = ingest(&aws, &curated, &job, "marker");
    let folder = format!("transactions/dt={DAY}");

    let d1 = deliver(&aws, &ingest, &raw, &format!("{folder}/part-1.csv"), CSV)
        .await
        .unwrap();
    assert!(
        matches!(&d1, Decision::Waiting { reason } if reason.starts_with("no _SUCCESS marker")),
        "{d1:?}"
    );
    // The second file is uploaded but its event is late: the marker must wait for it.
    put_object(
        &aws,
        &raw,
        &format!("{folder}/part-2.csv"),
        CSV.as_bytes().to_vec(),
    )
    .await;
    let d2 = deliver(&aws, &ingest, &raw, &format!("{folder}/_SUCCESS"), "")
        .await
        .unwrap();
    assert!(
        matches!(&d2, Decision::Waiting { reason } if reason.starts_with("1 object(s) not ingested yet")),
        "{d2:?}"
    );
    let d3 = deliver(&aws, &ingest, &raw, &format!("{folder}/part-2.csv"), CSV)
        .await
        .unwrap();
    let Decision::Started { run_id, attempts } = d3 else {
        panic!("{d3:?}")
    };
    assert_eq!(attempts, 1);
    // The marker delivered again: the same inputs are not started twice.
    let d4 = deliver(&aws, &ingest, &raw, &format!("{folder}/_SUCCESS"), "")
        .await
        .unwrap();
    assert_eq!(d4, Decision::AlreadyStarted);

    let runs = aws
        .glue()
        .get_job_runs()
        .job_name(&job)
        .send()
        .await
        .unwrap();
    assert_eq!(runs.job_runs().len(), 1);
    let run = &runs.job_runs()[0];
    assert_eq!(run.id(), Some(run_id.as_str()));
    let args = run.arguments().unwrap();
    assert_eq!(args["--date"], DAY);
    assert_eq!(
        args["--input_path"],
        format!("s3://{curated}/transactions/dt={DAY}/")
    );
    assert_eq!(args["--output_path"], "s3://analytics/transactions/");

    // A corrected file changes the day's inputs: one more run (the first has finished).
    let d5 = deliver(
        &aws,
        &ingest,
        &raw,
        &format!("{folder}/part-2.csv"),
        &CSV.replace("1.00", "2.00"),
    )
    .await
    .unwrap();
    assert!(matches!(d5, Decision::Started { .. }), "{d5:?}");
    assert_eq!(
        aws.glue()
            .get_job_runs()
            .job_name(&job)
            .send()
            .await
            .unwrap()
            .job_runs()
            .len(),
        2
    );
}

#[tokio::test]
async fn count_precondition_waits_for_n_objects() {
    let aws = emulator().await;
    let raw = new_bucket(&aws, "raw").await;
    let curated = new_bucket(&aws, "curated").await;
    let job = new_job(&aws).await;
    let ingest = ingest(&aws, &curated, &job, "count:2");
    let d1 = deliver(&aws, &ingest, &raw, &format!("in/dt={DAY}/a.csv"), CSV)
        .await
        .unwrap();
    assert_eq!(
        d1,
        Decision::Waiting {
            reason: "1 of 2 objects ingested".into()
        }
    );
    let d2 = deliver(&aws, &ingest, &raw, &format!("in/dt={DAY}/b.csv"), CSV)
        .await
        .unwrap();
    assert!(matches!(d2, Decision::Started { .. }), "{d2:?}");
}

fn trigger(aws: &runnel::aws::Aws, glue: GlueClient, state_bucket: &str) -> GlueTrigger {
    GlueTrigger {
        glue: glue.into(),
        s3: aws.s3(),
        job_name: "daily-etl".into(),
        precondition: Precondition::Count(1),
        state: Location::new(state_bucket, "manifests/transactions"),
        input: Location::new(state_bucket, "transactions"),
        output_path: None,
        max_attempts: 3,
        backoff: Backoff::new(Duration::from_millis(5), Duration::from_millis(5 * 1024)),
    }
}

async fn one_ingested_object(aws: &runnel::aws::Aws) -> String {
    let bucket = new_bucket(aws, "state").await;
    let index = index_key(
        &Location::new(&bucket, "manifests/transactions"),
        DAY,
        "in/a.csv",
        "etag1",
    );
    put_object(aws, &bucket, &index, b"{}".to_vec()).await;
    bucket
}

fn no_runs() -> aws_smithy_mocks::Rule {
    mock!(GlueClient::get_job_runs).then_output(|| GetJobRunsOutput::builder().build())
}

#[tokio::test]
async fn a_run_of_the_same_day_still_running_blocks_a_second_start() {
    let aws = emulator().await;
    let bucket = one_ingested_object(&aws).await;
    let running = mock!(GlueClient::get_job_runs).then_output(|| {
        GetJobRunsOutput::builder()
            .job_runs(
                JobRun::builder()
                    .id("jr_running")
                    .job_run_state(JobRunState::Running)
                    .arguments("--date", DAY)
                    .build(),
            )
            .job_runs(
                JobRun::builder()
                    .id("jr_other_day")
                    .job_run_state(JobRunState::Running)
                    .arguments("--date", "2026-11-21")
                    .build(),
            )
            .build()
    });
    let start = mock!(GlueClient::start_job_run)
        .then_output(|| StartJobRunOutput::builder().job_run_id("jr_new").build());
    let glue = mock_client!(aws_sdk_glue, RuleMode::MatchAny, &[&running, &start]);
    let t = trigger(&aws, glue, &bucket);
    assert_eq!(
        t.on_day(DAY, &bucket, "in").await.unwrap(),
        Decision::AlreadyRunning {
            run_id: "jr_running".into()
        }
    );
    assert_eq!(start.num_calls(), 0);
    // The claim was released, so once the run ends a later event can start one.
    let glue = mock_client!(aws_sdk_glue, RuleMode::MatchAny, &[&no_runs(), &start]);
    let t = trigger(&aws, glue, &bucket);
    assert!(matches!(
        t.on_day(DAY, &bucket, "in").await.unwrap(),
        Decision::Started { .. }
    ));
}

#[tokio::test]
async fn throttled_start_is_retried_with_backoff() {
    let aws = emulator().await;
    let bucket = one_ingested_object(&aws).await;
    let start = mock!(GlueClient::start_job_run)
        .sequence()
        .error(|| {
            StartJobRunError::ConcurrentRunsExceededException(
                ConcurrentRunsExceededException::builder()
                    .message("too many")
                    .build(),
            )
        })
        .times(2)
        .output(|| {
            StartJobRunOutput::builder()
                .job_run_id("jr_after_retries")
                .build()
        })
        .build();
    let glue = mock_client!(aws_sdk_glue, RuleMode::MatchAny, &[&no_runs(), &start]);
    let decision = trigger(&aws, glue, &bucket)
        .on_day(DAY, &bucket, "in")
        .await
        .unwrap();
    assert_eq!(
        decision,
        Decision::Started {
            run_id: "jr_after_retries".into(),
            attempts: 3
        }
    );
    assert_eq!(start.num_calls(), 3);
}

#[tokio::test]
async fn a_start_that_keeps_failing_is_an_error_and_releases_the_claim() {
    let aws = emulator().await;
    let bucket = one_ingested_object(&aws).await;
    let start = mock!(GlueClient::start_job_run)
        .sequence()
        .error(|| {
            StartJobRunError::ConcurrentRunsExceededException(
                ConcurrentRunsExceededException::builder()
                    .message("too many")
                    .build(),
            )
        })
        .repeatedly()
        .build();
    let glue = mock_client!(aws_sdk_glue, RuleMode::MatchAny, &[&no_runs(), &start]);
    let err = trigger(&aws, glue, &bucket)
        .on_day(DAY, &bucket, "in")
        .await
        .unwrap_err();
    assert!(
        err.to_string()
            .starts_with("StartJobRun daily-etl for 2026-11-22 failed after 3 attempt(s)"),
        "{err}"
    );
    assert!(
        list_keys(&aws, &bucket, "manifests/transactions/_glue/")
            .await
            .is_empty(),
        "claim released"
    );
}

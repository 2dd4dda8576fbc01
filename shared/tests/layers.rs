//! The handler a pipeline's `run` serves: the user's layers run inside the invocation layer, in
//! the order given, around the runner, for batches and redrive requests alike; the answer comes
//! back out through them.

mod common;

use std::sync::{Arc, Mutex};

use aws_lambda_events::event::streams::KinesisEventResponse;
use base64::Engine as _;
use common::*;
use lambda_runtime::tower::layer::layer_fn;
use lambda_runtime::tower::{service_fn, Layer, Service, ServiceExt as _};
use lambda_runtime::{Context, LambdaEvent};
use runnel::pipeline::redrive::{RedriveRequest, StreamAnswer, StreamEvent};
use runnel::pipeline::{Pipeline, StreamConfig, StreamHandler};
use runnel::sink::MemoryStore;
use runnel::source::kinesis::KinesisBatch;
use runnel::source::Kinesis;
use runnel::testing::documents_under;

type Seen = Arc<Mutex<Vec<String>>>;

/// A layer that notes each event's request id on the way in and the answer on the way out.
fn noting(
    name: &'static str,
    seen: Seen,
) -> impl Layer<
    StreamHandler<Kinesis>,
    Service = impl Service<
        LambdaEvent<StreamEvent<KinesisBatch>>,
        Response = StreamAnswer<KinesisEventResponse>,
        Error = lambda_runtime::Error,
        Future = impl Send,
    > + Clone
                  + Send,
> + Send
       + Sync {
    layer_fn(move |inner: StreamHandler<Kinesis>| {
        let seen = seen.clone();
        service_fn(move |event: LambdaEvent<StreamEvent<KinesisBatch>>| {
            let (seen, inner) = (seen.clone(), inner.clone());
            async move {
                let note = |what: String| seen.lock().unwrap().push(what);
                note(format!("{name} in {}", event.context.request_id));
                let answer = inner.oneshot(event).await?;
                note(format!("{name} out {}", serde_json::to_string(&answer)?));
                Ok::<_, lambda_runtime::Error>(answer)
            }
        })
    })
}

fn batch(lines: &[String]) -> KinesisBatch {
    let records: Vec<serde_json::Value> = lines
        .iter()
        .enumerate()
        .map(|(i, line)| {
            serde_json::json!({
                "eventID": format!("{SHARD}:{}", seq(i)),
                "kinesis": {
                    "sequenceNumber": seq(i),
                    "partitionKey": "p",
                    "data": base64::engine::general_purpose::STANDARD.encode(line),
                    "approximateArrivalTimestamp": 1795323300.25
                }
            })
        })
        .collect();
    serde_json::from_value(serde_json::json!({ "Records": records })).unwrap()
}

fn invocation<E>(payload: E, request_id: &str) -> LambdaEvent<E> {
    let mut context = Context::default();
    context.request_id = request_id.into();
    LambdaEvent::new(payload, context)
}

#[tokio::test]
async fn user_layers_run_in_order_around_every_invocation() {
    let store = MemoryStore::new();
    let seen = Seen::default();
    let handler = Pipeline::new("iot")
        .source(Kinesis)
        .transform(TestTransform::default())
        .config(StreamConfig::new("iot", "curated"))
        .store(store.clone())
        .layer(noting("outer", seen.clone()))
        .layer(noting("inner", seen.clone()))
        .build()
        .unwrap()
        .into_handler();

    let lines = [reading_json("dev-a", 1, 1), reading_json("dev-b", 2, 2)];
    let answer = handler
        .clone()
        .oneshot(invocation(StreamEvent::Batch(batch(&lines)), "req-1"))
        .await
        .unwrap();
    assert_eq!(
        serde_json::to_value(&answer).unwrap(),
        serde_json::json!({ "batchItemFailures": [] })
    );
    assert_eq!(
        documents_under(&store, "curated", "iot/").unwrap().len(),
        2,
        "the runner inside the layers landed the batch"
    );
    let empty = r#"{"batchItemFailures":[]}"#;
    assert_eq!(
        *seen.lock().unwrap(),
        [
            "outer in req-1".to_string(),
            "inner in req-1".to_string(),
            format!("inner out {empty}"),
            format!("outer out {empty}"),
        ]
    );

    // A redrive request goes through the same layers.
    seen.lock().unwrap().clear();
    let answer = handler
        .oneshot(invocation(
            StreamEvent::Redrive(RedriveRequest::default()),
            "req-2",
        ))
        .await
        .unwrap();
    let answer = serde_json::to_value(&answer).unwrap();
    assert_eq!(answer["landed"], serde_json::json!([]), "{answer}");
    let seen = seen.lock().unwrap();
    assert_eq!(seen[..2], ["outer in req-2", "inner in req-2"]);
    assert_eq!(seen.len(), 4, "{seen:?}");
}

//! The one Lambda loop. Every runner — stream, ingest, the alert app — is a [`Function`]; the
//! invocation layer wraps it, with the user's own layers inside, into one [`Handler`] that the
//! Lambda runtime serves.
//!
//! Per invocation the layer sets the log context (request id, cold start), gives the function a
//! metrics document carrying both as properties ([`telemetry::record`]), and flushes it as EMF once the
//! function answers, whatever the answer. A user layer is any [`tower::Layer`] over a
//! [`Handler`]: it runs inside that context, so its log lines carry the request id.
//!
//! ```no_run
//! # use runnel::prelude::*;
//! # struct Clicks;
//! # impl Transform for Clicks {
//! #     type Input = serde_json::Value;
//! #     type Output = serde_json::Value;
//! #     fn apply(&self, v: serde_json::Value, _: &RecordContext<'_>, out: &mut Outputs<serde_json::Value>)
//! #         -> Result<(), TransformError> { out.push(v); Ok(()) }
//! # }
//! use lambda_runtime::tower::layer::layer_fn;
//! use lambda_runtime::tower::ServiceExt as _;
//!
//! # async fn main_() -> Result<(), lambda_runtime::Error> {
//! Pipeline::new("clicks")
//!     .source(Kinesis)
//!     .transform(Clicks)
//!     .layer(layer_fn(|inner: runnel::pipeline::Handler<_, _>| {
//!         inner.map_request(|event: lambda_runtime::LambdaEvent<_>| {
//!             tracing::info!(deadline = event.context.deadline, "invoked");
//!             event
//!         })
//!     }))
//!     .run()
//!     .await
//! # }
//! ```

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use lambda_runtime::tower::util::BoxCloneService;
use lambda_runtime::tower::{Layer, Service};
use lambda_runtime::LambdaEvent;
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::aws::Aws;
use crate::config::ConfigError;
use crate::telemetry::{self, Metrics};

/// A function's handler with its layers: what the Lambda runtime serves.
pub type Handler<E, R> = BoxCloneService<LambdaEvent<E>, R, lambda_runtime::Error>;

/// A user's layer, kept until the handler is assembled.
pub(crate) type UserLayer<E, R> = Box<dyn FnOnce(Handler<E, R>) -> Handler<E, R> + Send + Sync>;

/// A tower [`Layer`] a user adds around a function of events `E` answering `R` (the argument of
/// the pipelines' and the alert function's `.layer(..)`); every layer whose service answers as
/// the function does is one.
pub trait FunctionLayer<E, R>: Send + Sync + 'static {
    /// Boxes the layer until the handler is assembled.
    #[doc(hidden)]
    fn boxed(self) -> UserLayer<E, R>;
}

impl<E, R, L> FunctionLayer<E, R> for L
where
    E: Send + 'static,
    R: Send + 'static,
    L: Layer<Handler<E, R>> + Send + Sync + 'static,
    L::Service: Service<LambdaEvent<E>, Response = R, Error = lambda_runtime::Error>
        + Clone
        + Send
        + 'static,
    <L::Service as Service<LambdaEvent<E>>>::Future: Send + 'static,
{
    fn boxed(self) -> UserLayer<E, R> {
        Box::new(move |inner| BoxCloneService::new(self.layer(inner)))
    }
}

/// One invocation's work: an event in, the answer out. Metrics go to [`telemetry::record`].
pub trait Function: Send + Sync + 'static {
    /// The event Lambda delivers.
    type Event: DeserializeOwned + Send + 'static;
    /// The answer.
    type Response: Serialize + Send + 'static;

    /// Handles one invocation.
    fn call(
        &self,
        event: LambdaEvent<Self::Event>,
    ) -> impl Future<Output = Result<Self::Response, lambda_runtime::Error>> + Send;
}

/// A [`Function`] as a [`Service`].
struct FunctionService<F>(Arc<F>);

impl<F> Clone for FunctionService<F> {
    fn clone(&self) -> Self {
        FunctionService(self.0.clone())
    }
}

type BoxedAnswer<R> = Pin<Box<dyn Future<Output = Result<R, lambda_runtime::Error>> + Send>>;

impl<F: Function> Service<LambdaEvent<F::Event>> for FunctionService<F> {
    type Response = F::Response;
    type Error = lambda_runtime::Error;
    type Future = BoxedAnswer<F::Response>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, event: LambdaEvent<F::Event>) -> Self::Future {
        let function = self.0.clone();
        Box::pin(async move { function.call(event).await })
    }
}

/// The handler of `function`: the invocation layer outermost, then `layers` in the order given
/// (the first given runs first), then the function.
pub(crate) fn assemble<F: Function>(
    function: F,
    metrics: Metrics,
    layers: Vec<UserLayer<F::Event, F::Response>>,
) -> Handler<F::Event, F::Response> {
    let mut handler = BoxCloneService::new(FunctionService(Arc::new(function)));
    for layer in layers.into_iter().rev() {
        handler = layer(handler);
    }
    BoxCloneService::new(InvocationLayer { metrics }.layer(handler))
}

/// Logging and configuration before the first event: the one start of every function. Reads the
/// configuration (every problem logged at once), and builds the AWS clients when `needs_aws`
/// says so for what was read — without a network call.
pub(crate) async fn start<C>(
    service: &str,
    config: impl FnOnce() -> Result<C, ConfigError>,
    needs_aws: impl FnOnce(&C) -> bool,
) -> Result<(C, Option<Aws>), lambda_runtime::Error> {
    telemetry::init_logging(service);
    let config = crate::config::logged(config())?;
    let aws = match needs_aws(&config) {
        true => Some(Aws::from_env().await),
        false => None,
    };
    Ok((config, aws))
}

/// Serves `handler` until the runtime stops.
pub(crate) async fn serve<E, R>(handler: Handler<E, R>) -> Result<(), lambda_runtime::Error>
where
    E: DeserializeOwned + Send + 'static,
    R: Serialize + Send + 'static,
{
    lambda_runtime::run(handler).await
}

/// Log context, metrics document and flush around each invocation.
#[derive(Clone)]
struct InvocationLayer {
    metrics: Metrics,
}

impl<S> Layer<S> for InvocationLayer {
    type Service = InvocationService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        InvocationService {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
struct InvocationService<S> {
    inner: S,
    metrics: Metrics,
}

impl<S, E> Service<LambdaEvent<E>> for InvocationService<S>
where
    S: Service<LambdaEvent<E>, Error = lambda_runtime::Error>,
    S::Future: Send + 'static,
    S::Response: 'static,
{
    type Response = S::Response;
    type Error = lambda_runtime::Error;
    type Future = BoxedAnswer<S::Response>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, event: LambdaEvent<E>) -> Self::Future {
        let request_id = event.context.request_id.clone();
        let cold_start = telemetry::begin_invocation(&request_id, None);
        let mut metrics = self.metrics.clone();
        metrics.property("request_id", request_id);
        metrics.property("cold_start", cold_start);
        let answer = self.inner.call(event);
        Box::pin(
            telemetry::INVOCATION_METRICS.scope(RefCell::new(metrics), async move {
                let answer = answer.await;
                telemetry::INVOCATION_METRICS.with(|m| m.borrow_mut().flush());
                answer
            }),
        )
    }
}

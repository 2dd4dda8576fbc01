//! AWS client setup: one `SdkConfig`, loaded once and shared by every client.
//!
//! `AWS_ENDPOINT_URL` and the per-service `AWS_ENDPOINT_URL_<SERVICE>` (S3, SNS, GLUE, KINESIS)
//! point clients at an emulator, as in the SDK, except that an empty value counts as unset: `sam
//! local` passes every variable the template declares, and an undeclared one cannot be given at
//! all, so the template declares `AWS_ENDPOINT_URL` and it arrives empty unless a run sets it.
//! Each client takes its endpoint from [`EndpointSettings`], not from the SDK's own reading of the
//! environment, which would try to call an empty URL. When an S3 endpoint is overridden, S3 uses
//! path-style addressing (`http://host/bucket/key`): emulators do not resolve `bucket.host` names. Loading makes no network call while the region comes from
//! `AWS_REGION` (always set on Lambda); credentials are resolved on first use.
//!
//! When the environment holds access keys (Lambda always sets the execution role's keys), they are
//! used directly instead of through the default provider chain. The chain would pick the same
//! keys first, but building it (profile, SSO, web identity, container and IMDS providers and their
//! HTTPS client) is most of an SDK configuration's load time: about 1 ms of a 5 ms cold start here
//! (BENCHMARKS.md).
//!
//! [`s3`] holds the S3 helpers several modules share, [`arn`] reads parts of ARNs; `glue` reads
//! Glue job runs (features `alert` or `glue`). The Kinesis, SNS and Glue clients exist only with the features that use them.

pub mod arn;
#[cfg(any(feature = "alert", feature = "glue"))]
pub mod glue;
mod lazy;
pub mod s3;

pub use lazy::LazyClient;

use std::sync::{Arc, OnceLock};
use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// The services whose `AWS_ENDPOINT_URL_<SERVICE>` variable is read.
const SERVICES: [&str; 6] = ["S3", "SNS", "GLUE", "KINESIS", "LAMBDA", "EVENTBRIDGE"];

/// What the environment says about endpoints.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EndpointSettings {
    /// `AWS_ENDPOINT_URL`: every service.
    pub endpoint_url: Option<String>,
    /// `AWS_ENDPOINT_URL_<SERVICE>` (`S3`, `SNS`, `GLUE`, `KINESIS`, `LAMBDA`, `EVENTBRIDGE`): that service only.
    pub service_endpoint_urls: Vec<(String, String)>,
    /// `RUNNEL_S3_PATH_STYLE=true|false` overrides the choice made from the endpoints.
    pub s3_path_style: Option<bool>,
}

impl EndpointSettings {
    /// Reads `AWS_ENDPOINT_URL`, `AWS_ENDPOINT_URL_<SERVICE>` and `RUNNEL_S3_PATH_STYLE` (empty
    /// counts as unset).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |name: &str| lookup(name).filter(|v| !v.trim().is_empty());
        EndpointSettings {
            endpoint_url: get("AWS_ENDPOINT_URL"),
            service_endpoint_urls: SERVICES
                .iter()
                .filter_map(|service| {
                    get(&format!("AWS_ENDPOINT_URL_{service}"))
                        .map(|url| (service.to_string(), url))
                })
                .collect(),
            s3_path_style: get("RUNNEL_S3_PATH_STYLE")
                .map(|v| matches!(v.trim().to_ascii_lowercase().as_str(), "1" | "true" | "yes")),
        }
    }

    /// The endpoint a service's requests go to (`S3`, `SNS`, `GLUE`, `KINESIS`), when it is not
    /// AWS's own: the service's own variable, else the global one.
    pub fn service_endpoint(&self, service: &str) -> Option<&str> {
        self.service_endpoint_urls
            .iter()
            .find(|(name, _)| name == service)
            .map(|(_, url)| url.as_str())
            .or(self.endpoint_url.as_deref())
    }

    /// [`EndpointSettings::from_lookup`] on the process's environment.
    pub fn from_process_env() -> Self {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// The endpoint S3 requests go to, when it is not AWS's own.
    pub fn s3_endpoint(&self) -> Option<&str> {
        self.service_endpoint("S3")
    }

    /// Path-style S3 addressing: on for any overridden S3 endpoint unless told otherwise.
    pub fn s3_path_style(&self) -> bool {
        self.s3_path_style
            .unwrap_or_else(|| self.s3_endpoint().is_some())
    }
}

/// The HTTPS client every SDK client uses: rustls with ring for its cryptography. The SDK's
/// default (rustls on aws-lc) is a much larger library for the same TLS, and the size of a
/// bootstrap is paid at every cold start (BENCHMARKS.md).
pub fn https_client() -> aws_smithy_runtime_api::client::http::SharedHttpClient {
    use aws_smithy_http_client::tls;
    aws_smithy_http_client::Builder::new()
        .tls_provider(tls::Provider::Rustls(
            tls::rustls_provider::CryptoMode::Ring,
        ))
        .build_https()
}

/// Timeouts that turn a hung endpoint into a retryable error well inside a Lambda timeout.
pub fn default_timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(3))
        .read_timeout(Duration::from_secs(20))
        .operation_attempt_timeout(Duration::from_secs(30))
        .build()
}

/// Whether the environment holds an access key pair, which the default chain would use first.
pub fn has_environment_keys(lookup: impl Fn(&str) -> Option<String>) -> bool {
    let set = |name: &str| lookup(name).is_some_and(|v| !v.trim().is_empty());
    set("AWS_ACCESS_KEY_ID") && set("AWS_SECRET_ACCESS_KEY")
}

/// The shared SDK configuration and the clients built from it. Each client is built once, on
/// its first request, and shared by every clone: building one is a visible part of a cold start
/// (its TLS configuration takes in every CA root), so two users of S3 in one function pay once.
#[derive(Debug, Clone)]
pub struct Aws {
    sdk: SdkConfig,
    endpoints: EndpointSettings,
    clients: Arc<Clients>,
}

/// The clients built so far.
#[derive(Debug, Default)]
struct Clients {
    s3: OnceLock<aws_sdk_s3::Client>,
    #[cfg(any(feature = "producer", feature = "replay"))]
    kinesis: OnceLock<aws_sdk_kinesis::Client>,
    #[cfg(feature = "replay")]
    lambda: OnceLock<aws_sdk_lambda::Client>,
    #[cfg(feature = "alert")]
    sns: OnceLock<aws_sdk_sns::Client>,
    #[cfg(any(feature = "alert", feature = "glue"))]
    glue: OnceLock<aws_sdk_glue::Client>,
    #[cfg(feature = "eventbridge")]
    eventbridge: OnceLock<aws_sdk_eventbridge::Client>,
}

impl Aws {
    /// Loads the configuration from the environment (credentials resolve lazily, on first use).
    pub async fn from_env() -> Self {
        // Region from the environment or a profile only: never from IMDS, which is a network call
        // (Lambda always sets AWS_REGION).
        let region = aws_config::meta::region::RegionProviderChain::first_try(
            aws_config::environment::EnvironmentVariableRegionProvider::new(),
        )
        .or_else(aws_config::profile::ProfileFileRegionProvider::new());
        let mut loader = aws_config::defaults(BehaviorVersion::latest())
            .http_client(https_client())
            .region(region)
            .timeout_config(default_timeouts())
            .retry_config(RetryConfig::standard().with_max_attempts(3));
        if has_environment_keys(|name| std::env::var(name).ok()) {
            loader = loader.credentials_provider(
                aws_config::environment::EnvironmentVariableCredentialsProvider::new(),
            );
        }
        let sdk = loader.load().await;
        Aws::from_parts(sdk, EndpointSettings::from_process_env())
    }

    /// Wraps an existing configuration (tests, or callers with their own loading).
    pub fn from_parts(sdk: SdkConfig, endpoints: EndpointSettings) -> Self {
        Aws {
            sdk,
            endpoints,
            clients: Arc::default(),
        }
    }

    /// The shared SDK configuration, for clients this type does not build.
    pub fn sdk_config(&self) -> &SdkConfig {
        &self.sdk
    }

    /// The endpoint settings read at load.
    pub fn endpoints(&self) -> &EndpointSettings {
        &self.endpoints
    }

    /// The S3 client configuration: the shared one plus path-style addressing when chosen.
    pub fn s3_config(&self) -> aws_sdk_s3::Config {
        let mut builder = aws_sdk_s3::config::Builder::from(&self.sdk);
        builder.set_endpoint_url(self.endpoint("S3"));
        builder
            .force_path_style(self.endpoints.s3_path_style())
            .build()
    }

    /// The S3 client (path-style for emulator endpoints).
    pub fn s3(&self) -> aws_sdk_s3::Client {
        self.clients
            .s3
            .get_or_init(|| aws_sdk_s3::Client::from_conf(self.s3_config()))
            .clone()
    }

    /// The Kinesis client, for the producer and replays.
    #[cfg(any(feature = "producer", feature = "replay"))]
    pub fn kinesis(&self) -> aws_sdk_kinesis::Client {
        let build = || {
            let mut builder = aws_sdk_kinesis::config::Builder::from(&self.sdk);
            builder.set_endpoint_url(self.endpoint("KINESIS"));
            aws_sdk_kinesis::Client::from_conf(builder.build())
        };
        self.clients.kinesis.get_or_init(build).clone()
    }

    /// The Lambda client, for replays.
    #[cfg(feature = "replay")]
    pub fn lambda(&self) -> aws_sdk_lambda::Client {
        let build = || {
            let mut builder = aws_sdk_lambda::config::Builder::from(&self.sdk);
            builder.set_endpoint_url(self.endpoint("LAMBDA"));
            aws_sdk_lambda::Client::from_conf(builder.build())
        };
        self.clients.lambda.get_or_init(build).clone()
    }

    /// The SNS client, for alerts.
    #[cfg(feature = "alert")]
    pub fn sns(&self) -> aws_sdk_sns::Client {
        let build = || {
            let mut builder = aws_sdk_sns::config::Builder::from(&self.sdk);
            builder.set_endpoint_url(self.endpoint("SNS"));
            aws_sdk_sns::Client::from_conf(builder.build())
        };
        self.clients.sns.get_or_init(build).clone()
    }

    /// The Glue client, for alert enrichment and the Glue trigger.
    #[cfg(any(feature = "alert", feature = "glue"))]
    pub fn glue(&self) -> aws_sdk_glue::Client {
        let build = || {
            let mut builder = aws_sdk_glue::config::Builder::from(&self.sdk);
            builder.set_endpoint_url(self.endpoint("GLUE"));
            aws_sdk_glue::Client::from_conf(builder.build())
        };
        self.clients.glue.get_or_init(build).clone()
    }

    /// The Glue client, built when first used: most invocations of the functions that may call
    /// Glue never do, and building a client is part of every cold start that does.
    #[cfg(any(feature = "alert", feature = "glue"))]
    pub fn glue_on_first_use(&self) -> LazyClient<aws_sdk_glue::Client> {
        let aws = self.clone();
        LazyClient::new(move || aws.glue())
    }

    /// The EventBridge client, for rule alerts.
    #[cfg(feature = "eventbridge")]
    pub fn eventbridge(&self) -> aws_sdk_eventbridge::Client {
        let build = || {
            let mut builder = aws_sdk_eventbridge::config::Builder::from(&self.sdk);
            builder.set_endpoint_url(self.endpoint("EVENTBRIDGE"));
            aws_sdk_eventbridge::Client::from_conf(builder.build())
        };
        self.clients.eventbridge.get_or_init(build).clone()
    }

    /// A service's endpoint override, as the client builders take it.
    fn endpoint(&self, service: &str) -> Option<String> {
        self.endpoints.service_endpoint(service).map(str::to_owned)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn each_client_is_built_on_its_first_request_and_shared_by_clones() {
        let aws = Aws::from_parts(
            SdkConfig::builder()
                .behavior_version(BehaviorVersion::latest())
                .region(aws_config::Region::new("us-east-1"))
                .http_client(https_client())
                .build(),
            EndpointSettings::default(),
        );
        let clone = aws.clone();
        assert!(aws.clients.s3.get().is_none());
        let _ = clone.s3();
        assert!(
            aws.clients.s3.get().is_some(),
            "a clone's client is the original's"
        );
        #[cfg(any(feature = "alert", feature = "glue"))]
        {
            let glue = aws.glue_on_first_use();
            assert!(!glue.is_built());
            assert!(
                aws.clients.glue.get().is_none(),
                "not built before its first use"
            );
            let _ = glue.get();
            assert!(glue.is_built());
            assert!(
                aws.clients.glue.get().is_some(),
                "built once, kept for later callers"
            );
        }
    }

    #[test]
    fn environment_keys_need_both_halves() {
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |name: &str| {
                pairs
                    .iter()
                    .find(|(n, _)| *n == name)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert!(has_environment_keys(env(&[
            ("AWS_ACCESS_KEY_ID", "AKIA"),
            ("AWS_SECRET_ACCESS_KEY", "s")
        ])));
        assert!(!has_environment_keys(env(&[("AWS_ACCESS_KEY_ID", "AKIA")])));
        assert!(!has_environment_keys(env(&[
            ("AWS_ACCESS_KEY_ID", " "),
            ("AWS_SECRET_ACCESS_KEY", "s")
        ])));
        assert!(!has_environment_keys(env(&[])));
    }

    #[tokio::test]
    async fn environment_keys_are_what_the_clients_sign_with() {
        // with-emulator (which runs the tests) and Lambda both set the keys; the loaded provider
        // must hand out exactly those. Without keys the default chain is configured instead.
        use aws_credential_types::provider::ProvideCredentials;
        let aws = Aws::from_env().await;
        let provider = aws.sdk_config().credentials_provider().expect("a provider");
        if has_environment_keys(|n| std::env::var(n).ok()) {
            let creds = provider.provide_credentials().await.expect("credentials");
            assert_eq!(
                creds.access_key_id(),
                std::env::var("AWS_ACCESS_KEY_ID").unwrap()
            );
        }
    }
    use crate::config::lookup_in;

    #[test]
    fn no_override_means_virtual_host_style() {
        let s = EndpointSettings::from_lookup(lookup_in(&[]));
        assert_eq!(s, EndpointSettings::default());
        assert!(!s.s3_path_style());
    }

    #[test]
    fn global_endpoint_turns_on_path_style() {
        let s = EndpointSettings::from_lookup(lookup_in(&[(
            "AWS_ENDPOINT_URL",
            "http://127.0.0.1:4566",
        )]));
        assert_eq!(s.s3_endpoint(), Some("http://127.0.0.1:4566"));
        assert!(s.s3_path_style());
    }

    #[test]
    fn s3_specific_endpoint_wins_over_global() {
        let s = EndpointSettings::from_lookup(lookup_in(&[
            ("AWS_ENDPOINT_URL", "http://a:1"),
            ("AWS_ENDPOINT_URL_S3", "http://b:2"),
        ]));
        assert_eq!(s.s3_endpoint(), Some("http://b:2"));
        assert!(s.s3_path_style());
    }

    #[test]
    fn path_style_can_be_forced_either_way() {
        let off = EndpointSettings::from_lookup(lookup_in(&[
            ("AWS_ENDPOINT_URL", "http://a:1"),
            ("RUNNEL_S3_PATH_STYLE", "false"),
        ]));
        assert!(!off.s3_path_style());
        let on = EndpointSettings::from_lookup(lookup_in(&[("RUNNEL_S3_PATH_STYLE", "true")]));
        assert!(on.s3_path_style());
    }

    /// The S3 client built from an overridden endpoint sends path-style requests to it.
    #[tokio::test]
    async fn s3_client_uses_the_endpoint_and_path_style() {
        use aws_sdk_s3::config::{Credentials, Region};
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .endpoint_url("http://127.0.0.1:9")
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                Credentials::for_tests(),
            ))
            .build();
        let endpoints =
            EndpointSettings::from_lookup(lookup_in(&[("AWS_ENDPOINT_URL", "http://127.0.0.1:9")]));
        let aws = Aws::from_parts(sdk, endpoints);
        assert_eq!(
            get_object_uri(&aws).await,
            "http://127.0.0.1:9/my-bucket/a/b.json?x-id=GetObject"
        );
    }

    /// The URI the S3 client would call for a `GetObject`: the request is built and its URI
    /// captured before anything is sent.
    async fn get_object_uri(aws: &Aws) -> String {
        let err = aws
            .s3()
            .get_object()
            .bucket("my-bucket")
            .key("a/b.json")
            .customize()
            .interceptor(CaptureUri)
            .send()
            .await
            .unwrap_err();
        CAPTURED
            .with(|c| c.borrow_mut().take())
            .unwrap_or_else(|| panic!("no request was built: {err:?}"))
    }

    /// The SDK reads `AWS_ENDPOINT_URL` raw for each service client; `sam local` passes it empty
    /// when a run does not set it. Empty must mean AWS's own endpoint, not an empty URL.
    #[tokio::test]
    async fn an_empty_endpoint_variable_means_aws() {
        use aws_sdk_s3::config::{Credentials, Region};
        #[derive(Debug)]
        struct EmptyEndpoints;
        impl aws_types::service_config::LoadServiceConfig for EmptyEndpoints {
            fn load_config(
                &self,
                key: aws_types::service_config::ServiceConfigKey<'_>,
            ) -> Option<String> {
                key.env().starts_with("AWS_ENDPOINT_URL").then(String::new)
            }
        }
        let sdk = SdkConfig::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(Region::new("us-east-1"))
            .service_config(EmptyEndpoints)
            .credentials_provider(aws_sdk_s3::config::SharedCredentialsProvider::new(
                Credentials::for_tests(),
            ))
            .build();
        let endpoints = EndpointSettings::from_lookup(lookup_in(&[("AWS_ENDPOINT_URL", "")]));
        assert_eq!(endpoints, EndpointSettings::default());
        let aws = Aws::from_parts(sdk, endpoints);
        assert_eq!(
            get_object_uri(&aws).await,
            "https://my-bucket.s3.us-east-1.amazonaws.com/a/b.json?x-id=GetObject"
        );
    }

    #[test]
    fn a_service_endpoint_wins_over_the_global_one() {
        let s = EndpointSettings::from_lookup(lookup_in(&[
            ("AWS_ENDPOINT_URL", "http://a:1"),
            ("AWS_ENDPOINT_URL_SNS", "http://b:2"),
            ("AWS_ENDPOINT_URL_GLUE", " "),
        ]));
        assert_eq!(s.service_endpoint("SNS"), Some("http://b:2"));
        assert_eq!(s.service_endpoint("GLUE"), Some("http://a:1"));
        assert_eq!(s.service_endpoint("S3"), Some("http://a:1"));
    }

    thread_local! {
        static CAPTURED: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
    }

    #[derive(Debug, Default)]
    struct CaptureUri;

    impl aws_sdk_s3::config::Intercept for CaptureUri {
        fn name(&self) -> &'static str {
            "CaptureUri"
        }
        fn read_before_transmit(
            &self,
            ctx: &aws_sdk_s3::config::interceptors::BeforeTransmitInterceptorContextRef<'_>,
            _rc: &aws_sdk_s3::config::RuntimeComponents,
            _cfg: &mut aws_sdk_s3::config::ConfigBag,
        ) -> Result<(), aws_sdk_s3::error::BoxError> {
            let uri = ctx.request().uri().to_string();
            CAPTURED.with(|c| *c.borrow_mut() = Some(uri));
            // Stop here: the test needs the URI, not a connection.
            Err("captured".into())
        }
    }
}

//! Process start-up: configuration, logging and the SDK client, built once per process.

use std::time::Duration;

use aws_config::BehaviorVersion;
use aws_config::environment::EnvironmentVariableCredentialsProvider;
use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_sdk_dynamodb::Client;
use aws_smithy_http_client::tls;

use crate::domain::page_token::TokenKey;
use crate::store::Store;
use crate::store::count::RequestCount;

/// Where the caller identity comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    /// The API Gateway JWT authorizer's `sub` claim (the default).
    Jwt,
    /// The `X-Owner-Id` header: local runs only (`CONVERSATIONS_AUTH=header`).
    Header,
}

/// The configuration of a function, read once from the environment.
#[derive(Debug, Clone)]
pub struct Config {
    /// `CONVERSATIONS_TABLE`.
    pub table: String,
    /// `CONVERSATIONS_AUTH`: `jwt` (default) or `header`.
    pub auth: AuthMode,
    /// `CONVERSATIONS_TOKEN_KEY`: the page-token signing secret.
    pub token_key: TokenKey,
    /// `CONVERSATIONS_DELEGATION_SCOPE`: the OAuth scope that lets a caller send
    /// `X-On-Behalf-Of` (default [`DEFAULT_DELEGATION_SCOPE`]).
    pub delegation_scope: String,
    /// `CONVERSATIONS_WRITE_LAYOUT`: the layout creates write, `4` (default) or `3` while a
    /// deployed stack moves from layout 3 (docs/deploy.md).
    pub write_layout: i64,
}

/// The delegation scope when `CONVERSATIONS_DELEGATION_SCOPE` is unset or empty: a Cognito
/// resource server `conversations` with the custom scope `act-as`.
pub const DEFAULT_DELEGATION_SCOPE: &str = "conversations/act-as";

impl Config {
    /// Reads the environment.
    pub fn from_env() -> Result<Self, String> {
        let table = std::env::var("CONVERSATIONS_TABLE")
            .ok()
            .filter(|t| !t.is_empty())
            .ok_or("CONVERSATIONS_TABLE must name the DynamoDB table")?;
        let auth = match std::env::var("CONVERSATIONS_AUTH").as_deref() {
            Err(_) | Ok("") | Ok("jwt") => AuthMode::Jwt,
            Ok("header") => AuthMode::Header,
            Ok(other) => {
                return Err(format!(
                    "CONVERSATIONS_AUTH must be jwt or header, not {other:?}"
                ));
            }
        };
        let token_key = match std::env::var("CONVERSATIONS_TOKEN_KEY") {
            Ok(secret) if !secret.is_empty() => TokenKey::new(secret),
            // Without a secret, tokens are still bound to their owner and query and checked for
            // integrity; isolation never rests on them (every query is keyed by the caller).
            _ => TokenKey::new(format!("conversations-page-token/v1/{table}")),
        };
        let delegation_scope = match std::env::var("CONVERSATIONS_DELEGATION_SCOPE") {
            Ok(scope) if !scope.trim().is_empty() => {
                let scope = scope.trim();
                if scope.contains(char::is_whitespace) {
                    return Err(format!(
                        "CONVERSATIONS_DELEGATION_SCOPE must be one scope, not {scope:?}"
                    ));
                }
                scope.to_owned()
            }
            _ => DEFAULT_DELEGATION_SCOPE.to_owned(),
        };
        let write_layout = match std::env::var("CONVERSATIONS_WRITE_LAYOUT").as_deref() {
            Err(_) | Ok("") | Ok("4") => 4,
            Ok("3") => 3,
            Ok(other) => {
                return Err(format!(
                    "CONVERSATIONS_WRITE_LAYOUT must be 3 or 4, not {other:?}"
                ));
            }
        };
        Ok(Self {
            table,
            auth,
            token_key,
            delegation_scope,
            write_layout,
        })
    }
}

/// What every handler gets: the configuration and the store.
#[derive(Debug, Clone)]
pub struct App {
    /// The configuration.
    pub config: Config,
    /// The DynamoDB store.
    pub store: Store,
}

impl App {
    /// An app over a client built elsewhere (tests). DynamoDB requests are counted for the
    /// log lines when the client's configuration comes from [`dynamodb_config`].
    pub fn new(config: Config, client: Client) -> Self {
        let store = Store::new(client, config.table.clone(), config.token_key.clone())
            .writing_layout(config.write_layout);
        Self { config, store }
    }

    /// Start-up of a function: logging, configuration and the SDK client, once per process;
    /// then the connection to DynamoDB is opened (see [`Store::warm_up`]) so that the first
    /// request does not pay for it. `CONVERSATIONS_WARM_UP=off` skips that (benchmarks only).
    pub async fn from_env() -> Self {
        let app = Self::from_env_unconnected().await;
        if std::env::var("CONVERSATIONS_WARM_UP").as_deref() != Ok("off") {
            app.store.warm_up().await;
        }
        app
    }

    /// Start-up of a function that never calls DynamoDB (`fallback`): no connection at init.
    pub async fn from_env_unconnected() -> Self {
        init_tracing();
        let config = Config::from_env().unwrap_or_else(|e| panic!("invalid configuration: {e}"));
        let client = Client::from_conf(dynamodb_config().await.build());
        Self::new(config, client)
    }
}

/// The region: `AWS_REGION` (Lambda sets it), `AWS_DEFAULT_REGION`, else `us-east-1`, so that a
/// laptop never waits on instance metadata.
fn region() -> aws_config::Region {
    let region = std::env::var("AWS_REGION")
        .or_else(|_| std::env::var("AWS_DEFAULT_REGION"))
        .unwrap_or_else(|_| "us-east-1".into());
    aws_config::Region::new(region)
}

fn env_flag(name: &str) -> Option<bool> {
    std::env::var(name)
        .ok()
        .map(|v| v.eq_ignore_ascii_case("true"))
}

/// The functions' DynamoDB client configuration: explicit timeouts and retries (docs/failures.md,
/// "Budget"), the HTTPS client of [`http_client`], and the interceptor that counts requests.
///
/// Inside Lambda the credentials are environment variables, so when `AWS_ACCESS_KEY_ID` is set
/// the configuration is built from the environment alone (`AWS_ENDPOINT_URL_DYNAMODB` or
/// `AWS_ENDPOINT_URL`, `AWS_USE_FIPS_ENDPOINT`, `AWS_USE_DUALSTACK_ENDPOINT`): building the SDK's
/// default provider chains cost about a millisecond of every cold start (docs/performance.md).
/// Without it — a profile on a laptop, say — the SDK's default chains are used.
pub async fn dynamodb_config() -> aws_sdk_dynamodb::config::Builder {
    let builder = if std::env::var_os("AWS_ACCESS_KEY_ID").is_some() {
        let mut builder = aws_sdk_dynamodb::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            .region(region())
            .credentials_provider(EnvironmentVariableCredentialsProvider::new())
            .http_client(http_client())
            .timeout_config(timeouts())
            .retry_config(retries());
        let ignore_endpoints = env_flag("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") == Some(true);
        let endpoint = std::env::var("AWS_ENDPOINT_URL_DYNAMODB")
            .or_else(|_| std::env::var("AWS_ENDPOINT_URL"))
            .ok()
            .filter(|url| !url.is_empty() && !ignore_endpoints);
        builder.set_endpoint_url(endpoint);
        builder.set_use_fips(env_flag("AWS_USE_FIPS_ENDPOINT"));
        builder.set_use_dual_stack(env_flag("AWS_USE_DUALSTACK_ENDPOINT"));
        builder
    } else {
        // The loaded configuration already carries the HTTPS client, timeouts and retries.
        aws_sdk_dynamodb::config::Builder::from(&sdk_config().await)
    };
    builder.interceptor(RequestCount)
}

/// The SDK configuration through the SDK's default provider chains (tests, tools), with the
/// functions' region, timeouts, retries and HTTPS client.
pub async fn sdk_config() -> aws_config::SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .http_client(http_client())
        .region(region())
        .timeout_config(timeouts())
        .retry_config(retries())
        .load()
        .await
}

/// Connect within 1 s, an attempt within 2 s, the whole operation with its retries within 5 s:
/// well under the functions' 10 s timeout.
fn timeouts() -> TimeoutConfig {
    TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(1))
        .operation_attempt_timeout(Duration::from_secs(2))
        .operation_timeout(Duration::from_secs(5))
        .build()
}

/// The standard retry strategy, at most three attempts.
fn retries() -> RetryConfig {
    RetryConfig::standard().with_max_attempts(3)
}

/// The roots of Amazon Trust Services, which sign every AWS endpoint's certificate.
const AWS_ROOTS: &[u8] = include_bytes!("../certs/amazon-trust-services.pem");

/// The SDK's HTTPS client: rustls on ring, trusting the roots that sign AWS endpoints. Reading
/// and parsing the platform's whole CA store at init costs milliseconds of every cold start
/// (docs/performance.md); set `SSL_CERT_FILE` or `SSL_CERT_DIR` (a TLS-inspecting proxy, say)
/// and the platform's roots are trusted as well.
fn http_client() -> aws_sdk_dynamodb::config::SharedHttpClient {
    let platform_roots =
        std::env::var_os("SSL_CERT_FILE").is_some() || std::env::var_os("SSL_CERT_DIR").is_some();
    let trust = tls::TrustStore::empty()
        .with_native_roots(platform_roots)
        .with_pem_certificate(AWS_ROOTS);
    let builder = aws_smithy_http_client::Builder::new().tls_provider(tls::Provider::Rustls(
        tls::rustls_provider::CryptoMode::Ring,
    ));
    match tls::TlsContext::builder().with_trust_store(trust).build() {
        Ok(context) => builder.tls_context(context).build_https(),
        // Unreachable with rustls; the platform's roots are the safe fallback.
        Err(_) => builder.build_https(),
    }
}

/// Logs as JSON inside AWS Lambda and as readable text elsewhere (override with
/// `CONVERSATIONS_LOG_FORMAT=json|text`); the level comes from `RUST_LOG` (default `info`).
pub fn init_tracing() {
    let json = match std::env::var("CONVERSATIONS_LOG_FORMAT").as_deref() {
        Ok("json") => true,
        Ok("text") => false,
        _ => std::env::var("AWS_EXECUTION_ENV").is_ok_and(|v| v.starts_with("AWS_Lambda")),
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_target(false);
    let _ = if json {
        builder.json().flatten_event(true).without_time().try_init()
    } else {
        builder.with_ansi(false).try_init()
    };
}

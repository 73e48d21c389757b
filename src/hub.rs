//! A client for the few JupyterHub REST endpoints a culler uses.
//!
//! One `reqwest::Client` per `HubClient`, bounded by a semaphore so that at most `concurrency`
//! requests are in flight. Transient failures (5xx, 429, timeouts, connection errors, broken
//! bodies) are retried with exponential backoff and jitter, honouring `Retry-After`. The token
//! lives only in a header marked sensitive and is never part of an error or a log line.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use tokio::sync::Semaphore;

use crate::models::{User, UserPage};

/// The pagination media type of JupyterHub ≥ 2.0 (without it the Hub truncates the list).
const PAGINATION_MEDIA_TYPE: &str = "application/jupyterhub-pagination+json";
/// A reply larger than this is refused rather than buffered (a page of 200 users is ~100 kB).
const MAX_BODY_BYTES: usize = 128 * 1024 * 1024;
/// Longest wait between two tries, also the cap on a Hub's `Retry-After`.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Everything but unreserved characters is escaped in a path segment, so names with spaces,
/// `+`, `@`, `%`, `/` or non-ASCII characters reach the Hub intact.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The API token. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn new(token: impl Into<String>) -> Self {
        ApiToken(token.into())
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<hidden>)")
    }
}

/// PEM files for the Hub's internal SSL: the CA that signed the Hub's certificate, and the
/// client certificate and key the Hub asks for.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct HubSettings {
    /// The Hub API base, e.g. `http://127.0.0.1:8081/hub/api`.
    pub url: String,
    pub token: ApiToken,
    pub request_timeout: Duration,
    pub concurrency: usize,
    pub tls: TlsFiles,
    /// Tries after the first for a transient failure.
    pub retries: u32,
    /// The first backoff delay; doubled on each retry.
    pub backoff: Duration,
}

impl HubSettings {
    pub fn new(url: impl Into<String>, token: ApiToken) -> Self {
        HubSettings {
            url: url.into(),
            token,
            request_timeout: Duration::from_secs(60),
            concurrency: 10,
            tls: TlsFiles::default(),
            retries: 3,
            backoff: Duration::from_millis(500),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum HubError {
    #[error("invalid configuration: {0}")]
    Config(String),
    #[error("{method} {path}: the Hub answered {status}{}", message_suffix(.message.as_deref()))]
    Status {
        method: Method,
        path: String,
        status: u16,
        message: Option<String>,
    },
    #[error("{method} {path}: no answer within {seconds:.0}s")]
    Timeout {
        method: Method,
        path: String,
        seconds: f64,
    },
    #[error("{method} {path}: cannot reach the Hub ({detail})")]
    Connect {
        method: Method,
        path: String,
        detail: String,
    },
    #[error("{method} {path}: {detail}")]
    Transport {
        method: Method,
        path: String,
        detail: String,
    },
    #[error("{method} {path}: the reply is not what the Hub API sends ({detail})")]
    Decode {
        method: Method,
        path: String,
        detail: String,
    },
}

fn message_suffix(message: Option<&str>) -> String {
    message.map(|m| format!(": {m}")).unwrap_or_default()
}

impl HubError {
    fn is_transient(&self) -> bool {
        match self {
            HubError::Status { status, .. } => *status >= 500 || *status == 429,
            HubError::Timeout { .. } | HubError::Connect { .. } | HubError::Transport { .. } => {
                true
            }
            HubError::Config(_) | HubError::Decode { .. } => false,
        }
    }

    /// The HTTP status the Hub answered, if it answered.
    pub fn status(&self) -> Option<u16> {
        match self {
            HubError::Status { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// What became of a request to stop a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    Stopped,
    /// 202: the Hub is still stopping it (`slow_stop_timeout` passed).
    Stopping,
    /// 404: the server (or its user) no longer exists.
    Gone,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeleteOutcome {
    Deleted,
    Gone,
}

/// A complete reply: status, the `Retry-After` delay if any, and the (bounded) body.
struct Reply {
    status: StatusCode,
    retry_after: Option<Duration>,
    body: Vec<u8>,
}

pub struct HubClient {
    base: String,
    /// Failed request attempts (retried ones too) by kind: an HTTP status, or `timeout`,
    /// `connect`, `transport`, `decode`. Taken by each pass.
    error_counts: std::sync::Mutex<std::collections::BTreeMap<String, u64>>,
    client: reqwest::Client,
    limiter: Arc<Semaphore>,
    concurrency: usize,
    request_timeout: Duration,
    retries: u32,
    backoff: Duration,
}

impl fmt::Debug for HubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HubClient {
    pub fn new(settings: &HubSettings) -> Result<Self, HubError> {
        let base = settings.url.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base).map_err(|e| {
            HubError::Config(format!("the Hub API URL {base:?} is not a URL ({e})"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(HubError::Config(format!(
                "the Hub API URL must start with http:// or https://, not {}://",
                parsed.scheme()
            )));
        }
        if settings.concurrency == 0 {
            return Err(HubError::Config("concurrency must be at least 1".into()));
        }
        let mut builder = client_builder(&settings.token, settings.request_timeout)
            .map_err(HubError::Config)?
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(30));
        builder = configure_tls(builder, &settings.tls)?;
        let client = builder.build().map_err(|e| {
            HubError::Config(format!("cannot build the HTTP client: {}", error_chain(&e)))
        })?;
        Ok(HubClient {
            base,
            error_counts: std::sync::Mutex::default(),
            client,
            limiter: Arc::new(Semaphore::new(settings.concurrency)),
            concurrency: settings.concurrency,
            request_timeout: settings.request_timeout,
            retries: settings.retries,
            backoff: settings.backoff,
        })
    }

    /// The Hub's version from `GET {url}/`, which needs no scope.
    pub async fn version(&self) -> Result<String, HubError> {
        #[derive(serde::Deserialize)]
        struct Root {
            version: Option<String>,
        }
        let path = "/".to_owned();
        let reply = self.request(Method::GET, &path, None, false).await?;
        expect_success(&Method::GET, &path, &reply)?;
        let root: Root = decode(&Method::GET, &path, &reply.body)?;
        Ok(root.version.unwrap_or_default())
    }

    /// The scopes of the token, from `GET {url}/user` (JupyterHub ≥ 2.0 expands implied ones);
    /// `None` from Hubs that do not report scopes.
    pub async fn token_scopes(&self) -> Result<Option<Vec<String>>, HubError> {
        #[derive(serde::Deserialize)]
        struct WhoAmI {
            #[serde(default)]
            scopes: Option<Vec<String>>,
        }
        let path = "/user".to_owned();
        let reply = self.request(Method::GET, &path, None, false).await?;
        expect_success(&Method::GET, &path, &reply)?;
        decode::<WhoAmI>(&Method::GET, &path, &reply.body).map(|w| w.scopes)
    }

    /// One page of `GET {url}/users`.
    pub async fn list_users(
        &self,
        state: Option<&str>,
        offset: u64,
        limit: Option<u64>,
    ) -> Result<UserPage, HubError> {
        let path = users_query(state, offset, limit);
        let reply = self.request(Method::GET, &path, None, true).await?;
        expect_success(&Method::GET, &path, &reply)?;
        UserPage::from_json(&reply.body).map_err(|e| HubError::Decode {
            method: Method::GET,
            path,
            detail: e.to_string(),
        })
    }

    /// `GET {url}/users/{name}`, or `None` if the user no longer exists.
    pub async fn get_user(&self, name: &str) -> Result<Option<User>, HubError> {
        let path = format!("/users/{}", encode(name));
        let reply = self.request(Method::GET, &path, None, false).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        expect_success(&Method::GET, &path, &reply)?;
        decode(&Method::GET, &path, &reply.body).map(Some)
    }

    /// Stop a server (`""` is the default one), optionally removing a named one.
    pub async fn stop_server(
        &self,
        user: &str,
        server: &str,
        remove: bool,
    ) -> Result<StopOutcome, HubError> {
        let path = server_path(user, server);
        let body = (remove && !server.is_empty()).then_some(r#"{"remove": true}"#);
        let reply = self.request(Method::DELETE, &path, body, false).await?;
        match reply.status {
            StatusCode::ACCEPTED => Ok(StopOutcome::Stopping),
            StatusCode::NOT_FOUND => Ok(StopOutcome::Gone),
            s if s.is_success() => Ok(StopOutcome::Stopped),
            _ => Err(status_error(Method::DELETE, path, &reply)),
        }
    }

    pub async fn delete_user(&self, user: &str) -> Result<DeleteOutcome, HubError> {
        let path = format!("/users/{}", encode(user));
        let reply = self.request(Method::DELETE, &path, None, false).await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(DeleteOutcome::Gone),
            s if s.is_success() => Ok(DeleteOutcome::Deleted),
            _ => Err(status_error(Method::DELETE, path, &reply)),
        }
    }

    /// The failed attempts counted since the last call, by kind.
    /// At most this many requests are in flight at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency
    }

    /// The limit on requests in flight, to share with the server probes.
    pub fn limiter(&self) -> Arc<Semaphore> {
        Arc::clone(&self.limiter)
    }

    pub fn take_error_counts(&self) -> std::collections::BTreeMap<String, u64> {
        std::mem::take(
            &mut *self
                .error_counts
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner),
        )
    }

    fn count_error(&self, result: &Result<Reply, HubError>) {
        let kind = match result {
            Ok(reply) if reply.status.is_client_error() || reply.status.is_server_error() => {
                reply.status.as_u16().to_string()
            }
            Err(HubError::Status { status, .. }) => status.to_string(),
            Err(HubError::Timeout { .. }) => "timeout".to_owned(),
            Err(HubError::Connect { .. }) => "connect".to_owned(),
            Err(HubError::Transport { .. }) => "transport".to_owned(),
            Err(HubError::Decode { .. }) => "decode".to_owned(),
            Ok(_) | Err(HubError::Config(_)) => return,
        };
        *self
            .error_counts
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .entry(kind)
            .or_default() += 1;
    }

    /// Send with retries. Non-transient statuses are returned for the caller to interpret.
    async fn request(
        &self,
        method: Method,
        path: &str,
        json_body: Option<&'static str>,
        paginated: bool,
    ) -> Result<Reply, HubError> {
        let mut attempt = 0;
        loop {
            let result = self.send_once(&method, path, json_body, paginated).await;
            self.count_error(&result);
            let (error, retry_after) = match result {
                Ok(reply)
                    if reply.status.is_server_error()
                        || reply.status == StatusCode::TOO_MANY_REQUESTS =>
                {
                    let retry_after = reply.retry_after;
                    (
                        status_error(method.clone(), path.to_owned(), &reply),
                        retry_after,
                    )
                }
                Ok(reply) => return Ok(reply),
                Err(e) if e.is_transient() => (e, None),
                Err(e) => return Err(e),
            };
            if attempt >= self.retries {
                return Err(error);
            }
            attempt += 1;
            let delay = retry_after.map_or_else(
                || backoff_delay(self.backoff, attempt),
                |d| d.min(MAX_BACKOFF),
            );
            log::warn!(
                target: "cull_idle::hub",
                "{error}; retrying in {:.1}s (retry {attempt} of {})",
                delay.as_secs_f64(),
                self.retries
            );
            tokio::time::sleep(delay).await;
        }
    }

    async fn send_once(
        &self,
        method: &Method,
        path: &str,
        json_body: Option<&'static str>,
        paginated: bool,
    ) -> Result<Reply, HubError> {
        let _permit = self
            .limiter
            .acquire()
            .await
            .expect("the limiter is never closed");
        let url = format!("{}{}", self.base, path);
        let mut request = self.client.request(method.clone(), url);
        if paginated {
            request = request.header(ACCEPT, PAGINATION_MEDIA_TYPE);
        }
        if let Some(body) = json_body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        log::debug!(target: "cull_idle::hub", "{method} {path}");
        let mut response = request
            .send()
            .await
            .map_err(|e| self.transport_error(method, path, &e))?;
        let status = response.status();
        let retry_after = response
            .headers()
            .get(RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<f64>().ok())
            .filter(|s| s.is_finite() && *s >= 0.0)
            .map(|s| Duration::from_secs_f64(s.min(MAX_BACKOFF.as_secs_f64())));
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| self.transport_error(method, path, &e))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(HubError::Decode {
                    method: method.clone(),
                    path: path.to_owned(),
                    detail: format!("reply larger than {} MiB", MAX_BODY_BYTES >> 20),
                });
            }
            body.extend_from_slice(&chunk);
        }
        Ok(Reply {
            status,
            retry_after,
            body,
        })
    }

    fn transport_error(&self, method: &Method, path: &str, error: &reqwest::Error) -> HubError {
        let (method, path) = (method.clone(), path.to_owned());
        if error.is_timeout() {
            HubError::Timeout {
                method,
                path,
                seconds: self.request_timeout.as_secs_f64(),
            }
        } else if error.is_connect() {
            HubError::Connect {
                method,
                path,
                detail: error_chain(error),
            }
        } else {
            HubError::Transport {
                method,
                path,
                detail: error_chain(error),
            }
        }
    }
}

/// A client that sends `token` as a sensitive header (never logged) and asks for JSON. Like the
/// reference (tornado), it talks to its target directly even when HTTP(S)_PROXY is set.
pub(crate) fn client_builder(
    token: &ApiToken,
    timeout: Duration,
) -> Result<reqwest::ClientBuilder, String> {
    let mut auth = HeaderValue::from_str(&format!("token {}", token.0)).map_err(|_| {
        "the API token holds characters that cannot be sent in an HTTP header".to_owned()
    })?;
    auth.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    Ok(reqwest::Client::builder()
        .default_headers(headers)
        .user_agent(concat!("cull-idle/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .no_proxy())
}

/// The certificates of a PEM CA bundle; an error names the file and what is wrong with it.
pub(crate) fn read_ca_certs(
    ca_file: &std::path::Path,
) -> Result<Vec<reqwest::Certificate>, String> {
    let pem = std::fs::read(ca_file)
        .map_err(|e| format!("cannot read the CA file {}: {e}", ca_file.display()))?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
        format!(
            "the CA file {} holds no usable certificate ({e})",
            ca_file.display()
        )
    })?;
    if certs.is_empty() {
        return Err(format!(
            "the CA file {} holds no certificate",
            ca_file.display()
        ));
    }
    Ok(certs)
}

fn configure_tls(
    mut builder: reqwest::ClientBuilder,
    tls: &TlsFiles,
) -> Result<reqwest::ClientBuilder, HubError> {
    let read = |what: &str, path: &PathBuf| {
        std::fs::read(path).map_err(|e| {
            HubError::Config(format!("cannot read the {what} {}: {e}", path.display()))
        })
    };
    if let Some(ca_file) = &tls.ca_file {
        let certs = read_ca_certs(ca_file).map_err(HubError::Config)?;
        // The Hub's internal CA is the only one to trust for the Hub's internal certificate.
        builder = builder.tls_certs_only(certs);
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let mut pem = read("certificate file", cert_file)?;
            pem.push(b'\n');
            pem.extend(read("key file", key_file)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                HubError::Config(format!(
                    "cannot use {} with {} as a client certificate ({e})",
                    cert_file.display(),
                    key_file.display()
                ))
            })?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => {
            return Err(HubError::Config(
                "a client certificate needs both a certificate file and a key file".into(),
            ));
        }
    }
    Ok(builder)
}

/// `2^attempt * base` (capped), with full jitter in its upper half so that many cullers or
/// retries do not beat on the Hub in step.
fn backoff_delay(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.min(16).saturating_sub(1))
        .min(MAX_BACKOFF);
    let jitter: f64 = rand::rng().random_range(0.5..=1.0);
    exp.mul_f64(jitter)
}

fn expect_success(method: &Method, path: &str, reply: &Reply) -> Result<(), HubError> {
    if reply.status.is_success() {
        Ok(())
    } else {
        Err(status_error(method.clone(), path.to_owned(), reply))
    }
}

fn status_error(method: Method, path: String, reply: &Reply) -> HubError {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        message: Option<String>,
    }
    let message = serde_json::from_slice::<ErrorBody>(&reply.body)
        .ok()
        .and_then(|b| b.message)
        .map(|m| m.chars().take(300).collect());
    HubError::Status {
        method,
        path,
        status: reply.status.as_u16(),
        message,
    }
}

fn decode<T: serde::de::DeserializeOwned>(
    method: &Method,
    path: &str,
    body: &[u8],
) -> Result<T, HubError> {
    serde_json::from_slice(body).map_err(|e| HubError::Decode {
        method: method.clone(),
        path: path.to_owned(),
        detail: e.to_string(),
    })
}

/// A reqwest error and its causes, without the URL (which could carry credentials).
pub(crate) fn error_chain(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        parts.push(cause.to_string());
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(if error.is_body() {
            "broken reply body".into()
        } else {
            "request failed".into()
        });
    }
    parts.join(": ")
}

pub fn encode(segment: &str) -> String {
    utf8_percent_encode(segment, SEGMENT).to_string()
}

pub fn server_path(user: &str, server: &str) -> String {
    if server.is_empty() {
        format!("/users/{}/server", encode(user))
    } else {
        format!("/users/{}/servers/{}", encode(user), encode(server))
    }
}

pub fn users_query(state: Option<&str>, offset: u64, limit: Option<u64>) -> String {
    let mut query = Vec::new();
    if let Some(state) = state {
        query.push(format!("state={state}"));
    }
    if offset > 0 {
        query.push(format!("offset={offset}"));
    }
    if let Some(limit) = limit {
        query.push(format!("limit={limit}"));
    }
    if query.is_empty() {
        "/users".to_owned()
    } else {
        format!("/users?{}", query.join("&"))
    }
}

/// `(major, minor, patch)` from a version such as `5.2.1`, `4.0.0b1` or `6.0.0.dev0`.
pub fn parse_version(version: &str) -> Option<(u64, u64, u64)> {
    let mut parts = version.trim().split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u64>().ok()
    });
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_percent_encoded() {
        assert_eq!(encode("alice"), "alice");
        assert_eq!(encode("a b+c@d%e"), "a%20b%2Bc%40d%25e");
        assert_eq!(encode("ünï/x"), "%C3%BCn%C3%AF%2Fx");
        assert_eq!(encode("a.b-c_d~e"), "a.b-c_d~e");
        assert_eq!(encode("?#&="), "%3F%23%26%3D");
    }

    #[test]
    fn server_paths() {
        assert_eq!(server_path("a b", ""), "/users/a%20b/server");
        assert_eq!(server_path("a", "gpu box"), "/users/a/servers/gpu%20box");
    }

    #[test]
    fn user_queries() {
        assert_eq!(users_query(None, 0, None), "/users");
        assert_eq!(
            users_query(Some("ready"), 0, Some(200)),
            "/users?state=ready&limit=200"
        );
        assert_eq!(
            users_query(Some("inactive"), 40, Some(20)),
            "/users?state=inactive&offset=40&limit=20"
        );
    }

    #[test]
    fn versions() {
        assert_eq!(parse_version("6.1.1"), Some((6, 1, 1)));
        assert_eq!(parse_version("4.0.0b1"), Some((4, 0, 0)));
        assert_eq!(parse_version("1.3"), Some((1, 3, 0)));
        assert_eq!(parse_version("2"), Some((2, 0, 0)));
        assert_eq!(parse_version(""), None);
        assert_eq!(parse_version("dev"), None);
    }

    #[test]
    fn token_is_hidden_from_debug() {
        let settings =
            HubSettings::new("http://127.0.0.1:1/hub/api", ApiToken::new("s3cret-token"));
        assert!(!format!("{settings:?}").contains("s3cret"));
        let client = HubClient::new(&settings).unwrap();
        assert!(!format!("{client:?}").contains("s3cret"));
    }

    #[test]
    fn bad_settings_are_config_errors() {
        let token = ApiToken::new("t");
        for url in [
            "127.0.0.1:8081",
            "ftp://hub/api",
            "http+unix://%2Ftmp%2Fhub.sock/hub/api",
            "not a url",
        ] {
            let err = HubClient::new(&HubSettings::new(url, token.clone())).unwrap_err();
            assert!(matches!(err, HubError::Config(_)), "{url}: {err}");
        }
        let bad_token =
            HubClient::new(&HubSettings::new("http://h/api", ApiToken::new("a\nb"))).unwrap_err();
        assert!(!bad_token.to_string().contains("a\nb"));
        let mut zero = HubSettings::new("http://h/api", token.clone());
        zero.concurrency = 0;
        assert!(HubClient::new(&zero).is_err());
        let mut missing = HubSettings::new("http://h/api", token);
        missing.tls.ca_file = Some("/nonexistent/ca.pem".into());
        assert!(HubClient::new(&missing)
            .unwrap_err()
            .to_string()
            .contains("/nonexistent/ca.pem"));
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        let base = Duration::from_millis(500);
        let first = backoff_delay(base, 1);
        assert!(first >= Duration::from_millis(250) && first <= base);
        let third = backoff_delay(base, 3);
        assert!(third >= Duration::from_secs(1) && third <= Duration::from_secs(2));
        assert!(backoff_delay(base, 40) <= MAX_BACKOFF);
    }

    #[test]
    fn transient_errors() {
        let status = |s| HubError::Status {
            method: Method::GET,
            path: "/".into(),
            status: s,
            message: None,
        };
        assert!(status(500).is_transient());
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(403).is_transient());
        assert!(!status(404).is_transient());
        assert!(!HubError::Decode {
            method: Method::GET,
            path: "/".into(),
            detail: String::new()
        }
        .is_transient());
    }
}

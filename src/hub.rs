//! A client for the few JupyterHub REST endpoints a culler uses, and the [`HubApi`] trait the
//! pass is written against (so that `cargo test` can run a pass against a Hub in memory).
//!
//! Requests go through [`crate::http`]: at most `concurrency` in flight, transient failures
//! retried with backoff and jitter, bodies bounded, the token never in an error or a log line.

use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::{Method, StatusCode};
use tokio::sync::Semaphore;

pub use crate::http::ApiToken;
use crate::http::{
    client_builder, error_chain, Call, ClientShape, HttpClient, HttpError, Peer, Reply, Retry,
};
use crate::models::{User, UserPage};
use crate::setup::{read_file, SetupError};

/// The pagination media type of JupyterHub ≥ 2.0 (without it the Hub truncates the list).
const PAGINATION_MEDIA_TYPE: &str = "application/jupyterhub-pagination+json";
/// A reply larger than this is refused rather than buffered (a page of 200 users is ~100 kB).
const MAX_BODY_BYTES: usize = 128 * 1024 * 1024;

/// Everything but unreserved characters is escaped in a path segment, so names with spaces,
/// `+`, `@`, `%`, `/` or non-ASCII characters reach the Hub intact.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// PEM files for the Hub's internal SSL: the CA that signed the Hub's certificate, and the
/// client certificate and key the Hub asks for.
#[derive(Debug, Clone, Default)]
pub struct TlsFiles {
    pub ca_file: Option<PathBuf>,
    pub cert_file: Option<PathBuf>,
    pub key_file: Option<PathBuf>,
}

/// Requests to the Hub in flight at once, unless `--concurrency` says otherwise.
pub const DEFAULT_CONCURRENCY: usize = 10;

#[derive(Debug, Clone)]
pub struct HubSettings {
    /// The Hub API base, e.g. `http://127.0.0.1:8081/hub/api`.
    pub url: String,
    pub token: ApiToken,
    pub request_timeout: Duration,
    pub concurrency: usize,
    pub tls: TlsFiles,
    pub retry: Retry,
}

impl HubSettings {
    pub fn new(url: impl Into<String>, token: ApiToken) -> Self {
        HubSettings {
            url: url.into(),
            token,
            request_timeout: Duration::from_secs(60),
            concurrency: DEFAULT_CONCURRENCY,
            tls: TlsFiles::default(),
            retry: Retry {
                retries: 3,
                backoff: Duration::from_millis(500),
            },
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

/// The users a listing asks for, by their servers (JupyterHub 1.3's `state` filter).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserState {
    /// With a ready server.
    Ready,
    /// With no server running, nor starting or stopping.
    Inactive,
}

impl UserState {
    pub fn query_value(self) -> &'static str {
        match self {
            UserState::Ready => "ready",
            UserState::Inactive => "inactive",
        }
    }
}

/// The Hub as a pass sees it. [`HubClient`] is the real one; tests use one in memory.
pub trait HubApi: Send + Sync {
    /// The Hub's version (`GET /`, which needs no scope).
    fn version(&self) -> BoxFuture<'_, Result<String, HttpError>>;
    /// One page of `GET /users`.
    /// With `include_stopped`, stopped servers are in the models too (JupyterHub 3.0).
    fn list_users(
        &self,
        state: Option<UserState>,
        include_stopped: bool,
        offset: u64,
        limit: Option<u64>,
    ) -> BoxFuture<'_, Result<UserPage, HttpError>>;
    /// `GET /users/{name}`, or `None` if the user no longer exists.
    fn get_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<User>, HttpError>>;
    /// Stop a server (`""` is the default one), optionally removing a named one.
    fn stop_server<'a>(
        &'a self,
        user: &'a str,
        server: &'a str,
        remove: bool,
    ) -> BoxFuture<'a, Result<StopOutcome, HttpError>>;
    fn delete_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<DeleteOutcome, HttpError>>;
    /// `POST /users/{user}/tokens`: a new token owned by `user`, with only `request`'s scopes.
    fn create_token<'a>(
        &'a self,
        user: &'a str,
        request: &'a TokenRequest,
    ) -> BoxFuture<'a, Result<IssuedToken, HttpError>>;
    /// `DELETE /users/{user}/tokens/{id}`; a token already gone is no error.
    fn delete_token<'a>(
        &'a self,
        user: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(), HttpError>>;
    /// At most this many requests are in flight at once.
    fn concurrency(&self) -> usize;
    /// Failed request attempts since the last call, by HTTP status or error kind.
    fn take_error_counts(&self) -> BTreeMap<String, u64>;
}

/// What a token made for a user may do, and for how long.
#[derive(Debug, Clone, serde::Serialize)]
pub struct TokenRequest {
    pub scopes: Vec<String>,
    /// Seconds; `None` leaves it to the Hub (its `token_expires_in_max_seconds`, else never).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expires_in: Option<u64>,
    /// Shown to the user beside the token.
    pub note: String,
}

/// A token the Hub made: the secret, its id (to delete it) and when it expires.
#[derive(Debug, Clone)]
pub struct IssuedToken {
    pub token: ApiToken,
    pub id: String,
    /// Seconds since the epoch; `None` if it never expires.
    pub expires_at: Option<f64>,
}

pub struct HubClient {
    base: String,
    pub(crate) http: HttpClient,
    concurrency: usize,
    /// The client secret of the service's OAuth client, which is its API token.
    pub(crate) token: ApiToken,
}

impl fmt::Debug for HubClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HubClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl HubClient {
    pub fn new(settings: &HubSettings) -> Result<Self, SetupError> {
        let base = settings.url.trim().trim_end_matches('/').to_owned();
        let parsed = reqwest::Url::parse(&base).map_err(|e| {
            SetupError::config(format!("the Hub API URL {base:?} is not a URL ({e})"))
        })?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(SetupError::config(format!(
                "the Hub API URL must start with http:// or https://, not {}://",
                parsed.scheme()
            )));
        }
        if settings.concurrency == 0 {
            return Err(SetupError::config("concurrency must be at least 1"));
        }
        let builder = client_builder(&settings.token, settings.request_timeout)?
            .connect_timeout(settings.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(30));
        let builder = configure_tls(builder, &settings.tls)?;
        let http = HttpClient::new(
            builder,
            ClientShape {
                peer: Peer::Hub,
                limiter: Arc::new(Semaphore::new(settings.concurrency)),
                timeout: settings.request_timeout,
                retry: settings.retry,
                max_body: MAX_BODY_BYTES,
                log_target: "cull_idle::hub",
                retry_level: log::Level::Warn,
            },
        )?;
        Ok(HubClient {
            base,
            http,
            concurrency: settings.concurrency,
            token: settings.token.clone(),
        })
    }

    /// The limit on requests in flight, to share with the server probes.
    pub fn limiter(&self) -> Arc<Semaphore> {
        self.http.limiter()
    }

    /// The scopes of the token, from `GET {url}/user` (JupyterHub ≥ 2.0 expands implied ones);
    /// `None` from Hubs that do not report scopes.
    pub async fn token_scopes(&self) -> Result<Option<Vec<String>>, HttpError> {
        #[derive(serde::Deserialize)]
        struct WhoAmI {
            #[serde(default)]
            scopes: Option<Vec<String>>,
        }
        let call = self.call(Method::GET, "/user", None);
        let reply = self.success(&call).await?;
        self.http
            .decode::<WhoAmI>(&call, &reply.body)
            .map(|w| w.scopes)
    }

    pub(crate) fn call<'a>(
        &self,
        method: Method,
        path: &'a str,
        body: Option<&'static str>,
    ) -> Call<'a> {
        Call {
            method,
            url: format!("{}{}", self.base, path),
            shown: path,
            accept: None,
            json_body: body,
            form_body: None,
            as_user: None,
        }
    }

    pub(crate) async fn success(&self, call: &Call<'_>) -> Result<Reply, HttpError> {
        let reply = self.http.send(call).await?;
        if reply.status.is_success() {
            Ok(reply)
        } else {
            Err(self.http.status_error(call, &reply))
        }
    }

    async fn get_version(&self) -> Result<String, HttpError> {
        #[derive(serde::Deserialize)]
        struct Root {
            version: Option<String>,
        }
        let call = self.call(Method::GET, "/", None);
        let reply = self.success(&call).await?;
        let root: Root = self.http.decode(&call, &reply.body)?;
        Ok(root.version.unwrap_or_default())
    }

    async fn get_users(
        &self,
        state: Option<UserState>,
        include_stopped: bool,
        offset: u64,
        limit: Option<u64>,
    ) -> Result<UserPage, HttpError> {
        let path = users_query(state, include_stopped, offset, limit);
        let mut call = self.call(Method::GET, &path, None);
        call.accept = Some(PAGINATION_MEDIA_TYPE);
        let reply = self.success(&call).await?;
        UserPage::from_json(&reply.body).map_err(|e| self.http.decode_error(&call, e.to_string()))
    }

    async fn get_one_user(&self, name: &str) -> Result<Option<User>, HttpError> {
        let path = format!("/users/{}", encode(name));
        let call = self.call(Method::GET, &path, None);
        let reply = self.http.send(&call).await?;
        if reply.status == StatusCode::NOT_FOUND {
            return Ok(None);
        }
        if !reply.status.is_success() {
            return Err(self.http.status_error(&call, &reply));
        }
        self.http.decode(&call, &reply.body).map(Some)
    }

    async fn delete_server(
        &self,
        user: &str,
        server: &str,
        remove: bool,
    ) -> Result<StopOutcome, HttpError> {
        let path = server_path(user, server);
        let body = (remove && !server.is_empty()).then_some(r#"{"remove": true}"#);
        let call = self.call(Method::DELETE, &path, body);
        let reply = self.http.send(&call).await?;
        match reply.status {
            StatusCode::ACCEPTED => Ok(StopOutcome::Stopping),
            StatusCode::NOT_FOUND => Ok(StopOutcome::Gone),
            s if s.is_success() => Ok(StopOutcome::Stopped),
            _ => Err(self.http.status_error(&call, &reply)),
        }
    }

    async fn delete_one_user(&self, user: &str) -> Result<DeleteOutcome, HttpError> {
        let path = format!("/users/{}", encode(user));
        let call = self.call(Method::DELETE, &path, None);
        let reply = self.http.send(&call).await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(DeleteOutcome::Gone),
            s if s.is_success() => Ok(DeleteOutcome::Deleted),
            _ => Err(self.http.status_error(&call, &reply)),
        }
    }
}

impl HubClient {
    async fn post_token(
        &self,
        user: &str,
        request: &TokenRequest,
    ) -> Result<IssuedToken, HttpError> {
        #[derive(serde::Deserialize)]
        struct Made {
            token: String,
            id: String,
            #[serde(default)]
            expires_at: Option<String>,
        }
        let path = format!("/users/{}/tokens", encode(user));
        let body = serde_json::to_string(request).unwrap_or_default();
        let mut call = self.call(Method::POST, &path, None);
        call.json_body = Some(&body);
        let reply = self.success(&call).await?;
        let made: Made = self.http.decode(&call, &reply.body)?;
        let expires_at = made
            .expires_at
            .as_deref()
            .and_then(|at| crate::timestamp::parse_timestamp(at).ok());
        Ok(IssuedToken {
            token: ApiToken::new(made.token),
            id: made.id,
            expires_at,
        })
    }

    async fn delete_one_token(&self, user: &str, id: &str) -> Result<(), HttpError> {
        let path = format!("/users/{}/tokens/{}", encode(user), encode(id));
        let call = self.call(Method::DELETE, &path, None);
        let reply = self.http.send(&call).await?;
        match reply.status {
            StatusCode::NOT_FOUND => Ok(()),
            s if s.is_success() => Ok(()),
            _ => Err(self.http.status_error(&call, &reply)),
        }
    }
}

impl HubApi for HubClient {
    fn version(&self) -> BoxFuture<'_, Result<String, HttpError>> {
        Box::pin(self.get_version())
    }

    fn list_users(
        &self,
        state: Option<UserState>,
        include_stopped: bool,
        offset: u64,
        limit: Option<u64>,
    ) -> BoxFuture<'_, Result<UserPage, HttpError>> {
        Box::pin(self.get_users(state, include_stopped, offset, limit))
    }

    fn get_user<'a>(&'a self, name: &'a str) -> BoxFuture<'a, Result<Option<User>, HttpError>> {
        Box::pin(self.get_one_user(name))
    }

    fn stop_server<'a>(
        &'a self,
        user: &'a str,
        server: &'a str,
        remove: bool,
    ) -> BoxFuture<'a, Result<StopOutcome, HttpError>> {
        Box::pin(self.delete_server(user, server, remove))
    }

    fn delete_user<'a>(&'a self, user: &'a str) -> BoxFuture<'a, Result<DeleteOutcome, HttpError>> {
        Box::pin(self.delete_one_user(user))
    }

    fn create_token<'a>(
        &'a self,
        user: &'a str,
        request: &'a TokenRequest,
    ) -> BoxFuture<'a, Result<IssuedToken, HttpError>> {
        Box::pin(self.post_token(user, request))
    }

    fn delete_token<'a>(
        &'a self,
        user: &'a str,
        id: &'a str,
    ) -> BoxFuture<'a, Result<(), HttpError>> {
        Box::pin(self.delete_one_token(user, id))
    }

    fn concurrency(&self) -> usize {
        self.concurrency
    }

    fn take_error_counts(&self) -> BTreeMap<String, u64> {
        self.http.take_failures()
    }
}

fn configure_tls(
    mut builder: reqwest::ClientBuilder,
    tls: &TlsFiles,
) -> Result<reqwest::ClientBuilder, SetupError> {
    if let Some(ca_file) = &tls.ca_file {
        let certs = crate::tls::read_ca_certs(ca_file)?;
        // The Hub's internal CA is the only one to trust for the Hub's internal certificate.
        builder = builder.tls_certs_only(certs);
    }
    match (&tls.cert_file, &tls.key_file) {
        (Some(cert_file), Some(key_file)) => {
            let mut pem = read_file("certificate file", cert_file)?;
            pem.push(b'\n');
            pem.extend(read_file("key file", key_file)?);
            let identity = reqwest::Identity::from_pem(&pem).map_err(|e| {
                SetupError::config(format!(
                    "cannot use {} with {} as a client certificate ({})",
                    cert_file.display(),
                    key_file.display(),
                    error_chain(&e)
                ))
            })?;
            builder = builder.identity(identity);
        }
        (None, None) => {}
        _ => {
            return Err(SetupError::config(
                "a client certificate needs both a certificate file and a key file",
            ));
        }
    }
    Ok(builder)
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

pub fn users_query(
    state: Option<UserState>,
    include_stopped: bool,
    offset: u64,
    limit: Option<u64>,
) -> String {
    let mut query = Vec::new();
    if let Some(state) = state {
        query.push(format!("state={}", state.query_value()));
    }
    if include_stopped {
        query.push("include_stopped_servers=1".to_owned());
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
        assert_eq!(users_query(None, false, 0, None), "/users");
        assert_eq!(
            users_query(Some(UserState::Ready), false, 0, Some(200)),
            "/users?state=ready&limit=200"
        );
        assert_eq!(
            users_query(Some(UserState::Inactive), true, 40, Some(20)),
            "/users?state=inactive&include_stopped_servers=1&offset=40&limit=20"
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
            assert!(matches!(err, SetupError::Config(_)), "{url}: {err}");
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
}

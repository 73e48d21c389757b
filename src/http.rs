//! The HTTP plumbing every client of the core shares (the Hub, single-user servers, and
//! webhooks to come): one error type with a kind, a concurrency limit, bounded bodies, and
//! retries with exponential backoff and jitter that honour `Retry-After`.
//!
//! Errors that another try cannot fix (a refused certificate, a bad reply, a 4xx) are never
//! retried. A token lives only in a header marked sensitive, and an error never carries a
//! query string or credentials.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderValue, ACCEPT, AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{Method, StatusCode};
use tokio::sync::Semaphore;

use crate::setup::SetupError;
use crate::tls::{install_crypto_provider, tls_is_final};

/// Longest wait between two tries, also the cap on a peer's `Retry-After`.
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// The API token. Its `Debug` never shows the value.
#[derive(Clone)]
pub struct ApiToken(String);

impl ApiToken {
    pub fn new(token: impl Into<String>) -> Self {
        ApiToken(token.into())
    }

    /// The value, to send in a request body (an OAuth client secret); never to show.
    pub fn secret(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiToken(<hidden>)")
    }
}

/// Who is on the other end, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Peer {
    Hub,
    Server,
    Webhook,
}

impl Peer {
    fn noun(self) -> &'static str {
        match self {
            Peer::Hub => "the Hub",
            Peer::Server => "the server",
            Peer::Webhook => "the warning webhook",
        }
    }

    fn speaks(self) -> &'static str {
        match self {
            Peer::Hub => "what the Hub API sends",
            Peer::Server => "jupyter_server's",
            Peer::Webhook => "what the webhook answers",
        }
    }
}

/// What went wrong with a request, in the terms a caller decides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No answer within the timeout.
    Timeout,
    /// The connection could not be made (refused, unreachable, DNS).
    Connect,
    /// The TLS handshake failed in a way another try cannot fix (an unknown issuer, a missing
    /// or refused client certificate).
    Tls,
    /// The peer answered with an error status.
    Status,
    /// The connection broke during the exchange.
    Transport,
    /// The reply is not what the peer should send (or too large).
    Decode,
}

impl ErrorKind {
    /// A stable label for reports and metrics.
    pub fn label(self) -> &'static str {
        match self {
            ErrorKind::Timeout => "timeout",
            ErrorKind::Connect => "connect",
            ErrorKind::Tls => "tls",
            ErrorKind::Status => "status",
            ErrorKind::Transport => "transport",
            ErrorKind::Decode => "decode",
        }
    }
}

/// A failed request, or settings that cannot work.
#[derive(Debug, Clone)]
pub struct HttpError {
    kind: ErrorKind,
    peer: Peer,
    /// `METHOD target`, the target being a path under the Hub API or a server's URL.
    request: String,
    status: Option<u16>,
    /// The peer's own message (for a status), or what failed.
    detail: Option<String>,
}

impl HttpError {
    pub fn new(kind: ErrorKind, peer: Peer, method: &Method, target: &str, detail: String) -> Self {
        HttpError {
            kind,
            peer,
            request: format!("{method} {target}"),
            status: None,
            detail: Some(detail),
        }
    }

    /// The peer answered `status`, with its message if it gave one.
    pub fn status(
        peer: Peer,
        method: &Method,
        target: &str,
        status: u16,
        message: Option<String>,
    ) -> Self {
        HttpError {
            kind: ErrorKind::Status,
            peer,
            request: format!("{method} {target}"),
            status: Some(status),
            detail: message,
        }
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The HTTP status the peer answered, if it answered.
    pub fn http_status(&self) -> Option<u16> {
        self.status
    }

    /// Worth another try: the peer may be restarting, overloaded or briefly unreachable.
    pub fn is_transient(&self) -> bool {
        match self.kind {
            ErrorKind::Status => self.status.is_some_and(|s| s >= 500 || s == 429),
            ErrorKind::Timeout | ErrorKind::Connect | ErrorKind::Transport => true,
            ErrorKind::Tls | ErrorKind::Decode => false,
        }
    }

    /// How the failure is counted: the HTTP status, or the kind.
    pub fn count_label(&self) -> String {
        self.status
            .map_or_else(|| self.kind.label().to_owned(), |s| s.to_string())
    }
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let detail = self.detail.as_deref().unwrap_or_default();
        let (request, noun) = (&self.request, self.peer.noun());
        match self.kind {
            ErrorKind::Status => {
                let status = self.status.unwrap_or_default();
                write!(f, "{request}: {noun} answered {status}")?;
                match &self.detail {
                    Some(message) => write!(f, ": {message}"),
                    None => Ok(()),
                }
            }
            ErrorKind::Timeout => write!(f, "{request}: no answer within {detail}"),
            ErrorKind::Connect => write!(f, "{request}: cannot reach {noun} ({detail})"),
            ErrorKind::Tls => write!(f, "{request}: TLS with {noun} failed ({detail})"),
            ErrorKind::Transport => write!(f, "{request}: {detail}"),
            ErrorKind::Decode => write!(
                f,
                "{request}: the reply is not {} ({detail})",
                self.peer.speaks()
            ),
        }
    }
}

impl std::error::Error for HttpError {}

/// How often, and how patiently, transient failures are tried again.
#[derive(Debug, Clone, Copy)]
pub struct Retry {
    /// Tries after the first.
    pub retries: u32,
    /// The first backoff delay; doubled on each retry.
    pub backoff: Duration,
}

/// One request: where it goes and how it is shown in messages.
pub struct Call<'a> {
    pub method: Method,
    pub url: String,
    /// What messages name: a path under the Hub API, or the URL without its query.
    pub shown: &'a str,
    pub accept: Option<&'static str>,
    pub json_body: Option<&'a str>,
    /// An `application/x-www-form-urlencoded` body (the OAuth code exchange).
    pub form_body: Option<&'a str>,
    /// Sent instead of the client's own token: a user's, to ask the Hub whose it is, or a
    /// probe's token for the one server it is made for.
    pub as_user: Option<&'a str>,
}

/// A complete reply: its status and its (bounded) body.
pub struct Reply {
    pub status: StatusCode,
    pub body: Vec<u8>,
}

/// A reqwest client with the shared limit, retries, body cap and failure counts.
pub struct HttpClient {
    client: reqwest::Client,
    limiter: Arc<Semaphore>,
    peer: Peer,
    timeout: Duration,
    retry: Retry,
    max_body: usize,
    /// Where retries are logged, and how loudly: a Hub retry is news, a probe's is not.
    log_target: &'static str,
    retry_level: log::Level,
    /// Failed attempts (retried ones too) by HTTP status or error kind, until taken.
    failures: Mutex<BTreeMap<String, u64>>,
}

impl fmt::Debug for HttpClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpClient")
            .field("peer", &self.peer)
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

/// What an [`HttpClient`] is built from, besides its reqwest client.
pub struct ClientShape {
    pub peer: Peer,
    pub limiter: Arc<Semaphore>,
    pub timeout: Duration,
    pub retry: Retry,
    pub max_body: usize,
    pub log_target: &'static str,
    pub retry_level: log::Level,
}

impl HttpClient {
    pub fn new(builder: reqwest::ClientBuilder, shape: ClientShape) -> Result<Self, SetupError> {
        let client = builder.build().map_err(|e| {
            SetupError::config(format!("cannot build the HTTP client: {}", error_chain(&e)))
        })?;
        Ok(HttpClient {
            client,
            limiter: shape.limiter,
            peer: shape.peer,
            timeout: shape.timeout,
            retry: shape.retry,
            max_body: shape.max_body,
            log_target: shape.log_target,
            retry_level: shape.retry_level,
            failures: Mutex::default(),
        })
    }

    pub fn limiter(&self) -> Arc<Semaphore> {
        Arc::clone(&self.limiter)
    }

    /// The failed attempts counted since the last call, by HTTP status or error kind.
    pub fn take_failures(&self) -> BTreeMap<String, u64> {
        std::mem::take(&mut *self.failures.lock().unwrap_or_else(PoisonError::into_inner))
    }

    /// Send, retrying transient failures. Other error statuses are returned for the caller
    /// to interpret (a 404 to a stop means "already gone").
    pub async fn send(&self, call: &Call<'_>) -> Result<Reply, HttpError> {
        let mut attempt = 0;
        loop {
            let (error, retry_after) = match self.send_once(call).await {
                Ok((reply, retry_after)) => {
                    if !(reply.status.is_client_error() || reply.status.is_server_error()) {
                        return Ok(reply);
                    }
                    self.count(reply.status.as_u16().to_string());
                    let error = self.status_error(call, &reply);
                    if !error.is_transient() {
                        return Ok(reply);
                    }
                    (error, retry_after)
                }
                Err(error) => {
                    self.count(error.count_label());
                    if !error.is_transient() {
                        return Err(error);
                    }
                    (error, None)
                }
            };
            if attempt >= self.retry.retries {
                return Err(error);
            }
            attempt += 1;
            let delay = retry_after.map_or_else(
                || backoff_delay(self.retry.backoff, attempt),
                |d| d.min(MAX_BACKOFF),
            );
            log::log!(
                target: self.log_target,
                self.retry_level,
                "{error}; retrying in {:.1}s (retry {attempt} of {})",
                delay.as_secs_f64(),
                self.retry.retries
            );
            tokio::time::sleep(delay).await;
        }
    }

    /// The error for a reply with an unwanted status, with the peer's JSON `message` if any.
    pub fn status_error(&self, call: &Call<'_>, reply: &Reply) -> HttpError {
        #[derive(serde::Deserialize)]
        struct ErrorBody {
            message: Option<String>,
        }
        let message = serde_json::from_slice::<ErrorBody>(&reply.body)
            .ok()
            .and_then(|b| b.message)
            .map(|m| m.chars().take(300).collect());
        HttpError::status(
            self.peer,
            &call.method,
            call.shown,
            reply.status.as_u16(),
            message,
        )
    }

    /// The reply's body as `T`, or a decode error naming the request.
    pub fn decode<T: serde::de::DeserializeOwned>(
        &self,
        call: &Call<'_>,
        body: &[u8],
    ) -> Result<T, HttpError> {
        serde_json::from_slice(body).map_err(|e| self.decode_error(call, e.to_string()))
    }

    pub fn decode_error(&self, call: &Call<'_>, detail: String) -> HttpError {
        let error = HttpError::new(
            ErrorKind::Decode,
            self.peer,
            &call.method,
            call.shown,
            detail,
        );
        self.count(error.count_label());
        error
    }

    pub(crate) fn count(&self, label: String) {
        *self
            .failures
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(label)
            .or_default() += 1;
    }

    async fn send_once(&self, call: &Call<'_>) -> Result<(Reply, Option<Duration>), HttpError> {
        let _permit = self
            .limiter
            .acquire()
            .await
            .expect("the limiter is never closed");
        let mut request = self.client.request(call.method.clone(), &call.url);
        if let Some(accept) = call.accept {
            request = request.header(ACCEPT, accept);
        }
        if let Some(body) = call.json_body {
            request = request
                .header(CONTENT_TYPE, "application/json")
                .body(body.to_owned());
        }
        if let Some(body) = call.form_body {
            request = request
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body.to_owned());
        }
        if let Some(token) = call.as_user {
            let mut auth = HeaderValue::from_str(&format!("token {token}"))
                .map_err(|_| self.decode_error(call, "the token cannot be sent".into()))?;
            auth.set_sensitive(true);
            request = request.header(AUTHORIZATION, auth);
        }
        log::debug!(target: self.log_target, "{} {}", call.method, call.shown);
        let mut response = request.send().await.map_err(|e| self.transport(call, &e))?;
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
            .map_err(|e| self.transport(call, &e))?
        {
            if body.len() + chunk.len() > self.max_body {
                return Err(HttpError::new(
                    ErrorKind::Decode,
                    self.peer,
                    &call.method,
                    call.shown,
                    format!("reply larger than {} MiB", self.max_body >> 20),
                ));
            }
            body.extend_from_slice(&chunk);
        }
        Ok((Reply { status, body }, retry_after))
    }

    fn transport(&self, call: &Call<'_>, error: &reqwest::Error) -> HttpError {
        let (kind, detail) = if tls_is_final(error) {
            (ErrorKind::Tls, error_chain(error))
        } else if error.is_timeout() {
            (
                ErrorKind::Timeout,
                format!("{:.0}s", self.timeout.as_secs_f64()),
            )
        } else if error.is_connect() {
            (ErrorKind::Connect, error_chain(error))
        } else {
            (ErrorKind::Transport, error_chain(error))
        };
        HttpError::new(kind, self.peer, &call.method, call.shown, detail)
    }
}

/// A client builder that sends `token` as a sensitive header (never logged) and asks for
/// JSON. Like the reference (tornado), it talks to its target directly even when
/// HTTP(S)_PROXY is set.
pub fn client_builder(
    token: &ApiToken,
    timeout: Duration,
) -> Result<reqwest::ClientBuilder, SetupError> {
    let mut auth = HeaderValue::from_str(&format!("token {}", token.0)).map_err(|_| {
        SetupError::config("the API token holds characters that cannot be sent in an HTTP header")
    })?;
    auth.set_sensitive(true);
    let mut headers = HeaderMap::new();
    headers.insert(AUTHORIZATION, auth);
    Ok(builder_with(headers, timeout))
}

/// A client builder that sends no credential of its own: each request carries the one meant
/// for its peer (`Call::as_user`), as probes of single-user servers do.
pub fn anonymous_builder(timeout: Duration) -> reqwest::ClientBuilder {
    builder_with(HeaderMap::new(), timeout)
}

fn builder_with(mut headers: HeaderMap, timeout: Duration) -> reqwest::ClientBuilder {
    install_crypto_provider();
    headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
    reqwest::Client::builder()
        .default_headers(headers)
        .user_agent(concat!("cull-idle/", env!("CARGO_PKG_VERSION")))
        .timeout(timeout)
        .no_proxy()
}

/// `2^attempt * base` (capped), with full jitter in its upper half so that many cullers or
/// retries do not beat on a peer in step.
pub fn backoff_delay(base: Duration, attempt: u32) -> Duration {
    let exp = base
        .saturating_mul(1u32 << attempt.min(16).saturating_sub(1))
        .min(MAX_BACKOFF);
    let jitter: f64 = rand::rng().random_range(0.5..=1.0);
    exp.mul_f64(jitter)
}

/// A reqwest error and its causes, without the URL (which could carry credentials).
pub fn error_chain(error: &reqwest::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{rustls_error_in, rustls_is_final};

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
    fn only_what_another_try_can_fix_is_transient() {
        let status = |s| HttpError::status(Peer::Hub, &Method::GET, "/", s, None);
        assert!(status(500).is_transient());
        assert!(status(503).is_transient());
        assert!(status(429).is_transient());
        assert!(!status(403).is_transient());
        assert!(!status(404).is_transient());
        let of = |kind| HttpError::new(kind, Peer::Server, &Method::GET, "u", String::new());
        assert!(of(ErrorKind::Timeout).is_transient());
        assert!(of(ErrorKind::Connect).is_transient());
        assert!(of(ErrorKind::Transport).is_transient());
        assert!(!of(ErrorKind::Tls).is_transient());
        assert!(!of(ErrorKind::Decode).is_transient());
    }

    #[test]
    fn a_rustls_error_is_found_inside_nested_io_errors() {
        use std::io::{Error, ErrorKind};
        let tls = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        let wrapped = Error::other(Error::new(ErrorKind::InvalidData, tls.clone()));
        assert_eq!(rustls_error_in(&wrapped), Some(&tls));
        assert_eq!(rustls_error_in(&Error::other("refused")), None);
    }

    #[test]
    fn certificate_failures_are_final_and_others_are_not() {
        let cert = rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer);
        assert!(rustls_is_final(&cert));
        let alert = rustls::Error::AlertReceived(rustls::AlertDescription::CertificateRequired);
        assert!(rustls_is_final(&alert));
        let reset = rustls::Error::AlertReceived(rustls::AlertDescription::CloseNotify);
        assert!(!rustls_is_final(&reset));
    }

    #[test]
    fn messages_name_the_request_and_the_peer() {
        let hub = HttpError::status(
            Peer::Hub,
            &Method::DELETE,
            "/users/a/server",
            400,
            Some("no".into()),
        );
        assert_eq!(
            hub.to_string(),
            "DELETE /users/a/server: the Hub answered 400: no"
        );
        let server = HttpError::new(
            ErrorKind::Decode,
            Peer::Server,
            &Method::GET,
            "http://s/api/kernels",
            "eof".into(),
        );
        assert_eq!(
            server.to_string(),
            "GET http://s/api/kernels: the reply is not jupyter_server's (eof)"
        );
        assert_eq!(hub.count_label(), "400");
        assert_eq!(server.count_label(), "decode");
    }
}

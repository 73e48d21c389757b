//! Delivering warnings: the operator's hook (through a trait the binding implements) and a
//! webhook whose JSON `text` Slack, Mattermost and Rocket.Chat post as it is.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use reqwest::Method;
use tokio::sync::Semaphore;

use crate::http::{ClientShape, HttpClient, HttpError, Peer, Retry};
use crate::policy::CullReason;
use crate::setup::SetupError;
use crate::state::Kind;
use crate::timestamp::{format_duration, format_utc};

/// A warning given in a pass.
#[derive(Debug, Clone, serde::Serialize)]
pub struct Warning {
    pub kind: Kind,
    pub user: String,
    /// The server's name (`""` for the default one); `None` for a user's deletion.
    pub server: Option<String>,
    pub reason: CullReason,
    pub inactive: Option<f64>,
    /// Seconds since the epoch: the cull comes at the first pass from then on.
    pub cull_at: f64,
    /// Every way of delivering it worked.
    pub delivered: bool,
    /// The Hub's user and server models, for the hook; not in the report.
    #[serde(skip)]
    pub user_json: String,
    #[serde(skip)]
    pub server_json: Option<String>,
}

impl Warning {
    /// How logs name what is culled: `server alice/lab` or `user alice`.
    pub fn subject(&self) -> String {
        match &self.server {
            Some(server) if server.is_empty() => format!("server {}", self.user),
            Some(server) => format!("server {}/{server}", self.user),
            None => format!("user {}", self.user),
        }
    }

    /// The sentence a chat posts.
    pub fn text(&self) -> String {
        let cull_at = format_utc(self.cull_at);
        let inactive = format_duration(self.inactive);
        match (&self.server, self.reason) {
            (Some(server), CullReason::LongStopped) => format!(
                "{}'s stopped server {server} will be removed at {cull_at}: it has not run for {inactive}. Start it before then to keep it.",
                self.user
            ),
            (Some(server), reason) => {
                let what = if server.is_empty() {
                    format!("{}'s server", self.user)
                } else {
                    format!("{}'s server {server}", self.user)
                };
                let why = if reason == CullReason::MaxAge {
                    "it has reached the longest a server may run".to_owned()
                } else {
                    format!("it has been idle for {inactive}")
                };
                format!("{what} will be stopped at {cull_at}: {why}. Use it before then to keep it running.")
            }
            (None, CullReason::MaxAge) => format!(
                "The user {} will be deleted at {cull_at}: it has reached the longest a user may exist.",
                self.user
            ),
            (None, _) => format!(
                "The user {} will be deleted at {cull_at}: it has been inactive for {inactive}. Log in before then to keep it.",
                self.user
            ),
        }
    }

    /// The webhook's JSON body.
    pub fn payload(&self) -> String {
        serde_json::json!({
            "text": self.text(),
            "user": self.user,
            "server": self.server,
            "reason": self.reason,
            "inactive_seconds": self.inactive,
            "cull_at": format_utc(self.cull_at),
        })
        .to_string()
    }
}

/// The operator's warning hook. Implementations report their own failures and answer `false`.
pub trait WarnHook: Send + Sync {
    fn warn<'a>(&'a self, warning: &'a Warning) -> Pin<Box<dyn Future<Output = bool> + Send + 'a>>;
}

/// Posts warnings to a webhook. The Hub's token is never sent, and messages show only the
/// URL's scheme and host (Slack puts its key in the path).
pub struct WebhookClient {
    http: HttpClient,
    url: String,
    shown: String,
}

impl std::fmt::Debug for WebhookClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WebhookClient")
            .field("shown", &self.shown)
            .finish_non_exhaustive()
    }
}

/// The URL as messages may show it: scheme and host, and `…` for the rest.
pub fn redact(url: &reqwest::Url) -> String {
    format!("{}://{}/…", url.scheme(), url.host_str().unwrap_or("?"))
}

impl WebhookClient {
    /// `limiter` is shared with the Hub client, so warnings count against `--concurrency`.
    pub fn new(
        url: &str,
        timeout: Duration,
        retry: Retry,
        limiter: Arc<Semaphore>,
    ) -> Result<Self, SetupError> {
        let parsed = reqwest::Url::parse(url.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host_str().is_some())
            .ok_or_else(|| {
                SetupError::config("the warning webhook must be an http:// or https:// URL")
            })?;
        crate::tls::install_crypto_provider();
        // No default headers: the Hub's token must not reach a third party. The proxy
        // settings of the environment apply, as a webhook is usually outside the cluster.
        let builder = reqwest::Client::builder()
            .user_agent(concat!("cull-idle/", env!("CARGO_PKG_VERSION")))
            .timeout(timeout);
        let http = HttpClient::new(
            builder,
            ClientShape {
                peer: Peer::Webhook,
                limiter,
                timeout,
                retry,
                max_body: 1 << 20,
                log_target: "cull_idle::webhook",
                retry_level: log::Level::Warn,
            },
        )?;
        Ok(WebhookClient {
            http,
            shown: redact(&parsed),
            url: parsed.into(),
        })
    }

    pub async fn post(&self, warning: &Warning) -> Result<(), HttpError> {
        let body = warning.payload();
        let call = crate::http::Call {
            method: Method::POST,
            url: self.url.clone(),
            shown: &self.shown,
            accept: None,
            json_body: Some(&body),
            form_body: None,
            as_user: None,
        };
        let reply = self.http.send(&call).await?;
        if reply.status.is_success() {
            Ok(())
        } else {
            Err(self.http.status_error(&call, &reply))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn warning(server: Option<&str>) -> Warning {
        Warning {
            kind: if server.is_some() {
                Kind::Server
            } else {
                Kind::User
            },
            user: "alice".into(),
            server: server.map(Into::into),
            reason: CullReason::Idle,
            inactive: Some(3000.0),
            cull_at: 1_795_773_600.0,
            delivered: false,
            user_json: String::new(),
            server_json: None,
        }
    }

    #[test]
    fn the_text_reads_as_a_sentence() {
        assert_eq!(
            warning(Some("")).text(),
            "alice's server will be stopped at 2026-11-27T10:00:00Z: it has been idle for 00:50:00. Use it before then to keep it running."
        );
        assert!(warning(Some("lab"))
            .text()
            .starts_with("alice's server lab will be stopped"));
        assert!(warning(None)
            .text()
            .starts_with("The user alice will be deleted"));
        let payload: serde_json::Value = serde_json::from_str(&warning(None).payload()).unwrap();
        assert_eq!(payload["server"], serde_json::Value::Null);
        assert_eq!(payload["reason"], "idle");
        assert_eq!(payload["cull_at"], "2026-11-27T10:00:00Z");
        assert_eq!(payload["inactive_seconds"], 3000.0);
    }

    #[test]
    fn only_scheme_and_host_are_shown() {
        let url = reqwest::Url::parse("https://hooks.slack.com/services/T0/B0/secretkey").unwrap();
        assert_eq!(redact(&url), "https://hooks.slack.com/…");
        let no_retry = Retry {
            retries: 0,
            backoff: Duration::ZERO,
        };
        let err = WebhookClient::new(
            "ftp://x/secret",
            Duration::from_secs(1),
            no_retry,
            Arc::new(Semaphore::new(1)),
        )
        .unwrap_err();
        assert!(!err.to_string().contains("secret"), "{err}");
    }
}

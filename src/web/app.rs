//! What the page's handlers share: its settings from the Python side, the Hub client and the
//! budget it is asked within, the board and the keep-alives, the metrics and the sessions.

use std::sync::Arc;
use std::time::Duration;

use axum_extra::extract::cookie::Key;

use crate::auth::{AuthCache, AuthError};
use crate::board::Board;
use crate::hub::HubClient;
use crate::keepalive::KeepAlives;
use crate::metrics::Metrics;

use super::LOG;

/// What the page is given by the Python side: the OAuth client the Hub made for the service,
/// and the operator's options.
#[derive(Debug, Clone)]
pub struct PageSettings {
    pub service_name: String,
    pub client_id: String,
    /// `$JUPYTERHUB_OAUTH_CALLBACK_URL`, exactly as the Hub registered it.
    pub callback_url: String,
    /// The Hub's `…/hub/api/oauth2/authorize`, as the browser reaches it.
    pub authorize_url: String,
    pub access_scopes: Vec<String>,
    /// `--max-keep-alive`; 0 hides the control and refuses requests.
    pub max_keep_alive: f64,
    /// `--warn-before`, so that a server's notice knows when its warning window opens.
    pub warn_before: f64,
    /// The page and its login; without them (`--page=false`) only `api/me` is served, to
    /// tokens, so that servers can still show their users the culler's warning.
    pub html: bool,
    pub admin_groups: Vec<String>,
    /// How long the Hub's word on a token is trusted.
    pub auth_cache_seconds: f64,
    pub secure_cookies: bool,
}

pub struct PageApp {
    pub settings: PageSettings,
    /// Where the service is served (`/services/name/`).
    pub prefix: String,
    pub hub: Arc<HubClient>,
    pub board: Arc<Board>,
    pub keep_alives: Option<Arc<KeepAlives>>,
    pub metrics: Arc<Metrics>,
    pub auth: AuthCache,
    /// Encrypts the session cookie; new at each start, so a restart logs browsers in again
    /// (through the Hub, without a prompt).
    pub key: Key,
    pub sessions: super::sessions::Sessions,
}

impl PageApp {
    pub fn new(
        settings: PageSettings,
        prefix: String,
        hub: Arc<HubClient>,
        board: Arc<Board>,
        keep_alives: Option<Arc<KeepAlives>>,
        metrics: Arc<Metrics>,
    ) -> Self {
        let ttl = Duration::try_from_secs_f64(settings.auth_cache_seconds).unwrap_or_default();
        PageApp {
            settings,
            prefix,
            hub,
            board,
            keep_alives,
            metrics,
            auth: AuthCache::new(ttl),
            key: Key::generate(),
            sessions: super::sessions::Sessions::default(),
        }
    }

    /// Count, and log, a check of a visitor that could not be made.
    pub fn count_failure(&self, error: &AuthError) {
        match error {
            AuthError::Busy => self.metrics.count_page_auth_busy(),
            AuthError::Hub(e) => {
                self.metrics.count_page_auth_error();
                log::warn!(target: LOG, "Cannot check a page visitor with the Hub: {e}");
            }
        }
    }

    /// A turn in the page's budget of Hub requests; when it is spent, the error (counted).
    pub async fn hub_turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AuthError> {
        self.auth
            .budget()
            .await
            .inspect_err(|e| self.count_failure(e))
    }

    /// The keep-alives, when they are on (`--max-keep-alive`; the connection then has them).
    pub fn keep_alives(&self) -> Option<&KeepAlives> {
        self.keep_alives.as_deref()
    }
}

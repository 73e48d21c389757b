//! The page and its JSON API: each user sees their own servers and may keep them alive;
//! operators see everything the culler is about to do. Every answer is made from the last
//! pass's [`Board`] and the keep-alives in memory, so a view costs the Hub nothing beyond the
//! cached check of who is asking.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use axum_extra::extract::cookie::Key;
use serde::Deserialize;
use serde_json::json;

use crate::auth::{AuthCache, AuthError};
use crate::board::Board;
use crate::hub::{HubApi, HubClient};
use crate::keepalive::{grant, KeepAlive, KeepAlives};
use crate::metrics::Metrics;
use crate::models::Server;
use crate::reasons::Verdict;
use crate::timestamp::format_utc;

use super::html::{self, AdminPage, UserPage};
use super::session::{allowed_to_change, caller, login, Caller, Refusal};

const LOG: &str = "cull_idle";

/// What the page is given by the Python side: the OAuth client the Hub made for the service,
/// and the operator's options.
#[derive(Debug, Clone, Deserialize)]
pub struct PageSettings {
    pub service_name: String,
    pub client_id: String,
    /// `$JUPYTERHUB_OAUTH_CALLBACK_URL`, exactly as the Hub registered it.
    pub callback_url: String,
    /// The Hub's `…/hub/api/oauth2/authorize`, as the browser reaches it.
    pub authorize_url: String,
    #[serde(default)]
    pub access_scopes: Vec<String>,
    /// `--max-keep-alive`; 0 hides the control and refuses requests.
    #[serde(default)]
    pub max_keep_alive: f64,
    #[serde(default)]
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

    /// The refusal for a check that could not be made, logged and counted.
    pub fn refusal_for(&self, error: AuthError) -> Refusal {
        match error {
            AuthError::Busy => {
                self.metrics.count_page_auth_busy();
                Refusal::Busy
            }
            AuthError::Hub(e) => {
                self.metrics.count_page_auth_error();
                log::warn!(target: LOG, "Cannot check a page visitor with the Hub: {e}");
                Refusal::HubDown
            }
        }
    }

    /// A turn in the page's budget of Hub requests, or the refusal (counted) when it is spent.
    pub async fn hub_turn(&self) -> Result<tokio::sync::OwnedSemaphorePermit, Refusal> {
        self.auth.budget().await.map_err(|e| self.refusal_for(e))
    }

    /// Whether `caller` may see every user's servers: a Hub admin or a member of
    /// `--admin-groups`, asking with this page's own browser session or with a token that may
    /// list the Hub's users. A server's own token (which the recipe lets reach the page) is
    /// its owner's, admin or not, and must not read everyone's.
    pub fn is_operator(&self, caller: &Caller) -> bool {
        caller.who.is_operator(&self.settings.admin_groups)
            && (caller.csrf.is_some() || caller.who.scopes.iter().any(|s| s == "list:users"))
    }

    /// The keep-alives, when they are on (`--max-keep-alive`; the connection then has them).
    pub fn keep_alives(&self) -> Option<&KeepAlives> {
        self.keep_alives.as_deref()
    }
}

use crate::timestamp::unix_now as now;

/// A small HTML page with a status.
pub fn problem(status: StatusCode, text: &str) -> Response {
    let page = html::message_page("./", text);
    (status, Html(page)).into_response()
}

fn json_error(status: StatusCode, text: &str) -> Response {
    (status, Json(json!({ "error": text }))).into_response()
}

fn refusal_html(app: &PageApp, headers: &HeaderMap, uri: &Uri, refusal: &Refusal) -> Response {
    match refusal {
        Refusal::NoCredentials | Refusal::BadToken => login(app, headers, uri.path()),
        Refusal::NoAccess => problem(StatusCode::FORBIDDEN, &no_access(app)),
        Refusal::HubDown => problem(
            StatusCode::BAD_GATEWAY,
            "The Hub cannot be reached; try again in a moment.",
        ),
        Refusal::Busy => {
            let mut response = busy(problem(
                StatusCode::SERVICE_UNAVAILABLE,
                "The culler is busy checking other visitors; this page tries again in a moment.",
            ));
            // A browser reloads by itself: a class opening the page at once gets in within
            // seconds, without anyone clicking.
            response
                .headers_mut()
                .insert("refresh", header::HeaderValue::from_static("1"));
            response
        }
    }
}

/// Tell the client when to come back.
fn busy(mut response: Response) -> Response {
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    response
}

pub(super) fn refusal_json(app: &PageApp, refusal: &Refusal) -> Response {
    match refusal {
        Refusal::NoCredentials => json_error(
            StatusCode::UNAUTHORIZED,
            "log in, or send a Hub token as 'Authorization: token …'",
        ),
        Refusal::BadToken => json_error(
            StatusCode::UNAUTHORIZED,
            "the Hub does not accept this token (expired, revoked or unknown)",
        ),
        Refusal::NoAccess => json_error(StatusCode::FORBIDDEN, &no_access(app)),
        Refusal::HubDown => json_error(
            StatusCode::BAD_GATEWAY,
            "the Hub cannot be reached; try again",
        ),
        Refusal::Busy => busy(json_error(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy checking other visitors; try again in a moment",
        )),
    }
}

fn no_access(app: &PageApp) -> String {
    format!(
        "This token does not grant access:services!service={}; ask the Hub's operators for it",
        app.settings.service_name
    )
}

/// `GET {prefix}`: the visitor's own servers.
pub async fn user_page(State(app): State<Arc<PageApp>>, headers: HeaderMap, uri: Uri) -> Response {
    let caller = match caller(&app, &headers).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal_html(&app, &headers, &uri, &refusal),
    };
    let notice = uri.query().and_then(|q| {
        q.split('&').find_map(|kv| match kv {
            "done=kept" => Some("Your server is kept alive."),
            "done=cancelled" => Some("Your server is no longer kept alive."),
            "done=bounded" => Some("Your server is kept alive, for as long as the culler allows."),
            "done=gone" => Some("That server is not running."),
            _ => None,
        })
    });
    let snapshot = app.board.snapshot();
    let page = html::user_page(&UserPage {
        prefix: &app.prefix,
        user: &caller.who.name,
        operator: app.is_operator(&caller),
        csrf: caller.csrf.as_deref().unwrap_or(""),
        snapshot: &snapshot,
        views: snapshot.for_user(&caller.who.name),
        max_keep_alive: app.keep_alives().map_or(0.0, |k| k.max),
        now: now(),
        notice,
    });
    (no_store(), Html(page)).into_response()
}

fn no_store() -> [(header::HeaderName, &'static str); 1] {
    [(header::CACHE_CONTROL, "no-store")]
}

/// `GET {prefix}admin`: every server, for Hub admins and `--admin-groups`.
pub async fn admin_page(State(app): State<Arc<PageApp>>, headers: HeaderMap, uri: Uri) -> Response {
    let caller = match caller(&app, &headers).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal_html(&app, &headers, &uri, &refusal),
    };
    if !app.is_operator(&caller) {
        return problem(StatusCode::FORBIDDEN, "This view is for the Hub's admins.");
    }
    let snapshot = app.board.snapshot();
    let passes = app.board.history();
    let now = now();
    let kept = app
        .keep_alives()
        .map(|k| k.in_force(now))
        .unwrap_or_default();
    let page = html::admin_page(&AdminPage {
        prefix: &app.prefix,
        user: &caller.who.name,
        snapshot: &snapshot,
        passes: &passes,
        keep_alives: &kept,
        now,
    });
    (no_store(), Html(page)).into_response()
}

/// What a keep-alive request came to.
enum Kept {
    Set(KeepAlive, f64, bool),
    Cancelled(bool),
}

/// Whether `user` has `server` running or starting: as the last pass saw it, or else, for a
/// server started since (with `--cull-every=3600` that may be an hour ago), as the Hub says
/// now, asked within the page's budget.
async fn runs(app: &PageApp, user: &str, server: &str) -> Result<bool, (StatusCode, String)> {
    let seen = app
        .board
        .snapshot()
        .for_user(user)
        .iter()
        .any(|v| v.server == server && v.verdict != Verdict::Stop);
    if seen {
        return Ok(true);
    }
    let _turn = app.hub_turn().await.map_err(|_| {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "busy checking other visitors; try again in a moment".to_owned(),
        )
    })?;
    let mut found = match app.hub.get_user(user).await {
        Ok(Some(found)) => found,
        Ok(None) => return Ok(false),
        Err(e) => {
            app.metrics.count_page_auth_error();
            log::warn!(target: LOG, "Cannot ask the Hub whether a visitor's server runs: {e}");
            return Err((
                StatusCode::BAD_GATEWAY,
                "the Hub cannot be reached; try again".to_owned(),
            ));
        }
    };
    Ok(found.servers().is_some_and(|servers| {
        servers.0.iter().any(|(name, raw)| {
            name == server
                && serde_json::from_str::<Server>(raw.get())
                    .is_ok_and(|s| s.is_ready() || s.pending.as_deref() == Some("spawn"))
        })
    }))
}

/// Set or cancel a keep-alive for one of `caller`'s own servers.
async fn change(
    app: &PageApp,
    caller: &Caller,
    server: &str,
    seconds: Option<f64>,
) -> Result<Kept, (StatusCode, String)> {
    let Some(keep_alives) = app.keep_alives() else {
        return Err((
            StatusCode::NOT_FOUND,
            "keep-alives are off (--max-keep-alive)".into(),
        ));
    };
    let user = caller.who.name.as_str();
    // A keep-alive in force can always be ended; anything else is for a server that runs.
    let ending = seconds.is_none() && keep_alives.in_force_until(user, server, now()).is_some();
    if !ending && !runs(app, user, server).await? {
        return Err((
            StatusCode::NOT_FOUND,
            "you have no such running server".into(),
        ));
    }
    let now = now();
    let failed = |e: rusqlite::Error| {
        log::error!(target: LOG, "Cannot record a keep-alive in the state file: {e}");
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "the keep-alive could not be recorded; try again".to_owned(),
        )
    };
    let shown = crate::pass::report::log_name(user, server);
    let Some(requested) = seconds else {
        let cancelled = keep_alives.cancel(user, server, now).map_err(failed)?;
        if cancelled {
            log::info!(target: LOG, user = user, action = "keep-alive-cancel"; "Keep-alive of server {shown} cancelled by its user");
        }
        return Ok(Kept::Cancelled(cancelled));
    };
    let Some(granted) = grant(requested, keep_alives.max) else {
        return Err((
            StatusCode::BAD_REQUEST,
            "seconds must be a positive number".into(),
        ));
    };
    let kept = keep_alives
        .set(user, server, granted, now)
        .map_err(failed)?;
    app.metrics.count_keep_alive();
    log::info!(
        target: LOG,
        user = user, action = "keep-alive", until = format_utc(kept.until).as_str();
        "Keep-alive: server {shown} kept running until {} by its user{}",
        format_utc(kept.until),
        if granted.bounded { format!(" (asked for {requested:.0}s; --max-keep-alive is {:.0}s)", keep_alives.max) } else { String::new() }
    );
    Ok(Kept::Set(kept, granted.seconds, granted.bounded))
}

#[derive(Deserialize)]
pub struct KeepForm {
    #[serde(default)]
    server: String,
    #[serde(default)]
    seconds: Option<String>,
    #[serde(default)]
    action: Option<String>,
    #[serde(default, rename = "_csrf")]
    csrf: Option<String>,
}

/// `POST {prefix}keep-alive`: the page's form, which works without scripts.
pub async fn keep_form(
    State(app): State<Arc<PageApp>>,
    headers: HeaderMap,
    Form(form): Form<KeepForm>,
) -> Response {
    let caller = match caller(&app, &headers).await {
        Ok(caller) => caller,
        Err(Refusal::NoCredentials | Refusal::BadToken) => {
            return Redirect::to(&app.prefix).into_response()
        }
        Err(refusal) => return refusal_html(&app, &headers, &Uri::from_static("/"), &refusal),
    };
    if !allowed_to_change(&caller, &headers, form.csrf.as_deref()) {
        return problem(
            StatusCode::FORBIDDEN,
            "This request did not come from the culler's own page; open the page and try again.",
        );
    }
    let seconds = if form.action.as_deref() == Some("cancel") {
        None
    } else {
        Some(
            form.seconds
                .as_deref()
                .and_then(|s| s.trim().parse::<f64>().ok())
                .unwrap_or(f64::NAN),
        )
    };
    let done = match change(&app, &caller, &form.server, seconds).await {
        Ok(Kept::Set(_, _, false)) => "kept",
        Ok(Kept::Set(_, _, true)) => "bounded",
        Ok(Kept::Cancelled(_)) => "cancelled",
        Err((StatusCode::NOT_FOUND, _)) => "gone",
        Err((status, text)) => return problem(status, &text),
    };
    Redirect::to(&format!("{}?done={done}", app.prefix)).into_response()
}

/// `GET {prefix}api/me`: the caller's servers with their verdicts.
pub async fn api_me(State(app): State<Arc<PageApp>>, headers: HeaderMap) -> Response {
    let caller = match caller(&app, &headers).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal_json(&app, &refusal),
    };
    let snapshot = app.board.snapshot();
    let servers = snapshot.for_user(&caller.who.name);
    let body = json!({
        "user": caller.who.name,
        "operator": app.is_operator(&caller),
        "as_of": snapshot.at.map(format_utc),
        "complete": snapshot.complete,
        "max_keep_alive": app.keep_alives().map_or(0.0, |k| k.max),
        "servers": servers.iter().map(super::api::server_json).collect::<Vec<_>>(),
    });
    (no_store(), Json(body)).into_response()
}

#[derive(Deserialize)]
pub struct KeepRequest {
    #[serde(default)]
    server: String,
    seconds: Option<f64>,
}

/// `POST {prefix}api/keep-alive` sets one, `DELETE` cancels it.
pub async fn api_keep(
    State(app): State<Arc<PageApp>>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let caller = match caller(&app, &headers).await {
        Ok(caller) => caller,
        Err(refusal) => return refusal_json(&app, &refusal),
    };
    let sent_csrf = headers.get("x-csrf-token").and_then(|v| v.to_str().ok());
    if !allowed_to_change(&caller, &headers, sent_csrf) {
        return json_error(
            StatusCode::FORBIDDEN,
            "cross-site request refused: send the page's X-CSRF-Token, or your own token",
        );
    }
    let request: KeepRequest = if body.is_empty() && method == axum::http::Method::DELETE {
        KeepRequest {
            server: String::new(),
            seconds: None,
        }
    } else {
        match serde_json::from_slice(&body) {
            Ok(request) => request,
            Err(e) => {
                return json_error(
                    StatusCode::BAD_REQUEST,
                    &format!("not a keep-alive request: {e}"),
                )
            }
        }
    };
    let seconds = if method == axum::http::Method::DELETE {
        None
    } else {
        match request.seconds {
            Some(s) => Some(s),
            None => return json_error(StatusCode::BAD_REQUEST, "give seconds, a positive number"),
        }
    };
    match change(&app, &caller, &request.server, seconds).await {
        Ok(Kept::Set(kept, granted, bounded)) => Json(json!({
            "server": kept.server,
            "until": format_utc(kept.until),
            "seconds": granted,
            "requested": seconds,
            "bounded": bounded,
            "max_keep_alive": app.settings.max_keep_alive,
        }))
        .into_response(),
        Ok(Kept::Cancelled(cancelled)) => {
            Json(json!({ "server": request.server, "cancelled": cancelled })).into_response()
        }
        Err((status, text)) => json_error(status, &text),
    }
}

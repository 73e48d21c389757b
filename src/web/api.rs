//! The page's JSON API: the caller's servers (`api/me`), keep-alives (`api/keep-alive`), and
//! the operators' view (`api/admin`).

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::board::{Cull, PassSummary, ServerView};
use crate::reasons::{CullReason, Verdict, Why};
use crate::signals::IdleBy;
use crate::timestamp::format_utc;

use super::app::PageApp;
use super::caller::{allowed_to_change, ApiCaller};
use super::keep::{change, Kept};
use super::respond::{json_error, no_store};

/// A server and its verdict, with times in ISO 8601 UTC.
#[derive(Serialize)]
pub struct ServerJson<'a> {
    user: &'a str,
    server: &'a str,
    inactive_seconds: Option<f64>,
    last_activity: Option<&'a str>,
    limit_seconds: f64,
    group_limit: bool,
    profile: Option<&'a str>,
    verdict: Verdict,
    reason: Why,
    detail: Option<&'a str>,
    stop_at: Option<String>,
    stop_reason: Option<CullReason>,
    warned_at: Option<String>,
    kept_until: Option<String>,
    idle_by: IdleBy,
}

pub fn server_json(view: &ServerView) -> ServerJson<'_> {
    ServerJson {
        user: &view.user,
        server: &view.server,
        inactive_seconds: view.inactive,
        last_activity: view.last_activity.as_deref(),
        limit_seconds: view.limit,
        group_limit: view.group_limit,
        profile: view.profile.as_deref(),
        verdict: view.verdict,
        reason: view.reason,
        detail: view.detail.as_deref(),
        stop_at: view.stop_at.map(format_utc),
        stop_reason: view.stop_reason,
        warned_at: view.warned_at.map(format_utc),
        kept_until: view.kept_until.map(format_utc),
        idle_by: view.idle_by,
    }
}

#[derive(Serialize)]
struct KeepJson<'a> {
    user: &'a str,
    server: &'a str,
    until: String,
    set_at: String,
}

#[derive(Serialize)]
struct AdminJson<'a> {
    as_of: Option<String>,
    complete: bool,
    servers: Vec<ServerJson<'a>>,
    due_next_hour: Vec<ServerJson<'a>>,
    passes: Vec<PassSummary>,
    keep_alives: Vec<KeepJson<'a>>,
    /// The last culls, newest first (times in seconds since the epoch).
    culls: Vec<Cull>,
}

/// `GET {prefix}api/admin`: what the operators' page shows.
pub async fn api_admin(State(app): State<Arc<PageApp>>, ApiCaller(caller): ApiCaller) -> Response {
    if !caller.is_operator(&app) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "for the Hub's admins, with this page's login or a token that may list users"})),
        )
            .into_response();
    }
    let snapshot = app.board.snapshot();
    let now = crate::timestamp::unix_now();
    let kept = app
        .keep_alives()
        .map(|k| k.in_force(now))
        .unwrap_or_default();
    let body = AdminJson {
        as_of: snapshot.at.map(format_utc),
        complete: snapshot.complete,
        servers: snapshot.views.iter().map(server_json).collect(),
        due_next_hour: snapshot
            .due_within(3600.0)
            .into_iter()
            .map(server_json)
            .collect(),
        passes: app.board.history(),
        culls: app.board.recent_culls(),
        keep_alives: kept
            .iter()
            .map(|k| KeepJson {
                user: &k.user,
                server: &k.server,
                until: format_utc(k.until),
                set_at: format_utc(k.set_at),
            })
            .collect(),
    };
    Json(body).into_response()
}

/// `GET {prefix}api/me`: the caller's servers with their verdicts.
pub async fn api_me(State(app): State<Arc<PageApp>>, ApiCaller(caller): ApiCaller) -> Response {
    let snapshot = app.board.snapshot();
    let servers = snapshot.for_user(&caller.who.name);
    let now = crate::timestamp::unix_now();
    // A keep-alive holds from the moment it is granted, so it shows from then, not from the
    // next pass.
    let servers: Vec<ServerJson<'_>> = servers
        .iter()
        .map(|view| {
            let mut json = server_json(view);
            if let Some(until) = app
                .keep_alives()
                .and_then(|k| k.in_force_until(&view.user, &view.server, now))
            {
                json.kept_until = Some(format_utc(until));
            }
            json
        })
        .collect();
    let body = json!({
        "user": caller.who.name,
        "operator": caller.is_operator(&app),
        "as_of": snapshot.at.map(format_utc),
        "complete": snapshot.complete,
        "max_keep_alive": app.keep_alives().map_or(0.0, |k| k.max),
        "warn_before": app.settings.warn_before,
        "page": app.settings.html,
        "servers": servers,
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
    ApiCaller(caller): ApiCaller,
    method: axum::http::Method,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
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

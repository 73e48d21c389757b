//! The JSON shapes of the page's API, and the operators' view as JSON.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::json;

use crate::board::{PassSummary, ServerView};
use crate::reasons::{CullReason, Verdict, Why};
use crate::timestamp::format_utc;

use super::page::PageApp;
use super::session::caller;

/// A server and its verdict, with times in ISO 8601 UTC.
#[derive(Serialize)]
pub struct ServerJson<'a> {
    user: &'a str,
    server: &'a str,
    inactive_seconds: Option<f64>,
    last_activity: Option<&'a str>,
    limit_seconds: f64,
    group_limit: bool,
    verdict: Verdict,
    reason: Why,
    detail: Option<&'a str>,
    stop_at: Option<String>,
    stop_reason: Option<CullReason>,
    warned_at: Option<String>,
    kept_until: Option<String>,
}

pub fn server_json(view: &ServerView) -> ServerJson<'_> {
    ServerJson {
        user: &view.user,
        server: &view.server,
        inactive_seconds: view.inactive,
        last_activity: view.last_activity.as_deref(),
        limit_seconds: view.limit,
        group_limit: view.group_limit,
        verdict: view.verdict,
        reason: view.reason,
        detail: view.detail.as_deref(),
        stop_at: view.stop_at.map(format_utc),
        stop_reason: view.stop_reason,
        warned_at: view.warned_at.map(format_utc),
        kept_until: view.kept_until.map(format_utc),
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
}

/// `GET {prefix}api/admin`: what the operators' page shows.
pub async fn api_admin(State(app): State<Arc<PageApp>>, headers: HeaderMap) -> Response {
    let caller = match caller(&app, &headers).await {
        Ok(caller) => caller,
        Err(refusal) => return super::page::refusal_json(&app, &refusal),
    };
    if !app.is_operator(&caller) {
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

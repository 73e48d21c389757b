//! The JSON shapes of the page's API, and the operators' view as JSON.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::board::ServerView;
use crate::timestamp::format_utc;

use super::page::PageApp;
use super::session::caller;

/// A server and its verdict, with times in ISO 8601 UTC.
pub fn server_json(view: &ServerView) -> Value {
    json!({
        "user": view.user,
        "server": view.server,
        "inactive_seconds": view.inactive,
        "last_activity": view.last_activity,
        "limit_seconds": view.limit,
        "group_limit": view.group_limit,
        "verdict": view.verdict,
        "reason": view.reason,
        "detail": view.detail,
        "stop_at": view.stop_at.map(format_utc),
        "stop_reason": view.stop_reason,
        "warned_at": view.warned_at.map(format_utc),
        "kept_until": view.kept_until.map(format_utc),
    })
}

/// `GET {prefix}api/admin`: what the operators' page shows.
pub async fn api_admin(State(app): State<Arc<PageApp>>, headers: HeaderMap) -> Response {
    let who = match caller(&app, &headers).await {
        Ok(caller) => caller.who,
        Err(_) => {
            return (
                StatusCode::UNAUTHORIZED,
                Json(json!({"error": "log in, or send a Hub token"})),
            )
                .into_response();
        }
    };
    if !who.is_operator(&app.settings.admin_groups) {
        return (
            StatusCode::FORBIDDEN,
            Json(json!({"error": "for the Hub's admins"})),
        )
            .into_response();
    }
    let snapshot = app.board.snapshot();
    let now = crate::timestamp::unix_now();
    let kept: Vec<Value> = app
        .keep_alives
        .as_deref()
        .map(|k| k.in_force(now))
        .unwrap_or_default()
        .iter()
        .map(|k| json!({"user": k.user, "server": k.server, "until": format_utc(k.until), "set_at": format_utc(k.set_at)}))
        .collect();
    Json(json!({
        "as_of": snapshot.at.map(format_utc),
        "complete": snapshot.complete,
        "servers": snapshot.views.iter().map(server_json).collect::<Vec<_>>(),
        "due_next_hour": snapshot.due_within(3600.0).into_iter().map(server_json).collect::<Vec<_>>(),
        "passes": app.board.history(),
        "keep_alives": kept,
    }))
    .into_response()
}

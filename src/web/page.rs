//! The page: each user sees their own servers and may keep them alive; operators see
//! everything the culler is about to do. Every answer is made from the last pass's board and
//! the keep-alives in memory, so a view costs the Hub nothing beyond the cached check of who
//! is asking.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::Form;
use serde::Deserialize;

use crate::timestamp::unix_now as now;

use super::app::PageApp;
use super::caller::{allowed_to_change, Caller, Refused};
use super::html::{self, AdminPage, UserPage};
use super::keep::{change, Kept};
use super::respond::{no_store, problem};

/// `GET {prefix}`: the visitor's own servers.
pub async fn user_page(State(app): State<Arc<PageApp>>, caller: Caller, uri: Uri) -> Response {
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
        operator: caller.is_operator(&app),
        csrf: caller.csrf.as_deref().unwrap_or(""),
        snapshot: &snapshot,
        views: snapshot.for_user(&caller.who.name),
        max_keep_alive: app.keep_alives().map_or(0.0, |k| k.max),
        now: now(),
        notice,
    });
    (no_store(), Html(page)).into_response()
}

/// `GET {prefix}admin`: every server, for Hub admins and `--admin-groups`.
pub async fn admin_page(State(app): State<Arc<PageApp>>, caller: Caller) -> Response {
    if !caller.is_operator(&app) {
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
        csrf: caller.csrf.as_deref().unwrap_or_default(),
        snapshot: &snapshot,
        passes: &passes,
        keep_alives: &kept,
        culls: &app.board.recent_culls(),
        now,
    });
    (no_store(), Html(page)).into_response()
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
    caller: Result<Caller, Refused>,
    headers: HeaderMap,
    Form(form): Form<KeepForm>,
) -> Response {
    let caller = match caller {
        Ok(caller) => caller,
        // Back to the page, which logs the browser in; the form is sent again from there.
        Err(refused) if refused.refusal.wants_login() => {
            return Redirect::to(&app.prefix).into_response()
        }
        Err(refused) => return refused.into_response(),
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

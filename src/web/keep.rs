//! Setting and ending keep-alives for a caller's own servers, for the page's form and the API.

use axum::http::StatusCode;

use crate::hub::HubApi;
use crate::keepalive::{grant, KeepAlive};
use crate::models::Server;
use crate::reasons::Verdict;
use crate::timestamp::{format_utc, unix_now as now};

use super::app::PageApp;
use super::caller::Caller;
use super::LOG;

/// What a keep-alive request came to.
pub enum Kept {
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
pub async fn change(
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

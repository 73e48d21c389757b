//! Logging in with the Hub's OAuth, and who each request comes from.
//!
//! The browser's session is a private (encrypted and authenticated) cookie holding the user's
//! OAuth token and a CSRF token. Every request checks the token with the Hub (cached, see
//! [`crate::auth`]), so a token the Hub revokes or lets expire stops working. Scripts send
//! their own Hub token as `Authorization: token …` and need no cookie and no CSRF token.

use std::sync::Arc;

use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Form;
use axum_extra::extract::cookie::{Cookie, PrivateCookieJar, SameSite};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};

use crate::timestamp::unix_now;

use super::app::PageApp;
use super::caller::from_this_page;
use super::respond::problem;

const SESSION: &str = "cull-idle-session";
const OAUTH_STATE: &str = "cull-idle-oauth-state";

#[derive(Serialize, Deserialize)]
struct SessionValue {
    token: String,
    csrf: String,
    /// Which session this is, so that logging out ends it on the server too.
    id: String,
    /// Seconds since the epoch; a session lasts [`super::sessions::SESSION_LIFETIME`].
    issued: f64,
}

#[derive(Serialize, Deserialize)]
struct StateValue {
    state: String,
    next: String,
}

fn random(n: usize) -> String {
    Alphanumeric.sample_string(&mut rand::rng(), n)
}

fn jar(app: &PageApp, headers: &HeaderMap) -> PrivateCookieJar {
    PrivateCookieJar::from_headers(headers, app.key.clone())
}

/// Signed and encrypted by the jar; for this service's paths only, never readable by scripts,
/// and `Secure` behind https. Session cookies: they end with the browser session.
fn cookie(
    app: &PageApp,
    headers: &HeaderMap,
    name: &'static str,
    value: String,
) -> Cookie<'static> {
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').map(str::trim).find(|p| !p.is_empty()))
        .is_some_and(|v| v.eq_ignore_ascii_case("https"));
    Cookie::build((name, value))
        .path(app.prefix.clone())
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(app.settings.secure_cookies || https)
        .build()
}

/// The token a request carries, and the CSRF token of its session if it came in a cookie.
pub(super) fn credentials(app: &PageApp, headers: &HeaderMap) -> Option<(String, Option<String>)> {
    let header_token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("token ")
                .or_else(|| v.strip_prefix("Bearer "))
        })
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    if let Some(token) = header_token {
        return Some((token, None));
    }
    let value = session_of(app, headers)?;
    app.sessions
        .live(&value.id, value.issued, unix_now())
        .then_some((value.token, Some(value.csrf)))
}

fn session_of(app: &PageApp, headers: &HeaderMap) -> Option<SessionValue> {
    let session = jar(app, headers).get(SESSION)?;
    serde_json::from_str(session.value()).ok()
}

/// Send a browser to the Hub to log in, remembering where it was going.
pub fn login(app: &PageApp, headers: &HeaderMap, next: &str) -> Response {
    let state = random(32);
    let value = serde_json::to_string(&StateValue {
        state: state.clone(),
        next: next.to_owned(),
    })
    .unwrap_or_default();
    let jar = jar(app, headers).add(cookie(app, headers, OAUTH_STATE, value));
    let enc = crate::hub::encode;
    let url = format!(
        "{}?client_id={}&redirect_uri={}&response_type=code&state={}",
        app.settings.authorize_url,
        enc(&app.settings.client_id),
        enc(&app.settings.callback_url),
        enc(&state),
    );
    (jar, Redirect::to(&url)).into_response()
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

/// The Hub sends the browser back here with a code and the state it was given.
pub async fn oauth_callback(
    State(app): State<Arc<PageApp>>,
    headers: HeaderMap,
    Query(answer): Query<Callback>,
) -> Response {
    let jar = jar(&app, &headers);
    let remembered = jar
        .get(OAUTH_STATE)
        .and_then(|c| serde_json::from_str::<StateValue>(c.value()).ok());
    let jar = jar.remove(Cookie::build(OAUTH_STATE).path(app.prefix.clone()));
    if answer.error.is_some() {
        // Not echoed: anyone can make a link with any text in it.
        return refused(
            jar,
            StatusCode::FORBIDDEN,
            "The Hub did not log you in; open the page again.",
        );
    }
    let (Some(code), Some(state), Some(remembered)) = (answer.code, answer.state, remembered)
    else {
        return refused(
            jar,
            StatusCode::BAD_REQUEST,
            "This login link is incomplete or has expired; open the page again.",
        );
    };
    if state != remembered.state || !app.sessions.use_state(&state) {
        return refused(
            jar,
            StatusCode::BAD_REQUEST,
            "This login does not match the one this browser started; open the page again.",
        );
    }
    let Ok(_turn) = app.hub_turn().await else {
        return refused(
            jar,
            StatusCode::SERVICE_UNAVAILABLE,
            "The culler is busy; open the page again in a moment.",
        );
    };
    let token = match app
        .hub
        .exchange_code(&app.settings.client_id, &code, &app.settings.callback_url)
        .await
    {
        Ok(Some(token)) => token,
        Ok(None) => {
            return refused(
                jar,
                StatusCode::FORBIDDEN,
                "The Hub refused this login; open the page again.",
            );
        }
        Err(e) => {
            log::warn!(target: "cull_idle", "Cannot complete a page login with the Hub: {e}");
            return refused(
                jar,
                StatusCode::BAD_GATEWAY,
                "The Hub cannot be reached; try again in a moment.",
            );
        }
    };
    let value = serde_json::to_string(&SessionValue {
        token,
        csrf: random(32),
        id: random(24),
        issued: unix_now(),
    })
    .unwrap_or_default();
    let jar = jar.add(cookie(&app, &headers, SESSION, value));
    // Only back into this service: the state cookie is ours, but never an open redirect.
    let next = if remembered.next.starts_with(&app.prefix) && !remembered.next.starts_with("//") {
        remembered.next
    } else {
        app.prefix.clone()
    };
    (jar, Redirect::to(&next)).into_response()
}

fn refused(jar: PrivateCookieJar, status: StatusCode, text: &str) -> Response {
    (jar, problem(status, text)).into_response()
}

#[derive(Deserialize)]
pub struct LogoutForm {
    #[serde(default, rename = "_csrf")]
    csrf: Option<String>,
}

/// `POST {prefix}logout`, from the page's own form: end the browser's session, here and in the
/// browser (the Hub's own login stays), so that a copy of the cookie no longer works either. A
/// post from any other site is refused: it could log a person out without their asking.
pub async fn logout(
    State(app): State<Arc<PageApp>>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    if let Some(session) = session_of(&app, &headers) {
        if !from_this_page(&session.csrf, &headers, form.csrf.as_deref()) {
            return problem(
                StatusCode::FORBIDDEN,
                "This request did not come from the culler's own page; open the page and log out there.",
            );
        }
        app.sessions.end(&session.id, session.issued, unix_now());
    }
    let jar = jar(&app, &headers).remove(Cookie::build(SESSION).path(app.prefix.clone()));
    (
        jar,
        problem(StatusCode::OK, "You are logged out of the culler's page."),
    )
        .into_response()
}

#[cfg(test)]
pub mod tests {
    use super::*;
    use crate::web::caller::tests::headers;
    use axum::http::HeaderValue;

    use crate::board::Board;
    use crate::hub::{ApiToken, HubSettings};
    use crate::metrics::Metrics;
    use crate::web::app::PageSettings;

    pub fn app(secure: bool) -> PageApp {
        let hub = HubClient::new(&HubSettings::new(
            "http://127.0.0.1:9/hub/api",
            ApiToken::new("t"),
        ))
        .unwrap();
        PageApp::new(
            PageSettings {
                service_name: "culler".into(),
                client_id: "service-culler".into(),
                callback_url: "/services/culler/oauth_callback".into(),
                authorize_url: "/hub/api/oauth2/authorize".into(),
                access_scopes: vec![],
                max_keep_alive: 3600.0,
                warn_before: 0.0,
                html: true,
                admin_groups: vec![],
                auth_cache_seconds: 30.0,
                secure_cookies: secure,
            },
            "/services/culler/".into(),
            Arc::new(hub),
            Arc::new(Board::default()),
            None,
            Arc::new(Metrics::new()),
        )
    }

    use crate::hub::HubClient;

    #[test]
    fn cookies_are_http_only_for_the_prefix_and_secure_behind_https() {
        let plain = cookie(&app(false), &HeaderMap::new(), SESSION, "v".into());
        assert_eq!(plain.http_only(), Some(true));
        assert_eq!(plain.same_site(), Some(SameSite::Lax));
        assert_eq!(plain.path(), Some("/services/culler/"));
        assert_ne!(plain.secure(), Some(true));
        assert_eq!(
            cookie(&app(true), &HeaderMap::new(), SESSION, "v".into()).secure(),
            Some(true)
        );
        let forwarded = headers(&[("x-forwarded-proto", "https")]);
        assert_eq!(
            cookie(&app(false), &forwarded, SESSION, "v".into()).secure(),
            Some(true)
        );
    }

    #[test]
    fn the_session_cookie_is_encrypted_and_a_tampered_one_is_ignored() {
        let app = app(false);
        let value = serde_json::to_string(&SessionValue {
            token: "user-token".into(),
            csrf: "c".into(),
            id: "i".into(),
            issued: unix_now(),
        })
        .unwrap();
        let jar = PrivateCookieJar::new(app.key.clone()).add(cookie(
            &app,
            &HeaderMap::new(),
            SESSION,
            value,
        ));
        let sealed = jar.get(SESSION).map(|c| c.value().to_owned());
        let set_cookies: Vec<String> = jar
            .into_response()
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect();
        assert_eq!(set_cookies.len(), 1);
        assert!(!set_cookies[0].contains("user-token"), "{set_cookies:?}");
        assert!(sealed.is_some());
        let pair = set_cookies[0].split(';').next().unwrap().to_owned();
        let mut request = HeaderMap::new();
        request.insert(header::COOKIE, HeaderValue::from_str(&pair).unwrap());
        assert_eq!(
            credentials(&app, &request),
            Some(("user-token".into(), Some("c".into())))
        );
        // Logged out: the same cookie no longer works.
        app.sessions.end("i", unix_now(), unix_now());
        assert_eq!(credentials(&app, &request), None);
        let tampered = pair.replacen('=', "=A", 1);
        request.insert(header::COOKIE, HeaderValue::from_str(&tampered).unwrap());
        assert_eq!(credentials(&app, &request), None);
        // A token in the header is used as it is, without a CSRF token.
        let bearer = headers(&[("authorization", "token abc")]);
        assert_eq!(credentials(&app, &bearer), Some(("abc".into(), None)));
    }
}

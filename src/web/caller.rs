//! Who is asking: the caller as an axum extractor, checked with the Hub (cached, within the
//! page's budget), and the refusal as an answer, as a page ([`Caller`]) or as JSON
//! ([`ApiCaller`]). A handler that takes one serves only callers the Hub vouches for.

use std::sync::Arc;

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use crate::auth::{AuthError, Identity, Verdict};

use super::app::PageApp;
use super::respond::{busy, json_error, problem};
use super::session::{credentials, login};

/// Who a request comes from.
pub struct Caller {
    pub who: Arc<Identity>,
    /// For a browser session, the CSRF token its forms must carry; `None` for a request with
    /// its own `Authorization` header, which a browser never sends by itself.
    pub csrf: Option<String>,
}

/// Why a request is not served.
pub enum Refusal {
    /// No session or token: log in (HTML) or 401 (JSON).
    NoCredentials,
    /// The Hub does not know the token (expired, revoked, made up).
    BadToken,
    /// A valid token without access to this service.
    NoAccess,
    /// The Hub could not be asked.
    HubDown,
    /// The page's budget of Hub requests is spent (see [`crate::auth::Budget`]).
    Busy,
}

impl Refusal {
    /// The visitor must log in (again).
    pub fn wants_login(&self) -> bool {
        matches!(self, Refusal::NoCredentials | Refusal::BadToken)
    }
}

impl From<AuthError> for Refusal {
    fn from(error: AuthError) -> Self {
        match error {
            AuthError::Busy => Refusal::Busy,
            AuthError::Hub(_) => Refusal::HubDown,
        }
    }
}

impl Caller {
    /// Whether `caller` may see every user's servers: a Hub admin or a member of
    /// `--admin-groups`, asking with this page's own browser session or with a token that may
    /// list the Hub's users. A server's own token (which the recipe lets reach the page) is
    /// its owner's, admin or not, and must not read everyone's.
    pub fn is_operator(&self, app: &PageApp) -> bool {
        self.who.is_operator(&app.settings.admin_groups)
            && (self.csrf.is_some() || self.who.scopes.iter().any(|s| s == "list:users"))
    }
}

/// Who is asking, checked with the Hub.
async fn identify(app: &PageApp, headers: &HeaderMap) -> Result<Caller, Refusal> {
    let (token, csrf) = credentials(app, headers).ok_or(Refusal::NoCredentials)?;
    let asking = || app.metrics.count_page_auth_check();
    let settings = &app.settings;
    let may_use = |who: &Identity| who.may_access(&settings.service_name, &settings.access_scopes);
    // A server's own token is revoked when the server stops: forgotten once a pass that began
    // after its approval no longer lists the server.
    let seen_stopped = |user: &str, server: &str, since: f64| {
        let snapshot = app.board.snapshot();
        snapshot.complete
            && snapshot.at.is_some_and(|at| at > since)
            && !snapshot.for_user(user).iter().any(|v| v.server == server)
    };
    let identified = app
        .auth
        .identify(&app.hub, &token, may_use, asking, &seen_stopped);
    match identified.await {
        Ok(Verdict::Allowed(who)) => Ok(Caller { who, csrf }),
        Ok(Verdict::Unknown) => Err(Refusal::BadToken),
        Ok(Verdict::NoAccess) => Err(Refusal::NoAccess),
        Err(e) => {
            app.count_failure(&e);
            Err(e.into())
        }
    }
}

/// A refusal, with its answer made: a page, or a login for a browser.
pub struct Refused {
    pub refusal: Refusal,
    answer: Response,
}

impl IntoResponse for Refused {
    fn into_response(self) -> Response {
        self.answer
    }
}

impl FromRequestParts<Arc<PageApp>> for Caller {
    type Rejection = Refused;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<PageApp>,
    ) -> Result<Self, Self::Rejection> {
        identify(app, &parts.headers)
            .await
            .map_err(|refusal| Refused {
                answer: refusal_html(app, &parts.headers, parts.uri.path(), &refusal),
                refusal,
            })
    }
}

/// The caller of the JSON API, refused in JSON.
pub struct ApiCaller(pub Caller);

impl FromRequestParts<Arc<PageApp>> for ApiCaller {
    type Rejection = Refused;

    async fn from_request_parts(
        parts: &mut Parts,
        app: &Arc<PageApp>,
    ) -> Result<Self, Self::Rejection> {
        match identify(app, &parts.headers).await {
            Ok(caller) => Ok(ApiCaller(caller)),
            Err(refusal) => Err(Refused {
                answer: refusal_json(app, &refusal),
                refusal,
            }),
        }
    }
}

fn refusal_html(app: &PageApp, headers: &HeaderMap, path: &str, refusal: &Refusal) -> Response {
    match refusal {
        Refusal::NoCredentials | Refusal::BadToken => login(app, headers, path),
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

fn refusal_json(app: &PageApp, refusal: &Refusal) -> Response {
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

/// A browser's state-changing request is refused unless it comes from this origin and
/// carries the session's CSRF token; a request with its own token needs neither.
pub fn allowed_to_change(caller: &Caller, headers: &HeaderMap, sent_csrf: Option<&str>) -> bool {
    caller
        .csrf
        .as_deref()
        .is_none_or(|csrf| from_this_page(csrf, headers, sent_csrf))
}

/// A browser's request comes from this origin and carries its session's `csrf` token.
pub fn from_this_page(csrf: &str, headers: &HeaderMap, sent_csrf: Option<&str>) -> bool {
    let site = headers.get("sec-fetch-site").and_then(|v| v.to_str().ok());
    if site.is_some_and(|site| !matches!(site, "same-origin" | "none")) {
        return false;
    }
    let origin = headers.get(header::ORIGIN).and_then(|v| v.to_str().ok());
    if origin == Some("null") {
        // What browsers send for the page's own posts under `Referrer-Policy: no-referrer`,
        // and what any page can make them send: only the browser's own word that it is
        // same-origin counts then.
        return site == Some("same-origin") && sent_csrf.is_some_and(|sent| sent == csrf);
    }
    if let Some(origin) = origin {
        // The first proxy's view of the host; some proxies send an empty one.
        let forwarded = headers
            .get("x-forwarded-host")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').map(str::trim).find(|h| !h.is_empty()));
        let host = forwarded.or_else(|| headers.get(header::HOST).and_then(|v| v.to_str().ok()));
        let origin_host = origin.split_once("://").map(|(_, rest)| rest);
        if origin_host.is_none() || origin_host != host {
            return false;
        }
    }
    sent_csrf.is_some_and(|sent| sent == csrf)
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn caller(csrf: Option<&str>) -> Caller {
        Caller {
            who: Arc::new(Identity {
                name: "alice".into(),
                kind: Some("user".into()),
                admin: false,
                groups: vec![],
                scopes: vec![],
            }),
            csrf: csrf.map(str::to_owned),
        }
    }

    /// Request headers from pairs.
    pub(in crate::web) fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn a_browser_change_needs_the_csrf_token_and_this_origin() {
        let browser = caller(Some("secret"));
        let same = headers(&[("host", "hub.example"), ("origin", "https://hub.example")]);
        assert!(allowed_to_change(&browser, &same, Some("secret")));
        assert!(!allowed_to_change(&browser, &same, Some("guess")));
        assert!(!allowed_to_change(&browser, &same, None));
        let other = headers(&[("host", "hub.example"), ("origin", "https://evil.example")]);
        assert!(!allowed_to_change(&browser, &other, Some("secret")));
        let cross = headers(&[("sec-fetch-site", "cross-site")]);
        assert!(!allowed_to_change(&browser, &cross, Some("secret")));
        // A proxy's own view of the host wins, and an empty one is ignored.
        let proxied = headers(&[
            ("host", "127.0.0.1:8000"),
            ("x-forwarded-host", "hub.example"),
            ("origin", "https://hub.example"),
        ]);
        assert!(allowed_to_change(&browser, &proxied, Some("secret")));
        let empty = headers(&[
            ("host", "hub.example"),
            ("x-forwarded-host", ""),
            ("origin", "https://hub.example"),
        ]);
        assert!(allowed_to_change(&browser, &empty, Some("secret")));
        // The page's own post under no-referrer: `Origin: null`, said same-origin by the browser.
        let null_same = headers(&[("origin", "null"), ("sec-fetch-site", "same-origin")]);
        assert!(allowed_to_change(&browser, &null_same, Some("secret")));
        assert!(!allowed_to_change(&browser, &null_same, Some("guess")));
        let null_alone = headers(&[("host", "hub.example"), ("origin", "null")]);
        assert!(!allowed_to_change(&browser, &null_alone, Some("secret")));
        // A script with its own token: no cookie was involved, so nothing to forge.
        assert!(allowed_to_change(&caller(None), &other, None));
    }
}

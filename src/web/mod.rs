//! The culler's web server (axum): `/metrics` and `/health` under the service prefix, without
//! login; with the page on, the page, its API and its OAuth callback there too; and 200 at the
//! root for the Hub's start-up check. Handlers only read memory, so a request never waits for
//! a pass.

mod api;
pub mod app;
mod caller;
mod html;
mod keep;
mod page;
mod respond;
mod session;
mod sessions;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use tokio::sync::oneshot;

use crate::metrics::Metrics;
use app::PageApp;

const LOG: &str = "cull_idle";

/// Prometheus's own text format; OpenMetrics clients ask for theirs.
const PROMETHEUS_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// `prefix` as the Hub gives it (`/services/name/`), with exactly one `/` at each end.
pub fn normalise_prefix(prefix: &str) -> String {
    let trimmed = prefix.trim_matches('/');
    if trimmed.is_empty() {
        "/".to_owned()
    } else {
        format!("/{trimmed}/")
    }
}

/// The routes, under `prefix` (see [`normalise_prefix`]); with `page`, the page's too.
pub fn router(metrics: Arc<Metrics>, prefix: &str, page: Option<Arc<PageApp>>) -> Router {
    let prefix = normalise_prefix(prefix);
    let mut paths = vec!["/".to_owned()];
    if prefix != "/" {
        paths.push(prefix.clone());
        paths.push(prefix.trim_end_matches('/').to_owned());
    }
    let mut app = Router::new()
        .route(&format!("{prefix}metrics"), get(serve_metrics))
        .route(&format!("{prefix}health"), get(serve_health));
    if page.as_ref().is_some_and(|page| page.settings.html) {
        paths.retain(|p| *p != prefix);
    }
    for path in paths {
        app = app.route(&path, get(serve_root));
    }
    let app = app
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found\n") })
        .with_state(metrics);
    let app = match page {
        Some(page) => app.merge(page_routes(&prefix, page)),
        None => app,
    };
    app.layer(axum::middleware::map_response(protect))
}

/// On every answer: no framing (a sibling server under the same site could otherwise frame
/// the page and click "Stop keeping it alive" for its victim), nothing but this service's own
/// files, no sniffing, no referrer, and nothing stored by caches but the two static files.
async fn protect(mut response: Response) -> Response {
    let headers = response.headers_mut();
    for (name, value) in [
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'",
        ),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    response
}

/// One of the page's two static files, cached by browsers for an hour.
fn asset(kind: &'static str, body: &'static str) -> Response {
    (
        [
            (header::CONTENT_TYPE, kind),
            (header::CACHE_CONTROL, "max-age=3600"),
        ],
        body,
    )
        .into_response()
}

/// The Hub registers the OAuth callback as a URL or as a path; the route is its path.
fn callback_path(url: &str) -> String {
    let path = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest.find('/').map_or("/", |i| &rest[i..]));
    path.split('?').next().unwrap_or("/").to_owned()
}

fn page_routes(prefix: &str, page: Arc<PageApp>) -> Router {
    if !page.settings.html {
        return Router::new()
            .route(&format!("{prefix}api/me"), get(api::api_me))
            .with_state(page);
    }
    let callback = callback_path(&page.settings.callback_url);
    Router::new()
        .route(prefix, get(page::user_page))
        .route(&format!("{prefix}admin"), get(page::admin_page))
        .route(&format!("{prefix}keep-alive"), post(page::keep_form))
        .route(&format!("{prefix}api/me"), get(api::api_me))
        .route(
            &format!("{prefix}api/keep-alive"),
            post(api::api_keep).delete(api::api_keep),
        )
        .route(&format!("{prefix}api/admin"), get(api::api_admin))
        .route(&format!("{prefix}logout"), post(session::logout))
        .route(&callback, get(session::oauth_callback))
        .route(
            &format!("{prefix}static/page.css"),
            get(|| async { asset("text/css; charset=utf-8", include_str!("static/page.css")) }),
        )
        .route(
            &format!("{prefix}static/page.js"),
            get(|| async {
                asset(
                    "text/javascript; charset=utf-8",
                    include_str!("static/page.js"),
                )
            }),
        )
        .with_state(page)
}

async fn serve_root() -> &'static str {
    "cull-idle: see metrics and health\n"
}

async fn serve_metrics(State(metrics): State<Arc<Metrics>>, headers: HeaderMap) -> Response {
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    let kind = if openmetrics {
        OPENMETRICS_TYPE
    } else {
        PROMETHEUS_TYPE
    };
    ([(header::CONTENT_TYPE, kind)], metrics.encode()).into_response()
}

async fn serve_health(State(metrics): State<Arc<Metrics>>) -> Response {
    let health = metrics.health();
    let code = if health.status == "failing" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    (code, axum::Json(health)).into_response()
}

/// A running server; dropping it or calling [`WebServer::shut_down`] stops it gracefully.
#[derive(Debug)]
pub struct WebServer {
    pub address: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
}

impl WebServer {
    /// Bind at once (so that a taken port is an error now, not later) and serve on `runtime`.
    pub fn start(
        runtime: &tokio::runtime::Runtime,
        host: &str,
        port: u16,
        app: Router,
    ) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind((host, port))?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let listener = {
            let _entered = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let (stop, stopped) = oneshot::channel::<()>();
        runtime.spawn(async move {
            let shutdown = async {
                let _ = stopped.await;
            };
            if let Err(e) = axum::serve(listener, app)
                .with_graceful_shutdown(shutdown)
                .await
            {
                log::error!(target: "cull_idle", "The web server stopped: {e}");
            }
        });
        Ok(WebServer {
            address,
            stop: Some(stop),
        })
    }

    pub fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for WebServer {
    fn drop(&mut self) {
        self.shut_down();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn get_text(url: &str) -> (u16, String, String) {
        crate::tls::install_crypto_provider();
        let r = reqwest::get(url).await.unwrap();
        let code = r.status().as_u16();
        let kind = r
            .headers()
            .get("content-type")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        (code, kind, r.text().await.unwrap())
    }

    #[test]
    fn prefixes_are_normalised() {
        assert_eq!(normalise_prefix(""), "/");
        assert_eq!(normalise_prefix("/"), "/");
        assert_eq!(normalise_prefix("/services/culler"), "/services/culler/");
        assert_eq!(normalise_prefix("services/culler/"), "/services/culler/");
    }

    #[test]
    fn the_callback_route_is_the_path_of_what_the_hub_registered() {
        for (url, path) in [
            ("/services/c/oauth_callback", "/services/c/oauth_callback"),
            (
                "https://hub.example/services/c/oauth_callback",
                "/services/c/oauth_callback",
            ),
            ("http://h:8000/x/oauth_callback?a=b", "/x/oauth_callback"),
            ("http://h:8000", "/"),
        ] {
            assert_eq!(callback_path(url), path, "{url}");
        }
    }

    #[test]
    fn without_the_page_only_api_me_is_served_for_servers_notices() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let mut page = session::tests::app(false);
        page.settings.html = false;
        let app = router(
            Arc::new(Metrics::new()),
            "/services/culler/",
            Some(Arc::new(page)),
        );
        let server = WebServer::start(&runtime, "127.0.0.1", 0, app).unwrap();
        let base = format!("http://{}/services/culler/", server.address);
        runtime.block_on(async {
            // Asked without a token: refused, not missing.
            assert_eq!(get_text(&format!("{base}api/me")).await.0, 401);
            for path in ["admin", "api/admin", "oauth_callback", "static/page.js"] {
                assert_eq!(get_text(&format!("{base}{path}")).await.0, 404, "{path}");
            }
            let (code, _, text) = get_text(&base).await;
            assert_eq!(
                (code, text.as_str()),
                (200, "cull-idle: see metrics and health\n")
            );
        });
    }

    #[test]
    fn the_root_prefix_is_one_route() {
        let app = router(Arc::new(Metrics::new()), "/", None);
        drop(app);
    }

    #[test]
    fn it_serves_metrics_and_health_under_the_prefix_and_stops() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let metrics = Arc::new(Metrics::new());
        let app = router(Arc::clone(&metrics), "/services/culler/", None);
        let mut server = WebServer::start(&runtime, "127.0.0.1", 0, app).unwrap();
        let base = format!("http://{}", server.address);
        runtime.block_on(async {
            let (code, kind, text) = get_text(&format!("{base}/services/culler/metrics")).await;
            assert_eq!(code, 200);
            assert!(kind.starts_with("text/plain; version=0.0.4"), "{kind}");
            for path in ["/services/culler/health", "/nowhere"] {
                let r = reqwest::get(format!("{base}{path}")).await.unwrap();
                let h = r.headers();
                assert_eq!(h["x-frame-options"], "DENY", "{path}");
                assert_eq!(h["x-content-type-options"], "nosniff");
                assert_eq!(h["referrer-policy"], "no-referrer");
                assert_eq!(h["cache-control"], "no-store");
                let csp = h["content-security-policy"].to_str().unwrap();
                assert!(
                    csp.contains("frame-ancestors 'none'") && csp.contains("default-src 'self'")
                );
            }
            assert!(text.contains("cull_idle_passes_total 0"), "{text}");
            let (code, _, body) = get_text(&format!("{base}/services/culler/health")).await;
            assert_eq!(code, 200);
            assert!(body.contains("\"status\":\"starting\""), "{body}");
            for path in ["/", "/services/culler", "/services/culler/"] {
                assert_eq!(get_text(&format!("{base}{path}")).await.0, 200, "{path}");
            }
            assert_eq!(get_text(&format!("{base}/metrics")).await.0, 404);
            let post = reqwest::Client::new()
                .post(format!("{base}/services/culler/health"))
                .send()
                .await
                .unwrap();
            assert_eq!(post.status().as_u16(), 405);
        });
        metrics.observe(None);
        runtime.block_on(async {
            let (code, _, body) = get_text(&format!("{base}/services/culler/health")).await;
            assert_eq!(code, 503, "{body}");
        });
        server.shut_down();
        runtime.block_on(async {
            // Graceful shutdown: the listener closes once the server task has noticed.
            for _ in 0..500 {
                if reqwest::get(format!("{base}/")).await.is_err() {
                    return;
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
            panic!("the server still answers after shutting down");
        });
    }
}

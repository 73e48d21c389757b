//! Asking a single-user server what it is running, for the [`crate::signals`].
//!
//! The probe reads jupyter_server's `api/kernels` and `api/terminals` (or the sensor's account)
//! with a token of the server's own user that opens only that server
//! ([`crate::probe_tokens`]): the server's user may read all it receives. It asks with
//! `no_track_activity=1`, so jupyter_server does not count the probe as activity; the proxy, if
//! the probe goes through one, does (see `work::carried_idle_since`).
//!
//! A server may answer slowly, trickle its body, hold the connection open, or ask to be asked
//! again later: a probe has one deadline for all of it ([`ProbeSettings::timeout`]: connecting,
//! every request, retries and `Retry-After` waits), and probes have a limit of their own, apart
//! from the Hub's, so that servers that use their whole deadline delay a pass by one deadline,
//! not one each.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use futures::future::BoxFuture;
use reqwest::{Method, StatusCode};
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::http::{
    anonymous_builder, ApiToken, Call, ClientShape, ErrorKind, HttpClient, HttpError, Peer, Retry,
};
use crate::setup::SetupError;
use crate::timestamp::parse_timestamp;
use crate::work::{judge_kernel, KernelWork, ServerWork};

/// The time between the two readings of a server's CPU use.
const CPU_SAMPLE: Duration = Duration::from_secs(1);
/// Kernel and terminal lists are small; anything bigger is not jupyter_server talking.
const MAX_BODY_BYTES: usize = 8 << 20;
/// Servers asked at once. A server that uses its whole deadline holds one place meanwhile, so
/// up to this many of them delay a pass by one deadline; waiting costs a socket, not the Hub.
pub const PROBES_IN_FLIGHT: usize = 128;

/// What a probe can read from a server, for the signals that need it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reading {
    /// `api/kernels`, always read.
    Kernels,
    /// `api/terminals`.
    Terminals,
    /// jupyter-resource-usage's `api/metrics/v1`, twice, for CPU use.
    ResourceUsage,
}

/// What to ask a server, besides its kernels: what the enabled signals read
/// (`WorkRules::questions`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Questions {
    /// Its terminals.
    pub terminals: bool,
    /// Its CPU use, from jupyter-resource-usage.
    pub cpu: bool,
    /// The sensor (`cull-idle-sensor`) first, with kernels and terminals where it is absent
    /// (`--idle-by=work`).
    pub sensor: bool,
    /// Seconds since the epoch: terminals used since, and kernels starting since, are working.
    pub recent_after: f64,
}

/// Asks a single-user server what it runs. [`ProbeClient`] is the real one; tests answer from
/// memory.
pub trait WorkProbe: Send + Sync {
    /// What the server at `base` (its URL, ending in `/`) runs, asked with `token`, which
    /// opens that server alone.
    fn probe<'a>(
        &'a self,
        base: &'a str,
        token: &'a ApiToken,
        questions: Questions,
    ) -> BoxFuture<'a, Result<ServerWork, HttpError>>;
}

#[derive(Debug, Clone)]
pub struct ProbeSettings {
    /// For the whole probe of one server, retries included; short, since a candidate waits
    /// for it.
    pub timeout: Duration,
    /// Extra CA certificates to trust besides the system's (the Hub's internal CA).
    pub ca_file: Option<PathBuf>,
    pub retry: Retry,
}

/// An HTTP client for single-user servers, with a concurrency limit of its own.
#[derive(Debug)]
pub struct ProbeClient {
    http: HttpClient,
    deadline: Duration,
    /// Servers being asked; a probe's deadline starts once it has its place.
    slots: Semaphore,
    /// Servers already logged as having no jupyter-resource-usage, so each is logged once.
    without_metrics: std::sync::Mutex<std::collections::HashSet<String>>,
}

/// At most this many servers are remembered as logged; past that, no more such lines.
const MAX_LOGGED_WITHOUT_METRICS: usize = 10_000;

#[derive(Deserialize)]
struct KernelWire {
    #[serde(default)]
    execution_state: Option<String>,
    #[serde(default)]
    last_activity: Option<String>,
    #[serde(default)]
    connections: Option<u32>,
}

#[derive(Deserialize)]
struct TerminalWire {
    #[serde(default)]
    last_activity: Option<String>,
}

/// The sensor's answer (`cull_idle_sensor`, `GET api/cull-idle/work`).
#[derive(Deserialize)]
struct SensorWire {
    #[serde(default)]
    last_activity: Option<String>,
    #[serde(default)]
    kernels: u32,
    #[serde(default)]
    busy_kernels: u32,
    #[serde(default)]
    connections: u32,
    #[serde(default)]
    terminals: u32,
}

/// The sensor's endpoint, beside jupyter_server's own API.
pub const SENSOR_ENDPOINT: &str = "api/cull-idle/work";

fn stamp(text: Option<&str>) -> Option<f64> {
    text.and_then(|text| parse_timestamp(text).ok())
}

fn latest(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

impl ProbeClient {
    pub fn new(settings: &ProbeSettings) -> Result<Self, SetupError> {
        let mut builder = anonymous_builder(settings.timeout)
            .connect_timeout(settings.timeout)
            // A redirect means the token was not accepted (a login page); never follow it.
            .redirect(reqwest::redirect::Policy::none());
        if let Some(ca_file) = &settings.ca_file {
            for cert in crate::tls::read_ca_certs(ca_file)? {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = HttpClient::new(
            builder,
            ClientShape {
                peer: Peer::Server,
                // Each probe holds a slot and sends one request at a time: never a wait here.
                limiter: Arc::new(Semaphore::new(PROBES_IN_FLIGHT)),
                timeout: settings.timeout,
                retry: settings.retry,
                max_body: MAX_BODY_BYTES,
                log_target: "cull_idle",
                retry_level: log::Level::Debug,
            },
        )?;
        Ok(ProbeClient {
            http,
            deadline: settings.timeout,
            slots: Semaphore::new(PROBES_IN_FLIGHT),
            without_metrics: std::sync::Mutex::default(),
        })
    }

    /// Everything asked of one server, within one deadline.
    async fn ask(
        &self,
        base: &str,
        token: &ApiToken,
        questions: Questions,
    ) -> Result<ServerWork, HttpError> {
        let server = Server { base, token };
        let _slot = self.slots.acquire().await.expect("never closed");
        let asking = async {
            let mut work = match self.ask_sensor(server, questions).await? {
                Some(work) => work,
                None => self.ask_server(server, questions).await?,
            };
            if questions.cpu {
                work.cpu_percent = self.cpu_percent(server).await?;
            }
            Ok(work)
        };
        // The pause between the two CPU readings is the culler's, not the server's.
        let pause = if questions.cpu {
            CPU_SAMPLE
        } else {
            Duration::ZERO
        };
        tokio::time::timeout(self.deadline + pause, asking)
            .await
            .unwrap_or_else(|_| {
                self.http.count(ErrorKind::Timeout.label().to_owned());
                Err(HttpError::new(
                    ErrorKind::Timeout,
                    Peer::Server,
                    &Method::GET,
                    base,
                    format!("{:.0}s", self.deadline.as_secs_f64()),
                ))
            })
    }

    /// The sensor's account, or `None` when the server has no sensor (or it was not asked).
    async fn ask_sensor(
        &self,
        server: Server<'_>,
        questions: Questions,
    ) -> Result<Option<ServerWork>, HttpError> {
        if !questions.sensor {
            return Ok(None);
        }
        let wire: SensorWire = match self.get_json(server, SENSOR_ENDPOINT).await {
            Ok(wire) => wire,
            // Servers without the sensor: judged by their kernels and terminals.
            Err(e) if e.http_status() == Some(404) => return Ok(None),
            Err(e) => return Err(e),
        };
        let last_work = stamp(wire.last_activity.as_deref());
        Ok(Some(ServerWork {
            kernels: wire.kernels,
            busy_kernels: wire.busy_kernels,
            connections: wire.connections,
            terminals: Some(wire.terminals),
            last_work,
            recent_work: last_work.is_some_and(|at| at >= questions.recent_after),
            sensor: true,
            ..ServerWork::default()
        }))
    }

    /// What jupyter_server's own API says: its kernels, and its terminals if asked.
    async fn ask_server(
        &self,
        server: Server<'_>,
        questions: Questions,
    ) -> Result<ServerWork, HttpError> {
        let (terminals, recent_after) = (questions.terminals, questions.recent_after);
        let kernels: Vec<KernelWire> = self.get_json(server, "api/kernels").await?;
        let mut work = ServerWork {
            kernels: count(kernels.len()),
            ..ServerWork::default()
        };
        for kernel in &kernels {
            let since = stamp(kernel.last_activity.as_deref());
            work.last_work = latest(work.last_work, since);
            match judge_kernel(kernel.execution_state.as_deref(), since, recent_after) {
                KernelWork::Busy => work.busy_kernels += 1,
                KernelWork::Stuck => work.stuck_kernels += 1,
                KernelWork::Idle => {}
            }
            work.connections += kernel.connections.unwrap_or(0);
        }
        if terminals {
            match self
                .get_json::<Vec<TerminalWire>>(server, "api/terminals")
                .await
            {
                Ok(list) => {
                    work.terminals = Some(count(list.len()));
                    let stamps: Vec<f64> = list
                        .iter()
                        .filter_map(|t| stamp(t.last_activity.as_deref()))
                        .collect();
                    work.recent_terminals =
                        count(stamps.iter().filter(|&&at| at >= recent_after).count());
                    work.last_work = stamps
                        .into_iter()
                        .fold(work.last_work, |a, b| latest(a, Some(b)));
                }
                // Servers without the terminals extension answer 404.
                Err(e) if e.http_status() == Some(404) => {}
                Err(e) => {
                    log::warn!(target: "cull_idle", "Cannot read terminals ({e}); judging by kernels alone");
                }
            }
        }
        work.recent_work = work.last_work.is_some_and(|at| at >= recent_after);
        Ok(work)
    }

    /// The server's CPU use in percent (its processes and their children), or `None` if it
    /// does not say (no jupyter-resource-usage, or `track_cpu_percent` off).
    async fn cpu_percent(&self, server: Server<'_>) -> Result<Option<f64>, HttpError> {
        #[derive(Deserialize)]
        struct Metrics {
            #[serde(default)]
            cpu_percent: Option<f64>,
        }
        // jupyter-resource-usage compares with the last time it was asked, and a process it has
        // not seen before reads 0: only a second reading, a moment later, is the real one.
        for attempt in 0..2 {
            match self.get_json::<Metrics>(server, "api/metrics/v1").await {
                Ok(metrics) if attempt == 1 => return Ok(metrics.cpu_percent),
                Ok(metrics) if metrics.cpu_percent.is_none() => return Ok(None),
                Ok(_) => tokio::time::sleep(CPU_SAMPLE).await,
                Err(e) if e.http_status() == Some(404) => {
                    let mut logged = self
                        .without_metrics
                        .lock()
                        .unwrap_or_else(std::sync::PoisonError::into_inner);
                    let base = server.base;
                    if logged.len() < MAX_LOGGED_WITHOUT_METRICS && logged.insert(base.to_owned()) {
                        log::info!(
                            target: "cull_idle",
                            "The server at {base} has no jupyter-resource-usage (/api/metrics/v1 answers 404); judging it without its CPU use"
                        );
                    }
                    return Ok(None);
                }
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    async fn get_json<T: serde::de::DeserializeOwned>(
        &self,
        server: Server<'_>,
        endpoint: &str,
    ) -> Result<T, HttpError> {
        let url = format!("{}{endpoint}?no_track_activity=1", server.base);
        let call = Call {
            method: Method::GET,
            url: url.clone(),
            shown: &url,
            accept: None,
            json_body: None,
            form_body: None,
            as_user: Some(server.token.secret()),
        };
        let reply = self.http.send(&call).await?;
        if reply.status != StatusCode::OK {
            return Err(HttpError::status(
                Peer::Server,
                &call.method,
                &url,
                reply.status.as_u16(),
                None,
            ));
        }
        self.http.decode(&call, &reply.body)
    }
}

/// The server being asked: where, and with which token.
#[derive(Clone, Copy)]
struct Server<'a> {
    base: &'a str,
    token: &'a ApiToken,
}

impl WorkProbe for ProbeClient {
    fn probe<'a>(
        &'a self,
        base: &'a str,
        token: &'a ApiToken,
        questions: Questions,
    ) -> BoxFuture<'a, Result<ServerWork, HttpError>> {
        Box::pin(self.ask(base, token, questions))
    }
}

fn count(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

/// Where to reach a server: `server_url` (the proxy's address, as `--server-url`) joined with
/// the server's path, else the `full_url` the Hub gives (with `public_url` or subdomains), else
/// its `url` when that is already absolute. Always ends in `/`.
pub fn server_base(
    server_url: Option<&str>,
    url: Option<&str>,
    full_url: Option<&str>,
) -> Option<String> {
    let absolute = |u: &str| u.starts_with("http://") || u.starts_with("https://");
    let non_empty = |u: &&str| !u.is_empty();
    let base = match (server_url.filter(non_empty), url.filter(non_empty)) {
        (Some(origin), Some(url)) => {
            let path = if absolute(url) {
                url.find("://")
                    .and_then(|scheme| url[scheme + 3..].find('/').map(|p| &url[scheme + 3 + p..]))
                    .unwrap_or("/")
            } else {
                url
            };
            format!(
                "{}/{}",
                origin.trim_end_matches('/'),
                path.trim_start_matches('/')
            )
        }
        (Some(_), None) => return None,
        (None, url) => full_url
            .filter(non_empty)
            .or(url.filter(|u| absolute(u)))?
            .to_owned(),
    };
    Some(if base.ends_with('/') {
        base
    } else {
        base + "/"
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_explicit_server_url_replaces_the_origin() {
        assert_eq!(
            server_base(Some("http://proxy-public/"), Some("/user/a/"), None).as_deref(),
            Some("http://proxy-public/user/a/")
        );
        assert_eq!(
            server_base(
                Some("http://10.0.0.1:8000"),
                Some("/prefix/user/a%20b/gpu/"),
                Some("https://hub.example.org/prefix/user/a%20b/gpu/")
            )
            .as_deref(),
            Some("http://10.0.0.1:8000/prefix/user/a%20b/gpu/")
        );
        // Subdomain URLs are absolute: the path is kept, the origin replaced.
        assert_eq!(
            server_base(
                Some("http://proxy"),
                Some("https://a.hub.org/user/a/"),
                None
            )
            .as_deref(),
            Some("http://proxy/user/a/")
        );
    }

    #[test]
    fn the_hub_s_full_url_is_used_otherwise() {
        assert_eq!(
            server_base(None, Some("/user/a/"), Some("https://hub.org/user/a/")).as_deref(),
            Some("https://hub.org/user/a/")
        );
        assert_eq!(
            server_base(None, Some("https://a.hub.org/user/a"), None).as_deref(),
            Some("https://a.hub.org/user/a/")
        );
    }

    #[test]
    fn without_a_known_address_there_is_no_base() {
        assert_eq!(server_base(None, Some("/user/a/"), None), None);
        assert_eq!(server_base(None, None, None), None);
        assert_eq!(server_base(Some("http://proxy"), None, None), None);
        assert_eq!(server_base(Some(""), Some("/user/a/"), Some("")), None);
    }
}

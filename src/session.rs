//! The culler's session with one Hub: what lives from one pass to the next.
//!
//! It owns the Hub's client, the servers' (made on first use), the probe tokens, the memory of
//! servers kept for their work, the work ledger, the state file, the webhook, what a page
//! served for it shares with the passes, and the metrics they count themselves in. The binding
//! only converts Python's values into [`SessionConfig`] and [`PassSettings`] and hands the
//! operator's hooks to [`Session::pass`].

#[cfg(test)]
mod tests;

use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crate::board::Board;
use crate::errors::CoreError;
use crate::http::{ApiToken, Retry};
use crate::hub::{HubApi, HubClient, HubSettings, DEFAULT_CONCURRENCY};
use crate::keepalive::KeepAlives;
use crate::ledger::WorkLedger;
use crate::metrics::Metrics;
use crate::pass::{run_pass, BoardFeed, Hooks, PassReport, PassSettings, Probes, Warnings};
use crate::probe::{ProbeClient, ProbeSettings, WorkProbe};
use crate::probe_tokens::ProbeTokens;
use crate::state::StateDb;
use crate::warnings::delivery::{WarnHook, WebhookClient};
use crate::work::BusyMemory;

/// How to reach a Hub and where to keep state, as the command line gives it.
#[derive(Debug, Clone)]
pub struct SessionConfig {
    /// A `concurrency` of 0 takes the default: the reference meant "no semaphore", and its
    /// client still capped requests at 10.
    pub hub: HubSettings,
    /// For the whole probe of one server.
    pub probe_timeout: Duration,
    pub state_file: Option<String>,
    /// Read the state file, never write it: a dry run, which a real culler may start beside.
    pub state_read_only: bool,
    pub warn_webhook: Option<String>,
}

impl SessionConfig {
    fn hub_settings(&self) -> HubSettings {
        let concurrency = match self.hub.concurrency {
            0 => DEFAULT_CONCURRENCY,
            n => n,
        };
        HubSettings {
            concurrency,
            ..self.hub.clone()
        }
    }

    fn probe_settings(&self) -> ProbeSettings {
        ProbeSettings {
            timeout: self.probe_timeout,
            ca_file: self.hub.tls.ca_file.clone(),
            retry: self.hub.retry,
        }
    }
}

/// What a page served for a session shares with its passes.
#[derive(Clone)]
pub struct PageShare {
    pub board: Arc<Board>,
    pub keep_alives: Option<Arc<KeepAlives>>,
}

/// The servers' client: made on first use, since a TLS client costs start-up time that most
/// deployments (no `--keep-busy-kernels`, no `--idle-by=work`) never need.
enum Prober {
    Lazy(ProbeSettings, OnceLock<Arc<dyn WorkProbe>>),
    Given(Arc<dyn WorkProbe>),
}

/// One culler's session with one Hub, over any [`HubApi`]: [`HubClient`] in production, a Hub
/// in memory in tests. Reuse it across passes.
pub struct Session<H: HubApi = HubClient> {
    hub: Arc<H>,
    /// What the Hub's client was made from, for the page's own client.
    hub_settings: HubSettings,
    prober: Prober,
    /// The tokens probes carry, one per server asked (`crate::probe_tokens`).
    probe_tokens: ProbeTokens,
    /// Servers kept for their work, across passes.
    memory: Mutex<BusyMemory>,
    /// With `--idle-by=work`, the work seen of each running server (`crate::ledger`).
    ledger: Mutex<WorkLedger>,
    /// The warnings and keep-alives given (the state file, else in memory on first use).
    state: OnceLock<Arc<StateDb>>,
    webhook: Option<WebhookClient>,
    /// Set once a page is served.
    page: OnceLock<PageShare>,
    /// Set once metrics are served: each pass counts itself there when it ends.
    metrics: OnceLock<Arc<Metrics>>,
}

impl Session<HubClient> {
    /// Make the clients and open the state file. Building a TLS client may log: from Python,
    /// call this without holding the GIL.
    pub fn connect(config: &SessionConfig) -> Result<Self, CoreError> {
        let hub_settings = config.hub_settings();
        let hub = HubClient::new(&hub_settings)?;
        let webhook = match &config.warn_webhook {
            Some(url) => Some(WebhookClient::new(
                url,
                hub_settings.request_timeout,
                hub_settings.retry,
                hub.limiter(),
            )?),
            None => None,
        };
        let state = OnceLock::new();
        if let Some(path) = &config.state_file {
            let db = if config.state_read_only {
                StateDb::open_snapshot(path)?
            } else {
                StateDb::open(path)?
            };
            let _ = state.set(Arc::new(db));
        }
        Ok(Session {
            state,
            webhook,
            ..Session::over(
                Arc::new(hub),
                hub_settings,
                Prober::Lazy(config.probe_settings(), OnceLock::new()),
            )
        })
    }

    /// A client of the page's own for the Hub: a few requests in flight, no retries, and
    /// failures counted apart from the passes', so that visitors (or a flood of made-up
    /// tokens) never queue in front of a pass nor show in its errors.
    pub fn page_client(&self) -> Result<HubClient, CoreError> {
        let settings = HubSettings {
            concurrency: crate::auth::PAGE_HUB_BUDGET,
            retry: Retry {
                retries: 0,
                backoff: Duration::ZERO,
            },
            ..self.hub_settings.clone()
        };
        Ok(HubClient::new(&settings)?)
    }
}

impl<H: HubApi> Session<H> {
    fn over(hub: Arc<H>, hub_settings: HubSettings, prober: Prober) -> Self {
        Session {
            hub,
            hub_settings,
            prober,
            probe_tokens: ProbeTokens::default(),
            memory: Mutex::default(),
            ledger: Mutex::default(),
            state: OnceLock::new(),
            webhook: None,
            page: OnceLock::new(),
            metrics: OnceLock::new(),
        }
    }

    /// A session over `hub` whose servers are asked through `prober`, with its state in
    /// memory (or in `state`).
    pub fn with_clients(
        hub: Arc<H>,
        prober: Arc<dyn WorkProbe>,
        state: Option<Arc<StateDb>>,
    ) -> Self {
        let session = Session::over(
            hub,
            HubSettings::new("http://127.0.0.1/hub/api", ApiToken::new(String::new())),
            Prober::Given(prober),
        );
        if let Some(state) = state {
            let _ = session.state.set(state);
        }
        session
    }

    pub fn hub(&self) -> &H {
        &self.hub
    }

    /// The Hub's URL, as given.
    pub fn url(&self) -> &str {
        &self.hub_settings.url
    }

    /// Count this session's passes in `metrics` from now on.
    pub fn count_passes_in(&self, metrics: &Arc<Metrics>) {
        let _ = self.metrics.set(Arc::clone(metrics));
    }

    /// What a page served for this session shares with its passes; keep-alives are kept in
    /// the state file when `max_keep_alive` is set.
    pub fn page_share(&self, max_keep_alive: f64, now: f64) -> Result<PageShare, CoreError> {
        if let Some(page) = self.page.get() {
            return Ok(page.clone());
        }
        let keep_alives = if max_keep_alive > 0.0 {
            let loaded = KeepAlives::load(self.state()?, max_keep_alive, now)
                .map_err(CoreError::KeepAlives)?;
            Some(Arc::new(loaded))
        } else {
            None
        };
        let page = PageShare {
            board: Arc::default(),
            keep_alives,
        };
        Ok(self.page.get_or_init(|| page).clone())
    }

    /// Run one pass with the operator's `hooks` and `warn_hook`. Fails only when a client or
    /// the in-memory state cannot be made; the pass itself logs and records its errors.
    pub async fn pass(
        &self,
        settings: &PassSettings,
        hooks: Hooks<'_>,
        warn_hook: Option<&dyn WarnHook>,
    ) -> Result<PassReport, CoreError> {
        let servers = if settings.work.enabled() {
            Some(self.prober()?)
        } else {
            None
        };
        let state = if settings.warns() || settings.work.by_work() {
            Some(self.state()?)
        } else {
            None
        };
        let warnings = state
            .as_ref()
            .filter(|_| settings.warns())
            .map(|state| Warnings {
                state: state.as_ref(),
                hook: warn_hook,
                webhook: self.webhook.as_ref(),
                // As long as a request may.
                hook_timeout: self.hub_settings.request_timeout,
            });
        let probes = servers.as_ref().map(|client| Probes {
            client: client.as_ref(),
            tokens: &self.probe_tokens,
            memory: &self.memory,
            ledger: &self.ledger,
            store: state.as_deref().filter(|_| settings.work.by_work()),
        });
        let report = run_pass(
            self.hub.as_ref(),
            settings,
            hooks,
            probes.as_ref(),
            warnings.as_ref(),
            self.page.get().map(|page| BoardFeed {
                board: &page.board,
                keep_alives: page.keep_alives.as_deref(),
            }),
        )
        .await;
        if let Some(metrics) = self.metrics.get() {
            metrics.observe(Some(&report));
        }
        Ok(report)
    }

    fn state(&self) -> Result<Arc<StateDb>, CoreError> {
        made_once(&self.state, || Ok(Arc::new(StateDb::open(":memory:")?)))
    }

    fn prober(&self) -> Result<Arc<dyn WorkProbe>, CoreError> {
        match &self.prober {
            Prober::Given(prober) => Ok(Arc::clone(prober)),
            Prober::Lazy(settings, made) => {
                made_once(made, || Ok(Arc::new(ProbeClient::new(settings)?)))
            }
        }
    }
}

/// What `cell` holds, made by `make` the first time (`OnceLock::get_or_try_init` is not stable):
/// two passes that race to make it both may, and the first one made is kept.
fn made_once<T: ?Sized>(
    cell: &OnceLock<Arc<T>>,
    make: impl FnOnce() -> Result<Arc<T>, CoreError>,
) -> Result<Arc<T>, CoreError> {
    if let Some(held) = cell.get() {
        return Ok(Arc::clone(held));
    }
    let fresh = make()?;
    Ok(Arc::clone(cell.get_or_init(|| fresh)))
}

//! Who is asking the page: a user's Hub token (from the OAuth flow, or sent as
//! `Authorization: token …`), checked with the Hub's `GET /user` and cached briefly, so a
//! revoked or expired token stops working within the cache's lifetime and a class reloading
//! the page costs the Hub one request per user per lifetime.
//!
//! Anyone who reaches the proxy can send made-up tokens, so checks are bounded by a budget of
//! their own, apart from the passes': [`Budget::CHECKS_PER_SECOND`] on average, with a burst
//! of [`Budget::BURST`] (a class opening the page at once), and [`PAGE_HUB_BUDGET`] in flight
//! on a client of their own that does not retry. A check within the rate waits its turn for a
//! moment; one past it, or one that has waited too long, is told to come back (503) at once.
//! A refused token is remembered for the cache's lifetime by a keyed hash of it, so sending it
//! again costs the Hub nothing. Only tokens that may use the page are cached, and the caches
//! give up their least recently used entries, never all at once.
//!
//! A single-user server asks with its own token (the notice), which does not change during the
//! server's life and is revoked when it stops: once approved, it is remembered by a keyed hash
//! until a pass that began after the approval no longer lists the server, or for
//! [`SERVER_TOKEN_LIFETIME`], so the notice costs the Hub one request per server, not one per
//! question.
//!
//! When the budget is spent (a flood of made-up tokens) or the Hub cannot be reached, a token the
//! Hub approved within [`STALE_GRACE`] is still served: people who were let in keep their page,
//! while a newcomer waits for the flood to pass.

use std::hash::{BuildHasher, RandomState};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use hashlink::LruCache;
use reqwest::Method;
use serde::Deserialize;
use tokio::sync::Semaphore;

use crate::http::HttpError;
use crate::hub::HubClient;

/// At most this many tokens that may use the page are remembered.
const MAX_CACHED: usize = 10_000;
/// At most this many refused tokens are remembered (a hash and a time each).
const MAX_REFUSED: usize = 50_000;
/// At most this many servers' own tokens are remembered (a hash, a name and times each).
const MAX_SERVER_TOKENS: usize = 50_000;
/// How long a server's own token is served without asking the Hub again, while it runs.
pub const SERVER_TOKEN_LIFETIME: Duration = Duration::from_secs(86_400);
/// How long after the Hub approved a token it is still served when the Hub cannot be asked
/// (the budget is spent, or the Hub is down).
pub const STALE_GRACE: Duration = Duration::from_secs(900);
/// Requests to the Hub the page may have in flight, for checks, logins and look-ups.
pub const PAGE_HUB_BUDGET: usize = 8;

/// How many requests to the Hub the page may make, and how long one may wait for its turn.
#[derive(Debug, Clone, Copy)]
pub struct Budget {
    pub in_flight: usize,
    pub per_second: f64,
    pub burst: f64,
    pub max_wait: Duration,
}

impl Budget {
    /// Enough for 600 visitors each checked once per 30 s cache lifetime, steadily.
    pub const CHECKS_PER_SECOND: f64 = 20.0;
    /// A class of 200 opening the page at the same moment.
    pub const BURST: f64 = 200.0;
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            in_flight: PAGE_HUB_BUDGET,
            per_second: Budget::CHECKS_PER_SECOND,
            burst: Budget::BURST,
            max_wait: Duration::from_secs(5),
        }
    }
}

/// A token bucket: `burst` requests at once, `per_second` on average.
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// A user, as the Hub describes the owner of a token.
#[derive(Debug, Clone, Deserialize, PartialEq)]
pub struct Identity {
    pub name: String,
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub admin: bool,
    #[serde(default)]
    pub groups: Vec<String>,
    /// The token's own scopes (JupyterHub 2.0+).
    #[serde(default)]
    pub scopes: Vec<String>,
}

impl Identity {
    /// May this token use the service `service`: it holds one of `access_scopes` (what the
    /// Hub gave the service, `$JUPYTERHUB_OAUTH_ACCESS_SCOPES`), or a service access scope.
    pub fn may_access(&self, service: &str, access_scopes: &[String]) -> bool {
        let own = format!("access:services!service={service}");
        self.kind.as_deref().is_none_or(|k| k == "user")
            && self.scopes.iter().any(|s| {
                s == "access:services" || *s == own || access_scopes.iter().any(|a| a == s)
            })
    }

    /// The server whose own token this is: its owner's, with `access:servers!server=USER/NAME`
    /// (JupyterHub's default `server_token_scopes`). `None` for a person's token.
    pub fn own_server(&self) -> Option<&str> {
        let prefix = format!("access:servers!server={}/", self.name);
        self.scopes
            .iter()
            .find_map(|s| s.strip_prefix(prefix.as_str()))
    }

    /// A Hub admin, or a member of one of `admin_groups`.
    pub fn is_operator(&self, admin_groups: &[String]) -> bool {
        self.admin || self.groups.iter().any(|g| admin_groups.contains(g))
    }
}

/// What the Hub said of a token.
#[derive(Debug, Clone)]
pub enum Verdict {
    /// A token that may use the page.
    Allowed(Arc<Identity>),
    /// Unknown, expired or revoked.
    Unknown,
    /// A real token without access to this service.
    NoAccess,
}

/// Why a token could not be checked.
#[derive(Debug)]
pub enum AuthError {
    /// The page's budget of Hub requests is in use: come back in a moment.
    Busy,
    Hub(HttpError),
}

/// A server's own token, approved by the Hub.
struct ServerToken {
    who: Arc<Identity>,
    server: String,
    at: Instant,
    /// The same, in seconds since the epoch, to compare with the passes' times.
    at_unix: f64,
}

struct Caches {
    allowed: LruCache<String, (Arc<Identity>, Instant)>,
    /// By keyed hash; `true` for a real token without access.
    refused: LruCache<u64, (bool, Instant)>,
    /// Servers' own tokens, by keyed hash.
    servers: LruCache<u128, ServerToken>,
}

/// What is remembered of a token.
enum Recalled {
    /// The Hub's verdict, still fresh.
    Fresh(Verdict),
    /// Approved, but long enough ago to ask again; served if the Hub cannot be asked.
    Stale(Arc<Identity>),
    Nothing,
}

/// Tokens the Hub has vouched for, or refused, lately; and the budget for asking it.
pub struct AuthCache {
    ttl: Duration,
    caches: Mutex<Caches>,
    hasher: RandomState,
    /// With `hasher`, 128 bits of keyed hash for a token that is served on its hash alone.
    second_hasher: RandomState,
    limits: Budget,
    bucket: Mutex<Bucket>,
    in_flight: Arc<Semaphore>,
}

impl std::fmt::Debug for AuthCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthCache")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl AuthCache {
    pub fn new(ttl: Duration) -> Self {
        Self::with_budget(ttl, Budget::default())
    }

    pub fn with_budget(ttl: Duration, limits: Budget) -> Self {
        AuthCache {
            ttl,
            caches: Mutex::new(Caches {
                allowed: LruCache::new(MAX_CACHED),
                refused: LruCache::new(MAX_REFUSED),
                servers: LruCache::new(MAX_SERVER_TOKENS),
            }),
            hasher: RandomState::new(),
            second_hasher: RandomState::new(),
            bucket: Mutex::new(Bucket {
                tokens: limits.burst,
                at: Instant::now(),
            }),
            in_flight: Arc::new(Semaphore::new(limits.in_flight)),
            limits,
        }
    }

    fn caches(&self) -> std::sync::MutexGuard<'_, Caches> {
        self.caches.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn long_hash(&self, token: &str) -> u128 {
        (u128::from(self.hasher.hash_one(token)) << 64)
            | u128::from(self.second_hasher.hash_one(token))
    }

    /// What is remembered of `token`, if still fresh. `seen_stopped(user, server, since)`
    /// tells whether a pass that began after `since` found that server no longer running.
    pub fn get(
        &self,
        token: &str,
        seen_stopped: &(dyn Fn(&str, &str, f64) -> bool + Sync),
    ) -> Option<Verdict> {
        match self.recall(token, seen_stopped) {
            Recalled::Fresh(verdict) => Some(verdict),
            Recalled::Stale(_) | Recalled::Nothing => None,
        }
    }

    fn recall(
        &self,
        token: &str,
        seen_stopped: &(dyn Fn(&str, &str, f64) -> bool + Sync),
    ) -> Recalled {
        let ttl = self.ttl;
        let mut caches = self.caches();
        match caches.allowed.get(token) {
            Some((who, at)) if at.elapsed() < ttl => {
                return Recalled::Fresh(Verdict::Allowed(Arc::clone(who)))
            }
            Some((who, at)) if at.elapsed() < STALE_GRACE => {
                return Recalled::Stale(Arc::clone(who))
            }
            Some(_) => {
                caches.allowed.remove(token);
            }
            None => {}
        }
        let long = self.long_hash(token);
        if let Some(known) = caches.servers.get(&long) {
            if seen_stopped(&known.who.name, &known.server, known.at_unix) {
                // Its token was revoked with it.
                caches.servers.remove(&long);
            } else if known.at.elapsed() < SERVER_TOKEN_LIFETIME {
                return Recalled::Fresh(Verdict::Allowed(Arc::clone(&known.who)));
            } else {
                return Recalled::Stale(Arc::clone(&known.who));
            }
        }
        let hash = self.hasher.hash_one(token);
        match caches.refused.get(&hash) {
            Some(&(no_access, at)) if at.elapsed() < ttl => Recalled::Fresh(if no_access {
                Verdict::NoAccess
            } else {
                Verdict::Unknown
            }),
            Some(_) => {
                caches.refused.remove(&hash);
                Recalled::Nothing
            }
            None => Recalled::Nothing,
        }
    }

    pub fn put(&self, token: &str, verdict: &Verdict) {
        let now = Instant::now();
        let mut caches = self.caches();
        match verdict {
            Verdict::Allowed(who) => match who.own_server() {
                Some(server) => {
                    let known = ServerToken {
                        who: Arc::clone(who),
                        server: server.to_owned(),
                        at: now,
                        at_unix: crate::timestamp::unix_now(),
                    };
                    caches.servers.insert(self.long_hash(token), known);
                }
                None => {
                    caches
                        .allowed
                        .insert(token.to_owned(), (Arc::clone(who), now));
                }
            },
            Verdict::Unknown | Verdict::NoAccess => {
                let hash = self.hasher.hash_one(token);
                caches
                    .refused
                    .insert(hash, (matches!(verdict, Verdict::NoAccess), now));
                caches.allowed.remove(token);
                caches.servers.remove(&self.long_hash(token));
            }
        }
    }

    /// A turn in the page's budget of Hub requests: `Busy` at once past the rate, or after
    /// waiting `max_wait` for one of the requests in flight to end.
    pub async fn budget(&self) -> Result<tokio::sync::OwnedSemaphorePermit, AuthError> {
        {
            let mut bucket = self.bucket.lock().unwrap_or_else(PoisonError::into_inner);
            let refill = bucket.at.elapsed().as_secs_f64() * self.limits.per_second;
            bucket.tokens = (bucket.tokens + refill).min(self.limits.burst);
            bucket.at = Instant::now();
            if bucket.tokens < 1.0 {
                return Err(AuthError::Busy);
            }
            bucket.tokens -= 1.0;
        }
        let turn = Arc::clone(&self.in_flight).acquire_owned();
        match tokio::time::timeout(self.limits.max_wait, turn).await {
            Ok(Ok(permit)) => Ok(permit),
            _ => Err(AuthError::Busy),
        }
    }

    /// What the Hub says of `token`: from the caches, or asked within the budget (then
    /// `asking` is called first). `may_use` tells a token that may use the page;
    /// `seen_stopped` is as for [`AuthCache::get`]. A token approved within [`STALE_GRACE`] is
    /// served when the Hub cannot be asked.
    pub async fn identify(
        &self,
        hub: &HubClient,
        token: &str,
        may_use: impl FnOnce(&Identity) -> bool,
        asking: impl FnOnce(),
        seen_stopped: &(dyn Fn(&str, &str, f64) -> bool + Sync),
    ) -> Result<Verdict, AuthError> {
        let stale = match self.recall(token, seen_stopped) {
            Recalled::Fresh(verdict) => return Ok(verdict),
            Recalled::Stale(who) => Some(who),
            Recalled::Nothing => None,
        };
        let asked = async {
            let _permit = self.budget().await?;
            asking();
            hub.identify(token).await.map_err(AuthError::Hub)
        };
        let verdict = match (asked.await, stale) {
            (Ok(None), _) => Verdict::Unknown,
            (Ok(Some(who)), _) if may_use(&who) => Verdict::Allowed(Arc::new(who)),
            (Ok(Some(_)), _) => Verdict::NoAccess,
            (Err(e), Some(who)) => {
                log::debug!(target: "cull_idle", "Serving a token the Hub approved lately, as it cannot be asked now ({e:?})");
                return Ok(Verdict::Allowed(who));
            }
            (Err(e), None) => return Err(e),
        };
        self.put(token, &verdict);
        Ok(verdict)
    }
}

impl HubClient {
    /// `GET /user` with a user's token; `None` if the Hub refuses the token.
    pub async fn identify(&self, token: &str) -> Result<Option<Identity>, HttpError> {
        let mut call = self.call(Method::GET, "/user", None);
        call.as_user = Some(token);
        let reply = self.http.send(&call).await?;
        match reply.status.as_u16() {
            401 | 403 => Ok(None),
            _ if reply.status.is_success() => self.http.decode(&call, &reply.body).map(Some),
            _ => Err(self.http.status_error(&call, &reply)),
        }
    }

    /// Trade an OAuth `code` for the user's token (`POST /oauth2/token`, the service's API
    /// token as the client secret); `None` if the Hub refuses the code.
    pub async fn exchange_code(
        &self,
        client_id: &str,
        code: &str,
        redirect_uri: &str,
    ) -> Result<Option<String>, HttpError> {
        #[derive(Deserialize)]
        struct Granted {
            access_token: String,
        }
        let field = crate::hub::encode;
        let form = format!(
            "grant_type=authorization_code&client_id={}&client_secret={}&code={}&redirect_uri={}",
            field(client_id),
            field(self.token.secret()),
            field(code),
            field(redirect_uri),
        );
        let mut call = self.call(Method::POST, "/oauth2/token", None);
        call.form_body = Some(&form);
        let reply = self.http.send(&call).await?;
        match reply.status.as_u16() {
            400 | 401 | 403 => Ok(None),
            _ if reply.status.is_success() => self
                .http
                .decode::<Granted>(&call, &reply.body)
                .map(|g| Some(g.access_token)),
            _ => Err(self.http.status_error(&call, &reply)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn who(scopes: &[&str], admin: bool, groups: &[&str]) -> Identity {
        Identity {
            name: "alice".into(),
            kind: Some("user".into()),
            admin,
            groups: groups.iter().map(|&g| g.to_owned()).collect(),
            scopes: scopes.iter().map(|&s| s.to_owned()).collect(),
        }
    }

    #[test]
    fn access_needs_a_service_access_scope() {
        let granted = ["access:services!service=culler".to_owned()];
        assert!(who(&["access:services!service=culler"], false, &[]).may_access("culler", &[]));
        assert!(who(&["access:services"], false, &[]).may_access("culler", &[]));
        assert!(!who(&["read:users:name!user=alice"], false, &[]).may_access("x", &granted));
        assert!(!who(&["access:services!service=other"], false, &[]).may_access("culler", &[]));
        assert!(!who(&["self"], false, &[]).may_access("culler", &[]));
        let mut service = who(&["access:services"], false, &[]);
        service.kind = Some("service".into());
        assert!(
            !service.may_access("culler", &[]),
            "a page for users, not services"
        );
    }

    #[test]
    fn operators_are_admins_or_in_an_admin_group() {
        let groups = ["staff".to_owned()];
        assert!(who(&[], true, &[]).is_operator(&[]));
        assert!(who(&[], false, &["staff"]).is_operator(&groups));
        assert!(!who(&[], false, &["students"]).is_operator(&groups));
    }

    /// Every server is still running.
    fn running(_: &str, _: &str, _: f64) -> bool {
        false
    }

    fn allowed(v: Option<Verdict>) -> Option<Arc<Identity>> {
        match v {
            Some(Verdict::Allowed(who)) => Some(who),
            _ => None,
        }
    }

    #[test]
    fn the_cache_forgets_after_its_lifetime_and_stays_bounded() {
        let cache = AuthCache::new(Duration::from_millis(50));
        let alice = Arc::new(who(&[], false, &[]));
        cache.put("t1", &Verdict::Allowed(Arc::clone(&alice)));
        assert_eq!(allowed(cache.get("t1", &running)).as_deref(), Some(&*alice));
        assert!(cache.get("t2", &running).is_none());
        let deadline = Instant::now() + Duration::from_secs(5);
        while cache.get("t1", &running).is_some() {
            assert!(Instant::now() < deadline, "never expired");
            std::thread::yield_now();
        }
        let cache = AuthCache::new(Duration::from_secs(60));
        cache.put("first", &Verdict::Allowed(Arc::clone(&alice)));
        for i in 0..MAX_CACHED {
            // The first one is in use all along: it is the last to go.
            assert!(allowed(cache.get("first", &running)).is_some(), "{i}");
            cache.put(&format!("t{i}"), &Verdict::Allowed(Arc::clone(&alice)));
        }
        assert!(cache.caches().allowed.len() <= MAX_CACHED);
        assert!(
            allowed(cache.get("first", &running)).is_some(),
            "least recently used go first"
        );
        assert!(cache.get("t0", &running).is_none());
    }

    #[test]
    fn refusals_are_remembered_by_hash_and_bounded() {
        let cache = AuthCache::new(Duration::from_secs(60));
        cache.put("made-up", &Verdict::Unknown);
        cache.put("no-access", &Verdict::NoAccess);
        assert!(matches!(
            cache.get("made-up", &running),
            Some(Verdict::Unknown)
        ));
        assert!(matches!(
            cache.get("no-access", &running),
            Some(Verdict::NoAccess)
        ));
        let caches = cache.caches();
        assert_eq!(caches.refused.len(), 2);
        assert!(caches.allowed.is_empty(), "no token is kept for a refusal");
        drop(caches);
        for i in 0..MAX_REFUSED + 10 {
            cache.put(&format!("r{i}"), &Verdict::Unknown);
        }
        assert_eq!(cache.caches().refused.len(), MAX_REFUSED);
    }

    #[test]
    fn the_budget_lets_a_burst_wait_its_turn_and_refuses_past_its_rate() {
        let limits = Budget {
            in_flight: 1,
            per_second: 0.0,
            burst: 3.0,
            max_wait: Duration::from_millis(50),
        };
        let cache = AuthCache::with_budget(Duration::from_secs(60), limits);
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let first = cache.budget().await.unwrap();
                // Within the burst: waits for the request in flight, and gets its turn.
                let (second, ()) = tokio::join!(cache.budget(), async { drop(first) });
                let held = second.unwrap();
                // Within the burst, but the one in flight lasts too long: busy after the wait.
                let began = Instant::now();
                assert!(matches!(cache.budget().await, Err(AuthError::Busy)));
                assert!(began.elapsed() >= Duration::from_millis(50));
                drop(held);
                // Past the burst, with nothing in flight: busy at once.
                let began = Instant::now();
                assert!(matches!(cache.budget().await, Err(AuthError::Busy)));
                assert!(began.elapsed() < Duration::from_millis(50));
            });
    }

    fn server_token_of(user: &str, server: &str) -> Arc<Identity> {
        let mut who = who(&["access:services"], false, &[]);
        who.name = user.into();
        who.scopes
            .push(format!("access:servers!server={user}/{server}"));
        who.scopes.push(format!("users:activity!user={user}"));
        Arc::new(who)
    }

    #[test]
    fn a_server_s_own_token_is_served_until_its_server_is_seen_stopped() {
        assert_eq!(server_token_of("bob", "gpu").own_server(), Some("gpu"));
        assert_eq!(server_token_of("bob", "").own_server(), Some(""));
        // Another user's server in a person's token is not its own.
        let mut person = who(&["access:servers!server=bob/"], false, &[]);
        assert_eq!(person.own_server(), None);
        person.name = "bob".into();
        assert_eq!(person.own_server(), Some(""));

        let cache = AuthCache::new(Duration::from_millis(20));
        cache.put("bob-server", &Verdict::Allowed(server_token_of("bob", "")));
        cache.put(
            "alice-person",
            &Verdict::Allowed(Arc::new(who(&[], false, &[]))),
        );
        std::thread::sleep(Duration::from_millis(40));
        // Past the cache's lifetime: a person's token is asked about again, a server's is not.
        assert!(cache.get("alice-person", &running).is_none());
        assert!(allowed(cache.get("bob-server", &running)).is_some());
        let approved = crate::timestamp::unix_now();
        // A pass that began before the approval proves nothing; one after, without the server, does.
        let pass_at =
            |at: f64| move |_: &str, server: &str, since: f64| server.is_empty() && at > since;
        assert!(allowed(cache.get("bob-server", &pass_at(approved - 10.0))).is_some());
        assert!(cache.get("bob-server", &pass_at(approved + 10.0)).is_none());
        assert!(cache.get("bob-server", &running).is_none(), "forgotten");
        // Kept by a keyed hash, never as the token itself.
        assert!(cache.caches().allowed.get("bob-server").is_none());
    }

    #[test]
    fn an_approved_token_is_served_while_a_flood_spends_the_budget() {
        let spent = Budget {
            in_flight: 1,
            per_second: 0.0,
            burst: 0.0,
            max_wait: Duration::from_millis(10),
        };
        let cache = AuthCache::with_budget(Duration::from_millis(20), spent);
        let alice = Arc::new(who(&["access:services"], false, &[]));
        cache.put("alice", &Verdict::Allowed(Arc::clone(&alice)));
        std::thread::sleep(Duration::from_millis(40));
        // Nothing listens there: the Hub is never reached, as the budget is spent.
        let settings = crate::hub::HubSettings::new(
            "http://127.0.0.1:9/hub/api",
            crate::http::ApiToken::new("t"),
        );
        let hub = HubClient::new(&settings).unwrap();
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(async {
                let asked = std::cell::Cell::new(0);
                let verdict = cache
                    .identify(
                        &hub,
                        "alice",
                        |_| true,
                        || asked.set(asked.get() + 1),
                        &running,
                    )
                    .await;
                assert!(matches!(verdict, Ok(Verdict::Allowed(ref who)) if **who == *alice));
                let made_up = cache
                    .identify(
                        &hub,
                        "made-up",
                        |_| true,
                        || asked.set(asked.get() + 1),
                        &running,
                    )
                    .await;
                assert!(matches!(made_up, Err(AuthError::Busy)));
                assert_eq!(asked.get(), 0);
            });
    }
}

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

struct Caches {
    allowed: LruCache<String, (Arc<Identity>, Instant)>,
    /// By keyed hash; `true` for a real token without access.
    refused: LruCache<u64, (bool, Instant)>,
}

/// Tokens the Hub has vouched for, or refused, lately; and the budget for asking it.
pub struct AuthCache {
    ttl: Duration,
    caches: Mutex<Caches>,
    hasher: RandomState,
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
            }),
            hasher: RandomState::new(),
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

    /// What is remembered of `token`, if still fresh.
    pub fn get(&self, token: &str) -> Option<Verdict> {
        let ttl = self.ttl;
        let mut caches = self.caches();
        match caches.allowed.get(token) {
            Some((who, at)) if at.elapsed() < ttl => {
                return Some(Verdict::Allowed(Arc::clone(who)))
            }
            Some(_) => {
                caches.allowed.remove(token);
            }
            None => {}
        }
        let hash = self.hasher.hash_one(token);
        match caches.refused.get(&hash) {
            Some(&(no_access, at)) if at.elapsed() < ttl => Some(if no_access {
                Verdict::NoAccess
            } else {
                Verdict::Unknown
            }),
            Some(_) => {
                caches.refused.remove(&hash);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, token: &str, verdict: &Verdict) {
        let now = Instant::now();
        let mut caches = self.caches();
        match verdict {
            Verdict::Allowed(who) => {
                caches
                    .allowed
                    .insert(token.to_owned(), (Arc::clone(who), now));
            }
            Verdict::Unknown | Verdict::NoAccess => {
                let hash = self.hasher.hash_one(token);
                caches
                    .refused
                    .insert(hash, (matches!(verdict, Verdict::NoAccess), now));
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
    /// `asking` is called first). `may_use` tells a token that may use the page.
    pub async fn identify(
        &self,
        hub: &HubClient,
        token: &str,
        may_use: impl FnOnce(&Identity) -> bool,
        asking: impl FnOnce(),
    ) -> Result<Verdict, AuthError> {
        if let Some(verdict) = self.get(token) {
            return Ok(verdict);
        }
        let _permit = self.budget().await?;
        asking();
        let verdict = match hub.identify(token).await.map_err(AuthError::Hub)? {
            None => Verdict::Unknown,
            Some(who) if may_use(&who) => Verdict::Allowed(Arc::new(who)),
            Some(_) => Verdict::NoAccess,
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
        assert_eq!(allowed(cache.get("t1")).as_deref(), Some(&*alice));
        assert!(cache.get("t2").is_none());
        let deadline = Instant::now() + Duration::from_secs(5);
        while cache.get("t1").is_some() {
            assert!(Instant::now() < deadline, "never expired");
            std::thread::yield_now();
        }
        let cache = AuthCache::new(Duration::from_secs(60));
        cache.put("first", &Verdict::Allowed(Arc::clone(&alice)));
        for i in 0..MAX_CACHED {
            // The first one is in use all along: it is the last to go.
            assert!(allowed(cache.get("first")).is_some(), "{i}");
            cache.put(&format!("t{i}"), &Verdict::Allowed(Arc::clone(&alice)));
        }
        assert!(cache.caches().allowed.len() <= MAX_CACHED);
        assert!(
            allowed(cache.get("first")).is_some(),
            "least recently used go first"
        );
        assert!(cache.get("t0").is_none());
    }

    #[test]
    fn refusals_are_remembered_by_hash_and_bounded() {
        let cache = AuthCache::new(Duration::from_secs(60));
        cache.put("made-up", &Verdict::Unknown);
        cache.put("no-access", &Verdict::NoAccess);
        assert!(matches!(cache.get("made-up"), Some(Verdict::Unknown)));
        assert!(matches!(cache.get("no-access"), Some(Verdict::NoAccess)));
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
}

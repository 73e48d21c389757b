//! Who is asking the page: a user's Hub token (from the OAuth flow, or sent as
//! `Authorization: token …`), checked with the Hub's `GET /user` and cached briefly, so a
//! revoked or expired token stops working within the cache's lifetime and a class reloading
//! the page costs the Hub one request per user per lifetime.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde::Deserialize;

use crate::http::HttpError;
use crate::hub::HubClient;

/// At most this many tokens are remembered; past it, the cache starts again.
const MAX_CACHED: usize = 10_000;

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

/// Tokens the Hub has vouched for lately.
pub struct AuthCache {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Arc<Identity>, Instant)>>,
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
        AuthCache {
            ttl,
            entries: Mutex::default(),
        }
    }

    pub fn get(&self, token: &str) -> Option<Arc<Identity>> {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        match entries.get(token) {
            Some((who, at)) if at.elapsed() < self.ttl => Some(Arc::clone(who)),
            Some(_) => {
                entries.remove(token);
                None
            }
            None => None,
        }
    }

    pub fn put(&self, token: &str, who: Arc<Identity>) {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= MAX_CACHED {
            let ttl = self.ttl;
            entries.retain(|_, (_, at)| at.elapsed() < ttl);
            if entries.len() >= MAX_CACHED {
                entries.clear();
            }
        }
        entries.insert(token.to_owned(), (who, Instant::now()));
    }

    /// Who owns `token`: from the cache, or asked of the Hub (then `asking` is called first).
    /// `Ok(None)` for a token the Hub refuses (unknown, expired, revoked).
    pub async fn identify(
        &self,
        hub: &HubClient,
        token: &str,
        asking: impl FnOnce(),
    ) -> Result<Option<Arc<Identity>>, HttpError> {
        if let Some(who) = self.get(token) {
            return Ok(Some(who));
        }
        asking();
        let Some(who) = hub.identify(token).await? else {
            return Ok(None);
        };
        let who = Arc::new(who);
        self.put(token, Arc::clone(&who));
        Ok(Some(who))
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

    #[test]
    fn the_cache_forgets_after_its_lifetime_and_stays_bounded() {
        let cache = AuthCache::new(Duration::from_millis(50));
        let alice = Arc::new(who(&[], false, &[]));
        cache.put("t1", Arc::clone(&alice));
        assert_eq!(cache.get("t1").as_deref(), Some(&*alice));
        assert!(cache.get("t2").is_none());
        let deadline = Instant::now() + Duration::from_secs(5);
        while cache.get("t1").is_some() {
            assert!(Instant::now() < deadline, "never expired");
            std::thread::yield_now();
        }
        let cache = AuthCache::new(Duration::from_secs(60));
        for i in 0..=MAX_CACHED {
            cache.put(&format!("t{i}"), Arc::clone(&alice));
        }
        assert!(cache.entries.lock().unwrap().len() <= MAX_CACHED);
    }
}

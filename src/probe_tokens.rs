//! The credential a probe carries to a single-user server.
//!
//! A server is run by its user, who can read everything it receives, while the culler's own
//! token opens every user's server and stops them. So a probe never carries that token: it
//! carries one owned by the server's user and limited to that one server
//! (`access:servers!server=USER/NAME`), which grants its owner nothing they did not have. The
//! culler makes it with the Hub's token API (the `tokens` scope) when it first asks the server,
//! reuses it while the server runs, replaces it a little before it expires, and deletes it
//! once a complete pass no longer lists the server. Per server that is one `POST` and one
//! `DELETE` to the Hub, and one more pair per [`LIFETIME_SECONDS`] it keeps running.
//!
//! The note begins "Server at ", which JupyterHub reads as a server's own request rather than
//! its user's activity: being asked must not make a person look active to `--cull-users`.
//!
//! Kept in memory only, as a token is a secret and the state file no place for one. The tokens
//! a culler made before a restart (or a kill -9) are not deleted; they expire within
//! [`LIFETIME_SECONDS`], and each grants only its own user's own server until then.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use futures::stream::StreamExt;

use crate::http::{ApiToken, HttpError};
use crate::hub::{HubApi, TokenRequest};

/// How long a probe's token lives, in seconds.
pub const LIFETIME_SECONDS: u32 = 86_400;
/// A token is replaced when less than this is left of it, so that none expires on the way.
const RENEW_BEFORE: f64 = 3_600.0;
const LOG: &str = "cull_idle";

/// The one scope of the token that asks `user`'s server `server`.
pub fn scope(user: &str, server: &str) -> String {
    format!("access:servers!server={user}/{server}")
}

struct Entry {
    user: String,
    token: ApiToken,
    id: String,
    /// When to make its successor, seconds since the epoch.
    renew_at: f64,
    /// Listed running by the pass under way.
    listed: bool,
}

/// A token the Hub is to forget: its owner and id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub user: String,
    pub id: String,
}

/// The probe tokens of the servers asked so far, by `user/server`: one per running server
/// that has been asked, dropped when it stops.
#[derive(Default)]
pub struct ProbeTokens {
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for ProbeTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProbeTokens")
            .field("servers", &self.lock().len())
            .finish()
    }
}

fn key(user: &str, server: &str) -> String {
    format!("{user}/{server}")
}

impl ProbeTokens {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Entry>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub fn len(&self) -> usize {
        self.lock().len()
    }

    pub fn is_empty(&self) -> bool {
        self.lock().is_empty()
    }

    /// The token to ask `user`'s server `server` with at `now`: the one made before, or a new
    /// one from the Hub.
    pub async fn token_for(
        &self,
        hub: &dyn HubApi,
        user: &str,
        server: &str,
        now: f64,
    ) -> Result<ApiToken, HttpError> {
        let key = key(user, server);
        let replaced = match self.lock().get(&key) {
            Some(entry) if entry.renew_at > now => return Ok(entry.token.clone()),
            Some(entry) => Some(Ended {
                user: entry.user.clone(),
                id: entry.id.clone(),
            }),
            None => None,
        };
        let request = TokenRequest {
            scopes: vec![scope(user, server)],
            expires_in: Some(u64::from(LIFETIME_SECONDS)),
            note: format!("Server at {key} (cull-idle asks it what it runs)"),
        };
        let issued = match hub.create_token(user, &request).await {
            // A Hub whose `token_expires_in_max_seconds` is shorter: its own longest, then.
            Err(e) if e.http_status() == Some(400) => {
                let request = TokenRequest {
                    expires_in: None,
                    ..request
                };
                hub.create_token(user, &request).await?
            }
            other => other?,
        };
        let renew_at = issued
            .expires_at
            .map_or(now + f64::from(LIFETIME_SECONDS) - RENEW_BEFORE, |at| {
                at - RENEW_BEFORE.min((at - now) / 2.0)
            });
        let token = issued.token.clone();
        self.lock().insert(
            key,
            Entry {
                user: user.to_owned(),
                token: issued.token,
                id: issued.id,
                renew_at,
                listed: true,
            },
        );
        if let Some(old) = replaced {
            revoke(hub, std::slice::from_ref(&old)).await;
        }
        Ok(token)
    }

    /// Mark every token's server unlisted; [`ProbeTokens::end_pass`] ends those still unlisted.
    pub fn begin_pass(&self) {
        for entry in self.lock().values_mut() {
            entry.listed = false;
        }
    }

    /// The pass lists `user`'s server `server` as running.
    pub fn listed(&self, user: &str, server: &str) {
        let mut entries = self.lock();
        if entries.is_empty() {
            return;
        }
        if let Some(entry) = entries.get_mut(&key(user, server)) {
            entry.listed = true;
        }
    }

    /// After a pass: the tokens of servers a complete pass did not list (stopped, culled or
    /// gone), forgotten here and to be deleted from the Hub.
    pub fn end_pass(&self, complete: bool) -> Vec<Ended> {
        if !complete {
            return Vec::new();
        }
        let mut ended = Vec::new();
        self.lock().retain(|_, entry| {
            if !entry.listed {
                ended.push(Ended {
                    user: entry.user.clone(),
                    id: entry.id.clone(),
                });
            }
            entry.listed
        });
        ended
    }
}

/// Delete `tokens` from the Hub, within its concurrency. A failure is logged and left to the
/// token's expiry: it grants only its own user's own server.
pub async fn revoke(hub: &dyn HubApi, tokens: &[Ended]) {
    let in_flight = hub.concurrency().max(1);
    let mut deleting = futures::stream::iter(tokens.iter().cloned())
        .map(|ended| async move {
            let result = hub.delete_token(&ended.user, &ended.id).await;
            (ended, result)
        })
        .buffer_unordered(in_flight);
    while let Some((ended, result)) = deleting.next().await {
        if let Err(e) = result {
            log::warn!(
                target: LOG,
                "Cannot delete the probe token of a server of {} ({e}); it expires by itself",
                ended.user
            );
        }
    }
}

//! Keep-alives: a user asks that one of their servers is not culled for being idle until a
//! time, at most `--max-keep-alive` from when they ask. Held in memory for the passes and
//! written through to the state database, so they survive a restart.
//!
//! An ended keep-alive is remembered until its server is gone: the warning rule counts a
//! kept server's idle stretch as a new one from the moment it was kept, so a warning given
//! before the keep-alive does not allow the cull when it runs out.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use rusqlite::params;
use serde::Serialize;

use crate::state::StateDb;

/// One keep-alive, as the page and the API show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct KeepAlive {
    pub user: String,
    pub server: String,
    /// Seconds since the epoch.
    pub until: f64,
    pub set_at: f64,
}

/// What a request for `requested` seconds was given.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Grant {
    pub seconds: f64,
    /// Less than asked: the request was past `--max-keep-alive`.
    pub bounded: bool,
}

/// The keep-alive a request may have: up to `max` seconds. `None` for a request that asks for
/// no time, or for a time that is not a number.
pub fn grant(requested: f64, max: f64) -> Option<Grant> {
    if !requested.is_finite() || requested <= 0.0 || max <= 0.0 {
        return None;
    }
    Some(if requested > max {
        Grant {
            seconds: max,
            bounded: true,
        }
    } else {
        Grant {
            seconds: requested,
            bounded: false,
        }
    })
}

type Key = (String, String);

/// The keep-alives in force and ended, by (user, server).
pub struct KeepAlives {
    db: Arc<StateDb>,
    /// `--max-keep-alive`, in seconds.
    pub max: f64,
    entries: Mutex<HashMap<Key, KeepAlive>>,
}

impl std::fmt::Debug for KeepAlives {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeepAlives")
            .field("max", &self.max)
            .finish_non_exhaustive()
    }
}

impl KeepAlives {
    /// Read what the state database holds. A keep-alive that reaches further than `max` from
    /// `now` (granted under a larger `--max-keep-alive`) is shortened to that bound.
    pub fn load(db: Arc<StateDb>, max: f64, now: f64) -> Result<Self, rusqlite::Error> {
        let trimmed = if max > 0.0 {
            db.durably(|conn| {
                conn.execute(
                    "UPDATE keep_alives SET until = ?1 WHERE until > ?1",
                    params![now + max],
                )
            })?
        } else {
            0
        };
        if trimmed > 0 {
            log::warn!(
                target: "cull_idle",
                "Shortened {trimmed} keep-alives to the --max-keep-alive of {max:.0}s from now"
            );
        }
        let entries = {
            let conn = db.conn();
            let mut query = conn.prepare("SELECT user, server, until, set_at FROM keep_alives")?;
            let rows = query.query_map([], |row| {
                Ok(KeepAlive {
                    user: row.get(0)?,
                    server: row.get(1)?,
                    until: row.get(2)?,
                    set_at: row.get(3)?,
                })
            })?;
            let mut entries = HashMap::new();
            for row in rows {
                let k = row?;
                entries.insert((k.user.clone(), k.server.clone()), k);
            }
            entries
        };
        Ok(KeepAlives {
            db,
            max,
            entries: Mutex::new(entries),
        })
    }

    fn entries(&self) -> MutexGuard<'_, HashMap<Key, KeepAlive>> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keep `user`'s `server` until `now + grant.seconds`, recorded before it is in force.
    pub fn set(
        &self,
        user: &str,
        server: &str,
        grant: Grant,
        now: f64,
    ) -> Result<KeepAlive, rusqlite::Error> {
        let kept = KeepAlive {
            user: user.to_owned(),
            server: server.to_owned(),
            until: now + grant.seconds,
            set_at: now,
        };
        // Answered with 200 only once on the disk: it must outlive a power loss.
        self.db.durably(|conn| {
            conn.execute(
                "INSERT OR REPLACE INTO keep_alives (user, server, until, set_at) VALUES (?1, ?2, ?3, ?4)",
                params![kept.user, kept.server, kept.until, kept.set_at],
            )
        })?;
        self.entries()
            .insert((user.to_owned(), server.to_owned()), kept.clone());
        Ok(kept)
    }

    /// End a keep-alive now; `false` if none was in force. Its server is then judged as if
    /// it had ended on time.
    pub fn cancel(&self, user: &str, server: &str, now: f64) -> Result<bool, rusqlite::Error> {
        let key = (user.to_owned(), server.to_owned());
        let in_force = self.entries().get(&key).is_some_and(|k| k.until > now);
        if !in_force {
            return Ok(false);
        }
        self.db.durably(|conn| {
            conn.execute(
                "UPDATE keep_alives SET until = ?3 WHERE user = ?1 AND server = ?2",
                params![user, server, now],
            )
        })?;
        if let Some(kept) = self.entries().get_mut(&key) {
            kept.until = now;
        }
        Ok(true)
    }

    /// The keep-alive recorded for a server, in force or ended.
    pub fn get(&self, user: &str, server: &str) -> Option<KeepAlive> {
        let entries = self.entries();
        if entries.is_empty() {
            return None;
        }
        entries.get(&(user.to_owned(), server.to_owned())).cloned()
    }

    /// The time until which a keep-alive holds this server at `now`, if one does.
    pub fn in_force_until(&self, user: &str, server: &str, now: f64) -> Option<f64> {
        self.get(user, server)
            .map(|k| k.until)
            .filter(|&until| until > now)
    }

    /// Every keep-alive still in force at `now`, by user then server.
    pub fn in_force(&self, now: f64) -> Vec<KeepAlive> {
        let mut kept: Vec<KeepAlive> = self
            .entries()
            .values()
            .filter(|k| k.until > now)
            .cloned()
            .collect();
        kept.sort_by(|a, b| (&a.user, &a.server).cmp(&(&b.user, &b.server)));
        kept
    }

    /// After a complete pass made at `now`: forget the keep-alives that had ended by then and
    /// whose servers it did not see. Returns how many. One granted (or made longer) since `now`
    /// is in force, so it stays, even if granted while this runs.
    pub fn forget_unseen(&self, seen: &HashSet<Key>, now: f64) -> Result<usize, rusqlite::Error> {
        let gone: Vec<Key> = self
            .entries()
            .iter()
            .filter(|(key, kept)| kept.until <= now && !seen.contains(*key))
            .map(|(key, _)| key.clone())
            .collect();
        if gone.is_empty() {
            return Ok(0);
        }
        {
            let mut conn = self.db.conn();
            let tx = conn.transaction()?;
            {
                let mut delete = tx.prepare_cached(
                    "DELETE FROM keep_alives WHERE user = ?1 AND server = ?2 AND until <= ?3",
                )?;
                for (user, server) in &gone {
                    delete.execute(params![user, server, now])?;
                }
            }
            tx.commit()?;
        }
        let mut entries = self.entries();
        for key in &gone {
            if entries.get(key).is_some_and(|kept| kept.until <= now) {
                entries.remove(key);
            }
        }
        Ok(gone.len())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keep_alives(db: &Arc<StateDb>) -> KeepAlives {
        KeepAlives::load(Arc::clone(db), 7200.0, 1000.0).unwrap()
    }

    #[test]
    fn a_grant_is_bounded_by_the_maximum() {
        assert_eq!(
            grant(3600.0, 7200.0),
            Some(Grant {
                seconds: 3600.0,
                bounded: false
            })
        );
        assert_eq!(
            grant(1e12, 7200.0),
            Some(Grant {
                seconds: 7200.0,
                bounded: true
            })
        );
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert_eq!(grant(bad, 7200.0), None, "{bad}");
        }
        assert_eq!(grant(60.0, 0.0), None, "off");
    }

    #[test]
    fn keep_alives_survive_a_reopen_and_are_forgotten_once_unseen() {
        let dir = std::env::temp_dir().join(format!("cull-idle-keep-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.sqlite");
        let _ = std::fs::remove_file(&path);
        let path = path.to_str().unwrap().to_owned();
        {
            let db = Arc::new(StateDb::open(&path).unwrap());
            let kept = keep_alives(&db);
            let g = grant(600.0, kept.max).unwrap();
            kept.set("alice", "", g, 1000.0).unwrap();
            kept.set("bob", "lab", g, 1000.0).unwrap();
            assert_eq!(kept.get("alice", "").unwrap().until, 1600.0);
        }
        let db = Arc::new(StateDb::open(&path).unwrap());
        let kept = keep_alives(&db);
        assert_eq!(kept.in_force(1000.0).len(), 2);
        assert!(kept.cancel("bob", "lab", 1100.0).unwrap());
        assert!(!kept.cancel("bob", "lab", 1100.0).unwrap(), "already ended");
        assert_eq!(kept.in_force(1100.0).len(), 1);
        // Ended keep-alives are remembered while their server runs.
        assert!(kept.get("bob", "lab").is_some());
        kept.set("carol", "", grant(600.0, kept.max).unwrap(), 1000.0)
            .unwrap();
        let seen: HashSet<Key> = [("alice".to_owned(), String::new())].into();
        // Carol's server was not seen (starting, or the Hub checking it), but hers is in force.
        assert_eq!(kept.forget_unseen(&seen, 1100.0).unwrap(), 1);
        assert!(kept.get("carol", "").is_some());
        assert!(kept.get("bob", "lab").is_none());
        drop(kept);
        drop(db);
        let db = Arc::new(StateDb::open(&path).unwrap());
        assert!(
            keep_alives(&db).get("bob", "lab").is_none(),
            "forgotten on disk too"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_lower_bound_at_start_shortens_what_was_granted() {
        let db = Arc::new(StateDb::open(":memory:").unwrap());
        let kept = keep_alives(&db);
        kept.set("alice", "", grant(7200.0, kept.max).unwrap(), 1000.0)
            .unwrap();
        kept.set("bob", "", grant(60.0, kept.max).unwrap(), 1000.0)
            .unwrap();
        drop(kept);
        let lowered = KeepAlives::load(Arc::clone(&db), 600.0, 1100.0).unwrap();
        assert_eq!(lowered.get("alice", "").unwrap().until, 1700.0);
        assert_eq!(
            lowered.get("bob", "").unwrap().until,
            1060.0,
            "within the bound"
        );
    }
}

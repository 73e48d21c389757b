//! `--idle-by=work`: when each running server last did real work, as far as the culler has
//! seen, and when it must be asked again.
//!
//! The Hub's `last_activity` counts an open tab's polls, so in this mode a server is idle
//! from the later of its start and the last work its probes showed. Work only ever makes a
//! server less idle, so a server whose last work seen is further back than its limit minus the
//! warning window cannot be due yet, and is not asked: it is asked once when it could enter the
//! window, and once more before it is stopped. Probes grow with servers divided by the limit,
//! not with passes. One entry per running server, dropped when a complete pass no longer lists
//! it; kept in the state file across restarts.

use std::collections::HashMap;

use rusqlite::params;

use crate::signals::{cpu, WorkRules};
use crate::state::StateDb;
use crate::work::{ServerKey, ServerWork};

/// What the culler has seen of one running server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Seen {
    /// The Hub's `started` for it: a server started again begins anew.
    pub started: f64,
    /// The latest real work seen, seconds since the epoch; never before `started`.
    pub last_work: f64,
    /// When it was last asked; `f64::NEG_INFINITY` if never.
    pub asked_at: f64,
}

impl Seen {
    fn new(started: f64) -> Self {
        Seen {
            started,
            last_work: started,
            asked_at: f64::NEG_INFINITY,
        }
    }

    /// Seconds idle at `now` by the work seen.
    pub fn idle_for(&self, now: f64) -> f64 {
        (now - self.last_work.max(self.started)).max(0.0)
    }

    /// Whether it must be asked before it can be judged at `now`: it could have entered the
    /// warning window (`window` seconds before its `limit`) and has not been asked since.
    pub fn ask_due(&self, limit: f64, window: f64, now: f64) -> bool {
        let from = self.last_work.max(self.started) + (limit - window).max(0.0);
        now >= from && self.asked_at < from
    }
}

/// When a probe at `now` shows the last work: `now` while a kernel executes or the CPU is
/// above `--keep-cpu-above`, else the latest stamp it read (never in the future).
pub fn work_at(rules: &WorkRules, work: &ServerWork, now: f64) -> Option<f64> {
    let working_now =
        work.busy_kernels > 0 || ((cpu::SIGNAL.enabled)(rules) && (cpu::SIGNAL.keeps)(rules, work));
    if working_now {
        Some(now)
    } else {
        work.last_work.map(|at| at.min(now))
    }
}

/// The running servers' [`Seen`], by `user/server`.
#[derive(Debug, Default)]
pub struct WorkLedger {
    servers: HashMap<ServerKey, (Seen, bool)>,
    /// Changed since they were last written to the state file.
    changed: Vec<ServerKey>,
    /// Dropped since then.
    dropped: Vec<ServerKey>,
    /// Whether the state file has been read into it.
    pub loaded: bool,
}

impl WorkLedger {
    /// Mark every entry unseen; [`WorkLedger::end_pass`] drops those still unseen.
    pub fn begin_pass(&mut self) {
        for (_, seen) in self.servers.values_mut() {
            *seen = false;
        }
    }

    /// What has been seen of the server `key`, started at `started`.
    pub fn seen(&mut self, key: &ServerKey, started: f64) -> Seen {
        match self.servers.get_mut(key) {
            Some((seen, listed)) if seen.started == started => {
                *listed = true;
                *seen
            }
            _ => {
                let seen = Seen::new(started);
                self.servers.insert(key.clone(), (seen, true));
                self.changed.push(key.clone());
                seen
            }
        }
    }

    /// What a probe at `asked_at` showed: work at `work_at`, if any.
    pub fn record(
        &mut self,
        key: &ServerKey,
        started: f64,
        work_at: Option<f64>,
        asked_at: f64,
    ) -> Seen {
        let (seen, _) = self
            .servers
            .entry(key.clone())
            .or_insert((Seen::new(started), true));
        if seen.started != started {
            *seen = Seen::new(started);
        }
        seen.last_work = seen.last_work.max(work_at.unwrap_or(f64::NEG_INFINITY));
        seen.asked_at = asked_at;
        self.changed.push(key.clone());
        *seen
    }

    /// The entry of `key`, if any.
    pub fn get(&self, key: &ServerKey) -> Option<Seen> {
        self.servers.get(key).map(|(seen, _)| *seen)
    }

    /// After a pass that listed every server, forget those it did not see.
    pub fn end_pass(&mut self, complete: bool) {
        if complete {
            let dropped = &mut self.dropped;
            self.servers.retain(|key, (_, listed)| {
                if !*listed {
                    dropped.push(key.clone());
                }
                *listed
            });
        }
    }

    pub fn len(&self) -> usize {
        self.servers.len()
    }

    pub fn is_empty(&self) -> bool {
        self.servers.is_empty()
    }

    /// Read what the state file remembers (once, before the first pass).
    pub fn load(&mut self, db: &StateDb) -> Result<(), rusqlite::Error> {
        let conn = db.conn();
        let mut statement =
            conn.prepare("SELECT server_key, started, last_work, asked_at FROM work_seen")?;
        let rows = statement.query_map([], |row| {
            Ok((
                ServerKey::from_stored(row.get::<_, String>(0)?),
                Seen {
                    started: row.get(1)?,
                    last_work: row.get(2)?,
                    asked_at: row.get(3)?,
                },
            ))
        })?;
        for row in rows {
            let (key, seen) = row?;
            self.servers.entry(key).or_insert((seen, false));
        }
        self.loaded = true;
        Ok(())
    }

    /// Write what changed to the state file, in one transaction.
    pub fn save(&mut self, db: &StateDb) -> Result<(), rusqlite::Error> {
        if self.changed.is_empty() && self.dropped.is_empty() {
            return Ok(());
        }
        let mut conn = db.conn();
        let tx = conn.transaction()?;
        {
            let mut upsert = tx.prepare_cached(
                "INSERT OR REPLACE INTO work_seen (server_key, started, last_work, asked_at) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for key in &self.changed {
                if let Some((seen, _)) = self.servers.get(key) {
                    // SQLite has no infinity: never asked is stored as 0.
                    let asked = seen.asked_at.max(0.0);
                    upsert.execute(params![key.as_str(), seen.started, seen.last_work, asked])?;
                }
            }
            let mut delete = tx.prepare_cached("DELETE FROM work_seen WHERE server_key = ?1")?;
            for key in &self.dropped {
                delete.execute(params![key.as_str()])?;
            }
        }
        tx.commit()?;
        self.changed.clear();
        self.dropped.clear();
        Ok(())
    }
}

#[cfg(test)]
mod tests;

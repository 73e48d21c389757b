//! What the culler must remember across restarts: the warnings it gave (and the keep-alives
//! users set, see [`crate::keepalive`]), in an embedded SQLite
//! database (rusqlite with its bundled SQLite, so a Hub needs nothing installed).
//!
//! One entry per warned server or user, for its current idle stretch. A complete pass removes
//! the entries it did not see again (culled, active again, or gone), so the file stays as small
//! as the number of servers inside the warning window.

use crate::stretch::Stretch;
use std::fs::File;
use std::sync::{Mutex, PoisonError};

use rusqlite::{params, Connection, ErrorCode, OpenFlags, OptionalExtension};

/// Each schema version's migration from the one before; the index plus one is the version.
const MIGRATIONS: &[&str] = &[
    // 1: warnings, and who holds the file.
    "CREATE TABLE warnings (
        kind TEXT NOT NULL,
        user TEXT NOT NULL,
        server TEXT NOT NULL,
        stretch TEXT NOT NULL,
        reason TEXT NOT NULL,
        warned_at REAL NOT NULL,
        cull_at REAL NOT NULL,
        seen_at REAL NOT NULL,
        PRIMARY KEY (kind, user, server)
    ) WITHOUT ROWID;
    CREATE TABLE owner (id INTEGER PRIMARY KEY CHECK (id = 1), pid INTEGER NOT NULL);",
    // 2: keep-alives that users set from the page or the API.
    "CREATE TABLE keep_alives (
        user TEXT NOT NULL,
        server TEXT NOT NULL,
        until REAL NOT NULL,
        set_at REAL NOT NULL,
        PRIMARY KEY (user, server)
    ) WITHOUT ROWID;",
    // 3: whether a warning's delivery has ended. One recorded and not yet delivered (the
    // culler died while delivering it) is delivered again, and allows no cull until then.
    "ALTER TABLE warnings ADD COLUMN delivered INTEGER NOT NULL DEFAULT 1;",
    // 4: with --idle-by=work, when each running server last did real work (`crate::ledger`).
    "CREATE TABLE work_seen (
        server_key TEXT PRIMARY KEY,
        started REAL NOT NULL,
        last_work REAL NOT NULL,
        asked_at REAL NOT NULL
    ) WITHOUT ROWID;",
];

/// Why the state file cannot be used. Each message names the file.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    #[error("the state file {path} is in use by another cull-idle (pid {pid}); give each culler its own --state-file")]
    InUse { path: String, pid: String },
    #[error("the state file {path} was written by a newer cull-idle (schema {found}; this one knows up to {known}); upgrade, or give another --state-file")]
    Newer {
        path: String,
        found: i64,
        known: i64,
    },
    #[error("the state file {path} is not a cull-idle state database ({detail}); move it away, or give another --state-file")]
    Corrupt { path: String, detail: String },
    #[error("cannot open the state file {path}: {detail}")]
    Unusable { path: String, detail: String },
}

/// What kind of culling a warning is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    Server,
    User,
}

impl Kind {
    pub fn label(self) -> &'static str {
        match self {
            Kind::Server => "server",
            Kind::User => "user",
        }
    }
}

/// Who a warning is for: a user's server (`server` is its name, `""` for the default one), or
/// the user itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Key {
    pub kind: Kind,
    pub user: String,
    pub server: String,
}

/// A warning given, as remembered.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The idle stretch the warning was given for.
    pub stretch: Stretch,
    pub warned_at: f64,
    pub cull_at: f64,
    /// Its delivery has ended (arrived, or failed after retries); until then it counts as not
    /// given.
    pub delivered: bool,
}

/// A change to the state, written with others in one transaction.
#[derive(Debug, Clone)]
pub enum Write {
    Warned {
        key: Key,
        entry: Entry,
        reason: &'static str,
    },
    /// Seen again in this pass, so kept by the sweep.
    Seen(Key),
}

pub struct StateDb {
    conn: Mutex<Connection>,
    /// Held for the life of the culler: a second one on the same file fails to take it.
    _lock: Option<File>,
}

/// SQLite's `synchronous` for the few writes that answer a person (a keep-alive granted):
/// FULL makes them survive a power loss, not only a crash of the culler.
const DURABLE: &str = "FULL";
const ORDINARY: &str = "NORMAL";

fn unusable(path: &str, e: impl std::fmt::Display) -> StateError {
    StateError::Unusable {
        path: path.to_owned(),
        detail: e.to_string(),
    }
}

fn classify(path: &str, e: rusqlite::Error) -> StateError {
    match e.sqlite_error_code() {
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt) => StateError::Corrupt {
            path: path.to_owned(),
            detail: e.to_string(),
        },
        _ => unusable(path, e),
    }
}

impl StateDb {
    /// Open (or create) the state at `path`; `:memory:` keeps it in memory.
    pub fn open(path: &str) -> Result<Self, StateError> {
        if path == ":memory:" {
            let conn = Connection::open_in_memory().map_err(|e| unusable(path, e))?;
            let db = StateDb {
                conn: Mutex::new(conn),
                _lock: None,
            };
            db.migrate(path)?;
            return Ok(db);
        }
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| unusable(path, e))?;
        if file.try_lock().is_err() {
            return Err(StateError::InUse {
                path: path.to_owned(),
                pid: owner_pid(path).unwrap_or_else(|| "unknown".into()),
            });
        }
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| classify(path, e))?;
        // Each commit survives a crash of the culler; WAL lets it commit without rewriting pages.
        conn.pragma_update(None, "journal_mode", "WAL")
            .map_err(|e| classify(path, e))?;
        conn.pragma_update(None, "synchronous", ORDINARY)
            .map_err(|e| classify(path, e))?;
        conn.busy_timeout(std::time::Duration::from_secs(5))
            .map_err(|e| classify(path, e))?;
        let db = StateDb {
            conn: Mutex::new(conn),
            _lock: Some(file),
        };
        db.migrate(path)?;
        db.conn()
            .execute(
                "INSERT OR REPLACE INTO owner (id, pid) VALUES (1, ?1)",
                params![std::process::id()],
            )
            .map_err(|e| classify(path, e))?;
        Ok(db)
    }

    /// A copy of the state at `path` in memory, for a dry run: the file is only read (never
    /// created, migrated or locked), so a real culler can start on it meanwhile. A missing
    /// file gives an empty state.
    pub fn open_snapshot(path: &str) -> Result<Self, StateError> {
        let mut memory = Connection::open_in_memory().map_err(|e| unusable(path, e))?;
        if std::path::Path::new(path).exists() {
            let file = Connection::open_with_flags(
                path,
                OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
            )
            .map_err(|e| classify(path, e))?;
            file.busy_timeout(std::time::Duration::from_secs(5))
                .map_err(|e| classify(path, e))?;
            let backup =
                rusqlite::backup::Backup::new(&file, &mut memory).map_err(|e| classify(path, e))?;
            backup
                .run_to_completion(256, std::time::Duration::ZERO, None)
                .map_err(|e| classify(path, e))?;
        }
        let db = StateDb {
            conn: Mutex::new(memory),
            _lock: None,
        };
        db.migrate(path)?;
        Ok(db)
    }

    /// Run `write` with every commit synced to the disk before it returns.
    pub(crate) fn durably<T>(
        &self,
        write: impl FnOnce(&mut Connection) -> Result<T, rusqlite::Error>,
    ) -> Result<T, rusqlite::Error> {
        let mut conn = self.conn();
        conn.pragma_update(None, "synchronous", DURABLE)?;
        let result = write(&mut conn);
        conn.pragma_update(None, "synchronous", ORDINARY)?;
        result
    }

    pub(crate) fn conn(&self) -> std::sync::MutexGuard<'_, Connection> {
        self.conn.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn migrate(&self, path: &str) -> Result<(), StateError> {
        let mut conn = self.conn();
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .map_err(|e| classify(path, e))?;
        let known = i64::try_from(MIGRATIONS.len()).unwrap_or(i64::MAX);
        if version > known {
            return Err(StateError::Newer {
                path: path.to_owned(),
                found: version,
                known,
            });
        }
        let tx = conn.transaction().map_err(|e| classify(path, e))?;
        for (number, sql) in (1..)
            .zip(MIGRATIONS)
            .skip(usize::try_from(version).unwrap_or(0))
        {
            tx.execute_batch(sql).map_err(|e| classify(path, e))?;
            tx.pragma_update(None, "user_version", number)
                .map_err(|e| classify(path, e))?;
        }
        tx.commit().map_err(|e| classify(path, e))
    }

    /// The warning remembered for `key`, if any.
    pub fn lookup(&self, key: &Key) -> Result<Option<Entry>, rusqlite::Error> {
        self.conn()
            .prepare_cached(
                "SELECT stretch, warned_at, cull_at, delivered FROM warnings WHERE kind = ?1 AND user = ?2 AND server = ?3",
            )?
            .query_row(params![key.kind.label(), key.user, key.server], |row| {
                Ok(Entry {
                    stretch: Stretch::from_text(&row.get::<_, String>(0)?),
                    warned_at: row.get(1)?,
                    cull_at: row.get(2)?,
                    delivered: row.get(3)?,
                })
            })
            .optional()
    }

    /// Apply `writes` in one transaction, as of a pass made at `now`.
    pub fn write(&self, writes: &[Write], now: f64) -> Result<(), rusqlite::Error> {
        if writes.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut warned = tx.prepare_cached(
                "INSERT OR REPLACE INTO warnings (kind, user, server, stretch, reason, warned_at, cull_at, seen_at, delivered)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
            )?;
            let mut seen = tx.prepare_cached(
                "UPDATE warnings SET seen_at = ?4 WHERE kind = ?1 AND user = ?2 AND server = ?3",
            )?;
            for write in writes {
                match write {
                    Write::Warned { key, entry, reason } => {
                        warned.execute(params![
                            key.kind.label(),
                            key.user,
                            key.server,
                            entry.stretch.to_text(),
                            reason,
                            entry.warned_at,
                            entry.cull_at,
                            now,
                            entry.delivered
                        ])?;
                    }
                    Write::Seen(key) => {
                        seen.execute(params![key.kind.label(), key.user, key.server, now])?;
                    }
                }
            }
        }
        tx.commit()
    }

    /// Mark each warning delivered and move its time to when its delivery ended, so that the
    /// window counts from the moment people had it: `(key, warned_at, cull_at)`. A cull time
    /// already announced is never moved earlier.
    pub fn confirm(&self, delivered: &[(Key, f64, f64)]) -> Result<(), rusqlite::Error> {
        if delivered.is_empty() {
            return Ok(());
        }
        let mut conn = self.conn();
        let tx = conn.transaction()?;
        {
            let mut update = tx.prepare_cached(
                "UPDATE warnings SET warned_at = ?4, cull_at = max(cull_at, ?5), delivered = 1
                 WHERE kind = ?1 AND user = ?2 AND server = ?3",
            )?;
            for (key, warned_at, cull_at) in delivered {
                update.execute(params![
                    key.kind.label(),
                    key.user,
                    key.server,
                    warned_at,
                    cull_at
                ])?;
            }
        }
        tx.commit()
    }

    /// After a complete pass made at `now`: forget what it did not see again. Returns how many.
    pub fn sweep(&self, now: f64) -> Result<usize, rusqlite::Error> {
        self.conn()
            .execute("DELETE FROM warnings WHERE seen_at < ?1", params![now])
    }

    /// How many warnings are remembered.
    pub fn remembered(&self) -> Result<i64, rusqlite::Error> {
        self.conn()
            .query_row("SELECT COUNT(*) FROM warnings", [], |row| row.get(0))
    }
}

/// The pid recorded by the culler that holds `path`, read without taking the file.
fn owner_pid(path: &str) -> Option<String> {
    let conn = Connection::open_with_flags(path, OpenFlags::SQLITE_OPEN_READ_ONLY).ok()?;
    conn.query_row("SELECT pid FROM owner WHERE id = 1", [], |row| {
        row.get::<_, i64>(0)
    })
    .ok()
    .map(|pid| pid.to_string())
}

impl std::fmt::Debug for StateDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StateDb")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(user: &str) -> Key {
        Key {
            kind: Kind::Server,
            user: user.into(),
            server: String::new(),
        }
    }

    fn warned(user: &str, at: f64) -> Write {
        Write::Warned {
            key: key(user),
            entry: Entry {
                stretch: Stretch::by_hub(Some("a"), None),
                warned_at: at,
                cull_at: at + 60.0,
                delivered: false,
            },
            reason: "idle",
        }
    }

    #[test]
    fn warnings_are_remembered_and_swept_when_not_seen_again() {
        let db = StateDb::open(":memory:").unwrap();
        db.write(&[warned("a", 100.0), warned("b", 100.0)], 100.0)
            .unwrap();
        let a = db.lookup(&key("a")).unwrap().unwrap();
        assert_eq!((a.cull_at, a.delivered), (160.0, false));
        db.confirm(&[(key("a"), 101.0, 161.0)]).unwrap();
        let a = db.lookup(&key("a")).unwrap().unwrap();
        assert_eq!((a.warned_at, a.cull_at, a.delivered), (101.0, 161.0, true));
        db.write(&[Write::Seen(key("a"))], 200.0).unwrap();
        assert_eq!(db.sweep(200.0).unwrap(), 1);
        assert!(db.lookup(&key("b")).unwrap().is_none());
        assert_eq!(db.remembered().unwrap(), 1);
    }

    #[test]
    fn a_file_survives_reopening_and_refuses_a_second_holder() {
        let dir = std::env::temp_dir().join(format!("cull-idle-state-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.sqlite");
        let path = path.to_str().unwrap();
        let _ = std::fs::remove_file(path);
        {
            let db = StateDb::open(path).unwrap();
            db.write(&[warned("a", 100.0)], 100.0).unwrap();
            let second = StateDb::open(path).unwrap_err();
            assert!(
                second
                    .to_string()
                    .contains(&format!("pid {}", std::process::id())),
                "{second}"
            );
        }
        let db = StateDb::open(path).unwrap();
        assert_eq!(db.lookup(&key("a")).unwrap().unwrap().warned_at, 100.0);
        drop(db);
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_snapshot_reads_the_file_without_locking_or_changing_it() {
        let dir = std::env::temp_dir().join(format!("cull-idle-snap-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("state.sqlite");
        let path = path.to_str().unwrap();
        let _ = std::fs::remove_file(path);
        // No file: an empty state, and still no file.
        assert_eq!(
            StateDb::open_snapshot(path).unwrap().remembered().unwrap(),
            0
        );
        assert!(!std::path::Path::new(path).exists());
        let holder = StateDb::open(path).unwrap();
        holder.write(&[warned("a", 100.0)], 100.0).unwrap();
        // Read while a real culler holds the file; writes go to the copy only.
        let snapshot = StateDb::open_snapshot(path).unwrap();
        assert_eq!(
            snapshot.lookup(&key("a")).unwrap().unwrap().warned_at,
            100.0
        );
        snapshot.write(&[warned("b", 100.0)], 100.0).unwrap();
        assert!(holder.lookup(&key("b")).unwrap().is_none());
        drop(holder);
        // And a real culler starts while the snapshot is open.
        let again = StateDb::open(path).unwrap();
        assert_eq!(again.remembered().unwrap(), 1);
        drop((again, snapshot));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_old_file_s_warnings_count_as_delivered() {
        let conn = Connection::open_in_memory().unwrap();
        conn.execute_batch(MIGRATIONS[0]).unwrap();
        conn.execute_batch(
            "INSERT INTO warnings VALUES ('server', 'a', '', 's', 'idle', 1.0, 2.0, 1.0);",
        )
        .unwrap();
        conn.pragma_update(None, "user_version", 1).unwrap();
        let db = StateDb {
            conn: Mutex::new(conn),
            _lock: None,
        };
        db.migrate(":memory:").unwrap();
        assert!(db.lookup(&key("a")).unwrap().unwrap().delivered);
    }

    #[test]
    fn corrupt_and_newer_files_are_refused() {
        let dir = std::env::temp_dir().join(format!("cull-idle-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let corrupt = dir.join("corrupt.sqlite");
        std::fs::write(
            &corrupt,
            b"this is not a database, not even close to one....",
        )
        .unwrap();
        let err = StateDb::open(corrupt.to_str().unwrap()).unwrap_err();
        assert!(matches!(err, StateError::Corrupt { .. }), "{err}");
        let newer = dir.join("newer.sqlite");
        Connection::open(&newer)
            .unwrap()
            .pragma_update(None, "user_version", 99)
            .unwrap();
        let err = StateDb::open(newer.to_str().unwrap()).unwrap_err();
        assert!(err.to_string().contains("schema 99"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

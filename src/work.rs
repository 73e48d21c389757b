//! What a probe of a single-user server saw, and the memory that keeps the probe itself from
//! resetting the server's idle time. Which of it keeps a server is for [`crate::signals`].

use std::collections::HashMap;

use serde::Serialize;

/// What a probe of a single-user server saw.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ServerWork {
    pub kernels: u32,
    /// Kernels executing code, or starting or restarting recently (see [`judge_kernel`]).
    pub busy_kernels: u32,
    /// Kernels left starting or restarting for longer than the server's idle limit: stuck,
    /// so counted as idle.
    pub stuck_kernels: u32,
    /// Open kernel connections: websockets of notebook tabs, consoles, other clients.
    pub connections: u32,
    /// `None` when the server has no terminals API (or it could not be read).
    pub terminals: Option<u32>,
    /// Terminals with input or output within the server's idle limit.
    pub recent_terminals: u32,
    /// CPU use in percent, from jupyter-resource-usage (`--keep-cpu-above`); `None` if the
    /// server does not say.
    pub cpu_percent: Option<f64>,
    /// When a person or a program last did real work there, as far as the probe saw (seconds
    /// since the epoch): the latest kernel or terminal activity, or the sensor's account.
    pub last_work: Option<f64>,
    /// Whether `last_work` is within the server's idle limit.
    pub recent_work: bool,
    /// Whether the answer came from the sensor (`cull-idle-sensor`) inside the server.
    pub sensor: bool,
}

impl ServerWork {
    /// A short account for log lines and reports.
    pub fn summary(&self) -> String {
        let mut text = format!(
            "{} of {} kernels busy, {} connections",
            self.busy_kernels, self.kernels, self.connections
        );
        if self.stuck_kernels > 0 {
            text = format!(
                "{text}, {} stuck starting or restarting",
                self.stuck_kernels
            );
        }
        if let Some(cpu) = self.cpu_percent {
            text = format!("{text}, CPU {cpu:.0}%");
        }
        if let Some(terminals) = self.terminals {
            text = format!(
                "{text}, {} of {terminals} terminals recently used",
                self.recent_terminals
            );
        }
        if let Some(at) = self.last_work {
            let by = if self.sensor {
                "the sensor"
            } else {
                "kernels and terminals"
            };
            text = format!(
                "{text}, last work at {} (by {by})",
                crate::timestamp::format_utc(at)
            );
        }
        text
    }
}

/// What one kernel of a probed server counts as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelWork {
    Busy,
    /// Starting or restarting since before the idle limit: no code runs, and none will.
    Stuck,
    Idle,
}

/// A kernel by its `execution_state` and its own `last_activity` (seconds since the epoch).
/// `busy` is busy (bounded by `--busy-timeout`). `starting`, `restarting` and `autorestarting`
/// are busy only while that kernel's activity is at or after `recent_after`: a kernel started
/// through the REST API and never connected to stays `starting`, and would hold its server
/// forever. Without a `last_activity` they count as busy, to keep work rather than cull it.
pub fn judge_kernel(
    state: Option<&str>,
    last_activity: Option<f64>,
    recent_after: f64,
) -> KernelWork {
    match state {
        Some("busy") => KernelWork::Busy,
        Some("starting" | "restarting" | "autorestarting") => {
            if last_activity.is_none_or(|at| at >= recent_after) {
                KernelWork::Busy
            } else {
                KernelWork::Stuck
            }
        }
        _ => KernelWork::Idle,
    }
}

/// Seconds of clock difference allowed between the culler and the proxy.
pub const PROXY_CLOCK_TOLERANCE: f64 = 2.0;

/// A server this culler kept because it was busy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeptBusy {
    /// When the server became idle as the Hub saw it before the culler first probed it.
    pub idle_since: f64,
    /// When the culler's last probe of it ended.
    pub probed_until: f64,
}

/// The idle-since time to judge a kept server by, given the `last_activity` the Hub reports
/// for it now; `None` when the Hub has seen activity that was not the culler's own.
///
/// A probe that goes through configurable-http-proxy is a successful request on the
/// server's route, so the proxy stamps the route and the Hub copies that stamp into the
/// server's `last_activity`. Without this correction a busy server would look freshly active
/// after every probe and `--busy-timeout` could never be reached. Activity stamped after the
/// probe ended (beyond the clock tolerance) is someone else's and ends the correction.
pub fn carried_idle_since(kept: &KeptBusy, hub_last_activity: f64) -> Option<f64> {
    (hub_last_activity <= kept.probed_until + PROXY_CLOCK_TOLERANCE)
        .then_some(kept.idle_since.min(hub_last_activity))
}

/// One server of one user, as the culler's memories (the busy servers, the work ledger, a
/// pass's answers) know it: `user/server`, which no user name can make ambiguous (the Hub
/// allows no `/` in one).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ServerKey(String);

impl ServerKey {
    pub fn new(user: &str, server: &str) -> Self {
        ServerKey(format!("{user}/{server}"))
    }

    /// As the state file keeps it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// What [`ServerKey::as_str`] gave, read back from the state file.
    pub fn from_stored(text: String) -> Self {
        ServerKey(text)
    }
}

impl std::fmt::Display for ServerKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The servers kept busy, by server, across passes. It only ever holds servers that
/// were kept for their work, so it stays small whatever the size of the Hub.
#[derive(Debug, Default)]
pub struct BusyMemory {
    kept: HashMap<ServerKey, (KeptBusy, bool)>,
}

impl BusyMemory {
    /// Mark every entry unseen; [`BusyMemory::end_pass`] drops those still unseen.
    pub fn begin_pass(&mut self) {
        for (_, seen) in self.kept.values_mut() {
            *seen = false;
        }
    }

    /// The idle-since time for `key` (see [`carried_idle_since`]); forgets the server when
    /// the Hub has seen other activity since.
    pub fn idle_since(&mut self, key: &ServerKey, hub_last_activity: f64) -> Option<f64> {
        let (kept, seen) = self.kept.get_mut(key)?;
        *seen = true;
        let carried = carried_idle_since(kept, hub_last_activity);
        if carried.is_none() {
            self.kept.remove(key);
        }
        carried
    }

    pub fn remember(&mut self, key: ServerKey, kept: KeptBusy) {
        self.kept.insert(key, (kept, true));
    }

    /// After a pass that listed every server, forget the servers it did not see (stopped
    /// or deleted since).
    pub fn end_pass(&mut self, complete: bool) {
        if complete {
            self.kept.retain(|_, (_, seen)| *seen);
        }
    }

    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::signals::tests::work;

    #[test]
    fn kernel_states() {
        assert_eq!(
            judge_kernel(Some("busy"), Some(0.0), 100.0),
            KernelWork::Busy
        );
        for state in ["starting", "restarting", "autorestarting"] {
            assert_eq!(
                judge_kernel(Some(state), Some(100.0), 100.0),
                KernelWork::Busy,
                "{state}"
            );
            assert_eq!(
                judge_kernel(Some(state), None, 100.0),
                KernelWork::Busy,
                "{state}"
            );
            assert_eq!(
                judge_kernel(Some(state), Some(99.0), 100.0),
                KernelWork::Stuck,
                "{state}"
            );
        }
        for state in ["idle", "dead", "unknown", ""] {
            assert_eq!(
                judge_kernel(Some(state), Some(200.0), 100.0),
                KernelWork::Idle,
                "{state}"
            );
        }
        assert_eq!(judge_kernel(None, None, 100.0), KernelWork::Idle);
    }

    #[test]
    fn the_culler_s_own_probe_does_not_reset_idleness() {
        let kept = KeptBusy {
            idle_since: 1000.0,
            probed_until: 5000.0,
        };
        // The proxy stamped the route during the probe; the Hub copied it.
        assert_eq!(carried_idle_since(&kept, 4999.0), Some(1000.0));
        assert_eq!(
            carried_idle_since(&kept, 5000.0 + PROXY_CLOCK_TOLERANCE),
            Some(1000.0)
        );
        // Nothing new: still idle since then.
        assert_eq!(carried_idle_since(&kept, 1000.0), Some(1000.0));
        // Activity after the probe is someone else's.
        assert_eq!(
            carried_idle_since(&kept, 5000.0 + PROXY_CLOCK_TOLERANCE + 0.5),
            None
        );
    }

    #[test]
    fn the_memory_forgets_servers_with_new_activity_and_unseen_servers() {
        let mut memory = BusyMemory::default();
        let kept = KeptBusy {
            idle_since: 1000.0,
            probed_until: 5000.0,
        };
        memory.remember(ServerKey::new("a", ""), kept);
        memory.remember(ServerKey::new("b", ""), kept);
        memory.remember(ServerKey::new("c", ""), kept);
        memory.begin_pass();
        assert_eq!(
            memory.idle_since(&ServerKey::new("a", ""), 4990.0),
            Some(1000.0)
        );
        assert_eq!(memory.idle_since(&ServerKey::new("b", ""), 6000.0), None);
        assert_eq!(memory.idle_since(&ServerKey::new("x", ""), 10.0), None);
        // An incomplete pass may not have seen c: keep it.
        memory.end_pass(false);
        assert_eq!(memory.len(), 2);
        memory.end_pass(true);
        assert_eq!(memory.len(), 1);
        assert_eq!(
            memory.idle_since(&ServerKey::new("a", ""), 4990.0),
            Some(1000.0)
        );
        memory.begin_pass();
        memory.end_pass(true);
        assert!(memory.is_empty());
    }

    #[test]
    fn summaries() {
        assert_eq!(
            work(1, 2, 0).summary(),
            "1 of 2 kernels busy, 2 connections, 0 of 0 terminals recently used"
        );
        let no_terminals = ServerWork {
            terminals: None,
            ..work(0, 0, 0)
        };
        assert_eq!(no_terminals.summary(), "0 of 1 kernels busy, 0 connections");
    }
}

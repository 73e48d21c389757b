//! The ways of telling that a server is working, from what a probe of it reads.
//!
//! The Hub only sees network activity, so a kernel computing with its browser tab closed looks
//! idle to it. Each [`Signal`] owns everything about one way of seeing work: what the probe
//! must read, its keep rule, the option that turns it on, the scope that needs, the label of
//! the servers it keeps, and its words for people and operators. The start-up scope check and
//! the README's tables read them from [`ALL`]. Adding one is a module here, a line in [`ALL`],
//! and its option (`CONTRIBUTING.md`).

pub mod busy_kernels;
pub mod connections;
pub mod cpu;
pub mod recent_work;
pub mod terminals;

use std::fmt;

use crate::probe::{Questions, Reading};
use crate::work::ServerWork;

/// One way of telling that a server is working.
pub struct Signal {
    /// The skip label of a server it keeps (logs, reports, metrics, the page's JSON).
    pub label: &'static str,
    /// The option that turns it on, as on the command line without its dashes.
    pub option: &'static str,
    /// The scope the culler's token needs to ask servers for it.
    pub scope: &'static str,
    /// What the probe must read from the server for it.
    pub reads: Reading,
    /// Completes "not stopped, because …", for the person whose server it is.
    pub for_people: &'static str,
    /// What it sees, for the README.
    pub for_operators: &'static str,
    /// Whether the options turn it on.
    pub enabled: fn(&WorkRules) -> bool,
    /// Its keep rule, over what the probe saw; asked only when it is enabled.
    pub keeps: fn(&WorkRules, &ServerWork) -> bool,
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("label", &self.label)
            .field("option", &self.option)
            .finish_non_exhaustive()
    }
}

/// Signals are statics: the same one is the same value.
impl PartialEq for Signal {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Signal {}

/// Every signal, in the order they are asked: the first that keeps a server names why.
pub static ALL: &[&Signal] = &[
    &busy_kernels::SIGNAL,
    &terminals::SIGNAL,
    &cpu::SIGNAL,
    &recent_work::SIGNAL,
    &connections::SIGNAL,
];

/// What a server's idle time is measured by (`--idle-by`), named as the command line, the
/// Python API, the page's JSON and the notice spell it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum IdleBy {
    /// The Hub's `last_activity`, the reference's way.
    #[default]
    Hub,
    /// The work seen inside the server: kernels, terminals and the sensor (see
    /// [`crate::ledger`]).
    Work,
}

/// The options of kernel-aware culling that the signals read.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct WorkRules {
    /// `--keep-busy-kernels`: busy kernels and recently used terminals keep a server.
    pub keep_busy_kernels: bool,
    /// `--keep-connected`.
    pub keep_connected: bool,
    /// Seconds idle (by the Hub) after which a server is culled even if busy; 0 turns it off.
    pub busy_timeout: f64,
    /// Keep a server whose CPU use is above this percentage (`--keep-cpu-above`); 0: off.
    pub keep_cpu_above: f64,
    /// With [`IdleBy::Work`], a server is idle from its last real work, not from the Hub's
    /// `last_activity`, which an open tab's polls keep fresh.
    pub idle_by: IdleBy,
}

impl WorkRules {
    pub fn by_work(&self) -> bool {
        self.idle_by == IdleBy::Work
    }

    /// Whether any signal is on, so that servers are asked at all.
    pub fn enabled(&self) -> bool {
        ALL.iter().any(|signal| (signal.enabled)(self))
    }

    /// The busy-timeout is a hard bound: past it, nothing the server says can keep it.
    pub fn past_busy_timeout(&self, inactive: Option<f64>) -> bool {
        self.busy_timeout > 0.0 && inactive.is_some_and(|i| i >= self.busy_timeout)
    }

    /// What to ask a server for, so that every enabled signal can judge it.
    pub fn questions(&self, recent_after: f64) -> Questions {
        let reads = |reading: Reading| {
            ALL.iter()
                .any(|signal| signal.reads == reading && (signal.enabled)(self))
        };
        Questions {
            terminals: reads(Reading::Terminals) || self.by_work(),
            cpu: reads(Reading::ResourceUsage),
            sensor: self.by_work(),
            recent_after,
        }
    }

    /// The first enabled signal that keeps a server, given what its probe saw.
    pub fn keeping(&self, work: &ServerWork) -> Option<&'static Signal> {
        ALL.iter()
            .copied()
            .find(|signal| (signal.enabled)(self) && (signal.keeps)(self, work))
    }
}

/// The signals' options, scopes and words, for the start-up check and the docs.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SignalDoc {
    pub label: &'static str,
    pub option: &'static str,
    pub scope: &'static str,
    pub for_operators: &'static str,
}

pub fn docs() -> Vec<SignalDoc> {
    ALL.iter()
        .map(|s| SignalDoc {
            label: s.label,
            option: s.option,
            scope: s.scope,
            for_operators: s.for_operators,
        })
        .collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn work(busy: u32, connections: u32, recent_terminals: u32) -> ServerWork {
        ServerWork {
            kernels: busy + 1,
            busy_kernels: busy,
            stuck_kernels: 0,
            connections,
            terminals: Some(recent_terminals),
            recent_terminals,
            cpu_percent: None,
            last_work: None,
            recent_work: false,
            sensor: false,
        }
    }

    pub(crate) const BUSY: WorkRules = WorkRules {
        keep_busy_kernels: true,
        keep_connected: false,
        busy_timeout: 0.0,
        keep_cpu_above: 0.0,
        idle_by: IdleBy::Hub,
    };
    pub(crate) const CONNECTED: WorkRules = WorkRules {
        keep_busy_kernels: false,
        keep_connected: true,
        busy_timeout: 0.0,
        keep_cpu_above: 0.0,
        idle_by: IdleBy::Hub,
    };

    #[test]
    fn the_first_enabled_signal_that_keeps_names_why() {
        let both = WorkRules {
            keep_connected: true,
            ..BUSY
        };
        assert_eq!(both.keeping(&work(1, 1, 0)), Some(&busy_kernels::SIGNAL));
        assert_eq!(both.keeping(&work(0, 0, 1)), Some(&terminals::SIGNAL));
        assert_eq!(both.keeping(&work(0, 1, 0)), Some(&connections::SIGNAL));
        assert_eq!(both.keeping(&work(0, 0, 0)), None);
        assert_eq!(WorkRules::default().keeping(&work(3, 3, 3)), None);
    }

    #[test]
    fn a_server_is_asked_only_what_an_enabled_signal_reads() {
        let q = BUSY.questions(5.0);
        assert!(q.terminals && !q.cpu && q.recent_after == 5.0);
        let q = CONNECTED.questions(0.0);
        assert!(!q.terminals && !q.cpu);
        let cpu = WorkRules {
            keep_cpu_above: 10.0,
            ..WorkRules::default()
        };
        assert!(cpu.enabled() && cpu.questions(0.0).cpu);
        assert!(!WorkRules::default().enabled());
        let by_work = WorkRules {
            idle_by: IdleBy::Work,
            ..WorkRules::default()
        };
        let q = by_work.questions(0.0);
        assert!(by_work.enabled() && q.sensor && q.terminals && !q.cpu);
        assert!(!BUSY.questions(0.0).sensor);
    }

    #[test]
    fn every_signal_names_an_option_and_a_scope() {
        for signal in ALL {
            assert!(
                signal.option.starts_with("keep-") || signal.option.starts_with("idle-by="),
                "{signal:?}"
            );
            assert_eq!(signal.scope, "tokens");
        }
    }
}

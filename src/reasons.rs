//! Why the culler kept or culled a server or user, as enums that carry their own words.
//!
//! Each reason has a stable label (logs, reports, metrics, the page's JSON), a sentence for the
//! person whose server it is (the page), and one for operators (the README's table, generated
//! from [`KeepKind::ALL`], [`CullReason::ALL`] and [`crate::signals::ALL`]). A reason without
//! its words does not compile. The ways of telling that a server is working keep it for a
//! reason of their own, a [`crate::signals::Signal`], which carries the same words.

use std::fmt;

use crate::signals::Signal;

/// An enum whose every variant carries its label and its two explanations, and the list of
/// them all, in the manner of pydantic-core's `ErrorType`.
macro_rules! explained {
    ($(#[$outer:meta])* pub enum $name:ident {
        $($(#[$inner:meta])* $variant:ident = $label:literal {
            people: $people:literal,
            operators: $operators:literal $(,)?
        },)+
    }) => {
        $(#[$outer])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$inner])* $variant,)+
        }

        impl $name {
            /// Every one, in the order the docs list them.
            pub const ALL: &'static [$name] = &[$($name::$variant,)+];

            /// A short stable label for logs, reports, metrics and the page's JSON.
            pub fn label(self) -> &'static str {
                match self {
                    $($name::$variant => $label,)+
                }
            }

            /// In words for the person whose server it is: completes "because …".
            pub fn for_people(self) -> &'static str {
                match self {
                    $($name::$variant => $people,)+
                }
            }

            /// In words for operators, for the README.
            pub fn for_operators(self) -> &'static str {
                match self {
                    $($name::$variant => $operators,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.label())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.label())
            }
        }
    };
}

explained! {
    /// Why a server is stopped, or a user deleted.
    pub enum CullReason {
        Idle = "idle" {
            people: "it has been idle for longer than its limit",
            operators: "idle for longer than `--timeout` (or its group's `--group-timeout`; `--user-timeout` for users)",
        },
        MaxAge = "max-age" {
            people: "it reached the maximum age",
            operators: "older than `--max-age`, however active",
        },
        /// A named server stopped for longer than `--remove-stopped-named-servers`: removed.
        LongStopped = "long-stopped" {
            people: "it has been stopped for a long time",
            operators: "a named server stopped for longer than `--remove-stopped-named-servers`: removed",
        },
    }
}

explained! {
    /// Why a server or user is kept, other than work seen inside the server (a [`Signal`]).
    pub enum KeepKind {
        Pending = "pending" {
            people: "it is starting or stopping",
            operators: "a spawn, stop, check or rename is in progress",
        },
        NotReady = "not-ready" {
            people: "it is starting or stopping",
            operators: "the Hub does not report it ready",
        },
        NoActivityData = "no-activity-data" {
            people: "the culler cannot judge it yet",
            operators: "the Hub knows neither its last activity nor its start (nor a user's creation)",
        },
        Active = "active" {
            people: "it was in use recently",
            operators: "active more recently than its limit (counted, not listed, in reports)",
        },
        NotSelected = "not-selected" {
            people: "servers of this kind are not stopped for being idle",
            operators: "`--cull-default-servers=false` or `--cull-named-servers=false` (counted, not listed)",
        },
        Arbiter = "arbiter" {
            people: "the operators' rules keep it",
            operators: "the `cull_arbiter` hook said no, or failed",
        },
        Admin = "admin" {
            people: "admins are not culled",
            operators: "an admin, with `--cull-admin-users=false` (users only)",
        },
        Exempt = "exempt" {
            people: "your account is exempt from idle culling",
            operators: "`--exclude-users` or `--exclude-groups`",
        },
        NoGroups = "no-groups" {
            people: "the culler cannot judge it yet",
            operators: "group rules are set, but the Hub did not say the user's groups (the token lacks `read:users:groups`)",
        },
        ServersAlive = "servers-alive" {
            people: "its servers are still running",
            operators: "a user whose servers are still running or stopping is not deleted (users only)",
        },
        BadTimestamp = "bad-timestamp" {
            people: "the culler cannot judge it yet",
            operators: "a time the Hub sent does not parse",
        },
        NoServerUrl = "no-server-url" {
            people: "the culler cannot judge it yet",
            operators: "it should be asked about its work, but the Hub gave no URL for it (see `--server-url`)",
        },
        Unanswered = "unanswered" {
            people: "the culler could not ask it about its work, and the Hub has seen it in use",
            operators: "with `--idle-by=work`: asking it failed, and by the Hub's `last_activity` (which counts open tabs) it is active",
        },
        BadModel = "bad-model" {
            people: "the culler cannot judge it yet",
            operators: "the Hub's model of the user or server does not parse",
        },
        Cap = "cap" {
            people: "the culler stops only so many servers at once; it is next",
            operators: "over `--max-culls-per-pass`: left for the next pass",
        },
        Warned = "warned" {
            people: "a warning was given, and it is stopped no sooner than the time it gave",
            operators: "due, but warned less than `--warn-before` ago: stopped from the time the warning gave",
        },
        NotWarned = "not-warned" {
            people: "a warning is due first, and could not be recorded yet",
            operators: "due, but its warning could not be recorded (the state file failed), so none was given",
        },
        KeptAlive = "kept-alive" {
            people: "you are keeping it alive",
            operators: "its user keeps it running until a time (the page or its API, within `--max-keep-alive`)",
        },
        SlowStop = "slow-stop" {
            people: "it is stopping",
            operators: "stopped, but the Hub was still stopping it when the pass ended (202; metrics only)",
        },
        StopFailed = "failed" {
            people: "stopping it failed; the culler tries again",
            operators: "stopping it failed; the next pass tries again (the page only; the log and `hub_request_errors` say why)",
        },
    }
}

impl KeepKind {
    /// Whether `cull_idle_skipped_total` counts it: the common "active" and "not selected" are
    /// only counted in the report, and a failed stop is a request error.
    pub fn in_skipped_metric(self) -> bool {
        !matches!(
            self,
            KeepKind::Active | KeepKind::NotSelected | KeepKind::StopFailed
        )
    }
}

/// Why a server is kept or culled: what the page shows and counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Why {
    Kept(KeepKind),
    Working(&'static Signal),
    Culled(CullReason),
}

impl Why {
    pub fn label(self) -> &'static str {
        match self {
            Why::Kept(kind) => kind.label(),
            Why::Working(signal) => signal.label,
            Why::Culled(reason) => reason.label(),
        }
    }

    pub fn for_people(self) -> &'static str {
        match self {
            Why::Kept(kind) => kind.for_people(),
            Why::Working(signal) => signal.for_people,
            Why::Culled(reason) => reason.for_people(),
        }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

impl serde::Serialize for Why {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.label())
    }
}

/// What the page says will happen to a server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    Keep,
    /// Stopped by the pass, or being stopped.
    Stop,
    /// A dry run would stop it.
    WouldStop,
}

impl Verdict {
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Keep => "keep",
            Verdict::Stop => "stop",
            Verdict::WouldStop => "would-stop",
        }
    }
}

/// One row of the README's table of reasons.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReasonDoc {
    /// `cull` or `keep`.
    pub kind: &'static str,
    pub label: &'static str,
    pub operators: String,
    pub people: &'static str,
    /// A label value of the `reason` metrics (`cull_idle_skipped_total` for keeps).
    pub metric: bool,
}

/// Every reason, culls first, then keeps, then the signals, for the docs.
pub fn docs() -> Vec<ReasonDoc> {
    let culls = CullReason::ALL.iter().map(|r| ReasonDoc {
        kind: "cull",
        label: r.label(),
        operators: r.for_operators().to_owned(),
        people: r.for_people(),
        metric: true,
    });
    let keeps = KeepKind::ALL.iter().map(|k| ReasonDoc {
        kind: "keep",
        label: k.label(),
        operators: k.for_operators().to_owned(),
        people: k.for_people(),
        metric: k.in_skipped_metric(),
    });
    let signals = crate::signals::ALL.iter().map(|s| ReasonDoc {
        kind: "keep",
        label: s.label,
        operators: format!("{} (`--{}`)", s.for_operators, s.option),
        people: s.for_people,
        metric: true,
    });
    culls.chain(keeps).chain(signals).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_unique_within_their_kind_and_stable() {
        let mut keeps: Vec<&str> = KeepKind::ALL.iter().map(|k| k.label()).collect();
        keeps.sort_unstable();
        keeps.dedup();
        assert_eq!(keeps.len(), KeepKind::ALL.len());
        for signal in crate::signals::ALL {
            assert!(
                !keeps.contains(&signal.label),
                "{} is both a signal and another reason",
                signal.label
            );
        }
        assert_eq!(
            serde_json::to_string(&Why::Kept(KeepKind::KeptAlive)).unwrap(),
            "\"kept-alive\""
        );
        assert_eq!(
            serde_json::to_string(&Verdict::WouldStop).unwrap(),
            "\"would-stop\""
        );
        assert_eq!(CullReason::LongStopped.to_string(), "long-stopped");
    }

    #[test]
    fn every_reason_has_words_for_both_audiences() {
        for doc in docs() {
            assert!(
                !doc.people.is_empty() && !doc.operators.is_empty(),
                "{}",
                doc.label
            );
            assert!(
                !doc.people.ends_with('.'),
                "completes a sentence: {}",
                doc.label
            );
        }
    }
}

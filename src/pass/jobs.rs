//! The work a pass has planned: stops and deletions by user, and the per-pass cap on them.

use crate::policy::{CullReason, KeepReason};
use crate::reasons::KeepKind;
use crate::signals::IdleBy;
use crate::stretch::Stretch;
use crate::timestamp::format_duration;

use super::report::{PassReport, ProbeRecord, Skip};

/// What the warning gate and the page need to know of a server the policy has judged.
pub(super) struct ServerFacts {
    /// Names its idle stretch (see `warn::stretch`).
    pub stretch: Stretch,
    /// When the policy will cull it, and why.
    pub due: Option<(CullReason, f64)>,
    pub inactive: Option<f64>,
    pub kept_until: Option<f64>,
    /// `inactive` is by the work seen (`--idle-by=work`), not by the Hub's count.
    pub idle_by: IdleBy,
}

pub(super) struct ServerJob {
    pub name: String,
    pub reason: CullReason,
    pub inactive: Option<f64>,
    pub age: Option<f64>,
    /// The server's idle limit.
    pub limit: f64,
    /// The Hub's `started`, seconds since the epoch (`--idle-by=work` remembers work by it).
    pub started: Option<f64>,
    /// Seconds idle by the Hub's `last_activity`, which judges it with `--idle-by=work` when it
    /// cannot be asked.
    pub hub_inactive: Option<f64>,
    /// Ask the server before stopping it; the address to ask (`None`: unknown).
    pub probe_at: Option<Option<String>>,
    /// Boxed: rare, and a pass may hold many jobs.
    pub probe: Option<Box<ProbeRecord>>,
    /// A note for the report (e.g. the busy-timeout was reached).
    pub note: Option<String>,
}

impl ServerJob {
    /// Why it is culled, for log lines.
    pub fn why(&self) -> String {
        let inactive = format_duration(self.inactive);
        let mut why = match self.reason {
            CullReason::Idle => format!("inactive for {inactive}"),
            CullReason::MaxAge => {
                format!(
                    "age: {}, inactive for {inactive}",
                    format_duration(self.age)
                )
            }
            CullReason::LongStopped => format!("stopped for {inactive}"),
        };
        if let Some(note) = &self.note {
            why = format!("{why}; {note}");
        }
        if let Some(work) = self.probe.as_ref().and_then(|p| p.work.as_ref()) {
            why = format!("{why}; {}", work.summary());
        }
        why
    }
}

pub(super) struct UserJob {
    pub user: String,
    pub servers: Vec<ServerJob>,
    pub delete: Option<(CullReason, Option<f64>)>,
    /// A ready server of the user is kept, so the user stays in `state=ready` whatever happens
    /// to the others.
    pub stays: bool,
    /// The listing the user was found in.
    pub listed_in: Listing,
}

impl UserJob {
    /// How long the longest-idle part of this job has been idle (for `max_culls` ordering).
    pub fn idlest(&self) -> f64 {
        self.servers
            .iter()
            .filter_map(|s| s.inactive)
            .chain(self.delete.and_then(|(_, inactive)| inactive))
            .fold(f64::NEG_INFINITY, f64::max)
    }

    pub fn culls(&self) -> usize {
        self.servers.len() + usize::from(self.delete.is_some())
    }
}

/// The listing being read, for what acting on a job does to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listing {
    /// `state=ready`: a user leaves it when its last server stops.
    Ready,
    /// `state=inactive`, or every user (Hubs before 1.3): only deleting a user removes it.
    Other,
}

impl Listing {
    /// Whether acting on `job` may take its user out of this listing.
    pub fn may_lose(self, job: &UserJob) -> bool {
        job.listed_in == self
            && (job.delete.is_some()
                || (self == Listing::Ready && !job.servers.is_empty() && !job.stays))
    }
}

/// What acting on a batch of jobs did to the listing being read.
#[derive(Debug, Default)]
pub(super) struct Acted {
    /// Users who may have left the listing.
    pub left: u64,
    /// Of those, users who may still leave later: a stop was slow (202) or failed.
    pub unsettled: u64,
}

/// Keep at most `cap` stops and deletions, the longest idle first; record the rest as skipped.
/// A user is only deleted if all of its stops fit under the cap as well.
pub(super) fn apply_cap(cap: usize, jobs: &mut Vec<UserJob>, report: &mut PassReport) {
    let wanted: usize = jobs.iter().map(UserJob::culls).sum();
    if wanted <= cap {
        return;
    }
    jobs.sort_by(|a, b| b.idlest().total_cmp(&a.idlest()));
    let mut budget = cap;
    let mut kept = Vec::new();
    for mut job in jobs.drain(..) {
        let fit = job.servers.len().min(budget);
        let cut = job.servers.len() - fit;
        budget -= fit;
        for server in job.servers.drain(fit..) {
            report.record_skip(
                Skip::new(
                    &job.user,
                    Some(&server.name),
                    KeepReason::Kept(KeepKind::Cap),
                )
                .with_probe(server.probe),
            );
        }
        if job.delete.is_some() {
            if cut == 0 && budget > 0 {
                budget -= 1;
            } else {
                job.delete = None;
                report.record_skip(Skip::new(&job.user, None, KeepReason::Kept(KeepKind::Cap)));
            }
        }
        if job.culls() > 0 {
            kept.push(job);
        }
    }
    *jobs = kept;
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;

    pub fn job(user: &str, servers: &[(&str, f64)], delete: Option<f64>) -> UserJob {
        UserJob {
            user: user.to_owned(),
            servers: servers
                .iter()
                .map(|&(name, inactive)| ServerJob {
                    name: name.to_owned(),
                    reason: CullReason::Idle,
                    inactive: Some(inactive),
                    age: None,
                    limit: 600.0,
                    started: None,
                    hub_inactive: Some(inactive),
                    probe_at: None,
                    probe: None,
                    note: None,
                })
                .collect(),
            delete: delete.map(|inactive| (CullReason::Idle, Some(inactive))),
            stays: false,
            listed_in: Listing::Ready,
        }
    }

    fn planned(jobs: &[UserJob]) -> Vec<String> {
        let mut out = Vec::new();
        for j in jobs {
            out.extend(j.servers.iter().map(|s| format!("{}/{}", j.user, s.name)));
            if j.delete.is_some() {
                out.push(format!("delete {}", j.user));
            }
        }
        out
    }

    fn report() -> PassReport {
        PassReport {
            details: true,
            ..PassReport::default()
        }
    }

    #[test]
    fn under_the_cap_nothing_changes() {
        let mut jobs = vec![
            job("a", &[("", 10.0)], None),
            job("b", &[("", 20.0)], Some(20.0)),
        ];
        let mut report = report();
        apply_cap(3, &mut jobs, &mut report);
        assert_eq!(planned(&jobs), ["a/", "b/", "delete b"]);
        assert!(report.skipped.is_empty());
    }

    #[test]
    fn the_cap_keeps_the_idlest_first() {
        let mut jobs = vec![
            job("a", &[("", 100.0)], None),
            job("b", &[("", 900.0)], None),
            job("c", &[("", 500.0)], None),
        ];
        let mut report = report();
        apply_cap(2, &mut jobs, &mut report);
        assert_eq!(planned(&jobs), ["b/", "c/"]);
        assert_eq!(report.skipped.len(), 1);
        assert_eq!(
            (report.skipped[0].user.as_str(), &report.skipped[0].reason),
            ("a", &KeepReason::Kept(KeepKind::Cap))
        );
    }

    #[test]
    fn a_user_is_not_deleted_when_any_of_its_stops_was_cut() {
        let mut jobs = vec![
            job("a", &[("", 900.0), ("x", 800.0)], Some(900.0)),
            job("b", &[], Some(10.0)),
        ];
        let mut report = report();
        apply_cap(1, &mut jobs, &mut report);
        assert_eq!(planned(&jobs), ["a/"]);
        let skipped: Vec<_> = report
            .skipped
            .iter()
            .map(|s| (s.user.as_str(), s.server.as_deref()))
            .collect();
        assert_eq!(skipped, [("a", Some("x")), ("a", None), ("b", None)]);
    }

    #[test]
    fn a_deletion_counts_against_the_cap() {
        let mut jobs = vec![
            job("a", &[("", 900.0)], Some(900.0)),
            job("b", &[("", 10.0)], None),
        ];
        let mut report = report();
        apply_cap(2, &mut jobs, &mut report);
        assert_eq!(planned(&jobs), ["a/", "delete a"]);
        assert_eq!(report.skipped.len(), 1);
    }

    #[test]
    fn only_jobs_that_can_empty_a_user_move_its_listing() {
        let stop = job("a", &[("", 900.0)], None);
        let delete = job("b", &[], Some(900.0));
        let mut partial = job("c", &[("lab", 900.0)], None);
        partial.stays = true;
        assert!(Listing::Ready.may_lose(&stop));
        assert!(Listing::Ready.may_lose(&delete));
        assert!(!Listing::Ready.may_lose(&partial));
        // Stopping a server does not take a user out of state=inactive or an unfiltered list.
        let mut inactive = job("d", &[("", 900.0)], Some(900.0));
        inactive.listed_in = Listing::Other;
        let mut kept_user = job("e", &[("", 900.0)], None);
        kept_user.listed_in = Listing::Other;
        assert!(Listing::Other.may_lose(&inactive));
        assert!(!Listing::Other.may_lose(&kept_user));
        // A job carried over from the other listing cannot move this one.
        assert!(!Listing::Ready.may_lose(&inactive));
        assert!(!Listing::Other.may_lose(&stop));
    }
}

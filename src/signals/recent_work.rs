//! Real work within the server's idle limit, with `--idle-by=work`: a kernel's or terminal's
//! own activity, or what the sensor inside the server counts (saves, edits, execute requests,
//! terminal input, apps behind jupyter-server-proxy), never an open tab's polls.

use super::{Signal, WorkRules};
use crate::probe::Reading;
use crate::work::ServerWork;

pub static SIGNAL: Signal = Signal {
    label: "worked",
    option: "idle-by=work",
    scope: "tokens",
    reads: Reading::Kernels,
    for_people: "someone worked in it within its limit",
    for_operators: "with `--idle-by=work`: a kernel, a terminal, or what the sensor counts, active within the limit",
    enabled: |rules: &WorkRules| rules.by_work(),
    keeps: |_: &WorkRules, work: &ServerWork| work.recent_work,
};

#[cfg(test)]
mod tests {
    use super::super::tests::{work, BUSY};
    use super::super::IdleBy;
    use super::*;

    #[test]
    fn recent_work_keeps_only_in_work_mode() {
        let recent = ServerWork {
            recent_work: true,
            ..work(0, 3, 0)
        };
        let by_work = WorkRules {
            idle_by: IdleBy::Work,
            ..WorkRules::default()
        };
        assert_eq!(by_work.keeping(&recent), Some(&SIGNAL));
        assert_eq!(by_work.keeping(&work(0, 3, 0)), None);
        assert_eq!(BUSY.keeping(&recent), None);
    }
}

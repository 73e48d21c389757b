//! The server's processes using more CPU than a threshold, as jupyter-resource-usage reports
//! it (`--keep-cpu-above`). A server that does not say is judged by the other signals.

use super::{Signal, WorkRules};
use crate::probe::Reading;
use crate::work::ServerWork;

pub static SIGNAL: Signal = Signal {
    label: "cpu",
    option: "keep-cpu-above",
    scope: "tokens",
    reads: Reading::ResourceUsage,
    for_people: "its processes are using CPU",
    for_operators: "its processes use more CPU than the threshold, by jupyter-resource-usage",
    enabled: |rules: &WorkRules| rules.keep_cpu_above > 0.0,
    keeps: |rules: &WorkRules, work: &ServerWork| {
        work.cpu_percent
            .is_some_and(|cpu| cpu > rules.keep_cpu_above)
    },
};

#[cfg(test)]
mod tests {
    use super::super::tests::BUSY;
    use super::*;

    #[test]
    fn cpu_above_the_threshold_keeps_a_server_and_an_unknown_figure_does_not() {
        let cpu = WorkRules {
            keep_cpu_above: 10.0,
            ..WorkRules::default()
        };
        let with = |percent| ServerWork {
            cpu_percent: percent,
            ..ServerWork::default()
        };
        assert!(cpu.enabled());
        assert_eq!(cpu.keeping(&with(Some(87.0))), Some(&SIGNAL));
        assert_eq!(cpu.keeping(&with(Some(10.0))), None);
        assert_eq!(cpu.keeping(&with(None)), None);
        assert_eq!(BUSY.keeping(&with(Some(99.0))), None);
        assert!(with(Some(87.4)).summary().ends_with(", CPU 87%"));
    }
}

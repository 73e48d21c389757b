//! A kernel executing code, or starting or restarting recently (`--keep-busy-kernels`).

use super::{Signal, WorkRules};
use crate::probe::Reading;
use crate::work::ServerWork;

pub static SIGNAL: Signal = Signal {
    label: "busy",
    option: "keep-busy-kernels",
    scope: "tokens",
    reads: Reading::Kernels,
    for_people: "a kernel is busy",
    for_operators: "a kernel is executing, or starting or restarting within the limit",
    enabled: |rules: &WorkRules| rules.keep_busy_kernels || rules.by_work(),
    keeps: |_: &WorkRules, work: &ServerWork| work.busy_kernels > 0,
};

#[cfg(test)]
mod tests {
    use super::super::tests::{work, BUSY, CONNECTED};
    use super::*;

    #[test]
    fn busy_kernels_keep_a_server_only_with_keep_busy() {
        assert_eq!(BUSY.keeping(&work(1, 0, 0)), Some(&SIGNAL));
        assert_eq!(CONNECTED.keeping(&work(1, 0, 0)), None);
    }
}

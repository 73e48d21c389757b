//! A terminal with input or output within the server's idle limit, read from
//! jupyter_server's `api/terminals` (`--keep-busy-kernels` turns it on too).

use super::{Signal, WorkRules};
use crate::probe::Reading;
use crate::work::ServerWork;

pub static SIGNAL: Signal = Signal {
    label: "busy",
    option: "keep-busy-kernels",
    scope: "tokens",
    reads: Reading::Terminals,
    for_people: "a terminal is busy",
    for_operators: "a terminal had input or output within the limit",
    enabled: |rules: &WorkRules| rules.keep_busy_kernels || rules.by_work(),
    keeps: |_: &WorkRules, work: &ServerWork| work.recent_terminals > 0,
};

#[cfg(test)]
mod tests {
    use super::super::tests::{work, BUSY, CONNECTED};
    use super::*;

    #[test]
    fn recently_used_terminals_count_as_busy() {
        assert_eq!(BUSY.keeping(&work(0, 0, 1)), Some(&SIGNAL));
        assert_eq!(CONNECTED.keeping(&work(0, 0, 1)), None);
    }
}

//! A kernel with open connections: a notebook tab's websocket, a console, another client
//! (`--keep-connected`).

use super::{Signal, WorkRules};
use crate::probe::Reading;
use crate::work::ServerWork;

pub static SIGNAL: Signal = Signal {
    label: "connected",
    option: "keep-connected",
    scope: "tokens",
    reads: Reading::Kernels,
    for_people: "a kernel has a connection open",
    for_operators: "a kernel has an open connection",
    enabled: |rules: &WorkRules| rules.keep_connected,
    keeps: |_: &WorkRules, work: &ServerWork| work.connections > 0,
};

#[cfg(test)]
mod tests {
    use super::super::tests::{work, BUSY, CONNECTED};
    use super::*;

    #[test]
    fn connections_keep_a_server_only_with_keep_connected() {
        assert_eq!(CONNECTED.keeping(&work(0, 2, 0)), Some(&SIGNAL));
        assert_eq!(BUSY.keeping(&work(0, 2, 0)), None);
    }
}

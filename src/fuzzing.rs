//! Entry points for the fuzz targets in `fuzz/`, and for `tests/fuzz_corpus.rs`, which replays
//! the kept corpus on the stable toolchain. Each one runs untrusted bytes through the same path
//! a pass takes and panics only where an invariant is broken.

use crate::models::{Server, User, UserPage};
use crate::policy::{assess_server, decide_server, default_arbiter, idle_rule_applies, Policy};
use crate::timestamp::{format_duration, parse_timestamp};

const NOW: f64 = 1_795_773_600.0;

/// A page of users as the Hub might send it: decode the page, each user, each server, and
/// decide about every server. Any input must end in a decision or a skip, never a panic.
pub fn user_page(data: &[u8]) {
    let Ok(page) = UserPage::from_json(data) else {
        return;
    };
    let policy = Policy {
        max_age: 86_400.0,
        ..Policy::default()
    };
    for item in &page.items {
        let Ok(mut user) = serde_json::from_str::<User>(item.get()) else {
            continue;
        };
        let _ = user.hook_model();
        let Some(servers) = user.servers() else {
            continue;
        };
        for (name, raw) in servers.0 {
            let Ok(server) = serde_json::from_str::<Server>(raw.get()) else {
                continue;
            };
            let Ok(idleness) = assess_server(&server, NOW) else {
                continue;
            };
            let verdict = idleness
                .inactive
                .filter(|_| idle_rule_applies(&policy, &name, &idleness))
                .map(|inactive| default_arbiter(policy.inactive_limit, inactive));
            let _ = decide_server(&policy, policy.inactive_limit, &name, &idleness, verdict);
            let _ = format_duration(idleness.inactive);
        }
    }
}

/// A timestamp: parses to a finite number of seconds or to an error.
pub fn timestamp(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(seconds) = parse_timestamp(text) {
        assert!(seconds.is_finite(), "{text:?} parsed to {seconds}");
        let _ = format_duration(Some(NOW - seconds));
    }
}

//! Properties of the cull policy that must hold for any input (proptest).

use _core::models::Server;
use _core::policy::{
    assess_server, decide_server, default_arbiter, glob_match, idle_rule_applies, CullReason,
    Policy,
};
use _core::signals::WorkRules;
use _core::work::{carried_idle_since, KeptBusy, ServerWork, PROXY_CLOCK_TOLERANCE};
use proptest::prelude::*;

const NOW: f64 = 1_795_773_600.0;

fn timestamp(seconds_ago: f64) -> String {
    #[allow(clippy::cast_possible_truncation)]
    let micros = ((NOW - seconds_ago) * 1e6).round() as i64;
    chrono::DateTime::from_timestamp_micros(micros)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

fn policy() -> impl Strategy<Value = Policy> {
    (
        0.0..1e6f64,
        prop_oneof![Just(0.0), 1.0..1e7f64],
        any::<bool>(),
        any::<bool>(),
        proptest::collection::vec(("[a-c]", 0.0..1e6f64), 0..3),
    )
        .prop_map(
            |(
                inactive_limit,
                max_age,
                cull_default_servers,
                cull_named_servers,
                group_timeouts,
            )| {
                Policy {
                    inactive_limit,
                    max_age,
                    cull_default_servers,
                    cull_named_servers,
                    group_timeouts,
                    ..Policy::default()
                }
            },
        )
}

proptest! {
    /// Never culled while active more recently than its limit, unless max-age applies.
    #[test]
    fn recently_active_servers_are_kept(
        policy in policy(),
        groups in proptest::collection::vec("[a-c]", 0..3),
        named in any::<bool>(),
        idle_fraction in 0.0..1.0f64,
        started_ago in proptest::option::of(0.0..1e8f64),
    ) {
        let limit = policy.server_limit(&groups);
        let idle = limit * idle_fraction; // strictly younger than the limit
        let server = Server {
            last_activity: Some(timestamp(idle)),
            started: started_ago.map(timestamp),
            pending: None,
            ready: Some(true),
            url: Some("/user/u/".into()),
            ..Server::default()
        };
        let name = if named { "lab" } else { "" };
        let idleness = assess_server(&server, NOW).unwrap();
        let verdict = idle_rule_applies(&policy, name, &idleness)
            .then(|| default_arbiter(limit, idleness.inactive.unwrap()));
        match decide_server(&policy, limit, name, &idleness, verdict) {
            Ok(CullReason::Idle) => prop_assert!(false, "culled for idleness at {idle} < {limit}"),
            Ok(CullReason::MaxAge) => {
                prop_assert!(policy.max_age > 0.0 && idleness.age.unwrap() >= policy.max_age);
            }
            Ok(CullReason::LongStopped) => prop_assert!(false, "a running server judged as stopped"),
            Err(_) => {}
        }
    }

    /// Pending or not-ready servers are never culled, whatever their times.
    #[test]
    fn pending_and_not_ready_servers_are_kept(
        policy in policy(),
        pending in proptest::option::of("spawn|stop|check|rename"),
        ago in 0.0..1e8f64,
    ) {
        let server = Server {
            last_activity: Some(timestamp(ago)),
            started: Some(timestamp(ago)),
            // Pending servers are never ready; without a pending action this one is not ready.
            ready: Some(false),
            pending,
            url: Some("/user/u/".into()),
            ..Server::default()
        };
        prop_assert!(assess_server(&server, NOW).is_err());
        let _ = policy;
    }

    /// A name always matches itself (special characters escaped as classes), `*`, and its own
    /// prefix followed by `*`; it never matches a different literal name.
    #[test]
    fn globs_match_what_they_should(name in "[a-zA-Z0-9@.+ %ü_-]{0,20}", other in "[a-z]{1,5}") {
        let literal: String = name.chars().map(|c| match c {
            '*' | '?' | '[' => format!("[{c}]"),
            c => c.to_string(),
        }).collect();
        prop_assert!(glob_match(&literal, &name));
        prop_assert!(glob_match("*", &name));
        let half: String = name.chars().take(name.chars().count() / 2).collect();
        let prefix_pattern = half + "*";
        prop_assert!(glob_match(&prefix_pattern, &name));
        let different = format!("{name}{other}");
        prop_assert!(!glob_match(&literal, &different));
    }

    /// Exemption by group holds for every group list that contains an excluded group.
    #[test]
    fn members_of_excluded_groups_are_exempt(
        mut groups in proptest::collection::vec("[a-e]{1,3}", 0..5),
        excluded in "[a-e]{1,3}",
        name in "[a-z]{1,8}",
    ) {
        let policy = Policy { exclude_groups: vec![excluded.clone()], ..Policy::default() };
        prop_assert_eq!(policy.is_exempt(&name, &groups), groups.contains(&excluded));
        groups.push(excluded);
        prop_assert!(policy.is_exempt(&name, &groups));
    }

    /// With --keep-busy-kernels a busy kernel always keeps a server (the busy-timeout is
    /// checked before any probe), and with neither flag nothing a probe sees keeps one.
    #[test]
    fn busy_kernels_always_keep_with_keep_busy(
        kernels in 1u32..50, busy in 1u32..50, connections in 0u32..50, keep_connected in any::<bool>(),
    ) {
        let work = ServerWork { kernels: kernels.max(busy), busy_kernels: busy, connections, ..ServerWork::default() };
        let rules = WorkRules { keep_busy_kernels: true, keep_connected, busy_timeout: 0.0, keep_cpu_above: 0.0, idle_by: _core::signals::IdleBy::Hub };
        prop_assert!(rules.keeping(&work).is_some());
        prop_assert!(WorkRules::default().keeping(&work).is_none());
    }

    /// The correction for the culler's own probes never hides activity that came after them,
    /// and never makes a server look idle for longer than it was before it was first kept.
    #[test]
    fn probe_corrections_never_hide_later_activity(
        idle_since in 0.0..1e9f64, probe_after in 0.0..1e6f64, hub_last_activity in 0.0..2e9f64,
    ) {
        let kept = KeptBusy { idle_since, probed_until: idle_since + probe_after };
        match carried_idle_since(&kept, hub_last_activity) {
            None => prop_assert!(hub_last_activity > kept.probed_until + PROXY_CLOCK_TOLERANCE),
            Some(since) => {
                prop_assert!(hub_last_activity <= kept.probed_until + PROXY_CLOCK_TOLERANCE);
                prop_assert!(since <= hub_last_activity);
                prop_assert!(since >= idle_since.min(hub_last_activity));
            }
        }
    }
}

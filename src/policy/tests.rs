//! The policy's decisions, case by case; `tests/policy_properties.rs` holds its properties.
use super::*;

const NOW: f64 = 1_795_773_600.0; // 2026-11-27T10:00:00Z

#[allow(clippy::cast_possible_truncation)]
fn ts(seconds_ago: f64) -> String {
    let t = chrono::DateTime::from_timestamp_micros(((NOW - seconds_ago) * 1e6).round() as i64)
        .unwrap();
    t.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

fn server(last_activity: Option<f64>, started: Option<f64>) -> Server {
    Server {
        last_activity: last_activity.map(ts),
        started: started.map(ts),
        pending: None,
        ready: Some(true),
        url: Some("/user/u/".into()),
        full_url: None,
        stopped: false,
        user_options: None,
    }
}

fn decide(policy: &Policy, name: &str, s: &Server) -> Result<CullReason, KeepReason> {
    let idleness = assess_server(s, NOW)?;
    let arbiter = idle_rule_applies(policy, name, &idleness)
        .then(|| default_arbiter(policy.inactive_limit, idleness.inactive.unwrap()));
    decide_server(policy, policy.inactive_limit, name, &idleness, arbiter)
}

#[test]
fn only_named_servers_stopped_long_enough_are_removed() {
    let p = Policy {
        remove_stopped_named_servers: 86_400.0,
        ..Policy::default()
    };
    assert_eq!(decide_stopped(&p, "", Some(1e9)), None);
    assert_eq!(decide_stopped(&Policy::default(), "lab", Some(1e9)), None);
    assert_eq!(
        decide_stopped(&p, "lab", Some(86_400.0)),
        Some(Ok(CullReason::LongStopped))
    );
    assert_eq!(
        decide_stopped(&p, "lab", Some(86_399.0)),
        Some(Err(KeepReason::Kept(KeepKind::Active)))
    );
    assert_eq!(
        decide_stopped(&p, "lab", None),
        Some(Err(KeepReason::Kept(KeepKind::NoActivityData)))
    );
}

#[test]
fn pending_servers_are_skipped() {
    for what in ["spawn", "stop", "check", "rename"] {
        let s = Server {
            pending: Some(what.into()),
            ..server(Some(9999.0), Some(9999.0))
        };
        assert_eq!(
            decide(&Policy::default(), "", &s),
            Err(KeepReason::Pending(what.into()))
        );
    }
    // An empty pending string is no pending action.
    let s = Server {
        pending: Some(String::new()),
        ..server(Some(9999.0), Some(9999.0))
    };
    assert_eq!(decide(&Policy::default(), "", &s), Ok(CullReason::Idle));
}

#[test]
fn not_ready_servers_are_skipped() {
    let s = Server {
        ready: Some(false),
        ..server(Some(9999.0), None)
    };
    assert_eq!(
        decide(&Policy::default(), "", &s),
        Err(KeepReason::Kept(KeepKind::NotReady))
    );
    let legacy = Server {
        ready: None,
        url: None,
        ..server(Some(9999.0), None)
    };
    assert_eq!(
        decide(&Policy::default(), "", &legacy),
        Err(KeepReason::Kept(KeepKind::NotReady))
    );
    let legacy_ready = Server {
        ready: None,
        ..server(Some(9999.0), None)
    };
    assert_eq!(
        decide(&Policy::default(), "", &legacy_ready),
        Ok(CullReason::Idle)
    );
}

#[test]
fn idle_limit_is_inclusive() {
    let p = Policy::default();
    assert_eq!(
        decide(&p, "", &server(Some(600.0), Some(700.0))),
        Ok(CullReason::Idle)
    );
    assert_eq!(
        decide(&p, "", &server(Some(599.0), Some(700.0))),
        Err(KeepReason::Kept(KeepKind::Active))
    );
}

#[test]
fn started_is_used_when_last_activity_is_missing() {
    let p = Policy::default();
    assert_eq!(
        decide(&p, "", &server(None, Some(601.0))),
        Ok(CullReason::Idle)
    );
    assert_eq!(
        decide(&p, "", &server(None, Some(10.0))),
        Err(KeepReason::Kept(KeepKind::Active))
    );
}

#[test]
fn no_times_at_all_is_never_culled_and_never_arbitrated() {
    let p = Policy {
        max_age: 1.0,
        ..Policy::default()
    };
    let s = server(None, None);
    let idleness = assess_server(&s, NOW).unwrap();
    assert!(!idle_rule_applies(&p, "", &idleness));
    assert_eq!(
        decide_server(&p, p.inactive_limit, "", &idleness, None),
        Err(KeepReason::Kept(KeepKind::NoActivityData))
    );
}

#[test]
fn future_activity_is_not_idle() {
    let p = Policy::default();
    assert_eq!(
        decide(&p, "", &server(Some(-3600.0), Some(7200.0))),
        Err(KeepReason::Kept(KeepKind::Active))
    );
}

#[test]
fn unparsable_timestamps_skip_the_server() {
    let mut s = server(Some(9999.0), None);
    s.last_activity = Some("last tuesday".into());
    assert_eq!(
        decide(&Policy::default(), "", &s),
        Err(KeepReason::Kept(KeepKind::BadTimestamp))
    );
    let mut s = server(Some(9999.0), None);
    s.started = Some("??".into());
    assert_eq!(
        decide(
            &Policy {
                max_age: 1.0,
                ..Policy::default()
            },
            "",
            &s
        ),
        Err(KeepReason::Kept(KeepKind::BadTimestamp))
    );
}

#[test]
fn default_and_named_selection() {
    let only_named = Policy {
        cull_default_servers: false,
        ..Policy::default()
    };
    let only_default = Policy {
        cull_named_servers: false,
        ..Policy::default()
    };
    let idle = server(Some(9999.0), Some(9999.0));
    assert_eq!(
        decide(&only_named, "", &idle),
        Err(KeepReason::Kept(KeepKind::NotSelected))
    );
    assert_eq!(decide(&only_named, "gpu", &idle), Ok(CullReason::Idle));
    assert_eq!(decide(&only_default, "", &idle), Ok(CullReason::Idle));
    assert_eq!(
        decide(&only_default, "gpu", &idle),
        Err(KeepReason::Kept(KeepKind::NotSelected))
    );
}

#[test]
fn max_age_culls_active_servers_and_overrides_selection_and_arbiter() {
    let p = Policy {
        max_age: 3600.0,
        cull_default_servers: false,
        ..Policy::default()
    };
    let old_but_active = server(Some(1.0), Some(3600.0));
    assert_eq!(decide(&p, "", &old_but_active), Ok(CullReason::MaxAge));
    let idleness = assess_server(&old_but_active, NOW).unwrap();
    assert_eq!(
        decide_server(&p, p.inactive_limit, "x", &idleness, Some(false)),
        Ok(CullReason::MaxAge)
    );
    let young = server(Some(1.0), Some(3599.0));
    assert_eq!(
        decide(&p, "", &young),
        Err(KeepReason::Kept(KeepKind::NotSelected))
    );
}

#[test]
fn max_age_zero_is_off() {
    let p = Policy {
        max_age: 0.0,
        ..Policy::default()
    };
    assert_eq!(
        decide(&p, "", &server(Some(1.0), Some(1e9))),
        Err(KeepReason::Kept(KeepKind::Active))
    );
}

#[test]
fn idle_reason_wins_over_max_age() {
    let p = Policy {
        max_age: 10.0,
        ..Policy::default()
    };
    assert_eq!(
        decide(&p, "", &server(Some(9999.0), Some(9999.0))),
        Ok(CullReason::Idle)
    );
}

#[test]
fn custom_arbiter_answers_are_obeyed() {
    let p = Policy::default();
    let fresh = assess_server(&server(Some(5.0), Some(5.0)), NOW).unwrap();
    assert_eq!(
        decide_server(&p, 600.0, "", &fresh, Some(true)),
        Ok(CullReason::Idle)
    );
    let stale = assess_server(&server(Some(9999.0), Some(9999.0)), NOW).unwrap();
    assert_eq!(
        decide_server(&p, 600.0, "", &stale, Some(false)),
        Err(KeepReason::Kept(KeepKind::Arbiter))
    );
    assert_eq!(
        decide_server(&p, 600.0, "", &fresh, Some(false)),
        Err(KeepReason::Kept(KeepKind::Active))
    );
}

fn user(
    admin: bool,
    created: Option<f64>,
    last: Option<f64>,
) -> (bool, Option<String>, Option<String>) {
    (admin, created.map(ts), last.map(ts))
}

fn decide_u(
    p: &Policy,
    u: &(bool, Option<String>, Option<String>),
    alive: usize,
) -> Result<CullReason, KeepReason> {
    let facts = UserFacts {
        admin: u.0,
        created: u.1.as_deref(),
        last_activity: u.2.as_deref(),
    };
    decide_user(p, p.inactive_limit, &facts, alive, NOW)
}

#[test]
fn users_with_live_servers_are_kept() {
    let p = Policy {
        cull_users: true,
        ..Policy::default()
    };
    assert_eq!(
        decide_u(&p, &user(false, Some(1e6), Some(1e6)), 1),
        Err(KeepReason::ServersAlive(1))
    );
}

#[test]
fn idle_users_are_deleted_with_created_fallback() {
    let p = Policy {
        cull_users: true,
        ..Policy::default()
    };
    assert_eq!(
        decide_u(&p, &user(false, Some(10.0), Some(600.0)), 0),
        Ok(CullReason::Idle)
    );
    assert_eq!(
        decide_u(&p, &user(false, Some(10.0), Some(599.0)), 0),
        Err(KeepReason::Kept(KeepKind::Active))
    );
    assert_eq!(
        decide_u(&p, &user(false, Some(700.0), None), 0),
        Ok(CullReason::Idle)
    );
    assert_eq!(
        decide_u(&p, &user(false, None, None), 0),
        Err(KeepReason::Kept(KeepKind::NoActivityData))
    );
}

#[test]
fn admin_exemption_applies_to_inactivity_only() {
    let keep_admins = Policy {
        cull_users: true,
        cull_admin_users: false,
        ..Policy::default()
    };
    assert_eq!(
        decide_u(&keep_admins, &user(true, Some(1e5), Some(1e5)), 0),
        Err(KeepReason::Kept(KeepKind::Admin))
    );
    assert_eq!(
        decide_u(&keep_admins, &user(false, Some(1e5), Some(1e5)), 0),
        Ok(CullReason::Idle)
    );
    let with_age = Policy {
        max_age: 3600.0,
        ..keep_admins.clone()
    };
    assert_eq!(
        decide_u(&with_age, &user(true, Some(1e5), Some(1e5)), 0),
        Ok(CullReason::MaxAge)
    );
    assert_eq!(
        decide_u(&with_age, &user(true, Some(1e5), Some(1.0)), 0),
        Ok(CullReason::MaxAge)
    );
    let default = Policy {
        cull_users: true,
        ..Policy::default()
    };
    assert_eq!(
        decide_u(&default, &user(true, Some(1e5), Some(1e5)), 0),
        Ok(CullReason::Idle)
    );
}

#[test]
fn user_max_age_without_created_is_unknown() {
    let p = Policy {
        cull_users: true,
        max_age: 10.0,
        ..Policy::default()
    };
    assert_eq!(
        decide_u(&p, &user(false, None, Some(1.0)), 0),
        Err(KeepReason::Kept(KeepKind::Active))
    );
}

#[test]
fn user_timestamps_that_do_not_parse_keep_the_user() {
    let p = Policy {
        cull_users: true,
        ..Policy::default()
    };
    let facts = UserFacts {
        admin: false,
        created: Some("nope"),
        last_activity: None,
    };
    assert_eq!(
        decide_user(&p, 600.0, &facts, 0, NOW),
        Err(KeepReason::Kept(KeepKind::BadTimestamp))
    );
}

#[test]
fn globs_match_like_fnmatch() {
    let cases = [
        ("*", "anyone", true),
        ("admin-*", "admin-alice", true),
        ("admin-*", "alice", false),
        ("?ob", "bob", true),
        ("?ob", "blob", false),
        ("[bc]at", "cat", true),
        ("[!bc]at", "cat", false),
        ("[!bc]at", "rat", true),
        ("u[0-9][0-9]", "u42", true),
        ("u[0-9][0-9]", "u4x", false),
        ("*@example.org", "ann@example.org", true),
        ("*@example.org", "ann@example.com", false),
        ("a*b*c", "aXXbYYc", true),
        ("a*b*c", "aXXbYY", false),
        ("exact", "exact", true),
        ("exact", "Exact", false),
        ("[]x]", "]", true),
        ("[unclosed", "[unclosed", true),
        ("ü*", "ünï", true),
        ("", "", true),
        ("", "x", false),
        ("**", "", true),
    ];
    for (pattern, text, expected) in cases {
        assert_eq!(
            glob_match(pattern, text),
            expected,
            "{pattern:?} ~ {text:?}"
        );
    }
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|s| (*s).to_owned()).collect()
}

#[test]
fn exemptions_by_name_and_group() {
    let p = Policy {
        exclude_users: names(&["admin-*", "bob"]),
        exclude_groups: names(&["staff"]),
        ..Policy::default()
    };
    assert!(p.is_exempt("admin-1", &[]));
    assert!(p.is_exempt("bob", &[]));
    assert!(p.is_exempt("carol", &names(&["students", "staff"])));
    assert!(!p.is_exempt("carol", &names(&["students"])));
    assert!(!p.is_exempt("bobby", &[]));
    assert!(p.uses_groups());
    assert!(!Policy {
        exclude_users: names(&["x"]),
        ..Policy::default()
    }
    .uses_groups());
}

#[test]
fn group_limits_take_the_largest_of_the_user_s_groups() {
    let p = Policy {
        group_timeouts: vec![
            ("gpu".into(), 7200.0),
            ("workshop".into(), 300.0),
            ("long".into(), 86400.0),
        ],
        ..Policy::default()
    };
    assert_eq!(p.server_limit(&[]), 600.0);
    assert_eq!(p.server_limit(&names(&["other"])), 600.0);
    assert_eq!(p.server_limit(&names(&["workshop"])), 300.0);
    assert_eq!(p.server_limit(&names(&["workshop", "gpu"])), 7200.0);
    assert_eq!(p.server_limit(&names(&["gpu", "long"])), 86400.0);
    assert_eq!(p.user_limit(&names(&["gpu"])), 7200.0);
    let separate = Policy {
        user_timeout: Some(3.0 * 86400.0),
        ..p
    };
    assert_eq!(separate.user_limit(&names(&["gpu"])), 3.0 * 86400.0);
}

#[test]
fn the_limit_given_is_the_one_used() {
    let p = Policy::default();
    let idleness = assess_server(&server(Some(1000.0), Some(1000.0)), NOW).unwrap();
    let verdict = Some(default_arbiter(7200.0, idleness.inactive.unwrap()));
    assert_eq!(
        decide_server(&p, 7200.0, "", &idleness, verdict),
        Err(KeepReason::Kept(KeepKind::Active))
    );
    let verdict = Some(default_arbiter(900.0, idleness.inactive.unwrap()));
    assert_eq!(
        decide_server(&p, 900.0, "", &idleness, verdict),
        Ok(CullReason::Idle)
    );
    let facts = UserFacts {
        admin: false,
        created: None,
        last_activity: Some("2026-11-27T09:40:00Z"),
    };
    assert_eq!(
        decide_user(&p, 1000.0, &facts, 0, NOW),
        Ok(CullReason::Idle)
    );
    assert_eq!(
        decide_user(&p, 1300.0, &facts, 0, NOW),
        Err(KeepReason::Kept(KeepKind::Active))
    );
}

#[test]
fn labels_are_stable() {
    assert_eq!(KeepReason::Pending("spawn".into()).label(), "pending");
    assert_eq!(KeepReason::ServersAlive(2).label(), "servers-alive");
    assert_eq!(CullReason::MaxAge.to_string(), "max-age");
}

#[test]
fn a_profile_s_limit_wins_over_groups_and_the_timeout() {
    let p = Policy {
        group_timeouts: vec![("long".into(), 86400.0)],
        profile_timeouts: vec![("gpu".into(), 900.0)],
        ..Policy::default()
    };
    let groups = p.server_limit(&names(&["long"]));
    assert_eq!(
        p.limit_of_server(Some("gpu"), groups),
        (900.0, LimitFrom::Profile("gpu".into()))
    );
    assert_eq!(
        p.limit_of_server(Some("cpu"), groups),
        (86400.0, LimitFrom::Group)
    );
    assert_eq!(p.limit_of_server(None, 600.0), (600.0, LimitFrom::Timeout));
    // Deleting a user follows its groups, never a server's profile.
    assert_eq!(p.user_limit(&names(&["long"])), 86400.0);
    let model: Server = serde_json::from_str(
        r#"{"ready": true, "url": "/u/", "user_options": {"profile": "gpu", "image": "x"}}"#,
    )
    .unwrap();
    assert_eq!(model.profile(), Some("gpu"));
    for odd in [
        r#"{"user_options": {}}"#,
        r#"{"user_options": null}"#,
        r#"{"user_options": [1]}"#,
        r#"{"user_options": {"profile": 3}}"#,
    ] {
        let model: Server = serde_json::from_str(odd).unwrap();
        assert_eq!(model.profile(), None, "{odd}");
    }
}

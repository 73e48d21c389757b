use super::*;

fn key(user: &str, server: &str) -> ServerKey {
    ServerKey::new(user, server)
}
use crate::signals::tests::work;
use crate::signals::IdleBy;

const LIMIT: f64 = 3600.0;
const WINDOW: f64 = 600.0;

#[test]
fn a_server_is_idle_from_the_later_of_its_start_and_its_last_work() {
    let mut seen = Seen::new(1000.0);
    assert_eq!(seen.idle_for(1500.0), 500.0);
    seen.last_work = 1200.0;
    assert_eq!(seen.idle_for(1500.0), 300.0);
    // Work stamped before the start (a clock off) does not make it idle for longer.
    seen.last_work = 10.0;
    assert_eq!(seen.idle_for(1500.0), 500.0);
    assert_eq!(Seen::new(2000.0).idle_for(1500.0), 0.0);
}

#[test]
fn a_server_is_asked_once_as_it_could_enter_the_window_and_not_again_until_it_could_be_due() {
    let mut seen = Seen::new(0.0);
    let enters = LIMIT - WINDOW;
    assert!(!seen.ask_due(LIMIT, WINDOW, enters - 1.0));
    assert!(seen.ask_due(LIMIT, WINDOW, enters));
    // Asked, and no work since: not asked again in the window, by the work it last showed.
    seen.asked_at = enters;
    assert!(!seen.ask_due(LIMIT, WINDOW, enters + 1.0));
    assert!(!seen.ask_due(LIMIT, WINDOW, LIMIT + 5000.0));
    // Work seen moves the next question a whole limit on.
    seen.last_work = enters;
    assert!(!seen.ask_due(LIMIT, WINDOW, 2.0 * enters - 1.0));
    assert!(seen.ask_due(LIMIT, WINDOW, 2.0 * enters));
    // Without warnings, it is asked when it could be due.
    assert!(!Seen::new(0.0).ask_due(LIMIT, 0.0, LIMIT - 1.0));
    assert!(Seen::new(0.0).ask_due(LIMIT, 0.0, LIMIT));
}

#[test]
fn work_is_now_while_a_kernel_executes_or_the_cpu_is_busy_else_its_last_stamp() {
    let rules = WorkRules {
        idle_by: IdleBy::Work,
        keep_cpu_above: 50.0,
        ..WorkRules::default()
    };
    assert_eq!(work_at(&rules, &work(1, 0, 0), 900.0), Some(900.0));
    let mut stamped = work(0, 1, 0);
    assert_eq!(work_at(&rules, &stamped, 900.0), None);
    stamped.last_work = Some(800.0);
    assert_eq!(work_at(&rules, &stamped, 900.0), Some(800.0));
    // A stamp from a clock ahead of ours is now, not later.
    stamped.last_work = Some(950.0);
    assert_eq!(work_at(&rules, &stamped, 900.0), Some(900.0));
    stamped.last_work = Some(800.0);
    stamped.cpu_percent = Some(90.0);
    assert_eq!(work_at(&rules, &stamped, 900.0), Some(900.0));
    let no_cpu_rule = WorkRules {
        keep_cpu_above: 0.0,
        ..rules
    };
    assert_eq!(work_at(&no_cpu_rule, &stamped, 900.0), Some(800.0));
}

#[test]
fn the_ledger_keeps_the_latest_work_and_starts_anew_with_a_restarted_server() {
    let mut ledger = WorkLedger::default();
    ledger.begin_pass();
    assert_eq!(ledger.seen(&key("a", ""), 100.0).last_work, 100.0);
    ledger.record(&key("a", ""), 100.0, Some(500.0), 600.0);
    // An older stamp read later does not move the work back.
    let seen = ledger.record(&key("a", ""), 100.0, Some(300.0), 700.0);
    assert_eq!((seen.last_work, seen.asked_at), (500.0, 700.0));
    assert_eq!(
        ledger.record(&key("a", ""), 100.0, None, 800.0).last_work,
        500.0
    );
    // Started again: what was seen of the old server is forgotten.
    let seen = ledger.seen(&key("a", ""), 900.0);
    assert_eq!((seen.last_work, seen.asked_at), (900.0, f64::NEG_INFINITY));
    ledger.seen(&key("b", ""), 100.0);
    ledger.end_pass(true);
    ledger.begin_pass();
    ledger.seen(&key("a", ""), 900.0);
    // An incomplete pass forgets nothing.
    ledger.end_pass(false);
    assert_eq!(ledger.len(), 2);
    ledger.begin_pass();
    ledger.seen(&key("a", ""), 900.0);
    ledger.end_pass(true);
    assert_eq!(ledger.len(), 1);
    assert!(ledger.get(&key("b", "")).is_none());
}

#[test]
fn the_ledger_survives_a_restart_in_the_state_file() {
    let dir = std::env::temp_dir().join(format!("cull-idle-ledger-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("state.sqlite");
    let path = path.to_str().unwrap();
    {
        let db = StateDb::open(path).unwrap();
        let mut ledger = WorkLedger::default();
        ledger.load(&db).unwrap();
        ledger.begin_pass();
        ledger.record(&key("a", ""), 100.0, Some(500.0), 600.0);
        ledger.seen(&key("gone", ""), 100.0);
        ledger.end_pass(true);
        ledger.save(&db).unwrap();
        ledger.begin_pass();
        ledger.seen(&key("a", ""), 100.0);
        ledger.end_pass(true);
        ledger.save(&db).unwrap();
    }
    let db = StateDb::open(path).unwrap();
    let mut ledger = WorkLedger::default();
    ledger.load(&db).unwrap();
    assert_eq!(
        ledger.get(&key("a", "")),
        Some(Seen {
            started: 100.0,
            last_work: 500.0,
            asked_at: 600.0
        })
    );
    assert!(ledger.get(&key("gone", "")).is_none());
    drop(db);
    std::fs::remove_dir_all(&dir).unwrap();
}

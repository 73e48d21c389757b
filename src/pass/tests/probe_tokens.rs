//! What a probe carries to a server: a token of the server's own user for that server alone,
//! made once while it runs and deleted once it stops.

use super::*;

/// Every server is busy; records the token each base was asked with.
#[derive(Default)]
struct Recorder(Mutex<Vec<(String, String)>>);

impl WorkProbe for Recorder {
    fn probe<'a>(
        &'a self,
        base: &'a str,
        token: &'a ApiToken,
        _questions: crate::probe::Questions,
    ) -> BoxFuture<'a, Result<ServerWork, HttpError>> {
        self.0
            .lock()
            .unwrap()
            .push((base.to_owned(), token.secret().to_owned()));
        Box::pin(async {
            Ok(ServerWork {
                kernels: 1,
                busy_kernels: 1,
                ..ServerWork::default()
            })
        })
    }
}

fn pass(hub: &MemoryHub, probe: &Recorder, tokens: &ProbeTokens) -> PassReport {
    let (memory, ledger) = (Mutex::default(), Mutex::default());
    let probes = Probes {
        client: probe,
        tokens,
        memory: &memory,
        ledger: &ledger,
        store: None,
    };
    let settings = options(r#"{"keep_busy_kernels": true}"#).settings(NOW, None);
    block_on(run_pass(
        hub,
        &settings,
        Hooks::default(),
        Some(&probes),
        None,
        None,
    ))
}

/// The secret the Hub made for `user`'s `server`, with what was asked for it.
fn made_for(hub: &MemoryHub, user: &str, server: &str) -> Option<(String, TokenRequest)> {
    let scope = format!("access:servers!server={user}/{server}");
    let tokens = hub.tokens.lock().unwrap();
    let mut found = tokens
        .live
        .iter()
        .filter(|(owner, _, _, request)| owner == user && request.scopes.contains(&scope));
    let first = found
        .next()
        .map(|(_, _, secret, r)| (secret.clone(), r.clone()));
    assert!(found.next().is_none(), "one token per server");
    first
}

#[test]
fn a_probe_carries_a_token_of_the_server_s_own_user_for_that_server_alone() {
    let hub = MemoryHub::with(vec![
        user(
            "alice",
            &[("", 900.0, Answer::Stop), ("gpu", 900.0, Answer::Stop)],
        ),
        user("bob", &[("", 900.0, Answer::Stop)]),
    ]);
    let (probe, tokens) = (Recorder::default(), ProbeTokens::default());
    let report = pass(&hub, &probe, &tokens);
    assert!(
        report.complete && report.actions.is_empty(),
        "all kept busy"
    );
    let asked = probe.0.lock().unwrap().clone();
    assert_eq!(asked.len(), 3, "{asked:?}");
    for (user, server) in [("alice", ""), ("alice", "gpu"), ("bob", "")] {
        let (secret, request) = made_for(&hub, user, server).expect("a token for each server");
        assert_eq!(
            request.scopes,
            [format!("access:servers!server={user}/{server}")],
            "that server alone"
        );
        assert!(
            request.note.starts_with("Server at "),
            "not the user's activity"
        );
        assert_eq!(request.expires_in, Some(86_400));
        let base = match server {
            "" => format!("http://hub/user/{user}/"),
            _ => format!("http://hub/user/{user}/{server}/"),
        };
        assert!(
            asked.contains(&(base.clone(), secret)),
            "{base} asked with its own token: {asked:?}"
        );
    }

    // Reused while the servers run: no new token.
    pass(&hub, &probe, &tokens);
    assert_eq!(hub.tokens.lock().unwrap().made, 3);
    assert_eq!(probe.0.lock().unwrap().len(), 6);

    // bob's server stops: a complete pass that does not list it deletes its token.
    hub.users.lock().unwrap()[1].servers.clear();
    pass(&hub, &probe, &tokens);
    assert!(
        made_for(&hub, "bob", "").is_none(),
        "bob's token is deleted"
    );
    assert!(made_for(&hub, "alice", "gpu").is_some());
    assert_eq!(tokens.len(), 2);
}

#[test]
fn an_incomplete_pass_deletes_no_token() {
    let mut hub = MemoryHub::with(vec![user("alice", &[("", 900.0, Answer::Stop)])]);
    let (probe, tokens) = (Recorder::default(), ProbeTokens::default());
    pass(&hub, &probe, &tokens);
    hub.down = true;
    let report = pass(&hub, &probe, &tokens);
    assert!(!report.complete);
    assert!(made_for(&hub, "alice", "").is_some(), "not seen stopped");
    assert_eq!(tokens.len(), 1);
}

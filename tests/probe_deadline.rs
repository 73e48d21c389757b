//! A probe against servers that their users run, who may make them misbehave on purpose: an
//! endless `503` with `Retry-After`, a body trickled a byte at a time, a connection held open.
//! Each costs at most one probe deadline, many of them together too, and a probe sends the
//! token it is given and no other.

mod stub;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use _core::http::{ApiToken, ErrorKind, Retry};
use _core::probe::{ProbeClient, ProbeSettings, Questions, WorkProbe};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use stub::read_head;

#[derive(Clone, Copy)]
enum Server {
    /// 503 with `Retry-After: 30`, to every request.
    Unavailable,
    /// 200 with a body of 100 bytes, one a second.
    Trickle,
    /// Reads the request and never answers.
    Hold,
    /// jupyter_server without the sensor: no kernels.
    Honest,
}

type Heads = Arc<Mutex<Vec<String>>>;

async fn serve(kind: Server) -> (String, Heads) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/user/bob/", listener.local_addr().unwrap());
    let heads: Heads = Arc::default();
    let seen = Arc::clone(&heads);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(answer(stream, kind, Arc::clone(&seen)));
        }
    });
    (base, heads)
}

async fn answer(mut stream: TcpStream, kind: Server, seen: Heads) {
    loop {
        let head = read_head(&mut stream).await;
        if head.is_empty() {
            return;
        }
        let reply = match kind {
            Server::Unavailable => {
                "HTTP/1.1 503 Service Unavailable\r\nretry-after: 30\r\ncontent-length: 0\r\n\r\n"
            }
            Server::Honest if head.contains("cull-idle/work") => {
                "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\n\r\n"
            }
            Server::Honest => {
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\n\r\n[]"
            }
            Server::Trickle => {
                let _ = stream
                    .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n")
                    .await;
                for _ in 0..100 {
                    if stream.write_all(b" ").await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                return;
            }
            Server::Hold => {
                let mut rest = Vec::new();
                let _ = stream.read_to_end(&mut rest).await;
                return;
            }
        };
        seen.lock().unwrap().push(head);
        if stream.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

const DEADLINE: Duration = Duration::from_secs(1);

fn client() -> ProbeClient {
    ProbeClient::new(&ProbeSettings {
        timeout: DEADLINE,
        ca_file: None,
        retry: Retry {
            retries: 3,
            backoff: Duration::from_millis(500),
        },
    })
    .unwrap()
}

const QUESTIONS: Questions = Questions {
    terminals: true,
    cpu: false,
    sensor: true,
    recent_after: 0.0,
};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

#[test]
fn a_misbehaving_server_costs_one_deadline_whatever_it_does() {
    runtime().block_on(async {
        let client = client();
        let token = ApiToken::new("bob-server-token");
        for kind in [Server::Unavailable, Server::Trickle, Server::Hold] {
            let (base, _) = serve(kind).await;
            let began = Instant::now();
            let error = client
                .probe(&base, &token, QUESTIONS)
                .await
                .expect_err("no answer in time");
            // Without one deadline: 3 retries after 30 s each, or 100 s of body, or forever.
            assert!(
                began.elapsed() < DEADLINE * 4,
                "{error} after {:?}",
                began.elapsed()
            );
            assert_eq!(error.kind(), ErrorKind::Timeout, "{error}");
        }
    });
}

#[test]
fn many_servers_that_hold_their_connections_cost_one_deadline_together() {
    runtime().block_on(async {
        let client = client();
        let token = ApiToken::new("t");
        let (base, _) = serve(Server::Hold).await;
        // More than the Hub's concurrency many times over: one at a time, or ten, would take
        // sixty or six deadlines.
        let probes = (0..60).map(|_| client.probe(&base, &token, QUESTIONS));
        let began = Instant::now();
        let results = futures::future::join_all(probes).await;
        assert!(results.iter().all(Result::is_err));
        assert!(began.elapsed() < DEADLINE * 4, "took {:?}", began.elapsed());
    });
}

#[test]
fn a_probe_sends_the_token_it_is_given_and_no_other() {
    runtime().block_on(async {
        let client = client();
        let (base, heads) = serve(Server::Honest).await;
        let work = client
            .probe(&base, &ApiToken::new("bob-server-token"), QUESTIONS)
            .await
            .unwrap();
        assert_eq!(work.kernels, 0);
        let heads = heads.lock().unwrap().clone();
        assert!(heads.len() >= 2, "the sensor, then the kernels: {heads:?}");
        for head in heads {
            let auth: Vec<_> = head
                .lines()
                .filter(|l| l.to_ascii_lowercase().starts_with("authorization:"))
                .collect();
            assert_eq!(auth, ["authorization: token bob-server-token"], "{head}");
        }
    });
}

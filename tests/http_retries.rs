//! The HTTP layer every client shares (`src/http.rs`) against a local stub that misbehaves on
//! cue: error statuses, `Retry-After`, a hung and a reset connection, a reply too large to
//! buffer. The passes' handling of a misbehaving Hub is tested in `tests/test_faults.py`.

mod stub;

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use _core::http::{client_builder, ApiToken, Call, ClientShape, HttpClient, Peer, Retry};
use reqwest::Method;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use stub::read_head;
use tokio::sync::Semaphore;

/// What the stub does with the next request.
enum Cue {
    Answer(&'static str),
    /// Read the request, then say nothing until the client gives up.
    Hang,
    /// Close the connection without a word.
    Reset,
    /// Announce 2 GB, and send bytes for as long as the client reads.
    Huge,
}

/// What the stub saw of each request: when it came, and its head.
type Seen = Arc<Mutex<Vec<(Instant, String)>>>;

async fn stub(cues: Vec<Cue>) -> (String, Seen) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hub/api/users", listener.local_addr().unwrap());
    let seen: Seen = Arc::default();
    let log = Arc::clone(&seen);
    let mut cues: VecDeque<Cue> = cues.into();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            let head = read_head(&mut stream).await;
            log.lock().unwrap().push((Instant::now(), head));
            match cues.pop_front() {
                Some(Cue::Answer(reply)) => {
                    let _ = stream.write_all(reply.as_bytes()).await;
                    // Open until the client is done: it decides when the answer has ended.
                    tokio::spawn(hold(stream));
                }
                Some(Cue::Hang) => {
                    tokio::spawn(hold(stream));
                }
                Some(Cue::Huge) => {
                    tokio::spawn(async move {
                        let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2147483648\r\n\r\n";
                        let _ = stream.write_all(head.as_bytes()).await;
                        let chunk = vec![b' '; 64 << 10];
                        while stream.write_all(&chunk).await.is_ok() {}
                    });
                }
                Some(Cue::Reset) | None => drop(stream),
            }
        }
    });
    (url, seen)
}

async fn hold(mut stream: TcpStream) {
    let mut rest = Vec::new();
    let _ = stream.read_to_end(&mut rest).await;
}

fn client(timeout: Duration) -> HttpClient {
    let token = ApiToken::new("the-token");
    HttpClient::new(
        client_builder(&token, timeout).unwrap(),
        ClientShape {
            peer: Peer::Hub,
            limiter: Arc::new(Semaphore::new(4)),
            timeout,
            retry: Retry {
                retries: 3,
                backoff: Duration::from_millis(1),
            },
            max_body: 1 << 20,
            log_target: "cull_idle",
            retry_level: log::Level::Warn,
        },
    )
    .unwrap()
}

fn get(url: &str) -> Call<'_> {
    Call {
        method: Method::GET,
        url: url.to_owned(),
        shown: "/users",
        accept: None,
        json_body: None,
        form_body: None,
        as_user: None,
    }
}

const OK: &str = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 2\r\nconnection: close\r\n\r\n[]";

#[tokio::test]
async fn server_errors_are_retried_then_succeed_and_counted() {
    let (url, seen) = stub(vec![
        Cue::Answer("HTTP/1.1 500 Internal Server Error\r\ncontent-length: 4\r\nconnection: close\r\n\r\noops"),
        Cue::Answer("HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: 18\r\nconnection: close\r\n\r\n{\"message\":\"busy\"}"),
        Cue::Answer(OK),
    ])
    .await;
    let http = client(Duration::from_secs(30));
    let reply = http.send(&get(&url)).await.unwrap();
    assert_eq!(
        (reply.status.as_u16(), reply.body.as_slice()),
        (200, &b"[]"[..])
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
    let failures = http.take_failures();
    assert_eq!(failures.get("500"), Some(&1));
    assert_eq!(failures.get("503"), Some(&1));
}

#[tokio::test]
async fn a_client_error_is_not_retried_but_left_to_the_caller() {
    let (url, seen) = stub(vec![Cue::Answer(
        "HTTP/1.1 404 Not Found\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
    )])
    .await;
    let http = client(Duration::from_secs(30));
    // A 404 to a stop means "already gone": the caller says what it means.
    let reply = http.send(&get(&url)).await.unwrap();
    assert_eq!(reply.status.as_u16(), 404);
    assert_eq!(seen.lock().unwrap().len(), 1);
    assert_eq!(http.take_failures().get("404"), Some(&1));
}

#[tokio::test]
async fn retry_after_is_honoured() {
    let (url, seen) = stub(vec![
        Cue::Answer("HTTP/1.1 429 Too Many Requests\r\nretry-after: 1\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"),
        Cue::Answer(OK),
    ])
    .await;
    client(Duration::from_secs(30))
        .send(&get(&url))
        .await
        .unwrap();
    let seen = seen.lock().unwrap();
    // The backoff alone is a millisecond: the second try waited because the Hub said so.
    assert!(seen[1].0 - seen[0].0 >= Duration::from_secs(1));
}

#[tokio::test]
async fn hung_and_reset_connections_are_retried() {
    let (url, seen) = stub(vec![Cue::Hang, Cue::Reset, Cue::Answer(OK)]).await;
    let http = client(Duration::from_millis(500));
    let reply = http.send(&get(&url)).await.unwrap();
    assert_eq!(reply.status.as_u16(), 200);
    assert_eq!(seen.lock().unwrap().len(), 3);
    let failures = http.take_failures();
    assert_eq!(failures.get("timeout"), Some(&1), "{failures:?}");
}

#[tokio::test]
async fn a_reply_larger_than_the_cap_is_refused_unread_and_not_retried() {
    let (url, seen) = stub(vec![Cue::Huge]).await;
    let error = client(Duration::from_secs(30))
        .send(&get(&url))
        .await
        .err()
        .expect("too large");
    assert!(error.to_string().contains("larger than"), "{error}");
    assert_eq!(seen.lock().unwrap().len(), 1);
}

#[tokio::test]
async fn requests_carry_the_token_and_never_a_proxy() {
    let (url, seen) = stub(vec![Cue::Answer(OK)]).await;
    client(Duration::from_secs(30))
        .send(&get(&url))
        .await
        .unwrap();
    let head = seen.lock().unwrap()[0].1.to_ascii_lowercase();
    assert!(head.starts_with("get /hub/api/users http/1.1"), "{head}");
    assert!(head.contains("authorization: token the-token"), "{head}");
    assert!(head.contains("accept: application/json"), "{head}");
}

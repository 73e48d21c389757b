//! What the integration tests' local HTTP stubs share.

use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;

/// A request's head, read byte by byte up to its blank line (empty once the peer has closed).
pub async fn read_head(stream: &mut TcpStream) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read_exact(&mut byte).await.is_ok() {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

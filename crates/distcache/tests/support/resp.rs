//! One RESP command and its reply, over plain TCP or TLS.

use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Sends `words` as one RESP array and returns the whole first reply as
/// text (one read: the replies the tests expect fit in one segment).
pub async fn command<S: AsyncRead + AsyncWrite + Unpin>(stream: &mut S, words: &[&str]) -> String {
    let mut wire = format!("*{}\r\n", words.len()).into_bytes();
    for word in words {
        wire.extend(format!("${}\r\n{word}\r\n", word.len()).into_bytes());
    }
    stream.write_all(&wire).await.expect("write");
    stream.flush().await.expect("flush");
    let mut buffer = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(10), stream.read(&mut buffer))
        .await
        .expect("a reply within 10 s")
        .expect("read");
    String::from_utf8_lossy(&buffer[..read]).into_owned()
}

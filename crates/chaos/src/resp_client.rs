//! A minimal RESP2 client: one command at a time on one connection, replies
//! read with bounds (this is a test client, not a general one).

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

/// Largest bulk reply accepted.
const BULK_BYTES_MAX: usize = 16 << 20;
/// Longest simple line accepted.
const LINE_BYTES_MAX: usize = 64 << 10;

/// A reply this client understands.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RespReply {
    Simple(String),
    Error(String),
    Integer(i64),
    /// `None`: the null bulk string.
    Bulk(Option<Vec<u8>>),
}

#[derive(Debug, thiserror::Error)]
pub enum RespError {
    /// Nothing reached the server.
    #[error("{0}")]
    NotSent(String),
    /// Sent, but no (readable) reply: the command may have applied.
    #[error("no reply: {0}")]
    NoReply(String),
}

pub struct RespClient {
    stream: BufReader<TcpStream>,
}

impl RespClient {
    pub async fn connect(addr: &str, timeout: Duration) -> Result<RespClient, String> {
        let stream = tokio::time::timeout(timeout, TcpStream::connect(addr))
            .await
            .map_err(|_| format!("connect timed out after {timeout:?}"))?
            .map_err(|error| error.to_string())?;
        stream
            .set_nodelay(true)
            .map_err(|error| error.to_string())?;
        Ok(RespClient {
            stream: BufReader::new(stream),
        })
    }

    /// Sends one command and reads its reply. The caller bounds the time.
    pub async fn call(&mut self, args: &[&[u8]]) -> Result<RespReply, RespError> {
        let mut request = format!("*{}\r\n", args.len()).into_bytes();
        for arg in args {
            request.extend_from_slice(format!("${}\r\n", arg.len()).as_bytes());
            request.extend_from_slice(arg);
            request.extend_from_slice(b"\r\n");
        }
        self.stream
            .get_mut()
            .write_all(&request)
            .await
            .map_err(|error| RespError::NoReply(format!("write: {error}")))?;
        self.read_reply()
            .await
            .map_err(|error| RespError::NoReply(error.to_string()))
    }

    async fn read_line(&mut self) -> std::io::Result<String> {
        let mut line = Vec::new();
        let mut limited = (&mut self.stream).take(LINE_BYTES_MAX as u64);
        limited.read_until(b'\n', &mut line).await?;
        if !line.ends_with(b"\r\n") {
            return Err(std::io::Error::other("truncated or overlong line"));
        }
        line.truncate(line.len() - 2);
        String::from_utf8(line).map_err(|_| std::io::Error::other("line is not UTF-8"))
    }

    async fn read_reply(&mut self) -> std::io::Result<RespReply> {
        let line = self.read_line().await?;
        let (kind, rest) = line.split_at(line.len().min(1));
        match kind {
            "+" => Ok(RespReply::Simple(rest.to_string())),
            "-" => Ok(RespReply::Error(rest.to_string())),
            ":" => rest
                .parse()
                .map(RespReply::Integer)
                .map_err(|_| std::io::Error::other(format!("bad integer {rest:?}"))),
            "$" => {
                let length: i64 = rest
                    .parse()
                    .map_err(|_| std::io::Error::other(format!("bad length {rest:?}")))?;
                if length < 0 {
                    return Ok(RespReply::Bulk(None));
                }
                let length = usize::try_from(length).unwrap_or(usize::MAX);
                if length > BULK_BYTES_MAX {
                    return Err(std::io::Error::other(format!("bulk of {length} bytes")));
                }
                let mut value = vec![0; length + 2];
                self.stream.read_exact(&mut value).await?;
                value.truncate(length);
                Ok(RespReply::Bulk(Some(value)))
            }
            _ => Err(std::io::Error::other(format!("unexpected reply {line:?}"))),
        }
    }
}

//! Just enough HTTP/1.1: reading a request (headers, `content-length` or chunked body,
//! bounded), writing a JSON response, and waiting that notices a client hanging up.

use std::io;
use std::time::Duration;

use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

/// Limits that keep a broken client from making the mock allocate without end.
const MAX_HEADER_BYTES: usize = 256 * 1024;
const MAX_BODY_BYTES: usize = 256 * 1024 * 1024;

pub(crate) struct RawRequest {
    pub(crate) method: String,
    pub(crate) target: String,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) body: Vec<u8>,
}

impl RawRequest {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn wants_close(&self) -> bool {
        self.header("connection")
            .is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

fn bad_data(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_string())
}

/// Reads one CRLF (or LF) terminated line, bounded by `budget`.
async fn read_line<R: AsyncBufRead + Unpin>(r: &mut R, budget: &mut usize) -> io::Result<String> {
    let mut buf = Vec::new();
    let n = (&mut *r)
        .take((*budget as u64).saturating_add(1))
        .read_until(b'\n', &mut buf)
        .await?;
    if n > *budget {
        return Err(bad_data("header too large"));
    }
    *budget -= n;
    if n == 0 {
        return Err(io::ErrorKind::UnexpectedEof.into());
    }
    while buf.last().is_some_and(|b| *b == b'\n' || *b == b'\r') {
        buf.pop();
    }
    String::from_utf8(buf).map_err(|_| bad_data("non-UTF-8 header"))
}

/// Reads one request; `Ok(None)` on a clean EOF before its first byte.
pub(crate) async fn read_request<R: AsyncBufRead + Unpin>(
    r: &mut R,
) -> io::Result<Option<RawRequest>> {
    // Skip stray blank lines between keep-alive requests (allowed by RFC 9112).
    let request_line = loop {
        if r.fill_buf().await?.is_empty() {
            return Ok(None);
        }
        let mut budget = MAX_HEADER_BYTES;
        let line = read_line(r, &mut budget).await?;
        if !line.is_empty() {
            break line;
        }
    };
    let mut parts = request_line.split_whitespace();
    let (Some(method), Some(target)) = (parts.next(), parts.next()) else {
        return Err(bad_data("bad request line"));
    };
    let (method, target) = (method.to_string(), target.to_string());

    let mut budget = MAX_HEADER_BYTES;
    let mut headers = Vec::new();
    loop {
        let line = read_line(r, &mut budget).await?;
        if line.is_empty() {
            break;
        }
        if let Some((k, v)) = line.split_once(':') {
            headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
        }
    }
    let mut req = RawRequest {
        method,
        target,
        headers,
        body: Vec::new(),
    };

    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.to_ascii_lowercase().contains("chunked"));
    if chunked {
        req.body = read_chunked_body(r).await?;
    } else if let Some(len) = req.header("content-length") {
        let len: usize = len.parse().map_err(|_| bad_data("bad content-length"))?;
        if len > MAX_BODY_BYTES {
            return Err(bad_data("body too large"));
        }
        let mut body = vec![0; len];
        r.read_exact(&mut body).await?;
        req.body = body;
    }
    Ok(Some(req))
}

async fn read_chunked_body<R: AsyncBufRead + Unpin>(r: &mut R) -> io::Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let mut budget = MAX_HEADER_BYTES;
        let size_line = read_line(r, &mut budget).await?;
        let size_hex = size_line.split(';').next().unwrap_or("").trim();
        let size = usize::from_str_radix(size_hex, 16).map_err(|_| bad_data("bad chunk size"))?;
        if size == 0 {
            // Trailer fields until the blank line.
            while !read_line(r, &mut budget).await?.is_empty() {}
            return Ok(body);
        }
        if body.len() + size > MAX_BODY_BYTES {
            return Err(bad_data("body too large"));
        }
        let start = body.len();
        body.resize(start + size, 0);
        r.read_exact(&mut body[start..]).await?;
        let mut crlf_budget = 2;
        read_line(r, &mut crlf_budget).await?;
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        413 => "Payload Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        503 => "Service Unavailable",
        529 => "Overloaded",
        _ => "Status",
    }
}

pub(crate) async fn write_json(
    w: &mut OwnedWriteHalf,
    status: u16,
    request_id: &str,
    body: &str,
    head_only: bool,
) -> io::Result<()> {
    let mut out = format!(
        "HTTP/1.1 {status} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\
         request-id: {request_id}\r\nconnection: keep-alive\r\n\r\n",
        reason_phrase(status),
        body.len()
    );
    if !head_only {
        out.push_str(body);
    }
    w.write_all(out.as_bytes()).await?;
    w.flush().await
}

/// Sleeps `d`, but fails early when the client closes the connection, so an
/// abandoned slow stream is noticed (and counted) at once rather than at the
/// next failing write.
pub(crate) async fn pause(r: &mut BufReader<OwnedReadHalf>, d: Duration) -> io::Result<()> {
    let deadline = tokio::time::Instant::now() + d;
    tokio::select! {
        _ = tokio::time::sleep_until(deadline) => Ok(()),
        filled = r.fill_buf() => match filled {
            Ok([]) => Err(io::ErrorKind::ConnectionAborted.into()),
            // A pipelined next request: leave it buffered and finish the wait.
            Ok(_) => {
                tokio::time::sleep_until(deadline).await;
                Ok(())
            }
            Err(e) => Err(e),
        },
    }
}

//! A reply as the real API streams it: server-sent events in HTTP chunks (`message_start`,
//! `ping`, per block `content_block_start`/`_delta`/`_stop`, `message_delta`,
//! `message_stop`), deltas of a slow block spaced out.

use std::io;

use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::http::pause;
use crate::reply::{Block, Reply, jstr, obj, split_chars};

/// Writes one SSE event as one HTTP chunk, flushed at once.
async fn write_event(w: &mut OwnedWriteHalf, event: &str, data: &str) -> io::Result<()> {
    let payload = format!("event: {event}\ndata: {data}\n\n");
    let chunk = format!("{:x}\r\n{payload}\r\n", payload.len());
    w.write_all(chunk.as_bytes()).await?;
    w.flush().await
}

/// Writes a whole SSE response of `events` (`event:` line when named, then `data:`), each
/// event one HTTP chunk: the answers of a host model that is not Claude Code.
pub(crate) async fn write_sse_events(
    w: &mut OwnedWriteHalf,
    request_id: &str,
    events: &[(Option<&str>, serde_json::Value)],
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
         cache-control: no-cache\r\ntransfer-encoding: chunked\r\nrequest-id: {request_id}\r\n\
         connection: keep-alive\r\n\r\n"
    );
    w.write_all(head.as_bytes()).await?;
    for (name, data) in events {
        let payload = match name {
            Some(name) => format!("event: {name}\ndata: {data}\n\n"),
            None => format!("data: {data}\n\n"),
        };
        let chunk = format!("{:x}\r\n{payload}\r\n", payload.len());
        w.write_all(chunk.as_bytes()).await?;
    }
    w.write_all(b"0\r\n\r\n").await?;
    w.flush().await
}

/// `{"type":<event>,"index":<index>,<key>:<value>}` for the content_block_* events.
fn block_event(event: &str, index: usize, key: &str, value: String) -> String {
    obj(&[
        ("type", jstr(event)),
        ("index", index.to_string()),
        (key, value),
    ])
}

pub(crate) async fn write_sse(
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
    request_id: &str,
    message_id: &str,
    model: &str,
    reply: &Reply,
) -> io::Result<()> {
    let head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n\
         cache-control: no-cache\r\ntransfer-encoding: chunked\r\nrequest-id: {request_id}\r\n\
         connection: keep-alive\r\n\r\n"
    );
    w.write_all(head.as_bytes()).await?;

    let message = reply.message_json(message_id, model, "[]", false);
    let start = obj(&[("type", jstr("message_start")), ("message", message)]);
    write_event(w, "message_start", &start).await?;
    write_event(w, "ping", &obj(&[("type", jstr("ping"))])).await?;

    for (index, block) in reply.blocks.iter().enumerate() {
        write_block(r, w, index, block).await?;
    }

    let delta = obj(&[
        ("type", jstr("message_delta")),
        (
            "delta",
            obj(&[
                ("stop_reason", jstr(reply.stop_reason)),
                ("stop_sequence", "null".to_string()),
            ]),
        ),
        (
            "usage",
            obj(&[("output_tokens", reply.output_tokens.to_string())]),
        ),
    ]);
    write_event(w, "message_delta", &delta).await?;
    write_event(w, "message_stop", &obj(&[("type", jstr("message_stop"))])).await?;
    // Last chunk: end of this response body; the connection stays open.
    w.write_all(b"0\r\n\r\n").await?;
    w.flush().await
}

/// One content block: `content_block_start`, its deltas (a slow text block's spaced out),
/// `content_block_stop`.
async fn write_block(
    r: &mut BufReader<OwnedReadHalf>,
    w: &mut OwnedWriteHalf,
    index: usize,
    block: &Block,
) -> io::Result<()> {
    let delta_event = |delta: String| block_event("content_block_delta", index, "delta", delta);
    match block {
        Block::Text { deltas, delay } => {
            let empty = obj(&[("type", jstr("text")), ("text", jstr(""))]);
            let ev = block_event("content_block_start", index, "content_block", empty);
            write_event(w, "content_block_start", &ev).await?;
            for (i, d) in deltas.iter().enumerate() {
                if i > 0 && !delay.is_zero() {
                    pause(r, *delay).await?;
                }
                let delta = obj(&[("type", jstr("text_delta")), ("text", jstr(d))]);
                write_event(w, "content_block_delta", &delta_event(delta)).await?;
            }
        }
        Block::ToolUse { id, name, input } => {
            let start = obj(&[
                ("type", jstr("tool_use")),
                ("id", jstr(id)),
                ("name", jstr(name)),
                ("input", "{}".to_string()),
            ]);
            let ev = block_event("content_block_start", index, "content_block", start);
            write_event(w, "content_block_start", &ev).await?;
            // The real API opens tool input with an empty partial_json.
            let mut pieces = vec![String::new()];
            pieces.extend(split_chars(&input.to_string(), 24));
            for p in pieces {
                let delta = obj(&[
                    ("type", jstr("input_json_delta")),
                    ("partial_json", jstr(&p)),
                ]);
                write_event(w, "content_block_delta", &delta_event(delta)).await?;
            }
        }
    }
    let stop = obj(&[
        ("type", jstr("content_block_stop")),
        ("index", index.to_string()),
    ]);
    write_event(w, "content_block_stop", &stop).await
}

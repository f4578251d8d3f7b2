//! A turn's messages as notification lines for the [`Outbox`], both surfaces' raw stream.
//!
//! Each message becomes one line (`ask/event` on the plain surface, the opt-in raw event
//! on MCP) with the child's text spliced in as it came. Lines are gathered into batches
//! while more messages are waiting, and a few batches may be on their way to stdout at
//! once, so writing does not wait for the client line by line; past that the sender
//! waits, the turn's channel fills, and the actor stops reading the child: a slow client
//! slows the child down, and memory stays bounded by these buffers.

use std::collections::VecDeque;
use std::pin::Pin;

#[cfg(doc)]
use crate::api::AskEventParams;
use crate::api::RequestId;
use crate::outbox::{Outbox, OutboxError};
use crate::supervisor::TurnMessage;

/// Bytes of lines gathered before they are handed to the outbox.
const BATCH_BYTES: usize = 64 * 1024;
/// Room a batch is given past [`BATCH_BYTES`], for the line that crosses it.
const BATCH_SLACK: usize = 4 * 1024;
/// Batches queued in the outbox and not yet written, before the sender waits.
const IN_FLIGHT: usize = 8;

type Written = Pin<Box<dyn Future<Output = Result<(), OutboxError>> + Send>>;

/// Writes one ask's messages as [`AskEventParams`] objects, field by field so the
/// child's text goes in as it is (a test holds them to what serde makes of the type):
/// the params of the notification lines below, and the items of a WebSocket client's
/// `ask/subscribe` ([`crate::plain`]).
pub(crate) struct EventParams {
    /// The start of every params object of this ask, up to the `seq` value.
    prefix: Vec<u8>,
}

impl EventParams {
    /// Params about the request `request_id` (as the client wrote it), in `session`.
    pub(crate) fn new(request_id: &RequestId, session: &str) -> EventParams {
        EventParams::of_turn(request_id, None, session)
    }

    /// [`EventParams::new`] naming a background turn's handle (`turnId`) too.
    pub(crate) fn of_turn(
        request_id: &RequestId,
        turn_id: Option<&str>,
        session: &str,
    ) -> EventParams {
        let mut prefix = br#"{"requestId":"#.to_vec();
        prefix.extend_from_slice(request_id.as_json().as_bytes());
        if let Some(turn_id) = turn_id {
            prefix.extend_from_slice(br#","turnId":"#);
            json_string(&mut prefix, turn_id);
        }
        prefix.extend_from_slice(br#","session":"#);
        json_string(&mut prefix, session);
        prefix.extend_from_slice(br#","seq":"#);
        EventParams { prefix }
    }

    /// Appends the params object of `item` to `out`.
    pub(crate) fn write(&self, out: &mut Vec<u8>, item: &TurnMessage) {
        out.extend_from_slice(&self.prefix);
        // Straight into the buffer: no string per line on the hot path.
        out.extend_from_slice(itoa::Buffer::new().format(item.seq).as_bytes());
        out.extend_from_slice(br#","type":"#);
        json_string(out, &item.message.kind);
        out.extend_from_slice(br#","subtype":"#);
        match &item.message.subtype {
            Some(subtype) => json_string(out, subtype),
            None => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(br#","message":"#);
        out.extend_from_slice(item.message.text().as_bytes());
        out.push(b'}');
    }
}

/// Turns one ask's messages into notification lines.
pub(crate) struct EventLines {
    out: Outbox,
    /// The start of every line, up to its params.
    head: Vec<u8>,
    params: EventParams,
    batch: Vec<u8>,
    in_flight: VecDeque<Written>,
}

impl EventLines {
    /// Lines of `method` about the request `request_id` (as the client wrote it).
    pub(crate) fn new(
        out: Outbox,
        method: &'static str,
        request_id: RequestId,
        session: &str,
    ) -> EventLines {
        let mut head = br#"{"jsonrpc":"2.0","method":"#.to_vec();
        json_string(&mut head, method);
        head.extend_from_slice(br#","params":"#);
        EventLines {
            out,
            head,
            params: EventParams::new(&request_id, session),
            batch: Vec::new(),
            in_flight: VecDeque::new(),
        }
    }

    /// Names a background turn's handle (`turnId`) in every line.
    pub(crate) fn naming_turn(
        mut self,
        request_id: &RequestId,
        turn_id: &str,
        session: &str,
    ) -> Self {
        self.params = EventParams::of_turn(request_id, Some(turn_id), session);
        self
    }

    /// Adds one message's line to the batch: a notification with its [`AskEventParams`].
    pub(crate) fn add(&mut self, item: TurnMessage) {
        let batch = &mut self.batch;
        if batch.capacity() == 0 {
            // Room for a whole batch at once, not grown by doubling line after line.
            batch.reserve(BATCH_BYTES + BATCH_SLACK);
        }
        if !batch.is_empty() {
            batch.push(b'\n');
        }
        batch.extend_from_slice(&self.head);
        self.params.write(batch, &item);
        batch.push(b'}');
    }

    /// Whether the batch has room for more before it should be sent.
    pub(crate) fn wants_more(&self) -> bool {
        self.batch.len() < BATCH_BYTES
    }

    /// Hands the batch to the outbox; waits while too many are not yet written.
    pub(crate) async fn send(&mut self) -> Result<(), OutboxError> {
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            self.in_flight
                .push_back(Box::pin(self.out.push(utf8(batch))));
        }
        while self.in_flight.len() > IN_FLIGHT {
            if let Some(written) = self.in_flight.pop_front() {
                written.await?;
            }
        }
        Ok(())
    }

    /// Queues what is left without waiting for it to be written: for a caller whose
    /// next line goes through the same outbox (the plain `ask`'s response), which keeps
    /// the order, so the lines are out before it whatever the wait.
    pub(crate) fn queue_rest(mut self) {
        if !self.batch.is_empty() {
            let batch = std::mem::take(&mut self.batch);
            drop(self.out.push(utf8(batch)));
        }
    }

    /// Sends what is left and waits until all of it was written.
    pub(crate) async fn finish(&mut self) -> Result<(), OutboxError> {
        self.send().await?;
        while let Some(written) = self.in_flight.pop_front() {
            written.await?;
        }
        Ok(())
    }
}

/// A batch as the outbox's text. serde_json writes UTF-8 only (the child's text was
/// checked when read), so the lossy branch never runs; the check is cheap next to the write.
fn utf8(batch: Vec<u8>) -> String {
    String::from_utf8(batch)
        .unwrap_or_else(|err| String::from_utf8_lossy(err.as_bytes()).into_owned())
}

/// `text` as a JSON string.
fn json_string(out: &mut Vec<u8>, text: &str) {
    // Serialising a string into a `Vec` cannot fail: its `io::Write` never does.
    let _ = serde_json::to_writer(out, text);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AskEventParams;
    use crate::child::protocol::{ChildLine, parse_line};
    use proptest::prelude::*;
    use serde_json::value::RawValue;

    /// The notification as serde writes it from the wire type.
    #[derive(serde::Serialize)]
    struct Notification<'a> {
        jsonrpc: &'static str,
        method: &'static str,
        params: &'a AskEventParams,
    }

    fn message(line: &str) -> crate::child::protocol::ChildMessage {
        match parse_line(line.as_bytes()) {
            ChildLine::Message(message) => message,
            other => panic!("not a message: {other:?}"),
        }
    }

    proptest! {
        #[test]
        fn a_line_is_what_serde_makes_of_the_wire_type(
            id in prop_oneof![
                any::<i64>().prop_map(|n| n.to_string()),
                Just("18446744073709551617".to_string()),
                ".{0,12}".prop_map(|s| serde_json::to_string(&s).unwrap()),
            ],
            seq in any::<u64>(),
            kind in ".{1,12}",
            subtype in proptest::option::of(".{0,12}"),
            text in ".{0,40}",
            turn_id in proptest::option::of(".{0,12}"),
        ) {
            prop_assume!(!matches!(
                kind.as_str(),
                "result" | "control_response" | "control_request" | "keep_alive"
            ));
            let mut object = serde_json::json!({ "type": kind, "text": text, "n": [1, 2.5] });
            if let Some(subtype) = &subtype {
                object["subtype"] = subtype.clone().into();
            }
            let child_line = object.to_string();
            let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();
            let _entered = runtime.enter();
            let (out, _writer) = Outbox::spawn(tokio::io::sink());
            let request_id = RequestId::from_text(&id, &serde_json::Value::Null);
            let mut lines = EventLines::new(out, "ask/event", request_id.clone(), "reviewer-1");
            if let Some(turn_id) = &turn_id {
                lines = lines.naming_turn(&request_id, turn_id, "reviewer-1");
            }
            lines.add(TurnMessage { seq, message: message(&child_line) });
            let expected = serde_json::to_string(&Notification {
                jsonrpc: "2.0",
                method: "ask/event",
                params: &AskEventParams {
                    request_id,
                    turn_id: turn_id.clone(),
                    session: "reviewer-1".into(),
                    seq,
                    kind: kind.clone(),
                    subtype: subtype.clone(),
                    message: RawValue::from_string(child_line.clone()).unwrap(),
                },
            })
            .unwrap();
            prop_assert_eq!(String::from_utf8(lines.batch.clone()).unwrap(), expected);
        }
    }
}

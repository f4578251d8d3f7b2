//! Wire types of every method and notification, shared by all surfaces.
//!
//! Every parameter and result type derives `JsonSchema`; `schemas/` holds the
//! generated schemas and `tests/suite/schemas.rs` fails when they are stale.
//! Field names are camelCase on the wire, as in MCP and the original daemon.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use serde_json::value::{RawValue, to_raw_value};

/// Upper bound for `timeoutMs`: a day. Anything longer is almost certainly a unit mistake.
pub const MAX_TIMEOUT_MS: u64 = 24 * 60 * 60 * 1000;

/// The least budget the CLI can be given: `--max-budget-usd` is written to the
/// millionth of a dollar, and a smaller one would reach it as `0.000000`, which it refuses
/// at start.
pub const MIN_BUDGET_USD: f64 = 0.000_001;

mod ask;
mod events;
mod status;

pub use ask::*;
pub use events::*;
pub use status::*;

/// A JSON-RPC id exactly as the client wrote it, so an integer beyond 64 bits (which a
/// `Value` would turn into the nearest float) comes back in notifications unchanged.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(transparent)]
pub struct RequestId(Box<RawValue>);

impl RequestId {
    /// The id from its JSON text as received; `fallback` if that text is not JSON.
    pub fn from_text(text: &str, fallback: &Value) -> RequestId {
        match RawValue::from_string(text.to_string()) {
            Ok(raw) => RequestId(raw),
            Err(_) => RequestId::from_value(fallback),
        }
    }

    /// The id from a parsed value.
    pub fn from_value(value: &Value) -> RequestId {
        // Serialising a `Value` cannot fail; `null` keeps this total all the same.
        RequestId(to_raw_value(value).unwrap_or_else(|_| RawValue::NULL.to_owned()))
    }

    /// The id's JSON text.
    pub fn as_json(&self) -> &str {
        self.0.get()
    }
}

impl PartialEq for RequestId {
    fn eq(&self, other: &RequestId) -> bool {
        self.as_json() == other.as_json()
    }
}

/// Every published schema: file name in `schemas/` and the JSON Schema of that type.
pub fn schemas() -> Vec<(&'static str, schemars::Schema)> {
    vec![
        ("ask.params.json", schemars::schema_for!(AskParams)),
        ("ask.result.json", schemars::schema_for!(AskResult)),
        (
            "ask-event.notification.json",
            schemars::schema_for!(AskEventParams),
        ),
        ("status.params.json", schemars::schema_for!(StatusParams)),
        ("status.result.json", schemars::schema_for!(StatusResult)),
        ("events.params.json", schemars::schema_for!(EventsParams)),
        ("events.result.json", schemars::schema_for!(EventsResult)),
        ("restart.result.json", schemars::schema_for!(RestartResult)),
        (
            "permission-request.params.json",
            schemars::schema_for!(PermissionRequestParams),
        ),
        (
            "permission-request.result.json",
            schemars::schema_for!(PermissionAnswer),
        ),
        ("stop.result.json", schemars::schema_for!(StopResult)),
        (
            "sessions.result.json",
            schemars::schema_for!(SessionsResult),
        ),
        (
            "close-session.params.json",
            schemars::schema_for!(CloseSessionParams),
        ),
        (
            "close-session.result.json",
            schemars::schema_for!(CloseSessionResult),
        ),
        (
            "ask-subscribe.notification.json",
            schemars::schema_for!(AskSubscriptionItem),
        ),
        ("healthz.result.json", schemars::schema_for!(HealthResult)),
        ("ask-handle.result.json", schemars::schema_for!(TurnHandle)),
        ("wait.params.json", schemars::schema_for!(WaitParams)),
        ("wait.result.json", schemars::schema_for!(WaitResult)),
        ("handle.params.json", schemars::schema_for!(HandleParams)),
        ("cancel.result.json", schemars::schema_for!(CancelResult)),
        ("listen.file.json", schemars::schema_for!(ListenInfo)),
    ]
    .into_iter()
    .chain(events::detail_schemas())
    .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summed_costs_read_as_the_decimals_they_are() {
        assert_eq!(add_usd(0.1, 0.2).to_string(), "0.3");
        let three = [0.00014, 0.00014, 0.00014].into_iter().fold(0.0, add_usd);
        assert_eq!(three.to_string(), "0.00042");
    }

    #[test]
    fn every_event_kind_has_the_detail_schema_of_its_type() {
        // The kinds as serde writes them, read from `EventKind`'s own schema.
        let schema = serde_json::to_value(schemars::schema_for!(EventKind)).unwrap();
        let wire: Vec<&str> = schema["oneOf"]
            .as_array()
            .unwrap()
            .iter()
            .map(|k| k["const"].as_str().unwrap())
            .collect();
        let all: Vec<&str> = EventKind::ALL.iter().map(|k| k.as_str()).collect();
        assert_eq!(wire, all, "EventKind::ALL and as_str vs serde");
        let files: Vec<&str> = detail_schemas().iter().map(|(name, _)| *name).collect();
        let expected: Vec<String> = all
            .iter()
            .map(|kind| format!("event.{kind}.detail.json"))
            .collect();
        assert_eq!(files, expected, "one detail schema per kind");
    }

    #[test]
    fn each_end_of_a_turn_is_the_kind_whose_schema_is_turn_ended() {
        let ended = |end| TurnEnded {
            end: Some(end),
            turn_id: 1,
            ok: true,
            subtype: None,
            terminal_reason: None,
            cost_usd: None,
            duration_ms: 0,
            messages: 0,
            skipped_lines: 0,
            error: None,
        };
        let schemas = detail_schemas();
        let turn_ended = schemars::schema_for!(TurnEnded);
        for end in [
            TurnEnd::Finished,
            TurnEnd::Failed,
            TurnEnd::AbandonedFinished,
        ] {
            let kind = ended(end).kind();
            let name = format!("event.{kind}.detail.json");
            let schema = schemas.iter().find(|(n, _)| *n == name).map(|(_, s)| s);
            assert_eq!(schema, Some(&turn_ended), "{kind}");
            assert_eq!(serde_json::to_value(end).unwrap(), kind.as_str());
        }
    }

    #[test]
    fn a_request_id_keeps_the_text_of_any_number() {
        let big = "18446744073709551617";
        let id = RequestId::from_text(big, &Value::Null);
        assert_eq!(id.as_json(), big);
        let params = AskEventParams {
            request_id: id,
            turn_id: None,
            session: "default".into(),
            seq: 1,
            kind: "assistant".into(),
            subtype: None,
            message: RawValue::from_string(r#"{"type": "assistant"}"#.into()).unwrap(),
        };
        let text = serde_json::to_string(&params).unwrap();
        assert!(
            text.starts_with(r#"{"requestId":18446744073709551617,"#),
            "{text}"
        );
        // The message goes out as the child wrote it, spaces and all.
        assert!(
            text.ends_with(r#""message":{"type": "assistant"}}"#),
            "{text}"
        );
        // Read back from text, the id and the message are the same.
        let back: AskEventParams = serde_json::from_str(&text).unwrap();
        assert_eq!(serde_json::to_string(&back).unwrap(), text);
    }

    #[test]
    fn text_that_is_not_json_falls_back_to_the_parsed_id() {
        let id = RequestId::from_text("not json", &serde_json::json!(7));
        assert_eq!(id.as_json(), "7");
    }
}

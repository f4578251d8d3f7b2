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
    fn every_typed_detail_has_the_schema_file_of_its_kind() {
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
        let kinds = [
            ChildStarted {
                pid: 1,
                program: "claude".into(),
                args: vec![],
                generation: 1,
            }
            .kind(),
            ChildReady {
                pid: 1,
                startup_ms: 0,
                cli_version: None,
                initialize_error: None,
            }
            .kind(),
            ChildExited {
                pid: 1,
                exit_code: None,
                signal: None,
                uptime_ms: 0,
                stderr_tail: vec![],
            }
            .kind(),
            TurnQueued {
                turn_id: 1,
                waiting: 0,
            }
            .kind(),
            TurnStarted {
                turn_id: 1,
                timeout_ms: 1,
                prompt_preview: String::new(),
            }
            .kind(),
            TurnStep {
                turn_id: 1,
                step: String::new(),
            }
            .kind(),
            ended(TurnEnd::Finished).kind(),
            ended(TurnEnd::Failed).kind(),
            ended(TurnEnd::AbandonedFinished).kind(),
            TurnTimedOut {
                turn_id: 1,
                timeout_ms: 1,
            }
            .kind(),
            TurnStalled {
                turn_id: 1,
                silent_ms: 1,
            }
            .kind(),
        ];
        let files: Vec<&str> = detail_schemas().iter().map(|(name, _)| *name).collect();
        let expected: Vec<String> = kinds
            .iter()
            .map(|kind| format!("event.{}.detail.json", kind.as_str()))
            .collect();
        assert_eq!(files, expected);
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

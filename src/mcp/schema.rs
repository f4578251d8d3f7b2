//! Tool schemas from the `api` types, as rmcp generates them (JSON Schema 2020-12), made
//! portable for the validators hosts use (MCP Inspector's `--strict` finds nothing).
//!
//! schemars writes an `Option` field as nullable: `"type": ["string", "null"]`, or an
//! `anyOf` with a `null` branch. Hosts that map tool schemas onto a single-type dialect
//! (Gemini's OpenAPI subset, for one) reject or mangle those. Here such a field becomes
//! optional instead, with the single type; the tool results leave `null` fields out to
//! match (see `render.rs`).
//!
//! schemars marks Rust integer and float widths with `format` values such as `uint64`
//! or `double`. They are legal JSON Schema annotations but no validator knows them, and
//! the TypeScript SDK (under most editor hosts) warns about each one every time it lists
//! the tools. The ranges stay in `minimum`/`maximum`; only these formats are dropped.

use std::sync::Arc;

use rmcp::handler::server::common::schema_for_empty_input;
use rmcp::handler::server::tool::{schema_for_input, schema_for_output};
use rmcp::model::JsonObject;
use schemars::JsonSchema;
use serde_json::Value;

/// `inputSchema` of a tool taking `T`.
pub(super) fn input<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    match schema_for_input::<T>() {
        Ok(schema) => portable(&schema),
        Err(err) => {
            // Only a non-object parameter type gets here; the api types are all objects.
            tracing::error!(%err, "invalid tool input schema");
            schema_for_empty_input()
        }
    }
}

/// `inputSchema` of `ask`: the plain `ask`'s params but `permissions`, `wait` and
/// `partialMessages`, which only the plain surface takes (MCP clients are asked through
/// elicitation, say `background`, and get steps as progress, never partial messages).
pub(super) fn ask_input() -> Arc<JsonObject> {
    let mut schema = (*input::<crate::api::AskParams>()).clone();
    if let Some(Value::Object(properties)) = schema.get_mut("properties") {
        properties.remove("permissions");
        // `background` says the same to MCP clients.
        properties.remove("wait");
        properties.remove("partialMessages");
    }
    // `PermissionRelay` was only used by that field.
    if let Some(Value::Object(defs)) = schema.get_mut("$defs") {
        defs.remove("PermissionRelay");
    }
    Arc::new(schema)
}

/// `outputSchema` of a tool returning `T`.
pub(super) fn output<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    portable(&schema_for_output::<T>())
}

fn portable(schema: &JsonObject) -> Arc<JsonObject> {
    let mut value = Value::Object(schema.clone());
    drop_numeric_formats(&mut value);
    optional_not_nullable(&mut value);
    match value {
        Value::Object(object) => Arc::new(object),
        _ => Arc::new(schema.clone()),
    }
}

fn drop_numeric_formats(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let numeric = object
                .get("format")
                .and_then(Value::as_str)
                .is_some_and(is_numeric_format);
            if numeric {
                object.shift_remove("format");
            }
            object.values_mut().for_each(drop_numeric_formats);
        }
        Value::Array(items) => items.iter_mut().for_each(drop_numeric_formats),
        _ => {}
    }
}

/// Every nullable property of every object schema becomes optional and single-typed.
fn optional_not_nullable(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let mut now_optional = Vec::new();
            if let Some(Value::Object(properties)) = object.get_mut("properties") {
                for (name, property) in properties.iter_mut() {
                    if drop_null_branch(property) {
                        now_optional.push(name.clone());
                    }
                }
            }
            if let Some(Value::Array(required)) = object.get_mut("required") {
                required.retain(|r| {
                    !r.as_str()
                        .is_some_and(|r| now_optional.iter().any(|n| n == r))
                });
            }
            object.values_mut().for_each(optional_not_nullable);
        }
        Value::Array(items) => items.iter_mut().for_each(optional_not_nullable),
        _ => {}
    }
}

/// Takes `null` out of a property's type; returns whether it was there.
fn drop_null_branch(property: &mut Value) -> bool {
    let Value::Object(schema) = property else {
        return false;
    };
    let is_null = |v: &Value| v == "null" || v.get("type").is_some_and(|t| t == "null");
    let mut found = false;
    if let Some(Value::Array(types)) = schema.get_mut("type") {
        found = types.iter().any(is_null);
        types.retain(|t| !is_null(t));
        if let [single] = types.as_slice() {
            let single = single.clone();
            schema.insert("type".to_string(), single);
        }
    }
    if let Some(Value::Array(branches)) = schema.get_mut("anyOf")
        && branches.iter().any(is_null)
    {
        found = true;
        branches.retain(|b| !is_null(b));
        if let [Value::Object(single)] = branches.as_slice() {
            let single = single.clone();
            schema.shift_remove("anyOf");
            for (key, value) in single {
                schema.entry(key).or_insert(value);
            }
        }
    }
    if found && schema.get("default").is_some_and(Value::is_null) {
        schema.shift_remove("default");
    }
    found
}

/// schemars' width formats: `int8`..`int64`, `uint`, `uint8`..`uint64`, `float`, `double`.
fn is_numeric_format(format: &str) -> bool {
    let bits = format
        .strip_prefix("uint")
        .or_else(|| format.strip_prefix("int"));
    bits.is_some_and(|b| b.chars().all(|c| c.is_ascii_digit()))
        || matches!(format, "float" | "double")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::AskParams;
    use crate::mcp::output::{AskReply, StatusReport};

    fn formats(value: &Value, found: &mut Vec<String>) {
        match value {
            Value::Object(object) => {
                if let Some(Value::String(format)) = object.get("format") {
                    found.push(format.clone());
                }
                object.values().for_each(|v| formats(v, found));
            }
            Value::Array(items) => items.iter().for_each(|v| formats(v, found)),
            _ => {}
        }
    }

    #[test]
    fn width_formats_are_dropped_and_ranges_kept() {
        let ask = Value::Object((*input::<AskParams>()).clone());
        assert_eq!(ask["properties"]["timeoutMs"]["minimum"], 1);
        for schema in [
            ask,
            Value::Object((*output::<AskReply>()).clone()),
            Value::Object((*output::<StatusReport>()).clone()),
        ] {
            let mut found = Vec::new();
            formats(&schema, &mut found);
            assert!(found.is_empty(), "formats left: {found:?}");
        }
    }

    #[test]
    fn nullable_fields_become_optional_with_one_type() {
        let mut schema = serde_json::json!({
            "type": "object",
            "properties": {
                "a": {"type": ["string", "null"], "default": null},
                "b": {"anyOf": [{"$ref": "#/$defs/B"}, {"type": "null"}], "description": "b"},
                "c": {"type": "integer"}
            },
            "required": ["a", "b", "c"],
            "$defs": {"B": {"type": "object", "properties": {"d": {"type": ["number", "null"]}},
                            "required": ["d"]}}
        });
        optional_not_nullable(&mut schema);
        assert_eq!(
            schema["properties"]["a"],
            serde_json::json!({"type": "string"})
        );
        assert_eq!(
            schema["properties"]["b"],
            serde_json::json!({"$ref": "#/$defs/B", "description": "b"})
        );
        assert_eq!(schema["required"], serde_json::json!(["c"]));
        assert_eq!(schema["$defs"]["B"]["required"], serde_json::json!([]));
    }

    #[test]
    fn recognises_only_width_formats() {
        for format in [
            "uint", "uint8", "uint64", "int32", "int64", "float", "double",
        ] {
            assert!(is_numeric_format(format), "{format}");
        }
        for format in ["date-time", "uri", "uuid", "email", "integer", "internal"] {
            assert!(!is_numeric_format(format), "{format}");
        }
    }
}

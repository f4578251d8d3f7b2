//! Tool schemas from the `api` types, as rmcp generates them (JSON Schema 2020-12), made
//! portable for the validators hosts use.
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
pub fn input<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    match schema_for_input::<T>() {
        Ok(schema) => portable(&schema),
        Err(err) => {
            // Only a non-object parameter type gets here; the api types are all objects.
            tracing::error!(%err, "invalid tool input schema");
            schema_for_empty_input()
        }
    }
}

/// `outputSchema` of a tool returning `T`.
pub fn output<T: JsonSchema + 'static>() -> Arc<JsonObject> {
    portable(&schema_for_output::<T>())
}

fn portable(schema: &JsonObject) -> Arc<JsonObject> {
    let mut value = Value::Object(schema.clone());
    drop_numeric_formats(&mut value);
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
    use crate::api::{AskParams, AskResult, StatusResult};

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
            Value::Object((*output::<AskResult>()).clone()),
            Value::Object((*output::<StatusResult>()).clone()),
        ] {
            let mut found = Vec::new();
            formats(&schema, &mut found);
            assert!(found.is_empty(), "formats left: {found:?}");
        }
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

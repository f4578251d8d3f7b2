//! proptest generators of arbitrary JSON, shared by the property tests of claude-coded's
//! unit tests (`src/plain/envelope.rs`, `src/child/protocol.rs`) and of
//! `tests/fuzz_inputs/`, so both search the same space.

use proptest::prelude::*;
use serde_json::Value;

/// Any JSON scalar: null, booleans, integers of both signs and sizes, floats, strings.
pub fn scalar() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
    ]
}

/// Any JSON value, up to four levels of arrays and objects.
pub fn json() -> impl Strategy<Value = Value> {
    scalar().prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::from),
            prop::collection::vec(("[a-zA-Z_]{0,8}", inner), 0..6)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

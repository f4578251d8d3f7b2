//! Keeping secrets out of what claude-coded records: status (prompt previews), the state
//! file, events, the event log, error messages and its stderr log.
//!
//! The child inherits the environment (that is how its API key reaches it), and may echo
//! a key on stderr or in a stray line. The values of variables whose names say they are
//! secret are collected once and replaced wherever they would be recorded.

use std::borrow::Cow;
use std::sync::OnceLock;

use serde_json::Value;
use serde_json::value::RawValue;

/// What a secret becomes.
pub(crate) const MASK: &str = "[REDACTED]";
/// Shorter values are too likely to occur by chance to be worth masking.
const MIN_SECRET_LEN: usize = 8;
/// Name fragments that mark a variable as secret.
const SECRET_NAMES: [&str; 7] = [
    "KEY",
    "TOKEN",
    "SECRET",
    "PASSWORD",
    "PASSWD",
    "CREDENTIAL",
    "AUTH",
];

fn secrets() -> &'static [String] {
    static SECRETS: OnceLock<Vec<String>> = OnceLock::new();
    SECRETS.get_or_init(|| secrets_in(std::env::vars()))
}

/// The secret values among `vars`, longest first (so a key containing another is masked whole).
pub(crate) fn secrets_in(vars: impl Iterator<Item = (String, String)>) -> Vec<String> {
    let mut found: Vec<String> = vars
        .filter(|(name, value)| {
            let upper = name.to_ascii_uppercase();
            value.len() >= MIN_SECRET_LEN && SECRET_NAMES.iter().any(|s| upper.contains(s))
        })
        .map(|(_, value)| value)
        .collect();
    found.sort_by_key(|v| std::cmp::Reverse(v.len()));
    found.dedup();
    found
}

/// `text` with every secret of the environment masked.
pub(crate) fn redact(text: &str) -> Cow<'_, str> {
    redact_with(text, secrets())
}

fn redact_with<'a>(text: &'a str, secrets: &[String]) -> Cow<'a, str> {
    let mut out = Cow::Borrowed(text);
    for secret in secrets {
        if out.contains(secret.as_str()) {
            out = Cow::Owned(out.replace(secret.as_str(), MASK));
        }
    }
    out
}

/// Masks secrets in every string of a JSON value, in place.
pub(crate) fn redact_value(value: &mut Value) {
    match value {
        Value::String(s) => {
            if let Cow::Owned(masked) = redact(s) {
                *s = masked;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(redact_value),
        Value::Object(map) => map.values_mut().for_each(redact_value),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// A JSON text with every secret masked in its strings (and keys), as [`redact_value`]
/// masks a `Value`, without building one: each secret is looked for as JSON writes it.
///
/// JSON escapes a string character by character, so a string holding a secret holds
/// the secret's escaped form, and masking the text masks at least what masking the
/// `Value` would. It can also match where no string holds the secret (inside a number,
/// across an escape): when a mask leaves text that is not JSON, the `Value` way decides.
pub(crate) fn redact_json(json: Box<RawValue>) -> Box<RawValue> {
    redact_json_with(json, escaped_secrets())
}

fn redact_json_with(json: Box<RawValue>, escaped: &[String]) -> Box<RawValue> {
    let Cow::Owned(masked) = redact_with(json.get(), escaped) else {
        return json;
    };
    RawValue::from_string(masked).unwrap_or_else(|_| {
        let mut value: Value = serde_json::from_str(json.get()).unwrap_or_default();
        redact_value(&mut value);
        serde_json::value::to_raw_value(&value).unwrap_or(json)
    })
}

/// The secrets as they appear inside a JSON string, longest first.
fn escaped_secrets() -> &'static [String] {
    static ESCAPED: OnceLock<Vec<String>> = OnceLock::new();
    ESCAPED.get_or_init(|| escaped(secrets()))
}

fn escaped(secrets: &[String]) -> Vec<String> {
    let mut escaped: Vec<String> = secrets
        .iter()
        .filter_map(|secret| {
            let quoted = serde_json::to_string(secret).ok()?;
            Some(quoted[1..quoted.len() - 1].to_string())
        })
        .collect();
    escaped.sort_by_key(|e| std::cmp::Reverse(e.len()));
    escaped
}

/// stderr for the log, with every secret masked. Our own log lines carry no prompt, but
/// the libraries underneath log whole requests at debug level (rmcp does), so each line is
/// masked as a whole on its way out.
pub(crate) struct RedactedStderr;

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for RedactedStderr {
    type Writer = RedactedLine;

    fn make_writer(&'a self) -> RedactedLine {
        RedactedLine(Vec::new())
    }
}

/// One log event, gathered whole (the formatter may write it in pieces, and a piece
/// could split a secret) and written to stderr masked when the event is done.
pub(crate) struct RedactedLine(Vec<u8>);

impl std::io::Write for RedactedLine {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RedactedLine {
    fn drop(&mut self) {
        let text = String::from_utf8_lossy(&self.0);
        // Queued, never written here: a host that does not read stderr must not block us.
        crate::stderr_log::emit(redact(&text).into_owned().into_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(list: &[(&str, &str)]) -> impl Iterator<Item = (String, String)> {
        list.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect::<Vec<_>>()
            .into_iter()
    }

    #[test]
    fn finds_secret_variables_by_name() {
        let found = secrets_in(vars(&[
            ("ANTHROPIC_API_KEY", "sk-ant-123456789"),
            ("GITHUB_TOKEN", "ghp_abcdefghij"),
            ("HOME", "/home/someone/long"),
            ("SHORT_KEY", "abc"),
        ]));
        assert_eq!(
            found,
            vec!["sk-ant-123456789".to_string(), "ghp_abcdefghij".to_string()]
        );
    }

    #[test]
    fn masks_every_occurrence() {
        let secrets = vec!["sk-ant-123456789".to_string()];
        let text = "key sk-ant-123456789 and again sk-ant-123456789.";
        assert_eq!(
            redact_with(text, &secrets),
            "key [REDACTED] and again [REDACTED]."
        );
        assert!(matches!(
            redact_with("nothing here", &secrets),
            Cow::Borrowed(_)
        ));
    }

    fn masked_both_ways(value: &Value, secrets: &[&str]) -> (Value, Value) {
        let secrets: Vec<String> = secrets.iter().map(|s| s.to_string()).collect();
        let raw = serde_json::value::to_raw_value(value).unwrap();
        let by_text = redact_json_with(raw, &escaped(&secrets));
        let mut by_value = value.clone();
        redact_value_with(&mut by_value, &secrets);
        (serde_json::from_str(by_text.get()).unwrap(), by_value)
    }

    fn redact_value_with(value: &mut Value, secrets: &[String]) {
        match value {
            Value::String(s) => *s = redact_with(s, secrets).into_owned(),
            Value::Array(items) => items.iter_mut().for_each(|v| redact_value_with(v, secrets)),
            Value::Object(map) => map.values_mut().for_each(|v| redact_value_with(v, secrets)),
            _ => {}
        }
    }

    #[test]
    fn a_json_text_is_masked_as_its_value_would_be_even_where_json_escapes_the_secret() {
        let value = serde_json::json!({
            "plain": "key sk-ant-123456789 here",
            "nested": ["x", {"quoted": "a\"b\\c-secret!"}],
            "n": 12345678,
            "line": "\nabcdefgh",
        });
        let (by_text, by_value) =
            masked_both_ways(&value, &["sk-ant-123456789", "a\"b\\c-secret!"]);
        assert_eq!(by_text, by_value);
        assert_eq!(by_text["plain"], "key [REDACTED] here");
        assert_eq!(by_text["nested"][1]["quoted"], "[REDACTED]");
    }

    #[test]
    fn a_mask_that_would_break_the_json_falls_back_to_the_value() {
        let value = serde_json::json!({"pid": 123456789, "text": "\nabcdefgh"});
        // Inside a number, and across an escape: no string holds either.
        for secret in ["12345678", "nabcdefgh"] {
            let (by_text, by_value) = masked_both_ways(&value, &[secret]);
            assert_eq!(by_text, value, "{secret}");
            assert_eq!(by_value, value, "{secret}");
        }
    }
}

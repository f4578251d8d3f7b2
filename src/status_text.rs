//! The human-readable form of a persisted status, for `claude-coded status`.

use serde_json::Value;

/// A few aligned lines from the state file's JSON.
pub(crate) fn render(status: &Value) -> String {
    let get = |path: &str| -> String {
        let value = path
            .split('.')
            .try_fold(status, |v, key| v.get(key))
            .unwrap_or(&Value::Null);
        match value {
            Value::Null => "-".to_string(),
            Value::String(s) => s.clone(),
            other => other.to_string(),
        }
    };
    let rows = [
        (
            "daemon",
            format!(
                "{} (pid {}, {})",
                get("identity.daemonId"),
                get("daemon.pid"),
                get("daemon.state")
            ),
        ),
        ("started", get("daemon.startedAt")),
        ("state dir", get("daemon.stateDir")),
        (
            "child",
            format!(
                "{} since {} (pid {})",
                get("child.status"),
                get("child.statusSince"),
                get("child.pid")
            ),
        ),
        ("session", get("child.sessionId")),
        ("restarts", get("child.restartCount")),
        ("last error", get("child.lastError")),
        (
            "turns",
            format!(
                "{} ok, {} failed, {} errors",
                get("totals.turnsOk"),
                get("totals.turnsFailed"),
                get("totals.asksErrored")
            ),
        ),
        ("cost", format!("${}", get("totals.costUsd"))),
        ("cwd", get("config.cwd")),
    ];
    rows.iter()
        .map(|(k, v)| format!("{k:>10}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn renders_missing_fields_as_dashes() {
        let text = render(&json!({"child": {"status": "ready"}, "daemon": {"pid": 5}}));
        assert!(text.contains("child: ready since - (pid -)"), "{text}");
        assert!(text.contains("(pid 5, -)"), "{text}");
    }
}

//! `claude-coded start` hands the daemon its configuration as `CLAUDE_CODED_*` variables
//! (`Config::to_env`): every setting given on its command line must come through. Flags
//! set each setting to something other than its default; the daemon's `status` must
//! show the same configuration as `claude-coded config` resolved from those flags. A
//! setting that `to_env` forgets arrives as its default and fails here by name, and a
//! new setting fails until its entry in `src/config.rs` gives it an example of its own.

use std::path::Path;

use claude_coded::config::SETTINGS;
use serde_json::Value;
use test_support::TempDir;
use test_support::cli::{cli, run};

/// Keys that cannot differ from their default together with the others, and why.
const SAME_AS_DEFAULT: &[(&str, &str)] = &[
    (
        "listenToken",
        "the file asks for no token (listenNoToken), so there is none",
    ),
    ("configFile", "no file is read here"),
    (
        "claudeBin",
        "the test's environment sets it for both runs (the CLI double), not the default",
    ),
    (
        "stateDir",
        "the test's environment sets it for both runs (a private directory), not the default",
    ),
];

/// Every setting at its example in the table of settings (`config::SETTINGS`), none at its
/// default but those in [`SAME_AS_DEFAULT`]; `{home}` in a path is `home`, and each such
/// path is a directory made here.
fn full_config(home: &Path) -> Value {
    let mut config = serde_json::Map::new();
    for setting in SETTINGS {
        let Some(example) = setting.example else {
            continue;
        };
        let example: Value = serde_json::from_str(example)
            .unwrap_or_else(|e| panic!("{}'s example is not JSON: {e}", setting.name));
        config.insert(setting.file_key(), in_home(example, home));
    }
    Value::Object(config)
}

/// `value` with `{home}` in its texts replaced by `home`, whose directories exist.
fn in_home(value: Value, home: &Path) -> Value {
    match value {
        Value::String(text) if text.contains("{home}") => {
            let path = text.replace("{home}", &home.to_string_lossy());
            std::fs::create_dir_all(&path).unwrap();
            Value::String(path)
        }
        Value::Array(items) => Value::Array(items.into_iter().map(|v| in_home(v, home)).collect()),
        other => other,
    }
}

/// The flags that say `config`: `--queue-size=17`, a list's flag once per item.
fn flags(config: &Value) -> Vec<String> {
    let mut flags = Vec::new();
    for (key, value) in config.as_object().unwrap() {
        let setting = SETTINGS.iter().find(|s| s.file_key() == *key).unwrap();
        let flag = setting.flag();
        let items = match value {
            Value::Array(items) => items.clone(),
            one => vec![one.clone()],
        };
        for item in items {
            let text = item
                .as_str()
                .map_or_else(|| item.to_string(), str::to_string);
            // `=`: a value that starts with `--` is the value, not a flag.
            flags.push(format!("{flag}={text}"));
        }
    }
    flags
}

/// `claude-coded config [args]` in `home`, as JSON.
async fn resolved(home: &Path, args: &[&str]) -> Value {
    let args: Vec<&str> = std::iter::once("config")
        .chain(args.iter().copied())
        .collect();
    let out = run(cli(home, &args), None).await;
    assert_eq!(out.code, 0, "{out:?}");
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {out:?}"))
}

#[tokio::test]
async fn a_started_daemon_runs_with_every_setting_it_was_given() {
    let home = TempDir::new("config-roundtrip");
    let flags = flags(&full_config(home.path()));
    let flags: Vec<&str> = flags.iter().map(String::as_str).collect();
    // A setting without an example is one this test must leave at its default.
    for setting in SETTINGS.iter().filter(|s| s.example.is_none()) {
        let key = setting.file_key();
        assert!(
            SAME_AS_DEFAULT.iter().any(|(k, _)| *k == key),
            "`{key}` has no example: give it one, or say in SAME_AS_DEFAULT why it cannot"
        );
    }
    let defaults = resolved(home.path(), &[]).await;
    let given = resolved(home.path(), &flags).await;
    // The file leaves nothing at its default, so every setting is put to the test.
    let same = |key: &str| SAME_AS_DEFAULT.iter().any(|(k, _)| *k == key);
    for (key, value) in given.as_object().unwrap() {
        if !same(key) {
            assert_ne!(
                Some(value),
                defaults.get(key),
                "`{key}` is at its default: give its entry in src/config.rs another example"
            );
        }
    }
    let start: Vec<&str> = std::iter::once("start")
        .chain(flags.iter().copied())
        .collect();
    let started = run(cli(home.path(), &start), None).await;
    assert_eq!(started.code, 0, "{started:?}");
    let status = run(cli(home.path(), &["status", "--json"]), None).await;
    let stopped = run(cli(home.path(), &["stop"]), None).await;
    assert_eq!(status.code, 0, "{status:?}");
    assert_eq!(stopped.code, 0, "{stopped:?}");
    let status: Value = serde_json::from_str(&status.stdout).unwrap();
    let running = &status["config"];
    for (key, value) in given.as_object().unwrap() {
        if key != "configFile" {
            assert_eq!(
                running.get(key),
                Some(value),
                "`{key}` did not reach the daemon that start started"
            );
        }
    }
}

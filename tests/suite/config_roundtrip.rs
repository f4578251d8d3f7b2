//! `claude-coded start` hands the daemon its configuration as `CLAUDE_CODED_*` variables
//! (`Config::to_env`): every setting given on its command line must come through. Flags
//! set each setting to something other than its default; the daemon's `status` must
//! show the same configuration as `claude-coded config` resolved from those flags. A
//! setting that `to_env` forgets arrives as its default and fails here by name, and a
//! new setting fails until [`full_config`] gives it a value of its own.

use std::path::Path;

use serde_json::{Value, json};
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

/// Every setting, none at its default (paths under `home`).
fn full_config(home: &Path) -> Value {
    let cwd = home.join("cwd");
    let other = home.join("other");
    std::fs::create_dir_all(&other).unwrap();
    json!({
        "claudeArgs": ["--max-turns", "7"],
        "model": "claude-roundtrip-model",
        "permissionMode": "acceptEdits",
        "permissionCeiling": "acceptEdits",
        "allowTools": ["Bash(ls:*)"],
        "denyTools": ["WebFetch"],
        "cwd": other,
        "allowDirs": [other, cwd],
        "sessionBudgetUsd": 2.5,
        "budgetUsd": 5.0,
        "listen": "127.0.0.1:0",
        "listenNoToken": true,
        "queueSize": 17,
        "turnTimeoutMs": 300_001,
        "interruptGraceMs": 5_001,
        "eventsRingSize": 51,
        "maxChildLineBytes": 67_108_865,
        "maxRequestBytes": 16_777_217,
        "backoffInitialMs": 1_001,
        "backoffMaxMs": 60_001,
        "healthyAfterMs": 10_001,
        "stopGraceMs": 5_001,
        "stallTimeoutMs": 120_001,
        "crashLoopMax": 6,
        "crashLoopWindowMs": 60_001,
        "resumeOnRestart": false,
        "eventLogMaxBytes": 10_485_761,
        "eventLogKeep": 4,
        "permissionDecider": "deny",
        "permissionTimeoutMs": 60_001,
        "maxSessions": 5,
        "spareSessions": 1,
        "sessionIdleMs": 1_800_001,
        "resultTtlMs": 3_600_001,
        "maxDepth": 2
    })
}

/// The flags that say `config`: `--queue-size 17`, a list's flag once per item.
fn flags(config: &Value) -> Vec<String> {
    let mut flags = Vec::new();
    for (key, value) in config.as_object().unwrap() {
        let kebab: String = key
            .chars()
            .flat_map(|c| match c.is_ascii_uppercase() {
                true => vec!['-', c.to_ascii_lowercase()],
                false => vec![c],
            })
            .collect();
        // A list's flag is singular: `--allow-tool X --allow-tool Y`.
        let flag = format!(
            "--{}",
            kebab
                .strip_suffix('s')
                .filter(|_| value.is_array())
                .unwrap_or(&kebab)
        );
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
    let defaults = resolved(home.path(), &[]).await;
    let given = resolved(home.path(), &flags).await;
    // The file leaves nothing at its default, so every setting is put to the test.
    let same = |key: &str| SAME_AS_DEFAULT.iter().any(|(k, _)| *k == key);
    for (key, value) in given.as_object().unwrap() {
        if !same(key) {
            assert_ne!(
                Some(value),
                defaults.get(key),
                "`{key}` is at its default: give it another value in full_config"
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

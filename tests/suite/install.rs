//! Installed as people install it: the Claude Code CLI found where its installers put it
//! when a GUI host starts claude-coded with a bare PATH.

use std::path::Path;

use serde_json::json;
use test_support::{Bridge, Options, TempDir, double};

/// What GUI hosts on macOS give the servers they start (and enough for Linux).
const MINIMAL_PATH: &str = "/usr/bin:/bin";

/// A bridge started with HOME `home`, PATH [`MINIMAL_PATH`] and no `--claude-bin`.
fn bridge_with_minimal_path(home: TempDir) -> Bridge {
    Bridge::start_with(
        Options::default()
            .dir(home)
            .clean_env()
            .env("PATH", MINIMAL_PATH)
            .find_claude(),
    )
}

#[tokio::test]
async fn claude_is_found_where_its_installer_put_it_with_a_minimal_path() {
    for place in [".local/bin", ".claude/local"] {
        let home = TempDir::new("find-claude");
        let dir = home.path().join(place);
        std::fs::create_dir_all(&dir).unwrap();
        let stand_in = dir.join("claude");
        std::os::unix::fs::symlink(double(), &stand_in).unwrap();
        let mut bridge = bridge_with_minimal_path(home);
        let reply = bridge.ask_ok("hello").await;
        assert_eq!(reply["ok"], true, "{reply}");
        let events = bridge.call("events", json!({})).await;
        let started = events["result"]["events"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["type"] == "child.started")
            .map(|e| e["detail"]["program"].clone());
        assert_eq!(
            started.as_ref().and_then(|p| p.as_str()),
            Some(stand_in.to_str().unwrap()),
            "{events}"
        );
        assert_eq!(bridge.close_and_wait().await, 0);
    }
}

#[tokio::test]
async fn with_claude_nowhere_the_error_names_every_place_looked_in_one_line() {
    let elsewhere = [
        "/opt/homebrew/bin/claude",
        "/usr/local/bin/claude",
        "/usr/bin/claude",
    ];
    if let Some(found) = elsewhere.iter().find(|p| Path::new(p).exists()) {
        eprintln!("skipped: this machine has {found}, which claude-coded would find");
        return;
    }
    let home = TempDir::new("no-claude");
    let home_path = home.path().to_path_buf();
    let mut bridge = bridge_with_minimal_path(home);
    let response = bridge.call("ask", json!({"prompt": "hello"})).await;
    let message = response["error"]["message"].as_str().unwrap_or_default();
    assert!(!message.contains('\n'), "{message}");
    for place in [
        format!("not on PATH ({MINIMAL_PATH})"),
        home_path.join(".local/bin/claude").display().to_string(),
        home_path.join(".claude/local/claude").display().to_string(),
        "/opt/homebrew/bin/claude".to_string(),
        "/usr/local/bin/claude".to_string(),
        "--claude-bin".to_string(),
    ] {
        assert!(message.contains(&place), "{place} missing from: {message}");
    }
}

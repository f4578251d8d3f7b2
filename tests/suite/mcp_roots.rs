//! The host's project from its MCP roots: a client that declares roots moves the sessions
//! made without a `cwd` (the `default` one first) to its first root, within
//! `--allow-dir`; up to 2025-11-25 after the handshake, on 2026-07-28 as the first ask's
//! round. The CLI double records the directory each CLI starts in.

use std::path::Path;

use rmcp::model::ProtocolVersion;
use serde_json::{Value, json};
use test_support::TempDir;
use test_support::mcp::{Connect, McpBridge, texts};

/// A server started in `start` (allowed: `allowed`), whose client lists `roots`, over
/// 2025-11-25 or, with `discover`, 2026-07-28; the CLIs' starts go to `record`.
async fn connect(
    start: &Path,
    allowed: &Path,
    roots: Vec<String>,
    discover: bool,
    record: &Path,
) -> McpBridge {
    McpBridge::connect(Connect {
        version: (!discover).then_some(ProtocolVersion::V_2025_11_25),
        discover,
        roots,
        args: vec![
            "--cwd".into(),
            start.display().to_string(),
            "--allow-dir".into(),
            allowed.display().to_string(),
        ],
        env: vec![("DOUBLE_RECORD".into(), record.display().to_string())],
        ..Connect::default()
    })
    .await
}

fn uri(dir: &Path) -> String {
    format!("file://{}", dir.display()).replace(' ', "%20")
}

/// The directory the `default` session works in, as `status` lists it.
fn default_cwd(status: &Value) -> String {
    status["sessions"]
        .as_array()
        .and_then(|sessions| sessions.iter().find(|s| s["name"] == "default"))
        .and_then(|s| s["cwd"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The directories the CLIs were started in, in order.
fn started_in(record: &Path) -> Vec<String> {
    std::fs::read_to_string(record)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|start| start["cwd"].as_str().map(str::to_owned))
        .collect()
}

#[tokio::test]
async fn a_client_that_declares_roots_has_its_first_root_as_the_project_on_2025_11_25() {
    let dir = TempDir::new("roots");
    let home = std::fs::canonicalize(dir.path()).unwrap();
    let project = home.join("my project");
    std::fs::create_dir_all(&project).unwrap();
    let record = home.join("starts.jsonl");
    let bridge = connect(&home, &home, vec![uri(&project)], false, &record).await;
    let project_text = project.display().to_string();
    bridge
        .wait_status("the default session in the project", |s| {
            default_cwd(s) == project_text
        })
        .await;
    let answer = bridge.call("ask", json!({"prompt": "where?"})).await;
    assert!(texts(&answer)[0].ends_with("to: where?"), "{answer:?}");
    assert_eq!(
        started_in(&record).last().map(String::as_str),
        Some(project_text.as_str()),
        "the agent works in the root"
    );
    // A session made without a cwd works there too.
    let named = bridge
        .call("ask", json!({"prompt": "hi", "session": "other"}))
        .await;
    assert_ne!(named.is_error, Some(true), "{named:?}");
    assert_eq!(started_in(&record).last(), Some(&project_text));
    bridge.close().await;
}

#[tokio::test]
async fn a_root_outside_the_allowed_directories_changes_nothing() {
    let dir = TempDir::new("roots-outside");
    let home = std::fs::canonicalize(dir.path()).unwrap();
    let start = home.join("start");
    std::fs::create_dir_all(&start).unwrap();
    let elsewhere = TempDir::new("roots-elsewhere");
    let record = home.join("starts.jsonl");
    let bridge = connect(&start, &start, vec![uri(elsewhere.path())], false, &record).await;
    let answer = bridge.call("ask", json!({"prompt": "where?"})).await;
    assert!(texts(&answer)[0].ends_with("to: where?"), "{answer:?}");
    let status = bridge.status().await;
    assert_eq!(
        default_cwd(&status),
        start.display().to_string(),
        "{status}"
    );
    assert!(
        started_in(&record)
            .iter()
            .all(|cwd| Path::new(cwd) == start)
    );
    bridge.close().await;
}

#[tokio::test]
async fn a_2026_07_28_client_gives_its_roots_in_the_first_asks_round() {
    let dir = TempDir::new("roots-modern");
    let home = std::fs::canonicalize(dir.path()).unwrap();
    let project = home.join("app");
    std::fs::create_dir_all(&project).unwrap();
    let record = home.join("starts.jsonl");
    let bridge = connect(&home, &home, vec![uri(&project)], true, &record).await;
    let answer = bridge
        .call_in_rounds("ask", json!({"prompt": "where?"}))
        .await;
    assert!(texts(&answer)[0].ends_with("to: where?"), "{answer:?}");
    assert_eq!(
        started_in(&record).last().map(String::as_str),
        Some(project.display().to_string().as_str()),
        "the first ask already runs in the root"
    );
    // Asked once: the next ask has no round.
    let again = bridge.call("ask", json!({"prompt": "again"})).await;
    assert!(texts(&again)[0].ends_with("to: again"), "{again:?}");
    bridge.close().await;
}

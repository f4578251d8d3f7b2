//! `session/load`'s replay: the conversation as the CLI saved it (its transcript,
//! `<config dir>/projects/<project>/<session id>.jsonl`), read line by line and told as
//! the same `session/update`s a live turn makes.
//!
//! The CLI names a project's folder after its directory with every character but
//! letters and digits made `-` (long paths are shortened), so the folder is looked for
//! by that name first and then among the others for the session's file.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::io::AsyncBufReadExt;

use super::updates::Updates;
use agent_client_protocol_schema::v1::SessionUpdate;

/// A transcript line longer than this is skipped (a huge tool result), not loaded whole.
const MAX_LINE: usize = 8 * 1024 * 1024;

/// The CLI's own directory: `CLAUDE_CONFIG_DIR`, else `~/.claude`.
fn config_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("CLAUDE_CONFIG_DIR").filter(|d| !d.is_empty()) {
        return Some(PathBuf::from(dir));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".claude"))
}

/// The folder name the CLI gives a project directory.
fn project_folder(cwd: &Path) -> String {
    cwd.to_string_lossy()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect()
}

/// Where the CLI saved session `id` of a session run in `cwd`, if it did.
pub(super) fn transcript(cwd: &Path, id: &str) -> Option<PathBuf> {
    if !crate::state_dir::is_canonical_uuid(id) {
        return None;
    }
    let projects = config_dir()?.join("projects");
    let file = format!("{id}.jsonl");
    let direct = projects.join(project_folder(cwd)).join(&file);
    if direct.is_file() {
        return Some(direct);
    }
    std::fs::read_dir(&projects)
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path().join(&file))
        .find(|path| path.is_file())
}

/// Reads `path` and hands each update it makes to `send`, in order; returns how many.
pub(super) async fn replay<F, Fut>(
    path: &Path,
    updates: &mut Updates,
    mut send: F,
) -> std::io::Result<u64>
where
    F: FnMut(SessionUpdate) -> Fut,
    Fut: Future<Output = ()>,
{
    let file = tokio::fs::File::open(path).await?;
    let mut lines = tokio::io::BufReader::new(file);
    let mut line = Vec::new();
    let mut sent = 0;
    loop {
        line.clear();
        if lines.read_until(b'\n', &mut line).await? == 0 {
            return Ok(sent);
        }
        if line.len() > MAX_LINE {
            continue;
        }
        let Ok(message) = serde_json::from_slice::<Value>(&line) else {
            continue;
        };
        if !is_replayed(&message) {
            continue;
        }
        for update in updates.of(&message) {
            send(update).await;
            sent += 1;
        }
    }
}

/// Whether a transcript line is part of the conversation a person saw: the user's and
/// the agent's messages, not the CLI's bookkeeping, side chains or injected context.
fn is_replayed(message: &Value) -> bool {
    let kind = message.get("type").and_then(Value::as_str);
    let flag = |key: &str| message.get(key).and_then(Value::as_bool) == Some(true);
    matches!(kind, Some("user" | "assistant")) && !flag("isSidechain") && !flag("isMeta")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_project_folder_is_its_path_with_dashes() {
        assert_eq!(project_folder(Path::new("/tmp/a.b/c_d")), "-tmp-a-b-c-d");
    }

    #[tokio::test]
    async fn a_transcript_replays_the_conversation_and_skips_the_rest() {
        let dir = std::env::temp_dir().join(format!("acp-replay-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("t.jsonl");
        let lines = [
            r#"{"type":"summary","summary":"x"}"#,
            r#"{"type":"user","message":{"role":"user","content":"fix it"}}"#,
            r#"{"type":"user","isMeta":true,"message":{"role":"user","content":"<context>"}}"#,
            r#"{"type":"assistant","message":{"id":"m1","content":[{"type":"text","text":"done"}]}}"#,
            r#"{"type":"assistant","isSidechain":true,"message":{"id":"m2","content":[{"type":"text","text":"side"}]}}"#,
            "not json",
        ];
        std::fs::write(&path, lines.join("\n")).unwrap();
        let mut seen = Vec::new();
        let mut updates = Updates::default();
        let count = replay(&path, &mut updates, |u| {
            seen.push(serde_json::to_value(u).unwrap());
            std::future::ready(())
        })
        .await
        .unwrap();
        assert_eq!(count, 2);
        assert_eq!(seen[0]["sessionUpdate"], "user_message_chunk");
        assert_eq!(seen[0]["content"]["text"], "fix it");
        assert_eq!(seen[1]["content"]["text"], "done");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

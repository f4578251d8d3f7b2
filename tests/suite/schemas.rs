//! `schemas/` must match the Rust types. Regenerate with:
//! `UPDATE_SCHEMAS=1 cargo test --test all schemas::`

use std::path::Path;

const REGENERATE: &str = "UPDATE_SCHEMAS=1 cargo test --test all schemas::";

#[test]
fn schema_files_match_the_types() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let update = std::env::var_os("UPDATE_SCHEMAS").is_some();
    let mut stale = Vec::new();
    let api = claude_coded::api::schemas()
        .into_iter()
        .map(|(name, schema)| {
            let value = serde_json::to_value(&schema).expect("schema as JSON");
            (name.to_string(), value)
        });
    // The MCP tools' schemas exactly as `tools/list` serves them (made portable).
    let mcp = claude_coded::mcp::tool_schemas()
        .into_iter()
        .map(|(name, schema)| (format!("mcp/{name}"), schema));
    for (name, schema) in api.chain(mcp) {
        let mut expected = serde_json::to_string_pretty(&schema).expect("serialize schema");
        expected.push('\n');
        let path = dir.join(&name);
        if update {
            std::fs::create_dir_all(dir.join("mcp")).expect("create schemas/mcp/");
            std::fs::write(&path, &expected).expect("write schema");
            continue;
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        if actual != expected {
            stale.push(format!("schemas/{name}:\n{}", diff(&actual, &expected)));
        }
    }
    assert!(
        stale.is_empty(),
        "stale schemas (regenerate with `{REGENERATE}`):\n\n{}",
        stale.join("\n")
    );
}

/// Every file in `schemas/` is one the types make: a kind or a method that is gone
/// takes its schema with it, and every event kind has the schema of its detail.
#[test]
fn schemas_holds_no_file_the_types_do_not_make() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas");
    let mut made: Vec<String> = claude_coded::api::schemas()
        .into_iter()
        .map(|(name, _)| name.to_string())
        .chain(
            claude_coded::mcp::tool_schemas()
                .into_iter()
                .map(|(name, _)| format!("mcp/{name}")),
        )
        .collect();
    made.sort();
    let mut on_disk = Vec::new();
    for sub in ["", "mcp/"] {
        for entry in std::fs::read_dir(dir.join(sub)).expect("read schemas/") {
            let entry = entry.expect("a schemas/ entry");
            if entry.file_type().expect("its type").is_file() {
                on_disk.push(format!("{sub}{}", entry.file_name().to_string_lossy()));
            }
        }
    }
    on_disk.sort();
    assert_eq!(
        on_disk, made,
        "schemas/ vs the types (`{REGENERATE}` writes, never deletes)"
    );
    for kind in claude_coded::api::EventKind::ALL {
        let name = format!("event.{kind}.detail.json");
        assert!(made.contains(&name), "{kind} has no {name}");
    }
}

/// A small line diff: `-` lines in the file, `+` lines from the types.
fn diff(actual: &str, expected: &str) -> String {
    let old: Vec<&str> = actual.lines().collect();
    let new: Vec<&str> = expected.lines().collect();
    let prefix = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let suffix = old[prefix..]
        .iter()
        .rev()
        .zip(new[prefix..].iter().rev())
        .take_while(|(a, b)| a == b)
        .count();
    let mut out = vec![format!("@@ line {} @@", prefix + 1)];
    out.extend(
        old[prefix..old.len() - suffix]
            .iter()
            .map(|l| format!("-{l}")),
    );
    out.extend(
        new[prefix..new.len() - suffix]
            .iter()
            .map(|l| format!("+{l}")),
    );
    out.join("\n")
}

#[test]
fn the_diff_shows_what_changed() {
    let d = diff("a\nb\nc\n", "a\nB\nc\n");
    assert_eq!(d, "@@ line 2 @@\n-b\n+B");
}

#[test]
fn the_docs_list_every_event_type_and_no_other() {
    // Every kind as serde writes it (a unit test in src/api keeps `ALL` equal to that).
    let mut kinds: Vec<String> = claude_coded::api::EventKind::ALL
        .iter()
        .map(|k| k.as_str().to_string())
        .collect();
    kinds.sort();
    let docs =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/protocol.md"))
            .expect("docs/protocol.md");
    let mut documented: Vec<String> = docs
        .lines()
        .filter_map(|l| l.strip_prefix("| `"))
        .filter_map(|l| l.split('`').next())
        .filter(|k| k.contains('.') && !k.contains(' '))
        .map(str::to_string)
        .collect();
    documented.sort();
    assert_eq!(
        documented, kinds,
        "docs/protocol.md's event table vs EventKind"
    );
}

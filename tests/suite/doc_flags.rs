//! The flags the docs name are real: every `--flag` in README.md, examples/README.md and
//! docs/*.md is a flag of claude-coded (any subcommand) or one of another tool's that
//! the docs show on purpose ([`FOREIGN`]). A renamed or removed flag of ours fails here
//! with the file and line (`--config` once lingered there after it became
//! `--config-file`).

use std::collections::BTreeSet;
use std::path::Path;

use clap::CommandFactory;

/// Other tools' flags the docs use, by tool.
const FOREIGN: &[(&str, &[&str])] = &[
    (
        "cargo and libtest",
        &[
            "--all-targets",
            "--bench",
            "--bin",
            "--example",
            "--ignored",
            "--lib",
            "--locked",
            "--nocapture",
            "--path",
            "--release",
            "--test",
            "--test-threads",
            "--workspace",
        ],
    ),
    (
        "the Claude Code CLI",
        &[
            "--add-dir",
            "--allowedTools",
            "--await-claim",
            "--dangerously-skip-permissions",
            "--debug",
            "--debug-file",
            "--disallowedTools",
            "--fork-session",
            "--include-partial-messages",
            "--input-format",
            "--max-budget-usd",
            "--mcp-config",
            "--output-format",
            "--permission-prompt-tool",
            "--resume",
            "--strict-mcp-config",
            "--verbose",
        ],
    ),
    ("claude mcp add", &["--header", "--scope", "--transport"]),
    ("MCP Inspector", &["--cli", "--method", "--strict"]),
    ("acpx", &["--agent", "--approve-all", "--deny-all"]),
    ("examples/soak.rs", &["--asks", "--mcp", "--seed"]),
];

/// Every long flag of claude-coded, of the top command and of every subcommand.
fn our_flags() -> BTreeSet<String> {
    let mut flags = BTreeSet::new();
    let mut commands = vec![claude_coded::cli::Cli::command()];
    while let Some(command) = commands.pop() {
        flags.extend(
            command
                .get_arguments()
                .filter_map(|a| a.get_long())
                .map(|l| format!("--{l}")),
        );
        flags.insert("--help".to_string());
        flags.insert("--version".to_string());
        commands.extend(command.get_subcommands().cloned());
    }
    flags
}

/// The `--flag` words of `text`, with their line numbers.
fn flags_in(text: &str) -> Vec<(usize, String)> {
    let mut found = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let bytes = line.as_bytes();
        for (at, _) in line.match_indices("--") {
            let before = at.checked_sub(1).map(|b| bytes[b]);
            if before.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'-') {
                continue;
            }
            let word: String = line[at + 2..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
                .collect();
            if word.starts_with(|c: char| c.is_ascii_alphabetic()) {
                found.push((n + 1, format!("--{word}")));
            }
        }
    }
    found
}

fn doc_files(root: &Path) -> Vec<std::path::PathBuf> {
    let mut files = vec![root.join("README.md"), root.join("examples/README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    files
}

#[test]
fn every_flag_the_docs_name_is_ours_or_a_known_tools() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let ours = our_flags();
    assert!(ours.contains("--permission-mode"), "{ours:?}");
    let foreign: BTreeSet<&str> = FOREIGN
        .iter()
        .flat_map(|(_, f)| f.iter().copied())
        .collect();
    let mut unknown = Vec::new();
    for file in doc_files(root) {
        let text = std::fs::read_to_string(&file).unwrap();
        for (line, flag) in flags_in(&text) {
            if !ours.contains(&flag) && !foreign.contains(flag.as_str()) {
                let rel = file.strip_prefix(root).unwrap().display().to_string();
                unknown.push(format!("{rel}:{line}: {flag}"));
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "flags that claude-coded does not have (fix the doc, or name the tool in FOREIGN):\n{}",
        unknown.join("\n")
    );
}

#[test]
fn a_flag_is_read_whole_and_dashes_inside_words_are_not_flags() {
    let text =
        "run `claude-coded --config-file x` (not --config); a--b, ---, --9\n--allowedTools=X";
    assert_eq!(
        flags_in(text),
        [
            (1, "--config-file".to_string()),
            (1, "--config".to_string()),
            (2, "--allowedTools".to_string())
        ]
    );
}

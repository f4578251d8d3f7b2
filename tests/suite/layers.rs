//! The layers of `src/`: a lower module never names a higher one.
//!
//! Every top-level module has a layer in [`LAYERS`]; a module may name (`crate::x`, or
//! `x` inside `use crate::{...}`) only modules of a lower layer. Test code (`tests.rs`
//! files, `tests/` directories, and what follows a file's `#[cfg(test)]`) and comments
//! are not counted: a test may reach up to drive what it tests. A new module fails this
//! test until it is given a layer; a name that goes up fails it with the file and line.
//! And no source file grows past 1,000 lines: one that does is split along its ideas.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

/// The layers, lowest first, each with what it holds.
const LAYERS: &[(&str, &[&str])] = &[
    (
        "foundations: no claude-coded module below them",
        &[
            "clock",
            "lines",
            "platform",
            "shutdown",
            "stderr_log",
            "sync",
            "text",
        ],
    ),
    (
        "local facts: the guard, redaction, the state directory, permission rules, the output queue, arrival order",
        &[
            "arrivals",
            "guard",
            "outbox",
            "permissions",
            "redact",
            "state_dir",
        ],
    ),
    ("nesting and our stdin", &["inbox", "nesting"]),
    (
        "the wire's types, the child process, the surface's detection",
        &["api", "child", "surface"],
    ),
    ("settings and records", &["config", "events", "status_text"]),
    ("supervision of one child", &["supervisor"]),
    (
        "the core's errors and the event lines a client reads",
        &["error", "event_lines"],
    ),
    (
        "named sessions; the protocol layer's errors",
        &["rpc_error", "sessions"],
    ),
    ("detached turns collected later", &["background"]),
    ("the core every surface calls", &["daemon"]),
    ("the plain JSON-RPC surface", &["plain"]),
    (
        "the MCP and ACP surfaces and the Unix socket",
        &["acp", "mcp", "socket"],
    ),
    (
        "the socket's client and the HTTP listener",
        &["client", "http"],
    ),
    ("the command line", &["cli"]),
];

/// The top-level modules of `src/` (files and directories, not `lib.rs`/`main.rs`).
fn modules(src: &Path) -> BTreeSet<String> {
    std::fs::read_dir(src)
        .unwrap()
        .filter_map(|e| {
            let name = e.unwrap().file_name().into_string().unwrap();
            match name.strip_suffix(".rs") {
                Some("lib" | "main") => None,
                Some(module) => Some(module.to_string()),
                None => Some(name),
            }
        })
        .collect()
}

/// Every (from, to) naming in non-test code, with where it is.
fn namings(src: &Path, modules: &BTreeSet<String>) -> BTreeMap<(String, String), String> {
    let mut found = BTreeMap::new();
    let mut stack = vec![src.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            let rel = path.strip_prefix(src).unwrap();
            let top = rel
                .components()
                .next()
                .unwrap()
                .as_os_str()
                .to_string_lossy();
            let top = top.strip_suffix(".rs").unwrap_or(&top).to_string();
            if path.extension().is_none_or(|e| e != "rs")
                || path.file_name().is_some_and(|n| n == "tests.rs")
                || rel.components().any(|c| c.as_os_str() == "tests")
                || top == "lib"
                || top == "main"
            {
                continue;
            }
            let text = std::fs::read_to_string(&path).unwrap();
            for (line, to) in names_in(&text, modules) {
                if to != top {
                    found
                        .entry((top.clone(), to))
                        .or_insert_with(|| format!("src/{}:{line}", rel.display()));
                }
            }
        }
    }
    found
}

/// The modules `text` names before its tests, with the line of each naming.
fn names_in(text: &str, modules: &BTreeSet<String>) -> Vec<(usize, String)> {
    let mut names = Vec::new();
    let mut in_group = false;
    let mut test_item = TestItem::default();
    for (n, line) in text.lines().enumerate() {
        let code = line.trim_start();
        if code.starts_with("#[cfg(test)]") {
            test_item = TestItem {
                skipping: true,
                ..TestItem::default()
            };
            continue;
        }
        if test_item.skip(code) || code.starts_with("//") {
            continue;
        }
        for (at, _) in line.match_indices("crate::") {
            names.push((n + 1, ident_at(&line[at + "crate::".len()..])));
        }
        // `use crate::{a, b::C, ...}`, over several lines.
        if let Some(at) = line.find("use crate::{") {
            in_group = true;
            names.extend(group_names(&line[at + "use crate::{".len()..], n + 1));
        } else if in_group {
            names.extend(group_names(line, n + 1));
        }
        if in_group && line.contains("};") {
            in_group = false;
        }
    }
    names.retain(|(_, name)| modules.contains(name));
    names
}

/// The item after a `#[cfg(test)]`, skipped up to its closing brace (or its `;`).
#[derive(Default)]
struct TestItem {
    skipping: bool,
    depth: i64,
    opened: bool,
}

impl TestItem {
    /// Whether `line` belongs to the test item being skipped.
    fn skip(&mut self, line: &str) -> bool {
        if !self.skipping {
            return false;
        }
        let opens = line.matches('{').count() as i64;
        self.depth += opens - line.matches('}').count() as i64;
        self.opened |= opens > 0;
        if (self.opened && self.depth <= 0) || (!self.opened && line.ends_with(';')) {
            self.skipping = false;
        }
        true
    }
}

/// The identifier `text` starts with.
fn ident_at(text: &str) -> String {
    text.chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect()
}

/// The first path segment of each item of a `use crate::{...}` line.
fn group_names(line: &str, n: usize) -> Vec<(usize, String)> {
    line.split([',', '{', '}', ';'])
        .map(|item| ident_at(item.trim()))
        .filter(|name| !name.is_empty())
        .map(|name| (n, name))
        .collect()
}

/// The namings that go up or sideways, and the modules without a layer.
fn violations(
    modules: &BTreeSet<String>,
    namings: &BTreeMap<(String, String), String>,
) -> Vec<String> {
    let layer_of: BTreeMap<&str, usize> = LAYERS
        .iter()
        .enumerate()
        .flat_map(|(i, (_, names))| names.iter().map(move |m| (*m, i)))
        .collect();
    let mut wrong: Vec<String> = modules
        .iter()
        .filter(|m| !layer_of.contains_key(m.as_str()))
        .map(|m| format!("src/{m}: a module with no layer; give it one in LAYERS"))
        .collect();
    for ((from, to), at) in namings {
        let (Some(&low), Some(&high)) = (layer_of.get(to.as_str()), layer_of.get(from.as_str()))
        else {
            continue;
        };
        if low >= high {
            wrong.push(format!(
                "{at}: `{from}` ({}) names `{to}` ({}), which is not below it",
                LAYERS[high].0, LAYERS[low].0
            ));
        }
    }
    wrong
}

#[test]
fn no_module_names_one_of_its_own_layer_or_above() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let modules = modules(&src);
    let namings = namings(&src, &modules);
    // The reading finds what is there: the command line names the core.
    assert!(
        namings.contains_key(&("cli".to_string(), "daemon".to_string())),
        "{namings:?}"
    );
    let wrong = violations(&modules, &namings);
    assert!(wrong.is_empty(), "layers broken:\n{}", wrong.join("\n"));
}

#[test]
fn a_name_that_goes_up_and_a_module_without_a_layer_are_both_reported() {
    let modules: BTreeSet<String> = ["clock", "daemon", "newcomer"]
        .into_iter()
        .map(String::from)
        .collect();
    let text = "use crate::{api::X,\n    daemon::Daemon};\nfn f() { crate::clock::now(); }\n\
                #[cfg(test)]\nmod tests {\n    fn t() { crate::daemon::x(); }\n}\n\
                fn g() -> crate::daemon::D {}\n";
    assert_eq!(
        names_in(text, &modules),
        [
            (2, "daemon".to_string()),
            (3, "clock".to_string()),
            (8, "daemon".to_string())
        ]
    );
    let mut namings = BTreeMap::new();
    namings.insert(("clock".into(), "daemon".into()), "src/clock.rs:1".into());
    namings.insert(("daemon".into(), "clock".into()), "src/daemon.rs:9".into());
    let wrong = violations(&modules, &namings);
    assert_eq!(wrong.len(), 2, "{wrong:?}");
    assert!(wrong[0].contains("newcomer"), "{wrong:?}");
    assert!(wrong[1].starts_with("src/clock.rs:1"), "{wrong:?}");
}

/// The longest a source file may grow before it is split along its ideas.
const MAX_LINES: usize = 1_000;

/// Every `.rs` file under `dir`, with its line count, longest first.
fn line_counts(dir: &Path) -> Vec<(usize, String)> {
    let mut counts = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                let lines = std::fs::read_to_string(&path).unwrap().lines().count();
                counts.push((lines, path.display().to_string()));
            }
        }
    }
    counts.sort_by(|a, b| b.cmp(a));
    counts
}

#[test]
fn no_source_file_is_over_a_thousand_lines() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let counts = line_counts(&src);
    assert!(counts.len() > 50, "read {} files", counts.len());
    let long: Vec<_> = counts.iter().filter(|(n, _)| *n > MAX_LINES).collect();
    assert!(
        long.is_empty(),
        "split these along their ideas (at most {MAX_LINES} lines each): {long:?}"
    );
}

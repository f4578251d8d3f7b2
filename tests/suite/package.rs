//! What publishing needs: the `rust-version` we claim builds the locked dependency tree.
//!
//! Without rustup the claimed compiler cannot be installed here to try, so this holds the
//! claim to what can be checked: no dependency (normal or build, as `cargo install` builds
//! them) asks for a newer Rust than ours. Clippy's `incompatible_msrv` checks our own use
//! of the standard library against it; `cargo package` runs in `.ci/run`.

use std::collections::{HashMap, HashSet};

use serde_json::Value;

/// `1.89` or `1.89.0` as numbers, for comparing.
fn version(text: &str) -> Vec<u64> {
    let mut parts: Vec<u64> = text.split('.').map(|p| p.parse().unwrap()).collect();
    parts.resize(3, 0);
    parts
}

#[test]
fn no_dependency_asks_for_a_newer_rust_than_our_rust_version() {
    let ours = version(env!("CARGO_PKG_RUST_VERSION"));
    let output = std::process::Command::new(env!("CARGO"))
        .args(["metadata", "--format-version", "1", "--locked", "--offline"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let metadata: Value = serde_json::from_slice(&output.stdout).unwrap();
    let packages: HashMap<&str, &Value> = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p))
        .collect();
    let nodes: HashMap<&str, &Value> = metadata["resolve"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| (n["id"].as_str().unwrap(), n))
        .collect();
    let root = packages
        .values()
        .find(|p| p["name"] == "claude-coded")
        .unwrap()["id"]
        .as_str()
        .unwrap();
    // What `cargo install` builds: the normal and build dependencies, transitively.
    let mut seen = HashSet::new();
    let mut pending = vec![root];
    while let Some(id) = pending.pop() {
        if !seen.insert(id) {
            continue;
        }
        for dep in nodes[id]["deps"].as_array().unwrap() {
            let built = dep["dep_kinds"]
                .as_array()
                .unwrap()
                .iter()
                .any(|k| k["kind"].is_null() || k["kind"] == "build");
            if built {
                pending.push(dep["pkg"].as_str().unwrap());
            }
        }
    }
    let too_new: Vec<String> = seen
        .iter()
        .filter_map(|id| {
            let package = packages[id];
            let wanted = package["rust_version"].as_str()?;
            (version(wanted) > ours)
                .then(|| format!("{} {} needs {wanted}", package["name"], package["version"]))
        })
        .collect();
    assert!(
        too_new.is_empty(),
        "rust-version {} is too old: {too_new:?}; raise it in Cargo.toml",
        env!("CARGO_PKG_RUST_VERSION")
    );
    assert!(seen.len() > 50, "walked only {} packages", seen.len());
}

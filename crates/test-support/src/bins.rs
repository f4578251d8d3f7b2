//! Where the binaries under test are.
//!
//! `env!("CARGO_BIN_EXE_<name>")` only names binaries of the test's own package, and the
//! CLI double is a package of its own (`crates/claude-double`). So [`double`] builds it,
//! once per process, with `cargo build -p claude-double` (the cargo that runs the tests,
//! the same profile and target directory as the running executable; cargo does not hold
//! its build lock while tests run): a test never runs a stale double, and a build that
//! fails says why in the test's panic. [`bridge`] is the `claude-coded` cargo built for the
//! root package's tests and benches.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde_json::Value;

/// The `claude-coded` the tests run: `CLAUDE_CODED_TEST_BRIDGE` when set (another build,
/// an older commit's, to see a new test fail there), else [`bridge`].
pub fn bridge_under_test() -> PathBuf {
    std::env::var_os("CLAUDE_CODED_TEST_BRIDGE")
        .map(PathBuf::from)
        .unwrap_or_else(|| bridge().to_path_buf())
}

/// `claude-coded` of this build: `CARGO_BIN_EXE_claude-coded` where cargo sets it at run
/// time (for the root package's tests and benches, in recent cargo), else the file of that
/// name in the running executable's profile directory, where cargo puts the package's
/// binaries before it runs its integration tests and benches.
pub fn bridge() -> &'static Path {
    static BRIDGE: OnceLock<PathBuf> = OnceLock::new();
    BRIDGE.get_or_init(|| {
        if let Some(path) = std::env::var_os("CARGO_BIN_EXE_claude-coded") {
            return PathBuf::from(path);
        }
        let path = profile_dir()
            .map(|dir| dir.join("claude-coded"))
            .unwrap_or_default();
        assert!(
            path.is_file(),
            "claude-coded not found at {path:?}: it is built by cargo for the root package's \
             tests and benches (cargo test, cargo bench)"
        );
        path
    })
}

/// The CLI double (`crates/claude-double`), built on the first call in this process.
///
/// Panics with cargo's messages when the build fails.
pub fn double() -> &'static Path {
    static DOUBLE: OnceLock<PathBuf> = OnceLock::new();
    DOUBLE.get_or_init(|| {
        cargo_build("claude-double", "claude-double")
            .unwrap_or_else(|e| panic!("cannot build the CLI double: {e}"))
    })
}

/// Builds the binary `bin` of the workspace package `package` with the profile of the
/// running executable (release when it was built without debug assertions, as benches
/// and `--release` runs are) into its target directory, and returns the binary's path as
/// cargo reports it.
pub fn cargo_build(package: &str, bin: &str) -> Result<PathBuf, String> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| OsString::from(env!("CARGO")));
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let mut command = Command::new(&cargo);
    command
        .arg("build")
        .arg("--manifest-path")
        .arg(&manifest)
        .args(["-p", package, "--bin", bin])
        .arg("--message-format=json-render-diagnostics");
    if !cfg!(debug_assertions) {
        command.arg("--release");
    }
    if let Some(target_dir) = profile_dir().as_deref().and_then(Path::parent) {
        command.arg("--target-dir").arg(target_dir);
    }
    let output = command
        .output()
        .map_err(|e| format!("cannot run {cargo:?}: {e}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "`{command:?}` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|message| message["reason"] == "compiler-artifact")
        .filter(|message| message["target"]["name"] == bin)
        .find_map(|message| message["executable"].as_str().map(PathBuf::from))
        .ok_or_else(|| format!("`{command:?}` named no executable {bin}"))
}

/// `<target>/<profile>/` of the running executable, when it is where cargo puts tests and
/// benches (`<target>/<profile>/deps/`) or examples (`<target>/<profile>/examples/`).
fn profile_dir() -> Option<PathBuf> {
    let exe = std::env::current_exe().ok()?;
    let parent = exe.parent()?;
    let kind = parent.file_name()?;
    (kind == "deps" || kind == "examples")
        .then(|| parent.parent())
        .flatten()
        .map(Path::to_path_buf)
}

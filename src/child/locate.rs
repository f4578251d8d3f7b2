//! Finding the Claude Code CLI: a path as given, a name on PATH, and for the default
//! `claude` the places Claude Code's installers put it.
//!
//! GUI hosts (Claude Desktop, Cursor, VS Code on macOS) start MCP servers with a bare
//! PATH (`/usr/bin:/bin:/usr/sbin:/sbin`), where a `claude` installed by the official
//! installer (`~/.local/bin`), its older local install (`~/.claude/local`), Homebrew
//! (`/opt/homebrew/bin`, `/usr/local/bin`) or `npm install -g` (npm's global prefix) is
//! not found. So when the default name is not on PATH, those places are looked at in that
//! order, and the error names every place looked.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use super::ChildError;

/// The CLI's name when `--claude-bin` is not given.
const DEFAULT_NAME: &str = "claude";

/// Finds `program` the way a shell would (a path as is, a bare name on PATH); the default
/// `claude` also where its installers put it.
pub(crate) fn resolve_program(program: &str) -> Result<PathBuf, ChildError> {
    // The CLI starts in its session's directory, not ours: a relative `--claude-bin` (or a
    // relative PATH entry) is made absolute here, against the directory it was given in.
    found(program).map(|path| std::path::absolute(&path).unwrap_or(path))
}

fn found(program: &str) -> Result<PathBuf, ChildError> {
    if program.contains('/') {
        let path = PathBuf::from(program);
        return if is_executable(&path) {
            Ok(path)
        } else {
            Err(ChildError::NotFound {
                program: program.to_string(),
                looked: format!("no executable file at {program}"),
            })
        };
    }
    let path_var = std::env::var_os("PATH").unwrap_or_default();
    if let Some(found) = on_path(program, &path_var) {
        return Ok(found);
    }
    let mut looked = format!("not on PATH ({})", path_var.to_string_lossy());
    if program == DEFAULT_NAME {
        let places = install_places(std::env::var_os("HOME").map(PathBuf::from), npm_prefix());
        if let Some(found) = places.iter().find(|p| is_executable(p)) {
            return Ok(found.clone());
        }
        let places: Vec<String> = places.iter().map(|p| p.display().to_string()).collect();
        looked.push_str(&format!(", nor at {}", places.join(", ")));
    }
    Err(ChildError::NotFound {
        program: program.to_string(),
        looked,
    })
}

/// The first executable `dir/program` for the directories of `path_var`.
fn on_path(program: &str, path_var: &OsString) -> Option<PathBuf> {
    std::env::split_paths(path_var)
        .map(|dir| dir.join(program))
        .find(|candidate| is_executable(candidate))
}

/// Where Claude Code's installers put `claude`, in the order looked at.
fn install_places(home: Option<PathBuf>, npm_prefix: Option<PathBuf>) -> Vec<PathBuf> {
    let mut places = Vec::new();
    if let Some(home) = home.filter(|h| h.is_absolute()) {
        places.push(home.join(".local/bin/claude"));
        places.push(home.join(".claude/local/claude"));
    }
    places.push(PathBuf::from("/opt/homebrew/bin/claude"));
    places.push(PathBuf::from("/usr/local/bin/claude"));
    if let Some(bin) = npm_prefix.map(|prefix| prefix.join("bin/claude"))
        && !places.contains(&bin)
    {
        places.push(bin);
    }
    places
}

/// npm's global prefix (where `npm install -g` puts packages, their commands in its
/// `bin`): `npm_config_prefix` as npm reads it, else `prefix=` in `~/.npmrc`, else what
/// `npm prefix -g` says when npm is on PATH.
fn npm_prefix() -> Option<PathBuf> {
    for name in ["npm_config_prefix", "NPM_CONFIG_PREFIX"] {
        if let Some(prefix) = std::env::var_os(name).filter(|p| !p.is_empty()) {
            return Some(PathBuf::from(prefix));
        }
    }
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let npmrc = home.and_then(|h| std::fs::read_to_string(h.join(".npmrc")).ok());
    if let Some(prefix) = npmrc.as_deref().and_then(npmrc_prefix) {
        return Some(prefix);
    }
    let npm = on_path("npm", &std::env::var_os("PATH")?)?;
    let output = std::process::Command::new(npm)
        .args(["prefix", "-g"])
        .stdin(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .output()
        .ok()?;
    let prefix = String::from_utf8(output.stdout).ok()?;
    let prefix = prefix.trim();
    (output.status.success() && prefix.starts_with('/')).then(|| PathBuf::from(prefix))
}

/// The `prefix` an `.npmrc` sets (`prefix=/path`, `prefix = ~/path`).
fn npmrc_prefix(npmrc: &str) -> Option<PathBuf> {
    let value = npmrc.lines().find_map(|line| {
        let (key, value) = line.split_once('=')?;
        (key.trim() == "prefix").then(|| value.trim().trim_matches('"').to_string())
    })?;
    match value.strip_prefix("~/") {
        Some(rest) => Some(PathBuf::from(std::env::var_os("HOME")?).join(rest)),
        None => Some(PathBuf::from(value)).filter(|p| p.is_absolute()),
    }
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bare_names_are_looked_up_on_path() {
        assert!(resolve_program("sh").is_ok());
        let err = resolve_program("definitely-not-a-claude-binary").unwrap_err();
        assert!(err.to_string().contains("--claude-bin"), "{err}");
        assert!(err.to_string().contains("not on PATH"), "{err}");
        assert!(resolve_program("/nonexistent/claude").is_err());
    }

    #[test]
    fn a_relative_path_is_made_absolute_because_the_cli_starts_elsewhere() {
        // Tests run in the package's root, where scripts/test.sh is executable.
        let found = resolve_program("scripts/test.sh").unwrap();
        assert!(found.is_absolute(), "{}", found.display());
        assert_eq!(
            found,
            std::env::current_dir().unwrap().join("scripts/test.sh")
        );
    }

    #[test]
    fn the_installers_places_come_in_order_and_npms_bin_once() {
        let places = install_places(Some("/h".into()), Some("/usr/local".into()));
        assert_eq!(
            places,
            [
                "/h/.local/bin/claude",
                "/h/.claude/local/claude",
                "/opt/homebrew/bin/claude",
                "/usr/local/bin/claude",
            ]
            .map(PathBuf::from)
        );
        let with_npm = install_places(None, Some("/n".into()));
        assert_eq!(with_npm.last(), Some(&PathBuf::from("/n/bin/claude")));
        assert_eq!(with_npm.len(), 3, "no home, no places in it");
    }

    #[test]
    fn an_npmrc_prefix_is_read_with_or_without_spaces_and_quotes() {
        assert_eq!(
            npmrc_prefix("registry=x\nprefix = \"/opt/npm\"\n"),
            Some(PathBuf::from("/opt/npm"))
        );
        assert_eq!(npmrc_prefix("prefix=relative"), None);
        assert_eq!(npmrc_prefix("cache=/c"), None);
    }
}

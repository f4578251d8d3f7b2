//! `claude-coded doctor`: what a first run needs, checked one line each, with what to do
//! about each thing that is missing.
//!
//! It reads; it changes nothing and starts nothing but `claude --version`. The exit
//! status is 0 when nothing failed (warnings included), 1 otherwise.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::child::spawn::resolve_program;
use crate::client;
use crate::config::Config;

/// How long `claude --version` may take (a cold npm shim can be slow).
const VERSION_LIMIT: Duration = Duration::from_secs(15);

/// How one check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Verdict {
    Ok,
    /// Works, but something may surprise the user.
    Warn,
    /// A first ask would fail.
    Fail,
}

/// One line of the report.
struct Check {
    verdict: Verdict,
    what: &'static str,
    said: String,
}

impl Check {
    fn new(verdict: Verdict, what: &'static str, said: impl Into<String>) -> Check {
        Check {
            verdict,
            what,
            said: said.into(),
        }
    }

    fn line(&self) -> String {
        let mark = match self.verdict {
            Verdict::Ok => "ok  ",
            Verdict::Warn => "warn",
            Verdict::Fail => "FAIL",
        };
        format!("{mark} {:<12} {}", self.what, self.said)
    }
}

/// Runs every check and prints the report on stdout.
pub(super) async fn run(config: Config) -> i32 {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let cwd = config.cwd.clone();
    let checks = [
        claude_cli(&config.claude_bin).await,
        credentials(home.as_deref()),
        state_dir(&config.state_dir),
        daemon(&config).await,
        hosts(home.as_deref(), &cwd),
    ];
    let report = checks
        .iter()
        .map(Check::line)
        .collect::<Vec<_>>()
        .join("\n");
    super::print_out(&report);
    match checks.iter().any(|c| c.verdict == Verdict::Fail) {
        true => 1,
        false => 0,
    }
}

/// The CLI found as the daemon would find it, and its version.
async fn claude_cli(program: &str) -> Check {
    let path = match resolve_program(program) {
        Ok(path) => path,
        Err(err) => return Check::new(Verdict::Fail, "claude", err.to_string()),
    };
    let asked = tokio::process::Command::new(&path)
        .arg("--version")
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output();
    let version = match tokio::time::timeout(VERSION_LIMIT, asked).await {
        Ok(Ok(out)) => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        Ok(Err(err)) => {
            let said = format!("{} cannot run: {err}", path.display());
            return Check::new(Verdict::Fail, "claude", said);
        }
        Err(_) => {
            let said = format!(
                "{} did not answer --version within {VERSION_LIMIT:?}",
                path.display()
            );
            return Check::new(Verdict::Fail, "claude", said);
        }
    };
    match version.contains("Claude Code") {
        true => Check::new(
            Verdict::Ok,
            "claude",
            format!("{version} at {}", path.display()),
        ),
        false => Check::new(
            Verdict::Warn,
            "claude",
            format!(
                "{} answers --version with {version:?}, not as Claude Code does; point --claude-bin at the `claude` binary",
                path.display()
            ),
        ),
    }
}

/// An API key in the environment, or a login the CLI saved.
fn credentials(home: Option<&Path>) -> Check {
    const KEYS: [&str; 3] = [
        "ANTHROPIC_API_KEY",
        "ANTHROPIC_AUTH_TOKEN",
        "CLAUDE_CODE_OAUTH_TOKEN",
    ];
    if let Some(key) = KEYS
        .iter()
        .find(|k| std::env::var_os(k).is_some_and(|v| !v.is_empty()))
    {
        return Check::new(Verdict::Ok, "login", format!("{key} is set"));
    }
    let saved = home.map(|h| h.join(".claude/.credentials.json"));
    if let Some(saved) = saved.filter(|p| p.is_file()) {
        return Check::new(
            Verdict::Ok,
            "login",
            format!("logged in ({})", saved.display()),
        );
    }
    // On macOS the CLI keeps its login in the keychain, which is not looked into here.
    Check::new(
        Verdict::Warn,
        "login",
        "no API key set and no saved login found (a macOS login lives in the keychain, \
         which is not checked): run `claude` once and /login, or set ANTHROPIC_API_KEY",
    )
}

/// The state directory: where it is, and that it can be used.
fn state_dir(dir: &Path) -> Check {
    let existing = dir.ancestors().find(|d| d.exists()).unwrap_or(dir);
    let writable = std::fs::metadata(existing)
        .map(|m| !m.permissions().readonly())
        .unwrap_or(false);
    match (dir.exists(), writable) {
        (true, true) => Check::new(Verdict::Ok, "state dir", dir.display().to_string()),
        (false, true) => Check::new(
            Verdict::Ok,
            "state dir",
            format!("{} (made on the first start)", dir.display()),
        ),
        (_, false) => Check::new(
            Verdict::Fail,
            "state dir",
            format!(
                "{} cannot be written: set --state-dir to a directory of yours",
                existing.display()
            ),
        ),
    }
}

/// A daemon running for this project, or how one comes.
async fn daemon(config: &Config) -> Check {
    match client::find(&config.state_dir, |_| true).await {
        Some(found) => Check::new(
            Verdict::Ok,
            "daemon",
            format!(
                "running (pid {}, {} session(s))",
                found.status.daemon.pid,
                found.status.sessions.len()
            ),
        ),
        None => Check::new(
            Verdict::Ok,
            "daemon",
            "none for this project: `claude-coded start` keeps one warm (a host starts its own)",
        ),
    }
}

/// Where hosts keep their MCP servers, user-wide and in this project, by host.
fn host_configs(home: Option<&Path>, cwd: &Path) -> Vec<(&'static str, PathBuf)> {
    let mut places = vec![
        ("Claude Code (project)", cwd.join(".mcp.json")),
        ("Cursor (project)", cwd.join(".cursor/mcp.json")),
        ("VS Code (project)", cwd.join(".vscode/mcp.json")),
        ("Gemini CLI (project)", cwd.join(".gemini/settings.json")),
    ];
    if let Some(home) = home {
        let user = [
            ("Claude Code", ".claude.json"),
            (
                "Claude Desktop",
                "Library/Application Support/Claude/claude_desktop_config.json",
            ),
            (
                "Claude Desktop",
                ".config/Claude/claude_desktop_config.json",
            ),
            ("Cursor", ".cursor/mcp.json"),
            ("VS Code", "Library/Application Support/Code/User/mcp.json"),
            ("VS Code", ".config/Code/User/mcp.json"),
            ("Zed", ".config/zed/settings.json"),
            ("Codex", ".codex/config.toml"),
            ("Gemini CLI", ".gemini/settings.json"),
        ];
        places.extend(user.iter().map(|(host, rel)| (*host, home.join(rel))));
    }
    places
}

/// Which hosts name claude-coded in their configuration.
fn hosts(home: Option<&Path>, cwd: &Path) -> Check {
    let found: Vec<String> = host_configs(home, cwd)
        .into_iter()
        .filter(|(_, path)| {
            std::fs::read_to_string(path).is_ok_and(|text| text.contains("claude-coded"))
        })
        .map(|(host, path)| format!("{host} ({})", path.display()))
        .collect();
    if found.is_empty() {
        return Check::new(
            Verdict::Warn,
            "hosts",
            "no host names claude-coded yet: `claude mcp add claude-coded -- claude-coded` \
             registers it in Claude Code; examples/ has the others",
        );
    }
    let mut said = format!("registered in {}", found.join(", "));
    if found.iter().any(|f| f.starts_with("Claude Code (project)")) {
        said.push_str(
            "; a project .mcp.json shows \"Pending approval\" in `claude mcp list` until \
             Claude Code asks you to approve it",
        );
    }
    Check::new(Verdict::Ok, "hosts", said)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_host_is_found_where_it_keeps_its_servers() {
        let base = std::env::temp_dir().join(format!("cc-doctor-{}", uuid::Uuid::new_v4()));
        let home = base.join("home");
        let cwd = base.join("proj");
        std::fs::create_dir_all(home.join(".codex")).unwrap();
        std::fs::create_dir_all(&cwd).unwrap();
        assert_eq!(hosts(Some(&home), &cwd).verdict, Verdict::Warn);
        std::fs::write(
            home.join(".codex/config.toml"),
            "[mcp_servers.claude-coded]\ncommand = \"claude-coded\"\n",
        )
        .unwrap();
        std::fs::write(
            cwd.join(".mcp.json"),
            r#"{"mcpServers":{"claude-coded":{"command":"claude-coded"}}}"#,
        )
        .unwrap();
        let check = hosts(Some(&home), &cwd);
        assert_eq!(check.verdict, Verdict::Ok);
        assert!(check.said.contains("Codex ("), "{}", check.said);
        assert!(check.said.contains("Pending approval"), "{}", check.said);
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn a_state_dir_that_cannot_be_written_fails() {
        let check = state_dir(Path::new("/proc/claude-coded-state"));
        assert_eq!(check.verdict, Verdict::Fail, "{}", check.said);
    }
}

//! Where a session may run, and what of `sessions.json` is trusted: a cwd resolved
//! through every symlink inside the allowed directories, and each stored entry checked
//! like the wire before it can reach the CLI's command line.

use std::path::{Path, PathBuf};

use super::{Stored, check_name, invalid};
use crate::config::Config;
use crate::error::DaemonError;

/// A `sessions.json` entry checked like the wire: the name as `session`, the id as
/// `resume` in the CLI's own form, the cwd absolute and confined. The resolved cwd, or
/// what is wrong.
pub(super) fn check_stored(config: &Config, name: &str, entry: &Stored) -> Result<PathBuf, String> {
    // Named in the message only once known to be short and plain.
    check_name(name).map_err(|_| "has an invalid session name".to_string())?;
    if let Some(id) = &entry.session_id
        && !crate::state_dir::is_canonical_uuid(id)
    {
        return Err(format!(
            "gives session `{name}` a session id that is not a UUID"
        ));
    }
    if entry.session_cost_usd.is_some_and(|usd| usd < 0.0) {
        return Err(format!("gives session `{name}` a negative cost"));
    }
    if !entry.cwd.is_absolute() {
        return Err(format!("gives session `{name}` a relative cwd"));
    }
    let cwd = entry.cwd.to_string_lossy();
    confine(config, &cwd)
        .map_err(|err| format!("gives session `{name}` a cwd that is refused: {err}"))
}

/// Where a session may run: `cwd` (relative to the server's `--cwd`), resolved through
/// every symlink, inside one of the allowed directories.
pub(super) fn confine(config: &Config, cwd: &str) -> Result<PathBuf, DaemonError> {
    let path = Path::new(cwd);
    let joined = if path.is_absolute() {
        path.to_path_buf()
    } else {
        config.cwd.join(path)
    };
    let real = std::fs::canonicalize(&joined)
        .ok()
        .filter(|p| p.is_dir())
        .ok_or_else(|| {
            invalid(
                "cwd",
                &format!("{} is not an existing directory", joined.display()),
            )
        })?;
    if config.allow_dirs.iter().any(|dir| real.starts_with(dir)) {
        return Ok(real);
    }
    let allowed: Vec<String> = config
        .allow_dirs
        .iter()
        .map(|d| d.display().to_string())
        .collect();
    Err(invalid(
        "cwd",
        &format!(
            "{} is outside the directories sessions may use ({}); the user can allow more with --allow-dir",
            real.display(),
            allowed.join(", ")
        ),
    ))
}

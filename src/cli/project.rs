//! Which project a client command run in some directory means: the client commands
//! (`ask`, `start`, `stop`, `status`, `events`) walk up from where they run, as `git` does,
//! so `ask` from `src/deep/inside` reaches the daemon started at the project's root
//! instead of silently starting a cold one of its own.
//!
//! Walking up: the nearest directory whose daemon answers on its socket wins; the walk
//! ends at the git root (the repository is the project), and never reaches `$HOME` or
//! `/` (a daemon started there must not capture every directory below). With no daemon
//! and no repository, the current directory is the project, as before.

use std::path::{Path, PathBuf};

use crate::config::default_state_dir;
use crate::socket::SOCKET_FILE;

/// The project directory for a client run in `here`, when it is not `here` itself.
pub(super) fn root_above(here: &Path) -> Option<PathBuf> {
    let home = std::env::var_os("HOME").map(PathBuf::from);
    let root = walk(here, home.as_deref(), |dir| {
        daemon_answers(&default_state_dir(dir))
    });
    (root != here).then(|| root.to_path_buf())
}

/// The walk itself, with what counts as a running daemon given (for the tests).
fn walk<'a>(here: &'a Path, home: Option<&Path>, runs: impl Fn(&Path) -> bool) -> &'a Path {
    for dir in here.ancestors() {
        if Some(dir) == home || dir.parent().is_none() {
            break;
        }
        if runs(dir) {
            return dir;
        }
        if dir.join(".git").exists() {
            return dir;
        }
    }
    here
}

/// Whether a daemon listens on the socket of `state_dir` (a connection is accepted).
fn daemon_answers(state_dir: &Path) -> bool {
    let socket = state_dir.join(SOCKET_FILE);
    socket.exists() && std::os::unix::net::UnixStream::connect(&socket).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree() -> PathBuf {
        let base = std::env::temp_dir().join(format!(
            "cc-project-{}-{}",
            std::process::id(),
            uuid::Uuid::new_v4()
        ));
        std::fs::create_dir_all(base.join("home/repo/src/deep")).unwrap();
        std::fs::create_dir_all(base.join("home/repo/.git")).unwrap();
        std::fs::create_dir_all(base.join("home/loose/a/b")).unwrap();
        base
    }

    #[test]
    fn inside_a_repository_the_git_root_is_the_project() {
        let base = tree();
        let home = base.join("home");
        let deep = home.join("repo/src/deep");
        assert_eq!(walk(&deep, Some(&home), |_| false), home.join("repo"));
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn the_nearest_running_daemon_wins_below_the_git_root() {
        let base = tree();
        let home = base.join("home");
        let deep = home.join("repo/src/deep");
        let src = home.join("repo/src");
        assert_eq!(walk(&deep, Some(&home), |dir| dir == src), src);
        std::fs::remove_dir_all(base).unwrap();
    }

    #[test]
    fn outside_a_repository_only_a_running_daemon_moves_the_project_and_never_to_home() {
        let base = tree();
        let home = base.join("home");
        let b = home.join("loose/a/b");
        assert_eq!(walk(&b, Some(&home), |_| false), b);
        let loose = home.join("loose");
        assert_eq!(walk(&b, Some(&home), |dir| dir == loose), loose);
        assert_eq!(walk(&b, Some(&home), |dir| dir == home), b);
        std::fs::remove_dir_all(base).unwrap();
    }
}

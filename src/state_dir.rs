//! The state directory: `identity.json` (kept across restarts), `daemon-state.json`
//! (rewritten atomically), `events.jsonl` (appended).
//!
//! Files are 0600 and the directory 0700, which must be the user's own and writable by
//! nobody else. A corrupt, unreadable or invalid file is kept aside as
//! `<name>.corrupt-<unix time>`, reported and replaced; it never stops the daemon. What is
//! read back is bounded in size and checked like wire input (the helpers here:
//! [`read_bounded`], [`is_canonical_uuid`], [`move_aside`]).

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::clock::now_rfc3339;

pub(crate) const IDENTITY_FILE: &str = "identity.json";
pub(crate) const STATE_FILE: &str = "daemon-state.json";
pub(crate) const EVENTS_FILE: &str = "events.jsonl";
pub(crate) const LOCK_FILE: &str = "instance.lock";
/// Held by `start` from looking for a daemon until the one it started listens.
pub(crate) const START_LOCK_FILE: &str = "start.lock";
/// Held by the project's background daemon (`serve --background`) for its whole life.
pub(crate) const BACKGROUND_LOCK_FILE: &str = "background.lock";
/// Largest `identity.json`, `daemon-state.json` or `sessions.json` read back.
pub(crate) const MAX_SMALL_FILE: u64 = 4 << 20;
/// Instances per project before giving up (hosts start one per conversation).
const MAX_INSTANCES: u32 = 64;

/// Errors of this layer: a file of the state directory cannot be used.
#[derive(Debug, Error)]
pub(crate) enum StateError {
    #[error("cannot create state directory {path}: {source}")]
    CreateDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot open {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("all {MAX_INSTANCES} instance directories under {base} are locked by running daemons")]
    AllInstancesBusy { base: PathBuf },
    #[error("{path} is a symbolic link; claude-coded does not follow links in its state directory")]
    Symlink { path: PathBuf },
    /// Another user could read the prompts in it, or replace `daemon.sock` with their own
    /// listener: a state directory must be the user's own and writable by nobody else.
    #[error(
        "{path} is owned by uid {owner} with mode {mode:03o}, but a state directory must be yours (uid {uid}) and writable by you only; remove it, or pass a --state-dir of your own"
    )]
    Foreign {
        path: PathBuf,
        owner: u32,
        mode: u32,
        uid: u32,
    },
}

impl StateError {
    /// `source` from opening `path`, named plainly when the cause is a refused link.
    fn open(path: &Path, source: std::io::Error) -> StateError {
        // O_NOFOLLOW says ELOOP, or ENOTDIR together with O_DIRECTORY.
        let refused_link = matches!(source.raw_os_error(), Some(libc::ELOOP | libc::ENOTDIR))
            && std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
        match refused_link {
            true => StateError::Symlink {
                path: path.to_path_buf(),
            },
            false => StateError::Open {
                path: path.to_path_buf(),
                source,
            },
        }
    }
}

/// Who this daemon is, kept across restarts of the bridge.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Identity {
    pub daemon_id: String,
    pub created_at: String,
}

/// What loading the identity found, so the caller can record it as an event.
#[derive(Debug)]
pub(crate) enum IdentityLoad {
    Existing(Identity),
    Created(Identity),
    /// The old file was unreadable or corrupt; it was moved to `moved_to` and replaced.
    Replaced {
        identity: Identity,
        reason: String,
        moved_to: Option<PathBuf>,
    },
}

impl IdentityLoad {
    pub(crate) fn identity(&self) -> &Identity {
        match self {
            IdentityLoad::Existing(i) | IdentityLoad::Created(i) => i,
            IdentityLoad::Replaced { identity, .. } => identity,
        }
    }
}

/// The state directory of one daemon instance, locked for as long as this value lives.
#[derive(Debug, Clone)]
pub(crate) struct StateDir {
    root: PathBuf,
    instance: u32,
    /// Holds the `flock` on `instance.lock`; the kernel drops it when the process dies.
    _lock: std::sync::Arc<File>,
}

impl StateDir {
    /// Takes the first free instance directory under `base`: `base` itself (instance 1),
    /// then `base/instances/2`, `3`, ... Several daemons for one project never share a file.
    pub(crate) fn open(base: &Path) -> Result<StateDir, StateError> {
        for instance in 1..=MAX_INSTANCES {
            let root = match instance {
                1 => base.to_path_buf(),
                n => base.join("instances").join(n.to_string()),
            };
            create_private_dir(&root)?;
            if let Some(lock) = try_lock(&root.join(LOCK_FILE))? {
                let root = std::fs::canonicalize(&root).unwrap_or(root);
                return Ok(StateDir {
                    root,
                    instance,
                    _lock: std::sync::Arc::new(lock),
                });
            }
        }
        Err(StateError::AllInstancesBusy {
            base: base.to_path_buf(),
        })
    }

    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// 1 for the first daemon of a project, 2, 3, ... for the others running beside it.
    pub(crate) fn instance(&self) -> u32 {
        self.instance
    }

    pub(crate) fn path(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Reads `identity.json`, creating or replacing it when missing or corrupt.
    pub(crate) fn load_identity(&self) -> Result<IdentityLoad, StateError> {
        let path = self.path(IDENTITY_FILE);
        let problem = match read_bounded(&path, MAX_SMALL_FILE) {
            Ok(bytes) => match serde_json::from_slice::<Identity>(&bytes) {
                Ok(identity) if is_canonical_uuid(&identity.daemon_id) => {
                    return Ok(IdentityLoad::Existing(identity));
                }
                Ok(_) => "corrupt: its daemonId is not a UUID".to_string(),
                Err(err) => format!("corrupt: {err}"),
            },
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => String::new(),
            // Someone else's identity, adopted through a link, would merge two daemons'
            // records; refuse like any other link in the directory.
            Err(err) if err.raw_os_error() == Some(libc::ELOOP) => {
                return Err(StateError::Symlink { path });
            }
            Err(err) => format!("unreadable: {err}"),
        };
        let identity = Identity {
            daemon_id: uuid::Uuid::new_v4().to_string(),
            created_at: now_rfc3339(),
        };
        let moved_to = if problem.is_empty() {
            None
        } else {
            move_aside(&path)
        };
        self.write_json_atomic(IDENTITY_FILE, &identity)?;
        Ok(if problem.is_empty() {
            IdentityLoad::Created(identity)
        } else {
            IdentityLoad::Replaced {
                identity,
                reason: problem,
                moved_to,
            }
        })
    }

    /// Writes `value` as JSON to `name` via a temp file and a rename, so readers never
    /// see a half-written file.
    pub(crate) fn write_json_atomic<T: Serialize>(
        &self,
        name: &str,
        value: &T,
    ) -> Result<(), StateError> {
        // One temporary file per write: several tasks write the same file at once (each
        // session saves `sessions.json` when it learns its session id), and a shared one
        // would be renamed away under another writer (its write then fails) or truncated
        // while being renamed into place.
        static WRITES: AtomicU64 = AtomicU64::new(0);
        let n = WRITES.fetch_add(1, Ordering::Relaxed);
        let path = self.path(name);
        let tmp = self.path(&format!(".{name}.{}.{n}.tmp", std::process::id()));
        let write = || -> std::io::Result<()> {
            let mut bytes = serde_json::to_vec_pretty(value).map_err(std::io::Error::other)?;
            bytes.push(b'\n');
            let mut file = private_file(&tmp, false)?;
            file.write_all(&bytes)?;
            file.sync_data()?;
            std::fs::rename(&tmp, &path)
        };
        crate::sync::blocking(write).map_err(|source| {
            let _ = std::fs::remove_file(&tmp);
            StateError::Write { path, source }
        })
    }

    /// Opens `events.jsonl` for appending (0600).
    pub(crate) fn open_event_log(&self) -> Result<File, StateError> {
        let path = self.path(EVENTS_FILE);
        private_file(&path, true).map_err(|source| StateError::open(&path, source))
    }
}

/// Creates `root` (and its parents) 0700, or tightens an existing one to 0700. `root`
/// itself must be a directory, not a link to one: a link would have us chmod and write
/// into whatever it points at. (Links among its parents, such as a linked home, are fine.)
pub(crate) fn create_private_dir(root: &Path) -> Result<(), StateError> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(root)
        .map_err(|source| StateError::CreateDir {
            path: root.to_path_buf(),
            source,
        })?;
    let dir = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_DIRECTORY | libc::O_NOFOLLOW)
        .open(root)
        .map_err(|source| StateError::open(root, source))?;
    let meta = dir
        .metadata()
        .map_err(|source| StateError::open(root, source))?;
    check_owned(root, &meta)?;
    // An existing directory keeps its mode otherwise; tighten it (through the descriptor
    // just checked, so a link swapped in meanwhile is not followed either).
    let _ = dir.set_permissions(std::fs::Permissions::from_mode(0o700));
    Ok(())
}

/// Whether `id` is a UUID in the one form the CLI prints (lowercase, hyphenated): ids read
/// back from disk reach the CLI's argv, so no other spelling is let through.
pub(crate) fn is_canonical_uuid(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|u| u.hyphenated().to_string() == id)
}

/// The effective user id of this process: whose state directories and daemons we use.
pub(crate) fn own_uid() -> u32 {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() }
}

/// Refuses a directory another user owns or may write into: they could read what the
/// daemon records, or put their own listener where `daemon.sock` is looked for.
fn check_owned(path: &Path, meta: &std::fs::Metadata) -> Result<(), StateError> {
    use std::os::unix::fs::MetadataExt;
    let uid = own_uid();
    let mode = meta.mode() & 0o7777;
    if meta.uid() == uid && mode & 0o022 == 0 {
        return Ok(());
    }
    Err(StateError::Foreign {
        path: path.to_path_buf(),
        owner: meta.uid(),
        mode,
        uid,
    })
}

/// Checks an existing state directory before any command uses it (one that does not
/// exist yet is made private when a daemon creates it). A link is left to
/// [`StateDir::open`], which refuses it (the daemon then runs without persisted state,
/// and clients still check who listens on its socket).
pub(crate) fn check_state_dir(path: &Path) -> Result<(), StateError> {
    check_parent(path)?;
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_symlink() => Ok(()),
        Ok(meta) => check_owned(path, &meta),
        Err(_) => Ok(()),
    }
}

/// Refuses a state directory whose parent another user controls (`/tmp/claude-coded`
/// made by them, when there is no `$XDG_STATE_HOME` nor home): they could rename ours
/// away and put theirs in its place. Root's directories, and shared ones with the sticky
/// bit (`/tmp`), are fine; so is one writable by the owner's group.
fn check_parent(path: &Path) -> Result<(), StateError> {
    use std::os::unix::fs::MetadataExt;
    let Some(parent) = std::path::absolute(path)
        .ok()
        .and_then(|p| p.parent().map(Path::to_path_buf))
    else {
        return Ok(());
    };
    let Ok(meta) = std::fs::metadata(&parent) else {
        return Ok(());
    };
    let uid = own_uid();
    let mode = meta.mode() & 0o7777;
    let owner_ok = meta.uid() == uid || meta.uid() == 0;
    // Group-writable is common for a project's directory (a user's private group).
    let shared_ok = mode & 0o002 == 0 || mode & 0o1000 != 0; // the sticky bit
    if owner_ok && shared_ok {
        return Ok(());
    }
    Err(StateError::Foreign {
        path: parent,
        owner: meta.uid(),
        mode,
        uid,
    })
}

/// Reads a whole file, refusing to follow a link in its last component (ELOOP).
pub(crate) fn read_no_follow(path: &Path) -> std::io::Result<Vec<u8>> {
    read_bounded(path, u64::MAX)
}

/// [`read_no_follow`], refusing a file larger than `limit` bytes (`FileTooLarge`):
/// a state file is read back whole, and a huge one would take the daemon's memory.
pub(crate) fn read_bounded(path: &Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("larger than {limit} bytes"),
        ));
    }
    Ok(bytes)
}

/// The last `limit` bytes of a file (all of it when smaller), not following a link, and
/// the file's length: for the logs a command shows the end of.
pub(crate) fn read_tail(path: &Path, limit: u64) -> std::io::Result<(Vec<u8>, u64)> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW)
        .open(path)?;
    let len = file.metadata()?.len();
    file.seek(SeekFrom::Start(len.saturating_sub(limit)))?;
    let mut bytes = Vec::new();
    file.take(limit).read_to_end(&mut bytes)?;
    Ok((bytes, len))
}

/// The first few of a file's problems, and how many more: a message stays one short line
/// however many entries were planted.
pub(crate) fn some_problems(problems: &[String]) -> String {
    const SHOWN: usize = 3;
    let mut text = problems[..problems.len().min(SHOWN)].join("; ");
    if problems.len() > SHOWN {
        text.push_str(&format!(" (and {} more problems)", problems.len() - SHOWN));
    }
    text
}

/// Moves a state file that cannot be trusted to `<name>.corrupt-<unix time>` beside it,
/// so it is kept for a look and never silently overwritten; returns where it went.
pub(crate) fn move_aside(path: &Path) -> Option<PathBuf> {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let name = path.file_name()?.to_string_lossy().into_owned();
    // Two in one second keep both: the second gets a counter.
    (0..100)
        .map(|n| match n {
            0 => path.with_file_name(format!("{name}.corrupt-{secs}")),
            n => path.with_file_name(format!("{name}.corrupt-{secs}-{n}")),
        })
        .find(|aside| std::fs::symlink_metadata(aside).is_err())
        .and_then(|aside| std::fs::rename(path, &aside).ok().map(|_| aside))
}

/// The lock file, locked; `None` when another process holds it.
pub(crate) fn try_lock(path: &Path) -> Result<Option<File>, StateError> {
    use std::os::fd::AsRawFd;
    let file = private_file(path, true).map_err(|source| StateError::open(path, source))?;
    // SAFETY: flock on a file descriptor we own.
    let rc = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
    if rc == 0 {
        return Ok(Some(file));
    }
    let err = std::io::Error::last_os_error();
    match err.raw_os_error() {
        Some(libc::EWOULDBLOCK) => Ok(None),
        _ => Err(StateError::Open {
            path: path.to_path_buf(),
            source: err,
        }),
    }
}

/// Opens a file readable only by the owner; `append` keeps existing content. A symlink
/// planted in the state directory is refused rather than followed.
pub(crate) fn private_file(path: &Path, append: bool) -> std::io::Result<File> {
    let mut options = OpenOptions::new();
    options
        .mode(0o600)
        .create(true)
        .custom_flags(libc::O_NOFOLLOW);
    if append {
        options.append(true);
    } else {
        options.write(true).truncate(true);
    }
    let file = options.open(path)?;
    // `mode` only applies on creation; a file made by someone else keeps its bits otherwise.
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_root(tag: &str) -> PathBuf {
        std::env::temp_dir().join(format!("cc-state-{tag}-{}", uuid::Uuid::new_v4().simple()))
    }

    #[test]
    fn concurrent_atomic_writes_of_one_file_all_succeed_and_leave_it_whole() {
        let root = temp_root("race");
        let dir = std::sync::Arc::new(StateDir::open(&root).unwrap());
        let writers: Vec<_> = (0..8)
            .map(|n| {
                let dir = dir.clone();
                std::thread::spawn(move || {
                    for round in 0..50 {
                        let value = serde_json::json!({"writer": n, "round": round});
                        dir.write_json_atomic("race.json", &value).unwrap();
                    }
                })
            })
            .collect();
        for writer in writers {
            writer.join().unwrap();
        }
        let written: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.path("race.json")).unwrap()).unwrap();
        assert!(written["round"].is_u64(), "{written}");
        let left: Vec<_> = std::fs::read_dir(dir.path(""))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(left.is_empty(), "temporary files left: {left:?}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn identity_is_created_once_then_kept() {
        let root = temp_root("id");
        let dir = StateDir::open(&root).unwrap();
        let first = dir.load_identity().unwrap();
        assert!(matches!(first, IdentityLoad::Created(_)));
        let again = dir.load_identity().unwrap();
        assert!(matches!(again, IdentityLoad::Existing(_)));
        assert_eq!(first.identity(), again.identity());
        let mode = std::fs::metadata(dir.path(IDENTITY_FILE))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
        let mode = std::fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o700);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_second_daemon_takes_its_own_instance_directory() {
        let root = temp_root("inst");
        let first = StateDir::open(&root).unwrap();
        let second = StateDir::open(&root).unwrap();
        assert_eq!((first.instance(), second.instance()), (1, 2));
        assert!(second.root().ends_with("instances/2"));
        drop(first);
        // The lock goes with its holder: the next daemon gets instance 1 again.
        let third = StateDir::open(&root).unwrap();
        assert_eq!(third.instance(), 1);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn symlinks_in_the_state_dir_are_not_followed() {
        let root = temp_root("link");
        let dir = StateDir::open(&root).unwrap();
        let target = root.join("elsewhere");
        std::os::unix::fs::symlink(&target, dir.path(EVENTS_FILE)).unwrap();
        assert!(dir.open_event_log().is_err());
        assert!(!target.exists());
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_state_dir_that_is_a_link_is_refused_and_its_target_left_alone() {
        let root = temp_root("dirlink");
        let target = temp_root("dirlink-target");
        std::fs::create_dir_all(&target).unwrap();
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755)).unwrap();
        std::os::unix::fs::symlink(&target, &root).unwrap();
        let err = StateDir::open(&root).unwrap_err();
        assert!(matches!(err, StateError::Symlink { .. }), "{err}");
        assert!(err.to_string().contains("symbolic link"), "{err}");
        let mode = std::fs::metadata(&target).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o755, "the link's target was chmodded");
        assert_eq!(std::fs::read_dir(&target).unwrap().count(), 0);
        std::fs::remove_file(&root).unwrap();
        std::fs::remove_dir_all(&target).unwrap();
    }

    #[test]
    fn a_linked_identity_is_refused_not_adopted() {
        let root = temp_root("idlink");
        let dir = StateDir::open(&root).unwrap();
        let foreign = root.join("someone-elses.json");
        let theirs = Identity {
            daemon_id: "not-ours".into(),
            created_at: now_rfc3339(),
        };
        std::fs::write(&foreign, serde_json::to_vec(&theirs).unwrap()).unwrap();
        std::os::unix::fs::symlink(&foreign, dir.path(IDENTITY_FILE)).unwrap();
        let err = dir.load_identity().unwrap_err();
        assert!(matches!(err, StateError::Symlink { .. }), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_linked_event_log_is_refused_by_name() {
        let root = temp_root("loglink");
        let dir = StateDir::open(&root).unwrap();
        std::os::unix::fs::symlink(root.join("elsewhere"), dir.path(EVENTS_FILE)).unwrap();
        let err = dir.open_event_log().unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn corrupt_identity_is_moved_aside_and_replaced() {
        let root = temp_root("corrupt");
        let dir = StateDir::open(&root).unwrap();
        std::fs::write(dir.path(IDENTITY_FILE), b"{not json").unwrap();
        match dir.load_identity().unwrap() {
            IdentityLoad::Replaced {
                reason, moved_to, ..
            } => {
                assert!(reason.starts_with("corrupt"), "{reason}");
                assert_eq!(std::fs::read(moved_to.unwrap()).unwrap(), b"{not json");
            }
            other => panic!("expected Replaced, got {other:?}"),
        }
        assert!(matches!(
            dir.load_identity().unwrap(),
            IdentityLoad::Existing(_)
        ));
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_state_dir_others_may_write_is_refused_with_what_was_found() {
        let root = temp_root("open");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::set_permissions(&root, std::fs::Permissions::from_mode(0o777)).unwrap();
        let err = StateDir::open(&root).unwrap_err();
        assert!(
            matches!(err, StateError::Foreign { mode: 0o777, .. }),
            "{err}"
        );
        assert!(check_state_dir(&root).is_err());
        // Left as found: nothing written, not tightened behind the user's back.
        assert_eq!(std::fs::read_dir(&root).unwrap().count(), 0);
        let mode = std::fs::metadata(&root).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o777);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn only_the_clis_own_spelling_of_a_uuid_is_canonical() {
        assert!(is_canonical_uuid("0f0e0d0c-0b0a-4908-8706-050403020100"));
        for other in [
            "--dangerously-skip-permissions",
            "0F0E0D0C-0B0A-4908-8706-050403020100",
            "0f0e0d0c0b0a49088706050403020100",
            "{0f0e0d0c-0b0a-4908-8706-050403020100}",
            "urn:uuid:0f0e0d0c-0b0a-4908-8706-050403020100",
        ] {
            assert!(!is_canonical_uuid(other), "{other}");
        }
    }

    #[test]
    fn an_identity_whose_id_is_not_a_uuid_is_kept_aside_and_replaced() {
        let root = temp_root("badid");
        let dir = StateDir::open(&root).unwrap();
        let forged = br#"{"daemonId":"--evil","createdAt":"x"}"#;
        std::fs::write(dir.path(IDENTITY_FILE), forged).unwrap();
        let IdentityLoad::Replaced {
            identity, moved_to, ..
        } = dir.load_identity().unwrap()
        else {
            panic!("not replaced");
        };
        assert!(is_canonical_uuid(&identity.daemon_id));
        let moved_to = moved_to.unwrap();
        let name = moved_to.file_name().unwrap().to_string_lossy().into_owned();
        assert!(name.starts_with("identity.json.corrupt-"), "{name}");
        assert!(
            name["identity.json.corrupt-".len()..]
                .parse::<u64>()
                .is_ok(),
            "{name}"
        );
        assert_eq!(std::fs::read(moved_to).unwrap(), forged);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_file_past_its_bound_is_not_read() {
        let root = temp_root("bound");
        std::fs::create_dir_all(&root).unwrap();
        let path = root.join("big");
        std::fs::write(&path, vec![b'x'; 11]).unwrap();
        assert_eq!(read_bounded(&path, 11).unwrap().len(), 11);
        let err = read_bounded(&path, 10).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::FileTooLarge);
        std::fs::write(&path, b"0123456789").unwrap();
        assert_eq!(read_tail(&path, 4).unwrap(), (b"6789".to_vec(), 10));
        assert_eq!(read_tail(&path, 40).unwrap(), (b"0123456789".to_vec(), 10));
        std::fs::remove_dir_all(&root).unwrap();
    }
}

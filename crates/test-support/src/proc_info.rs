//! What `/proc` tells about processes: peak memory, children, and every process that
//! belongs to one daemon (found by the `CLAUDE_CODED_DAEMON_ID` its child and the
//! child's own processes inherit, so a leak is found even after reparenting to init).

/// Peak resident set size (`VmHWM`) of `pid`, in KiB.
pub fn peak_rss_kib(pid: u32) -> Option<u64> {
    status_field_kib(pid, "VmHWM:")
}

/// Current resident set size (`VmRSS`) of `pid`, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    status_field_kib(pid, "VmRSS:")
}

fn status_field_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line[field.len()..]
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// State letter and parent pid of `pid` (from `/proc/<pid>/stat`).
pub fn state_and_parent(pid: u32) -> Option<(char, u32)> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses: fields start after the last ')'.
    let mut fields = stat.rsplit_once(')')?.1.split_whitespace();
    let state = fields.next()?.chars().next()?;
    let parent = fields.next()?.parse().ok()?;
    Some((state, parent))
}

/// True while `pid` exists and is not a zombie.
pub fn alive(pid: u32) -> bool {
    state_and_parent(pid).is_some_and(|(state, _)| state != 'Z')
}

/// init (pid 1), kthreadd (pid 2) and the kernel threads it parents: their environment
/// is unreadable, and no test starts them.
fn is_system_process(pid: u32) -> bool {
    pid <= 2 || state_and_parent(pid).is_some_and(|(_, parent)| parent == 2)
}

fn all_pids() -> Vec<u32> {
    std::fs::read_dir("/proc")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok()?.file_name().to_str()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Processes whose parent is `pid`, zombies included (a zombie is a child not reaped).
pub fn children_of(pid: u32) -> Vec<(u32, char)> {
    all_pids()
        .into_iter()
        .filter_map(|p| match state_and_parent(p) {
            Some((state, parent)) if parent == pid => Some((p, state)),
            _ => None,
        })
        .collect()
}

/// Live processes started for the daemon `daemon_id`: its guard, the CLI and anything
/// the CLI started, wherever they were reparented.
pub fn processes_of_daemon(daemon_id: &str) -> Vec<u32> {
    processes_with_env(&format!("CLAUDE_CODED_DAEMON_ID={daemon_id}"))
}

/// How long an unreadable environment may stay so before the check gives up on it.
const UNREADABLE_FOR: std::time::Duration = std::time::Duration::from_secs(3);

/// `/proc/<pid>/environ`, read again for a while when it is refused (EACCES): a process
/// of an earlier test that is exiting, or is between credentials, refuses it for a moment;
/// one that still refuses it after [`UNREADABLE_FOR`] is reported.
fn read_environ(pid: u32) -> std::io::Result<Vec<u8>> {
    let deadline = std::time::Instant::now() + UNREADABLE_FOR;
    loop {
        match std::fs::read(format!("/proc/{pid}/environ")) {
            Err(err)
                if err.raw_os_error() == Some(libc::EACCES)
                    && alive(pid)
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            other => return other,
        }
    }
}

/// Live processes (other than this one) whose environment holds `entry` (`NAME=value`),
/// wherever they were reparented: e.g. `HOME=<sandbox>` finds everything a test started.
/// init and kernel threads are never ours, and are not read: on these VMs init refuses
/// its environment, and waiting out each refusal cost every call 3 s.
pub fn processes_with_env(entry: &str) -> Vec<u32> {
    let me = std::process::id();
    all_pids()
        .into_iter()
        .filter(|pid| *pid != me && !is_system_process(*pid))
        .filter(|pid| match read_environ(*pid) {
            Ok(env) => env.split(|b| *b == 0).any(|var| var == entry.as_bytes()),
            // Gone meanwhile (or exiting: ESRCH): not a leak.
            Err(err)
                if err.kind() == std::io::ErrorKind::NotFound
                    || err.raw_os_error() == Some(libc::ESRCH) =>
            {
                false
            }
            // A check that cannot look must not pass as "nothing left".
            Err(err) if alive(*pid) => {
                let command = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
                let command = String::from_utf8_lossy(&command).replace('\0', " ");
                panic!(
                    "cannot read /proc/{pid}/environ ({command}) to look for leaked processes: {err}"
                )
            }
            Err(_) => false,
        })
        .filter(|pid| alive(*pid))
        .collect()
}

/// Every pid in `/proc` with its parent, one read of each `stat`.
pub fn process_table() -> Vec<(u32, u32)> {
    all_pids()
        .into_iter()
        .filter_map(|pid| state_and_parent(pid).map(|(_, parent)| (pid, parent)))
        .collect()
}

/// Waits up to `limit` for every process of `daemon_id` to be gone; returns the survivors.
pub fn survivors_of_daemon(daemon_id: &str, limit: std::time::Duration) -> Vec<u32> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        let left = processes_of_daemon(daemon_id);
        if left.is_empty() || std::time::Instant::now() > deadline {
            return left;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
}

/// The command line of `pid`, for messages about survivors.
pub fn command_line(pid: u32) -> String {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|raw| {
            String::from_utf8_lossy(&raw)
                .replace('\0', " ")
                .trim()
                .to_string()
        })
        .unwrap_or_default()
}

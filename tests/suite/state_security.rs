//! The state directory as a trust boundary: what is read back from its files is checked
//! like wire input, a directory or a `daemon.sock` listener of another user is refused,
//! one background daemon per state directory whatever the race, and `sessions.json`
//! stays bounded. The other-user cases make a second local user (`useradd`) and are
//! skipped, saying why, when the tests do not run as root.

use std::collections::BTreeSet;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use test_support::TempDir;
use test_support::cli::{cli, run};

/// The second local user the other-user cases run as.
pub(crate) const PROBE_USER: &str = "claude-coded-probe";

/// The lines of the double's `DOUBLE_RECORD` file: one per CLI started, with its argv.
fn recorded_starts(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The files beside `name` in `dir` that were kept aside (`<name>.corrupt-<time>`).
fn kept_aside(dir: &Path, name: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .is_some_and(|f| f.to_string_lossy().starts_with(&format!("{name}.corrupt-")))
        })
        .collect()
}

#[tokio::test]
async fn a_session_id_or_cwd_planted_in_sessions_json_never_reaches_the_cli() {
    let home = TempDir::new("planted");
    let state = home.path().join("state");
    let cwd = home.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    // What an agent's Bash could write there: a flag as the id, a directory that is not.
    let planted = json!({
        "evil": {"sessionId": "--dangerously-skip-permissions", "cwd": cwd, "createdAt": "2026-01-01T00:00:00Z"},
        "elsewhere": {"sessionId": "0f0e0d0c-0b0a-4908-8706-050403020100", "cwd": "/nonexistent/dir", "createdAt": "2026-01-01T00:00:00Z"},
    });
    let original = serde_json::to_vec_pretty(&planted).unwrap();
    std::fs::write(state.join("sessions.json"), &original).unwrap();
    let record = home.path().join("starts.jsonl");
    let mut ask = cli(home.path(), &["ask", "--session", "evil", "hello"]);
    ask.env("DOUBLE_RECORD", &record);
    let asked = run(ask, None).await;
    assert_eq!(asked.code, 0, "{asked:?}");
    let starts = recorded_starts(&record);
    assert!(!starts.is_empty(), "the double recorded no start");
    for start in &starts {
        let argv: Vec<&str> = start["argv"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(Value::as_str)
            .collect();
        assert!(
            !argv.contains(&"--dangerously-skip-permissions") && !argv.contains(&"--resume"),
            "a planted id reached the CLI: {argv:?}"
        );
        assert_ne!(start["cwd"], "/nonexistent/dir");
    }
    // The file was kept aside as it was, and the fact recorded.
    let aside = kept_aside(&state, "sessions.json");
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert_eq!(std::fs::read(&aside[0]).unwrap(), original);
    let events = std::fs::read_to_string(state.join("events.jsonl")).unwrap();
    assert!(
        events
            .lines()
            .any(|l| l.contains(r#""type":"state.corrupt""#) && l.contains("sessions.json")),
        "{events}"
    );
    let saved: Value =
        serde_json::from_slice(&std::fs::read(state.join("sessions.json")).unwrap()).unwrap();
    assert_ne!(saved["evil"]["sessionId"], "--dangerously-skip-permissions");
    assert!(saved.get("elsewhere").is_none(), "{saved}");
}

#[tokio::test]
async fn sessions_json_keeps_at_most_256_names_forgetting_the_least_recently_used() {
    let home = TempDir::new("bound");
    let state = home.path().join("state");
    let cwd = home.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    let many: serde_json::Map<String, Value> = (0..300)
        .map(|n| {
            let entry = json!({
                "sessionId": uuid::Uuid::new_v4().to_string(),
                "cwd": cwd,
                "createdAt": "2026-01-01T00:00:00Z",
                "lastUsedAt": format!("2026-01-01T00:{:02}:{:02}Z", n / 60, n % 60),
            });
            (format!("s{n:03}"), entry)
        })
        .collect();
    std::fs::write(
        state.join("sessions.json"),
        serde_json::to_vec(&many).unwrap(),
    )
    .unwrap();
    let asked = run(
        cli(home.path(), &["ask", "--session", "newest", "hi"]),
        None,
    )
    .await;
    assert_eq!(asked.code, 0, "{asked:?}");
    let saved: serde_json::Map<String, Value> =
        serde_json::from_slice(&std::fs::read(state.join("sessions.json")).unwrap()).unwrap();
    assert!(saved.len() <= 256, "{} names kept", saved.len());
    assert!(saved.contains_key("newest"));
    assert!(saved.contains_key("s299"));
    assert!(
        !saved.contains_key("s000"),
        "the least recently used went first"
    );
    let events = std::fs::read_to_string(state.join("events.jsonl")).unwrap();
    assert!(events.contains(r#""type":"session.forgotten""#), "{events}");
}

#[tokio::test]
async fn racing_starts_leave_exactly_one_daemon_and_report_it() {
    let home = TempDir::new("race");
    let starts: Vec<_> = (0..4)
        .map(|_| tokio::spawn(run(cli(home.path(), &["start"]), None)))
        .collect();
    let mut pids = BTreeSet::new();
    for start in starts {
        let out = start.await.unwrap();
        assert_eq!(out.code, 0, "{out:?}");
        let pid = out
            .stderr
            .split("pid ")
            .nth(1)
            .and_then(|rest| rest.split(|c: char| !c.is_ascii_digit()).next())
            .and_then(|pid| pid.parse::<i32>().ok())
            .unwrap_or_else(|| panic!("no pid in {out:?}"));
        pids.insert(pid);
    }
    let stopped = run(cli(home.path(), &["stop"]), None).await;
    for pid in &pids {
        // SAFETY: kill(2) on daemons this test started; gone ones just fail.
        unsafe { libc::kill(*pid, libc::SIGKILL) };
    }
    assert_eq!(pids.len(), 1, "daemons started: {pids:?}");
    assert_eq!(stopped.code, 0, "{stopped:?}");
}

#[tokio::test]
async fn a_state_dir_others_may_write_is_refused_naming_it() {
    let home = TempDir::new("open-dir");
    let state = home.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).unwrap();
    for args in [&["status"][..], &["ask", "hello"], &["start"]] {
        let out = run(cli(home.path(), args), None).await;
        assert_eq!(out.code, 2, "{args:?}: {out:?}");
        assert!(
            out.stderr.contains(&state.display().to_string())
                && out.stderr.contains("mode 777")
                && out.stderr.contains("--state-dir"),
            "{out:?}"
        );
        assert_eq!(out.stderr.lines().count(), 1, "{out:?}");
    }
    assert!(!state.join("daemon.sock").exists());
}

/// The probe user's uid and gid, made once (`useradd`); `None` (with the reason printed)
/// when the tests do not run as root.
pub(crate) fn probe_user() -> Option<(u32, u32)> {
    static MADE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: making a second local user ({PROBE_USER}) needs root");
        return None;
    }
    let _made = MADE.lock().unwrap_or_else(|e| e.into_inner());
    let id = |flag: &str| -> Option<u32> {
        let out = std::process::Command::new("id")
            .args([flag, PROBE_USER])
            .output()
            .ok()?;
        String::from_utf8_lossy(&out.stdout).trim().parse().ok()
    };
    if id("-u").is_none() {
        let made = std::process::Command::new("useradd")
            .args([
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
            ])
            .arg(PROBE_USER)
            .status()
            .expect("run useradd");
        assert!(made.success() || id("-u").is_some(), "useradd {PROBE_USER}");
    }
    Some((id("-u")?, id("-g")?))
}

#[tokio::test]
async fn a_state_dir_owned_by_another_user_is_refused() {
    let Some((uid, gid)) = probe_user() else {
        return;
    };
    let home = TempDir::new("foreign-dir");
    let state = home.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&state, Some(uid), Some(gid)).unwrap();
    let out = run(cli(home.path(), &["ask", "hello"]), None).await;
    assert_eq!(out.code, 2, "{out:?}");
    assert!(
        out.stderr.contains(&format!("owned by uid {uid}")),
        "{out:?}"
    );
    assert_eq!(std::fs::read_dir(&state).unwrap().count(), 0);
}

/// A listener on a socket, run as the probe user: it appends what it receives to
/// `got`, and a line to `log` as each connection ends.
const LISTENER: &str = r#"
import socket, sys
s = socket.socket(socket.AF_UNIX)
s.bind(sys.argv[1])
s.listen(8)
open(sys.argv[3], "a").write("listening\n")
while True:
    c, _ = s.accept()
    c.settimeout(10)
    try:
        while True:
            d = c.recv(65536)
            if not d:
                break
            open(sys.argv[2], "ab").write(d)
    except Exception:
        pass
    c.close()
    open(sys.argv[3], "a").write("ended\n")
"#;

/// Waits until `path` has `count` lines equal to `line`.
async fn wait_for_line(path: &Path, line: &str, count: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        if text.lines().filter(|l| *l == line).count() >= count {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no {line:?} in {}",
            path.display()
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn clients_send_nothing_to_a_daemon_sock_another_user_listens_on() {
    let Some((uid, gid)) = probe_user() else {
        return;
    };
    let home = TempDir::new("foreign-sock");
    let theirs = home.path().join("theirs");
    std::fs::create_dir_all(&theirs).unwrap();
    std::os::unix::fs::chown(&theirs, Some(uid), Some(gid)).unwrap();
    let (got, log) = (theirs.join("got"), theirs.join("log"));
    let mut listener = tokio::process::Command::new("/usr/bin/python3");
    listener
        .args(["-c", LISTENER])
        .arg(theirs.join("l.sock"))
        .args([&got, &log])
        .uid(uid)
        .gid(gid)
        .kill_on_drop(true);
    let _listener = listener.spawn().expect("run the listener");
    wait_for_line(&log, "listening", 1).await;
    // Their listener where our daemon's socket is looked for (in a directory of ours).
    let state = home.path().join("state");
    std::fs::create_dir_all(&state).unwrap();
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::rename(theirs.join("l.sock"), state.join("daemon.sock")).unwrap();
    let status = run(cli(home.path(), &["status"]), None).await;
    wait_for_line(&log, "ended", 1).await;
    let asked = run(cli(home.path(), &["ask", "a secret prompt"]), None).await;
    wait_for_line(&log, "ended", 2).await;
    let received = std::fs::read(&got).unwrap_or_default();
    assert!(
        received.is_empty(),
        "sent to their listener: {}",
        String::from_utf8_lossy(&received)
    );
    // Each said why, naming the listener's user.
    for out in [&status, &asked] {
        assert!(
            out.stderr.contains(&format!("runs as uid {uid}")),
            "{out:?}"
        );
    }
}

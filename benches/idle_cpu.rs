//! Idle is idle: the CPU claude-coded itself uses while nothing happens, with 8 live
//! sessions and a warm spare.
//!
//! Run: `cargo bench --bench idle_cpu` (the CLI double; `CLAUDE_BIN=...` for the real
//! CLI). One claude-coded with `--max-sessions 8 --spare-sessions 1`; each session answers
//! one ask, then nothing is asked for `IDLE_CPU_SECONDS` (default 10) while the user and
//! system CPU ticks of claude-coded's process (all its threads; its children are not
//! counted) are read from `/proc/<pid>/stat` before and after. The target (issue 26) is 0.
//! It prints numbers and asserts nothing about them.
// Bench code: a failed unwrap is a failed run, its output is the report.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    unreachable_pub
)]

mod support;

use std::time::Duration;

use mock_api::MockApi;
use serde_json::json;
use support::{Proc, Sandbox, check};

const SESSIONS: usize = 8;

fn main() -> std::io::Result<()> {
    let (child, which) = support::child_cli();
    let seconds: u64 = std::env::var("IDLE_CPU_SECONDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10);
    let mock = MockApi::start();
    let root = std::env::temp_dir().join(format!("cc-idle-cpu-bench-{}", std::process::id()));
    let sandbox = Sandbox::new(&root)?;
    let mut command = support::claude_coded(&sandbox, &root, &child, &mock.base_url());
    command
        .args([
            "--max-sessions",
            &SESSIONS.to_string(),
            "--spare-sessions",
            "1",
        ])
        .env("RUST_LOG", "error");
    let mut proc = Proc::spawn(&mut command)?;
    let pid = proc.child.id();
    for n in 0..SESSIONS {
        let id = n as u64 + 1;
        let params = json!({"session": format!("s{n}"), "prompt": "hello"});
        proc.write_line(&json!({"jsonrpc": "2.0", "id": id, "method": "ask", "params": params}))?;
        let answer = proc.read_until(|v| v["id"] == id && v.get("method").is_none())?;
        check(answer["result"]["ok"] == true, &answer)?;
    }
    // Let the last turn's bookkeeping and the spare's warm-up settle.
    std::thread::sleep(Duration::from_secs(3));
    let before = cpu_ticks(pid)?;
    std::thread::sleep(Duration::from_secs(seconds));
    let after = cpu_ticks(pid)?;
    proc.finish()?;
    let _ = std::fs::remove_dir_all(&root);
    println!(
        "idle CPU: child {which}; claude-coded with {SESSIONS} live sessions and 1 spare used \
         {} clock ticks (user + system, 1/{} s each) in {seconds} s of idle",
        after - before,
        clock_ticks_per_second()
    );
    Ok(())
}

/// User plus system CPU ticks of `pid` so far (`/proc/<pid>/stat`, fields 14 and 15).
fn cpu_ticks(pid: u32) -> std::io::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or(Vec::new(), |(_, rest)| rest.split_whitespace().collect());
    let field = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Ok(field(11) + field(12))
}

fn clock_ticks_per_second() -> i64 {
    // SAFETY: sysconf only reads a system constant.
    unsafe { libc::sysconf(libc::_SC_CLK_TCK) }
}

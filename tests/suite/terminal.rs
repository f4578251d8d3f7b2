//! The commands as a person sees them in a terminal: `claude-coded ask` and
//! `claude-coded status -w` run in a real pseudo-terminal (a tmux pane, over the CLI
//! double, with a daemon started for the project), and the pane's text is read back:
//! the answer's text appears while the turn runs and is written once, and the live view
//! has one line per live session, redrawn in place with the turn's step. They need
//! `tmux` (`.ci/run` installs it). Every wait polls the pane up to a deadline.

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use test_support::TempDir;
use test_support::cli::{cli, run};

/// How long a pane may take to show what is waited for.
const PANE_WAIT: Duration = Duration::from_secs(20);
/// What the pane's command prints when it exits, with its status.
const EXITED: &str = "EXITED=";

/// A tmux server of its own (its own socket), with one pane running one command; killed
/// when dropped.
struct Pane {
    socket: String,
}

impl Pane {
    /// Runs `args` of claude-coded in a 150x40 pane, for the project `home/cwd` (as
    /// [`cli`] runs it); the pane then says `EXITED=<status>` and stays.
    fn start(home: &Path, args: &[&str]) -> Pane {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let socket = format!(
            "claude-coded-test-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let command = format!(
            "cd {cwd} && env -i PATH=/usr/bin:/bin TERM=xterm-256color HOME={home} \
             CLAUDE_CODED_STATE_DIR={state} CLAUDE_CODED_CLAUDE_BIN={double} {bridge} {args}; \
             echo {EXITED}$?; sleep 600",
            cwd = quote(&home.join("cwd").display().to_string()),
            home = quote(&home.display().to_string()),
            state = quote(&home.join("state").display().to_string()),
            double = quote(&test_support::double().display().to_string()),
            bridge = quote(&test_support::bridge_under_test().display().to_string()),
            args = args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" "),
        );
        let pane = Pane { socket };
        let started = pane
            .tmux()
            .args(["new-session", "-d", "-x", "150", "-y", "40", "-s", "t"])
            .arg(command)
            .status()
            .expect("run tmux (apt-get install tmux; .ci/run installs it)");
        assert!(started.success(), "tmux new-session failed");
        pane
    }

    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket, "-f", "/dev/null"]);
        command
    }

    /// The pane's text now.
    fn text(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-t", "t"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// The pane's text once `seen` holds of it; fails with the text after [`PANE_WAIT`].
    async fn until(&self, what: &str, seen: impl Fn(&str) -> bool) -> String {
        let deadline = Instant::now() + PANE_WAIT;
        loop {
            let text = self.text();
            if seen(&text) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "the pane never showed {what}:\n{text}"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    fn press(&self, key: &str) {
        let sent = self.tmux().args(["send-keys", "-t", "t", key]).status();
        assert!(sent.is_ok_and(|s| s.success()), "tmux send-keys {key}");
    }
}

impl Drop for Pane {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

fn quote(word: &str) -> String {
    format!("'{}'", word.replace('\'', r"'\''"))
}

/// A project with a background daemon over the double; the daemon is stopped when this
/// is dropped, so a failing test leaves no daemon behind.
struct Project {
    home: TempDir,
}

impl Project {
    async fn started(tag: &str) -> Project {
        let home = TempDir::new(tag);
        let out = run(cli(home.path(), &["start"]), None).await;
        assert_eq!(out.code, 0, "{out:?}");
        Project { home }
    }

    fn path(&self) -> &Path {
        self.home.path()
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let home = self.home.path();
        let _ = std::process::Command::new(test_support::bridge_under_test())
            .arg("stop")
            .current_dir(home.join("cwd"))
            .env("HOME", home)
            .env("CLAUDE_CODED_STATE_DIR", home.join("state"))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status();
    }
}

#[tokio::test]
async fn ask_on_a_terminal_shows_the_answer_as_it_streams_and_writes_it_once() {
    let home = Project::started("term-ask").await;
    // Four pieces of text 300 ms apart, one answer made of all four.
    let pane = Pane::start(home.path(), &["ask", "SLOW ms=300 chunks=4"]);
    // On a line of its own: the spinner's line on stderr names the step too.
    let early = pane
        .until("the first piece of text", |t| {
            t.lines().any(|l| l.starts_with("slow chunk 1"))
        })
        .await;
    assert!(
        !early.contains(EXITED) && !early.contains("slow chunk 4"),
        "the text came only with the end of the turn:\n{early}"
    );
    let done = pane.until("the exit", |t| t.contains(EXITED)).await;
    assert!(done.contains(&format!("{EXITED}0")), "{done}");
    let answer = "slow chunk 1slow chunk 2slow chunk 3slow chunk 4";
    assert_eq!(done.matches(answer).count(), 1, "written twice:\n{done}");
    assert_eq!(done.matches("slow chunk 1").count(), 1, "{done}");
    // The spinner's line was cleared: nothing but the answer before the exit.
    let before_exit: Vec<&str> = done
        .lines()
        .take_while(|l| !l.starts_with(EXITED))
        .filter(|l| !l.trim().is_empty())
        .collect();
    assert_eq!(before_exit, [answer], "{done}");
    // Piped, stdout is exactly the answer still.
    let piped = run(cli(home.path(), &["ask", "SLOW ms=10 chunks=2"]), None).await;
    assert_eq!(piped.stdout, "slow chunk 1slow chunk 2\n");
}

#[tokio::test]
async fn status_watch_shows_each_live_session_with_its_step_redrawn_in_place() {
    let home = Project::started("term-watch").await;
    let pane = Pane::start(home.path(), &["status", "-w"]);
    pane.until("the default session", |t| {
        t.lines()
            .any(|l| l.contains("default") && l.contains("ready"))
    })
    .await;
    let asked = tokio::spawn(run(
        cli(
            home.path(),
            &["ask", "--session", "docs", "SLOW ms=400 chunks=5"],
        ),
        None,
    ));
    let busy = pane
        .until("the docs session at work", |t| {
            t.lines()
                .any(|l| l.contains("docs") && l.contains("busy") && l.contains("slow chunk"))
        })
        .await;
    assert!(
        busy.lines()
            .any(|l| l.contains("default") && l.contains("ready")),
        "{busy}"
    );
    let out = asked.await.expect("the ask ran");
    assert_eq!(out.code, 0, "{out:?}");
    let idle = pane
        .until("the docs session done", |t| {
            t.lines()
                .any(|l| l.contains("docs") && l.contains("ready") && l.contains("1 turn"))
        })
        .await;
    // Redrawn in place: one heading, one line per session, no trail of old frames.
    assert_eq!(idle.matches("live of at most").count(), 1, "{idle}");
    assert_eq!(
        idle.lines().filter(|l| l.contains("docs")).count(),
        1,
        "{idle}"
    );
    pane.press("C-c");
    let quit = pane.until("the exit", |t| t.contains(EXITED)).await;
    assert!(quit.contains(&format!("{EXITED}0")), "{quit}");
    // Not on a terminal: the view once, without escape codes.
    let once = run(cli(home.path(), &["status", "-w"]), None).await;
    assert_eq!(once.code, 0, "{once:?}");
    assert!(once.stdout.contains("2 live of at most"), "{once:?}");
    assert!(!once.stdout.contains('\x1b'), "{once:?}");
}

//! The soak driver shared by `examples/soak.rs` (long runs) and `tests/suite/soak_short.rs`
//! (CI): one claude-coded bridge on the plain or the MCP surface over the CLI double, fed a
//! seeded random mix of asks (normal, failing turns, crashes, kills, hangs caught by the
//! timeout or by the stall watchdog, garbage output, slow and huge turns, tool processes;
//! on MCP also asks cancelled right behind their prompt), up to `max_in_flight`
//! pipelined, with `status` polled along the way.
//!
//! On MCP the double takes 20 ms from a prompt to its turn's start, the window in which
//! the real CLI acknowledges an interrupt and then ignores it (issue 9): a cancel at turn
//! start that got the child killed would show as more kills after an unheeded interrupt
//! than asks that hang.
//!
//! It checks what "never hang, never orphan, never lose" means from the outside: every
//! ask gets exactly one answer, of the kind its prompt calls for; no id is answered
//! twice or invented; streamed notifications add up; the bridge exits 0 on stdin EOF;
//! no process of this bridge (guards, CLIs, their tool processes) outlives it.

mod surface;

pub use surface::SoakSurface;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

use crate::proc_info;

/// Longest wait for any answer: a bridge silent this long with asks in flight has hung.
const SILENCE_LIMIT: Duration = Duration::from_secs(60);
/// `status` is polled after this many answers.
const STATUS_EVERY: usize = 10;

/// What to run.
#[derive(Debug, Clone)]
pub struct Settings {
    pub asks: usize,
    pub seed: u64,
    /// Asks pipelined at most; each phase picks a depth from 1 to this.
    pub max_in_flight: usize,
    pub bridge: PathBuf,
    pub double: PathBuf,
    pub surface: SoakSurface,
}

/// What an ask asks the double to do, and so what its answer must be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Prompt {
    Normal,
    Garbage,
    Slow,
    Huge,
    Multi,
    Tool,
    Grandchild,
    Err400,
    MaxTurns,
    Crash,
    Kill,
    HangTimeout,
    HangStall,
    /// MCP: a slow ask cancelled right behind its prompt; it must get no answer, and its
    /// turn must end at the interrupt (not by a kill after the grace period).
    CancelAtStart,
}

/// Weight of [`Prompt::CancelAtStart`] in the MCP mix.
const CANCEL_WEIGHT: u64 = 8;

/// Relative weights of the mix.
const MIX: [(Prompt, u64); 13] = [
    (Prompt::Normal, 40),
    (Prompt::Garbage, 6),
    (Prompt::Slow, 8),
    (Prompt::Huge, 5),
    (Prompt::Multi, 3),
    (Prompt::Tool, 3),
    (Prompt::Grandchild, 2),
    (Prompt::Err400, 4),
    (Prompt::MaxTurns, 3),
    (Prompt::Crash, 5),
    (Prompt::Kill, 3),
    (Prompt::HangTimeout, 3),
    (Prompt::HangStall, 2),
];

impl Prompt {
    fn params(self, n: usize, rng: &mut Rng) -> Value {
        let prompt = match self {
            Prompt::Normal => format!("soak ask {n}"),
            Prompt::Garbage => "GARBAGE".into(),
            Prompt::Slow => format!("SLOW {} {}", rng.below(10), 1 + rng.below(20)),
            Prompt::Huge => "HUGE 100000".into(),
            Prompt::Multi => "MULTI".into(),
            Prompt::Tool => "RUN_TOOL echo soak".into(),
            Prompt::Grandchild => "SPAWN_GRANDCHILD".into(),
            Prompt::Err400 => "ERR400".into(),
            Prompt::MaxTurns => "MAXTURNS".into(),
            Prompt::Crash => format!("CRASH {}", 1 + rng.below(9)),
            Prompt::Kill => "KILL".into(),
            Prompt::HangTimeout | Prompt::HangStall => "HANG".into(),
            // 10 s of stream: only an interrupt ends it within the grace period.
            Prompt::CancelAtStart => "SLOW 500 20".into(),
        };
        match self {
            Prompt::HangTimeout => json!({"prompt": prompt, "timeoutMs": 200}),
            _ => json!({ "prompt": prompt }),
        }
    }

    /// The answer this prompt must get.
    fn expected(self) -> Answer {
        match self {
            Prompt::Err400 | Prompt::MaxTurns => Answer::NotOk,
            Prompt::Crash | Prompt::Kill => Answer::Error(-32002),
            Prompt::HangTimeout => Answer::Error(-32001),
            Prompt::HangStall => Answer::Error(-32008),
            Prompt::CancelAtStart => Answer::Withdrawn,
            _ => Answer::Ok,
        }
    }
}

/// How an ask was answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Answer {
    /// A result with `ok: true`.
    Ok,
    /// A result with `ok: false` (the turn failed in the CLI's own terms).
    NotOk,
    /// A JSON-RPC error with this code.
    Error(i64),
    /// A line that is neither.
    Malformed,
    /// No answer: the client cancelled the request (MCP says not to answer it).
    Withdrawn,
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Ok => write!(f, "result ok"),
            Answer::NotOk => write!(f, "result ok:false"),
            Answer::Error(code) => write!(f, "error {code}"),
            Answer::Malformed => write!(f, "malformed"),
            Answer::Withdrawn => write!(f, "cancelled, no answer"),
        }
    }
}

/// What happened, and what went wrong (`problems` empty means the soak passed).
#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub max_in_flight: usize,
    pub surface: Option<SoakSurface>,
    pub asks_sent: usize,
    pub asks_answered: usize,
    /// Asks cancelled right behind their prompt (MCP), which get no answer.
    pub asks_cancelled: usize,
    /// Kills after an interrupt that went unheeded for the grace period, and the asks
    /// that hang (the only ones that should need one).
    pub grace_kills: usize,
    pub hanging_asks: usize,
    /// (prompt, answer) -> count.
    pub outcomes: BTreeMap<(Prompt, Answer), usize>,
    pub answers: BTreeMap<Answer, usize>,
    pub statuses: usize,
    pub restarts: u64,
    pub notifications: u64,
    pub notifications_dropped: u64,
    pub peak_rss_kib: Option<u64>,
    pub wall: Duration,
    pub exit_code: Option<i32>,
    /// Guard and CLI pids the bridge reported (status) or logged (`child.started`).
    pub child_pids: BTreeSet<u32>,
    /// `child.started` events in the event log.
    pub children_started: usize,
    pub grandchildren: BTreeSet<u32>,
    /// Processes of this bridge still alive after it exited.
    pub leaked: Vec<String>,
    pub problems: Vec<String>,
}

impl Report {
    /// The summary table.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "soak: seed {} ({} asks on {}, up to {} in flight)",
            self.seed,
            self.asks_sent,
            self.surface.map_or("?", SoakSurface::flag),
            self.max_in_flight
        );
        let _ = writeln!(out, "{:<12} {:>6}  answers", "prompt", "sent");
        let mut by_prompt: BTreeMap<Prompt, Vec<(Answer, usize)>> = BTreeMap::new();
        for ((prompt, answer), count) in &self.outcomes {
            by_prompt
                .entry(*prompt)
                .or_default()
                .push((*answer, *count));
        }
        for (prompt, answers) in &by_prompt {
            let sent: usize = answers.iter().map(|(_, c)| c).sum();
            let detail: Vec<String> = answers.iter().map(|(a, c)| format!("{a}: {c}")).collect();
            let _ = writeln!(
                out,
                "{:<12} {:>6}  {}",
                format!("{prompt:?}"),
                sent,
                detail.join(", ")
            );
        }
        let _ = writeln!(out, "{:-<60}", "");
        let rows: Vec<(String, String)> = vec![
            ("asks sent".into(), self.asks_sent.to_string()),
            ("asks answered".into(), self.asks_answered.to_string()),
            ("asks cancelled".into(), self.asks_cancelled.to_string()),
            (
                "grace kills".into(),
                format!("{} ({} asks hang)", self.grace_kills, self.hanging_asks),
            ),
        ]
        .into_iter()
        .chain(
            self.answers
                .iter()
                .map(|(a, c)| (format!("  {a}"), c.to_string())),
        )
        .chain([
            ("status polls".into(), self.statuses.to_string()),
            ("child restarts".into(), self.restarts.to_string()),
            (
                "notifications".into(),
                format!(
                    "{} received, {} dropped",
                    self.notifications, self.notifications_dropped
                ),
            ),
            (
                "peak RSS (VmHWM)".into(),
                self.peak_rss_kib.map_or("unknown".into(), |k| {
                    format!("{:.1} MiB", k as f64 / 1024.0)
                }),
            ),
            (
                "wall time".into(),
                format!("{:.1} s", self.wall.as_secs_f64()),
            ),
            (
                "bridge exit code".into(),
                self.exit_code.map_or("none".into(), |c| c.to_string()),
            ),
            (
                "processes".into(),
                format!(
                    "{} children started, {} pids seen (guards, CLIs), {} tool processes; \
                     {} left after exit",
                    self.children_started,
                    self.child_pids.len(),
                    self.grandchildren.len(),
                    self.leaked.len()
                ),
            ),
            (
                "problems".into(),
                if self.problems.is_empty() {
                    "none".into()
                } else {
                    self.problems.len().to_string()
                },
            ),
        ])
        .collect();
        for (name, value) in rows {
            let _ = writeln!(out, "{name:<20} {value}");
        }
        for problem in self.problems.iter().take(20) {
            let _ = writeln!(out, "  PROBLEM: {problem}");
        }
        out
    }
}

/// SplitMix64: tiny, seedable, good enough to pick a mix (no dependency needed).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick(&mut self, surface: SoakSurface) -> Prompt {
        let cancel = match surface {
            SoakSurface::Mcp => CANCEL_WEIGHT,
            SoakSurface::Plain => 0,
        };
        let mix = MIX.into_iter().chain([(Prompt::CancelAtStart, cancel)]);
        let total: u64 = mix.clone().map(|(_, w)| w).sum();
        let mut at = self.below(total);
        for (prompt, weight) in mix {
            if at < weight {
                return prompt;
            }
            at -= weight;
        }
        Prompt::Normal
    }
}

/// A seed from the clock, for runs that do not name one.
pub fn clock_seed() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(1)
}

/// One line from the bridge's stdout.
enum Out {
    Response(Value),
    Notification(Value),
    Garbled(String),
}

/// Runs the soak; the report's `problems` say whether it passed.
pub async fn run(settings: &Settings) -> Report {
    let started = Instant::now();
    let mut report = Report {
        seed: settings.seed,
        surface: Some(settings.surface),
        max_in_flight: settings.max_in_flight,
        ..Report::default()
    };
    let dir = std::env::temp_dir().join(format!(
        "claude-coded-soak-{}-{}",
        std::process::id(),
        settings.seed
    ));
    let outcome = drive(settings, &dir, &mut report).await;
    if let Err(problem) = outcome {
        report.problems.push(problem);
    }
    let _ = std::fs::remove_dir_all(&dir);
    report.wall = started.elapsed();
    report
}

async fn drive(settings: &Settings, dir: &Path, report: &mut Report) -> Result<(), String> {
    let mut child = spawn_bridge(settings, dir)?;
    let bridge_pid = child.id().ok_or("bridge has no pid")?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(read_lines(stdout, tx));
    let surface = settings.surface;
    let mut state = State {
        surface: Some(surface),
        ..State::default()
    };
    handshake(surface, &mut stdin, &mut rx).await?;
    feed(settings, &mut stdin, &mut rx, &mut state, report).await?;

    // Settle: answers to the last statuses, then one status with a ready child.
    let last = loop {
        let status = status_now(&mut stdin, &mut rx, &mut state, report).await?;
        if status["child"]["ready"] == true && status["turn"].is_null() {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    report.restarts = last["child"]["restartCount"].as_u64().unwrap_or(0);
    report.notifications_dropped = last["totals"]["notificationsDropped"].as_u64().unwrap_or(0);
    only_the_current_child(bridge_pid, &last, report);
    report.peak_rss_kib = proc_info::peak_rss_kib(bridge_pid);
    let daemon_id = last["identity"]["daemonId"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // Stop: stdin EOF; the bridge must exit 0 and close stdout with nothing more owed.
    drop(stdin);
    let status = tokio::time::timeout(SILENCE_LIMIT, child.wait())
        .await
        .map_err(|_| "the bridge did not exit after stdin EOF".to_string())?
        .map_err(|e| e.to_string())?;
    report.exit_code = status.code();
    if status.code() != Some(0) {
        report.problems.push(format!("bridge exited with {status}"));
    }
    while let Some(out) = rx.recv().await {
        state.take(out, report);
    }
    let _ = reader.await;
    state.finish(report);
    check_processes(&dir.join("state"), &daemon_id, report);
    Ok(())
}

/// Starts claude-coded over the double with the soak's short timers.
fn spawn_bridge(settings: &Settings, dir: &Path) -> Result<tokio::process::Child, String> {
    let cwd = dir.join("cwd");
    std::fs::create_dir_all(&cwd).map_err(|e| format!("create {}: {e}", cwd.display()))?;
    let queue = (settings.max_in_flight + 2).to_string();
    let mut command = Command::new(&settings.bridge);
    command
        .arg("--claude-bin")
        .arg(&settings.double)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--cwd")
        .arg(&cwd)
        .args(["--surface", settings.surface.flag(), "--queue-size", &queue])
        // The watchdog must catch HANG, never a turn that is merely slow on a loaded
        // machine: the slowest prompt prints a line every 9 ms, 200 times inside this.
        .args(["--stall-timeout-ms", "2000", "--interrupt-grace-ms", "300"])
        .args(["--backoff-initial-ms", "50", "--backoff-max-ms", "200"])
        .args(["--crash-loop-max", "1000"])
        .env("HOME", dir)
        // The bridge logs every crash the mix provokes; SOAK_LOG=warn (or debug) shows them.
        .env(
            "RUST_LOG",
            std::env::var("SOAK_LOG").unwrap_or_else(|_| "off".into()),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .kill_on_drop(true);
    if settings.surface == SoakSurface::Mcp {
        // The window in which an interrupt right behind a prompt is answered and ignored.
        command.env("DOUBLE_TURN_START_DELAY_MS", "20");
    }
    command
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", settings.bridge.display()))
}

async fn read_lines(stdout: tokio::process::ChildStdout, tx: mpsc::UnboundedSender<Out>) {
    let mut lines = BufReader::new(stdout).lines();
    while let Ok(Some(line)) = lines.next_line().await {
        let out = match serde_json::from_str::<Value>(&line) {
            Ok(v) if v.get("method").is_some() => Out::Notification(v),
            Ok(v) => Out::Response(v),
            Err(_) => Out::Garbled(line),
        };
        if tx.send(out).is_err() {
            break;
        }
    }
}

/// The MCP handshake (nothing on the plain surface).
async fn handshake(
    surface: SoakSurface,
    stdin: &mut tokio::process::ChildStdin,
    rx: &mut mpsc::UnboundedReceiver<Out>,
) -> Result<(), String> {
    let Some((init, id)) = surface.handshake() else {
        return Ok(());
    };
    write_line(stdin, &init).await?;
    loop {
        let out = tokio::time::timeout(SILENCE_LIMIT, rx.recv())
            .await
            .map_err(|_| "no answer to initialize".to_string())?
            .ok_or("stdout closed before initialize was answered")?;
        if let Out::Response(response) = out {
            if response["id"] != id || response.get("result").is_none() {
                return Err(format!("initialize failed: {response}"));
            }
            break;
        }
    }
    match surface.initialized() {
        Some(note) => write_line(stdin, &note).await,
        None => Ok(()),
    }
}

/// Sends the mix, pipelined, polling `status`, until every ask is resolved.
async fn feed(
    settings: &Settings,
    stdin: &mut tokio::process::ChildStdin,
    rx: &mut mpsc::UnboundedReceiver<Out>,
    state: &mut State,
    report: &mut Report,
) -> Result<(), String> {
    let surface = settings.surface;
    let mut rng = Rng::new(settings.seed);
    let mut depth = 1;
    let mut next_status = 0usize;
    while state.answered + state.cancelled.len() < settings.asks {
        // A new phase now and then: sequential asks, or a pipeline of random depth.
        if rng.below(20) == 0 {
            depth = 1 + rng.below(settings.max_in_flight as u64) as usize;
        }
        while state.pending.len() < depth && report.asks_sent < settings.asks {
            let n = report.asks_sent as u64;
            let prompt = rng.pick(surface);
            write_line(stdin, &surface.ask(n, prompt.params(n as usize, &mut rng))).await?;
            state.prompts.insert(n, prompt);
            report.asks_sent += 1;
            if matches!(prompt, Prompt::HangTimeout | Prompt::HangStall) {
                report.hanging_asks += 1;
            }
            match surface
                .cancel(n)
                .filter(|_| prompt == Prompt::CancelAtStart)
            {
                // Right behind the prompt: the cancel lands as its turn starts.
                Some(cancel) => {
                    write_line(stdin, &cancel).await?;
                    state.cancelled.insert(n);
                    report.asks_cancelled += 1;
                    *report
                        .outcomes
                        .entry((prompt, Answer::Withdrawn))
                        .or_insert(0) += 1;
                    *report.answers.entry(Answer::Withdrawn).or_insert(0) += 1;
                }
                None => {
                    state.pending.insert(n, prompt);
                }
            }
        }
        if state.answered >= next_status {
            next_status = state.answered + STATUS_EVERY;
            state.status_sent += 1;
            let id = format!("status-{}", state.status_sent);
            write_line(stdin, &surface.status(&id)).await?;
        }
        if state.pending.is_empty() && report.asks_sent >= settings.asks {
            break;
        }
        let out = tokio::time::timeout(SILENCE_LIMIT, rx.recv())
            .await
            .map_err(|_| {
                format!(
                    "no output for {SILENCE_LIMIT:?} with asks in flight: {:?}",
                    state.pending
                )
            })?
            .ok_or("the bridge closed stdout while asks were in flight")?;
        state.take(out, report);
    }
    Ok(())
}

/// Reaped: the bridge's only child is the current guard (a zombie would be listed too).
fn only_the_current_child(bridge_pid: u32, last: &Value, report: &mut Report) {
    let current = last["child"]["pid"].as_u64().map(|p| p as u32);
    let children = proc_info::children_of(bridge_pid);
    if children
        .iter()
        .map(|(pid, _)| Some(*pid))
        .collect::<Vec<_>>()
        != vec![current]
    {
        report.problems.push(format!(
            "children of the bridge {children:?}, expected only the current child {current:?}"
        ));
    }
}

/// After the exit: no process of this bridge left, and no child killed after an unheeded
/// interrupt beyond the asks that hang.
fn check_processes(state_dir: &Path, daemon_id: &str, report: &mut Report) {
    let events = logged_events(state_dir);
    let started: Vec<u32> = events
        .iter()
        .filter(|event| event["type"] == "child.started")
        .filter_map(|event| event["detail"]["pid"].as_u64())
        .map(|pid| pid as u32)
        .collect();
    report.children_started = started.len();
    report.child_pids.extend(started);
    report.grace_kills = events
        .iter()
        .filter(|event| event["type"] == "child.killing")
        .filter(|event| {
            event["detail"]["reason"]
                .as_str()
                .is_some_and(|r| r.contains("interrupt grace"))
        })
        .count();
    if report.grace_kills > report.hanging_asks {
        report.problems.push(format!(
            "{} kills after an unheeded interrupt, but only {} asks hang",
            report.grace_kills, report.hanging_asks
        ));
    }
    // Nothing of this bridge may be left: by the daemon id every process of it inherits,
    // and by every pid it ever reported.
    let mut left: BTreeSet<u32> = proc_info::survivors_of_daemon(daemon_id, Duration::from_secs(5))
        .into_iter()
        .collect();
    let ours = |pid: &u32| proc_info::processes_of_daemon(daemon_id).contains(pid);
    left.extend(report.child_pids.iter().filter(|p| ours(p)));
    left.extend(report.grandchildren.iter().filter(|p| ours(p)));
    report.leaked = left
        .iter()
        .map(|pid| format!("{pid}: {}", proc_info::command_line(*pid)))
        .collect();
    if !report.leaked.is_empty() {
        report
            .problems
            .push(format!("processes left: {:?}", report.leaked));
    }
}

/// Every event in the bridge's event log (`events.jsonl` and any rotated siblings).
fn logged_events(state_dir: &Path) -> Vec<Value> {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return Vec::new();
    };
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("events"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .collect::<Vec<_>>()
        })
        .collect()
}

async fn write_line(stdin: &mut tokio::process::ChildStdin, line: &Value) -> Result<(), String> {
    let mut bytes = line.to_string().into_bytes();
    bytes.push(b'\n');
    stdin
        .write_all(&bytes)
        .await
        .map_err(|e| format!("write to the bridge: {e}"))
}

/// Sends `status` and processes output until its answer.
async fn status_now(
    stdin: &mut tokio::process::ChildStdin,
    rx: &mut mpsc::UnboundedReceiver<Out>,
    state: &mut State,
    report: &mut Report,
) -> Result<Value, String> {
    state.status_sent += 1;
    let id = format!("status-{}", state.status_sent);
    let surface = state.surface.unwrap_or(SoakSurface::Plain);
    write_line(stdin, &surface.status(&id)).await?;
    loop {
        let out = tokio::time::timeout(SILENCE_LIMIT, rx.recv())
            .await
            .map_err(|_| "no answer to status".to_string())?
            .ok_or("stdout closed")?;
        if let Out::Response(response) = &out
            && response["id"] == id.as_str()
        {
            let status = surface.status_result(response);
            state.take(out, report);
            return Ok(status);
        }
        state.take(out, report);
    }
}

#[derive(Default)]
struct State {
    surface: Option<SoakSurface>,
    /// Asks sent and not answered yet.
    pending: BTreeMap<u64, Prompt>,
    /// Asks cancelled right behind their prompt: owed no answer.
    cancelled: BTreeSet<u64>,
    /// Every ask sent, by id.
    prompts: HashMap<u64, Prompt>,
    answered: usize,
    /// Ask ids already answered (a second answer is a problem).
    done: BTreeSet<u64>,
    status_sent: usize,
    /// Per ask: seqs received, and the result's `messages` when it ended with a result.
    seqs: HashMap<u64, Vec<u64>>,
    messages: HashMap<u64, u64>,
}

impl State {
    fn take(&mut self, out: Out, report: &mut Report) {
        match out {
            Out::Garbled(line) => report
                .problems
                .push(format!("not JSON on stdout: {line:.200}")),
            Out::Notification(note) => {
                report.notifications += 1;
                let id = note["params"]["requestId"].as_u64();
                match id.filter(|id| self.pending.contains_key(id) || self.cancelled.contains(id)) {
                    // Events of a cancelled ask may come before the cancel was taken.
                    Some(id) if self.cancelled.contains(&id) => {}
                    Some(id) => {
                        let seq = note["params"]["seq"].as_u64().unwrap_or(0);
                        self.seqs.entry(id).or_default().push(seq);
                    }
                    None => report.problems.push(format!(
                        "notification for no pending ask: {:.200}",
                        note.to_string()
                    )),
                }
            }
            Out::Response(response) => self.on_response(response, report),
        }
    }

    fn on_response(&mut self, response: Value, report: &mut Report) {
        let surface = self.surface.unwrap_or(SoakSurface::Plain);
        if let Some(id) = response["id"].as_str()
            && id.starts_with("status-")
        {
            report.statuses += 1;
            let result = &surface.status_result(&response);
            for key in ["pid", "cliPid"] {
                if let Some(pid) = result["child"][key].as_u64() {
                    report.child_pids.insert(pid as u32);
                }
            }
            return;
        }
        let Some(id) = response["id"].as_u64() else {
            report.problems.push(format!(
                "answer with an unknown id: {:.300}",
                response.to_string()
            ));
            return;
        };
        let Some(prompt) = self.pending.remove(&id) else {
            let what = if self.done.contains(&id) {
                "answered twice"
            } else if self.cancelled.contains(&id) {
                "answered after it was cancelled"
            } else {
                "never sent"
            };
            report.problems.push(format!("ask {id} {what}"));
            return;
        };
        self.done.insert(id);
        self.answered += 1;
        report.asks_answered += 1;
        let answer = surface.classify(&response);
        *report.outcomes.entry((prompt, answer)).or_insert(0) += 1;
        *report.answers.entry(answer).or_insert(0) += 1;
        if answer != prompt.expected() {
            report.problems.push(format!(
                "ask {id} ({prompt:?}) answered {answer}, expected {}: {:.300}",
                prompt.expected(),
                response.to_string()
            ));
        }
        if let Some(messages) = surface.messages(&response) {
            self.messages.insert(id, messages);
        }
        if prompt == Prompt::Grandchild
            && let Some(pid) = surface
                .result_text(&response)
                .and_then(|t| t.strip_prefix("grandchild "))
                .and_then(|p| p.parse().ok())
        {
            report.grandchildren.insert(pid);
        }
    }

    /// Checks that every ask was answered and its notifications add up.
    fn finish(&self, report: &mut Report) {
        if !self.pending.is_empty() {
            report
                .problems
                .push(format!("asks never answered: {:?}", self.pending));
        }
        for (id, seqs) in &self.seqs {
            if !seqs.windows(2).all(|w| w[0] < w[1]) {
                report
                    .problems
                    .push(format!("ask {id}: notifications out of order"));
            }
        }
        // Without drops, a result's `messages` is exactly what was streamed for it.
        if report.notifications_dropped == 0 {
            for (id, messages) in &self.messages {
                let got = self.seqs.get(id).map_or(0, Vec::len) as u64;
                if got != *messages {
                    report.problems.push(format!(
                        "ask {id}: {got} notifications for {messages} messages"
                    ));
                }
            }
        }
    }
}

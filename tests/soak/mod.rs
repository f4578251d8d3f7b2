//! The soak driver shared by `examples/soak.rs` (long runs) and `tests/soak_short.rs`
//! (CI): one claude-coded bridge on the plain surface over the CLI double, fed a seeded
//! random mix of asks (normal, failing turns, crashes, kills, hangs caught by the timeout
//! or by the stall watchdog, garbage output, slow and huge turns, tool processes), up to
//! `max_in_flight` pipelined, with `status` polled along the way.
//!
//! It checks what "never hang, never orphan, never lose" means from the outside: every
//! ask gets exactly one answer, of the kind its prompt calls for; no id is answered
//! twice or invented; streamed notifications add up; the bridge exits 0 on stdin EOF;
//! no process of this bridge (guards, CLIs, their tool processes) outlives it.

#![allow(dead_code)]

#[path = "../proc_info/mod.rs"]
pub mod proc_info;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::Command;
use tokio::sync::mpsc;

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
}

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
}

impl std::fmt::Display for Answer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Answer::Ok => write!(f, "result ok"),
            Answer::NotOk => write!(f, "result ok:false"),
            Answer::Error(code) => write!(f, "error {code}"),
            Answer::Malformed => write!(f, "malformed"),
        }
    }
}

fn classify(response: &Value) -> Answer {
    if let Some(ok) = response.pointer("/result/ok").and_then(Value::as_bool) {
        return if ok { Answer::Ok } else { Answer::NotOk };
    }
    match response.pointer("/error/code").and_then(Value::as_i64) {
        Some(code) => Answer::Error(code),
        None => Answer::Malformed,
    }
}

/// What happened, and what went wrong (`problems` empty means the soak passed).
#[derive(Debug, Default)]
pub struct Report {
    pub seed: u64,
    pub max_in_flight: usize,
    pub asks_sent: usize,
    pub asks_answered: usize,
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
            "soak: seed {} ({} asks, up to {} in flight)",
            self.seed, self.asks_sent, self.max_in_flight
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
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }

    fn pick(&mut self) -> Prompt {
        let total: u64 = MIX.iter().map(|(_, w)| w).sum();
        let mut at = self.below(total);
        for (prompt, weight) in MIX {
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
    let cwd = dir.join("cwd");
    std::fs::create_dir_all(&cwd).map_err(|e| format!("create {}: {e}", cwd.display()))?;
    let queue = (settings.max_in_flight + 2).to_string();
    let mut child = Command::new(&settings.bridge)
        .arg("--claude-bin")
        .arg(&settings.double)
        .arg("--state-dir")
        .arg(dir.join("state"))
        .arg("--cwd")
        .arg(&cwd)
        .args(["--surface", "plain", "--queue-size", &queue])
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
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", settings.bridge.display()))?;
    let bridge_pid = child.id().ok_or("bridge has no pid")?;
    let mut stdin = child.stdin.take().ok_or("no stdin")?;
    let stdout = child.stdout.take().ok_or("no stdout")?;
    let (tx, mut rx) = mpsc::unbounded_channel();
    let reader = tokio::spawn(async move {
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
    });

    let mut rng = Rng::new(settings.seed);
    let mut state = State::default();
    let mut depth = 1;
    let mut next_status = 0usize;
    while state.answered < settings.asks {
        // A new phase now and then: sequential asks, or a pipeline of random depth.
        if rng.below(20) == 0 {
            depth = 1 + rng.below(settings.max_in_flight as u64) as usize;
        }
        while state.pending.len() < depth && report.asks_sent < settings.asks {
            let n = report.asks_sent;
            let prompt = rng.pick();
            let line = json!({"jsonrpc": "2.0", "id": n, "method": "ask",
                              "params": prompt.params(n, &mut rng)});
            write_line(&mut stdin, &line).await?;
            state.pending.insert(n as u64, prompt);
            state.prompts.insert(n as u64, prompt);
            report.asks_sent += 1;
        }
        if state.answered >= next_status {
            next_status = state.answered + STATUS_EVERY;
            state.status_sent += 1;
            let id = format!("status-{}", state.status_sent);
            write_line(
                &mut stdin,
                &json!({"jsonrpc": "2.0", "id": id, "method": "status"}),
            )
            .await?;
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
    // Reaped: the bridge's only child is the current guard (a zombie would be listed too).
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

    let started = started_children(&dir.join("state"));
    report.children_started = started.len();
    report.child_pids.extend(started);
    // Nothing of this bridge may be left: by the daemon id every process of it inherits,
    // and by every pid it ever reported.
    let mut left: BTreeSet<u32> =
        proc_info::survivors_of_daemon(&daemon_id, Duration::from_secs(5))
            .into_iter()
            .collect();
    let ours = |pid: &u32| proc_info::processes_of_daemon(&daemon_id).contains(pid);
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
    Ok(())
}

/// Pids of every child the bridge started, from its event log (`child.started`).
fn started_children(state_dir: &Path) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir(state_dir) else {
        return Vec::new();
    };
    // `events.jsonl` and any rotated siblings.
    entries
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().starts_with("events"))
        .filter_map(|e| std::fs::read_to_string(e.path()).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|line| serde_json::from_str::<Value>(line).ok())
                .filter(|event| event["type"] == "child.started")
                .filter_map(|event| event["detail"]["pid"].as_u64())
                .map(|pid| pid as u32)
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
    write_line(
        stdin,
        &json!({"jsonrpc": "2.0", "id": id, "method": "status"}),
    )
    .await?;
    loop {
        let out = tokio::time::timeout(SILENCE_LIMIT, rx.recv())
            .await
            .map_err(|_| "no answer to status".to_string())?
            .ok_or("stdout closed")?;
        if let Out::Response(response) = &out
            && response["id"] == id.as_str()
        {
            let status = response["result"].clone();
            state.take(out, report);
            return Ok(status);
        }
        state.take(out, report);
    }
}

#[derive(Default)]
struct State {
    /// Asks sent and not answered yet.
    pending: BTreeMap<u64, Prompt>,
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
                match id.filter(|id| self.pending.contains_key(id)) {
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
        if let Some(id) = response["id"].as_str()
            && id.starts_with("status-")
        {
            report.statuses += 1;
            let result = &response["result"];
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
            } else {
                "never sent"
            };
            report.problems.push(format!("ask {id} {what}"));
            return;
        };
        self.done.insert(id);
        self.answered += 1;
        report.asks_answered += 1;
        let answer = classify(&response);
        *report.outcomes.entry((prompt, answer)).or_insert(0) += 1;
        *report.answers.entry(answer).or_insert(0) += 1;
        if answer != prompt.expected() {
            report.problems.push(format!(
                "ask {id} ({prompt:?}) answered {answer}, expected {}: {:.300}",
                prompt.expected(),
                response.to_string()
            ));
        }
        if let Some(messages) = response.pointer("/result/messages").and_then(Value::as_u64) {
            self.messages.insert(id, messages);
        }
        if prompt == Prompt::Grandchild
            && let Some(pid) = response
                .pointer("/result/result")
                .and_then(Value::as_str)
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

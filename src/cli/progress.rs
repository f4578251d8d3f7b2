//! What `claude-coded ask` shows on stderr while a turn runs: on a terminal one line that
//! keeps being redrawn (a spinner, the elapsed time, the current step), otherwise one plain
//! line per step, and nothing with `-q`. The steps are the ones MCP clients get as
//! progress ([`crate::child::steps::describe`]).

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;

use crate::sync::lock;

/// How often the terminal line is redrawn.
const TICK: Duration = Duration::from_millis(100);
const SPINNER: [char; 10] = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];
/// Columns assumed when the terminal does not say.
const DEFAULT_WIDTH: usize = 80;

/// How steps are shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Quiet,
    Lines,
    Terminal,
}

struct State {
    step: String,
    frame: usize,
    /// The terminal line shows something that must be cleared before other output.
    drawn: bool,
}

/// The stderr display of one ask.
pub(super) struct Progress {
    mode: Mode,
    started: Instant,
    state: Arc<Mutex<State>>,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// A display for a terminal when stderr is one, plain lines otherwise; none when `quiet`.
    /// Must be called inside a tokio runtime (a terminal's line is redrawn by a task).
    pub(super) fn new(quiet: bool) -> Progress {
        let mode = match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Terminal,
            (false, false) => Mode::Lines,
        };
        let state = Arc::new(Mutex::new(State {
            step: "starting".to_string(),
            frame: 0,
            drawn: false,
        }));
        let started = Instant::now();
        let ticker = (mode == Mode::Terminal).then(|| {
            let state = state.clone();
            tokio::spawn(async move {
                loop {
                    redraw(&state, started);
                    tokio::time::sleep(TICK).await;
                }
            })
        });
        Progress {
            mode,
            started,
            state,
            ticker,
        }
    }

    /// A step of the turn: one of the child's messages.
    pub(super) fn message(&self, message: &Value) {
        if let Some(step) = crate::child::steps::describe(message) {
            self.step(step);
        }
    }

    /// A step in claude-coded's own words (connecting, waiting in the queue, ...).
    pub(super) fn step(&self, step: String) {
        match self.mode {
            Mode::Quiet => {}
            Mode::Lines => {
                let elapsed = self.started.elapsed().as_secs_f64();
                let _ = writeln!(std::io::stderr().lock(), "[{elapsed:6.1}s] {step}");
            }
            Mode::Terminal => {
                lock(&self.state).step = step;
                redraw(&self.state, self.started);
            }
        }
    }

    /// Clears the terminal line, so what follows starts on a clean one.
    pub(super) fn finish(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        let mut state = lock(&self.state);
        if state.drawn {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            state.drawn = false;
        }
    }
}

impl Drop for Progress {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Draws the line: spinner, elapsed time, step, cut to the terminal's width.
fn redraw(state: &Mutex<State>, started: Instant) {
    let mut state = lock(state);
    state.frame = state.frame.wrapping_add(1);
    let spinner = SPINNER[state.frame % SPINNER.len()];
    let elapsed = started.elapsed().as_secs_f64();
    let line = format!("{spinner} {elapsed:5.1}s {}", state.step);
    let width = terminal_width().saturating_sub(1).max(10);
    let line: String = line.chars().take(width).collect();
    let _ = write!(std::io::stderr().lock(), "\r\x1b[2K{line}");
    state.drawn = true;
}

/// The width of the terminal on stderr.
fn terminal_width() -> usize {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize it is given; the descriptor is stderr's.
    let rc = unsafe { libc::ioctl(libc::STDERR_FILENO, libc::TIOCGWINSZ, &mut size) };
    match (rc, size.ws_col) {
        (0, cols) if cols > 0 => usize::from(cols),
        _ => DEFAULT_WIDTH,
    }
}

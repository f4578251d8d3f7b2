//! What `claude-coded ask` shows while a turn runs: on stderr, on a terminal one line that
//! keeps being redrawn (a spinner, the elapsed time, the current step), otherwise one plain
//! line per step, and nothing with `-q`. The steps are the ones MCP clients get as
//! progress ([`crate::child::steps::describe`]). When stdout is a terminal, the answer's
//! text is written there as it streams ([`Progress::streams_text`]); the spinner then
//! stands under the text and never draws over a line of it.

use std::io::{IsTerminal, Write};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::task::JoinHandle;

use crate::child::steps::{TextPiece, text_piece};
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
    text: Text,
}

/// The answer's text written to stdout as it streams.
#[derive(Default)]
struct Text {
    /// A text block of the agent is streaming.
    in_block: bool,
    /// Stdout's cursor is after text on its line: the spinner waits for the newline.
    line_open: bool,
    /// The text streamed, so the final answer is not written twice.
    answer: String,
}

/// The stderr display of one ask.
pub(super) struct Progress {
    mode: Mode,
    /// The answer's text goes to stdout as it streams.
    streams_text: bool,
    started: Instant,
    state: Arc<Mutex<State>>,
    ticker: Option<JoinHandle<()>>,
}

impl Progress {
    /// A display for a terminal when stderr is one, plain lines otherwise; none when `quiet`.
    /// `streams_text`: the answer's text is written to stdout as it comes (the ask must
    /// ask for partial messages). Must be called inside a tokio runtime (a terminal's line
    /// is redrawn by a task).
    pub(super) fn new(quiet: bool, streams_text: bool) -> Progress {
        let mode = match (quiet, std::io::stderr().is_terminal()) {
            (true, _) => Mode::Quiet,
            (false, true) => Mode::Terminal,
            (false, false) => Mode::Lines,
        };
        let state = Arc::new(Mutex::new(State {
            step: "starting".to_string(),
            frame: 0,
            drawn: false,
            text: Text::default(),
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
            streams_text,
            started,
            state,
            ticker,
        }
    }

    /// A step of the turn: one of the child's messages (a piece of the answer's text,
    /// when it streams).
    pub(super) fn message(&self, message: &Value) {
        if self.streams_text
            && let Some(piece) = text_piece(message)
        {
            self.text(piece);
            return;
        }
        if let Some(step) = crate::child::steps::describe(message) {
            self.step(step);
        }
    }

    /// Writes a piece of the answer's text to stdout, after clearing the spinner's line
    /// (stderr and stdout share the terminal). Text blocks follow each other on the line,
    /// as the CLI joins them into its answer; another kind of block (a tool use) ends it.
    fn text(&self, piece: TextPiece) {
        let mut state = lock(&self.state);
        let written = match piece {
            TextPiece::Start { text } => {
                state.text.in_block = text;
                match text || !state.text.line_open {
                    true => return,
                    false => "\n".to_string(),
                }
            }
            TextPiece::Delta(text) if state.text.in_block => {
                state.text.answer.push_str(&text);
                text
            }
            TextPiece::Delta(_) => return,
            TextPiece::Stop => {
                state.text.in_block = false;
                return;
            }
        };
        if state.drawn {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            state.drawn = false;
        }
        write_out(&written);
        state.text.line_open = !written.ends_with('\n');
    }

    /// Whether the answer `text` is what stdout shows last, streamed: then it is not
    /// written again.
    pub(super) fn showed(&self, text: &str) -> bool {
        let state = lock(&self.state);
        let text = text.trim();
        !text.is_empty() && state.text.answer.trim_end().ends_with(text)
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

    /// Clears the terminal line, and ends a line of text left open, so what follows
    /// starts on a clean one.
    pub(super) fn finish(&mut self) {
        if let Some(ticker) = self.ticker.take() {
            ticker.abort();
        }
        let mut state = lock(&self.state);
        if state.drawn {
            let _ = write!(std::io::stderr().lock(), "\r\x1b[2K");
            state.drawn = false;
        }
        if state.text.line_open {
            write_out("\n");
            state.text.line_open = false;
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
    // The cursor is after the answer's text: drawing would overwrite it.
    if state.text.line_open {
        return;
    }
    state.frame = state.frame.wrapping_add(1);
    let spinner = SPINNER[state.frame % SPINNER.len()];
    let elapsed = started.elapsed().as_secs_f64();
    let line = format!("{spinner} {elapsed:5.1}s {}", state.step);
    let width = terminal_width(libc::STDERR_FILENO)
        .saturating_sub(1)
        .max(10);
    let line: String = line.chars().take(width).collect();
    let _ = write!(std::io::stderr().lock(), "\r\x1b[2K{line}");
    state.drawn = true;
}

/// Writes `text` to stdout at once (it may be a piece of a line).
fn write_out(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes());
    let _ = out.flush();
}

/// The width of the terminal on `fd` (stderr's for the spinner, stdout's for `status -w`).
pub(super) fn terminal_width(fd: libc::c_int) -> usize {
    let mut size = libc::winsize {
        ws_row: 0,
        ws_col: 0,
        ws_xpixel: 0,
        ws_ypixel: 0,
    };
    // SAFETY: TIOCGWINSZ fills the winsize it is given; on a descriptor that is not a
    // terminal it fails and leaves it alone.
    let rc = unsafe { libc::ioctl(fd, libc::TIOCGWINSZ, &mut size) };
    match (rc, size.ws_col) {
        (0, cols) if cols > 0 => usize::from(cols),
        _ => DEFAULT_WIDTH,
    }
}

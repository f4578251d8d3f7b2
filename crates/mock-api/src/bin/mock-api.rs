//! The mock Messages API as a process of its own, for test clients that are not Rust
//! (the Python and TypeScript MCP clients of `scripts/test-mcp-clients.sh` drive
//! claude-coded over the real CLI, and the CLI needs an API to talk to).
//!
//! Serves on 127.0.0.1 with an ephemeral port and the prompt keywords of the library
//! (no script), prints `http://127.0.0.1:PORT` as its first stdout line, and stops when
//! its stdin closes: the script that started it holds the pipe, so the mock never outlives
//! the run that needs it, however that run ends.

use std::io::{Read, Write};
use std::process::ExitCode;

use mock_api::MockApi;

fn main() -> ExitCode {
    let mock = match MockApi::try_start(None) {
        Ok(mock) => mock,
        Err(error) => {
            eprintln!("mock-api: cannot listen on 127.0.0.1: {error}");
            return ExitCode::FAILURE;
        }
    };
    let mut stdout = std::io::stdout().lock();
    if writeln!(stdout, "{}", mock.base_url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return ExitCode::FAILURE;
    }
    // Read until end of file: bytes sent on stdin mean nothing, its closing means stop.
    let mut sink = [0u8; 256];
    let mut stdin = std::io::stdin().lock();
    while matches!(stdin.read(&mut sink), Ok(n) if n > 0) {}
    eprintln!(
        "mock-api: stdin closed; served {} messages requests, stopping",
        mock.messages_served()
    );
    ExitCode::SUCCESS
}

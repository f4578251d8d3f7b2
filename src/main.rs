fn main() {
    // The process-group guard is this same binary, started by the bridge itself.
    let code = claude_coded::guard::main_if_guard().unwrap_or_else(claude_coded::cli::main);
    std::process::exit(code);
}

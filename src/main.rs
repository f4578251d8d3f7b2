fn main() {
    std::process::exit(claude_coded::cli::main());
}

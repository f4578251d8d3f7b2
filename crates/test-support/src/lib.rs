//! What the tests, benches and examples of claude-coded share.
//!
//! - [`bins`]: where the binaries under test are: `claude-coded` (built by cargo for the
//!   root package's tests and benches) and the CLI double (built here on first use, so it
//!   is never stale).

pub mod bins;

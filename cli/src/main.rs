//! `spec-kitty` binary: everything lives in the library (`spec_kitty`), so
//! integration tests can use its file-format functions directly.

fn main() {
    let code = spec_kitty::run();
    // A command that succeeded but could not print its result (stdout on a
    // full disk; a closed pipe does not count) must not report success.
    let failed_output = code == 0 && spec_kitty::output::stdout_failed();
    std::process::exit(if failed_output { 1 } else { code });
}

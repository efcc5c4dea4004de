//! `spec-kitty` binary: everything lives in the library (`spec_kitty`), so
//! integration tests can use its file-format functions directly.

fn main() {
    std::process::exit(spec_kitty::run());
}

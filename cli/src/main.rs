//! `spec-kitty`: placeholder until the CLI lands.
#[allow(dead_code)]
mod handoff;

fn main() {
    println!("spec-kitty {}", env!("CARGO_PKG_VERSION"));
}

//! `spec-kitty-syncd`: placeholder until the daemon lands.
fn main() {
    println!("spec-kitty-syncd {}", env!("CARGO_PKG_VERSION"));
}

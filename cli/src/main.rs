//! `spec-kitty`: placeholder until the CLI lands.
fn main() {
    println!("spec-kitty {}", env!("CARGO_PKG_VERSION"));
}

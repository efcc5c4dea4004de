//! `spec-kitty-refserver`: placeholder until the reference server lands.
fn main() {
    println!("spec-kitty-refserver {}", env!("CARGO_PKG_VERSION"));
}

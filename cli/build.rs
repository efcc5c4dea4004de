//! Links the `spec-kitty` binary's unwinder statically (GNU/Linux only).
//!
//! Rust's std links `libgcc_s.so.1` for unwinding. Loading it costs every
//! run about 0.1 ms on a VM, most of it its constructor probing the CPU
//! with `cpuid`, which traps to the hypervisor; a command that agents run
//! hundreds of times a session should not pay that for panics it never
//! has. The same unwinder ships as the static `libgcc_eh.a` (what
//! `crt-static` builds use). A linker script named `libgcc_s.so` in a
//! directory searched before the compiler's own makes `-lgcc_s` resolve to
//! it, for the binary only: the library, the tests and the daemon keep the
//! default. When the archive cannot be found, nothing changes.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("-linux-gnu") {
        return;
    }
    let Some(archive) = static_unwinder() else {
        println!("cargo:warning=libgcc_eh.a not found: spec-kitty links libgcc_s.so.1 dynamically");
        return;
    };
    let dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("unwind");
    std::fs::create_dir_all(&dir).expect("OUT_DIR is writable");
    let script = format!("INPUT ( {} )\n", archive.display());
    std::fs::write(dir.join("libgcc_s.so"), script).expect("OUT_DIR is writable");
    println!("cargo:rustc-link-arg-bin=spec-kitty=-L{}", dir.display());
}

/// The absolute path of `libgcc_eh.a` as the C compiler that links us
/// finds it.
fn static_unwinder() -> Option<PathBuf> {
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".to_string());
    let out = Command::new(cc)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    // Unfound, the compiler prints the bare name back.
    (path.is_absolute() && path.is_file()).then_some(path)
}

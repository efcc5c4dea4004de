//! Two link-time choices for the `spec-kitty` binary (GNU/Linux only):
//! its unwinder linked statically, and its hot functions placed together.
//!
//! **The unwinder.**
//! Rust's std links `libgcc_s.so.1` for unwinding. Loading it costs every
//! run about 0.1 ms on a VM, most of it its constructor probing the CPU
//! with `cpuid`, which traps to the hypervisor; a command that agents run
//! hundreds of times a session should not pay that for panics it never
//! has. The same unwinder ships as the static `libgcc_eh.a` (what
//! `crt-static` builds use). A linker script named `libgcc_s.so` in a
//! directory searched before the compiler's own makes `-lgcc_s` resolve to
//! it, for the binary only: the library, the tests and the daemon keep the
//! default. When the archive cannot be found, nothing changes.
//!
//! **Hot functions first.** The release binary holds 6 MB of code, and a
//! warm `add-history` runs about 300 functions scattered across it: each
//! 64 KiB stretch it touches is one page fault at start (the kernel maps
//! the cached pages around a fault, 64 KiB at a time), about 1.5 µs each
//! on a VM. `hot-symbols.txt` lists those functions (made by
//! `scripts/hot-symbols`); LLD, rustc's linker for x86_64 GNU/Linux since
//! 1.90, places them first, in that order (`--symbol-ordering-file`).
//! Measured: 21 fewer page faults per run, add-history about 50 µs less
//! at p50. Names the list has and the binary lacks are skipped without a
//! warning, and the list is skipped whole when the build picks its own
//! linker. Our crates' names carry a hash of each crate's build settings,
//! features included, so the list fits the build it was made from:
//! `-p spec-kitty -p spec-kitty-syncd` (`scripts/package-deb`, `bench`,
//! `demo`). A build of this crate alone (`cargo install`, the wheel's
//! maturin) unifies some dependencies' features differently, and only
//! the standard library's ~100 names match there; a toolchain upgrade
//! changes them all (run `scripts/hot-symbols` again).

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=CC");
    let target = std::env::var("TARGET").unwrap_or_default();
    if !target.contains("-linux-gnu") {
        return;
    }
    order_hot_functions(&target);
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

/// Passes `hot-symbols.txt` to the linker for release builds linked by
/// rustc's default LLD (not when the flags or the environment choose a
/// linker: another one may not know the option).
fn order_hot_functions(target: &str) {
    println!("cargo:rerun-if-changed=hot-symbols.txt");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let own_linker = std::env::var("CARGO_ENCODED_RUSTFLAGS")
        .unwrap_or_default()
        .split('\x1f')
        .any(|f| {
            ["linker", "link-self-contained", "fuse-ld"]
                .iter()
                .any(|k| f.contains(k))
        })
        || std::env::var_os("RUSTC_LINKER").is_some();
    if target != "x86_64-unknown-linux-gnu"
        || std::env::var("PROFILE").as_deref() != Ok("release")
        || own_linker
        || !rustc_links_with_lld()
    {
        return;
    }
    let list = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets it"))
        .join("hot-symbols.txt");
    if list.is_file() {
        println!(
            "cargo:rustc-link-arg-bin=spec-kitty=-Wl,--symbol-ordering-file={}",
            list.display()
        );
        println!("cargo:rustc-link-arg-bin=spec-kitty=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether rustc is 1.90 or later, whose default linker for this target is
/// LLD (1.89, our oldest supported, links with the system's `ld`).
fn rustc_links_with_lld() -> bool {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".to_string());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let release = text.lines().find_map(|l| l.strip_prefix("release: "));
    let mut parts = release
        .unwrap_or("")
        .split(['.', '-'])
        .map(str::parse::<u32>);
    matches!((parts.next(), parts.next()), (Some(Ok(1)), Some(Ok(minor))) if minor >= 90)
}

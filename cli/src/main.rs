//! `spec-kitty` binary: everything lives in the library (`spec_kitty`), so
//! integration tests can use its file-format functions directly.
//!
//! On Linux the process enters through the C `main` below instead of std's
//! start-up (`#![no_main]`). Agents run this command hundreds of times a
//! session, and std's start-up costs about 0.1 ms of each run on a VM: it
//! reads `/proc/self/maps` to place a guard page for the main thread and
//! installs an alternate signal stack, both only to turn a stack overflow
//! into a message instead of a plain SIGSEGV. What else it does that this
//! program relies on is done here: standard streams that are closed at
//! exec are reopened on `/dev/null` (so no file we open can land on fd 1),
//! SIGPIPE is ignored (a closed pipe is an `EPIPE` error that `output`
//! handles quietly; std still resets it for the children we spawn), and a
//! panic exits with 101. Arguments come from glibc, which hands them to
//! std before `main` runs.

#![cfg_attr(target_os = "linux", no_main)]

/// Runs the command and returns the process exit code.
fn run() -> i32 {
    let code = spec_kitty::run();
    // A command that succeeded but could not print its result (stdout on a
    // full disk; a closed pipe does not count) must not report success.
    let failed_output = code == 0 && spec_kitty::output::stdout_failed();
    if failed_output {
        1
    } else {
        code
    }
}

#[cfg(target_os = "linux")]
#[no_mangle]
extern "C" fn main(_argc: libc::c_int, _argv: *const *const libc::c_char) -> libc::c_int {
    reopen_closed_std_streams();
    // SAFETY: setting a signal's disposition to SIG_IGN has no preconditions.
    unsafe { libc::signal(libc::SIGPIPE, libc::SIG_IGN) };
    // A panic has printed its message (the default hook); unwinding out of
    // an `extern "C"` function would abort, so it ends here, as std's 101.
    let code = std::panic::catch_unwind(run).unwrap_or(101);
    // `exit` flushes stdout (buffered output must not be lost).
    std::process::exit(code)
}

/// Opens `/dev/null` on any of fds 0–2 that the parent left closed, as
/// std's start-up does, with one `poll` when none is.
#[cfg(target_os = "linux")]
fn reopen_closed_std_streams() {
    let mut fds = [0, 1, 2].map(|fd| libc::pollfd {
        fd,
        events: 0,
        revents: 0,
    });
    // SAFETY: fds is a valid array of 3 pollfd; a zero timeout never blocks.
    let polled = unsafe { libc::poll(fds.as_mut_ptr(), 3, 0) };
    if polled < 0 {
        return;
    }
    for p in fds {
        if p.revents & libc::POLLNVAL != 0 {
            let flags = if p.fd == 0 {
                libc::O_RDONLY
            } else {
                libc::O_WRONLY
            };
            // SAFETY: a constant NUL-terminated path; the lowest free fd is
            // the closed one, so it lands where it belongs.
            unsafe { libc::open(c"/dev/null".as_ptr(), flags) };
        }
    }
}

#[cfg(not(target_os = "linux"))]
fn main() {
    std::process::exit(run())
}

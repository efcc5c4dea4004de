//! The physical floors of this machine, measured in the same run as
//! everything else, so each figure can be read as "x times the floor".

use crate::stats::{summarize, Summary};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Spawning and reaping a process that does nothing (`/bin/true`).
pub fn spawn_noop(n: usize) -> Summary {
    let true_bin = if std::path::Path::new("/bin/true").exists() {
        "/bin/true"
    } else {
        "true"
    };
    let samples = (0..n)
        .map(|_| {
            let t = Instant::now();
            let status = Command::new(true_bin).status().expect("spawn /bin/true");
            assert!(status.success());
            t.elapsed()
        })
        .collect();
    summarize(samples)
}

/// One byte there and back over a connected Unix socket pair, echoed by a
/// second thread: the least a request/response over the daemon socket costs.
pub fn socket_round_trip(n: usize) -> Summary {
    let (mut a, mut b) = UnixStream::pair().expect("socketpair");
    let echo = std::thread::spawn(move || {
        let mut buf = [0u8; 1];
        while b.read_exact(&mut buf).is_ok() {
            if b.write_all(&buf).is_err() {
                break;
            }
        }
    });
    let mut buf = [0u8; 1];
    let mut samples = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        a.write_all(&[7]).expect("write");
        a.read_exact(&mut buf).expect("read");
        samples.push(t.elapsed());
    }
    drop(a);
    let _ = echo.join();
    summarize(samples)
}

/// Writing 4 KiB and `fsync`ing it: what every durable commit pays.
pub fn fsync(n: usize, dir: &std::path::Path) -> Summary {
    let path = dir.join("fsync-probe");
    let mut f = std::fs::File::create(&path).expect("create fsync probe");
    let block = [0x5au8; 4096];
    let samples: Vec<Duration> = (0..n)
        .map(|_| {
            let t = Instant::now();
            f.write_all(&block).expect("write");
            f.sync_all().expect("fsync");
            t.elapsed()
        })
        .collect();
    let _ = std::fs::remove_file(&path);
    summarize(samples)
}

/// One durable write a command cannot avoid, as its floor replays it.
#[derive(Debug, Clone)]
pub enum Durable {
    /// Append `bytes` to a file and fsync it: the status log's new line, the
    /// daemon's WAL commit.
    Append { file: PathBuf, bytes: usize },
    /// Replace a file by a new one of `bytes` (temp, write, fsync, rename):
    /// a view or a WP file. The replaced file's blocks are freed, as the
    /// command's are: on a file system mounted with `discard` and no
    /// journal (this VM's), that trims them there and then.
    Replace { file: PathBuf, bytes: usize },
    /// Create a new file of `bytes` in a directory (temp, write, fsync,
    /// rename to a fresh name): a spooled event.
    Create { dir: PathBuf, bytes: usize },
    /// `fsync` a directory: the renames into it become durable.
    SyncDir(PathBuf),
}

/// The durable writes of one command, replayed in this process on scratch
/// files of the same sizes in the same file system: the I/O part of the
/// command's floor, without a process, a parser or any logic. Timed
/// interleaved with the command itself ([`crate::cli::time_on_wp01`]), so
/// both see the same disk at the same moment.
#[derive(Debug, Clone)]
pub struct DurableWrites {
    pub steps: Vec<Durable>,
}

impl DurableWrites {
    /// Creates the files the steps append to or replace (untimed).
    pub fn prepare(&self) -> std::io::Result<()> {
        for s in &self.steps {
            match s {
                Durable::Append { file, .. } | Durable::Replace { file, .. } => {
                    if let Some(d) = file.parent() {
                        std::fs::create_dir_all(d)?;
                    }
                    if !file.exists() {
                        std::fs::write(file, [b'x'; 2048])?;
                    }
                }
                Durable::Create { dir: d, .. } | Durable::SyncDir(d) => std::fs::create_dir_all(d)?,
            }
        }
        Ok(())
    }

    /// How many `fsync`s the steps make (one each).
    pub fn fsyncs(&self) -> usize {
        self.steps.len()
    }

    /// Runs the steps once and returns how long they took; `i` keeps temp
    /// names unique.
    pub fn run(&self, i: usize) -> std::io::Result<Duration> {
        let t = Instant::now();
        for s in &self.steps {
            match s {
                Durable::Append { file, bytes } => {
                    let mut f = std::fs::OpenOptions::new().append(true).open(file)?;
                    let mut line = vec![b'a'; bytes.saturating_sub(1)];
                    line.push(b'\n');
                    f.write_all(&line)?;
                    f.sync_all()?;
                }
                Durable::Replace { file, bytes } => {
                    let tmp = file.with_extension(format!("floor{i}.tmp"));
                    write_synced_then_rename(&tmp, *bytes, file)?;
                }
                Durable::Create { dir, bytes } => {
                    let tmp = dir.join(format!(".floor-{i}.tmp"));
                    write_synced_then_rename(&tmp, *bytes, &dir.join(format!("floor-{i}.json")))?;
                }
                Durable::SyncDir(d) => std::fs::File::open(d)?.sync_all()?,
            }
        }
        Ok(t.elapsed())
    }
}

/// Writes `bytes` bytes to a new file `tmp`, fsyncs it and renames it to
/// `dest`: an atomic write up to its directory's fsync.
fn write_synced_then_rename(tmp: &Path, bytes: usize, dest: &Path) -> std::io::Result<()> {
    let mut f = std::fs::File::create(tmp)?;
    f.write_all(&vec![b'w'; bytes])?;
    f.sync_all()?;
    drop(f);
    std::fs::rename(tmp, dest)
}

/// Writes back and syncs what the page cache holds, so that a timed run
/// pays for its own writes, not for those the harness made just before it
/// (restoring files frees blocks: on a `discard` mount, the next journal
/// commit pays for trimming them).
pub fn settle() {
    // SAFETY: sync(2) takes no arguments and cannot fail.
    unsafe { libc::sync() };
}

//! The physical floors of this machine, measured in the same run as
//! everything else, so each figure can be read as "x times the floor".

use crate::stats::{summarize, Summary};
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
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

//! A TCP listener that can stop listening for a while.
//!
//! "The server is down" must look to a client exactly like it does in real
//! life: new connections are refused (`ECONNREFUSED`, because the listening
//! socket is really closed) and established connections, including pooled
//! keep-alive ones and WebSockets, are cut. [`RefusingListener`] closes and
//! re-binds the same port around a refuse window, and every accepted stream
//! is a [`KillableStream`] that fails as soon as the kill generation moves
//! (wrapped in TLS when the server has a certificate).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Notify};

use crate::faults::{bump, Stats};
use crate::tls::MaybeTls;
use tokio_rustls::TlsAcceptor;

/// Shared switch between the control endpoint and the listener.
#[derive(Debug)]
pub struct RefuseSwitch {
    until: Mutex<Option<Instant>>,
    changed: Notify,
    /// Moves whenever established connections must die.
    kill: watch::Sender<u64>,
}

impl Default for RefuseSwitch {
    fn default() -> Self {
        RefuseSwitch {
            until: Mutex::new(None),
            changed: Notify::new(),
            kill: watch::channel(0).0,
        }
    }
}

impl RefuseSwitch {
    /// Refuse new connections for `ms` milliseconds from now and cut every
    /// established one.
    pub fn refuse_for(&self, ms: u64, stats: &Stats) {
        if ms == 0 {
            return;
        }
        *self.until.lock().unwrap_or_else(|e| e.into_inner()) =
            Some(Instant::now() + Duration::from_millis(ms));
        bump(&stats.refuse_windows);
        self.kill.send_modify(|g| *g += 1);
        self.changed.notify_one();
    }

    /// Milliseconds left of the refuse window (0 when listening).
    pub fn remaining_ms(&self) -> u64 {
        match *self.until.lock().unwrap_or_else(|e| e.into_inner()) {
            Some(t) => t.saturating_duration_since(Instant::now()).as_millis() as u64,
            None => 0,
        }
    }

    /// A receiver that sees every kill.
    pub fn kill_watch(&self) -> watch::Receiver<u64> {
        self.kill.subscribe()
    }

    fn window_end(&self) -> Option<Instant> {
        let mut until = self.until.lock().unwrap_or_else(|e| e.into_inner());
        match *until {
            Some(t) if t > Instant::now() => Some(t),
            _ => {
                *until = None;
                None
            }
        }
    }
}

/// The listener handed to `axum::serve`.
pub struct RefusingListener {
    inner: Option<TcpListener>,
    addr: SocketAddr,
    switch: Arc<RefuseSwitch>,
    stats: Arc<Stats>,
    tls: Option<TlsAcceptor>,
}

impl RefusingListener {
    pub fn new(
        inner: TcpListener,
        switch: Arc<RefuseSwitch>,
        stats: Arc<Stats>,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> io::Result<Self> {
        let addr = inner.local_addr()?;
        Ok(RefusingListener {
            inner: Some(inner),
            addr,
            switch,
            stats,
            tls: tls.map(TlsAcceptor::from),
        })
    }

    /// Closes the socket now if a refuse window is open, so a window set
    /// before the ready line is printed is already in force when it is.
    pub fn apply_refuse_window(&mut self) {
        if self.switch.window_end().is_some() {
            self.inner = None;
        }
    }
}

impl axum::serve::Listener for RefusingListener {
    type Io = MaybeTls<KillableStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            if let Some(end) = self.switch.window_end() {
                // Really close the socket so clients get ECONNREFUSED.
                self.inner = None;
                tokio::select! {
                    _ = tokio::time::sleep_until(end.into()) => {}
                    _ = self.switch.changed.notified() => {}
                }
                continue;
            }
            if self.inner.is_none() {
                match TcpListener::bind(self.addr).await {
                    Ok(l) => self.inner = Some(l),
                    Err(e) => {
                        eprintln!("refserver: re-binding {} failed: {e}; retrying", self.addr);
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                }
            }
            let Some(listener) = &self.inner else {
                continue;
            };
            tokio::select! {
                r = listener.accept() => match r {
                    Ok((stream, peer)) => {
                        let _ = stream.set_nodelay(true);
                        let kill = self.switch.kill_watch();
                        let stream = KillableStream::new(stream, kill, self.stats.clone());
                        return (MaybeTls::new(stream, self.tls.as_ref()), peer);
                    }
                    Err(e) => {
                        // EMFILE and friends: back off instead of spinning.
                        eprintln!("refserver: accept failed: {e}");
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                },
                _ = self.switch.changed.notified() => {}
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        Ok(self.addr)
    }
}

type KillFuture = Pin<Box<dyn Future<Output = ()> + Send>>;

/// A TCP stream that fails with `ConnectionReset` once the kill generation
/// moves, waking any pending read or write so idle connections die at once.
pub struct KillableStream {
    inner: TcpStream,
    killed: KillFuture,
    dead: bool,
    stats: Arc<Stats>,
}

impl KillableStream {
    fn new(inner: TcpStream, mut kill: watch::Receiver<u64>, stats: Arc<Stats>) -> Self {
        kill.mark_unchanged();
        let killed: KillFuture = Box::pin(async move {
            if kill.changed().await.is_err() {
                std::future::pending::<()>().await;
            }
        });
        KillableStream {
            inner,
            killed,
            dead: false,
            stats,
        }
    }

    fn check(&mut self, cx: &mut Context<'_>) -> io::Result<()> {
        if !self.dead && self.killed.as_mut().poll(cx).is_ready() {
            self.dead = true;
            bump(&self.stats.connections_killed);
            // RST instead of FIN: the peer sees a reset, as when a server dies.
            let _ = socket_linger_zero(&self.inner);
        }
        if self.dead {
            return Err(io::Error::new(
                io::ErrorKind::ConnectionReset,
                "connection cut by fault injection",
            ));
        }
        Ok(())
    }
}

fn socket_linger_zero(s: &TcpStream) -> io::Result<()> {
    s.set_zero_linger()
}

impl AsyncRead for KillableStream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if let Err(e) = self.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for KillableStream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if let Err(e) = self.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        if let Err(e) = self.check(cx) {
            return Poll::Ready(Err(e));
        }
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

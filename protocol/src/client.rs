//! A blocking client of the daemon's socket: connect, [`Hello`], then
//! [`Request`] → [`Response`] over the frame codec of [`crate::ipc`].
//!
//! Why here: the tests, the end-to-end harness and the benchmarks all talk
//! to a running daemon and each used to carry its own copy of this. The
//! CLI's client (`cli/src/daemon_client.rs`) speaks the same frames but adds
//! what a user's command needs on top: a deadline on every step, spawning
//! the daemon, version-skew handling. Requests may be pipelined:
//! [`Client::send`] several, then [`Client::recv`] their answers in order.

use crate::ipc::{self, DaemonStatus, FrameError, Hello, HelloReply, Request, Response, Welcome};
use crate::Paths;
use std::os::unix::net::UnixStream;
use std::time::Duration;

/// Why a connection or a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("cannot connect to {path}: {source}")]
    Connect {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    /// The daemon answered the hello with `Incompatible`.
    #[error("the daemon refused the handshake: {0}")]
    Refused(String),
    #[error(transparent)]
    Frame(#[from] FrameError),
    /// A request got an answer of another kind.
    #[error("unexpected answer: {0}")]
    Unexpected(String),
}

/// A handshaken connection to the daemon.
#[derive(Debug)]
pub struct Client {
    /// The socket, for callers that write raw bytes (malformed-frame tests).
    pub stream: UnixStream,
    /// Who answered.
    pub welcome: Welcome,
}

impl Client {
    /// Connects to the socket of `paths` and says `hello`; every read and
    /// write then waits at most `timeout` (`None`: forever).
    pub fn connect(
        paths: &Paths,
        hello: &Hello,
        timeout: Option<Duration>,
    ) -> Result<Client, ClientError> {
        let path = paths.socket();
        let connect_err = |source| ClientError::Connect {
            path: path.clone(),
            source,
        };
        let mut stream = UnixStream::connect(&path).map_err(connect_err)?;
        stream.set_read_timeout(timeout).map_err(connect_err)?;
        stream.set_write_timeout(timeout).map_err(connect_err)?;
        ipc::write_frame(&mut stream, hello)?;
        match ipc::read_frame::<_, HelloReply>(&mut stream)? {
            HelloReply::Welcome(welcome) => Ok(Client { stream, welcome }),
            HelloReply::Incompatible { reason, .. } => Err(ClientError::Refused(reason)),
        }
    }

    /// Sends one request without waiting for its answer.
    pub fn send(&mut self, req: &Request) -> Result<(), FrameError> {
        ipc::write_frame(&mut self.stream, req)
    }

    /// The answer to the oldest request not yet answered.
    pub fn recv(&mut self) -> Result<Response, FrameError> {
        ipc::read_frame(&mut self.stream)
    }

    /// One request, one answer.
    pub fn request(&mut self, req: &Request) -> Result<Response, FrameError> {
        self.send(req)?;
        self.recv()
    }

    /// Emits one envelope (JSON text).
    pub fn emit(&mut self, envelope: &str) -> Result<Response, FrameError> {
        self.request(&Request::Emit {
            envelope: envelope.to_string(),
        })
    }

    /// The daemon's status.
    pub fn status(&mut self) -> Result<DaemonStatus, ClientError> {
        match self.request(&Request::Status)? {
            Response::Status { json } => serde_json::from_str(&json)
                .map_err(|e| ClientError::Unexpected(format!("status JSON: {e}"))),
            other => Err(ClientError::Unexpected(format!("{other:?}"))),
        }
    }
}

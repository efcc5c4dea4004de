//! The local-socket protocol between the CLI and the daemon.
//!
//! A connection starts with [`Hello`] → [`HelloReply`], then carries any
//! number of [`Request`] → [`Response`] pairs. Every message is one frame:
//! a 4-byte little-endian length, then the message in `postcard` (compact,
//! documented, stable wire format). Frames above [`MAX_FRAME`] are refused
//! before anything is allocated for them.
//!
//! Evolving the protocol: postcard is not self-describing, so a field added
//! to a message breaks older peers. Rules: new enum variants go at the end
//! and bump [`PROTOCOL_MINOR`]; a changed message shape bumps
//! [`PROTOCOL_MAJOR`]. Status reports, whose shape grows with every
//! feature, travel as JSON text (`#[serde(default)]` on every field), so
//! old and new peers can read each other's. Envelopes travel as JSON text
//! too: postcard cannot carry `serde_json::Value`.

use serde::{de::DeserializeOwned, Deserialize, Serialize};
use std::io::{Read, Write};

/// Bumped when a message changes shape; peers with different majors refuse
/// each other. The `skew-test-next-major` feature (version-skew tests only)
/// advertises one more, making a second, "newer" build.
pub const PROTOCOL_MAJOR: u16 = if cfg!(feature = "skew-test-next-major") {
    2
} else {
    1
};
/// Bumped when a variant is added; a daemon serves clients whose minor is
/// at most its own.
pub const PROTOCOL_MINOR: u16 = 1;
/// Largest frame body either side accepts (1 MiB).
pub const MAX_FRAME: usize = 1 << 20;

/// First message of a connection, client → daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Hello {
    pub major: u16,
    pub minor: u16,
    /// The client's package version (`CARGO_PKG_VERSION`).
    pub version: String,
    pub pid: u32,
}

impl Hello {
    /// A hello for this build.
    pub fn current(version: &str) -> Hello {
        Hello {
            major: PROTOCOL_MAJOR,
            minor: PROTOCOL_MINOR,
            version: version.to_string(),
            pid: std::process::id(),
        }
    }
}

/// Who the daemon is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Welcome {
    pub major: u16,
    pub minor: u16,
    /// The daemon's package version.
    pub version: String,
    pub pid: u32,
}

/// The daemon's answer to [`Hello`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HelloReply {
    /// Go ahead.
    Welcome(Welcome),
    /// The daemon cannot serve this client; the connection closes after this.
    Incompatible { daemon: Welcome, reason: String },
}

/// How a client's protocol version relates to a daemon's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compat {
    /// Same major, daemon minor >= client minor.
    Compatible,
    /// The daemon is older than the client: a newer CLI may ask it to drain
    /// and exit, then start its own.
    DaemonOlder,
    /// The daemon is newer than the client: an older CLI never restarts it;
    /// it spools and says so.
    DaemonNewer,
}

/// Compares `(major, minor)` of a client and a daemon.
pub fn compat(client: (u16, u16), daemon: (u16, u16)) -> Compat {
    if client.0 == daemon.0 && daemon.1 >= client.1 {
        Compat::Compatible
    } else if daemon < client {
        Compat::DaemonOlder
    } else {
        Compat::DaemonNewer
    }
}

/// What a client asks of the daemon.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Request {
    /// Make one envelope (JSON text, unstamped) durable; answered
    /// [`Response::Accepted`] only after the commit.
    Emit { envelope: String },
    /// Answered [`Response::Status`].
    Status,
    /// Send pending events now; with `wait`, answer only when the queue is
    /// drained or sending stopped ([`Response::Synced`]), else at once.
    SyncNow { wait: bool },
    /// Ingest the spool directory now.
    IngestSpool,
    /// Re-read credentials and configuration (after login/logout).
    Reload,
    /// Drain in-flight work and exit. `reason` is logged.
    Shutdown { reason: String },
    /// Put every parked event back in the queue (attempts reset), answered
    /// [`Response::Requeued`]. Since minor 1.
    RetryParked,
}

/// The daemon's answer to a [`Request`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Response {
    /// The event is durable. `duplicate` is true when this `event_id` was
    /// already stored; the values are then those of the stored row.
    Accepted {
        lamport_clock: u64,
        seq: u64,
        duplicate: bool,
    },
    /// A [`DaemonStatus`] as JSON text.
    Status { json: String },
    /// A [`SyncSummary`] as JSON text.
    Synced { json: String },
    /// The request was carried out (IngestSpool, Reload, Shutdown).
    Done { message: String },
    /// The request failed; the connection stays usable unless `kind` says
    /// otherwise.
    Error { kind: ErrorKind, message: String },
    /// How many parked events [`Request::RetryParked`] put back. Since minor 1.
    Requeued { count: u64 },
}

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum ErrorKind {
    /// The envelope broke a rule of the contract; retrying will not help.
    InvalidEnvelope,
    /// The store could not commit (disk full, I/O error); the client should
    /// spool the event.
    Storage,
    /// The daemon is draining; the client should spool or retry a new daemon.
    ShuttingDown,
    /// The request made no sense in this state.
    BadRequest,
    /// Anything else.
    Internal,
}

/// What `spec-kitty sync status` shows of the daemon. Travels as JSON so
/// fields can be added without breaking older peers.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DaemonStatus {
    pub pid: u32,
    pub version: String,
    pub protocol: String,
    pub uptime_secs: u64,
    pub socket: String,
    /// `auto` (spawned by the CLI), `foreground` or `socket-activated`.
    pub mode: String,
    pub node_id: String,
    pub lamport_clock: u64,
    /// Events stored and not yet confirmed delivered (held and parked excluded).
    pub queue_depth: u64,
    pub oldest_pending_age_secs: Option<u64>,
    pub projects: Vec<ProjectCounts>,
    /// Events without `project_uuid`: never sent.
    pub held: u64,
    /// Events the server rejected, kept with the reason.
    pub parked: Vec<ParkedEvent>,
    pub parked_total: u64,
    pub spool_backlog: u64,
    pub connection: ConnectionStatus,
    pub auth: AuthStatus,
}

/// Per-project counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ProjectCounts {
    pub project_uuid: String,
    pub project_slug: Option<String>,
    pub pending: u64,
    pub sent: u64,
}

/// An event the server rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ParkedEvent {
    pub event_id: String,
    pub event_type: String,
    pub project_slug: Option<String>,
    pub reason: String,
    pub attempts: u64,
}

/// The transport's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConnectionStatus {
    /// `offline`, `connecting`, `connected` or `backoff`.
    pub state: String,
    /// Why it is in that state, for people.
    pub reason: Option<String>,
    pub last_error: Option<String>,
    pub server_url: Option<String>,
    pub next_retry_secs: Option<u64>,
}

/// What the daemon knows of the login (never a token).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthStatus {
    pub logged_in: bool,
    pub username: Option<String>,
    pub team_slug: Option<String>,
    /// A hint for the user when action is needed, e.g. "run spec-kitty auth login".
    pub hint: Option<String>,
}

/// The outcome of `spec-kitty sync now`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SyncSummary {
    pub synced: u64,
    pub duplicates: u64,
    pub rejected: Vec<ParkedEvent>,
    pub remaining: u64,
    pub held: u64,
    /// Set when sending could not happen (not logged in, server down...).
    pub stopped_reason: Option<String>,
}

/// A frame could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("connection closed")]
    Closed,
    #[error("frame of {len} bytes exceeds the {MAX_FRAME}-byte limit")]
    TooLarge { len: usize },
    #[error("undecodable frame: {0}")]
    Decode(String),
    #[error("cannot encode message: {0}")]
    Encode(String),
    #[error("socket I/O: {0}")]
    Io(#[from] std::io::Error),
}

/// One message as a complete frame (length prefix included).
pub fn encode_frame<T: Serialize>(msg: &T) -> Result<Vec<u8>, FrameError> {
    // Reserve the header, then let postcard append the body.
    let mut out =
        postcard::to_extend(msg, vec![0u8; 4]).map_err(|e| FrameError::Encode(e.to_string()))?;
    let len = out.len() - 4;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge { len });
    }
    out[..4].copy_from_slice(&(len as u32).to_le_bytes());
    Ok(out)
}

/// The body length announced by a frame header, refused past the cap.
pub fn frame_len(header: [u8; 4]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(header) as usize;
    if len > MAX_FRAME {
        return Err(FrameError::TooLarge { len });
    }
    Ok(len)
}

/// Decodes a frame body (the bytes after the header). Trailing bytes are an
/// error: a frame holds exactly one message.
pub fn decode_body<T: DeserializeOwned>(body: &[u8]) -> Result<T, FrameError> {
    let (msg, rest) =
        postcard::take_from_bytes(body).map_err(|e| FrameError::Decode(e.to_string()))?;
    if !rest.is_empty() {
        return Err(FrameError::Decode(format!(
            "{} trailing bytes after message",
            rest.len()
        )));
    }
    Ok(msg)
}

/// Decodes one frame from the front of `buf`: `Ok(None)` when `buf` does not
/// yet hold a whole frame, else the message and the bytes it used.
pub fn decode_frame<T: DeserializeOwned>(buf: &[u8]) -> Result<Option<(T, usize)>, FrameError> {
    let Some(header) = buf.get(..4) else {
        return Ok(None);
    };
    let len = frame_len(header.try_into().expect("4 bytes"))?;
    let Some(body) = buf.get(4..4 + len) else {
        return Ok(None);
    };
    Ok(Some((decode_body(body)?, 4 + len)))
}

/// Writes one message as a frame and flushes.
pub fn write_frame<W: Write, T: Serialize>(w: &mut W, msg: &T) -> Result<(), FrameError> {
    let frame = encode_frame(msg)?;
    w.write_all(&frame)?;
    w.flush()?;
    Ok(())
}

/// Reads one frame and decodes it. EOF before the first header byte is
/// [`FrameError::Closed`]; EOF inside a frame is an I/O error.
pub fn read_frame<R: Read, T: DeserializeOwned>(r: &mut R) -> Result<T, FrameError> {
    let mut header = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        match r.read(&mut header[got..]) {
            Ok(0) if got == 0 => return Err(FrameError::Closed),
            Ok(0) => return Err(FrameError::Io(std::io::ErrorKind::UnexpectedEof.into())),
            Ok(n) => got += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e.into()),
        }
    }
    let len = frame_len(header)?;
    let mut body = vec![0u8; len];
    r.read_exact(&mut body)?;
    decode_body(&body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn compat_rules() {
        assert_eq!(compat((1, 0), (1, 0)), Compat::Compatible);
        assert_eq!(compat((1, 0), (1, 3)), Compat::Compatible);
        assert_eq!(compat((1, 3), (1, 0)), Compat::DaemonOlder);
        assert_eq!(compat((2, 0), (1, 9)), Compat::DaemonOlder);
        assert_eq!(compat((1, 9), (2, 0)), Compat::DaemonNewer);
    }

    #[test]
    fn frame_round_trip_and_header() {
        let req = Request::Emit {
            envelope: "{}".into(),
        };
        let frame = encode_frame(&req).unwrap();
        assert_eq!(
            u32::from_le_bytes(frame[..4].try_into().unwrap()) as usize,
            frame.len() - 4
        );
        let back: Request = read_frame(&mut &frame[..]).unwrap();
        assert_eq!(back, req);
        assert_eq!(
            decode_frame::<Request>(&frame[..frame.len() - 1]).unwrap(),
            None
        );
    }

    #[test]
    fn oversized_header_is_refused_before_allocation() {
        let mut bytes = ((MAX_FRAME + 1) as u32).to_le_bytes().to_vec();
        bytes.extend_from_slice(&[0; 8]);
        assert!(matches!(
            read_frame::<_, Request>(&mut &bytes[..]),
            Err(FrameError::TooLarge { .. })
        ));
        let huge = Request::Emit {
            envelope: "x".repeat(MAX_FRAME),
        };
        assert!(matches!(
            encode_frame(&huge),
            Err(FrameError::TooLarge { .. })
        ));
    }

    #[test]
    fn eof_is_closed_and_truncation_is_io() {
        assert!(matches!(
            read_frame::<_, Request>(&mut &[][..]),
            Err(FrameError::Closed)
        ));
        assert!(matches!(
            read_frame::<_, Request>(&mut &[5, 0][..]),
            Err(FrameError::Io(_))
        ));
    }
}

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
    pub mode: DaemonMode,
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
    pub state: ConnState,
    /// Why it is in that state, for people.
    pub reason: Option<String>,
    pub last_error: Option<String>,
    pub server_url: Option<String>,
    pub next_retry_secs: Option<u64>,
}

/// An enum that travels as one of a fixed set of words, and keeps any
/// other word it reads in `Unknown`: an older reader still reads (and shows,
/// and passes on) what a newer writer says.
macro_rules! wire_words {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $word:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(from = "String", into = "String")]
        pub enum $name {
            $($(#[$vdoc])* $variant,)*
            /// A word this build does not know (empty: not said).
            Unknown(String),
        }

        impl $name {
            /// The word on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $word,)*
                    $name::Unknown(w) => w,
                }
            }
        }

        impl Default for $name {
            fn default() -> Self {
                $name::Unknown(String::new())
            }
        }

        impl From<String> for $name {
            fn from(word: String) -> Self {
                match word.as_str() {
                    $($word => $name::$variant,)*
                    _ => $name::Unknown(word),
                }
            }
        }

        impl From<$name> for String {
            fn from(v: $name) -> String {
                match v {
                    $name::Unknown(w) => w,
                    known => known.as_str().to_string(),
                }
            }
        }

        /// The word; `unknown` when none was said.
        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                match self.as_str() {
                    "" => f.write_str("unknown"),
                    w => f.write_str(w),
                }
            }
        }
    };
}

wire_words! {
    /// The transport's state.
    ConnState {
        /// Not logged in, or the session ended: nothing is sent.
        Offline = "offline",
        Connecting = "connecting",
        Connected = "connected",
        /// A failure; the next attempt is scheduled.
        Backoff = "backoff",
    }
}

wire_words! {
    /// How the daemon was started.
    DaemonMode {
        /// Spawned by the CLI (idle-exits).
        Auto = "auto",
        Foreground = "foreground",
        /// Started by systemd on the first connection.
        SocketActivated = "socket-activated",
    }
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

/// The one line a daemon started with `run --spawned` prints on stdout
/// (then it detaches): the CLI that spawned it reads it to know whether to
/// connect, connect to another daemon, or report why it could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Readiness {
    /// `READY pid=… version=… protocol=MAJOR.MINOR socket=…`: listening.
    Ready {
        pid: u32,
        version: String,
        protocol: (u16, u16),
        /// Last on the line: it may hold spaces.
        socket: String,
    },
    /// `RUNNING pid=…`: another daemon holds the daemon lock (its pid, when
    /// it could be read); connect to that one.
    Running { pid: Option<u32> },
    /// `ERROR <reason>`: start-up failed (the reason on one line).
    Error(String),
}

impl std::fmt::Display for Readiness {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Readiness::Ready {
                pid,
                version,
                protocol: (major, minor),
                socket,
            } => write!(
                f,
                "READY pid={pid} version={version} protocol={major}.{minor} socket={socket}"
            ),
            Readiness::Running { pid: Some(pid) } => write!(f, "RUNNING pid={pid}"),
            Readiness::Running { pid: None } => f.write_str("RUNNING pid=unknown"),
            Readiness::Error(reason) => write!(f, "ERROR {}", reason.replace('\n', " ")),
        }
    }
}

impl std::str::FromStr for Readiness {
    type Err = String;

    /// Lenient about fields (a missing or odd one reads as 0/empty); an
    /// unknown first word is an error naming the line.
    fn from_str(line: &str) -> Result<Readiness, String> {
        let line = line.trim();
        let (word, rest) = line.split_once(' ').unwrap_or((line, ""));
        let field = |key: &str| {
            rest.split_whitespace()
                .find_map(|w| w.strip_prefix(key)?.strip_prefix('='))
        };
        let pid = || field("pid").and_then(|p| p.parse::<u32>().ok());
        match word {
            "READY" => {
                let protocol = field("protocol")
                    .and_then(|p| p.split_once('.'))
                    .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
                    .unwrap_or((0, 0));
                let socket = rest
                    .split_once("socket=")
                    .map_or("", |(_, s)| s)
                    .to_string();
                Ok(Readiness::Ready {
                    pid: pid().unwrap_or(0),
                    version: field("version").unwrap_or("").to_string(),
                    protocol,
                    socket,
                })
            }
            "RUNNING" => Ok(Readiness::Running { pid: pid() }),
            "ERROR" => Ok(Readiness::Error(rest.trim().to_string())),
            _ => Err(format!("unexpected start-up line {line:?}")),
        }
    }
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
    fn states_travel_as_words_and_keep_unknown_ones() {
        let c: ConnectionStatus =
            serde_json::from_str(r#"{"state":"backoff","reason":"r"}"#).unwrap();
        assert_eq!(c.state, ConnState::Backoff);
        let newer: ConnectionStatus = serde_json::from_str(r#"{"state":"paused"}"#).unwrap();
        assert_eq!(newer.state, ConnState::Unknown("paused".into()));
        assert_eq!(newer.state.to_string(), "paused");
        assert!(serde_json::to_string(&newer)
            .unwrap()
            .contains(r#""state":"paused""#));
        let blank = ConnectionStatus::default();
        assert_eq!(
            (blank.state.as_str(), blank.state.to_string()),
            ("", "unknown".into())
        );
        let d: DaemonStatus = serde_json::from_str(r#"{"mode":"socket-activated"}"#).unwrap();
        assert_eq!(d.mode, DaemonMode::SocketActivated);
        assert!(serde_json::to_string(&d)
            .unwrap()
            .contains(r#""mode":"socket-activated""#));
    }

    #[test]
    fn readiness_lines_round_trip() {
        let lines = [
            Readiness::Ready {
                pid: 42,
                version: "0.1.0".into(),
                protocol: (1, 1),
                socket: "/run/user/1000/a dir/syncd.sock".into(),
            },
            Readiness::Running { pid: Some(7) },
            Readiness::Running { pid: None },
            Readiness::Error("store is locked by a newer schema".into()),
        ];
        for r in lines {
            assert_eq!(r.to_string().parse::<Readiness>(), Ok(r.clone()), "{r}");
        }
        assert_eq!(
            "READY pid=42 version=0.1.0 protocol=1.0 socket=/x/y\n".parse(),
            Ok(Readiness::Ready {
                pid: 42,
                version: "0.1.0".into(),
                protocol: (1, 0),
                socket: "/x/y".into()
            })
        );
        assert_eq!(
            Readiness::Error("two\nlines".into()).to_string(),
            "ERROR two lines"
        );
        assert!("garbage".parse::<Readiness>().is_err());
        assert!("READYX pid=1".parse::<Readiness>().is_err());
    }

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

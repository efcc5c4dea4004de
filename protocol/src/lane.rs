//! Lanes: the canonical wire names of a work package's state, the user's
//! spelling (`doing` for `in_progress`) and the 2.x dashboard's four-lane
//! view. One enum, so no two places can disagree on a name.

use serde::Serialize;

use crate::envelope_error::{field_err, EnvelopeError};

/// A work package's lane, as the wire knows it: the eight canonical lanes of
/// the 2.1.3 status model (CONTRACT.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    Planned,
    Claimed,
    InProgress,
    ForReview,
    Approved,
    Done,
    Blocked,
    Canceled,
}

impl Lane {
    pub const ALL: [Lane; 8] = [
        Lane::Planned,
        Lane::Claimed,
        Lane::InProgress,
        Lane::ForReview,
        Lane::Approved,
        Lane::Done,
        Lane::Blocked,
        Lane::Canceled,
    ];

    /// The four lanes a user sees and writes in WP files, in board order.
    pub const USER: [Lane; 4] = [Lane::Planned, Lane::InProgress, Lane::ForReview, Lane::Done];

    /// Parses a wire lane; `doing` is accepted as the alias of `in_progress`.
    pub fn parse(s: &str) -> Result<Lane, EnvelopeError> {
        Ok(match s {
            "planned" => Lane::Planned,
            "claimed" => Lane::Claimed,
            "in_progress" | "doing" => Lane::InProgress,
            "for_review" => Lane::ForReview,
            "approved" => Lane::Approved,
            "done" => Lane::Done,
            "blocked" => Lane::Blocked,
            "canceled" => Lane::Canceled,
            other => {
                return Err(field_err(
                    "lane",
                    format!("'{other}' is not a valid Lane (planned, claimed, in_progress, for_review, approved, done, blocked, canceled; 'doing' means in_progress)"),
                ))
            }
        })
    }

    /// The canonical wire name (`in_progress`, never `doing`).
    pub fn as_wire(self) -> &'static str {
        match self {
            Lane::Planned => "planned",
            Lane::Claimed => "claimed",
            Lane::InProgress => "in_progress",
            Lane::ForReview => "for_review",
            Lane::Approved => "approved",
            Lane::Done => "done",
            Lane::Blocked => "blocked",
            Lane::Canceled => "canceled",
        }
    }

    /// The name written in WP files and shown to users (`doing` for
    /// `in_progress`; the others keep their wire name).
    pub fn as_user(self) -> &'static str {
        match self {
            Lane::InProgress => "doing",
            other => other.as_wire(),
        }
    }

    /// The four-lane SyncLaneV1 view of the 2.x dashboard.
    pub fn to_sync_v1(self) -> Lane {
        match self {
            Lane::Planned | Lane::Claimed | Lane::Canceled => Lane::Planned,
            Lane::InProgress | Lane::Blocked => Lane::InProgress,
            Lane::ForReview | Lane::Approved => Lane::ForReview,
            Lane::Done => Lane::Done,
        }
    }
}

impl std::fmt::Display for Lane {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_wire())
    }
}

impl Serialize for Lane {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_wire())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lane_user_and_wire_names() {
        assert_eq!(Lane::parse("doing").unwrap().as_wire(), "in_progress");
        assert_eq!(Lane::InProgress.as_user(), "doing");
        for l in Lane::ALL {
            assert_eq!(Lane::parse(l.as_wire()).unwrap(), l);
        }
    }
}

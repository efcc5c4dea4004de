//! Which lane moves are allowed, and what each one needs: 2.1.3's
//! transition matrix and guards (`specify_cli/status/transitions.py`).
//!
//! The rules are 2.1.3's exactly, so a move one CLI allows the other
//! allows too. The messages start with 2.1.3's text and then say which
//! flag satisfies the guard, because the person reading a refusal needs to
//! know what to type next.

use super::event::DoneEvidence;
use spec_kitty_protocol::Lane;

/// The moves allowed without `--force`.
pub fn allowed(from: Lane, to: Lane) -> bool {
    use Lane::*;
    matches!(
        (from, to),
        (Planned, Claimed | Blocked | Canceled)
            | (Claimed, InProgress | Blocked | Canceled)
            | (
                InProgress,
                ForReview | Approved | Planned | Blocked | Canceled
            )
            | (
                ForReview,
                Approved | Done | InProgress | Planned | Blocked | Canceled
            )
            | (Approved, Done | InProgress | Planned | Blocked | Canceled)
            | (Blocked, InProgress | Canceled)
    )
}

/// `done` and `canceled` end a work package's life.
pub fn is_terminal(lane: Lane) -> bool {
    matches!(lane, Lane::Done | Lane::Canceled)
}

/// The condition an allowed move must meet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Guard {
    /// planned → claimed: someone claims it.
    ActorRequired,
    /// claimed → in_progress: there is a workspace to work in.
    WorkspaceContext,
    /// in_progress → for_review: subtasks ticked and work recorded.
    SubtasksComplete,
    /// → approved / done: a reviewer and an approval reference.
    ReviewerApproval,
    /// for_review/approved → in_progress/planned: the review feedback.
    ReviewRef,
    /// in_progress → planned: why it is un-started.
    Reason,
}

/// The guard of an allowed move, if it has one.
pub fn guard(from: Lane, to: Lane) -> Option<Guard> {
    use Lane::*;
    Some(match (from, to) {
        (Planned, Claimed) => Guard::ActorRequired,
        (Claimed, InProgress) => Guard::WorkspaceContext,
        (InProgress, ForReview) => Guard::SubtasksComplete,
        (InProgress | ForReview, Approved) | (ForReview | Approved, Done) => {
            Guard::ReviewerApproval
        }
        (ForReview | Approved, InProgress | Planned) => Guard::ReviewRef,
        (InProgress, Planned) => Guard::Reason,
        _ => return None,
    })
}

/// What the mover brings to satisfy the guards.
#[derive(Debug, Clone, Default)]
pub struct Facts<'a> {
    pub force: bool,
    pub actor: Option<&'a str>,
    pub workspace_context: Option<&'a str>,
    pub subtasks_complete: Option<bool>,
    pub implementation_evidence_present: Option<bool>,
    pub reason: Option<&'a str>,
    pub review_ref: Option<&'a str>,
    pub evidence: Option<&'a DoneEvidence>,
}

/// Why a move was refused: the guard (None for a move outside the matrix
/// or a bad force), 2.1.3's message, and what to do about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    pub guard: Option<Guard>,
    pub message: String,
    pub fix: String,
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.fix)
    }
}

fn blank(s: Option<&str>) -> bool {
    s.is_none_or(|s| s.trim().is_empty())
}

fn refuse(guard: Option<Guard>, message: impl Into<String>, fix: &str) -> Result<(), Refusal> {
    Err(Refusal {
        guard,
        message: message.into(),
        fix: fix.into(),
    })
}

/// Checks a move the way 2.1.3's `validate_transition` does: outside the
/// matrix only with `--force`; `--force` always needs an actor and a
/// reason and then skips the guards; otherwise the move's guard decides.
pub fn validate(from: Lane, to: Lane, facts: &Facts<'_>) -> Result<(), Refusal> {
    if facts.force {
        if blank(facts.actor) || blank(facts.reason) {
            return refuse(
                None,
                "Force transitions require actor and reason",
                "give --agent NAME and --reason TEXT with --force",
            );
        }
        return Ok(());
    }
    if !allowed(from, to) {
        return refuse(
            None,
            format!("Illegal transition: {} -> {}", from.as_wire(), to.as_wire()),
            "the lane graph does not allow it; --force --reason TEXT overrides",
        );
    }
    match guard(from, to) {
        None => Ok(()),
        Some(g @ Guard::ActorRequired) if blank(facts.actor) => refuse(
            Some(g),
            "Transition planned -> claimed requires actor identity",
            "give --agent NAME",
        ),
        Some(g @ Guard::WorkspaceContext) if blank(facts.workspace_context) => refuse(
            Some(g),
            "Transition claimed -> in_progress requires workspace context",
            "start it with `spec-kitty implement WPnn`",
        ),
        Some(g @ Guard::SubtasksComplete) if facts.subtasks_complete != Some(true) => refuse(
            Some(g),
            "Transition in_progress -> for_review requires completed subtasks or force with reason",
            "tick the subtasks with `spec-kitty agent tasks mark-status T001 --status done`, or --force --reason TEXT",
        ),
        Some(g @ Guard::SubtasksComplete) if facts.implementation_evidence_present != Some(true) => refuse(
            Some(g),
            "Transition in_progress -> for_review requires implementation evidence or force with reason",
            "start it with `spec-kitty implement WPnn` first, or --force --reason TEXT",
        ),
        Some(g @ Guard::ReviewerApproval)
            if facts.evidence.is_none_or(|e| {
                e.review.reviewer.trim().is_empty() || e.review.reference.trim().is_empty()
            }) =>
        {
            refuse(
                Some(g),
                "Transition to approved/done requires evidence (reviewer identity and approval reference)",
                "give --reviewer NAME and --approval-ref REF",
            )
        }
        Some(g @ Guard::ReviewRef) if blank(facts.review_ref) => refuse(
            Some(g),
            "Transition from for_review requires review_ref (review feedback reference)",
            "give --review-feedback-file PATH",
        ),
        Some(g @ Guard::Reason) if blank(facts.reason) => refuse(
            Some(g),
            "Transition in_progress -> planned requires reason",
            "give --reason TEXT",
        ),
        Some(_) => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::event::ReviewApproval;
    use Lane::*;

    /// 2.1.3's ALLOWED_TRANSITIONS, copied as data so the matrix above is
    /// checked against the source, pair by pair, both ways.
    const PY_ALLOWED: [(Lane, Lane); 24] = [
        (Planned, Claimed),
        (Claimed, InProgress),
        (InProgress, ForReview),
        (InProgress, Approved),
        (ForReview, Approved),
        (ForReview, Done),
        (Approved, Done),
        (ForReview, InProgress),
        (ForReview, Planned),
        (Approved, InProgress),
        (Approved, Planned),
        (InProgress, Planned),
        (Planned, Blocked),
        (Claimed, Blocked),
        (InProgress, Blocked),
        (ForReview, Blocked),
        (Approved, Blocked),
        (Blocked, InProgress),
        (Planned, Canceled),
        (Claimed, Canceled),
        (InProgress, Canceled),
        (ForReview, Canceled),
        (Approved, Canceled),
        (Blocked, Canceled),
    ];

    #[test]
    fn the_matrix_is_2_1_3s() {
        for from in Lane::ALL {
            for to in Lane::ALL {
                assert_eq!(
                    allowed(from, to),
                    PY_ALLOWED.contains(&(from, to)),
                    "{from} -> {to}"
                );
            }
        }
        assert!(Lane::ALL
            .iter()
            .filter(|l| is_terminal(**l))
            .eq([Done, Canceled].iter()));
    }

    #[test]
    fn each_guard_refuses_with_its_fix_and_passes_when_met() {
        let ev = DoneEvidence {
            review: ReviewApproval {
                reviewer: "r".into(),
                verdict: "approved".into(),
                reference: "PR#1".into(),
            },
            repos: vec![],
            verification: vec![],
        };
        let none = Facts::default();
        let cases: [(Lane, Lane, Guard, Facts<'_>); 6] = [
            (
                Planned,
                Claimed,
                Guard::ActorRequired,
                Facts {
                    actor: Some("a"),
                    ..Facts::default()
                },
            ),
            (
                Claimed,
                InProgress,
                Guard::WorkspaceContext,
                Facts {
                    workspace_context: Some("worktree:/x"),
                    ..Facts::default()
                },
            ),
            (
                InProgress,
                ForReview,
                Guard::SubtasksComplete,
                Facts {
                    subtasks_complete: Some(true),
                    implementation_evidence_present: Some(true),
                    ..Facts::default()
                },
            ),
            (
                ForReview,
                Done,
                Guard::ReviewerApproval,
                Facts {
                    evidence: Some(&ev),
                    ..Facts::default()
                },
            ),
            (
                Approved,
                Planned,
                Guard::ReviewRef,
                Facts {
                    review_ref: Some("feedback.md"),
                    ..Facts::default()
                },
            ),
            (
                InProgress,
                Planned,
                Guard::Reason,
                Facts {
                    reason: Some("wrong WP"),
                    ..Facts::default()
                },
            ),
        ];
        for (from, to, g, ok) in cases {
            let err = validate(from, to, &none).unwrap_err();
            assert_eq!(err.guard, Some(g), "{from} -> {to}");
            assert!(!err.fix.is_empty());
            validate(from, to, &ok).unwrap_or_else(|e| panic!("{from} -> {to}: {e}"));
        }
    }

    #[test]
    fn force_needs_actor_and_reason_and_then_allows_anything() {
        let bare = Facts {
            force: true,
            ..Facts::default()
        };
        assert_eq!(
            validate(Done, Planned, &bare).unwrap_err().message,
            "Force transitions require actor and reason"
        );
        let forced = Facts {
            force: true,
            actor: Some("a"),
            reason: Some("redo"),
            ..Facts::default()
        };
        validate(Done, Planned, &forced).unwrap();
        validate(InProgress, ForReview, &forced).unwrap();
        assert_eq!(
            validate(Done, Planned, &Facts::default())
                .unwrap_err()
                .message,
            "Illegal transition: done -> planned"
        );
    }
}

"""Promote or keep: the rule, in one place.

A challenger replaces the champion only when it meets the SLO on the scoring
window and either the champion misses it, or the challenger is cheaper by at
least `margin` (a share of the champion's cost: differences inside it are within
what the seeds spread and not worth a change to the live stack). With no champion
yet, the cheapest challenger that meets the SLO becomes the first one. When
nothing meets the SLO, nothing is promoted.
"""

from __future__ import annotations

from dataclasses import dataclass

from planner.retrain.scoring import CandidateScore, Scoreboard


@dataclass(frozen=True)
class Decision:
    """`promote` names the winner (None: the champion stays); `reason` says why in a sentence."""

    promote: CandidateScore | None
    champion: CandidateScore | None
    best_challenger: CandidateScore | None
    reason: str

    @property
    def action(self) -> str:
        return "promote" if self.promote is not None else "keep"


def decide(board: Scoreboard, margin: float) -> Decision:
    """Apply the rule of the module docstring to a scoreboard."""
    champion = next((s for s in board.scores if s.candidate.role == "champion"), None)
    challengers = [s for s in board.ranked() if s.candidate.role == "challenger"]
    meeting = [s for s in challengers if s.meets_slo]
    best = meeting[0] if meeting else (challengers[0] if challengers else None)
    if not meeting:
        what = "the champion stays" if champion is not None else "no champion is set"
        return Decision(None, champion, best, f"no challenger meets the SLO; {what}")
    assert best is not None
    name = best.candidate.label
    cost = best.cost_usd.mean
    if champion is None:
        return Decision(
            best, None, best, f"no champion yet: {name} is the cheapest that meets the SLO"
        )
    held = champion.cost_usd.mean
    if not champion.meets_slo:
        return Decision(
            best,
            champion,
            best,
            f"the champion misses the SLO ({champion.slo_attainment.mean:.2%}); {name} meets it "
            f"({best.slo_attainment.mean:.2%}) at USD {cost:,.2f}",
        )
    if cost <= held * (1.0 - margin):
        return Decision(
            best,
            champion,
            best,
            f"{name} meets the SLO at USD {cost:,.2f}, {1 - cost / held:.1%} below the "
            f"champion's USD {held:,.2f} (margin {margin:.0%})",
        )
    return Decision(
        None,
        champion,
        best,
        f"the champion meets the SLO at USD {held:,.2f}; the best challenger {name} costs "
        f"USD {cost:,.2f}, not {margin:.0%} cheaper",
    )


__all__ = ["CandidateScore", "Decision", "decide"]

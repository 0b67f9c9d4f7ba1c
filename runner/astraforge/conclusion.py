"""How a run ended: one enum for the pipeline, the templates, the outputs and the action, and
the one place that maps a conclusion to an exit code."""

from __future__ import annotations

from enum import StrEnum

from astraforge.errors import AstraForgeError, PolicyError


class Conclusion(StrEnum):
    """Every way a run ends; the values are the `conclusion` output's."""

    FIXED = "fixed"  # a PR/MR with a change the runner's own tests passed
    UNVERIFIED = "unverified"  # a draft PR/MR: the runner's own tests were red or absent
    NO_CHANGE = "no_change"  # the agent found nothing to change
    SKIPPED = "skipped"  # the event does not ask for a run
    REFUSED = "refused"  # the requester may not start a run
    BUDGET_EXHAUSTED = "budget_exhausted"  # a budget ran out before the agent finished
    BLOCKED = "blocked"  # the policy refused the change; the patch is kept
    ERROR = "error"  # something failed; the error says what to do

    @property
    def comments(self) -> bool:
        """Whether the run leaves a status comment (a skipped event gets none)."""
        return self is not Conclusion.SKIPPED

    def exit_code(self, error: AstraForgeError | None = None) -> int:
        """0 for every outcome a workflow should not fail on, 8 when the policy blocked the
        change, the error's own code for an error."""
        if error is not None:
            return error.exit_code
        if self is Conclusion.BLOCKED:
            return PolicyError.exit_code
        return 1 if self is Conclusion.ERROR else 0

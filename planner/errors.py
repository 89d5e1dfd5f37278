"""User-facing errors: each names the file, the field path and the fix, and never needs a traceback."""

from __future__ import annotations

from typing import Self


class UserError(Exception):
    """A mistake in the user's input or request; the CLI prints it and exits non-zero."""

    exit_code = 2

    def __init__(self, message: str, *, details: list[str] | None = None):
        self.message = message
        self.details = details or []
        super().__init__(self.render())

    def render(self) -> str:
        return "\n".join([self.message, *(f"  - {d}" for d in self.details)])

    def at(self, where: object) -> Self:
        """The same error, of the same kind, with `where` (a file, an option) before its message."""
        return type(self)(f"{where}: {self.message}", details=self.details)


class ScenarioError(UserError):
    """The scenario file is unreadable or invalid."""


class PlanFileError(UserError):
    """A plan file is unreadable, invalid, or of another schema version."""


class NoPlanError(UserError):
    """The model has no acceptable plan (infeasible, unbounded, or the verifier rejected it)."""

    exit_code = 3


class RequirementsShortError(NoPlanError):
    """No plan meets every participation requirement: each short one's shortfall (US$, by name)
    in the elastic model's plan, which is the closest where `closest` (HiGHS proved it)."""

    def __init__(
        self,
        message: str,
        *,
        details: list[str] | None = None,
        short_usd: dict[str, float] | None = None,
        closest: bool = False,
    ) -> None:
        # keywords with defaults: an exception is re-made from its message alone when it crosses a
        # process (pickle), as every UserError is
        super().__init__(message, details=details)
        self.short_usd, self.closest = dict(short_usd or {}), closest

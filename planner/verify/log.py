"""Tolerances and the violation log: every check counts itself, and only the first MAX_MESSAGES
failures are formatted (plans can be huge)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

REL_TOL = 1e-6
ABS_TOL_QUANTITY = 1e-3  # GPU-hours, GPUs, MW, racks
ABS_TOL_USD = 1.0
EXACT_TOL = 1e-9  # inputs copied from the scenario (probabilities, discount factors, hours)
MAX_MESSAGES = 50


def tolerance(a: np.ndarray | float, b: np.ndarray | float, abs_tol: float) -> np.ndarray | float:
    return np.maximum(REL_TOL * np.maximum(np.abs(a), np.abs(b)), abs_tol)


def close(a: float, b: float, abs_tol: float) -> bool:
    """Equal within max(1e-6 relative, abs_tol)."""
    return bool(abs(a - b) <= tolerance(a, b, abs_tol))


def exceeds(lhs: np.ndarray, rhs: np.ndarray, abs_tol: float = ABS_TOL_QUANTITY) -> np.ndarray:
    """Element-wise: `lhs <= rhs` is violated beyond tolerance (NaN counts as violated)."""
    return ~(lhs - rhs <= tolerance(lhs, rhs, abs_tol))


@dataclass
class Log:
    """Counts checks and violations; formats at most MAX_MESSAGES messages (plans can be huge)."""

    checks_run: int = 0
    failures: int = 0
    messages: list[str] = field(default_factory=list)

    def ran(self, count: int) -> None:
        self.checks_run += count

    def fail(self, message: str) -> None:
        self.failures += 1
        self.say(message)

    def ok(self, condition: bool) -> bool:
        """Count one check; return the condition so the caller formats a message only on failure."""
        self.checks_run += 1
        if not condition:
            self.failures += 1
        return condition

    def say(self, message: str) -> None:
        if len(self.messages) < MAX_MESSAGES:
            self.messages.append(message)

    def check_array(self, failed: np.ndarray, describe: Callable[[tuple[int, ...]], str]) -> None:
        """One check per element of `failed`; `describe(index)` is called only for shown failures."""
        self.checks_run += int(failed.size)
        where = np.argwhere(failed)
        self.failures += len(where)
        for index in where[: max(0, MAX_MESSAGES - len(self.messages))]:
            self.messages.append(describe(tuple(int(x) for x in index)))

    def result(self) -> list[str]:
        hidden = self.failures - len(self.messages)
        return [*self.messages, f"and {hidden} more"] if hidden > 0 else list(self.messages)


def usd(value: float, digits: int = 0) -> str:
    """US$ as the planner's and the verifier's messages write them, a negative amount as
    -US$4,767 (whole dollars unless `digits` asks for cents)."""
    return f"-US${-value:,.{digits}f}" if value < 0 else f"US${value:,.{digits}f}"

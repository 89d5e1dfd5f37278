"""How the commands' tables print figures, and which basis each money figure has.

Money in US$ M has one rule in every table of every command: three decimals (US$ 1,000). Deal
teams reconcile one table against another (a party's value against the per-scenario figures, a
sweep point against its plan), and a per-table choice printed one figure as 0.17 in one table
and 0.171 in the next, or 0.00 against 0.000. Three decimals show US$ 28,000 as 0.028, not 0.0.

Other figures (MW, GPU-hours, quotas) keep a per-table rule: a fixed number of decimals hides
what a small plan is made of (a 0.25 MW site printed as 0 MW available against 0.2 MW of load
looks over-committed), so a table's figures of one kind share the fewest decimals that show the
smallest non-zero one: the same rounding for all of them keeps `a <= b` true as printed.

Party values, objectives, CVaR, EVPI and VSS are discounted; revenue, buyback, revenue share and
credit loss are undiscounted sums (docs/model.md, "Reported figures"). Every money column says which.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

MUSD = 1e6
DISCOUNTED = "discounted"
UNDISCOUNTED = "undiscounted"


def decimals_for(values: Iterable[float | None], *, least: int = 1, most: int = 3) -> int:
    """The fewest decimals, from `least` to `most`, that show the smallest non-zero figure with two
    significant digits; figures that would print as zero at `most` decimals do not count."""
    finest = 0.5 * 10.0**-most
    shown = [abs(v) for v in values if v is not None and math.isfinite(v) and abs(v) >= finest]
    if not shown:
        return least
    return max(least, min(most, 1 - math.floor(math.log10(min(shown)))))


def probability_decimals(probabilities: Iterable[float], *, least: int = 2, most: int = 4) -> int:
    """The fewest decimals, from `least` to `most`, that print every probability as it is: the
    per-scenario table printed 0.125 as 0.12, so its values no longer summed to the expected one."""
    given = list(probabilities)
    for decimals in range(least, most):
        if all(abs(round(p, decimals) - p) < 1e-9 for p in given):
            return decimals
    return most


def fixed(value: float | None, decimals: int) -> str:
    """`value` with `decimals` decimals and thousands separators; '-' for none, and no '-0.0'."""
    if value is None:
        return "-"
    text = f"{value:,.{decimals}f}"
    return text[1:] if text.startswith("-") and not text.strip("-0.,") else text


def signed(value: float, decimals: int) -> str:
    """A change, with its sign: '+1.5', '-0.25', '0.0' where it rounds to nothing."""
    text = fixed(value, decimals)
    return text if text.startswith("-") or not text.strip("0.,") else f"+{text}"


MUSD_DECIMALS = 3
"""Decimals of every US$ M figure the commands print (US$ 1,000), whatever else is in the table."""


def musd(value_usd: float | None) -> str:
    """US$ as US$ M with `MUSD_DECIMALS` decimals; '-' for none."""
    return fixed(None if value_usd is None else value_usd / MUSD, MUSD_DECIMALS)


def signed_musd(value_usd: float) -> str:
    """A change in US$ M with its sign, with `MUSD_DECIMALS` decimals."""
    return signed(value_usd / MUSD, MUSD_DECIMALS)


def share(value: float) -> str:
    """A share in whole per cent that never rounds a part to nothing or to all: '<1%', '>99%'."""
    text = f"{value:.0%}"
    if text == "0%" and value > 0.0:
        return "<1%"
    if text == "100%" and value < 1.0 - 1e-9:
        return ">99%"
    return text


def money_header(name: str, basis: str) -> str:
    """A money column's header: its name, and its basis beneath."""
    return f"{name}\n{basis}"

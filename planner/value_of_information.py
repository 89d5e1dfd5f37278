"""What modelling uncertainty is worth: EVPI and VSS (Birge & Louveaux), for a maximisation.

- RP, the recourse problem: the plan's own objective (first stage chosen before demand is known).
- WS, wait-and-see: each scenario solved alone with perfect foresight; the values V*_s are combined
  by the plan's own objective, (1 - w) E[V*] + w CVaR_alpha(V*) (with w = 0 the plain expectation).
- EEV: the expected-value problem (one scenario with probability-weighted demand and credit
  repayment) fixes the build (racks_built, blocks_ordered); the recourse problem is then solved
  with that build fixed and its quotas chosen afresh. Why not the EV quotas too: quotas cost
  nothing and only cap serving, so in the EV problem every quota from the mean demand up to the
  installed GPUs (or the term's mean peak) is optimal; fixing HiGHS's pick among those ties
  capped each scenario's serving at an arbitrary level, and VSS then moved with the tie (and was
  positive where both plans build the same). VSS is what planning the build for uncertainty earns.

RP and EEV keep the participation requirements, walk-away floors included (`planner.walk_away`:
the no-deal plan is solved first). WS and the EV problem keep the floors on the parties' expected
value and CVaR too, where they belong: on the values across builds chosen per scenario
(`_foresight_model`), so EVPI is what a perfect forecast is worth to the deal as signed, and with
one certain scenario EVPI = VSS = 0 (docs/model.md, Conventions: dropped, they made EVPI count
their own cost, US$ 1.03 M against 0 in a one-scenario case whose cloud floor binds; asked of each
scenario alone, they are a stricter deal, with no plan on the bundled example's low scenario).
Given floors, each scenario is solved alone first (`_ws_task`); only where their plans break a
floor together is WS the joined solve. Walk-away floors always take the joined solve. Where the EV plan's build meets no plan under
the requirements, EEV has none and VSS is not defined (`EEV_INFEASIBLE`). Each figure stands on
its own: EVPI needs RP and WS, VSS RP and EEV, so one is reported where the other's solves fail. EVPI = WS - RP >= 0 and VSS = RP - EEV >= 0 at exact optima. HiGHS stops
at a relative MIP gap, so a figure that comes out negative by less than that gap times |RP| is
reported as 0.

Given the plan (`with_value_of_information`), its first stage is offered to HiGHS as a MIP start
for the WS and EV solves: it is feasible in each of them (one scenario's, or the mean, demand), so
HiGHS begins with an incumbent at least as good as the plan's value there. Decomposed
(`solver.method: decomposition`), those solves start their Benders loop from it (a fallback to
the extensive form with no plan of the decomposition's to start from offers it to HiGHS).
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import pyomo.environ as pyo

from planner.engine import Engine, SerialEngine, available_memory_bytes
from planner.errors import NoPlanError
from planner.files import parse_scenario
from planner.model.build import MONEY_SCALE_USD, build_model
from planner.model.size import check_fits
from planner.results import build_plan, cvar
from planner.schema.plan import Plan
from planner.schema.scenario import FLOORS_GIVEN, Scenario
from planner.solve.interfaces import Interface, SolveOutcome, solve_model
from planner.solve.starts import TAKES_MIP_START, MipStart, start_from_plan
from planner.walk_away import PARTIES_WITH_FLOORS, WalkAwayFloors, asks_walk_away, solve_no_deal, with_floors

FORESIGHT_INTERFACE: Interface = "appsi"
"""The interface of the coupled wait-and-see solve: its model joins one model per scenario as
blocks, which `appsi` hands to HiGHS as any Pyomo model; `direct`'s rounded start and
decomposition read the planner's own model layout."""

BUILD = ("racks_built", "blocks_ordered")
"""The EV plan's decisions EEV keeps: the irreversible investment, not the quotas (module docstring)."""
EV_SCENARIO_ID = "expected"
EEV_INFEASIBLE = (
    "the expected-value plan's racks and power blocks leave no plan that meets the participation "
    "requirements EEV keeps (walk-away floors included where asked), so VSS is not defined"
)
"""Why EEV has no value where its build cannot meet the requirements: no time limit changes that."""
EV_INFEASIBLE = (
    "the expected-value problem (one scenario of mean demand and repayment) has no plan meeting the "
    "deal's floors, which it keeps, so VSS is not defined: the mean's values can fall short where "
    "every real scenario's plan meets them (say, a guarantor's credit loss at the mean repayment and "
    "the mean demand together); EVPI does not need it"
)
"""Why the EV problem has no plan where HiGHS proves its floors cannot be met: no time limit
changes that either."""


@dataclass
class StochasticFigures:
    """RP and whichever of WS and EEV their own solves gave: each figure stands on its own, so a
    missing EEV (the EV build meets no plan under the requirements) costs VSS, not EVPI."""

    rp_usd: float
    ws_usd: float | None
    eev_usd: float | None
    wait_and_see_by_scenario_usd: dict[str, float]
    tolerance_usd: float
    evpi_note: str | None = None
    """Why EVPI is not computed (a wait-and-see solve failed), when it is not."""
    vss_note: str | None = None
    """Why VSS is not computed (the EV or EEV solve failed), when it is not."""

    @property
    def evpi_usd(self) -> float | None:
        return None if self.ws_usd is None else _clamp(self.ws_usd - self.rp_usd, self.tolerance_usd)

    @property
    def vss_usd(self) -> float | None:
        return None if self.eev_usd is None else _clamp(self.rp_usd - self.eev_usd, self.tolerance_usd)

    def to_dict(self) -> dict[str, Any]:
        return {
            "evpi_usd": self.evpi_usd,
            "vss_usd": self.vss_usd,
            "evpi_computed": self.evpi_usd is not None,
            "vss_computed": self.vss_usd is not None,
            "evpi_note": self.evpi_note,
            "vss_note": self.vss_note,
            "recourse_problem_usd": self.rp_usd,
            "wait_and_see_usd": self.ws_usd,
            "expected_value_solution_usd": self.eev_usd,
            "wait_and_see_by_scenario_usd": self.wait_and_see_by_scenario_usd,
            "tolerance_usd": self.tolerance_usd,
        }

    def note(self) -> str | None:
        """What the plan's `risk.value_of_information_note` says: which figure is missing and why."""
        missing = [
            f"{name} not computed: {why}"
            for name, why in (("EVPI", self.evpi_note), ("VSS", self.vss_note))
            if why
        ]
        return "; ".join(missing) or None


def _clamp(value: float, tolerance: float) -> float:
    return 0.0 if -tolerance <= value < 0.0 else value


def _single_scenario(scenario: Scenario, scenario_id: str, weights: dict[str, float]) -> Scenario:
    """One scenario with probability 1 whose demand and repayment are the weighted mix of the
    original scenarios (a single weight of 1 picks that scenario; the probabilities give the EV)."""
    data = scenario.model_dump(mode="json")
    for tenant, original in zip(data["tenants"], scenario.tenants, strict=True):
        n = scenario.periods.count_quarters
        tenant["demand_gpus"] = {
            scenario_id: [sum(w * original.demand_gpus[s][t] for s, w in weights.items()) for t in range(n)]
        }
        tenant["credit_repayment_share"] = sum(w * original.repayment_share(s) for s, w in weights.items())
        tenant["credit_repayment_share_by_scenario"] = {}
    data["scenarios"] = [{"id": scenario_id, "probability": 1.0}]
    data["objective"]["cvar_weight"] = 0.0  # CVaR of a single certain outcome is its value
    data["objective"]["cvar_alpha"] = None
    data["participation"]["floors"] = FLOORS_GIVEN
    # Perfect foresight and the mean-value problem are benchmarks, not plans anyone signs: no
    # requirement on a party's value (so WS >= RP still holds). EEV, a plan, keeps them all.
    # The exposure caps bound the build itself in every scenario, so they stay.
    guarantor = data["participation"]["guarantor"]
    data["participation"]["cloud"] = {"min_expected_value_usd": None, "min_cvar_usd": None}
    guarantor.update(min_expected_value_usd=None, min_cvar_usd=None)
    return parse_scenario(data, f"{scenario.name} ({scenario_id} only)")


def _foresight_scenario(deal: Scenario, scenario_id: str) -> Scenario:
    """One scenario of the deal alone (as `_single_scenario`), keeping the parties' requirements
    so its model defines their values; the coupled model lifts their rows to the expectation."""
    return _keeping_floors(_single_scenario(deal, scenario_id, {scenario_id: 1.0}), deal)


def _keeping_floors(single: Scenario, deal: Scenario) -> Scenario:
    """`single` (from `_single_scenario`) with the deal's requirements on each party's value put back."""
    data = single.model_dump(mode="json")
    for party in PARTIES_WITH_FLOORS:
        need = getattr(deal.participation, party)
        data["participation"][party].update(
            min_expected_value_usd=need.min_expected_value_usd, min_cvar_usd=need.min_cvar_usd
        )
    return parse_scenario(data, single.name)


def _cvar_level(
    parent: pyo.ConcreteModel, name: str, values: dict[str, Any], probability: dict[str, float], alpha: float
) -> Any:
    """CVaR at `alpha` of `values` (one linear expression per scenario, US$M) as an LP term
    (Rockafellar-Uryasev: eta - Sum_s p_s / (1 - alpha) max(0, eta - value_s)), exact where it is
    maximised or bounded below, as in the objective and the participation rows."""
    eta = pyo.Var(domain=pyo.Reals)
    short = pyo.Var(list(values), domain=pyo.NonNegativeReals)
    parent.add_component(f"{name}_eta", eta)
    parent.add_component(f"{name}_short", short)
    parent.add_component(
        f"{name}_short_def", pyo.Constraint(list(values), rule=lambda _m, s: short[s] >= eta - values[s])
    )
    return eta - sum(probability[s] / (1 - alpha) * short[s] for s in values)


def _foresight_model(deal: Scenario) -> tuple[pyo.ConcreteModel, dict[str, pyo.ConcreteModel]]:
    """Wait-and-see with the deal's floors: one model per scenario, each building for its own
    demand (perfect foresight), joined by the deal's objective over their values and by each
    participation requirement on the parties' expected value (and CVaR) across them, as the
    recourse problem states them. The recourse problem is this with one build for all, so
    WS >= RP; with one scenario WS = RP (docs/model.md, Conventions)."""
    parent = pyo.ConcreteModel()
    blocks: dict[str, pyo.ConcreteModel] = {}
    for k, case in enumerate(deal.scenarios):
        m = build_model(_foresight_scenario(deal, case.id))
        m.value.deactivate()
        for rows in ("participation_expected_value", "participation_cvar"):
            if hasattr(m, rows):
                getattr(m, rows).deactivate()
        parent.add_component(f"foresight_{k}", m)
        blocks[case.id] = m
    p = {c.id: c.probability for c in deal.scenarios}
    value = {s: m.value.expr for s, m in blocks.items()}
    objective = sum(p[s] * value[s] for s in blocks)
    w = deal.objective.cvar_weight
    if w > 0:
        assert deal.objective.cvar_alpha is not None
        cvar_term = _cvar_level(parent, "objective_cvar", value, p, deal.objective.cvar_alpha)
        objective = (1 - w) * objective + w * cvar_term
    parent.value = pyo.Objective(expr=objective, sense=pyo.maximize)
    participation = deal.participation
    for party in PARTIES_WITH_FLOORS:
        need = getattr(participation, party)
        if need.min_expected_value_usd is None and need.min_cvar_usd is None:
            continue
        party_value = {s: m.party_value[party, s] for s, m in blocks.items()}
        if need.min_expected_value_usd is not None:
            expected = sum(p[s] * party_value[s] for s in blocks)
            parent.add_component(
                f"{party}_expected_value_floor",
                pyo.Constraint(expr=expected >= need.min_expected_value_usd / MONEY_SCALE_USD),
            )
        if need.min_cvar_usd is not None:
            assert participation.cvar_alpha is not None
            level = _cvar_level(parent, f"{party}_cvar", party_value, p, participation.cvar_alpha)
            parent.add_component(
                f"{party}_cvar_floor", pyo.Constraint(expr=level >= need.min_cvar_usd / MONEY_SCALE_USD)
            )
    return parent, blocks


def foresight_time_limit_s(deal: Scenario) -> float:
    """The joined wait-and-see solve's time limit: the scenario's, once per scenario it builds for."""
    return deal.solver.time_limit_s * len(deal.scenarios)


def _foresight_task(deal: Scenario) -> dict[str, float] | _Failed:
    """Each scenario's value in the wait-and-see plan that keeps the deal's floors (`_foresight_model`).

    One model of S builds, solved with S times the scenario's time limit
    (`foresight_time_limit_s`): it stands for the S single-scenario solves, each of which gets the
    limit, and has no rounded start (`FORESIGHT_INTERFACE`). With one limit, the bundled example
    with `floors: walk_away` lost EVPI (HiGHS found no plan in 30 s) once the buyback rows grew
    for the matching rule."""
    try:
        check_fits(deal, available_memory_bytes())  # about the recourse problem's size
        parent, blocks = _foresight_model(deal)
        options = deal.solver.model_copy(
            update={"method": "extensive", "time_limit_s": foresight_time_limit_s(deal)}
        )
        outcome = solve_model(parent, options, FORESIGHT_INTERFACE)
        if not outcome.has_solution:
            raise NoPlanError(
                f"scenario '{deal.name}': no solution for the wait-and-see plan with the deal's floors "
                f"(HiGHS: {outcome.status})"
            )
    except NoPlanError as error:
        return _Failed(error.message, tuple(error.details))
    return {s: float(pyo.value(m.value.expr)) * MONEY_SCALE_USD for s, m in blocks.items()}


def _solve(
    scenario: Scenario,
    m: pyo.ConcreteModel | None = None,
    *,
    interface: Interface | None = None,
    start: MipStart | None = None,
    infeasible_note: str | None = None,
) -> tuple[float, pyo.ConcreteModel]:
    outcome, m = _solved(scenario, m, interface=interface, start=start, infeasible_note=infeasible_note)
    assert outcome.objective_usd is not None  # (`_solved` raises otherwise)
    return outcome.objective_usd, m


def _solved(
    scenario: Scenario,
    m: pyo.ConcreteModel | None = None,
    *,
    interface: Interface | None = None,
    start: MipStart | None = None,
    infeasible_note: str | None = None,
) -> tuple[SolveOutcome, pyo.ConcreteModel]:
    """The solve's outcome and its model; `NoPlanError` where it has no solution."""
    if m is None:
        # Here, where the task runs (a Dask worker's machine), not where it was submitted.
        check_fits(scenario, available_memory_bytes())
        m = build_model(scenario)
    if (interface or scenario.solver.interface) not in TAKES_MIP_START:
        start = None
    outcome = solve_model(m, scenario.solver, interface, mip_start=start)
    if outcome.infeasible and infeasible_note is not None:
        raise NoPlanError(f"scenario '{scenario.name}': {infeasible_note}")
    if not outcome.has_solution or outcome.objective_usd is None:
        raise NoPlanError(
            f"scenario '{scenario.name}': no solution for a stochastic figure (HiGHS: {outcome.status})"
        )
    return outcome, m


def _build(m: pyo.ConcreteModel) -> dict[str, dict[Any, float]]:
    return {
        name: {
            idx: (round(v.value) if v.is_integer() else max(0.0, v.value))
            for idx, v in getattr(m, name).items()
            if v.value is not None
        }
        for name in BUILD
    }


def _objective_of(scenario: Scenario, values_usd: dict[str, float]) -> float:
    """The scenario's objective applied to given per-scenario values."""
    ids = [c.id for c in scenario.scenarios]
    p = [c.probability for c in scenario.scenarios]
    v = [values_usd[s] for s in ids]
    expected = sum(pi * vi for pi, vi in zip(p, v, strict=True))
    w = scenario.objective.cvar_weight
    if w <= 0:
        return expected
    alpha = scenario.objective.cvar_alpha
    assert alpha is not None
    return (1 - w) * expected + w * cvar(v, p, alpha)


@dataclass(frozen=True)
class _Failed:
    """A task's `NoPlanError`, as its message and details (sent back from a worker as plain data)."""

    message: str
    details: tuple[str, ...] = ()


def _value_task(scenario: Scenario, interface: Interface | None, start: MipStart | None) -> float | _Failed:
    """The optimum of `scenario` (RP, or a scenario solved alone), where the engine runs it."""
    try:
        return _solve(scenario, interface=interface, start=start)[0]
    except NoPlanError as error:
        return _Failed(error.message, tuple(error.details))


def _ws_task(
    scenario: Scenario, interface: Interface | None, start: MipStart | None, parties: bool
) -> tuple[float, dict[str, float]] | _Failed:
    """One scenario's wait-and-see optimum alone and, where `parties` (the deal has floors to
    check across the scenarios' plans), each party's value in that plan; else none (no plan is
    built for them)."""
    try:
        started = time.perf_counter()
        outcome, m = _solved(scenario, interface=interface, start=start)
        assert outcome.objective_usd is not None  # (`_solved` raises otherwise)
        if not parties:
            return outcome.objective_usd, {}
        (case,) = build_plan(scenario, m, outcome, build_s=time.perf_counter() - started).outcomes
    except NoPlanError as error:
        return _Failed(error.message, tuple(error.details))
    return outcome.objective_usd, {"cloud": case.cloud_value_usd, "guarantor": case.guarantor_value_usd}


def _floors_hold(deal: Scenario, party_values: dict[str, dict[str, float]]) -> bool:
    """Whether each party's expected value and CVaR across the scenarios' own plans
    (`party_values[scenario][party]`) meet the deal's floors, to HiGHS's gap: then those plans
    are the wait-and-see optimum with the floors too (the joined model without its floor rows
    splits into them)."""
    ids = [c.id for c in deal.scenarios]
    p = [c.probability for c in deal.scenarios]
    participation = deal.participation
    for party in PARTIES_WITH_FLOORS:
        need = getattr(participation, party)
        values = [party_values[s][party] for s in ids]
        slack = deal.solver.mip_rel_gap * max(1.0, *(abs(v) for v in values))
        expected = sum(pi * v for pi, v in zip(p, values, strict=True))
        if need.min_expected_value_usd is not None and expected < need.min_expected_value_usd - slack:
            return False
        if need.min_cvar_usd is not None:
            assert participation.cvar_alpha is not None
            if cvar(values, p, participation.cvar_alpha) < need.min_cvar_usd - slack:
                return False
    return True


def _has_floors(scenario: Scenario) -> bool:
    """Whether any party's expected value or CVaR is bounded below (the defaults are 0)."""
    return any(
        need.min_expected_value_usd is not None or need.min_cvar_usd is not None
        for need in (getattr(scenario.participation, party) for party in PARTIES_WITH_FLOORS)
    )


def _ev_task(
    scenario: Scenario,
    interface: Interface | None,
    start: MipStart | None,
    infeasible_note: str | None = None,
) -> dict[str, dict[Any, float]] | _Failed:
    """The expected-value problem's build (racks, blocks); `infeasible_note`, what to say where
    HiGHS proves it has no plan."""
    try:
        return _build(_solve(scenario, interface=interface, start=start, infeasible_note=infeasible_note)[1])
    except NoPlanError as error:
        return _Failed(error.message, tuple(error.details))


def _eev_task(
    scenario: Scenario, build: dict[str, dict[Any, float]], interface: Interface | None
) -> float | _Failed:
    """The recourse problem with the EV plan's build fixed; its quotas are chosen afresh."""
    try:
        check_fits(scenario, available_memory_bytes())
    except NoPlanError as error:
        return _Failed(error.message, tuple(error.details))
    m = build_model(scenario)
    # Bounds rather than `fix()`: fixed variables turn rows into constants that Pyomo's compiler
    # checks without HiGHS's feasibility tolerance.
    for name, values in build.items():
        var = getattr(m, name)
        for idx, value in values.items():
            if idx in var:
                var[idx].setlb(value)
                var[idx].setub(value)
    try:
        return _solve(scenario, m, interface=interface, infeasible_note=EEV_INFEASIBLE)[0]
    except NoPlanError as error:
        return _Failed(error.message, tuple(error.details))


def compute(
    scenario: Scenario,
    rp_usd: float | None = None,
    *,
    interface: Interface | None = None,
    start: MipStart | None = None,
    engine: Engine | None = None,
    walk_away: WalkAwayFloors | None = None,
) -> StochasticFigures:
    """Solve WS, EV and EEV problems (and RP unless given) for `scenario`; `start` (the RP
    plan's, see `with_value_of_information`) is offered to the WS and EV solves.

    `engine` (default: here, one solve at a time) runs the RP, the S WS and the EV solves side
    by side, then the EEV solve once the EV plan is known. Each figure stands on its own: a
    failed WS solve leaves EVPI out (`evpi_note`), a failed EV or EEV solve VSS (`vss_note`);
    `NoPlanError`, once every submitted solve is back, only where RP or both figures failed.

    With `participation.floors: walk_away` (the floors found here first, or given as `walk_away`
    where the pipeline has them) RP and EEV keep the floors, and WS is one solve keeping them
    too, on the expected values across per-scenario builds (`_foresight_model`)."""
    foresight = asks_walk_away(scenario)
    if foresight:
        # RP and EEV are plans to sign: they keep the walk-away floors.
        scenario = with_floors(scenario, walk_away or solve_no_deal(scenario, interface))
    floors = _has_floors(scenario)
    runner = engine or SerialEngine()
    if rp_usd is None:
        runner.submit("rp", _value_task, scenario, interface, None)
    if foresight:
        runner.submit(("ws", "foresight"), _foresight_task, scenario)
    else:
        # Each scenario alone first: where their plans meet the floors together, they are the
        # joined solve's optimum, found at a fraction of its cost.
        for case in scenario.scenarios:
            single = _single_scenario(scenario, case.id, {case.id: 1.0})
            runner.submit(("ws", case.id), _ws_task, single, interface, start, floors)
    ev_scenario = _single_scenario(
        scenario, EV_SCENARIO_ID, {c.id: c.probability for c in scenario.scenarios}
    )
    if floors:
        # The EV problem holds the floors as WS does (on the mean scenario's values, its expected
        # ones): dropped, its build answers another deal, and with one certain scenario EV would
        # not be RP (VSS then came out "not defined" where it is 0).
        ev_scenario = _keeping_floors(ev_scenario, scenario)
    runner.submit("ev", _ev_task, ev_scenario, interface, start, EV_INFEASIBLE if floors else None)
    values: dict[Any, Any] = {}
    failed: dict[str, _Failed] = {}  # "rp", "ws", "vss": the first failure of each figure's solves
    while runner.pending:
        key, value = runner.next_done()
        if isinstance(value, BaseException):
            value = _Failed(
                f"scenario '{scenario.name}': a stochastic figure's solve failed: {value or type(value).__name__}"
            )
        if isinstance(value, _Failed):
            figure = "rp" if key == "rp" else "ws" if isinstance(key, tuple) else "vss"
            failed.setdefault(figure, value)
            continue
        values[key] = value
        if key == "ev":
            runner.submit("eev", _eev_task, scenario, value, interface)
        alone = [("ws", c.id) for c in scenario.scenarios]
        if (
            floors
            and key in alone
            and "ws" not in failed
            and all(k in values for k in alone)
            and not _floors_hold(scenario, {s: values[("ws", s)][1] for _, s in alone})
        ):
            # The scenarios' own plans break a floor together: WS is the joined solve.
            for k in alone:
                del values[k]
            runner.submit(("ws", "foresight"), _foresight_task, scenario)
    if "rp" in failed or ("ws" in failed and "vss" in failed):
        # Nothing to report: RP is in both figures, or each figure lost a solve.
        failure = failed.get("rp") or failed["ws"]
        details = list(failure.details)
        if "rp" not in failed:
            details.append(f"VSS not computed either: {failed['vss'].message}")
        raise NoPlanError(failure.message, details=details)
    rp = rp_usd if rp_usd is not None else float(values["rp"])
    ws_by = values.get(("ws", "foresight")) or {
        c.id: float(values[("ws", c.id)][0]) for c in scenario.scenarios if ("ws", c.id) in values
    }
    ws = None if "ws" in failed else _objective_of(scenario, ws_by)
    eev = None if "vss" in failed else float(values["eev"])
    known = [abs(x) for x in (rp, ws, eev) if x is not None]
    tolerance = scenario.solver.mip_rel_gap * max(known) + 1e-6 * max(1.0, abs(rp))
    return StochasticFigures(
        rp_usd=rp,
        ws_usd=ws,
        eev_usd=eev,
        wait_and_see_by_scenario_usd=ws_by if ws is not None else {},
        tolerance_usd=tolerance,
        evpi_note=failed["ws"].message if "ws" in failed else None,
        vss_note=failed["vss"].message if "vss" in failed else None,
    )


def figures_of(
    scenario: Scenario,
    plan: Plan,
    *,
    interface: Interface | None = None,
    walk_away: WalkAwayFloors | None = None,
) -> StochasticFigures:
    """The figures for a plan solved from `scenario`: its objective is the RP value and its
    decisions the start of the WS and EV solves; `walk_away`, the floors the plan was solved with."""
    return compute(
        scenario,
        rp_usd=plan.solver.objective_usd,
        interface=interface,
        start=start_from_plan(plan),
        walk_away=walk_away,
    )


def stochastic_figures(
    scenario: Scenario, plan: Plan, *, interface: Interface | None = None
) -> tuple[float | None, float | None]:
    """(evpi_usd, vss_usd) of `figures_of`, None for a figure not computed."""
    figures = figures_of(scenario, plan, interface=interface)
    return figures.evpi_usd, figures.vss_usd


def with_value_of_information(
    scenario: Scenario,
    plan: Plan,
    *,
    interface: Interface | None = None,
    walk_away: WalkAwayFloors | None = None,
) -> Plan:
    """The plan with `risk.evpi_usd` and `risk.vss_usd` filled where each figure's solves
    succeeded (S + 2 more solves; wait-and-see is one joined solve with S times the time
    limit instead of the S single ones with walk-away floors, and after them where given floors
    bind across scenarios), `risk.value_of_information_note` saying which is missing and
    why; `NoPlanError` where neither is."""
    figures = figures_of(scenario, plan, interface=interface, walk_away=walk_away)
    risk = plan.risk.model_copy(
        update={
            "evpi_usd": figures.evpi_usd,
            "vss_usd": figures.vss_usd,
            "value_of_information_note": figures.note(),
        }
    )
    return plan.model_copy(update={"risk": risk})

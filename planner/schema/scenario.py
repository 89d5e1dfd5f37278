"""The scenario file: sites, rack types, tenants, uncertainty and deal terms, validated by pydantic.

Every field carries its unit in its name. Cross-references (rack types at a site, scenarios in a
demand table, jurisdictions) are checked here, so the model builder can trust what it is given.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from typing import Annotated, Final, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, field_validator, model_validator
from pydantic_core import PydanticCustomError

ID_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
ID_MAX_CHARS = 40
Id = Annotated[str, Field(pattern=ID_PATTERN, max_length=ID_MAX_CHARS)]
"""Identifiers become Kubernetes names downstream, so they must be DNS-1123 labels."""


BOOL_AS_NUMBER = "bool_as_number"
"""The error type of a yes/no value where a number belongs (`planner.files` gives its fix)."""


def _refuse_yes_no(value: object) -> object:
    """A number field given true or false is a mistake, not 1 or 0 as pydantic would read it: YAML
    reads unquoted yes, no, on, off, true and false as booleans, so `gpu_cap: on` meant one GPU."""
    if isinstance(value, bool):
        raise PydanticCustomError(BOOL_AS_NUMBER, "a yes/no value, not a number")
    return value


Number = Annotated[float, BeforeValidator(_refuse_yes_no)]
"""A float that refuses booleans; every number of the scenario file is one of these or `Whole`."""
Whole = Annotated[int, BeforeValidator(_refuse_yes_no)]
Fraction = Annotated[Number, Field(ge=0.0, le=1.0)]
NonNegative = Annotated[Number, Field(ge=0.0)]
Positive = Annotated[Number, Field(gt=0.0)]

QUARTER_RE = re.compile(r"^(\d{4})Q([1-4])$")
HOURS_PER_YEAR = 8760.0
PROBABILITY_TOLERANCE = 1e-6
MAX_PERIODS_FIELD = 400
"""Most quarters a term may span (100 years), as for the other `_periods` fields
(`planner.schema.input_checks.UPPER_BOUNDS`)."""
LP_ALGORITHM_AUTO = "ipm"
"""What `solver.lp_algorithm: auto` means, picked by measurement (bench/README.md, 2026-12-04):
on the (10,3,20,6,10) LP HiGHS's interior point (with crossover) took 40 s where its dual
simplex took 266 s, to the same optimum."""
MAX_MEMORY_GB = 1e6
"""Largest `solver.max_memory_gb` accepted (a petabyte): a limit, not a size; a larger one is a typo."""
MAX_THREADS = 1024
"""Most solver threads: HiGHS starts that many, and 100,000 ran past a minute on the bundled example
(1,024: 4.9 s against 3.0 s at 64, on 2 cores)."""


class _Strict(BaseModel):
    """Unknown fields are errors: a typo in a scenario file must never be silently ignored."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)  # no .inf/.nan


class Periods(_Strict):
    """The planning horizon in quarters."""

    start_quarter: str = Field(description="First quarter of the horizon, e.g. 2026Q3.")
    count_quarters: Whole = Field(ge=1, le=80, description="Number of quarters planned.")
    discount_rate_annual: Fraction = Field(description="Annual discount rate applied per quarter.")

    @field_validator("start_quarter")
    @classmethod
    def _quarter_format(cls, value: str) -> str:
        if not QUARTER_RE.match(value):
            raise ValueError("must look like 2026Q3 (a year, 'Q', a quarter 1-4)")
        return value

    @property
    def hours_per_period(self) -> float:
        return HOURS_PER_YEAR / 4.0

    def labels(self) -> list[str]:
        """Quarter labels of the horizon, e.g. ['2026Q3', '2026Q4', '2027Q1', ...]."""
        match = QUARTER_RE.match(self.start_quarter)
        assert match is not None
        year, quarter = int(match.group(1)), int(match.group(2)) - 1
        out = []
        for offset in range(self.count_quarters):
            q = quarter + offset
            out.append(f"{year + q // 4}Q{q % 4 + 1}")
        return out

    def discount_factors(self) -> list[float]:
        """Discount factor of each quarter (first quarter undiscounted)."""
        per_quarter = (1.0 + self.discount_rate_annual) ** 0.25
        return [per_quarter ** (-t) for t in range(self.count_quarters)]


class Site(_Strict):
    """A DSX campus: its power envelope, how fast it can grow, and where it is (sovereignty)."""

    id: Id
    name: str = ""
    jurisdiction: str = Field(min_length=2, max_length=8, description="Country/region code, e.g. ID, AU.")
    power_cap_mw: Positive = Field(description="Most facility power the site can ever hold.")
    existing_mw: NonNegative = Field(0.0, description="Facility power already energised at the start.")
    power_block_mw: Positive = Field(description="Size of one procurable power (and cooling) block.")
    power_lead_time_periods: Whole = Field(ge=0, description="Quarters from ordering a block to using it.")
    power_price_usd_per_mwh: NonNegative
    pue: Number = Field(ge=1.0, le=3.0, description="Power usage effectiveness (facility / IT power).")
    gpu_cap: Whole = Field(ge=0, description="Most GPUs the site may hold (floor space, contracts).")
    max_racks_built_per_period: Whole = Field(ge=0, description="Build-rate limit, racks per quarter.")
    max_power_blocks_per_period: Whole = Field(ge=0, description="Blocks that can be ordered per quarter.")
    power_capex_usd_per_mw: NonNegative = Field(description="Power and cooling capex per MW of blocks.")
    power_asset_lifetime_periods: Whole = Field(
        60, ge=1, description="Quarters over which power capex is amortised."
    )
    existing_racks: dict[Id, Whole] = Field(
        default_factory=dict, description="Racks installed at the start, by type."
    )
    rack_types: list[Id] | None = Field(None, description="Rack types allowed here (default: all).")


class RackType(_Strict):
    """A GPU rack (e.g. a GB300 NVL72): what it holds, draws and costs."""

    id: Id
    gpu_product: str = Field(description="Value of the nvidia.com/gpu.product node label, e.g. NVIDIA-GB300.")
    gpus_per_rack: Whole = Field(ge=1)
    nodes_per_rack: Whole = Field(ge=1)
    kw_per_rack: Positive = Field(description="IT power per rack at full load, kW.")
    capex_usd: NonNegative = Field(description="Purchase price of one rack, installed.")
    lifetime_periods: Whole = Field(ge=1, description="Quarters over which the rack is amortised and used.")
    opex_usd_per_rack_period: NonNegative = Field(
        0.0, description="Fixed operations cost per installed rack per quarter."
    )

    @model_validator(mode="after")
    def _gpus_fill_nodes(self) -> RackType:
        if self.gpus_per_rack % self.nodes_per_rack:
            raise ValueError(
                f"gpus_per_rack ({self.gpus_per_rack}) must be a multiple of nodes_per_rack "
                f"({self.nodes_per_rack}) so every node holds the same number of GPUs"
            )
        return self

    @property
    def gpus_per_node(self) -> int:
        return self.gpus_per_rack // self.nodes_per_rack


class Tenant(_Strict):
    """A tenant or demand class: what it would rent in each scenario and what it pays."""

    id: Id
    display_name: str = ""
    price_usd_per_gpu_hour: Positive
    allowed_jurisdictions: list[str] | None = Field(
        None, description="Where it may be served (default: anywhere)."
    )
    demand_gpus: dict[Id, list[NonNegative]] = Field(
        description="Average GPUs rented per quarter, per scenario id (one value per quarter)."
    )
    token_credit_share: Fraction = Field(
        0.0, description="Share of its bill paid with guarantor-advanced token credits."
    )
    credit_repayment_share: Fraction = Field(1.0, description="Expected share of advanced credits repaid.")
    credit_repayment_share_by_scenario: dict[Id, Fraction] = Field(
        default_factory=dict, description="Scenario-specific repayment share (overrides the default)."
    )
    owners: list[str] = Field(default_factory=list, description="Users/groups who administer its namespaces.")

    def repayment_share(self, scenario_id: str) -> float:
        return self.credit_repayment_share_by_scenario.get(scenario_id, self.credit_repayment_share)


class ScenarioCase(_Strict):
    """One outcome of the uncertain future, with its probability."""

    id: Id
    probability: Fraction
    description: str = ""


class Terms(_Strict):
    """The guarantor's deal terms; all undisclosed in public, hence all inputs."""

    buyback_price_usd_per_gpu_hour: NonNegative = Field(
        description="Price the guarantor pays for unsold capacity."
    )
    buyback_share: Fraction = Field(
        description="Covered share of capacity: the guarantor buys back this share of unsold GPU-hours."
    )
    revenue_share: Fraction = Field(description="Share of the cloud's rental revenue paid to the guarantor.")
    guarantor_hardware_margin: Fraction = Field(
        description="Guarantor's margin as a share of rack capex, spread like that capex over each new "
        "rack's installed quarters inside the horizon (docs/model.md, Conventions)."
    )


class Objective(_Strict):
    """Whose value is maximised, and how much weight tail risk gets."""

    perspective: Literal["cloud", "guarantor", "syndicate"] = "cloud"
    cvar_alpha: Fraction | None = Field(None, description="CVaR level, e.g. 0.9 = worst 10% of scenarios.")
    cvar_weight: Fraction = Field(
        0.0, description="Weight of CVaR against expected value (0 = risk neutral)."
    )

    @model_validator(mode="after")
    def _cvar_pair(self) -> Objective:
        if self.cvar_weight > 0 and self.cvar_alpha is None:
            raise ValueError("cvar_weight > 0 needs cvar_alpha (e.g. cvar_alpha: 0.9)")
        if self.cvar_alpha is not None and self.cvar_alpha >= 1.0:
            raise ValueError("cvar_alpha must be below 1 (e.g. 0.9)")
        return self


DEFAULT_PARTY_CVAR_ALPHA = 0.9
"""CVaR level of the parties' reported figures and requirements when the scenario names none."""


class PartyRequirement(_Strict):
    """What one party needs from a plan before it signs (null: no requirement).

    By default not signing is taken to be worth zero, so each needs a plan whose expected value is
    at least zero: with no demand, no perspective can then build anything. `participation.floors:
    walk_away` raises each floor to what the party makes with no deal (docs/model.md, Conventions)."""

    min_expected_value_usd: Number | None = Field(
        0.0,
        description="Least expected (discounted) value the party accepts, US$ (null: none; with "
        "participation.floors: walk_away, null means the party's walk-away value, and a number only "
        "raises the floor above it).",
    )
    min_cvar_usd: Number | None = Field(
        None, description="Least CVaR of its value at participation.cvar_alpha, US$ (null: none)."
    )


class GuarantorRequirement(PartyRequirement):
    """The guarantor's requirements: its value, and a cap on what the buyback can cost it."""

    max_buyback_exposure_usd_per_period: NonNegative | None = Field(
        None,
        description="Most buyback the guarantor could owe in any one quarter if no covered GPU-hour "
        "sold (buyback_share x price x hours x installed GPUs), US$ (null: no cap).",
    )
    max_buyback_exposure_usd_total: NonNegative | None = Field(
        None, description="The same exposure summed over the horizon, undiscounted, US$ (null: no cap)."
    )


FLOORS_GIVEN: Final = "given"
FLOORS_WALK_AWAY: Final = "walk_away"


class Participation(_Strict):
    """Each party's requirements; a plan meets all of them or the planner says which it cannot."""

    cvar_alpha: Fraction = Field(
        DEFAULT_PARTY_CVAR_ALPHA, description="CVaR level of the parties' figures, e.g. 0.9 = worst 10%."
    )
    floors: Literal["given", "walk_away"] = Field(
        FLOORS_GIVEN,
        description="Each party's expected-value floor: given = min_expected_value_usd as written; "
        "walk_away = the larger of that and the party's walk-away value, its expected value in the "
        "plan the cloud would make with no deal (solved first, at the cost of a second solve; "
        "docs/model.md, Conventions).",
    )
    cloud: PartyRequirement = PartyRequirement()
    guarantor: GuarantorRequirement = GuarantorRequirement()

    @field_validator("cvar_alpha")
    @classmethod
    def _alpha_below_one(cls, value: float) -> float:
        if value >= 1.0:
            raise ValueError("must be below 1 (e.g. 0.9)")
        return value


class Contracts(_Strict):
    """How quotas are contracted: commitments per term that never shrink within the term."""

    quota_term_periods: Whole = Field(
        4,
        ge=1,
        le=MAX_PERIODS_FIELD,
        description="Quarters per quota contract term, counted from the horizon start; within a term "
        "a tenant's quota on a pool never shrinks (a new term may lower it).",
    )


AUTO_MIN_SCENARIOS = 20
"""`solver.method: auto` (the default) decomposes from this many scenarios on (below, the
extensive form is fast). Cloud's view, MILP, 120 s, 2 cores (bench, session 28): at
(10,3,20,6,20) the extensive form ended at its limit 0.99% from its bound (in a second run, with
another job beside it, with no plan), the decomposition at 0.69% in 28.3 s; at (10,3,20,6,50) the
extensive form had no plan (its rounded start's LP alone did not finish in 300 s), the
decomposition 0.81% in 19.1 s."""


class SolverOptions(_Strict):
    """HiGHS options a planner may set; others stay at HiGHS defaults."""

    time_limit_s: Positive = 60.0
    mip_rel_gap: Fraction = 0.01
    threads: Whole | None = Field(
        None,
        ge=1,
        le=MAX_THREADS,
        description="HiGHS's threads (default: HiGHS's choice). With method decomposition also how many "
        "worker threads its recourse LPs and block MIPs are shared out to (if unset: OMP_NUM_THREADS, "
        "else one per CPU).",
    )
    interface: Literal["direct", "appsi", "legacy"] = Field(
        "direct", description="How the Pyomo model reaches HiGHS: direct = standard form arrays (fast)."
    )
    relax_integrality: bool = Field(
        False,
        description="Solve the LP relaxation (racks and blocks fractional): for the benchmark "
        "and library callers of solve_model; `dsx plan solve`, `sweep`, `batch` and "
        "`value-of-information` refuse it, since a plan holds whole racks.",
    )
    lp_algorithm: Literal["auto", "simplex", "ipm", "pdlp"] = Field(
        "auto",
        description="HiGHS's algorithm for an LP (relax_integrality) and for a MIP's rounded-start "
        "relaxation (its re-solves stay dual simplex, warm): auto = ipm, interior point with "
        "crossover, measured fastest (bench/README.md); simplex = dual simplex; pdlp = first order, low "
        "accuracy: on the bundled example its rounded start ran out the limit (30 s or 5 s), leaving no "
        "plan or the all-zero plan.",
    )
    rounded_start: bool = Field(
        True,
        description="MIP, direct interface: start HiGHS from the LP relaxation rounded into a "
        "feasible plan (planner.solve.rounding); the relaxation's value also bounds the gap.",
    )
    method: Literal["extensive", "decomposition", "auto"] = Field(
        "auto",
        description="extensive = one HiGHS model of every scenario; decomposition = Benders by scenario "
        "(planner.solve.decomposition; falls back to extensive where not exact); auto (the default) = "
        "decomposition from 20 scenarios on, extensive below.",
    )
    max_memory_gb: Number | None = Field(
        None,
        gt=0.0,
        le=MAX_MEMORY_GB,
        description="Refuse, before building it, a model needing more memory than this, GB (default: what "
        "the machine has available when the solve starts; planner.model.size says how the need is counted).",
    )
    extra: dict[str, float | int | str | bool] = Field(default_factory=dict, description="Raw HiGHS options.")

    def lp_solver(self) -> str:
        """HiGHS's `solver` value for an LP: `lp_algorithm`, auto resolved (`LP_ALGORITHM_AUTO`)."""
        return LP_ALGORITHM_AUTO if self.lp_algorithm == "auto" else self.lp_algorithm

    def method_for(
        self, n_scenarios: int, interface: str | None = None
    ) -> Literal["extensive", "decomposition"]:
        """The method a solve of `n_scenarios` scenarios runs on `interface` (default: this
        one's): the decomposition only on the direct interface, where asked or, for `auto`, from
        `AUTO_MIN_SCENARIOS` scenarios on (`planner.solve.interfaces` also keeps the extensive
        form for the elastic model, and says why where a decomposition was asked for)."""
        if self.method == "extensive" or (interface or self.interface) != "direct":
            return "extensive"
        if self.method == "decomposition" or n_scenarios >= AUTO_MIN_SCENARIOS:
            return "decomposition"
        return "extensive"

    def first_lp_solver(self) -> str:
        """HiGHS's `solver` for the first LP a solve runs (an LP's, a MILP's rounded start's): a
        raw `extra.solver` wins over `lp_algorithm`."""
        return str(self.extra.get("solver", self.lp_solver()))


class Scenario(_Strict):
    """A complete planning case as read from one YAML file."""

    version: Annotated[Literal[1], BeforeValidator(_refuse_yes_no)] = 1
    name: Id
    description: str = ""
    periods: Periods
    sites: list[Site] = Field(min_length=1)
    rack_types: list[RackType] = Field(min_length=1)
    tenants: list[Tenant] = Field(min_length=1)
    scenarios: list[ScenarioCase] = Field(min_length=1)
    terms: Terms
    objective: Objective = Objective()
    participation: Participation = Participation()
    contracts: Contracts = Contracts()
    solver: SolverOptions = SolverOptions()

    def site(self, site_id: str) -> Site:
        return next(s for s in self.sites if s.id == site_id)

    def rack_type(self, rack_id: str) -> RackType:
        return next(r for r in self.rack_types if r.id == rack_id)

    def tenant(self, tenant_id: str) -> Tenant:
        return next(t for t in self.tenants if t.id == tenant_id)

    def site_rack_types(self, site: Site) -> list[RackType]:
        allowed = site.rack_types
        return [r for r in self.rack_types if allowed is None or r.id in allowed]

    def tenant_may_use(self, tenant: Tenant, site: Site) -> bool:
        return tenant.allowed_jurisdictions is None or site.jurisdiction in tenant.allowed_jurisdictions

    def content_hash(self) -> str:
        """Stable hash of the planning case: plans record it to prove what they were solved from."""
        # Solver options change how hard HiGHS tries, not what is planned: left out of the hash.
        exclude: dict[str, bool | set[str]] = {"solver": True}
        if self.participation.floors == FLOORS_GIVEN:
            # The field came after plans were written: left out at its default, so a scenario that
            # does not set it keeps the hash its plans record.
            exclude["participation"] = {"floors"}
        canonical = json.dumps(
            self.model_dump(mode="json", exclude=exclude), sort_keys=True, separators=(",", ":")
        )
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()


def probabilities_sum_to_one(probabilities: list[float]) -> bool:
    return math.isclose(sum(probabilities), 1.0, abs_tol=PROBABILITY_TOLERANCE)

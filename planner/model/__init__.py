"""The capacity model in Pyomo (docs/model.md): sparse sets, variables, constraints, objective.

`build_model(scenario)` assembles it from small `define_<thing>` functions in one readable order.
"""

from planner.model.build import MONEY_SCALE_USD, build_model

__all__ = ["MONEY_SCALE_USD", "build_model"]

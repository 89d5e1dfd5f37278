"""The capacity model in Pyomo (docs/model.md): sparse sets, variables, constraints, objective.

`planner.model.build.build_model(scenario)` assembles it from small `define_<thing>` functions in
one readable order. Import from the modules themselves; this package re-exports nothing.
"""

"""Capacity planning for DSX AI factories: scenario → Pyomo model → HiGHS → verified plan.

This layer knows nothing of Pulumi or Kubernetes; it owns the scenario and plan schemas.
"""

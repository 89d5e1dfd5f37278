"""Planner benchmark (issue 6): `python -m bench.run`. Not part of the test suite."""

"""planner/insight."""

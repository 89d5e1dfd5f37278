"""planner/solve."""

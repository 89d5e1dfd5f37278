"""planner/schema."""

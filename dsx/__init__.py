"""The `dsx` command line: a thin edge over planner/, infra/ and operators/."""

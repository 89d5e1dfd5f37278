"""The Pulumi program that provisions one DSX site from a plan (see docs/provisioning.md).

`desired_state` is the pure core (plan → manifests); `program` is the thin Pulumi edge.
"""

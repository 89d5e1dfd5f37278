"""The dsx Kubernetes operator: GpuNodePools and Tenants reconciled into the cluster.

It runs inside the cluster and imports neither `planner` nor `infra`; what it needs from a plan
arrives as custom resources (`docs/crd-contract.md`).
"""

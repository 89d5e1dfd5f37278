"""The CRD contract's keys, each defined once: group, kinds, labels, annotations, finalizer,
conditions and defaults. Who sets each key and why is said where it is defined.

Everything else in `operators/` imports these names; no other module spells these strings.
"""

from __future__ import annotations

# -- API group and kinds ---------------------------------------------------------------------
GROUP = "dsx.ai"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
TENANT_KIND = "Tenant"
POOL_KIND = "GpuNodePool"
TENANT_PLURAL = "tenants"
POOL_PLURAL = "gpunodepools"

# -- Field manager ---------------------------------------------------------------------------
FIELD_MANAGER = "dsx-operator"
"""Name under which the operator's writes appear in `metadata.managedFields` (server-side apply)."""

# -- Labels (set by the operator on what it creates; read to find it again) -------------------
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
MANAGED_BY_VALUE = "dsx-operator"
TENANT_LABEL = f"{GROUP}/tenant"
"""On a tenant's namespaces: the tenant's name. NetworkPolicies and ClusterQueues select on it.
Not proof of ownership (anyone allowed to label namespaces can set it): see OWNER_UID_ANNOTATION."""
SITE_LABEL = f"{GROUP}/site"
POOL_LABEL = f"{GROUP}/pool"
OWNER_LABEL_PREFIX = f"{GROUP}/owner-"
"""`dsx.ai/owner-tenant` / `dsx.ai/owner-gpunodepool` = owner's name, on every child the operator
writes; the child watchers map an event back to the object to reconcile by it."""
RELEASED_LABEL = f"{GROUP}/released-by-policy"
"""On a namespace kept when its tenant let it go (deletion or removal from spec.namespaces)."""
GPU_RESOURCE = "nvidia.com/gpu"
GPU_PRODUCT_LABEL = "nvidia.com/gpu.product"

# -- Annotations ------------------------------------------------------------------------------
OWNER_UID_ANNOTATION = f"{GROUP}/tenant-uid"
"""On a namespace: the uid of the Tenant that created it (written only at creation, by the
operator) or that an administrator handed it to. It is the ownership proof: the operator writes
into, and deletes, only namespaces whose annotation equals the Tenant's uid."""

# -- Finalizer and Kopf's own storage ----------------------------------------------------------
FINALIZER = f"{GROUP}/finalizer"
"""On Tenants only: held until the deletion policy has been applied and the GPUs returned."""

# -- Conditions (type → reasons) ---------------------------------------------------------------
READY = "Ready"
OVERCOMMITTED = "Overcommitted"
NAMESPACES_REFUSED = "NamespacesRefused"
DELETION_BLOCKED = "DeletionBlocked"
ADDONS_MISSING = "AddonsMissing"
OVERGRANTED = "Overgranted"
"""On a GpuNodePool whose grants exceed its GPUs after a shrink, until tenants have given back."""
RECONCILED = "Reconciled"
REASON_INVALID_SPEC = "InvalidSpec"

# -- Defaults ---------------------------------------------------------------------------------
DEFAULT_DELETION_POLICY = "Retain"
DEFAULT_CAPI_NAMESPACE = "dsx-system"
NAMESPACE_ADMIN_ROLE = "dsx-namespace-admin"
OPERATOR_IN_NAMESPACE_ROLE = "dsx-operator-in-tenant-namespace"
"""ClusterRole the operator binds itself to inside each namespace it owns (RoleBinding
`dsx-operator`), so it may delete and re-create children whose immutable fields were changed
there, and nowhere else."""
OPERATOR_SERVICE_ACCOUNT = "dsx-operator"
PROTECTED_NAMESPACES = frozenset(
    {"default", "kube-system", "kube-public", "kube-node-lease", DEFAULT_CAPI_NAMESPACE}
)
"""Never given to a tenant, whatever their labels or annotations say (the operator's own
namespace is added at run time; more can be configured: `operators/config.py`)."""

# -- Bounds (also in the CRD schemas; checked again by the operator, whose checks v1.20's
#    schema cannot express, e.g. a product) ---------------------------------------------------
MAX_NAME_LENGTH = 63
"""Tenant and pool names become label values and child names: a DNS-1123 label."""
INT32_MAX = 2**31 - 1
MAX_NODE_LABELS = 32
MAX_TENANT_NAMESPACES = 64
MAX_OWNER_SUBJECTS = 64
MAX_SUBJECT_LENGTH = 256

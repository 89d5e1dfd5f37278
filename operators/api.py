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
"""On a tenant's namespaces: the tenant's name, by which the operator finds namespaces a Tenant
dropped. Proves nothing and admits nothing (anyone allowed to create or label namespaces can set
it): ownership is OWNER_UID_ANNOTATION, and NetworkPolicies and ClusterQueues select by
NAMESPACE_NAME_LABEL."""
SITE_LABEL = f"{GROUP}/site"
NAMESPACE_NAME_LABEL = "kubernetes.io/metadata.name"
"""On every namespace: its name, set and kept by the API server itself since Kubernetes v1.21
(NamespaceDefaultLabelName), so no one can give it to another namespace. Isolation policies and
ClusterQueues select a tenant's namespaces by it, never by a label a tenant or a namespace creator
could set. The operator writes it on its own namespaces too (a no-op from v1.21; on older servers,
such as the test suite's v1.20, it is an ordinary label and the selection is only as strong as
the right to label namespaces)."""
POOL_LABEL = f"{GROUP}/pool"
OWNER_LABEL_PREFIX = f"{GROUP}/owner-"
"""`dsx.ai/owner-tenant` / `dsx.ai/owner-gpunodepool` = owner's name, on every child the operator
writes; the child watchers map an event back to the object to reconcile by it."""
RELEASED_LABEL = f"{GROUP}/released-by-policy"
"""On a namespace kept when its tenant let it go (deletion or removal from spec.namespaces)."""
POD_SECURITY_ENFORCE_LABEL = "pod-security.kubernetes.io/enforce"
POD_SECURITY_LEVELS = ("baseline", "restricted")
"""What a tenant namespace's Pod Security Admission level may be (`DSX_POD_SECURITY`, default
baseline). Without the label a namespace runs pods at the cluster's default, which upstream is
privileged: a tenant owner could start a privileged, host-network pod with the node's root
filesystem mounted and step outside every quota and network policy. Baseline forbids those and
still runs the root containers most GPU images are; restricted forbids root as well."""
POD_SECURITY_WARN_LABEL = "pod-security.kubernetes.io/warn"
POD_SECURITY_VERSION = "latest"
"""The policy version both levels follow (`...-version` labels): the cluster's own."""
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
TOPOLOGY_INCOMPLETE = "TopologyIncomplete"
"""On a GpuNodePool whose ready Nodes lack a Topology level's label: Kueue's topology-aware
scheduling ignores those Nodes, so their GPUs admit nothing."""
CAPI_REFERENCES_MISSING = "ClusterApiReferencesMissing"
"""On a cluster-api GpuNodePool whose MachineDeployment names a Cluster, machine template or
bootstrap template the site has not made (or whose kind is not served, carries no contract label,
or the operator may not read): Cluster API makes no Machine until it exists, and says so nowhere
the pool's owner looks."""
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
    # The add-ons a GPU site runs, whose namespaces a Tenant could otherwise claim before they are
    # installed, then hold admin rights over their privileged workloads (or delete them with it).
    | {"kueue-system", "gpu-operator", "nvidia-gpu-operator", "network-operator", "cert-manager"}
    | {"capi-system", "capi-kubeadm-bootstrap-system", "capi-kubeadm-control-plane-system", "karpenter"}
    | {"kube-flannel", "calico-system", "tigera-operator", "cilium", "ingress-nginx", "monitoring"}
)
"""Never given to a tenant, whatever their labels or annotations say, nor any name starting with
`PROTECTED_PREFIX` (the operator's own and the ingress namespaces are added at run time; more can
be configured: `operators/config.py`)."""
PROTECTED_PREFIX = "kube-"
"""Kubernetes keeps names starting so for itself and its add-ons."""

# -- Bounds (also in the CRD schemas; checked again by the operator, whose checks v1.20's
#    schema cannot express, e.g. a product) ---------------------------------------------------
MAX_NAME_LENGTH = 63
"""Tenant and pool names become label values and child names: a DNS-1123 label."""
INT32_MAX = 2**31 - 1
MAX_NODE_LABELS = 32
MAX_TENANT_NAMESPACES = 64
MAX_OWNER_SUBJECTS = 64
MAX_SUBJECT_LENGTH = 256

# -- The add-on APIs the operator writes (one place: paths in `kube.py`, watches in `main.py`,
#    the test suite's CRD choice and `upstream_rules` all derive from these) ----------------------
KUEUE_GROUP = "kueue.x-k8s.io"
KUEUE_VERSION = "v1beta2"
"""Kueue's storage version since v0.16 (v1beta1 deprecated); dsx supports Kueue v0.19."""
CAPI_GROUP = "cluster.x-k8s.io"
CAPI_VERSION = "v1beta2"
"""Cluster API's storage version since v1.11; dsx supports Cluster API v1.14."""
CAPI_BOOTSTRAP_GROUP = "bootstrap.cluster.x-k8s.io"
CAPI_INFRASTRUCTURE_GROUP = "infrastructure.cluster.x-k8s.io"
CAPI_CONTRACT_LABELS = (f"{CAPI_GROUP}/v1beta2", f"{CAPI_GROUP}/v1beta1")
"""Labels on a provider's CRD mapping a Cluster API contract to the CRD's versions
(`v1beta1_v1beta2`, the latest wins), in the order Cluster API v1.14 tries them: its v1beta2
contract, then v1beta1, still compatible (internal/contract/version.go GetCompatibleVersions,
GetLatestContractAndAPIVersionFromContract). A v1beta2 reference names only `apiGroup` and `kind`;
the version comes from this label, so a CRD without it cannot be referenced at all."""
CRD_API_VERSION = "apiextensions.k8s.io/v1"
KARPENTER_GROUP = "karpenter.sh"
KARPENTER_VERSION = "v1"
"""Karpenter's v1 API; dsx supports Karpenter v1.14."""

ADDON_KINDS: dict[str, tuple[str, str, str, bool]] = {
    "ClusterQueue": (KUEUE_GROUP, KUEUE_VERSION, "clusterqueues", False),
    "LocalQueue": (KUEUE_GROUP, KUEUE_VERSION, "localqueues", True),
    "ResourceFlavor": (KUEUE_GROUP, KUEUE_VERSION, "resourceflavors", False),
    "Topology": (KUEUE_GROUP, KUEUE_VERSION, "topologies", False),
    "MachineDeployment": (CAPI_GROUP, CAPI_VERSION, "machinedeployments", True),
    "NodePool": (KARPENTER_GROUP, KARPENTER_VERSION, "nodepools", False),
}
"""kind → (group, version, plural, namespaced) of every add-on object the operator writes."""


def addon_api_version(kind: str) -> str:
    group, version, _, _ = ADDON_KINDS[kind]
    return f"{group}/{version}"


# -- Node labels and taints the pools put on their Nodes ---------------------------------------
RACK_TYPE_LABEL = f"{GROUP}/rack-type"
NVLINK_DOMAIN_LABEL = "nvidia.com/gpu.clique"
"""Set on each Node by NVIDIA GPU feature discovery: the NVLink domain (for NVL72, the rack) the
node's GPUs belong to. The Kueue Topology's rack level."""
HOSTNAME_LABEL = "kubernetes.io/hostname"
RACK_TOPOLOGY_LEVELS = (NVLINK_DOMAIN_LABEL, HOSTNAME_LABEL)
"""The Kueue Topology levels every pool has: rack (NVLink domain) → node. A block level above
them comes only from the pool's spec.topology.blockLabel, naming a label the site's fabric
tooling really sets (e.g. Topograph's network.topology.nvidia.com/spine): Kueue's topology-aware
scheduling considers only Nodes carrying every level's label (kueue v0.19 pkg/util/tas
NodeMatchesFlavor), so a level nobody sets would hide every node of the pool."""
NVLINK_DOMAINS = ("rack", "node")
"""What one NVLink domain spans (GpuNodePool spec.topology.nvlinkDomain, default rack): a rack of
multi-node NVLink (GB300 NVL72), whose Nodes GPU feature discovery labels NVLINK_DOMAIN_LABEL, or
one node (HGX B300: NVSwitch inside the node). GFD sets that label only on fabric-attached GPUs
(k8s-device-plugin internal/lm imex labeler), so a node-domain pool's Topology has no rack level:
one would hide every node of the pool from Kueue."""
KUEUE_MAX_LEVEL_LABEL_LENGTH = 316
"""kueue v0.19 apis/kueue/v1beta2/topology_types.go: TopologyLevel.nodeLabel MaxLength=316."""
CAPI_SYNCED_LABEL_DOMAINS = (
    "node-role.kubernetes.io",
    "node-restriction.kubernetes.io",
    "node.cluster.x-k8s.io",
)
"""Machine label domains (and their subdomains) Cluster API always copies to the Node
(cluster-api v1.14, internal/controllers/machine/machine_controller_noderef.go, getManagedLabels)."""
CAPI_DEFAULT_ADDITIONAL_SYNC_LABELS = (r"^dsx\.ai/.*$", r"^nvidia\.com/gpu\.product$")
"""The regexes dsx expects the site's Cluster API controller to run with
(`--additional-sync-machine-labels`), so the pool's own labels reach its Nodes. A site whose
controller runs with others says so in the GpuNodePool (spec.clusterApi.additionalSyncMachineLabels)
and the operator refuses labels that would not arrive."""
KARPENTER_INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"

# -- Kueue defaults ----------------------------------------------------------------------------
LOCAL_QUEUE_NAME = "default"
"""Each tenant namespace's LocalQueue. Jobs name it with the label kueue.x-k8s.io/queue-name; the
site's Kueue runs with `manageJobsWithoutQueueName: true` (docs/provisioning.md), so jobs without
the label are held by Kueue too, not run around it."""
QUEUE_NAME_LABEL = f"{KUEUE_GROUP}/queue-name"
KUEUE_COVERED_RESOURCES = ("cpu", "memory", GPU_RESOURCE, "pods")
"""Every resource a tenant's pods request and Kueue counts: the LimitRange gives each container
cpu and memory requests, and the quota caps pods; a resource a ClusterQueue does not cover fails
admission (kueue pkg/scheduler/flavorassigner)."""

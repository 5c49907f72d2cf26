"""An in-memory Kubernetes API server for tests and the demo, spoken to over real HTTP.

Emulated (JSON wire format, as kubernetes-asyncio and kubectl expect):

- core/v1 namespaces, nodes (+status), pods (+status, binding, eviction), events, configmaps,
  secrets, serviceaccounts, services, bindings; apps/v1 deployments and replicasets (+status,
  scale), daemonsets (stored only); policy/v1 poddisruptionbudgets (+status);
  coordination.k8s.io/v1 leases; events.k8s.io/v1 events (stored apart from core events);
  apiextensions.k8s.io/v1 CRDs, whose resources are then served (+status when declared,
  ``default`` values from the schema applied, Established/NamesAccepted conditions).
- Discovery (legacy, unaggregated), ``/version`` (the oldest supported minor, ``shared.compat``);
  ``/openapi/v2`` (JSON only) and ``/openapi/v3`` (root with hashes, per group-version documents)
  from kubernetes-validate's built-in definitions plus each CRD's schema.
- ``fieldValidation`` Strict/Warn/Ignore: unknown fields dropped (custom resources pruned),
  refused or sent back as ``Warning`` headers; duplicates when the client asks explicitly.
- A cluster-wide integer resourceVersion, uid, creationTimestamp, generation (bumped on spec
  change), generateName; 201/404/409/422/400 with ``Status`` bodies; optimistic concurrency.
- List with label/field selectors and limit/continue; watch from a resourceVersion with bounded
  history (410 Gone when compacted or when a watcher falls behind), timeoutSeconds, bookmarks,
  selector transitions (objects leaving a selector arrive as DELETED).
- PATCH: JSON merge, strategic merge (by field-name merge keys; built-ins only, 415 for custom
  resources) and JSON patch; server-side apply with managedFields (Apply and Update entries,
  conflicts, force, removal of fields no longer applied, create on apply).
- Finalizers and deletionTimestamp, background garbage collection by ownerReferences, Orphan
  propagation, namespace termination, deletion of pods bound to a deleted node, ``dryRun=All``.
- Controllers: Deployment -> ReplicaSet (``pod-template-hash``) -> Pods with statuses that
  ``kubectl rollout status`` reads; PDB status; eviction refused with 429 past the budget.

- Table output for custom resources (``kubectl get`` columns from ``additionalPrinterColumns``,
  ``table.py``).
- Protobuf request bodies of the built-ins kubectl's ``create`` generators send (namespaces,
  configmaps, secrets, serviceaccounts, services, deployments, PDBs, RBAC; ``protobuf.py``),
  decoded to the same dicts as JSON; other kinds and custom resources get the real 415.
- Faults a test switches on at run time (``APIServer.faults``, ``faults.py``): a restart that
  resets every connection, watches ended and refused with 410 Expired, slow writes, writes
  refused with 500/503/504/429, and guarded updates that lose a race (409).

Not emulated: authentication/authorization (any token or none), admission webhooks, Table
output for built-ins (kubectl falls back to plain lists), protobuf responses (and OpenAPI v2),
rolling updates (a template change scales the old ReplicaSet to zero at once), Foreground
deletion (treated as Background), graceful pod termination (pods without finalizers vanish on
delete), multiple stored versions of a custom resource, pod spec immutability checks.
"""

from localcluster.apiserver.app import APIServer

__all__ = ["APIServer"]

"""The API semantics behind every verb: create, update, patch, delete and the subresources.

Independent of HTTP so that the handlers stay thin and the in-process controllers write
through exactly the same rules (generation, finalizers, status split, resourceVersion checks)
as remote clients.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
import yaml

from localcluster.apiserver import apply as ssa
from localcluster.apiserver import crd as crds
from localcluster.apiserver import crdvalidation, disruption, errors
from localcluster.apiserver.errors import APIError
from localcluster.apiserver.fieldvalidation import FieldValidation, strict_message
from localcluster.apiserver.fieldvalidation import check as check_fields
from localcluster.apiserver.objects import (
    controller_of,
    default_pod,
    default_workload,
    generated_name,
    name_problems,
    new_uid,
    now_rfc3339,
    spec_of,
    workload_problems,
)
from localcluster.apiserver.patch import PatchError, json_patch, merge_patch, strategic_merge_patch
from localcluster.apiserver.registry import Registry, ResourceType
from localcluster.apiserver.schemas import Resolver, Schemas
from localcluster.apiserver.selectors import (
    SelectorError,
    from_label_selector,
    labels_match,
    selector_to_string,
)
from localcluster.apiserver.store import Obj, Store, deep_copy

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_PATCH = "application/strategic-merge-patch+json"
APPLY_PATCH = "application/apply-patch+yaml"

CRD_KEY = ("apiextensions.k8s.io", "customresourcedefinitions")
POD_KEY = ("", "pods")
NS_KEY = ("", "namespaces")
PDB_KEY = ("policy", "poddisruptionbudgets")
RS_KEY = ("apps", "replicasets")
DEPLOY_KEY = ("apps", "deployments")


# Status fields the real types serialize even when zero (clients require them).
INITIAL_STATUS: dict[tuple[str, str], Obj] = {
    RS_KEY: {"replicas": 0},
    PDB_KEY: {"disruptionsAllowed": 0, "currentHealthy": 0, "desiredHealthy": 0, "expectedPods": 0},
    ("apps", "daemonsets"): {
        "currentNumberScheduled": 0,
        "desiredNumberScheduled": 0,
        "numberMisscheduled": 0,
        "numberReady": 0,
    },
}


def _meta(obj: Obj) -> dict[str, Any]:
    m = obj.get("metadata")
    if not isinstance(m, dict):
        m = {}
        obj["metadata"] = m
    return m


@dataclass
class WriteContext:
    """What a remote write says about itself: its field manager, validation mode and ``force``.

    In-process controllers write without one: no validation, no managedFields bookkeeping.
    """

    manager: str = ""
    validation: FieldValidation | None = None
    force: bool = False
    manager_given: bool = False  # from ``fieldManager`` rather than the user agent (apply needs it)


FREE_FORM = Resolver("object", {"object": {}}, structural=False)


def success(code: int = 200, details: dict[str, Any] | None = None) -> Obj:
    body: Obj = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": code}
    if details is not None:
        body["details"] = details
    return body


class API:
    """Resource verbs over one :class:`Store` and :class:`Registry`."""

    def __init__(self, store: Store, registry: Registry) -> None:
        self.store = store
        self.registry = registry
        self.schemas = Schemas(registry, lambda name: store.get(CRD_KEY, "", name))

    # ---------------------------------------------------------------- reads
    def get(self, rt: ResourceType, namespace: str, name: str) -> Obj:
        obj = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        if obj is None:
            raise errors.not_found(rt.plural, rt.group, name)
        return obj

    def list_objects(
        self, rt: ResourceType, namespace: str | None, accept: Callable[[Obj], bool]
    ) -> list[Obj]:
        ns = namespace if rt.namespaced else None
        return [obj for obj in self.store.iter(rt.key, ns) if accept(obj)]

    # ---------------------------------------------------------------- create
    def create(
        self,
        rt: ResourceType,
        namespace: str,
        body: Obj,
        *,
        dry_run: bool = False,
        ctx: WriteContext | None = None,
    ) -> Obj:
        obj = self._check_fields(rt, self._typed(rt, body), ctx)
        m = _meta(obj)
        ns = self._namespace_for(rt, namespace, m)
        if not m.get("name") and m.get("generateName"):
            m["name"] = generated_name(str(m["generateName"]))
            while self.store.get(rt.key, ns, m["name"]) is not None:
                m["name"] = generated_name(str(m["generateName"]))
        name = m.get("name")
        problems = name_problems(rt.plural, name)
        if problems:
            raise errors.invalid(rt.kind, rt.group, str(name or ""), problems)
        if rt.namespaced:
            self._check_namespace_open(ns, rt)
        if self.store.get(rt.key, ns, str(name)) is not None:
            raise errors.already_exists(rt.plural, rt.group, str(name))
        for server_field in (
            "resourceVersion",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "selfLink",
        ):
            m.pop(server_field, None)
        m["uid"] = new_uid()
        m["creationTimestamp"] = now_rfc3339()
        m["generation"] = 1
        self._prepare_create(rt, obj)
        obj = self._track(rt, None, obj, ctx)
        if dry_run:
            return obj
        stored = self.store.put(rt.key, obj, None)
        if rt.key == CRD_KEY:
            self.registry.set_crd(str(name), crds.resource_types(stored))
        return stored

    def _typed(self, rt: ResourceType, body: Any) -> Obj:
        if not isinstance(body, dict):
            raise errors.bad_request(f"the body of a {rt.kind} must be a JSON object")
        api_version, kind = body.get("apiVersion"), body.get("kind")
        if api_version not in (None, "", rt.api_version) or kind not in (None, "", rt.kind):
            raise errors.bad_request(
                f"the API version in the data ({api_version}) does not match the expected API version "
                f"({rt.api_version}) or kind ({kind}) is not {rt.kind}"
            )
        body["apiVersion"], body["kind"] = rt.api_version, rt.kind
        if not isinstance(body.get("metadata", {}), dict):
            raise errors.bad_request("metadata must be a JSON object")
        return body

    def _namespace_for(self, rt: ResourceType, namespace: str, m: dict[str, Any]) -> str:
        if not rt.namespaced:
            m.pop("namespace", None)
            return ""
        given = m.get("namespace")
        if given and given != namespace:
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        m["namespace"] = namespace
        return namespace

    def _check_namespace_open(self, namespace: str, rt: ResourceType) -> None:
        ns = self.store.get(NS_KEY, "", namespace)
        if ns is None:
            raise errors.not_found("namespaces", "", namespace)
        if ns.get("metadata", {}).get("deletionTimestamp"):
            raise errors.forbidden(
                rt.plural,
                rt.group,
                "",
                f"unable to create new content in namespace {namespace} because it is being terminated",
            )

    def _prepare_create(self, rt: ResourceType, obj: Obj) -> None:
        key = rt.key
        if key == POD_KEY:
            default_pod(obj)
        elif key == NS_KEY:
            obj.setdefault("spec", {}).setdefault("finalizers", ["kubernetes"])
            obj["status"] = {"phase": "Active"}
        elif key in (DEPLOY_KEY, RS_KEY):
            default_workload(obj, deployment=key == DEPLOY_KEY)
            self._validate_workload(rt, obj)
        elif key == CRD_KEY:
            problems = crds.crd_problems(obj)
            if problems:
                raise errors.invalid(rt.kind, rt.group, str(obj["metadata"].get("name", "")), problems)
            obj["status"] = crds.established_status(obj)
            return
        elif not rt.builtin:
            self._default_custom(rt, obj)
        if rt.has_status and not rt.keep_status_on_create and key != POD_KEY and key != NS_KEY:
            if rt.builtin:
                obj["status"] = dict(INITIAL_STATUS.get(key, {}))
            else:
                obj.pop("status", None)
        if not rt.builtin:
            self._validate_custom(rt, obj, None)

    def _validate_workload(self, rt: ResourceType, obj: Obj) -> None:
        problems = workload_problems(obj)
        if problems:
            raise errors.invalid(rt.kind, rt.group, str(obj["metadata"].get("name", "")), problems)

    def _validate_custom(self, rt: ResourceType, obj: Obj, old: Obj | None) -> None:
        """The CRD's structural schema and CEL rules, ``old`` giving ``oldSelf`` on update."""
        crd = self.store.get(CRD_KEY, "", f"{rt.plural}.{rt.group}")
        schema = crds.schema_of(crd, rt.version) if crd is not None else None
        if schema is None:
            return
        problems = crdvalidation.validate(crdvalidation.compiled_rules(schema), schema, obj, old)
        if problems:
            raise errors.invalid(rt.kind, rt.group, str(obj["metadata"].get("name", "")), problems)

    def _default_custom(self, rt: ResourceType, obj: Obj) -> None:
        crd = self.store.get(CRD_KEY, "", f"{rt.plural}.{rt.group}")
        if crd is not None:
            crds.apply_defaults(obj, crds.schema_of(crd, rt.version))

    # ---------------------------------------------------------------- update
    def update(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        body: Any,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        ctx: WriteContext | None = None,
    ) -> Obj:
        old = self.get(rt, namespace, name)
        obj = self._check_fields(rt, self._typed(rt, body), ctx)
        m = _meta(obj)
        if m.get("name") not in (None, "", name):
            raise errors.bad_request(
                f"the name of the object ({m.get('name')}) does not match the name on the URL ({name})"
            )
        old_m = old["metadata"]
        if rt.namespaced and m.get("namespace") not in (None, "", old_m.get("namespace")):
            raise errors.bad_request(
                "the namespace of the provided object does not match the namespace sent on the request"
            )
        rv = m.get("resourceVersion")
        if rv not in (None, "") and str(rv) != old_m.get("resourceVersion"):
            raise errors.conflict(rt.plural, rt.group, name)
        if subresource == "status":
            new = deep_copy(old)
            if "status" in obj:
                new["status"] = obj["status"]
            else:
                new.pop("status", None)
            return self._write(rt, old, self._track(rt, old, new, ctx, "status"), dry_run=dry_run)
        for kept in (
            "name",
            "namespace",
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "generation",
            "generateName",
        ):
            if kept in old_m:
                m[kept] = old_m[kept]
            else:
                m.pop(kept, None)
        if rt.has_status:
            if "status" in old:
                obj["status"] = old["status"]
            else:
                obj.pop("status", None)
        self._prepare_update(rt, obj, old)
        return self._write(rt, old, self._track(rt, old, obj, ctx), dry_run=dry_run)

    def resolver(self, rt: ResourceType) -> Resolver | None:
        return self.schemas.for_type(rt)

    def _check_fields(self, rt: ResourceType, obj: Obj, ctx: WriteContext | None) -> Obj:
        """Unknown and duplicate fields (``fieldValidation``): dropped, warned about or refused."""
        if ctx is None or ctx.validation is None:
            return obj
        cleaned, problems = check_fields(obj, self.resolver(rt), ctx.validation)
        if problems:
            raise errors.bad_request(strict_message(rt.kind, rt.version, problems))
        return cleaned

    def _track(
        self, rt: ResourceType, old: Obj | None, new: Obj, ctx: WriteContext | None, sub: str = ""
    ) -> Obj:
        """Record the write in ``metadata.managedFields`` as an Update by the context's manager."""
        if ctx is None or not ctx.manager:
            return new
        return ssa.track_update(old, new, self.resolver(rt) or FREE_FORM, self._who(rt, ctx, sub))

    @staticmethod
    def _who(rt: ResourceType, ctx: WriteContext, sub: str) -> ssa.Write:
        return ssa.Write(ctx.manager, rt.api_version, now_rfc3339(), sub, rt.has_status)

    def _prepare_update(self, rt: ResourceType, obj: Obj, old: Obj) -> None:
        key = rt.key
        if key in (DEPLOY_KEY, RS_KEY):
            self._validate_workload(rt, obj)
        elif key == CRD_KEY:
            problems = crds.crd_problems(obj)
            if problems:
                raise errors.invalid(rt.kind, rt.group, str(obj["metadata"].get("name", "")), problems)
            obj["status"] = crds.established_status(obj)
        elif key == NS_KEY:
            obj["spec"] = old.get("spec", {})
        elif not rt.builtin:
            self._default_custom(rt, obj)
            self._validate_custom(rt, obj, old)

    def _write(self, rt: ResourceType, old: Obj, new: Obj, *, dry_run: bool) -> Obj:
        """Commit ``new`` over ``old``: bump generation on spec change, finish deletions, skip no-ops."""
        m, old_m = new["metadata"], old["metadata"]
        m["resourceVersion"] = old_m.get("resourceVersion")
        if spec_of(new) != spec_of(old):
            m["generation"] = int(old_m.get("generation", 1)) + 1
        if not m.get("finalizers"):
            m.pop("finalizers", None)
        if m.get("deletionTimestamp") and not m.get("finalizers") and rt.key != NS_KEY:
            if dry_run:
                return new
            return self._remove(rt, new)
        if new == old or dry_run:
            return old if new == old else new
        stored = self.store.put(rt.key, new, old)
        if rt.key == CRD_KEY:
            self.registry.set_crd(str(m["name"]), crds.resource_types(stored))
        return stored

    def write_status(self, rt_key: tuple[str, str], obj: Obj, status: Obj) -> Obj:
        """Controllers: replace ``.status`` of a stored object (no-op when unchanged)."""
        if obj.get("status") == status:
            return obj
        rt = self.registry.by_key(rt_key)
        assert rt is not None
        new = dict(obj)
        new["metadata"] = dict(obj["metadata"])
        new["status"] = status
        return self._write(rt, obj, new, dry_run=False)

    def write(self, rt_key: tuple[str, str], old: Obj, new: Obj) -> Obj:
        """Controllers: commit a rebuilt object through the common rules."""
        rt = self.registry.by_key(rt_key)
        assert rt is not None
        return self._write(rt, old, new, dry_run=False)

    # ---------------------------------------------------------------- patch
    def patch(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        raw: bytes,
        content_type: str,
        *,
        subresource: str | None = None,
        dry_run: bool = False,
        ctx: WriteContext | None = None,
    ) -> Obj:
        if content_type.split(";")[0].strip().lower() == APPLY_PATCH:
            return self.server_side_apply(rt, namespace, name, raw, subresource, dry_run, ctx)
        if ctx is not None and ctx.force:
            raise errors.bad_request("force: Forbidden: may not be specified for non-apply patch")
        old = self.get(rt, namespace, name)
        if subresource == "scale":
            patched_scale = self._apply_patch(rt, self.scale_of(rt, old), raw, content_type)
            return self.update_scale(rt, namespace, name, patched_scale, dry_run=dry_run)
        patched = self._apply_patch(rt, old, raw, content_type)
        if not isinstance(patched, dict):
            raise errors.bad_request("the patch did not produce a JSON object")
        return self.update(rt, namespace, name, patched, subresource=subresource, dry_run=dry_run, ctx=ctx)

    def server_side_apply(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        raw: bytes,
        subresource: str | None,
        dry_run: bool,
        ctx: WriteContext | None,
    ) -> Obj:
        """``application/apply-patch+yaml``: merge a configuration, track ownership, create if absent."""
        ctx = ctx or WriteContext()
        if not ctx.manager or not ctx.manager_given:
            raise errors.invalid(
                "PatchOptions",
                "meta.k8s.io",
                "",
                [("fieldManager", "Required value: is required for apply patch")],
            )
        config = _decode_apply(raw)
        if not isinstance(config, dict):
            raise errors.bad_request("the apply configuration must be a YAML or JSON object")
        for needed in ("apiVersion", "kind"):
            if not config.get(needed):
                raise errors.bad_request(f"{needed} must be set")
        config = self._check_fields(rt, self._typed(rt, config), ctx)
        meta = _meta(config)
        if meta.get("name") not in (None, "", name):
            raise errors.bad_request(
                f"the name of the object ({meta.get('name')}) does not match the name on the URL ({name})"
            )
        live = self.store.get(rt.key, namespace if rt.namespaced else "", name)
        who = self._who(rt, ctx, subresource or "")
        try:
            merged = ssa.apply(live, config, self.resolver(rt) or FREE_FORM, who, force=ctx.force)
        except ssa.ApplyConflicts as exc:
            raise errors.APIError(
                409,
                "Conflict",
                exc.message(),
                {"causes": exc.causes(), "name": name, "kind": rt.plural}
                | ({"group": rt.group} if rt.group else {}),
            ) from exc
        merged = deep_copy(merged)
        if live is None:
            _meta(merged)["name"] = name
            return self.create(rt, namespace, merged, dry_run=dry_run)
        return self.update(rt, namespace, name, merged, subresource=subresource, dry_run=dry_run)

    def _apply_patch(self, rt: ResourceType, current: Obj, raw: bytes, content_type: str) -> Any:
        kind = content_type.split(";")[0].strip().lower()
        accepted = [JSON_PATCH, MERGE_PATCH] + ([STRATEGIC_PATCH] if rt.builtin else [])
        if kind not in accepted:
            raise errors.unsupported_media_type(kind, [*accepted, APPLY_PATCH])
        try:
            body = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"error decoding patch: {exc}") from exc
        try:
            if kind == JSON_PATCH:
                return json_patch(current, body)
            if kind == MERGE_PATCH:
                if not isinstance(body, dict):
                    raise PatchError("merge patch must be a JSON object", malformed=True)
                return merge_patch(deep_copy(current), body)
            return strategic_merge_patch(deep_copy(current), body)
        except PatchError as exc:
            if exc.malformed:
                raise errors.bad_request(str(exc)) from exc
            raise errors.invalid(
                rt.kind, rt.group, str(current["metadata"]["name"]), [("patch", str(exc))]
            ) from exc

    # ---------------------------------------------------------------- delete
    def delete(
        self,
        rt: ResourceType,
        namespace: str,
        name: str,
        options: Obj | None = None,
        *,
        dry_run: bool = False,
    ) -> tuple[Obj, bool]:
        """Delete or start deleting; returns the object and whether it is gone already."""
        options = options or {}
        old = self.get(rt, namespace, name)
        old_m = old["metadata"]
        pre = options.get("preconditions") or {}
        if pre.get("uid") and pre["uid"] != old_m.get("uid"):
            raise errors.conflict(
                rt.plural,
                rt.group,
                name,
                f"Precondition failed: UID in precondition: {pre['uid']}, "
                f"UID in object meta: {old_m.get('uid')}",
            )
        if pre.get("resourceVersion") and pre["resourceVersion"] != old_m.get("resourceVersion"):
            raise errors.conflict(rt.plural, rt.group, name)
        if dry_run:
            return old, not old_m.get("finalizers")
        policy = options.get("propagationPolicy")
        if policy == "Orphan" or options.get("orphanDependents") is True:
            self._orphan_dependents(old_m.get("uid", ""))
        if rt.key == NS_KEY or old_m.get("finalizers"):
            if old_m.get("deletionTimestamp"):
                return old, False
            new = deep_copy(old)
            m = new["metadata"]
            m["deletionTimestamp"] = now_rfc3339()
            m["deletionGracePeriodSeconds"] = int(options.get("gracePeriodSeconds") or 0)
            if rt.key == NS_KEY:
                new.setdefault("status", {})["phase"] = "Terminating"
            stored = self.store.put(rt.key, new, old)
            return stored, False
        return self._remove(rt, old), True

    def _remove(self, rt: ResourceType, obj: Obj) -> Obj:
        final = self.store.remove(rt.key, obj)
        if rt.key == CRD_KEY:
            for gone_rt in self.registry.remove_crd(obj["metadata"]["name"]):
                for cr in list(self.store.iter(gone_rt.key)):
                    if self.store.get(
                        gone_rt.key, cr["metadata"].get("namespace", ""), cr["metadata"]["name"]
                    ):
                        self.store.remove(gone_rt.key, cr)
        return final

    def _orphan_dependents(self, owner_uid: str) -> None:
        for key, ns, dep_name in self.store.dependents(owner_uid):
            dep = self.store.get(key, ns, dep_name)
            if dep is None:
                continue
            new = dict(dep)
            new["metadata"] = dict(dep["metadata"])
            refs = [r for r in dep["metadata"].get("ownerReferences") or [] if r.get("uid") != owner_uid]
            if refs:
                new["metadata"]["ownerReferences"] = refs
            else:
                new["metadata"].pop("ownerReferences", None)
            self.write(key, dep, new)

    # ---------------------------------------------------------------- scale
    def scale_of(self, rt: ResourceType, obj: Obj) -> Obj:
        """The ``autoscaling/v1`` Scale view of a Deployment or ReplicaSet."""
        if "scale" not in rt.subresources:
            raise errors.not_found(f"{rt.plural}/scale", rt.group, obj["metadata"]["name"])
        m = obj["metadata"]
        try:
            selector = from_label_selector((obj.get("spec") or {}).get("selector")) or ()
        except SelectorError:
            selector = ()
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                k: m[k]
                for k in ("name", "namespace", "uid", "resourceVersion", "creationTimestamp")
                if k in m
            },
            "spec": {"replicas": (obj.get("spec") or {}).get("replicas", 0)},
            "status": {
                "replicas": (obj.get("status") or {}).get("replicas", 0),
                "selector": selector_to_string(selector),
            },
        }

    def update_scale(
        self, rt: ResourceType, namespace: str, name: str, scale: Any, *, dry_run: bool = False
    ) -> Obj:
        old = self.get(rt, namespace, name)
        if not isinstance(scale, dict):
            raise errors.bad_request("the body of a Scale must be a JSON object")
        replicas = (scale.get("spec") or {}).get("replicas")
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 0:
            raise errors.invalid(
                "Scale",
                "autoscaling",
                name,
                [("spec.replicas", f"Invalid value: {replicas!r}: must be greater than or equal to 0")],
            )
        rv = (scale.get("metadata") or {}).get("resourceVersion")
        if rv not in (None, "") and str(rv) != old["metadata"].get("resourceVersion"):
            raise errors.conflict(rt.plural, rt.group, name)
        new = deep_copy(old)
        new.setdefault("spec", {})["replicas"] = replicas
        return self.scale_of(rt, self._write(rt, old, new, dry_run=dry_run))

    # ---------------------------------------------------------------- pods/binding
    def bind(self, namespace: str, name: str, binding: Any, *, dry_run: bool = False) -> Obj:
        pods = self.registry.get("", "v1", "pods")
        assert pods is not None
        if not isinstance(binding, dict) or not isinstance(binding.get("target"), dict):
            raise errors.bad_request("a Binding needs a target")
        target = str(binding["target"].get("name") or "")
        if not target:
            raise errors.invalid("Binding", "", name, [("target.name", "Required value")])
        old = self.get(pods, namespace, name)
        current = (old.get("spec") or {}).get("nodeName")
        if current:
            raise errors.conflict(
                "pods/binding", "", name, f'pod {name} is already assigned to node "{current}"'
            )
        if old["metadata"].get("deletionTimestamp"):
            raise errors.conflict(
                "pods/binding", "", name, f"pod {name} is being deleted, cannot be assigned to a host"
            )
        new = deep_copy(old)
        new.setdefault("spec", {})["nodeName"] = target
        status = new.setdefault("status", {})
        conditions = [c for c in status.get("conditions") or [] if c.get("type") != "PodScheduled"]
        conditions.append(
            {
                "type": "PodScheduled",
                "status": "True",
                "lastProbeTime": None,
                "lastTransitionTime": now_rfc3339(),
            }
        )
        status["conditions"] = conditions
        self._write(pods, old, new, dry_run=dry_run)
        return success(201)

    # ---------------------------------------------------------------- pods/eviction
    def budget_for(self, pdb: Obj) -> disruption.Budget:
        ns = pdb["metadata"].get("namespace", "")
        pods = self.pods_selected_by(pdb)
        replicas: dict[str, int] = {}
        for pod in pods:
            owner = controller_of(pod)
            if owner and owner.get("uid") and owner["uid"] not in replicas:
                top = self.store.by_uid(owner["uid"])
                if top is not None:
                    parent_ref = controller_of(top)
                    parent = (
                        self.store.by_uid(parent_ref["uid"]) if parent_ref and parent_ref.get("uid") else None
                    )
                    source = (
                        parent if parent is not None and "replicas" in (parent.get("spec") or {}) else top
                    )
                    count = (source.get("spec") or {}).get("replicas")
                    if isinstance(count, int):
                        replicas[owner["uid"]] = count
        del ns
        return disruption.budget(pdb, pods, replicas)

    def pods_selected_by(self, pdb: Obj) -> list[Obj]:
        try:
            selector = from_label_selector((pdb.get("spec") or {}).get("selector"))
        except SelectorError:
            return []
        if selector is None:
            return []
        ns = pdb["metadata"].get("namespace", "")
        return [
            p for p in self.store.iter(POD_KEY, ns) if labels_match(selector, p["metadata"].get("labels"))
        ]

    def evict(self, namespace: str, name: str, eviction: Any, *, dry_run: bool = False) -> Obj:
        pods = self.registry.get("", "v1", "pods")
        pdbs_rt = self.registry.get("policy", "v1", "poddisruptionbudgets")
        assert pods is not None
        assert pdbs_rt is not None
        pod = self.get(pods, namespace, name)
        options = (eviction.get("deleteOptions") if isinstance(eviction, dict) else None) or {}
        dry_run = dry_run or "All" in (options.get("dryRun") or [])
        phase = (pod.get("status") or {}).get("phase")
        if pod["metadata"].get("deletionTimestamp") or phase in ("Succeeded", "Failed", "Pending"):
            self.delete(pods, namespace, name, options, dry_run=dry_run)
            return success(201)
        labels = pod["metadata"].get("labels")
        matching = []
        for pdb in self.store.iter(PDB_KEY, namespace):
            try:
                selector = from_label_selector((pdb.get("spec") or {}).get("selector"))
            except SelectorError:
                continue
            if selector is not None and labels_match(selector, labels):
                matching.append(pdb)
        if len(matching) > 1:
            raise errors.internal(
                "This pod has more than one PodDisruptionBudget, "
                "which the eviction subresource does not support."
            )
        if not matching:
            self.delete(pods, namespace, name, options, dry_run=dry_run)
            return success(201)
        pdb = matching[0]
        b = self.budget_for(pdb)
        if not disruption.is_healthy(pod) and disruption.can_evict_unhealthy(pdb, b):
            self.delete(pods, namespace, name, options, dry_run=dry_run)
            return success(201)
        if b.disruptions_allowed <= 0:
            raise errors.too_many_requests(disruption.EVICTION_REFUSED, [disruption.refusal_cause(pdb, b)])
        if dry_run:
            return success(201)
        self.delete(pods, namespace, name, options)
        self.refresh_pdb(pdb)
        return success(201)

    def refresh_pdb(self, pdb: Obj) -> Obj:
        """Recompute and store a budget's status (the PDB controller and eviction both call it)."""
        current = self.store.get(PDB_KEY, pdb["metadata"].get("namespace", ""), pdb["metadata"]["name"])
        if current is None:
            return pdb
        try:
            b = self.budget_for(current)
        except ValueError:
            return current
        return self.write_status(PDB_KEY, current, disruption.pdb_status(current, b, current.get("status")))


def _decode_apply(raw: bytes) -> Any:
    """An apply body: JSON (what kubectl sends) decoded fast, any other YAML through PyYAML."""
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError:
        pass
    try:
        return yaml.safe_load(raw)
    except yaml.YAMLError as exc:
        raise errors.bad_request(f"error decoding YAML: {exc}") from exc


def as_api_error(exc: Exception) -> APIError:
    return exc if isinstance(exc, APIError) else errors.internal(str(exc))

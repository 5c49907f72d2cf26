"""aiohttp handlers: parse the Kubernetes REST path and query, call :class:`API`, render JSON.

One catch-all route, because the resource set changes at run time when CRDs come and go.
"""

from __future__ import annotations

import asyncio
import base64
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import yaml
from aiohttp import web

from localcluster.apiserver import discovery, errors, protobuf, table
from localcluster.apiserver.errors import APIError
from localcluster.apiserver.fieldvalidation import MODES, WARN, FieldValidation, duplicate_fields
from localcluster.apiserver.openapi import OpenAPI
from localcluster.apiserver.registry import ResourceType
from localcluster.apiserver.selectors import (
    SelectorError,
    object_filter,
    parse_field_selector,
    parse_label_selector,
)
from localcluster.apiserver.service import API, CRD_KEY, WriteContext, success
from localcluster.apiserver.store import BOOKMARK, ERROR, Obj, encode_event
from shared.errors import FieldError
from shared.logs import get_logger

if TYPE_CHECKING:
    from localcluster.apiserver.faults import ApiFaults

log = get_logger(__name__)

JSON = "application/json"
NOT_FOUND = APIError(404, "NotFound", "the server could not find the requested resource")
TRUE_VALUES = ("true", "True", "1")


def json_response(body: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(body), status=status, content_type=JSON)


@dataclass(frozen=True)
class Target:
    """What a resource URL names."""

    rt: ResourceType
    namespace: str | None
    name: str | None
    subresource: str | None
    watch_path: bool


@dataclass
class WatchSettings:
    bookmark_interval: float = 5.0


class Handlers:
    def __init__(self, api: API, watch: WatchSettings, server_address: str = "") -> None:
        self.api = api
        self.watch_settings = watch
        self.server_address = server_address
        self.openapi = OpenAPI(api.registry, api.schemas)
        self.faults: ApiFaults | None = None

    # ------------------------------------------------------------ routing
    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        try:
            return await self._dispatch(request)
        except APIError as exc:
            return json_response(exc.status(), exc.code)
        except (ConnectionResetError, asyncio.CancelledError):
            raise
        except Exception as exc:
            log.exception("apiserver.internal_error", path=request.path, method=request.method)
            err = errors.internal(f"{type(exc).__name__}: {exc}")
            return json_response(err.status(), 500)

    async def _dispatch(self, request: web.Request) -> web.StreamResponse:
        segs = [s for s in request.path.split("/") if s]
        if not segs:
            return json_response({"paths": ["/api", "/api/v1", "/apis", "/version"]})
        if segs == ["version"]:
            return json_response(discovery.VERSION)
        if segs[0] in ("healthz", "livez", "readyz"):
            return web.Response(text="ok")
        if segs[0] == "openapi":
            return self._openapi(request, segs[1:])
        if segs[0] == "api":
            if len(segs) == 1:
                return json_response(discovery.api_versions(self.server_address))
            group, version, rest = "", segs[1], segs[2:]
        elif segs[0] == "apis":
            if len(segs) == 1:
                return json_response(discovery.api_group_list(self.api.registry))
            if len(segs) == 2:
                doc = discovery.api_group(self.api.registry, segs[1])
                if doc is None:
                    raise NOT_FOUND
                return json_response(doc)
            group, version, rest = segs[1], segs[2], segs[3:]
        else:
            raise NOT_FOUND
        if not rest:
            doc = discovery.api_resource_list(self.api.registry, group, version)
            if doc is None:
                raise NOT_FOUND
            return json_response(doc)
        target = self._target(group, version, rest)
        if self.faults is not None and self.faults.armed:
            faulty = await self.faults.intercept(request, target)
            if faulty is not None:
                return faulty
        method = request.method
        if method == "GET":
            return await self._get(request, target)
        if method == "POST":
            return await self._post(request, target)
        if method == "PUT":
            return await self._put(request, target)
        if method == "PATCH":
            return await self._patch(request, target)
        if method == "DELETE":
            return await self._delete(request, target)
        raise errors.method_not_allowed()

    def _target(self, group: str, version: str, rest: list[str]) -> Target:
        watch_path = rest[0] == "watch"
        if watch_path:
            rest = rest[1:]
        if not rest:
            raise NOT_FOUND
        namespace: str | None = None
        if rest[0] == "namespaces" and len(rest) >= 3:
            rt = self.api.registry.get(group, version, rest[2])
            if rt is not None and rt.namespaced:
                namespace, rest = rest[1], rest[2:]
        rt = self.api.registry.get(group, version, rest[0])
        if rt is None or len(rest) > 3:
            raise NOT_FOUND
        name = rest[1] if len(rest) > 1 else None
        sub = rest[2] if len(rest) > 2 else None
        if sub is not None and sub not in rt.subresources:
            raise NOT_FOUND
        if rt.namespaced and namespace is None and name is not None:
            raise NOT_FOUND
        return Target(rt, namespace, name, sub, watch_path)

    # ------------------------------------------------------------ openapi
    def _openapi(self, request: web.Request, segs: list[str]) -> web.Response:
        if request.method != "GET":
            raise errors.method_not_allowed()
        if segs == ["v2"]:
            accept = request.headers.get("Accept", "")
            if accept and not any(t in accept for t in ("application/json", "*/*", "application/*")):
                raise errors.APIError(406, "NotAcceptable", "only application/json is served")
            return self._document(request, self.openapi.v2(), immutable=False)
        if segs == ["v3"]:
            return json_response(self.openapi.v3_root())
        if len(segs) > 1 and segs[0] == "v3":
            gv = "/".join(segs[1:])
            doc = self.openapi.v3(gv)
            if doc is None:
                raise NOT_FOUND
            wanted = request.query.get("hash")
            if wanted is not None and wanted != doc.etag:
                raise web.HTTPMovedPermanently(f"/openapi/v3/{gv}?hash={doc.etag}")
            return self._document(request, doc, immutable=wanted is not None)
        raise NOT_FOUND

    @staticmethod
    def _document(request: web.Request, doc: Any, *, immutable: bool) -> web.Response:
        etag = f'"{doc.etag}"'
        cache = "public, immutable, max-age=31536000" if immutable else "no-cache, private"
        headers = {"ETag": etag, "Cache-Control": cache, "Vary": "Accept"}
        if request.headers.get("If-None-Match") == etag:
            return web.Response(status=304, headers=headers)
        return web.Response(body=doc.body, content_type=JSON, headers=headers)

    # ------------------------------------------------------------ helpers
    @staticmethod
    async def _context(request: web.Request) -> WriteContext:
        """Field manager, validation mode and ``force`` of a write (duplicates need the raw body)."""
        q = request.query
        mode = q.get("fieldValidation")
        if mode is not None and mode not in MODES:
            raise errors.bad_request(
                f"fieldValidation: Unsupported value: {mode!r}: supported values: "
                + ", ".join(f'"{m}"' for m in MODES)
            )
        fv = FieldValidation(mode or WARN)
        if mode is not None and mode != "Ignore" and not protobuf.is_protobuf(request.content_type or ""):
            raw = await request.read()
            fv.duplicates = duplicate_fields(raw, "yaml" in (request.content_type or "")) if raw else []
        manager = q.get("fieldManager") or request.headers.get("User-Agent", "").split("/")[0]
        force = q.get("force") in TRUE_VALUES
        given = bool(q.get("fieldManager"))
        return WriteContext(manager=manager[:128], validation=fv, force=force, manager_given=given)

    @staticmethod
    def _respond(body: Any, status: int, ctx: WriteContext) -> web.Response:
        response = json_response(body, status)
        for warning in ctx.validation.warnings if ctx.validation else ():
            escaped = warning.replace("\\", "\\\\").replace('"', '\\"')
            response.headers.add("Warning", f'299 - "{escaped}"')
        return response

    @staticmethod
    def _dry_run(request: web.Request) -> bool:
        return "All" in request.query.getall("dryRun", [])

    @staticmethod
    async def _body(request: web.Request, rt: ResourceType | None = None) -> Any:
        raw = await request.read()
        if not raw:
            return None
        if "protobuf" in (request.content_type or ""):
            return Handlers._protobuf_body(raw, rt, request.content_type)
        if "yaml" in (request.content_type or ""):
            try:
                return yaml.safe_load(raw)
            except yaml.YAMLError as exc:
                raise errors.bad_request(f"error decoding YAML: {exc}") from exc
        try:
            return orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise errors.bad_request(f"error decoding JSON body: {exc}") from exc

    @staticmethod
    def _protobuf_body(raw: bytes, rt: ResourceType | None, content_type: str) -> Any:
        """Built-ins that kubectl's typed clients send as protobuf, decoded to the JSON-shaped dict.

        Custom resources have no protobuf form, and kinds without decoding tables are treated
        the same: 415 with the real server's message for a resource that only speaks JSON and
        YAML, rather than a decode error or a silently different object.
        """
        refused = errors.unsupported_media_type("", ["application/json", "application/yaml"])
        if not protobuf.is_protobuf(content_type) or (rt is not None and not rt.builtin):
            raise refused
        try:
            return protobuf.decode(raw)
        except protobuf.UnsupportedKind as exc:
            log.info("apiserver.protobuf_kind_unsupported", api_version=exc.api_version, kind=exc.kind)
            raise refused from exc
        except FieldError as exc:
            raise errors.bad_request(f"error decoding protobuf body: {exc}") from exc

    def _filter(self, request: web.Request, target: Target) -> Any:
        q = request.query
        try:
            labels = parse_label_selector(q.get("labelSelector", ""))
            fields = parse_field_selector(q.get("fieldSelector", ""), target.rt.fields)
        except SelectorError as exc:
            raise errors.bad_request(str(exc)) from exc
        return object_filter(labels, fields, target.namespace if target.rt.namespaced else None)

    # ------------------------------------------------------------ verbs
    async def _get(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt = target.rt
        if target.name is None:
            if target.watch_path or request.query.get("watch") in TRUE_VALUES:
                return await self._watch(request, target)
            return self._list(request, target)
        obj = self.api.get(rt, target.namespace or "", target.name)
        if target.subresource == "scale":
            return json_response(self.api.scale_of(rt, obj))
        if target.subresource not in (None, "status"):
            raise errors.method_not_allowed()
        if target.subresource is None and self._wants_table(request, rt):
            meta = {"resourceVersion": obj["metadata"].get("resourceVersion", "")}
            return json_response(self._table(request, rt, [obj], meta))
        return json_response(obj)

    @staticmethod
    def _wants_table(request: web.Request, rt: ResourceType) -> bool:
        """Table output for custom resources (built-ins keep kubectl's plain-list fallback)."""
        return not rt.builtin and table.wants_table(request.headers.get("Accept", ""))

    def _table(self, request: web.Request, rt: ResourceType, items: list[Obj], meta: Obj) -> Obj:
        crd = self.api.store.get(CRD_KEY, "", f"{rt.plural}.{rt.group}")
        columns = table.printer_columns(crd, rt.version)
        include = request.query.get("includeObject", "Metadata")
        return table.table(items, columns, meta, include_object=include)

    def _list(self, request: web.Request, target: Target) -> web.Response:
        """Items in (namespace, name) order; with ``limit``, one page read from the store's sorted
        names after the continue key, so a page costs what it holds at any resource size."""
        rt = target.rt
        accept = self._filter(request, target)
        meta: Obj = {"resourceVersion": str(self.api.store.resource_version)}
        after: tuple[str, str] | None = None
        token = request.query.get("continue")
        if token:
            try:
                start = orjson.loads(base64.urlsafe_b64decode(token.encode()))
                after = (str(start["ns"]), str(start["name"]))
            except (ValueError, KeyError, TypeError) as exc:
                raise errors.bad_request("continue key is not valid") from exc
        namespace = target.namespace if rt.namespaced else None
        limit_text = request.query.get("limit") or ""
        limit = int(limit_text) if limit_text.isdigit() else 0
        items: list[Obj] = []
        for obj in self.api.store.ordered(rt.key, namespace, after):
            if accept(obj):
                items.append(obj)
                if 0 < limit < len(items):
                    break
        if 0 < limit < len(items):
            items = items[:limit]
            last = items[-1]["metadata"]
            key = {"ns": last.get("namespace", ""), "name": last["name"]}
            meta["continue"] = base64.urlsafe_b64encode(orjson.dumps(key)).decode()
            if not request.query.get("labelSelector") and not request.query.get("fieldSelector"):
                # As the real server: unknown (left out) when selectors filter the rest.
                meta["remainingItemCount"] = self.api.store.count_after(
                    rt.key, namespace, (key["ns"], key["name"])
                )
        if rt.builtin:  # the real server leaves kind/apiVersion out of built-in list items
            items = [{k: v for k, v in o.items() if k != "kind" and k != "apiVersion"} for o in items]
        if self._wants_table(request, rt):
            return json_response(self._table(request, rt, items, meta))
        return json_response(
            {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": items}
        )

    async def _watch(self, request: web.Request, target: Target) -> web.StreamResponse:
        rt, q = target.rt, request.query
        accept = self._filter(request, target)
        rv_text = q.get("resourceVersion", "")
        if rv_text in ("", "0"):
            since: int | None = None
        elif rv_text.isdigit():
            since = int(rv_text)
        else:
            raise errors.bad_request(f"invalid resource version: {rv_text!r}")
        timeout_text = q.get("timeoutSeconds")
        deadline = time.monotonic() + float(timeout_text) if timeout_text and timeout_text.isdigit() else None
        bookmarks = q.get("allowWatchBookmarks") in TRUE_VALUES
        response = web.StreamResponse(headers={"Content-Type": JSON})
        response.enable_chunked_encoding()
        store = self.api.store
        try:
            watcher, initial = store.watch(rt.key, accept, since)
        except APIError as exc:
            await response.prepare(request)
            await response.write(encode_event(ERROR, exc.status()))
            return response
        interval = self.watch_settings.bookmark_interval
        next_bookmark = time.monotonic() + interval
        try:
            await response.prepare(request)
            if initial:
                await response.write(b"".join(initial))
            while not watcher.closed:
                now = time.monotonic()
                if deadline is not None and now >= deadline:
                    break
                waits = [60.0]
                if deadline is not None:
                    waits.append(deadline - now)
                if bookmarks:
                    waits.append(max(0.0, next_bookmark - now))
                lines = await watcher.next_batch(max(0.0, min(waits)))
                if lines:
                    await response.write(b"".join(lines))
                if bookmarks and time.monotonic() >= next_bookmark:
                    await response.write(self._bookmark(rt))
                    next_bookmark = time.monotonic() + interval
            if watcher.error is not None:
                await response.write(encode_event(ERROR, watcher.error.status()))
            elif bookmarks and not watcher.closed:
                await response.write(self._bookmark(rt))
        except (ConnectionResetError, ConnectionError):
            pass
        finally:
            watcher.close()
        return response

    def _bookmark(self, rt: ResourceType) -> bytes:
        obj = {
            "kind": rt.kind,
            "apiVersion": rt.api_version,
            "metadata": {"resourceVersion": str(self.api.store.resource_version)},
        }
        return encode_event(BOOKMARK, obj)

    async def _post(self, request: web.Request, target: Target) -> web.Response:
        rt, ns = target.rt, target.namespace or ""
        body = await self._body(request, target.rt)
        dry = self._dry_run(request)
        if target.subresource == "binding" and target.name:
            return json_response(self.api.bind(ns, target.name, body, dry_run=dry), 201)
        if target.subresource == "eviction" and target.name:
            return json_response(self.api.evict(ns, target.name, body, dry_run=dry), 201)
        if target.name is not None:
            raise errors.method_not_allowed()
        if rt.plural == "bindings" and not rt.group:
            name = ((body or {}).get("metadata") or {}).get("name", "") if isinstance(body, dict) else ""
            return json_response(self.api.bind(ns, str(name), body, dry_run=dry), 201)
        if rt.namespaced and target.namespace is None:
            raise NOT_FOUND
        ctx = await self._context(request)
        return self._respond(self.api.create(rt, ns, body, dry_run=dry, ctx=ctx), 201, ctx)

    async def _put(self, request: web.Request, target: Target) -> web.Response:
        if target.name is None:
            raise errors.method_not_allowed()
        rt, ns = target.rt, target.namespace or ""
        body = await self._body(request, target.rt)
        dry = self._dry_run(request)
        if target.subresource == "scale":
            return json_response(self.api.update_scale(rt, ns, target.name, body, dry_run=dry))
        if target.subresource == "finalize":
            old = self.api.get(rt, ns, target.name)
            spec = (body or {}).get("spec") if isinstance(body, dict) else None
            new = {**old, "spec": spec or {}}
            return json_response(self.api.write(rt.key, old, new))
        if target.subresource not in (None, "status"):
            raise errors.method_not_allowed()
        ctx = await self._context(request)
        obj = self.api.update(rt, ns, target.name, body, subresource=target.subresource, dry_run=dry, ctx=ctx)
        return self._respond(obj, 200, ctx)

    async def _patch(self, request: web.Request, target: Target) -> web.Response:
        if target.name is None or target.subresource not in (None, "status", "scale"):
            raise errors.method_not_allowed()
        raw = await request.read()
        ctx = await self._context(request)
        rt, ns = target.rt, target.namespace or ""
        existed = self.api.store.get(rt.key, ns if rt.namespaced else "", target.name) is not None
        obj = self.api.patch(
            target.rt,
            target.namespace or "",
            target.name,
            raw,
            request.headers.get("Content-Type", ""),
            subresource=target.subresource,
            dry_run=self._dry_run(request),
            ctx=ctx,
        )
        return self._respond(obj, 200 if existed else 201, ctx)

    async def _delete(self, request: web.Request, target: Target) -> web.Response:
        rt, ns = target.rt, target.namespace or ""
        body = await self._body(request, target.rt)
        options: Obj = dict(body) if isinstance(body, dict) else {}
        q = request.query
        if "propagationPolicy" in q:
            options["propagationPolicy"] = q["propagationPolicy"]
        if q.get("gracePeriodSeconds", "").isdigit():
            options["gracePeriodSeconds"] = int(q["gracePeriodSeconds"])
        dry = self._dry_run(request) or "All" in (options.get("dryRun") or [])
        if target.name is None:
            if rt.namespaced and target.namespace is None:
                raise NOT_FOUND
            accept = self._filter(request, target)
            deleted = []
            for obj in self.api.list_objects(rt, target.namespace, accept):
                out, _ = self.api.delete(rt, ns, obj["metadata"]["name"], options, dry_run=dry)
                deleted.append(out)
            meta = {"resourceVersion": str(self.api.store.resource_version)}
            return json_response(
                {"kind": rt.list_kind, "apiVersion": rt.api_version, "metadata": meta, "items": deleted}
            )
        obj, gone_now = self.api.delete(rt, ns, target.name, options, dry_run=dry)
        if not gone_now:
            return json_response(obj, 202 if not dry else 200)
        if rt.returns_deleted_object:
            return json_response(obj)
        m = obj["metadata"]
        details = {"name": m["name"], "kind": rt.plural, "uid": m.get("uid", "")}
        if rt.group:
            details["group"] = rt.group
        return json_response(success(200, details))

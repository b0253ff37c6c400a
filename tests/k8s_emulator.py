#!/usr/bin/env python3
"""A loopback Kubernetes API emulator for pushgateway-janitor's end-to-end tests.

It serves kmock's ``KubernetesEmulator`` (PyPI ``kmock`` 0.8) over plain HTTP on
127.0.0.1 and pre-registers the resources the controller talks to. kmock alone
is not enough for kube-rs (see ``tests/KMOCK.md``); the subclass below adds the
minimum on kmock's own extension points (the overridable ``_handle`` /
``_serve_list`` / ``_serve_watch`` of ``KubernetesEmulator``, its object store
and its per-resource event buses):

* ``metadata.resourceVersion`` (one global counter), ``uid``,
  ``creationTimestamp``, ``namespace`` from the URL, ``apiVersion``/``kind``;
  ``metadata.generation`` for custom resources, bumped when anything other
  than metadata and status changes;
* optimistic concurrency: a stale ``metadata.resourceVersion`` in a PATCH or
  PUT body gives 409 ``Conflict``;
* ``PUT`` (replace), which kmock does not route at all;
* the status subresource: writes to ``/status`` change only ``.status``,
  writes to the object itself never change ``.status``; a create drops it;
* server-side apply (``application/apply-patch+yaml`` with a JSON body, as
  kube-rs sends it): a merge, plus a per-field owner table, so that a manager
  that re-applies without a field loses the field, and a non-forced apply
  that changes a field owned by another manager gets 409 ``Conflict``;
  an apply to a missing object creates it (not on ``/status``);
* no-op writes do not bump resourceVersion and emit no watch event;
* list: ``kind``/``apiVersion``, a real ``metadata.resourceVersion``,
  ``labelSelector`` and ``fieldSelector`` (metadata.name/metadata.namespace);
* watch: the same selectors; ``resourceVersion=N`` replays only the events
  after N (from a per-resource event log), otherwise synthetic ADDED events;
  ``timeoutSeconds`` ends the stream; ``sendInitialEvents=true`` ends the
  initial events with the ``k8s.io/initial-events-end`` bookmark;
* error bodies carry the real reasons (``NotFound``, ``AlreadyExists``,
  ``Conflict``, ``Invalid``, ``BadRequest``, ``UnsupportedMediaType``),
  which kube-rs' ``Status::is_not_found()`` etc. and kube-lease-manager test.

Command line::

    python tests/k8s_emulator.py --port-file PATH [--port N]
        [--request-log PATH] [--seed PATH] [--resource SPEC]... [--ignore-stdin]
        [--vanilla]

It writes the port number to PATH (atomically, when it is ready to serve) and
serves until SIGTERM/SIGINT or until its standard input is closed, so keep a
pipe to its stdin open for as long as the test runs (``--ignore-stdin`` turns
that off). ``--request-log PATH`` appends one JSON line per handled request:
``{"method", "path", "query", "contentType", "action", "subresource",
"status", "body"}`` (``status`` is the HTTP status; a watch is logged when it
starts). ``--seed PATH`` creates the objects of a JSON file (a list or a
``{"items": [...]}`` list) before the port file is written. ``--resource``
registers one more resource: ``GROUP/VERSION/PLURAL=Kind[,cluster][,status]``
(``v1/configmaps=ConfigMap`` for the core group). ``--vanilla`` serves plain
kmock with the same registrations and none of the additions (to reproduce
the limits documented in ``tests/KMOCK.md``).
"""
from __future__ import annotations

import argparse
import asyncio
import collections
import copy
import datetime
import json
import os
import random
import re
import signal
import string
import sys
import threading
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any

import aiohttp.web
import attrs
import jsonpatch  # a dependency of kmock itself
import kmock

# --------------------------------------------------------------------------------------------------
# Resources served.


@attrs.frozen
class Res:
    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool = True
    subresources: frozenset[str] = frozenset()
    shortnames: frozenset[str] = frozenset()
    custom: bool = False  # a CRD: generation, status dropped on create, PUT needs resourceVersion

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def key(self) -> kmock.resource:
        return kmock.resource(self.group, self.version, self.plural)


VERBS = {'get', 'list', 'watch', 'create', 'update', 'patch', 'delete'}

BUILTIN_RESOURCES = [
    Res('pgw-janitor.dev', 'v1alpha1', 'pushgatewayretentions', 'PushgatewayRetention',
        subresources=frozenset({'status'}), shortnames=frozenset({'pgr'}), custom=True),
    Res('', 'v1', 'secrets', 'Secret'),
    Res('', 'v1', 'events', 'Event'),
    Res('', 'v1', 'services', 'Service', subresources=frozenset({'status'})),
    Res('', 'v1', 'namespaces', 'Namespace', namespaced=False, subresources=frozenset({'status'})),
    Res('events.k8s.io', 'v1', 'events', 'Event'),
    Res('coordination.k8s.io', 'v1', 'leases', 'Lease'),
    Res('discovery.k8s.io', 'v1', 'endpointslices', 'EndpointSlice'),
]


def parse_resource_spec(spec: str) -> Res:
    """``GROUP/VERSION/PLURAL=Kind[,cluster][,status]``, or ``VERSION/PLURAL=...`` for core."""
    path, _, rest = spec.partition('=')
    parts = path.strip('/').split('/')
    if len(parts) == 2:
        group, version, plural = '', parts[0], parts[1]
    elif len(parts) == 3:
        group, version, plural = parts
    else:
        raise argparse.ArgumentTypeError(f"bad resource spec: {spec!r}")
    kind, *flags = (rest or plural.capitalize()).split(',')
    unknown = set(flags) - {'cluster', 'status', 'custom'}
    if unknown:
        raise argparse.ArgumentTypeError(f"unknown flags {sorted(unknown)} in {spec!r}")
    return Res(group, version, plural, kind, namespaced='cluster' not in flags,
               subresources=frozenset({'status'} if 'status' in flags else ()),
               custom='custom' in flags)


def register(emulator: kmock.KubernetesEmulator, res: Res) -> None:
    emulator.resources[res.key] = kmock.ResourceInfo(
        kind=res.kind, singular=res.kind.lower(), namespaced=res.namespaced,
        verbs=VERBS, shortnames=set(res.shortnames), subresources=set(res.subresources),
    )


# --------------------------------------------------------------------------------------------------
# Errors with the reasons of a real API server.


@attrs.frozen
class ApiError(kmock.KubernetesError):
    pass


def not_found(what: str) -> ApiError:
    return ApiError(status=404, reason='NotFound', message=f"{what} not found")


def conflict(message: str) -> ApiError:
    return ApiError(status=409, reason='Conflict', message=message)


def invalid(message: str) -> ApiError:
    return ApiError(status=422, reason='Invalid', message=message)


def bad_request(message: str) -> ApiError:
    return ApiError(status=400, reason='BadRequest', message=message)


# kmock's own exception classes -> the reason a real server gives.
KMOCK_REASONS = [
    (kmock.KubernetesNotFoundError, 'NotFound'),  # incl. endpoint/resource/object not found
]

# --------------------------------------------------------------------------------------------------
# Small dict helpers.

Path = tuple[str, ...]


def merge_patch(base: Any, patch: Any) -> Any:
    """RFC 7386 JSON merge patch (what kmock does too): dicts merge, null deletes, rest replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(base) if isinstance(base, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def merge_diff(old: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    """The merge patch that turns ``old`` into ``new`` (fed to kmock's own merging)."""
    diff: dict[str, Any] = {key: None for key in old if key not in new}
    for key, value in new.items():
        if key not in old:
            diff[key] = value
        elif isinstance(value, dict) and isinstance(old[key], dict) and value:
            sub = merge_diff(old[key], value)
            if sub:
                diff[key] = sub
        elif value != old[key]:
            diff[key] = value
    return diff


def leaves(obj: Any, prefix: Path = ()) -> dict[Path, Any]:
    """Field paths to their values; lists, scalars and empty dicts are leaves."""
    if isinstance(obj, dict) and obj:
        result: dict[Path, Any] = {}
        for key, value in obj.items():
            result.update(leaves(value, prefix + (key,)))
        return result
    return {prefix: obj} if prefix else {}


MISSING = object()


def get_path(obj: Any, path: Path) -> Any:
    for key in path:
        if not isinstance(obj, dict) or key not in obj:
            return MISSING
        obj = obj[key]
    return obj


def set_path(obj: dict[str, Any], path: Path, value: Any) -> None:
    for key in path[:-1]:
        if not isinstance(obj.get(key), dict):
            obj[key] = {}
        obj = obj[key]
    if value == {} and isinstance(obj.get(path[-1]), dict):
        return  # an empty map in an apply configuration only says "this map exists"
    obj[path[-1]] = copy.deepcopy(value)


def del_path(obj: dict[str, Any], path: Path) -> None:
    for key in path[:-1]:
        obj = obj.get(key)
        if not isinstance(obj, dict):
            return
    obj.pop(path[-1], None)


def strip_volatile(obj: dict[str, Any]) -> dict[str, Any]:
    result = copy.deepcopy(obj)
    result.get('metadata', {}).pop('resourceVersion', None)
    result.get('metadata', {}).pop('managedFields', None)
    return result


def without(obj: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {key: value for key, value in obj.items() if key not in keys}


def now_rfc3339() -> str:
    return datetime.datetime.now(tz=datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


# --------------------------------------------------------------------------------------------------
# Label and field selectors (the set-based syntax of the API server).

_SELECTOR_TERM = re.compile(r"""
    \s*(?:
        (?P<nkey>!\s*[^\s,=!()]+)                                        # !key
      | (?P<skey>[^\s,=!()]+)\s+(?P<sop>in|notin)\s*\((?P<vals>[^)]*)\)  # key in (a,b)
      | (?P<key>[^\s,=!()]+)\s*(?P<op>==|=|!=)\s*(?P<val>[^\s,=!()]*)    # key=value
      | (?P<ekey>[^\s,=!()]+)                                            # key
    )\s*(?:,|$)""", re.VERBOSE)


def parse_selector(text: str | None) -> list[tuple[str, str, set[str]]]:
    terms: list[tuple[str, str, set[str]]] = []
    text = (text or '').strip()
    pos = 0
    while pos < len(text):
        match = _SELECTOR_TERM.match(text, pos)
        if not match or match.end() == pos:
            raise bad_request(f"unable to parse requirement: {text[pos:]!r}")
        pos = match.end()
        if match['nkey']:
            terms.append((match['nkey'].lstrip('!').strip(), '!', set()))
        elif match['skey']:
            values = {v.strip() for v in match['vals'].split(',') if v.strip()}
            terms.append((match['skey'], match['sop'], values))
        elif match['key']:
            terms.append((match['key'], '!=' if match['op'] == '!=' else '=', {match['val']}))
        else:
            terms.append((match['ekey'], 'exists', set()))
    return terms


def selector_matches(terms: list[tuple[str, str, set[str]]], values: dict[str, str]) -> bool:
    for key, op, wanted in terms:
        present = key in values
        value = values.get(key)
        ok = {
            '=': present and value in wanted,
            'in': present and value in wanted,
            '!=': not present or value not in wanted,
            'notin': not present or value not in wanted,
            'exists': present,
            '!': not present,
        }[op]
        if not ok:
            return False
    return True


# --------------------------------------------------------------------------------------------------
# The emulator.


@attrs.define(kw_only=True, eq=False)
class LoggedBus(kmock.Bus):
    """kmock's per-resource event bus, which also keeps every event for watch resumption."""
    next_rv: Callable[[], str] = attrs.field(default=lambda: '0')
    log: list[tuple[int, dict[str, Any]]] = attrs.field(factory=list)

    async def put(self, *items: Any) -> None:
        stamped = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get('object'), dict):
                if item.get('type') == 'DELETED':  # a deletion is a change with its own version
                    item = copy.deepcopy(item)
                    item['object'].setdefault('metadata', {})['resourceVersion'] = self.next_rv()
                rv = item['object'].get('metadata', {}).get('resourceVersion', '0')
                self.log.append((int(rv) if str(rv).isdigit() else 0, item))
            stamped.append(item)
        await super().put(*stamped)


@attrs.define(kw_only=True)
class JanitorEmulator(kmock.KubernetesEmulator):
    served: dict[kmock.resource, Res] = attrs.field(factory=dict)
    request_log: Any = None  # a text file or None

    _rv: int = attrs.field(default=1, init=False)
    _write_lock: asyncio.Lock = attrs.field(factory=asyncio.Lock, init=False)
    # object key -> {field path -> (manager, operation)}: who owns which field (server-side apply)
    _owners: dict[Any, dict[Path, tuple[str, str]]] = attrs.field(factory=dict, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        self._buses = collections.defaultdict(lambda: LoggedBus(next_rv=self._next_rv))
        for res in self.served.values():
            register(self, res)

    def _next_rv(self) -> str:
        self._rv += 1
        return str(self._rv)

    def _res(self, request: kmock.Request) -> Res:
        assert request.resource is not None
        res = self.served.get(request.resource)
        if res is None:  # not pre-registered: kmock serves it anyway; guess the rest
            res = Res(request.resource.group or '', request.resource.version or '',
                      request.resource.plural or '', (request.resource.plural or '').capitalize(),
                      namespaced=request.namespace is not None)
        return res

    # ---- errors ----------------------------------------------------------------------------------

    async def _render_error(self, exc: Exception) -> aiohttp.web.StreamResponse:
        if isinstance(exc, kmock.KubernetesError):
            reason = exc.reason
            for cls, real_reason in KMOCK_REASONS:
                if isinstance(exc, cls):
                    reason = real_reason
            if exc.status == 409 and reason not in ('Conflict',):
                reason = 'AlreadyExists'  # kmock's KubernetesObjectConflictError on create
            return aiohttp.web.json_response({
                'apiVersion': 'v1', 'kind': 'Status', 'metadata': {}, 'status': 'Failure',
                'code': exc.status, 'reason': reason, 'message': exc.message or reason,
            }, status=exc.status)
        return await super()._render_error(exc)

    # ---- request log ---------------------------------------------------------------------------

    def _log(self, request: kmock.Request, status: int | None) -> None:
        if self.request_log is None:
            return
        raw = request._raw_request
        record = {
            'method': str(request.method.value if request.method else ''),
            'path': raw.path if raw is not None else str(request.url.path),
            'query': raw.query_string if raw is not None else request.url.query_string,
            'contentType': request.headers.get('Content-Type', ''),
            'action': request.action.value if request.action is not None else None,
            'subresource': request.subresource,
            'status': status,
            'body': request.data if isinstance(request.data, (dict, list)) else None,
        }
        self.request_log.write(json.dumps(record, sort_keys=True) + '\n')
        self.request_log.flush()

    # ---- dispatch ------------------------------------------------------------------------------

    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        if request.action == kmock.action.WATCH:
            self._log(request, 200)
            return await super()._handle(request)
        status: int | None = 500
        try:
            response = await self._handle_one(request)
            status = response.status
            return response
        except kmock.KubernetesError as e:
            status = e.status
            raise
        finally:
            self._log(request, status)

    async def _handle_one(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        is_write = request.resource is not None and request.method.value in ('POST', 'PUT', 'PATCH', 'DELETE')
        if not is_write:
            return await super()._handle(request)
        async with self._write_lock:  # the read-check-write of one request is atomic
            prepared = self._prepare_write(request)
            if isinstance(prepared, aiohttp.web.StreamResponse):
                return prepared
            if prepared is not request:
                # kmock's views match requests by identity against the recorded ones.
                for index in range(len(self._requests) - 1, -1, -1):
                    if self._requests[index] is request:
                        self._requests[index] = prepared
                        break
            return await super()._handle(prepared)

    def _prepare_write(self, request: kmock.Request) -> kmock.Request | aiohttp.web.StreamResponse:
        res = self._res(request)
        method = request.method.value
        if method == 'POST' and request.name is None:
            return self._prepare_create(request, res, request.data, self._manager(request), 'Update')
        if request.name is None:
            raise ApiError(status=405, reason='MethodNotAllowed',
                           message=f"{method} on a collection is not supported by the emulator")
        if method == 'DELETE':
            return self._prepare_delete(request, res)
        if method in ('PUT', 'PATCH'):
            return self._prepare_update(request, res)
        raise ApiError(status=405, reason='MethodNotAllowed', message=f"{method} is not supported")

    def _manager(self, request: kmock.Request) -> str:
        if request.params.get('fieldManager'):
            return request.params['fieldManager']
        agent = request.headers.get('User-Agent', '') or 'unknown'
        return agent.split('/')[0] or 'unknown'

    def _key(self, request: kmock.Request, res: Res, name: str, namespace: str | None) -> Any:
        assert request.resource is not None
        return (request.resource, namespace if res.namespaced else None, name)

    # ---- create ------------------------------------------------------------------------------------

    def _prepare_create(self, request: kmock.Request, res: Res, data: Any,
                        manager: str, operation: str) -> kmock.Request:
        if not isinstance(data, dict):
            raise bad_request("the body of a create must be a JSON object")
        obj = copy.deepcopy(data)
        meta = obj.get('metadata') or {}
        obj['metadata'] = meta
        if not meta.get('name'):
            if not meta.get('generateName'):
                raise invalid("metadata.name: Required value: name or generateName is required")
            suffix = ''.join(random.choices(string.ascii_lowercase + string.digits, k=5))
            meta['name'] = meta['generateName'] + suffix
        if res.namespaced:
            if request.namespace and meta.get('namespace') and meta['namespace'] != request.namespace:
                raise bad_request("the namespace of the provided object does not match the namespace sent on the request")
            namespace = request.namespace or meta.get('namespace')
            if not namespace:
                raise bad_request("a namespace is required for a namespaced resource")
            meta['namespace'] = namespace
        else:
            namespace = None
            meta.pop('namespace', None)
        key = self._key(request, res, meta['name'], namespace)
        if key in self._objects and not self._objects[key].deleted:
            raise ApiError(status=409, reason='AlreadyExists',
                           message=f'{res.plural}.{res.group} "{meta["name"]}" already exists')
        obj.setdefault('apiVersion', res.api_version)
        obj.setdefault('kind', res.kind)
        for volatile in ('deletionTimestamp', 'deletionGracePeriodSeconds', 'managedFields'):
            meta.pop(volatile, None)
        meta['uid'] = str(uuid.uuid4())
        meta['creationTimestamp'] = now_rfc3339()
        if res.custom:
            meta['generation'] = 1
        if res.custom and 'status' in res.subresources:
            obj.pop('status', None)
        meta['resourceVersion'] = self._next_rv()
        self._owners[key] = {
            path: (manager, operation) for path in leaves(self._owned_part(obj))
        }
        return attrs.evolve(request, action=kmock.action.CREATE, data=obj,
                            namespace=namespace if res.namespaced else None, name=None)

    # ---- delete ------------------------------------------------------------------------------------

    def _prepare_delete(self, request: kmock.Request, res: Res) -> kmock.Request:
        assert request.name is not None
        key = self._key(request, res, request.name, request.namespace)
        if key not in self._objects or self._objects[key].deleted:
            raise not_found(f'{res.plural}.{res.group} "{request.name}"')
        current = self._objects[key].raw
        meta = current.get('metadata', {})
        body = request.data if isinstance(request.data, dict) else {}
        wanted_rv = (body.get('preconditions') or {}).get('resourceVersion')
        if wanted_rv and wanted_rv != meta.get('resourceVersion'):
            raise conflict("Precondition failed: resourceVersion does not match")
        if meta.get('finalizers') and not meta.get('deletionTimestamp'):
            # kmock then adds deletionTimestamp itself; give that change its own version.
            stamped = copy.deepcopy(current)
            stamped['metadata']['resourceVersion'] = self._next_rv()
            self._objects[key].history[-1] = stamped
        return request

    # ---- update: PUT and PATCH -------------------------------------------------------------------

    def _owned_part(self, obj: dict[str, Any]) -> dict[str, Any]:
        """The fields that have owners: all but identity and system-managed metadata."""
        result = without(obj, 'apiVersion', 'kind')
        meta = without(obj.get('metadata') or {}, 'name', 'namespace', 'uid', 'resourceVersion',
                       'generation', 'creationTimestamp', 'deletionTimestamp', 'managedFields',
                       'generateName', 'deletionGracePeriodSeconds')
        if meta:
            result['metadata'] = meta
        else:
            result.pop('metadata', None)
        return result

    def _in_scope(self, path: Path, res: Res, subresource: str | None) -> bool:
        if subresource == 'status':
            return path[:1] == ('status',)
        if 'status' in res.subresources:
            return path[:1] != ('status',)
        return True

    def _prepare_update(self, request: kmock.Request, res: Res) -> kmock.Request | aiohttp.web.StreamResponse:
        assert request.name is not None
        method = request.method.value
        content_type = request.headers.get('Content-Type', '').split(';')[0].strip().lower()
        subresource = request.subresource
        if subresource not in (None, 'status') or (subresource == 'status' and 'status' not in res.subresources):
            raise not_found(f"the subresource {subresource!r} of {res.plural}")
        key = self._key(request, res, request.name, request.namespace)
        exists = key in self._objects and not self._objects[key].deleted
        is_apply = method == 'PATCH' and content_type == 'application/apply-patch+yaml'
        data = request.data
        if is_apply and data is None and request.text.strip():
            raise bad_request("apply bodies must be JSON (YAML is not parsed by the emulator)")
        if is_apply and not request.params.get('fieldManager'):
            raise invalid("fieldManager: Required value: is required for apply patch")

        if not exists:
            if is_apply and subresource is None:  # server-side apply creates
                created = self._prepare_create(request, res, data, request.params['fieldManager'], 'Apply')
                return created
            raise not_found(f'{res.plural}.{res.group} "{request.name}"')

        current: dict[str, Any] = copy.deepcopy(self._objects[key].raw)
        owners = self._owners.setdefault(key, {})
        manager = self._manager(request)
        cur_meta = current.get('metadata', {})

        if method == 'PUT':
            if not isinstance(data, dict):
                raise bad_request("the body of a replace must be a JSON object")
            if (data.get('metadata') or {}).get('name', request.name) != request.name:
                raise bad_request("the name of the object does not match the name on the URL")
            if res.custom and not (data.get('metadata') or {}).get('resourceVersion'):
                raise invalid("metadata.resourceVersion: Invalid value: 0x0: must be specified for an update")
            new = copy.deepcopy(data)
            new_fields_by: tuple[str, str] | None = None
        elif is_apply:
            if not isinstance(data, dict):
                raise bad_request("an apply body must be a JSON object")
            new = self._apply(current, data, owners, request, res, manager)
            new_fields_by = (manager, 'Apply')
        elif content_type in ('application/merge-patch+json', 'application/strategic-merge-patch+json'):
            if not isinstance(data, dict):
                raise bad_request("a merge patch must be a JSON object")
            new = merge_patch(current, data)
            new_fields_by = None
        elif content_type == 'application/json-patch+json':
            if not isinstance(data, list):
                raise bad_request("a JSON patch must be a JSON array")
            new_fields_by = None
            try:
                new = jsonpatch.apply_patch(current, data, in_place=False)
            except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException) as e:
                raise invalid(f"the JSON patch failed: {e}")
        else:
            raise ApiError(status=415, reason='UnsupportedMediaType',
                           message=f"the body of the request was in an unknown format: {content_type!r}")

        # Optimistic concurrency: a resourceVersion that the client sent must be the current one.
        given_rv = (new.get('metadata') or {}).get('resourceVersion')
        if given_rv and given_rv != cur_meta.get('resourceVersion'):
            raise conflict(f'Operation cannot be fulfilled on {res.plural}.{res.group} "{request.name}":'
                           ' the object has been modified; please apply your changes to the latest'
                           ' version and try again')

        # The status subresource: each endpoint changes only its own half.
        if subresource == 'status':
            result = copy.deepcopy(current)
            if 'status' in new:
                result['status'] = new['status']
            else:
                result.pop('status', None)
        else:
            result = new
            if 'status' in res.subresources:
                if 'status' in current:
                    result['status'] = copy.deepcopy(current['status'])
                else:
                    result.pop('status', None)

        # System metadata stays what the server says.
        meta = result.setdefault('metadata', {})
        if not isinstance(meta, dict):
            raise bad_request("metadata must be an object")
        for field in ('name', 'namespace', 'uid', 'creationTimestamp', 'generation', 'deletionTimestamp'):
            if field in cur_meta:
                meta[field] = cur_meta[field]
            else:
                meta.pop(field, None)
        result['apiVersion'] = current.get('apiVersion', res.api_version)
        result['kind'] = current.get('kind', res.kind)
        if meta.get('deletionTimestamp') and set(meta.get('finalizers') or []) - set(cur_meta.get('finalizers') or []):
            raise invalid("metadata.finalizers: Forbidden: no new finalizers can be added if the object is being deleted")

        if strip_volatile(result) == strip_volatile(current):
            return aiohttp.web.json_response(current)  # a no-op: no new version, no watch event

        if res.custom and without(result, 'metadata', 'status') != without(current, 'metadata', 'status'):
            meta['generation'] = int(cur_meta.get('generation', 1)) + 1
        meta['resourceVersion'] = self._next_rv()

        # Field ownership after a non-apply write: changed fields go to this manager's "Update".
        if new_fields_by is None:
            old_leaves = leaves(self._owned_part(current))
            new_leaves = leaves(self._owned_part(result))
            for path in list(owners):
                if path not in new_leaves:
                    del owners[path]
            for path, value in new_leaves.items():
                if old_leaves.get(path, MISSING) != value:
                    owners[path] = (manager, 'Update')

        return attrs.evolve(request, action=kmock.action.UPDATE, data=merge_diff(current, result))

    def _apply(self, current: dict[str, Any], config: dict[str, Any], owners: dict[Path, tuple[str, str]],
               request: kmock.Request, res: Res, manager: str) -> dict[str, Any]:
        """Server-side apply, simplified: one owner per leaf field; lists are atomic."""
        force = request.params.get('force') == 'true'
        me = (manager, 'Apply')
        config_meta = config.get('metadata') or {}
        if config_meta.get('name') not in (None, request.name):
            raise bad_request("the name of the object does not match the name on the URL")
        wanted = {
            path: value for path, value in leaves(self._owned_part(config)).items()
            if self._in_scope(path, res, request.subresource)
        }
        conflicts = [
            (path, owner) for path, value in wanted.items()
            for owner in [owners.get(path)]
            if owner is not None and owner != me
            if get_path(current, path) is not MISSING and get_path(current, path) != value
        ]
        if conflicts and not force:
            details = '; '.join(f'conflict with "{owner[0]}" ({owner[1]}): .{".".join(path)}'
                                for path, owner in conflicts)
            raise conflict(f"Apply failed with {len(conflicts)} conflict(s): {details}")
        result = copy.deepcopy(current)
        for path, owner in list(owners.items()):  # fields this manager applied before but not now
            if owner == me and path not in wanted and self._in_scope(path, res, request.subresource):
                del_path(result, path)
                del owners[path]
        for path, value in wanted.items():
            set_path(result, path, value)
            owners[path] = me
        if 'resourceVersion' in config_meta:
            result.setdefault('metadata', {})['resourceVersion'] = config_meta['resourceVersion']
        return result

    # ---- reads: list & watch -----------------------------------------------------------------------

    def _selected(self, request: kmock.Request) -> Callable[[dict[str, Any]], bool]:
        labels = parse_selector(request.params.get('labelSelector'))
        fields = parse_selector(request.params.get('fieldSelector'))

        def check(obj: dict[str, Any]) -> bool:
            meta = obj.get('metadata') or {}
            if request.namespace is not None and meta.get('namespace') != request.namespace:
                return False
            if request.name is not None and meta.get('name') != request.name:
                return False
            field_values = {'metadata.name': meta.get('name', ''), 'metadata.namespace': meta.get('namespace', '')}
            return (selector_matches(labels, {k: str(v) for k, v in (meta.get('labels') or {}).items()})
                    and selector_matches(fields, field_values))
        return check

    def _current_objects(self, request: kmock.Request) -> list[dict[str, Any]]:
        check = self._selected(request)
        items = [
            obj.raw for (resource, _, _), obj in self._objects.items()
            if resource == request.resource and not obj.deleted
        ]
        items = [item for item in items if check(item)]
        items.sort(key=lambda o: ((o.get('metadata') or {}).get('namespace') or '', o['metadata'].get('name', '')))
        return items

    async def _serve_list(self, request: kmock.Request) -> kmock.Payload:
        res = self._res(request)
        if request.resource not in self.served and not any(k[0] == request.resource for k in self._objects):
            raise not_found(f"the resource {res.plural}.{res.group}")
        async with self._lock:
            items = self._current_objects(request)
            rv = str(self._rv)
        return {'apiVersion': res.api_version, 'kind': f'{res.kind}List',
                'metadata': {'resourceVersion': rv}, 'items': items}

    async def _serve_watch(self, request: kmock.Request) -> AsyncIterator[kmock.Payload]:
        res = self._res(request)
        check = self._selected(request)
        params = request.params
        since = params.get('resourceVersion', '')
        initial = params.get('sendInitialEvents') == 'true'
        try:
            timeout = float(params['timeoutSeconds']) if params.get('timeoutSeconds') else None
        except ValueError:
            raise bad_request("timeoutSeconds must be a number")
        assert request.resource is not None
        bus = self._buses[request.resource]
        yield b''  # send the headers now, as kmock does

        async with self._lock:  # a consistent snapshot + the live position right after it
            mark = await bus.mark()
            if since.isdigit() and int(since) > 0 and not initial:
                backlog = [event for rv, event in bus.log if rv > int(since)]
            else:
                backlog = [{'type': 'ADDED', 'object': obj} for obj in self._current_objects(request)]
            current_rv = str(self._rv)
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        stream = bus.stream(since=mark).__aiter__()
        try:
            for event in backlog:
                if check(event['object']):
                    yield event
            if initial:
                yield {'type': 'BOOKMARK', 'object': {
                    'apiVersion': res.api_version, 'kind': res.kind,
                    'metadata': {'resourceVersion': current_rv,
                                 'annotations': {'k8s.io/initial-events-end': 'true'}}}}
            while True:
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    break
                try:
                    event = await asyncio.wait_for(anext(stream), remaining)
                except (asyncio.TimeoutError, StopAsyncIteration):
                    break
                if isinstance(event, dict) and check(event.get('object') or {}):
                    yield event
        finally:
            try:
                await bus.unmark(mark)
            except ValueError:
                pass


# --------------------------------------------------------------------------------------------------
# Process plumbing.


def write_port_file(path: str, port: int) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, 'w') as f:
        f.write(f"{port}\n")
    os.replace(tmp, path)


def load_seed(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        data = json.load(f)
    items = data.get('items', []) if isinstance(data, dict) else data
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise SystemExit(f"{path}: expected a JSON list of objects or {{\"items\": [...]}}")
    return items


def seed_url(obj: dict[str, Any], resources: list[Res]) -> str:
    for res in resources:
        if res.api_version == obj.get('apiVersion') and res.kind == obj.get('kind'):
            base = f"/apis/{res.group}/{res.version}" if res.group else f"/api/{res.version}"
            if res.namespaced:
                ns = (obj.get('metadata') or {}).get('namespace') or 'default'
                return f"{base}/namespaces/{ns}/{res.plural}"
            return f"{base}/{res.plural}"
    raise SystemExit(f"seed: no registered resource for {obj.get('apiVersion')}/{obj.get('kind')}")


async def serve(args: argparse.Namespace) -> int:
    resources = BUILTIN_RESOURCES + list(args.resource)
    request_log = open(args.request_log, 'a', encoding='utf-8') if args.request_log else None
    emulator: kmock.KubernetesEmulator
    if args.vanilla:
        emulator = kmock.KubernetesEmulator()
        for res in resources:
            register(emulator, res)
    else:
        emulator = JanitorEmulator(served={res.key: res for res in resources}, request_log=request_log)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    if not args.ignore_stdin:
        def watch_stdin() -> None:
            try:
                # os.read, not sys.stdin: a daemon thread blocked in a buffered read
                # aborts the interpreter at exit.
                while os.read(0, 65536):
                    pass
            except (OSError, ValueError):
                pass
            loop.call_soon_threadsafe(stop.set)
        threading.Thread(target=watch_stdin, name='stdin-eof', daemon=True).start()

    async with emulator, kmock.Server(emulator, host='127.0.0.1', port=args.port or None) as server:
        for obj in load_seed(args.seed) if args.seed else []:
            async with server.client.post(seed_url(obj, resources), json=obj) as resp:
                if resp.status >= 300:
                    raise SystemExit(f"seed: {resp.status} {await resp.text()}")
        write_port_file(args.port_file, server.port)
        print(f"k8s_emulator: serving on http://127.0.0.1:{server.port}", file=sys.stderr, flush=True)
        await stop.wait()
        print("k8s_emulator: stopping", file=sys.stderr, flush=True)
        # Open watch streams would hold the shutdown; do not wait for them for long.
        loop.call_later(3, lambda: os._exit(0))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    parser.add_argument('--port-file', required=True, help="where to write the port once ready")
    parser.add_argument('--port', type=int, default=0, help="a fixed port (default: a free one)")
    parser.add_argument('--request-log', help="append a JSON line per request to this file")
    parser.add_argument('--seed', help="a JSON file of objects to create at start")
    parser.add_argument('--resource', action='append', default=[], type=parse_resource_spec,
                        help="GROUP/VERSION/PLURAL=Kind[,cluster][,status][,custom] (repeatable)")
    parser.add_argument('--ignore-stdin', action='store_true', help="do not exit when stdin closes")
    parser.add_argument('--vanilla', action='store_true', help="plain kmock, none of the additions")
    args = parser.parse_args(argv)
    try:
        return asyncio.run(serve(args))
    except KeyboardInterrupt:
        return 0


if __name__ == '__main__':
    sys.exit(main())

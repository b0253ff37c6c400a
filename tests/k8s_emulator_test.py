#!/usr/bin/env python3
"""Checks tests/k8s_emulator.py over real HTTP, the way kube-rs talks to an API server.

Run with the Python that has kmock installed:  python tests/k8s_emulator_test.py
No pytest. Exits non-zero on failure; the last line is "N passed, N failed".
The second half starts the helper with --vanilla (plain kmock) and pins down the
limits documented in tests/KMOCK.md, so a kmock upgrade that lifts one shows up.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import urllib.error
import urllib.request
from typing import Any, Callable

HERE = os.path.dirname(os.path.abspath(__file__))
HELPER = os.path.join(HERE, 'k8s_emulator.py')
GROUP = '/apis/pgw-janitor.dev/v1alpha1'
PGR = f'{GROUP}/namespaces/ns1/pushgatewayretentions'
LEASES = '/apis/coordination.k8s.io/v1/namespaces/ns1/leases'
EVENTS = '/apis/events.k8s.io/v1/namespaces/ns1/events'
SLICES = '/apis/discovery.k8s.io/v1/namespaces/ns1/endpointslices'
SECRETS = '/api/v1/namespaces/ns1/secrets'
APPLY = 'application/apply-patch+yaml'
MERGE = 'application/merge-patch+json'
STRATEGIC = 'application/strategic-merge-patch+json'
JSONPATCH = 'application/json-patch+json'

RESULTS = {'passed': 0, 'failed': 0}


class Emulator:
    """The helper as a child process: started on a free port, killed by PID."""

    def __init__(self, *extra: str) -> None:
        self.dir = tempfile.mkdtemp(prefix='k8s-emu-test-')
        self.port_file = os.path.join(self.dir, 'port')
        self.log_file = os.path.join(self.dir, 'requests.jsonl')
        self.proc = subprocess.Popen(
            [sys.executable, HELPER, '--port-file', self.port_file, '--request-log', self.log_file, *extra],
            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=open(os.path.join(self.dir, 'stderr'), 'w'),
        )
        deadline = time.monotonic() + 15
        while not os.path.exists(self.port_file):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"the emulator did not start: {open(os.path.join(self.dir, 'stderr')).read()}")
            time.sleep(0.05)
        self.base = f"http://127.0.0.1:{int(open(self.port_file).read())}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # by PID: the Popen object
        self.proc.wait(timeout=10)
        if self.proc.stdin:
            self.proc.stdin.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    def requests(self) -> list[dict[str, Any]]:
        if not os.path.exists(self.log_file):
            return []
        with open(self.log_file) as f:
            return [json.loads(line) for line in f if line.strip()]

    def call(self, method: str, path: str, body: Any = None, content_type: str = 'application/json',
             timeout: float = 5) -> tuple[int, Any]:
        data = None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(self.base + path, data=data, method=method)
        if data is not None:
            req.add_header('Content-Type', content_type)
        req.add_header('Accept', 'application/json')
        try:
            with urllib.request.urlopen(req, timeout=timeout) as resp:
                return resp.status, json.loads(resp.read() or b'null')
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw)
            except ValueError:
                return e.code, raw.decode(errors='replace')

    def watch(self, path: str, seconds: float) -> 'Watch':
        return Watch(self.base + path, seconds)


class Watch:
    """Reads a watch stream line by line in a thread, for at most `seconds`."""

    def __init__(self, url: str, seconds: float) -> None:
        self.events: list[dict[str, Any]] = []
        self.ended_by_server = False
        self.error: str | None = None
        self.opened = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(url, seconds), daemon=True)
        self.thread.start()
        self.opened.wait(5)

    def _run(self, url: str, seconds: float) -> None:
        try:
            with urllib.request.urlopen(url, timeout=seconds) as resp:
                self.opened.set()
                deadline = time.monotonic() + seconds
                while time.monotonic() < deadline:
                    line = resp.readline()
                    if not line:
                        self.ended_by_server = True
                        return
                    if line.strip():
                        self.events.append(json.loads(line))
        except Exception as e:  # the socket timeout ends a stream the server keeps open
            self.error = repr(e)
        finally:
            self.opened.set()

    def wait_for(self, predicate: Callable[[list[dict[str, Any]]], bool], seconds: float = 5) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if predicate(self.events):
                return True
            time.sleep(0.05)
        return predicate(self.events)

    def types(self) -> list[tuple[str, str]]:
        return [(e['type'], e['object'].get('metadata', {}).get('name', '')) for e in self.events]


def check(name: str, fn: Callable[[], None]) -> None:
    try:
        fn()
    except Exception:
        RESULTS['failed'] += 1
        print(f"FAIL {name}\n{traceback.format_exc()}", flush=True)
    else:
        RESULTS['passed'] += 1
        print(f"ok   {name}", flush=True)


def eq(actual: Any, expected: Any, what: str = '') -> None:
    if actual != expected:
        raise AssertionError(f"{what}: expected {expected!r}, got {actual!r}")


def pgr(name: str, ttl: str = '1h', labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {'name': name}
    if labels:
        meta['labels'] = labels
    return {'apiVersion': 'pgw-janitor.dev/v1alpha1', 'kind': 'PushgatewayRetention',
            'metadata': meta, 'spec': {'ttl': ttl}}


def status_apply(status: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {'apiVersion': 'pgw-janitor.dev/v1alpha1', 'kind': 'PushgatewayRetention', 'status': status, **extra}


# ------------------------------------------------------------------------------------------------
# The helper (kmock + the additions).


def helper_tests(emu: Emulator) -> None:
    def discovery() -> None:
        code, body = emu.call('GET', '/api')
        eq((code, body.get('versions')), (200, ['v1']), '/api')
        code, body = emu.call('GET', '/apis')
        groups = {g['name'] for g in body['groups']}
        for group in ('pgw-janitor.dev', 'coordination.k8s.io', 'events.k8s.io', 'discovery.k8s.io'):
            assert group in groups, (group, groups)
        code, body = emu.call('GET', GROUP)
        eq(code, 200, GROUP)
        by_name = {r['name']: r for r in body['resources']}
        eq(by_name['pushgatewayretentions']['kind'], 'PushgatewayRetention')
        eq(by_name['pushgatewayretentions']['namespaced'], True)
        eq(by_name['pushgatewayretentions']['shortNames'], ['pgr'])
        assert 'pushgatewayretentions/status' in by_name, by_name
        code, body = emu.call('GET', '/api/v1')
        eq(code, 200, '/api/v1')
        assert {'secrets', 'events', 'services', 'namespaces'} <= {r['name'] for r in body['resources']}
    check('discovery: /api, /apis, /apis/pgw-janitor.dev/v1alpha1, /api/v1', discovery)

    state: dict[str, Any] = {}

    def create_and_list() -> None:
        state['watch_all'] = emu.watch(f'{PGR}?watch=true&timeoutSeconds=20&allowWatchBookmarks=true', 20)
        code, obj = emu.call('POST', PGR, pgr('a') | {'status': {'ignored': True}})
        eq(code, 200, 'create')
        meta = obj['metadata']
        eq(meta['namespace'], 'ns1', 'namespace from the URL')
        assert meta['resourceVersion'].isdigit() and meta['uid'] and meta['creationTimestamp'], meta
        eq(meta['generation'], 1, 'generation')
        assert 'status' not in obj, 'a create drops .status of a resource with a status subresource'
        code, body = emu.call('POST', PGR, pgr('a'))
        eq((code, body['reason']), (409, 'AlreadyExists'), 'duplicate create')
        code, lst = emu.call('GET', f'{PGR}?&limit=500')
        eq(code, 200, 'list')
        eq(lst['kind'], 'PushgatewayRetentionList')
        eq([i['metadata']['name'] for i in lst['items']], ['a'])
        assert int(lst['metadata']['resourceVersion']) >= int(meta['resourceVersion']), lst['metadata']
        state['list_rv'] = lst['metadata']['resourceVersion']
        code, got = emu.call('GET', f'{PGR}/a')
        eq((code, got['metadata']['uid']), (200, meta['uid']), 'get')
        code, body = emu.call('GET', f'{PGR}/nope')
        eq((code, body['reason']), (404, 'NotFound'), 'get missing')
        code, body = emu.call('GET', f'{GROUP}/namespaces/other/pushgatewayretentions')
        eq((code, body['items']), (200, []), 'other namespace')
        code, body = emu.call('GET', f'{GROUP}/pushgatewayretentions')
        eq(len(body['items']), 1, 'all namespaces')
    check('create (POST) / list with resourceVersion / get / 409 AlreadyExists / 404 NotFound', create_and_list)

    def watch_like_kube_runtime() -> None:
        # kube-runtime: list, then watch from the list's resourceVersion.
        w = emu.watch(f"{PGR}?&watch=true&timeoutSeconds=290&allowWatchBookmarks=true"
                      f"&resourceVersion={state['list_rv']}", 10)
        time.sleep(0.3)
        eq(w.events, [], 'no replay of what the list already had')
        code, _ = emu.call('PATCH', f'{PGR}/a', {'spec': {'ttl': '2h'}}, MERGE)
        eq(code, 200, 'merge patch')
        assert w.wait_for(lambda ev: len(ev) >= 1), w.types()
        eq(w.types()[0], ('MODIFIED', 'a'))
        eq(w.events[0]['object']['spec']['ttl'], '2h')
        assert w.events[0]['object']['metadata']['resourceVersion'] > '', 'events carry resourceVersion'
        state['w_resume'] = w
    check('watch ?watch=true&timeoutSeconds=290&allowWatchBookmarks=true&resourceVersion=N', watch_like_kube_runtime)

    def status_apply_and_generation() -> None:
        code, before = emu.call('GET', f'{PGR}/a')
        gen = before['metadata']['generation']
        eq(gen, 2, 'the spec change bumped generation')
        path = f'{PGR}/a/status?&fieldManager=pgw-janitor&force=true'
        code, obj = emu.call('PATCH', path, status_apply({'phase': 'Ready', 'lastError': 'boom',
                                                          'observedGeneration': gen},
                                                         spec={'ttl': 'ignored-on-status'}), APPLY)
        eq(code, 200, 'status apply')
        eq(obj['status'], {'phase': 'Ready', 'lastError': 'boom', 'observedGeneration': 2})
        eq(obj['spec']['ttl'], '2h', '/status does not change spec')
        eq(obj['metadata']['generation'], 2, 'a status change does not bump generation')
        rv = obj['metadata']['resourceVersion']
        # Re-applying without lastError removes it (the manager owned it).
        code, obj = emu.call('PATCH', path, status_apply({'phase': 'Ready', 'observedGeneration': 2}), APPLY)
        eq(obj['status'], {'phase': 'Ready', 'observedGeneration': 2}, 'a field dropped from the apply')
        # The very same apply again is a no-op: no new resourceVersion.
        rv2 = obj['metadata']['resourceVersion']
        assert int(rv2) > int(rv)
        code, obj = emu.call('PATCH', path, status_apply({'phase': 'Ready', 'observedGeneration': 2}), APPLY)
        eq(obj['metadata']['resourceVersion'], rv2, 'no-op apply keeps resourceVersion')
        # Status through the main resource is ignored.
        code, obj = emu.call('PATCH', f'{PGR}/a', {'status': {'phase': 'Hacked'}}, MERGE)
        eq(obj['status']['phase'], 'Ready', 'the main resource does not change status')
        # Apply without fieldManager is invalid; a YAML (non-JSON) body is rejected, not ignored.
        code, body = emu.call('PATCH', f'{PGR}/a/status', status_apply({'phase': 'x'}), APPLY)
        eq((code, body['reason']), (422, 'Invalid'), 'apply without fieldManager')
        req = urllib.request.Request(emu.base + path, data=b'status:\n  phase: Yaml\n', method='PATCH',
                                     headers={'Content-Type': APPLY})
        try:
            urllib.request.urlopen(req, timeout=5)
            raise AssertionError('a YAML body was accepted')
        except urllib.error.HTTPError as e:
            eq(e.code, 400, 'YAML apply body')
        code, obj = emu.call('GET', f'{PGR}/a')
        eq(obj['status']['phase'], 'Ready')
        log = [r for r in emu.requests() if r['subresource'] == 'status' and r['method'] == 'PATCH']
        assert any(r['status'] == 200 and r['contentType'] == APPLY
                   and r['query'] == '&fieldManager=pgw-janitor&force=true' for r in log), log
    check('PATCH /status apply-patch+yaml ?fieldManager=pgw-janitor&force=true; generation', status_apply_and_generation)

    def apply_conflicts() -> None:
        path = f'{PGR}/a/status?fieldManager=other'
        code, body = emu.call('PATCH', path, status_apply({'phase': 'Stolen'}), APPLY)
        eq((code, body['reason']), (409, 'Conflict'), 'non-forced apply over another manager')
        assert 'pgw-janitor' in body['message'], body
        code, obj = emu.call('PATCH', path + '&force=true', status_apply({'phase': 'Stolen'}), APPLY)
        eq((code, obj['status']['phase']), (200, 'Stolen'), 'forced apply')
        code, obj = emu.call('PATCH', f'{PGR}/a/status?fieldManager=pgw-janitor&force=true',
                             status_apply({'phase': 'Ready', 'observedGeneration': 2}), APPLY)
        eq(obj['status']['phase'], 'Ready')
        # Apply to a missing object creates it; to /status of a missing object: 404.
        code, obj = emu.call('PATCH', f'{PGR}/b?fieldManager=test', pgr('b'), APPLY)
        eq((code, obj['metadata']['name'], obj['metadata']['generation']), (200, 'b', 1), 'apply creates')
        code, body = emu.call('PATCH', f'{PGR}/zzz/status?fieldManager=test', status_apply({}), APPLY)
        eq(code, 404, 'apply to /status of a missing object')
    check('server-side apply: conflicts between managers, force, create by apply', apply_conflicts)

    def merge_json_put() -> None:
        code, obj = emu.call('GET', f'{PGR}/b')
        rv = obj['metadata']['resourceVersion']
        code, body = emu.call('PATCH', f'{PGR}/b', {'metadata': {'resourceVersion': '1'}, 'spec': {'ttl': '9h'}}, MERGE)
        eq((code, body['reason']), (409, 'Conflict'), 'stale resourceVersion in a merge patch')
        code, obj = emu.call('PATCH', f'{PGR}/b', {'metadata': {'resourceVersion': rv, 'labels': {'x': 'y'}}}, MERGE)
        eq((code, obj['metadata']['labels']), (200, {'x': 'y'}), 'current resourceVersion')
        eq(obj['metadata']['generation'], 1, 'a label change does not bump generation')
        code, obj = emu.call('PATCH', f'{PGR}/b', [{'op': 'add', 'path': '/spec/extra', 'value': 1}], JSONPATCH)
        eq((code, obj['spec']['extra'], obj['metadata']['generation']), (200, 1, 2), 'JSON patch')
        code, body = emu.call('PATCH', f'{PGR}/b', [{'op': 'test', 'path': '/spec/extra', 'value': 2}], JSONPATCH)
        eq(code, 422, 'failed JSON-patch test op')
        code, body = emu.call('PUT', f'{PGR}/b', pgr('b', '5h'))
        eq((code, body['reason']), (422, 'Invalid'), 'PUT of a custom resource needs resourceVersion')
        put = pgr('b', '5h')
        put['metadata']['resourceVersion'] = obj['metadata']['resourceVersion']
        code, obj = emu.call('PUT', f'{PGR}/b', put)
        eq((code, obj['spec'], obj['metadata']['generation']), (200, {'ttl': '5h'}, 3), 'PUT replaces')
        code, body = emu.call('PUT', f'{PGR}/b', put)
        eq((code, body['reason']), (409, 'Conflict'), 'PUT with a stale resourceVersion')
        code, body = emu.call('PATCH', f'{PGR}/b', {'spec': {}}, 'application/json')
        eq(code, 415, 'PATCH with an unknown content type')
    check('merge-patch+json, json-patch+json, PUT, 409 on stale resourceVersion', merge_json_put)

    def delete_and_events() -> None:
        code, obj = emu.call('DELETE', f'{PGR}/b', {'propagationPolicy': 'Background'})
        eq((code, obj['metadata']['name']), (200, 'b'), 'delete')
        code, _ = emu.call('GET', f'{PGR}/b')
        eq(code, 404, 'gone')
        code, body = emu.call('DELETE', f'{PGR}/b')
        eq((code, body['reason']), (404, 'NotFound'), 'delete again')
        # Finalizers: DELETE marks, removing the last finalizer deletes.
        emu.call('PATCH', f'{PGR}/a', {'metadata': {'finalizers': ['pgw-janitor.dev/cleanup']}}, MERGE)
        code, obj = emu.call('DELETE', f'{PGR}/a')
        assert obj['metadata'].get('deletionTimestamp'), obj
        code, _ = emu.call('GET', f'{PGR}/a')
        eq(code, 200, 'still there while finalized')
        emu.call('PATCH', f'{PGR}/a', {'metadata': {'finalizers': None}}, MERGE)
        code, _ = emu.call('GET', f'{PGR}/a')
        eq(code, 404, 'gone after the finalizer is removed')
        w = state['watch_all']
        assert w.wait_for(lambda ev: ('DELETED', 'a') in [(e['type'], e['object']['metadata']['name']) for e in ev]), w.types()
        types = w.types()
        eq(types[0], ('ADDED', 'a'))
        assert ('MODIFIED', 'a') in types and ('DELETED', 'b') in types and ('ADDED', 'b') in types, types
        rvs = [int(e['object']['metadata']['resourceVersion']) for e in w.events]
        eq(rvs, sorted(rvs), 'resourceVersions grow along the stream')
        eq(len(set(rvs)), len(rvs), 'every event has its own resourceVersion')
    check('DELETE, finalizers, watch gets ADDED/MODIFIED/DELETED', delete_and_events)

    def watch_resume_and_timeout() -> None:
        # Resuming from a resourceVersion replays exactly the later events.
        first = state['watch_all'].events
        mid = first[1]['object']['metadata']['resourceVersion']
        w = emu.watch(f'{GROUP}/pushgatewayretentions?watch=true&resourceVersion={mid}&timeoutSeconds=1', 5)
        assert w.wait_for(lambda ev: False, 1.5) is False
        eq([e['object']['metadata']['resourceVersion'] for e in w.events],
           [e['object']['metadata']['resourceVersion'] for e in first[2:]], 'replay after N')
        assert w.ended_by_server, 'timeoutSeconds=1 ends the stream'
        # No resourceVersion: synthetic ADDED for what exists now (nothing, all deleted).
        emu.call('POST', PGR, pgr('c'))
        w = emu.watch(f'{PGR}?watch=true&timeoutSeconds=1', 5)
        w.thread.join(5)
        eq(w.types(), [('ADDED', 'c')], 'initial ADDED')
        # Streaming lists (sendInitialEvents) end with the initial-events-end bookmark.
        w = emu.watch(f'{PGR}?watch=true&sendInitialEvents=true&resourceVersionMatch=NotOlderThan'
                      f'&allowWatchBookmarks=true&timeoutSeconds=1', 5)
        w.thread.join(5)
        eq([e['type'] for e in w.events], ['ADDED', 'BOOKMARK'])
        eq(w.events[1]['object']['metadata']['annotations'], {'k8s.io/initial-events-end': 'true'})
    check('watch resume from resourceVersion, timeoutSeconds, sendInitialEvents bookmark', watch_resume_and_timeout)

    def secrets_and_events() -> None:
        secret = {'apiVersion': 'v1', 'kind': 'Secret', 'metadata': {'name': 'creds'},
                  'type': 'Opaque', 'data': {'password': 'aHVudGVyMg=='}}
        code, _ = emu.call('POST', SECRETS, secret)
        eq(code, 200, 'create secret')
        code, obj = emu.call('GET', f'{SECRETS}/creds')
        eq((code, obj['data']['password']), (200, 'aHVudGVyMg=='), 'get secret')
        # kube-runtime's Recorder: POST a new event, then a merge PATCH for a repeat (series).
        event = {'apiVersion': 'events.k8s.io/v1', 'kind': 'Event',
                 'metadata': {'name': 'a.18b0c0ffee', 'namespace': 'ns1'},
                 'eventTime': '2026-01-01T00:00:00.000000Z', 'action': 'Sweep', 'reason': 'Swept',
                 'note': 'deleted 3 groups', 'type': 'Normal', 'reportingController': 'pgw-janitor',
                 'reportingInstance': 'pgw-janitor-0',
                 'regarding': {'apiVersion': 'pgw-janitor.dev/v1alpha1', 'kind': 'PushgatewayRetention',
                               'name': 'a', 'namespace': 'ns1'}}
        code, obj = emu.call('POST', EVENTS, event)
        eq((code, obj['reason']), (200, 'Swept'), 'create event')
        code, obj = emu.call('PATCH', f'{EVENTS}/a.18b0c0ffee',
                             event | {'series': {'count': 2, 'lastObservedTime': '2026-01-01T00:01:00.000000Z'}}, MERGE)
        eq((code, obj['series']['count']), (200, 2), 'patch event series')
        code, obj = emu.call('POST', EVENTS, {'metadata': {'generateName': 'a.'}, 'reason': 'X'})
        assert code == 200 and obj['metadata']['name'].startswith('a.') and len(obj['metadata']['name']) == 7, obj
        code, obj = emu.call('POST', '/api/v1/namespaces/ns1/events', {'metadata': {'name': 'e1'}, 'reason': 'Old'})
        eq((code, obj['apiVersion'], obj['kind']), (200, 'v1', 'Event'), 'core v1 event')
        log = emu.requests()
        assert any(r['method'] == 'POST' and r['path'] == EVENTS and r['status'] == 200 for r in log), log
    check('Secrets get; events.k8s.io/v1 and v1 Events create + PATCH', secrets_and_events)

    def leases() -> None:
        # kube-lease-manager: GET (404), POST, apply (no force) to lock, strategic merge to renew.
        code, body = emu.call('GET', f'{LEASES}/pgw-janitor')
        eq((code, body['reason']), (404, 'NotFound'), 'missing lease')
        code, obj = emu.call('POST', LEASES, {'metadata': {'name': 'pgw-janitor'}, 'spec': {}})
        eq(code, 200, 'create lease')
        code, body = emu.call('POST', LEASES, {'metadata': {'name': 'pgw-janitor'}, 'spec': {}})
        eq((code, body['reason']), (409, 'AlreadyExists'), 'lease exists')
        lock = lambda who: {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease', 'spec': {
            'acquireTime': f'2026-01-01T00:00:00.00000{len(who)}Z', 'renewTime': '2026-01-01T00:00:00.000000Z',
            'holderIdentity': who, 'leaseDurationSeconds': 15}}
        code, obj = emu.call('PATCH', f'{LEASES}/pgw-janitor?fieldManager=kube-lease-manager-pod-a', lock('pod-a'), APPLY)
        eq((code, obj['spec']['holderIdentity']), (200, 'pod-a'), 'pod-a locks')
        code, body = emu.call('PATCH', f'{LEASES}/pgw-janitor?fieldManager=kube-lease-manager-pod-bb', lock('pod-bb'), APPLY)
        eq((code, body['reason']), (409, 'Conflict'), 'pod-bb cannot lock')
        code, obj = emu.call('PATCH', f'{LEASES}/pgw-janitor?fieldManager=kube-lease-manager-pod-a',
                             {'apiVersion': 'coordination.k8s.io/v1', 'kind': 'Lease',
                              'spec': {'leaseTransitions': 1}}, STRATEGIC)
        eq((code, obj['spec']['leaseTransitions']), (200, 1), 'strategic merge patch')
        rv = obj['metadata']['resourceVersion']
        # Replace with resourceVersion (client-go style leader election): stale -> 409.
        put = dict(obj)
        put['spec'] = dict(obj['spec'], renewTime='2026-01-01T00:00:05.000000Z')
        code, obj2 = emu.call('PUT', f'{LEASES}/pgw-janitor', put)
        eq(code, 200, 'replace with the current resourceVersion')
        put['metadata'] = dict(put['metadata'], resourceVersion=rv)
        code, body = emu.call('PUT', f'{LEASES}/pgw-janitor', put)
        eq((code, body['reason']), (409, 'Conflict'), 'replace with a stale resourceVersion')
        code, body = emu.call('PATCH', f'{LEASES}/pgw-janitor',
                              {'metadata': {'resourceVersion': rv}, 'spec': {'holderIdentity': 'x'}}, MERGE)
        eq((code, body['reason']), (409, 'Conflict'), 'merge patch with a stale resourceVersion')
        # Release (nulls), then the other manager can lock without conflict.
        release = {'spec': {'acquireTime': None, 'renewTime': None, 'holderIdentity': None, 'leaseDurationSeconds': None}}
        code, obj = emu.call('PATCH', f'{LEASES}/pgw-janitor?fieldManager=kube-lease-manager-pod-a', release, STRATEGIC)
        eq((code, obj['spec']), (200, {'leaseTransitions': 1}), 'released')
        code, obj = emu.call('PATCH', f'{LEASES}/pgw-janitor?fieldManager=kube-lease-manager-pod-bb', lock('pod-bb'), APPLY)
        eq((code, obj['spec']['holderIdentity']), (200, 'pod-bb'), 'pod-bb locks after the release')
    check('Leases: get/create/apply lock/conflict/strategic patch/PUT with resourceVersion', leases)

    def endpoint_slices() -> None:
        def slice_(name: str, service: str, ip: str) -> dict[str, Any]:
            return {'apiVersion': 'discovery.k8s.io/v1', 'kind': 'EndpointSlice',
                    'metadata': {'name': name, 'labels': {'kubernetes.io/service-name': service}},
                    'addressType': 'IPv4', 'endpoints': [{'addresses': [ip], 'conditions': {'ready': True}}],
                    'ports': [{'name': 'http', 'port': 9091, 'protocol': 'TCP'}]}
        w = emu.watch(f'{SLICES}?watch=true&labelSelector=kubernetes.io%2Fservice-name%3Dpushgateway'
                      f'&timeoutSeconds=3', 5)
        emu.call('POST', SLICES, slice_('pushgateway-abcde', 'pushgateway', '10.0.0.1'))
        emu.call('POST', SLICES, slice_('other-fghij', 'other', '10.0.0.2'))
        emu.call('POST', SLICES, slice_('pushgateway-klmno', 'pushgateway', '10.0.0.3'))
        code, lst = emu.call('GET', f'{SLICES}?labelSelector=kubernetes.io%2Fservice-name%3Dpushgateway')
        eq(sorted(i['metadata']['name'] for i in lst['items']), ['pushgateway-abcde', 'pushgateway-klmno'], 'list =')
        code, lst = emu.call('GET', f'{SLICES}?labelSelector=kubernetes.io%2Fservice-name%21%3Dpushgateway')
        eq([i['metadata']['name'] for i in lst['items']], ['other-fghij'], 'list !=')
        code, lst = emu.call('GET', f'{SLICES}?labelSelector=kubernetes.io%2Fservice-name%20in%20%28a%2Cother%29')
        eq([i['metadata']['name'] for i in lst['items']], ['other-fghij'], 'list in (...)')
        code, lst = emu.call('GET', f'{SLICES}?fieldSelector=metadata.name%3Dother-fghij')
        eq([i['metadata']['name'] for i in lst['items']], ['other-fghij'], 'fieldSelector')
        assert w.wait_for(lambda ev: len(ev) >= 2), w.types()
        w.thread.join(5)
        eq(w.types(), [('ADDED', 'pushgateway-abcde'), ('ADDED', 'pushgateway-klmno')], 'watch by label')
    check('EndpointSlices: list/watch with labelSelector=kubernetes.io/service-name=NAME', endpoint_slices)

    def request_log() -> None:
        log = emu.requests()
        assert log and all({'method', 'path', 'query', 'contentType', 'status', 'action'} <= set(r) for r in log)
        watches = [r for r in log if r['action'] == 'WATCH']
        assert watches and watches[0]['status'] == 200, watches
    check('--request-log writes one JSON line per request', request_log)


# ------------------------------------------------------------------------------------------------
# Plain kmock 0.8 (--vanilla): the limits that made the additions necessary.


def vanilla_tests(emu: Emulator) -> None:
    def no_server_fields() -> None:
        w = emu.watch(f'{PGR}?watch=true&timeoutSeconds=1', 2.5)
        code, obj = emu.call('POST', PGR, pgr('a') | {'status': {'kept': True}})
        eq(code, 200)
        eq(obj['metadata'], {'name': 'a'}, 'no namespace/resourceVersion/uid/generation added')
        eq(obj['status'], {'kept': True}, 'create keeps status')
        code, lst = emu.call('GET', PGR)
        eq(lst['metadata']['resourceVersion'], '...', "the list's resourceVersion is the string '...'")
        assert 'kind' not in lst, lst
        w.thread.join(4)
        eq(w.events, [], 'a namespaced watch misses an object whose body had no metadata.namespace')
        assert not w.ended_by_server, 'timeoutSeconds is ignored'
    check('vanilla: no resourceVersion/uid/generation/namespace; namespaced watch misses the object', no_server_fields)

    def patching() -> None:
        code, obj = emu.call('PATCH', f'{PGR}/a/status?fieldManager=pgw-janitor&force=true',
                             status_apply({'phase': 'Ready'}, spec={'ttl': 'changed'}), APPLY)
        eq((code, obj['spec']['ttl'], obj['status']), (200, 'changed', {'kept': True, 'phase': 'Ready'}),
           'apply on /status is a plain merge into the whole object')
        code, obj = emu.call('PATCH', f'{PGR}/a', {'metadata': {'resourceVersion': '999'}}, MERGE)
        eq((code, obj['metadata'].get('resourceVersion')), (200, '999'), 'resourceVersion is just stored')
        code, body = emu.call('PUT', f'{PGR}/a', pgr('a'))
        eq(code, 404, 'PUT is not routed')
        code, body = emu.call('POST', PGR, pgr('a'))
        eq((code, body['reason']), (409, 'Object Already Exists'), 'not the AlreadyExists reason')
        code, body = emu.call('GET', f'{PGR}/nope')
        eq((code, body['reason']), (404, 'Object Not Found'), 'not the NotFound reason')
        code, body = emu.call('PATCH', f'{PGR}/nope?fieldManager=x', pgr('nope'), APPLY)
        eq(code, 404, 'apply does not create')
    check('vanilla: apply = merge, /status writes spec, PUT 404, non-standard reasons', patching)

    def watches() -> None:
        w = emu.watch(f'{GROUP}/pushgatewayretentions?watch=true&resourceVersion=12345', 1.5)
        w.thread.join(3)
        eq(w.types(), [('ADDED', 'a')], 'resourceVersion is ignored: the current objects are replayed as ADDED')
        emu.call('POST', SLICES, {'metadata': {'name': 's', 'namespace': 'ns1', 'labels': {'k': 'v'}}})
        code, lst = emu.call('GET', f'{SLICES}?labelSelector=k%3Dnope')
        eq(len(lst['items']), 1, 'labelSelector is ignored')
        code, body = emu.call('GET', '/api/v1')
        eq(body['groupVersion'], '/v1', 'core groupVersion is rendered as "/v1"')
    check('vanilla: watch ignores resourceVersion, lists ignore labelSelector', watches)


def main() -> int:
    for label, extra, tests in (('helper', (), helper_tests), ('vanilla kmock', ('--vanilla',), vanilla_tests)):
        print(f"--- {label}", flush=True)
        try:
            emu = Emulator(*extra)
        except Exception:
            RESULTS['failed'] += 1
            print(f"FAIL start {label}\n{traceback.format_exc()}", flush=True)
            continue
        try:
            tests(emu)
        finally:
            emu.stop()

    def stdin_eof() -> None:
        emu = Emulator()
        emu.proc.stdin.close()  # the test that started it is gone
        emu.proc.wait(timeout=10)
        emu.stop()
        eq(emu.proc.returncode, 0, 'exit code after stdin EOF')
    print("--- lifecycle", flush=True)

    def seed() -> None:
        seed_dir = tempfile.mkdtemp(prefix='k8s-emu-seed-')
        path = os.path.join(seed_dir, 'seed.json')
        with open(path, 'w') as f:
            json.dump({'items': [pgr('seeded') | {'metadata': {'name': 'seeded', 'namespace': 'ns1'}},
                                 {'apiVersion': 'v1', 'kind': 'Secret',
                                  'metadata': {'name': 's', 'namespace': 'ns1'}, 'data': {}}]}, f)
        emu = Emulator('--seed', path)
        try:
            eq(emu.call('GET', f'{PGR}/seeded')[0], 200, 'seeded custom resource')
            eq(emu.call('GET', f'{SECRETS}/s')[0], 200, 'seeded secret')
        finally:
            emu.stop()
            shutil.rmtree(seed_dir, ignore_errors=True)
    check('--seed creates the objects of a JSON file before the port file appears', seed)
    check('the helper exits when its stdin closes', stdin_eof)

    def sigterm() -> None:
        emu = Emulator()
        emu.proc.terminate()
        emu.proc.wait(timeout=10)
        emu.stop()
        eq(emu.proc.returncode, 0, 'exit code after SIGTERM')
    check('the helper exits on SIGTERM', sigterm)

    print(f"{RESULTS['passed']} passed, {RESULTS['failed']} failed", flush=True)
    return 1 if RESULTS['failed'] else 0


if __name__ == '__main__':
    sys.exit(main())

"""Release strategies on the local stack: how traffic moves from the stable version to a candidate.

- shadow:  stable answers every request; a copy goes to the candidate, whose answer is logged only;
- canary:  a share of requests goes to the candidate (again with a new share ramps it);
- switch:  blue-green, all traffic to the candidate at once, the version switched from kept running;
- promote: the candidate (or, after a switch, the version switched to) becomes the only stable version;
- rollback: all traffic back to the version that served before, with one nginx reload, and the other
  version recorded as rolled back in the registry (registry/versions.py), so the pipeline never pushes
  it again;
- restart: a new process for the stable version takes over from the old one.

`taxi-pipeline serve` (cli/serve.py) and the release API (serving/release_api.py, on the control listener)
both call these functions.

Each holds the stack's lock, starts what it needs before moving traffic (a version that fails to start
changes nothing), moves it with one nginx reload, and stops what no longer serves once it has drained.
"""

import dataclasses
import time

from registry import versions
from serving import processes, stack, stack_state, traffic
from serving.stack_state import BadArgument, StackError, StackPaths, UnknownVersion


def shadow(paths: StackPaths, version: str) -> dict:
    """Stable answers every request; a copy goes to `version`, whose answer is logged and discarded."""
    return _route_candidate(paths, version, "shadow", mode=traffic.SHADOW, canary_percent=0.0)


def canary(paths: StackPaths, version: str, percent: float) -> dict:
    """`percent` % of requests to `version` (sticky by X-Request-Key); again with a new share ramps it."""
    if not 0 < percent <= 100:
        raise BadArgument(
            "percent", f"a canary share is a percentage above 0 and at most 100, not {percent:g}"
        )
    return _route_candidate(paths, version, "canary", mode=traffic.CANARY, canary_percent=percent)


def switch(paths: StackPaths, version: str) -> dict:
    """Blue-green: all traffic to `version` at once; the version switched from keeps running, for a rollback."""
    _check_pushed(paths, version)
    with stack_state.locked(paths):
        state = stack.running_state(paths)
        green, replaced = _candidate_for(paths, state, version, "stable")
        blue = state["stable"]
        state.update(
            mode=traffic.BLUE_GREEN, stable=green, candidate=dict(blue, label="previous"), canary_percent=0.0
        )
        _move(paths, state)
    if replaced:
        stack.retire(replaced)
    return state


def promote(paths: StackPaths) -> dict:
    """The candidate becomes stable and takes all traffic; the old stable stops once drained. After a
    blue-green switch, confirms it: the version switched from stops."""
    with stack_state.locked(paths):
        state = stack.running_state(paths)
        candidate = state.get("candidate")
        if not candidate or state["mode"] == traffic.SINGLE:
            raise StackError("there is no canary, shadow or switch to promote")
        if state["mode"] == traffic.BLUE_GREEN:
            old, candidate = candidate, state["stable"]
        else:
            old = state["stable"]
        _single(state, candidate)
        _move(paths, state)
    stack.retire(old)
    return state


@dataclasses.dataclass
class Rollback:
    state: dict
    version: str  # the version rolled back
    seconds: float  # from the command to every new request answered by the version kept


def rollback(paths: StackPaths, reason: str) -> Rollback:
    """All traffic back to the version that served before (one reload), and the other version recorded as
    rolled back. The server rolled back from stops after its last requests drained."""
    started = time.monotonic()
    with stack_state.locked(paths):
        state = stack.running_state(paths)
        if state["mode"] == traffic.SINGLE or not state.get("candidate"):
            raise StackError("nothing to roll back: no canary, shadow or switch is live")
        mode = state["mode"]
        if mode == traffic.BLUE_GREEN:
            rejected, keep = state["stable"], state["candidate"]
        else:
            rejected, keep = state["candidate"], state["stable"]
        _single(state, keep)
        stack.apply_traffic(paths, state)
        seconds = time.monotonic() - started
        stack_state.write_state(paths, state)
        versions.reject(paths.serving_dir, rejected["version"], reason or f"rolled back from {mode}")
    stack.retire(rejected)
    return Rollback(state, rejected["version"], seconds)


def status(paths: StackPaths) -> dict:
    """What is live, each process checked, and the serving directory's production version and folders that
    are not whole (`serve status`, `GET /v1/releases`)."""
    return {**stack.status(paths), "serving_directory": versions.report(paths.serving_dir)}


def describe(state: dict) -> str:
    """Where traffic goes now, in a sentence."""
    stable, candidate = state["stable"]["version"], (state.get("candidate") or {}).get("version")
    return {
        traffic.SINGLE: f"all traffic to version {stable}",
        traffic.SHADOW: f"all traffic to version {stable}; a copy of each request to version {candidate}",
        traffic.CANARY: f"{state['canary_percent']:g} % of traffic to version {candidate}, the rest to {stable}",
        traffic.BLUE_GREEN: f"all traffic to version {stable}; version {candidate} kept running for a rollback",
    }[state["mode"]]


def restart_stable(paths: StackPaths) -> dict:
    """A new process for the stable version takes over (started, ready, then nginx switched to it); the
    old one stops after its last requests, closing its request log. No request fails."""
    with stack_state.locked(paths):
        state = stack.running_state(paths)
        old = state["stable"]
        state["stable"] = stack.start_server(paths, old["version"], "stable")
        _move(paths, state)
    stack.retire(old)
    return state


def _route_candidate(paths: StackPaths, version: str, label: str, **changes) -> dict:
    """`version` as the candidate, with the state's `changes` (mode, share); a candidate it replaces
    stops once drained."""
    _check_pushed(paths, version)
    with stack_state.locked(paths):
        state = stack.running_state(paths)
        candidate, replaced = _candidate_for(paths, state, version, label)
        state.update(candidate=candidate, **changes)
        _move(paths, state)
    if replaced:
        stack.retire(replaced)
    return state


def _check_pushed(paths: StackPaths, version: str) -> None:
    """UnknownVersion unless `version` is whole in the serving directory (whether the stack runs or not)."""
    if version not in versions.complete_versions(paths.serving_dir):
        raise UnknownVersion(f"version {version} is not a complete pushed version in {paths.serving_dir}")


def _candidate_for(paths: StackPaths, state: dict, version: str, label: str) -> tuple[dict, dict | None]:
    """(a server for `version` as the second slot, the candidate it replaces). The running candidate is
    reused if it serves `version`; a replaced one keeps serving until the caller has moved traffic, so a
    version that fails to start changes nothing."""
    if version == state["stable"]["version"]:
        raise StackError(f"version {version} is stable already")
    if versions.rollback_of_model(paths.serving_dir, versions.fingerprint(paths.serving_dir / version)):
        raise StackError(
            f"version {version} was rolled back; `taxi-pipeline rollback --undo {version}` first"
        )
    current = state.get("candidate")
    if current and current["version"] == version and processes.alive(current.get("pid")):
        return dict(current, label=label), None
    return stack.start_server(paths, version, label), current


def _single(state: dict, stable: dict) -> None:
    """`stable` alone takes all traffic."""
    state.update(mode=traffic.SINGLE, stable=dict(stable, label="stable"), candidate=None, canary_percent=0.0)


def _move(paths: StackPaths, state: dict) -> None:
    """Moves traffic as `state` says, and records it."""
    stack.apply_traffic(paths, state)
    stack_state.write_state(paths, state)

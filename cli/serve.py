"""`taxi-pipeline serve`: the local serving stack and its deployment patterns (docs/serving.md)."""

import json
import sys

from cli.common import BAD_INPUT_EXIT_CODE, add_folder_flags
from config import folders
from config import monitoring as monitoring_config
from config import serving as serving_config

INTERRUPTED_EXIT_CODE = 130  # as a shell reports a command that SIGINT ended


def _serve(args) -> int:
    from serving import stack

    settings = folders.Settings.resolve(args.output_dir)
    try:
        return ACTIONS[args.action](args, settings, stack.StackPaths.of(settings)) or 0
    except stack.StackError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    except KeyboardInterrupt:  # what the command had started is stopped by then
        print(f"interrupted: `taxi-pipeline serve {args.action}` did not finish", file=sys.stderr)
        return INTERRUPTED_EXIT_CODE


def _start(args, settings: folders.Settings, paths) -> None:
    from monitoring import control
    from serving import credentials, request_contract, stack

    state = stack.start(paths, args.version, args.port, args.prometheus_port, args.control_port)
    try:
        control.start(settings)
    except BaseException:  # Ctrl-C included: a start is whole or leaves nothing running
        stopped = stack.stop(paths)
        print(f"Start abandoned; stopped: {', '.join(stopped)}", file=sys.stderr)
        raise
    url = f"http://127.0.0.1:{state['port']}"
    print(
        f"Serving version {state['stable']['version']} at {url} (TF Serving's REST API; Prometheus at {state['prometheus']['url']})"
    )
    print("Try it:")
    example = json.dumps({"instances": [request_contract.EXAMPLE_TRIP]})
    print(f"  curl -s {url}/v1/models/{serving_config.SERVING_MODEL_NAME}:predict -d '{example}'")
    control_url = f"http://127.0.0.1:{state['control_port']}"
    token = credentials.token_path(paths.root, credentials.FEEDBACK)
    print(
        f"Labels that arrive later: POST {control_url}{monitoring_config.FEEDBACK_PATH} with "
        f"'Authorization: Bearer <{token}>' (docs/serving.md); `make monitor` for the page."
    )
    admin = credentials.token_path(paths.root, credentials.ADMIN)
    print(
        f"Releases and rollbacks over HTTP: {control_url}{serving_config.RELEASES_PATH} with "
        f"'Authorization: Bearer <{admin}>' (docs/serving.md, the release API)."
    )
    print("`make serve-status` shows what is live; `make serve-stop` stops it all.")


def _stop(args, settings: folders.Settings, paths) -> None:
    from serving import stack

    stopped = stack.stop(paths)
    print("Stopped: " + (", ".join(stopped) if stopped else "nothing was running"))


def _status(args, settings: folders.Settings, paths) -> None:
    from serving import releases

    status = releases.status(paths)
    print(json.dumps(status, indent=2))
    for found in status["serving_directory"]["not_whole"]:
        print(f"warning: {found['path']} is never served: {found['reason']}", file=sys.stderr)


def _shadow(args, settings: folders.Settings, paths) -> None:
    from serving import releases

    _say_traffic(releases.shadow(paths, args.version))


def _canary(args, settings: folders.Settings, paths) -> None:
    from serving import releases, stack

    _say_traffic(releases.canary(paths, args.version, args.percent))
    if args.auto:
        analysis = stack.start_analysis(paths, settings.output_dir, args.interval)
        print(
            f"Automatic analysis every {args.interval:g} s (pid {analysis['pid']}): decisions in {paths.root / 'analysis.log'}"
        )


def _promote(args, settings: folders.Settings, paths) -> None:
    from serving import releases

    _say_traffic(releases.promote(paths))


def _switch(args, settings: folders.Settings, paths) -> None:
    from serving import releases

    _say_traffic(releases.switch(paths, args.version))


def _rollback(args, settings: folders.Settings, paths) -> None:
    from serving import releases

    done = releases.rollback(paths, args.reason)
    print(
        f"Rolled back version {done.version}: all traffic on the version kept {done.seconds:.2f} s after "
        f"the command; recorded in {paths.serving_dir}, never pushed again."
    )
    _say_traffic(done.state)


def _manifests(args, settings: folders.Settings, paths) -> int:
    from kubeflow import serving_manifests

    try:
        found = serving_manifests.manifests(
            args.stable, args.candidate, None if args.shadow else args.canary_percent, args.shadow, args.host
        )
    except serving_manifests.ManifestError as error:
        print(f"error: {error}", file=sys.stderr)
        return BAD_INPUT_EXIT_CODE
    written = serving_manifests.write(
        paths.root / "kubernetes", paths.serving_dir, found, [v for v in (args.stable, args.candidate) if v]
    )
    print("Validated against the KServe and Istio CRD schemas and written:")
    for path in written:
        print(f"  {path}")
    print(f"Per-version model folders for the storage URIs: {paths.serving_dir.parent / 'kserve'}")
    return 0


# Each action returns None when done, or the exit code of what it refused.
ACTIONS = {
    "start": _start,
    "stop": _stop,
    "status": _status,
    "shadow": _shadow,
    "canary": _canary,
    "promote": _promote,
    "switch": _switch,
    "rollback": _rollback,
    "manifests": _manifests,
}


def _say_traffic(state: dict) -> None:
    from serving import releases

    print(f"Now: {releases.describe(state)}.")


def register(commands) -> None:
    serve = commands.add_parser(
        "serve",
        help="The local serving stack (nginx, a model server per live version, Prometheus): start, status, "
        "stop, and the deployment patterns (shadow, canary, promote, switch, rollback). docs/serving.md.",
    )
    add_folder_flags(serve)
    actions = serve.add_subparsers(dest="action", required=True)
    start = actions.add_parser("start", help="Start the stack on the production version (or --version).")
    start.add_argument("--version", help="The version to serve (default: production).")
    start.add_argument(
        "--port", type=int, default=serving_config.SERVING_PORT, help="nginx's port (the base URL)."
    )
    start.add_argument("--prometheus-port", type=int, default=serving_config.PROMETHEUS_PORT)
    start.add_argument(
        "--control-port",
        type=int,
        default=serving_config.CONTROL_PORT,
        help="the control listener's port on 127.0.0.1 (feedback, the monitor; bearer tokens)",
    )
    actions.add_parser("status", help="What is live, and whether each process is up and ready.")
    actions.add_parser("stop", help="Stop every process of the stack.")
    shadow = actions.add_parser(
        "shadow", help="Stable answers everything; a copy of each request goes to VERSION."
    )
    shadow.add_argument("version")
    canary = actions.add_parser(
        "canary", help="VERSION answers --percent of requests (sticky by X-Request-Key)."
    )
    canary.add_argument("version")
    canary.add_argument("--percent", type=float, default=5.0)
    canary.add_argument(
        "--auto", action="store_true", help="Let the analysis ramp it up, promote or roll it back."
    )
    canary.add_argument(
        "--interval", type=float, default=serving_config.CANARY_INTERVAL_SECONDS, help="Seconds per check."
    )
    actions.add_parser("promote", help="The canary (or shadow) becomes stable.")
    switch = actions.add_parser(
        "switch", help="Blue-green: all traffic to VERSION at once; rollback switches back."
    )
    switch.add_argument("version")
    rollback = actions.add_parser(
        "rollback", help="All traffic back to stable now, and the other version recorded as rolled back."
    )
    rollback.add_argument("--reason", default="", help="Why, for the record.")
    manifests = actions.add_parser(
        "manifests",
        help="Write KServe/Istio manifests for the same patterns on a cluster (validated against the CRDs).",
    )
    manifests.add_argument("--stable", required=True, help="The version serving today.")
    manifests.add_argument("--candidate", help="The new version (canary, or shadow with --shadow).")
    manifests.add_argument("--canary-percent", type=float, default=10.0)
    manifests.add_argument(
        "--shadow", action="store_true", help="Mirror to the candidate instead of splitting."
    )
    manifests.add_argument("--host", default="taxi.example.com", help="The host clients call (Istio).")
    serve.set_defaults(handler=_serve)

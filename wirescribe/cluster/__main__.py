"""``python -m wirescribe.cluster``: deploy on a Ray cluster, or run a local one.

    python -m wirescribe.cluster up        # make cluster: two local nodes, then deploy
    python -m wirescribe.cluster down      # make cluster-stop: delete (sessions get final), stop nodes
    python -m wirescribe.cluster deploy    # onto a running cluster (RAY_ADDRESS or --address)
    python -m wirescribe.cluster delete    # the ingress first, then the model

Settings are the ``STT_*`` variables (``STT_HOST``/``STT_PORT``: the proxies' address). For
``up``, the ``STT_SERVE_*`` values left at their defaults get the local cluster's: proxy on the
head only (both nodes share one host), one replica of each deployment per node, and each
node's one CPU shared by its two replicas.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
import urllib.request
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from wirescribe.cluster import local
from wirescribe.settings import ClusterSettings, Settings, SettingsError

LOCAL: dict[str, Any] = {
    "proxy_location": "HeadOnly",
    "max_replicas_per_node": 1,
    "ingress_cpus": 0.5,
    "model_cpus": 0.5,
}


def local_settings(settings: Settings) -> Settings:
    """``settings`` with the local cluster's values where the STT_SERVE_* ones are defaults."""
    defaults = ClusterSettings()
    changes = {k: v for k, v in LOCAL.items() if getattr(settings.cluster, k) == getattr(defaults, k)}
    return replace(settings, cluster=replace(settings.cluster, **changes))


def _connect(address: str | None) -> None:
    import ray

    ray.init(address=address or "auto", logging_level=logging.WARNING, log_to_driver=False)


def _wait_for_health(settings: Settings, timeout: float = 120) -> None:
    host = "127.0.0.1" if settings.host in ("0.0.0.0", "::") else settings.host
    url = f"http://{host}:{settings.port}/health"
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise local.LocalClusterError(f"{url} did not answer 200 within {timeout:g} s")
        time.sleep(0.5)  # polling while the replicas start


def up(settings: Settings) -> None:
    from wirescribe.cluster import serve

    settings = local_settings(settings)
    address = local.start(settings.port)
    try:
        _connect(address)
        local.wait_for_nodes(2)
        plan = serve.deploy(settings)
        _wait_for_health(settings)
    except BaseException:
        local.stop(settings.port)
        raise
    print(
        f"wirescribe on a 2-node Ray cluster ({address}): ws://{settings.host}:{settings.port}/ws/transcribe\n"
        f"  {plan.ingress_replicas} ingress replicas (up to {plan.sessions_per_ingress} sessions each), "
        f"{plan.model_replicas} model replicas (batches of up to {plan.batch_size})\n"
        f"  logs: {local.run_dir(settings.port)}, /tmp/ray/session_latest/logs/serve\n"
        "  stop: make cluster-stop"
    )


def down(settings: Settings) -> None:
    from wirescribe.cluster import serve
    from wirescribe.cluster.plan import ClusterPlan

    try:
        address = local.address_of(settings.port)
    except local.LocalClusterError as e:
        print(f"nothing to stop: {e}")
        return
    try:
        _connect(address)
        serve.undeploy(ClusterPlan.from_settings(settings))
        from ray import serve as ray_serve

        ray_serve.shutdown()
    except Exception as e:  # noqa: BLE001 - the nodes are stopped below whatever happened here
        print(f"could not delete the applications gracefully ({e}); stopping the nodes", file=sys.stderr)
    stopped = local.stop(settings.port)
    print(f"stopped {stopped} Ray node(s)")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m wirescribe.cluster", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["up", "down", "deploy", "delete"])
    parser.add_argument("--address", help="a running cluster's address (deploy, delete; default: auto)")
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        if args.command == "up":
            up(settings)
        elif args.command == "down":
            down(settings)
        else:
            from wirescribe.cluster import serve
            from wirescribe.cluster.plan import ClusterPlan

            _connect(args.address)
            if args.command == "deploy":
                plan = serve.deploy(settings)
                print(f"deployed {plan.app_name} and {plan.model_app_name}")
            else:
                serve.undeploy(ClusterPlan.from_settings(settings))
    except local.LocalClusterError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

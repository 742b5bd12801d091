"""``sf-forwarder simulate``: serve a simulated org until interrupted, printing how to connect to it."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from pathlib import Path

from forwarder.testing.simulator.app import Simulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sf-forwarder simulate", description="Run a simulated Salesforce org."
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=8443, help="port to bind (default 8443; 0 = any free port)"
    )
    parser.add_argument("--seed", type=int, default=1, help="traffic seed (same seed, same org)")
    parser.add_argument("--scenario", choices=("baseline", "attacks"), default="baseline")
    parser.add_argument(
        "--tls", action="store_true", help="serve HTTPS with a generated self-signed certificate"
    )
    parser.add_argument("--activities", type=int, default=200, help="baseline activities generated at start")
    parser.add_argument("--live", type=float, default=2.0, help="seconds between live activities (0 = none)")
    parser.add_argument(
        "--key-dir", type=Path, default=None, help="where to write the key pair (default: temp)"
    )
    return parser


def _banner(org: Simulator) -> str:
    return "\n".join(
        (
            f"Salesforce simulator listening on {org.base_url}  (login URL and instance URL)",
            f"  org id            {org.org_id}",
            f"  username          {org.username}",
            f"  client_id         {org.client_id}",
            f"  client_secret     {org.client_secret}",
            f"  JWT private key   {org.private_key_path}",
            f"  certificate       {org.cert_path}",
            f"  refresh token     {org.refresh_token}",
            f"  faults            POST {org.base_url}/_sim/faults",
            "Press Ctrl-C to stop.",
        )
    )


async def _serve(args: argparse.Namespace) -> None:
    if args.key_dir is not None:
        args.key_dir.mkdir(parents=True, exist_ok=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with Simulator(
        seed=args.seed,
        scenario=args.scenario,
        host=args.host,
        port=args.port,
        tls=args.tls,
        activities=args.activities,
        key_dir=args.key_dir,
        live_interval=args.live or None,
    ) as org:
        print(_banner(org), flush=True)
        await stop.wait()


def main(argv: list[str]) -> int:
    """Entry point the lead wires as ``sf-forwarder simulate``; returns the exit code."""
    args = _parser().parse_args(argv)
    try:
        asyncio.run(_serve(args))
    except OSError as exc:
        print(f"simulate: cannot serve on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))

"""The ``sf-forwarder`` command line: run, check-config, config-schema, state show, dead-letters, doctor,
simulate, backfill, demo.

Usage errors and bad files give one line on stderr and exit 2, never a traceback.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Callable
from typing import NoReturn

from forwarder import __version__
from forwarder.errors import ConfigError

EXIT_USAGE = 2


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sf-forwarder", description="Forward Salesforce security telemetry to SIEMs.")
    parser.add_argument("--version", action="version", version=f"sf-forwarder {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    run = commands.add_parser("run", help="Run the forwarder daemon.")
    run.add_argument("-c", "--config", required=True, help="YAML config file.")
    check = commands.add_parser("check-config", help="Validate a config file (exit 0 valid, 2 invalid).")
    check.add_argument("-c", "--config", required=True, help="YAML config file.")
    commands.add_parser("config-schema", help="Print the JSON Schema of the config file.")
    rules = commands.add_parser("rules", help="Alert rules.")
    rules_commands = rules.add_subparsers(dest="rules_command", metavar="ACTION", parser_class=_Parser)
    rules_test = rules_commands.add_parser(
        "test", help="Run every rule's embedded examples (exit 0 all pass, 1 a failure), or --events."
    )
    source = rules_test.add_mutually_exclusive_group(required=True)
    source.add_argument("-c", "--config", help="YAML config file (its rules.paths).")
    source.add_argument("--rules", action="append", help="Rule file or folder (repeatable).")
    rules_test.add_argument("--events", help="JSON lines of normalised documents: show which rules fire.")
    state = commands.add_parser("state", help="Inspect the journal.")
    state_commands = state.add_subparsers(dest="state_command", metavar="ACTION", parser_class=_Parser)
    show = state_commands.add_parser("show", help="Positions, cursors, lag, dead letters, completeness.")
    show.add_argument("-c", "--config", required=True, help="YAML config file.")
    show.add_argument("--json", action="store_true", help="Print JSON instead of text.")
    from forwarder.dead_letters import add_parser as add_dead_letters

    add_dead_letters(commands, _Parser)
    from forwarder.doctor import add_parser as add_doctor

    add_doctor(commands)
    for name, help_text in (
        ("simulate", "Serve the built-in Salesforce org simulator."),
        ("backfill", "Ingest a past time range of EventLogFile or SetupAuditTrail."),
        ("demo", "Run simulator, receivers and forwarder together on 127.0.0.1."),
    ):
        commands.add_parser(name, help=help_text, add_help=False)
    return parser


def _check_config(path: str) -> int:
    from forwarder import config
    from forwarder.alerts.rules import load_rules

    loaded = config.load(path)
    rules = load_rules(loaded.rules.paths)
    print(f"{path}: ok" + (f" ({len(rules)} alert rules)" if loaded.rules.paths else ""))
    return 0


def _config_schema() -> int:
    from forwarder.config import Config

    print(json.dumps(Config.model_json_schema(), indent=2))
    return 0


def _run(path: str) -> int:
    from forwarder import app, config
    from forwarder.alerts.rules import load_rules

    loaded = config.load(path)
    load_rules(loaded.rules.paths)  # a bad rule file is a usage error (exit 2), found before starting
    return asyncio.run(app.main(loaded))


def _state_show(path: str, as_json: bool) -> int:
    from forwarder import config, state

    return asyncio.run(state.show(config.load(path), as_json=as_json))


def _dead_letters(args: argparse.Namespace) -> int:
    from forwarder import config, dead_letters

    try:
        return dead_letters.run(config.load(args.config), args)
    except dead_letters.UsageError as exc:
        print(f"sf-forwarder dead-letters {args.dl_action}: error: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _delegate(command: str) -> Callable[[list[str]], int]:
    """Commands with their own argument parsers, imported only when used."""
    if command == "simulate":
        from forwarder.testing.simulator.cli import main as simulate

        return simulate
    if command == "backfill":
        from forwarder.backfill import main as backfill

        return backfill
    from forwarder.demo import main as demo

    return demo


def main(argv: list[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in ("simulate", "backfill", "demo"):
        return _delegate(argv[0])(argv[1:])
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "run":
            return _run(args.config)
        if args.command == "check-config":
            return _check_config(args.config)
        if args.command == "config-schema":
            return _config_schema()
        if args.command == "rules" and args.rules_command == "test":
            from forwarder.alerts import selftest

            return selftest.run(args)
        if args.command == "state" and args.state_command == "show":
            return _state_show(args.config, args.json)
        if args.command == "dead-letters" and args.dl_action:
            return _dead_letters(args)
        if args.command == "doctor":
            from forwarder import doctor

            return doctor.run(args.config, as_json=args.json)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return EXIT_USAGE
    parser.print_usage(sys.stderr)
    return EXIT_USAGE


if __name__ == "__main__":
    sys.exit(main())

"""What `smartcity rules ...` does: list, validate, apply, enable, disable, firings, backtest."""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import yaml
from rich.console import Console
from rich.table import Table

from smartcity.auth.principal import Caller
from smartcity.core.errors import BadRequestData
from smartcity.rules.checkpoints import firing_doc
from smartcity.rules.loader import builtin_rule_documents
from smartcity.rules.service import RuleService

RULES_HELP = """Convergence-event rules combine signals across services (a CCTV detection, a dark
street, a concert crowd) into alerts and actions. Rules are kept in the database with every
version; the engine workers (rules_enabled) run the enabled ones. These commands work on the
database directly, as the platform itself, in --tenant."""
FILE_HELP = """a YAML or JSON file: one rule (a mapping with its `id`), a list of rules, or
{"rules": [...]}"""


def add_rules_commands(commands: Any, common: argparse.ArgumentParser) -> None:
    """Add `smartcity rules ACTION` to the command's parser (`common`: tenant, database)."""
    rules = commands.add_parser(
        "rules", help="manage convergence-event rules", description=RULES_HELP
    )
    actions = rules.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("list", parents=[common], help="list the tenant's rules")
    validate = actions.add_parser(
        "validate", parents=[common], help="check rules in a file without storing them"
    )
    validate.add_argument("file", type=Path, help=FILE_HELP)
    apply = actions.add_parser(
        "apply",
        parents=[common],
        help="create or update the rules of a file (a new version for each that changed)",
    )
    source = apply.add_mutually_exclusive_group(required=True)
    source.add_argument("file", type=Path, nargs="?", help=FILE_HELP)
    source.add_argument(
        "--builtin",
        action="store_true",
        help="the built-in rules shipped with the platform (docs/rules.md lists them)",
    )
    apply.add_argument(
        "--disabled", action="store_true", help="create new rules disabled (default: enabled)"
    )
    for name, text in (("enable", "run a rule"), ("disable", "stop running a rule (kept)")):
        action = actions.add_parser(name, parents=[common], help=text)
        action.add_argument("rule", help="the rule's id")
    delete = actions.add_parser(
        "delete", parents=[common], help="delete a rule (its versions and firings are kept)"
    )
    delete.add_argument("rule", help="the rule's id")
    firings = actions.add_parser(
        "firings", parents=[common], help="show recent firings and how their actions ended"
    )
    firings.add_argument("--rule", help="only this rule's firings")
    firings.add_argument("--since", help="at or after (ISO 8601)")
    firings.add_argument("--limit", type=int, default=20, help="how many (default 20)")
    backtest = actions.add_parser(
        "backtest",
        parents=[common],
        help="run a rule over the stored history; nothing is acted on",
        description="Replay the temporal history of [--from, --to) through a rule, in event "
        "time, and print what it would have fired. --file tries a draft of the rule instead "
        "of the stored version.",
    )
    backtest.add_argument("rule", help="the rule's id")
    backtest.add_argument("--from", dest="start", required=True, help="ISO 8601, with a zone")
    backtest.add_argument("--to", dest="end", required=True, help="ISO 8601, with a zone")
    backtest.add_argument("--file", type=Path, help="a draft of the rule (YAML or JSON)")
    backtest.add_argument("--json", action="store_true", help="print the firings as JSON")


def read_rules(path: Path) -> list[dict[str, Any]]:
    """Return the rules a YAML or JSON file holds; raise BadRequestData if it holds none."""
    try:
        loaded = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as error:
        raise BadRequestData(f"cannot read {path}: {error}") from error
    if isinstance(loaded, dict) and isinstance(loaded.get("rules"), list):
        loaded = loaded["rules"]
    items = loaded if isinstance(loaded, list) else [loaded]
    if not items or not all(isinstance(item, dict) and item.get("id") for item in items):
        raise BadRequestData(f"{path}: every rule must be a mapping with an `id`")
    return [dict(item) for item in items]


def install_builtin_rules(rules: RuleService, caller: Caller) -> dict[str, int]:
    """Store the built-in rules that are missing or older; keep deleted ones deleted.

    Return how many were created, updated and left as they were. A rule an operator disabled
    stays disabled; one they deleted is not brought back (the demo runs this at each start).
    """
    counts = {"created": 0, "updated": 0, "unchanged": 0}
    for doc in builtin_rule_documents():
        current = rules.rules.get(caller.tenant, doc["id"])
        if current is not None and current.deleted:
            counts["unchanged"] += 1
            continue
        _record, changed = rules.apply(caller, doc["id"], doc)
        counts["unchanged" if not changed else "created" if current is None else "updated"] += 1
    return counts


def _time(text: str) -> datetime:
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise BadRequestData(f"not an ISO 8601 date and time: {text!r}") from None
    if moment.tzinfo is None:
        raise BadRequestData(f"{text!r} needs a time zone (Z or +09:00)")
    return moment


def run_rules_command(rules: RuleService, args: argparse.Namespace) -> int:
    """Run one `smartcity rules ACTION` as the platform itself in the given tenant."""
    caller = Caller.system(args.tenant)
    console = Console()
    if args.action == "list":
        _list(rules, caller, console)
    elif args.action == "validate":
        return _validate(rules, caller, args.file, console)
    elif args.action == "apply":
        for doc in builtin_rule_documents() if args.builtin else read_rules(args.file):
            if args.disabled and rules.rules.get(caller.tenant, doc["id"]) is None:
                record, changed = rules.create(caller, doc["id"], doc, enabled=False), True
            else:
                record, changed = rules.apply(caller, doc["id"], doc)
            state = f"version {record.version}" if changed else "unchanged"
            console.print(f"{record.id}: {state}")
    elif args.action in ("enable", "disable"):
        record = rules.set_enabled(caller, args.rule, args.action == "enable")
        console.print(f"{record.id}: {'enabled' if record.enabled else 'disabled'}")
    elif args.action == "delete":
        rules.delete(caller, args.rule)
        console.print(f"{args.rule}: deleted")
    elif args.action == "firings":
        _firings(rules, caller, args, console)
    else:
        return _backtest(rules, caller, args, console)
    return 0


def _list(rules: RuleService, caller: Caller, console: Console) -> None:
    table = Table("id", "version", "enabled", "updated", "by")
    for record in rules.list_rules(caller):
        table.add_row(
            record.id,
            str(record.version),
            "yes" if record.enabled else "no",
            record.updated_at,
            record.updated_by,
        )
    console.print(table)


def _validate(rules: RuleService, caller: Caller, path: Path, console: Console) -> int:
    failed = 0
    for doc in read_rules(path):
        problems = rules.validate(caller, doc["id"], doc)
        if problems:
            failed += 1
            console.print(f"[red]{doc['id']}: not valid[/red]")
            for problem in problems:
                console.print(f"  - {problem}")
        else:
            console.print(f"{doc['id']}: valid")
    return 1 if failed else 0


def _firings(
    rules: RuleService, caller: Caller, args: argparse.Namespace, console: Console
) -> None:
    table = Table("at", "rule", "kind", "key", "status", "actions")
    for record in rules.firings(caller, rule_id=args.rule, since=args.since, limit=args.limit):
        firing = record.firing
        outcomes = ", ".join(f"{o.kind} {o.status}" for o in record.outcomes)
        table.add_row(firing.at, firing.rule_id, firing.kind, firing.key, record.status, outcomes)
    console.print(table)


def _backtest(
    rules: RuleService, caller: Caller, args: argparse.Namespace, console: Console
) -> int:
    draft = read_rules(args.file)[0] if args.file else None
    result = rules.backtest(caller, args.rule, _time(args.start), _time(args.end), doc=draft)
    if args.json:
        docs = [firing_doc(firing) for firing in result.firings]
        print(orjson.dumps(docs, option=orjson.OPT_INDENT_2).decode())
        return 0
    table = Table("at", "kind", "key", "severity", "evidence")
    for firing in result.firings:
        evidence = ", ".join(e.entity_id for e in firing.evidence)
        table.add_row(firing.at, firing.kind, firing.key, firing.severity, evidence)
    console.print(table)
    console.print(
        f"{len(result.firings)} firing(s) from {result.changes} change(s), "
        f"{result.start} to {result.end}"
    )
    return 0

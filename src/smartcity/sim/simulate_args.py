"""The arguments of `smartcity simulate` (kept apart: building the parser must stay light)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

API_KEY_VARIABLE = "SMARTCITY_API_KEY"
HELP = """Run a scenario of the district simulator: its devices (traffic detectors, cameras,
parking lots and spots, streetlights, food-waste bins, air and noise sensors, beacons) send
their payloads through the platform's real ingest path, MQTT and HTTP. The same --seed and
scenario send the same payloads, byte for byte."""
EXAMPLES = """examples:
  smartcity simulate --list
  smartcity simulate --scenario concert-night --speed 60 --seed 7
  smartcity simulate --scenario concert-night --speed max --until 19:00 --dry-run
  smartcity simulate --check my-scenario.yaml
  smartcity simulate --scenario heavy-rain --speed 10 --url http://127.0.0.1:8000
"""


def add_simulate_command(commands: Any) -> None:
    """Add `smartcity simulate` to the command's subparsers."""
    parser = commands.add_parser(
        "simulate",
        help="run a district simulator scenario through the real ingest path",
        description=HELP,
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--scenario", default="normal-weekday", help="a name (--list) or a file")
    parser.add_argument("--speed", default="60", help="simulated seconds per second, or 'max'")
    parser.add_argument("--seed", type=int, default=1, help="the same seed sends the same data")
    parser.add_argument(
        "--start",
        default="scenario",
        help="'scenario' (its own date), 'today', 'now' or a date and time (local)",
    )
    parser.add_argument("--jump", help="skip ahead to 'HH:MM' or a date and time, then send")
    parser.add_argument("--until", help="stop at 'HH:MM' or a date and time (default: its end)")
    parser.add_argument("--district", type=Path, help="a district folder (default: Changdong)")
    parser.add_argument("--list", action="store_true", help="list the scenarios and exit")
    parser.add_argument(
        "--check", type=Path, nargs="+", metavar="FILE", help="check scenario files and exit"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="compute the emissions, print their digest"
    )
    parser.add_argument(
        "--load-district", action="store_true", help="load the district's entities first"
    )
    parser.add_argument("--url", help="drive the platform serving at this URL instead")
    parser.add_argument(
        "--api-key-file", type=Path, help=f"an admin's or operator's key (or {API_KEY_VARIABLE})"
    )
    parser.add_argument("--tenant", default="", help="the tenant of the simulated devices")
    parser.add_argument("--database-url", help="the platform's database (default: settings)")

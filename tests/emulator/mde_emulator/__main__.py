"""CLI: ``python -m mde_emulator --state-dir DIR [options]``.

Prints one JSON line on stdout once listening (the same JSON goes to
DIR/emulator.json) and runs until SIGTERM or SIGINT.
"""

import argparse
import json
import signal
import sys
import threading

from .emulator import Emulator
from .faults import DEFAULT_FAULTS

CONSTRUCTOR_KEYS = ("seed", "host", "port", "extra_software", "extra_machines", "fleet", "findings_per_device",
                    "export_parts", "files_host", "verbose", "snapshot")


def _json_arg(text):
    try:
        return json.loads(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not JSON: {exc}") from None


def _int_list(text):
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated integers, e.g. 500,503") from None


def _name_list(text):
    return [part.strip() for part in text.split(",") if part.strip()]


def build_parser():
    """The argparse parser: emulator options plus one flag per fault key."""
    parser = argparse.ArgumentParser(prog="python -m mde_emulator", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state-dir", required=True, help="certificates, keys, federated token, emulator.json")
    parser.add_argument("--host", default=None, help="listen address (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=None, help="listen port (default 0: any free port)")
    parser.add_argument("--config", help="JSON file with fault keys and/or seed, host, port, extra_software, "
                                         "extra_machines, fleet, findings_per_device, export_parts, files_host, "
                                         "snapshot, prepare_export; flags override it")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--extra-software", type=int, default=None)
    parser.add_argument("--extra-machines", type=int, default=None)
    parser.add_argument("--fleet", type=int, default=None, help="generated devices (fleet.py)")
    parser.add_argument("--findings-per-device", type=int, default=None,
                        help="export records per device (default: as drawn, about 11)")
    parser.add_argument("--export-parts", type=int, default=None, help="part files of the files export (default 3)")
    parser.add_argument("--files-host", default=None, help="host name of the export's file host")
    parser.add_argument("--snapshot", default=None,
                        help="the instant the data is taken at: ISO 8601 UTC on a six-hour boundary, or 'now' "
                             "(the start of the current six-hour bucket); default 2024-02-20T06:00:00Z")
    parser.add_argument("--prepare-export", action="store_true", default=None,
                        help="generate the vulnerability export before printing the ready line")
    parser.add_argument("--verbose", action="store_true", default=None, help="log requests to stderr")
    faults = parser.add_argument_group("faults (see README.md)")
    for key, default in DEFAULT_FAULTS.items():
        flag = f"--{key.replace('_', '-')}"
        if key == "fail_next":
            faults.add_argument(flag, type=_json_arg, default=None, help="JSON list of {path_regex, status, count, "
                                "retry_after?, body?, target?}")
        elif key == "error_statuses_5xx":
            faults.add_argument(flag, type=_int_list, default=None, help="comma-separated, default 500,502,503,504")
        elif key == "ignore_filter":
            faults.add_argument(flag, type=_name_list, default=None, help="comma-separated listings whose $filter "
                                "is ignored: software, machines")
        elif key == "nextlink_base":
            faults.add_argument(flag, default=None, help="scheme://host[:port] used in @odata.nextLink")
        else:
            faults.add_argument(flag, type=type(default), default=None, help=f"default {default}")
    return parser


def main(argv=None):
    """Run until SIGTERM/SIGINT; returns the exit code."""
    args = build_parser().parse_args(argv)
    settings = {}
    if args.config:
        with open(args.config, encoding="utf-8") as handle:
            settings.update(json.load(handle))
    for key, value in vars(args).items():
        if value is not None and key not in ("state_dir", "config", "prepare_export"):
            settings[key] = value
    prepare = settings.pop("prepare_export", False) or args.prepare_export
    try:
        emulator = Emulator(args.state_dir, **settings)
    except (TypeError, ValueError) as exc:
        sys.stderr.write(f"mde_emulator: {exc}\n")
        return 2
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    emulator.start()
    if prepare:
        emulator.prepare_export()
    sys.stdout.write(f"{json.dumps(emulator.info)}\n")
    sys.stdout.flush()
    try:
        while not stop.wait(0.5):
            pass
    finally:
        emulator.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())

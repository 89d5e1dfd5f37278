"""`pulumi up` runs this file (Pulumi.yaml: `main: infra/`); the program lives in infra.program."""

import sys
from pathlib import Path

# Pulumi runs this file as a script from infra/; make the project's packages importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pulumi.runtime.settings import get_monitor

if get_monitor() is None:
    # Run as `python -m infra`: no Pulumi engine to register with, and every setting unread.
    print(
        "error: infra/ is the Pulumi program of a site stack; the Pulumi engine runs it\n"
        "  - Fix: pulumi up --stack SITE (see docs/provisioning.md), or dsx render PLAN --site SITE "
        "--period QUARTER to see what it would register",
        file=sys.stderr,
    )
    sys.exit(2)  # a user's mistake, as every dsx command exits

from infra.program import run

run()

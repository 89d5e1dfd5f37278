"""`pulumi up` runs this file (Pulumi.yaml: `main: infra/`); the program lives in infra.program."""

import sys
from pathlib import Path

# Pulumi runs this file as a script from infra/; make the project's packages importable.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from infra.program import run

run()

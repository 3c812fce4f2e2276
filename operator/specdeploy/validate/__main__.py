"""``python -m specdeploy.validate``: the validator without the rest of the CLI (what the Job image may run)."""

import sys

from specdeploy.validate.cli import main

sys.exit(main())

"""`python -m minidns` runs the `minidns` command."""

import sys

from .cli import main

sys.exit(main())

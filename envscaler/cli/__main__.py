"""`python -m envscaler.cli`."""

import sys

from envscaler.cli import main

sys.exit(main())

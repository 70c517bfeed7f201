"""`python -m kagglekit`: the `kagglekit` command."""
import sys

from .cli import main

sys.exit(main())

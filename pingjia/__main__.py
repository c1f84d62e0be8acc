"""`python -m pingjia ...`: the same as the `pingjia` command."""

import sys

from pingjia.cli import main

sys.exit(main())

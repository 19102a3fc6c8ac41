"""`python -m mixaq.search.cli …` = the `mixaq` command (what `torchrun -m mixaq.search.cli` runs on each rank)."""
import sys

from mixaq.search.cli import main

sys.exit(main())

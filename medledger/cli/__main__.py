"""``python -m medledger.cli``."""

from medledger.cli import main

main()

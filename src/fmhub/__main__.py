"""``python -m fmhub``: the same command line as ``fmhub``."""

from fmhub.cli.app import main

main()

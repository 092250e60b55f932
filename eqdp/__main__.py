"""``python -m eqdp``: the same command line as the ``eqdp`` script."""

from eqdp.cli import main

main()

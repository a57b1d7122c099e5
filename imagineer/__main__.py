"""``python -m imagineer``: the same as the ``imagineer`` command."""

from imagineer.cli import main

main()

"""``python -m propensity.cli`` — the same as the ``propensity`` command."""

from propensity.cli import main

main()

"""``python -m monitor`` is the ``support-monitor`` console script."""

from monitor.cli import main

main()

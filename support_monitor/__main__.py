"""``python -m support_monitor`` is the ``support-monitor`` console script."""

from support_monitor.monitor.script import main

main()

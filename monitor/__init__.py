"""support-monitor: realtime contact-center and help-desk monitoring daemon."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("support-monitor")  # the one place it is written: pyproject.toml
except PackageNotFoundError:  # imported from a checkout that was never installed
    __version__ = "0+unknown"

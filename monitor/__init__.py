"""support-monitor: realtime contact-center and help-desk monitoring daemon."""

__version__ = "0.1.0"

"""support-monitor's one installed import namespace."""

"""The detection benchmark: seasonal traffic with labelled incidents, replayed through
``support-monitor replay`` with the default config, scored against the labels and compared
with an optimal change detector (CUSUM). See ``docs/benchmarks.md``, "Detection benchmark".
"""

"""The monitor: read vLLM's speculative-decoding counters, turn them into acceptance rates over windows, decide.

Everything here except ``scrape``, ``prometheus_source`` (HTTP) and ``exporter`` (the operator's own metrics) is
pure: plain functions and frozen dataclasses, so the rollback logic can be tested without a cluster or a server.
"""

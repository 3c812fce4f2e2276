"""Benchmarks of the design budgets (not tests): each prints medians and ratios against a baseline run alongside.

``python -m bench.run_all`` (what ``make bench`` runs) runs every benchmark and prints one summary table; see
bench/README.md for what each number means.
"""

"""``specdeploy compare-drafts``: rank draft candidates for a target by acceptance measured on real vLLM.

Pure parts (``prompts``, ``results``, ``analysis``, ``report``) turn measurements into a ranking, tables, an
analysis and JSON; ``plot`` draws the chart; ``server`` and ``launch`` run vLLM; ``run`` sequences the measurement.
It reads model metadata and verdicts through ``specdeploy.validate`` and counters through ``specdeploy.monitor``.
"""

"""Unit tests of specdeploy.monitor: parser, acceptance math, windows, decision, speedup model, scrape, exporter."""

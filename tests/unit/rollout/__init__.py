"""Unit tests of specdeploy.rollout."""

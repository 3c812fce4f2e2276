"""Unit tests of specdeploy.api: the models, their rules, the generated CRD."""

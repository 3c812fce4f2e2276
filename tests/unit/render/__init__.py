"""Unit tests of specdeploy.render: vLLM argv, Deployment, Service, validation Job, render command."""

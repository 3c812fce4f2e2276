"""Revisions of a SpeculativeDeployment: their ids, and which one serves, is stable or has failed (pure)."""

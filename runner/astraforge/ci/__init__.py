"""Talking to the CI system the runner is in: detection, log groups, masks, outputs."""

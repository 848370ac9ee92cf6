"""training workflow package."""

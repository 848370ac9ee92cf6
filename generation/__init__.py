"""generation workflow package."""

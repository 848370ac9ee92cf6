"""benchmarks workflow package."""

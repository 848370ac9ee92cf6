"""calibration workflow package."""

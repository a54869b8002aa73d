"""Definitions whose dtypes are Python types: every error of the file is reported."""

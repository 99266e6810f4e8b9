"""Metrics over whole splits, reports and plots."""

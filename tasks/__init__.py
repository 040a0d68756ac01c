"""Thin Prefect tasks over the imgdedup library: one library stage per task."""

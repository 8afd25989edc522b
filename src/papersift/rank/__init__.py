"""Ranking models: what each reader should read next (recommend)."""

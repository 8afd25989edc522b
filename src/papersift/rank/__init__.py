"""Ranking models: what each reader should read next (recommend), what is worth featuring today (curation)."""

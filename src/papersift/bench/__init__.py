"""Benchmarks that print figures: relevance on BEIR-format data, latency and memory at scale."""

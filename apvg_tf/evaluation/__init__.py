"""Evaluation: metrics (one owner per metric) and per-stage evaluation runs."""

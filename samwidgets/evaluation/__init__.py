"""Measuring models: the click protocol, procedural scenes, real photos."""

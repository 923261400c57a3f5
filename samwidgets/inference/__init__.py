"""Inference: the predictor with cached embeddings, the automatic mask generator, and input handling."""

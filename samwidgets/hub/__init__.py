"""Models by name: the registry, building from configs and checkpoints, the bundled model, downloads."""

"""Where code runs: devices, CPU threads, torchrun processes."""

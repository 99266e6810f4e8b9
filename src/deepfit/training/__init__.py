"""The training loop, its state, losses, optimizers and callbacks."""

"""Offline stand-ins for the outside world: real-image competitions and a Kaggle API emulator."""

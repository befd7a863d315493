"""Framework integrations. Each module here imports its framework; nothing else in tokentrail does."""

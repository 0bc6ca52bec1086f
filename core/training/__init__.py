"""The one training loop, its config, batching and the job subprocess."""

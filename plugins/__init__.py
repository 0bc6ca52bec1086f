"""Built-in task plugins: one module per downstream task."""

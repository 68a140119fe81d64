"""The run folder's format: `log` writes it (config, metrics, TensorBoard, confusion matrix), and
`read` loads finished runs for the figures and tables."""

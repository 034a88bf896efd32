"""Settings, composition root, logging, metrics, CLI and gunicorn configuration."""

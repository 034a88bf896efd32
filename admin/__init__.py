"""Administration console and JSON API over the services below it (issue 6)."""

"""Legal-person identity: CA trust registry, mapping profiles, certificate validation and
login, legal persons and mandates (issue 4)."""

"""Natural-person identity: ID number rules, registry adapters, verification state,
assurance levels, encrypted personal data (issue 3)."""

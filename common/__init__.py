"""Shared kernel with no business meaning: database base, errors, clock, crypto, store."""

"""OpenID Connect provider: accounts, clients, protocol endpoints, sessions, tokens,
signing keys, claims release and logout."""

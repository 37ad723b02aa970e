"""Members: registration, profile, identities, status, consent, member codes and merging."""

"""The double-entry ledger: accounts, journal entries, postings and points lots."""

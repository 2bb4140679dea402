"""The base-data ledger: an append-only, witnessed Merkle log of record versions."""

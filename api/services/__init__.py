"""Use cases. They own the transactions, raise `AmendError`, and import no web framework."""

"""The command groups of ``medledger``, one module per group (lazily importing the library)."""

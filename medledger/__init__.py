"""medledger: patient-controlled medical records on Ethereum.

Consent, fingerprints and the audit trail live on chain (the Medledger contract); records live
encrypted on IPFS. The package is layered (each row imports only from itself or below; the rows are
checked by import-linter, see pyproject.toml):

- :mod:`medledger.cli` (the command line); :mod:`~medledger.demo`; :mod:`~medledger.workflows`;
- :mod:`~medledger.ingest`, :mod:`~medledger.records`, :mod:`~medledger.audit`;
- :mod:`~medledger.consent`, :mod:`~medledger.keyring`, :mod:`~medledger.participants`;
- :mod:`~medledger.access`; :mod:`~medledger.client` (a connected session);
- :mod:`~medledger.chain` (the typed contract facade), :mod:`~medledger.storage` (IPFS),
  :mod:`~medledger.node` (local services);
- :mod:`~medledger.crypto`, :mod:`~medledger.keystore`, :mod:`~medledger.fhir`;
- :mod:`~medledger.config`, :mod:`~medledger.codes`, :mod:`~medledger.errors`, :mod:`~medledger.paths`,
  :mod:`~medledger.fsutil`.

Nothing is imported here, so ``import medledger.crypto`` stays light.
"""

__version__ = "0.1.0"

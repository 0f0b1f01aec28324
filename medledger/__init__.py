"""medledger: patient-controlled medical records on Ethereum.

Consent, fingerprints and the audit trail live on chain (the Medledger contract); records live
encrypted on IPFS. Modules: :mod:`~medledger.client` (a connected session), :mod:`~medledger.consent`,
:mod:`~medledger.records`, :mod:`~medledger.ingest`, :mod:`~medledger.keyring`,
:mod:`~medledger.audit`, :mod:`~medledger.crypto`, :mod:`~medledger.keystore`,
:mod:`~medledger.storage`, :mod:`~medledger.node`, :mod:`~medledger.chain`; the command line is
:mod:`medledger.cli`. Nothing is imported here, so ``import medledger.crypto`` stays light.
"""

__version__ = "0.1.0"

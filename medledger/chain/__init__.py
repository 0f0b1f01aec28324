"""The chain layer: every contact with the Ethereum node and the Medledger contract.

- :mod:`~medledger.chain.rpc`: :class:`Chain`, the JSON-RPC connection (calls, signed transactions,
  blocks, logs), mapping transport failures to medledger's errors;
- :mod:`~medledger.chain.reverts`: custom-error reverts decoded into typed exceptions and sentences;
- :mod:`~medledger.chain.contract`: :class:`MedledgerContract`, the typed facade over the contract
  (its plumbing in :mod:`~medledger.chain.base`, its record calls in :mod:`~medledger.chain.records`);
  :mod:`~medledger.chain.types` and :mod:`~medledger.chain.events` the values it returns;
- :mod:`~medledger.chain.eip712`: the signed consent requests (types, domain, signing);
- :mod:`~medledger.chain.fastpath`: bulk registration over bare JSON-RPC with local nonces;
- :mod:`~medledger.chain.artifacts`, :mod:`~medledger.chain.deployments`,
  :mod:`~medledger.chain.deploy`: compiling, deploying and recording the contract.

Nothing above this layer imports web3 or builds a contract call itself.
"""

from .contract import MedledgerContract, Sender, Tx
from .deploy import deploy_medledger
from .deployments import Deployment, deployment_file, read_deployment, write_deployment
from .events import ChainEvent, Receipt
from .reverts import ErrorDecoder, describe_revert, utc
from .rpc import Chain, foreign_error
from .types import (
    FOREVER,
    ZERO32,
    CategoryKey,
    Consent,
    ConsentState,
    ConsentTerms,
    Delegation,
    EmergencyAccess,
    Participant,
    PatientState,
    RecordEntry,
    RecordHeader,
    RecordInfo,
    cid_from_parts,
    cid_parts,
)

__all__ = [
    "FOREVER",
    "ZERO32",
    "CategoryKey",
    "Chain",
    "ChainEvent",
    "Consent",
    "ConsentState",
    "ConsentTerms",
    "Delegation",
    "Deployment",
    "EmergencyAccess",
    "ErrorDecoder",
    "MedledgerContract",
    "Participant",
    "PatientState",
    "Receipt",
    "RecordEntry",
    "RecordHeader",
    "RecordInfo",
    "Sender",
    "Tx",
    "cid_from_parts",
    "cid_parts",
    "deploy_medledger",
    "deployment_file",
    "describe_revert",
    "foreign_error",
    "read_deployment",
    "utc",
    "write_deployment",
]

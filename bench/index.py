"""Event index figures on a real anvil, SQLite and PostgreSQL.

    python bench/index.py            # a table
    python bench/index.py --json     # one JSON object (index_events_per_s_sqlite, ..., oversight_report_s)
    python bench/index.py --events 20000   # a smaller chain

Starts its own anvil (127.0.0.1, free port, temporary directory) and a private PostgreSQL server
(durable settings: fsync on), deploys the Medledger contract and fills the chain with real
transactions from 2,000 patients and 50 organisations (impersonated anvil accounts, many
transactions per block, time moved forward so the events span twelve months) until it holds
``--events`` events: registrations, consents, records, reads, emergency openings, revocations.
- Indexing rate: events per second of ``Indexer.sync()`` from an empty database to the head, reading
  the real logs over JSON-RPC (SQLite file; PostgreSQL database).
- Query latency (p50/p95 over 200 queries each, on the indexed real events): one patient's trail,
  one grantee's current grants.
- The oversight report over the same events (counts, disclosure control, JSON and CSV); the chart
  is timed separately (``oversight_chart_s``).
- The audit view of one patient (``audit.trail``, as ``medledger audit`` lists it) read through the
  index and through a scan of the chain's logs (``audit_view_index_p50_ms``, ``audit_view_logs_p50_ms``).
Goals: >= 5,000 events/s indexed; p50 <= 10 ms for both queries; report <= 2 s.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import requests  # noqa: E402
from eth_utils import keccak, to_checksum_address  # noqa: E402
from web3 import HTTPProvider, Web3  # noqa: E402

from medledger import audit, codes, node  # noqa: E402
from medledger.chain.deployments import Deployment, write_deployment  # noqa: E402
from medledger.chain.history import LogScan  # noqa: E402
from medledger.chain.logsource import RpcSource  # noqa: E402
from medledger.chain.rawlogs import checksum  # noqa: E402
from medledger.chain.shipped import deployable_artifact  # noqa: E402
from medledger.client import Client  # noqa: E402
from medledger.config import Settings  # noqa: E402
from medledger.index import Indexer, IndexReader, IndexStore, Target, open_history  # noqa: E402
from medledger.index.pgtemp import create_database, temporary_postgres  # noqa: E402
from medledger.oversight import Period, build_report  # noqa: E402

NEVER = 2**64 - 1
ZERO = b"\x00" * 32
RAW = 0x55  # the CID codec of a raw block
MONTH = 30 * 86_400
#: gas limit of each kind of transaction (generous: every one must fit, budgeted per block)
GAS = {
    "patient": 650_000,  # an encryption key and 13 category keys
    "participant": 200_000,
    "grant": 150_000,
    "record": 200_000,
    "emergency": 120_000,
    "access": 80_000,
    "revoke": 80_000,
}
P = codes.Purpose


def address(label: str) -> str:
    return to_checksum_address(keccak(text=label)[:20])


class Loader:
    """Sends many transactions per block from impersonated accounts (explicit nonces, automine off)."""

    def __init__(self, w3: Web3, contract: Any, url: str) -> None:
        self.w3 = w3
        self.contract = contract
        self.url = url
        self.session = requests.Session()
        self.nonces: dict[str, int] = {}
        self.pending: list[dict[str, Any]] = []
        self.pending_gas = 0
        self.block_gas = int(w3.eth.get_block("latest")["gasLimit"]) * 9 // 10
        self.seconds_per_block = 0
        self.rpc([("anvil_autoImpersonateAccount", [True]), ("evm_setAutomine", [False])])

    def rpc(self, calls: list[tuple[str, list[Any]]]) -> list[Any]:
        body = [{"jsonrpc": "2.0", "id": i, "method": m, "params": p} for i, (m, p) in enumerate(calls)]
        answers = self.session.post(self.url, json=body, timeout=300).json()
        bad = [a for a in answers if "error" in a]
        if bad:
            raise RuntimeError(f"{len(bad)} calls failed, e.g. {bad[0]}")
        return [a["result"] for a in sorted(answers, key=lambda a: a["id"])]

    def fund(self, accounts: list[str]) -> None:
        for lo in range(0, len(accounts), 500):
            self.rpc([("anvil_setBalance", [a, hex(10**21)]) for a in accounts[lo : lo + 500]])

    def add(self, sender: str, kind: str, fn: str, *args: Any) -> None:
        if self.pending_gas + GAS[kind] > self.block_gas:
            self.mine()
        data = getattr(self.contract.functions, fn)(*args)._encode_transaction_data()
        if sender not in self.nonces:
            self.nonces[sender] = int(self.w3.eth.get_transaction_count(sender))
        nonce = self.nonces[sender]
        self.nonces[sender] = nonce + 1
        self.pending.append(
            {"from": sender, "to": self.contract.address, "data": data, "gas": hex(GAS[kind]), "nonce": hex(nonce)}
        )
        self.pending_gas += GAS[kind]

    def mine(self) -> None:
        """Mine the pending transactions into one block; every one must have succeeded."""
        if not self.pending:
            return
        for lo in range(0, len(self.pending), 500):
            self.rpc([("eth_sendTransaction", [tx]) for tx in self.pending[lo : lo + 500]])
        calls: list[tuple[str, list[Any]]] = (
            [("evm_increaseTime", [self.seconds_per_block])] if self.seconds_per_block else []
        )
        self.rpc([*calls, ("evm_mine", [])])
        block = self.w3.eth.get_block("latest")
        receipts = self.rpc([("eth_getTransactionReceipt", ["0x" + bytes(h).hex()]) for h in block["transactions"]])
        failed = sum(1 for r in receipts if int(r["status"], 16) != 1)
        if len(receipts) != len(self.pending) or failed:
            raise RuntimeError(
                f"block {block['number']}: {len(receipts)} of {len(self.pending)} txs, {failed} reverted"
            )
        self.pending, self.pending_gas = [], 0

    def count_logs(self) -> int:
        query = {"address": self.contract.address, "fromBlock": "0x0", "toBlock": "latest"}
        return len(self.rpc([("eth_getLogs", [query])])[0])


class Population:
    """Who is who on the benchmark chain, and the phases that fill it."""

    def __init__(self, load: Loader, patients: int, seed: int = 7) -> None:
        self.load = load
        self.rng = random.Random(seed)
        self.patients = [address(f"patient-{i}") for i in range(patients)]
        self.clinicians = [address(f"clinician-{i}") for i in range(40)]
        self.researchers = [address(f"researcher-{i}") for i in range(6)]
        self.apps = [address(f"app-{i}") for i in range(4)]
        self.overseers = [address("commissioner"), address("auditor")]
        self.care: dict[str, list[str]] = {}
        self.study: dict[str, str] = {}
        #: each patient's records: (id, category, header as recordAccess takes it)
        self.records: dict[str, list[tuple[bytes, int, tuple[Any, ...]]]] = {p: [] for p in self.patients}

    @property
    def grantees(self) -> list[str]:
        return self.clinicians + self.researchers + self.apps

    def register(self, registrar: str) -> None:
        self.load.fund(self.patients + self.grantees)
        kinds = (
            [(c, codes.ParticipantKind.CLINICIAN) for c in self.clinicians]
            + [(r, codes.ParticipantKind.RESEARCHER) for r in self.researchers]
            + [(a, codes.ParticipantKind.APP) for a in self.apps]
            + [
                (self.overseers[0], codes.ParticipantKind.COMMISSIONER),
                (self.overseers[1], codes.ParticipantKind.AUDITOR),
            ]
        )
        for account, kind in kinds:
            self.load.add(
                registrar, "participant", "registerParticipant", account, int(kind), b"\x02" * 32, b"\x03" * 32
            )
        for p in self.patients:
            keys = [self.rng.randbytes(32) for _ in codes.Category]
            self.load.add(p, "patient", "registerPatient", b"\x01" * 32, keys)
        self.load.mine()

    def consent(self) -> None:
        """Two GPs read, the first also writes; a fifth join a study, a tenth use an app; a few
        later withdraw from the app."""
        everything, rng = codes.all_mask(codes.Category), self.rng
        for p in self.patients:
            self.care[p] = rng.sample(self.clinicians, 2)
            for grantee, access in ((self.care[p][0], 0), (self.care[p][1], 0), (self.care[p][0], 1)):
                self._grant(p, grantee, access, everything, P.DIRECT_CARE)
            if rng.random() < 0.2:
                self.study[p] = rng.choice(self.researchers)
                self._grant(p, self.study[p], 0, 1 << 4 | 1 << 3, P.RESEARCH)
            if rng.random() < 0.1:
                app = rng.choice(self.apps)
                self._grant(p, app, 0, 1 << int(codes.Category.DEVICE_DATA), P.COMMERCIAL)
                if rng.random() < 0.3:
                    self.load.add(p, "revoke", "revoke", p, app, 0)
        self.load.mine()

    def _grant(self, patient: str, grantee: str, access: int, categories: int, purpose: codes.Purpose) -> None:
        terms = (categories, 1 << int(purpose), 0, NEVER)  # no key envelope: key release is not measured here
        self.load.add(patient, "grant", "grant", patient, grantee, access, terms, b"\x00" * 32)

    def write(self, per_patient: int = 5) -> None:
        for p in self.patients:
            for _ in range(per_patient):
                rid, category = self.rng.randbytes(32), self.rng.choice([2, 3, 4, 4, 4, 5, 11, 12])
                author, fingerprint = self.care[p][0], self.rng.randbytes(32)
                header = (author, category, 1, False, False, 0, fingerprint, ZERO, ZERO)
                self.records[p].append((rid, category, header))
                self.load.add(
                    author, "record", "registerRecord", p, rid, category, int(P.DIRECT_CARE), 1, fingerprint,
                    RAW, self.rng.randbytes(32),
                )  # fmt: skip
        self.load.mine()

    def read(self, events: int, emergencies: int) -> None:
        """``events`` events spread over a year: reads (a tenth by studies, the rest by GPs) and
        ``emergencies`` times a clinician opening emergency access and reading at once (same sender,
        same block: two events)."""
        load, rng = self.load, self.rng
        plain = max(0, events - 2 * emergencies)
        load.seconds_per_block = max(60, 12 * MONTH * (load.block_gas // GAS["access"]) // max(1, plain))
        studied = [p for p in self.study if any(c in (3, 4) for _, c, _ in self.records[p])]
        every, opened = max(1, plain // max(1, emergencies)), 0
        for i in range(plain):
            if i % every == 0 and opened < emergencies:
                opened += 1
                clinician, patient = rng.choice(self.clinicians), rng.choice(self.patients)
                if load.pending_gas + GAS["emergency"] + GAS["access"] > load.block_gas:
                    load.mine()
                load.add(clinician, "emergency", "openEmergencyAccess", patient, 3600, b"\x05" * 32)
                self._access(clinician, patient, rng.choice(self.records[patient]), P.EMERGENCY)
            if studied and rng.random() < 0.1:
                p = rng.choice(studied)
                record = rng.choice([r for r in self.records[p] if r[1] in (3, 4)])
                self._access(self.study[p], p, record, P.RESEARCH)
            else:
                p = rng.choice(self.patients)
                self._access(rng.choice(self.care[p]), p, rng.choice(self.records[p]), P.DIRECT_CARE)
        load.mine()

    def _access(self, reader: str, patient: str, record: tuple[bytes, int, tuple[Any, ...]], purpose: P) -> None:
        rid, _, header = record
        self.load.add(reader, "access", "recordAccess", patient, rid, header, int(purpose))


def populate(w3: Web3, contract: Any, url: str, target_events: int) -> Population:
    load = Loader(w3, contract, url)
    pop = Population(load, max(20, target_events // 50))
    pop.register(w3.eth.accounts[0])
    pop.consent()
    pop.write()
    emergencies = max(10, target_events // 400)
    pop.read(target_events - load.count_logs(), emergencies)
    load.rpc([("evm_setAutomine", [True])])
    return pop


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def latencies(fn: Callable[[str], Any], keys: list[str]) -> tuple[float, float]:
    """(p50, p95) in milliseconds of ``fn`` over ``keys``."""
    samples = []
    for key in keys:
        start = time.perf_counter()
        fn(key)
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    return statistics.median(samples), samples[max(0, int(len(samples) * 0.95) - 1)]


def deploy(w3: Web3) -> tuple[Any, Deployment]:
    artifact = deployable_artifact()
    admin = w3.eth.accounts[0]
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    receipt = w3.eth.wait_for_transaction_receipt(factory.constructor(admin).transact({"from": admin}))
    deployment = Deployment(
        int(w3.eth.chain_id),
        artifact.name,
        receipt["contractAddress"],
        artifact.abi,
        admin,
        int(receipt["blockNumber"]),
        "0x" + bytes(receipt["transactionHash"]).hex(),
    )
    return w3.eth.contract(address=deployment.address, abi=artifact.abi), deployment


def index_rate(url: str, target: Target, rpc_url: str) -> tuple[float, IndexStore]:
    """Events per second indexing from an empty database to the head."""
    store = IndexStore.open(url, target, reset=True)
    seconds, result = timed(lambda: Indexer(store, RpcSource(rpc_url)).sync())
    return result.events / seconds, store


def query_latency(store: IndexStore, pop: Population, samples: int = 200) -> dict[str, float]:
    reader, rng = IndexReader(store.engine), random.Random(11)
    patients = [rng.choice(pop.patients) for _ in range(samples)]
    grantees = [rng.choice(pop.grantees) for _ in range(samples)]
    reader.trail(patients[0]), reader.grants_held(grantees[0])  # open the pooled connection
    checksum.cache_clear()  # each series starts with a cold address memo
    trail = latencies(reader.trail, patients)
    checksum.cache_clear()
    grants = latencies(reader.grants_held, grantees)
    return {
        "trail_query_p50_ms": trail[0],
        "trail_query_p95_ms": trail[1],
        "grants_query_p50_ms": grants[0],
        "grants_query_p95_ms": grants[1],
        "trail_rows_mean": statistics.mean(len(reader.trail(p)) for p in patients[:50]),
        "grants_rows_mean": statistics.mean(len(reader.grants_held(g)) for g in grantees[:50]),
    }


def report_time(store: IndexStore, pop: Population, now: int, chart_dir: Path) -> tuple[float, float]:
    """(seconds for the report with JSON and CSV, seconds for its PNG chart)."""
    from medledger.oversight.chart import render

    def build() -> Any:
        report = build_report(
            store.engine,
            requested_by=pop.overseers[0],
            requester_kind=codes.ParticipantKind.COMMISSIONER,
            now=now,
            period=Period(),
        )
        report.to_csv(), json.dumps(report.to_json())
        return report

    seconds, report = timed(build)
    chart_seconds, _ = timed(lambda: render(report, chart_dir / "oversight.png"))
    return seconds, chart_seconds


def view_latency(
    home: Path, rpc_url: str, deployment: Deployment, index_url: str, pop: Population, samples: int = 20
) -> dict[str, float]:
    """p50 in milliseconds of the audit view (``audit.trail``: what ``medledger audit`` lists) of one
    patient, read through the index and through a scan of the chain's logs (the same rows)."""
    write_deployment(home / "deployments", deployment)
    settings = Settings(home=home, rpc_url=rpc_url, chain_id=deployment.chain_id, rpc_timeout=300)
    client = Client.connect(settings)
    patients = random.Random(13).sample(pop.patients, samples)
    figures = {}
    for source, history in (("logs", LogScan(client.contract)), ("index", open_history(client, url=index_url))):
        assert history.source.kind == source
        client.use_history(history)
        audit.trail(client, patients[0])  # connections open, caches warm for both alike
        figures[f"audit_view_{source}_p50_ms"] = latencies(lambda p: audit.trail(client, p), patients)[0]
    return figures


def run(events: int, keep_chart: Path | None) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="medledger-bench-index-") as tmp:
        config = node.NodeConfig.ephemeral(Path(tmp) / "node", services=("anvil",), anvil_state_interval=None)
        with node.running_services(config), temporary_postgres(durable=True) as pg_admin:
            w3 = Web3(HTTPProvider(config.rpc_url, request_kwargs={"timeout": 300}))
            contract, deployment = deploy(w3)
            figures["populate_s"], pop = timed(lambda: populate(w3, contract, config.rpc_url, events))
            target = Target.of(deployment)
            figures["index_events_per_s_sqlite"], lite = index_rate(
                f"sqlite:///{Path(tmp) / 'index.sqlite'}", target, config.rpc_url
            )
            pg_url = create_database(pg_admin, "bench_index")
            figures["index_events_per_s_postgres"], pg = index_rate(pg_url, target, config.rpc_url)
            figures["events"] = IndexReader(lite.engine).status().events
            figures["blocks"] = int(w3.eth.block_number) - deployment.block_number + 1
            figures["patients"], figures["grantees"] = len(pop.patients), len(pop.grantees)
            figures.update(query_latency(lite, pop))
            figures.update({f"{k}_postgres": v for k, v in query_latency(pg, pop).items() if k.endswith("_ms")})
            now = int(w3.eth.get_block("latest")["timestamp"])
            chart_dir = keep_chart or Path(tmp)
            figures["oversight_report_s"], figures["oversight_chart_s"] = report_time(lite, pop, now, chart_dir)
            figures["oversight_report_s_postgres"], _ = report_time(pg, pop, now, Path(tmp))
            sqlite_url = f"sqlite:///{Path(tmp) / 'index.sqlite'}"
            figures.update(view_latency(Path(tmp) / "home", config.rpc_url, deployment, sqlite_url, pop))
            figures["sqlite_mb"] = round((Path(tmp) / "index.sqlite").stat().st_size / 2**20, 1)
            lite.close()
            pg.close()
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in figures.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--events", type=int, default=100_000, help="events on the chain (default 100,000)")
    parser.add_argument("--chart", type=Path, default=None, help="keep the oversight chart in this directory")
    args = parser.parse_args(argv)
    figures = run(args.events, args.chart)
    if args.json:
        print(json.dumps(figures))
        return 0
    rows = [
        ("events indexed", f"{figures['events']:,} in {figures['blocks']:,} blocks", ""),
        ("indexing rate, SQLite", f"{figures['index_events_per_s_sqlite']:,.0f} events/s", ">= 5,000"),
        ("indexing rate, PostgreSQL", f"{figures['index_events_per_s_postgres']:,.0f} events/s", ">= 5,000"),
        (
            "patient trail p50 / p95",
            f"{figures['trail_query_p50_ms']} / {figures['trail_query_p95_ms']} ms "
            f"(PostgreSQL {figures['trail_query_p50_ms_postgres']} / {figures['trail_query_p95_ms_postgres']})",
            "p50 <= 10",
        ),
        (
            "grantee grants p50 / p95",
            f"{figures['grants_query_p50_ms']} / {figures['grants_query_p95_ms']} ms "
            f"(PostgreSQL {figures['grants_query_p50_ms_postgres']} / {figures['grants_query_p95_ms_postgres']})",
            "p50 <= 10",
        ),
        (
            "oversight report",
            f"{figures['oversight_report_s']} s (PostgreSQL {figures['oversight_report_s_postgres']} s;"
            f" chart {figures['oversight_chart_s']} s)",
            "<= 2",
        ),
        (
            "audit view p50, index / logs",
            f"{figures['audit_view_index_p50_ms']} / {figures['audit_view_logs_p50_ms']} ms (same rows)",
            "",
        ),
    ]
    for name, value, goal in rows:
        print(f"{name:28} {value:58} {goal}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Ingest throughput, grant-to-first-read latency and memory, end to end on real services.

    python bench/ingest.py           # a table
    python bench/ingest.py --json    # one JSON object (ingest_ratio_100kb, ingest_ratio_10mb, peak_rss_mb_1gb, ...)
    python bench/ingest.py --quick   # smaller counts and a 256 MB file instead of 1 GB

Starts its own anvil and IPFS node on free 127.0.0.1 ports in a temporary directory.
- Records per second ingested end to end (validate, encrypt, add to IPFS, register on chain) by a
  clinician holding a write consent, through :class:`medledger.ingest.Ingestor`, for 1 KB (FHIR
  Observations, validated), 100 KB and 10 MB (attachments), next to the raw `add` throughput of the
  same IPFS node for the same sizes **at the same concurrency**: as many threads as the ingestor has
  workers, each adding (and pinning) as many contents per request as the ingestor does
  (several per multipart request up to ``SMALL_RECORD`` bytes, one streamed add each above). Targets:
  at least 70% of it from 100 KB up; at least 200 records per second end to end at 1 KB.
- Grant-to-first-read latency: from the patient's grant (with its key envelope) to the grantee's
  first verified read (consent check, audit entry, fetch, CID and fingerprint checks, decrypt).
- Peak memory (RSS) of a Python process ingesting one 1 GB file (target: under 200 MB).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import resource
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from medledger import codes, consent, node, participants, records  # noqa: E402
from medledger.chain import Chain, deploy_medledger  # noqa: E402
from medledger.client import Client  # noqa: E402
from medledger.config import Settings  # noqa: E402
from medledger.demo import identities  # noqa: E402
from medledger.ingest import GROUP, SMALL_RECORD, WORKERS, Ingestor  # noqa: E402

KB, MB = 1024, 1024 * 1024
C, P, A = codes.Category, codes.Purpose, codes.Access
CAST = ["admin", "patient", "clinician", "r1", "r2", "r3", "r4", "r5"]


def fhir_observation(index: int, size: int) -> bytes:
    """A valid FHIR R4 Observation of about ``size`` bytes (the note pads it)."""
    obs = {
        "resourceType": "Observation",
        "id": f"obs-{index}",
        "status": "final",
        "code": {"coding": [{"system": "http://loinc.org", "code": "8867-4", "display": "Heart rate"}]},
        "valueQuantity": {"value": 60 + index % 40, "unit": "beats/minute"},
        "note": [{"text": ""}],
    }
    body = json.dumps(obs)
    obs["note"][0]["text"] = "x" * max(0, size - len(body))
    return json.dumps(obs).encode()


def deployed_cast(config: node.NodeConfig, home: Path, names: list[str]) -> tuple[Client, dict]:
    """Deploy with ``admin``, register ``patient``; every other name is a clinician ("clinician")
    or a researcher. (Shared by the benchmarks.)"""
    cast = identities(config.mnemonic, names)
    settings = Settings(home=home, rpc_url=config.rpc_url, ipfs_api=config.ipfs_api, ipfs_timeout=120)
    deploy_medledger(Chain(config.rpc_url), cast["admin"].account, settings.deployments)
    client = Client.connect(settings)
    participants.register_patient(client, cast["patient"])
    for name in names[2:]:
        kind = codes.ParticipantKind.CLINICIAN if name == "clinician" else codes.ParticipantKind.RESEARCHER
        participants.register_participant(
            client, cast["admin"], cast[name].address, kind, b"\1" * 32, cast[name].encryption.public
        )
    return client, cast


def _setup(config: node.NodeConfig, home: Path) -> tuple[Client, dict]:
    client, cast = deployed_cast(config, home, CAST)
    everything = [C.OBSERVATIONS, C.IMAGING, C.CLINICAL_DOCUMENTS]
    consent.grant(client, cast["patient"], cast["clinician"].address, A.WRITE, everything, [P.DIRECT_CARE])
    return client, cast


def raw_adds(client: Client, size: int, count: int) -> float:
    """Contents of ``size`` bytes added and pinned per second the way the ingestor adds them: WORKERS
    threads, each taking up to GROUP queued contents per multipart request (pinned in it)
    for small ones, one streamed add (and pin) each for large ones."""
    todo: queue.Queue[bytes] = queue.Queue()
    for _ in range(count):
        todo.put(os.urandom(size))

    def work() -> None:
        while True:
            group = []
            while len(group) < (GROUP if size <= SMALL_RECORD else 1):
                try:
                    group.append(todo.get_nowait())
                except queue.Empty:
                    break
            if not group:
                return
            if size <= SMALL_RECORD:
                client.store.add_many(group)
            else:
                client.store.add_stream(group[0])

    start = time.perf_counter()
    threads = [threading.Thread(target=work) for _ in range(WORKERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return count / (time.perf_counter() - start)


def throughput(client: Client, cast: dict, size: int, count: int) -> tuple[float, float, float]:
    """(raw adds per second at the ingestor's concurrency, end-to-end records per second, this process's
    CPU milliseconds per record) for records of ``size`` bytes. The CPU time (all threads) is what
    medledger's own Python costs per record; unlike the rates it hardly moves when other processes load
    the machine."""
    raw = raw_adds(client, size, count)

    if size <= 4 * KB:
        inputs = [fhir_observation(i, size) for i in range(count)]
        category, content_type = C.OBSERVATIONS, records.FHIR_CONTENT_TYPE
    else:
        inputs = [os.urandom(size) for _ in range(count)]
        category, content_type = C.IMAGING, "application/dicom"
    start, cpu = time.perf_counter(), time.process_time()
    with Ingestor(
        client, cast["clinician"], cast["patient"].address, category=category, content_type=content_type
    ) as ingest:
        futures = [ingest.submit(data) for data in inputs]
    results = [f.result() for f in futures]
    end_to_end = count / (time.perf_counter() - start)
    cpu_ms = (time.process_time() - cpu) * 1000 / count
    assert len({r.record_id for r in results}) == count
    return raw, end_to_end, cpu_ms


def grant_to_first_read(client: Client, cast: dict) -> list[float]:
    record = records.write_record(client, cast["clinician"], cast["patient"].address, fhir_observation(0, 1 * KB))
    latencies = []
    for name in CAST[3:]:
        start = time.perf_counter()
        consent.grant(client, cast["patient"], cast[name].address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
        result = records.read_record(client, cast[name], record.record_id, purpose=P.RESEARCH)
        latencies.append(time.perf_counter() - start)
        assert result.data is not None
    return latencies


def peak_rss_mb() -> float:
    """This process's peak RSS (VmHWM). Not ru_maxrss: Linux keeps that across execve, so a spawned
    child would report its parent's high-water mark."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # pragma: no cover - not Linux


def _ingest_big_file(rpc_url: str, ipfs_api: str, home: str, path: str, out: multiprocessing.Queue) -> None:
    """Child process: ingest one big file and report its peak RSS."""
    settings = Settings(home=Path(home), rpc_url=rpc_url, ipfs_api=ipfs_api, ipfs_timeout=600, rpc_timeout=120)
    client = Client.connect(settings)
    cast = identities(node.DEFAULT_MNEMONIC, CAST)
    base = peak_rss_mb()
    start = time.perf_counter()
    result = records.write_record(
        client,
        cast["clinician"],
        cast["patient"].address,
        Path(path),
        category=C.IMAGING,
        content_type="application/dicom",
    )
    took = time.perf_counter() - start
    out.put(
        {
            "peak_rss_mb": peak_rss_mb(),
            "rss_before_mb": base,
            "seconds": took,
            "size": result.size,
        }
    )


def big_file(config: node.NodeConfig, home: Path, size: int) -> dict:
    path = home / "big.dcm"
    with path.open("wb") as f:  # sparse: the input's content does not matter, its ciphertext is random
        f.truncate(size)
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    child = ctx.Process(target=_ingest_big_file, args=(config.rpc_url, config.ipfs_api, str(home), str(path), out))
    child.start()
    child.join()
    path.unlink()
    if child.exitcode != 0:
        raise RuntimeError(f"the big-file ingest process failed with exit code {child.exitcode}")
    return out.get()


def run(quick: bool) -> dict:
    with tempfile.TemporaryDirectory(prefix="medledger-bench-") as tmp:
        config = node.NodeConfig.ephemeral(Path(tmp) / "node")
        with node.running_services(config):
            client, cast = _setup(config, Path(tmp))
            figures: dict[str, float] = {}
            plan = [
                ("1kb", 1 * KB, 200 if quick else 1000),
                ("100kb", 100 * KB, 60 if quick else 300),
                ("10mb", 10 * MB, 3 if quick else 8),
            ]
            throughput(client, cast, 1 * KB, 100)  # warm-up (the node's first requests are slower), not counted
            for label, size, count in plan:
                raw, e2e, cpu_ms = throughput(client, cast, size, count)
                figures[f"raw_add_per_s_{label}"] = round(raw, 2)
                figures[f"ingest_per_s_{label}"] = round(e2e, 2)
                figures[f"ingest_ratio_{label}"] = round(e2e / raw, 3)
                figures[f"ingest_mb_per_s_{label}"] = round(e2e * size / MB, 2)
                figures[f"ingest_cpu_ms_per_record_{label}"] = round(cpu_ms, 2)
            latencies = grant_to_first_read(client, cast)
            figures["grant_to_first_read_ms_median"] = round(statistics.median(latencies) * 1000, 1)
            figures["grant_to_first_read_ms_max"] = round(max(latencies) * 1000, 1)
            size = (256 if quick else 1024) * MB
            big = big_file(config, Path(tmp), size)
            key = "peak_rss_mb_1gb" if not quick else "peak_rss_mb_256mb"
            figures[key] = round(big["peak_rss_mb"], 1)
            figures["big_file_mb_per_s"] = round(size / MB / big["seconds"], 1)
            return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    parser.add_argument("--quick", action="store_true", help="smaller counts and a 256 MB file")
    args = parser.parse_args(argv)
    figures = run(args.quick)
    if args.json:
        print(json.dumps(figures, sort_keys=True))
        return 0
    print(f"{'size':<8}{'raw add/s':>11}{'ingest/s':>10}{'ratio':>8}{'ingest MB/s':>13}")
    for label in ("1kb", "100kb", "10mb"):
        print(
            f"{label:<8}{figures[f'raw_add_per_s_{label}']:>11.1f}{figures[f'ingest_per_s_{label}']:>10.1f}"
            f"{figures[f'ingest_ratio_{label}']:>8.2f}{figures[f'ingest_mb_per_s_{label}']:>13.2f}"
        )
    cpu = ", ".join(f"{label} {figures[f'ingest_cpu_ms_per_record_{label}']} ms" for label in ("1kb", "100kb", "10mb"))
    print(f"CPU time of this process per record ingested: {cpu}")
    print(f"\nraw adds at the ingestor's concurrency: {WORKERS} threads, up to {GROUP} contents per request")
    print("targets: ingest at least 70% of raw add throughput from 100 KB up; at least 200 records/s at 1 KB")
    median, worst = figures["grant_to_first_read_ms_median"], figures["grant_to_first_read_ms_max"]
    print(f"grant-to-first-read latency: median {median} ms, max {worst} ms")
    for key in ("peak_rss_mb_1gb", "peak_rss_mb_256mb"):
        if key in figures:
            size = "1 GB" if key.endswith("1gb") else "256 MB"
            rate = figures["big_file_mb_per_s"]
            print(f"peak RSS ingesting one {size} file: {figures[key]} MB (target: under 200 MB), {rate} MB/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

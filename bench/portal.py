"""The portal's figures, in a real headless Chromium against real services.

    python bench/portal.py           # a table
    python bench/portal.py --json    # one JSON object
    python bench/portal.py --quick   # 200 trail events instead of 1,000, 3 runs instead of 5

Starts its own anvil and IPFS node on free 127.0.0.1 ports in a temporary directory, and the portal
server in a thread; the browser's wallet forwards to anvil.

- Time to first paint of the consents and the audit pages for a patient with 1,000 trail events:
  from navigation start until the page's content (tables, timeline) was rendered and painted, and
  the browser's first contentful paint (the page shell); median of fresh page loads.
- Time from "sign" to the grant being readable on chain through the relayer: from the click on
  "Sign with my wallet" (a read grant: key envelope sealed in the page and stored, EIP-712
  signature, relayer checks, transaction) until ``consent()`` on chain returns the new terms.
- Time from "revoke" (relayed) until the category has new keys: the revocation makes the released
  key stale; the page renews it (her envelope, ``setCategoryKeys``, envelopes to the remaining
  readers, each a wallet transaction) and reports it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.ingest import deployed_cast  # noqa: E402
from medledger import codes, consent, node, records  # noqa: E402
from medledger.chain import Tx  # noqa: E402
from medledger.client import Client  # noqa: E402
from medledger.keystore import Keystore  # noqa: E402
from medledger.portal.app import create_app  # noqa: E402
from medledger.portal.backend import Backend  # noqa: E402
from medledger.portal.relayer import Relayer  # noqa: E402
from medledger.portal.server import running  # noqa: E402
from tests.python.portal.browser import Wallet, chromium  # noqa: E402

C, P, A = codes.Category, codes.Purpose, codes.Access
CAST = ["admin", "patient", "clinician", "relayer", "r1", "r2", "r3", "r4", "r5", "r6"]
PASSPHRASE = "bench passphrase"
OBS = b'{"resourceType":"Observation","status":"final","code":{"text":"heart rate"},"valueQuantity":{"value":61}}'


def _send_fast(client: Client, sender, calls: list[tuple[str, list]]) -> None:
    """Many transactions from one account: signed locally, sent without waiting, then one receipt."""
    chain = client.chain
    nonce = int(chain.rpc("eth_getTransactionCount", [sender.address, "pending"]), 16)
    price = int(chain.rpc("eth_gasPrice", []), 16) * 2
    last = None
    for i, (fn, args) in enumerate(calls):
        tx = {
            "to": client.deployment.address,
            "data": client.contract.calldata(Tx(fn, tuple(args))),
            "gas": 300_000,
            "gasPrice": price,
            "nonce": nonce + i,
            "chainId": chain.chain_id,
            "value": 0,
        }
        last = chain.rpc("eth_sendRawTransaction", ["0x" + sender.account.sign_transaction(tx).raw_transaction.hex()])
    while last and not chain.rpc("eth_getTransactionReceipt", [last]):
        time.sleep(0.05)


def make_trail(client: Client, cast: dict, events: int) -> int:
    """A trail of ``events`` events: consent changes, records written, and reads by a study."""
    patient, clinician = cast["patient"], cast["clinician"]
    consent.grant(client, patient, clinician.address, A.WRITE, [C.OBSERVATIONS], [P.DIRECT_CARE])
    consent.grant(client, patient, cast["r1"].address, A.READ, [C.OBSERVATIONS], [P.RESEARCH])
    written = [records.write_record(client, clinician, patient.address, OBS).record_id for _ in range(10)]
    changes = events // 10 - 2
    masks = [codes.categories_to_mask([C.OBSERVATIONS]), codes.categories_to_mask([C.OBSERVATIONS, C.IMAGING])]
    _send_fast(
        client,
        patient,
        [
            ("grant", [patient.address, cast[f"r{2 + i % 5}"].address, 1, (masks[i % 2], 2, 0, 2**64 - 1), b"\0" * 32])
            for i in range(changes)
        ],
    )
    reads = events - 12 - changes
    headers = [client.contract.record(patient.address, rid).current().as_abi() for rid in written]
    accesses = [
        ("recordAccess", [patient.address, written[i % 10], headers[i % 10], int(P.RESEARCH)]) for i in range(reads)
    ]
    _send_fast(client, cast["r1"], accesses)
    return len(Backend(client).trail(patient.address))


_TIMES = """() => {
  const mark = performance.getEntriesByName(`medledger:${location.pathname}:painted`)[0];
  const fcp = performance.getEntriesByName("first-contentful-paint")[0];
  return mark && { content: mark.startTime, shell: fcp ? fcp.startTime : null };
}"""


def _log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def first_paint(browser, url: str, rpc_url: str, address: str, path: str, runs: int) -> dict[str, float]:
    content, shell = [], []
    for _ in range(runs):
        page = browser.new_page()
        Wallet(rpc_url, address).inject(page)
        page.goto(url + path)
        page.wait_for_function(_TIMES, timeout=120_000)
        times = page.evaluate(_TIMES)
        content.append(times["content"])
        shell.append(times["shell"] or 0.0)
        page.close()
    return {"content_ms": statistics.median(content), "shell_ms": statistics.median(shell)}


def _unlocked_page(browser, url: str, rpc_url: str, address: str, keystore: Path):
    page = browser.new_page()
    Wallet(rpc_url, address).inject(page)
    page.goto(url + "/")
    page.wait_for_selector("body[data-ready='/']")
    page.set_input_files("input[type=file]", str(keystore))
    page.fill("input[type=password]", PASSPHRASE)
    page.click("text=Unlock my keys")
    page.wait_for_selector("#keys-state:has-text('Unlocked')")
    page.click("nav a[href='/consents']")
    page.wait_for_selector("body[data-ready='/consents']")
    return page


GRANTED = [C.GENOMICS, C.IMAGING, C.MEDICATIONS, C.ALLERGIES, C.CONDITIONS]


def sign_to_chain(browser, url: str, rpc_url: str, client: Client, cast: dict, keystore: Path, runs: int) -> float:
    patient = cast["patient"]
    page = _unlocked_page(browser, url, rpc_url, patient.address, keystore)
    latencies = []
    for i in range(runs):
        grantee = cast[f"r{2 + i % 5}"].address
        category = GRANTED[i % 5]
        page.click("#new-consent")
        page.select_option("#consent-form select", value=grantee)
        page.check(f"#consent-form label:text-is('{codes.label(category)}')")
        page.check("#consent-form label:text-is('research')")
        page.click("text=Review the change")
        page.wait_for_selector("#sign")
        start = time.perf_counter()
        page.click("#sign")
        while category not in consent.consent_of(client, patient.address, grantee, A.READ).categories:
            if time.perf_counter() - start > 60 or page.locator("#alert").is_visible():
                raise SystemExit(f"the relayed grant did not reach the chain: {page.inner_text('#alert')}")
            time.sleep(0.005)
        latencies.append((time.perf_counter() - start) * 1000)
        page.wait_for_selector("#status:has-text('The consent is on chain')")
    page.close()
    return statistics.median(latencies)


def revoke_to_new_keys(browser, url: str, rpc_url: str, client: Client, cast: dict, keystore: Path, runs: int) -> float:
    """Revoke (relayed) the grants ``sign_to_chain`` made, each renewing its category's keys in the page."""
    patient = cast["patient"]
    client.chain.rpc("evm_increaseTime", [2])  # a signed revocation must be newer than the grant
    client.chain.rpc("evm_mine", [])
    page = _unlocked_page(browser, url, rpc_url, patient.address, keystore)
    latencies = []
    for i in range(runs):
        grantee = cast[f"r{2 + i % 5}"].address
        before = client.contract.category_key(patient.address, GRANTED[i % 5]).epoch
        page.click(f"button[aria-label='Revoke the read consent of {grantee}']")
        start = time.perf_counter()
        page.click("#confirm-revoke")
        page.wait_for_selector("#status:has-text('New keys for'), #alert:not([hidden])", timeout=120_000)
        latencies.append((time.perf_counter() - start) * 1000)
        if page.locator("#alert").is_visible():
            raise SystemExit(f"the revocation failed: {page.inner_text('#alert')}")
        assert client.contract.category_key(patient.address, GRANTED[i % 5]).epoch == before + 1
        page.wait_for_selector("body[data-ready='/consents']")
    page.close()
    return statistics.median(latencies)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    events, runs = (200, 3) if args.quick else (1000, 5)
    with tempfile.TemporaryDirectory(prefix="medledger-bench-portal-") as tmp:
        config = node.NodeConfig.ephemeral(Path(tmp) / "node", anvil_accounts=len(CAST))
        with node.running_services(config):
            client, cast = deployed_cast(config, Path(tmp) / "home", CAST)
            _log("building the trail…")
            trail_events = make_trail(client, cast, events)
            _log(f"{trail_events} trail events; measuring in the browser…")
            keystore = Keystore(Path(tmp) / "keys", scrypt_n=2**15)
            keystore.create(
                "patient", PASSPHRASE, cast["patient"].account.key, encryption_secret=cast["patient"].encryption.secret
            )
            backend = Backend(client)
            start = time.perf_counter()
            backend.trail(cast["patient"].address)
            api_trail_ms = (time.perf_counter() - start) * 1000
            app = create_app(backend, Relayer(backend, cast["relayer"], limit=1000))
            with running(app) as url, chromium() as browser:
                rpc, who = config.rpc_url, cast["patient"].address
                consents = first_paint(browser, url, rpc, who, "/consents", runs)
                audit = first_paint(browser, url, rpc, who, "/audit", runs)
                sign_ms = sign_to_chain(browser, url, rpc, client, cast, keystore.path_for("patient"), runs)
                rotate_ms = revoke_to_new_keys(browser, url, rpc, client, cast, keystore.path_for("patient"), runs)
    figures = {
        "trail_events": trail_events,
        "consents_content_paint_ms": round(consents["content_ms"]),
        "consents_shell_paint_ms": round(consents["shell_ms"]),
        "audit_content_paint_ms": round(audit["content_ms"]),
        "audit_shell_paint_ms": round(audit["shell_ms"]),
        "api_trail_ms": round(api_trail_ms),
        "sign_to_chain_relayed_ms": round(sign_ms),
        "revoke_to_new_keys_ms": round(rotate_ms),
    }
    if args.json:
        print(json.dumps(figures))
        return
    print(f"portal, patient with {trail_events} trail events (median of {runs} fresh page loads)")
    print(
        f"  consents page: content painted {figures['consents_content_paint_ms']} ms "
        f"(first contentful paint {figures['consents_shell_paint_ms']} ms)"
    )
    print(
        f"  audit page:    content painted {figures['audit_content_paint_ms']} ms "
        f"(first contentful paint {figures['audit_shell_paint_ms']} ms); server builds the trail in "
        f"{figures['api_trail_ms']} ms"
    )
    print(f"  sign -> grant readable on chain through the relayer: {figures['sign_to_chain_relayed_ms']} ms (median)")
    print(
        f"  revoke (relayed) -> the category's keys renewed in the page: {figures['revoke_to_new_keys_ms']} ms (median)"
    )


if __name__ == "__main__":
    main()

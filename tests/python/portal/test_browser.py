"""End to end: headless Chromium drives the portal against the real anvil, IPFS node and portal
server, with a wallet that forwards to anvil. Each test leaves a screenshot in reports/portal/."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from medledger import codes, consent, records
from medledger.crypto import KeyPair
from medledger.keyring import Keyring
from medledger.keystore import Identity

from .conftest import PASSPHRASE, anvil_account

OBS = {
    "resourceType": "Observation",
    "status": "final",
    "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4", "display": "Hemoglobin A1c"}]},
    "valueQuantity": {"value": 6.1, "unit": "%"},
}
R, W = codes.Access.READ, codes.Access.WRITE
OBSERVATIONS, GENOMICS = codes.Category.OBSERVATIONS, codes.Category.GENOMICS
RESEARCH = codes.Purpose.RESEARCH


def unlock_keys(page, keystore: Path) -> None:
    go(page, "/")
    page.set_input_files("input[type=file]", str(keystore))
    page.fill("input[type=password]", PASSPHRASE)
    page.click("text=Unlock my keys")
    page.wait_for_selector("#keys-state:has-text('Unlocked'), #alert:not([hidden])")
    assert page.locator("#alert").is_hidden(), f"the page refused: {page.inner_text('#alert')}"


def later(client, days: float) -> None:
    """Move chain time on (the timeline spreads its events; a signed request must be newer than the
    consent's last decision, made in an earlier second)."""
    client.chain.rpc("evm_increaseTime", [max(1, int(days * 86400))])
    client.chain.rpc("evm_mine", [])


def done(page, text: str, timeout: float = 30_000) -> None:
    """Wait for the status line to say ``text``; fail with the page's alert if it shows one first."""
    page.wait_for_selector(f"#status:has-text('{text}'), #alert:not([hidden])", timeout=timeout)
    alert = page.locator("#alert")
    assert alert.is_hidden(), f"the page refused: {alert.inner_text()}"


def go(page, path: str) -> None:
    page.click(f"nav a[href='{path}']")
    page.wait_for_selector(f"body[data-ready='{path}']")


def new_consent(page, grantee: str, categories: list[str], purposes: list[str], *, read: bool = True) -> None:
    page.click("#new-consent")
    page.select_option("#consent-form select", value=grantee)
    page.check(
        "#consent-form label:text-is('Read the records')"
        if read
        else "#consent-form label:text-is('Add records to the file')"
    )
    for label in categories + purposes:
        page.check(f"#consent-form label:text-is('{label}')")


def lisa_with_a_record(open_portal, client, patient, clinician, keystore_file):
    """Her GP wrote an observation; she has the portal open with her keys unlocked."""
    consent.grant(client, patient, clinician.address, W, [OBSERVATIONS], [codes.Purpose.DIRECT_CARE])
    written = records.write_record(client, clinician, patient.address, json.dumps(OBS).encode())
    s = open_portal(patient.address)
    unlock_keys(s.page, keystore_file(patient))
    return s, written


def test_connect_and_register_from_the_page(open_portal, portal, node_config, client):
    fresh = anvil_account(node_config, 10)
    s = open_portal(fresh.address)
    page = s.page
    assert page.inner_text("#registered") == "not registered"
    s.shot("register")
    page.fill("input[autocomplete=new-password] >> nth=0", PASSPHRASE)
    page.fill("input[autocomplete=new-password] >> nth=1", PASSPHRASE)
    with page.expect_download(timeout=60_000) as download:
        page.click("text=Create my keys and register")
    key_file = json.loads(Path(download.value.path()).read_text())
    page.wait_for_selector("#registered:text-is('registered')", timeout=60_000)

    # the key file opens with the keystore's own construction (scrypt + AES-256-GCM, same AD) ...
    enc = key_file["encryption"]
    params = enc["kdfparams"]
    key = hashlib.scrypt(
        PASSPHRASE.encode(),
        salt=bytes.fromhex(params["salt"]),
        n=params["n"],
        r=params["r"],
        p=params["p"],
        dklen=32,
        maxmem=2**30,
    )
    public = bytes.fromhex(key_file["encryption_public_key"][2:])
    ad = b"medledger/keystore/v1" + bytes.fromhex(fresh.address[2:]) + public
    secret = AESGCM(key).decrypt(bytes.fromhex(enc["nonce"]), bytes.fromhex(enc["ciphertext"]), ad)
    assert params["n"] == 2**18 and KeyPair.from_secret(secret).public == public
    # ... its public key is the one registered on chain with 13 category keys (epoch 1), and the
    # envelope the page sent her opens with the Python keyring, every secret matching the chain's
    # public key: the formats agree both ways
    view = portal.backend.patient(fresh.address)
    assert view["registered"] and view["encryption_key"] == "0x" + public.hex()
    keys = [client.contract.category_key(fresh.address, c) for c in codes.Category]
    assert [k.epoch for k in keys] == [1] * 13 and len({k.public_key for k in keys}) == 13
    me = Identity("fresh", fresh.address, fresh, KeyPair.from_secret(secret))
    keyring = Keyring(client)
    secrets = keyring.secrets(me, fresh.address)
    assert sorted(secrets) == list(range(13)) and all(set(e) == {1} for e in secrets.values())
    assert keyring.rejected == [] and keyring.unheld(me) == []
    page.wait_for_selector("#keys-state")
    s.shot("registered")


def test_grant_read_through_the_relayer_then_the_study_reads_with_the_cli(
    open_portal, portal, client, patient, researcher, clinician, keystore_file, run, tmp_path
):
    s, written = lisa_with_a_record(open_portal, client, patient, clinician, keystore_file)
    page = s.page
    go(page, "/consents")
    new_consent(page, researcher.address, ["observations & labs"], ["research"])
    page.click("text=Review the change")
    page.wait_for_selector("#changes")
    changes = page.inner_text("#changes")
    assert "adds categories: observations & labs" in changes and "adds purposes: research" in changes
    s.shot("consents-review")
    page.click("#sign")
    done(page, "The consent is on chain")
    assert "eth_signTypedData_v4" in s.wallet.calls and "eth_sendTransaction" not in s.wallet.calls

    held = consent.consent_of(client, patient.address, researcher.address, R)
    assert held.categories == {OBSERVATIONS} and held.purposes == {RESEARCH} and held.live(client.now())
    page.wait_for_selector("table:has-text('research')")
    s.shot("consents")

    out = tmp_path / "read.json"
    result = run("records", "read", written.record_hex, "--purpose", "research", "--out", out, as_="researcher")
    assert result.exit_code == 0, result.output
    assert json.loads(out.read_text()) == OBS

    # the audit timeline shows the study's read
    go(page, "/audit")
    row = page.locator("table.trail tr", has_text="read record")
    assert row.count() == 1 and researcher.address[:6] in row.inner_text()
    assert page.locator("circle.dot.read").count() == 1
    assert "1 reads" in page.get_attribute(".timeline svg", "aria-label")


def read_as(client, reader, patient, record_id, purpose) -> None:
    """``reader`` records an access to one of the patient's records on chain (the audit entry a read makes)."""
    header = client.contract.record(patient.address, record_id).current()
    client.contract.record_access(patient.address, record_id, header, int(purpose), sender=reader)


def test_audit_emergency_accesses_stand_out_and_filtered_rows_export(
    open_portal, client, patient, clinician, researcher, emergency_clinician
):
    consent.grant(client, patient, clinician.address, W, [OBSERVATIONS], [codes.Purpose.DIRECT_CARE])
    later(client, 2)
    consent.grant(client, patient, researcher.address, R, [OBSERVATIONS], [RESEARCH])
    ids = []
    for _ in range(2):
        later(client, 3)
        ids.append(records.write_record(client, clinician, patient.address, json.dumps(OBS).encode()).record_id)
    for record_id in ids:
        later(client, 4)
        read_as(client, researcher, patient, record_id, RESEARCH)
    later(client, 5)
    consent.open_emergency(client, emergency_clinician, patient.address, 3600, b"\x07" * 32)
    read_as(client, emergency_clinician, patient, ids[0], codes.Purpose.EMERGENCY)

    s = open_portal(patient.address, "/audit")
    page = s.page
    assert page.locator("table.trail tr.emergency").count() == 2  # the opening and the read
    assert page.locator("tr.emergency .flag").first.inner_text().strip() == "Emergency:"
    assert page.locator("circle.dot.emergency").count() == 2 and page.locator("circle.dot.read").count() == 2
    s.shot("audit")
    page.set_viewport_size({"width": 375, "height": 800})
    page.reload()
    page.wait_for_selector("body[data-ready='/audit']")
    s.shot("audit-trail-phone")
    page.set_viewport_size({"width": 1200, "height": 900})
    page.reload()
    page.wait_for_selector("body[data-ready='/audit']")
    page.select_option("select", value="emergency")
    page.wait_for_selector("#trail-count:text-is('Showing 2 of 8 events.')")
    with page.expect_download() as download:
        page.click("#trail-csv")
    rows = Path(download.value.path()).read_text().splitlines()
    assert len(rows) == 3 and all(emergency_clinician.address in r and ",true," in r for r in rows[1:])
    page.select_option("select", value="")
    page.fill("input[type=search]", researcher.address[:10])
    page.wait_for_selector("#trail-count:text-is('Showing 2 of 8 events.')")


def epoch(client, patient, category) -> int:
    return client.contract.category_key(patient.address, category).epoch


def held(client, who, patient, category) -> set[int]:
    """The epochs of ``category`` of ``patient`` that ``who`` holds (envelopes checked against the chain)."""
    return set(Keyring(client).secrets(who, patient.address, [category]).get(int(category), {}))


def test_narrow_by_wallet_then_revoke_by_relayer_rotating_keys(
    open_portal, client, patient, researcher, clinician, keystore_file
):
    consent.grant(client, patient, researcher.address, R, [OBSERVATIONS, GENOMICS], [RESEARCH])
    consent.grant(client, patient, clinician.address, R, [OBSERVATIONS], [codes.Purpose.DIRECT_CARE])
    s = open_portal(patient.address)
    page = s.page
    unlock_keys(page, keystore_file(patient))
    go(page, "/consents")
    page.click(f"button[aria-label='Change the read consent of {researcher.address}']")
    page.uncheck("#consent-form label:text-is('genomics')")
    page.check("#consent-form label:text-is('Send it from my wallet as a transaction (I pay the gas)')")
    page.click("text=Review the change")
    assert page.inner_text("#changes") == "removes categories: genomics"
    assert page.is_checked(".rotate input")  # the dropped category's keys go stale: new keys offered
    page.click("#sign")
    done(page, "The consent is on chain")
    assert "eth_sendTransaction" in s.wallet.calls
    assert consent.consent_of(client, patient.address, researcher.address, R).categories == {OBSERVATIONS}
    assert (epoch(client, patient, GENOMICS), epoch(client, patient, OBSERVATIONS)) == (2, 1)
    assert "New keys for genomics" in page.inner_text("#status")

    later(client, 0)  # the relayed revocation must be newer than the narrowing (a later second)
    page.click(f"button[aria-label='Revoke the read consent of {researcher.address}']")
    assert "ends the read access" in page.inner_text("#changes")
    page.click("#confirm-revoke")
    done(page, "Consent revoked")
    revoked = consent.consent_of(client, patient.address, researcher.address, R)
    assert not revoked.exists and revoked.updated_at > 0
    # the relayer's revocation made the released observations keys stale; the page gave them new keys
    # (made in the browser): the GP, still a reader, received them; the study did not; the patient's
    # own envelope opens with the Python keyring, every secret matching the chain
    key = client.contract.category_key(patient.address, OBSERVATIONS)
    assert key.epoch == 2 and not key.stale(client.now())
    assert held(client, clinician, patient, OBSERVATIONS) == {1, 2}
    assert held(client, researcher, patient, OBSERVATIONS) == {1}
    keyring = Keyring(client)
    mine = keyring.secrets(patient, patient.address, [OBSERVATIONS, GENOMICS])
    assert set(mine[OBSERVATIONS]) == {1, 2} and set(mine[GENOMICS]) == {1, 2} and keyring.rejected == []
    page.wait_for_selector("body[data-ready='/consents'] table:has-text('Grants and revocations')")
    assert page.locator(f"button[aria-label='Revoke the read consent of {researcher.address}']").count() == 0
    assert page.locator("table:has-text('Grants and revocations') tr").count() == 5  # header + 4 events


def test_appoint_a_delegate_who_then_holds_the_keys(open_portal, client, patient, delegate, keystore_file):
    s = open_portal(patient.address)
    page = s.page
    unlock_keys(page, keystore_file(patient))
    go(page, "/delegates")
    page.fill("input[placeholder='0x…']", delegate.address)
    page.check("label:text-is('observations & labs')")
    page.fill("input[type=date]", "2031-01-31")
    page.click("text=Appoint delegate")
    page.wait_for_selector(f"table:has-text('{delegate.address[:6]}')")
    s.shot("delegates")
    assert client.contract.delegation(patient.address, delegate.address).categories == {OBSERVATIONS}
    secrets = Keyring(client).secrets(delegate, patient.address, [OBSERVATIONS])
    mine = Keyring(client).secrets(patient, patient.address, [OBSERVATIONS])
    assert secrets == mine  # the envelope sealed in the browser opens with the delegate's key

    page.click(f"button[aria-label='Remove delegate {delegate.address}']")
    assert "ends" in page.inner_text("#changes")
    page.click("#confirm-remove")
    page.wait_for_selector("text=You have no delegates.")
    assert client.contract.delegation(patient.address, delegate.address).expiry == 0
    assert epoch(client, patient, OBSERVATIONS) == 2  # rotated: later records are closed to the delegate
    assert held(client, delegate, patient, OBSERVATIONS) == {1}


def test_stale_keys_are_renewed_from_the_page(open_portal, client, patient, researcher, clinician, keystore_file):
    """A study's consent ran out (the chain clamped the released keys to its end), and a signed
    revocation of the GP's was relayed by someone else: both left keys stale. The page says so and,
    with her keys unlocked, gives those categories new keys; the GP, still a writer... and the study
    get none."""
    consent.grant(client, patient, researcher.address, R, [GENOMICS], [RESEARCH], expiry=client.now() + 86400)
    consent.grant(client, patient, clinician.address, R, [OBSERVATIONS, GENOMICS], [codes.Purpose.DIRECT_CARE])
    later(client, 0)
    request = consent.sign_revoke(client, patient, clinician.address, R)
    consent.submit(client, clinician, request)  # relayed: nothing rotated
    consent.grant(client, patient, clinician.address, W, [OBSERVATIONS], [codes.Purpose.DIRECT_CARE])
    later(client, 2)
    stale = [c for c in codes.Category if client.contract.category_key(patient.address, c).stale(client.now())]
    assert stale == [OBSERVATIONS, GENOMICS]

    s = open_portal(patient.address)
    page = s.page
    assert "observations & labs, genomics are stale" in page.inner_text("#stale-keys")
    assert "Unlock your keys" in page.inner_text("#stale-keys")
    unlock_keys(page, keystore_file(patient))
    s.shot("stale-keys")
    page.click("#rotate-stale")
    done(page, "New keys for observations & labs, genomics")
    page.wait_for_selector("#stale-keys", state="detached")
    assert [epoch(client, patient, c) for c in (OBSERVATIONS, GENOMICS)] == [2, 2]
    assert not any(client.contract.category_key(patient.address, c).stale(client.now()) for c in codes.Category)
    assert held(client, researcher, patient, GENOMICS) == {1} and held(client, clinician, patient, GENOMICS) == {1}
    # the GP writes again: sealed to the new key, and she opens it in the page
    written = records.write_record(client, clinician, patient.address, json.dumps(OBS).encode())
    assert client.contract.record(patient.address, written.record_id).key_epoch == 2
    go(page, "/records")
    page.click(f"button[aria-label='Open record {written.record_hex}']")
    done(page, "Record opened")
    assert json.loads(page.inner_text("pre.record")) == OBS


def test_emergency_release_then_close_renews_the_keys(
    open_portal, client, patient, clinician, emergency_clinician, keystore_file, tmp_path
):
    """An A&E clinician opened a window: she releases her observations keys to it in the page, the
    clinician reads (an emergency entry in her trail); she closes the window and the keys released
    under it get new ones the clinician never receives."""
    consent.grant(client, patient, clinician.address, W, [OBSERVATIONS], [codes.Purpose.DIRECT_CARE])
    written = records.write_record(client, clinician, patient.address, json.dumps(OBS).encode())
    consent.open_emergency(client, emergency_clinician, patient.address, 3600, b"\x07" * 32)
    s = open_portal(patient.address)
    page = s.page
    unlock_keys(page, keystore_file(patient))
    go(page, "/emergency")
    assert "open" in page.inner_text("table")
    page.click(f"button[aria-label='Release keys to {emergency_clinician.address}']")
    page.check("#emergency-panel label:text-is('observations & labs')")
    page.click("#confirm-release")
    done(page, "can read observations & labs")
    assert held(client, emergency_clinician, patient, OBSERVATIONS) == {1}
    read = records.read_record(client, emergency_clinician, written.record_id, purpose=codes.Purpose.EMERGENCY)
    assert json.loads(read.data) == OBS and read.emergency
    page.wait_for_selector("table:has-text('observations & labs')")
    s.shot("emergency")

    page.click(f"button[aria-label='Close the emergency access of {emergency_clinician.address}']")
    assert page.is_checked(".rotate input")
    page.click("#confirm-close")
    done(page, "is closed")
    assert not client.contract.emergency_access(patient.address, emergency_clinician.address).open
    assert epoch(client, patient, OBSERVATIONS) == 2
    assert held(client, emergency_clinician, patient, OBSERVATIONS) == {1}
    assert held(client, patient, patient, OBSERVATIONS) == {1, 2}


def test_a_delegate_acts_for_the_patient_within_its_bounds(
    open_portal, client, patient, delegate, researcher, keystore_file
):
    """Her daughter, a delegate for observations, connects her own wallet, acts for her mother: grants
    a study read access (a wallet transaction; keys from the envelope her mother sent her), then revokes
    it and gives the category new keys, which her mother receives too."""
    consent.appoint_delegate(client, patient, delegate.address, [OBSERVATIONS], client.now() + 30 * 86400)
    s = open_portal(delegate.address)
    page = s.page
    unlock_keys(page, keystore_file(delegate))
    page.select_option("#acting-for", value=patient.address)
    page.wait_for_selector("body[data-ready='/']")
    go(page, "/consents")
    assert patient.address in page.inner_text("#acting")
    page.click("#new-consent")
    assert page.locator("#consent-form label:text-is('genomics')").count() == 0  # outside her delegation
    assert (
        page.locator("#consent-form label", has_text="relayer sends it").count() == 0
    )  # only her signature is relayed
    new_consent(page, researcher.address, ["observations & labs"], ["research"])
    page.click("text=Review the change")
    page.click("#sign")
    done(page, "The consent is on chain")
    s.shot("delegate-acting")
    made = consent.consent_of(client, patient.address, researcher.address, R)
    assert made.categories == {OBSERVATIONS} and made.delegation == 1 and made.keys_released
    assert held(client, researcher, patient, OBSERVATIONS) == {1}

    page.click(f"button[aria-label='Revoke the read consent of {researcher.address}']")
    page.click("#confirm-revoke")
    done(page, "Consent revoked")
    assert not consent.consent_of(client, patient.address, researcher.address, R).exists
    assert epoch(client, patient, OBSERVATIONS) == 2  # rotated by the delegate
    assert held(client, patient, patient, OBSERVATIONS) == {1, 2}  # her mother holds the new key
    assert held(client, delegate, patient, OBSERVATIONS) == {1, 2} and held(
        client, researcher, patient, OBSERVATIONS
    ) == {1}
    go(page, "/audit")
    assert page.locator("table.trail tr", has_text="revoked the read consent").count() == 1


def test_a_refused_action_shows_the_contracts_reason_in_the_clis_words(
    open_portal, portal, client, patient, researcher, keystore_file
):
    s = open_portal(patient.address)
    page = s.page
    unlock_keys(page, keystore_file(patient))
    go(page, "/delegates")
    page.fill("input[placeholder='0x…']", researcher.address)  # a researcher is not a patient
    page.check("label:text-is('genomics')")
    page.fill("input[type=date]", "2031-01-31")
    page.click("text=Appoint delegate")
    page.wait_for_selector("#alert:not([hidden])")
    expected = client.contract.decoder.to_exception(
        _error_data(client, "DelegationInvalidDelegate", [patient.address, researcher.address])
    )
    assert page.inner_text("#alert") == str(expected)
    assert "it must be another registered patient" in str(expected)
    assert "eth_sendTransaction" not in s.wallet.calls  # refused in simulation: no gas spent
    s.shot("refused")


def _error_data(client, name: str, args: list) -> str:
    from eth_abi import encode
    from eth_utils import keccak

    entry = next(e for e in client.deployment.abi if e.get("type") == "error" and e["name"] == name)
    types = [i["type"] for i in entry["inputs"]]
    return "0x" + (keccak(text=f"{name}({','.join(types)})")[:4] + encode(types, args)).hex()


def test_a_weakly_protected_key_file_is_refused(open_portal, patient, tmp_path):
    from medledger.keystore import Keystore

    weak = Keystore(tmp_path / "weak", scrypt_n=2**10)  # allowed only because the test suite says so
    weak.create("lisa", PASSPHRASE, private_key=patient.account.key, encryption_secret=patient.encryption.secret)
    s = open_portal(patient.address)
    s.page.set_input_files("input[type=file]", str(weak.path_for("lisa")))
    s.page.fill("input[type=password]", PASSPHRASE)
    s.page.click("text=Unlock my keys")
    s.page.wait_for_selector("#alert:not([hidden])")
    assert "protected too weakly (scrypt cost 1024" in s.page.inner_text("#alert")
    assert "Locked" in s.page.inner_text("#keys-state")


def test_emergency_opt_out_by_keyboard_alone(open_portal, client, patient):
    s = open_portal(patient.address)
    page = s.page
    for _ in range(40):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.textContent") == "Opt out of emergency access":
            break
    else:
        raise AssertionError("the opt-out button is not reachable with the Tab key")
    page.keyboard.press("Enter")
    page.wait_for_selector("#emergency-state:has-text('You have opted out')")
    assert client.contract.emergency_opted_out(patient.address) is True


def test_researcher_page_lists_grants_and_exports_csv(open_portal, client, patient, delegate, researcher):
    consent.grant(client, patient, researcher.address, R, [OBSERVATIONS], [RESEARCH])
    consent.grant(client, delegate, researcher.address, R, [GENOMICS], [RESEARCH])
    s = open_portal(researcher.address, "/researcher")
    page = s.page
    assert page.locator("table tbody tr").count() == 2
    with page.expect_download() as download:
        page.click("#grants-csv")
    rows = Path(download.value.path()).read_text().splitlines()
    assert rows[0] == "patient,access,categories,purposes,until,status" and len(rows) == 3
    assert any(patient.address in r and "observations & labs" in r for r in rows)
    s.shot("researcher")


def test_every_field_is_labelled_and_pages_fit_a_phone(open_portal, patient, researcher, client):
    consent.grant(client, patient, researcher.address, R, [OBSERVATIONS], [RESEARCH])
    s = open_portal(patient.address)
    page = s.page
    for path in ("/", "/consents", "/delegates", "/emergency", "/audit", "/records", "/researcher"):
        page.set_viewport_size({"width": 375, "height": 800})
        go(page, path)
        if path == "/consents":
            page.click("#new-consent")
        unlabelled = page.evaluate("""() => [...document.querySelectorAll('input, select, button, textarea')]
            .filter((el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label') && !el.textContent.trim())
            .map((el) => el.outerHTML)""")
        assert unlabelled == [], (path, unlabelled)
        overflow = page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth")
        wide = page.evaluate("""() => [...document.querySelectorAll('body *')].filter((el) => el.getBoundingClientRect().right > 376)
            .map((el) => el.tagName + '.' + el.className + ' ' + Math.round(el.getBoundingClientRect().right))""")
        assert overflow <= 0, (path, overflow, wide[:8])
        s.shot(("home" if path == "/" else path.strip("/")) + "-phone")
        page.set_viewport_size({"width": 1200, "height": 900})


def test_records_open_in_the_browser_and_the_server_never_sees_keys_or_plaintext(
    open_portal, portal, client, patient, clinician, researcher, keystore_file
):
    """A full session (keys unlocked, a read grant with its key envelope, two records opened) while
    the server records every request it receives: no key, passphrase or plaintext among them."""
    consent.grant(
        client,
        patient,
        clinician.address,
        W,
        [OBSERVATIONS, codes.Category.CLINICAL_DOCUMENTS],
        [codes.Purpose.DIRECT_CARE],
    )
    small = json.dumps(OBS).encode()
    big = b"%PDF-1.7 discharge letter\n" + bytes(range(256)) * 1200  # > 256 KiB: a multi-block DAG
    written = [
        records.write_record(client, clinician, patient.address, small),
        records.write_record(
            client,
            clinician,
            patient.address,
            big,
            category=codes.Category.CLINICAL_DOCUMENTS,
            content_type="application/pdf",
        ),
    ]
    assert written[1].cid.startswith("bafy")  # dag-pb root: the page recomputes the whole DAG
    assert client.store.cat(written[0].cid)[:4] == b"MLR2"  # blob format 2: padded, nothing in clear
    keystore = keystore_file(patient)
    s = open_portal(patient.address)
    page = s.page
    unlock_keys(page, keystore)
    go(page, "/consents")
    new_consent(page, researcher.address, ["observations & labs"], ["research"])
    page.click("text=Review the change")
    page.click("#sign")
    done(page, "The consent is on chain")

    go(page, "/records")
    for record, original in zip(written, (small, big), strict=True):
        page.click(f"button[aria-label='Open record {record.record_hex}']")
        done(page, "Record opened", timeout=60_000)
        assert "fingerprint checked" in page.inner_text("#record-checks")
        with page.expect_download() as download:
            page.click("#record-download")
        assert Path(download.value.path()).read_bytes() == original
        if original is small:
            assert json.loads(page.inner_text("pre.record")) == OBS
            s.shot("records")

    # what the server received: public addresses, ciphertext (sealed envelopes), signed requests
    seen = portal.recorder.everything()
    assert b"/api/relay" in seen and b"/api/ipfs" in seen and b'"signature"' in seen  # bodies recorded
    secrets = Keyring(client).secrets(patient, patient.address)
    forbidden = {
        "passphrase": PASSPHRASE.encode(),
        "X25519 secret (hex)": patient.encryption.secret.hex().encode(),
        "X25519 secret (base64)": base64.b64encode(patient.encryption.secret),
        "Ethereum key": patient.account.key.hex().removeprefix("0x").encode(),
        "keystore ciphertext": json.loads(keystore.read_text())["encryption"]["ciphertext"].encode(),
        "record plaintext": b"Hemoglobin A1c",
        "document plaintext": b"discharge letter",
    }
    for category, epochs in secrets.items():
        for epoch, secret in epochs.items():
            forbidden[f"category {category} epoch {epoch} key (hex)"] = secret.hex().encode()
            forbidden[f"category {category} epoch {epoch} key (base64)"] = base64.b64encode(secret)
    found = [name for name, needle in forbidden.items() if needle.lower() in seen.lower()]
    assert found == []


def test_altered_ciphertext_is_caught_in_the_browser(open_portal, client, patient, clinician, keystore_file):
    """An IPFS node (or the portal) that serves other bytes for a record is caught by the CID check
    the page makes itself, and nothing is shown."""
    s, record = lisa_with_a_record(open_portal, client, patient, clinician, keystore_file)
    page = s.page
    go(page, "/records")

    def flip_last_byte(route):
        body = bytearray(route.fetch().body())
        body[-1] ^= 1
        route.fulfill(status=200, body=bytes(body), headers={"content-type": "application/octet-stream"})

    page.route(f"**/api/ipfs/{record.cid}", flip_last_byte)
    page.click(f"button[aria-label='Open record {record.record_hex}']")
    page.wait_for_selector("#alert:not([hidden])")
    assert "Tampering detected: the ciphertext's CID is" in page.inner_text("#alert")
    assert page.locator("pre.record").count() == 0 and page.locator("#record-download").count() == 0


def test_a_format_1_record_still_opens_in_the_browser(open_portal, client, patient, keystore_file):
    """Records written before blob format 2 (MLR1, clear JSON header) stay readable."""
    import io
    import os

    from medledger import crypto
    from medledger.records.payload import payload_header
    from medledger.storage import cid_to_bytes

    record_id, content = os.urandom(32), payload_header("application/fhir+json", None) + json.dumps(OBS).encode()
    key_ = client.contract.category_key(patient.address, OBSERVATIONS)
    record_key = crypto.new_record_key()
    encryptor = crypto.RecordEncryptor(record_key, record_id, patient.address, io.BytesIO(content))
    header = crypto.LegacyRecordHeader(
        record_id=record_id,
        patient=patient.address,
        category=int(OBSERVATIONS),
        key_epoch=key_.epoch,
        sealed_record_key=crypto.seal(key_.public_key, record_key),
        stream_header=encryptor.header,
        chunk_size=crypto.CHUNK_SIZE,
    )
    blob = header.encode() + b"".join(encryptor)
    cid = client.store.add_bytes(blob)
    client.contract.register_record(
        patient.address,
        record_id,
        OBSERVATIONS,
        0,
        key_.epoch,
        encryptor.fingerprint,
        cid_to_bytes(cid),
        sender=patient,
    )

    s = open_portal(patient.address)
    unlock_keys(s.page, keystore_file(patient))
    go(s.page, "/records")
    s.page.click(f"button[aria-label='Open record 0x{record_id.hex()}']")
    done(s.page, "Record opened")
    assert json.loads(s.page.inner_text("pre.record")) == OBS

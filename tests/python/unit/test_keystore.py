"""Behaviour of medledger.keystore: creating, listing and unlocking identities, and its errors."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest
from eth_account import Account

from medledger.crypto import generate_keypair, seal, unseal
from medledger.errors import KeyNotFound, KeystoreError, WrongPassphrase
from medledger.keystore import (
    DEFAULT_SCRYPT_N,
    MIN_SCRYPT_N,
    Keystore,
    WeakKeystoreWarning,
    allow_weak_kdf_for_tests,
    default_keystore_dir,
    passphrase_env_var,
    passphrase_from_env,
    validate_name,
)

# Low scrypt cost: keeps each create/unlock in the millisecond range.
TEST_N = 2**4
PASSPHRASE = "correct horse battery staple"
# anvil's well-known development account 0
ANVIL_KEY = "0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"
ANVIL_ADDRESS = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


@pytest.fixture
def store(tmp_path: Path) -> Keystore:
    return Keystore(tmp_path / "keys", scrypt_n=TEST_N)


def test_create_then_unlock_returns_the_same_identity(store: Keystore) -> None:
    created = store.create("alice", PASSPHRASE)
    unlocked = store.unlock("alice", PASSPHRASE)
    assert unlocked.address == created.address == created.account.address
    assert unlocked.account.key == created.account.key
    assert unlocked.encryption == created.encryption
    assert unlocked.name == "alice"


def test_unlocked_encryption_key_opens_data_sealed_to_the_listed_public_key(store: Keystore) -> None:
    store.create("alice", PASSPHRASE)
    sealed = seal(store.public("alice").encryption_public, b"category key")
    assert unseal(store.unlock("alice", PASSPHRASE).encryption, sealed) == b"category key"


def test_unlocked_account_signs_for_its_address(store: Keystore) -> None:
    from eth_account.messages import encode_defunct

    identity = store.create("alice", PASSPHRASE)
    message = encode_defunct(text="consent")
    signature = store.unlock("alice", PASSPHRASE).account.sign_message(message).signature
    assert Account.recover_message(message, signature=signature) == identity.address


def test_list_and_public_need_no_passphrase(store: Keystore) -> None:
    alice = store.create("alice", PASSPHRASE)
    bob = store.create("bob", "another passphrase")
    infos = store.list()
    assert [i.name for i in infos] == ["alice", "bob"]
    assert infos[0].address == alice.address and infos[0].encryption_public == alice.encryption.public
    assert infos[1].address == bob.address
    assert store.public("bob").path == store.path / "bob.json"
    assert store.public("bob").encryption_public_hex == "0x" + bob.encryption.public.hex()


def test_list_of_a_missing_directory_is_empty(tmp_path: Path) -> None:
    assert Keystore(tmp_path / "nowhere", scrypt_n=TEST_N).list() == []


def test_keystore_file_is_0600_in_a_0700_directory_and_no_temp_file_remains(store: Keystore) -> None:
    store.create("alice", PASSPHRASE)
    assert stat.S_IMODE(os.stat(store.path / "alice.json").st_mode) == 0o600
    assert stat.S_IMODE(os.stat(store.path).st_mode) == 0o700
    assert os.listdir(store.path) == ["alice.json"]


def test_keystore_file_holds_no_secret_in_clear(store: Keystore) -> None:
    identity = store.create("alice", PASSPHRASE)
    text = (store.path / "alice.json").read_text()
    assert identity.account.key.hex().removeprefix("0x") not in text
    assert identity.encryption.secret.hex() not in text
    assert PASSPHRASE not in text


def test_ethereum_part_is_a_standard_v3_keystore_at_the_configured_cost(store: Keystore) -> None:
    identity = store.create("alice", PASSPHRASE)
    document = json.loads((store.path / "alice.json").read_text())
    assert document["ethereum"]["version"] == 3
    assert document["ethereum"]["crypto"]["kdf"] == "scrypt"
    assert document["ethereum"]["crypto"]["kdfparams"]["n"] == TEST_N
    assert document["encryption"]["kdfparams"]["n"] == TEST_N
    assert Account.decrypt(document["ethereum"], PASSPHRASE) == identity.account.key


def test_default_cost_is_eth_account_scrypt_default(tmp_path: Path) -> None:
    assert Keystore(tmp_path).scrypt_n == DEFAULT_SCRYPT_N == 2**18


@pytest.mark.parametrize("n", [0, 1, 3, 1000, 2**21])
def test_invalid_scrypt_cost_is_rejected(tmp_path: Path, n: int) -> None:
    with pytest.raises(KeystoreError, match="power of two"):
        Keystore(tmp_path, scrypt_n=n)


def test_import_key_keeps_the_given_ethereum_key(store: Keystore) -> None:
    identity = store.import_key("dev", ANVIL_KEY, PASSPHRASE)
    assert identity.address == ANVIL_ADDRESS
    assert store.unlock("dev", PASSPHRASE).address == ANVIL_ADDRESS
    assert store.public("dev").address == ANVIL_ADDRESS


@pytest.mark.parametrize("bad", ["0x1234", "zz" * 32, ANVIL_KEY + "00", "0x" + "00" * 32])
def test_import_key_rejects_invalid_private_key_without_echoing_it(store: Keystore, bad: str) -> None:
    with pytest.raises(KeystoreError, match="not a valid private key") as caught:
        store.import_key("dev", bad, PASSPHRASE)
    assert bad.removeprefix("0x") not in str(caught.value)
    assert not store.exists("dev")


def test_create_with_given_keys_is_deterministic(store: Keystore) -> None:
    pair = generate_keypair()
    identity = store.create("clinic", PASSPHRASE, private_key=ANVIL_KEY, encryption_secret=pair.secret)
    assert identity.address == ANVIL_ADDRESS and identity.encryption == pair


def test_creating_an_existing_name_raises_and_keeps_the_file(store: Keystore) -> None:
    store.create("alice", PASSPHRASE)
    before = (store.path / "alice.json").read_bytes()
    with pytest.raises(KeystoreError, match="already exists"):
        store.create("alice", "other passphrase")
    assert (store.path / "alice.json").read_bytes() == before


def test_create_rejects_an_empty_passphrase(store: Keystore) -> None:
    with pytest.raises(KeystoreError, match="empty passphrase"):
        store.create("alice", "")
    assert not store.exists("alice")


def test_wrong_passphrase_names_the_keystore_and_the_consequences(store: Keystore) -> None:
    store.create("alice", PASSPHRASE)
    with pytest.raises(WrongPassphrase) as caught:
        store.unlock("alice", PASSPHRASE.upper())
    message = str(caught.value)
    assert "'alice'" in message
    assert "cannot sign" in message
    assert "cannot be decrypted" in message
    assert PASSPHRASE.upper() not in message


def test_missing_keystore_names_the_directory_and_the_fix(store: Keystore) -> None:
    store.create("alice", PASSPHRASE)
    with pytest.raises(KeyNotFound) as caught:
        store.unlock("bob", PASSPHRASE)
    message = str(caught.value)
    assert str(store.path) in message
    assert "medledger keys create bob" in message
    assert "alice" in message
    with pytest.raises(KeyNotFound):
        store.public("bob")


def test_malformed_json_raises_keystore_error_naming_the_file(store: Keystore) -> None:
    store.path.mkdir(parents=True)
    (store.path / "broken.json").write_text("{ not json")
    with pytest.raises(KeystoreError, match="broken.json is malformed") as caught:
        store.unlock("broken", PASSPHRASE)
    assert not isinstance(caught.value, (WrongPassphrase, KeyNotFound))
    listing = store.list()
    assert list(listing) == [] and [u.path.name for u in listing.unreadable] == ["broken.json"]


def test_one_corrupt_file_does_not_hide_the_other_identities(store: Keystore) -> None:
    """Issue 8 item 10: listing reads every file it can and names each one it cannot."""
    for name in ("alice", "bob", "carol", "dave"):
        store.create(name, PASSPHRASE)
    (store.path / "bob.json").write_text("{ not json")
    document = json.loads((store.path / "dave.json").read_text())
    del document["encryption"]
    (store.path / "dave.json").write_text(json.dumps(document))
    listing = store.list()
    assert [info.name for info in listing] == ["alice", "carol"]
    assert [(u.name, u.path) for u in listing.unreadable] == [
        ("bob", store.path / "bob.json"), ("dave", store.path / "dave.json")]
    assert "not valid JSON" in listing.unreadable[0].reason
    assert "'encryption' is missing" in listing.unreadable[1].reason
    assert store.unlock("carol", PASSPHRASE).name == "carol"


@pytest.mark.parametrize("field", ["address", "encryption_public_key", "ethereum", "encryption", "medledger_keystore"])
def test_keystore_missing_a_field_raises_keystore_error_naming_the_file(store: Keystore, field: str) -> None:
    store.create("alice", PASSPHRASE)
    path = store.path / "alice.json"
    document = json.loads(path.read_text())
    del document[field]
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="alice.json is malformed"):
        store.unlock("alice", PASSPHRASE)


def test_swapped_encryption_public_key_is_detected_on_unlock(store: Keystore) -> None:
    store.create("alice", PASSPHRASE)
    path = store.path / "alice.json"
    document = json.loads(path.read_text())
    document["encryption_public_key"] = "0x" + generate_keypair().public.hex()
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="altered") as caught:
        store.unlock("alice", PASSPHRASE)
    assert not isinstance(caught.value, WrongPassphrase)


def test_altered_encryption_ciphertext_is_detected_on_unlock(store: Keystore) -> None:
    store.create("alice", PASSPHRASE)
    path = store.path / "alice.json"
    document = json.loads(path.read_text())
    ciphertext = bytearray.fromhex(document["encryption"]["ciphertext"])
    ciphertext[0] ^= 1
    document["encryption"]["ciphertext"] = ciphertext.hex()
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="failed authentication"):
        store.unlock("alice", PASSPHRASE)


def test_address_not_matching_the_v3_keystore_is_malformed(store: Keystore) -> None:
    store.create("alice", PASSPHRASE)
    path = store.path / "alice.json"
    document = json.loads(path.read_text())
    document["address"] = ANVIL_ADDRESS
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="differs"):
        store.public("alice")


def test_change_passphrase_replaces_the_old_one(store: Keystore) -> None:
    identity = store.create("alice", PASSPHRASE)
    store.change_passphrase("alice", PASSPHRASE, "new passphrase")
    assert store.unlock("alice", "new passphrase").encryption == identity.encryption
    with pytest.raises(WrongPassphrase):
        store.unlock("alice", PASSPHRASE)
    assert stat.S_IMODE(os.stat(store.path / "alice.json").st_mode) == 0o600


def test_identity_repr_hides_the_secrets(store: Keystore) -> None:
    identity = store.create("alice", PASSPHRASE)
    text = repr(identity)
    assert identity.address in text
    assert identity.encryption.secret.hex() not in text
    assert identity.account.key.hex().removeprefix("0x") not in text


@pytest.mark.parametrize("name", ["", "a/b", "../x", "x" * 65, "..", ".", "a b", "é", "a\x00"])
def test_invalid_names_are_rejected(store: Keystore, name: str) -> None:
    with pytest.raises(KeystoreError, match="invalid keystore name"):
        store.create(name, PASSPHRASE)


@pytest.mark.parametrize("name", ["alice", "Dr.Jones-2", "a_b", "x" * 64, ".hidden"])
def test_valid_names_are_accepted(name: str) -> None:
    assert validate_name(name) == name


def test_default_directory_follows_medledger_home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MEDLEDGER_HOME", str(tmp_path / "home"))
    assert default_keystore_dir() == tmp_path / "home" / "keys"
    assert Keystore(scrypt_n=TEST_N).path == tmp_path / "home" / "keys"


def test_default_directory_is_under_dot_medledger(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("MEDLEDGER_HOME", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_keystore_dir() == tmp_path / ".medledger" / "keys"


def test_passphrase_env_var_upper_cases_and_replaces_non_alphanumerics() -> None:
    assert passphrase_env_var("dr-jones.2") == "MEDLEDGER_PASSPHRASE_DR_JONES_2"


def test_passphrase_from_env_prefers_the_named_variable() -> None:
    env = {"MEDLEDGER_PASSPHRASE_DR_JONES": "specific", "MEDLEDGER_PASSPHRASE": "general"}
    assert passphrase_from_env("dr-jones", env) == "specific"
    assert passphrase_from_env("alice", env) == "general"
    assert passphrase_from_env("alice", {}) is None
    assert passphrase_from_env("alice", {"MEDLEDGER_PASSPHRASE_ALICE": "", "MEDLEDGER_PASSPHRASE": ""}) is None


def test_passphrase_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MEDLEDGER_PASSPHRASE", raising=False)
    monkeypatch.setenv("MEDLEDGER_PASSPHRASE_ALICE", "from-env")
    assert passphrase_from_env("alice") == "from-env"


def test_create_with_invalid_encryption_secret_raises_keystore_error(store: Keystore) -> None:
    with pytest.raises(KeystoreError, match="encryption secret") as caught:
        store.create("alice", PASSPHRASE, encryption_secret=b"short")
    assert "32 bytes" in str(caught.value)
    assert not store.exists("alice")


def test_keystore_demanding_excessive_scrypt_memory_is_malformed(store: Keystore) -> None:
    store.create("alice", PASSPHRASE)
    path = store.path / "alice.json"
    document = json.loads(path.read_text())
    document["encryption"]["kdfparams"].update(n=2**20, r=16)
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="more than 1 GiB"):
        store.unlock("alice", PASSPHRASE)


# --- the production floor of the key derivation (issue 12 item 8) ---------------------------------
@pytest.fixture
def production():
    """As outside the test suite: the test-only switch for weak keystores is off."""
    previous = allow_weak_kdf_for_tests(False)
    yield
    allow_weak_kdf_for_tests(previous)


def test_production_refuses_to_write_a_keystore_below_the_floor(production, tmp_path: Path) -> None:
    with pytest.raises(KeystoreError, match="floor") as caught:
        Keystore(tmp_path / "keys", scrypt_n=2**4)
    assert str(MIN_SCRYPT_N) in str(caught.value)
    assert Keystore(tmp_path / "keys", scrypt_n=MIN_SCRYPT_N).scrypt_n == MIN_SCRYPT_N


@pytest.mark.parametrize("part", ["both", "ethereum", "encryption"])
def test_production_refuses_to_unlock_a_keystore_below_the_floor(production, tmp_path: Path, part: str) -> None:
    """A file written with n = 16 (as the old test knob allowed): 10,000 guesses in a fraction of a
    second. Outside tests it is refused before any decryption, whichever of its parts is weak."""
    keystore = Keystore(tmp_path / "keys", scrypt_n=MIN_SCRYPT_N)
    keystore.create("alice", PASSPHRASE)
    path = keystore.path / "alice.json"
    document = json.loads(path.read_text())
    if part in ("both", "ethereum"):
        document["ethereum"]["crypto"]["kdfparams"]["n"] = 16
    if part in ("both", "encryption"):
        document["encryption"]["kdfparams"]["n"] = 16
    path.write_text(json.dumps(document))
    with pytest.raises(KeystoreError, match="below the floor") as caught:
        keystore.unlock("alice", PASSPHRASE)
    assert str(path) in str(caught.value) and not isinstance(caught.value, WrongPassphrase)
    assert keystore.public("alice").address  # the public fields stay readable


def test_a_weak_but_accepted_keystore_warns_on_unlock(production, tmp_path: Path) -> None:
    weak = Keystore(tmp_path / "keys", scrypt_n=MIN_SCRYPT_N)
    weak.create("alice", PASSPHRASE)
    with pytest.warns(WeakKeystoreWarning, match=f"n={MIN_SCRYPT_N}.*{DEFAULT_SCRYPT_N}"):
        assert weak.unlock("alice", PASSPHRASE).name == "alice"
    assert weak.public("alice").weak


def test_the_switch_is_on_only_for_the_test_suite(production) -> None:
    assert allow_weak_kdf_for_tests(False) is False

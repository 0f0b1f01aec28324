"""Emergency reasons and credential references go on chain as tags keyed with the consortium's secret
(issue 12 item 9, issue 7 item 7): a dictionary of codes finds nothing without the secret."""

from __future__ import annotations

import string

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from medledger import config, consent, crypto, participants
from medledger.errors import ConfigError

#: A few SNOMED CT concept ids an attacker would try (cardiac arrest is 410429000).
SNOMED = ["22298006", "410429000", "230690007", "233604007", "271594007", "386661006", "44054006"]
SECRET = bytes(range(32))


def test_the_demos_old_reason_code_falls_to_a_dictionary_and_the_keyed_tag_does_not():
    """Reproduction: the demo's reason was an HMAC under a public constant key; anyone reading the
    chain recovered the code by trying SNOMED codes. The keyed, salted tag gives a dictionary
    nothing without the consortium's secret."""
    old = crypto.fingerprint_of(b"\1" * 32, b"410429000")
    assert next(c for c in SNOMED if crypto.fingerprint_of(b"\1" * 32, c.encode()) == old) == "410429000"

    tag = consent.reason_code(SECRET, "410429000")
    assert len(tag) == 32
    for guess_key in (b"\1" * 32, b"\0" * 32, bytes(32 - i for i in range(32))):
        assert consent.reason_of(guess_key, tag, SNOMED) is None
        assert all(crypto.fingerprint_of(guess_key, c.encode()) != tag for c in SNOMED)
    assert consent.reason_of(SECRET, tag, SNOMED) == "410429000"  # the consortium's auditors can


@settings(max_examples=50)
@given(code=st.text(alphabet=string.ascii_letters + string.digits + ".:/_-", min_size=1, max_size=64))
def test_tags_of_one_code_are_unlinkable_but_each_checks_out(code):
    first, second = consent.reason_code(SECRET, code), consent.reason_code(SECRET, code)
    assert first != second  # salted: equal reasons do not show as equal tags
    assert crypto.tag_matches(SECRET, consent.emergency.REASON_DOMAIN, first, code.encode())
    assert crypto.tag_matches(SECRET, consent.emergency.REASON_DOMAIN, second, code.encode())
    # domains are separate: a reason tag is no credential reference of the same code
    assert not participants.credential_matches(SECRET, first, code)


def test_credential_references_are_keyed_and_checkable_by_members_only():
    ref = participants.credential_ref(SECRET, "GMC:1234567")
    assert participants.credential_matches(SECRET, ref, "GMC:1234567")
    assert not participants.credential_matches(SECRET, ref, "GMC:1234568")
    assert not participants.credential_matches(b"\2" * 32, ref, "GMC:1234567")
    assert participants.suspension_reason(SECRET, "fitness-to-practise") != ref


@pytest.mark.parametrize("text", ["", "cardiac arrest", "Lisa Smith, NHS 943 476 5919", "x" * 65, "a\nb"])
def test_free_text_is_refused_as_a_code(text):
    with pytest.raises(ValueError, match="is not a code"):
        consent.reason_code(SECRET, text)


def test_the_consortium_secret_comes_from_the_environment_or_a_file(tmp_path, monkeypatch):
    monkeypatch.delenv("MEDLEDGER_CONSORTIUM_SECRET", raising=False)
    monkeypatch.delenv("MEDLEDGER_CONSORTIUM_SECRET_FILE", raising=False)
    settings = config.load_settings(home=tmp_path)
    with pytest.raises(ConfigError, match="set MEDLEDGER_CONSORTIUM_SECRET"):
        config.consortium_secret(settings)
    key_file = tmp_path / "consortium.key"
    key_file.write_text("ab" * 32 + "\n")
    (tmp_path / "config.toml").write_text(f'[consortium]\nsecret_file = "{key_file}"\n')
    assert config.consortium_secret(config.load_settings(home=tmp_path)) == b"\xab" * 32
    monkeypatch.setenv("MEDLEDGER_CONSORTIUM_SECRET", "0x" + "cd" * 32)
    assert config.consortium_secret(config.load_settings(home=tmp_path)) == b"\xcd" * 32
    monkeypatch.setenv("MEDLEDGER_CONSORTIUM_SECRET", "cd" * 31)
    with pytest.raises(ConfigError, match="must be 32 bytes"):
        config.consortium_secret(config.load_settings(home=tmp_path))

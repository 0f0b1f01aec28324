"""README.md runs as written: its code blocks are taken from the file and run, in order, as a newcomer
would, on a fresh home against a real local node (anvil and js-ipfs started by the walkthrough).

- ``bash`` blocks run line by line in one shell environment (exports carry over), from a working
  directory that links the checkout's node_modules, .venv, examples and brownie project, so what
  the commands write (grant.json, brownie's build) stays in a temporary directory; ``HOME`` is
  temporary too (brownie's data folder, no ~/.solcx) and nothing of the developer's MEDLEDGER_* or
  SOLCX_* settings is passed on;
- ``python`` blocks run with the shell's environment at that point (the node is still up);
- ``toml`` blocks are loaded as a config file;
- blocks without a language (diagrams, the layout) are prose.

The only departures from the text are the SUBSTITUTIONS below (placeholders, and servers started on a
free port and stopped once they answer), each marked and explained, and the
passphrases, which come from MEDLEDGER_PASSPHRASE as the README says they may. EXPECTED names the
facts checked in the output of particular commands: a README change that drops one of those commands
fails here on purpose (change the table with the README).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import select
import signal
import socket
import subprocess
import time
import tomllib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pytest
import requests

from medledger import fhir
from medledger.config import DEFAULT_PORTS, load_settings

from .checkout import ROOT, clean_env, project_view

README = ROOT / "README.md"
PASSPHRASE = "a walkthrough passphrase"


@dataclass(frozen=True)
class Block:
    lang: str
    text: str
    line: int  # of the opening fence, 1-based

    def commands(self) -> Iterator[tuple[int, str]]:
        """(README line number, command) for each line that is not blank or a comment."""
        for offset, command in enumerate(self.text.splitlines(), start=self.line + 1):
            if command.strip() and not command.lstrip().startswith("#"):
                yield offset, command


def readme_blocks(text: str | None = None) -> list[Block]:
    found, lines, i = [], (text if text is not None else README.read_text()).splitlines(), 0
    while i < len(lines):
        fence = re.match(r"^```(\w*)\s*$", lines[i])
        if fence:
            end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
            found.append(Block(fence.group(1), "\n".join(lines[i + 1 : end]), i + 1))
            i = end
        i += 1
    return found


# --- SUBSTITUTIONS: the only places where the test does not run the README's text verbatim ------------
#: Placeholders the README asks the reader to fill in from earlier output: the placeholder, a
#: fragment of the command whose output holds the value, and the pattern that finds it there.
CAPTURES = {"0xRECORD": ("records add examples/hba1c.json", r"Added record (0x[0-9a-f]{64})")}


#: Commands that serve until stopped (the portal). Each is started with the suffix given here (a free
#: port, so that it never collides with another portal on this machine), checked to serve its page and
#: to answer for the walkthrough's deployment (its /api/info is the "output" EXPECTED checks), then
#: stopped with Ctrl-C, which must end it cleanly.
SERVERS = {"medledger portal": " --port 0"}


def _is_make_block(block: Block) -> bool:
    """The opening block names make targets. Running `make test` inside the test suite would run this
    test again: their existence is checked with `make -n` (what would run) in the checkout instead."""
    return block.lang == "bash" and all(cmd.split()[0] == "make" for _, cmd in block.commands())


# --- EXPECTED: facts checked in the output of particular README commands ----------------------------
def _csv_rows(minimum: int) -> Callable[[str], None]:
    def check(out: str) -> None:
        assert len(pd.read_csv(io.StringIO(out))) >= minimum

    return check


EXPECTED: dict[str, Callable[[str], None]] = {
    "keys create admin --fund": lambda out: _assert("10 ETH from dev account" in out, out),
    "records read 0xRECORD": lambda out: _assert(json.loads(out)["code"]["coding"][0]["code"] == "59261-8", out),
    "consent send-keys gp": lambda out: _assert("the keys of observations" in out, out),
    "records read 0xRECORD --purpose direct-care": lambda out: _assert("59261-8" in out, out),  # keys that followed
    "grants --format csv": _csv_rows(1),
    "audit --format csv": lambda out: _assert("RecordAccessed" in out and "RecordRegistered" in out, out),
    "artifacts export --out Medledger.json": lambda out: _assert(out == "", out),
    "portal --relayer relayer": lambda out: _assert(json.loads(out)["relayer"] is not None, out),
}


def _assert(condition: bool, output: str) -> None:
    assert condition, output


class Shell:
    """README commands, one at a time, in one environment that carries over like a terminal's."""

    def __init__(self, cwd: Path, env: dict[str, str]) -> None:
        self.cwd, self.env = cwd, env
        self.captured: dict[str, str] = {}
        self.outputs: dict[str, str] = {}

    def run(self, number: int, as_written: str, stdin: str | None = None) -> str:
        command = as_written
        for placeholder, (source, _) in CAPTURES.items():
            if placeholder in command:
                assert placeholder in self.captured, f"README line {number} needs {placeholder} from `{source}`"
                command = command.replace(placeholder, self.captured[placeholder])
        env_file = self.cwd.parent / "shell.env"
        script = f"set -eo pipefail\n{command}\nenv -0 > {env_file}\n"
        done = subprocess.run(
            ["bash", "-c", script], cwd=self.cwd, env=self.env, input=stdin, capture_output=True, text=True, timeout=900
        )
        report = (
            f"README line {number}: {command}\nexit {done.returncode}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
        )
        assert done.returncode == 0, report
        assert "Traceback" not in done.stdout + done.stderr, report
        self.env = dict(item.split("=", 1) for item in env_file.read_text().split("\0") if "=" in item)
        for placeholder, (source, pattern) in CAPTURES.items():
            if source in command:
                match = re.search(pattern, done.stdout)
                assert match, f"README line {number}: no {placeholder} in its output\n{report}"
                self.captured[placeholder] = match.group(1)
        self.outputs[as_written] = done.stdout
        return done.stdout

    def serve(self, number: int, as_written: str) -> None:
        """Start a server command (see SERVERS), check it answers, stop it with Ctrl-C."""
        prefix = next(p for p in SERVERS if as_written.startswith(p))
        command = as_written.split("#", 1)[0].strip() + SERVERS[prefix]
        server = subprocess.Popen(
            ["bash", "-c", f"exec {command}"], cwd=self.cwd, env=self.env, stderr=subprocess.PIPE, text=True
        )
        said, url = "", None
        try:
            deadline = time.monotonic() + 120
            while url is None and time.monotonic() < deadline and server.poll() is None:
                if select.select([server.stderr], [], [], 1)[0]:
                    said += server.stderr.readline()  # type: ignore[union-attr]
                    found = re.search(r" on (http://127\.0\.0\.1:\d+)/", said)
                    url = found.group(1) if found else None
            assert url, f"README line {number}: {command} did not say where it serves\n{said}"
            page = requests.get(url + "/", timeout=30)
            assert page.status_code == 200 and "/static/app.js" in page.text, f"README line {number}: {page.text}"
            self.outputs[as_written] = requests.get(url + "/api/info", timeout=30).text
        finally:
            server.send_signal(signal.SIGINT)
            code = server.wait(60)
        assert code == 0, f"README line {number}: {command} ended with {code} on Ctrl-C\n{said}"


@contextlib.contextmanager
def _default_ipfs_ports_taken() -> Iterator[None]:
    """Another home's node on the IPFS default ports, as on a machine where one already runs: the
    walkthrough's `node up` must choose others, record them, and every later command find them. (Not
    the chain's port: brownie's `--network anvil` must be able to attach to whatever listens there.)"""
    held = []
    for key in ("ipfs_api_port", "ipfs_gateway_port", "ipfs_swarm_port"):
        sock = socket.socket()
        try:
            sock.bind(("127.0.0.1", DEFAULT_PORTS[key]))
            sock.listen()
            held.append(sock)
        except OSError:
            sock.close()  # taken already: by another node, which serves the same purpose
    try:
        yield
    finally:
        for sock in held:
            sock.close()


def _workdir(tmp_path: Path) -> Path:
    links = ("node_modules", ".venv", "examples", "contracts", "interfaces", "scripts", "brownie-config.yaml")
    return project_view(tmp_path / "work", *links)


def test_the_readme_runs_as_written(tmp_path):
    home, user = tmp_path / "home", tmp_path / "user"
    user.mkdir()
    system_path = os.pathsep.join(p for p in os.environ.get("PATH", "").split(os.pathsep) if str(ROOT) not in p)
    shell = Shell(
        _workdir(tmp_path),
        clean_env(HOME=str(user), PATH=system_path, MEDLEDGER_HOME=str(home), MEDLEDGER_PASSPHRASE=PASSPHRASE),
    )
    blocks = [b for b in readme_blocks() if b.lang]
    assert {b.lang for b in blocks} <= {"bash", "python", "toml"}, "a block in a language this test does not run"
    with _default_ipfs_ports_taken():
        try:
            for block in blocks:
                if _is_make_block(block):
                    for number, command in block.commands():
                        make = subprocess.run([*command.split()[:2], "-n"], cwd=ROOT, capture_output=True, text=True)
                        assert make.returncode == 0, f"README line {number}: {command}: {make.stderr}"
                elif block.lang == "bash":
                    for number, command in block.commands():
                        if any(command.startswith(prefix) for prefix in SERVERS):
                            shell.serve(number, command)
                        else:
                            shell.run(number, command)
                elif block.lang == "python":
                    shell.run(block.line, "python -", stdin=block.text)
                else:
                    load_settings(_written(tmp_path / f"config-{block.line}.toml", block.text))
        finally:
            subprocess.run(["medledger", "node", "down"], env={**shell.env, "PATH": _path(shell)}, capture_output=True)

    for fragment, check in EXPECTED.items():
        matches = [c for c in shell.outputs if fragment in c]
        assert matches, f"the README no longer runs `{fragment}`: update EXPECTED in {__file__}"
        check(shell.outputs[matches[0]])
    (library,) = [out for command, out in shell.outputs.items() if command == "python -"]
    assert "application/fhir+json" in library and "expiry=0" in library, library  # read, then revoked
    ports = json.loads((home / "node" / "ports.json").read_text())
    taken = [
        key for key in ("ipfs_api_port", "ipfs_gateway_port", "ipfs_swarm_port") if ports[key] != DEFAULT_PORTS[key]
    ]
    assert taken, ports  # the node chose free ports where the defaults were taken, and the home found them
    _check_one_deployments_folder(home, shell)


def _path(shell: Shell) -> str:
    return shell.env.get("PATH", os.environ.get("PATH", ""))


def _written(path: Path, text: str) -> Path:
    path.write_text(text)
    return path


def _check_one_deployments_folder(home: Path, shell: Shell) -> None:
    """`medledger deploy` and brownie's scripts/deploy.py shared one deployments file: brownie found
    the CLI's deployment (no second one), and its redeployment kept that address in the history."""
    deployed = [out for command, out in shell.outputs.items() if command.endswith(" deploy") or " deploy " in command]
    first = re.search(r"Deployed Medledger at (0x[0-9a-fA-F]{40})", "\n".join(deployed))
    assert first, deployed
    (deployments,) = (home / "deployments").glob("*.json")
    entry = json.loads(deployments.read_text())["contracts"]["Medledger"]
    brownie = [out for command, out in shell.outputs.items() if command.startswith("brownie run")]
    assert brownie, "the README no longer deploys with brownie: update this check"
    assert f"at {first.group(1)} (not redeployed)" in brownie[0]
    assert first.group(1) in [past["address"] for past in entry["history"]]


# --- the blocks that need no node ------------------------------------------------------------------
def test_the_readme_config_example_loads(tmp_path):
    (block,) = [b for b in readme_blocks() if b.lang == "toml"]
    settings = load_settings(_written(tmp_path / "config.toml", block.text))
    example = tomllib.loads(block.text)
    assert settings.chain_id == example["chain"]["chain_id"] and settings.rpc_url == example["chain"]["rpc_url"]
    assert settings.node_ports["ipfs_gateway_port"] == example["node"]["ipfs_gateway_port"]


def _fhir_table() -> list[tuple[list[str], str, list[str]]]:
    text = README.read_text()
    start = text.index("| FHIR resource types | category | sample |")
    rows = []
    for line in text[start:].splitlines()[2:]:
        if not line.startswith("|"):
            break
        types, category, sample = (cell.strip() for cell in line.strip("|").split("|"))
        rows.append(([t.strip() for t in types.split(",")], category, re.findall(r"`(examples/[^`]+)`", sample)))
    return rows


def test_the_readme_fhir_table_is_the_code_s_mapping_and_its_samples_validate():
    from medledger import codes

    def label(category: codes.Category) -> str:  # as the README's code table writes it
        return codes.label(category).replace(" & ", " and ")

    table = _fhir_table()
    mapped = {t: category for types, category, _ in table for t in types}
    assert mapped == {t: label(c) for t, c in fhir.RESOURCE_CATEGORIES.items()}
    assert "R4B" in README.read_text()[: README.read_text().index("| FHIR resource types")][-800:]
    samples = {sample: category for _, category, found in table for sample in found}
    assert set(samples) == {f"examples/{p.name}" for p in (ROOT / "examples").glob("*.json")}
    for sample, category in samples.items():
        summary = fhir.validate_fhir((ROOT / sample).read_bytes())
        assert summary.category is not None and label(summary.category) == category, sample


def test_readme_blocks_are_found_with_their_lines():
    text = "intro\n```bash\nmake demo   # x\n\n# only a comment\n```\n```\ndiagram\n```\n```python\nprint(1)\n```\n"
    blocks = readme_blocks(text)
    assert [(b.lang, b.line) for b in blocks] == [("bash", 2), ("", 7), ("python", 10)]
    assert list(blocks[0].commands()) == [(3, "make demo   # x")] and _is_make_block(blocks[0])
    assert not _is_make_block(Block("bash", "medledger node up", 1))


@pytest.mark.parametrize("fragment", sorted({*EXPECTED, *(source for source, _ in CAPTURES.values())}))
def test_every_command_the_checks_rely_on_is_in_the_readme(fragment):
    runs = [cmd for b in readme_blocks() if b.lang == "bash" for _, cmd in b.commands()]
    assert any(fragment in cmd for cmd in runs), f"`{fragment}` is no longer in a README bash block"

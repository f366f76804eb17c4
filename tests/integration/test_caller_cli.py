"""`b2bua call` as a user runs it, and the exit-status contract of every subcommand:
0 success, 1 a call failed, 2 unusable arguments with a one-line error."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest

from b2bua import cli

B2BUA = [sys.executable, "-m", "b2bua.cli"]
LAB_TOML = Path(__file__).resolve().parents[2] / "configs" / "lab.toml"


async def run_cli(*args: str, timeout: float = 60) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *B2BUA, *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        stdout, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except asyncio.TimeoutError:
        process.kill()
        await process.wait()
        raise
    return process.returncode, stdout.decode(), stderr.decode()


async def test_one_call_prints_its_outcome_and_exits_0(ecrc):
    code, out, err = await run_cli("call", ecrc.host_port, "--to", "911", "--style", "lync")

    assert code == 0, err
    assert out.startswith("call 1/1  200 OK  answered in ") and out.count("\n") == 1
    assert ecrc.last_record()["verdict"] == "location_by_value_valid"


async def test_many_calls_print_a_line_each_and_a_summary(ecrc):
    code, out, _ = await run_cli("call", ecrc.host_port, "--count", "5", "--rate", "50", "--to", "933",
                                 "--civic", "country=US", "A1=WA", "A3=Redmond", "RD=163rd", "HNO=3910")

    lines = out.splitlines()
    assert code == 0
    assert len(lines) == 6 and all(" 200 OK " in line for line in lines[:5])
    assert lines[5].startswith("5 calls: 5 answered, 0 failed")
    assert all(record["is_test"] for record in ecrc.records())


async def test_a_failed_call_exits_1(ecrc):
    ecrc.set_answer("503")

    code, out, _ = await run_cli("call", ecrc.host_port, "--shape", "circle:47.64,-122.13,25", "--transport", "tcp")

    assert code == 1
    assert "503 Service Unavailable" in out and "FAILED" in out


async def test_json_output_and_tls_with_insecure(ecrc_factory):
    ecrc = await ecrc_factory("tls-ecrc", tls=True)
    host, port = ecrc.running.sip_address("tls")

    code, out, err = await run_cli("call", f"{host}:{port}", "--transport", "tls", "--insecure", "--json")

    assert code == 0, err
    [outcome] = json.loads(out)
    assert outcome["ok"] and outcome["transport"] == "tls"
    assert ecrc.last_record()["pidf_sha256"] == outcome["pidf_sha256"]


async def test_tls_without_a_trusted_certificate_fails_with_a_hint(ecrc_factory):
    ecrc = await ecrc_factory("tls-ecrc", tls=True)
    host, port = ecrc.running.sip_address("tls")

    code, out, _ = await run_cli("call", f"{host}:{port}", "--transport", "tls")

    assert code == 1
    assert "CERTIFICATE_VERIFY_FAILED" in out and "--insecure or --ca FILE" in out


BAD_CALLS = [
    ["127.0.0.1:5060", "--pidf", "/nonexistent/location.xml"],
    ["127.0.0.1:99999"],
    ["not an address"],
    ["127.0.0.1:5060", "--to", "nine one one!"],
    ["127.0.0.1:5060", "--civic", "Redmond"],
    ["127.0.0.1:5060", "--shape", "circle:1,2"],
    ["127.0.0.1:5060", "--count", "0"],
    ["127.0.0.1:5060", "--rate", "0"],
    ["127.0.0.1:5060", "--hold", "-1"],
    ["127.0.0.1:5061", "--transport", "tls", "--ca", "/nonexistent/ca.pem"],
    ["127.0.0.1:5060", "--insecure"],
    ["127.0.0.1:5060", "--style", "sipphone"],
    ["127.0.0.1:5060", "--pidf", "a.xml", "--civic", "A3=x"],
    ["127.0.0.1:5060", "--bind", "localhost!"],
]


@pytest.mark.parametrize("args", BAD_CALLS, ids=lambda args: " ".join(args[1:]) or args[0])
def test_bad_call_arguments_exit_2_with_one_line(args, capsys):
    assert cli.main(["call", *args]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and captured.err.startswith("b2bua call"), captured.err


@pytest.mark.parametrize("name", ["missing.xml", "."])
def test_an_unreadable_pidf_is_named(name, capsys, tmp_path):
    code = cli.main(["call", "127.0.0.1:5060", "--pidf", str(tmp_path / name)])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("b2bua call: cannot read PIDF file") and err.count("\n") == 1, err


@pytest.mark.parametrize("command", [name for name, _, _ in cli.COMMANDS])
def test_every_subcommand_refuses_an_unknown_option_with_one_line(command, capsys):
    assert cli.main([command, "--no-such-option"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err


BAD_LAB = [
    ["--config", "/nonexistent/lab.toml"],
    ["--only", "99-no-such-scenario"],
]


@pytest.mark.parametrize("args", BAD_LAB, ids=lambda args: args[0])
def test_bad_lab_arguments_exit_2_with_one_line(args, capsys):
    assert cli.main(["lab", *args]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("b2bua lab: "), err


def test_a_lab_configuration_without_a_stripping_profile_is_refused(tmp_path, capsys):
    config = tmp_path / "lab.toml"
    config.write_text(LAB_TOML.read_text().replace('location_policy = "strip"', 'location_policy = "pass"'))
    assert cli.main(["lab", "--config", str(config)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "strip" in err

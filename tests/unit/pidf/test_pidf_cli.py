"""``pidf`` command line: exit codes, output formats, build."""

from __future__ import annotations

import json

import pytest
from pidf_testdocs import document

from pidf.cli import is_sip_message, main


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.xml"
    path.write_bytes(document(ts="2030-01-01T00:00:00Z"))
    return path


@pytest.fixture
def bad(tmp_path):
    path = tmp_path / "bad.xml"
    path.write_bytes(document(entity=None))
    return path


def test_valid_document_exits_zero_and_prints_the_verdict(good, capsys):
    assert main(["validate", "--now", "2030-01-01T00:01:00Z", str(good)]) == 0
    assert capsys.readouterr().out.startswith(f"{good}: location_by_value_valid")


def test_error_finding_exits_one_and_lists_findings(bad, capsys):
    assert main(["validate", str(bad)]) == 1
    assert "E P04" in capsys.readouterr().out


def test_several_files_exit_one_if_any_has_an_error(good, bad, capsys):
    assert main(["validate", "--json", str(good), str(bad)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert [o["file"] for o in out] == [str(good), str(bad)]
    assert {"file", "verdict", "findings", "location"} <= set(out[0])
    assert out[0]["location"]["civic"][0]["fields"][0]["value"] == "US"


def test_missing_file_is_a_one_line_error_and_exit_two(tmp_path, capsys):
    assert main(["validate", str(tmp_path / "nope.xml")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "nope.xml" in err


def test_bad_arguments_exit_two():
    with pytest.raises(SystemExit) as exc:
        main(["validate"])
    assert exc.value.code == 2
    with pytest.raises(SystemExit) as exc:
        main(["validate", "--now", "not-a-time", "x.xml"])
    assert exc.value.code == 2


def test_strict_turns_lync_quirks_into_errors(tmp_path, capsys):
    path = tmp_path / "lync.xml"
    path.write_bytes(document(tid="0"))
    assert main(["validate", str(path)]) == 0
    assert main(["validate", "--strict", str(path)]) == 1


@pytest.mark.parametrize("kind", ["civic", "lync", "prism"])
def test_build_writes_a_document_that_validates(kind, tmp_path, capsys):
    out = tmp_path / f"{kind}.xml"
    assert main(["build", "--kind", kind, "-o", str(out)]) == 0
    assert main(["validate", "--json", str(out)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["verdict"] == "location_by_value_valid"


def test_build_to_stdout(capsysbinary):
    assert main(["build", "--kind", "point"]) == 0
    assert b"gml:Point" in capsysbinary.readouterr().out


def test_build_rejects_unknown_kind():
    with pytest.raises(SystemExit) as exc:
        main(["build", "--kind", "hexagon"])
    assert exc.value.code == 2


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"INVITE sip:911@example.com SIP/2.0\r\nVia: x\r\n", True),
        (b"\r\nSIP/2.0 200 OK\r\n", True),
        (b'<?xml version="1.0"?><presence/>', False),
        (b"INVITE is not a request line\r\n", False),
    ],
)
def test_sip_messages_are_recognised_by_their_first_line(data, expected):
    assert is_sip_message(data) is expected


def test_unparseable_sip_message_is_reported_not_raised(tmp_path, capsys):
    pytest.importorskip("b2bua.engine.conveyance")
    path = tmp_path / "broken.sip"
    path.write_bytes(b"INVITE sip:911@example.com SIP/2.0\r\nthis is not a header\r\n\r\n")
    code = main(["validate", "--json", str(path)])
    out = json.loads(capsys.readouterr().out)[0]
    assert code == 1
    assert out["verdict"] == "no_location"
    assert out["findings"][0]["id"] == "S00"

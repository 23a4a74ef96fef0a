"""``chroma-compat scan`` (and ``pytest --chroma-scan``) on a hostile tree: it neither hangs, nor reads
what is not a regular file of the tree, nor loses the other files' findings to one bad file.

The tree is real: a FIFO named ``x.py`` (opening it would wait for a writer forever), a link to
``/dev/zero`` (read until MemoryError), links leading out of the tree (a file and a folder), a file
above ``--max-file-bytes``, and Python nested deeper than the parser follows (a long ``1+1+...``
and a long attribute chain: RecursionError). Each is listed as not scanned with its reason; the one
ordinary file's finding and the SARIF document (validated against the schema) are still written.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import urllib.parse
from pathlib import Path

import jsonschema

from .conftest import run_cli

pytest_plugins = ["pytester"]

DATA = Path(__file__).parent / "data"
APP = "import chromadb\n\nclient = chromadb.Client()\nclient.persist()\n"  # persist-removed: 0.3.29 -> 0.4.0
PAIR = ["--from", "0.3.29", "--to", "1.5.9"]
ODD_DIR = "odd dir #1 %20 é"  # a space, '#', '%' and a non-ASCII letter: each changes a URI unless encoded


def hostile_tree(root: Path) -> Path:
    tree, outside = root / "tree", root / "outside"
    (tree / ODD_DIR).mkdir(parents=True)
    outside.mkdir()
    (tree / "app.py").write_text(APP)
    (tree / ODD_DIR / "a b.py").write_text(APP)
    os.mkfifo(tree / "fifo.py")
    (tree / "zero.py").symlink_to("/dev/zero")
    (outside / "secret.py").write_text(APP)
    (tree / "out.py").symlink_to(outside / "secret.py")
    (tree / "outdir").symlink_to(outside, target_is_directory=True)
    (tree / "big.py").write_text("#" * (2 * 1024 * 1024 + 10) + "\n")
    (tree / "deep.py").write_text("x = " + "1+" * 100_000 + "1\n")
    (tree / "chain.py").write_text("import chromadb\nx = chromadb" + ".b" * 100_000 + "\n")
    return tree


def _validator() -> jsonschema.protocols.Validator:
    schema = json.loads((DATA / "sarif-schema-2.1.0.json").read_text())
    return jsonschema.validators.validator_for(schema)(schema)


def test_a_hostile_tree_is_scanned_without_hanging_and_lists_what_it_did_not_read(tmp_path):
    hostile_tree(tmp_path)
    out = tmp_path / "scan.json"
    proc = subprocess.run(
        [sys.executable, "-m", "pytest_chroma_compat", "scan", "tree", *PAIR, "--format", "json", "--output", str(out)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr  # the ordinary files' findings, not an internal error
    doc = json.loads(out.read_text())
    assert sorted(Path(f["path"]).name for f in doc["findings"]) == ["a b.py", "app.py"]
    skipped = {Path(s.split(": ")[0]).name: s for s in doc["skipped"]}
    assert "a FIFO, not a regular file" in skipped["fifo.py"]
    assert "a link leading outside the tree (to /dev/zero)" in skipped["zero.py"]
    assert "a link leading outside the tree" in skipped["out.py"] and "a link leading outside" in skipped["outdir"]
    assert "above --max-file-bytes 2097152" in skipped["big.py"]
    unreadable = {Path(s.split(": ")[0]).name: s for s in doc["unreadable"]}
    assert set(unreadable) == {"deep.py", "chain.py"} and all("RecursionError" in u for u in unreadable.values())
    assert not any("secret.py" in f["path"] for f in doc["findings"])  # nothing outside the tree was read


def test_max_file_bytes_is_the_limit_and_the_text_report_names_each_file_not_scanned(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    proc = run_cli("scan", str(tmp_path), *PAIR, "--max-file-bytes", "20")
    assert proc.returncode == 0, proc.stderr  # the only file is above the limit: nothing read, nothing found
    assert f"not scanned (not read): {tmp_path / 'app.py'}: {len(APP)} bytes, above --max-file-bytes 20" in proc.stdout
    bad = run_cli("scan", str(tmp_path), *PAIR, "--max-file-bytes", "lots")
    assert bad.returncode == 2 and "not a whole number of bytes" in bad.stderr


def test_sarif_of_a_hostile_tree_is_percent_encoded_and_validates(tmp_path):
    hostile_tree(tmp_path)
    out = tmp_path / "scan.sarif"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest_chroma_compat",
            "scan",
            "tree",
            *PAIR,
            "--format",
            "sarif",
            "--output",
            str(out),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    doc = json.loads(out.read_text())
    errors = sorted(_validator().iter_errors(doc), key=str)
    assert not errors, errors[0]
    run = doc["runs"][0]
    uris = sorted(r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in run["results"])
    assert uris == ["tree/app.py", "tree/odd%20dir%20%231%20%2520%20%C3%A9/a%20b.py"]
    assert urllib.parse.unquote(uris[1]) == f"tree/{ODD_DIR}/a b.py"  # RFC 3986, and it decodes back
    notes = [n["message"]["text"] for n in run["invocations"][0]["toolExecutionNotifications"]]
    assert len(notes) == 7 and any("fifo.py" in n for n in notes) and any("deep.py" in n for n in notes)


def test_the_plugin_twin_lists_files_not_scanned_and_keeps_the_findings(pytester):
    hostile_tree(pytester.path)
    result = pytester.runpytest_subprocess(
        "--chroma-scan",
        "tree",
        "--chroma-from",
        "0.3.29",
        "--chroma-to",
        "1.5.9",
        "-p",
        "no:cacheprovider",
        "-rs",
        timeout=120,
    )
    result.assert_outcomes(failed=2, skipped=7)
    result.stdout.fnmatch_lines(["*not scanned: tree/fifo.py: a FIFO, not a regular file*"])
    result.stdout.fnmatch_lines(["*not scanned: tree/deep.py: RecursionError*"])

"""Benchmark: hostile files through ``vru import deliveries``, timed, with peak memory (issue #19).

Builds the files of issue #19 (a 1.4 MB workbook whose sheet claims A1:XFD300001, a CSV with a
million columns, a workbook of three million rows, a CSV with a NUL byte after its first 4 KiB)
and two harder variants (the three million rows with no declared size, so they are counted as
they stream; an XML bomb). Each is imported by ``vru import deliveries`` in a fresh process
against a migrated SQLite database, which prints one JSON line: exit code, wall time, that
process's peak memory (``VmHWM``) and the peak of the child process that parsed the file (the
``ru_maxrss`` it reports). Targets: exit 1, under 10 s, under 300 MB.
Run: ``.venv/bin/python benchmarks/bench_hostile_files.py``.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.test_hostile_files import (  # noqa: E402
    BOMB,
    HEADER,
    _many_rows,
    _replace_sheet,
    _sheet,
    _workbook,
)


def _peak_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def worker(url: str, path: str) -> None:
    """Run ``vru import deliveries PATH`` in this process and print its figures."""
    import logging

    from click.testing import CliRunner

    from registry.cli import cli

    children: list[float] = []
    handler = logging.Handler()
    handler.emit = lambda r: children.append((r.stats.peak_rss_bytes or 0) / 2**20)
    logging.getLogger("vru.untrusted").addHandler(handler)
    logging.getLogger("vru.untrusted").setLevel(logging.INFO)
    start = time.perf_counter()
    result = CliRunner().invoke(cli, ["--database-url", url, "import", "deliveries", path])
    seconds = time.perf_counter() - start
    message = (result.stderr or result.output).strip().splitlines()
    figures = {
        "exit": result.exit_code,
        "seconds": seconds,
        "peak_mb": _peak_mb(),
        "child_peak_mb": max(children or [0.0]),
        "message": " ".join(message[:2])[:140],
    }
    print(json.dumps(figures))


def files(folder: Path) -> dict[str, Path]:
    made = {}

    def put(name: str, data: bytes) -> None:
        made[name] = folder / name
        made[name].write_bytes(data)

    claim = _replace_sheet(_workbook([[1]]), _sheet("A1:XFD300001", _many_rows(60_000)))
    put("claims-A1-XFD300001.xlsx", claim)
    put("million-columns.csv", (",".join(f"c{i}" for i in range(1_000_000)) + "\n1\n").encode())
    tall = _many_rows(3_000_001)
    put("three-million-rows.xlsx", _replace_sheet(_workbook([[1]]), _sheet("A1:A3000000", tall)))
    put("three-million-rows-undeclared.xlsx", _replace_sheet(_workbook([[1]]), _sheet(None, tall)))
    rows = "".join(f"Mentors,Camden,2023-{m:02d},10,5,\n" for m in range(1, 13)) * 20
    content = (HEADER + rows).encode()
    at = content.index(b",10,", 5000) + 2
    put("nul-after-4-KiB.csv", content[:at] + b"\x00" + content[at:])
    put("xml-bomb.xlsx", _replace_sheet(_workbook([["programme"]]), BOMB))
    return made


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--worker":
        worker(sys.argv[2], sys.argv[3])
        return
    from registry import db, programmes
    from registry.auth import SYSTEM

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        url = f"sqlite:///{folder / 'bench.db'}"
        engine = db.make_engine(url)
        db.upgrade(engine)
        with db.session_scope(engine) as s:
            programmes.add_funding_stream(s, principal=SYSTEM, name="Fund", funder="City Hall")
            programmes.add_programme(
                s,
                principal=SYSTEM,
                name="Mentors",
                funding_stream="Fund",
                start=dt.date(2020, 1, 1),
            )
        engine.dispose()
        print(f"{'file':<36} {'size':>9} {'exit':>4} {'time':>7} {'vru peak':>9} {'child':>7}")
        for name, path in files(folder).items():
            done = subprocess.run(
                [sys.executable, __file__, "--worker", url, str(path)],
                capture_output=True,
                text=True,
                cwd=ROOT,
                check=False,
            )
            out = json.loads(done.stdout.strip().splitlines()[-1])
            size = path.stat().st_size / 2**20
            print(
                f"{name:<36} {size:>7.1f}MB {out['exit']:>4} {out['seconds']:>6.2f}s "
                f"{out['peak_mb']:>7.0f}MB {out['child_peak_mb']:>5.0f}MB  {out['message']}"
            )
    print("targets: exit 1, under 10 s, under 300 MB (vru process and the parsing child)")


if __name__ == "__main__":
    main()

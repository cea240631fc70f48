#!/usr/bin/env python3
"""Compare a traffic recording with the rows of ``mlflow_azureml_registry/local/FIDELITY.md``.

    python scripts/compare_fidelity.py RECORDING.jsonl [--fidelity FIDELITY.md] [--verbose]

RECORDING is what ``pytest --record-traffic RECORDING.jsonl`` wrote (``tests/live/traffic.py``), best from a live
run. Each *assumed* row of FIDELITY.md is then reported as **confirmed** or **contradicted** by the recording, or as
**not covered**: either a check exists but no recorded exchange matched it, or no check exists (most rows need a
request no test sends, or a judgement no script can make).

What this can match is modest: a fixed set of checks (``CHECKS``), each naming its row by a phrase of the row's
text, and matching exchanges by method, path pattern and status, then reading a header or a body field. Checks
that need history (did the version exist before this DELETE?) follow each resource through the recording; only
the recording process's traffic is there, so writes by processes the tests start (``mlflow server``, concurrency
workers) are unseen and can mislead those checks on their models; the test id printed with each exchange helps
tell.

Exit status: 0 when no row is contradicted; 1 when a row is contradicted; 2 for bad input: arguments, a recording
that is missing, not JSON lines, or holds no exchange at all (nothing recorded: nothing was compared).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fidelity_checks import CHECKS, Exchange, Verdict, load  # noqa: E402

FIDELITY = Path(__file__).resolve().parents[1] / "mlflow_azureml_registry" / "local" / "FIDELITY.md"


# ------------------------------------------------------------------------------------------------ FIDELITY.md
@dataclass
class Row:
    section: str
    behaviour: str
    source: str

    @property
    def assumed(self) -> bool:
        return "assumed" in self.source.lower()


def _cells(line: str) -> list[str]:
    """A table line's cells; a ``|`` inside backticks stays in its cell."""
    cells, current, code = [], "", False
    for char in line.strip().strip("|"):
        if char == "`":
            code = not code
        if char == "|" and not code:
            cells.append(current.strip())
            current = ""
        else:
            current += char
    return [*cells, current.strip()]


def parse_fidelity(text: str) -> list[Row]:
    """Every table row (behaviour, source) under its ``##`` section; header and separator lines skipped."""
    rows, section = [], ""
    for line in text.splitlines():
        if line.startswith("## "):
            section = line[3:].strip()
        elif line.startswith("|") and not re.match(r"^\|[\s|:-]+\|$", line.strip()):
            cells = _cells(line)
            if len(cells) >= 2 and cells[:2] != ["behaviour", "source"]:
                rows.append(Row(section, " | ".join(cells[:-1]), cells[-1]))
    return rows


# ------------------------------------------------------------------------------------------------ report
@dataclass
class Outcome:
    row: Row
    checked: bool = False
    agreed: list[Verdict] = field(default_factory=list)
    disagreed: list[Verdict] = field(default_factory=list)


def compare(rows: list[Row], exchanges: list[Exchange]) -> tuple[list[Outcome], list[str]]:
    """An outcome per assumed row, and the phrases of checks whose row was not found."""
    outcomes = {id(row): Outcome(row) for row in rows if row.assumed}
    lost = []
    for phrase, fn in CHECKS:
        row = next((r for r in rows if phrase in r.behaviour), None)
        if row is None or id(row) not in outcomes:
            lost.append(phrase)
            continue
        outcome = outcomes[id(row)]
        outcome.checked = True
        for verdict in fn(exchanges):
            (outcome.agreed if verdict[0] else outcome.disagreed).append(verdict)
    return list(outcomes.values()), lost


def report(outcomes: list[Outcome], lost: list[str], exchanges: list[Exchange], verbose: bool = False) -> str:
    def title(o: Outcome) -> str:
        return f"  [{o.row.section}] {o.row.behaviour[:150]}"

    groups = {
        "CONTRADICTED": [o for o in outcomes if o.disagreed],
        "CONFIRMED": [o for o in outcomes if o.agreed and not o.disagreed],
        "NOT COVERED (a check exists; no recorded exchange matched)": [o for o in outcomes if o.checked and
                                                                      not o.agreed and not o.disagreed],
        "NOT COVERED (no check: needs a request no test sends, or judgement)": [o for o in outcomes if not o.checked],
    }
    control = sum(1 for e in exchanges if e.route)
    lines = [f"{len(exchanges)} exchanges recorded ({control} control plane); {len(outcomes)} assumed rows"]
    for name, members in groups.items():
        lines.append(f"\n{name}: {len(members)}")
        for o in members:
            lines.append(title(o))
            if o.disagreed:
                lines.append(f"      {len(o.disagreed)} exchanges disagree, {len(o.agreed)} agree; e.g.")
                lines += [f"      {e.describe()}: {note}" for _, e, note in o.disagreed[:3]]
            elif o.agreed:
                lines.append(f"      {len(o.agreed)} exchanges agree" + (f", e.g. {o.agreed[0][1].describe()}"
                                                                       if verbose else ""))
    lines += [f"\ncheck whose row is missing or no longer assumed (FIDELITY.md changed?): {p!r}" for p in lost]
    return "\n".join(lines)


EXIT_CODES = """exit status:
  0  no assumed row is contradicted by the recording
  1  a row is contradicted (listed under CONTRADICTED)
  2  bad input: arguments, a recording that is missing, not JSON lines, or empty (nothing was recorded)"""


def _plain(text: str) -> str:
    """Docstring text for the terminal: reStructuredText's inline-literal backticks dropped."""
    return text.replace("``", "")


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog="compare_fidelity.py", description=_plain(__doc__.split("\n\n")[0]), epilog=EXIT_CODES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("recording", type=Path, metavar="RECORDING",
                        help="JSON lines written by `pytest --record-traffic RECORDING` (best from a live run)")
    parser.add_argument("--fidelity", type=Path, default=FIDELITY,
                        help="the FIDELITY.md to compare with (default: the plugin's, mlflow_azureml_registry/local/"
                             "FIDELITY.md)")
    parser.add_argument("--verbose", action="store_true", help="show an agreeing exchange for each confirmed row")
    args = parser.parse_args(argv)
    if not args.recording.is_file():
        parser.error(f"no such recording: {args.recording}")
    rows = parse_fidelity(args.fidelity.read_text(encoding="utf-8"))
    try:
        exchanges = load(args.recording.read_text(encoding="utf-8").splitlines())
    except (ValueError, UnicodeDecodeError) as exc:
        parser.error(f"{args.recording}: {exc} (expected what `pytest --record-traffic` writes)")
    if not exchanges:
        parser.error(f"{args.recording} holds no exchange: nothing was recorded, so nothing can be compared (record "
                     "a run that sends traffic: `pytest --record-traffic PATH ...`)")
    outcomes, lost = compare(rows, exchanges)
    print(report(outcomes, lost, exchanges, args.verbose))
    return 1 if any(o.disagreed for o in outcomes) else 0


if __name__ == "__main__":
    sys.exit(main())

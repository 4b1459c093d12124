"""Transactions and statements per saga, from a PostgreSQL log written with `log_statement = all`.

    psql -c "ALTER SYSTEM SET log_statement = 'all'" -c "SELECT pg_reload_conf()"
    AMQP_URL=… DATABASE_URL=… python -m bench --quick --no-micro --volume 0    # note its "complete sagas"
    psql -c "ALTER SYSTEM RESET log_statement" -c "SELECT pg_reload_conf()"
    python -m bench.statements /var/log/postgresql/postgresql-15-main.log --sagas 36 [--since '2026-11-27 13:10']

Each transaction is reduced to the first words of its statements, in order, and counted; a statement outside
any transaction counts as AUTOCOMMIT. Kinds that ran at least every other saga are printed with their count per
saga: what each saga costs in round trips, and which of them could go. --since skips the seeding before the load.
"""
from __future__ import annotations

import argparse
import re
from collections import Counter

# "2026-11-27 13:10:32.709 UTC [23375] postgres@db LOG:  statement: BEGIN" (the default log_line_prefix), and
# "execute <unnamed>: …" for the extended protocol. A statement's further lines carry no prefix.
_LINE = re.compile(r"^(\S+ \S+) \S+ \[(\d+)\] .*?LOG:  (?:statement|execute [^:]*): (.*)$")
_ENDS = ("COMMIT", "ROLLBACK")


def signature(statement: str, words: int = 3) -> str:
    return " ".join(statement.split()[:words])


def transactions(lines, since: str | None = None) -> Counter:
    """(statement signatures joined by " | ", how it ended) -> how many times."""
    found: Counter = Counter()
    open_: dict[str, list[str]] = {}
    for line in lines:
        match = _LINE.match(line)
        if match is None or (since and match.group(1) < since):
            continue
        backend, statement = match.group(2), match.group(3).strip()
        if statement.startswith("BEGIN"):
            open_[backend] = []
        elif statement in _ENDS:
            if backend in open_:
                found[(" | ".join(open_.pop(backend)), statement)] += 1
        elif backend in open_:
            open_[backend].append(signature(statement))
        else:
            found[(signature(statement), "AUTOCOMMIT")] += 1
    return found


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("log")
    parser.add_argument("--sagas", type=int, required=True, help="complete sagas of the run the log covers")
    parser.add_argument("--since", help="ignore lines logged before this time (YYYY-MM-DD HH:MM[:SS])")
    args = parser.parse_args(argv)
    with open(args.log, encoding="utf-8", errors="replace") as log:
        found = transactions(log, args.since)
    # At least every other saga: the load's own kinds, not the seeding before it or a rare retry.
    per_saga = [(count / args.sagas, end, kind) for (kind, end), count in found.items() if count * 2 >= args.sagas]
    print(f"{'per saga':>8}  {'ends':10}  statements")
    for count, end, kind in sorted(per_saga, reverse=True):
        print(f"{count:8.2f}  {end:10}  {kind}")
    alone = sum(count for count, end, _ in per_saga if end == "AUTOCOMMIT")
    wrapped = sum(count for count, _, _ in per_saga) - alone
    print(f"per saga: {wrapped:.2f} transactions and {alone:.2f} statements without one "
          "(of the kinds that ran at least every other saga)")


if __name__ == "__main__":
    main()

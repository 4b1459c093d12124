"""bench.statements: a PostgreSQL statement log reduced to transactions per saga."""
from __future__ import annotations

from bench.statements import main, transactions

LOG = """\
2026-11-27 13:10:32.709 UTC [101] postgres@crm LOG:  statement: BEGIN
2026-11-27 13:10:32.709 UTC [202] postgres@crm LOG:  execute <unnamed>: SELECT timeline.id, timeline.at
\tFROM timeline JOIN contracts ON contracts.id = timeline.contract_id
2026-11-27 13:10:32.710 UTC [101] postgres@crm LOG:  execute <unnamed>: UPDATE outbox SET published=$1
2026-11-27 13:10:32.710 UTC [101] postgres@crm DETAIL:  parameters: $1 = 't'
2026-11-27 13:10:32.711 UTC [303] postgres@crm LOG:  statement: BEGIN ISOLATION LEVEL READ COMMITTED
2026-11-27 13:10:32.712 UTC [303] postgres@crm LOG:  execute <unnamed>: INSERT INTO inbox (consumer) VALUES ($1)
2026-11-27 13:10:32.713 UTC [101] postgres@crm LOG:  statement: COMMIT
2026-11-27 13:10:32.714 UTC [303] postgres@crm LOG:  execute <unnamed>: UPDATE contracts SET status=$1
2026-11-27 13:10:32.715 UTC [303] postgres@crm LOG:  statement: ROLLBACK
2026-11-27 13:10:33.000 UTC [101] postgres@crm LOG:  statement: BEGIN
2026-11-27 13:10:33.001 UTC [101] postgres@crm LOG:  execute <unnamed>: UPDATE outbox SET published=$1
2026-11-27 13:10:33.002 UTC [101] postgres@crm LOG:  statement: COMMIT
"""


def test_statements_are_grouped_by_backend_into_their_transactions():
    found = transactions(LOG.splitlines())
    assert found == {
        ("UPDATE outbox SET", "COMMIT"): 2,  # interleaved with other backends' lines, and a DETAIL line
        ("SELECT timeline.id, timeline.at", "AUTOCOMMIT"): 1,
        ("INSERT INTO inbox | UPDATE contracts SET", "ROLLBACK"): 1,
    }
    assert transactions(LOG.splitlines(), since="2026-11-27 13:10:33") == {("UPDATE outbox SET", "COMMIT"): 1}


def test_the_report_counts_per_saga_what_ran_at_least_every_other_saga(tmp_path, capsys):
    log = tmp_path / "postgresql.log"
    log.write_text(LOG, encoding="utf-8")
    main([str(log), "--sagas", "3"])
    out = capsys.readouterr().out
    assert "    0.67  COMMIT      UPDATE outbox SET" in out
    assert "inbox" not in out and "timeline" not in out  # once in three sagas: not the load's own
    assert "per saga: 0.67 transactions and 0.00 statements without one" in out

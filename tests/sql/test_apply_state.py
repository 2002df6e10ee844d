"""apply() against a reference model of a table's indexes (SQLite, stateful).

The model is the set of index column tuples on one table. Rules interleave
apply (real and dry-run), indexes created by hand and dropped indexes; after
every step the database must hold exactly the model's indexes, and apply must
never push the table past ``max_per_table`` by itself.
"""

from __future__ import annotations

import sqlite3

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from sentia_core.sql._advisor import IndexSuggestion, index_ddl, index_name
from sentia_core.sql._apply import apply
from sentia_core.sql._verify import VerifiedSuggestion

COLUMNS = ["a", "b", "c", "d"]
MAX_PER_TABLE = 3
column_lists = st.lists(st.sampled_from(COLUMNS), min_size=1, max_size=3, unique=True).map(tuple)


def verified(columns: tuple[str, ...], accepted: bool = True) -> VerifiedSuggestion:
    name = index_name("t", columns)
    s = IndexSuggestion(
        "t", columns, name, index_ddl("t", columns, (), name), ("q",), 1, 1.0, "model"
    )
    return VerifiedSuggestion(s, accepted, "model", "", (), 1000, 1.0, (("q", 1.0),))


class ApplyModel(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.conn = sqlite3.connect(":memory:")
        self.conn.execute("CREATE TABLE t (id INTEGER PRIMARY KEY, a, b, c, d)")
        self.conn.executemany(
            "INSERT INTO t (a, b, c, d) VALUES (?, ?, ?, ?)",
            [(i % 7, i % 5, i % 3, i) for i in range(50)],
        )
        self.conn.commit()
        self.model: dict[str, tuple[str, ...]] = {}  # index name -> columns
        self.by_hand = 0

    def indexes(self) -> dict[str, tuple[str, ...]]:
        out = {}
        for (name,) in self.conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'"):
            cols = tuple(r[2] for r in self.conn.execute(f'PRAGMA index_info("{name}")'))
            out[name] = cols
        return out

    @rule(columns=column_lists, accepted=st.booleans())
    def apply_one(self, columns: tuple[str, ...], accepted: bool) -> None:
        [result] = apply(
            [verified(columns, accepted)],
            self.conn,
            dry_run=False,
            max_per_table=MAX_PER_TABLE,
            min_calls_per_hour=0,
            coverage=1.0,
        )
        name = index_name("t", columns)
        if not accepted:
            assert result.status == "skipped"
        elif name in self.model or columns in self.model.values():
            assert result.status == "exists"
        elif len(self.model) >= MAX_PER_TABLE:
            assert result.status == "skipped" and "already has" in result.reason
        else:
            assert result.status == "created", result
            self.model[name] = columns

    @rule(columns=column_lists)
    def dry_run_changes_nothing(self, columns: tuple[str, ...]) -> None:
        before = self.indexes()
        [result] = apply([verified(columns)], self.conn, min_calls_per_hour=0)
        assert result.status in ("dry-run", "exists", "skipped")
        assert self.indexes() == before

    @rule(columns=column_lists)
    def create_by_hand(self, columns: tuple[str, ...]) -> None:
        self.by_hand += 1
        name = f"by_hand_{self.by_hand}"
        self.conn.execute(f"CREATE INDEX {name} ON t ({', '.join(columns)})")
        self.model[name] = columns

    @precondition(lambda self: bool(self.model))
    @rule(data=st.data())
    def drop_one(self, data: st.DataObject) -> None:
        name = data.draw(st.sampled_from(sorted(self.model)))
        self.conn.execute(f'DROP INDEX "{name}"')
        del self.model[name]

    @invariant()
    def database_matches_the_model(self) -> None:
        assert self.indexes() == self.model
        assert not self.conn.in_transaction

    def teardown(self) -> None:
        self.conn.close()


ApplyModel.TestCase.settings = settings(max_examples=30, stateful_step_count=25, deadline=None)
TestApplyModel = ApplyModel.TestCase

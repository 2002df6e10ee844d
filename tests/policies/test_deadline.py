"""The cooperative deadline carried in a contextvar."""

from __future__ import annotations

import asyncio
import contextvars
import threading

import pytest

from sentia_core.errors import CallTimeoutError, ConfigError
from sentia_core.policies import check_deadline, current_deadline, deadline, remaining_time
from sentia_core.testing import ManualClock


def test_there_is_no_deadline_by_default() -> None:
    assert current_deadline() is None
    assert remaining_time() is None
    check_deadline()  # no-op


def test_remaining_time_counts_down_and_never_goes_negative(clock: ManualClock) -> None:
    with deadline(5.0, clock=clock) as d:
        assert current_deadline() is d
        assert remaining_time() == 5.0
        clock.advance(2.0)
        assert remaining_time() == 3.0
        clock.advance(10.0)
        assert remaining_time() == 0.0
        with pytest.raises(CallTimeoutError) as info:
            check_deadline()
        assert info.value.timeout == 5.0
    assert current_deadline() is None


def test_a_nested_deadline_can_only_shrink(clock: ManualClock) -> None:
    with deadline(5.0, clock=clock) as outer:
        with deadline(60.0, clock=clock) as inner:
            assert inner is outer
            assert remaining_time() == 5.0
        with deadline(1.0, clock=clock):
            assert remaining_time() == 1.0
        assert remaining_time() == 5.0


def test_threads_do_not_see_each_others_deadlines(clock: ManualClock) -> None:
    seen: list[float | None] = []
    with deadline(5.0, clock=clock):
        t = threading.Thread(target=lambda: seen.append(remaining_time()))
        t.start()
        t.join()
        ctx = contextvars.copy_context()
    assert seen == [None]
    assert ctx.run(remaining_time) == 5.0  # but a copied context carries it


async def test_tasks_inherit_the_deadline_of_their_creator(clock: ManualClock) -> None:
    async with deadline(4.0, clock=clock):
        assert await asyncio.create_task(asyncio.sleep(0, result=remaining_time())) == 4.0

        async def read() -> float | None:
            return remaining_time()

        assert await asyncio.create_task(read()) == 4.0
    assert remaining_time() is None


def test_a_deadline_object_cannot_be_entered_twice(clock: ManualClock) -> None:
    d = deadline(1.0, clock=clock)
    with d, pytest.raises(RuntimeError):
        d.__enter__()
    with d:  # but it can be reused after exit
        assert remaining_time() == 1.0


def test_bad_seconds_name_the_parameter() -> None:
    with pytest.raises(ConfigError) as info:
        deadline(-1)
    assert info.value.parameter == "seconds"

"""Load-balancing strategies: small objects behind one Protocol.

A balancer picks one instance from a non-empty sequence of candidates the
registry has already filtered (healthy, not ejected, preferred zone, not yet
tried by this call). ``load(instance)`` returns the calls outstanding on it
right now, as this registry counts them. A balancer holds per-service state
(the registry keeps one per service and strategy), must be safe to call from
several threads, and must not block.
"""

from __future__ import annotations

import itertools
import math
import random
import threading
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

from sentia_core._validate import check_choice

from ._model import Instance

__all__ = [
    "STRATEGIES",
    "Balancer",
    "LeastOutstanding",
    "PowerOfTwoChoices",
    "RandomChoice",
    "RoundRobin",
    "SmoothWeightedRoundRobin",
    "make_balancer",
]

Load = Callable[[Instance], int]


@runtime_checkable
class Balancer(Protocol):
    """Picks one instance among candidates."""

    def choose(self, candidates: Sequence[Instance], load: Load) -> Instance:
        """Return one of ``candidates`` (never empty).

        Args:
            candidates: the instances allowed for this pick.
            load: outstanding calls on an instance, as this registry counts them.
        """
        ...


class RoundRobin:
    """Each candidate in turn; ignores weights. Lock-free (``itertools.count``)."""

    __slots__ = ("_counter",)

    def __init__(self) -> None:
        self._counter = itertools.count()

    def choose(self, candidates: Sequence[Instance], load: Load) -> Instance:
        return candidates[next(self._counter) % len(candidates)]


class RandomChoice:
    """A uniformly random candidate; ignores weights.

    Args:
        rng: the random source (seed it in tests).
    """

    __slots__ = ("_random",)

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random

    def choose(self, candidates: Sequence[Instance], load: Load) -> Instance:
        return candidates[int(self._random() * len(candidates))]


class SmoothWeightedRoundRobin:
    """nginx's smooth weighted round robin: exact weight shares, evenly interleaved.

    Every pick adds each candidate's weight to its running score, picks the
    highest score and subtracts the total weight from it. Over any run of
    ``sum(weights)`` picks each instance is chosen exactly ``weight`` times,
    and picks of a heavy instance are spread out (5:1:1 gives
    ``a a b a c a a``, not ``a a a a a b c``). With equal weights it is plain
    round robin.

    The sequence is periodic, so for the registry's cached candidate tuples
    (and a period, ``sum(weights) / gcd``, of at most 4096) one period is
    computed once and each pick is a lock-free counter step, as cheap as round
    robin. Other candidate sequences (a retry's leftovers) run the algorithm
    incrementally under a lock.
    """

    __slots__ = ("_current", "_lock", "_plan")

    #: longest precomputed period (picks).
    MAX_PLAN = 4096

    def __init__(self) -> None:
        self._current: dict[str, int] = {}
        self._lock = threading.Lock()
        # (the candidates tuple the plan is for, the plan, its counter)
        self._plan: tuple[object, tuple[Instance, ...], itertools.count[int]] = (
            None,
            (),
            itertools.count(),
        )

    def choose(self, candidates: Sequence[Instance], load: Load) -> Instance:
        plan = self._plan
        if candidates is plan[0]:
            return plan[1][next(plan[2]) % len(plan[1])]
        if type(candidates) is tuple:
            weights = [c.weight for c in candidates]
            divisor = math.gcd(*weights)
            if sum(weights) // divisor <= self.MAX_PLAN:
                sequence = tuple(_smooth_sequence(candidates, [w // divisor for w in weights]))
                counter = itertools.count()
                self._plan = (candidates, sequence, counter)
                return sequence[next(counter) % len(sequence)]
        return self._step(candidates)

    def _step(self, candidates: Sequence[Instance]) -> Instance:
        with self._lock:
            current = self._current
            if len(current) > 2 * len(candidates) + 16:
                live = {c.id for c in candidates}
                current = {k: v for k, v in current.items() if k in live}
                self._current = current
            total = 0
            best = candidates[0]
            best_score = None
            for inst in candidates:
                score = current.get(inst.id, 0) + inst.weight
                current[inst.id] = score
                total += inst.weight
                if best_score is None or score > best_score:
                    best, best_score = inst, score
            current[best.id] -= total
            return best


def _smooth_sequence(candidates: Sequence[Instance], weights: list[int]) -> list[Instance]:
    """One period of nginx's smooth weighted round robin, from a zero state."""
    total = sum(weights)
    current = [0] * len(weights)
    out = []
    for _ in range(total):
        best = 0
        for k, w in enumerate(weights):
            current[k] += w
            if current[k] > current[best]:
                best = k
        current[best] -= total
        out.append(candidates[best])
    return out


class LeastOutstanding:
    """The candidate with the fewest outstanding calls per unit of weight.

    Ties are broken by scanning from a random start, so equally idle
    instances share the traffic. O(n) per pick.

    Args:
        rng: the random source for tie-breaking.
    """

    __slots__ = ("_random",)

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random

    def choose(self, candidates: Sequence[Instance], load: Load) -> Instance:
        n = len(candidates)
        start = int(self._random() * n)
        best = candidates[start]
        best_load, best_weight = load(best) + 1, best.weight
        for k in range(start + 1 - n, start):  # every other index, wrapping around
            inst = candidates[k]
            inst_load = load(inst) + 1
            # inst_load / inst.weight < best_load / best_weight, without division
            if inst_load * best_weight < best_load * inst.weight:
                best, best_load, best_weight = inst, inst_load, inst.weight
        return best


class PowerOfTwoChoices:
    """Two distinct random candidates; the less loaded (per unit of weight) wins.

    Nearly as good as least-outstanding at spreading load, in O(1), and it
    avoids the herd effect of every client piling onto the one idle instance.

    Args:
        rng: the random source.
    """

    __slots__ = ("_random",)

    def __init__(self, rng: random.Random | None = None) -> None:
        self._random = (rng or random.Random()).random

    def choose(self, candidates: Sequence[Instance], load: Load) -> Instance:
        n = len(candidates)
        if n == 1:
            return candidates[0]
        rand = self._random
        i = int(rand() * n)
        j = int(rand() * (n - 1))
        if j >= i:
            j += 1
        a, b = candidates[i], candidates[j]
        # (load_b + 1) / w_b < (load_a + 1) / w_a, without division
        return b if (load(b) + 1) * a.weight < (load(a) + 1) * b.weight else a


#: The strategy names :meth:`ServiceRegistry.choose` accepts.
STRATEGIES: tuple[str, ...] = (
    "weighted_round_robin",
    "round_robin",
    "random",
    "least_outstanding",
    "power_of_two",
)


def make_balancer(strategy: str, rng: random.Random) -> Balancer:
    """A fresh balancer for a strategy name (see :data:`STRATEGIES`).

    Raises:
        ConfigError: unknown name.
    """
    check_choice("strategy", strategy, STRATEGIES)
    if strategy == "weighted_round_robin":
        return SmoothWeightedRoundRobin()
    if strategy == "round_robin":
        return RoundRobin()
    if strategy == "random":
        return RandomChoice(rng)
    if strategy == "least_outstanding":
        return LeastOutstanding(rng)
    return PowerOfTwoChoices(rng)

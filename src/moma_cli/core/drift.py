"""Reference profiles of a model's inputs and how far live inputs drift from them.

A profile is small enough to live in the pointer's `model.reference` section: per numeric
feature the decile edges of the training values and the share of values in each bin, per
categorical feature the shares of its most frequent values (the rest pooled as `other`).
Drift is the population stability index (PSI) over those bins, and for numeric features
the Kolmogorov-Smirnov distance between the two distributions, both computed on the
reference's bins, so live data never needs the training set itself. The training labels
get a profile too (`label_profile`): their classes, or bins for a regression target, what
the live predictions are compared with.

Rules of thumb the docs repeat: PSI < 0.1 stable, 0.1-0.25 moderate shift, > 0.25 large.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moma_cli.core.checks import as_number

BINS = 10
TOP_CATEGORIES = 20
OTHER = "other"
_EPSILON = 1e-4  # an empty bin would make PSI infinite: count it as this share instead


@dataclass(frozen=True)
class FeatureProfile:
    kind: str  # numeric | categorical
    shares: tuple[float, ...]  # per bin (numeric) or per category, summing to 1
    edges: tuple[float, ...] = ()  # numeric: the BINS - 1 inner edges, ascending
    categories: tuple[str, ...] = ()  # categorical: in the order of `shares`, OTHER last

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"kind": self.kind, "shares": [round(s, 6) for s in self.shares]}
        if self.kind == "numeric":
            doc["edges"] = list(self.edges)
        else:
            doc["categories"] = list(self.categories)
        return doc


def profile(values: Sequence[Any]) -> FeatureProfile:
    """The profile of one feature's training values (numbers, or anything else as text);
    missing values (None, "") are left out."""
    values = [v for v in values if v is not None and v != ""]
    numbers = [_finite(v) for v in values]
    if values and all(n is not None for n in numbers):
        ordered = sorted(n for n in numbers if n is not None)
        edges = tuple(sorted({ordered[len(ordered) * i // BINS] for i in range(1, BINS)}))
        return _counted(FeatureProfile("numeric", (0.0,) * (len(edges) + 1), edges), ordered)
    return _categorical(values)


def label_profile(values: Sequence[Any]) -> FeatureProfile:
    """The profile of the training labels: their classes when there are at most
    TOP_CATEGORIES distinct ones (class ids 0/1 are classes: deciles of a 95/5 split would
    put every label in one bin), else the numeric bins of a regression target."""
    present = [v for v in values if v is not None and v != ""]
    if len({category(v) for v in present}) <= TOP_CATEGORIES:
        return _categorical(present)
    return profile(present)


def _categorical(values: Sequence[Any]) -> FeatureProfile:
    counts = Counter(category(v) for v in values)
    top = [name for name, _ in counts.most_common(TOP_CATEGORIES)]
    categories = tuple(top) + ((OTHER,) if len(counts) > len(top) else ())
    return _counted(FeatureProfile("categorical", (0.0,) * len(categories), (), categories),
                    values)


def category(value: Any) -> str:
    """A value as the category it counts under: a CSV's "1" and "1.0" and a served
    model's 1 are one class."""
    if type(value) is int:  # a served classifier's usual answer: the short way
        return str(value)
    number = _finite(value)
    if number is not None and number.is_integer() and abs(number) < 2**53:
        return str(int(number))
    return str(value)


def _counted(empty: FeatureProfile, values: Iterable[Any]) -> FeatureProfile:
    """`empty` with the shares of `values` in its bins."""
    bins = LiveBins(empty)
    for value in values:
        bins.add(value)
    return FeatureProfile(empty.kind, _shares(bins.counts), empty.edges, empty.categories)


def from_json(doc: Any, where: str) -> FeatureProfile:
    """A profile read back from a pointer (untrusted: a clone's pointer may hold anything)."""
    if not isinstance(doc, Mapping) or doc.get("kind") not in ("numeric", "categorical"):
        raise ValueError(f"{where}: not a feature profile")
    shares = tuple(_checked_numbers(doc.get("shares"), f"{where}.shares"))
    if doc["kind"] == "numeric":
        edges = tuple(_checked_numbers(doc.get("edges"), f"{where}.edges"))
        if len(shares) != len(edges) + 1 or list(edges) != sorted(edges):
            raise ValueError(f"{where}: edges and shares do not match")
        return FeatureProfile("numeric", shares, edges)
    categories = doc.get("categories")
    if not isinstance(categories, list) or len(categories) != len(shares) or not all(
            isinstance(c, str) for c in categories):
        raise ValueError(f"{where}: categories and shares do not match")
    return FeatureProfile("categorical", shares, (), tuple(categories))


@dataclass(frozen=True)
class Drift:
    psi: float
    ks: float | None  # numeric features only
    live_count: int


class LiveBins:
    """Live values of one feature counted into its reference's bins as they stream by:
    memory stays that of the profile, however long the log."""

    def __init__(self, reference: FeatureProfile) -> None:
        self.reference = reference
        self.counts = [0] * len(reference.shares)
        self._edges = reference.edges
        self._index = {name: i for i, name in enumerate(reference.categories)}
        self._other = self._index.get(OTHER)
        # one method per kind, chosen once: `moma monitor` calls it for every value of a
        # million-line log, and the kind test and float() of every JSON float were a third
        # of its time
        self.add = self._add_number if reference.kind == "numeric" else self._add_category

    def _add_number(self, value: Any) -> None:
        if type(value) is float:  # what a JSON log holds: no conversion to pay for
            if value - value == 0.0:  # finite: inf - inf and NaN - NaN are NaN
                self.counts[bisect.bisect_right(self._edges, value)] += 1
            return
        number = _finite(value)
        if number is not None:
            self.counts[bisect.bisect_right(self._edges, number)] += 1

    def _add_category(self, value: Any) -> None:
        if value is None or value == "":
            return
        slot = self._index.get(category(value), self._other)
        if slot is not None:
            self.counts[slot] += 1

    def drift(self) -> Drift:
        observed = _shares(self.counts)
        numeric = self.reference.kind == "numeric"
        return Drift(psi(self.reference.shares, observed),
                     ks(self.reference.shares, observed) if numeric else None,
                     sum(self.counts))


def psi(expected: Sequence[float], actual: Sequence[float]) -> float:
    total = 0.0
    for e, a in zip(expected, actual, strict=True):
        e, a = max(e, _EPSILON), max(a, _EPSILON)
        total += (a - e) * math.log(a / e)
    return total


def ks(expected: Sequence[float], actual: Sequence[float]) -> float:
    """The largest gap between the two cumulative distributions at the bin edges."""
    gap = cum_e = cum_a = 0.0
    for e, a in zip(expected, actual, strict=True):
        cum_e, cum_a = cum_e + e, cum_a + a
        gap = max(gap, abs(cum_e - cum_a))
    return gap


def _shares(counts: Sequence[int]) -> tuple[float, ...]:
    total = sum(counts)
    return tuple(c / total if total else 0.0 for c in counts)


def _finite(value: Any) -> float | None:
    number = as_number(value)
    return number if number is not None and math.isfinite(number) else None


def _checked_numbers(raw: Any, where: str) -> list[float]:
    if not isinstance(raw, list) or not raw:
        raise ValueError(f"{where}: must be a list of numbers")
    numbers = [_finite(v) for v in raw]
    if any(n is None for n in numbers):
        raise ValueError(f"{where}: must be a list of numbers")
    return [n for n in numbers if n is not None]

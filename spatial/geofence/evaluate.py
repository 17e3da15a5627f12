"""Segment evaluators: which fences each consecutive-fix segment touches, and how.

For every segment (previous accepted fix → this fix, in metres) an evaluator returns the
candidate fences whose outer geometry the segment intersects, with three facts:
``end_inner`` (the fix is deep inside), ``end_outer`` (the fix is inside the grown fence) and
``cross`` (the segment passes through the shrunk fence — a truck cannot jump a fence between
two fixes). ``StrTreeEvaluator`` does it in memory with shapely's vectorised STRtree;
``SqlEvaluator`` sends the whole batch as one set-based statement (``unnest`` of the segments
joined to ``city.geofences`` on ``outer_m && segment``, GiST-indexed).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import numpy.typing as npt
import psycopg
import shapely

from spatial.geofence.fences import METRIC_SRID, FenceSet

Floats = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Facts:
    """Candidate (segment, fence) pairs; ``fence`` holds FenceSet indexes."""

    segment: npt.NDArray[np.int64]
    fence: npt.NDArray[np.int64]
    end_inner: npt.NDArray[np.bool_]
    end_outer: npt.NDArray[np.bool_]
    cross: npt.NDArray[np.bool_]

    @classmethod
    def empty(cls) -> Facts:
        """No pairs."""
        i = np.zeros(0, dtype=np.int64)
        b = np.zeros(0, dtype=bool)
        return cls(i, i, b, b, b)


@dataclass(frozen=True)
class Segments:
    """Segments in metres (x0, y0) → (x1, y1); a first fix is a zero-length segment."""

    x0: Floats
    y0: Floats
    x1: Floats
    y1: Floats

    def __len__(self) -> int:
        """Number of segments."""
        return len(self.x1)

    def lines(self) -> npt.NDArray[np.object_]:
        """Shapely linestrings (points where both ends coincide)."""
        coords = np.stack([np.stack([self.x0, self.y0], 1), np.stack([self.x1, self.y1], 1)], 1)
        lines = shapely.linestrings(coords)
        still = (self.x0 == self.x1) & (self.y0 == self.y1)
        if still.any():
            lines[still] = shapely.points(self.x1[still], self.y1[still])
        return lines


class Evaluator(Protocol):
    """Finds the fence facts of a batch of segments."""

    async def facts(
        self, conn: psycopg.AsyncConnection, fences: FenceSet, segments: Segments
    ) -> Facts:
        """Candidate pairs and their facts."""
        ...


class StrTreeEvaluator:
    """In-memory evaluation: one vectorised STRtree query plus prepared predicates."""

    async def facts(
        self, conn: psycopg.AsyncConnection, fences: FenceSet, segments: Segments
    ) -> Facts:
        """Candidate pairs and their facts, computed with shapely."""
        return self.compute(fences, segments)

    @staticmethod
    def compute(fences: FenceSet, segments: Segments) -> Facts:
        """Synchronous core (also used by benchmarks)."""
        if not len(fences) or not len(segments):
            return Facts.empty()
        lines = segments.lines()
        seg, fence = fences.tree.query(lines, predicate="intersects")
        if not len(seg):
            return Facts.empty()
        x1, y1 = segments.x1[seg], segments.y1[seg]
        return Facts(
            seg.astype(np.int64),
            fence.astype(np.int64),
            shapely.contains_xy(fences.inner[fence], x1, y1),
            shapely.contains_xy(fences.outer[fence], x1, y1),
            shapely.intersects(fences.inner[fence], lines[seg]),
        )


SQL_FACTS = f"""
WITH s AS (
    SELECT i, ST_SetSRID(ST_MakeLine(ST_MakePoint(x0, y0), ST_MakePoint(x1, y1)), {METRIC_SRID})
             AS seg,
           ST_SetSRID(ST_MakePoint(x1, y1), {METRIC_SRID}) AS p
    FROM unnest(%(x0)s::float8[], %(y0)s::float8[], %(x1)s::float8[], %(y1)s::float8[])
         WITH ORDINALITY AS u(x0, y0, x1, y1, i)
)
SELECT s.i - 1, f.id, ST_Intersects(f.inner_m, s.p), ST_Intersects(f.outer_m, s.p),
       ST_Intersects(f.inner_m, s.seg)
FROM s JOIN city.geofences f ON f.outer_m && s.seg AND ST_Intersects(f.outer_m, s.seg)
WHERE f.active
"""


class SqlEvaluator:
    """Set-based evaluation in PostGIS: the whole batch in one statement."""

    async def facts(
        self, conn: psycopg.AsyncConnection, fences: FenceSet, segments: Segments
    ) -> Facts:
        """Candidate pairs and their facts, computed by PostGIS."""
        if not len(segments):
            return Facts.empty()
        args = {
            "x0": segments.x0.tolist(),
            "y0": segments.y0.tolist(),
            "x1": segments.x1.tolist(),
            "y1": segments.y1.tolist(),
        }
        cur = await conn.execute(SQL_FACTS, args)
        rows = [r for r in await cur.fetchall() if r[1] in fences.by_id]
        if not rows:
            return Facts.empty()
        return Facts(
            np.array([r[0] for r in rows], dtype=np.int64),
            np.array([fences.by_id[r[1]] for r in rows], dtype=np.int64),
            np.array([r[2] for r in rows], dtype=bool),
            np.array([r[3] for r in rows], dtype=bool),
            np.array([r[4] for r in rows], dtype=bool),
        )

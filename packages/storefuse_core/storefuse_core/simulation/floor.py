"""Walkable floor: where shoppers can walk (not through gondolas) and the way between two points.

A* on a 0.25 m grid with gondolas inflated by a body's clearance, then shortcut where the straight
line stays clear, so paths look like people walking aisles rather than grid staircases.
"""
from __future__ import annotations

import heapq
import math

import numpy as np
import yaml

from storefuse_core.layout import Store


class Floor:
    def __init__(self, store: Store, cell_m: float = 0.25, clearance_m: float = 0.3):
        doc = yaml.safe_load(store.source_text) or {}
        floor = doc.get("floor") or {}
        xs = [g.x for g in store.gondolas.values()] + [g.x for g in store.gates.values()]
        ys = [g.y for g in store.gondolas.values()] + [g.y for g in store.gates.values()]
        self.length = float(floor.get("length_m", max(xs) + 3.0))
        self.width = float(floor.get("width_m", max(ys) + 3.0))
        self.cell = cell_m
        self.nx, self.ny = int(math.ceil(self.length / cell_m)), int(math.ceil(self.width / cell_m))
        self.blocked = np.zeros((self.nx, self.ny), dtype=bool)
        cx = (np.arange(self.nx) + 0.5) * cell_m
        cy = (np.arange(self.ny) + 0.5) * cell_m
        gx, gy = np.meshgrid(cx, cy, indexing="ij")
        for g in store.gondolas.values():
            c, s = math.cos(g.yaw), math.sin(g.yaw)
            along = (gx - g.x) * c + (gy - g.y) * s
            across = -(gx - g.x) * s + (gy - g.y) * c
            self.blocked |= (np.abs(along) <= g.length_m / 2 + clearance_m) & \
                            (np.abs(across) <= g.depth_m / 2 + clearance_m)
        self._cache: dict[tuple, list[tuple[float, float]]] = {}

    def _cell(self, p) -> tuple[int, int]:
        i = min(self.nx - 1, max(0, int(p[0] / self.cell)))
        j = min(self.ny - 1, max(0, int(p[1] / self.cell)))
        return i, j

    def _center(self, c) -> tuple[float, float]:
        return (c[0] + 0.5) * self.cell, (c[1] + 0.5) * self.cell

    def _free_near(self, c):
        if not self.blocked[c]:
            return c
        best, best_d = c, None
        for r in range(1, 12):
            for i in range(max(0, c[0] - r), min(self.nx, c[0] + r + 1)):
                for j in range(max(0, c[1] - r), min(self.ny, c[1] + r + 1)):
                    if not self.blocked[i, j]:
                        d = (i - c[0]) ** 2 + (j - c[1]) ** 2
                        if best_d is None or d < best_d:
                            best, best_d = (i, j), d
            if best_d is not None:
                return best
        return c

    def clear_line(self, a, b) -> bool:
        n = int(math.hypot(b[0] - a[0], b[1] - a[1]) / (self.cell / 2)) + 1
        for k in range(n + 1):
            f = k / n
            if self.blocked[self._cell((a[0] + f * (b[0] - a[0]), a[1] + f * (b[1] - a[1])))]:
                return False
        return True

    def path(self, a, b) -> list[tuple[float, float]]:
        """Waypoints from a to b (both included) that never cross a gondola."""
        start, goal = self._free_near(self._cell(a)), self._free_near(self._cell(b))
        key = (start, goal)
        if key not in self._cache:
            self._cache[key] = self._smooth(self._astar(start, goal))
        inner = self._cache[key][1:-1]
        return [tuple(a), *inner, tuple(b)]

    def _astar(self, start, goal) -> list[tuple[float, float]]:
        moves = [(1, 0, 1.0), (-1, 0, 1.0), (0, 1, 1.0), (0, -1, 1.0),
                 (1, 1, 1.414), (1, -1, 1.414), (-1, 1, 1.414), (-1, -1, 1.414)]
        frontier = [(0.0, start)]
        came: dict = {start: None}
        cost = {start: 0.0}
        while frontier:
            _, cur = heapq.heappop(frontier)
            if cur == goal:
                break
            for di, dj, w in moves:
                nxt = (cur[0] + di, cur[1] + dj)
                if not (0 <= nxt[0] < self.nx and 0 <= nxt[1] < self.ny) or self.blocked[nxt]:
                    continue
                new = cost[cur] + w
                if new < cost.get(nxt, math.inf):
                    cost[nxt] = new
                    came[nxt] = cur
                    heapq.heappush(frontier, (new + math.hypot(goal[0] - nxt[0], goal[1] - nxt[1]), nxt))
        if goal not in came:
            return [self._center(start), self._center(goal)]
        cells, cur = [], goal
        while cur is not None:
            cells.append(cur)
            cur = came[cur]
        return [self._center(c) for c in reversed(cells)]

    def _smooth(self, pts):
        if len(pts) <= 2:
            return pts
        out, i = [pts[0]], 0
        while i < len(pts) - 1:
            j = len(pts) - 1
            while j > i + 1 and not self.clear_line(pts[i], pts[j]):
                j -= 1
            out.append(pts[j])
            i = j
        return out

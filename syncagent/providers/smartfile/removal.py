"""`delete_many` for SmartFile: many paths in one remove task.

`POST path/oper/remove` takes `path=` repeated (spec §4.10, the way the
Meteor client removes several items), and a task costs the same latency for
one path or two hundred. So a batch of deletions becomes:

1. the promise of `recursive=False` is kept first: SmartFile removes folders
   recursively, so each non-recursive path is looked up in one listing of its
   parent folder (one request per parent, not per path); a folder that still
   holds items not deleted in the same batch is refused (AlreadyExists), and
   a path the listing no longer has is already gone (no failure);
2. a path inside another path of the batch is left to its ancestor;
3. one task per `Tuning.batch` paths; per-path errors in the task's result
   fail only their paths, and only if the path is still there afterwards.

A missing path makes the server refuse the whole POST (404, the emulator's
policy for an unverified case): the paths are then checked one by one and
the task is sent again with those still present.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from syncagent import errors
from syncagent.providers.smartfile.entries import Paths
from syncagent.providers.smartfile.tasks import path_errors, run_task_result
from syncagent.providers.smartfile.transport import Api

ChildInfos = Callable[[str], Iterator[tuple[str, dict[str, Any]]]]


class Removal:
    def __init__(self, api: Api, paths: Paths, batch: int, child_infos: ChildInfos) -> None:
        self.api, self.paths, self.batch, self.child_infos = api, paths, max(1, batch), child_infos

    def run(self, items: Sequence[tuple[str, bool]]) -> dict[str, Exception]:
        failed: dict[str, Exception] = {}
        wanted: dict[str, bool] = {}
        for path, recursive in items:
            if not path.strip("/"):
                failed[path] = errors.PermanentError("refusing to delete the root folder", path=self.paths.root)
            else:
                wanted[path] = wanted.get(path, False) or recursive
        try:
            accepted = self._keep_promises(wanted, failed)
        except errors.ProviderError as exc:  # the look-ups failed: nothing was removed
            return {**failed, **dict.fromkeys(wanted, exc)}
        todo = _outermost(accepted)
        for i in range(0, len(todo), self.batch):
            for path, error in self._remove(todo[i: i + self.batch], retry_missing=True).items():
                failed[path] = error
                # what was left to this folder was not removed either
                failed.update({p: error for p in accepted if p.startswith(path + "/")})
        return failed

    # ---- 1. non-recursive paths: not a folder with items left ---------------------------
    def _keep_promises(self, wanted: dict[str, bool], failed: dict[str, Exception]) -> list[str]:
        items = self._items_of_plain_paths([p for p, recursive in wanted.items() if not recursive])
        accepted: set[str] = {p for p, recursive in wanted.items() if recursive}
        # deepest first, so a folder knows which of its children this batch removes
        for path in sorted(items, key=lambda p: p.count("/"), reverse=True):
            count = items[path]
            if count is None:
                continue  # already gone
            removed_inside = sum(1 for p in accepted if Paths.parent(p) == path)
            if count > removed_inside:
                failed[path] = errors.AlreadyExists("the folder is not empty", path=path)
            else:
                accepted.add(path)
        return sorted(accepted)

    def _items_of_plain_paths(self, plain: list[str]) -> dict[str, int | None]:
        """For each path: 0 for a file, a folder's item count, None when it is gone."""
        by_parent: dict[str, list[str]] = defaultdict(list)
        for path in plain:
            by_parent[Paths.parent(path)].append(path)
        found: dict[str, int | None] = {}
        for parent, paths in by_parent.items():
            try:
                infos = dict(self.child_infos(parent))
            except errors.NotFound:
                infos = {}
            for path in paths:
                info = infos.get(Paths.name(path))
                found[path] = None if info is None else int(info.get("items") or 0) if info.get("isdir") else 0
        return found

    # ---- 3. the tasks ---------------------------------------------------------------------
    def _remove(self, batch: list[str], *, retry_missing: bool) -> dict[str, Exception]:
        form = {"path": [self.paths.abs(p) for p in batch]}
        try:
            result = run_task_result(self.api, "remove", form, error_path=batch[0])
        except errors.NotFound as exc:
            present = [p for p in batch if self._exists(p)]
            if not retry_missing or len(present) == len(batch):
                return {p: exc for p in present}
            return self._remove(present, retry_missing=False) if present else {}
        except errors.ProviderError as exc:
            return {p: exc for p in batch}
        by_abs = {self.paths.abs(p): p for p in batch}
        reported = {by_abs[a]: message for a, message in path_errors(result).items() if a in by_abs}
        if result.get("status") == "FAILURE" and not reported:
            reported = dict.fromkeys(batch, "the task failed")
        return {p: errors.PermanentError(f"SmartFile remove failed: {message}", path=p)
                for p, message in reported.items() if self._exists(p)}

    def _exists(self, path: str) -> bool:
        try:
            self.api.call("GET", "path/info", self.paths.abs(path), error_path=path)
        except errors.NotFound:
            return False
        return True


def _outermost(paths: list[str]) -> list[str]:
    """Drop every path that lies inside another one of the list."""
    chosen = set(paths)
    out = []
    for path in paths:
        parts = path.split("/")
        if not any("/".join(parts[:i]) in chosen for i in range(1, len(parts))):
            out.append(path)
    return out

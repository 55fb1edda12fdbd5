"""A copy of the lab's model that can be brought back many times, fast: what lab snapshots keep.

`freeze(nodes)` pickles the Windows nodes once (cryptography's certificate and key objects are
immutable: they are shared, not copied); `thaw()` gives a new, private set of nodes each time
(0.3 ms for the default lab, where a deep copy takes 1.5-15 ms). A model that cannot be pickled
falls back to copy.deepcopy. `FileTree` does the same for the files under the lab's work
directory (keys, certificates, the nodes' C: drives): `restore()` rewrites only what changed.
"""

from __future__ import annotations

import copy
import io
import os
import pickle
import shutil
from pathlib import Path
from typing import Any


class _Pickler(pickle.Pickler):
    def __init__(self, buffer: io.BytesIO, shared: list[Any]) -> None:
        super().__init__(buffer, protocol=pickle.HIGHEST_PROTOCOL)
        self.shared = shared

    def persistent_id(self, obj: Any) -> int | None:
        if type(obj).__module__.startswith("cryptography."):
            self.shared.append(obj)
            return len(self.shared) - 1
        return None


class _Unpickler(pickle.Unpickler):
    def __init__(self, buffer: io.BytesIO, shared: list[Any]) -> None:
        super().__init__(buffer)
        self.shared = shared

    def persistent_load(self, pid: Any) -> Any:
        return self.shared[pid]


class FrozenModel:
    """The nodes as they were at freeze time."""

    def __init__(self, nodes: dict[str, Any]) -> None:
        self._shared: list[Any] = []
        self._copy: dict[str, Any] | None = None
        buffer = io.BytesIO()
        try:
            _Pickler(buffer, self._shared).dump(nodes)
            self._blob: bytes | None = buffer.getvalue()
        except (pickle.PicklingError, TypeError, AttributeError):
            self._blob = None
            self._copy = copy.deepcopy(nodes)

    @property
    def pickled(self) -> bool:
        return self._blob is not None

    def thaw(self) -> dict[str, Any]:
        """A new private copy of the nodes."""
        if self._blob is not None:
            nodes: dict[str, Any] = _Unpickler(io.BytesIO(self._blob), self._shared).load()
            return nodes
        return copy.deepcopy(self._copy)  # type: ignore[arg-type]


def freeze(nodes: dict[str, Any]) -> FrozenModel:
    return FrozenModel(nodes)


class FileTree:
    """Every file (bytes) and folder under a directory at one moment, and bringing it back.

    `skip`: top-level folders left out (those running services own, e.g. the DC's KDC).
    restore() looks only where something changed: a folder whose mtime moved (an entry was
    added or removed) is listed, a file whose size or mtime moved is rewritten."""

    def __init__(self, root: Path, skip: frozenset[str] = frozenset()) -> None:
        self.root, self.skip = Path(root), skip
        self.files: dict[str, bytes] = {}
        self.folders: set[str] = {"."}
        for folder, dirs, files in os.walk(self.root):
            rel = os.path.relpath(folder, self.root)
            if rel == ".":
                dirs[:] = [d for d in dirs if d not in skip]
            self.folders.add(rel)
            for name in files:
                path = os.path.join(folder, name)
                with open(path, "rb") as handle:
                    self.files[os.path.normpath(os.path.join(rel, name))] = handle.read()
        self._stats: dict[str, tuple[int, int]] = {}
        self._record()

    def _record(self) -> None:
        for key in self.folders:
            self._stats[key] = (0, os.stat(os.path.join(self.root, key)).st_mtime_ns)
        for key in self.files:
            st = os.stat(os.path.join(self.root, key))
            self._stats[key] = (st.st_size, st.st_mtime_ns)

    def _changed(self, key: str) -> bool:
        try:
            st = os.stat(os.path.join(self.root, key))
        except FileNotFoundError:
            return True
        size = 0 if key in self.folders else st.st_size
        return (size, st.st_mtime_ns) != self._stats.get(key)

    def restore(self) -> None:
        """Make the directory hold exactly these files again."""
        root = self.root
        for folder in sorted(self.folders, key=len):
            path = os.path.join(root, folder)
            if not os.path.isdir(path):
                if os.path.lexists(path):
                    os.unlink(path)
                os.makedirs(path, exist_ok=True)
            elif not self._changed(folder):
                continue
            for name in os.listdir(path):
                key = os.path.normpath(os.path.join(folder, name))
                if key in self.files or key in self.folders or (folder == "." and name in
                                                                 self.skip):
                    continue
                entry = os.path.join(path, name)
                if os.path.isdir(entry) and not os.path.islink(entry):
                    shutil.rmtree(entry)
                else:
                    os.unlink(entry)
        for key, data in self.files.items():
            if not self._changed(key):
                continue
            path = os.path.join(root, key)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
            with open(path, "wb") as handle:
                handle.write(data)
        self._record()


__all__ = ["FileTree", "FrozenModel", "freeze"]

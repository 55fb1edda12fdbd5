"""The node's C: drive as a real directory tree, with Windows' case-insensitive names."""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path, PureWindowsPath


class FsError(OSError):
    """A path that does not exist or an operation Windows would refuse."""


class WinFs:
    """Maps C:\\... to `root`/C/...; only the C: drive exists."""

    def __init__(self, root: Path) -> None:
        self.drive = root / "C"
        self.drive.mkdir(parents=True, exist_ok=True)

    @staticmethod
    def parts(path: str) -> list[str]:
        win = PureWindowsPath(path.replace("/", "\\"))
        if win.drive.upper() != "C:":
            raise FsError(f"Cannot find drive. A drive with the name '{win.drive or path}' "
                          "does not exist.")
        return [p for p in win.parts[1:] if p not in ("\\", ".")]

    @staticmethod
    def canonical(path: str) -> str:
        return "C:\\" + "\\".join(WinFs.parts(path))

    def real(self, path: str) -> Path:
        """The real path, matching existing names case-insensitively."""
        here = self.drive
        for part in self.parts(path):
            if part == "..":
                here = here.parent if here != self.drive else here
                continue
            match = part
            if here.is_dir():
                for child in here.iterdir():
                    if child.name.lower() == part.lower():
                        match = child.name
                        break
            here = here / match
        return here

    def win(self, real: Path) -> str:
        rel = real.relative_to(self.drive)
        return "C:\\" + "\\".join(rel.parts)

    def exists(self, path: str) -> bool:
        return self.real(path).exists()

    def is_dir(self, path: str) -> bool:
        return self.real(path).is_dir()

    def glob(self, path: str) -> list[str]:
        """Windows paths matching wildcards (* ?) in the last component, case-insensitively."""
        parts = self.parts(path)
        if not parts or not any(c in parts[-1] for c in "*?"):
            return [self.canonical(path)] if self.exists(path) else []
        folder = self.real("C:\\" + "\\".join(parts[:-1]))
        if not folder.is_dir():
            return []
        pattern = parts[-1].lower()
        return sorted(self.win(child) for child in folder.iterdir()
                      if fnmatch.fnmatchcase(child.name.lower(), pattern))

    def listdir(self, path: str) -> list[str]:
        folder = self.real(path)
        if not folder.is_dir():
            raise FsError(f"Cannot find path '{path}' because it does not exist.")
        return sorted(self.win(child) for child in folder.iterdir())

    def mkdir(self, path: str) -> None:
        self.real(path).mkdir(parents=True, exist_ok=True)

    def rename(self, path: str, new_name: str) -> str:
        source = self.real(path)
        if not source.exists():
            raise FsError(f"Cannot rename because item at '{path}' does not exist.")
        if "\\" in new_name or "/" in new_name:
            raise FsError("Cannot rename the specified target, because it represents a path "
                          "or device name.")
        target = source.with_name(new_name)
        if target.exists():
            raise FsError("Cannot create a file when that file already exists.")
        source.rename(target)
        return self.win(target)

    def remove(self, path: str, recursive: bool = False) -> None:
        target = self.real(path)
        if not target.exists():
            raise FsError(f"Cannot find path '{path}' because it does not exist.")
        if target.is_dir():
            if any(target.iterdir()) and not recursive:
                raise FsError(f"The item at {path} has children and the Recurse parameter "
                              "was not specified.")
            shutil.rmtree(target)
        else:
            target.unlink()

"""`up` for one lab (also what a classroom does per student): check the input, spawn the
supervisor, wait until it answers."""

from __future__ import annotations

from typing import Any

from ..lab.definition import load_lab
from ..scenario.source import ScenarioFileError
from .connect import connect_info, endpoints, hosts_lines
from .errors import TrainingError
from .labdir import LabDir
from .lifecycle import parse_publish, spawn, supervisor_alive, wait_ready
from .publish import PublishError, bind_listener


def resolve_backend_here(name: str) -> str:
    """The backend a trainer's lab runs on: a registered one that can stay up under a
    supervisor and can run on this machine (TrainingError naming what is missing)."""
    from ..errors import BackendUnavailable
    from ..lab import registry

    try:
        backend = registry.resolve(name, trainable=True)
    except (ValueError, BackendUnavailable) as exc:
        raise TrainingError(str(exc)) from None
    cls = registry.backend_class(backend)
    if not cls.trainable:
        raise TrainingError(f"the {backend} backend does not run trainer labs; use "
                            f"{', '.join(registry.choices(trainable=True))}")
    why = cls.availability()
    if why:
        others = [n for n in registry.choices(trainable=True)[1:] if n != backend]
        raise TrainingError(f"the {backend} backend cannot run here: {why}"
                            + (f"; use --backend {others[0]}" if others else ""))
    return backend


def prepare(labdir: LabDir, *, name: str, lab: str, backend: str, publish: str,
            identity: dict[str, Any] | None = None, password: str | None = None,
            extra: dict[str, Any] | None = None) -> tuple[dict[str, Any], str]:
    """The record to start with, after every check of the input (nothing created yet)."""
    try:
        spec = load_lab(lab)
    except (ScenarioFileError, FileNotFoundError, OSError) as exc:
        raise TrainingError(str(exc)) from None
    address, port = parse_publish(publish)
    if port:
        try:
            bind_listener(address, port).close()
        except PublishError as exc:
            raise TrainingError(f"--publish: {exc.strerror}") from None
    if labdir.exists():
        record = labdir.read()
        if supervisor_alive(record):
            raise TrainingError(f"a lab named {name} is already up ({labdir.path}); "
                                "choose another --name or `rdplab down` it first")
        raise TrainingError(f"a stopped lab named {name} is left at {labdir.path}; "
                            f"`rdplab down --name {name}` removes it")
    record = {"name": name, "lab": str(spec.path), "backend": backend,
              "publish": [address, port], "identity": identity, "fault": None,
              "user": (identity or {}).get("user") or spec.user[0], **(extra or {})}
    return record, password or spec.user[1]


def bring_up(labdir: LabDir, *, name: str, lab: str, backend: str, publish: str,
             identity: dict[str, Any] | None = None, password: str | None = None,
             extra: dict[str, Any] | None = None, wait: bool = True) -> dict[str, Any]:
    backend = resolve_backend_here(backend)
    record, password = prepare(labdir, name=name, lab=lab, backend=backend, publish=publish,
                               identity=identity, password=password, extra=extra)
    from .lifecycle import remove

    with labdir.locked(create=True):
        proc = spawn(labdir, record, password)
        if not wait:
            return labdir.read()
        try:
            return wait_ready(labdir, proc)
        except BaseException:
            remove(labdir)
            raise


def print_connect(labdir: LabDir, record: dict[str, Any]) -> None:
    info = connect_info(labdir, record)
    ends = endpoints(record)
    print(f"  entry point: {ends['gateway'] or ends['host']}"
          + (f" (RD Gateway; the host is {ends['host']} behind it)" if ends["gateway"] else ""))
    print(f"  user: {record['names']['domain']}\\{record['names']['user']} "
          f"(password in {labdir.password_file}, readable only by you)")
    env = " ".join(f"{k}={v}" for k, v in info["env"].items())
    print(f"  xfreerdp: {env} {' '.join(info['xfreerdp'])} /p:<password>"
          + (" /gp:<password>" if ends["gateway"] else ""))
    print(f"  mstsc: open {info['rdp_file']} (with `{hosts_lines(record)[0]}` in the hosts "
          "file)")




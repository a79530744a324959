"""The user's app (APP=package.module:app, imported from APP_DIR) inside the lab's middleware.

Servers load `contract.app_entry:app`; the app is imported when a server first asks for it (a module
`__getattr__`), so importing this module costs nothing. `python -m contract.app_entry` checks APP
before anything starts: it prints the app's interface (wsgi or asgi), or says in one line why it
cannot be served (the app's own import error, or a callable that is neither WSGI nor ASGI).
"""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

from contract.middleware import Interface, LabASGI, LabWSGI, NotAnAppError, interface, wrap


class AppError(ValueError):
    """APP names nothing the lab can serve; the message says why, in one line."""


def _target(spec: str) -> tuple[str, str]:
    module, _, attribute = spec.partition(":")
    if not module or not attribute:
        raise AppError(f"APP={spec!r} is not valid: APP takes package.module:callable, such as myapp.wsgi:application")
    return module, attribute


def load(spec: str, folder: str = "") -> object:
    """The callable APP names, imported with APP_DIR first on the import path."""
    module_name, attribute = _target(spec)
    if folder:
        where = Path(folder).resolve()
        if not where.is_dir():
            raise AppError(f"APP_DIR={folder!r} is not a folder")
        sys.path.insert(0, str(where))
    try:
        module = importlib.import_module(module_name)
    except Exception as error:  # the app's own error, whatever it is, in one line
        raise AppError(f"APP={spec}: importing {module_name} failed: {type(error).__name__}: {error}".splitlines()[0]) from None
    try:
        found: object = module
        for part in attribute.split("."):
            found = getattr(found, part)
    except AttributeError:
        raise AppError(f"APP={spec}: {module_name} has no {attribute}") from None
    return found


def check(spec: str, folder: str = "") -> Interface:
    """The interface of the app APP names, or AppError saying why it cannot be served."""
    try:
        return interface(load(spec, folder))
    except NotAnAppError as error:
        raise AppError(f"APP={spec} is neither a WSGI nor an ASGI app: {error}") from None


def _from_environ() -> LabWSGI | LabASGI:
    spec = os.environ.get("APP", "")
    if not spec:
        raise AppError("APP is not set: the lab serves contract.app_entry:app only for APP=package.module:app")
    return wrap(load(spec, os.environ.get("APP_DIR", "")))


_loaded: list[LabWSGI | LabASGI] = []


def __getattr__(name: str) -> object:
    if name != "app":
        raise AttributeError(name)
    if not _loaded:
        _loaded.append(_from_environ())
    return _loaded[0]


def main() -> int:
    try:
        print(check(os.environ.get("APP", ""), os.environ.get("APP_DIR", "")))
    except AppError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())

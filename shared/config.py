"""Typed service configuration: a YAML file, overridden by environment, overridden by flags.

A service declares its settings as frozen dataclasses (nested for sections) and loads them with
:func:`load_config`; every value is converted to the declared type and every problem is reported
at once with its path and where it came from. Durations are written like Go's (``"50ms"``,
``"1.5s"``, ``"2m"``) and read as float seconds through the :data:`Seconds` annotation::

    @dataclass(frozen=True)
    class Server:
        host: str = "127.0.0.1"
        port: int = field(default=8443, metadata={"help": "listen port"})

    @dataclass(frozen=True)
    class ExtenderConfig:
        server: Server = field(default_factory=Server)
        stream_timeout: Seconds = 1.0
        zones: tuple[str, ...] = ()

    config = config_from_args(ExtenderConfig, sys.argv[1:], os.environ, env_prefix="JITNODE_EXTENDER_")

Sources, lowest priority first:

* the YAML file (``--config`` or ``<prefix>CONFIG``), keys as the field names
  (``server: {port: 9000}``); unknown keys are errors, so typos don't pass silently;
* environment variables ``<prefix><SECTION>_<KEY>`` in upper case (``JITNODE_EXTENDER_SERVER_PORT``);
  lists are comma separated, maps ``k=v,k2=v2``; variables that match no field are ignored, as
  the environment is shared with other software;
* ``overrides``, keyed by dotted path (``{"server.port": 9000}``), which is what the flags built
  by :func:`add_config_arguments` produce (``--server-port 9000``; ``--flag/--no-flag`` for bools).

Supported field types: ``str``, ``int``, ``float``, ``bool``, :data:`Seconds`, ``Literal`` of
strings, ``Enum`` subclasses, ``X | None``, ``tuple[X, ...]``, ``list[X]``, ``dict[str, X]`` and
nested dataclasses. Reading the file blocks, so load configuration before starting the event loop.
"""

from __future__ import annotations

import argparse
import dataclasses
import enum
import os
import types
import typing
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Final, Literal, TypeVar

import yaml

from shared.api.durations import parse_go_duration
from shared.errors import FieldError, ValidationError

T = TypeVar("T")

DEFAULT_ENV_PREFIX: Final = "JITNODE_"
_TRUE: Final = frozenset({"true", "yes", "on", "1"})
_FALSE: Final = frozenset({"false", "no", "off", "0"})


class _Duration:
    """Marker: the field is a duration in seconds, written ``"50ms"``/``"1.5s"``/``2``."""

    def __repr__(self) -> str:
        return "duration"


DURATION: Final = _Duration()
Seconds = Annotated[float, DURATION]


@dataclasses.dataclass(frozen=True)
class Setting:
    """One leaf of a configuration tree."""

    path: str
    type: Any
    default: Any
    help: str

    @property
    def required(self) -> bool:
        return self.default is dataclasses.MISSING

    def env_name(self, prefix: str) -> str:
        return prefix + self.path.replace(".", "_").upper()

    @property
    def flag(self) -> str:
        return "--" + self.path.replace(".", "-").replace("_", "-")


def settings(cls: type[Any], prefix: str = "") -> list[Setting]:
    """Every leaf setting of a config dataclass, depth first, with dotted paths."""
    out: list[Setting] = []
    hints = typing.get_type_hints(cls, include_extras=True)
    for f in dataclasses.fields(cls):
        path = f"{prefix}{f.name}"
        kind = hints[f.name]
        if _is_dataclass_type(kind):
            out.extend(settings(kind, f"{path}."))
            continue
        if f.default is not dataclasses.MISSING:
            default = f.default
        elif f.default_factory is not dataclasses.MISSING:
            default = f.default_factory()
        else:
            default = dataclasses.MISSING
        out.append(Setting(path, kind, default, str(f.metadata.get("help", ""))))
    return out


def load_config(
    cls: type[T],
    path: str | os.PathLike[str] | None = None,
    env: Mapping[str, str] | None = None,
    overrides: Mapping[str, object] | None = None,
    *,
    env_prefix: str = DEFAULT_ENV_PREFIX,
) -> T:
    """Build ``cls`` from a YAML file, ``env`` and ``overrides`` (see the module docstring).

    Raises :class:`ValidationError` naming every bad or unknown setting.
    """
    leaves = {s.path: s for s in settings(cls)}
    errors: list[FieldError] = []
    values: dict[str, tuple[object, str]] = {}
    if path is not None:
        _read_file(cls, Path(path), values, errors)
    for setting in leaves.values():
        name = setting.env_name(env_prefix)
        if env is not None and name in env:
            values[setting.path] = (env[name], name)
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in leaves:
            errors.append(FieldError(key, "unknown setting"))
            continue
        values[key] = (value, "flag " + leaves[key].flag)
    converted: dict[str, object] = {}
    for setting in leaves.values():
        if setting.path in values:
            raw, source = values[setting.path]
            try:
                converted[setting.path] = _convert(setting.type, raw, setting.path, isinstance(raw, str))
            except FieldError as exc:
                errors.append(FieldError(exc.path, f"{exc.message} (from {source})"))
        elif setting.required:
            errors.append(FieldError(setting.path, "required"))
        else:
            converted[setting.path] = setting.default
    if errors:
        raise ValidationError(errors, f"{cls.__name__} configuration")
    return _build(cls, converted, "")


def _build(cls: type[T], values: Mapping[str, object], prefix: str) -> T:
    hints = typing.get_type_hints(cls, include_extras=True)
    kwargs: dict[str, object] = {}
    for f in dataclasses.fields(cls):  # type: ignore[arg-type]
        kind = hints[f.name]
        path = f"{prefix}{f.name}"
        kwargs[f.name] = _build(kind, values, f"{path}.") if _is_dataclass_type(kind) else values[path]
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:  # a __post_init__ check of the service's own
        raise ValidationError(
            [FieldError(prefix.rstrip("."), str(exc))], f"{cls.__name__} configuration"
        ) from exc


def _read_file(
    cls: type[Any], path: Path, values: dict[str, tuple[object, str]], errors: list[FieldError]
) -> None:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        errors.append(FieldError("", f"cannot read config file {str(path)!r}: {exc}"))
        return
    if not isinstance(data, Mapping):
        errors.append(FieldError("", f"config file {str(path)!r} must hold a mapping"))
        return
    _walk_file(cls, data, "", values, errors, str(path))


def _walk_file(
    cls: type[Any],
    data: Mapping[Any, Any],
    prefix: str,
    values: dict[str, tuple[object, str]],
    errors: list[FieldError],
    source: str,
) -> None:
    hints = typing.get_type_hints(cls, include_extras=True)
    names = {f.name for f in dataclasses.fields(cls)}
    for key, value in data.items():
        name = str(key).replace("-", "_")
        path = f"{prefix}{name}"
        if name not in names:
            errors.append(FieldError(f"{prefix}{key}", f"unknown setting (in {source})"))
        elif _is_dataclass_type(hints[name]):
            if isinstance(value, Mapping):
                _walk_file(hints[name], value, f"{path}.", values, errors, source)
            elif value is not None:
                errors.append(FieldError(path, f"expected a section (mapping) (in {source})"))
        else:
            values[path] = (value, source)


def _is_dataclass_type(kind: object) -> bool:
    return isinstance(kind, type) and dataclasses.is_dataclass(kind)


def _convert(kind: Any, value: object, path: str, from_text: bool) -> object:
    """``value`` as ``kind``; ``from_text`` values (env, flags) are parsed from strings."""
    origin = typing.get_origin(kind)
    args = typing.get_args(kind)
    if origin is Annotated:
        if DURATION in args[1:]:
            return parse_go_duration(value, path)
        return _convert(args[0], value, path, from_text)
    if origin in (types.UnionType, typing.Union):
        options = [a for a in args if a is not type(None)]
        if value is None or (from_text and value == "" and len(options) < len(args)):
            if len(options) < len(args):
                return None
            raise FieldError(path, "must not be empty")
        if len(options) == 1:
            return _convert(options[0], value, path, from_text)
        raise FieldError(path, f"unsupported union type {kind!r}")
    if origin is Literal:
        if value not in args:
            raise FieldError(path, f"{value!r} must be one of {', '.join(map(str, args))}")
        return value
    if origin in (tuple, list):
        item_kind = args[0] if args else str
        items = _split(value, path) if isinstance(value, str) else value
        if not isinstance(items, Sequence) or isinstance(items, str | bytes):
            raise FieldError(path, f"expected a list, got {value!r}")
        converted = [
            _convert(item_kind, item, f"{path}[{i}]", isinstance(item, str)) for i, item in enumerate(items)
        ]
        return tuple(converted) if origin is tuple else converted
    if origin is dict:
        item_kind = args[1] if len(args) == 2 else str
        pairs = _split_pairs(value, path) if isinstance(value, str) else value
        if not isinstance(pairs, Mapping):
            raise FieldError(path, f"expected a mapping, got {value!r}")
        return {str(k): _convert(item_kind, v, f"{path}.{k}", isinstance(v, str)) for k, v in pairs.items()}
    if isinstance(kind, type) and issubclass(kind, enum.Enum):
        try:
            return kind(value)
        except ValueError:
            raise FieldError(
                path, f"{value!r} must be one of {', '.join(str(m.value) for m in kind)}"
            ) from None
    return _scalar(kind, value, path)


def _scalar(kind: Any, value: object, path: str) -> object:
    if kind is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        raise FieldError(path, f"{value!r} is not a boolean (true/false)")
    if kind is int:
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            try:
                return int(value.strip())
            except ValueError:
                pass
        raise FieldError(path, f"{value!r} is not an integer")
    if kind is float:
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                pass
        raise FieldError(path, f"{value!r} is not a number")
    if kind is str:
        if isinstance(value, str):
            return value
        raise FieldError(path, f"{value!r} is not a string")
    if kind is Path:
        if isinstance(value, str | Path):
            return Path(value)
        raise FieldError(path, f"{value!r} is not a path")
    raise FieldError(path, f"unsupported setting type {kind!r}")


def _split(text: str, path: str) -> list[str]:
    return [part.strip() for part in text.split(",") if part.strip()]


def _split_pairs(text: str, path: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for part in _split(text, path):
        key, sep, value = part.partition("=")
        if not sep or not key.strip():
            raise FieldError(path, f"{part!r} is not key=value")
        out[key.strip()] = value.strip()
    return out


def add_config_arguments(
    parser: argparse.ArgumentParser, cls: type[Any], *, env_prefix: str = DEFAULT_ENV_PREFIX
) -> None:
    """Add ``--config`` and one flag per setting; unset flags stay out of the namespace.

    Flags keep their values as text and :func:`load_config` converts them, so a bad flag gets
    the same message as a bad environment variable.
    """
    parser.add_argument("--config", metavar="PATH", help=f"YAML config file (env {env_prefix}CONFIG)")
    for setting in settings(cls):
        default = "" if setting.required else f", default {_show_default(setting.default)}"
        help_text = f"{setting.help} (env {setting.env_name(env_prefix)}{default})".lstrip()
        common: dict[str, Any] = {"dest": setting.path, "default": argparse.SUPPRESS, "help": help_text}
        if setting.type is bool:
            parser.add_argument(setting.flag, action=argparse.BooleanOptionalAction, **common)
        else:
            parser.add_argument(setting.flag, metavar=_metavar(setting.type), **common)


def build_arg_parser(
    cls: type[Any],
    *,
    prog: str | None = None,
    description: str | None = None,
    env_prefix: str = DEFAULT_ENV_PREFIX,
) -> argparse.ArgumentParser:
    """An ``ArgumentParser`` with ``--config`` and a flag per setting of ``cls``."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    add_config_arguments(parser, cls, env_prefix=env_prefix)
    return parser


def config_from_args(
    cls: type[T],
    argv: Sequence[str] | None,
    env: Mapping[str, str],
    *,
    env_prefix: str = DEFAULT_ENV_PREFIX,
    prog: str | None = None,
) -> T:
    """Parse ``argv`` with :func:`build_arg_parser` and load ``cls`` from file, env and flags."""
    namespace = vars(build_arg_parser(cls, prog=prog, env_prefix=env_prefix).parse_args(argv))
    path = namespace.pop("config", None) or env.get(f"{env_prefix}CONFIG") or None
    return load_config(cls, path, env, namespace, env_prefix=env_prefix)


def _metavar(kind: Any) -> str:
    origin = typing.get_origin(kind)
    if origin is Annotated:
        return "DURATION" if DURATION in typing.get_args(kind)[1:] else _metavar(typing.get_args(kind)[0])
    if origin in (tuple, list):
        return "A,B,..."
    if origin is dict:
        return "K=V,..."
    if origin is Literal:
        return "{" + ",".join(map(str, typing.get_args(kind))) + "}"
    name = getattr(kind, "__name__", "VALUE")
    return {"int": "N", "float": "X", "str": "TEXT"}.get(name, name.upper())


def _show_default(value: object) -> str:
    if isinstance(value, tuple | list):
        return ",".join(map(str, value)) or "none"
    if isinstance(value, enum.Enum):
        return str(value.value)
    return "none" if value is None else str(value)

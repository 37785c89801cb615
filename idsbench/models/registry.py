"""The model registry: names map to factories.

Three ways in, one table:

* built-in models register with the :func:`register_model` decorator when
  :mod:`idsbench.models` is imported;
* third-party packages declare an entry point in the ``idsbench.models`` group, which is
  loaded the first time the registry is read (a broken plug-in is reported with its package
  name and error and does not stop the others);
* ``--models package.module:Factory`` imports a factory for one run.

A factory is any callable ``factory(random_state=..., **params)`` returning an unfitted object
that follows the contract in :mod:`idsbench.models.base`.
"""

from __future__ import annotations

import importlib
import inspect
import logging
from dataclasses import dataclass, field
from importlib import metadata
from typing import Any, Callable

from idsbench.errors import ConfigError, IdsbenchError, unknown_name

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "idsbench.models"


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model."""

    name: str
    factory: Callable[..., Any]
    description: str = ""
    kind: str = "other"  # "torch" models take the profile's training options
    source: str = "built-in"  # "built-in", a distribution name, or "module:attr"
    defined_at: str = ""
    defaults: dict = field(default_factory=dict)


_REGISTRY: dict[str, ModelSpec] = {}
_PLUGIN_ERRORS: dict[str, str] = {}
_plugins_loaded = False


def _where(obj: Any) -> str:
    try:
        return f"{inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]}"
    except (TypeError, OSError):
        return getattr(obj, "__module__", "?")


def register_model(
    name: str,
    *,
    description: str = "",
    kind: str | None = None,
    source: str = "built-in",
    **defaults: Any,
) -> Callable:
    """Decorator registering ``factory`` under ``name``.

    ``kind`` defaults to ``"torch"`` when the factory is a subclass of
    :class:`idsbench.models.torch_base.TorchClassifier`.  Registering a name twice is an
    error that names both places.
    """

    def decorator(factory: Callable) -> Callable:
        where = _where(factory)
        if name in _REGISTRY:
            raise ConfigError(
                f"model name {name!r} registered twice: first at {_REGISTRY[name].defined_at}, "
                f"again at {where}"
            )
        resolved_kind = kind or _guess_kind(factory)
        desc = description or (inspect.getdoc(factory) or "").strip().split("\n")[0]
        _REGISTRY[name] = ModelSpec(name, factory, desc, resolved_kind, source, where, defaults)
        return factory

    return decorator


def _guess_kind(factory: Callable) -> str:
    from idsbench.models.torch_base import TorchClassifier

    if getattr(factory, "idsbench_kind", None):
        return factory.idsbench_kind
    if inspect.isclass(factory) and issubclass(factory, TorchClassifier):
        return "torch"
    return "other"


def unregister_model(name: str) -> None:
    """Remove ``name`` (tests and interactive sessions use this)."""
    _REGISTRY.pop(name, None)


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        dist = ep.dist.name if ep.dist is not None else ep.value
        before = set(_REGISTRY)
        try:
            obj = ep.load()
            if ep.name not in _REGISTRY and callable(obj):
                # the entry point names a factory rather than a module that registers itself
                register_model(ep.name, source=dist)(obj)
        except Exception as exc:  # noqa: BLE001 - a plug-in may fail in any way; report, go on
            _PLUGIN_ERRORS[f"{ep.name} ({dist})"] = f"{type(exc).__name__}: {exc}"
            log.warning("model plug-in %r from package %r failed to load: %s", ep.name, dist, exc)
            continue
        for new in set(_REGISTRY) - before:
            spec = _REGISTRY[new]
            if spec.source == "built-in":
                _REGISTRY[new] = ModelSpec(**{**spec.__dict__, "source": dist})


def plugin_errors() -> dict[str, str]:
    """Plug-ins that failed to load: ``{"name (package)": "error"}``."""
    _ensure_loaded()
    return dict(_PLUGIN_ERRORS)


def _ensure_loaded() -> None:
    import idsbench.models  # noqa: F401 - registers the built-in models

    _load_plugins()


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` is a shell-style filter like ``"*lstm*"``."""
    import fnmatch

    _ensure_loaded()
    names = sorted(_REGISTRY)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def get_model_spec(name: str) -> ModelSpec:
    """The spec for ``name``: a registered name or ``package.module:Factory``."""
    _ensure_loaded()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        return _import_spec(name)
    raise unknown_name("model", name, _REGISTRY)


def _import_spec(target: str) -> ModelSpec:
    module_name, _, attr = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"--models {target}: cannot import module {module_name!r}: {exc}") from exc
    try:
        obj = getattr(module, attr)
    except AttributeError as exc:
        raise ConfigError(f"--models {target}: module {module_name!r} has no attribute {attr!r}") from exc
    if not callable(obj):
        raise ConfigError(f"--models {target}: {attr!r} is not callable (expected a model factory)")
    desc = (inspect.getdoc(obj) or "").strip().split("\n")[0]
    return ModelSpec(target, obj, desc, _guess_kind(obj), target, _where(obj))


def create_model(name: str, random_state: int = 0, **params: Any) -> Any:
    """Build an unfitted model by name, checking ``params`` against the factory's signature."""
    spec = get_model_spec(name)
    params = {**spec.defaults, **params}
    check_params(spec, params)
    try:
        return spec.factory(random_state=random_state, **params)
    except IdsbenchError:
        raise
    except TypeError as exc:
        raise ConfigError(f"model {name!r}: bad parameters {params}: {exc}") from exc


def accepted_params(spec: ModelSpec) -> set[str] | None:
    """Parameter names the factory takes, or None when it takes ``**kwargs``."""
    target = spec.factory.__init__ if inspect.isclass(spec.factory) else spec.factory
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        # TorchClassifier subclasses forward **kwargs to the base: take both signatures
        if inspect.isclass(spec.factory):
            names: set[str] = set()
            for klass in spec.factory.__mro__:
                init = klass.__dict__.get("__init__")
                if init is None:
                    continue
                ps = inspect.signature(init).parameters.values()
                names |= {p.name for p in ps if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
                if not any(p.kind is p.VAR_KEYWORD for p in ps):
                    return names - {"self"}
        return None
    return {n for n in sig.parameters if n != "self"}


def check_params(spec: ModelSpec, params: dict) -> None:
    known = accepted_params(spec)
    if known is None:
        return
    unknown = sorted(set(params) - known)
    if unknown:
        from idsbench.errors import closest

        hints = [f"{u!r} (did you mean {closest(u, known)[0]!r}?)" if closest(u, known) else repr(u)
                 for u in unknown]
        raise ConfigError(
            f"model {spec.name!r} has no parameter {', '.join(hints)}; "
            f"it takes: {', '.join(sorted(known - {'random_state'}))}"
        )

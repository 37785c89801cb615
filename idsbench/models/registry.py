"""The model registry: names map to factories.

Three ways in, one table:

* built-in models, and models defined in a user's own code, register with the
  :func:`register_model` decorator when their module is imported;
* third-party packages declare an entry point in the ``idsbench.models`` group, which is
  loaded the first time the registry is read.  The entry point's name is the model name; its
  value is either a factory (``pkg.module:Factory``) or a module whose import registers its
  models with the decorator (``pkg.module``).  A broken plug-in is reported with its package
  name and error (:func:`plugin_errors`, ``idsbench models list``) and does not stop the others;
* ``--models package.module:Factory`` (or ``path/to/file.py:Factory``) imports a factory for
  one run, without registering anything.

A factory is any callable ``factory(random_state=..., **params)`` returning an unfitted object
that follows the contract in :mod:`idsbench.models.base`.
"""

from __future__ import annotations

import fnmatch
import importlib
import importlib.util
import inspect
import math
import logging
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Callable

from idsbench.errors import ConfigError, IdsbenchError, closest, unknown_name

log = logging.getLogger(__name__)

ENTRY_POINT_GROUP = "idsbench.models"


@dataclass(frozen=True)
class ModelSpec:
    """What the registry knows about one model.

    Attributes
    ----------
    name : str
        The registered name (or the ``module:Factory`` text it was imported from).
    factory : callable
        ``factory(random_state=..., **params)`` returns an unfitted model.
    description : str
        One line for ``idsbench models list``.
    kind : str
        ``"torch"`` models take the training profile's options (epochs, batch size, lr, ...).
    source : str
        ``"built-in"``; ``"<distribution> <version>"`` for an entry-point plug-in;
        ``"module <name>"`` for a model registered from other code; the ``module:Factory``
        text for a one-off import.  Stored in every run record.
    defined_at : str
        ``file:line`` of the factory, for error messages.
    defaults : dict
        Parameters given to ``register_model`` (they precede the job's own parameters).
    variant_of : str or None
        For an ablation or other variant of a registered model: that model's name.  Variants
        are left out of ``--models all`` (ask for them by name).
    """

    name: str
    factory: Callable[..., Any]
    description: str = ""
    kind: str = "other"
    source: str = "built-in"
    defined_at: str = ""
    defaults: dict = field(default_factory=dict)
    variant_of: str | None = None


_REGISTRY: dict[str, ModelSpec] = {}
_IMPORTED: dict[str, ModelSpec] = {}
_PLUGIN_ERRORS: dict[str, str] = {}
_plugins_loaded = False
# while an entry point is being loaded: the source its registrations are credited to
_loading_source: str | None = None


def _origin(obj: Any) -> Any:
    """What an adapter-made factory wraps (see ``describe_factory``), else ``obj`` itself."""
    return getattr(obj, "idsbench_origin", obj)


def _where(obj: Any) -> str:
    obj = _origin(obj)
    try:
        return f"{inspect.getsourcefile(obj)}:{inspect.getsourcelines(obj)[1]}"
    except (TypeError, OSError):
        return getattr(obj, "__module__", None) or repr(obj)


def _infer_source(factory: Callable) -> str:
    if _loading_source is not None:
        return _loading_source
    module = getattr(_origin(factory), "__module__", None) or "?"
    if module == "idsbench" or module.startswith("idsbench."):
        return "built-in"
    return f"module {module}"


def _description(factory: Callable) -> str:
    doc = inspect.getdoc(factory) or inspect.getdoc(_origin(factory)) or ""
    return doc.strip().split("\n")[0]


def register_model(
    name: str,
    *,
    description: str = "",
    kind: str | None = None,
    source: str | None = None,
    variant_of: str | None = None,
    **defaults: Any,
) -> Callable:
    """Decorator registering ``factory`` under ``name``.

    Parameters
    ----------
    name : str
        The model's name on the command line and in records.
    description : str, optional
        One line for ``idsbench models list``; defaults to the first line of the docstring.
    kind : str, optional
        ``"torch"`` makes the job's training options (epochs, batch size, lr, patience, early
        stopping, device) reach the factory.  Guessed: subclasses of ``TorchClassifier`` and
        factories made by ``torch_model`` are ``"torch"``, everything else ``"other"``.
    source : str, optional
        Where the model comes from; guessed from the factory's module (``"built-in"`` inside
        idsbench, the package name for an entry-point plug-in, else ``"module <name>"``).
    variant_of : str, optional
        Marks an ablation or variant of another model; variants are not part of ``--models all``.
    **defaults
        Parameters passed to the factory unless the job sets them (e.g. ablation variants).

    Raises
    ------
    ConfigError
        When ``name`` is already registered; the message names both places.
    """
    if not isinstance(name, str) or not name.strip() or ":" in name or "," in name:
        raise ConfigError(f"register_model({name!r}): a model name must be a non-empty string "
                          "without ':' or ',' (they separate --models entries)")

    def decorator(factory: Callable) -> Callable:
        where = _where(factory)
        if not callable(factory):
            raise ConfigError(f"register_model({name!r}) at {where}: {factory!r} is not callable; "
                              "expected a model class or a factory function")
        if name in _REGISTRY:
            first = _REGISTRY[name]
            raise ConfigError(
                f"model name {name!r} registered twice: first at {first.defined_at} "
                f"({first.source}), again at {where}; rename one of them"
            )
        _REGISTRY[name] = ModelSpec(
            name, factory, description or _description(factory), kind or _guess_kind(factory),
            source or _infer_source(factory), where, defaults, variant_of)
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


# --------------------------------------------------------------------------------------------
# entry-point plug-ins


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        _load_entry_point(ep)


def _load_entry_point(ep: metadata.EntryPoint) -> None:
    """Load one plug-in; any failure is recorded against its package and the others go on."""
    global _loading_source

    dist = ep.dist.name if ep.dist is not None else "unknown package"
    version = ep.dist.version if ep.dist is not None else ""
    label = f"{ep.name} ({dist})"
    before = set(_REGISTRY)
    _loading_source = f"{dist} {version}".strip()
    try:
        obj = ep.load()
        added = set(_REGISTRY) - before
        if inspect.ismodule(obj):
            if ep.name not in _REGISTRY or _REGISTRY[ep.name].source != _loading_source:
                raise ConfigError(
                    f"entry point {ep.name} = {ep.value!r} imports module {obj.__name__!r}, but "
                    f"no model named {ep.name!r} was registered by it (registered: "
                    f"{', '.join(sorted(added)) or 'none'}); name the entry point after the model "
                    "or point it at the factory (module:Factory)")
        elif callable(obj):
            already = any(_REGISTRY[n].factory is obj for n in added)
            if not already:
                register_model(ep.name)(obj)
        else:
            raise ConfigError(f"entry point {ep.name} = {ep.value!r} gives a "
                              f"{type(obj).__name__}, expected a model factory or a module")
    except Exception as exc:  # noqa: BLE001 - a plug-in may fail in any way; report, go on
        # a plug-in that fails half-way contributes nothing
        for new in set(_REGISTRY) - before:
            _REGISTRY.pop(new)
        _PLUGIN_ERRORS[label] = f"{type(exc).__name__}: {exc}"
        log.warning("model plug-in %r from package %r failed to load: %s: %s",
                    ep.name, dist, type(exc).__name__, exc)
    finally:
        _loading_source = None


def plugin_errors() -> dict[str, str]:
    """Plug-ins that failed to load: ``{"entry-point (package)": "ErrorType: message"}``."""
    _ensure_loaded()
    return dict(_PLUGIN_ERRORS)


def _ensure_loaded() -> None:
    import idsbench.models  # noqa: F401 - registers the built-in models

    _load_plugins()


# --------------------------------------------------------------------------------------------
# reading the registry


def list_models(pattern: str | None = None) -> list[str]:
    """Registered model names, sorted; ``pattern`` is a shell-style filter like ``"*lstm*"``."""
    _ensure_loaded()
    names = sorted(_REGISTRY)
    return [n for n in names if pattern is None or fnmatch.fnmatch(n, pattern)]


def get_model_spec(name: str) -> ModelSpec:
    """The spec for ``name``: a registered name, ``package.module:Factory`` or ``file.py:Factory``.

    Raises
    ------
    UnknownNameError
        For an unknown name; the message lists the known names, suggests the closest and
        mentions plug-ins that failed to load.
    ConfigError
        When a ``module:Factory`` cannot be imported.
    """
    _ensure_loaded()
    if name in _REGISTRY:
        return _REGISTRY[name]
    if ":" in name:
        if name not in _IMPORTED:
            _IMPORTED[name] = _import_spec(name)
        return _IMPORTED[name]
    err = unknown_name("model", name, _REGISTRY)
    if _PLUGIN_ERRORS:
        broken = "; ".join(f"{k}: {v}" for k, v in _PLUGIN_ERRORS.items())
        err = type(err)(f"{err}. Note: plug-ins that failed to load: {broken}")
    raise err


def _import_spec(target: str) -> ModelSpec:
    """A spec for ``package.module:Factory`` or ``path/to/file.py:Factory`` (not registered)."""
    module_name, _, attr = target.rpartition(":")
    if not module_name or not attr:
        raise ConfigError(f"--models {target!r}: expected a registered name, "
                          "package.module:Factory or path/to/file.py:Factory")
    module = _import_module(target, module_name)

    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            public = sorted(n for n in dir(module) if not n.startswith("_")
                            and callable(getattr(module, n)))
            hint = closest(part, public)
            raise ConfigError(
                f"--models {target}: module {module_name!r} has no attribute {attr!r}"
                + (f"; did you mean {hint[0]!r}?" if hint else
                   f"; its callables: {', '.join(public) or 'none'}"))
        obj = getattr(obj, part)
    if not callable(obj):
        raise ConfigError(f"--models {target}: {attr!r} is a {type(obj).__name__}, expected a "
                          "model factory (a class or function taking random_state=...)")
    return ModelSpec(target, obj, _description(obj), _guess_kind(obj), target, _where(obj))


def _import_module(target: str, module_name: str):
    # a file path: import it under its stem, like running it would
    if module_name.endswith(".py"):
        path = Path(module_name).expanduser()
        if not path.is_file():
            raise ConfigError(f"--models {target}: file {str(path)!r} not found "
                              f"(relative to {os.getcwd()})")
        spec = importlib.util.spec_from_file_location(path.stem, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[path.stem] = module
        _exec_user_module(target, lambda: spec.loader.exec_module(module))
        return module

    # the `idsbench` console script does not put the current directory on sys.path, but a
    # researcher's `my_model.py` is usually there: look there too, as `python -m` would
    try:
        missing = importlib.util.find_spec(module_name.split(".")[0]) is None
    except (ImportError, ValueError):
        missing = False  # let the import below report it
    if missing and os.getcwd() not in sys.path:
        sys.path.append(os.getcwd())
    try:
        return _exec_user_module(target, lambda: importlib.import_module(module_name))
    except ModuleNotFoundError as exc:
        raise ConfigError(f"--models {target}: cannot import module {module_name!r} ({exc}); "
                          "is it installed, or in the current directory?") from exc


def _exec_user_module(target: str, load: Callable):
    try:
        return load()
    except ModuleNotFoundError:
        raise
    except IdsbenchError:
        raise
    except Exception as exc:  # noqa: BLE001 - any error in user code becomes one clear line
        raise ConfigError(f"--models {target}: importing it raised {type(exc).__name__}: {exc}") \
            from exc


# --------------------------------------------------------------------------------------------
# building models


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
    """Parameter names the factory takes, or None when it takes ``**kwargs``.

    Adapter-made factories (``sklearn_model``, ``torch_model``) say what they take through an
    ``idsbench_params`` callable; classes are read through their ``__init__`` chain.
    """
    hook = getattr(spec.factory, "idsbench_params", None)
    if callable(hook):
        return hook()
    target = spec.factory.__init__ if inspect.isclass(spec.factory) else spec.factory
    try:
        sig = inspect.signature(target)
    except (TypeError, ValueError):
        return None
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        # TorchClassifier subclasses forward **kwargs to the base: take both signatures
        if inspect.isclass(spec.factory):
            from idsbench.models.torch_base import TorchClassifier

            names: set[str] = set()
            for klass in spec.factory.__mro__:
                init = klass.__dict__.get("__init__")
                if init is None:
                    continue
                ps = inspect.signature(init).parameters.values()
                names |= {p.name for p in ps if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
                # the base loop's **module_params are exactly what the subclasses declared
                if klass is TorchClassifier or not any(p.kind is p.VAR_KEYWORD for p in ps):
                    return names - {"self"}
        return None
    return {n for n in sig.parameters if n != "self"}


def param_defaults(spec: ModelSpec) -> dict[str, tuple[Any, Any]]:
    """``{name: (default, annotation)}`` of the factory's keyword parameters (a class: its whole
    ``__init__`` chain); the annotation is ``inspect.Parameter.empty`` when there is none."""
    funcs = [spec.factory] if not inspect.isclass(spec.factory) else [
        k.__dict__["__init__"] for k in reversed(spec.factory.__mro__)
        if k is not object and "__init__" in k.__dict__]
    out: dict[str, tuple[Any, Any]] = {}
    for fn in funcs:
        try:
            params = inspect.signature(fn).parameters.values()
        except (TypeError, ValueError):
            continue
        out.update({p.name: (p.default, p.annotation) for p in params
                    if p.default is not p.empty and p.kind in (p.POSITIONAL_OR_KEYWORD,
                                                               p.KEYWORD_ONLY)})
    return out


def _type_error(value: Any, default: Any, annotation: Any) -> str | None:
    """Why ``value`` cannot stand where ``default`` does (bool and numeric defaults only).

    A number must be an integer only where the parameter is annotated ``int``: an unannotated
    ``C=1`` in a plug-in's factory may well take 0.5.
    """
    if isinstance(default, bool):
        return None if isinstance(value, bool) else "true or false"
    if isinstance(default, (int, float)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return "a finite number"
        if annotation in (int, "int") and not isinstance(value, int):
            return "an integer"
    return None


def check_params(spec: ModelSpec, params: dict) -> None:
    """Raise ConfigError naming each parameter ``spec``'s factory does not take, or whose value
    has the wrong type for its default (a word where true/false, an integer or a number belongs)."""
    known = accepted_params(spec)
    if known is not None:
        unknown = sorted(set(params) - known)
        if unknown:
            hints = [f"{u!r} (did you mean {closest(u, known)[0]!r}?)" if closest(u, known)
                     else repr(u) for u in unknown]
            raise ConfigError(
                f"model {spec.name!r} has no parameter {', '.join(hints)}; "
                f"it takes: {', '.join(sorted(known - {'random_state'}))}"
            )
    defaults = param_defaults(spec)
    for key, value in params.items():
        if key in defaults and value is not None:
            default, annotation = defaults[key]
            expected = _type_error(value, default, annotation)
            if expected:
                raise ConfigError(f"model {spec.name!r}: parameter {key!r} expects {expected} "
                                  f"(default {default!r}), got {value!r}")

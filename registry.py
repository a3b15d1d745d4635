"""The plugin manager and the component registry: discover, list, describe, create.

Every component, built-in or third-party, arrives the same way: a module declared as an entry
point of group ``wav2pix_zoo`` implements one or more hooks of ``zoo.hookspecs`` and calls the
``register(name, factory, *, description, **meta)`` callback it is handed. Each entry point is
loaded on its own, so one broken plugin is reported and skipped instead of stopping discovery.

``WAV2PIX_ZOO_PLUGINS`` narrows discovery to a comma list of distributions (our own built-ins
always load; an empty value means the built-ins only), so tests are hermetic.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import inspect
import os
import re
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any, Callable, Iterable, Optional

import pluggy

from zoo import hookspecs
from zoo.errors import PluginError, UnknownComponentError, UsageError, ZooError, last_line
from zoo.hookspecs import HOOK_OF_KIND, KINDS, PROJECT

ENTRY_POINT_GROUP = PROJECT
ENV_VAR = "WAV2PIX_ZOO_PLUGINS"
OWN_DISTRIBUTION = "wav2pix-zoo"
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Component:
    """One registered component: a factory plus what the plugin said about it."""

    kind: str
    name: str
    factory: Callable[..., Any]
    description: str
    meta: dict
    plugin: str
    distribution: str
    version: str


@dataclass
class PluginInfo:
    """One loaded plugin module (an entry point) and the hooks it implements."""

    name: str
    module: str
    distribution: str
    version: str
    hooks: list = field(default_factory=list)


@dataclass(frozen=True)
class PluginFailure:
    """A plugin, or one of its registrations, that could not be used, and why."""

    plugin: str
    distribution: str
    error: str


def _normalise(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def allowed_distributions() -> Optional[set]:
    """The distributions ``WAV2PIX_ZOO_PLUGINS`` allows, or None when every one is allowed."""
    value = os.environ.get(ENV_VAR)
    if value is None:
        return None
    names = {_normalise(n) for n in value.split(",") if n.strip()}
    return names | {OWN_DISTRIBUTION}


class Registry:
    """A pluggy manager plus the components its plugins registered."""

    def __init__(self) -> None:
        self.manager = pluggy.PluginManager(PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.components: dict[str, dict[str, Component]] = {kind: {} for kind in KINDS}
        self.conflicts: dict[tuple, list[Component]] = {}
        self.plugins: list[PluginInfo] = []
        self.failures: list[PluginFailure] = []

    # -- discovery ---------------------------------------------------------------------------
    def discover(self) -> "Registry":
        """Load every allowed entry point of our group, each on its own, then collect."""
        allowed = allowed_distributions()
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            dist = entry_point.dist
            dist_name = dist.metadata["Name"] if dist is not None else "unknown"
            version = dist.version if dist is not None else "unknown"
            if allowed is not None and _normalise(dist_name) not in allowed:
                continue
            self._load_entry_point(entry_point, dist_name, version)
        return self

    def _load_entry_point(self, entry_point, dist_name: str, version: str) -> None:
        plugin_name = entry_point.name
        if any(p.name == plugin_name and p.distribution == dist_name for p in self.plugins):
            return  # the same distribution seen twice on sys.path: load it once
        try:
            module = entry_point.load()
        except KeyboardInterrupt:
            raise
        except BaseException as exc:  # a broken plugin (even one calling sys.exit) never stops discovery
            self.failures.append(PluginFailure(plugin_name, dist_name, last_line(exc, with_type=True)))
            return
        self.add_plugin(module, name=plugin_name, distribution=dist_name, version=version)

    def add_plugin(self, module: ModuleType, *, name: str, distribution: str, version: str) -> None:
        """Register one plugin module and collect the components its hooks register."""
        if self.manager.is_registered(module):
            owner = self.manager.get_name(module)
            self.failures.append(
                PluginFailure(name, distribution, f"module {module.__name__} already loaded as {owner}")
            )
            return
        try:
            self.manager.register(module, name=f"{distribution}:{name}")
        except Exception as exc:  # pluggy validates hook signatures here
            self.failures.append(PluginFailure(name, distribution, last_line(exc, with_type=True)))
            return
        info = PluginInfo(name, module.__name__, distribution, version)
        self.plugins.append(info)
        for kind in KINDS:
            self._collect(kind, module, info)

    def _collect(self, kind: str, module: ModuleType, info: PluginInfo) -> None:
        hook_name = HOOK_OF_KIND[kind]
        impls = [i for i in getattr(self.manager.hook, hook_name).get_hookimpls() if i.plugin is module]
        for impl in impls:
            info.hooks.append(hook_name)
            staged: list[Component] = []

            def register(name, factory, *, description="", **meta):
                staged.append(self._validated(kind, name, factory, description, meta, info))

            try:
                impl.function(**{arg: register for arg in impl.argnames})
            except KeyboardInterrupt:
                raise
            except BaseException as exc:  # one bad hook spoils only its own registrations
                self.failures.append(PluginFailure(info.name, info.distribution, last_line(exc, with_type=True)))
                continue
            for component in staged:
                self._add(component)

    @staticmethod
    def _validated(kind, name, factory, description, meta, info: PluginInfo) -> Component:
        if not isinstance(name, str) or not NAME_PATTERN.match(name):
            raise PluginError(f"invalid {kind} name {name!r}: use lower_snake_case")
        if not callable(factory):
            raise PluginError(f"{kind} '{name}': factory {factory!r} is not callable")
        if not description:
            raise PluginError(f"{kind} '{name}': a one-line description is required")
        return Component(kind, name, factory, str(description), dict(meta), info.name,
                         info.distribution, info.version)

    def _add(self, component: Component) -> None:
        key = (component.kind, component.name)
        if key in self.conflicts:
            self.conflicts[key].append(component)
            return
        existing = self.components[component.kind].pop(component.name, None)
        if existing is None:
            self.components[component.kind][component.name] = component
            return
        # Never last-wins: both claimants are withheld and named until one is removed.
        self.conflicts[key] = [existing, component]

    # -- queries -------------------------------------------------------------------------------
    def conflict_message(self, kind: str, name: str) -> str:
        """One line naming every plugin that claims ``kind`` ``name``."""
        who = " and ".join(f"{c.plugin} ({c.distribution})" for c in self.conflicts[(kind, name)])
        return f"{kind} '{name}' is registered by both {who}; uninstall one of them"

    def conflict_messages(self) -> list[str]:
        """One line per duplicated name."""
        return [self.conflict_message(kind, name) for kind, name in self.conflicts]

    def get(self, kind: str, name: str) -> Component:
        """The component of that kind and name, or an error listing the valid choices."""
        check_kind(kind)
        if (kind, name) in self.conflicts:
            raise PluginError(self.conflict_message(kind, name))
        try:
            return self.components[kind][name]
        except KeyError:
            choices = sorted(self.components[kind])
            raise UnknownComponentError(
                f"unknown {kind} '{name}'{_closest(name, choices)}; choose from: "
                f"{', '.join(choices) or '(none registered)'}"
            ) from None


def _closest(word: str, choices: Iterable[str]) -> str:
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f" (did you mean '{match[0]}'?)" if match else ""


def check_kind(kind: str) -> str:
    """Return ``kind`` if it is one of ours, else a usage error listing the kinds."""
    if kind not in KINDS:
        raise UsageError(f"unknown kind '{kind}'{_closest(kind, KINDS)}; choose from: {', '.join(KINDS)}")
    return kind


# -- the process-wide registry and its public functions -------------------------------------------
_REGISTRY: Optional[Registry] = None


def get_registry() -> Registry:
    """The process-wide registry, discovered once (safe to call any number of times)."""
    global _REGISTRY
    if _REGISTRY is None:
        _REGISTRY = Registry().discover()
    return _REGISTRY


def reset() -> None:
    """Forget the discovered registry so the next call discovers again (for tests)."""
    global _REGISTRY
    _REGISTRY = None
    importlib.invalidate_caches()


def components(kind: str, pattern: str = "*") -> list[Component]:
    """The components of a kind whose names match the fnmatch ``pattern``, sorted by name."""
    registry = get_registry()
    check_kind(kind)
    found = registry.components[kind]
    return [found[n] for n in sorted(found) if fnmatch.fnmatchcase(n, pattern)]


def get(kind: str, name: str) -> Component:
    """The registered component, or an error listing the valid choices and the closest one."""
    return get_registry().get(kind, name)


def signature_of(factory: Callable) -> Optional[inspect.Signature]:
    """The factory's signature, or None where inspect cannot read one (a C or builtin callable)."""
    try:
        return inspect.signature(factory)
    except (TypeError, ValueError):
        return None


def parameters(factory: Callable) -> list[dict]:
    """The factory's keyword parameters: name, type (as written) and default (None if required).

    Empty for a factory whose signature cannot be read: it then takes what its author documents.
    """
    signature = signature_of(factory)
    if signature is None:
        return []
    params = []
    for p in signature.parameters.values():
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        annotation = p.annotation
        if annotation is p.empty:
            type_name = ""
        elif isinstance(annotation, str):
            type_name = annotation
        else:
            type_name = getattr(annotation, "__name__", str(annotation))
        required = p.default is p.empty
        params.append({"name": p.name, "type": type_name, "required": required,
                       "default": None if required else p.default})
    return params


def describe(kind: str, name: str) -> dict:
    """Everything known about one component, JSON-ready."""
    c = get(kind, name)
    return {
        "kind": c.kind,
        "name": c.name,
        "description": c.description,
        "parameters": [{**p, "default": _jsonable(p["default"])} for p in parameters(c.factory)],
        "meta": {k: _jsonable(v) for k, v in c.meta.items()},
        "plugin": c.plugin,
        "distribution": c.distribution,
        "version": c.version,
    }


def _jsonable(value):
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return repr(value)


def check_arguments(kind: str, name: str, kwargs: dict) -> dict:
    """Drop arguments left at None and refuse those the factory does not take."""
    c = get(kind, name)
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    signature = signature_of(c.factory)
    if signature is None or any(p.kind is p.VAR_KEYWORD for p in signature.parameters.values()):
        return kwargs  # nothing to check against: the factory itself accepts or refuses them
    valid = [p["name"] for p in parameters(c.factory)]
    for key in kwargs:
        if key not in valid:
            raise UnknownComponentError(
                f"{kind} '{name}' takes no argument '{key}'{_closest(key, valid)}; "
                f"valid: {', '.join(valid) or '(none)'}"
            )
    return kwargs


def create(kind: str, name: str, **kwargs) -> Any:
    """Build a component by name. Arguments left at None use the factory's defaults."""
    c = get(kind, name)
    kwargs = check_arguments(kind, name, kwargs)
    try:
        return c.factory(**kwargs)
    except ZooError:
        raise  # already one line (a dataset's DataError, say)
    except ValueError as exc:  # factories reject bad configurations with ValueError
        raise UsageError(f"{kind} '{name}': {last_line(exc)}") from None
    except Exception as exc:  # anything else is the plugin's failure: named, in one line
        raise PluginError(f"{kind} '{name}' from {c.distribution} failed to build: "
                          f"{last_line(exc, with_type=True)}") from None


def distributions() -> list[dict]:
    """The plugin distributions: version, the hooks each implements, and the failures."""
    registry = get_registry()
    by_dist: dict[str, dict] = {}
    for p in registry.plugins:
        entry = by_dist.setdefault(p.distribution, {"distribution": p.distribution,
                                                    "version": p.version, "plugins": [],
                                                    "hooks": [], "errors": []})
        entry["plugins"].append(p.name)
        entry["hooks"] = sorted(set(entry["hooks"]) | set(p.hooks))
    for f in registry.failures:
        entry = by_dist.setdefault(f.distribution, {"distribution": f.distribution,
                                                    "version": _version_of(f.distribution),
                                                    "plugins": [], "hooks": [], "errors": []})
        entry["errors"].append({"plugin": f.plugin, "error": f.error})
    return [by_dist[d] for d in sorted(by_dist, key=lambda d: (d != OWN_DISTRIBUTION, d))]


def _version_of(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


def conflicts() -> list[str]:
    """One line per name claimed by more than one plugin."""
    return get_registry().conflict_messages()


def problems() -> list[str]:
    """Every plugin failure and name conflict, one line each, for warnings."""
    registry = get_registry()
    lines = [f"plugin '{f.plugin}' from {f.distribution} failed: {f.error}" for f in registry.failures]
    return lines + registry.conflict_messages()

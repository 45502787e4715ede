"""A container's environment as the kubelet builds it (research doc §2).

Port of ``(*Kubelet).makeEnvironmentVariables`` (``pkg/kubelet/kubelet_pods.go``) and
``ExpandContainerCommandAndArgs`` (``pkg/kubelet/container/helpers.go``) for static analysis:
what cannot be known from the input (a ConfigMap that was not given, a ``fieldRef``, a
``resourceFieldRef``, a ``fileKeyRef``) is *unknown* (``None``), never guessed.
"""

from __future__ import annotations

import base64
import binascii
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from .expansion import expand, references
from .links import NamespaceLinks, PodLinks, could_be_injected, everything, links_for
from .services import MASTER_NAMESPACE, MASTER_SERVICES, ServiceLinkValue
from .shapes import as_list, as_mapping, as_str
from .workloads import service_links_enabled

__all__ = [
    "EnvError",
    "EnvVar",
    "Environment",
    "OpaqueSource",
    "Source",
    "effective_environment",
    "expanded_args",
    "expanded_command",
    "pod_links",
]

_MAX_COMBINATIONS = 64
"""Beyond this many ways to expand one value, the result is simply unknown."""

MAX_ENV_STRING = 131072
"""Linux's MAX_ARG_STRLEN: an environment string ``NAME=VALUE`` (with its NUL) longer than this
makes ``execve`` fail with E2BIG, so the container never starts."""

EXPANSION_BUDGET = 4 * MAX_ENV_STRING
"""Characters one container's ``$(VAR)`` expansions may produce in all; past it, further
values are unknown and :attr:`Environment.incomplete` says why."""


class Source(StrEnum):
    """What set a variable."""

    SERVICE_LINK = "service-link"
    ENV_FROM = "envFrom"
    ENV = "env"  # a literal env[].value (or no value at all: "")
    VALUE_FROM = "valueFrom"


@dataclass(slots=True)  # not frozen: frozen dataclasses cost 8x to build, and there is one per entry
class EnvVar:
    """One definition of a variable, and through ``overrides`` the ones it replaced (never
    changed once built).

    ``possible`` holds the values this definition may give, ``None`` standing for a value
    that cannot be known; several values mean the kubelet's choice is nondeterministic
    (two Services producing one name). ``maybe_absent``: the definition may not apply at all
    (an optional reference to an object that was not given), and then ``overrides`` is in
    effect, or nothing if it is ``None``.
    """

    name: str
    possible: tuple[str | None, ...]
    source: Source
    origin: str
    display: str
    entry: Mapping[str, Any] | None = None
    links: tuple[ServiceLinkValue, ...] = ()  # for Source.SERVICE_LINK
    overrides: EnvVar | None = None
    maybe_absent: bool = False
    sensitive: bool = False  # from a Secret, a credential-named variable, or expands one
    oversize: bool = False  # the value is over MAX_ENV_STRING: the container cannot start

    @property
    def candidates(self) -> tuple[str | None, ...]:
        """Every value the variable may end up with (``None``: an unknown one)."""
        values = self.possible
        if not self.maybe_absent and len(values) == 1:  # the common case
            return values
        if self.maybe_absent and self.overrides is not None:
            values += self.overrides.candidates
        return tuple(dict.fromkeys(values))

    @property
    def may_be_unset(self) -> bool:
        """The variable may not be set at all."""
        return self.maybe_absent and (self.overrides is None or self.overrides.may_be_unset)

    @property
    def value(self) -> str | None:
        """The value, or ``None`` when it is unknown, may be unset, or is one of several."""
        if not self.maybe_absent and len(self.possible) == 1:  # the common case
            return self.possible[0]
        candidates = self.candidates
        if len(candidates) == 1 and not self.may_be_unset:
            return candidates[0]
        return None

    @property
    def overridden_link(self) -> EnvVar | None:
        """The service-link definition that this explicit one replaces, if any."""
        earlier = itertools.islice(self.history(), 1, None)
        return next((var for var in earlier if var.source is Source.SERVICE_LINK), None)

    def history(self) -> Iterator[EnvVar]:
        """This definition, then each one it overrides, most recent first."""
        var: EnvVar | None = self
        while var is not None:
            yield var
            var = var.overrides


@dataclass(frozen=True)
class OpaqueSource:
    """An ``envFrom`` source whose keys are unknown: it may define any name with ``prefix``."""

    prefix: str
    origin: str
    entry: Mapping[str, Any]
    sensitive: bool
    stamp: int = 0  # its place among the container's definitions (see Environment.get)

    def covers(self, name: str) -> bool:
        return name.startswith(self.prefix)

    def define(self, name: str, overrides: EnvVar | None) -> EnvVar:
        """What this source may do to ``name``: an unknown value, or nothing."""
        return EnvVar(
            name,
            (None,),
            Source.ENV_FROM,
            self.origin,
            f"<{self.origin}>",
            self.entry,
            overrides=overrides,
            maybe_absent=True,
            sensitive=self.sensitive,
        )


@dataclass(frozen=True)
class EnvError:
    """A reason the kubelet would not start the container (``CreateContainerConfigError``)."""

    message: str
    origin: str
    entry: Mapping[str, Any] | None


_NO_LINKS = PodLinks(None, None)


_Deferred = tuple[int, Mapping[str, Any], str]
"""A short literal ``env[]`` value not built until looked up: (index, entry, value)."""


def _never(_: str) -> bool:
    return False


class _Defined(Mapping[str, EnvVar]):
    """:attr:`Environment.defined`: its definitions by name, in definition order."""

    __slots__ = ("_env",)

    def __init__(self, env: Environment) -> None:
        self._env = env

    def __getitem__(self, name: str) -> EnvVar:
        var = self._env._defs[name]
        return var if type(var) is EnvVar else self._env._build(name, var)

    def get(self, name: str, default: Any = None) -> Any:
        return self[name] if name in self._env._defs else default

    def __contains__(self, name: object) -> bool:
        return name in self._env._defs

    def __iter__(self) -> Iterator[str]:
        return iter(self._env._defs)

    def __len__(self) -> int:
        return len(self._env._defs)


@dataclass
class Environment:
    """The environment of one container: explicit definitions first, then service links.

    ``envFrom`` sources whose keys are unknown (:class:`OpaqueSource`) are one layer each,
    applied when a name is looked up: they may replace whatever was defined before them.
    The first definition of a name by a short literal ``env[]`` value (most entries of a big
    workload, and most that no rule looks at) is built only when it is looked up, as it
    would have been built then: what it overrides is fixed by the time it was defined.
    """

    links: PodLinks = _NO_LINKS  # the kubelet's serviceEnv
    opaque: list[OpaqueSource] = field(default_factory=list)
    errors: list[EnvError] = field(default_factory=list)
    incomplete: str | None = None  # why some values were left unknown (a work budget)
    sensitive_name: Callable[[str], bool] = _never  # see effective_environment
    _defs: dict[str, EnvVar | _Deferred] = field(default_factory=dict, repr=False)  # the kubelet's tmpEnv
    _stamps: dict[str, int] = field(default_factory=dict, repr=False)  # name -> when defined
    _clock: int = field(default=0, repr=False)
    _link_vars: dict[str, EnvVar | None] = field(default_factory=dict, repr=False)

    @property
    def defined(self) -> Mapping[str, EnvVar]:
        """The explicit definitions in effect (env and envFrom), by name, in definition order."""
        return _Defined(self)

    def link(self, name: str) -> EnvVar | None:
        """The service-link definition of ``name``, if a Service injects it."""
        if not could_be_injected(name):
            return None
        if name not in self._link_vars:
            self._link_vars[name] = _link_var(name, self.links.values(name))
        return self._link_vars[name]

    def get(self, name: str) -> EnvVar | None:
        """The definition in effect for ``name``, or ``None`` when nothing may set it.

        An :class:`OpaqueSource` that came after the definition (or covers a name defined
        nowhere) may replace it: the result is a ``maybe_absent`` unknown definition.
        """
        var = self._defs.get(name)
        if var is not None and type(var) is not EnvVar:
            var = self._build(name, var)
        if not self.opaque:
            return var if var is not None else self.link(name)
        stamp = self._stamps.get(name, -1) if var is not None else -1
        if var is None:
            var = self.link(name)
        for source in self.opaque:
            if source.stamp > stamp and source.covers(name):
                var = source.define(name, var)
        return var

    def define(self, var: EnvVar) -> None:
        self._defs[var.name] = var
        self._stamps[var.name] = self._tick()

    def defer(self, name: str, index: int, entry: Mapping[str, Any], value: str) -> bool:
        """Define ``name`` as ``env[index]``'s short literal ``value``, built when looked up;
        False (nothing done) when ``name`` is already defined."""
        if name in self._defs:
            return False
        self._defs[name] = (index, entry, value)
        self._stamps[name] = self._tick()
        return True

    def _build(self, name: str, deferred: _Deferred) -> EnvVar:
        index, entry, value = deferred
        stamp = self._stamps[name]
        earlier = self.link(name)  # what the definition overrides: nothing was defined before it
        for source in self.opaque:
            if source.stamp < stamp and source.covers(name):
                earlier = source.define(name, earlier)
        var = self._defs[name] = EnvVar(name, (value,), Source.ENV, f"env[{index}]", value, entry,
                                        overrides=earlier, sensitive=self.sensitive_name(name))
        return var

    def oversize(self) -> list[EnvVar]:
        """The definitions in effect whose value is over MAX_ENV_STRING (deferred ones are short)."""
        return [var for var in self._defs.values() if type(var) is EnvVar and var.oversize]

    def add_opaque(self, prefix: str, origin: str, entry: Mapping[str, Any], sensitive: bool) -> OpaqueSource:
        """An envFrom source with unknown keys, placed after everything defined so far."""
        source = OpaqueSource(prefix, origin, entry, sensitive, self._tick())
        self.opaque.append(source)
        return source

    def _tick(self) -> int:
        self._clock += 1
        return self._clock

    def __iter__(self) -> Iterator[str]:
        """The names known to be (possibly) set; see :attr:`complete`."""
        yield from self._defs
        yield from (name for name in self.links.names() if name not in self._defs)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and self.get(name) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self)

    @property
    def complete(self) -> bool:
        """No ``envFrom`` source with unknown contents: iteration lists every name."""
        return not self.opaque

    def as_dict(self) -> dict[str, str | None]:
        """``name -> value`` (``None``: unknown, ambiguous or maybe unset) of every known name."""
        return {name: self[name].value for name in self}

    def __getitem__(self, name: str) -> EnvVar:
        var = self.get(name)
        if var is None:
            raise KeyError(name)
        return var

    def lookup(self, name: str) -> str | None:
        """The value of ``name`` if it is known for sure (for :func:`expand`)."""
        var = self.get(name)
        return None if var is None else var.value


def _link_var(name: str, values: list[ServiceLinkValue]) -> EnvVar | None:
    if not values:
        return None
    origin = " or ".join(dict.fromkeys(value.described for value in values))
    possible = tuple(dict.fromkeys(value.value for value in values))
    return EnvVar(name, possible, Source.SERVICE_LINK, origin, " | ".join(possible), links=tuple(values))


# --- objects that env and envFrom refer to ---------------------------------------------------






def _configmap_data(configmap: Mapping[str, Any]) -> dict[str, str | None]:
    """``.data`` (``binaryData`` is ignored by the kubelet); a non-string value is unknown."""
    return {
        str(key): value if isinstance(value, str) else None
        for key, value in as_mapping(configmap.get("data")).items()
    }


def _decode(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    try:
        return base64.b64decode(value, validate=True).decode("utf-8", errors="replace")
    except (binascii.Error, ValueError):
        return None


def _secret_data(secret: Mapping[str, Any]) -> dict[str, str | None]:
    """Decoded ``.data``, with ``.stringData`` on top (the API server merges it in)."""
    data = {str(key): _decode(value) for key, value in as_mapping(secret.get("data")).items()}
    for key, value in as_mapping(secret.get("stringData")).items():
        data[str(key)] = value if isinstance(value, str) else None
    return data


@dataclass(frozen=True)
class _Store:
    """The ConfigMaps or the Secrets of the namespace; ``objects=None``: not known at all."""

    kind: str
    objects: Mapping[str, Any] | None
    read: Callable[[Mapping[str, Any]], dict[str, str | None]]
    sensitive: bool = False

    def absent(self, name: str) -> bool:
        return self.objects is not None and name not in self.objects

    def data(self, name: str) -> dict[str, str | None] | None:
        """The object's data, or ``None`` when it is unknown."""
        obj = None if self.objects is None else self.objects.get(name)
        return self.read(obj) if isinstance(obj, Mapping) else None

    def not_found(self, name: str) -> str:
        return f'{self.kind.lower()} "{name}" not found'


# --- the algorithm ---------------------------------------------------------------------------


@dataclass
class _Builder:
    env: Environment
    namespace: str
    configmaps: _Store
    secrets: _Store
    pod_fields: Mapping[str, str] | None
    expansion_budget: int = EXPANSION_BUDGET

    def previous(self, name: str) -> EnvVar | None:
        return self.env.get(name)

    def error(self, message: str, origin: str, entry: Mapping[str, Any]) -> None:
        self.env.errors.append(EnvError(message, origin, entry))

    def env_from(self, index: int, entry: Mapping[str, Any]) -> None:
        """One ``envFrom`` source: its keys overwrite what earlier sources set."""
        sources = (
            (entry.get("configMapRef"), self.configmaps),
            (entry.get("secretRef"), self.secrets),
        )
        ref, store = next(((r, s) for r, s in sources if isinstance(r, Mapping)), (None, None))
        if ref is None or store is None:
            return
        name, prefix = as_str(ref.get("name")), as_str(entry.get("prefix"))
        where = f"envFrom[{index}]: {store.kind} {name}"
        if store.absent(name):
            if ref.get("optional") is not True:
                self.error(store.not_found(name), where, entry)
            return
        data = store.data(name)
        if data is None:
            self.env.add_opaque(prefix, f"{where}, not available", entry, store.sensitive)
            return
        for key, value in data.items():
            variable = prefix + key
            self.env.define(self.resolved(variable, entry, f"{where} key {key}", value, store.sensitive,
                                          source=Source.ENV_FROM, overrides=self.previous(variable)))

    def env_entry(self, index: int, entry: Mapping[str, Any]) -> None:
        """One ``env`` item: set (later items win) unless an optional reference is missing."""
        name = entry.get("name")
        if not isinstance(name, str) or not name:
            return
        value = entry.get("value")
        short = type(value) is str and value and "$" not in value and len(value) < _SHORT  # the common case
        if short and self.env.defer(name, index, entry, value):
            return
        where, value_from = f"env[{index}]", entry.get("valueFrom")
        previous = self.previous(name)
        var: EnvVar | None
        if short:
            var = EnvVar(name, (value,), Source.ENV, where, value, entry, overrides=previous,
                         sensitive=self.env.sensitive_name(name))
        elif value is not None and value != "":
            var = self.literal(name, where, entry, value, previous)
        elif isinstance(value_from, _MAPPINGS):
            var = self.value_from(name, where, entry, value_from, previous)
        else:
            var = EnvVar(name, ("",), Source.ENV, where, "", entry, overrides=previous)
        if var is not None:
            self.env.define(var)

    def literal(self, name: str, where: str, entry: Mapping[str, Any], value: Any,
                previous: EnvVar | None) -> EnvVar:
        """An ``env[].value``, expanded against what is defined so far."""
        if not isinstance(value, str):  # the API server would reject it
            return EnvVar(name, (None,), Source.ENV, where, str(value), entry, overrides=previous)
        sensitive = self.env.sensitive_name(name)
        if "$" not in value:
            return EnvVar(name, (value,), Source.ENV, where, value, entry, overrides=previous,
                          sensitive=sensitive, oversize=_oversize(name, value))
        refs = {ref: self.previous(ref) for ref in dict.fromkeys(references(value))}
        sensitive = sensitive or any(var is not None and var.sensitive for var in refs.values())
        bound = _expanded_bound(value, refs)
        if bound > MAX_ENV_STRING or any(var is not None and var.oversize for var in refs.values()):
            return EnvVar(name, (None,), Source.ENV, where, "<over the size limit once expanded>", entry,
                          overrides=previous, sensitive=sensitive, oversize=True)
        combinations = _product_size([_options(var) for var in refs.values()])
        if combinations * bound > self.expansion_budget:
            self.env.incomplete = (f"$(VAR) references were not expanded past {EXPANSION_BUDGET:,} characters "
                                   f"(from {where} {name} on)")
            return EnvVar(name, (None,), Source.ENV, where, value, entry, overrides=previous, sensitive=sensitive)
        self.expansion_budget -= combinations * bound
        known = {ref: var.value for ref, var in refs.items() if var is not None}
        possible = _expansions(value, refs)
        return EnvVar(name, possible, Source.ENV, where, expand(value, known.get), entry, overrides=previous,
                      sensitive=sensitive, oversize=any(v is not None and _oversize(name, v) for v in possible))

    def value_from(self, name: str, where: str, entry: Mapping[str, Any], value_from: Mapping[str, Any],
                   previous: EnvVar | None) -> EnvVar | None:
        """An ``env[].valueFrom``, never expanded; ``None``: the entry is skipped."""
        if isinstance(ref := value_from.get("fieldRef"), Mapping):
            path = as_str(ref.get("fieldPath"))
            known = None if self.pod_fields is None else self.pod_fields.get(path)
            return self.resolved(name, entry, f"{where}: fieldRef {path}", known, overrides=previous)
        if isinstance(ref := value_from.get("resourceFieldRef"), Mapping):
            resource = as_str(ref.get("resource"))
            return self.resolved(name, entry, f"{where}: resourceFieldRef {resource}", None, overrides=previous)
        if isinstance(ref := value_from.get("configMapKeyRef"), Mapping):
            return self.key_ref(name, where, entry, self.configmaps, ref, previous)
        if isinstance(ref := value_from.get("secretKeyRef"), Mapping):
            return self.key_ref(name, where, entry, self.secrets, ref, previous)
        if isinstance(ref := value_from.get("fileKeyRef"), Mapping):
            file = (
                f"{as_str(ref.get('volumeName'))}/{as_str(ref.get('path'))} key {as_str(ref.get('key'))}"
            )
            return self.resolved(name, entry, f"{where}: fileKeyRef {file}", None, overrides=previous,
                                 maybe_absent=ref.get("optional") is True)
        return EnvVar(name, ("",), Source.VALUE_FROM, where, "", entry, overrides=previous)  # no source it knows

    def key_ref(self, name: str, where: str, entry: Mapping[str, Any], store: _Store, ref: Mapping[str, Any],
                previous: EnvVar | None) -> EnvVar | None:
        """``configMapKeyRef`` / ``secretKeyRef``."""
        obj_name, key = as_str(ref.get("name")), as_str(ref.get("key"))
        optional = ref.get("optional") is True
        origin = f"{where}: {store.kind} {obj_name} key {key}"
        data = store.data(obj_name)
        if store.absent(obj_name) or (data is not None and key not in data):
            if not optional:
                message = (
                    store.not_found(obj_name)
                    if store.absent(obj_name)
                    else f"couldn't find key {key} in {store.kind} {self.namespace}/{obj_name}"
                )
                self.error(message, origin, entry)
            return None
        return self.resolved(name, entry, origin, None if data is None else data[key], store.sensitive,
                             overrides=previous, maybe_absent=optional and data is None)

    def resolved(self, name: str, entry: Mapping[str, Any], origin: str, value: str | None,
                 sensitive: bool = False, *, source: Source = Source.VALUE_FROM, overrides: EnvVar | None = None,
                 maybe_absent: bool = False) -> EnvVar:
        """A variable taken from elsewhere: ``value``, or unknown when it is ``None``."""
        display = f"<{origin.split(': ', 1)[-1]}>" if value is None else value
        return EnvVar(name, (value,), source, origin, display, entry, overrides=overrides,
                      maybe_absent=maybe_absent, sensitive=sensitive or self.env.sensitive_name(name),
                      oversize=value is not None and _oversize(name, value))


def _oversize(name: str, value: str) -> bool:
    """``NAME=VALUE`` and its NUL exceed MAX_ENV_STRING bytes."""
    size = len(name) + len(value) + 2
    if size > MAX_ENV_STRING or 4 * size <= MAX_ENV_STRING:
        return size > MAX_ENV_STRING
    return len(name.encode("utf-8", "surrogatepass")) + len(value.encode("utf-8", "surrogatepass")) + 2 > MAX_ENV_STRING


_UNSET = object()
_MAPPINGS = (dict, Mapping)  # parsed YAML/JSON is dicts: isinstance tries dict first, and fast
_SHORT = MAX_ENV_STRING // 4 - 256  # shorter values (names are at most 256 bytes) cannot be oversize


def _options(var: EnvVar | None) -> tuple[Any, ...]:
    """The values a reference may take (``_UNSET``: written back verbatim)."""
    if var is None:
        return (_UNSET,)
    return var.candidates + ((_UNSET,) if var.may_be_unset else ())


def _expanded_bound(text: str, refs: Mapping[str, EnvVar | None]) -> int:
    """At least as long as any expansion of ``text`` (each ``$(NAME)`` replaced by its longest
    candidate), computed without expanding."""
    size = len(text)
    for ref, var in refs.items():
        longest = max((len(v) for v in _options(var) if isinstance(v, str)), default=0)
        size += text.count(f"$({ref})") * max(0, longest - len(ref) - 3)
    return size


def _expansions(text: str, refs: Mapping[str, EnvVar | None]) -> tuple[str | None, ...]:
    """Every value ``text`` may expand to, given the possible values of what it refers to."""
    options = [_options(var) for var in refs.values()]
    if _product_size(options) > _MAX_COMBINATIONS:
        return (None,)
    results: list[str | None] = []
    for combination in itertools.product(*options):
        chosen = {
            ref: value for ref, value in zip(refs, combination, strict=True) if value is not _UNSET
        }
        results.append(None if None in chosen.values() else expand(text, chosen.get))
    return tuple(dict.fromkeys(results))


def _product_size(options: list[tuple[Any, ...]]) -> int:
    size = 1
    for option in options:
        size *= len(option)
    return size


def pod_links(services: Iterable[Mapping[str, Any]], namespace: str, enabled: bool,
              assumed_cluster_ip: str | None = None) -> PodLinks:
    """The :class:`PodLinks` of a pod in ``namespace`` from a list of Services (any namespace;
    one without ``metadata.namespace`` is in the pod's), indexing every name."""
    tables: dict[str, NamespaceLinks] = {}
    for service in services:
        if not isinstance(service, Mapping):
            continue
        meta = as_mapping(service.get("metadata"))
        service_namespace = as_str(meta.get("namespace")) or namespace
        master = service_namespace == MASTER_NAMESPACE and as_str(meta.get("name")) in MASTER_SERVICES
        if service_namespace == namespace or master:
            table = tables.setdefault(service_namespace, NamespaceLinks(service_namespace, everything,
                                                                        assumed_cluster_ip))
            table.put(service)
    return links_for(namespace, enabled, tables.get)


def effective_environment(
    container: Mapping[str, Any],
    spec: Mapping[str, Any],
    namespace: str,
    services: Iterable[Mapping[str, Any]] | PodLinks,
    configmaps: Mapping[str, Mapping[str, Any]] | None,
    secrets: Mapping[str, Mapping[str, Any]] | None,
    pod_fields: Mapping[str, str] | None = None,
    assumed_cluster_ip: str | None = None,
    sensitive_name: Callable[[str], bool] = lambda name: False,
) -> Environment:
    """The environment the kubelet gives ``container`` of pod spec ``spec`` in ``namespace``.

    ``services``: every Service known (any namespace; see :func:`pod_links`), or the pod's
    :class:`PodLinks` (callers analysing many pods keep one table per namespace).
    ``configmaps`` / ``secrets``: the namespace's objects by name; ``None`` when they are
    not known at all, so references to them are unknown rather than missing. Secret ``data``
    is base64 and is decoded. ``pod_fields``: ``fieldRef`` paths with known values, e.g.
    ``{"metadata.name": "p1"}``. ``sensitive_name``: variables whose values must never be shown
    (credentials); Secret values and expansions of sensitive values are sensitive too. A
    non-empty :attr:`Environment.errors` means the container would not start; the rest is
    computed as if the failing references were absent.
    """
    container, spec = as_mapping(container), as_mapping(spec)
    links = services if isinstance(services, PodLinks) else pod_links(
        services, namespace, service_links_enabled(spec), assumed_cluster_ip)
    builder = _Builder(
        Environment(links=links, sensitive_name=sensitive_name),
        namespace,
        _Store("ConfigMap", configmaps, _configmap_data),
        _Store("Secret", secrets, _secret_data, sensitive=True),
        pod_fields,
    )
    for index, entry in enumerate(as_list(container.get("envFrom"))):
        if isinstance(entry, _MAPPINGS):
            builder.env_from(index, entry)
    for index, entry in enumerate(as_list(container.get("env"))):
        if isinstance(entry, _MAPPINGS):
            builder.env_entry(index, entry)
    return builder.env


def _expand_all(values: Any, env: Environment) -> list[str]:
    return [expand(value, env.lookup) for value in as_list(values) if isinstance(value, str)]


def expanded_command(container: Mapping[str, Any], env: Environment) -> list[str]:
    """``command`` expanded with the final environment; references not known stay verbatim."""
    return _expand_all(as_mapping(container).get("command"), env)


def expanded_args(container: Mapping[str, Any], env: Environment) -> list[str]:
    """``args`` expanded with the final environment (service links included, E15)."""
    return _expand_all(as_mapping(container).get("args"), env)

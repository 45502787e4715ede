"""Getting `vllm/envs.py` out of vLLM releases on PyPI, without keeping (or even downloading) wheels.

A vLLM wheel is 250-350 MB; its Python modules are 2-5 MB of it (compressed). Wheels are zip
files and PyPI serves byte ranges, so we read the zip's central directory, then the members we
need in a few coalesced ranges (about ten HTTP requests): the modules the importer reads
(`SOURCE_MEMBERS`), the wheel's METADATA (the torch pin) and every `vllm/**.py`, which
`usage.py` scans for what happens to each variable after its getter (`WHEEL_FACTS`). Only the
extracted files and the derived facts are cached, under `~/.cache/vllm-env-guard/envs/<version>/`.
When the index does not serve ranges we fall back to `pip download vllm==X --no-deps` into a
temporary directory that is deleted at once.
"""

from __future__ import annotations

import functools
import json
import os
import re
import subprocess
import sys
import tempfile
import urllib.parse
import urllib.request
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

ENVS_MEMBER = "vllm/envs.py"
# Modules that envs.py consults at run time: attention-backend enums (the choices of
# VLLM_ATTENTION_BACKEND) and, from 0.31, the unknown-variable check.
SOURCE_MEMBERS = (
    ENVS_MEMBER,
    "vllm/platforms/interface.py",
    "vllm/attention/backends/registry.py",
    "vllm/v1/attention/backends/registry.py",
    "vllm/logger.py",  # where VLLM_LOGGING_LEVEL goes (the conformance tests run it)
)
# Packages cached whole: the logging config's formatters, which the conformance tests run.
CACHED_PACKAGES = ("vllm/logging/", "vllm/logging_utils/")
WHEEL_FACTS = "wheel.json"  # derived from the whole wheel (see usage.wheel_facts)
METADATA = "METADATA"  # the wheel's dist-info METADATA, cached last
DEFAULT_INDEX = os.environ.get("VEG_PYPI_URL", "https://pypi.org")
_TIMEOUT = 60


class FetchError(Exception):
    """A release or its envs.py could not be obtained."""


def cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "vllm-env-guard"


@functools.cache
def _releases(index: str, package: str = "vllm") -> dict[str, list[dict]]:
    return _pypi_json(f"{index}/pypi/{package}/json", index)["releases"]


def package_versions(package: str, index: str = DEFAULT_INDEX) -> list[str]:
    """Final releases of `package` on the index that have a wheel, oldest first."""
    from webhook.registry.versions import Version

    releases = _releases(index, package)
    found = [v for v, files in releases.items() if is_final_release(v)
             and any(f["packagetype"] == "bdist_wheel" and not f.get("yanked") for f in files)]
    return sorted(found, key=Version.parse)


def _package_wheel(package: str, version: str, index: str) -> tuple[str, int]:
    """URL and size of one wheel of a release of `package` (x86_64 preferred)."""
    wheels = [f for f in _releases(index, package).get(version, []) if f["packagetype"] == "bdist_wheel"]
    if not wheels:
        raise FetchError(f"{package} {version} has no wheel on {index}")
    wheels.sort(key=lambda f: ("x86_64" not in f["filename"], f["filename"]))
    return urllib.parse.urljoin(f"{index}/pypi/{package}/json", wheels[0]["url"]), int(wheels[0]["size"])


def package_metadata(package: str, version: str, index: str = DEFAULT_INDEX) -> str:
    """The METADATA of one release of `package`, read from a wheel by byte ranges."""
    members = _read_members_by_ranges(*_package_wheel(package, version, index),
                                      lambda name: name.endswith(".dist-info/METADATA"))
    return next(iter(members.values()), None) or ""


def fetch_plugin_envs(package: str, version: str, index: str = DEFAULT_INDEX) -> str | None:
    """`<module>/envs.py` of a vLLM platform plugin release (`vllm-ascend` -> vllm_ascend/envs.py),
    None when it has none; cached under ~/.cache/vllm-env-guard/plugins/<package>/<version>/."""
    member = f"{package.replace('-', '_')}/envs.py"
    root = cache_dir() / "plugins" / package / version
    cached = _read_cached(root, "envs.py")
    if cached is not _MISSING:
        return cached  # type: ignore[return-value]
    source = _read_members_by_ranges(*_package_wheel(package, version, index),
                                     lambda name: name == member).get(member)
    _write_cached(root, "envs.py", source)
    return source


def release_files(version: str, index: str = DEFAULT_INDEX) -> list[dict]:
    """The files PyPI lists for one vLLM release."""
    try:
        return _releases(index)[version]
    except KeyError:
        raise FetchError(f"vllm {version} is not on {index}") from None


def list_releases(index: str = DEFAULT_INDEX) -> list[str]:
    """Every vLLM version on PyPI that has a wheel and is not yanked."""
    releases = _releases(index)
    return [
        version
        for version, files in releases.items()
        if any(f["packagetype"] == "bdist_wheel" and not f.get("yanked") for f in files)
    ]


def fetch_sources(version: str, index: str = DEFAULT_INDEX) -> dict[str, str | None]:
    """The source files the importer reads from release `version` (None: not in that release).

    Cached per file under ~/.cache/vllm-env-guard/envs/<version>/ with the wheel's METADATA and
    logging packages (a few small range reads); a file absent from the release is remembered as
    absent. Wheels are read by byte ranges and never stored.
    """
    root = cache_dir() / "envs" / version
    if _read_cached(root, METADATA) is _MISSING:  # written last: the small members are all there
        _fetch_release(version, index, whole=False)
    return {member: _read_cached(root, member) for member in SOURCE_MEMBERS}  # type: ignore[misc]


def fetch_metadata(version: str, index: str = DEFAULT_INDEX) -> str:
    """The METADATA of release `version`'s wheel (its Requires-Dist: the torch pin), cached."""
    fetch_sources(version, index)
    return str(_read_cached(cache_dir() / "envs" / version, METADATA) or "")


def fetch_wheel_facts(version: str, index: str = DEFAULT_INDEX) -> dict:
    """What the whole wheel of `version` says beyond envs.py (see usage.wheel_facts), cached.
    Reads every module of the wheel once (2-5 MB, about ten range requests)."""
    path = cache_dir() / "envs" / version / WHEEL_FACTS
    if not path.is_file():
        _fetch_release(version, index, whole=True)
    return json.loads(path.read_text(encoding="utf-8"))


def _fetch_release(version: str, index: str, whole: bool) -> None:
    from webhook.registry.usage import wheel_facts

    wheel = _pick_wheel(release_files(version, index), version)
    url = urllib.parse.urljoin(f"{index}/pypi/vllm/json", wheel["url"])
    wanted = _wanted(version, whole)
    try:
        fetched = _read_members_by_ranges(url, int(wheel["size"]), wanted)
    except _RangesUnsupported:
        fetched = _read_members_by_pip(version, index, wanted)
    if fetched.get(ENVS_MEMBER) is None:
        raise FetchError(f"vllm {version}: the wheel has no {ENVS_MEMBER}")
    metadata = fetched.get(_metadata_member(version)) or ""
    root = cache_dir() / "envs" / version
    for member in SOURCE_MEMBERS:
        _write_cached(root, member, fetched.get(member))
    for member, source in fetched.items():
        if member.startswith(CACHED_PACKAGES):
            _write_cached(root, member, source)
    if whole:
        _write_cached(root, WHEEL_FACTS, json.dumps(wheel_facts(fetched, metadata), indent=1, sort_keys=True))
    _write_cached(root, METADATA, metadata)


def _metadata_member(version: str) -> str:
    return f"vllm-{version}.dist-info/METADATA"


def _wanted(version: str, whole: bool) -> Callable[[str], bool]:
    """The members to read: the small ones (SOURCE_MEMBERS, METADATA, CACHED_PACKAGES), or with
    `whole` every module of the wheel too."""
    metadata = _metadata_member(version)
    if whole:
        return lambda name: name == metadata or (name.startswith("vllm/") and name.endswith(".py"))
    return lambda name: name == metadata or name in SOURCE_MEMBERS or name.startswith(CACHED_PACKAGES)


_MISSING = object()


def _cache_file(root: Path, member: str) -> Path:
    return root / member.removeprefix("vllm/")


def _read_cached(root: Path, member: str) -> str | None | object:
    path = _cache_file(root, member)
    if path.is_file():
        return path.read_text(encoding="utf-8")
    if path.with_name(path.name + ".absent").is_file():
        return None
    return _MISSING


def _write_cached(root: Path, member: str, source: str | None) -> None:
    path = _cache_file(root, member)
    path.parent.mkdir(parents=True, exist_ok=True)
    if source is None:
        path.with_name(path.name + ".absent").touch()
        return
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(source, encoding="utf-8")
    tmp.replace(path)


def _pypi_json(url: str, index: str) -> dict:
    try:
        with urllib.request.urlopen(url, timeout=_TIMEOUT) as response:
            return json.load(response)
    except (OSError, ValueError) as exc:
        raise FetchError(f"cannot read {url} from {index}: {exc}") from exc


def _pick_wheel(files: list[dict], version: str) -> dict:
    wheels = [f for f in files if f["packagetype"] == "bdist_wheel"]
    if not wheels:
        raise FetchError(f"vllm {version} has no wheel on PyPI")
    # Every platform wheel carries the same pure-Python envs.py; prefer x86_64 for stability.
    wheels.sort(key=lambda f: ("x86_64" not in f["filename"], f["filename"]))
    return wheels[0]


class _RangesUnsupported(Exception):
    pass


class _HttpRangeFile:
    """A read-only, seekable view of a remote file, read with HTTP Range requests in blocks."""

    _BLOCK = 1 << 16

    def __init__(self, url: str, size: int) -> None:
        self.url, self.size, self.pos = url, size, 0
        self._buf_start, self._buf = 0, b""
        self._spans: list[tuple[int, bytes]] = []

    def prefetch(self, spans: Sequence[Sequence[int]]) -> None:
        """Fetch these [start, end) ranges now, one request each; reads inside them are local."""
        for start, end in spans:
            self._fill(start, end - start)
            self._spans.append((self._buf_start, self._buf))

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self.pos

    def seek(self, offset: int, whence: int = 0) -> int:
        base = {0: 0, 1: self.pos, 2: self.size}[whence]
        self.pos = base + offset
        return self.pos

    def read(self, n: int | None = -1) -> bytes:
        if n is None or n < 0:
            n = self.size - self.pos
        n = min(n, self.size - self.pos)
        if n <= 0:
            return b""
        end_of_buf = self._buf_start + len(self._buf)
        if not (self._buf_start <= self.pos and self.pos + n <= end_of_buf):
            span = next(((s, b) for s, b in self._spans
                         if s <= self.pos and self.pos + n <= s + len(b)), None)
            if span is None:
                self._fill(self.pos, max(n, self._BLOCK))
            else:
                self._buf_start, self._buf = span
        offset = self.pos - self._buf_start
        data = self._buf[offset : offset + n]
        self.pos += len(data)
        return data

    def _fill(self, start: int, length: int) -> None:
        end = min(self.size, start + length) - 1
        request = urllib.request.Request(self.url, headers={"Range": f"bytes={start}-{end}"})
        with urllib.request.urlopen(request, timeout=_TIMEOUT) as response:
            if response.status != 206:
                raise _RangesUnsupported(self.url)
            self._buf_start, self._buf = start, response.read()


def _read_members(archive: zipfile.ZipFile, wanted: Callable[[str], bool]) -> dict[str, str | None]:
    return {info.filename: archive.read(info).decode("utf-8", errors="replace")
            for info in archive.infolist() if wanted(info.filename)}


# Members closer than this are fetched in one range request (the gap is read and dropped).
_COALESCE = 1 << 18


def _read_members_by_ranges(url: str, size: int, wanted: Callable[[str], bool]) -> dict[str, str | None]:
    try:
        remote = _HttpRangeFile(url, size)
        with zipfile.ZipFile(remote) as wheel:  # type: ignore[arg-type]
            infos = sorted(wheel.infolist(), key=lambda i: i.header_offset)
            ends = {a.filename: b.header_offset for a, b in zip(infos, infos[1:])}
            spans: list[list[int]] = []
            for info in infos:
                if not wanted(info.filename):
                    continue
                start, end = info.header_offset, ends.get(info.filename, wheel.start_dir)
                if spans and start - spans[-1][1] <= _COALESCE:
                    spans[-1][1] = end
                else:
                    spans.append([start, end])
            remote.prefetch(spans)
            return _read_members(wheel, wanted)
    except (OSError, zipfile.BadZipFile) as exc:
        raise FetchError(f"cannot read {url}: {exc}") from exc


def _read_members_by_pip(version: str, index: str, wanted: Callable[[str], bool]) -> dict[str, str | None]:
    with tempfile.TemporaryDirectory(prefix="veg-wheel-") as tmp:
        command = [sys.executable, "-m", "pip", "download", f"vllm=={version}", "--no-deps",
                   "--only-binary", ":all:", "--dest", tmp, "--quiet"]
        if index != "https://pypi.org":
            command += ["--index-url", f"{index}/simple"]
        done = subprocess.run(command, capture_output=True, text=True)
        if done.returncode != 0:
            raise FetchError(f"pip download vllm=={version} failed: {done.stderr.strip()[-500:]}")
        wheel = next(Path(tmp).glob("vllm-*.whl"), None)
        if wheel is None:
            raise FetchError(f"pip download vllm=={version} produced no wheel")
        with zipfile.ZipFile(wheel) as archive:
            return _read_members(archive, wanted)


_VERSION_RE = re.compile(r"^\d+\.\d+\.\d+(\.\d+)?(\.post\d+)?$")


def is_final_release(version: str) -> bool:
    """True for plain releases (0.9.2, 0.6.1.post2, 0.9.0.1); False for rc/dev/alpha builds."""
    return bool(_VERSION_RE.match(version))

"""PolicyBundle: a versioned, self-describing directory (or .tar.gz) holding a fitted policy.

Layout of `<root>/<name>/v<version>/`:

    bundle.json   schema_version, name, version, spec, fitted parameters, training
                  window, evaluation scores, package versions, created_at, and the
                  sha256 of every extra file
    <files...>    optional extra files (model weights), checked against bundle.json

Writes are atomic (a temporary sibling directory renamed into place) and never
overwrite: an existing target is an error. Nothing here reads a clock: the caller
passes `created_at`. After Stable-Baselines3's `save_util`: a saved model carries
its parameters, version and system information.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tarfile
import tempfile
from datetime import datetime
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializeAsAny,
    ValidationError,
    field_validator,
    model_validator,
)

from policies.spec import PolicySpecBase, format_validation_error
from sim.errors import PolicyError

BUNDLE_SCHEMA_VERSION = 1
MANIFEST = "bundle.json"
#: Packages whose versions a bundle records by default.
RECORDED_PACKAGES = ("scaleplan", "numpy", "scipy", "pandas", "statsmodels", "pydantic", "simpy")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_VERSION_DIR = re.compile(r"^v(\d+)$")


class TrainingWindow(BaseModel):
    """The data a bundle was fitted on: its source and the [start_s, end_s) span.

    Times are seconds on the source's clock; `epoch_s` (UTC seconds of t = 0) pins
    them to the calendar when known.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: str
    start_s: float
    end_s: float
    epoch_s: float | None = None

    @model_validator(mode="after")
    def _ordered(self) -> TrainingWindow:
        if self.end_s <= self.start_s:
            raise ValueError(f"end_s {self.end_s} must be after start_s {self.start_s}")
        return self


def _check_file_name(name: str) -> str:
    path = PurePosixPath(name)
    if not name or path.is_absolute() or ".." in path.parts or path.name == MANIFEST:
        raise PolicyError(
            f"file name {name!r} must be a relative path inside the bundle, without '..', "
            f"and not named {MANIFEST!r}"
        )
    return name


class PolicyBundle(BaseModel):
    """A fitted policy with everything needed to reproduce and audit it.

    A bad name, a naive `created_at` or an unsafe file name is a `PolicyError`
    (the caller can fix it); other invalid fields are pydantic validation errors.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: int = BUNDLE_SCHEMA_VERSION
    name: str
    version: int = Field(ge=1)
    spec: SerializeAsAny[PolicySpecBase]
    fitted_params: dict[str, Any] = Field(default_factory=dict)
    training_window: TrainingWindow | None = None
    scores: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    created_at: datetime
    #: Extra files (name -> content); stored beside bundle.json, not inside it.
    files: dict[str, bytes] = Field(default_factory=dict, exclude=True)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise PolicyError(
                f"bundle name {value!r} must start with a letter or digit and use only "
                "letters, digits, '.', '_' and '-'"
            )
        return value

    @field_validator("spec", mode="before")
    @classmethod
    def _spec(cls, value: Any) -> Any:
        if isinstance(value, dict):
            from policies.kinds import spec_from_dict

            return spec_from_dict(value, source="bundle spec")
        return value

    @field_validator("created_at")
    @classmethod
    def _aware(cls, value: datetime) -> datetime:
        if value.tzinfo is None:
            raise PolicyError("created_at must carry a time zone, e.g. datetime.now(UTC)")
        return value

    @field_validator("files")
    @classmethod
    def _files(cls, value: dict[str, bytes]) -> dict[str, bytes]:
        for name in value:
            _check_file_name(name)
        return value

    def manifest(self) -> dict[str, Any]:
        """The bundle.json document."""
        data = self.model_dump(mode="json")
        data["files"] = {
            name: {"sha256": hashlib.sha256(content).hexdigest(), "bytes": len(content)}
            for name, content in sorted(self.files.items())
        }
        return data


def collect_versions(packages: tuple[str, ...] = RECORDED_PACKAGES) -> dict[str, str]:
    """Installed versions of `packages` ("not installed" for an absent one)."""
    found: dict[str, str] = {}
    for package in packages:
        try:
            found[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            found[package] = "not installed"
    return found


def next_version(root: Path, name: str) -> int:
    """One more than the highest `v<N>` already under `root/name` (1 when none)."""
    folder = Path(root) / name
    if not folder.is_dir():
        return 1
    numbers = [int(m.group(1)) for p in folder.iterdir() if (m := _VERSION_DIR.match(p.name))]
    return max(numbers, default=0) + 1


def _mkdirs(path: Path) -> list[Path]:
    """mkdir -p, returning the directories it created (outermost first)."""
    missing: list[Path] = []
    current = path
    while not current.exists():
        missing.append(current)
        current = current.parent
    for folder in reversed(missing):
        folder.mkdir()
    return list(reversed(missing))


def write_bundle(bundle: PolicyBundle, root: Path) -> Path:
    """Write `bundle` to `root/<name>/v<version>` atomically; return that directory.

    Everything is written into a temporary sibling directory, which is renamed
    into place only when complete. On any failure the temporary directory, and
    any directory this call created, are removed.

    Raises:
        PolicyError: The target already exists (bundles are never overwritten).
    """
    target = Path(root) / bundle.name / f"v{bundle.version}"
    if target.exists():
        raise PolicyError(
            f"bundle {target} already exists and bundles are never overwritten; "
            f"write version {next_version(Path(root), bundle.name)} instead"
        )
    created = _mkdirs(target.parent)
    temp: Path | None = None
    try:
        temp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
        temp.chmod(0o777 & ~_umask())  # mkdtemp makes it 0700 whatever the umask
        for name, content in bundle.files.items():
            path = temp / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(content)
        with (temp / MANIFEST).open("w") as handle:
            json.dump(bundle.manifest(), handle, indent=2, sort_keys=True)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        if target.exists():
            raise PolicyError(f"bundle {target} appeared during the write; not overwriting it")
        os.rename(temp, target)
    except BaseException:
        if temp is not None:
            shutil.rmtree(temp, ignore_errors=True)
        for folder in reversed(created):
            if folder.exists() and not any(folder.iterdir()):
                folder.rmdir()
        raise
    return target


def _umask() -> int:
    # os.umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def pack_bundle(bundle_dir: Path, dest: Path) -> Path:
    """Archive a bundle directory as `dest` (.tar.gz), atomically, never overwriting."""
    source = Path(bundle_dir)
    read_bundle(source)  # only valid bundles are archived
    dest = Path(dest)
    if dest.exists():
        raise PolicyError(f"{dest} already exists; archives are never overwritten")
    fd, temp_name = tempfile.mkstemp(prefix=f".{dest.name}.tmp-", dir=dest.parent)
    try:
        with os.fdopen(fd, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as archive:
            archive.add(source, arcname=source.name)
        os.chmod(temp_name, 0o666 & ~_umask())  # mkstemp makes it 0600 whatever the umask
        os.rename(temp_name, dest)
    except BaseException:
        Path(temp_name).unlink(missing_ok=True)
        raise
    return dest


def _read_directory(path: Path) -> dict[str, bytes]:
    return {
        file.relative_to(path).as_posix(): file.read_bytes()
        for file in sorted(path.rglob("*"))
        if file.is_file()
    }


def _read_archive(path: Path) -> dict[str, bytes]:
    """Regular files of a .tar.gz, relative to the directory holding bundle.json."""
    try:
        with tarfile.open(path, mode="r:gz") as archive:
            contents: dict[str, bytes] = {}
            for info in archive.getmembers():
                handle = archive.extractfile(info) if info.isfile() else None
                if handle is not None:
                    contents[info.name] = handle.read()
    except (tarfile.TarError, OSError) as exc:
        raise PolicyError(f"{path}: not a readable .tar.gz bundle archive ({exc})") from None
    manifests = [name for name in contents if PurePosixPath(name).name == MANIFEST]
    if len(manifests) != 1:
        raise PolicyError(
            f"{path}: expected exactly one {MANIFEST} in the archive, found {len(manifests)}"
        )
    prefix = PurePosixPath(manifests[0]).parent
    files: dict[str, bytes] = {}
    for name, content in contents.items():
        member = PurePosixPath(name)
        if member.is_absolute() or ".." in member.parts or not member.is_relative_to(prefix):
            raise PolicyError(f"{path}: archive member {name!r} is outside the bundle directory")
        files[member.relative_to(prefix).as_posix()] = content
    return files


def read_bundle(path: Path) -> PolicyBundle:
    """Read and validate a bundle directory or `.tar.gz` archive.

    Raises:
        PolicyError: Missing or malformed bundle.json, an unsupported
            schema_version, an invalid spec, or an extra file that is missing or
            does not match its recorded sha256.
    """
    path = Path(path)
    if path.is_dir():
        contents = _read_directory(path)
    elif path.is_file() and path.name.endswith((".tar.gz", ".tgz")):
        contents = _read_archive(path)
    else:
        raise PolicyError(
            f"bundle {path} does not exist or is not a directory / .tar.gz archive; "
            "pass the v<N> directory written by `planner tune` or `planner train`"
        )
    raw = contents.pop(MANIFEST, None)
    if raw is None:
        raise PolicyError(f"{path}: no {MANIFEST}; this is not a policy bundle")
    try:
        data = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise PolicyError(f"{path}/{MANIFEST}: not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise PolicyError(f"{path}/{MANIFEST}: expected a JSON object")
    version = data.get("schema_version")
    if version != BUNDLE_SCHEMA_VERSION:
        raise PolicyError(
            f"{path}: bundle schema_version {version!r} is not supported; this scaleplan "
            f"reads bundle schema_version {BUNDLE_SCHEMA_VERSION} (re-create the bundle "
            "with this release or use the release that wrote it)"
        )
    digests = data.pop("files", {})
    if not isinstance(digests, dict):
        raise PolicyError(f"{path}/{MANIFEST}: 'files' must map names to sha256 records")
    files: dict[str, bytes] = {}
    for name, record in digests.items():
        content = contents.get(name)
        if content is None:
            raise PolicyError(f"{path}: file {name!r} listed in {MANIFEST} is missing")
        expected = record.get("sha256") if isinstance(record, dict) else None
        if hashlib.sha256(content).hexdigest() != expected:
            raise PolicyError(f"{path}: file {name!r} does not match its sha256 in {MANIFEST}")
        files[name] = content
    from policies.kinds import spec_from_dict

    data["spec"] = spec_from_dict(data.get("spec"), source=f"{path}/{MANIFEST}: spec")
    try:
        return PolicyBundle.model_validate({**data, "files": files})
    except ValidationError as exc:
        raise PolicyError(format_validation_error(exc, f"{path}/{MANIFEST}")) from None
    except PolicyError as exc:
        raise PolicyError(f"{path}/{MANIFEST}: {exc}") from None

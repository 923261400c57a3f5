"""One registry of SAM models by name: which configuration, which weights, how big, which hash.

Two kinds of entries share the name space:

- the **bundled** model (``default_cnn``): a small SAM trained by this project, its weights a
  file inside the package (``samwidgets/weights/``), so it loads with no network;
- **checkpoints to download** (:class:`CheckpointSpec`): the three official ones published with
  the reference implementation (``vit_b``, ``vit_l``, ``vit_h``), those of SAM's descendants
  (:data:`DESCENDANT_CHECKPOINTS`: MobileSAM as ``mobile_sam``; :data:`SAM2_CHECKPOINTS`: SAM 2 and 2.1
  as ``sam2.1_hiera_tiny`` ... ``sam2_hiera_large``), and any a user adds with
  :func:`register_checkpoint`.

Configurations themselves are model data and live in :data:`samwidgets.modeling.CONFIGS`; this
module says where each named model's weights come from. :mod:`.build` builds from it
(``sam_model_registry``), :mod:`.checkpoints` downloads from it (``from_pretrained``).
"""

from __future__ import annotations

import types
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserInputError
from ..modeling import CONFIGS, SamConfig

__all__ = [
    "BUNDLED_MODEL_NAME",
    "BUNDLED_SHA256",
    "BUNDLED_WEIGHTS",
    "CheckpointError",
    "CheckpointSpec",
    "DESCENDANT_CHECKPOINTS",
    "OFFICIAL_CHECKPOINTS",
    "SAM2_CHECKPOINTS",
    "WEIGHTS_DIR",
    "get_checkpoint_spec",
    "known_names",
    "register_checkpoint",
    "registered_checkpoints",
    "unregister_checkpoint",
]


class CheckpointError(UserInputError):
    """A checkpoint that is not a usable state dict for the requested model (a user's mistake; a ValueError)."""


#: The model bundled with the package (weights in ``samwidgets/weights/``, no network).
BUNDLED_MODEL_NAME = "default_cnn"
WEIGHTS_DIR = Path(__file__).resolve().parent.parent / "weights"
BUNDLED_WEIGHTS = WEIGHTS_DIR / f"{BUNDLED_MODEL_NAME}.pt"
#: The bundled weights' sha256, checked when they are loaded (update it with the file).
BUNDLED_SHA256 = "b8893343e4a56295a2b02a5e728034a80ac904ec460a8e15a4fddc6677530e81"


@dataclass(frozen=True)
class CheckpointSpec:
    """Where a checkpoint lives, how big it is, and which model it fits.

    ``size`` (bytes) guards against truncated or substituted downloads; ``None``
    means unknown and unchecked. ``sha256`` is the file's published hash (hex), the one the
    field pins (micro-sam and others), or ``None`` when unknown. ``filename`` is the name in the
    cache directory and defaults to the last component of the URL. ``family`` says which model the file
    fits: SAM's (``Sam``, MobileSAM included) or SAM 2's (``samwidgets.sam2``).
    """

    name: str
    url: str
    size: int | None
    config: SamConfig | str  # a SamConfig, or for family "sam2" the reference's config name
    filename: str = field(default="")
    sha256: str | None = None
    family: str = "sam"  # "sam": a Sam built from ``config``; "sam2": build_sam2(config, file)

    def __post_init__(self) -> None:
        if not self.filename:
            object.__setattr__(self, "filename", _filename_from_url(self.url))
        if self.filename in ("", ".", "..") or Path(self.filename).name != self.filename or "\\" in self.filename:
            raise ValueError(f"checkpoint filename must be a plain file name, got {self.filename!r}")
        if self.size is not None and self.size <= 0:
            raise ValueError(f"checkpoint size must be positive or None, got {self.size}")
        if self.family not in ("sam", "sam2"):
            raise ValueError(f"family must be 'sam' or 'sam2', got {self.family!r}")
        if (self.family == "sam2") != isinstance(self.config, str):
            raise ValueError("a 'sam2' checkpoint names its configuration (a config name of samwidgets.sam2.CONFIGS); "
                             "a 'sam' checkpoint has a SamConfig")
        hex_digits = set("0123456789abcdef")
        if self.sha256 is not None and (len(self.sha256) != 64 or not set(self.sha256) <= hex_digits):
            raise ValueError(f"sha256 must be 64 lowercase hex digits or None, got {self.sha256!r}")


def _filename_from_url(url: str) -> str:
    """The last path component of a URL ("" when there is none)."""
    return urllib.parse.unquote(urllib.parse.urlsplit(url).path.rsplit("/", 1)[-1])


_OFFICIAL_URL = "https://dl.fbaipublicfiles.com/segment_anything/"

#: The checkpoints published with the reference implementation (the suffix of a file name is not its sha256).
OFFICIAL_CHECKPOINTS: Mapping[str, CheckpointSpec] = types.MappingProxyType({
    spec.name: spec
    for spec in (
        CheckpointSpec("vit_b", _OFFICIAL_URL + "sam_vit_b_01ec64.pth", 375_042_383, CONFIGS["vit_b"],
                       sha256="ec2df62732614e57411cdcf32a23ffdf28910380d03139ee0f4fcbe91eb8c912"),
        CheckpointSpec("vit_l", _OFFICIAL_URL + "sam_vit_l_0b3195.pth", 1_249_524_607, CONFIGS["vit_l"],
                       sha256="3adcc4315b642a4d2101128f611684e8734c41232a17c648ed1693702a49a622"),
        CheckpointSpec("vit_h", _OFFICIAL_URL + "sam_vit_h_4b8939.pth", 2_564_550_879, CONFIGS["vit_h"],
                       sha256="a7bf3b02f3ebf1267aba913ff637d9a2d5c33d3173bb679e46d9f338c26f262e"),
    )
})

# MobileSAM's weights live in its git repository (the URL pins the commit). MobileSAM publishes no hash; this
# sha256 is the one pinned for this URL by projects that download it, and by micro-sam for its mirror of the
# same file (micro_sam/util.py, _CHECKSUMS["vit_t"]); the size is the file's, pinned by the same projects.
_MOBILE_SAM_URL = ("https://raw.githubusercontent.com/ChaoningZhang/MobileSAM/"
                   "f706ad9c4eb7f219c00d9050e46328518ffb65d2/weights/mobile_sam.pt")
_MOBILE_SAM_SHA256 = "6dbb90523a35330fedd7f1d3dfc66f995213d81b29a5ca8108dbcdd4e37d6c2f"

#: The checkpoints of SAM's descendants that load unchanged into this kit's models: MobileSAM by its own
#: name and by the name its package's registry gives its model ("vit_t"), the same file.
DESCENDANT_CHECKPOINTS: Mapping[str, CheckpointSpec] = types.MappingProxyType({
    spec.name: spec
    for spec in (
        CheckpointSpec("mobile_sam", _MOBILE_SAM_URL, 40_728_226, CONFIGS["vit_t"], sha256=_MOBILE_SAM_SHA256),
        CheckpointSpec("vit_t", _MOBILE_SAM_URL, 40_728_226, CONFIGS["vit_t"], sha256=_MOBILE_SAM_SHA256),
    )
})

# SAM 2 and SAM 2.1, as Meta's download script fetches them. Meta publishes neither sizes nor hashes; these are the
# files' as pinned by projects that check them on download from these URLs (micro-sam's micro_sam/v2/util.py for
# SAM 2.1 and, in an earlier version, SAM 2; SlicerSegmentWithSAM for SAM 2) and as Hugging Face's copies in
# facebook/sam2.1-hiera-* and facebook/sam2-hiera-* record them (same bytes, same sha256).
_SAM2_URL = "https://dl.fbaipublicfiles.com/segment_anything_2/"
_SAM2_FILES = (
    # name, release folder, config, size, sha256
    ("sam2.1_hiera_tiny", "092824", "configs/sam2.1/sam2.1_hiera_t.yaml", 156_008_466,
     "7402e0d864fa82708a20fbd15bc84245c2f26dff0eb43a4b5b93452deb34be69"),
    ("sam2.1_hiera_small", "092824", "configs/sam2.1/sam2.1_hiera_s.yaml", 184_416_285,
     "6d1aa6f30de5c92224f8172114de081d104bbd23dd9dc5c58996f0cad5dc4d38"),
    ("sam2.1_hiera_base_plus", "092824", "configs/sam2.1/sam2.1_hiera_b+.yaml", 323_606_802,
     "a2345aede8715ab1d5d31b4a509fb160c5a4af1970f199d9054ccfb746c004c5"),
    ("sam2.1_hiera_large", "092824", "configs/sam2.1/sam2.1_hiera_l.yaml", 898_083_611,
     "2647878d5dfa5098f2f8649825738a9345572bae2d4350a2468587ece47dd318"),
    ("sam2_hiera_tiny", "072824", "configs/sam2/sam2_hiera_t.yaml", 155_906_050,
     "65b50056e05bcb13694174f51bb6da89c894b57b75ccdf0ba6352c597c5d1125"),
    ("sam2_hiera_small", "072824", "configs/sam2/sam2_hiera_s.yaml", 184_309_650,
     "95949964d4e548409021d47b22712d5f1abf2564cc0c3c765ba599a24ac7dce3"),
    ("sam2_hiera_base_plus", "072824", "configs/sam2/sam2_hiera_b+.yaml", 323_493_298,
     "d0bb7f236400a49669ffdd1be617959a8b1d1065081789d7bbff88eded3a8071"),
    ("sam2_hiera_large", "072824", "configs/sam2/sam2_hiera_l.yaml", 897_952_466,
     "7442e4e9b732a508f80e141e7c2913437a3610ee0c77381a66658c3a445df87b"),
)

#: SAM 2 and SAM 2.1 (images; their video weights load and are left unused), by their file names.
SAM2_CHECKPOINTS: Mapping[str, CheckpointSpec] = types.MappingProxyType({
    name: CheckpointSpec(name, f"{_SAM2_URL}{folder}/{name}.pt", size, config, sha256=sha, family="sam2")
    for name, folder, config, size, sha in _SAM2_FILES
})

#: Every checkpoint known by name when the package is imported.
_BUILT_IN: Mapping[str, CheckpointSpec] = types.MappingProxyType(
    {**OFFICIAL_CHECKPOINTS, **DESCENDANT_CHECKPOINTS, **SAM2_CHECKPOINTS})

_REGISTRY: dict[str, CheckpointSpec] = dict(_BUILT_IN)


def register_checkpoint(spec: CheckpointSpec, *, overwrite: bool = False) -> CheckpointSpec:
    """Make ``spec`` loadable by name with ``from_pretrained`` and return it.

    Registering the same spec twice is harmless; a different spec under a
    taken name raises ValueError unless ``overwrite`` is true, so that a
    typo cannot silently replace an official checkpoint. The bundled model's name is reserved.
    """
    if spec.name == BUNDLED_MODEL_NAME:
        raise ValueError(f"{BUNDLED_MODEL_NAME!r} is the bundled model; register the checkpoint under another name")
    old = _REGISTRY.get(spec.name)
    if old is not None and old != spec and not overwrite:
        raise ValueError(f"a different checkpoint is already registered as {spec.name!r} ({old.url}); "
                         "pass overwrite=True to replace it")
    _REGISTRY[spec.name] = spec
    return spec


def unregister_checkpoint(name: str) -> None:
    """Forget a registered checkpoint (a built-in one comes back as it was)."""
    _REGISTRY.pop(name, None)
    if name in _BUILT_IN:
        _REGISTRY[name] = _BUILT_IN[name]


def registered_checkpoints() -> dict[str, CheckpointSpec]:
    """A copy of the downloadable part of the registry: name -> spec."""
    return dict(_REGISTRY)


def get_checkpoint_spec(name: str) -> CheckpointSpec:
    """The spec registered as ``name``; CheckpointError listing the known names otherwise."""
    if name not in _REGISTRY:
        raise unknown_name_error(name)
    return _REGISTRY[name]


def known_names() -> str:
    """Every model name that loads by name, for messages: the bundled model and the registered checkpoints."""
    return ", ".join([BUNDLED_MODEL_NAME] + sorted(_REGISTRY))


def unknown_name_error(name: str) -> CheckpointError:
    """The error for a model name nobody registered, listing the known ones and the ways out."""
    return CheckpointError(
        f"unknown checkpoint name {name!r}; known names: {known_names()}. "
        "Pass the path of a checkpoint file instead, or register one with register_checkpoint()."
    )

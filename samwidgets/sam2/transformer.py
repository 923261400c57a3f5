"""SAM 2's two-way transformer: SAM 1's, with the MLP under SAM 2's key names.

The mask decoder's transformer is the same in SAM 1 and SAM 2 (two
:class:`~samwidgets.modeling.transformer.TwoWayAttentionBlock` and a final
token-to-image attention, the same widths, ReLU in the MLP). Only the MLP's
parameter names differ: SAM 1's ``MLPBlock`` has ``mlp.lin1`` / ``mlp.lin2``,
SAM 2 uses its generic ``MLP`` class, ``mlp.layers.0`` / ``mlp.layers.1``.

Rather than renaming keys when a checkpoint is loaded (a map to keep in step
with every save and load), this subclass puts a two-layer
:class:`samwidgets.modeling.common.MLP` in each block: it computes
``layers[1](relu(layers[0](x)))``, exactly ``lin2(relu(lin1(x)))``, and its
``state_dict()`` has SAM 2's names, so official checkpoints load strictly.
"""

from __future__ import annotations

from samwidgets.modeling.common import MLP
from samwidgets.modeling.transformer import TwoWayTransformer


class SAM2TwoWayTransformer(TwoWayTransformer):
    """:class:`TwoWayTransformer` whose blocks' MLPs have the keys ``mlp.layers.0`` and ``mlp.layers.1``."""

    def __init__(self, depth: int, embedding_dim: int, num_heads: int, mlp_dim: int,
                 attention_downsample_rate: int = 2) -> None:
        super().__init__(depth, embedding_dim, num_heads, mlp_dim, attention_downsample_rate)
        for block in self.layers:
            block.mlp = MLP(embedding_dim, mlp_dim, embedding_dim, num_layers=2)  # Linear -> ReLU -> Linear

"""Checkers for the exercises of ``01_architecture.ipynb``: padding and tokens, a click on the embedding grid,
and the decoder's token sequence.

Each checker runs the piece of the model the exercise is about and counts for itself; see
:mod:`samwidgets.teaching.exercises` for the three outcomes of a check.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from ...inference.transforms import ResizeLongestSide
from ...modeling.sam import Sam
from . import not_answered, passed, require

__all__ = ["check_decoder_tokens", "check_grid_cell", "check_padding_tokens"]


def is_pair(answer: object) -> bool:
    """Whether ``answer`` is two numbers (a tuple, a list or an array of two)."""
    return isinstance(answer, Sequence | np.ndarray) and len(answer) == 2


def encoder_input(image: np.ndarray, model: Sam) -> torch.Tensor:
    """The encoder's input for ``image``: resized (longest side to the model's input), normalised, padded.

    Returns 1 x 3 x S x S on the CPU, S = ``model.config.image_size``.
    """
    resized = ResizeLongestSide(model.config.image_size).apply_image(image)  # h x w x 3 uint8
    pixels = torch.as_tensor(resized, device=model.device).permute(2, 0, 1)[None].float()  # 1 x 3 x h x w
    with torch.no_grad():
        return model.preprocess(pixels).cpu()  # 1 x 3 x S x S


def padding_measured(image: np.ndarray, model: Sam) -> tuple[int, int]:
    """(columns of the encoder input that are padding only, tokens whose patch is padding only).

    A padded pixel is exactly 0 after normalising, in all three channels; a real pixel practically never is.
    """
    x = encoder_input(image, model)[0]  # 3 x S x S
    is_padding = (x == 0).all(dim=0)  # S x S
    columns = int(is_padding.all(dim=0).sum())
    p = model.config.patch_size
    g = model.config.image_size // p
    per_token = is_padding.reshape(g, p, g, p).all(dim=3).all(dim=1)  # g x g: every pixel of the patch
    return columns, int(per_token.sum())


def check_padding_tokens(answer: tuple[int, int] | None, image: np.ndarray, model: Sam) -> bool:
    """Check (padded columns, padding-only tokens) for ``image`` fed to ``model``'s encoder.

    The checker resizes, normalises and pads the image as the model does, then counts the columns that are
    padding only and the tokens (patches of ``patch_size`` pixels) that see padding only: those tokens carry
    no information about the image, yet the encoder computes them.
    """
    if answer is None:
        return not_answered("give (columns, tokens): how many columns of the encoder's input are padding, and "
                            "how many of its tokens are computed from padding only")
    require(is_pair(answer), f"the answer {answer!r} is not two numbers", "write answer = (columns, tokens)")
    columns, tokens = (int(v) for v in answer)
    measured_columns, measured_tokens = padding_measured(image, model)
    size, p = model.config.image_size, model.config.patch_size
    h, w = image.shape[:2]
    require(columns == measured_columns,
            f"the encoder's {size} x {size} input does not have {columns} columns of padding",
            f"the {h} x {w} image is first resized so that its longest side is {size} "
            f"(ResizeLongestSide({size}).apply_image), then padded at the bottom and right")
    require(tokens == measured_tokens,
            f"the columns are right, but {tokens} is not the number of tokens that see padding only",
            f"a token is a {p} x {p} patch; a patch with even one column of real pixels is not padding only, "
            f"and the grid has {size // p} rows")
    share = measured_tokens / (size // p) ** 2
    return passed(f"{measured_columns} columns of padding, {measured_tokens} tokens ({share:.0%} of the grid) "
                  "computed from padding only")


def grid_cell_of(click_xy: Sequence[float] | np.ndarray, original_size: tuple[int, int], sam: Sam) -> tuple[int, int]:
    """(row, col) of the embedding-grid cell that holds the click (x, y) given in original-image pixels."""
    size = sam.config.image_size
    cell = size / sam.config.embedding_size  # input pixels per grid cell
    x, y = ResizeLongestSide(size).apply_coords(np.array([click_xy], dtype=float), original_size)[0]
    return int(y // cell), int(x // cell)


def encoding_peak(click_xy: Sequence[float] | np.ndarray, original_size: tuple[int, int], sam: Sam) -> tuple[int, int]:
    """(row, col) of the grid cell whose positional encoding is most similar to the click's: where the
    prompt encoder itself puts the click."""
    size, g = sam.config.image_size, sam.config.embedding_size
    xy = ResizeLongestSide(size).apply_coords(np.array([click_xy], dtype=float), original_size)  # 1 x 2
    pe_layer = sam.prompt_encoder.pe_layer
    with torch.no_grad():
        point = torch.as_tensor(xy, dtype=torch.float, device=sam.device)[None] + 0.5  # 1 x 1 x 2, pixel centre
        point_pe = pe_layer.forward_with_coords(point, (size, size))[0, 0]  # D
        similarity = torch.einsum("c,chw->hw", point_pe, pe_layer((g, g)))  # g x g
    row, col = divmod(int(similarity.argmax().cpu()), g)
    return row, col


def check_grid_cell(answer: tuple[int, int] | None, click: np.ndarray, original_size: tuple[int, int],
                    sam: Sam) -> bool:
    """Check the (row, col) of the cell of ``sam``'s embedding grid that holds ``click``.

    click: (x, y) in the pixels of an image of ``original_size`` (H, W), as given to ``predict``. The model
    first resizes the image (and the click with it) to its input size; a grid cell covers
    ``image_size / embedding_size`` input pixels. The checker also reports where the click's positional
    encoding peaks over the grid, which is how the decoder finds the click.
    """
    if answer is None:
        return not_answered("give (row, col): the cell of the model's embedding grid that holds the click")
    require(is_pair(answer), f"the answer {answer!r} is not two numbers", "write answer = (row, col)")
    xy = np.asarray(click, dtype=float).reshape(-1)[:2]
    row, col = grid_cell_of(xy, original_size, sam)
    g = sam.config.embedding_size
    given = tuple(int(v) for v in answer)
    require(given != (col, row) or row == col, f"({given[0]}, {given[1]}) is not the cell: it puts the column first",
            "a grid cell is (row, col), row first, as tensors index it; a click is (x, y), x first")
    unresized = (int(xy[1] // sam.config.patch_size), int(xy[0] // sam.config.patch_size))
    require(given == (row, col) or given != unresized,
            f"({given[0]}, {given[1]}) divides the click's original pixels by the patch size",
            f"the model sees the image resized to {sam.config.image_size} px: map the click first, with "
            "predictor.transform.apply_coords(click, original_size)")
    require(given == (row, col), f"the click is not in cell ({given[0]}, {given[1]}) of the {g} x {g} grid",
            f"map the click to the model's {sam.config.image_size} px input (predictor.transform.apply_coords), "
            f"then divide by the input pixels per grid cell ({sam.config.image_size / g:g})")
    peak = encoding_peak(xy, original_size, sam)
    return passed(f"the click is in cell ({row}, {col}) of the {g} x {g} grid; its positional encoding peaks at "
                  f"{peak}, which is how the decoder finds it")


def decoder_token_count(model: Sam, points: tuple[torch.Tensor, torch.Tensor] | None,
                        box: torch.Tensor | None) -> int:
    """Length of the token sequence the decoder's transformer gets: output tokens + the prompt's sparse tokens."""
    decoder = model.mask_decoder
    with torch.no_grad():
        sparse, _ = model.prompt_encoder(points=points, boxes=box, masks=None)  # 1 x N x D
    output_tokens = decoder.iou_token.weight.shape[0] + decoder.mask_tokens.weight.shape[0]  # 1 IoU + 4 mask
    return output_tokens + sparse.shape[1]


def sample_prompts(model: Sam) -> dict[str, tuple]:
    """The three prompts of the exercise, in the model's input frame: (points or None, box or None)."""
    s, device = float(model.config.image_size), model.device
    clicks = torch.tensor([[[s / 4, s / 4], [s / 2, s / 2], [3 * s / 4, s / 2]]], device=device)  # 1 x 3 x 2
    labels = torch.tensor([[1, 1, 0]], device=device)  # 1 x 3: two positive, one negative
    box = torch.tensor([[s / 8, s / 8, s / 2, s / 2]], device=device)  # 1 x 4
    return {"three clicks": ((clicks, labels), None), "a box": (None, box),
            "a box and two clicks": ((clicks[:, :2], labels[:, :2]), box)}


def check_decoder_tokens(answer: tuple[int, int, int] | None, model: Sam) -> bool:
    """Check the length of the decoder's token sequence for three prompts: three clicks (two positive, one
    negative) without a box; a box alone; a box and two clicks.

    The checker runs ``model``'s prompt encoder on each prompt and adds the decoder's output tokens: the
    sequence is what every attention layer of the two-way transformer works on.
    """
    if answer is None:
        return not_answered("give (three clicks, a box, a box and two clicks): the number of tokens in the "
                            "decoder's token sequence for each prompt")
    require(isinstance(answer, Sequence | np.ndarray) and len(answer) == 3,
            f"the answer {answer!r} is not three numbers", "write answer = (n1, n2, n3), one count per prompt")
    output_tokens = model.mask_decoder.iou_token.weight.shape[0] + model.mask_decoder.mask_tokens.weight.shape[0]
    hints = {
        "three clicks": "without a box, the prompt encoder appends one more token after the clicks: which one?",
        "a box": "a box is given as two points: its top-left and bottom-right corners",
        "a box and two clicks": "the extra 'not a point' token pads points only when there is no box",
    }
    for given, (name, (points, box)) in zip(answer, sample_prompts(model).items()):
        measured = decoder_token_count(model, points, box)
        prompt_tokens = measured - output_tokens
        if int(given) == prompt_tokens:
            require(False, f"{given} tokens for {name}: that is the prompt's tokens alone",
                    f"the decoder puts {output_tokens} tokens of its own in front of them: 1 IoU token and "
                    f"{output_tokens - 1} mask tokens")
        require(int(given) == measured, f"for {name} the decoder's sequence does not have {given} tokens",
                hints[name])
    counts = [decoder_token_count(model, points, box) for points, box in sample_prompts(model).values()]
    return passed(f"{counts[0]}, {counts[1]} and {counts[2]} tokens: {output_tokens} output tokens, then the "
                  "prompt's (a padding token only when there is no box)")

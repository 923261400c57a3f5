"""Model configurations small enough for fast CPU tests (shared by several test files)."""

from samwidgets import SamConfig

#: 64 px input, 8 x 8 token grid, 4 x 4 windows: a forward/backward pass takes milliseconds.
SMALL = SamConfig(image_size=64, patch_size=8, encoder_embed_dim=32, encoder_depth=2, encoder_num_heads=2,
                  encoder_global_attn_indexes=(1,), window_size=4, prompt_embed_dim=32, decoder_mlp_dim=64,
                  decoder_num_heads=2, iou_head_hidden_dim=32)

#: A CNN SAM small enough for milliseconds per pass: 64 px input, a 4 x 4 embedding grid.
CNN_SMALL = SamConfig(encoder_type="cnn", image_size=64, patch_size=16, cnn_widths=(8, 8, 16, 16, 32),
                      cnn_depths=(1, 1, 1, 1), cnn_attention_depth=1, cnn_attention_heads=2,
                      high_res_features=True, prompt_embed_dim=32, decoder_num_heads=2, decoder_mlp_dim=64,
                      iou_head_hidden_dim=32)

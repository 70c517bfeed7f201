"""The architectures kagglekit registers, one record each, with their cost facts (no keras: listing them is cheap).

Every record is read by the registry (``kagglekit.backbones``), and through it by the time-budget plan
(``kagglekit.plan``: forward GFLOPs, slowness, training memory), ``kagglekit backbones`` and the learner
(preprocessing, default size, layer groups). Nothing else keeps a table of architectures.

Cost facts:

- ``gflops``: forward GFLOPs of one image at ``size`` (2 x the multiply-adds published with each
  architecture: the Keras applications' papers and timm's model tables); the plan scales it by the
  square of the input size.
- ``params``: parameters without the classification top, counted by building the model with
  ``weights=None`` (keras.applications, Keras 3.15) or as KerasHub's preset metadata states them.
- ``slowness``: seconds per FLOP relative to a dense convolution network (depthwise and grouped
  convolutions run far below a device's peak). An ESTIMATE unless ``cpu_slowness`` says it was measured.
- ``cpu_slowness``: MEASURED on CPU (see the comment next to the number); replaces ``slowness`` on CPU.
- ``memory_mb``: training memory per image at ``size`` (activations kept for backward, mixed precision),
  an estimate used to size the batch on an accelerator.
"""
from __future__ import annotations

from typing import Sequence

_KERAS_FILE = "{}_weights_tf_dim_ordering_tf_kernels_notop.h5"

#: keras.applications: (name, Keras function, family, preprocess, size, split, weights file, min size,
#: GFLOPs at size, parameters, slowness, MB per image at size).
KERAS_APPS: list[tuple] = [
    ("vgg16", "VGG16", "vgg", "caffe", 224, "block4_", _KERAS_FILE.format("vgg16"), 32, 31.0, 14714688, 1.0, 110),
    ("vgg19", "VGG19", "vgg", "caffe", 224, "block4_", _KERAS_FILE.format("vgg19"), 32, 39.2, 20024384, 1.0, 120),
    ("resnet50", "ResNet50", "resnet", "caffe", 224, "conv4_", _KERAS_FILE.format("resnet50"), 32, 8.2, 23587712,
     1.0, 90),
    ("resnet101", "ResNet101", "resnet", "caffe", 224, "conv4_", _KERAS_FILE.format("resnet101"), 32, 15.6,
     42658176, 1.0, 130),
    ("resnet152", "ResNet152", "resnet", "caffe", 224, "conv4_", _KERAS_FILE.format("resnet152"), 32, 23.0,
     58370944, 1.0, 180),
    ("resnet50v2", "ResNet50V2", "resnetv2", "tf", 224, "conv4_", _KERAS_FILE.format("resnet50v2"), 32, 8.2,
     23564800, 1.0, 90),
    ("resnet101v2", "ResNet101V2", "resnetv2", "tf", 224, "conv4_", _KERAS_FILE.format("resnet101v2"), 32, 15.6,
     42626560, 1.0, 130),
    ("resnet152v2", "ResNet152V2", "resnetv2", "tf", 224, "conv4_", _KERAS_FILE.format("resnet152v2"), 32, 23.0,
     58331648, 1.0, 180),
    # EfficientNet: normalises inside itself (preprocess none); sizes and MACs from Tan & Le 2019.
    *[(f"efficientnetb{i}", f"EfficientNetB{i}", "efficientnet", "none", size, "block4", f"efficientnetb{i}_notop.h5",
       32, gflops, params, 5.0, mb)
      for i, (size, gflops, params, mb) in enumerate([
          (224, 0.8, 4049571, 80), (240, 1.4, 6575239, 110), (260, 2.0, 7768569, 140), (300, 3.6, 10783535, 220),
          (380, 8.4, 17673823, 400), (456, 19.8, 28513527, 700), (528, 38.0, 40960143, 1000),
          (600, 74.0, 64097687, 1500)])],
    # EfficientNetV2 (Tan & Le 2021): fused MBConv early stages run nearer peak than EfficientNet's.
    *[(f"efficientnetv2{v.lower()}", f"EfficientNetV2{v}", "efficientnetv2", "none", size, "block4",
       f"efficientnetv2-{v.lower()}_notop.h5", 32, gflops, params, 3.0, mb)
      for v, size, gflops, params, mb in [
          ("B0", 224, 1.4, 5919312, 70), ("B1", 240, 2.4, 6931124, 90), ("B2", 260, 3.4, 8769374, 110),
          ("B3", 300, 6.0, 12930622, 160), ("S", 384, 17.6, 20331360, 350), ("M", 480, 48.0, 53150388, 700),
          ("L", 480, 106.0, 117746848, 1100)]],
    # ConvNeXt (Liu et al. 2022): base, large and xlarge weights are ImageNet-21k pretrained, 1k fine-tuned.
    *[(f"convnext_{v}", "ConvNeXt" + ("XLarge" if v == "xlarge" else v.title()), "convnext", "none", 224,
       f"convnext_{v}_stage_2", f"convnext_{v}_notop.h5", 32, gflops, params, 1.3, mb)
      for v, gflops, params, mb in [
          ("tiny", 9.0, 27820128, 110), ("small", 17.4, 49454688, 150), ("base", 30.8, 87566464, 200),
          ("large", 68.8, 196230336, 320), ("xlarge", 121.8, 348147968, 450)]],
    *[(f"densenet{d}", f"DenseNet{d}", "densenet", "torch", 224, "conv4_", _KERAS_FILE.format(f"densenet{d}"), 32,
       gflops, params, 1.5, mb)
      for d, gflops, params, mb in [(121, 5.7, 7037504, 150), (169, 6.8, 12642880, 180), (201, 8.6, 18321984, 220)]],
    ("xception", "Xception", "xception", "tf", 299, "block8_", _KERAS_FILE.format("xception"), 71, 16.8, 20861480,
     2.0, 200),
    ("inceptionv3", "InceptionV3", "inception", "tf", 299, None, _KERAS_FILE.format("inception_v3"), 75, 11.5,
     21802784, 1.2, 130),
    ("inceptionresnetv2", "InceptionResNetV2", "inception_resnet", "tf", 299, "block17_",
     _KERAS_FILE.format("inception_resnet_v2"), 75, 26.4, 54336736, 1.2, 250),
    ("mobilenetv2", "MobileNetV2", "mobilenet", "tf", 224, "block_7_",
     "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", 32, 0.6, 2257984, 4.0, 60),
    # MobileNetV3 normalises inside itself (include_preprocessing).
    ("mobilenetv3small", "MobileNetV3Small", "mobilenetv3", "none", 224, None,
     "weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5", 32, 0.11, 939120, 4.0, 20),
    ("mobilenetv3large", "MobileNetV3Large", "mobilenetv3", "none", 224, None,
     "weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5", 32, 0.43, 2996352, 4.0, 45),
]

#: kagglekit's small ResNets trained from scratch: name -> (widths, blocks, strides).
SMALL_RESNETS: dict[str, tuple[tuple[int, ...], int, tuple[int, ...]]] = {
    "resnet_small": ((32, 64, 128), 1, (1, 2, 2)),
    "resnet_tiny": ((16, 32, 64), 1, (1, 2, 2)),
    # resnet_small's widths at resnet_tiny's cost: the first stage already works at half size
    "resnet_compact": ((32, 64, 128), 1, (2, 2, 2)),
    # resnet_tiny's widths, every stage at half the size before: a quarter of resnet_compact's cost
    "resnet_micro": ((16, 32, 64), 1, (2, 2, 2)),
    "wide_resnet": ((96, 192, 384), 2, (1, 2, 2)),
}
#: Small ResNets on CPU, MEASURED inside `fit` at 64 px, batch 64, 2 cores (Plant Seedlings, 2,000 images):
#: resnet_micro 226 ms a step (its 16-32-64 channels run below the CPU's peak), resnet_compact 430 ms (above it).
SMALL_RESNET_CPU_SLOWNESS = {"resnet_micro": 1.3, "resnet_compact": 0.75}

#: KerasHub presets (Kaggle Models ``keras/<model>/keras/<preset>/<version>``): (preset, family, model, version,
#: size, pooling, fallback preprocess, GFLOPs at size, parameters from the preset's metadata, slowness, MB per image).
#: pooling of a token sequence: ``cls`` (its class token) or ``mean`` (all tokens; feature maps are averaged anyway).
HUB_PRESETS: list[tuple] = [
    ("vit_base_patch16_224_imagenet", "vit", "vit", 4, 224, "cls", "tf", 35.1, 85798656, 1.2, 180),
    ("vit_base_patch16_224_imagenet21k", "vit", "vit", 3, 224, "cls", "tf", 35.1, 85798656, 1.2, 180),
    ("vit_base_patch16_384_imagenet", "vit", "vit", 4, 384, "cls", "tf", 111.0, 86090496, 1.2, 530),
    ("vit_large_patch16_224_imagenet", "vit", "vit", 4, 224, "cls", "tf", 123.2, 303301632, 1.2, 480),
    ("deit_tiny_distilled_patch16_224_imagenet", "deit", "deit", 1, 224, "cls", "torch", 2.5, 5524800, 1.5, 60),
    ("deit_small_distilled_patch16_224_imagenet", "deit", "deit", 1, 224, "cls", "torch", 9.2, 21666432, 1.3, 100),
    ("deit_base_distilled_patch16_224_imagenet", "deit", "deit", 1, 224, "cls", "torch", 35.3, 85800192, 1.2, 180),
    ("swin_tiny_patch4_window7_224", "swin", "swin-transformer", 1, 224, "mean", "torch", 9.0, 27519354, 1.5, 150),
    ("swin_small_patch4_window7_224", "swin", "swin-transformer", 1, 224, "mean", "torch", 17.4, 48837258, 1.5, 220),
    ("swin_base_patch4_window7_224", "swin", "swin-transformer", 1, 224, "mean", "torch", 30.9, 86743224, 1.5, 300),
    ("dinov2_small", "dinov2", "dinov2", 1, 224, "cls", "torch", 11.1, 22582656, 1.3, 110),
    ("dinov2_base", "dinov2", "dinov2", 1, 224, "cls", "torch", 43.9, 87632640, 1.2, 200),
    ("dinov2_with_registers_small", "dinov2", "dinov2", 1, 224, "cls", "torch", 11.2, 22584192, 1.3, 110),
    # SigLIP: the vision encoder alone is used (its pooled output); parameters are the preset's, text tower included.
    ("siglip_base_patch16_224", "siglip", "siglip", 1, 224, "cls", "tf", 35.1, 203156230, 1.2, 180),
    ("siglip2_base_patch16_224", "siglip", "siglip", 1, 224, "cls", "tf", 35.1, 375188230, 1.2, 180),
    ("siglip_so400m_patch14_384", "siglip", "siglip", 1, 384, "cls", "tf", 604.0, 877961291, 1.2, 2000),
    ("efficientnet_b0_ra_imagenet", "efficientnet_timm", "efficientnet", 2, 224, "mean", "torch", 0.8, 5288548, 5.0,
     80),
    ("efficientnet_b3_ra2_imagenet", "efficientnet_timm", "efficientnet", 2, 288, "mean", "torch", 3.6, 12233232,
     5.0, 200),
    ("efficientnet_b5_sw_imagenet", "efficientnet_timm", "efficientnet", 2, 448, "mean", "torch", 19.8, 30389784,
     5.0, 700),
    ("efficientnet2_rw_s_ra2_imagenet", "efficientnet_timm", "efficientnet", 2, 288, "mean", "torch", 9.8, 23941296,
     3.0, 300),
    ("resnet_vd_50_imagenet", "resnet_vd", "resnet_vd", 2, 224, "mean", "torch", 8.7, 25629512, 1.0, 95),
    ("resnet_vd_50_ssld_v2_imagenet", "resnet_vd", "resnet_vd", 2, 224, "mean", "torch", 8.7, 25629512, 1.0, 95),
    ("resnet_vd_101_imagenet", "resnet_vd", "resnet_vd", 2, 224, "mean", "torch", 16.2, 44673864, 1.0, 140),
    ("resnet_50_imagenet", "resnet_hub", "resnetv1", 3, 224, "mean", "torch", 8.2, 23561152, 1.0, 90),
    ("hgnetv2_b4_ssld_stage2_ft_in1k", "hgnetv2", "hgnetv2", 1, 224, "mean", "torch", 5.5, 13599072, 1.5, 90),
    ("hgnetv2_b5_ssld_stage2_ft_in1k", "hgnetv2", "hgnetv2", 1, 224, "mean", "torch", 11.7, 33419680, 1.5, 140),
    ("hgnetv2_b6_ssld_stage2_ft_in1k", "hgnetv2", "hgnetv2", 1, 224, "mean", "torch", 33.8, 69179888, 1.5, 250),
]


#: Families whose position embeddings (or windows) fix the input size: they always run at their default size
#: (kagglekit resizes images to it inside the model), so that is also their smallest size.
FIXED_SIZE_FAMILIES = ("vit", "deit", "swin", "dinov2", "siglip")


def small_resnet_gflops(widths: Sequence[int], blocks: int, strides: Sequence[int], size: float) -> float:
    """Return the forward GFLOPs of one `size` x `size` image through a small ResNet, counted layer by layer."""
    res, macs = float(size), size * size * 9 * 3 * widths[0]
    c_in = widths[0]
    for width, stride in zip(widths, strides):
        res /= stride
        area = res * res
        macs += area * 9 * c_in * width + area * 9 * width * width  # first block's two convolutions
        if stride != 1 or c_in != width:
            macs += area * c_in * width  # its 1x1 projection
        macs += (blocks - 1) * 2 * area * 9 * width * width
        c_in = width
    return 2 * macs / 1e9


def small_resnet_memory_mb(widths: Sequence[int], blocks: int, strides: Sequence[int], size: float) -> float:
    """Return the training activations of one image in MB (float16, ~12 tensors a block kept for backward)."""
    res, elements = float(size), 0.0
    for width, stride in zip(widths, strides):
        res /= stride
        elements += width * res * res * blocks
    return elements * 12 * 2 / 2 ** 20


def small_resnet_params(widths: Sequence[int], blocks: int, strides: Sequence[int]) -> int:
    """Return the parameters of a small ResNet (convolutions and BatchNorm's 4 per channel), counted from its widths."""
    params, c_in = 27 * widths[0], widths[0]
    for width, stride in zip(widths, strides):
        for b in range(blocks):
            cin = c_in if b == 0 else width
            params += 4 * cin + 9 * cin * width + 4 * width + 9 * width * width
            if b == 0 and (stride != 1 or cin != width):
                params += cin * width
        c_in = width
    return params + 4 * c_in

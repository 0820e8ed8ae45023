"""The ImageNet weights keras.applications loads, as a table: cnnreg's built-in weights entries.

For every model of the keras-* bridge (:data:`cnnreg.builtin.architectures.applications.APPLICATIONS`):

* :data:`FILES`: the files ``keras.applications.<Model>(weights="imagenet")`` downloads, with the
  classifier ("top") and without it ("notop"), by input size: the URL, the hash Keras checks and
  the name Keras caches the file under (when it is not the URL's last part).
  ``keras.utils.get_file`` takes a hash of 64 hex digits as sha256 and any other as md5; here it
  is written in pooch's form, ``"sha256:..."`` / ``"md5:..."``.  MobileNet v1 / v2 have weights
  for several input sizes (an entry each), and Keras publishes no hash for them (None).
* :data:`KERAS_TABLE`: top-1 / top-5 accuracy on the ImageNet validation set and the depth, as
  the Keras applications table gives them (https://keras.io/api/applications/).  ConvNeXt is not
  in that table; MobileNetV3's top-1 is from its Keras docstring.
* :data:`SIZES`: exact parameter counts (``count_params()``, 1000 classes) and MACs of one image
  (:func:`cnnreg.analysis.summarize`), computed with Keras 3.15 at each input size.
* :data:`LICENSES`: what Keras' documentation says of each family's weights.

``tests/test_weights_kind.py`` checks every URL and hash against the installed Keras' source, so
the table cannot drift from what Keras downloads.  No keras import here.
"""

from __future__ import annotations

from cnnreg.builtin.architectures.applications import APPLICATIONS, PAPERS
from cnnreg.kinds.weights import WeightsEntry, WeightsFile

_TF = "https://storage.googleapis.com/tensorflow/keras-applications/"
_KA = "https://storage.googleapis.com/keras-applications/"  # EfficientNet B0-B7

#: A file: (URL, hash or None, the name Keras caches it under).
File = tuple[str, "str | None", str]

#: Keras' ImageNet class names (``decode_predictions`` reads them): index → [WordNet id, name].
CLASS_INDEX: File = ("https://storage.googleapis.com/download.tensorflow.org/data/imagenet_class_index.json",
                     "md5:c2c37ea517e94d9795004a39431a14cb", "imagenet_class_index.json")

#: Where the accuracies and depths come from.
KERAS_TABLE_URL = "https://keras.io/api/applications/"


def _f(url: str, hash: str | None, cached: str | None = None) -> File:
    return (url, hash, cached or url.rsplit("/", 1)[1])


#: model → {input size: (top file, notop file)}.
FILES: dict[str, dict[int, tuple[File, File]]] = {
    "convnexttiny": {
        224: (_f(_TF + "convnext/convnext_tiny.h5", "sha256:8ae6e78ce2933352b1ef4008e6dd2f17bc40771563877d156bc6426c7cf503ff"),
              _f(_TF + "convnext/convnext_tiny_notop.h5", "sha256:d547c096cabd03329d7be5562c5e14798aa39ed24b474157cef5e85ab9e49ef1")),
    },
    "convnextsmall": {
        224: (_f(_TF + "convnext/convnext_small.h5", "sha256:ce1277d8f1ee5a0ef0e171469089c18f5233860ceaf9b168049cb9263fd7483c"),
              _f(_TF + "convnext/convnext_small_notop.h5", "sha256:6fc8009faa2f00c1c1dfce59feea9b0745eb260a7dd11bee65c8e20843da6eab")),
    },
    "convnextbase": {
        224: (_f(_TF + "convnext/convnext_base.h5", "sha256:52cbb006d3dadd03f6e095a8ca1aca47aecdd75acb4bc74bce1f5c695d0086e6"),
              _f(_TF + "convnext/convnext_base_notop.h5", "sha256:40a20c5548a5e9202f69735ecc06c990e6b7c9d2de39f0361e27baeb24cb7c45")),
    },
    "convnextlarge": {
        224: (_f(_TF + "convnext/convnext_large.h5", "sha256:070c5ed9ed289581e477741d3b34beffa920db8cf590899d6d2c67fba2a198a6"),
              _f(_TF + "convnext/convnext_large_notop.h5", "sha256:96f02b6f0753d4f543261bc9d09bed650f24dd6bc02ddde3066135b63d23a1cd")),
    },
    "convnextxlarge": {
        224: (_f(_TF + "convnext/convnext_xlarge.h5", "sha256:c1f5ccab661354fc3a79a10fa99af82f0fbf10ec65cb894a3ae0815f17a889ee"),
              _f(_TF + "convnext/convnext_xlarge_notop.h5", "sha256:de3f8a54174130e0cecdc71583354753d557fcf1f4487331558e2a16ba0cfe05")),
    },
    "densenet121": {
        224: (_f(_TF + "densenet/densenet121_weights_tf_dim_ordering_tf_kernels.h5", "md5:9d60b8095a5708f2dcce2bca79d332c7"),
              _f(_TF + "densenet/densenet121_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:30ee3e1110167f948a6b9946edeeb738")),
    },
    "densenet169": {
        224: (_f(_TF + "densenet/densenet169_weights_tf_dim_ordering_tf_kernels.h5", "md5:d699b8f76981ab1b30698df4c175e90b"),
              _f(_TF + "densenet/densenet169_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:b8c4d4c20dd625c148057b9ff1c1176b")),
    },
    "densenet201": {
        224: (_f(_TF + "densenet/densenet201_weights_tf_dim_ordering_tf_kernels.h5", "md5:1ceb130c1ea1b78c3bf6114dbdfd8807"),
              _f(_TF + "densenet/densenet201_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:c13680b51ded0fb44dff2d8f86ac8bb1")),
    },
    "efficientnetb0": {
        224: (_f(_KA + "efficientnetb0.h5", "md5:902e53a9f72be733fc0bcb005b3ebbac"),
              _f(_KA + "efficientnetb0_notop.h5", "md5:50bc09e76180e00e4465e1a485ddc09d")),
    },
    "efficientnetb1": {
        240: (_f(_KA + "efficientnetb1.h5", "md5:1d254153d4ab51201f1646940f018540"),
              _f(_KA + "efficientnetb1_notop.h5", "md5:74c4e6b3e1f6a1eea24c589628592432")),
    },
    "efficientnetb2": {
        260: (_f(_KA + "efficientnetb2.h5", "md5:b15cce36ff4dcbd00b6dd88e7857a6ad"),
              _f(_KA + "efficientnetb2_notop.h5", "md5:111f8e2ac8aa800a7a99e3239f7bfb39")),
    },
    "efficientnetb3": {
        300: (_f(_KA + "efficientnetb3.h5", "md5:ffd1fdc53d0ce67064dc6a9c7960ede0"),
              _f(_KA + "efficientnetb3_notop.h5", "md5:af6d107764bb5b1abb91932881670226")),
    },
    "efficientnetb4": {
        380: (_f(_KA + "efficientnetb4.h5", "md5:18c95ad55216b8f92d7e70b3a046e2fc"),
              _f(_KA + "efficientnetb4_notop.h5", "md5:ebc24e6d6c33eaebbd558eafbeedf1ba")),
    },
    "efficientnetb5": {
        456: (_f(_KA + "efficientnetb5.h5", "md5:ace28f2a6363774853a83a0b21b9421a"),
              _f(_KA + "efficientnetb5_notop.h5", "md5:38879255a25d3c92d5e44e04ae6cec6f")),
    },
    "efficientnetb6": {
        528: (_f(_KA + "efficientnetb6.h5", "md5:165f6e37dce68623721b423839de8be5"),
              _f(_KA + "efficientnetb6_notop.h5", "md5:9ecce42647a20130c1f39a5d4cb75743")),
    },
    "efficientnetb7": {
        600: (_f(_KA + "efficientnetb7.h5", "md5:8c03f828fec3ef71311cd463b6759d99"),
              _f(_KA + "efficientnetb7_notop.h5", "md5:cbcfe4450ddf6f3ad90b1b398090fe4a")),
    },
    "efficientnetv2b0": {
        224: (_f(_TF + "efficientnet_v2/efficientnetv2-b0.h5", "md5:21ecbf6da12460d5c40bb2f29ceb2188"),
              _f(_TF + "efficientnet_v2/efficientnetv2-b0_notop.h5", "md5:893217f2bb855e2983157299931e43ff")),
    },
    "efficientnetv2b1": {
        240: (_f(_TF + "efficientnet_v2/efficientnetv2-b1.h5", "md5:069f0534ff22adf035c89e2d9547a9dc"),
              _f(_TF + "efficientnet_v2/efficientnetv2-b1_notop.h5", "md5:0e80663031ca32d657f9caa404b6ec37")),
    },
    "efficientnetv2b2": {
        260: (_f(_TF + "efficientnet_v2/efficientnetv2-b2.h5", "md5:424e49f28180edbde1e94797771950a7"),
              _f(_TF + "efficientnet_v2/efficientnetv2-b2_notop.h5", "md5:1dfe2e7a5d45b6632553a8961ea609eb")),
    },
    "efficientnetv2b3": {
        300: (_f(_TF + "efficientnet_v2/efficientnetv2-b3.h5", "md5:1f1fc43bd98a6e4fd8fdfd551e02c7a0"),
              _f(_TF + "efficientnet_v2/efficientnetv2-b3_notop.h5", "md5:f6abf7b5849ac99a89b50dd3fd532856")),
    },
    "efficientnetv2s": {
        384: (_f(_TF + "efficientnet_v2/efficientnetv2-s.h5", "md5:e1d88a8495beba45748fedd0cecbe016"),
              _f(_TF + "efficientnet_v2/efficientnetv2-s_notop.h5", "md5:af0682fb74e8c54910f2d4393339c070")),
    },
    "efficientnetv2m": {
        480: (_f(_TF + "efficientnet_v2/efficientnetv2-m.h5", "md5:a3bf6aa3276309f4fc6a34aa114c95cd"),
              _f(_TF + "efficientnet_v2/efficientnetv2-m_notop.h5", "md5:1b8dc055df72dde80d614482840fe342")),
    },
    "efficientnetv2l": {
        480: (_f(_TF + "efficientnet_v2/efficientnetv2-l.h5", "md5:27e6d408b53c7ebc868fefa357689935"),
              _f(_TF + "efficientnet_v2/efficientnetv2-l_notop.h5", "md5:b0b66b5c863aef5b46e8608fe1711615")),
    },
    "inceptionresnetv2": {
        299: (_f(_TF + "inception_resnet_v2/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels.h5", "md5:e693bd0210a403b3192acc6073ad2e96"),
              _f(_TF + "inception_resnet_v2/inception_resnet_v2_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:d19885ff4a710c122648d3b5c3b684e4")),
    },
    "inceptionv3": {
        299: (_f(_TF + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels.h5", "md5:9a0d58056eeedaa3f26cb7ebd46da564"),
              _f(_TF + "inception_v3/inception_v3_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:bcbd6486424b2319ff4ef7d526e38f63")),
    },
    "mobilenet": {
        128: (_f(_TF + "mobilenet/mobilenet_1_0_128_tf.h5", None),
              _f(_TF + "mobilenet/mobilenet_1_0_128_tf_no_top.h5", None)),
        160: (_f(_TF + "mobilenet/mobilenet_1_0_160_tf.h5", None),
              _f(_TF + "mobilenet/mobilenet_1_0_160_tf_no_top.h5", None)),
        192: (_f(_TF + "mobilenet/mobilenet_1_0_192_tf.h5", None),
              _f(_TF + "mobilenet/mobilenet_1_0_192_tf_no_top.h5", None)),
        224: (_f(_TF + "mobilenet/mobilenet_1_0_224_tf.h5", None),
              _f(_TF + "mobilenet/mobilenet_1_0_224_tf_no_top.h5", None)),
    },
    "mobilenetv2": {
        96: (_f(_TF + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96.h5", None),
              _f(_TF + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_96_no_top.h5", None)),
        128: (_f(_TF + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128.h5", None),
              _f(_TF + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_128_no_top.h5", None)),
        160: (_f(_TF + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160.h5", None),
              _f(_TF + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_160_no_top.h5", None)),
        192: (_f(_TF + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_192.h5", None),
              _f(_TF + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_192_no_top.h5", None)),
        224: (_f(_TF + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224.h5", None),
              _f(_TF + "mobilenet_v2/mobilenet_v2_weights_tf_dim_ordering_tf_kernels_1.0_224_no_top.h5", None)),
    },
    "mobilenetv3small": {
        224: (_f(_TF + "mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float.h5", "md5:8768d4c2e7dee89b9d02b2d03d65d862"),
              _f(_TF + "mobilenet_v3/weights_mobilenet_v3_small_224_1.0_float_no_top_v2.h5", "md5:d3e8ec802a04aa4fc771ee12a9a9b836")),
    },
    "mobilenetv3large": {
        224: (_f(_TF + "mobilenet_v3/weights_mobilenet_v3_large_224_1.0_float.h5", "md5:59e551e166be033d707958cf9e29a6a7"),
              _f(_TF + "mobilenet_v3/weights_mobilenet_v3_large_224_1.0_float_no_top_v2.h5", "md5:07fb09a5933dd0c8eaafa16978110389")),
    },
    "nasnetmobile": {
        224: (_f(_TF + "nasnet/NASNet-mobile.h5", "md5:020fb642bf7360b370c678b08e0adf61", "nasnet_mobile.h5"),
              _f(_TF + "nasnet/NASNet-mobile-no-top.h5", "md5:1ed92395b5b598bdda52abe5c0dbfd63", "nasnet_mobile_no_top.h5")),
    },
    "nasnetlarge": {
        331: (_f(_TF + "nasnet/NASNet-large.h5", "md5:11577c9a518f0070763c2b964a382f17", "nasnet_large.h5"),
              _f(_TF + "nasnet/NASNet-large-no-top.h5", "md5:d81d89dc07e6e56530c4e77faddd61b5", "nasnet_large_no_top.h5")),
    },
    "resnet50": {
        224: (_f(_TF + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels.h5", "md5:2cb95161c43110f7111970584f804107"),
              _f(_TF + "resnet/resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:4d473c1dd8becc155b73f8504c6f6626")),
    },
    "resnet101": {
        224: (_f(_TF + "resnet/resnet101_weights_tf_dim_ordering_tf_kernels.h5", "md5:f1aeb4b969a6efcfb50fad2f0c20cfc5"),
              _f(_TF + "resnet/resnet101_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:88cf7a10940856eca736dc7b7e228a21")),
    },
    "resnet152": {
        224: (_f(_TF + "resnet/resnet152_weights_tf_dim_ordering_tf_kernels.h5", "md5:100835be76be38e30d865e96f2aaae62"),
              _f(_TF + "resnet/resnet152_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:ee4c566cf9a93f14d82f913c2dc6dd0c")),
    },
    "resnet50v2": {
        224: (_f(_TF + "resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels.h5", "md5:3ef43a0b657b3be2300d5770ece849e0"),
              _f(_TF + "resnet/resnet50v2_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:fac2f116257151a9d068a22e544a4917")),
    },
    "resnet101v2": {
        224: (_f(_TF + "resnet/resnet101v2_weights_tf_dim_ordering_tf_kernels.h5", "md5:6343647c601c52e1368623803854d971"),
              _f(_TF + "resnet/resnet101v2_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:c0ed64b8031c3730f411d2eb4eea35b5")),
    },
    "resnet152v2": {
        224: (_f(_TF + "resnet/resnet152v2_weights_tf_dim_ordering_tf_kernels.h5", "md5:a49b44d1979771252814e80f8ec446f9"),
              _f(_TF + "resnet/resnet152v2_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:ed17cf2e0169df9d443503ef94b23b33")),
    },
    "vgg16": {
        224: (_f(_TF + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels.h5", "md5:64373286793e3c8b2b4e3219cbf3544b"),
              _f(_TF + "vgg16/vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:6d6bbae143d832006294945121d1f1fc")),
    },
    "vgg19": {
        224: (_f(_TF + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels.h5", "md5:cbe5617147190e668d6c5d5026f83318"),
              _f(_TF + "vgg19/vgg19_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:253f8cb515780f3b799900260a226db6")),
    },
    "xception": {
        299: (_f(_TF + "xception/xception_weights_tf_dim_ordering_tf_kernels.h5", "md5:0a58e3b7378bc2990ea3b43d5981f1f6"),
              _f(_TF + "xception/xception_weights_tf_dim_ordering_tf_kernels_notop.h5", "md5:b0042744bf5b25fce3cb969f33bebb97")),
    },
}

#: model → {input size: (parameters, MACs of one image)}, 1000 classes.
SIZES: dict[str, dict[int, tuple[int, int]]] = {
    "convnexttiny": {224: (28_589_128, 4_455_531_264)},
    "convnextsmall": {224: (50_223_688, 8_683_712_256)},
    "convnextbase": {224: (88_591_464, 15_354_729_472)},
    "convnextlarge": {224: (197_767_336, 34_361_433_600)},
    "convnextxlarge": {224: (350_196_968, 60_921_030_656)},
    "densenet121": {224: (8_062_504, 2_834_161_664)},
    "densenet169": {224: (14_307_880, 3_359_843_328)},
    "densenet201": {224: (20_242_984, 4_291_365_888)},
    "efficientnetb0": {224: (5_330_571, 385_814_752)},
    "efficientnetb1": {240: (7_856_239, 686_802_832)},
    "efficientnetb2": {260: (9_177_569, 993_561_872)},
    "efficientnetb3": {300: (12_320_535, 1_827_141_392)},
    "efficientnetb4": {380: (19_466_823, 4_393_771_024)},
    "efficientnetb5": {456: (30_562_527, 10_266_384_752)},
    "efficientnetb6": {528: (43_265_143, 19_067_593_536)},
    "efficientnetb7": {600: (66_658_687, 37_745_884_192)},
    "efficientnetv2b0": {224: (7_200_312, 718_086_176)},
    "efficientnetv2b1": {240: (8_212_124, 1_196_819_360)},
    "efficientnetv2b2": {260: (10_178_374, 1_697_542_832)},
    "efficientnetv2b3": {300: (14_467_622, 3_011_458_816)},
    "efficientnetv2s": {384: (21_612_360, 8_365_617_152)},
    "efficientnetv2m": {480: (54_431_388, 24_582_460_384)},
    "efficientnetv2l": {480: (119_027_848, 56_079_699_008)},
    "inceptionresnetv2": {299: (55_873_736, 13_155_794_016)},
    "inceptionv3": {299: (23_851_784, 5_713_216_096)},
    "mobilenet": {128: (4_253_864, 186_400_768), 160: (4_253_864, 290_675_200), 192: (4_253_864, 418_121_728), 224: (4_253_864, 568_740_352)},
    "mobilenetv2": {96: (3_538_984, 56_289_152), 128: (3_538_984, 99_074_048), 160: (3_538_984, 154_083_200), 192: (3_538_984, 221_316_608), 224: (3_538_984, 300_774_272)},
    "mobilenetv3small": {224: (2_554_968, 56_510_400)},
    "mobilenetv3large": {224: (5_507_432, 216_589_760)},
    "nasnetmobile": {224: (5_326_716, 563_638_816)},
    "nasnetlarge": {331: (88_949_818, 23_783_414_658)},
    "resnet50": {224: (25_636_712, 3_857_973_248)},
    "resnet101": {224: (44_707_176, 7_570_194_432)},
    "resnet152": {224: (60_419_944, 11_282_415_616)},
    "resnet50v2": {224: (25_613_800, 3_482_255_360)},
    "resnet101v2": {224: (44_675_560, 7_194_476_544)},
    "resnet152v2": {224: (60_380_648, 10_906_697_728)},
    "vgg16": {224: (138_357_544, 15_470_264_320)},
    "vgg19": {224: (143_667_240, 19_632_062_464)},
    "xception": {299: (22_910_480, 8_357_403_496)},
}

#: model → (top-1, top-5, depth) as the Keras applications table gives them; None where it gives
#: none.  MobileNetV3's top-1 is from the table in its Keras docstring.
KERAS_TABLE: dict[str, tuple[float | None, float | None, int | None]] = {
    "xception": (0.790, 0.945, 81),
    "vgg16": (0.713, 0.901, 16),
    "vgg19": (0.713, 0.900, 19),
    "resnet50": (0.749, 0.921, 107),
    "resnet50v2": (0.760, 0.930, 103),
    "resnet101": (0.764, 0.928, 209),
    "resnet101v2": (0.772, 0.938, 205),
    "resnet152": (0.766, 0.931, 311),
    "resnet152v2": (0.780, 0.942, 307),
    "inceptionv3": (0.779, 0.937, 189),
    "inceptionresnetv2": (0.803, 0.953, 449),
    "mobilenet": (0.704, 0.895, 55),
    "mobilenetv2": (0.713, 0.901, 105),
    "densenet121": (0.750, 0.923, 242),
    "densenet169": (0.762, 0.932, 338),
    "densenet201": (0.773, 0.936, 402),
    "nasnetmobile": (0.744, 0.919, 389),
    "nasnetlarge": (0.825, 0.960, 533),
    "efficientnetb0": (0.771, 0.933, 132),
    "efficientnetb1": (0.791, 0.944, 186),
    "efficientnetb2": (0.801, 0.949, 186),
    "efficientnetb3": (0.816, 0.957, 210),
    "efficientnetb4": (0.829, 0.964, 258),
    "efficientnetb5": (0.836, 0.967, 312),
    "efficientnetb6": (0.840, 0.968, 360),
    "efficientnetb7": (0.843, 0.970, 438),
    "efficientnetv2b0": (0.787, 0.943, None),
    "efficientnetv2b1": (0.798, 0.950, None),
    "efficientnetv2b2": (0.805, 0.951, None),
    "efficientnetv2b3": (0.820, 0.958, None),
    "efficientnetv2s": (0.839, 0.967, None),
    "efficientnetv2m": (0.853, 0.974, None),
    "efficientnetv2l": (0.857, 0.975, None),
    "mobilenetv3small": (0.681, None, None),
    "mobilenetv3large": (0.756, None, None),
}

#: family → the licence Keras' documentation gives its ImageNet weights (the Keras 2 applications
#: page; the families it does not cover say so).
_NOT_STATED = f"not stated in the Keras documentation (see {KERAS_TABLE_URL})"
LICENSES: dict[str, str] = {
    "xception": "MIT (Keras docs: trained by the Keras authors)",
    "vgg16": "CC-BY-4.0 (Keras docs: ported from the VGG release, University of Oxford)",
    "vgg19": "CC-BY-4.0 (Keras docs: ported from the VGG release, University of Oxford)",
    "resnet": "MIT (Keras docs: ported from Kaiming He's release)",
    "inception_v3": "Apache-2.0 (Keras docs)",
    "inception_resnet_v2": "Apache-2.0 (Keras docs)",
    "mobilenet": "Apache-2.0 (Keras docs)",
    "mobilenet_v2": "Apache-2.0 (Keras docs)",
    "nasnet": "Apache-2.0 (Keras docs)",
    "densenet": "BSD-3-Clause (Keras docs: ported from liuzhuang13/DenseNet)",
    "resnet_v2": _NOT_STATED,
    "efficientnet": _NOT_STATED,
    "efficientnet_v2": _NOT_STATED,
    "mobilenet_v3": _NOT_STATED,
    "convnext": _NOT_STATED + "; ported from facebookresearch/ConvNeXt",
}

#: ConvNeXt models Keras says were pre-trained on ImageNet-21k, then fine-tuned on ImageNet-1k.
IMAGENET_21K = ("convnextbase", "convnextlarge", "convnextxlarge")


def entry_name(model: str, size: int) -> str:
    """``keras-resnet50.imagenet``; ``keras-mobilenet.imagenet-128`` at a size not the model's default."""
    default = APPLICATIONS[model][2]
    return f"keras-{model}.imagenet" + ("" if size == default else f"-{size}")


def _file(file: File) -> WeightsFile:
    url, hash, cached = file
    return WeightsFile(url=url, hash=hash, filename=cached)


def keras_entries() -> list[tuple[WeightsEntry, str]]:
    """Every built-in entry with its one-line summary, in :data:`FILES` order."""
    entries = []
    class_index = _file(CLASS_INDEX)
    for model, by_size in FILES.items():
        function, family, default, _min = APPLICATIONS[model]
        top1, top5, depth = KERAS_TABLE.get(model, (None, None, None))
        authors, year, title = PAPERS[family]
        for size, (top, notop) in by_size.items():
            parameters, macs = SIZES[model][size]
            metric = {"dataset": "imagenet", "split": "validation"}
            metric.update({k: v for k, v in (("top1", top1), ("top5", top5)) if v is not None})
            measured = size == default and top1 is not None  # Keras reports the default size only
            if measured:
                metric["source"] = KERAS_TABLE_URL if top5 is not None else f"keras.applications.{function} docstring"
            entry = WeightsEntry(
                name=entry_name(model, size),
                architecture=f"keras-{model}",
                num_classes=1000,
                input_shape=(size, size, 3),
                files={"top": _file(top), "notop": _file(notop)},
                class_names_file=class_index,
                preprocess=f"keras.applications.{family}:preprocess_input",
                dataset="imagenet",
                metrics=(metric,) if measured else (),
                parameters=parameters,
                macs=macs,
                depth=depth if size == default else None,
                license=LICENSES[family],
                source=f'{authors} ({year}), "{title}"',
            )
            summary = f"{function} ImageNet weights from keras.applications"
            if size != default:
                summary += f", {size}x{size} input"
            if model in IMAGENET_21K:
                summary += " (pre-trained on ImageNet-21k)"
            if measured:
                summary += f": {100 * top1:.1f}% top-1"
            entries.append((entry, summary))
    return entries

import numpy as np

from kit.adapters.registry import get_adapter
from kit.bench import augmentation_throughput
from kit.train.augment import build_augmentation


def test_augmentation_throughput_reports_both_rates():
    images = np.random.default_rng(0).integers(0, 256, (32, 16, 16, 3), dtype=np.uint8)
    report = augmentation_throughput(
        images, build_augmentation(get_adapter("pcam").train_augment), seconds=0.05, batch_size=16
    )
    assert report["batch_images_per_s"] > 0 and report["per_image_images_per_s"] > 0
    assert report["threads"] == 2 and report["shape"] == [16, 16, 3] and report["speedup"] > 0

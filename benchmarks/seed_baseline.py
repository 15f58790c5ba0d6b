"""The reference code's own training loop for seed32, written plainly as the reference code writes it: the speed baseline.

PyTorch-GAN's implementations/lsgan/lsgan.py, the code this project grew from: torchvision's
MNIST recipe (each sample through `Image.fromarray`, `transforms.Resize(32)`, `ToTensor`,
`Normalize([0.5], [0.5])` in a single-process DataLoader with shuffling), fp32, default
memory layout, the generator's Upsample + Conv3 pairs as they are, and each batch a G
step then a D step on the same generated images with `nn.MSELoss`. Nothing here is
shared with cond_lsgan, so the baseline cannot inherit its speed-ups. `SeedLoop(images).run(n)`
trains n steps; `benchmarks/train_speed.py` times it against cond-lsgan's own step.

    python benchmarks/seed_baseline.py [--idx-dir ../shared/data/mnist] [--steps 20]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from data_tools.mnist import find_idx_files, read_idx_images, read_idx_labels

DEFAULT_IDX_DIR = Path(__file__).resolve().parent.parent.parent / "shared" / "data" / "mnist"
LATENT_DIM, IMG_SIZE, CHANNELS = 100, 32, 1


class Generator(nn.Module):
    def __init__(self):
        super().__init__()
        self.init_size = IMG_SIZE // 4
        self.l1 = nn.Sequential(nn.Linear(LATENT_DIM, 128 * self.init_size**2))
        self.conv_blocks = nn.Sequential(
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 128, 3, stride=1, padding=1),
            nn.BatchNorm2d(128, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Upsample(scale_factor=2),
            nn.Conv2d(128, 64, 3, stride=1, padding=1),
            nn.BatchNorm2d(64, 0.8),
            nn.LeakyReLU(0.2, inplace=True),
            nn.Conv2d(64, CHANNELS, 3, stride=1, padding=1),
            nn.Tanh(),
        )

    def forward(self, z):
        out = self.l1(z)
        out = out.view(out.shape[0], 128, self.init_size, self.init_size)
        return self.conv_blocks(out)


class Discriminator(nn.Module):
    def __init__(self):
        super().__init__()

        def discriminator_block(in_filters, out_filters, bn=True):
            block = [nn.Conv2d(in_filters, out_filters, 3, 2, 1), nn.LeakyReLU(0.2, inplace=True), nn.Dropout2d(0.25)]
            if bn:
                block.append(nn.BatchNorm2d(out_filters, 0.8))
            return block

        self.model = nn.Sequential(
            *discriminator_block(CHANNELS, 16, bn=False),
            *discriminator_block(16, 32),
            *discriminator_block(32, 64),
            *discriminator_block(64, 128),
        )
        ds_size = IMG_SIZE // 2**4
        self.adv_layer = nn.Linear(128 * ds_size**2, 1)

    def forward(self, img):
        out = self.model(img)
        out = out.view(out.shape[0], -1)
        return self.adv_layer(out)


def weights_init_normal(m):
    classname = m.__class__.__name__
    if classname.find("Conv") != -1:
        torch.nn.init.normal_(m.weight.data, 0.0, 0.02)
    elif classname.find("BatchNorm2d") != -1:
        torch.nn.init.normal_(m.weight.data, 1.0, 0.02)
        torch.nn.init.constant_(m.bias.data, 0.0)


class MNISTArrays(Dataset):
    """torchvision.datasets.MNIST's __getitem__ over uint8 arrays: a PIL image per sample, then the transform."""

    def __init__(self, images: np.ndarray, labels: np.ndarray, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        img = Image.fromarray(self.images[index], mode="L")
        return self.transform(img), int(self.labels[index])


class SeedLoop:
    """The reference code's models, optimisers and DataLoader; `run(steps)` trains that many batches."""

    def __init__(self, images: np.ndarray, labels: np.ndarray | None = None, batch_size: int = 64, seed: int = 0):
        torch.manual_seed(seed)
        np.random.seed(seed)
        self.adversarial_loss = torch.nn.MSELoss()
        self.generator = Generator()
        self.discriminator = Discriminator()
        self.generator.apply(weights_init_normal)
        self.discriminator.apply(weights_init_normal)
        transform = transforms.Compose([transforms.Resize(IMG_SIZE), transforms.ToTensor(), transforms.Normalize([0.5], [0.5])])
        labels = np.zeros(len(images), dtype=np.int64) if labels is None else labels
        self.dataloader = DataLoader(MNISTArrays(images, labels, transform), batch_size=batch_size, shuffle=True)
        self.optimizer_G = torch.optim.Adam(self.generator.parameters(), lr=0.0002, betas=(0.5, 0.999))
        self.optimizer_D = torch.optim.Adam(self.discriminator.parameters(), lr=0.0002, betas=(0.5, 0.999))
        self.batches = iter(self.dataloader)
        self.last_losses = (float("nan"), float("nan"))

    def next_batch(self):
        try:
            return next(self.batches)
        except StopIteration:  # a new epoch, reshuffled, as the reference code's `for epoch in range(n_epochs)` does
            self.batches = iter(self.dataloader)
            return next(self.batches)

    def run(self, steps: int) -> None:
        Tensor = torch.FloatTensor
        for _ in range(steps):
            imgs, _ = self.next_batch()
            valid = Tensor(imgs.shape[0], 1).fill_(1.0)
            fake = Tensor(imgs.shape[0], 1).fill_(0.0)
            real_imgs = imgs.type(Tensor)

            # Train Generator
            self.optimizer_G.zero_grad()
            z = Tensor(np.random.normal(0, 1, (imgs.shape[0], LATENT_DIM)))
            gen_imgs = self.generator(z)
            g_loss = self.adversarial_loss(self.discriminator(gen_imgs), valid)
            g_loss.backward()
            self.optimizer_G.step()

            # Train Discriminator
            self.optimizer_D.zero_grad()
            real_loss = self.adversarial_loss(self.discriminator(real_imgs), valid)
            fake_loss = self.adversarial_loss(self.discriminator(gen_imgs.detach()), fake)
            d_loss = 0.5 * (real_loss + fake_loss)
            d_loss.backward()
            self.optimizer_D.step()
        self.last_losses = (d_loss.item(), g_loss.item())


def load_mnist(idx_dir: str | Path = DEFAULT_IDX_DIR, split: str = "test") -> tuple[np.ndarray, np.ndarray]:
    """MNIST uint8 (N, 28, 28) images and labels from IDX files, as the reference code's dataset holds them."""
    images_path, labels_path = find_idx_files(idx_dir, split)
    return read_idx_images(images_path), read_idx_labels(labels_path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idx-dir", default=str(DEFAULT_IDX_DIR), help="folder with the MNIST IDX files")
    parser.add_argument("--split", default="test", choices=["train", "test"])
    parser.add_argument("--steps", type=int, default=20, help="timed steps (after 3 warm-up steps)")
    args = parser.parse_args()
    images, labels = load_mnist(args.idx_dir, args.split)
    loop = SeedLoop(images, labels)
    loop.run(3)
    start = time.perf_counter()
    loop.run(args.steps)
    seconds = time.perf_counter() - start
    print(json.dumps({"benchmark": "reference lsgan.py training loop (seed32, batch 64, fp32)", "steps": args.steps,
                      "images_per_s": round(args.steps * 64 / seconds, 1), "threads": torch.get_num_threads(),
                      "torch": torch.__version__, "d_loss": round(loop.last_losses[0], 4),
                      "g_loss": round(loop.last_losses[1], 4)}, indent=2))


if __name__ == "__main__":
    main()

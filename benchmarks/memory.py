"""Benchmark: peak memory of building and stepping paper28 at many classes.

Each class count runs in a fresh process (so peaks do not mix): build G and D at the
paper's sizes, then a few full training steps (D then G, Adam) at batch 64 on random
data, with the allocator setting training uses on the CPU (`keep_freed_memory`). Prints
JSON with the parameter counts, the resident memory after building and the peak
resident memory (ru_maxrss) after the steps.

    python benchmarks/memory.py [--classes 3740 20000] [--steps 3]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = """
import json, resource, sys, time, torch
from cond_lsgan.config import ModelConfig
from cond_lsgan.training.losses import LeastSquares
from cond_lsgan.models import build_models
from cond_lsgan.fast import use_fast_paths
from cond_lsgan.process import keep_freed_memory
keep_freed_memory()
classes, steps = int(sys.argv[1]), int(sys.argv[2])
def rss_mib():
    with open("/proc/self/status") as f:
        return next(int(l.split()[1]) for l in f if l.startswith("VmRSS")) / 1024
torch.manual_seed(0)
G, D = build_models(ModelConfig(arch="paper28", conditional=True, z_dim=1024), classes, 28)
use_fast_paths(G, "cpu")  # as training does
use_fast_paths(D, "cpu")
built = rss_mib()
opt_g = torch.optim.Adam(G.parameters(), 2e-4, betas=(0.5, 0.999))
opt_d = torch.optim.Adam(D.parameters(), 2e-4, betas=(0.5, 0.999))
loss = LeastSquares()
start = time.perf_counter()
for _ in range(steps):
    x, y = torch.rand(64, 1, 28, 28), torch.randint(0, classes, (64,))
    fake = G(G.sample_z(64), y)
    opt_d.zero_grad(); loss.discriminator(D(x, y), D(fake.detach(), y)).backward(); opt_d.step()
    opt_g.zero_grad(); loss.generator(D(fake, y)).backward(); opt_g.step()
print(json.dumps({
    "classes": classes,
    "generator_parameters": sum(p.numel() for p in G.parameters()),
    "discriminator_parameters": sum(p.numel() for p in D.parameters()),
    "rss_after_build_mib": round(built, 1),
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    "seconds_per_step": round((time.perf_counter() - start) / steps, 3),
}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--classes", type=int, nargs="+", default=[3740, 20000])
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()
    rows = []
    for classes in args.classes:
        out = subprocess.run([sys.executable, "-c", CHILD, str(classes), str(args.steps)],
                             capture_output=True, text=True, check=True).stdout
        rows.append(json.loads(out))
    print(json.dumps({"benchmark": "paper28 build + training steps, batch 64, fp32, CPU", "results": rows}, indent=2))


if __name__ == "__main__":
    main()

"""The offline profiler: measure a pool and build its profile (configuration table).

`build_profile(pool, prompts, reference_dir, workdir, out)` does, resumably (every image,
score and latency is cached under `workdir`):
  1. latency per batch size per variant on this device (warm-up, repeats: median, p95);
  2. one image per prompt per variant (seed = prompt index);
  3. router scores of the prompts and discriminator confidences of every image;
  4. for each pair (light faster than heavy) and each (r, d) on a grid, the served image set
     (top-r router scores -> heavy; the rest light, their bottom-d confidences -> heavy), its
     FID against the reference images (torchmetrics' FID over a feature extractor: a local
     model, or the shipped `pixel` extractor), and the expected latency;
  5. a profile file in the project's format (the Pareto table is derived on load).
"""

from hadis.profiling.pool import PoolSpec, VariantSpec, load_pool
from hadis.profiling.profiler import build_profile

__all__ = ["PoolSpec", "VariantSpec", "build_profile", "load_pool"]

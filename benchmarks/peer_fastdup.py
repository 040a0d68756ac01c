"""fastdup as a benchmark peer: its connected components of one folder, as JSON lists of relative paths.

Runs under a Python of its own with fastdup installed (it pins numpy<2; its licence is
non-commercial: a benchmark peer only, never a dependency of imgdedup, which never imports it)::

    SENTRY_OPT_OUT=1 /path/to/fdenv/bin/python benchmarks/peer_fastdup.py --images DIR --work W --out clusters.json

``bench_trust.py --fastdup /path/to/fdenv/bin/python`` runs it and scores its clusters like
the others'. Components at ``--threshold`` (0.9: the setting #16's table names), with
fastdup's bundled ONNX model, ``nearest_neighbors_k`` 2 (fastdup's default). Files
fastdup could not read are left out (singletons) and counted in the output's ``skipped``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path


def main() -> None:
    os.environ.setdefault("SENTRY_OPT_OUT", "1")
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=Path, required=True)
    parser.add_argument("--work", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--threshold", type=float, default=0.9)
    args = parser.parse_args()
    import fastdup

    started = time.perf_counter()
    fd = fastdup.create(work_dir=str(args.work), input_dir=str(args.images))
    fd.run(overwrite=True, cc_threshold=args.threshold, threshold=args.threshold, verbose=False)
    components = fd.connected_components()
    components = components[0] if isinstance(components, tuple) else components
    seconds = time.perf_counter() - started
    root = str(args.images.resolve())
    groups: dict = {}
    for name, component in zip(components["filename"], components["component_id"]):
        groups.setdefault(int(component), []).append(os.path.relpath(str(Path(name).resolve()), root))
    clusters = sorted(sorted(g) for g in groups.values() if len(g) > 1)
    invalid = fd.invalid_instances()
    args.out.write_text(json.dumps({"clusters": clusters, "skipped": int(len(invalid)), "seconds": round(seconds, 1)}))
    print(f"{len(clusters)} clusters, {len(invalid)} files skipped, {seconds:.1f} s")


if __name__ == "__main__":
    main()

import subprocess
import sys


def test_library_imports_no_prefect_and_no_torch():
    """imgdedup, its hashing and its in-process pipeline stay usable without the orchestrator or the CNN stack."""
    code = (
        "import sys, imgdedup, imgdedup.imaging.hashing, imgdedup.pipeline.stages, imgdedup.compat.methods, imgdedup.cli.main; "
        "print(sorted(m for m in ('prefect', 'torch', 'torchvision', 'dask', 'distributed') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"

"""Import order must not change behaviour: fastai's multiple dispatch (plum) picks by registration order among equals."""
import subprocess, sys

CODE = """
import torch
import drmm_nb.data as dd        # first, before anything imports fastai.interpret
import fastai.interpret as fi
from fastai.torch_core import TensorCategory
x, y = dd.DRMMImage(torch.zeros(1, 1, 8, 8)), TensorCategory(torch.tensor([0]))
print(fi.plot_top_losses._resolve_method_with_cache(args=(x, y, [], [], [], []))[0].__module__)
"""

def test_plot_top_losses_dispatch_whatever_the_import_order():
    r = subprocess.run([sys.executable, '-c', CODE], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == 'drmm_nb.data', r.stdout

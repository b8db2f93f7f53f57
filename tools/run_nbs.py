"""Execute notebooks in place and save their outputs, for the documentation site and the README.

The docs render saved outputs (nothing is executed at build time), so after changing a notebook run
`python tools/run_nbs.py nbs/07_tutorial.ipynb ...` (then `make export`). Unlike `nbdev-test`, this does not set
IN_TEST, so cells that shrink their work under test do the full work; `#| slow` and `#| gpu` cells are skipped.
Figures are saved at 72 dpi to keep the notebooks small, and progress bars are turned off (fastai's epoch table stays);
warnings that installed libraries print on stderr are left out of the saved outputs.
"""
import os, re, sys
from pathlib import Path
from fastcore.nbio import read_nb, write_nb
from execnb.shell import CaptureShell

SKIP = re.compile(r'^\s*#\|\s*(slow|gpu|eval:\s*false)\b', re.M)
# a warning raised inside an installed library (e.g. torch's FutureWarning) and the source line Python prints under it
LIB_WARNING = re.compile(r'^\S*site-packages/\S+:\d+: \w*Warning: .*\n(?:[ \t]+.*\n?)?', re.M)

def run(path:Path):
    nb = read_nb(path)
    os.environ.pop('IN_TEST', None)
    cwd = os.getcwd(); os.chdir(path.parent)
    try:
        sh = CaptureShell(path)
        # no progress bars (their carriage-return updates are noise in a saved page); fastai's epoch table stays
        sh.run("import matplotlib; matplotlib.rcParams['figure.dpi'] = 72; import fastprogress.fastprogress as fp; fp.NO_BAR = True")
        sh.run_all(nb, exc_stop=True, preproc=lambda c: c.cell_type == 'code' and bool(SKIP.search(c.source)))
    finally: os.chdir(cwd)
    for c in nb.cells:
        outs = []
        for o in c.get('outputs', []):
            if o.get('output_type') == 'stream':
                text = ''.join(o['text']) if isinstance(o['text'], list) else o['text']
                # a terminal would overwrite text before a carriage return: keep what it would show
                text = '\n'.join(line.rsplit('\r', 1)[-1] for line in text.split('\n'))
                if o.get('name') == 'stderr': text = LIB_WARNING.sub('', text)  # a library's warning is not the page's
                if not text.strip(): continue
                o['text'] = text
            outs.append(o)
        if 'outputs' in c: c['outputs'] = outs
    write_nb(nb, path)
    print(f"executed {path} ({path.stat().st_size // 1024} KB)", flush=True)

if __name__ == '__main__':
    for p in sys.argv[1:]: run(Path(p))

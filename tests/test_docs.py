"""The static documentation site of `tools/build_docs.py` (the `make docs` path where Quarto is missing).

Builds twice with `--engine static`, each into a temporary folder: a small fixture project made here (an
exported function, an equation, a saved plot, a callout, a scratch notebook), and the repository's own `nbs/`
(skipped while it has no notebooks). Needs no network: the pages' only script is the MathJax copied from the
`jupyter-server-mathjax` package.
"""
import ast, json, re, struct, subprocess, sys, zlib
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parent.parent
BUILD = ROOT/'tools'/'build_docs.py'
sys.path.insert(0, str(ROOT/'tools'))
import build_docs  # noqa: E402

# ---------------------------------------------------------------- helpers

def run_build(nbs:Path, out:Path):
    r = subprocess.run([sys.executable, str(BUILD), '--nbs', str(nbs), '--out', str(out), '--engine', 'static'],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, f"build_docs failed:\n{r.stdout}\n{r.stderr[-4000:]}"
    warned = re.findall(r'UserWarning: Found cells containing imports and other code.*?\n---\n(.*?)\n---', r.stderr, re.S)
    assert not warned, f"nbdev warns about cells that mix imports and code (split them): {warned}"
    return r.stdout

def page_name(nb:Path):
    "The page Quarto (and the static builder) gives a notebook: `index.html`, else the name less its number."
    return 'index.html' if nb.stem == 'index' else re.sub(r'^\d+[a-z]?[_-]', '', nb.stem) + '.html'  # 04a_machine -> machine.html

from nbcells import src, directives  # noqa: E402 (tools/: the tools' one directive parser)

def shown(cell):
    "Whether a code cell's outputs reach the docs (not hidden, not excluded)."
    d = directives(cell)
    return not ({'hide', 'export', 'exporti'} & d.keys()) and d.get('include') != 'false' and d.get('output') != 'false'

def saved_pngs(nb):
    return sum('image/png' in o.get('data', {}) for c in nb.cells if c.cell_type == 'code' and shown(c) for o in c.get('outputs', []))

def exported_names(nb):
    "Public functions and classes defined in `#| export` cells: each gets a `show_doc` section."
    names = []
    for c in nb.cells:
        d = directives(c)
        if c.cell_type != 'code' or not ({'export', 'exports'} & d.keys()) or 'hide' in d: continue
        try: tree = ast.parse('\n'.join(l for l in src(c).splitlines() if not l.lstrip().startswith(('%', '!'))))
        except SyntaxError: continue
        names += [n.name for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef))
                  and not n.name.startswith('_')]
    return names

_re_math_md = re.compile(r'\$\$.+?\$\$|(?<![\\$])\$[^$\n]+\$|\\\(.+?\\\)|\\\[.+?\\\]|\\begin\{', re.S)
_re_math_html = re.compile(r'\$\$.+?\$\$|(?<![\\$])\$[^$\n]+\$|\\\\\(.+?\\\\\)|\\begin\{', re.S)

def showdoc_headings(page:str):
    "Heading texts inside the pages' `show_doc` blocks."
    blocks = re.findall(r'class="[^"]*celltag_showdoc[^"]*".*?</div>\s*</div>\s*</div>\s*</div>', page, re.S)
    return {re.sub(r'<[^>]+>|¶', '', h).strip() for b in blocks for h in re.findall(r'<h[2-6][^>]*>(.*?)</h[2-6]>', b, re.S)}

def check_site(nbs:Path, out:Path):
    "What every built site must satisfy; returns {notebook name: page html} for more checks."
    nbpaths = build_docs.list_notebooks(nbs)
    assert nbpaths, f"no notebooks in {nbs}"
    expected = [page_name(p) for p in nbpaths]
    assert len(set(expected)) == len(expected), f"two notebooks map to one page: {expected}"
    built = sorted(p.name for p in out.glob('*.html'))
    assert built == sorted(expected), f"pages {built} != one per notebook {sorted(expected)}"
    css = (out/'site.css').read_text()
    assert not re.search(r'url\(\s*["\']?(https?:)?//', css), "site.css loads something from the network"
    pages = {}
    for p, name in zip(nbpaths, expected):
        page = (out/name).read_text(encoding='utf-8')
        pages[p.name] = page
        nb = nbformat.read(p, as_version=4)
        assert f'<code>nbs/{p.name}</code>' in page, f"{name} does not say it was built from {p.name}"
        # the sidebar links every page, in reading order
        nav = re.search(r'<nav class="sidebar">(.*?)</nav>', page, re.S)
        assert nav, f"{name} has no sidebar"
        links = [h for h in re.findall(r'<li[^>]*><a href="([^"#]+)"', nav.group(1))]
        assert links == expected, f"{name}: sidebar links {links}, expected {expected}"
        hrefs = set(re.findall(r'href="([^"#]*)', page))
        assert set(expected) - {name} <= hrefs, f"{name} misses links to {set(expected) - {name} - hrefs}"
        # titles show code spans as code, never as literal backticks
        assert '`' not in re.sub(r'<[^>]+>', '', nav.group(1)), f"{name}: backticks in the sidebar"
        head = re.search(r'<header>(.*?)</header>', page, re.S).group(1)
        assert '`' not in re.sub(r'<[^>]+>', '', head), f"{name}: backticks in the title or subtitle"
        # source links lead to pages of the site, with the line they name
        for src_link in re.findall(r'href="((?:https?:)?//[^"]*/blob/[^"]*)"', page):
            raise AssertionError(f"{name}: a source link leaves the site: {src_link}")
        for f, line in re.findall(r'href="(src/[\w.]+\.html)#L(\d+)"', page):
            assert f'id="L{line}"' in (out/f).read_text(), f"{name}: {f} has no line {line}"
        # LaTeX in signature comments is typeset (MathJax skips <pre> unless told)
        for b in re.findall(r'<pre[^>]*>.*?</pre>', page, re.S):
            if re.search(r'<span class="c1[^"]*">[^<]*\$[^<$]+\$', b):
                assert b.startswith('<pre class="tex2jax_process">'), f"{name}: MathJax would leave the LaTeX in {b[:200]} raw"
        if 'tex2jax_process' in page: assert 'processClass: "tex2jax_process"' in page
        # links to a place in a page of the site land on an id there (nbdev's doc links, `{#id}` headings)
        for f, anchor in re.findall(r'href="([\w.-]*\.html)?#([^"]+)"', page):
            if f and f not in expected: continue
            target = page if not f or f == name else (out/f).read_text(encoding='utf-8')
            assert f'id="{anchor}"' in target, f"{name}: the link {f}#{anchor} leads to no id on {f or name}"
        # no install paths of the machine that built it (libraries' warnings), no stray reprs, each API section once
        assert 'site-packages' not in page, f"{name} shows a library's path (a warning's stderr?)"
        assert 'torch._C.Generator' not in page, f"{name} shows the repr of torch.manual_seed's return value"
        sd = re.findall(r'<h[2-6][^>]*>(.*?)</h[2-6]>', ''.join(re.findall(
            r'class="[^"]*celltag_showdoc[^"]*".*?</div>\s*</div>\s*</div>\s*</div>', page, re.S)), re.S)
        sd = [re.sub(r'<[^>]+>|¶', '', h).strip() for h in sd]
        assert len(sd) == len(set(sd)), f"{name} documents {sorted({h for h in sd if sd.count(h) > 1})} twice"
        # no error output or traceback anywhere
        for bad in ('Traceback (most recent call last)', 'output_error'):
            assert bad not in page, f"{name} contains an error output ({bad!r})"
        # saved plots are embedded
        n_png = saved_pngs(nb)
        n_img = len(re.findall(r'<img[^>]+src="data:image/png;base64,', page))
        assert n_img >= n_png, f"{name}: {n_img} embedded PNGs, the notebook saved {n_png}"
        # equations reach the page as text MathJax typesets, and MathJax is local
        md_math = sum(len(_re_math_md.findall(re.sub(r'```.*?```|`[^`\n]*`', '', src(c), flags=re.S)))
                      for c in nb.cells if c.cell_type == 'markdown')
        body = page[page.index('<main>'):]  # not the MathJax configuration in <head>
        text = re.sub(r'<pre.*?</pre>|<code.*?</code>|<script.*?</script>', '', body, flags=re.S)
        html_math = len(_re_math_html.findall(text))
        assert html_math >= md_math, f"{name}: the notebook has {md_math} equations, the page {html_math}"
        scripts = re.findall(r'<script[^>]*\ssrc="([^"]*)"', page)
        mj = [s for s in scripts if 'MathJax.js' in s]
        assert mj, f"{name} has no MathJax script tag"
        for s in scripts: assert (out/s.split('?')[0]).is_file(), f"{name}: script {s} is not in the site"
        cfgs = re.search(r'config=([^&"]+)', mj[0])
        for c in (cfgs.group(1).split(',') if cfgs else []): assert (out/'mathjax'/'config'/f'{c}.js').is_file(), c
        # nothing loads from the network
        ext = re.findall(r'<(?:script|link|img|iframe)[^>]*\s(?:src|href)="((?:https?:)?//[^"]*)"', page)
        assert not ext, f"{name} loads from the network: {ext}"
        assert 'cdn' not in ' '.join(scripts).lower()
        # show_doc sections for the exported API
        heads = showdoc_headings(page)  # a method added with @patch is headed `Class.method`
        missing = {n for n in exported_names(nb) if not any(h == n or h.endswith('.' + n) for h in heads)}
        assert not missing, f"{name}: no show_doc section for {sorted(missing)}"
        # title and subtitle from the notebook
        title = re.search(r'<header><h1>(.*?)</h1>', page)
        assert title and title.group(1).strip(), f"{name} has no title"
    assert (out/'mathjax'/'fonts'/'HTML-CSS'/'STIX-Web'/'woff').is_dir(), "MathJax's web fonts were not copied"
    return pages

# ---------------------------------------------------------------- a fixture project

def tiny_png(w=24, h=16):
    "A small valid RGB PNG (a gradient), made without any imaging library."
    rows = b''.join(b'\x00' + bytes(v for x in range(w) for v in (x*10 % 256, y*15 % 256, 128)) for y in range(h))
    def chunk(t, d): return struct.pack('>I', len(d)) + t + d + struct.pack('>I', zlib.crc32(t + d) & 0xffffffff)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', struct.pack('>IIBBBBB', w, h, 8, 2, 0, 0, 0))
            + chunk(b'IDAT', zlib.compress(rows)) + chunk(b'IEND', b''))

def _nb(cells):
    nb = nbformat.v4.new_notebook(); nb.cells = cells
    nb.metadata['kernelspec'] = {'name': 'python3', 'display_name': 'Python 3', 'language': 'python'}
    return nb

def _code(s, outputs=()):
    c = nbformat.v4.new_code_cell(s); c.outputs = list(outputs); return c

md = nbformat.v4.new_markdown_cell

def make_fixture(root:Path):
    import base64
    nbs = root/'nbs'; nbs.mkdir(parents=True)
    (root/'pyproject.toml').write_text('[project]\nname = "fixdocs"\ndescription = "A fixture project"\n\n[tool.nbdev]\n'
                                       'title = "fixdocs"\nlib_path = "fixdocs"\nnbs_path = "nbs"\ndoc_path = "_docs"\n'
                                       'recursive = false\njupyter_hooks = false\n')
    plot = nbformat.v4.new_output('display_data', data={'image/png': base64.b64encode(tiny_png()).decode(), 'text/plain': '<Figure>'})
    nbformat.write(_nb([_code('#| hide\nfrom nbdev.showdoc import show_doc'), md('# fixdocs\n\n> A tiny fixture project'),
                        md('Start with [the alpha notebook](00_alpha.ipynb).')]), nbs/'index.ipynb')
    nbformat.write(_nb([
        _code('#| default_exp alpha'), _code('#| export\nimport math'),
        _code('#| hide\nfrom fastcore.test import *\nfrom nbdev.showdoc import show_doc'),
        md('# Alpha\n\n> The first fixture module'),
        md('## Squares\n\nThe energy is $E = x^2$ (Eq. 1):\n\n$$\\mathcal{L}(x) = \\sum_{i=1}^{n} x_i^2$$'),
        _code('#| export\ndef square(x:float=2.0, # the number to square\n          )->float: # its square\n'
              '    "Square `x` (Eq. 1)."\n    return x*x'),
        _code('test_eq(square(3), 9)\nsquare(3)', [nbformat.v4.new_output('execute_result', data={'text/plain': '9'}, execution_count=1)]),
        md('::: {.callout-note}\n## Departure from the paper\nWe use $x^2$ instead of $|x|$.\n:::'),
        _code('plt_plot = "a saved figure"', [plot]),
        _code('#| hide\nprint("hidden")', [nbformat.v4.new_output('stream', name='stdout', text='hidden output\n')]),
    ]), nbs/'00_alpha.ipynb')
    nbformat.write(_nb([
        _code('#| default_exp beta'), md('# Beta\n\n> Second fixture module'),
        _code('#| export\nclass Cube:\n    "Cube a number."\n    def __call__(self, x): return x**3'),
        md('Inline \\(y = x^3\\) and display\n\n\\[ y = x^3 \\]'),
        _code('#| exports\ndef cube(x): "Cube `x`."; return x**3'),
    ]), nbs/'10_beta.ipynb')
    nbformat.write(_nb([md('# Scratch')]), nbs/'_scratch.ipynb')
    return nbs

@pytest.fixture(scope='module')
def fixture_site(tmp_path_factory):
    root = tmp_path_factory.mktemp('fixdocs')
    nbs = make_fixture(root)
    out = root/'site'
    log = run_build(nbs, out)
    return nbs, out, log

# ---------------------------------------------------------------- tests

def test_reading_order():
    names = ['10_decoding.ipynb', '02_layers.ipynb', 'index.ipynb', '9_x.ipynb', '00_generative.ipynb']
    assert sorted(names, key=build_docs.nb_order) == ['index.ipynb', '00_generative.ipynb', '02_layers.ipynb', '9_x.ipynb', '10_decoding.ipynb']

def test_latex_delims():
    assert build_docs.latex_delims(r'a \(x^2\) b') == 'a $x^2$ b'
    assert build_docs.latex_delims('\\[ y \\]\n`\\(code\\)`') == '$$ y $$\n`\\(code\\)`'

def test_fixture_site(fixture_site):
    nbs, out, log = fixture_site
    pages = check_site(nbs, out)
    assert list(pages) == ['index.ipynb', '00_alpha.ipynb', '10_beta.ipynb']  # `_scratch` has no page
    assert not (out/'scratch.html').exists() and not (out/'_scratch.html').exists()
    index, alpha, beta = pages.values()
    # title from the H1, description from the `> subtitle` line
    assert '<header><h1>Alpha</h1><p class="description">The first fixture module</p></header>' in alpha
    assert '<title>Alpha – fixdocs</title>' in alpha
    # link to a notebook points at its page
    assert 'href="alpha.html"' in index and '00_alpha.ipynb"' not in index
    # show_doc of the exported function, with its docments; its source and hidden cells are not shown
    assert 'square' in showdoc_headings(alpha) and {'Cube', 'cube'} <= showdoc_headings(beta)
    assert '# the number to square' in alpha and 'Square <code>x</code> (Eq. 1).' in alpha
    assert 'return x*x' not in re.sub(r'<[^>]+>', '', alpha)
    assert 'hidden output' not in alpha and 'fastcore.test' not in alpha
    assert 'default_exp' not in alpha and '#|' not in alpha
    # `#| exports` source is shown, folded
    fold = re.search(r'<details class="code-fold" open(?:="")?><summary>Exported source</summary>(.*?)</details>', beta, re.S)
    assert fold and 'x</span><span class="o">**' in fold.group(1)
    assert fold.group(1).count('<div') == fold.group(1).count('</div>')  # the whole input area, well nested
    # headings keep unique ids
    ids = re.findall(r'\sid="([^"]+)"', alpha)
    assert len(ids) == len(set(ids))
    # exactly the one saved plot, equations as MathJax text, the callout as a styled block
    assert len(re.findall(r'<img[^>]+src="data:image/png;base64,', alpha)) == 1
    assert '$E = x^2$' in alpha and '$$\\mathcal{L}(x) = \\sum_{i=1}^{n} x_i^2$$' in alpha
    assert '$y = x^3$' in beta and '$$ y = x^3 $$' in beta
    assert re.search(r'<div class="callout callout-note">\s*<p class="callout-title">Departure from the paper</p>\s*<p>We use \$x\^2\$', alpha)
    # the MathJax entry point and what it loads are in the site
    for f in ('MathJax.js', 'config/TeX-AMS-MML_HTMLorMML-full.js', 'extensions/Safe.js', 'jax/output/HTML-CSS/fonts/STIX-Web/fontdata.js'):
        assert (out/'mathjax'/f).is_file(), f

def test_rebuild_replaces_site(fixture_site):
    "A second build into the same folder leaves no stale page behind."
    nbs, out, _ = fixture_site
    (out/'stale.html').write_text('old')
    run_build(nbs, out)
    assert not (out/'stale.html').exists()
    check_site(nbs, out)

def test_repo_site(tmp_path):
    nbs = ROOT/'nbs'
    if not build_docs.list_notebooks(nbs): pytest.skip('the repository has no notebooks yet')
    out = tmp_path/'site'
    run_build(nbs, out)
    check_site(nbs, out)


def test_readme_links_resolve_from_the_repository_root():
    "Every relative link in README.md (generated from nbs/index.ipynb) points at a file that exists from the root."
    text = (ROOT/'README.md').read_text()
    links = [l.split('#')[0] for l in re.findall(r'\]\(([^)\s]+)\)', text) if not re.match(r'https?:|#|mailto:', l)]
    assert any(l.startswith('nbs/') for l in links), links
    missing = [l for l in links if l and not (ROOT/l).exists()]
    assert not missing, f"README links that do not resolve from the repository root: {missing}"


def test_explicit_heading_ids_stderr_noise_and_folded_tests():
    "`## Title {#id}` keeps its id (as pandoc does); libraries' warnings and C++ log lines leave stderr; wide test cells fold."
    body = build_docs.pandoc_ids('<h2 id="Re-drawn-{#apart}">Re-drawn {#apart}<a class="anchor-link" href="#Re-drawn-{#apart}">¶</a></h2>'
                                 '<h2 id="x">One two</h2><h2 id="y">One two</h2>')
    assert '<h2 id="apart">Re-drawn<a class="anchor-link" href="#apart">' in body and '{#' not in body
    assert 'id="one-two"' in body and 'id="one-two-1"' in body
    warn = nbformat.from_dict(dict(output_type='stream', name='stderr', text=(
        '/home/u/.venv/lib/python3.11/site-packages/fastai/learner.py:456: UserWarning: insecure pickle\n  warn("x")\n'
        'W1203 16:01:25.765000 20077 torch/utils/cpp_extension.py:183] No CUDA runtime\nthe cell\'s own message\n')))
    assert build_docs.quiet_stderr(warn).text == "the cell's own message\n"
    only = nbformat.from_dict(dict(output_type='stream', name='stderr', text='/x/site-packages/a.py:1: FutureWarning: y\n  z\n'))
    assert build_docs.quiet_stderr(only) is None
    out = nbformat.from_dict(dict(output_type='stream', name='stdout', text='/x/site-packages/a.py:1: FutureWarning: kept\n'))
    assert build_docs.quiet_stderr(out) is out
    assert build_docs.long_test_cell("test_eq(a, b)\ntest_fail(lambda: f(), contains='" + 'x' * 120 + "')")
    assert not build_docs.long_test_cell("test_eq(a, b)")
    assert not build_docs.long_test_cell("y = f(" + 'x' * 120 + ")\nz = 2")


def test_readme_python_blocks_stand_alone():
    "Every ```python block of the README runs on its own: each name it uses is imported or defined in the block itself."
    import builtins
    blocks = re.findall(r'```python\n(.*?)```', (ROOT/'README.md').read_text(), re.S)
    assert len(blocks) >= 3, len(blocks)
    for b in blocks:
        tree = ast.parse(b)
        defined = set(dir(builtins))
        for n in ast.walk(tree):
            if isinstance(n, (ast.Import, ast.ImportFrom)): defined |= {(a.asname or a.name).split('.')[0] for a in n.names}
            elif isinstance(n, (ast.FunctionDef, ast.ClassDef)): defined.add(n.name)
            elif isinstance(n, ast.arg): defined.add(n.arg)
            elif isinstance(n, ast.Name) and isinstance(n.ctx, ast.Store): defined.add(n.id)
        used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
        assert used <= defined, f"names {sorted(used - defined)} come from another block:\n{b}"

"""Build the documentation site (`make docs`).

Where Quarto is installed this runs nbdev's own pipeline, `nbdev-docs` (which reads `nbs/_quarto.yml`).
Where it is not (Quarto's installer downloads a binary, which fails without network access), it builds a
static site with no Quarto:

1. nbdev processes the notebooks into `_proc/` (`nbdev.serve.proc_nbs`, the step behind `nbdev-proc-nbs`,
   called directly because `nbdev-proc-nbs` first tries to download and install Quarto). This is what adds
   the `show_doc` API sections after each `#| export` cell, drops hidden and exported source, and turns the
   H1 title and `> subtitle` into front matter.
2. Jupyter's nbconvert renders each processed notebook to HTML from its saved outputs (nothing is executed),
   one page per notebook: `index.ipynb` first, then `00_*`, `01_*`, ... by number; notebooks starting with
   `_` are scratch and skipped. Pages are named as Quarto names them (`00_generative.ipynb` ->
   `generative.html`), so links between pages and nbdev's doc links work the same on both sites.
3. Each page gets a sidebar linking every page, the notebook's title and subtitle, and MathJax 2 from the
   `jupyter-server-mathjax` package (PyPI, a dev dependency) copied into `<out>/mathjax/`: the pages load no
   script or stylesheet from the network.

Usage: python tools/build_docs.py [--nbs DIR] [--out DIR] [--engine auto|quarto|static] [--workers N]
"""
import argparse, html, os, re, shutil, subprocess, sys, time
from pathlib import Path

IMG_EXTS = {'.png', '.jpg', '.jpeg', '.gif', '.svg', '.webp'}
MATHJAX_DIR = 'mathjax'
MATHJAX_SRC = f'{MATHJAX_DIR}/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe'

def nb_order(name:str):
    "Sort key for reading order: `index` first, then by the leading number, then by name."
    stem = Path(name).stem
    if stem == 'index': return (0, 0, stem)
    m = re.match(r'^(\d+)', stem)
    return (1, int(m.group(1)) if m else 10**9, stem)

def list_notebooks(nbs:Path):
    "Notebooks in `nbs` that become pages, in reading order (no scratch `_*` or hidden `.*` notebooks)."
    return sorted((p for p in nbs.glob('*.ipynb') if not p.name.startswith(('_', '.'))), key=lambda p: nb_order(p.name))

# ---------------------------------------------------------------- step 1: nbdev processing

def process_notebooks(nbs:Path, workers:int):
    "Run nbdev's notebook processing (what `nbdev-proc-nbs` does, without its Quarto install) and return `_proc/`."
    from nbdev.config import get_config
    from nbdev.serve import proc_nbs
    cfg = get_config(nbs)
    os.chdir(cfg.config_path)  # nbdev's processors read the project config from the working directory
    # the `show_doc` cells import the project's package: make it importable even where it is not pip-installed
    # (the spawned workers inherit this `sys.path`)
    if str(cfg.config_path) not in sys.path: sys.path.insert(0, str(cfg.config_path))
    return Path(proc_nbs(str(nbs), n_workers=workers)), cfg

# ---------------------------------------------------------------- step 2: notebook -> page body

sys.path.insert(0, str(Path(__file__).resolve().parent))
from nbcells import src as _src, split_directives  # noqa: E402 (one directive parser for the tools)

def frontmatter(nb):
    "Title, description and output file from the YAML front-matter raw cell nbdev writes."
    import yaml
    for cell in nb.cells:
        if cell.cell_type == 'raw':
            m = re.match(r'^\s*---\s*\n(.*?)\n---\s*$', _src(cell), re.S)
            if m:
                try: return yaml.safe_load(m.group(1)) or {}
                except yaml.YAMLError: return {}
    return {}

_re_fence = re.compile(r'^(:{3,})\s*(?:\{([^}]*)\}|([\w-]+))?\s*$')

def quarto_divs(md:str):
    "Turn Quarto fenced divs (`::: {.callout-note}` ... `:::`) into HTML divs whose inside stays Markdown."
    out, stack = [], []
    lines = md.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        m = _re_fence.match(line.strip())
        if m and (m.group(2) is not None or m.group(3) is not None):  # opening fence
            attrs = m.group(2) or '.' + m.group(3)
            classes = re.findall(r'\.([\w-]+)', attrs)
            title = re.search(r'title\s*=\s*"([^"]*)"', attrs)
            callout = next((c for c in classes if c.startswith('callout-')), None)
            cls = ' '.join((['callout'] if callout else []) + classes)
            out += ['', f'<div class="{html.escape(cls)}">', '']
            if callout:
                head = title.group(1) if title else None
                if head is None and i+1 < len(lines) and re.match(r'^#{1,6}\s+', lines[i+1]):
                    i += 1; head = re.sub(r'^#{1,6}\s+', '', lines[i]).strip()
                if head is None: head = callout.split('-', 1)[1].capitalize()
                out += [f'<p class="callout-title">{html.escape(head)}</p>', '']
            stack.append(m.group(1))
        elif m and stack:  # closing fence
            stack.pop(); out += ['', '</div>', '']
        else: out.append(line)
        i += 1
    out += ['', '</div>', ''] * len(stack)
    return '\n'.join(out)

_CELL_KEYS = dict(code={'cell_type', 'execution_count', 'id', 'metadata', 'outputs', 'source'},
                  markdown={'cell_type', 'id', 'metadata', 'source', 'attachments'})

def latex_delims(md:str):
    "Rewrite `\\(..\\)` and `\\[..\\]` (which Markdown reads as escaped brackets) to `$..$` and `$$..$$`, outside code."
    parts = re.split(r'(```.*?```|`[^`\n]*`)', md, flags=re.S)
    for i in range(0, len(parts), 2):
        parts[i] = re.sub(r'(?<!\\)\\\[(.+?)\\\]', lambda m: '$$' + m.group(1) + '$$', parts[i], flags=re.S)
        parts[i] = re.sub(r'(?<!\\)\\\((.+?)\\\)', lambda m: '$' + m.group(1).strip() + '$', parts[i], flags=re.S)
    return ''.join(parts)

_re_link_attrs = re.compile(r'\[([^\]]*)\]\(([^)\s]+)\)\{([^}]*)\}')

def link_attrs(md:str):
    "Turn pandoc links with attributes (`[source](url){target=\"_blank\" style=...}`, from `show_doc`) into HTML links."
    def sub(m):
        attrs = dict(re.findall(r'([\w-]+)="([^"]*)"', m.group(3)))
        classes = ' '.join(re.findall(r'\.([\w-]+)', re.sub(r'"[^"]*"', '', m.group(3))) + ['md-link'])
        extra = ''.join(f' {k}="{html.escape(v)}"' for k, v in attrs.items() if k in ('target', 'title'))
        return f'<a class="{classes}" href="{html.escape(m.group(2))}"{extra}>{html.escape(m.group(1))}</a>'
    return _re_link_attrs.sub(sub, md)

def prepare(nb):
    "Apply the processed notebook's Quarto directives for nbconvert: hidden input, hidden output, folded code."
    cells = []
    for cell in nb.cells:
        src = _src(cell)
        if cell.cell_type == 'raw': continue  # front matter
        if cell.cell_type == 'markdown':
            if re.fullmatch(r'\s*<!--.*?-->\s*', src, re.S) or not src.strip(): continue  # nbdev's autogenerated warning
            cell.source = link_attrs(latex_delims(quarto_divs(src)))
            cells.append(cell); continue
        if cell.cell_type != 'code': continue
        ds, code = split_directives(src)
        if ds.get('include') == 'false': continue
        if ds.get('output') == 'false': cell.outputs = []
        if not code.strip() and not cell.get('outputs'): continue
        cell.source = code
        if cell.cell_type == 'code': cell.outputs = [o for o in map(quiet_stderr, cell.get('outputs', [])) if o is not None]
        for o in cell.get('outputs', []):
            if 'text/markdown' in o.get('data', {}):
                m = o.data['text/markdown']
                o.data['text/markdown'] = link_attrs(''.join(m) if isinstance(m, list) else m)
        tags = list(cell.metadata.get('tags', []))
        if re.match(r'^show_doc\(', code): tags.append('showdoc')
        if ds.get('echo') == 'false' or not code.strip():
            cell.metadata.setdefault('transient', {})['remove_source'] = True
        elif ds.get('code-fold', 'false') != 'false':
            cell.metadata['code_fold'] = ds['code-fold']
            cell.metadata['code_summary'] = ds.get('code-summary', 'Code')
        elif cell.cell_type == 'code' and long_test_cell(code):  # folded, as fastai's pages hide most of their tests
            cell.metadata['code_fold'], cell.metadata['code_summary'] = 'true', 'Tests'
        cell.metadata['tags'] = tags
        cells.append(cell)
    for cell in cells:  # drop what nbdev's processing leaves that nbformat's schema rejects
        for k in set(cell) - _CELL_KEYS[cell.cell_type]: del cell[k]
        cell.metadata.pop('execution', None)  # execnb's timings (a float where the schema wants strings)
    nb.cells = cells
    nb.metadata.pop('widgets', None)  # empty widget state nbdev's processing adds
    return nb

_LIB_WARNING = re.compile(r'^\S*(site-packages|dist-packages)/\S+\.py:\d+: \w*Warning: ')  # a library's warning (and its path)
_LOG_LINE = re.compile(r'^[WIE]\d{4} \d\d:\d\d:\d\d')  # torch's C++ log lines (W1203 16:01:25 ...)

def long_test_cell(code:str, width:int=110)->bool:
    "Whether a cell is mostly checks (`test_*`, `assert`) with a line too wide for the page."
    lines = [l for l in code.splitlines() if l.strip() and not l.lstrip().startswith('#')]
    checks = sum(bool(re.match(r'\s*(test_\w+\(|assert\b)', l)) for l in lines)
    return bool(lines) and checks >= len(lines) / 2 and max(map(len, lines)) > width

def quiet_stderr(o):
    "A stderr stream without libraries' warnings (which name the builder's own install paths) and C++ log lines; None if nothing is left."
    if o.get('output_type') != 'stream' or o.get('name') != 'stderr': return o
    text = ''.join(o.text) if isinstance(o.text, list) else o.text
    keep, skip = [], False
    for line in text.splitlines(keepends=True):
        if _LIB_WARNING.match(line) or _LOG_LINE.match(line): skip = True; continue
        if skip and line.startswith((' ', '\t')): continue  # the warning's source line
        skip = False; keep.append(line)
    if not ''.join(keep).strip(): return None
    o.text = ''.join(keep)
    return o

# nbconvert's `basic` template (cells only, no page around them), with nbdev's folded `#| exports` source
TEMPLATE = """{%- extends 'basic/index.html.j2' -%}
{% block input_group -%}
{%- set fold = cell.metadata.get('code_fold') -%}
{%- if fold -%}
<details class="code-fold"{{ ' open' if fold == 'show' else '' }}><summary>{{ cell.metadata.get('code_summary', 'Code') | e }}</summary>
{{ super() }}
</details>
{%- else -%}
{{ super() }}
{%- endif -%}
{%- endblock input_group %}
"""

def render_body(nb):
    "HTML of the notebook's cells (nbconvert's `basic` template, no prompts, saved outputs only)."
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter
    exp = HTMLExporter(template_name='basic', template_file='docs_cells.html.j2', extra_loaders=[DictLoader({'docs_cells.html.j2': TEMPLATE})],
                       exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exp.from_notebook_node(nb)
    return pandoc_ids(body)

def pandoc_id(text:str):
    "The identifier pandoc (so Quarto, and nbdev's doc links) gives a heading with this text."
    t = re.sub(r'[^\w\s.-]', '', text.strip().lower().replace('¶', ''))
    t = re.sub(r'\s+', '-', t)
    return re.sub(r'^[\W\d_]+', '', t) or 'section'

def pandoc_ids(body:str):
    "Heading ids as on the Quarto site (`#generativedrmm`, `#one-rendering-step-eq.-13`), repeats suffixed `-1`, `-2`."
    seen = {}
    def sub(m):
        tag, old, inner = m.group(1), m.group(2), m.group(3)
        explicit = re.search(r'\s*\{#([\w.:-]+)\}', inner)  # pandoc's `## Title {#id}`: the id given, the braces not shown
        if explicit:
            new = explicit.group(1)
            a, b = m.start(3) - m.start(0), m.end(3) - m.start(0)
            whole = m.group(0)[:a] + inner.replace(explicit.group(0), '', 1) + m.group(0)[b:]
        else:
            new, whole = pandoc_id(html.unescape(re.sub(r'<[^>]+>', '', inner))), m.group(0)
            n = seen.get(new, 0); seen[new] = n + 1
            if n: new = f'{new}-{n}'
        return f'<{tag} id="{new}"' + whole[len(f'<{tag} id="{old}"'):].replace(f'href="#{old}"', f'href="#{new}"')
    return re.sub(r'<(h[1-6]) id="([^"]+)"[^>]*>(.*?)</\1>', sub, body, flags=re.S)

# ---------------------------------------------------------------- step 3: the page around it

CSS = """
:root { --side: 17rem; --accent: #2a6fdb; --muted: #667; --code-bg: #f6f8fa; --border: #dde1e6; }
* { box-sizing: border-box; }
html { font-size: 16px; }
body { margin: 0; font-family: system-ui, -apple-system, "Segoe UI", Roboto, "DejaVu Sans", sans-serif;
       line-height: 1.6; color: #1f2328; background: #fff; }
a { color: var(--accent); text-decoration: none; } a:hover { text-decoration: underline; }
nav.sidebar { position: fixed; top: 0; bottom: 0; left: 0; width: var(--side); overflow-y: auto;
              padding: 1.25rem 1rem; background: #f7f8fa; border-right: 1px solid var(--border); font-size: .92rem; }
nav.sidebar .site-title { display: block; font-weight: 700; font-size: 1.15rem; color: #1f2328; margin-bottom: .2rem; }
nav.sidebar .site-desc { color: var(--muted); font-size: .8rem; line-height: 1.35; margin: 0 0 1rem; }
nav.sidebar ol { list-style: none; padding: 0; margin: 0; }
nav.sidebar li { margin: .1rem 0; }
nav.sidebar li a { display: block; padding: .2rem .5rem; border-radius: 4px; color: #30363d; }
nav.sidebar li a:hover { background: #e9edf2; text-decoration: none; }
nav.sidebar li.current > a { background: #e1ebfb; color: #0b4fb3; font-weight: 600; }
nav.sidebar ul.toc { list-style: none; margin: .15rem 0 .4rem .9rem; padding-left: .5rem; border-left: 2px solid #d0d7e2; }
nav.sidebar ul.toc a { padding: .05rem .4rem; font-size: .84rem; color: var(--muted); }
main { margin-left: var(--side); padding: 2rem 3rem 4rem; max-width: calc(var(--side) + 58rem); }
main > header h1 { margin: 0 0 .3rem; font-size: 2.1rem; line-height: 1.2; }
main > header p.description { margin: 0 0 1.6rem; color: var(--muted); font-style: italic; font-size: 1.2rem; }
h1, h2, h3, h4 { line-height: 1.25; margin: 1.6em 0 .5em; }
h2 { font-size: 1.55rem; padding-bottom: .2rem; border-bottom: 1px solid var(--border); }
h3 { font-size: 1.2rem; }
a.anchor-link { visibility: hidden; margin-left: .3rem; color: #aab; font-weight: 400; }
h1:hover a.anchor-link, h2:hover a.anchor-link, h3:hover a.anchor-link, h4:hover a.anchor-link { visibility: visible; }
code { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .88em; background: #eff1f3;
       padding: .1em .3em; border-radius: 4px; }
pre { font-family: "DejaVu Sans Mono", Menlo, Consolas, monospace; font-size: .85rem; line-height: 1.45;
      margin: 0; overflow-x: auto; white-space: pre; }
pre code { background: none; padding: 0; font-size: inherit; }
.cell { margin: .9rem 0; }
.input_area { background: var(--code-bg); border: 1px solid var(--border); border-radius: 6px; padding: .6rem .85rem; }
.input_area .highlight { background: none; }
.output_wrapper { margin-top: .25rem; }
.output_area { margin: .2rem 0 .2rem .6rem; }
.output_text pre, .output_stream pre { padding: .35rem .75rem; border-left: 3px solid #f0a47c; background: #fff; }
.output_stderr pre { border-left-color: #d9a400; background: #fffbe6; }
.output_error pre { border-left-color: #cf222e; background: #fff0f0; }
.output_png img, .output_jpeg img, .output_svg img { max-width: 100%; height: auto; border-left: 3px solid #f0a47c; padding-left: .5rem; }
.output_html, .output_markdown { border-left: 3px solid #f0a47c; padding-left: .75rem; }
.rendered_html table { border-collapse: collapse; margin: .6rem 0; font-size: .92rem; }
.rendered_html th, .rendered_html td { border: 1px solid var(--border); padding: .3rem .6rem; text-align: left; }
.rendered_html th { background: #f3f5f8; }
.rendered_html img { max-width: 100%; }
.rendered_html blockquote { margin: .6rem 0; padding: .1rem 1rem; border-left: 4px solid #c9d1dc; color: #444c56; }
.text_cell_render pre, .output_markdown pre { background: var(--code-bg); border: 1px solid var(--border); border-radius: 6px; padding: .6rem .85rem; }
/* nbdev show_doc API sections */
.celltag_showdoc .output_area { margin-left: 0; }
.celltag_showdoc .output_markdown { border: 1px solid #c9d6ea; border-left: 4px solid var(--accent); border-radius: 6px;
                                    background: #fafcff; padding: .1rem 1.1rem .5rem; margin: 1.4rem 0 .8rem; }
.celltag_showdoc .output_markdown > hr + p { margin: 0; }
.celltag_showdoc .output_markdown hr { display: none; }
.celltag_showdoc .output_markdown { position: relative; }
.celltag_showdoc a.md-link[target] { position: absolute; top: .9rem; right: 1.1rem; font-size: .82rem; }
.celltag_showdoc .output_markdown h3, .celltag_showdoc .output_markdown h4 { margin-top: .8rem; font-family: "DejaVu Sans Mono", Menlo, monospace; }
.celltag_showdoc .output_markdown pre { background: #fff; }
details.code-fold > summary { cursor: pointer; color: var(--muted); font-size: .88rem; margin-bottom: .25rem; }
/* Quarto callouts */
.callout { border: 1px solid var(--border); border-left: 5px solid #2a6fdb; border-radius: 6px; padding: .2rem 1rem .3rem;
           margin: 1rem 0; background: #f5f9ff; }
.callout-title { font-weight: 700; margin: .4rem 0 .2rem; }
.callout-warning { border-left-color: #d9a400; background: #fffaeb; }
.callout-important { border-left-color: #cf222e; background: #fff5f5; }
.callout-tip { border-left-color: #1a7f37; background: #f3fbf5; }
.callout-caution { border-left-color: #e16f24; background: #fff7f0; }
.MathJax_Display { overflow-x: auto; overflow-y: hidden; }
footer { margin-top: 3rem; padding-top: .8rem; border-top: 1px solid var(--border); color: var(--muted); font-size: .85rem; }
.ln { color: #999; user-select: none; }
span.ln:target { background: #ffeb99; }
body.source main { margin-left: 0; }
@media (max-width: 56rem) {
  nav.sidebar { position: static; width: auto; border-right: none; border-bottom: 1px solid var(--border); }
  main { margin-left: 0; padding: 1.2rem; }
}
"""

MATHJAX_CONFIG = r"""<script type="text/x-mathjax-config">
MathJax.Hub.Config({
  tex2jax: { inlineMath: [['$','$'], ['\\(','\\)']], displayMath: [['$$','$$'], ['\\[','\\]']],
             processEscapes: true, processEnvironments: true, processClass: "tex2jax_process" },
  TeX: { equationNumbers: { autoNumber: "AMS", useLabelIds: true } },
  "HTML-CSS": { availableFonts: [], webFont: "STIX-Web", imageFont: null, preferredFont: null, linebreaks: { automatic: true } },
  displayAlign: "center", messageStyle: "none", showMathMenu: false
});
</script>"""

def _text(s): return html.unescape(re.sub(r'<[^>]+>', '', s)).replace('¶', '').strip()

def inline_html(s:str)->str:
    "A page title as HTML: escaped, with Markdown `code` spans as <code> (not literal backticks)."
    return re.sub(r'`([^`]+)`', r'<code>\1</code>', html.escape(s))

def plain(s:str)->str: return s.replace('`', '')  # for <title>, where no markup is allowed

def math_comments(body:str)->str:
    "Let MathJax typeset the LaTeX in code comments (parameter docs of signatures): it skips a <pre> unless the <pre> is marked."
    c1 = re.compile(r'<span class="c1">((?:[^<$]*\$[^<$]+\$)+[^<$]*)</span>')
    def pre(m):
        block = m.group(0)
        if not c1.search(block): return block
        return c1.sub(r'<span class="c1 tex2jax_math">\1</span>', block).replace('<pre>', '<pre class="tex2jax_process">', 1)
    return re.sub(r'<pre>.*?</pre>', pre, body, flags=re.S)

def source_pages(body:str, lib_path:str, root:Path, out:Path)->str:
    "Point nbdev's source links (<repository>/blob/<branch>/<lib>/x.py#Ln) at pages of the package's source in the site."
    pat = re.compile(r'https?://[^"\s]+/blob/[^/"]+/' + re.escape(lib_path) + r'/(\w+\.py)(#L\d+)?')
    def sub(m):
        name, frag = m.group(1), m.group(2) or ''
        f = root/lib_path/name
        if not f.exists(): return m.group(0)
        page = out/'src'/f'{name}.html'
        if not page.exists():
            page.parent.mkdir(parents=True, exist_ok=True)
            lines = f.read_text(encoding='utf-8').splitlines()
            rows = ''.join(f'<span id="L{i}" class="ln">{i:>5}  </span>{html.escape(l)}\n' for i, l in enumerate(lines, 1))
            page.write_text(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>{lib_path}/{name}</title>'
                            f'<link rel="stylesheet" href="../site.css"></head><body class="source"><main><h1><code>{lib_path}/{name}'
                            f'</code></h1><p>Generated from the notebooks by <code>nbdev-export</code>; edit the notebook named '
                            f'in each cell comment, not this file.</p><pre>{rows}</pre></main></body></html>', encoding='utf-8')
        return f'src/{name}.html{frag}'
    return pat.sub(sub, body)

def page_toc(body:str):
    "(id, text) of the page's H2 sections, for the sidebar."
    return [(m.group(1), _text(m.group(2))) for m in re.finditer(r'<h2 id="([^"]+)"[^>]*>(.*?)</h2>', body, re.S)]

def sidebar(pages, current, site_title, site_desc):
    items, home = [], pages[0]['file']
    for p in pages:
        cur = p['file'] == current['file']
        li = f'<li{" class=current" if cur else ""}><a href="{p["file"]}">{inline_html(p["title"])}</a>'
        if cur and p['toc']:
            li += '<ul class="toc">' + ''.join(f'<li><a href="#{i}">{html.escape(t)}</a></li>' for i,t in p['toc']) + '</ul>'
        items.append(li + '</li>')
    return (f'<nav class="sidebar"><a class="site-title" href="{home}">{html.escape(site_title)}</a>'
            + (f'<p class="site-desc">{html.escape(site_desc)}</p>' if site_desc else '') + f'<ol>{"".join(items)}</ol></nav>')

def fix_links(body:str, page_of:dict, site_url:str):
    "Point links at notebooks (`00_x.ipynb`) and at the published site (nbdev doc links) to the local pages."
    def sub(m):
        url = m.group(2)
        path, frag = (url.split('#', 1) + [''])[:2]
        if site_url and path.startswith(site_url + '/'): path = path[len(site_url)+1:]
        name = Path(path).name if '/' not in path.strip('./') else None
        if name in page_of: path = page_of[name]
        elif name and name.endswith('.html') and name in page_of.values(): path = name
        else: return m.group(0)
        return f'{m.group(1)}{path}{"#"+frag if frag else ""}"'
    return re.sub(r'(<a\s[^>]*?href=")([^"]*)"', sub, body)

def page_html(p, pages, body, site_title, site_desc, generator):
    desc = f'<p class="description">{inline_html(p["description"])}</p>' if p['description'] else ''
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="{html.escape(generator)}">
<title>{html.escape(plain(p['title']))} – {html.escape(site_title)}</title>
<link rel="stylesheet" href="site.css">
{MATHJAX_CONFIG}
<script src="{MATHJAX_SRC}"></script>
</head>
<body>
{sidebar(pages, p, site_title, site_desc)}
<main>
<header><h1>{inline_html(p['title'])}</h1>{desc}</header>
{body}
<footer>Built from <code>nbs/{html.escape(p['source'])}</code> by <code>tools/build_docs.py</code> (nbdev + nbconvert, saved outputs only).</footer>
</main>
</body>
</html>
"""

def copy_mathjax(out:Path):
    "Copy MathJax 2 from the `jupyter-server-mathjax` package into `out/mathjax`."
    try: import jupyter_server_mathjax
    except ImportError: sys.exit("build_docs: needs the `jupyter-server-mathjax` package (in the `dev` extras): pip install -e '.[dev]'")
    src = Path(jupyter_server_mathjax.__file__).parent/'static'
    if not (src/'MathJax.js').exists(): sys.exit(f"build_docs: no MathJax.js in {src}")
    shutil.copytree(src, out/MATHJAX_DIR, dirs_exist_ok=True)

def build_static(nbs:Path, out:Path, workers:int):
    import nbformat, nbconvert, nbdev
    from pygments.formatters import HtmlFormatter
    t0 = time.time()
    srcs = list_notebooks(nbs)
    if not srcs: sys.exit(f"build_docs: no notebooks in {nbs}")
    proc, cfg = process_notebooks(nbs, workers)
    t1 = time.time()
    site_title = str(cfg.get('title') or cfg.get('lib_name') or 'docs')
    site_desc = str(cfg.get('description') or '')
    site_url = (str(cfg.get('doc_host') or '') + str(cfg.get('doc_baseurl') or '')).rstrip('/')
    pages = []
    for s in srcs:
        pf = proc/s.name
        if not pf.exists(): sys.exit(f"build_docs: nbdev did not process {s} (no {pf})")
        nb = nbformat.read(pf, as_version=4)
        fm = frontmatter(nb)
        fname = 'index.html' if s.stem == 'index' else (fm.get('output-file') or re.sub(r'^\d+[_-]', '', s.stem) + '.html')
        pages.append(dict(source=s.name, nb=nb, file=Path(str(fname)).name, title=str(fm.get('title') or s.stem),
                          description=str(fm.get('description') or '')))
    page_of = {p['source']: p['file'] for p in pages}
    for p in pages:
        body = render_body(prepare(p.pop('nb')))
        p['body'] = math_comments(fix_links(body, page_of, site_url))
        p['toc'] = page_toc(p['body'])
    if out.exists(): shutil.rmtree(out)
    out.mkdir(parents=True)
    generator = f'tools/build_docs.py (nbdev {nbdev.__version__}, nbconvert {nbconvert.__version__}, MathJax from jupyter-server-mathjax)'
    root, lib_path = Path(cfg.config_path), str(cfg.get('lib_path') or cfg.get('lib_name') or '')
    for p in pages:
        if lib_path: p['body'] = source_pages(p['body'], Path(lib_path).name, root, out)
        (out/p['file']).write_text(page_html(p, pages, p['body'], site_title, site_desc, generator), encoding='utf-8')
    (out/'site.css').write_text(CSS + HtmlFormatter(style='default').get_style_defs('.highlight'), encoding='utf-8')
    copy_mathjax(out)
    for f in proc.rglob('*'):  # images the notebooks' markdown refers to by path
        if f.is_file() and f.suffix.lower() in IMG_EXTS and not any(q.startswith(('.', '_')) for q in f.relative_to(proc).parts):
            (out/f.relative_to(proc)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(f, out/f.relative_to(proc))
    (out/'.nojekyll').write_text('')
    print(f"build_docs: {len(pages)} pages in {out} (nbdev processing {t1-t0:.1f}s, HTML {time.time()-t1:.1f}s)")
    for p in pages: print(f"  {p['source']:32s} -> {p['file']}")

def build_quarto(nbs:Path, out:Path, workers:int):
    from nbdev.config import get_config
    cfg = get_config(nbs)
    exe = Path(sys.executable).parent/'nbdev-docs'
    cmd = [str(exe) if exe.exists() else 'nbdev-docs', '--path', str(nbs), '--n-workers', str(workers)]
    print('build_docs:', ' '.join(cmd))
    r = subprocess.run(cmd, cwd=cfg.config_path)
    if r.returncode: sys.exit(f"build_docs: nbdev-docs failed (exit {r.returncode}); `--engine static` builds without Quarto")
    if out.resolve() != Path(cfg.doc_path).resolve():
        if out.exists(): shutil.rmtree(out)
        shutil.move(str(cfg.doc_path), str(out))
    print(f"build_docs: Quarto site in {out}")

def main(argv=None):
    root = Path(__file__).resolve().parent.parent
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--nbs', type=Path, default=root/'nbs', help='notebooks folder (inside an nbdev project)')
    ap.add_argument('--out', type=Path, default=None, help="output folder (default: the project's doc_path, _docs/)")
    ap.add_argument('--engine', choices=['auto', 'quarto', 'static'], default='auto',
                    help='auto: Quarto (nbdev-docs) when `quarto` is on PATH, else the static nbconvert site')
    ap.add_argument('--workers', type=int, default=min(2, os.cpu_count() or 1), help='nbdev processing workers (0: serial)')
    a = ap.parse_args(argv)
    nbs = a.nbs.resolve()
    if not nbs.is_dir(): sys.exit(f"build_docs: no notebooks folder {nbs}")
    if a.out is None:
        from nbdev.config import get_config
        a.out = Path(get_config(nbs).doc_path)
    out = a.out.resolve()
    engine = a.engine
    if engine == 'auto': engine = 'quarto' if shutil.which('quarto') else 'static'
    if engine == 'quarto': build_quarto(nbs, out, a.workers)
    else: build_static(nbs, out, a.workers)

if __name__ == '__main__': main()

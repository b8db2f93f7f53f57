"Reading notebook cells for the tools (README, static docs) and their tests: one parser of nbdev/Quarto `#|` directives."
import re

_re_directive = re.compile(r'^\s*#\|\s*([\w-]+)\s*:?\s*(.*?)\s*$')

def src(cell)->str:
    "A cell's source as one string (nbformat keeps it as a string or a list of lines)."
    s = cell['source'] if isinstance(cell, dict) else cell.source
    return ''.join(s) if isinstance(s, list) else (s or '')

def split_directives(code:str)->tuple:
    "The `#|` directives of a code cell as {name: value} ('' for a bare one like `#| hide`), and the code without them."
    ds, rest = {}, []
    for line in code.splitlines():
        m = _re_directive.match(line)
        if m: ds[m.group(1)] = m.group(2).strip('"\'')
        else: rest.append(line)
    return ds, '\n'.join(rest).strip('\n')

def directives(cell)->dict:
    "The `#|` directives of `cell` as {name: value}."
    return split_directives(src(cell))[0]

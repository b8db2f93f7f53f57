"""`drmm-experiments` as a user runs it (a real process on a tiny grid), the table generator on fixture files, and the
benchmark script's smoke run."""
import json, re, subprocess, sys
from pathlib import Path
import pytest

ROOT = Path(__file__).resolve().parents[1]
EXE = Path(sys.executable).with_name('drmm-experiments')


def run(args, **kw):
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=900, cwd=kw.pop('cwd', ROOT), **kw)


def fixture(path, seed, err, variant, sup=False, n_labeled=50):
    path.mkdir(parents=True)
    rec = dict(status='finished', config=dict(dataset='digits', n_labeled=n_labeled, seed=seed, epochs=4,
                                              supervised_only=sup), final=dict(test_error=err), wall_time_s=12.,
               epochs=[dict(epoch=i, error_rate=err, h=1., rc=.5, kl=-.1, nn=0.) for i in range(4)],
               runner=dict(variant=variant, threads=1))
    (path/'metrics.json').write_text(json.dumps(rec))


def test_table_from_fixture_files(tmp_path):
    g = tmp_path/'results'/'fx'
    for s, (e_sup, e_ent) in enumerate([(.12, .04), (.10, .06), (.14, .05)]):
        fixture(g/f'sup-s{s}', s, e_sup, 'supervised', sup=True)
        fixture(g/f'ent-s{s}', s, e_ent, 'entropy')
    (g/'broken').mkdir(); (g/'broken'/'metrics.json').write_text(json.dumps(dict(status='running')))
    r = run(['table', 'fx', '--results', str(tmp_path/'results')])
    assert r.returncode == 0, r.stderr
    lines = (g/'table.md').read_text().splitlines()
    assert lines[2] == '| digits | 50 | supervised | 12.00 ± 2.00 | 3 | 4 | 12 |  |'
    assert lines[3] == '| digits | 50 | entropy | 5.00 ± 1.00 | 3 | 4 | 12 | -7.00 (3/3) |'
    t = json.loads((g/'table.json').read_text())
    assert t['n_runs'] == 6 and [row['n'] for row in t['rows']] == [3, 3]
    r = run(['curves', 'fx', '--results', str(tmp_path/'results')])
    assert r.returncode == 0, r.stderr
    assert 5_000 < (g/'curves-digits-nl50.png').stat().st_size < 100_000   # drawn, and small


def test_list_without_a_name_and_help(tmp_path):
    "`drmm-experiments list` names every grid (the package's and experiments/*.json) with its runs and results."
    r = run(['list'])
    assert r.returncode == 0, r.stderr
    lines = dict(l.split(': ', 1) for l in r.stdout.splitlines() if ': ' in l)
    assert lines['digits'] == '70 runs, 70 with results in results/digits', lines.get('digits')
    assert 'digits_apart' in lines and 'fashion_sweep' in lines  # the JSON and script grids of experiments/
    r = run(['list', 'digits_portable'])
    assert r.returncode == 0 and r.stdout.count('drmm-train --dataset digits') == 8, r.stdout
    top = run(['--help']).stdout
    for cmd in ('run', 'verify', 'table', 'curves', 'list'):
        assert re.search(rf'^\s+{cmd}\s+\S', top, re.M), (cmd, top)  # each subcommand with its help line
        h = run([cmd, '--help']).stdout
        assert 'grid name' in h and 'folder of the committed results' in h, (cmd, h)
    r = run(['list', 'nope'])
    assert r.returncode == 2 and "drmm-experiments list shows them" in r.stderr, r.stderr


def test_run_tiny_grid_then_skip(tmp_path):
    args = ['run', 'digits', '--only', 'digits-nl50-supervised-s[01]', '--set', 'epochs=1', '--quiet',
            '--results', str(tmp_path/'res'), '--runs', str(tmp_path/'runs')]
    r = run(args)
    assert r.returncode == 0, r.stderr
    assert 'digits: 2 done, 0 skipped, 0 diverged, 0 not started' in r.stdout
    m = json.loads((tmp_path/'res'/'digits'/'digits-nl50-supervised-s1'/'metrics.json').read_text())
    assert m['status'] == 'finished' and m['config']['fit']['epochs'] == 1 and m['runner']['threads'] == 1
    assert not (tmp_path/'res'/'digits'/'digits-nl50-supervised-s1'/'checkpoint.pt').exists()
    rows = [l for l in (tmp_path/'res'/'digits'/'table.md').read_text().splitlines() if l.startswith('| digits | 50 | supervised |')]
    assert len(rows) == 1 and rows[0].split('|')[5].strip() == '2', rows   # both seeds in the table's run count
    r = run(args)
    assert 'digits: 0 done, 2 skipped, 0 diverged, 0 not started' in r.stdout


def test_overrides_refuse_the_committed_results(tmp_path):
    r = run(['run', 'digits', '--set', 'epochs=1'], cwd=tmp_path)
    assert r.returncode == 2 and 'write them elsewhere' in r.stderr


def test_bench_quick_prints_ratios():
    "bench/step.py tries four configurations (or those asked for) per architecture and reports the fastest DRMM step against the fastest plain one."
    t, summary, out = {}, [], ''
    # ConvSmall in all four; ConvLarge without bf16 (ten times slower on a CPU without bf16 instructions: minutes, not seconds)
    for args, n in ((['--arch', 'conv_small'], 4), (['--arch', 'conv_large', '--configs', 'fp32,channels_last'], 2)):
        r = subprocess.run([sys.executable, 'bench/step.py', '--quick', '--bs', '20', '--no-memory', *args], capture_output=True,
                           text=True, timeout=900, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        lines = [l for l in r.stdout.splitlines() if ']: DRMM step' in l and 'ratio' in l]
        assert [l.split()[0] for l in lines] == [args[1]] * n, r.stdout
        # a smoke run: the times are measurements (read them, don't assert them); the ratios must follow from the printed times
        for l in lines:
            f = l.split()
            drmm, plain, ratio = float(f[f.index('DRMM') + 2]), float(f[f.index('plain') + 2]), float(f[-1])
            assert drmm > 0 and plain > 0 and abs(ratio - drmm / plain) <= 0.006, l
            t.setdefault(f[0], []).append((drmm, plain))
        summary += [l for l in r.stdout.splitlines() if 'best-plain ratio' in l]
        cpu = r.stdout.splitlines()[0]   # the CPU and its kernel sets come first: every number below depends on them
        assert cpu.startswith('CPU ') and 'bf16 instructions' in cpu and 'ATen ' in cpu and 'fast_options picks [' in cpu, cpu
        out += r.stdout
    assert len(summary) == 2, out
    for l in summary:
        best = float(l.split('best-plain ratio ')[1].split()[0])
        d, p = min(x for x, _ in t[l.split()[0]]), min(y for _, y in t[l.split()[0]])
        assert abs(best - d / p) <= 0.006, (l, d, p)
    assert 'batch assembly' in out
    picks = [l for l in out.splitlines() if "fast_options' pick [" in l]
    assert any(l.startswith('conv_small') for l in picks) and all('DRMM step' in l for l in picks), out   # conv_large: if its pick was timed


def test_bench_fast_times_the_pick_only():
    "bench/step.py --fast times only the configuration that drmm-train --fast picks here, and records the machine."
    import tempfile
    from drmm_nb.machine import fast_options
    f = fast_options()
    pick = ' + '.join(k for k, on in (('bf16', f['mixed_precision']), ('channels_last', f['channels_last'])) if on) or 'fp32'
    with tempfile.TemporaryDirectory() as d:
        r = subprocess.run([sys.executable, 'bench/step.py', '--quick', '--fast', '--bs', '20', '--no-memory', '--arch',
                            'conv_small', '--json', f'{d}/s.json'], capture_output=True, text=True, timeout=900, cwd=ROOT)
        assert r.returncode == 0, r.stderr
        res = json.loads(Path(f'{d}/s.json').read_text())
    assert list(res['cases']['conv_small']['configs']) == [pick] and res['fast_pick'] == pick
    assert res['machine']['cpu']['model'] and 'aten_capability' in res['machine']


def test_bench_compare_rev(tmp_path):
    "bench/compare_rev.py times this checkout's step against a revision's (here HEAD) in a worktree it removes again."
    out = tmp_path/'ab.json'
    worktrees = lambda: subprocess.run(['git', 'worktree', 'list'], cwd=ROOT, capture_output=True, text=True).stdout
    before = worktrees()
    r = subprocess.run([sys.executable, 'bench/compare_rev.py', 'HEAD', '--steps', '1', '--warmup', '0', '--rounds', '1',
                        '--json', str(out)], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    med = res['median']
    assert abs(res['drmm_speedup'] - med['rev']['drmm_ms'] / med['this']['drmm_ms']) < 1e-9
    assert f"speed-up of this checkout over {res['rev']}: {res['drmm_speedup']:.2f}x" in r.stdout
    assert worktrees() == before   # the temporary worktree is gone


def test_bench_compile_falls_back(monkeypatch, capsys):
    "A torch.compile that fails makes bench/step.py time the eager steps, saying why (and recording it)."
    import argparse, torch
    sys.path.insert(0, str(ROOT/'bench'))
    import step
    def broken(fn, **kw):
        def f(*a, **k): raise RuntimeError("no compiler here")
        return f
    monkeypatch.setattr(torch, 'compile', broken)
    args = argparse.Namespace(bs=4, bf16=False, channels_last=False, compile=True)
    drmm, plain = step.make_steps('conv_small', (1, 28, 28), args, torch.device('cpu'))
    assert args.compiled is False
    assert 'torch.compile failed for conv_small (RuntimeError: no compiler here): timing the eager steps' in capsys.readouterr().out
    drmm(); plain()   # the eager steps run


def test_bench_top_down_ops_quick(tmp_path):
    "bench/top_down_ops.py times every rendering layer both ways in four configurations, and the mask in two formats."
    out = tmp_path/'ops.json'
    r = subprocess.run([sys.executable, 'bench/top_down_ops.py', '--quick', '--json', str(out)], capture_output=True,
                       text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    res = json.loads(out.read_text())
    # ConvSmall's 4 and ConvLarge's 7 rendering layers with kernels > 1 (ConvLarge's 1x1 layer and the class layers skipped)
    assert len(res['render']) == 4 * (4 + 7) and len(res['mask']) == 6
    assert all(abs(x['speedup'] - x['transposed_ms'] / x['flipped_ms']) < 1e-9 for x in res['render'])
    assert all(abs(x['ratio'] - x['mixed_ms'] / x['same_ms']) < 1e-9 for x in res['mask'])
    assert r.stdout.count('speed-up of flipped') == len(res['render'])


def test_bench_memory_stages():
    "The peak-memory run reports its peak and the resident memory after each stage; the peak bounds every stage."
    sys.path.insert(0, str(ROOT/'bench'))
    from step import peak_rss
    peak, n, what, stages = peak_rss(0.002, 1, 'cpu')
    assert list(stages) == ['python', 'import torch', 'import fastai, drmm_nb', 'data loaded', 'after training + test pass']
    assert n > 0 and what
    assert peak >= max(stages.values()) and stages['import torch'] > stages['python']


def test_bench_diagnostics_quick():
    "The diagnostics' cost: one epoch off, every 10th batch and every batch, as ratios to 'off' in the same run."
    r = subprocess.run([sys.executable, 'bench/diagnostics.py', '--quick'], capture_output=True, text=True, timeout=900, cwd=ROOT)
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if 'ratio to off' in l]
    assert [l.split(':')[0].split()[-1] for l in lines] == ['off', '10', '1'], r.stdout
    assert float(lines[0].split('ratio to off')[1]) == 1.0
    # timings are measurements (read, not asserted): the quick run checks that each ratio is its time over 'off'
    t = [float(l.split(':')[1].split()[0]) for l in lines]
    assert all(float(l.split('ratio to off')[1]) == pytest.approx(x / t[0], rel=0.01) for l, x in zip(lines, t)), lines


def test_gpu_mnist_dry_run(tmp_path):
    "experiments/gpu_mnist.sh on the CPU with tiny MNIST files: every run of seed 0 finishes and lands in the archive."
    import os, tarfile
    env = dict(os.environ, GPU_MNIST_DRY='1', OUT=str(tmp_path/'out'), PY=sys.executable)
    r = subprocess.run(['bash', 'experiments/gpu_mnist.sh'], capture_output=True, text=True, timeout=900, cwd=ROOT, env=env)
    assert r.returncode == 0, r.stderr
    log = (tmp_path/'out'/'mnist.log').read_text()
    assert log.count(': rc=0') == 6 and 'done after' in log, log
    with tarfile.open(tmp_path/'out'/'mnist_results.tgz') as t: names = t.getnames()
    runs = sorted(n.split('/')[2] for n in names if n.endswith('metrics.json') and n.startswith('./mnist_gpu/'))
    assert runs == sorted(f'mnist-nl100-{v}-s0' for v in ('supervised', 'entropy', 'rc', 'rc_nn', 'rc_kl', 'rc_kl_nn')), names
    assert './mnist_gpu/table.md' in names


def test_diverged_run_is_reported_and_left_out(tmp_path):
    "A run whose objective overflows: the grid goes on, says so, and the run is in no results file or table."
    args = ['run', 'digits', '--only', 'digits-nl50-rc_kl_nn-s[01]', '--set', 'epochs=1', '--set', 'lr=1e6',
            '--set', 'opt=sgd', '--quiet', '--results', str(tmp_path/'res'), '--runs', str(tmp_path/'runs')]
    r = run(args)
    assert r.returncode == 0, r.stderr
    assert 'digits: 0 done, 0 skipped, 2 diverged, 0 not started' in r.stdout, r.stdout
    assert 'diverged, left out of the results (Training diverged at epoch 0' in r.stdout
    assert not (tmp_path/'res'/'digits').exists()
    m = json.loads((tmp_path/'runs'/'digits'/'digits-nl50-rc_kl_nn-s0'/'metrics.json').read_text())
    assert m['status'] == 'diverged' and 'Lower the learning rate' in m['error']


# ------------------------------------------------------------------ verify on another CPU (issue 19)
# Emulated CPUs: ATen and oneDNN honour these variables, so one machine can stand in for an older one.
OLD_CPU = {'ATEN_CPU_CAPABILITY': 'default', 'ONEDNN_MAX_CPU_ISA': 'AVX'}


def test_make_test_verification_on_an_emulated_other_cpu():
    "make test's verify passes on a CPU unlike the recording one, saying it compared within the cross-machine tolerance."
    import os
    r = run(['verify', 'digits_render', '--sample', '2'], env={**os.environ, **OLD_CPU})
    assert r.returncode == 0, r.stdout + r.stderr
    lines = [l for l in r.stdout.splitlines() if 'values compared' in l]
    assert len(lines) == 2 and all('within the cross-machine tolerance [mode tolerance: ' in l for l in lines), r.stdout
    assert "aten_capability: 'AVX512' recorded, 'DEFAULT' here" in r.stdout   # the reason names the fact that differs
    assert 'trained twice here: bit-identical' in r.stdout and 'regenerate' not in r.stdout


@pytest.fixture(scope='module')
def portable_here(tmp_path_factory):
    "A short portable record made on the machine that runs the tests (3 epochs of digits_portable's supervised-s0)."
    res = tmp_path_factory.mktemp('portable')
    r = run(['run', 'digits_portable', '--only', 'digits-nl50-supervised-s0', '--set', 'epochs=3', '--quiet',
             '--results', str(res/'results'), '--runs', str(res/'runs')])
    assert r.returncode == 0, r.stdout + r.stderr
    return res/'results'


def test_portable_records_verify_exactly_on_an_emulated_other_cpu(portable_here):
    "Records of the portable mode reproduce to the bit under another oneDNN instruction set (oneDNN is not used there)."
    import os
    r = run(['verify', 'digits_portable', '--results', str(portable_here)], env={**os.environ, 'ONEDNN_MAX_CPU_ISA': 'SSE41'})
    assert r.returncode == 0, r.stdout + r.stderr
    assert 'values compared exactly [mode exact: both in the portable mode on one CPU type' in r.stdout, r.stdout


def test_committed_portable_records_verify_on_any_cpu():
    "The committed portable records (AVX2 AMD EPYC) pass here, exactly where this CPU is proven alike, else within the tolerance."
    from drmm_nb.machine import portable_alike, cpu_info
    r = run(['verify', 'digits_portable', '--sample', '1', '--once'])
    assert r.returncode == 0, r.stdout + r.stderr
    rec = json.loads((ROOT/'results'/'digits_portable'/'digits-nl50-entropy-s0'/'metrics.json').read_text())
    alike = portable_alike(rec['machine']['cpu'], cpu_info())[0]
    line = next(l for l in r.stdout.splitlines() if 'values compared' in l)
    assert ('compared exactly' if alike else 'within the cross-machine tolerance') in line, r.stdout


CONSTANTS = {  # one constant of training changed, in every Python process started with the environment below
    'momentum': ("BatchNorm's momentum 0.1 -> 0.2", "eps=1e-5, momentum=0.2, *a, **k): _init(self, num_features, eps, momentum, *a, **k)"),
    'eps': ("BatchNorm's eps 1e-5 -> 2e-5", "eps=2e-5, *a, **k): _init(self, num_features, eps, *a, **k)")}


def _changed_constant(tmp_path, which):
    "An environment whose Python processes train with one constant of `CONSTANTS` changed (a sitecustomize patch)."
    import os
    (tmp_path/'sitecustomize.py').write_text(
        "import torch.nn.modules.batchnorm as bn\n_init = bn._BatchNorm.__init__\n"
        f"def __init__(self, num_features, {CONSTANTS[which][1]}\nbn._BatchNorm.__init__ = __init__\n")
    return {**os.environ, 'PYTHONPATH': f"{tmp_path}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}


@pytest.mark.parametrize('which,grid,run_name,mode,caught', [
    ('momentum', 'digits_render', 'digits-nl50-supervised_A-s1', 'tolerance', True),
    ('momentum', 'here', 'digits-nl50-supervised-s0', 'exact', True),   # 'here': a portable record made on this machine
    ('eps', 'here', 'digits-nl50-supervised-s0', 'exact', True),
    # the documented limit: a change that moves the first epoch no more than CPU types drift (eps: 2e-5 relative in
    # the training loss, 1e-4 in the test loss) and the final error by under two points passes the cross-machine check
    ('eps', 'digits_render', 'digits-nl50-supervised_A-s1', 'tolerance', False)])
def test_a_changed_constant_and_verify(tmp_path, request, which, grid, run_name, mode, caught):
    "One changed constant of training fails verify in both modes, unless it is smaller than cross-machine drift."
    where = ['--results', str(request.getfixturevalue('portable_here'))] if grid == 'here' else []
    grid = 'digits_portable' if grid == 'here' else grid
    r = run(['verify', grid, '--only', run_name, '--once', '--mode', mode, *where], env=_changed_constant(tmp_path, which))
    assert r.returncode == (1 if caught else 0), (CONSTANTS[which][0], r.stdout + r.stderr)
    assert f'[mode {mode}: {mode} mode asked for' in r.stdout, r.stdout
    if caught:
        advice = 'regenerate them' if mode == 'exact' else 'Do not regenerate the results on this evidence'
        assert 'values differ' in r.stdout and advice in r.stdout, r.stdout


def test_synthetic_decoding_grid_refuses_other_data():
    "`synthetic_decoding.py --grid` decodes grids of the rendered sets only, and says so before loading anything."
    r = subprocess.run([sys.executable, str(ROOT/'experiments'/'synthetic_decoding.py'), '--grid', 'mnist_heldout'],
                       capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert r.returncode != 0 and 'must all train on one rendered set' in r.stderr and "['mnist']" in r.stderr, r.stderr

"""`drmm-train` as a user runs it: a real process, killed with SIGKILL in the middle of an epoch, then resumed."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest
from drmm_nb.options import flat_config

EXE = Path(sys.executable).with_name('drmm-train')
ARGS = ['--dataset', 'digits', '--epochs', '3', '--device', 'cpu', '--seed', '3']
TIMING = {'elapsed_s'}


def run(args, **kw):
    return subprocess.run([str(EXE), *args], capture_output=True, text=True, timeout=600, **kw)


def flat(v):
    "The numbers of a nested record (the per-epoch `diag`), in a fixed order, None as NaN."
    if isinstance(v, dict): return [x for k in sorted(v) for x in flat(v[k])]
    if isinstance(v, list): return [x for e in v for x in flat(e)]
    return [float('nan') if v is None else v]


def epochs(path):
    m = json.loads((path/'metrics.json').read_text())
    return m, [{k: v for k, v in row.items() if k not in TIMING | {'train_loss_smooth'}} for row in m['epochs']]


def assert_same_run(out, reference):
    "The run in `out` finished with the reference run's numbers: final error and loss, every epoch's row, the labeled set."
    (m_ref, rows_ref), (m_res, rows_res) = epochs(reference), epochs(out)
    assert m_res['status'] == 'finished'
    assert m_res['final']['test_error'] == m_ref['final']['test_error']
    assert m_res['final']['test_loss'] == pytest.approx(m_ref['final']['test_loss'], abs=1e-6)
    assert len(rows_res) == len(rows_ref) == 3
    for a, b in zip(rows_res, rows_ref):
        assert a.keys() == b.keys()
        for k in a: assert flat(a[k]) == pytest.approx(flat(b[k]), abs=1e-6, nan_ok=True), (k, a[k], b[k])
    assert m_res['labeled'] == m_ref['labeled']


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp('ref')/'run'
    r = run(ARGS + ['--out', str(out)])
    assert r.returncode == 0, r.stderr
    return out


def test_kill_9_mid_epoch_then_resume_matches(reference, tmp_path):
    out = tmp_path/'run'
    p = subprocess.Popen([str(EXE), *ARGS, '--out', str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 300
    while time.time() < deadline:  # wait for the first epoch's checkpoint, then kill during the second epoch
        m = out/'metrics.json'
        if m.exists() and len(json.loads(m.read_text())['epochs']) >= 1: break
        assert p.poll() is None, p.stderr.read().decode()
        time.sleep(0.05)
    # within 50 ms of epoch 0's checkpoint: the process is inside epoch 1 (epochs take ~0.3 s on an idle core or more)
    assert p.poll() is None, 'the run ended before it could be killed mid-epoch'
    os.kill(p.pid, signal.SIGKILL)
    p.wait()
    m, rows = epochs(out)
    assert m['status'] == 'running' and 1 <= len(rows) < 3, (m['status'], len(rows))
    r = run(ARGS + ['--out', str(out), '--resume'])
    assert r.returncode == 0, r.stderr
    assert 'Resuming' in r.stdout
    assert_same_run(out, reference)


def test_finished_run_is_not_overwritten(reference):
    before = (reference/'metrics.json').read_text()
    r = run(ARGS + ['--out', str(reference)])
    assert r.returncode == 2
    assert 'already holds a finished run' in r.stderr and '--overwrite' in r.stderr
    assert (reference/'metrics.json').read_text() == before


def test_metrics_json_schema(reference):
    m = json.loads((reference/'metrics.json').read_text())
    assert set(m['config']) == {'preset', 'data', 'model', 'loss', 'fit', 'run'}   # recorded by group
    cfg = flat_config(m['config'])
    for k in ('dataset', 'data_dir', 'n_labeled', 'arch', 'epochs', 'schedule', 'lr', 'alpha_h', 'alpha_rc', 'alpha_kl',
              'alpha_nn', 'kl', 'seed', 'supervised_only', 'device', 'out', 'resume'):
        assert k in cfg, k
    assert cfg['n_labeled'] == 50 and cfg['arch'] == 'conv_tiny' and cfg['alpha_kl'] == 1.0
    assert m['labeled']['seed'] == 3 and len(m['labeled']['indices']) == 50
    assert m['final']['test_error'] == m['epochs'][-1]['error_rate']
    # the recorded error is the exported model's on the test set, recomputed here from model.pkl
    import numpy as np, torch
    from fastai.learner import load_learner
    from drmm_nb.data import load_digits
    arrays = load_digits()
    learn = load_learner(reference/'model.pkl')
    preds, _ = learn.get_preds(dl=learn.dls.test_dl(arrays.x_test))
    wrong = int((preds.argmax(1) != torch.as_tensor(arrays.y_test)).sum())
    assert m['final']['test_error'] == pytest.approx(wrong / len(arrays.y_test), abs=1e-7), (wrong, m['final'])
    el = [e['elapsed_s'] for e in m['epochs']]
    assert m['wall_time_s'] == el[-1] and all(b > a > 0 for a, b in zip(el, el[1:]))   # the clock of the last epoch
    assert m['versions']['torch'] == torch.__version__
    mf = m['machine']   # the facts that decide the numbers, beside the versions (drmm_nb.machine)
    from drmm_nb.machine import cpu_info
    assert mf['cpu'] == cpu_info() and mf['aten_capability'] == torch.backends.cpu.get_cpu_capability() and mf['threads'] >= 1
    assert {'onednn_isa', 'mkl_branch', 'mkldnn', 'nnpack', 'pinned', 'portable'} <= set(mf) and mf['torch'] == torch.__version__
    import matplotlib.image as mpimg
    h, w = mpimg.imread(reference/'reconstructions.png').shape[:2]
    assert h > 50 and w > 2 * h, (h, w)   # a strip of originals over reconstructions, not an empty figure


@pytest.mark.parametrize('args,message', [
    (['--n-labeled', '55'], 'is not a multiple of n_classes=10'),
    (['--n-labeled', '5'], 'n_classes'),
    (['--n-labeled', '100000'], 'larger than the training set'),
    (['--dataset', 'mnist', '--data-dir', '/nonexistent'], '/nonexistent'),
    (['--arch', 'conv_large'], 'conv_large cannot take 8x8'),
    (['--epochs', '0'], 'epochs=0 (--epochs): at least 1'),
    (['--leak', '-1'], 'leak=-1.0 (--leak): a negative slope in [0, 1)'),
    (['--preset', 'theano'], "invalid choice: 'theano'"),
    (['--portable', '--bf16'], 'does not go with bf16'),
    (['--halves', 'split'], "invalid choice: 'split'"),
    (['--checkpoint-every', '-1'], 'checkpoint_every=-1.0 (--checkpoint-every): minutes, >= 0'),
])
def test_bad_input_is_refused_before_training(tmp_path, args, message):
    out = tmp_path/'run'
    r = run(['--dataset', 'digits', '--device', 'cpu', '--out', str(out), *args])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert message in r.stderr, r.stderr
    assert not (out/'checkpoint.pt').exists()


def test_mnist_from_the_shared_folder(tmp_path):
    "`drmm-train --dataset mnist --data-dir ../shared/data/mnist` reads the real files: it gets as far as the labeled subset."
    shared = Path(__file__).resolve().parents[2]/'shared'/'data'/'mnist'
    assert (shared/'train-images-idx3-ubyte.gz').exists(), f"the shared MNIST folder is missing: {shared}"
    r = run(['--dataset', 'mnist', '--data-dir', str(shared), '--n-labeled', '60010', '--out', str(tmp_path/'run')])
    assert r.returncode == 2, (r.stdout, r.stderr)
    assert 'larger than the training set' in r.stderr and '60000' in r.stderr, r.stderr   # the 60,000 training images were read


def test_mid_epoch_checkpoint_then_resume_matches(reference, tmp_path):
    "With checkpoints inside epochs (--checkpoint-every, here ~every batch), kill -9 and --resume still give the reference run."
    import torch
    out = tmp_path/'run'
    args = ARGS + ['--checkpoint-every', '0.00002']  # ~1 ms: a checkpoint after nearly every batch
    p = subprocess.Popen([str(EXE), *args, '--out', str(out)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline, ck = time.time() + 300, None
    while time.time() < deadline:  # wait for a checkpoint taken inside epoch 1, then kill
        try: ck = torch.load(out/'checkpoint.pt', weights_only=False) if (out/'checkpoint.pt').exists() else None
        except Exception: ck = None  # (being replaced)
        if ck is not None and ck.get('iter') and ck['epoch'] >= 1: break
        assert p.poll() is None, p.stderr.read().decode()
        time.sleep(0.01)
    os.kill(p.pid, signal.SIGKILL); p.wait()
    ck = torch.load(out/'checkpoint.pt', weights_only=False)
    assert ck.get('iter') and 0 < ck['iter'] < 26, ck.get('iter')   # inside an epoch of 26 batches
    r = run(args + ['--out', str(out), '--resume'])
    assert r.returncode == 0, r.stderr
    assert f"in epoch {ck['epoch']} after batch {ck['iter']}" in r.stdout, r.stdout
    assert_same_run(out, reference)  # train_loss (the exact epoch mean) and the diagnostics included


def test_progress_lines_and_help(tmp_path):
    "Not on a terminal, a plain progress line every --progress-every seconds; --help says each default once."
    r = run(['--dataset', 'digits', '--device', 'cpu', '--epochs', '1', '--progress-every', '0.01', '--out', str(tmp_path/'run')])
    assert r.returncode == 0, r.stderr
    lines = [l for l in r.stdout.splitlines() if l.startswith('epoch 0 (of 0..0)  batch ')]  # numbered as the table's rows
    assert len(lines) >= 3 and 'loss ' in lines[0] and 'epoch ends in ~' in lines[0], r.stdout
    assert all(l.endswith(' s') for l in lines), lines  # a short epoch's end in seconds, not '~0.0 min'
    done = [int(l.split()[5].split('/')[0]) for l in lines]
    assert done == sorted(done) and all(l.split()[5].endswith('/26') for l in lines)
    r2 = run(['--dataset', 'digits', '--device', 'cpu', '--epochs', '2', '--progress-every', '0.01', '--out', str(tmp_path/'run2')])
    first = [l for l in r2.stdout.splitlines() if l.startswith('epoch 0 (of 0..1)  batch ')]
    last = [l for l in r2.stdout.splitlines() if l.startswith('epoch 1 (of 0..1)  batch ')]
    assert first and all(', run in ~' in l for l in first), r2.stdout         # with epochs to come: the whole run's end too
    assert last and not any('run in' in l for l in last), r2.stdout            # in the last epoch, the epoch's end is the run's
    h = run(['--help']).stdout
    assert all(b.count('default') <= 1 for b in h.split('\n  --')), h
    assert '(default: None)' not in h and '(default: False)' not in h
    assert '--accept-modified-data' in h and '--checkpoint-every' in h


def test_divergence_exits_3_with_the_hint(tmp_path):
    r = run(['--dataset', 'digits', '--device', 'cpu', '--opt', 'sgd', '--lr', '1e6', '--out', str(tmp_path/'run')])
    assert r.returncode == 3, (r.stdout, r.stderr)
    assert 'drmm-train: diverged: Training diverged at epoch 0, batch' in r.stderr and 'Lower the learning rate' in r.stderr
    m = json.loads((tmp_path/'run'/'metrics.json').read_text(), parse_constant=lambda c: 1 / 0)
    assert m['status'] == 'diverged'


def test_unwritable_out_and_missing_gpu_are_refused_before_loading(tmp_path):
    f = tmp_path/'a-file'; f.write_text('')
    r = run(['--dataset', 'digits', '--device', 'cpu', '--out', str(f/'run')])
    assert r.returncode == 2 and 'cannot be written to' in r.stderr and 'Traceback' not in r.stderr, r.stderr
    import torch
    if not torch.cuda.is_available():
        r = run(['--dataset', 'digits', '--device', 'cuda', '--out', str(tmp_path/'run')])
        assert r.returncode == 2 and 'no CUDA GPU is available here' in r.stderr, r.stderr
    r = run(['--dataset', 'digits', '--device', 'tpu9', '--out', str(tmp_path/'run')])
    assert r.returncode == 2 and 'is not a device name' in r.stderr, r.stderr


def test_ctrl_c_says_how_to_resume(tmp_path):
    out = tmp_path/'run'
    # as from a terminal: SIGINT handled by default (a shell that starts a job with '&' makes its children ignore it)
    p = subprocess.Popen([str(EXE), *ARGS, '--epochs', '20', '--out', str(out)], stdout=subprocess.DEVNULL,
                         stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    deadline = time.time() + 300
    while time.time() < deadline and not ((out/'checkpoint.pt').exists() and (out/'metrics.json').exists()):  # (written in turn)
        assert p.poll() is None, p.stderr.read()
        time.sleep(0.05)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert 'drmm-train: interrupted' in err and '--resume' in err and 'Traceback' not in err, err
    assert json.loads((out/'metrics.json').read_text())['status'] == 'running'


def test_own_folder_trains_beats_supervised_and_predicts(tmp_path):
    "Your own images: drmm-train --dataset folder --data-dir DIR; the model it saves predicts on a PNG path."
    from drmm_nb.data import load_digits
    from drmm_nb.folders import write_folder
    d = write_folder(load_digits(), tmp_path/'digits', n_labeled_per_class=5)  # 50 labeled, 1,297 unlabeled PNGs
    common = ['--dataset', 'folder', '--data-dir', str(d), '--device', 'cpu', '--epochs', '10']
    r = run(common + ['--out', str(tmp_path/'drmm'), '--resume'])
    assert r.returncode == 0, r.stderr
    assert 'holds no checkpoint yet, so the run starts from the beginning' in r.stdout, r.stdout
    s = run(common + ['--supervised-only', '--out', str(tmp_path/'sup')])
    assert s.returncode == 0, s.stderr
    m, ms = (json.loads((tmp_path/n/'metrics.json').read_text()) for n in ('drmm', 'sup'))
    assert m['config']['data']['dataset'] == 'folder' and m['config']['data']['n_labeled'] is None and m['labeled']['n_labeled'] == 50
    assert m['final']['test_error'] < ms['final']['test_error'], (m['final'], ms['final'])
    from fastai.learner import load_learner
    learn = load_learner(tmp_path/'drmm'/'model.pkl')
    one = sorted((d/'test'/'7').glob('*.png'))[0]
    label, idx, probs = learn.predict(one)
    assert label in learn.dls.vocab and label == learn.dls.vocab[int(idx)] and abs(float(probs.sum()) - 1) < 1e-5


def test_refused_runs_leave_no_folder(tmp_path):
    "Bad input: exit 2, one line naming the problem, and no empty --out folder left behind."
    cases = [(['--dataset', 'digits', '--epochs', '-1'], 'epochs=-1 (--epochs): at least 1'),
             (['--dataset', 'folder'], "dataset 'folder' needs data_dir (--data-dir)"),
             (['--dataset', 'folder', '--data-dir', str(tmp_path/'nowhere')], 'is not a folder'),
             (['--dataset', 'folder', '--data-dir', str(tmp_path)], 'has no train/ folder'),
             (['--dataset', 'digits', '--size', '8'], "size and valid_pct apply to dataset 'folder'")]
    for i, (args, msg) in enumerate(cases):
        out = tmp_path/f'out{i}'
        r = run(args + ['--device', 'cpu', '--out', str(out)])
        assert r.returncode == 2 and msg in r.stderr and 'Traceback' not in r.stderr, (args, r.stderr)
        assert not out.exists(), args
    r = run(['--dataset', 'digits', '--out', ''])
    assert r.returncode == 2 and 'out is empty' in r.stderr, r.stderr


def test_overwrite_that_cannot_delete_says_so(tmp_path, monkeypatch):
    from drmm_nb import cli
    out = tmp_path/'run'
    cli.train(['--dataset', 'digits', '--device', 'cpu', '--epochs', '1', '--out', str(out)])
    real = Path.unlink
    def unlink(self, *a, **k):
        if self.name == 'metrics.json': raise PermissionError(13, 'Permission denied')
        return real(self, *a, **k)
    monkeypatch.setattr(Path, 'unlink', unlink)
    with pytest.raises(ValueError, match=r"--overwrite cannot replace .*metrics.json \(Permission denied\)"):
        cli.train(['--dataset', 'digits', '--device', 'cpu', '--epochs', '1', '--out', str(out), '--overwrite'])


def test_ctrl_c_before_the_first_checkpoint_says_nothing_to_resume(tmp_path):
    shared = Path(__file__).resolve().parents[2]/'shared'/'data'/'mnist'
    out = tmp_path/'run'
    p = subprocess.Popen([str(EXE), '--dataset', 'mnist', '--data-dir', str(shared), '--device', 'cpu', '--epochs', '1',
                          '--checkpoint-every', '0', '--resume', '--out', str(out)], stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    line = p.stdout.readline()  # said once the data is loaded, before training starts
    assert 'holds no checkpoint yet' in line, (line, p.stderr.read() if p.poll() is not None else '')
    time.sleep(2)  # inside MNIST's first epoch (minutes long): no checkpoint yet
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err
    assert 'interrupted before the first checkpoint: there is nothing to resume' in err and '--resume' not in err, err
    assert 'Traceback' not in err and not out.exists(), err


def test_any_size_colour_folder_trains_with_defaults(tmp_path):
    "Folders of 64x64 colour PNGs and of 100x80 ones (scaled to 28 px on the longer side) train with default options."
    import numpy as np
    from PIL import Image
    from drmm_nb.data import load_digits, drmm_dataloaders
    from drmm_nb.folders import digit_folder, load_folder
    from drmm_nb.learner import drmm_learner
    from drmm_nb.options import FOLDER_AUGMENT
    p64 = digit_folder(load_digits(), tmp_path/'c64', n_labeled_per_class=2, n_unlabeled=40, n_test=20, colour=True, canvas=64)
    r = run(['--dataset', 'folder', '--data-dir', str(p64), '--epochs', '1', '--out', str(tmp_path/'o64')])
    assert r.returncode == 0, r.stderr
    m = json.loads((tmp_path/'o64'/'metrics.json').read_text())
    assert (m['config']['model']['arch'], m['config']['data']['augment'], m['status']) == ('conv_small', FOLDER_AUGMENT, 'finished')
    assert m['config']['fit']['bs'] == 100
    big, rng = tmp_path/'big', np.random.default_rng(0)
    for part, n in (('train/a', 4), ('train/b', 4), ('unlabeled', 10), ('test/a', 2), ('test/b', 2)):
        (big/part).mkdir(parents=True)
        for i in range(n): Image.fromarray(rng.integers(0, 256, (100, 80, 3), dtype=np.uint8)).save(big/part/f'{i}.jpg')
    r = run(['--dataset', 'folder', '--data-dir', str(big), '--epochs', '1', '--out', str(tmp_path/'obig')])   # 18 images: bs 36
    assert r.returncode == 0, r.stderr
    assert 'The images are 100x80: resized to 28x20 (larger than 28 px on a side: scaled down, the aspect kept)' in r.stderr, r.stderr
    arrays = load_folder(big)                                  # the same through Python
    assert arrays.x_train.shape == (18, 3, 28, 20)
    dls = drmm_dataloaders(arrays, n_labeled=None, device='cpu')  # defaults: the folder's augmentation, a batch that fits
    assert dls.train.bs == 36 and len(dls.train.after_batch) == (FOLDER_AUGMENT != 'none')
    learn = drmm_learner(dls)
    with learn.no_bar(), learn.no_logging(): learn.fit(1, 1e-3)
    assert learn.model.name == 'conv_small' and 0 <= learn.validate()[1] <= 1

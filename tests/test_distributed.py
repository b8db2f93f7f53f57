"""`drmm-train` under `torchrun` with 2 CPU processes (gloo): one model, one `metrics.json`, identical replicas, exact resume
after a killed rank, and no process left behind by a kill or Ctrl-C. The batch and update identities are in
nbs/12_distributed.ipynb."""
import json, os, signal, subprocess, sys, time
from pathlib import Path
import pytest

psutil = pytest.importorskip('psutil')  # installed with accelerate

EXE = Path(sys.executable).with_name('drmm-train')
TORCHRUN = [sys.executable, '-m', 'torch.distributed.run', '--standalone', '--nproc_per_node', '2']
ARGS = ['--dataset', 'digits', '--epochs', '3', '--device', 'cpu', '--seed', '2', '--diag-every', '5']
ENV = dict(os.environ, OMP_NUM_THREADS='1')
WAIT = 120  # seconds: the longest any step here may take before the test fails instead of hanging


def torchrun(args, **kw):
    return subprocess.run([*TORCHRUN, str(EXE), *args], capture_output=True, text=True, timeout=600, env=ENV, **kw)


def start(args):
    "torchrun in its own session (so that Ctrl-C can go to the whole group, as from a terminal)."
    return subprocess.Popen([*TORCHRUN, str(EXE), *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env=ENV, start_new_session=True)


def workers(p, n=2):
    "The drmm-train processes torchrun started, by rank."
    deadline = time.time() + WAIT
    while time.time() < deadline:
        kids = [k for k in psutil.Process(p.pid).children(recursive=True) if 'RANK' in k.environ()]
        if len(kids) == n: return {int(k.environ()['RANK']): k for k in kids}
        time.sleep(0.05)
    raise AssertionError('torchrun did not start 2 workers')


def wait_for_checkpoint(p, out):
    deadline = time.time() + WAIT
    while time.time() < deadline and not (out/'checkpoint.pt').exists():
        assert p.poll() is None, p.stderr.read()
        time.sleep(0.05)
    assert (out/'checkpoint.pt').exists(), 'no checkpoint within the time limit'


def left_behind(procs):
    "The processes of `procs` still running (zombies count as gone)."
    deadline = time.time() + 30
    while time.time() < deadline:
        alive = [q for q in procs if q.is_running() and q.status() != psutil.STATUS_ZOMBIE]
        if not alive: return []
        time.sleep(0.1)
    return alive


def rows(path):
    m = json.loads((path/'metrics.json').read_text())
    return m, [{k: v for k, v in r.items() if k not in ('elapsed_s', 'train_loss_smooth')} for r in m['epochs']]


@pytest.fixture(scope='module')
def reference(tmp_path_factory):
    out = tmp_path_factory.mktemp('dist')/'run'
    r = torchrun(ARGS + ['--out', str(out)])
    assert r.returncode == 0, r.stderr
    return out, r


def test_two_processes_train_one_model(reference):
    out, r = reference
    assert sorted(f.name for f in out.iterdir()) == ['checkpoint.pt', 'metrics.json', 'model.pkl', 'reconstructions.png']
    m = json.loads((out/'metrics.json').read_text())
    assert m['status'] == 'finished' and len(m['epochs']) == 3
    assert m['distributed'] == dict(world_size=2, backend='gloo', sync_bn=False, global_bs=100, per_rank_bs=50,
                                    replicas_identical=True)
    assert m['config']['fit']['bs'] == 100 and m['config']['fit']['sync_bn'] is False
    assert 0 <= m['final']['test_error'] < 0.5  # 3 epochs on the digits: well below chance (0.9)
    assert m['epochs'][-1]['error_rate'] == m['final']['test_error']  # the same test set, the same model, once
    assert r.stdout.count('test error') == 1 and r.stdout.count('train_loss') == 1  # rank 0 alone prints


def test_killed_rank_ends_the_run_and_resume_is_exact(reference, tmp_path):
    out = tmp_path/'run'
    p = start(ARGS + ['--out', str(out)])
    ranks = workers(p)
    wait_for_checkpoint(p, out)
    ranks[1].kill()  # SIGKILL, within 50 ms of epoch 0's checkpoint: inside epoch 1
    t = time.time()
    _, err = p.communicate(timeout=WAIT)
    assert time.time() - t < 60, 'the run took too long to end after a rank was killed'
    assert p.returncode != 0
    # torchrun names the first rank it sees fail and how: the killed one (SIGKILL), or, in a race seen under load, its
    # peer, which aborts (SIGABRT, exitcode -6) when the killed rank's connection drops
    assert 'FAILED' in err and ('SIGKILL' in err or 'exitcode: -6' in err), err
    assert left_behind(list(ranks.values())) == []
    m, done = rows(out)
    assert m['status'] == 'running' and 1 <= len(done) < 3, (m['status'], len(done))
    r = torchrun(ARGS + ['--out', str(out), '--resume'])
    assert r.returncode == 0, r.stderr
    assert r.stdout.count('Resuming') == 1
    (m_ref, ref), (m_res, res) = rows(reference[0]), rows(out)
    assert m_res['status'] == 'finished' and m_res['distributed'] == m_ref['distributed']
    assert res == ref  # every number of every epoch, diagnostics included, exactly
    assert m_res['final'] == m_ref['final']


def test_ctrl_c_stops_every_process(tmp_path):
    out = tmp_path/'run'
    p = start(ARGS + ['--epochs', '30', '--out', str(out)])
    ranks = workers(p)
    wait_for_checkpoint(p, out)
    os.killpg(p.pid, signal.SIGINT)  # what Ctrl-C in a terminal does
    _, err = p.communicate(timeout=WAIT)
    assert p.returncode != 0
    assert err.count('drmm-train: interrupted') == 1 and 'torchrun --nproc_per_node 2' in err and '--resume' in err, err
    assert left_behind(list(ranks.values())) == []
    assert json.loads((out/'metrics.json').read_text())['status'] == 'running'


def test_a_batch_two_processes_cannot_share_is_refused(tmp_path):
    r = torchrun(['--dataset', 'digits', '--device', 'cpu', '--bs', '98', '--out', str(tmp_path/'run')])
    assert r.returncode != 0
    assert 'it must be a multiple of 4' in r.stderr, r.stderr
    assert not (tmp_path/'run'/'checkpoint.pt').exists()

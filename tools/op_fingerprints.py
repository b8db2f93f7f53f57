"""Bit fingerprints of the CPU operations a DRMM training step uses, to find which one computes differently on two
machines, and whether a candidate pin makes them agree. Run it on each machine with the same torch build and compare:

    python tools/op_fingerprints.py --portable > results/op_fingerprints/<vendor>-family<F>-model<M>-portable.json
    python tools/op_fingerprints.py --compare results/op_fingerprints/A.json results/op_fingerprints/B.json

--portable sets ATEN_CPU_CAPABILITY=avx2 and MKL_CBWR=COMPATIBLE before torch loads, and turns oneDNN and NNPACK off
(the package's portable mode). Each entry is the SHA-256 (16 hex digits) of an op's output, and of its input gradient
for ops with a backward, on seeded inputs, one thread. Two machines agree on an op when the hashes are equal.

Beyond the shared tool's entries (../shared/tools/op_fingerprints.py; the same names and inputs, so files of both
compare), the `pin:` entries test the candidate pin for the one op found to differ between vendors, float32 `sqrt`
(ATen hands it to MKL's vsSqrt, which MKL_CBWR does not pin): the square root taken in float64 and rounded to float32
(correctly rounded whatever the vendor, since float64 carries more than twice float32's digits), and Adam's step with
that square root. `exact:` entries say whether float32 sqrt is correctly rounded on this machine. A machine of another
vendor whose `pin:` entries equal these proves the pin; until then the package promises portable bits only within
`drmm_nb.machine.PORTABLE_GROUPS`.
"""
import argparse, hashlib, json, os, sys

def _cpu():
    "vendor, family, model, model name and flags of the first processor of /proc/cpuinfo."
    info = {}
    try:
        for line in open('/proc/cpuinfo'):
            if not line.strip(): break
            k, _, v = line.partition(':'); info.setdefault(k.strip(), v.strip())
    except OSError: pass
    flags = info.get('flags', '').split()
    return dict(name=info.get('model name'), vendor=info.get('vendor_id'), family=info.get('cpu family'),
                model=info.get('model'), flags=[f for f in flags if f.startswith(('avx', 'amx', 'fma'))])

def compare(a:str, b:str)->int:
    x, y = (json.load(open(p)) for p in (a, b))
    print('A:', x.get('_machine')); print('B:', y.get('_machine'))
    ops = [k for k in x if not k.startswith('_') and k in y]
    only = sorted(set(k for k in x if not k.startswith('_')) ^ set(k for k in y if not k.startswith('_')))
    diff = [k for k in ops if x[k] != y[k]]
    print(f"{len(ops) - len(diff)} of {len(ops)} fingerprints agree; differ: {', '.join(diff) or 'none'}")
    if only: print(f"in one file only (not compared): {', '.join(only)}")
    pins = [k for k in ops if k.startswith('pin:')]
    if pins: print(f"the candidate pin: {sum(x[k] == y[k] for k in pins)} of {len(pins)} of its entries agree")
    return 1 if diff else 0

def fingerprints(portable:bool)->dict:
    if portable: os.environ.update(ATEN_CPU_CAPABILITY='avx2', MKL_CBWR='COMPATIBLE')
    import torch, torch.nn.functional as F
    torch.set_num_threads(1)
    if portable: torch.backends.mkldnn.enabled = False; torch.backends.nnpack.set_flags(False)
    out = {}
    def h(t): return hashlib.sha256(t.detach().contiguous().float().numpy().tobytes()).hexdigest()[:16]
    def rec(name, f, *xs):
        xs = [x.clone().requires_grad_(x.is_floating_point()) for x in xs]
        y = f(*xs); out[name] = h(y)
        if y.requires_grad:
            g = torch.randn_like(y, generator=torch.Generator().manual_seed(7))
            gs = torch.autograd.grad(y, [x for x in xs if x.requires_grad], g)
            out[name + '.grad'] = h(torch.cat([t.flatten() for t in gs]))
    g = torch.Generator().manual_seed(0)
    r = lambda *s: torch.randn(*s, generator=g)
    x, w, b = r(100, 32, 14, 14), r(64, 32, 3, 3) * .1, r(64)
    for cl in (False, True):
        sfx = '.channels_last' if cl else ''
        xx = x.contiguous(memory_format=torch.channels_last) if cl else x
        rec('conv2d' + sfx, lambda x, w, b: F.conv2d(x, w, b, padding=1), xx, w, b)
        rec('conv2d_valid' + sfx, lambda x, w: F.conv2d(x, w), xx, w)
        rec('conv_transpose2d' + sfx, lambda y, w: F.conv_transpose2d(y, w, padding=1), r(100, 64, 14, 14), w)
        rec('batch_norm_train' + sfx, lambda x: F.batch_norm(x, None, None, training=True), xx)
        rec('max_pool2d' + sfx, lambda x: F.max_pool2d(x, 2), xx)
    rec('relu', F.relu, x); rec('leaky_relu', lambda x: F.leaky_relu(x, .1), x)
    rec('linear', F.linear, r(100, 192), r(10, 192), r(10))
    rec('avg_pool2d', lambda x: F.avg_pool2d(x, 2), x)
    rec('adaptive_avg_pool2d', lambda x: F.adaptive_avg_pool2d(x, 1), x)
    rec('log_softmax', lambda z: F.log_softmax(z, 1), r(100, 10))
    rec('softmax_entropy', lambda z: -(F.softmax(z, 1) * F.log_softmax(z, 1)).sum(1).mean(), r(100, 10))
    rec('cross_entropy', lambda z: F.cross_entropy(z, torch.arange(100) % 10), r(100, 10))
    rec('mse', lambda a, b: F.mse_loss(a, b), r(100, 1, 28, 28), r(100, 1, 28, 28))
    sqrt64 = lambda v: v.double().sqrt().float()  # the candidate pin: correctly rounded on any vendor
    for n in (7, 31, 1000, 100003):
        v = r(n)
        rec(f'exp[{n}]', torch.exp, v); rec(f'log[{n}]', lambda v: torch.log(v.abs() + 1), v)
        rec(f'tanh[{n}]', torch.tanh, v); rec(f'sum[{n}]', torch.sum, v); rec(f'sqrt[{n}]', lambda v: (v.abs() + 1).sqrt(), v)
        rec(f'pin:sqrt_f64[{n}]', lambda v: sqrt64(v.abs() + 1), v)
        a = (v.abs() + 1).detach()
        out[f'exact:sqrt[{n}]'] = f"{int((a.sqrt() != sqrt64(a)).sum())} of {n} not correctly rounded"
    m = torch.nn.Conv2d(32, 64, 3, padding=1); torch.manual_seed(0); m.reset_parameters()
    opt = torch.optim.Adam(m.parameters(), 1e-3)
    for _ in range(3):
        opt.zero_grad(); m(x).square().mean().backward(); opt.step()
    out['adam_3_steps'] = h(torch.cat([p.flatten() for p in m.parameters()]))
    # Adam written out (as torch.optim.Adam's defaults compute it) with the square root in float64
    m = torch.nn.Conv2d(32, 64, 3, padding=1); torch.manual_seed(0); m.reset_parameters()
    st = [(torch.zeros_like(p), torch.zeros_like(p)) for p in m.parameters()]
    for t in range(1, 4):
        m.zero_grad(); m(x).square().mean().backward()
        with torch.no_grad():
            for p, (ea, es) in zip(m.parameters(), st):
                ea.lerp_(p.grad, 0.1); es.mul_(0.999).addcmul_(p.grad, p.grad, value=0.001)
                den = sqrt64(es) / (1 - 0.999 ** t) ** 0.5 + 1e-8
                p.addcdiv_(ea, den, value=-1e-3 / (1 - 0.9 ** t))
    out['pin:adam_3_steps_f64sqrt'] = h(torch.cat([p.flatten() for p in m.parameters()]))
    out['_machine'] = dict(cpu=_cpu(), torch=torch.__version__, portable=portable,
                           aten=torch.backends.cpu.get_cpu_capability(), mkldnn=torch.backends.mkldnn.enabled)
    return out

def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n\n')[0])
    ap.add_argument('--portable', action='store_true', help="the package's portable mode")
    ap.add_argument('--compare', nargs=2, metavar=('A.json', 'B.json'), help='compare two files; exit 1 if any entry differs')
    a = ap.parse_args()
    if a.compare: return compare(*a.compare)
    json.dump(fingerprints(a.portable), sys.stdout, indent=1); print()
    return 0

if __name__ == '__main__':
    sys.exit(main())

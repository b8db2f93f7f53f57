"""Two measurements behind the top-down pass's fast path (02_layers, "The fast configurations"), on one CPU thread.

    python bench/top_down_ops.py                 # both, batch 100, every rendering layer of ConvSmall and ConvLarge
    python bench/top_down_ops.py --quick         # a smoke test (batch 4, one repetition)

1. Each rendering layer's transposed convolution (`conv_transpose2d`, forward + backward with respect to the input and
   the templates) against the same map computed as a convolution with the flipped, transposed templates (unpadded for
   a 'full' layer), in fp32 and bf16, contiguous and channels-last.
2. One elementwise operation (`threshold_backward`, the mask) on a ConvSmall activation whose two inputs share a memory
   format, against the same operation with one input channels-last and the other contiguous.
Read the ratios: they compare two things measured one right after the other.
"""
from __future__ import annotations
import argparse, json, statistics, time
from pathlib import Path
import torch
import torch.nn.functional as F
from drmm_nb.layers import conv_small, conv_large

CL = torch.channels_last


def median_ms(f, reps:int)->float:
    f()
    ts = []
    for _ in range(reps):
        t = time.perf_counter(); f(); ts.append(time.perf_counter() - t)
    return 1e3 * statistics.median(ts)


def render_layers(bs:int):
    "(architecture, layer index, z shape, template shape, padding, mode) of every rendering layer but the class layer."
    out = []
    for arch, make, (c, h, w) in (('conv_small', conv_small, (1, 28, 28)), ('conv_large', conv_large, (3, 32, 32))):
        m = make()
        for i, layer in enumerate(m.layers[:-1]):
            d = 2 * layer.padding - layer.conv.k + 1
            out.append((arch, i + 1, (bs, layer.conv.n_out, h + d, w + d), tuple(layer.weight.shape), layer.padding, layer.conv.mode))
            h, w = layer.out_size(h, w)
    return out


def time_render(zs, ws, p, cl:bool, dtype, reps:int)->dict:
    z = torch.randn(zs, dtype=dtype)
    if cl: z = z.contiguous(memory_format=CL)
    z.requires_grad_(True)
    W = torch.randn(ws, dtype=dtype, requires_grad=True)
    k = ws[-1]
    out = F.conv_transpose2d(z.detach(), W.detach(), padding=p)
    g = torch.randn_like(out)
    def transposed(): F.conv_transpose2d(z, W, padding=p).backward(g)
    def flipped():
        w = W.transpose(0, 1).flip(-2, -1).contiguous(memory_format=CL if cl else torch.contiguous_format)
        F.conv2d(z, w, padding=k - 1 - p).backward(g)
    t, f = median_ms(transposed, reps), median_ms(flipped, reps)
    return dict(transposed_ms=t, flipped_ms=f, speedup=t / f)


def time_mask(shape, dtype, reps:int)->dict:
    z, h = torch.randn(shape, dtype=dtype), torch.randn(shape, dtype=dtype).relu()
    zc, hc = z.contiguous(memory_format=CL), h.contiguous(memory_format=CL)
    tb = torch.ops.aten.threshold_backward
    same = median_ms(lambda: tb(zc, hc, 0.), reps)
    mixed = median_ms(lambda: tb(zc, h, 0.), reps)
    return dict(same_ms=same, mixed_ms=mixed, ratio=mixed / same)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--bs', type=int, default=100)
    p.add_argument('--reps', type=int, default=7)
    p.add_argument('--quick', action='store_true')
    p.add_argument('--json', default=None)
    a = p.parse_args(argv)
    if a.quick: a.bs, a.reps = 4, 1
    torch.set_num_threads(1)
    res = dict(bs=a.bs, reps=a.reps, torch=torch.__version__, render=[], mask=[])
    print(f"1 thread, batch {a.bs}, median of {a.reps}; forward + backward of each rendering layer (ms):")
    for arch, i, zs, ws, pad, mode in render_layers(a.bs):
        if ws[-1] == 1: continue  # a 1x1 layer: the two are the same computation
        for cl in (False, True):
            for dt in (torch.float32, torch.bfloat16):
                r = dict(arch=arch, layer=i, mode=mode, z=zs, w=ws, channels_last=cl, dtype=str(dt).split('.')[-1],
                         **time_render(zs, ws, pad, cl, dt, a.reps))
                res['render'].append(r)
                print(f"  {arch} layer {i} ({mode:5s}, {ws[1]:3d} <- {ws[0]:3d} channels) {'channels-last' if cl else 'contiguous':13s} "
                      f"{r['dtype']:8s}: transposed {r['transposed_ms']:8.2f}   flipped {r['flipped_ms']:8.2f}   "
                      f"speed-up of flipped {r['speedup']:.2f}x", flush=True)
    print("the mask (threshold_backward) on a channels-last activation, other input in the same or the other format (ms):")
    for shape in ((a.bs, 32, 16, 16), (a.bs, 64, 14, 14), (a.bs, 32, 32, 32)):
        for dt in (torch.float32, torch.bfloat16):
            r = dict(shape=shape, dtype=str(dt).split('.')[-1], **time_mask(shape, dt, 5 * a.reps))
            res['mask'].append(r)
            print(f"  {str(shape):18s} {r['dtype']:8s}: same format {r['same_ms']:6.2f}   mixed {r['mixed_ms']:6.2f}   "
                  f"ratio {r['ratio']:.1f}", flush=True)
    if a.json: Path(a.json).write_text(json.dumps(res, indent=1))
    return res


if __name__ == '__main__':
    main()

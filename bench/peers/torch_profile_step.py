"""Peer for bench/profile-step: one Inception-V3 training step of PyTorch on one CPU thread, timed
as a whole and then op by op with torch.autograd.profiler.

The step is bench/peers/torch_inception_step.py's (torchvision's Inception-V3, random weights, no
auxiliary head, cross-entropy with label smoothing 0.1, RMSProp). Each op's self time is charged
to the phase (forward, backward, update) whose record_function range it ran in. Prints one JSON
line per size: the median of the plain steps, the phases' wall time and the ops of the profiled
steps (per step). Not part of hpctrain.
"""
import argparse
import json
import os
import statistics
import sys
import time

for variable in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
    os.environ.setdefault(variable, '1')

import torch  # noqa: E402
from torch.autograd import profiler  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_inception_step import parse_list, step_setup  # noqa: E402

PHASES = ('forward', 'backward', 'update')


def profile_size(size, batch, warmup, steps, profiled_steps, seed):
    model, optimizer, criterion, images, labels = step_setup(size, batch, seed)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with profiler.record_function('phase::forward'):
            loss = criterion(model(images), labels)
        with profiler.record_function('phase::backward'):
            loss.backward()
        with profiler.record_function('phase::update'):
            optimizer.step()
        return float(loss)

    for _ in range(warmup):
        step()
    steps_ms = []
    for _ in range(steps):
        started = time.perf_counter()
        step()
        steps_ms.append((time.perf_counter() - started) * 1000.0)
    with profiler.profile(record_shapes=True) as prof:
        for _ in range(profiled_steps):
            step()

    phases = {phase: 0.0 for phase in PHASES}
    ops = {}
    for event in prof.function_events:
        if event.name.startswith('phase::'):
            phases[event.name[len('phase::'):]] += event.cpu_time_total / 1000.0
            continue
        phase, parent = phase_of(event)
        shape = ' '.join('x'.join(str(d) for d in s) for s in (event.input_shapes or []) if s)
        key = (phase, event.name, parent, shape)
        op = ops.setdefault(key, {'phase': phase, 'kernel': event.name, 'parent': parent, 'shape': shape, 'calls': 0, 'selfMs': 0.0})
        op['calls'] += 1
        op['selfMs'] += event.self_cpu_time_total / 1000.0
    per = float(profiled_steps)
    for op in ops.values():
        op['calls'] /= per
        op['selfMs'] /= per
    return {
        'backend': 'torch-cpu-1thread', 'batch': batch, 'size': size, 'stepMs': steps_ms,
        'phaseMs': {phase: ms / per for phase, ms in phases.items()}, 'kernels': list(ops.values()),
        'loaded': f'torch {torch.__version__} on {torch.get_num_threads()} thread(s)', 'threads': torch.get_num_threads(),
    }


def phase_of(event):
    """The phase range an op ran in, and the outermost op above it (its autograd node in backward)."""
    parent = ''
    node = event.cpu_parent
    while node is not None:
        if node.name.startswith('phase::'):
            return node.name[len('phase::'):], parent
        parent = node.name
        node = node.cpu_parent
    return 'other', parent


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=parse_list, default=[139])
    parser.add_argument('--batch', type=int, default=8)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--steps', type=int, default=3, help='plain timed steps; step_ms is their median')
    parser.add_argument('--profiled-steps', type=int, default=1)
    parser.add_argument('--seed', type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(1)
    for size in args.sizes:
        report = profile_size(size, args.batch, args.warmup, args.steps, args.profiled_steps, args.seed)
        report['medianStepMs'] = statistics.median(report['stepMs'])
        print(json.dumps(report), flush=True)


if __name__ == '__main__':
    sys.exit(main())

"""Peer for bench/step: one Inception-V3 training step in PyTorch on one CPU thread.

For each size and batch given, builds torchvision's Inception-V3 (random weights, no auxiliary
head, 1000 classes), makes one batch of random images and labels, and times whole training steps:
forward, cross-entropy with label smoothing 0.1, backward, RMSProp update with the recipe's
settings (lr 0.045 x batch / 1600, decay 0.9, momentum 0.9, epsilon 1.0). Prints one JSON line per
configuration with the median of the timed steps. Run by bench/step.ts with /usr/bin/python3
(Debian's python3-torch and python3-torchvision); not part of hpctrain.

Differences from hpctrain's model that a reader of the figures should know: torchvision's
Inception-V3 has batch norm with a learned scale (hpctrain's, like Keras's, has none) and dropout
0.5 before the classifier; PyTorch is NCHW, tfjs NHWC.
"""
import argparse
import json
import os
import statistics
import sys
import time

# One thread, as the comparison asks, before torch starts its pools; the bench sets these in the
# environment too, which is what OpenMP and MKL read when they load.
for variable in ('OMP_NUM_THREADS', 'MKL_NUM_THREADS', 'OPENBLAS_NUM_THREADS'):
    os.environ.setdefault(variable, '1')

import torch  # noqa: E402
import torchvision  # noqa: E402

MIN_SIZE = 75  # torchvision's Inception-V3 has nothing left to convolve below this
NUM_CLASSES = 1000


def parse_list(text):
    values = [int(item) for item in text.split(',')]
    if any(v < 1 for v in values):
        raise argparse.ArgumentTypeError(f'"{text}" is not a list of positive integers')
    return values


def build_model():
    # torchvision 0.13+ takes weights=None; 0.12 and older took pretrained=False.
    try:
        model = torchvision.models.inception_v3(weights=None, aux_logits=False, init_weights=True)
    except TypeError:
        model = torchvision.models.inception_v3(pretrained=False, aux_logits=False, init_weights=True)
    model.transform_input = False
    return model.train()


def step_setup(size, batch, seed):
    """The model, the paper's RMSProp, the loss and one synthetic batch, as hpctrain's step benchmark has them."""
    torch.manual_seed(seed)
    model = build_model()
    optimizer = torch.optim.RMSprop(model.parameters(), lr=0.045 * batch / 1600, alpha=0.9, momentum=0.9, eps=1.0)
    criterion = torch.nn.CrossEntropyLoss(label_smoothing=0.1)
    images = torch.rand(batch, 3, size, size) * 2 - 1
    labels = torch.randint(0, NUM_CLASSES, (batch,))
    return model, optimizer, criterion, images, labels


def time_steps(size, batch, warmup, steps, seed):
    model, optimizer, criterion, images, labels = step_setup(size, batch, seed)
    times_ms = []
    loss = float('nan')
    for step in range(warmup + steps):
        started = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        loss = criterion(model(images), labels)
        loss.backward()
        optimizer.step()
        elapsed = (time.perf_counter() - started) * 1000.0
        if step >= warmup:
            times_ms.append(elapsed)
    return {
        'backend': 'torch-cpu-1thread', 'batch': batch, 'size': size,
        'step_ms': statistics.median(times_ms), 'steps_ms': times_ms, 'warmup': warmup, 'steps': steps,
        'loss': float(loss), 'torch': torch.__version__, 'torchvision': torchvision.__version__,
        'threads': torch.get_num_threads(),
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--sizes', type=parse_list, default=[139], help='image sizes, comma-separated (at least 75)')
    parser.add_argument('--batches', type=parse_list, default=[8], help='batch sizes, comma-separated')
    parser.add_argument('--warmup', type=int, default=1, help='untimed steps first')
    parser.add_argument('--steps', type=int, default=3, help='timed steps; the figure is their median')
    parser.add_argument('--seed', type=int, default=1)
    args = parser.parse_args()
    if any(s < MIN_SIZE for s in args.sizes):
        parser.error(f'--sizes {args.sizes}: torchvision\'s Inception-V3 needs images of at least {MIN_SIZE}x{MIN_SIZE}')
    if args.steps < 1 or args.warmup < 0:
        parser.error('--steps must be at least 1 and --warmup at least 0')
    torch.set_num_threads(1)
    for size in args.sizes:
        for batch in args.batches:
            print(json.dumps(time_steps(size, batch, args.warmup, args.steps, args.seed)), flush=True)


if __name__ == '__main__':
    sys.exit(main())

"""Peer for bench/node: training throughput of torchvision's Inception-V3 on one node's cores.

One process, CPU, torch.set_num_threads(--threads) (bench/node.ts sets OMP_NUM_THREADS and
MKL_NUM_THREADS to the same, and OMP_WAIT_POLICY=PASSIVE unless told otherwise). The data are
synthetic as hpctrain's --data synthetic: one batch of random images in [-1, 1] and random labels,
made once and trained on at every step. The model and the training step are
bench/peers/torch_learn.py's (build_model, RecipeStep), with the recipe given on the command line:
bench/node.ts passes the one hpctrain printed in its summary.json, so that both take the same
optimizer (AdamW in the default recipe), decay, smoothing and schedule. Trains the first --skip +
--timed steps of the recipe's --steps, times the last --timed (the first ones carry kernel set-up
and the allocator's first requests) and prints ONE JSON line on stdout: img_per_s, the images of
the timed steps over their time, and each timed step's milliseconds. Run with /usr/bin/python3
(Debian's python3-torch 1.13 and python3-torchvision 0.14); not part of hpctrain.
"""
import argparse
import json
import statistics
import sys
import time

import torch
import torchvision

from torch_learn import MIN_SIZE, RecipeStep, add_recipe_arguments, build_model, check_recipe_arguments


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--image-size', type=int, default=299)
    p.add_argument('--batch-size', type=int, default=16, help='images per step (one process here)')
    p.add_argument('--classes', type=int, default=1000)
    p.add_argument('--threads', type=int, required=True, help='torch.set_num_threads')
    p.add_argument('--skip', type=int, default=1, help='first steps, left out of the figure')
    p.add_argument('--timed', type=int, default=3, help='steps timed after them')
    p.add_argument('--steps-per-epoch', type=int, default=1_281_167 // 16,
                   help='for a staircase schedule (hpctrain\'s synthetic epoch is ILSVRC2012\'s 1,281,167 images)')
    p.add_argument('--seed', type=int, default=1)
    add_recipe_arguments(p)
    args = p.parse_args(argv)
    if args.image_size < MIN_SIZE:
        p.error(f'--image-size {args.image_size}: torchvision\'s Inception-V3 needs at least {MIN_SIZE}')
    if min(args.batch_size, args.classes, args.threads, args.steps_per_epoch) < 1:
        p.error('--batch-size, --classes, --threads and --steps-per-epoch must be at least 1')
    check_recipe_arguments(p, args)
    if args.skip < 0 or args.timed < 1 or args.skip + args.timed > args.steps:
        p.error(f'--skip {args.skip} and --timed {args.timed}: at least 0 and 1, and together at most the schedule\'s --steps {args.steps}')
    return args


def main(argv=None):
    args = parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    model = build_model(args.classes, args.bn_momentum).train()
    train_step = RecipeStep(model, args, args.steps_per_epoch)
    images = torch.rand(args.batch_size, 3, args.image_size, args.image_size) * 2 - 1
    labels = torch.randint(0, args.classes, (args.batch_size,))
    steps_ms, losses = [], []
    for t in range(args.skip + args.timed):
        started = time.perf_counter()
        loss, _, _ = train_step(t, images, labels)
        steps_ms.append((time.perf_counter() - started) * 1000.0)
        losses.append(loss)
        print(json.dumps({'step': t + 1, 'loss': loss, 'step_ms': round(steps_ms[-1], 1)}), file=sys.stderr, flush=True)
    timed = steps_ms[args.skip:]
    print(json.dumps({
        'impl': 'torch', 'image_size': args.image_size, 'batch_size': args.batch_size, 'classes': args.classes,
        'optimizer': args.optimizer, 'schedule_steps': args.steps, 'skip': args.skip, 'timed': args.timed,
        'img_per_s': len(timed) * args.batch_size * 1000.0 / sum(timed),
        'step_ms_mean': statistics.mean(timed), 'step_ms_median': statistics.median(timed), 'steps_ms': timed,
        'first_loss': losses[0], 'last_loss': losses[-1],
        'threads': torch.get_num_threads(), 'torch': torch.__version__, 'torchvision': torchvision.__version__,
    }), flush=True)


if __name__ == '__main__':
    sys.exit(main())

"""Peer for the learning benchmark: trains torchvision's Inception-V3 on an ILSVRC-layout directory.

Single process, CPU, torch.set_num_threads(--threads). Reads DIR/train/<class>/*.JPEG and
DIR/validation/<class>/*.JPEG (or DIR/val/), trains --steps steps with the recipe given on the
command line, evaluates top-1 and top-5 on every validation image, and prints ONE JSON line on
stdout: the effective recipe, throughput, losses and accuracies. A line per --log-every steps
(and per --eval-every-steps evaluation) goes to stderr. Run with /usr/bin/python3 (Debian's
python3-torch 1.13 and python3-torchvision 0.14) by bench/learn.ts, which passes the exact
recipe hpctrain printed, so every setting is a parameter. Not part of hpctrain.

The input is hpctrain's (src/data/preprocess.ts, shard.ts, random.ts), ported: the same sfc32
generator keyed the same way, so the same --seed gives the same epoch order and the same crops.
Training: a crop of 5-100% of the area with aspect 3/4-4/3 (100 attempts, then the central box of
the nearest allowed aspect), a horizontal flip with probability 1/2, a linear resize to
size x size, RGB scaled to [-1, 1]; each epoch a seeded shuffle and only full batches
(floor(count / B) steps). Evaluation: the central 87.5% of each side, the resize, [-1, 1]. PIL
decodes (libjpeg-turbo, as libvips) and shrinks (an antialiased triangle filter, as libvips's
linear kernel); a crop that must grow is resampled as libvips does it (resize_as_libvips).
Images are decoded in the training loop, which costs a few milliseconds a batch at 128 px.

The model: torchvision's Inception-V3 with weights=None, aux_logits=False, init_weights=True
(truncated normals, std 0.1; hpctrain's are Keras's Glorot-uniform), transform_input=False,
dropout 0 (hpctrain's model, like Keras's, has none). torchvision's batch norm has a learned
scale and hpctrain's does not (a scale before a ReLU and a convolution is redundant); its
running statistics move as hpctrain's do, by 1 - min(--bn-momentum (0.99), (1+t)/(10+t)) at step t
(--no-bn-warmup: 1 - --bn-momentum, which after T steps still leaves 0.99^T of their starting
mean 0 and variance 1: 16% after 184), not by torch's 0.1.

Optimizers: rmsprop is TensorFlow's (epsilon inside the square root; mean squares and moments
start at 0), not torch.optim.RMSprop; adam and adamw are torch's; momentum is torch.optim.SGD,
whose update is tf.train.MomentumOptimizer's. --weight-decay applies to convolution and linear
weights only: as an L2 term added to their gradients before clipping (rmsprop, adam, momentum,
as TF-slim), or as AdamW's decoupled decay (adamw). --ema-decay keeps TensorFlow's
ExponentialMovingAverage with num_updates of every parameter and batch-norm statistic, and the
average is evaluated beside the trained weights.
"""
import argparse
import copy
import json
import math
import os
import re
import statistics
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image

MIN_SIZE = 75  # torchvision's Inception-V3 has nothing left to convolve below this
IMAGE_FILE = re.compile(r'\.(jpe?g|png)$', re.IGNORECASE)
MIN_AREA, MAX_AREA = 0.05, 1.0
MIN_ASPECT, MAX_ASPECT = 3 / 4, 4 / 3
CROP_ATTEMPTS = 100
EVAL_CENTRAL_FRACTION = 0.875
M32 = 0xFFFFFFFF


# ---- hpctrain's seeded randomness (src/data/random.ts), bit for bit -----------------------------

def _mix32(x):
    h = x & M32
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & M32
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & M32
    h ^= h >> 16
    return h


def create_random(*keys):
    """sfc32 whose stream depends only on keys, as createRandom(...keys): uniform in [0, 1)."""
    a, b, c = 0x9E3779B9, 0x243F6A88, 0xB7E15162
    for key in keys:
        a = _mix32(a ^ (key & M32))
        b = _mix32(b ^ ((key // 0x100000000) & M32) ^ a)
        c = _mix32(c + a + b)
    state = [a, b, c, 1]

    def next_value():
        a, b, c, d = state
        t = (a + b + d) & M32
        state[3] = (d + 1) & M32
        state[0] = b ^ (b >> 9)
        state[1] = (c + (c << 3)) & M32
        c = ((c << 21) | (c >> 11)) & M32
        state[2] = (c + t) & M32
        return t / 0x100000000

    for _ in range(12):
        next_value()
    return next_value


def random_int(random, n):
    return math.floor(random() * n)


def random_uniform(random, low, high):
    return low + (high - low) * random()


def js_round(x):
    """Math.round: halves go up (Python's round() goes to even)."""
    return math.floor(x + 0.5)


# ---- hpctrain's input (src/data/preprocess.ts, shard.ts) ----------------------------------------

def sample_train_crop(random, width, height):
    area = width * height
    for _ in range(CROP_ATTEMPTS):
        target_area = area * random_uniform(random, MIN_AREA, MAX_AREA)
        aspect = math.exp(random_uniform(random, math.log(MIN_ASPECT), math.log(MAX_ASPECT)))
        w = js_round(math.sqrt(target_area * aspect))
        h = js_round(math.sqrt(target_area / aspect))
        if w < 1 or h < 1 or w > width or h > height:
            continue
        fraction = (w * h) / area
        if fraction < MIN_AREA or fraction > MAX_AREA or w / h < MIN_ASPECT or w / h > MAX_ASPECT:
            continue
        return random_int(random, width - w + 1), random_int(random, height - h + 1), w, h
    w, h = width, height
    if width / height < MIN_ASPECT:
        h = max(1, js_round(width / MIN_ASPECT))
    elif width / height > MAX_ASPECT:
        w = max(1, js_round(height * MAX_ASPECT))
    return (width - w) // 2, (height - h) // 2, w, h


def central_crop(width, height, fraction=EVAL_CENTRAL_FRACTION):
    left = math.trunc((width - width * fraction) / 2)
    top = math.trunc((height - height * fraction) / 2)
    return left, top, width - 2 * left, height - 2 * top


def epoch_order(count, seed, epoch):
    order = list(range(count))
    random = create_random(seed, epoch)
    for i in range(count - 1, 0, -1):
        j = random_int(random, i + 1)
        order[i], order[j] = order[j], order[i]
    return order


def resize_as_libvips(image, size):
    """uint8-valued HWC floats: sharp's resize(size, size, {fit: 'fill', kernel: 'linear'}) in libvips 8.17.

    Shrinking is an antialiased triangle filter, centre-aligned, as PIL's BILINEAR. When a side
    grows, libvips first shrinks the other side, then resamples both sides bilinearly with output
    pixel x taken at input x * in / out - 0.5 (edges repeated): half an output pixel up and left
    of the centre-aligned place, and on the side already at size a [1/2, 1/2] blur.
    """
    w, h = image.size
    if w >= size and h >= size:
        return np.asarray(image.resize((size, size), Image.BILINEAR), dtype=np.float32)
    pixels = np.asarray(image.resize((min(w, size), min(h, size)), Image.BILINEAR), dtype=np.float64)
    for axis in (0, 1):
        n_in = pixels.shape[axis]
        where = np.clip(np.arange(size) * (n_in / size) - 0.5, 0, n_in - 1)
        low = np.floor(where).astype(np.int64)
        high = np.minimum(low + 1, n_in - 1)
        weight = (where - low).reshape((-1, 1, 1) if axis == 0 else (1, -1, 1))
        pixels = np.take(pixels, low, axis) * (1 - weight) + np.take(pixels, high, axis) * weight
    return np.clip(np.rint(pixels), 0, 255).astype(np.float32)


def load_image(path, size, plan):
    """CHW float32 in [-1, 1]: decoded, cropped as plan(width, height) says, resized, flipped."""
    with Image.open(path) as image:
        image = image.convert('RGB')
        (left, top, w, h), flip = plan(*image.size)
        # Cropped first: resize(box=...) would let the filter reach past the box; libvips does not.
        pixels = resize_as_libvips(image.crop((left, top, left + w, top + h)), size)
    if flip:
        pixels = pixels[:, ::-1, :]
    return np.ascontiguousarray(pixels.transpose(2, 0, 1)) / 127.5 - 1.0


def train_plan(seed, epoch, index):
    def plan(width, height):
        random = create_random(seed, epoch, index)
        crop = sample_train_crop(random, width, height)
        return crop, random() < 0.5
    return plan


def eval_plan(width, height):
    return central_crop(width, height), False


def list_split(root, split, classes):
    names = ['train'] if split == 'train' else ['validation', 'val']
    split_dir = next((os.path.join(root, n) for n in names if os.path.isdir(os.path.join(root, n))), None)
    if split_dir is None:
        sys.exit(f'torch_learn: no {split} folder in {root} (expected {" or ".join(names)}/<class>/*.JPEG)')
    paths, labels = [], []
    for folder in sorted(e.name for e in os.scandir(split_dir) if e.is_dir()):
        if folder not in classes:
            sys.exit(f'torch_learn: {split_dir}/{folder} is not one of the train/ classes')
        for name in sorted(n for n in os.listdir(os.path.join(split_dir, folder)) if IMAGE_FILE.search(n)):
            paths.append(os.path.join(split_dir, folder, name))
            labels.append(classes.index(folder))
    return paths, labels


def batch_of(paths, labels, indices, size, plan_for):
    images = np.stack([load_image(paths[i], size, plan_for(i)) for i in indices])
    return torch.from_numpy(images), torch.tensor([labels[i] for i in indices], dtype=torch.long)


# ---- model and optimizers -----------------------------------------------------------------------

def build_model(num_classes, bn_momentum):
    model = torchvision.models.inception_v3(
        weights=None, aux_logits=False, init_weights=True, transform_input=False, dropout=0.0, num_classes=num_classes)
    for module in model.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.momentum = 1.0 - bn_momentum  # torch's momentum is the weight of the new batch
    return model


def decayed_parameters(model):
    """Convolution and linear weights; not biases, not batch norm's scale and offset."""
    decayed, other = [], []
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            is_weight = name == 'weight' and isinstance(module, (torch.nn.Conv2d, torch.nn.Linear))
            (decayed if is_weight else other).append(parameter)
    return decayed, other


class TfRmsProp(torch.optim.Optimizer):
    """tf.train.RMSPropOptimizer's update: ms = rho ms + (1 - rho) g^2; mom = momentum mom + lr g / sqrt(ms + eps); p -= mom."""

    def __init__(self, params, lr, rho, momentum, eps):
        super().__init__(params, dict(lr=lr, rho=rho, momentum=momentum, eps=eps))

    @torch.no_grad()
    def step(self):
        for group in self.param_groups:
            for p in group['params']:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state['ms'] = torch.zeros_like(p)
                    state['mom'] = torch.zeros_like(p)
                ms, mom, g = state['ms'], state['mom'], p.grad
                ms.mul_(group['rho']).addcmul_(g, g, value=1 - group['rho'])
                mom.mul_(group['momentum']).addcdiv_(g, (ms + group['eps']).sqrt_(), value=group['lr'])
                p.sub_(mom)


def build_optimizer(args, decayed, other):
    everything = decayed + other
    if args.optimizer == 'rmsprop':
        return TfRmsProp(everything, args.learning_rate, args.rho, args.momentum, args.epsilon)
    if args.optimizer == 'adam':
        return torch.optim.Adam(everything, lr=args.learning_rate, betas=(args.beta1, args.beta2), eps=args.epsilon, weight_decay=0)
    if args.optimizer == 'adamw':
        groups = [{'params': decayed, 'weight_decay': args.weight_decay}, {'params': other, 'weight_decay': 0.0}]
        return torch.optim.AdamW(groups, lr=args.learning_rate, betas=(args.beta1, args.beta2), eps=args.epsilon)
    return torch.optim.SGD(everything, lr=args.learning_rate, momentum=args.momentum, nesterov=args.nesterov)


def learning_rate_at(t, args, steps_per_epoch):
    peak, warmup, total = args.learning_rate, args.warmup_steps, args.steps
    if t < warmup:
        return peak * (t + 1) / warmup
    if args.schedule == 'cosine':
        return peak * 0.5 * (1 + math.cos(math.pi * (t - warmup) / (total - warmup)))
    if args.schedule == 'staircase':
        return peak * args.decay_rate ** math.floor((t / steps_per_epoch) / args.decay_epochs)
    return peak


class MovingAverage:
    """tf.train.ExponentialMovingAverage(decay, num_updates) over every float entry of the state dict."""

    def __init__(self, model, decay):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model, n):
        decay = min(self.decay, (1 + n) / (10 + n))
        values = model.state_dict()
        for key, average in self.shadow.items():
            average.sub_((average - values[key]) * (1 - decay))

    def model_with_average(self, model):
        averaged = copy.deepcopy(model)
        averaged.load_state_dict({**averaged.state_dict(), **self.shadow})
        return averaged


class RecipeStep:
    """One training step of the recipe in args on model: the learning rate of step t, batch norm's
    warm-up, the loss, L2 or decoupled decay, the gradients' norm (clipped to --clip-norm), the
    update and the moving average; what hpctrain does in a step, so that a peer's step costs as much."""

    def __init__(self, model, args, steps_per_epoch):
        self.model, self.args, self.steps_per_epoch = model, args, steps_per_epoch
        self.bn_modules = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
        self.decayed, other = decayed_parameters(model)
        self.params = self.decayed + other
        self.optimizer = build_optimizer(args, self.decayed, other)
        self.criterion = torch.nn.CrossEntropyLoss(label_smoothing=args.label_smoothing)
        self.average = MovingAverage(model, args.ema_decay) if args.ema_decay > 0 else None
        self.coupled_l2 = args.weight_decay > 0 and args.optimizer != 'adamw'

    def __call__(self, t, images, labels):
        """Trains on one batch; returns the loss, the learning rate and the gradients' global norm."""
        args = self.args
        rate = learning_rate_at(t, args, self.steps_per_epoch)
        for group in self.optimizer.param_groups:
            group['lr'] = rate
        if args.bn_warmup:
            # hpctrain's warm-up of batch norm's moving averages (src/model/batch-norm.ts): TensorFlow's num_updates rule.
            warmed = 1.0 - min(args.bn_momentum, (1 + t) / (10 + t))
            for module in self.bn_modules:
                module.momentum = warmed
        self.optimizer.zero_grad(set_to_none=True)
        loss = self.criterion(self.model(images), labels)
        loss.backward()
        if self.coupled_l2:
            with torch.no_grad():
                for p in self.decayed:
                    p.grad.add_(p, alpha=args.weight_decay)
        if args.clip_norm > 0:
            norm = float(torch.nn.utils.clip_grad_norm_(self.params, args.clip_norm))
        else:
            norm = float(torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(p.grad) for p in self.params])))
        self.optimizer.step()
        if self.average:
            self.average.update(self.model, t)
        return float(loss), rate, norm


@torch.no_grad()
def evaluate(model, paths, labels, size, batch_size):
    was_training = model.training
    model.eval()
    top1 = top5 = 0
    k = min(5, model.fc.out_features)
    for start in range(0, len(paths), batch_size):
        images, truth = batch_of(paths, labels, range(start, min(start + batch_size, len(paths))), size, lambda _: eval_plan)
        best = model(images).topk(k, dim=1).indices
        top1 += int((best[:, 0] == truth).sum())
        top5 += int((best == truth[:, None]).any(dim=1).sum())
    model.train(was_training)
    return top1 / len(paths), top5 / len(paths)


# ---- the run ------------------------------------------------------------------------------------

def add_recipe_arguments(p):
    """The recipe's flags, which bench/figures.ts's torchRecipeArgs passes from hpctrain's summary.json."""
    p.add_argument('--steps', type=int, required=True, help='training steps T')
    p.add_argument('--optimizer', choices=['rmsprop', 'adam', 'adamw', 'momentum'], default='rmsprop')
    p.add_argument('--momentum', type=float, default=0.9, help='rmsprop and momentum')
    p.add_argument('--nesterov', action=argparse.BooleanOptionalAction, default=False, help='momentum: Nesterov')
    p.add_argument('--rho', type=float, default=0.9, help='rmsprop: decay of the mean squares')
    p.add_argument('--beta1', type=float, default=0.9)
    p.add_argument('--beta2', type=float, default=0.999)
    p.add_argument('--epsilon', type=float, default=None, help='default 1.0 for rmsprop, 1e-8 for adam and adamw')
    p.add_argument('--weight-decay', type=float, default=0.0, help='L2 on conv/linear weights; AdamW\'s decoupled decay for adamw')
    p.add_argument('--learning-rate', type=float, required=True, help='peak rate, after warm-up')
    p.add_argument('--warmup-steps', type=int, default=0)
    p.add_argument('--schedule', choices=['constant', 'cosine', 'staircase'], default='constant')
    p.add_argument('--decay-rate', type=float, default=0.94, help='staircase: multiplier')
    p.add_argument('--decay-epochs', type=float, default=2.0, help='staircase: epochs between decays')
    p.add_argument('--clip-norm', type=float, default=0.0, help='clip by global norm (0: none)')
    p.add_argument('--label-smoothing', type=float, default=0.0)
    p.add_argument('--ema-decay', type=float, default=0.0, help='moving average of the weights (0: none)')
    p.add_argument('--bn-momentum', type=float, default=0.99, help='Keras\'s batch-norm momentum, as hpctrain\'s')
    p.add_argument('--bn-warmup', action=argparse.BooleanOptionalAction, default=True,
                   help='batch norm\'s moving averages move by 1 - min(--bn-momentum, (1+t)/(10+t)) at step t, as hpctrain\'s')


def check_recipe_arguments(p, args):
    """Refuses a recipe that cannot run, and fills in the optimizer's epsilon."""
    if args.steps < 1:
        p.error('--steps must be at least 1')
    if not 0 <= args.warmup_steps <= args.steps:
        p.error(f'--warmup-steps {args.warmup_steps} is not in 0..{args.steps}')
    if args.schedule == 'cosine' and args.warmup_steps == args.steps:
        p.error('--schedule cosine needs steps after the warm-up')
    if args.epsilon is None:
        args.epsilon = 1.0 if args.optimizer == 'rmsprop' else 1e-8


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    p.add_argument('--data', required=True, help='directory with train/<class>/*.JPEG and validation/<class>/*.JPEG')
    p.add_argument('--image-size', type=int, default=75)
    p.add_argument('--batch-size', type=int, default=32, help='global batch (one process here)')
    p.add_argument('--seed', type=int, default=1, help='weights, epoch order and crops (as hpctrain --seed)')
    p.add_argument('--threads', type=int, default=2)
    add_recipe_arguments(p)
    p.add_argument('--eval-every-steps', type=int, default=0, help='also evaluate the trained weights every K steps')
    p.add_argument('--log-every', type=int, default=10)
    args = p.parse_args(argv)
    if args.image_size < MIN_SIZE:
        p.error(f'--image-size {args.image_size}: torchvision\'s Inception-V3 needs at least {MIN_SIZE}')
    if args.batch_size < 1 or args.threads < 1 or args.log_every < 1:
        p.error('--batch-size, --threads and --log-every must be at least 1')
    check_recipe_arguments(p, args)
    return args


def log(record):
    print(json.dumps(record), file=sys.stderr, flush=True)


def main(argv=None):
    args = parse_args(argv)
    started = time.perf_counter()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    classes = sorted(e.name for e in os.scandir(os.path.join(args.data, 'train')) if e.is_dir())
    train_paths, train_labels = list_split(args.data, 'train', classes)
    val_paths, val_labels = list_split(args.data, 'validation', classes)
    steps_per_epoch = len(train_paths) // args.batch_size
    if steps_per_epoch == 0:
        sys.exit(f'torch_learn: {len(train_paths)} training images make no full batch of {args.batch_size}')

    model = build_model(len(classes), args.bn_momentum).train()
    train_step = RecipeStep(model, args, steps_per_epoch)

    losses, step_seconds, evaluations = [], [], []
    eval_seconds = 0.0
    order, order_epoch = None, -1
    for t in range(args.steps):
        step_started = time.perf_counter()
        epoch, position = divmod(t, steps_per_epoch)
        if epoch != order_epoch:
            order, order_epoch = epoch_order(len(train_paths), args.seed, epoch), epoch
        indices = order[position * args.batch_size:(position + 1) * args.batch_size]
        images, labels = batch_of(train_paths, train_labels, indices, args.image_size, lambda i: train_plan(args.seed, epoch, i))
        loss, rate, norm = train_step(t, images, labels)
        losses.append(loss)
        step_seconds.append(time.perf_counter() - step_started)
        if (t + 1) % args.log_every == 0 or t == 0 or t + 1 == args.steps:
            log({'step': t + 1, 'epoch': round((t + 1) / steps_per_epoch, 3), 'loss': losses[-1], 'lr': rate,
                 'grad_norm': norm, 'step_ms': round(step_seconds[-1] * 1000, 1)})
        if args.eval_every_steps and (t + 1) % args.eval_every_steps == 0 and t + 1 < args.steps:
            eval_started = time.perf_counter()
            top1, top5 = evaluate(model, val_paths, val_labels, args.image_size, args.batch_size)
            eval_seconds += time.perf_counter() - eval_started
            evaluations.append({'step': t + 1, 'top1': top1, 'top5': top5})
            log({'eval_step': t + 1, 'top1': top1, 'top5': top5})

    eval_started = time.perf_counter()
    top1, top5 = evaluate(model, val_paths, val_labels, args.image_size, args.batch_size)
    result = {'top1': top1, 'top5': top5}
    if train_step.average:
        result['top1_ema'], result['top5_ema'] = evaluate(
            train_step.average.model_with_average(model), val_paths, val_labels, args.image_size, args.batch_size)
    eval_seconds += time.perf_counter() - eval_started
    timed = step_seconds[1:]
    print(json.dumps({
        'impl': 'torch', **{k: v for k, v in vars(args).items()},
        'classes': len(classes), 'train_images': len(train_paths), 'steps_per_epoch': steps_per_epoch,
        'epochs': args.steps / steps_per_epoch, 'steps': args.steps,
        'seconds': sum(step_seconds), 'eval_seconds': eval_seconds, 'total_seconds': time.perf_counter() - started,
        'img_per_s': (len(timed) * args.batch_size / sum(timed)) if timed else None,
        # On a shared machine the median step says what the code does, the mean what it got.
        'step_ms_median': statistics.median(timed) * 1000 if timed else None,
        'first_loss': losses[0], 'last_loss': losses[-1], 'mean_loss_last10': sum(losses[-10:]) / len(losses[-10:]),
        **result, 'eval_images': len(val_paths), 'evaluations': evaluations,
        'torch': torch.__version__, 'torchvision': torchvision.__version__, 'torch_threads': torch.get_num_threads(),
    }), flush=True)


if __name__ == '__main__':
    sys.exit(main())

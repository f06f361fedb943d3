"""Peer for bench/allreduce: torch.distributed (gloo) all_reduce of float32 buffers on 127.0.0.1.

Started once per rank by bench/allreduce.ts with RANK, WORLD_SIZE, MASTER_ADDR and MASTER_PORT in
the environment. For each size (bytes), runs `warmup` untimed and `repeats` timed all_reduce
calls (sum, then divided by the world size, as a mean), each after a one-value all_reduce that
lines the ranks up. Rank 0 prints one JSON line per size: {"bytes": B, "ms": [...]}. Not part of
hpctrain; Debian's python3-torch.
"""
import argparse
import json
import time

import torch
import torch.distributed as dist


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--sizes', required=True)
    parser.add_argument('--warmup', type=int, default=1)
    parser.add_argument('--repeats', type=int, default=5)
    args = parser.parse_args()
    dist.init_process_group('gloo')
    rank, world = dist.get_rank(), dist.get_world_size()
    align = torch.zeros(1)
    for size in (int(s) for s in args.sizes.split(',')):
        data = torch.full((size // 4,), float(rank))
        times = []
        for i in range(args.warmup + args.repeats):
            dist.all_reduce(align)
            start = time.perf_counter()
            dist.all_reduce(data)
            data /= world
            if i >= args.warmup:
                times.append((time.perf_counter() - start) * 1000)
            data.fill_(float(rank))
        if rank == 0:
            print(json.dumps({'bytes': size, 'ms': times}), flush=True)
    dist.destroy_process_group()


if __name__ == '__main__':
    main()

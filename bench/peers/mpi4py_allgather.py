"""Peer for bench/rendezvous: Open MPI + mpi4py allgather of hostnames.

Each rank prints one line: the milliseconds from its own process start (read from
/proc/self/stat, so interpreter start-up is included) until comm.allgather of the hostnames
returned. Run by bench/rendezvous.ts under mpirun; not part of hpctrain.
"""
import os
import socket
import time


def ms_since_process_start():
    with open('/proc/self/stat') as f:
        start_ticks = int(f.read().rsplit(')', 1)[1].split()[19])
    # The start time counts from boot in clock ticks (10 ms); CLOCK_BOOTTIME is the same clock as
    # /proc/uptime but to the nanosecond, so only the start time limits the resolution.
    now_s = time.clock_gettime(time.CLOCK_BOOTTIME)
    return (now_s - start_ticks / os.sysconf('SC_CLK_TCK')) * 1000.0


from mpi4py import MPI  # noqa: E402  (imported after the clock helpers on purpose: its start-up counts)

comm = MPI.COMM_WORLD
hosts = comm.allgather(socket.gethostname())
elapsed = ms_since_process_start()
assert len(hosts) == comm.Get_size()
# One write per line, so that mpirun's output forwarding cannot split it.
os.write(1, f"peer rank={comm.Get_rank()} size={comm.Get_size()} elapsed_ms={elapsed:.1f}\n".encode())

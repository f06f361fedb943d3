"""Peer for bench/rendezvous: Open MPI + mpi4py allgather of hostnames.

Each rank prints one line: the milliseconds from its own process start (read from
/proc/self/stat, so interpreter start-up is included) until comm.allgather of the hostnames
returned. Run by bench/rendezvous.ts under mpirun; not part of hpctrain.
"""
import os
import socket


def ms_since_process_start():
    with open('/proc/self/stat') as f:
        start_ticks = int(f.read().rsplit(')', 1)[1].split()[19])
    with open('/proc/uptime') as f:
        uptime_s = float(f.read().split()[0])
    return (uptime_s - start_ticks / os.sysconf('SC_CLK_TCK')) * 1000.0


from mpi4py import MPI  # noqa: E402  (imported after the clock helpers on purpose: its start-up counts)

comm = MPI.COMM_WORLD
hosts = comm.allgather(socket.gethostname())
elapsed = ms_since_process_start()
assert len(hosts) == comm.Get_size()
print(f"peer rank={comm.Get_rank()} size={comm.Get_size()} elapsed_ms={elapsed:.1f}", flush=True)

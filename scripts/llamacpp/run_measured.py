#!/usr/bin/env python3
"""Runs one benchmark invocation and measures how much CPU *other* processes used meanwhile.

  run_measured.py --stdout OUT --stderr ERR -- COMMAND ARGS...

Prints one integer on stdout: the share (percent) of all CPUs that processes other than COMMAND (and its
children) kept busy while it ran, from /proc/stat deltas minus COMMAND's own user+system time. A
benchmark on a shared machine is only meaningful when this stays small. Exit status: COMMAND's.
"""

import argparse
import os
import resource
import subprocess
import sys


def cpu_jiffies():
    """(busy, total) jiffies summed over all CPUs; idle and iowait count as not busy."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    total = sum(fields[:8])  # user nice system idle iowait irq softirq steal (guest is inside user)
    idle = fields[3] + fields[4]
    return total - idle, total


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--stdout", required=True)
    ap.add_argument("--stderr", required=True)
    ap.add_argument("command", nargs=argparse.REMAINDER)
    args = ap.parse_args()
    cmd = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not cmd:
        ap.error("no command given")
    busy0, total0 = cpu_jiffies()
    ru0 = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(args.stdout, "w") as out, open(args.stderr, "w") as err:
        rc = subprocess.call(cmd, stdout=out, stderr=err)
    busy1, total1 = cpu_jiffies()
    ru1 = resource.getrusage(resource.RUSAGE_CHILDREN)
    hz = os.sysconf("SC_CLK_TCK")
    own = (ru1.ru_utime + ru1.ru_stime - ru0.ru_utime - ru0.ru_stime) * hz
    total = max(1, total1 - total0)
    others = max(0.0, (busy1 - busy0) - own) / total * 100
    print(int(round(others)))
    return rc


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The rule of docs/faults.md ("Every wait is bounded"), checked on the sources.

Every call in the product's code (not tests or benchmarks) that can block on another process, rank,
lock, network peer or child -- MPI's blocking collectives and point-to-point calls, communicator
splits and duplicates, MPI_Finalize, NCCL's rendezvous, flock, waitpid, curl, system/popen --
must say what bounds it: a comment containing "bound:" on its line or in the comment lines right
above it. And every file holding such calls must be listed in docs/faults.md's table of blocking
call sites. A new unbounded wait fails this test until its author states (and builds) the bound.

Usage: wait_rule_test.py SOURCE_DIR
"""
import pathlib
import re
import sys

FOLDERS = ["cluster", "data", "elastic", "hdf5", "launcher", "model", "monitoring", "trainer", "version"]
BLOCKING = re.compile(
    r"\bMPI_(Barrier|Allgather|Allgatherv|Gather|Gatherv|Bcast|Allreduce|Reduce|Recv|Send|"
    r"Sendrecv|Wait|Waitall|Comm_split|Comm_split_type|Comm_dup|Finalize)\s*\("
    r"|\bncclCommInitRank\s*\(|\bflock\s*\(|\bwaitpid\s*\(|\bstd::system\s*\(|\bpopen\s*\("
    r'|"/usr/bin/curl"')
# How far above a call its "bound:" comment may start (a comment of a few lines, then the first
# lines of the statement, e.g. run_within("...", timeout, [&] {).
LOOKBACK = 8


def code_part(line):
    """The line without a trailing // comment (a call named in a comment is no call)."""
    return line.split("//", 1)[0]


def is_comment(line):
    return line.strip().startswith("//")


def has_bound(lines, i):
    if "bound:" in lines[i]:
        return True
    j = i - 1
    while j >= 0 and i - j <= LOOKBACK:
        if "bound:" in lines[j]:
            return True
        # Up through the comment block right above and the lines of the same statement: a line
        # ending a statement or block belongs to code before it.
        if not is_comment(lines[j]) and code_part(lines[j]).rstrip().endswith((";", "}")):
            return False
        j -= 1
    return False


def main():
    root = pathlib.Path(sys.argv[1])
    faults_doc = (root / "docs" / "faults.md").read_text()
    problems, sites = [], {}
    for folder in FOLDERS:
        for path in sorted((root / folder).rglob("*")):
            if path.suffix not in (".cpp", ".h"):
                continue
            lines = path.read_text().splitlines()
            rel = path.relative_to(root).as_posix()
            for i, line in enumerate(lines):
                if is_comment(line) or not BLOCKING.search(code_part(line)):
                    continue
                sites.setdefault(rel, 0)
                sites[rel] += 1
                if not has_bound(lines, i):
                    problems.append(f"{rel}:{i + 1}: blocking call without a 'bound:' comment: "
                                    f"{line.strip()}")
    for rel in sorted(sites):
        if f"`{rel}`" not in faults_doc:
            problems.append(f"{rel}: has {sites[rel]} blocking call(s) but is not listed in "
                            "docs/faults.md's table of blocking call sites")
    if not sites:
        problems.append("no blocking call found at all: the scan itself is broken")
    for p in problems:
        print(p)
    print(f"{sum(sites.values())} blocking call(s) in {len(sites)} file(s); "
          f"{len(problems)} problem(s)")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

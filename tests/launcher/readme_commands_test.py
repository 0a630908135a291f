#!/usr/bin/python3
"""The commands a user copies first, as a user runs them (issue 30, item 7).

readme: every command of README.md's fenced shell blocks either runs here (the cheap ones:
  --help, --version, --print-config, --dry-run, inspect, --list) and must exit 0 with output,
  or is skipped with its reason printed; a skipped command's program must still exist and
  every --option it uses must be in that program's --help, so a README change that breaks a
  command fails this test.
scripts: the user-facing scripts answer --help with exit 0 and their usage.

Usage: readme_commands_test.py {readme|scripts} --bin-dir DIR --source-dir DIR
"""
import argparse
import os
import re
import shlex
import subprocess
import sys

SKIP = 77

# Commands that run minutes, need the network, a scheduler, a trained run or root: the reason
# each is only checked, not run. The first pattern a command matches decides.
NOT_RUN = [
    (r"^\./scripts/(quickstart|test)\.sh\b", "installs packages and builds: scripts/test.sh is CI"),
    (r"^scripts/install-(deps|torch2)\.sh\b", "installs packages"),
    (r"^(cmake|ctest)\b", "configures and builds: what this test suite itself came from"),
    (r"^mpirun .*agave_trainer\b", "trains for minutes (tests/trainer run it on a tiny model)"),
    (r"^mpirun .*agave_eval\b", "needs a trained run (tests/eval)"),
    (r"^agave_data fetch\b", "downloads 170 MB (tests/data fetch_test with a local server)"),
    (r"^agave_data convert\b", "needs CIFAR-10's archive in data/cifar10"),
    (r"^scripts/agave_to_torch\.py\b", "needs a trained run (tests/python)"),
    (r"^sbatch\b", "needs Slurm (tests/slurm)"),
    (r"^agave_elastic\b", "needs hosts to run mpirun on (tests/elastic; netns_elastic_*)"),
    (r"^experiments/run\.sh\b", "trains for minutes; run here with --list appended"),
    (r"^experiments/k_sweep\.sh\b", "needs a trained run (tests/experiments k_sweep_sh_test)"),
]


def commands(readme):
    """(line number, command) of every line in ```sh / ```bash blocks, comments removed."""
    out, fenced = [], False
    for number, line in enumerate(open(readme, encoding="utf-8"), 1):
        if line.startswith("```"):
            fenced = line.strip() in ("```sh", "```bash") if not fenced else False
            continue
        if fenced and line.strip():
            words = shlex.split(line, comments=True)
            out.append((number, words))
    return out


def run(words, env, cwd, timeout=300):
    r = subprocess.run(words, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=timeout, check=False)
    return r.returncode, r.stdout.decode(errors="replace")


def program_of(words):
    """The program and its subcommand words: mpirun's options and -np N dropped."""
    if words and words[0] == "mpirun":
        i = 1
        while i < len(words) and words[i].startswith("-"):
            i += 2 if words[i] in ("-np", "-n", "--np") else 1
        words = words[i:]
    return words


def check_not_run(words, env, cwd):
    """The files it names exist, and an agave program has each --option in its (subcommand's)
    --help."""
    prog = program_of(words)
    for w in prog[1:]:
        if re.match(r"(configs|experiments|cluster|scripts)/", w) and not os.path.exists(
                os.path.join(cwd, w)):
            return f"{w} is not in the repository"
    if "/" in prog[0]:
        if not os.access(os.path.join(cwd, prog[0]), os.X_OK):
            return f"{prog[0]} is not an executable file"
        return None
    if not prog[0].startswith("agave_"):
        return None  # another project's tool (sbatch, cmake): not ours to check
    if not os.access(os.path.join(env["AGAVE_BIN"], prog[0]), os.X_OK):
        return f"{prog[0]} is not in {env['AGAVE_BIN']}"
    sub = [w for w in prog[1:2] if not w.startswith("-")]
    code, usage = run(prog[:1] + sub + ["--help"], env, cwd)
    if code != 0:
        return f"{' '.join(prog[:1] + sub)} --help exited {code}"
    for w in prog[1:]:
        option = w.split("=")[0]
        if option.startswith("--") and option not in usage:
            return f"{option} is not in {' '.join(prog[:1] + sub)} --help"
    return None


def readme_test(src, env):
    failures = []
    for number, words in commands(os.path.join(src, "README.md")):
        text = f"README.md:{number}: {shlex.join(words)}"
        if words[0] == "export":
            name, value = words[1].split("=", 1)
            env[name] = value.replace("$PWD/build/bin", env["AGAVE_BIN"]).replace(
                "$" + name, env.get(name, ""))
            print(f"applied  {text}")
            continue
        reason = next((why for pattern, why in NOT_RUN if re.search(pattern, shlex.join(words))),
                      None)
        if words[:2] == ["agave_data", "inspect"] and not os.path.isdir(
                os.path.join(src, words[2])):
            reason = f"{words[2]} is not there (agave_data convert makes it)"
        if reason:
            problem = check_not_run(words, env, src)
            if words[0] == "experiments/run.sh" and problem is None:
                code, out = run(words + ["--list"], env, src)
                problem = None if code == 0 and out.strip() else f"--list exited {code}:\n{out}"
            print(f"skipped  {text}\n         ({reason}){' -> FAILED: ' + problem if problem else ''}")
            if problem:
                failures.append(f"{text}: {problem}")
            continue
        code, out = run(words, env, src)
        print(f"ran      {text} -> exit {code}")
        if code != 0 or not out.strip():
            failures.append(f"{text}: exit {code}, output:\n{out}")
    return failures


def scripts_test(src, env):
    failures = []
    for script in ("experiments/run.sh", "experiments/k_sweep.sh", "bench/run",
                   "scripts/agave_to_torch.py"):
        code, out = run([os.path.join(src, script), "--help"], env, src)
        if script.endswith(".py") and "No module named" in out:
            print(f"skipped  {script} --help: {out.strip().splitlines()[-1]}")
            continue
        print(f"ran      {script} --help -> exit {code}")
        # The usage names the script (run.sh's and bench/run's headers, argparse's "usage:").
        if code != 0 or os.path.basename(script) not in out:
            failures.append(f"{script} --help: exit {code}, output:\n{out}")
    return failures


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("which", choices=["readme", "scripts"])
    parser.add_argument("--bin-dir", required=True)
    parser.add_argument("--source-dir", required=True)
    args = parser.parse_args()
    env = dict(os.environ, AGAVE_BIN=args.bin_dir)
    if os.geteuid() == 0:  # mpirun as root in a test (scripts/mpi-env.sh)
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
        env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    test = readme_test if args.which == "readme" else scripts_test
    failures = test(args.source_dir, env)
    for f in failures:
        print("FAILED:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""docs/architecture.md's include table is the architecture: every `#include "folder/..."` in a
source folder must name that folder or one its row allows, every source folder must have a row,
and every row a folder. Fails naming the file, line and include otherwise."""
import os
import re
import sys

root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), '..', '..')
doc = open(os.path.join(root, 'docs', 'architecture.md'), encoding='utf-8').read()
m = re.search(r'<!-- include graph.*?-->(.*?)<!-- end include graph -->', doc, re.S)
if not m:
    sys.exit('docs/architecture.md: no include graph table (<!-- include graph ... -->)')
allowed = {}
for line in m.group(1).splitlines():
    row = re.match(r'\|\s*`(\w+)/`\s*\|\s*(.*?)\s*\|\s*$', line)
    if row:
        deps = row.group(2)
        allowed[row.group(1)] = set() if deps in ('–', '-', '') else {
            d.strip() for d in deps.split(',')}
if not allowed:
    sys.exit('docs/architecture.md: the include graph table has no rows')

# Not libraries: tests, benches, fuzz targets, scripts, docs, configs, build trees.
OUTSIDE = {'tests', 'bench', 'fuzz', 'python', 'scripts', 'docs', 'configs', 'experiments',
           'cmake', 'shared'}
problems = []
source_folders = set()
for entry in sorted(os.listdir(root)):
    path = os.path.join(root, entry)
    if not os.path.isdir(path) or entry.startswith('.') or entry.startswith('build'):
        continue
    if entry in OUTSIDE:
        continue
    files = [os.path.join(d, f) for d, _, fs in os.walk(path) for f in fs
             if f.endswith(('.h', '.cpp'))]
    if not files:
        continue
    source_folders.add(entry)
    if entry not in allowed:
        problems.append(f'{entry}/: a source folder without a row in docs/architecture.md')
        continue
    for f in sorted(files):
        for n, line in enumerate(open(f, encoding='utf-8'), 1):
            inc = re.match(r'\s*#\s*include\s+"(\w+)/', line)
            if not inc:
                continue
            dep = inc.group(1)
            if dep == entry or dep in allowed[entry]:
                continue
            if dep in allowed or dep in OUTSIDE:
                problems.append(f'{os.path.relpath(f, root)}:{n}: includes {dep}/, which '
                                f'docs/architecture.md does not allow {entry}/ to include')
for folder in sorted(set(allowed) - source_folders):
    problems.append(f'docs/architecture.md: row {folder}/ names no source folder')
for folder, deps in sorted(allowed.items()):
    for d in sorted(deps - set(allowed)):
        problems.append(f'docs/architecture.md: row {folder}/ allows {d}/, which has no row')

for p in problems:
    print(p)
print(f'{len(source_folders)} folders, {len(problems)} problem(s)')
sys.exit(1 if problems else 0)

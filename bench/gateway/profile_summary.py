"""Read py-spy's collapsed stacks (`--format raw`) and say where a worker's CPU time went.

    python -m bench.gateway.profile_summary worker-*.txt [--top 30]

Inclusive time per function (each stack counted once per function, so nested calls do not
double-count) and self time of leaf functions, both as a share of all samples.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# "function (path/to/file.py:123)" -> "function (file.py)" so every line of a function adds up.
_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")


def _frame_name(frame: str) -> str:
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    path = match["file"]
    for marker in ("site-packages/", "lib/python3.11/", "/work/main/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return f"{match['func']} ({path})"


def read_stacks(paths) -> Counter:
    stacks: Counter = Counter()
    for path in paths:
        for line in Path(path).read_text().splitlines():
            stack, _, count = line.rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = tuple(_frame_name(f) for f in stack.split(";") if f)
            # py-spy puts the thread name first ("process 123:..." / "thread (0x..)"): drop it
            frames = tuple(f for f in frames if not f.startswith(("process ", "thread ")))
            stacks[frames] += int(count)
    return stacks


def summarise(stacks: Counter, top: int = 30) -> str:
    total = sum(stacks.values())
    if not total:
        return "no samples"
    inclusive: Counter = Counter()
    leaf: Counter = Counter()
    for frames, count in stacks.items():
        for name in set(frames):
            inclusive[name] += count
        if frames:
            leaf[frames[-1]] += count
    lines = [f"{total} samples (on-CPU, all workers)", "", "inclusive  function"]
    for name, count in inclusive.most_common(top):
        lines.append(f"{100 * count / total:8.1f}%  {name}")
    lines += ["", "self       function"]
    for name, count in leaf.most_common(top // 2):
        lines.append(f"{100 * count / total:8.1f}%  {name}")
    return "\n".join(lines)


def summarise_files(paths, top: int = 30) -> str:
    return summarise(read_stacks(paths), top)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--top", type=int, default=30)
    args = parser.parse_args(argv)
    print(summarise_files(args.files, args.top))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

#!/usr/bin/env python3
"""Every relative link in the Markdown docs points at a file that exists, and every #anchor at a
heading of that file, in GitHub's slug form (lower case, punctuation dropped, spaces to dashes,
`-1`, `-2` for repeats). Links inside fenced code blocks are not links.

    python3 scripts/check-doc-links.py [FILE.md ...]   (default: README.md, docs/*.md, the chart's README)

Exits 1 naming each broken link as FILE:LINE.
"""
import glob
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def slug(heading):
    heading = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return heading.replace(" ", "-")


def lines_outside_fences(path):
    fence = False
    with open(path, encoding="utf-8") as f:
        for number, line in enumerate(f, 1):
            if line.lstrip().startswith("```"):
                fence = not fence
            elif not fence:
                yield number, line


def anchors(path):
    out, seen = set(), {}
    for _, line in lines_outside_fences(path):
        m = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if m:
            s = slug(m.group(1))
            n = seen.get(s, 0)
            seen[s] = n + 1
            out.add(s if n == 0 else f"{s}-{n}")
    return out


def broken_links(path):
    for number, line in lines_outside_fences(path):
        for m in re.finditer(r"\]\(([^)\s]+)\)", line):
            link = m.group(1)
            if re.match(r"^[a-z][a-z0-9+.-]*:", link):
                continue
            target, _, fragment = link.partition("#")
            target = os.path.normpath(os.path.join(os.path.dirname(path), target)) if target else path
            if not os.path.exists(target):
                yield number, link, "no such file"
            elif fragment and target.endswith(".md") and fragment not in anchors(target):
                yield number, link, "no such heading"


def main(args):
    docs = sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))
    files = args or ["README.md", *docs, "charts/pushgateway-janitor/README.md"]
    checked = bad = 0
    for name in files:
        path = os.path.join(ROOT, name)
        checked += 1
        for number, link, why in broken_links(path):
            print(f"{name}:{number}: {link}: {why}")
            bad += 1
    print(f"doc links: {checked} files, {bad} broken")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

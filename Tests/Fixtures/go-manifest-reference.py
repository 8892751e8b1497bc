#!/usr/bin/env python3
"""A reference for the recipes.json that `tsuku registry export` writes: the Go tsuku client's
index (schema_version 1), made from recipe TOML files the way tsuku's own generator
(scripts/generate-registry.py upstream) is documented to make it, written here from those facts
alone, with the standard library:

  {"schema_version": 1, "generated_at": "<UTC, seconds, +00:00>", "recipes": [...]}

one entry per recipe, sorted by lower-cased name, with name, description, homepage,
dependencies and runtime_dependencies (both [] when absent) from [metadata], and satisfies
([metadata.satisfies]) only when it is not empty; json.dump(indent=2) and a trailing newline.

usage: go-manifest-reference.py [--generated-at ISO] DIR...   (every *.toml under each DIR)
"""
import json
import pathlib
import sys
import tomllib
from datetime import datetime, timezone


def entry(path):
    with open(path, "rb") as f:
        meta = tomllib.load(f).get("metadata", {})
    e = {
        "name": meta["name"],
        "description": meta.get("description", ""),
        "homepage": meta.get("homepage", ""),
        "dependencies": meta.get("dependencies", []),
        "runtime_dependencies": meta.get("runtime_dependencies", []),
    }
    satisfies = meta.get("satisfies", {})
    if satisfies:
        e["satisfies"] = satisfies
    return e


def main(argv):
    generated_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if len(argv) >= 2 and argv[0] == "--generated-at":
        generated_at, argv = argv[1], argv[2:]
    if not argv:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 64
    recipes = [entry(p) for d in argv for p in sorted(pathlib.Path(d).rglob("*.toml"))]
    recipes.sort(key=lambda r: r["name"].lower())
    out = {"schema_version": 1, "generated_at": generated_at, "recipes": recipes}
    json.dump(out, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

#!/usr/bin/python3
"""Checks response bodies of the daemon's API against schema/api/*.schema.json
with python3-jsonschema (draft 2020-12).

    validate_api.py DIR

Every DIR/NAME/*.json must validate against schema/api/NAME.schema.json
(which may refer to the other schemas, schema/job.schema.json included).
A NAME without a schema, an empty DIR or a body that is not JSON is a
failure. Exits 0 when every body is valid, 1 otherwise (also when the
jsonschema module is missing: the test it serves must not pass unchecked).
"""
import glob
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    print("validate_api.py: the python3 jsonschema module is missing "
          "(Debian package python3-jsonschema; `make deps` installs it)",
          file=sys.stderr)
    sys.exit(1)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
API = os.path.join(ROOT, "schema", "api")
SPEC = os.path.join(ROOT, "schema", "job.schema.json")


def load(path):
    with open(path) as f:
        return json.load(f)


def schemas():
    """Every API schema by name, and a store of all schemas by $id for $ref."""
    by_name, store = {}, {}
    for path in sorted(glob.glob(os.path.join(API, "*.schema.json"))) + [SPEC]:
        s = load(path)
        jsonschema.Draft202012Validator.check_schema(s)
        store[s["$id"]] = s
        if os.path.dirname(path) == API:
            by_name[os.path.basename(path)[:-len(".schema.json")]] = s
    return by_name, store


def main():
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    root = sys.argv[1]
    by_name, store = schemas()
    bad = checked = 0
    names = sorted(n for n in os.listdir(root) if os.path.isdir(os.path.join(root, n)))
    for name in names:
        if name not in by_name:
            print("%s: no schema/api/%s.schema.json" % (name, name), file=sys.stderr)
            bad += 1
            continue
        schema = by_name[name]
        resolver = jsonschema.RefResolver.from_schema(schema, store=store)
        v = jsonschema.Draft202012Validator(schema, resolver=resolver)
        for path in sorted(glob.glob(os.path.join(root, name, "*.json"))):
            checked += 1
            try:
                body = load(path)
            except ValueError as e:
                print("%s: not JSON: %s" % (path, e), file=sys.stderr)
                bad += 1
                continue
            errors = list(v.iter_errors(body))
            for e in errors[:5]:
                print("%s (%s): %s: %s" % (path, name,
                                           "/".join(map(str, e.absolute_path)) or "(root)",
                                           e.message[:300]), file=sys.stderr)
            bad += bool(errors)
    if checked == 0:
        print("validate_api.py: no bodies under %s" % root, file=sys.stderr)
        bad += 1
    print("validate_api.py: %d bodies in %d schemas checked, %d invalid"
          % (checked, len(names), bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

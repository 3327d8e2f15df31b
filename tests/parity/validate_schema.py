#!/usr/bin/python3
"""Checks schema/job.schema.json with python3-jsonschema (draft 2020-12).

    validate_schema.py [--valid DIR]... [--invalid DIR]...

Every schema/examples/*.json and every *.json in a --valid folder must
validate; every *.json in an --invalid folder, and each spec in INVALID
below, must be rejected. Exits 0 when all hold, 1 otherwise (also when the
jsonschema module is missing: the test it serves must not pass unchecked).
"""
import argparse
import glob
import json
import os
import sys

try:
    import jsonschema
except ImportError:
    print("validate_schema.py: the python3 jsonschema module is missing "
          "(Debian package python3-jsonschema; `make deps` installs it)",
          file=sys.stderr)
    sys.exit(1)

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
SCHEMA = os.path.join(ROOT, "schema", "job.schema.json")
EXAMPLES = os.path.join(ROOT, "schema", "examples")

# Specs the schema must refuse, whatever the C test passes in.
INVALID = [
    {},
    {"task": "cartpole"},
    {"task": "rotation", "method": "maml"},
    {"task": "rotation", "colour": "blue"},
    {"task": "rotation", "evograd": {"sigma": 0}},
    {"task": "rotation", "evograd": {"k": 1}},
    {"task": "rotation", "evograd": {"k": 3, "antithetic": True}},
    {"task": "rotation", "optimizer": {"lr": "fast"}},
    {"task": "rotation", "optimizer": {"momentum": 0.9}},
    {"task": "rotation", "optimizer": {"kind": "sgd", "beta1": 0.9}},
    {"task": "rotation", "optimizer": {"milestones": "auto"}},
    {"task": "rotation", "dataset": {"noise": {"kind": "uniform", "rate": 0.4}}},
    {"task": "mwn", "meta_optimizer": {"milestones": "auto"}},
    {"task": "mwn", "dataset": {"noise": {"kind": "none", "rate": 0.4}}},
    {"task": "mwn", "batch_size": 0},
    {"task": "mwn", "rotation": {"true_angle_deg": 10}},
    {"task": "toy1d", "model": {"name": "lenet"}},
    {"task": "toy1d", "dataset": {"name": "mnist"}},
    {"task": "toy1d", "device": "gpu"},
    {"task": "toy1d", "seed": -1},
    {"task": "toy1d", "epochs": 2.5},
]


def load(path):
    with open(path) as f:
        return json.load(f)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--valid", action="append", default=[])
    ap.add_argument("--invalid", action="append", default=[])
    args = ap.parse_args()

    schema = load(SCHEMA)
    jsonschema.Draft202012Validator.check_schema(schema)
    v = jsonschema.Draft202012Validator(schema)
    bad = 0
    valid = sorted(glob.glob(os.path.join(EXAMPLES, "*.json")))
    if not valid:
        print("no examples in %s" % EXAMPLES, file=sys.stderr)
        bad += 1
    for d in args.valid:
        found = sorted(glob.glob(os.path.join(d, "*.json")))
        if not found:
            print("no *.json in %s" % d, file=sys.stderr)
            bad += 1
        valid += found
    for path in valid:
        errors = list(v.iter_errors(load(path)))
        for e in errors:
            print("%s: %s: %s" % (path, "/".join(map(str, e.absolute_path)) or "(root)",
                                  e.message), file=sys.stderr)
        bad += bool(errors)

    invalid = [(json.dumps(s), s) for s in INVALID]
    for d in args.invalid:
        invalid += [(p, load(p)) for p in sorted(glob.glob(os.path.join(d, "*.json")))]
    for name, spec in invalid:
        if v.is_valid(spec):
            print("%s: accepted by the schema, should be refused" % name, file=sys.stderr)
            bad += 1
    print("validate_schema.py: %d valid, %d invalid checked, %d problems"
          % (len(valid), len(invalid), bad), file=sys.stderr)
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

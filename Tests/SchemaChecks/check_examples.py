#!/usr/bin/env python3
"""Checks schemas/examples against schemas/event.v1.schema.json (JSON Schema 2020-12).

- every file in examples/valid/ is strict JSON and the schema accepts it;
- every file in examples/invalid/ is listed in manifest.json with a reason, and fails
  where the manifest says it does: `json` (not strict JSON: syntax, UTF-8, duplicate
  keys), `schema` (JSON the schema rejects) or `parser` (JSON the schema accepts,
  rejected by a rule only the parser can check, e.g. limits in bytes).

Prints one line per example and `N passed, N failed`; exits 1 on any failure.
"""
import json
import pathlib
import sys

import jsonschema

ROOT = pathlib.Path(__file__).resolve().parents[2] / "schemas"


class NotStrictJSON(ValueError):
    pass


def reject_duplicates(pairs):
    keys = [key for key, _ in pairs]
    duplicates = {key for key in keys if keys.count(key) > 1}
    if duplicates:
        raise NotStrictJSON(f"duplicate keys {sorted(duplicates)}")
    return dict(pairs)


def reject_constant(name):
    raise NotStrictJSON(f"{name} is not JSON")


def load_strict(path):
    text = path.read_bytes().decode("utf-8")  # raises on invalid UTF-8
    return json.loads(text, object_pairs_hook=reject_duplicates, parse_constant=reject_constant)


def main():
    schema = json.loads((ROOT / "event.v1.schema.json").read_text())
    jsonschema.Draft202012Validator.check_schema(schema)
    validator = jsonschema.Draft202012Validator(schema)
    passed, failed = 0, 0

    def report(ok, name, detail):
        nonlocal passed, failed
        print(f"{'ok  ' if ok else 'FAIL'} {name}: {detail}")
        if ok:
            passed += 1
        else:
            failed += 1

    for path in sorted((ROOT / "examples" / "valid").glob("*.json")):
        try:
            errors = list(validator.iter_errors(load_strict(path)))
            report(not errors, f"valid/{path.name}", errors[0].message if errors else "accepted")
        except (ValueError, UnicodeDecodeError) as error:
            report(False, f"valid/{path.name}", f"not strict JSON: {error}")

    invalid_dir = ROOT / "examples" / "invalid"
    manifest = json.loads((invalid_dir / "manifest.json").read_text())
    files = {path.name for path in invalid_dir.glob("*.json")} - {"manifest.json"}
    for name in sorted(files | set(manifest)):
        entry = manifest.get(name)
        if entry is None or not entry.get("reason") or name not in files:
            report(False, f"invalid/{name}", "missing from the manifest, without a reason, or without a file")
            continue
        try:
            document = load_strict(invalid_dir / name)
        except (ValueError, UnicodeDecodeError) as error:
            report(entry["detectedBy"] == "json", f"invalid/{name}", f"not strict JSON ({error.__class__.__name__})")
            continue
        errors = list(validator.iter_errors(document))
        if entry["detectedBy"] == "schema":
            report(bool(errors), f"invalid/{name}", errors[0].message[:80] if errors else "schema accepted it")
        else:
            report(not errors and entry["detectedBy"] == "parser", f"invalid/{name}",
                   "schema accepts it; the parser rejects it" if not errors else "schema rejects it")

    print(f"schema examples: {passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""Regenerates src/spdx-ids.txt from the spdx.schema.json bundled with cyclonedx-python-lib
(installed by ../shared/tools/install-peers.sh). The list is what CycloneDX validators accept
as `license.id`: an id missing from it must be emitted as `license.name`."""
import json, pathlib, sys
import cyclonedx.schema._res as res

schema = json.loads((pathlib.Path(res.__file__).parent / "spdx.SNAPSHOT.schema.json").read_text())
out = pathlib.Path(__file__).parent / "src" / "spdx-ids.txt"
lines = [
    f"# SPDX license and exception ids accepted by CycloneDX's spdx.schema.json ({schema['$comment']}), one per line,",
    "# sorted by ASCII. Source: the schema bundled with cyclonedx-python-lib 11.12.0 (the validator of",
    "# ../shared/tools/validate-cyclonedx.py). Regenerate with crates/sbom/update-spdx-ids.py.",
] + sorted(schema["enum"])
out.write_text("\n".join(lines) + "\n")
print(f"{out}: {len(schema['enum'])} ids", file=sys.stderr)

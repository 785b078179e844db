"""The README's quick start, run as written against the live server, so the README stays true."""

import os
import re
import subprocess
import sys
from pathlib import Path

from collector_client import Client
from conftest import Server, total_records

README = Path(__file__).resolve().parents[1] / "README.md"


def quickstart_code() -> str:
    text = README.read_text()
    m = re.search(r"<!-- quickstart:[^>]*-->\s*```python\n(.*?)```", text, re.S)
    assert m, "README.md lost its quick-start block (marked <!-- quickstart: ... -->)"
    return m.group(1)


def test_readme_quick_start_runs(server: Server, admin: Client) -> None:
    code = quickstart_code()
    assert "log_interaction" in code and "stats()" in code
    before = admin.stats()["overview"]
    env = dict(os.environ, COLLECTOR_URL=server.url, COLLECTOR_TOKEN=server.token("ai-backend", "service"))
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert lines[0].startswith("logged ")
    iid = lines[0].split()[1]
    assert lines[1] == f"records: {before['total_records'] + 1} feedback rate: {admin.stats()['overview']['feedback_rate']}"
    assert lines[2].startswith("n8n readiness: ")
    rec = admin.get_interaction(iid)
    assert rec["user_id"] == "alice" and rec["positive_feedback"] == 1
    assert total_records(admin) == before["total_records"] + 1


def test_every_python_block_of_the_readme_compiles() -> None:
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(), re.S)
    assert len(blocks) >= 5
    for block in blocks:
        compile(block, "README.md", "exec")

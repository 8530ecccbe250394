#!/usr/bin/env python3
"""Write tests/data/journal/COMMIT.db: a journal made by the Lamplighter of COMMIT (default f801daa,
the release before retention and incremental vacuum), for tests/test_upgrade.py.

    .venv/bin/python scripts/make-upgrade-journal.py [COMMIT]

It extracts that commit's src/ with `git archive` into a temporary directory and runs a short
script on it (PYTHONPATH first, so the old code is imported, not this checkout's): a service on
`virtual://desk?on=true&color=warmwhite&brightness=40` takes a 911 that stays active (the
desk's restore snapshot is stored), a 912 that expires, the same 912 again, a door event that
resolves, and a rejected mail. The events' times are when it ran; the test reads them as they are.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

GENERATE = r'''
import asyncio, json, sys
from pathlib import Path
import lamplighter
from lamplighter.config import parse_config
from lamplighter.model import make_event
from lamplighter.service import Service

state = Path(sys.argv[1])
assert str(Path(lamplighter.__file__).resolve()).startswith(sys.argv[2]), lamplighter.__file__
config = parse_config(f"state_dir: {state}\n"
                      "lamps: {desk: 'virtual://desk?on=true&color=warmwhite&brightness=40'}\n"
                      "levels: {'911': {hold: until_ack}, '912': {hold: 1s}}\n", env={})


async def main() -> None:
    service = Service(config)
    async with service.running():
        now = service.clock.now
        ids = [service.submit(make_event("911", "payments down", received_at=now(), sender="alertmanager",
                                         key="payments", labels={"severity": "critical"})).id]
        ids.append(service.submit(make_event("912", "disk 80%", received_at=now(), sender="grafana")).id)
        ids.append(service.submit(make_event("912", "disk 80%", received_at=now(), sender="grafana")).id)
        ids.append(service.submit(make_event("door", "front door", received_at=now(), key="door-1")).id)
        ids.append(service.submit(make_event("door", "front door", received_at=now(), key="door-1",
                                             status="resolved")).id)
        ids.append(service.record_rejected(make_event("911", "spoofed", received_at=now(), source="mail"),
                                           "the sender is not allowed").id)
        await asyncio.sleep(2)  # the 912 expires; the desk has shown the 911 and its snapshot is stored
        assert list(service.signals) == [ids[0]], service.signals
        assert service.lamps["desk"].snapshot is not None
        print(json.dumps({"events": ids, "active": list(service.signals)}))

asyncio.run(main())
'''


def main() -> None:
    commit = sys.argv[1] if len(sys.argv) > 1 else "f801daa"
    target = ROOT / "tests" / "data" / "journal" / f"{commit}.db"
    with tempfile.TemporaryDirectory() as tmp:
        old = Path(tmp) / "old"
        old.mkdir()
        archive = subprocess.run(["git", "-C", str(ROOT), "archive", commit, "src"], check=True, capture_output=True)
        subprocess.run(["tar", "-x", "-C", str(old)], input=archive.stdout, check=True)
        env = {**os.environ, "PYTHONPATH": str(old / "src")}
        state = Path(tmp) / "state"
        result = subprocess.run([sys.executable, "-c", GENERATE, str(state), str(old / "src")], env=env,
                                check=True, capture_output=True, text=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(state / "lamplighter.db", target)
    print(f"wrote {target} with the Lamplighter of {commit}: {result.stdout.strip()}")


if __name__ == "__main__":
    main()

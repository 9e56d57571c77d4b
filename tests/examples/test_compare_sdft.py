"""The SDFT comparison imports TRL only when it runs, and without TRL says so in one line."""

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "examples" / "compare_sdft.py"


def _python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, timeout=120)


def test_importing_the_harness_does_not_import_trl():
    done = _python(f"import sys; sys.path.insert(0, {str(ROOT / 'examples')!r}); import compare_sdft; "
                   "print('trl' in sys.modules)")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_without_trl_the_harness_skips_with_one_clear_line():
    # sys.modules["trl"] = None makes every import of trl fail, as on a default install.
    done = _python(f"import sys, runpy; sys.modules['trl'] = None; sys.argv = ['compare_sdft.py']; "
                   f"runpy.run_path({str(SCRIPT)!r}, run_name='__main__')")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == ("skipped: TRL 1.16.0 is not installed (a benchmark-only extra): "
                                   "pip install 'reverie[bench]' or pip install trl==1.16.0")
    assert "Traceback" not in done.stderr

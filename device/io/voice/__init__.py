"""Voice prompts of the touchscreen: made at build time with espeak-ng, played with pygame's mixer.

`python -m device.io.voice build` (the Makefile's `voice` step) speaks every prompt of the catalogue
(device.io.catalogue.PROMPTS) in both languages into `prompts/<prompt>-<language>.wav` beside this
file, at 11025 Hz mono 16 bit (speech needs no more; it halves what espeak-ng writes), and writes
`prompts/MANIFEST`: one line per file with a hash of the words and the voice, so a build redoes only
what changed and a test catches prompts that no longer say what the catalogue says. The WAV files
are committed (about 300 KB in all), so a terminal built where espeak-ng is missing still speaks.

`Voice` plays them. No audio device, no mixer, or no file: it stays silent and says so once in the
log; it never raises. The thank-you is one sound for every level (the clerk must not hear it).
"""

from __future__ import annotations

import array
import hashlib
import logging
import shutil
import subprocess
import sys
import tempfile
import wave
from pathlib import Path
from typing import Final

from device.io.catalogue import LANGUAGES, PROMPTS

__all__ = ["PROMPT_DIR", "VOICES", "Voice", "build", "manifest_lines", "prompt_file"]

log = logging.getLogger("pingjia.device.voice")

PROMPT_DIR: Final = Path(__file__).parent / "prompts"
VOICES: Final = {"zh-CN": "cmn", "en": "en-gb"}  # espeak-ng voices
SPEED: Final = {"zh-CN": 150, "en": 150}  # words per minute: slower than espeak's 175, for older ears
RATE_HZ: Final = 11025


def prompt_file(prompt: str, language: str, folder: Path = PROMPT_DIR) -> Path:
    return folder / f"{prompt}-{language}.wav"


def _fingerprint(prompt: str, language: str) -> str:
    said = f"{PROMPTS[prompt][language]}|{VOICES[language]}|{SPEED[language]}|{RATE_HZ}"
    return hashlib.sha256(said.encode("utf-8")).hexdigest()[:16]


def manifest_lines() -> list[str]:
    """What MANIFEST should say for the catalogue as it is."""
    return [
        f"{prompt_file(prompt, language, Path()).name} {_fingerprint(prompt, language)}"
        for prompt in PROMPTS
        for language in LANGUAGES
    ]


def build(folder: Path = PROMPT_DIR, *, espeak: str = "espeak-ng") -> list[Path]:
    """Speak every prompt into `folder`; return the files made (those already up to date are
    kept). RuntimeError if espeak-ng is needed and missing or fails."""
    folder.mkdir(parents=True, exist_ok=True)
    manifest = folder / "MANIFEST"
    have = set(manifest.read_text(encoding="utf-8").splitlines()) if manifest.exists() else set()
    wanted = manifest_lines()
    made = []
    for line in wanted:
        name = line.split(" ")[0]
        prompt, _, language = name.removesuffix(".wav").partition("-")
        target = folder / name
        if line in have and target.exists():
            continue
        command = shutil.which(espeak)
        if command is None:
            raise RuntimeError(f"{espeak} is not installed (sudo apt-get install espeak-ng): cannot make {name}")
        with tempfile.TemporaryDirectory() as scratch:
            raw = Path(scratch) / "raw.wav"
            speak = [command, "-v", VOICES[language], "-s", str(SPEED[language]), "-w", str(raw)]
            subprocess.run([*speak, PROMPTS[prompt][language]], check=True, capture_output=True)
            _halve(raw, target)
        made.append(target)
    manifest.write_text("\n".join(wanted) + "\n", encoding="utf-8")
    return made


def _halve(source: Path, target: Path) -> None:
    """espeak-ng's 22050 Hz 16-bit mono as 11025 Hz: each pair of samples averaged."""
    with wave.open(str(source), "rb") as wav:
        if (wav.getnchannels(), wav.getsampwidth()) != (1, 2):
            raise RuntimeError(f"espeak-ng wrote {wav.getnchannels()} channels of {wav.getsampwidth()} bytes")
        rate = wav.getframerate()
        samples = array.array("h", wav.readframes(wav.getnframes()))
    if sys.byteorder == "big":
        samples.byteswap()
    if rate == RATE_HZ * 2:
        samples = array.array("h", ((samples[i] + samples[i + 1]) // 2 for i in range(0, len(samples) - 1, 2)))
        rate = RATE_HZ
    if sys.byteorder == "big":
        samples.byteswap()
    with wave.open(str(target), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes(samples.tobytes())


class Voice:
    """Plays prompts; silent (never raising) without an audio device or the files.

    Call from the thread that runs the screen (pygame wants one thread); the mixer is opened at
    the first prompt, once.
    """

    def __init__(self, folder: Path = PROMPT_DIR, *, enabled: bool = True) -> None:
        self.folder = folder
        self.enabled = enabled
        self.silent_because: str | None = None if enabled else "voice prompts are off"
        self._opened = False
        self._sounds: dict[tuple[str, str], object] = {}
        self.played: list[tuple[str, str]] = []  # what was asked for, for tests and the simulator

    def play(self, prompt: str, language: str) -> bool:
        """Start playing a prompt (stopping any other); True if it is audible."""
        self.played.append((prompt, language))
        if not self._open():
            return False
        import pygame

        key = (prompt, language)
        if key not in self._sounds:
            path = prompt_file(prompt, language, self.folder)
            try:
                self._sounds[key] = pygame.mixer.Sound(str(path))
            except (pygame.error, FileNotFoundError, OSError) as exc:
                log.warning("voice prompt %s cannot be played: %s", path.name, exc)
                self._sounds[key] = None
        sound = self._sounds[key]
        if not isinstance(sound, pygame.mixer.Sound):
            return False
        try:
            pygame.mixer.stop()
            sound.play()
        except pygame.error as exc:
            log.warning("voice prompt %s: %s", prompt, exc)
            return False
        return True

    def _open(self) -> bool:
        if self._opened:
            return self.silent_because is None
        self._opened = True
        if self.silent_because is not None:
            return False
        import pygame

        try:
            pygame.mixer.init(frequency=RATE_HZ, size=-16, channels=1)
        except pygame.error as exc:
            self.silent_because = f"no audio device ({exc})"
        else:
            if not any(prompt_file(p, lang, self.folder).exists() for p in PROMPTS for lang in LANGUAGES):
                self.silent_because = f"no voice prompts in {self.folder} (make voice)"
        if self.silent_because is not None:
            log.warning("the touchscreen is silent: %s", self.silent_because)
            return False
        return True

    def close(self) -> None:
        if self._opened and self.silent_because is None:
            import pygame

            pygame.mixer.quit()
        self._sounds.clear()
        self._opened = False

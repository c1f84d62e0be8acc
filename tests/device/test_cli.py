"""`pingjia device ...` as an operator meets it: a bad configuration file stops the start with a
precise message, and creates nothing."""

from __future__ import annotations

from pathlib import Path

import pytest

from pingjia.cli import main


@pytest.mark.parametrize(
    ("toml", "message"),
    [
        ('mode = "fast"\n', "setting 'mode': 'fast' is not allowed; one of invited, open"),
        ("thank_you_ms = -1\n", "setting 'thank_you_ms': -1 is not allowed; int in 0..15000 ms"),
        ('panel_port = "ttyACM0"\n', "setting 'panel_port': 'ttyACM0' is not allowed; a device path"),
        ("heartbeat = 5\n", "setting 'heartbeat': 5 is not allowed; no such setting"),
    ],
)
def test_a_bad_config_file_stops_the_start_naming_key_value_and_what_is_allowed(
    tmp_path: Path, toml: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "terminal.toml"
    config.write_text(toml, encoding="utf-8")
    code = main(["device", "run", "--data", str(tmp_path / "t"), "--config", str(config)])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "t").exists()  # nothing was created on a refused start


def test_a_touchscreen_without_its_font_stops_the_start_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from device.io import touch
    from device.io.fonts import FontMissing

    def missing() -> None:
        raise FontMissing("fontconfig does not know it")

    monkeypatch.setattr(touch, "find_cjk_font", missing)
    code = main(["device", "run", "--data", str(tmp_path / "t"), "--keys", "touch", "--screen", "800x480"])
    assert code == 2
    err = capsys.readouterr().err
    assert "pingjia device run: the touchscreen needs the font" in err
    assert "sudo apt-get install fonts-noto-cjk" in err
    assert "Traceback" not in err
    assert not (tmp_path / "t").exists()  # refused before anything was made


def test_a_window_size_is_for_the_touchscreen_and_must_be_width_x_height(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["device", "run", "--data", str(tmp_path / "t"), "--keys", "stdin", "--screen", "800x480"])
    assert code == 2
    assert "--screen is for the touchscreen (--keys touch)" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["device", "run", "--data", str(tmp_path / "t"), "--keys", "touch", "--screen", "800"])
    assert "expected WIDTHxHEIGHT in px (e.g. 800x480), got '800'" in capsys.readouterr().err

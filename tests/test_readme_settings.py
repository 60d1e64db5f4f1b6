"""The README's settings table is the settings class, rendered: a setting added, renamed or described anew
without the README (or the other way round) fails here."""

from pathlib import Path

import tailorset.config as config

README = Path(__file__).resolve().parents[1] / "README.md"


def test_the_readme_lists_every_setting_as_the_settings_class_describes_it():
    text = README.read_text("utf-8")
    start = text.index("<!-- settings-table:")
    table = text[text.index("\n", start) + 1 : text.index("\n<!-- settings-table end -->")]
    assert table == config.settings_table(), "run `python -m tailorset.config` and paste its table into the README"
    for name, field in config.Settings.model_fields.items():
        assert f"`TAILORSET_{name.upper()}`" in table and field.description, name

"""Fail early, say what to do (issue 14): which extra a storage scheme needs, webhook secrets checked at
open, a data dir that is a file. Pure parts, no event loop."""

from __future__ import annotations

from pathlib import Path

import pytest

from tornado_engine.datadir import check_data_dir
from tornado_engine.errors import InvalidRequest, MissingBackend, SetupError
from tornado_engine.storage.availability import check_local_folder, check_target, extra_for, missing_modules
from tornado_engine.webhooks import generate_secret, parse_secrets


@pytest.mark.parametrize(
    ("scheme", "extra"),
    [("s3", "s3"), ("S3", "s3"), ("gs", "gcs"), ("gcs", "gcs"), ("az", "azure"), ("abfs", "azure"),
     ("azure", "azure"), ("oss", "oss")],
)  # fmt: skip
def test_each_cloud_scheme_names_its_extra(scheme: str, extra: str) -> None:
    found = extra_for(scheme)
    assert found is not None and found.extra == extra and found.modules


@pytest.mark.parametrize("scheme", ["", "file", "local", "memory"])
def test_built_in_storages_need_no_extra(scheme: str) -> None:
    assert extra_for(scheme) is None


@pytest.mark.parametrize("scheme", ["ftp", "http", "sftp", "hdfs"])
def test_an_unsupported_scheme_is_refused_with_the_supported_ones(scheme: str) -> None:
    with pytest.raises(InvalidRequest, match=rf"'{scheme}' is not supported \(use file://.*s3://") as info:
        extra_for(scheme)
    assert info.value.field == "storage"


def test_missing_modules_treats_a_failing_finder_as_missing() -> None:
    def find(name: str) -> object | None:
        if name == "broken":
            raise ValueError("blocked")
        return object() if name == "there" else None

    assert missing_modules(("there", "gone", "broken"), find) == ["gone", "broken"]


def test_a_missing_module_names_the_pip_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "ossfs", None)  # blocked: importing it fails
    with pytest.raises(
        MissingBackend, match=r"OSS storage needs the 'ossfs'.*pip install 'tornado-engine\[oss\]'"
    ):
        check_target("oss", None)
    assert issubclass(MissingBackend, SetupError)


def test_a_writable_local_folder_passes_and_nothing_is_created(tmp_path: Path) -> None:
    check_local_folder(tmp_path)
    check_local_folder(tmp_path / "not" / "yet")
    assert list(tmp_path.iterdir()) == []


def test_a_local_folder_that_cannot_be_made_is_a_setup_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    for bad in (tmp_path / "file", tmp_path / "file" / "below", Path("/proc/nope")):
        with pytest.raises(SetupError, match=r"local storage folder cannot be written: .*--storage") as info:
            check_local_folder(bad)
        assert str(tmp_path) not in str(info.value) and "/proc" not in str(info.value)


def test_a_data_dir_that_is_a_file_is_refused_and_a_new_one_is_fine(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(SetupError, match=r"data dir is a file.*--data-dir"):
        check_data_dir(tmp_path / "file")
    with pytest.raises(SetupError, match=r"data dir is inside a file"):
        check_data_dir(tmp_path / "file" / "sub")
    check_data_dir(tmp_path / "new" / "dir")
    assert not (tmp_path / "new").exists()  # checking creates nothing


def test_a_str_is_one_secret_and_a_list_keeps_its_order() -> None:
    one, two = generate_secret(), generate_secret()
    assert parse_secrets(one) == [one]
    assert parse_secrets((two, one)) == [two, one]


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("sekrit-value", r"secret 1: webhook secrets must start with 'whsec_'"),
        (["whsec_" + "A" * 44, "whsec_not base64!"], r"secret 2: .*not valid base64"),
        ("whsec_", r"secret 1: webhook secret is empty"),
        ([], r"give at least one secret"),
        ([b"whsec_abc"], r"secret 1 is a bytes"),
    ],
)
def test_a_malformed_secret_is_refused_naming_the_option_not_the_secret(value: object, reason: str) -> None:
    with pytest.raises(InvalidRequest, match=rf"^webhook_secrets: {reason}") as info:
        parse_secrets(value)  # type: ignore[arg-type]
    assert info.value.field == "webhook_secrets" and "sekrit" not in info.value.message

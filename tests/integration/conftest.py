"""Integration fixtures: the storage servers (see storage_fixtures.py) join the session's fixtures here."""

from storage_fixtures import (  # noqa: F401 - fixtures are found by name
    azure_endpoint,
    backend,
    gcs_endpoint,
    oss_server,
    s3_endpoint,
    s3_iam,
    service_account,
    storage_workdir,
)

import pytest

from mlflow_azureml_registry import registry_uri_from_ml_client, registry_uri_from_tracking_uri
from mlflow_azureml_registry.azure.workspace import WorkspaceRef
from mlflow_azureml_registry.uri import (
    InvalidUri,
    parse_artifact_uri,
    parse_asset_uri,
    parse_registry_uri,
    registry_uri,
)

WS = WorkspaceRef("0000-sub", "my-rg", "my-ws")


@pytest.mark.parametrize(
    "uri",
    [
        "azureml-registry://subscriptions/0000-sub/resourceGroups/my-rg/workspaces/my-ws",
        "azureml-registry://subscriptions/0000-sub/resourcegroups/my-rg/workspaces/my-ws/",
        "azureml-registry:///subscriptions/0000-sub/resourceGroups/my-rg/workspaces/my-ws",
        "azureml-registry://subscriptions/0000-sub/resourceGroups/my-rg/providers/"
        "Microsoft.MachineLearningServices/workspaces/my-ws",
        # The long form users copy from Azure ML, scheme changed.
        "azureml-registry://eastus2.api.azureml.ms/mlflow/v1.0/subscriptions/0000-sub/resourceGroups/my-rg/"
        "providers/Microsoft.MachineLearningServices/workspaces/my-ws",
        "azureml-registry://westeurope.api.azureml.ms/mlflow/v2.0/subscriptions/0000-sub/resourceGroups/my-rg/"
        "providers/Microsoft.MachineLearningServices/workspaces/my-ws",
    ],
)
def test_registry_uri_forms(uri):
    assert parse_registry_uri(uri) == WS


@pytest.mark.parametrize(
    "uri",
    [
        "azureml://subscriptions/0000-sub/resourceGroups/my-rg/workspaces/my-ws",
        "azureml-registry://my-ws",
        "azureml-registry://subscriptions/0000-sub/resourceGroups/my-rg",
        "azureml-registry://subscriptions/0000-sub/resourceGroups/my-rg/workspaces/my-ws/models/x",
        "azureml-registry://evil.example.com/subscriptions/0000-sub/resourceGroups/my-rg/workspaces/my-ws",
        "",
        None,
    ],
)
def test_bad_registry_uris_name_the_expected_shape(uri):
    with pytest.raises(InvalidUri, match="resourceGroups/<resource-group>/workspaces/<workspace>"):
        parse_registry_uri(uri)


def test_registry_uri_round_trip():
    assert parse_registry_uri(registry_uri(WS)) == WS


def test_artifact_uri_round_trip():
    uri = registry_uri(WS) + "/datastores/workspaceblobstore/paths/LocalUpload/abc/model"
    location = parse_artifact_uri(uri)
    assert (location.workspace, location.datastore, location.path) == (
        WS,
        "workspaceblobstore",
        "LocalUpload/abc/model",
    )
    assert location.artifact_uri == uri
    assert location.asset_uri == (
        "azureml://subscriptions/0000-sub/resourceGroups/my-rg/workspaces/my-ws"
        "/datastores/workspaceblobstore/paths/LocalUpload/abc/model"
    )
    assert location.child("sub/dir/").path == "LocalUpload/abc/model/sub/dir"


def test_asset_uri_forms():
    long_form = "azureml://subscriptions/s/resourcegroups/r/workspaces/w/datastores/ds/paths/a/b/"
    assert parse_asset_uri(long_form, WS).workspace == WorkspaceRef("s", "r", "w")
    assert parse_asset_uri(long_form, WS).path == "a/b"
    short = parse_asset_uri("azureml://datastores/ds/paths/x", WS)
    assert (short.workspace, short.datastore, short.path) == (WS, "ds", "x")
    with pytest.raises(InvalidUri):
        parse_asset_uri("https://example.blob.core.windows.net/c/x", WS)


def test_helpers_build_registry_uri():
    class FakeMLClient:  # the attributes azure.ai.ml.MLClient exposes publicly
        subscription_id, resource_group_name, workspace_name = "0000-sub", "my-rg", "my-ws"

    assert parse_registry_uri(registry_uri_from_ml_client(FakeMLClient())) == WS
    tracking = (
        "azureml://eastus2.api.azureml.ms/mlflow/v1.0/subscriptions/0000-sub/resourceGroups/my-rg/"
        "providers/Microsoft.MachineLearningServices/workspaces/my-ws"
    )
    assert registry_uri_from_tracking_uri(tracking) == registry_uri(WS)
    with pytest.raises(InvalidUri):
        registry_uri_from_tracking_uri("http://localhost:5000")


@pytest.mark.parametrize("name", ["../evil", "a/../../evil", "/etc/passwd", "C:/x", "..", "a/b/../../../c"])
def test_blob_names_that_would_escape_the_destination_are_refused(tmp_path, name):
    from mlflow_azureml_registry.azure.blobs import Destination
    from mlflow_azureml_registry.azure.errors import AzureMLError

    with pytest.raises(AzureMLError, match="outside"):
        Destination(tmp_path).join(name)


def test_blob_names_inside_the_destination_are_joined(tmp_path):
    from mlflow_azureml_registry.azure.blobs import Destination

    assert Destination(tmp_path).join("a/b/../c.txt") == (tmp_path / "a" / "c.txt").resolve()
    assert Destination(tmp_path).join("MLmodel") == (tmp_path / "MLmodel").resolve()

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlflow_azureml_registry import registry_uri_from_ml_client, registry_uri_from_tracking_uri
from mlflow_azureml_registry.azure.workspace import RegistryRef, WorkspaceRef
from mlflow_azureml_registry.uri import (
    InvalidUri,
    VersionFiles,
    parse_artifact_uri,
    parse_asset_uri,
    parse_registry_uri,
    parse_version_alias,
    registry_uri,
)

WS = WorkspaceRef("0000-sub", "my-rg", "my-ws")
MESSAGE_LIMIT = 1500  # characters in any InvalidUri message, whatever the input


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


# -- Every URI form Azure ML hands out (issue 15, "The URIs Azure ML hands out") -----------------------------
# Each form's source is recorded in mlflow_azureml_registry/local/FIDELITY.md ("Tracking and registry URIs").

SUB = "9e223dbe-3399-4e19-88eb-0975f02ac87f"
REF = WorkspaceRef(SUB, "ml-rg-test", "mlworkspace-portal02")
GUID = "52882c08-ead2-44aa-af65-08a75cf094bd"  # a workspace id, as private-link host names carry it
ARM = f"subscriptions/{SUB}/resourceGroups/ml-rg-test/providers/Microsoft.MachineLearningServices/workspaces/" \
      "mlworkspace-portal02"

AZURE_ML_TRACKING_URIS = {
    # REST `mlFlowTrackingUri`, which `ml_client.workspaces.get(ws).mlflow_tracking_uri` returns as it is when
    # azureml-mlflow is not installed (recorded workspace GET answers); also `MLFLOW_TRACKING_URI` on compute
    # instances and in SDK v2 jobs.
    "service-v1.0": f"azureml://eastus.api.azureml.ms/mlflow/v1.0/{ARM}",
    # The same, rewritten to /mlflow/v2.0 by azureml-mlflow's get_mlflow_tracking_uri_v2 (MLflow >= 2).
    "sdk-v2-with-azureml-mlflow": f"azureml://eastus.api.azureml.ms/mlflow/v2.0/{ARM}",
    # SDK v1 `ws.get_mlflow_tracking_uri()` (azureml-mlflow get_mlflow_tracking_uri): '?' appended.
    "sdk-v1": f"azureml://eastus2.api.azureml.ms/mlflow/v2.0/{ARM}?",
    "sdk-v1-mlflow-1.x": f"azureml://eastus2.api.azureml.ms/mlflow/v1.0/{ARM}?",
    # SDK v1 jobs: azureml-mlflow _setup_remote sets MLFLOW_TRACKING_URI to the above + '&is-remote=True'.
    "sdk-v1-job-env": f"azureml://eastus2.api.azureml.ms/mlflow/v2.0/{ARM}?&is-remote=True",
    "sdk-v1-job-env-mlflow-1.x": f"azureml://eastus2.api.azureml.ms/mlflow/v1.0/{ARM}?&is-remote=True",
    # SDK v2 / CLI v2 job `services["Tracking"].endpoint` (recorded `az ml job create` output).
    "job-services-tracking": f"azureml://eastus2.api.azureml.ms/mlflow/v1.0/{ARM}?",
    # Private link: the per-workspace host (recorded in mlflow/mlflow#15329), and the privatelink zone name.
    "private-link": f"azureml://{GUID}.workspace.westeurope.api.azureml.ms/mlflow/v1.0/{ARM}",
    "private-link-sdk-v1": f"azureml://{GUID}.workspace.westeurope.api.azureml.ms/mlflow/v2.0/{ARM}?",
    "private-link-job-env": f"azureml://{GUID}.workspace.westeurope.api.azureml.ms/mlflow/v2.0/{ARM}"
                            "?&is-remote=True",
    "privatelink-zone-host": f"azureml://{GUID}.workspace.westeurope.privatelink.api.azureml.ms/mlflow/v1.0/{ARM}",
    # Sovereign clouds: the API host of Azure China and Azure US Government.
    "china": f"azureml://chinaeast2.api.ml.azure.cn/mlflow/v1.0/{ARM}",
    "china-private-link-sdk-v1": f"azureml://{GUID}.workspace.chinaeast2.api.ml.azure.cn/mlflow/v2.0/{ARM}?",
    "us-government": f"azureml://usgovarizona.api.ml.azure.us/mlflow/v1.0/{ARM}",
    "us-government-job-env": f"azureml://usgovvirginia.api.ml.azure.us/mlflow/v2.0/{ARM}?&is-remote=True",
    # The host SDK v1 used before *.api.azureml.ms (recorded in Lightning-AI/pytorch-lightning#6564).
    "legacy-experiments-host": f"azureml://northeurope.experiments.azureml.net/mlflow/v1.0/{ARM}?",
    # ARM ids as the portal and `az` print them: lower-case `resourcegroups` and provider namespace.
    "lower-case-arm-id": f"azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/{SUB}/resourcegroups/"
                         "ml-rg-test/providers/microsoft.machinelearningservices/workspaces/mlworkspace-portal02",
    "lower-case-arm-id-sdk-v1": f"azureml://eastus.api.azureml.ms/mlflow/v2.0/subscriptions/{SUB}/resourcegroups/"
                                "ml-rg-test/providers/Microsoft.MachineLearningServices/workspaces/"
                                "mlworkspace-portal02?",
}
FORMS = sorted(AZURE_ML_TRACKING_URIS)


def _as_registry_uri(tracking_uri: str) -> str:
    """The tracking URI pasted into ``mlflow.set_registry_uri`` with only the scheme changed."""
    assert tracking_uri.startswith("azureml://")
    return "azureml-registry" + tracking_uri[len("azureml"):]


@pytest.mark.parametrize("form", FORMS)
def test_tracking_uri_from_azure_ml(form):
    assert registry_uri_from_tracking_uri(AZURE_ML_TRACKING_URIS[form]) == registry_uri(REF)


@pytest.mark.parametrize("form", FORMS)
def test_tracking_uri_with_scheme_changed_is_a_registry_uri(form):
    assert parse_registry_uri(_as_registry_uri(AZURE_ML_TRACKING_URIS[form])) == REF


@pytest.mark.parametrize("form", ["sdk-v1", "sdk-v1-job-env", "private-link-job-env", "lower-case-arm-id"])
def test_mlflow_builds_the_store_from_a_pasted_tracking_uri(form):
    """What `mlflow.set_registry_uri(<tracking URI, scheme changed>)` gets: MLflow routes it to this plugin."""
    from mlflow.tracking._model_registry.utils import _get_store

    from mlflow_azureml_registry.store import AzureMLRegistryStore

    store = _get_store(_as_registry_uri(AZURE_ML_TRACKING_URIS[form]))
    assert isinstance(store, AzureMLRegistryStore)
    assert store.workspace == REF


def test_registry_uri_given_to_the_tracking_helper_is_normalised():
    pasted = _as_registry_uri(AZURE_ML_TRACKING_URIS["sdk-v1-job-env"])
    assert registry_uri_from_tracking_uri(pasted) == registry_uri(REF)


# -- What is still refused, and how the refusal reads ---------------------------------------------------------

TRACKING_SHAPE = "azureml://<host>/mlflow/v<version>/subscriptions/<subscription-id>/resourceGroups/"
REGISTRY_SHAPE = "azureml-registry://subscriptions/<subscription-id>/resourceGroups/<resource-group>/workspaces/"


@pytest.mark.parametrize(
    "tracking_uri",
    [
        "http://localhost:5000",
        "databricks",
        "",
        f"azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/{SUB}/resourceGroups/ml-rg-test",
        f"azureml://eastus.api.azureml.ms/mlflow/v1.0/{ARM}/experiments/e",
        f"azureml://eastus.api.azureml.ms/api/v1.0/{ARM}",
    ],
)
def test_tracking_uri_errors_talk_about_the_tracking_uri(tracking_uri):
    with pytest.raises(InvalidUri) as caught:
        registry_uri_from_tracking_uri(tracking_uri)
    message = str(caught.value)
    assert "tracking URI" in message and TRACKING_SHAPE in message
    assert "registry URI" not in message and "azureml-registry://eastus" not in message
    assert repr(tracking_uri)[:40] in message  # what the user passed, as they wrote it


@pytest.mark.parametrize(
    "uri",
    [
        "azureml-registry://nope",
        f"azureml-registry://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/{SUB}/resourceGroups/ml-rg-test",
    ],
)
def test_registry_uri_errors_talk_about_the_registry_uri(uri):
    with pytest.raises(InvalidUri) as caught:
        parse_registry_uri(uri)
    message = str(caught.value)
    assert "registry URI" in message and REGISTRY_SHAPE in message and repr(uri) in message


def test_a_tracking_uri_given_as_registry_uri_says_how_to_convert_it():
    with pytest.raises(InvalidUri, match="registry_uri_from_tracking_uri"):
        parse_registry_uri(AZURE_ML_TRACKING_URIS["sdk-v1"])


@pytest.mark.parametrize(
    "suffix, reason",
    [
        ("?x=1", "no query string"),
        ("?%%%", "no query string"),
        ("#frag", "no query string"),
        ("?is-remote=maybe", "no query string"),
        ("?&is-remote=True#x", "no query string"),
    ],
)
def test_other_query_strings_are_still_refused(suffix, reason):
    for uri in (AZURE_ML_TRACKING_URIS["service-v1.0"] + suffix, registry_uri(REF) + suffix):
        with pytest.raises(InvalidUri, match=reason):
            registry_uri_from_tracking_uri(uri)
        with pytest.raises(InvalidUri, match=reason):
            parse_registry_uri(_as_registry_uri(uri) if uri.startswith("azureml://") else uri)


def test_a_token_in_the_query_is_refused_and_never_echoed():
    secret = "eyJ0eXAiOiJKV1QiLCJhbGciOiJSUzI1NiJ9.c2VjcmV0LXRva2Vu"
    for uri in (
        AZURE_ML_TRACKING_URIS["sdk-v1"] + f"auth={secret}",
        AZURE_ML_TRACKING_URIS["sdk-v1"] + f"auth-type=token&auth={secret}",
    ):
        for call, value in ((registry_uri_from_tracking_uri, uri), (parse_registry_uri, _as_registry_uri(uri))):
            with pytest.raises(InvalidUri) as caught:
                call(value)
            assert "'auth" in str(caught.value) and "credential" in str(caught.value)
            assert secret[:8] not in str(caught.value)


def test_azure_ml_registry_tracking_uris_name_the_registry():
    uri = (
        f"azureml://eastus.api.azureml.ms/mlflow/v1.0/subscriptions/{SUB}/resourceGroups/ml-rg-test/providers/"
        "Microsoft.MachineLearningServices/registries/registry-abc"
    )
    expected = f"azureml-registry://subscriptions/{SUB}/resourceGroups/ml-rg-test/registries/registry-abc"
    assert registry_uri_from_tracking_uri(uri) == expected
    ref = parse_registry_uri(_as_registry_uri(uri))
    assert isinstance(ref, RegistryRef)
    assert (ref.registry_name, ref.subscription_id, ref.resource_group) == ("registry-abc", SUB, "ml-rg-test")
    assert registry_uri(ref) == expected


@pytest.mark.parametrize(
    "uri, name, located",
    [
        ("azureml-registry://registries/reg-1", "reg-1", False),
        ("azureml-registry:///registries/reg_1/", "reg_1", False),
        (f"azureml-registry://subscriptions/{SUB}/resourceGroups/rg/registries/Reg1", "Reg1", True),
        (f"azureml-registry://subscriptions/{SUB}/resourceGroups/rg/providers/Microsoft.MachineLearningServices/"
         "registries/Reg1", "Reg1", True),
    ],
)
def test_registry_uris(uri, name, located):
    ref = parse_registry_uri(uri)
    assert isinstance(ref, RegistryRef) and ref.registry_name == name and ref.located is located
    assert ref == RegistryRef(name.lower())  # one registry, however it is named
    assert parse_registry_uri(registry_uri(ref)) == ref


@pytest.mark.parametrize(
    "uri",
    [
        "azureml-registry://registries/",
        "azureml-registry://registries/-bad",
        "azureml-registry://registries/a%2Fb",
        "azureml-registry://registries/r/models",
        "azureml-registry://registries/r?token=x",
        f"azureml-registry://subscriptions/{SUB}/resourceGroups/bad./registries/r",
    ],
)
def test_bad_registry_uris(uri):
    with pytest.raises(InvalidUri) as caught:
        parse_registry_uri(uri)
    assert "registries" in str(caught.value)


def test_version_files_uris():
    for target in ("registries/r", f"subscriptions/{SUB}/resourceGroups/rg/workspaces/w"):
        parsed = parse_artifact_uri(f"azureml-registry://{target}/models/m.1/versions/3/sub/MLmodel")
        assert isinstance(parsed, VersionFiles)
        assert (parsed.model_name, parsed.version, parsed.path) == ("m.1", "3", "sub/MLmodel")
        assert parse_artifact_uri(parsed.artifact_uri) == parsed
        assert parsed.child("x").path == "sub/MLmodel/x"
    assert parse_artifact_uri("azureml-registry://registries/r/models/m/versions/3").asset_id == (
        "azureml://registries/r/models/m/versions/3"
    )
    for bad in ("azureml-registry://registries/r/models/m/versions/3/../x", "azureml-registry://registries/r/x",
                "azureml-registry://registries/r/datastores/d/paths/p"):
        with pytest.raises(InvalidUri):
            parse_artifact_uri(bad)
    assert parse_version_alias("azureml-registry://registries/r/models/m@champion") == (RegistryRef("r"), "m",
                                                                                        "champion")
    assert parse_version_alias("azureml-registry://registries/r/models/m/versions/1") is None


HUGE = 1_000_000


@pytest.mark.parametrize(
    "call, value",
    [
        (parse_registry_uri, "azureml-registry://" + "a" * HUGE),
        (parse_registry_uri, "x" * HUGE),
        (parse_registry_uri, f"azureml-registry://subscriptions/{SUB}/resourceGroups/rg/workspaces/" + "w" * HUGE),
        (parse_registry_uri, registry_uri(REF) + "/" + "t" * HUGE),
        (parse_registry_uri, registry_uri(REF) + "?" + "q" * HUGE),
        (parse_registry_uri, f"azureml-registry://subscriptions/{SUB}/resourceGroups/" + "r" * HUGE + "/workspaces/w"),
        (registry_uri_from_tracking_uri, "azureml://" + "a" * HUGE),
        (registry_uri_from_tracking_uri, AZURE_ML_TRACKING_URIS["sdk-v1"] + "&" + "k" * HUGE),
        (registry_uri_from_tracking_uri, f"azureml://h/mlflow/v1.0/subscriptions/{'s' * HUGE}/resourceGroups/r/"
                                         "workspaces/w"),
        (parse_artifact_uri, registry_uri(REF) + "/datastores/" + "d" * HUGE + "/paths/x"),
        (parse_artifact_uri, registry_uri(REF) + "/datastores/ds/paths/" + "../" * HUGE),
        (parse_artifact_uri, registry_uri(REF) + "/x" * HUGE),
    ],
)
def test_huge_inputs_are_quoted_by_a_short_prefix_and_their_length(call, value):
    with pytest.raises(InvalidUri) as caught:
        call(value)
    message = str(caught.value)
    assert len(message) < MESSAGE_LIMIT, message[:2000]
    assert f"{len(value)} characters" in message


def test_asset_uri_errors_are_bounded():
    with pytest.raises(InvalidUri) as caught:
        parse_asset_uri("https://" + "a" * HUGE, WS)
    assert len(str(caught.value)) < MESSAGE_LIMIT


@pytest.mark.parametrize("value", [None, 5, b"azureml-registry://subscriptions/s/resourceGroups/r/workspaces/w",
                                   ["azureml://x"], object()])
def test_values_that_are_not_text_are_refused(value):
    for call in (parse_registry_uri, registry_uri_from_tracking_uri, parse_artifact_uri):
        with pytest.raises(InvalidUri) as caught:
            call(value)
        assert len(str(caught.value)) < MESSAGE_LIMIT


# -- Property tests: forms generated from their parts, and mutations of them ----------------------------------

_ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
subscriptions = st.one_of(st.uuids().map(str), st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9\-]{0,20}\Z"))
resource_groups = st.from_regex(r"\A[A-Za-z0-9_\-.()]{0,20}[A-Za-z0-9_\-()]\Z")
workspace_names = st.from_regex(r"\A[A-Za-z0-9][A-Za-z0-9_\-]{0,20}\Z")
regions = st.one_of(
    st.sampled_from(["eastus", "eastus2", "westeurope", "chinaeast2", "usgovvirginia", "usgovarizona"]),
    st.from_regex(r"\A[a-z]{2,12}[0-9]?\Z"),
)
HOSTS = [
    "{region}.api.azureml.ms",
    "{guid}.workspace.{region}.api.azureml.ms",
    "{guid}.workspace.{region}.privatelink.api.azureml.ms",
    "{region}.api.ml.azure.cn",
    "{guid}.workspace.{region}.api.ml.azure.cn",
    "{region}.api.ml.azure.us",
    "{guid}.workspace.{region}.api.ml.azure.us",
    "{region}.experiments.azureml.net",
]
QUERIES = ["", "?", "?&is-remote=True", "?is-remote=True", "?&is-remote=true&"]


def _any_case(word: str):
    return st.lists(st.booleans(), min_size=len(word), max_size=len(word)).map(
        lambda upper: "".join(c.upper() if u else c.lower() for c, u in zip(word, upper))
    )


@st.composite
def azure_ml_uris(draw):
    """(ref, tracking URI as Azure ML could hand it out)."""
    sub, rg, ws = draw(subscriptions), draw(resource_groups), draw(workspace_names)
    host = draw(st.sampled_from(HOSTS)).format(region=draw(regions), guid=draw(st.uuids()))
    path = (
        f"{draw(_any_case('subscriptions'))}/{sub}/{draw(_any_case('resourceGroups'))}/{rg}/"
        f"{draw(_any_case('providers'))}/{draw(_any_case('Microsoft.MachineLearningServices'))}/"
        f"{draw(_any_case('workspaces'))}/{ws}"
    )
    version = draw(st.sampled_from(["v1.0", "v2.0"]))
    uri = f"{draw(_any_case('azureml'))}://{host}/mlflow/{version}/{path}{draw(st.sampled_from(QUERIES))}"
    return WorkspaceRef(sub, rg, ws), uri


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(azure_ml_uris())
def test_every_generated_form_names_the_same_workspace(case):
    ref, tracking_uri = case
    as_registry = "azureml-registry" + tracking_uri[len("azureml"):]
    assert registry_uri_from_tracking_uri(tracking_uri) == registry_uri(ref)
    assert parse_registry_uri(as_registry) == ref
    assert parse_registry_uri(registry_uri_from_tracking_uri(tracking_uri)) == ref
    assert registry_uri_from_tracking_uri(as_registry) == registry_uri(ref)
    artifact = parse_artifact_uri(as_registry.split("?")[0] + "/datastores/workspaceblobstore/paths/a/b")
    assert (artifact.workspace, artifact.datastore, artifact.path) == (ref, "workspaceblobstore", "a/b")


def _refused_or_valid(call, value):
    """``call(value)`` either answers (with a workspace whose URI parses back to it) or raises InvalidUri."""
    try:
        answer = call(value)
    except InvalidUri as exc:
        assert len(str(exc)) < MESSAGE_LIMIT, str(exc)[:2000]
        return None
    ref = answer if isinstance(answer, WorkspaceRef) else getattr(answer, "workspace", None)
    if ref is None:  # a registry URI string
        ref = parse_registry_uri(answer)
    assert parse_registry_uri(registry_uri(ref)) == ref
    return answer


PARSERS = [parse_registry_uri, registry_uri_from_tracking_uri, parse_artifact_uri]
noise = st.text(st.sampled_from(_ALNUM + "/?#&=%.:-_()@ \n\x00é模\ud800"), max_size=12)


@st.composite
def mutated(draw):
    _, uri = draw(azure_ml_uris())
    if draw(st.booleans()):
        uri = "azureml-registry" + uri[len("azureml"):]
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(uri)))
        end = draw(st.integers(at, min(len(uri), at + 12)))
        action = draw(st.sampled_from(["insert", "delete", "replace", "repeat", "truncate"]))
        if action == "insert":
            uri = uri[:at] + draw(noise) + uri[at:]
        elif action == "delete":
            uri = uri[:at] + uri[end:]
        elif action == "replace":
            uri = uri[:at] + draw(noise) + uri[end:]
        elif action == "repeat":
            uri = uri[:end] + uri[at:end] * draw(st.integers(1, 200)) + uri[end:]
        else:
            uri = uri[:at]
    return uri


@settings(max_examples=400, suppress_health_check=[HealthCheck.too_slow])
@given(value=mutated(), parser=st.sampled_from(PARSERS))
def test_mutated_uris_are_refused_with_invalid_uri_or_name_a_valid_workspace(value, parser):
    _refused_or_valid(parser, value)


@settings(max_examples=300)
@given(value=st.one_of(st.text(), st.text(st.sampled_from("azureml-registry:/?#&=%sub"), max_size=80),
                       st.binary(), st.integers(), st.none(), st.lists(st.text(), max_size=2)),
       parser=st.sampled_from(PARSERS))
def test_garbage_is_refused_with_invalid_uri(value, parser):
    _refused_or_valid(parser, value)


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


_NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_\-]{0,40}", fullmatch=True)
_MODEL = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9_\-.]{0,40}", fullmatch=True)
_PATH = st.lists(st.from_regex(r"[A-Za-z0-9_\-][A-Za-z0-9_\-.+ ]{0,12}", fullmatch=True), max_size=3).map("/".join)


@settings(max_examples=300, deadline=None)
@given(registry=_NAME, located=st.booleans(), model=_MODEL, version=st.integers(1, 10**6), path=_PATH)
def test_registry_and_version_uris_round_trip(registry, located, model, version, path):
    ref = RegistryRef(registry, "sub-1", "rg") if located else RegistryRef(registry)
    assert parse_registry_uri(registry_uri(ref)) == ref
    files = VersionFiles(ref, model, str(version), path.strip("/"))
    parsed = parse_artifact_uri(files.artifact_uri)
    assert parsed == files and parsed.artifact_uri == files.artifact_uri
    parent = VersionFiles(ref, model, "")  # the parent MLflow may open
    assert parse_artifact_uri(parent.artifact_uri).child(f"{version}/{path}") == files


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=200))
def test_any_text_after_registries_is_a_registry_or_a_clear_refusal(tail):
    try:
        ref = parse_registry_uri("azureml-registry://registries/" + tail)
    except InvalidUri as exc:
        assert len(str(exc)) <= MESSAGE_LIMIT
        return
    assert isinstance(ref, RegistryRef) and "/" not in ref.registry_name and ref.registry_name

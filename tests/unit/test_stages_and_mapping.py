"""Every row of the stage mapping table in design.md, and the entity mapping."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from mlflow.exceptions import MlflowException

from mlflow_azureml_registry import mapping, stages


@pytest.mark.parametrize(
    ("azure", "mlflow"),
    [
        ("Development", "None"),  # the service default
        (None, "None"),
        ("", "None"),
        ("None", "None"),
        ("none", "None"),
        ("Staging", "Staging"),
        ("staging", "Staging"),
        ("PRODUCTION", "Production"),
        ("Archived", "Archived"),
        ("QA", "None"),  # values MLflow does not know
        ("Deprecated", "None"),
        (42, "None"),
    ],
)
def test_reading_azure_stage(azure, mlflow):
    assert stages.mlflow_stage(azure) == mlflow


@pytest.mark.parametrize(
    ("mlflow", "azure"),
    [("None", "Development"), ("Staging", "Staging"), ("Production", "Production"), ("Archived", "Archived")],
)
def test_writing_mlflow_stage(mlflow, azure):
    assert stages.azure_stage(mlflow) == azure
    assert stages.mlflow_stage(stages.azure_stage(mlflow)) == mlflow  # round trip


@pytest.mark.parametrize("given", ["staging", "PRODUCTION", "archived", "none", "None"])
def test_stage_names_are_case_insensitive(given):
    assert stages.canonical(given) in stages.MLFLOW_STAGES


@pytest.mark.parametrize("given", ["Development", "QA", "", "Production ", " archived", "Staging\n", None, 3])
def test_unknown_stages_are_refused(given):
    with pytest.raises(MlflowException) as info:
        stages.canonical(given)
    assert info.value.error_code == "INVALID_PARAMETER_VALUE"


@pytest.mark.parametrize("given", ["Development", "QA", "", "Production ", " archived"])
def test_stage_errors_are_mlflows_own(given):
    """Same refusal, same words as MLflow's registry ("stage: QA." unquoted): tools match on them."""
    from mlflow.entities.model_registry.model_version_stages import get_canonical_stage

    with pytest.raises(MlflowException) as ours:
        stages.canonical(given)
    with pytest.raises(MlflowException) as theirs:
        get_canonical_stage(given)
    assert ours.value.message == theirs.value.message
    assert f"stage: {given}." in ours.value.message


def test_only_single_known_stages_are_pushed_down():
    assert stages.server_filter({"Staging"}) == "Staging"
    assert stages.server_filter({"None"}) is None  # gathers Development, null and unknown values
    assert stages.server_filter({"Staging", "Production"}) is None


def test_timestamps_with_seven_digit_fractions():
    assert mapping.to_millis("2026-03-26T19:14:50.5505339+00:00") == 1774552490550
    assert mapping.to_millis("2026-03-26T19:14:50Z") == 1774552490000
    assert mapping.to_millis(None) is None
    assert mapping.to_millis("garbage") is None


def test_flavors_are_encoded_as_string_maps():
    flavors = mapping.flavors_from_mlmodel(
        {
            "flavors": {
                "python_function": {"loader_module": "mlflow.sklearn", "env": {"conda": "conda.yaml"}},
                "sklearn": {"pickled_model": "model.pkl", "code": None, "serialization_format": "cloudpickle"},
            }
        }
    )
    assert flavors["python_function"]["data"] == {"loader_module": "mlflow.sklearn", "env": '{"conda": "conda.yaml"}'}
    assert flavors["sklearn"]["data"]["code"] == "null"
    assert all(isinstance(v, str) for f in flavors.values() for v in f["data"].values())


def _container(tags):
    return {
        "name": "m",
        "properties": {"tags": tags, "description": "d"},
        "systemData": {"createdAt": "2026-01-01T00:00:00.0000000+00:00"},
    }


def test_alias_tags_are_hidden_from_model_tags():
    container = _container({"team": "a", "mlflow.alias.champion": "3", "mlflow.alias.prod": "3"})
    model = mapping.registered_model(container)
    assert model.tags == {"team": "a"}
    assert model.aliases == {"champion": 3, "prod": 3}  # int versions, as MLflow's SQL registry
    assert mapping.aliases_for_version(container, "3") == ["champion", "prod"]
    assert mapping.aliases_for_version(container, "4") == []


def test_lazy_latest_versions_load_once_and_compare_like_mlflow_entities():
    calls = []

    def load():
        calls.append(1)
        return []

    lazy = mapping.registered_model(_container({}), load_latest=load)
    assert calls == []
    plain = mapping.registered_model(_container({}))
    assert lazy == plain  # equality reads every property, latest_versions included
    assert calls == [1]
    assert lazy.latest_versions == []
    assert calls == [1]


def test_model_version_entity_from_azure_resource():
    resource = {
        "name": "7",
        "properties": {
            "description": "d",
            "tags": {"k": "v"},
            "stage": "Production",
            "modelUri": "azureml://datastores/ds/paths/p",
            "properties": {"mlflow.source": "runs:/r1/model", "mlflow.runId": "r1", "mlflow.modelId": "m-1"},
        },
        "systemData": {
            "createdAt": "2026-01-01T00:00:00Z",
            "lastModifiedAt": "2026-01-02T00:00:00Z",
            "createdBy": "alice",
        },
    }
    mv = mapping.model_version(resource, "m", ["champion"])
    assert (mv.name, mv.version, mv.current_stage, mv.source, mv.run_id) == (
        "m",
        7,
        "Production",
        "runs:/r1/model",
        "r1",
    )
    assert mv.tags == {"k": "v"} and mv.aliases == ["champion"] and mv.user_id == "alice"
    assert mv.last_updated_timestamp > mv.creation_timestamp
    assert mv.status == "READY"


@settings(max_examples=100, deadline=None)
@given(number=st.integers(1, 10**9), aliases=st.dictionaries(st.from_regex(r"[a-z][a-z0-9_]{0,8}", fullmatch=True),
                                                             st.integers(1, 10**9), max_size=4))
def test_versions_and_alias_targets_are_ints_as_mlflows_sql_registry_answers(number, aliases):
    """Any integer version name: ``ModelVersion.version`` and every ``RegisteredModel.aliases`` value are ``int``
    (MLflow's SQL registry: an integer column), and a version's aliases are found by ``int`` or ``str`` alike."""
    container = _container({mapping.alias_tag(a): str(v) for a, v in aliases.items()})
    model = mapping.registered_model(container)
    assert model.aliases == aliases and all(type(v) is int for v in model.aliases.values())
    mv = mapping.model_version({"name": str(number), "systemData": {"createdAt": "2026-01-01T00:00:00Z"}}, "m")
    assert type(mv.version) is int and mv.version == number and mv.aliases == []
    assert mv.to_proto().version == str(number)  # what mlflow server sends: text
    assert mapping.aliases_for_version(container, number) == mapping.aliases_for_version(container, str(number))


@given(name=st.text(min_size=1, max_size=8).filter(lambda t: not (t.isascii() and t.isdigit())))
def test_a_version_name_that_is_not_an_integer_stays_text(name):
    """Versions made elsewhere (CLI, SDK) may have any name: it is kept as text, never a crash."""
    mv = mapping.model_version({"name": name, "properties": {}}, "m")
    assert mv.version == name and type(mv.version) is str


@given(st.integers(min_value=0, max_value=10**12), st.integers(min_value=1, max_value=3))
def test_only_canonical_integer_version_names_are_listed_as_numbers(number, zeros):
    """A version made elsewhere named "01" is not MLflow's version 1 (MLflow reads "01" as 1, so listing it would
    offer a version no lookup reaches): like "v2", it is not a number; "12" is 12, "0" is 0."""
    assert mapping.version_number({"name": str(number)}) == number
    assert mapping.version_number({"name": "0" * zeros + str(number)}) is None
    assert mapping.version_number({"name": f"v{number}"}) is None

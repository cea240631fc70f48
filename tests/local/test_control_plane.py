"""The emulated control plane over real HTTPS: every route, the recorded behaviours, spec schemas.

Each answer is validated against the vendored 2025-12-01 definitions (minus the documented recorded
extras); bodies the emulator accepts or refuses are checked against the spec's request schema too.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from . import spec
from .conftest import Arm, check_common, model_uri

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{7}\+00:00$")


def put_version(arm: Arm, ws, name: str, version: str, **props) -> requests.Response:
    body = {"properties": {"modelUri": model_uri(ws, name), "modelType": "custom_model", **props}}
    spec.assert_valid("ModelVersionResource", body, response=False)
    return arm.put(f"models/{name}/versions/{version}", body)


# --------------------------------------------------------------------------- auth, routing, headers
def test_missing_and_wrong_token_get_401(arm: Arm) -> None:
    url = arm.url("models")
    missing = requests.get(url, params={"api-version": "x"}, verify=arm.ws.ca_bundle, timeout=10)
    check_common(missing)
    assert missing.status_code == 401 and missing.json()["error"]["code"] == "AuthenticationFailed"
    assert missing.headers["WWW-Authenticate"].startswith("Bearer ")
    wrong = requests.get(
        url,
        params={"api-version": "x"},
        verify=arm.ws.ca_bundle,
        timeout=10,
        headers={"Authorization": f"Bearer {arm.ws.token[:-2]}xx"},
    )
    check_common(wrong)
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "InvalidAuthenticationToken"


def test_forbidden_workspace_gets_403(arm: Arm) -> None:
    response = arm.get("models", workspace=arm.ws.forbidden_workspace)
    assert response.status_code == 403
    error = response.json()["error"]
    assert error["code"] == "AuthorizationFailed" and "forbidden-ws" in error["message"]
    assert "forbidden-ws" not in arm.ws.workspaces and arm.ws.workspaces[:2] == ["local-ws", "local-ws-2"]


def test_unknown_route_gets_arm_404_and_wrong_method_405(arm: Arm) -> None:
    assert arm.get("computes/cpu").status_code == 404
    assert arm.call("PATCH", "models/x/versions/1", json={}).status_code == 405


def test_any_api_version_is_accepted_but_one_is_required(arm: Arm, model_name: str) -> None:
    for version in ("2023-08-01-preview", "2024-10-01-preview", "2025-12-01", "1999-01-01"):
        assert arm.get("models", params={"api-version": version}).status_code == 200
    response = arm.session.get(arm.url("models"), timeout=10)
    check_common(response)
    assert response.status_code == 400 and response.json()["error"]["code"] == "MissingApiVersionParameter"


def test_fixed_path_segments_match_case_insensitively(arm: Arm, ws, model_name: str) -> None:
    assert put_version(arm, ws, model_name, "1").status_code == 201
    url = (
        arm.url(f"models/{model_name}/versions/1")
        .replace("/resourceGroups/", "/resourcegroups/")
        .replace("Microsoft.MachineLearningServices", "microsoft.machinelearningservices")
    )
    response = arm.follow(url + "?api-version=2023-08-01-preview")
    assert response.status_code == 200 and response.json()["name"] == "1"
    # names are case-sensitive (spec): another casing is another model
    assert arm.get(f"models/{model_name.upper()}/versions/1").status_code == 404


def test_metadata_endpoint_is_unauthenticated_arm_cloud_metadata(ws) -> None:
    response = requests.get(f"{ws.resource_manager_url}/metadata/endpoints", verify=ws.ca_bundle, timeout=10)
    assert response.status_code == 200
    (cloud,) = response.json()
    assert cloud["resourceManager"] == f"{ws.resource_manager_url}/"
    assert cloud["suffixes"]["storage"] == f"core.localhost:{ws.blob_port}"


def test_request_ids_are_unique(arm: Arm) -> None:
    ids = {arm.get("models").headers["x-ms-request-id"] for _ in range(3)}
    assert len(ids) == 3


# --------------------------------------------------------------------------- model versions
def test_version_create_then_update(arm: Arm, ws, model_name: str) -> None:
    created = put_version(arm, ws, model_name, "1", description="d", tags={"a": "b"})
    assert created.status_code == 201
    assert created.headers["Location"].startswith(f"{ws.resource_manager_url}/subscriptions/")
    assert created.headers["Location"].endswith(f"/models/{model_name}/versions/1?api-version=2025-12-01")
    body = created.json()
    spec.assert_valid("ModelVersionResource", body)
    assert body["id"] == (
        f"/subscriptions/{ws.subscription_id}/resourceGroups/{ws.resource_group}/providers/"
        f"Microsoft.MachineLearningServices/workspaces/local-ws/models/{model_name}/versions/1"
    )
    assert (
        body["name"] == "1" and body["type"] == "Microsoft.MachineLearningServices/workspaces/models/versions"
    )
    props = body["properties"]
    assert (
        props["stage"] == "Development"
        and props["flavors"] == {}
        and props["provisioningState"] == "Succeeded"
    )
    assert props["isArchived"] is False and props["isAnonymous"] is False and props["jobName"] is None
    assert props["autoDeleteSetting"] is None and props["intellectualProperty"] is None  # recorded extras
    system = body["systemData"]
    assert TIMESTAMP.match(system["createdAt"]) and system["createdAt"] == system["lastModifiedAt"]
    time.sleep(0.01)
    updated = arm.put(f"models/{model_name}/versions/1", {"properties": {**props, "description": "d2"}})
    assert updated.status_code == 200 and "Location" not in updated.headers
    spec.assert_valid("ModelVersionResource", updated.json())
    assert updated.json()["properties"]["description"] == "d2"
    assert updated.json()["systemData"]["createdAt"] == system["createdAt"]
    assert updated.json()["systemData"]["lastModifiedAt"] > system["lastModifiedAt"]
    got = arm.get(f"models/{model_name}/versions/1")
    assert got.status_code == 200 and got.json() == updated.json()


def test_version_put_creates_the_container(arm: Arm, ws, model_name: str) -> None:
    assert arm.get(f"models/{model_name}").status_code == 404
    put_version(arm, ws, model_name, "1")
    container = arm.get(f"models/{model_name}").json()
    spec.assert_valid("ModelContainerResource", container)
    assert container["properties"]["latestVersion"] == "1" and container["properties"]["nextVersion"] == "2"
    assert container["properties"]["tags"] == {} and container["properties"]["isArchived"] is False


def test_versions_of_unknown_model_get_404_model_not_found(arm: Arm, model_name: str) -> None:
    for tail in (f"models/{model_name}/versions", f"models/{model_name}/versions/1", f"models/{model_name}"):
        response = arm.get(tail)
        assert response.status_code == 404
        error = response.json()["error"]
        assert error["code"] == "UserError"
        assert error["additionalInfo"][0]["info"]["value"] == "managementfrontend"
    assert arm.get(f"models/{model_name}/versions").json()["error"]["details"][0]["code"] == "ModelNotFound"


def test_model_uri_casing_is_normalised_and_a_changed_path_refused(arm: Arm, ws, model_name: str) -> None:
    uri = model_uri(ws, model_name, rg="resourcegroups")
    created = arm.put(f"models/{model_name}/versions/1", {"properties": {"modelUri": uri}})
    stored = created.json()["properties"]["modelUri"]
    assert stored == uri.replace("/resourcegroups/", "/resourceGroups/")
    same = arm.put(f"models/{model_name}/versions/1", {"properties": {"modelUri": uri, "description": "x"}})
    assert same.status_code == 200  # the same path in the other casing is not a change
    changed = arm.put(
        f"models/{model_name}/versions/1", {"properties": {"modelUri": model_uri(ws, model_name)}}
    )
    assert changed.status_code == 400
    error = changed.json()["error"]
    assert f"({error['code']}) {error['message']}" == "(UserError) Asset paths cannot be updated."
    assert arm.get(f"models/{model_name}/versions/1").json()["properties"]["modelUri"] == stored


def test_unknown_fields_are_stored_and_returned_untouched(arm: Arm, ws, model_name: str) -> None:
    extra = {"futureField": {"nested": [1, {"x": None}]}, "datasets": [{"name": "d"}]}
    created = arm.put(
        f"models/{model_name}/versions/1", {"properties": {"modelUri": model_uri(ws, model_name), **extra}}
    )
    assert created.status_code == 201
    got = arm.get(f"models/{model_name}/versions/1").json()["properties"]
    assert {k: got[k] for k in extra} == extra


def test_stage_default_kept_and_set(arm: Arm, ws, model_name: str) -> None:
    props = put_version(arm, ws, model_name, "1", stage="Production").json()["properties"]
    assert props["stage"] == "Production"
    props.pop("stage")  # the SDK's archive drops stage: assumed kept
    assert arm.put(f"models/{model_name}/versions/1", {"properties": props}).json()["properties"][
        "stage"
    ] == ("Production")
    props["stage"] = None
    assert arm.put(f"models/{model_name}/versions/1", {"properties": props}).json()["properties"][
        "stage"
    ] == ("Development")


def test_next_version_is_monotonic_and_never_reset(arm: Arm, ws, model_name: str) -> None:
    def container() -> dict:
        return arm.get(f"models/{model_name}").json()["properties"]

    for v in ("1", "2", "3"):
        put_version(arm, ws, model_name, v)
    assert (container()["latestVersion"], container()["nextVersion"]) == ("3", "4")
    assert arm.delete(f"models/{model_name}/versions/3").status_code == 200
    assert arm.delete(f"models/{model_name}/versions/3").status_code == 204
    assert (container()["latestVersion"], container()["nextVersion"]) == ("2", "4")
    put_version(arm, ws, model_name, "v1.0-beta")  # the CLI can make non-integer versions
    assert (container()["latestVersion"], container()["nextVersion"]) == ("v1.0-beta", "4")
    put_version(arm, ws, model_name, "10")
    assert container()["nextVersion"] == "11"
    for v in ("1", "2", "v1.0-beta", "10"):
        assert arm.delete(f"models/{model_name}/versions/{v}").status_code == 200
    assert (container()["latestVersion"], container()["nextVersion"]) == (None, "11")
    assert arm.get(f"models/{model_name}/versions").json() == {"value": []}
    # an empty container can be deleted; recreating it does not reset nextVersion (assumed)
    assert arm.delete(f"models/{model_name}").status_code == 200
    assert arm.delete(f"models/{model_name}").status_code == 204
    put_version(arm, ws, model_name, "11")
    assert container()["nextVersion"] == "12"


def test_container_with_versions_cannot_be_deleted(arm: Arm, ws, model_name: str) -> None:
    put_version(arm, ws, model_name, "1")
    response = arm.delete(f"models/{model_name}")
    assert response.status_code == 409
    assert arm.get(f"models/{model_name}/versions/1").status_code == 200


# --------------------------------------------------------------------------- request validation
INVALID_BODIES = {
    "nested flavor data": {
        "properties": {"flavors": {"python_function": {"data": {"env": {"conda": "c.yaml"}}}}}
    },
    "non-string tag": {"properties": {"tags": {"n": 1}}},
    "non-string property": {"properties": {"properties": {"b": True}}},
    "flavor not an object": {"properties": {"flavors": {"sklearn": "x"}}},
    "isArchived not boolean": {"properties": {"isArchived": "yes"}},
    "description not string": {"properties": {"description": 5}},
    "stage not string": {"properties": {"stage": ["Production"]}},
    "no properties": {"name": "1"},
}
VALID_BODIES = {
    "minimal": {"properties": {}},
    "flavors": {
        "properties": {
            "flavors": {
                "python_function": {"data": {"loader_module": "m", "env": None}},
                "sklearn": {"data": None},
                "empty": {},
            }
        }
    },
    "nulls": {"properties": {"description": None, "tags": None, "properties": None, "stage": None}},
    "read-only echo": {
        "id": "/x",
        "name": "1",
        "type": "t",
        "properties": {"provisioningState": "Succeeded"},
    },
}


@pytest.mark.parametrize("case", sorted(INVALID_BODIES))
def test_invalid_version_bodies_are_refused_like_the_spec(arm: Arm, model_name: str, case: str) -> None:
    body = INVALID_BODIES[case]
    assert spec.errors("ModelVersionResource", body), "the spec must refuse this body too"
    response = arm.put(f"models/{model_name}/versions/1", body)
    assert response.status_code == 400 and response.json()["error"]["code"] == "UserError"
    assert arm.get(f"models/{model_name}/versions/1").status_code == 404


@pytest.mark.parametrize("case", sorted(VALID_BODIES))
def test_valid_version_bodies_are_accepted_like_the_spec(arm: Arm, model_name: str, case: str) -> None:
    body = VALID_BODIES[case]
    assert not spec.errors("ModelVersionResource", body)
    response = arm.put(f"models/{model_name}/versions/1", body)
    assert response.status_code == 201
    spec.assert_valid("ModelVersionResource", response.json())


def test_model_names_follow_the_spec_pattern(arm: Arm) -> None:
    pattern = re.compile(spec.model_name_pattern())
    for name in ("-leading-dash", "has.dot", "x" * 256, "sp ace"):
        assert not pattern.match(name)
        response = arm.put(f"models/{requests.utils.quote(name)}/versions/1", {"properties": {}})
        assert response.status_code == 400, name
    name = "A" + "b" * 254
    assert pattern.match(name) and arm.put(f"models/{name}/versions/1", {"properties": {}}).status_code == 201
    assert (
        arm.put(
            "models/x/versions/1", data=b"{not json", headers={"Content-Type": "application/json"}, body=None
        ).status_code
        == 400
    )


def test_container_put_is_validated(arm: Arm, model_name: str) -> None:
    assert arm.put(f"models/{model_name}", {"properties": {"tags": {"a": 1}}}).status_code == 400
    created = arm.put(f"models/{model_name}", {"properties": {"description": "c", "tags": {"t": "1"}}})
    assert created.status_code == 201 and created.headers["Location"].endswith("?api-version=2025-12-01")
    spec.assert_valid("ModelContainerResource", created.json())
    assert (
        created.json()["properties"]["nextVersion"] == "1"
        and created.json()["properties"]["latestVersion"] is None
    )
    updated = arm.put(f"models/{model_name}", {"properties": {"isArchived": True, "nextVersion": "99"}})
    assert updated.status_code == 200
    assert updated.json()["properties"]["nextVersion"] == "1"  # read-only: ignored
    assert updated.json()["properties"]["isArchived"] is True and updated.json()["properties"]["tags"] == {}


# --------------------------------------------------------------------------- lists
def test_version_list_filters_and_order(arm: Arm, ws, model_name: str) -> None:
    put_version(arm, ws, model_name, "1", tags={"team": "a", "x": "1"}, stage="Production", description="one")
    put_version(arm, ws, model_name, "2", tags={"team": "b"}, properties={"run": "r2"})
    put_version(arm, ws, model_name, "3", tags={"team": "a"}, isArchived=True)

    def names(**params) -> list[str]:
        response = arm.get(f"models/{model_name}/versions", params=params)
        assert response.status_code == 200, response.text
        spec.assert_valid("ModelVersionResourceArmPaginatedResult", response.json())
        return [v["name"] for v in response.json()["value"]]

    assert names() == ["2", "1"]  # ActiveOnly by default, newest first (recorded)
    assert names(listViewType="All") == ["3", "2", "1"]
    assert names(listViewType="ArchivedOnly") == ["3"]
    assert names(**{"$orderBy": "createdtime asc", "listViewType": "All"}) == ["1", "2", "3"]
    assert names(**{"$orderBy": "createdtime desc", "$top": "1"}) == ["2"]
    # $top is a page's size; the rest follows (recorded), the link keeping $top
    first = arm.get(f"models/{model_name}/versions", params={"$top": "1", "listViewType": "All"}).json()
    assert [v["name"] for v in first["value"]] == ["3"] and "top=1" in first["nextLink"].replace("%24", "$")
    second = arm.follow(first["nextLink"]).json()
    assert [v["name"] for v in second["value"]] == ["2"] and "nextLink" in second
    assert names(tags="team=a") == ["1"]
    assert names(tags="team=a", listViewType="All") == ["3", "1"]
    assert names(tags="x") == ["1"]
    assert names(tags="team,x") == ["1"]
    assert names(properties="run=r2") == ["2"]
    assert names(properties="run") == ["2"]
    assert names(stage="Production") == ["1"]
    assert names(stage="Development") == ["2"]
    assert names(version="2") == ["2"]
    assert names(description="one") == ["1"]
    assert arm.get(f"models/{model_name}/versions", params={"$orderBy": "name"}).status_code == 400
    assert arm.get(f"models/{model_name}/versions", params={"listViewType": "Some"}).status_code == 400


def test_version_list_pages_with_absolute_next_links_carrying_filters(
    arm: Arm, ws, model_name: str, small_pages: int
) -> None:
    for v in range(1, 6):
        put_version(arm, ws, model_name, str(v), tags={"k": "v"})
    put_version(arm, ws, model_name, "6")
    params = {"tags": "k=v", "listViewType": "ActiveOnly", "$orderBy": "createdtime asc"}
    response = arm.get(f"models/{model_name}/versions", params=params)
    seen, links = [], 0
    while True:
        body = response.json()
        spec.assert_valid("ModelVersionResourceArmPaginatedResult", body)
        seen += [v["name"] for v in body["value"]]
        if "nextLink" not in body:
            break
        links += 1
        link = urlsplit(body["nextLink"])
        assert f"{link.scheme}://{link.netloc}" == ws.resource_manager_url
        query = {k: v[-1] for k, v in parse_qs(link.query).items()}
        assert {k: query[k] for k in params} == params and query["api-version"] == "2025-12-01"
        response = arm.follow(body["nextLink"])
    assert seen == ["1", "2", "3", "4", "5"] and links == 2
    assert arm.get(f"models/{model_name}/versions", params={"$skip": "garbage!"}).status_code == 400


def test_container_list_view_types_and_paging(arm: Arm, ws, small_pages: int) -> None:
    prefix = f"c{uuid.uuid4().hex[:6]}"
    for i in range(3):
        put_version(arm, ws, f"{prefix}-{i}", "1")
    arm.put(f"models/{prefix}-0", {"properties": {"isArchived": True}})

    def all_names(**params) -> list[str]:
        response, out = arm.get("models", params=params), []
        while True:
            spec.assert_valid("ModelContainerResourceArmPaginatedResult", response.json())
            out += [c["name"] for c in response.json()["value"] if c["name"].startswith(prefix)]
            if "nextLink" not in response.json():
                return out
            response = arm.follow(response.json()["nextLink"])

    assert sorted(all_names()) == [f"{prefix}-1", f"{prefix}-2"]
    assert all_names(listViewType="ArchivedOnly") == [f"{prefix}-0"]
    assert sorted(all_names(listViewType="All", count="1")) == [f"{prefix}-{i}" for i in range(3)]
    first = arm.get("models", params={"count": "1"}).json()
    assert len(first["value"]) == 1 and "count=1" in first["nextLink"]



def test_container_list_is_newest_first_across_pages(arm: Arm, ws, small_pages: int) -> None:
    """Creation order, newest first: an update keeps a container's place, deleting and making it again moves it."""
    prefix = f"o{uuid.uuid4().hex[:6]}"
    for i in range(5):
        assert arm.put(f"models/{prefix}-{i}", {"properties": {}}).status_code in (200, 201)
    arm.put(f"models/{prefix}-1", {"properties": {"description": "updated"}})
    assert arm.delete(f"models/{prefix}-3").status_code == 200
    assert arm.put(f"models/{prefix}-3", {"properties": {}}).status_code == 201
    response, seen, pages = arm.get("models", params={"count": "2", "listViewType": "All"}), [], 1
    while True:
        seen += [c["name"] for c in response.json()["value"] if c["name"].startswith(prefix)]
        if "nextLink" not in response.json():
            break
        response, pages = arm.follow(response.json()["nextLink"]), pages + 1
    assert seen == [f"{prefix}-{i}" for i in (3, 4, 2, 1, 0)]
    assert pages >= 3

# --------------------------------------------------------------------------- datastores, secrets, jobs
def test_datastores(arm: Arm, ws) -> None:
    default = arm.get("datastores/workspaceblobstore")
    assert default.status_code == 200
    spec.assert_valid("DatastoreResource", default.json())
    props = default.json()["properties"]
    assert props["isDefault"] is True and props["credentials"] == {"credentialsType": "AccountKey"}
    assert props["datastoreType"] == "AzureBlob" and props["protocol"] == "https"
    assert props["accountName"] == "devstoreaccount1" and props["containerName"].startswith(
        "azureml-blobstore-"
    )
    assert props["endpoint"] == f"core.localhost:{ws.blob_port}"
    assert ws.datastore("local-ws") == props
    identity = arm.get("datastores/workspaceblobstore_identity")
    spec.assert_valid("DatastoreResource", identity.json())
    assert identity.json()["properties"]["credentials"] == {"credentialsType": "None"}
    assert identity.json()["properties"]["containerName"] == props["containerName"]
    listed = arm.get("datastores", params={"isDefault": "true", "count": "30", "orderByAsc": "false"})
    spec.assert_valid("DatastoreResourceArmPaginatedResult", listed.json())
    assert [d["name"] for d in listed.json()["value"]] == ["workspaceblobstore"]
    everything = arm.get("datastores", params={"count": "1"}).json()
    second = arm.follow(everything["nextLink"]).json()
    assert {d["name"] for d in everything["value"] + second["value"]} == {
        "workspaceblobstore",
        "workspaceblobstore_identity",
    }
    assert "nextLink" not in second
    assert arm.get("datastores/nope").status_code == 404


def test_list_secrets_returns_a_working_sas_honouring_expiry(arm: Arm, ws) -> None:
    from azure.storage.blob import ContainerClient

    response = arm.post(
        "datastores/workspaceblobstore/listSecrets", {"expirableSecret": True, "expireAfterHours": 3}
    )
    assert response.status_code == 200
    secrets = response.json()
    spec.assert_valid("SasDatastoreSecrets", secrets)
    assert (
        secrets["secretsType"] == "Sas"
        and secrets["sasToken"].startswith("?")
        and "sv=" in secrets["sasToken"]
    )
    query = parse_qs(secrets["sasToken"].lstrip("?"))
    assert query["srt"] == ["co"] and set(query["sp"][0]) >= set("rcwdl")
    expiry = time.mktime(time.strptime(query["se"][0], "%Y-%m-%dT%H:%M:%SZ")) - time.timezone
    assert 2.9 * 3600 < expiry - time.time() < 3.1 * 3600
    props = ws.datastore("local-ws")
    container = ContainerClient(
        ws.storage_account_url_template.format(account=props["accountName"]),
        props["containerName"],
        credential=secrets["sasToken"],
        connection_verify=ws.ca_bundle,
    )
    container.upload_blob(f"sas-check/{uuid.uuid4().hex}", b"hello", overwrite=True)
    assert any(b.name.startswith("sas-check/") for b in container.list_blobs(name_starts_with="sas-check/"))
    assert arm.post("datastores/workspaceblobstore/listSecrets").status_code == 200  # no body: 1 hour
    assert arm.post("datastores/workspaceblobstore_identity/listSecrets").status_code == 400
    assert arm.post("datastores/workspaceblobstore/listSecrets", {"expireAfterHours": "x"}).status_code == 400


def test_bearer_token_reads_blobs_through_the_identity_datastore(ws) -> None:
    from azure.storage.blob import ContainerClient

    props = ws.datastore("local-ws", "workspaceblobstore_identity")
    url = ws.storage_account_url_template.format(account=props["accountName"])
    with_token = ContainerClient(
        url, props["containerName"], credential=ws.credential(), connection_verify=ws.ca_bundle
    )
    name = f"identity/{uuid.uuid4().hex}"
    with_token.upload_blob(name, b"via token")
    assert with_token.download_blob(name).readall() == b"via token"


def test_jobs_get_returns_seeded_outputs(arm: Arm, ws) -> None:
    job = f"job-{uuid.uuid4().hex[:8]}"
    outputs = {
        "model": {
            "jobOutputType": "mlflow_model",
            "mode": "ReadWriteMount",
            "uri": "azureml://datastores/workspaceblobstore/paths/azureml/x/model/",
        }
    }
    ws.state.put_job("local-ws", job, {"outputs": outputs})
    response = arm.get(f"jobs/{job}")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == job and body["type"] == "Microsoft.MachineLearningServices/workspaces/jobs"
    assert (
        body["id"].endswith(f"/workspaces/local-ws/jobs/{job}") and body["properties"]["outputs"] == outputs
    )
    assert arm.get(f"jobs/{job}", workspace="local-ws-2").status_code == 404
    assert arm.get("jobs/no-such-job").status_code == 404


# --------------------------------------------------------------------------- workspaces, request log
def test_workspaces_are_isolated(arm: Arm, ws, model_name: str) -> None:
    put_version(arm, ws, model_name, "1")
    assert arm.get(f"models/{model_name}/versions/1", workspace="local-ws-2").status_code == 404
    one, two = ws.datastore("local-ws"), ws.datastore("local-ws-2")
    assert one["accountName"] != two["accountName"] and one["containerName"] != two["containerName"]
    assert ws.registry_uri("local-ws-2").endswith("/resourceGroups/local-rg/workspaces/local-ws-2")
    sas = arm.post("datastores/workspaceblobstore/listSecrets").json()["sasToken"]
    from azure.core.exceptions import HttpResponseError
    from azure.storage.blob import ContainerClient

    foreign = ContainerClient(
        ws.storage_account_url_template.format(account=two["accountName"]),
        two["containerName"],
        credential=sas,
        connection_verify=ws.ca_bundle,
    )
    with pytest.raises(HttpResponseError):
        foreign.upload_blob("x", b"not allowed")


def test_request_log_records_every_request(arm: Arm, ws, model_name: str) -> None:
    ws.clear_requests()
    put_version(arm, ws, model_name, "1")
    arm.get(f"models/{model_name}/versions", params={"tags": "a=b,c"})
    records = ws.requests
    assert [(r["method"], r["status"], r["operation"]) for r in records] == [
        ("PUT", 201, "ModelVersions_CreateOrUpdate"),
        ("GET", 200, "ModelVersions_List"),
    ]
    assert records[1]["path"].endswith(f"/models/{model_name}/versions")
    assert records[1]["query"] == {"api-version": "2025-12-01", "tags": "a=b,c"}
    assert records[1]["workspace"] == "local-ws" and records[1]["ms"] >= 0
    ws.clear_requests()
    assert ws.requests == []


def test_chunked_request_bodies_are_read(arm: Arm, ws, model_name: str) -> None:
    body = json.dumps(
        {"properties": {"modelUri": model_uri(ws, model_name), "description": "chunked"}}
    ).encode()
    response = arm.session.put(
        arm.url(f"models/{model_name}/versions/1"),
        params={"api-version": "2025-12-01"},
        data=iter([body[:7], body[7:]]),
        headers={"Content-Type": "application/json"},
        timeout=10,
    )
    check_common(response)
    assert response.status_code == 201 and response.json()["properties"]["description"] == "chunked"

"""The cloud deployment in infra/ keeps its contract with the function and the site.

Terraform cannot be planned here (no cloud account, and usually no provider
download), so the .tf files are read with python-hcl2 and checked for what the
deployment must do: run `predict` on Python 3.11+, redeploy when the zip
changes, be publicly invocable, allow the site's origin, serve the site
publicly. `terraform fmt` and `validate` run when a terraform binary (and, for
validate, the provider) is available. deploy.sh is run against fake
terraform and gcloud commands, which checks its own logic end to end.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import subprocess
import textwrap
from pathlib import Path
from urllib.parse import urlparse

import hcl2
import pytest

from conftest import ROOT

INFRA = ROOT / "infra"
DEPLOY_SH = INFRA / "deploy.sh"
HCL_OPTIONS = hcl2.SerializationOptions(with_comments=False, explicit_blocks=False, strip_string_quotes=True)
REQUIRED_APIS = {
    "cloudfunctions.googleapis.com",
    "run.googleapis.com",
    "cloudbuild.googleapis.com",
    "artifactregistry.googleapis.com",
    "storage.googleapis.com",
}


@pytest.fixture(scope="module")
def tf() -> dict[str, list]:
    """All top-level blocks of all infra/*.tf files, merged: {"resource": [...], "variable": [...], ...}."""
    merged: dict[str, list] = {}
    for path in sorted(INFRA.glob("*.tf")):
        with path.open() as f:
            for key, blocks in hcl2.load(f, serialization_options=HCL_OPTIONS).items():
                merged.setdefault(key, []).extend(blocks)
    return merged


def resources(tf: dict, kind: str) -> dict[str, dict]:
    """Resources of one type by their Terraform name."""
    return {name: body for block in tf.get("resource", []) for name, body in block.get(kind, {}).items()}


def named(tf: dict, key: str) -> dict[str, dict]:
    """Variables or outputs by name."""
    return {name: body for block in tf.get(key, []) for name, body in block.items()}


def locals_(tf: dict) -> dict:
    return {name: value for block in tf.get("locals", []) for name, value in block.items()}


def resolve(tf: dict, value):
    """A plain `${var.x}` reference becomes the variable's default; anything else stays as it is."""
    match = re.fullmatch(r"\$\{var\.(\w+)\}", str(value))
    return named(tf, "variable")[match.group(1)].get("default") if match else value


def the_function(tf: dict) -> tuple[str, dict]:
    functions = resources(tf, "google_cloudfunctions2_function")
    assert len(functions) == 1, f"expected one 2nd-gen function, found {sorted(functions)}"
    return next(iter(functions.items()))


def site_bucket(tf: dict) -> tuple[str, dict]:
    websites = {name: body for name, body in resources(tf, "google_storage_bucket").items() if "website" in body}
    assert len(websites) == 1, "expected one bucket with a website block (the site)"
    return next(iter(websites.items()))


def test_split_into_the_usual_files():
    for name in ("main.tf", "variables.tf", "outputs.tf", "versions.tf"):
        assert (INFRA / name).is_file(), f"infra/{name} is missing"


def test_google_provider_is_pinned(tf):
    providers = {k: v for block in tf["terraform"] for p in block["required_providers"] for k, v in p.items()}
    assert providers["google"]["source"] == "hashicorp/google"
    assert re.match(r"^(~>|>=.*<)", providers["google"]["version"]), "pin the provider to one major version"


def test_function_runs_predict_on_python_311_or_newer(tf):
    _, function = the_function(tf)
    build = function["build_config"][0]
    assert build["entry_point"] == "predict"
    runtime = resolve(tf, build["runtime"])
    match = re.fullmatch(r"python3(\d+)", runtime)
    assert match and int(match.group(1)) >= 11, f"runtime {runtime} is not Python 3.11+"


def test_source_object_is_named_by_the_zip_md5(tf):
    """A changed zip gives a new object name, which is what makes Terraform redeploy the function."""
    _, function = the_function(tf)
    storage = function["build_config"][0]["source"][0]["storage_source"][0]
    match = re.fullmatch(r"\$\{google_storage_bucket_object\.(\w+)\.name\}", storage["object"])
    assert match, f"the function's source object should be a bucket object's name, not {storage['object']}"
    obj = resources(tf, "google_storage_bucket_object")[match.group(1)]
    assert "filemd5(var.function_zip)" in obj["name"]
    assert obj["source"] == "${var.function_zip}"
    default = named(tf, "variable")["function_zip"]["default"]
    assert (INFRA / default).resolve() == ROOT / "build" / "function.zip", (
        "the default must be what make package builds"
    )


def test_function_is_publicly_invocable(tf):
    """2nd-gen functions are Cloud Run services: allUsers needs roles/run.invoker on that service."""
    function_name, _ = the_function(tf)
    grants = [
        body
        for kind in ("google_cloud_run_service_iam_member", "google_cloud_run_v2_service_iam_member")
        for body in resources(tf, kind).values()
    ]
    public = [g for g in grants if g["role"] == "roles/run.invoker" and g["member"] == "allUsers"]
    assert public, "no roles/run.invoker grant for allUsers"
    assert any(
        f"google_cloudfunctions2_function.{function_name}." in g.get("service", g.get("name", "")) for g in public
    )


def test_function_sizing_is_set(tf):
    """One vCPU, several requests at once (as many as the worker has threads), memory for them, no idle instance."""
    _, function = the_function(tf)
    service = function["service_config"][0]
    variables = named(tf, "variable")
    assert float(resolve(tf, service["available_cpu"])) >= 1, "concurrency above 1 needs a whole vCPU"
    assert service["max_instance_request_concurrency"] == "${var.concurrency}"
    assert variables["concurrency"]["default"] >= 8
    env = service["environment_variables"]
    assert env["THREADS"] == "${tostring(var.concurrency)}", "threads must match concurrency"
    assert env["WORKERS"] == "1", "one Python process: it uses one vCPU at most"
    (cpu_rule,) = variables["cpu"]["validation"]
    assert "tonumber(var.cpu) <= 1" in cpu_rule["condition"], "a second vCPU would sit idle under one worker"
    (check,) = function["lifecycle"][0]["precondition"]
    assert check["condition"] == "${tonumber(var.cpu) >= 1 || var.concurrency == 1}", "Cloud Run's rule, before upload"
    memory = re.fullmatch(r"(\d+)(Mi?|Gi?)", resolve(tf, service["available_memory"]))
    mebibytes = int(memory.group(1)) * (1024 if memory.group(2).startswith("G") else 1)
    assert 512 <= mebibytes <= 2048, f"memory {memory.group(0)} is outside 512M-2G"
    assert 10 <= int(resolve(tf, service["timeout_seconds"])) <= 300
    assert service["min_instance_count"] == "${var.min_instances}" and variables["min_instances"]["default"] == 0
    assert env["GOOGLE_CLOUD_PROJECT"] == "${var.project}", "the log lines name their trace by project"


def test_instance_cap_covers_the_spike_within_the_cost_ceiling(tf):
    """The cap is computed (spike / per-instance rate, bounded by the cost ceiling) unless max_instances is set."""
    _, function = the_function(tf)
    assert function["service_config"][0]["max_instance_count"] == "${local.max_instances}"
    values, variables = locals_(tf), named(tf, "variable")
    assert "var.max_instances" in values["max_instances"] and variables["max_instances"]["default"] is None
    assert values["spike_instances"] == "${ceil(var.spike_requests_per_second / var.instance_requests_per_second)}"
    assert values["budget_instances"] == "${floor(var.max_hourly_cost_usd / local.busy_instance_hourly_usd)}"
    assert "var.request_fee_usd_per_million" in values["busy_instance_hourly_usd"]
    assert "min(local.spike_instances, local.budget_instances)" in values["max_instances"]
    default = {name: body.get("default") for name, body in variables.items()}
    spike = math.ceil(default["spike_requests_per_second"] / default["instance_requests_per_second"])
    fee = default["instance_requests_per_second"] * 3600 * default["request_fee_usd_per_million"] / 1e6
    budget = math.floor(default["max_hourly_cost_usd"] / (default["instance_hourly_cost_usd"] + fee))
    assert 1 <= spike <= budget, "the default cost ceiling must pay for the default spike"


def test_allowed_origins_is_the_site_origin_unless_overridden(tf):
    """The browser sends the origin of the page, which has no path: https://storage.googleapis.com."""
    _, function = the_function(tf)
    env = function["service_config"][0]["environment_variables"]
    assert "local.allowed_origins" in env["ALLOWED_ORIGINS"]
    values = locals_(tf)
    assert "var.allowed_origins" in values["allowed_origins"]
    assert "local.site_origin" in values["allowed_origins"]
    origin = urlparse(values["site_origin"])
    assert (origin.scheme, origin.netloc, origin.path) == ("https", "storage.googleapis.com", "")
    assert values["site_url"].startswith("${local.site_origin}/"), "the site must be served from the allowed origin"
    assert named(tf, "variable")["allowed_origins"]["default"] == []


def test_site_bucket_is_a_public_website(tf):
    name, bucket = site_bucket(tf)
    assert bucket["website"][0]["main_page_suffix"] == "index.html"
    assert bucket["website"][0]["not_found_page"]
    assert bucket["uniform_bucket_level_access"] is True
    assert bucket["cors"][0]["origin"] == "${local.allowed_origins}"
    readers = [
        g
        for g in resources(tf, "google_storage_bucket_iam_member").values()
        if g["bucket"] == f"${{google_storage_bucket.{name}.name}}"
    ]
    assert any(g["role"] == "roles/storage.objectViewer" and g["member"] == "allUsers" for g in readers)


def test_needed_apis_are_enabled_and_left_on(tf):
    (service,) = resources(tf, "google_project_service").values()
    assert service["for_each"] == "${toset(local.services)}"
    assert set(locals_(tf)["services"]) >= REQUIRED_APIS
    assert service["disable_on_destroy"] is False


def test_what_uses_an_api_waits_until_it_is_usable(tf):
    """An API is not usable the moment it is enabled: the first apply on a new project would fail."""
    sleeps = resources(tf, "time_sleep")
    ready = [name for name, body in sleeps.items() if body["depends_on"] == ["${google_project_service.apis}"]]
    assert len(ready) == 1, "one time_sleep after google_project_service.apis"
    waited_for = f"${{time_sleep.{ready[0]}}}"
    users = {**resources(tf, "google_storage_bucket"), **resources(tf, "google_service_account")}
    assert users and all(body["depends_on"] == [waited_for] for body in users.values())
    providers = {k: v for block in tf["terraform"] for p in block["required_providers"] for k, v in p.items()}
    assert providers["time"]["source"] == "hashicorp/time"


def test_the_function_is_built_by_an_account_with_the_builds_roles(tf):
    """Projects made since July 2024 give Cloud Build's default account no roles: the build needs its own."""
    _, function = the_function(tf)
    account = re.fullmatch(r"\$\{google_service_account\.(\w+)\.id\}", function["build_config"][0]["service_account"])
    assert account, "build_config.service_account should be an account made here"
    grants = [g for g in resources(tf, "google_project_iam_member").values() if account.group(1) in g["member"]]
    (grant,) = grants
    roles = set(re.findall(r"roles/[\w.]+", str(grant["for_each"])))
    assert roles >= {"roles/logging.logWriter", "roles/artifactregistry.writer", "roles/storage.objectAdmin"}
    sleeps = resources(tf, "time_sleep")
    (after_grants,) = [n for n, b in sleeps.items() if b["depends_on"] == ["${google_project_iam_member.build}"]]
    assert function["depends_on"] == [f"${{time_sleep.{after_grants}}}"], "the build starts once its roles hold"


def test_a_new_zip_is_deployed_with_its_own_generation(tf):
    """Left to the provider, the last deploy's generation goes with a new zip (terraform-provider-google#19134)."""
    _, function = the_function(tf)
    storage = function["build_config"][0]["source"][0]["storage_source"][0]
    assert storage["generation"] == "${google_storage_bucket_object.source.generation}"


def test_outputs_give_both_urls(tf):
    function_name, _ = the_function(tf)
    outputs = named(tf, "output")
    assert f"google_cloudfunctions2_function.{function_name}." in outputs["function_url"]["value"]
    assert outputs["site_url"]["value"] == "${local.site_url}"
    assert locals_(tf)["site_url"].endswith("/index.html")
    read_by_deploy = set(re.findall(r"output -raw (\w+)", DEPLOY_SH.read_text()))
    assert read_by_deploy and read_by_deploy <= set(outputs), "deploy.sh reads an output that does not exist"


def test_project_is_required_and_the_rest_has_defaults(tf):
    variables = named(tf, "variable")
    assert "default" not in variables["project"]
    assert all("default" in body for name, body in variables.items() if name != "project")


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on PATH")
def test_terraform_fmt():
    result = subprocess.run(
        ["terraform", "fmt", "-check", "-recursive", "-diff", str(INFRA)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, f"run `terraform fmt -recursive infra`:\n{result.stdout}"


@pytest.mark.skipif(shutil.which("terraform") is None, reason="no terraform binary on PATH")
def test_terraform_validate(tmp_path):
    """Validate needs the google provider; where it cannot be downloaded the test says so and skips."""
    for path in INFRA.glob("*.tf"):  # a copy, so no .terraform/ lands in infra/
        shutil.copy(path, tmp_path)
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    try:
        init = subprocess.run(
            ["terraform", f"-chdir={tmp_path}", "init", "-backend=false", "-input=false", "-no-color"],
            capture_output=True,
            text=True,
            timeout=90,
            env=env,
        )
    except subprocess.TimeoutExpired:
        pytest.skip("terraform init timed out: the google provider cannot be downloaded here")
    if init.returncode != 0:
        error = next((line for line in init.stderr.splitlines() if "Error" in line), init.stderr.strip()[:200])
        if "provider" not in error.lower():  # a broken configuration, not a missing download
            pytest.fail(f"terraform init failed:\n{init.stderr}")
        pytest.skip(f"the google provider cannot be downloaded here, so validate cannot run: {error.strip('│ ')}")
    result = subprocess.run(
        ["terraform", f"-chdir={tmp_path}", "validate", "-no-color"],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert result.returncode == 0, result.stdout + result.stderr


# --- deploy.sh, run against fake terraform and gcloud --------------------------------------------

FAKE_TERRAFORM = """\
#!/bin/sh
echo "terraform $*" >>"$FAKE_LOG"
case "$*" in
  *"output -raw function_url") echo "https://europe-west1-demo.cloudfunctions.net/handwriting-api" ;;
  *"output -raw site_url") echo "https://storage.googleapis.com/demo-handwriting-site/index.html" ;;
  *"output -raw site_bucket") echo "demo-handwriting-site" ;;
esac
"""

FAKE_GCLOUD = """\
#!/bin/sh
echo "gcloud $*" >>"$FAKE_LOG"
case "$1 $2" in
  "auth print-access-token") echo fake-token ;;
  "auth application-default") exit 1 ;;
  "storage rsync") cp -R "$3/." "$FAKE_BUCKET/" ;;
esac
"""

LOCAL_CONFIG = 'window.HANDWRITING_CONFIG = { apiUrl: "http://localhost:8080" };\n'


def test_deploy_script_is_valid_bash():
    assert DEPLOY_SH.read_text().startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in DEPLOY_SH.read_text()
    subprocess.run(["bash", "-n", str(DEPLOY_SH)], check=True)


@pytest.fixture
def fake_repo(tmp_path) -> Path:
    """A copy of the layout deploy.sh works on, with fake terraform and gcloud in fake-bin/."""
    repo = tmp_path / "repo"
    (repo / "infra").mkdir(parents=True)
    shutil.copy(DEPLOY_SH, repo / "infra" / "deploy.sh")
    (repo / "site").mkdir()
    (repo / "site" / "index.html").write_text("<!doctype html><title>test</title>\n")
    (repo / "site" / "config.js").write_text(LOCAL_CONFIG)
    (repo / "build").mkdir()
    (repo / "build" / "function.zip").write_bytes(b"PK fake")
    (tmp_path / "bucket").mkdir()
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    for name, script in (("terraform", FAKE_TERRAFORM), ("gcloud", FAKE_GCLOUD)):
        (bin_dir / name).write_text(script)
        (bin_dir / name).chmod(0o755)
    return repo


def run_deploy(repo: Path, path: str, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("GOOGLE_", "PROJECT", "REGION", "AUTO_APPROVE"))}
    clean.update(PATH=path, FAKE_LOG=str(repo.parent / "calls.log"), FAKE_BUCKET=str(repo.parent / "bucket"), **env)
    return subprocess.run(
        [shutil.which("bash"), str(repo / "infra" / "deploy.sh")], capture_output=True, text=True, env=clean, timeout=60
    )


def bare_path(tmp_path: Path, *fakes: str) -> str:
    """A PATH with only `dirname` and the named fakes, so a real terraform or gcloud cannot be found."""
    bare = tmp_path / "bare-bin"
    bare.mkdir(exist_ok=True)
    (bare / "dirname").symlink_to(shutil.which("dirname"))
    for name in fakes:
        (bare / name).symlink_to(tmp_path / "fake-bin" / name)
    return str(bare)


def test_deploy_without_terraform_says_what_to_install(fake_repo, tmp_path):
    result = run_deploy(fake_repo, bare_path(tmp_path), PROJECT="demo")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "terraform not found" in result.stderr and "install" in result.stderr


def test_deploy_without_gcloud_says_what_to_install(fake_repo, tmp_path):
    result = run_deploy(fake_repo, bare_path(tmp_path, "terraform"), PROJECT="demo")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "gcloud not found" in result.stderr


def test_deploy_without_project_says_how_to_give_one(fake_repo, tmp_path):
    result = run_deploy(fake_repo, f"{tmp_path / 'fake-bin'}:{os.environ['PATH']}")
    assert result.returncode == 1
    assert result.stderr.count("\n") == 1 and "PROJECT=" in result.stderr and "terraform.tfvars" in result.stderr
    assert not (tmp_path / "calls.log").read_text().count("terraform"), "nothing may be applied without a project"


def test_deploy_applies_and_uploads_the_site_with_the_function_url(fake_repo, tmp_path):
    result = run_deploy(fake_repo, f"{tmp_path / 'fake-bin'}:{os.environ['PATH']}", PROJECT="demo", AUTO_APPROVE="1")
    assert result.returncode == 0, result.stderr
    calls = (tmp_path / "calls.log").read_text()
    zip_path = fake_repo / "build" / "function.zip"
    assert f"terraform -chdir={fake_repo / 'infra'} init" in calls
    assert f"apply -input=false -auto-approve -var function_zip={zip_path} -var project=demo" in calls
    uploaded = tmp_path / "bucket"
    assert (uploaded / "index.html").is_file()
    assert (uploaded / "config.js").read_text() == textwrap.dedent("""\
        window.HANDWRITING_CONFIG = { apiUrl: "https://europe-west1-demo.cloudfunctions.net/handwriting-api" };
    """)
    assert "gs://demo-handwriting-site" in calls and "--delete-unmatched-destination-objects" in calls
    assert (fake_repo / "site" / "config.js").read_text() == LOCAL_CONFIG, "the repository's config.js was changed"
    staged = re.search(r"storage rsync (\S+)", calls).group(1)
    assert not Path(staged).exists(), "the staging copy of site/ was left behind"
    assert "https://europe-west1-demo.cloudfunctions.net/handwriting-api" in result.stdout
    assert "https://storage.googleapis.com/demo-handwriting-site/index.html" in result.stdout

"""The kept model in the MLflow model registry: registered last, once, and found again.

The fit step only logs the model in its run. The track step registers it, after the outputs are
published and only when the run succeeded, so a run that fails or is stopped at any point before
leaves the registry and its alias as they were. Each version is tagged with the pipeline, the as-of
date and a fingerprint of the configuration and the input files: rerunning the same as-of date on
the same inputs finds that version instead of registering another one.
"""

from __future__ import annotations

import hashlib
import logging

from tsforecast.exceptions import TrackingError

logger = logging.getLogger(__name__)

AS_OF_TAG = "tsforecast.as_of"
PIPELINE_TAG = "tsforecast.pipeline"
FINGERPRINT_TAG = "tsforecast.fingerprint"


def fingerprint(manifest: dict) -> str:
    """SHA-256 of what decides the model: the resolved configuration and the input files' contents."""
    from tsforecast.pipelines.record import to_json

    inputs = [{"role": item["role"], "sha256": item["sha256"]} for item in manifest["inputs"]]
    return hashlib.sha256(to_json({"config": manifest["config"], "inputs": inputs})).hexdigest()


def registered_before(registry, as_of: str) -> tuple[str | None, str | None, str | None]:
    """The registered version with the latest as-of date before ``as_of``, and the alias's as-of.

    Returns
    -------
    uri : str or None
        ``models:/NAME/VERSION`` of the model that was current before ``as_of`` (None if none).
    uri_as_of : str or None
        That version's as-of date.
    alias_as_of : str or None
        The as-of date of the version the alias points to now (None without alias or version).
    """
    import mlflow

    client = mlflow.MlflowClient()
    try:
        versions = client.search_model_versions(f"name='{registry.name}'")
    except mlflow.exceptions.MlflowException:
        return None, None, None
    dated = [(v.tags.get(AS_OF_TAG), int(v.version)) for v in versions if v.tags.get(AS_OF_TAG)]
    earlier = [item for item in dated if item[0] < as_of]
    uri, uri_as_of = None, None
    if earlier:
        uri_as_of, version = max(earlier)
        uri = f"models:/{registry.name}/{version}"
    return uri, uri_as_of, _alias_as_of(client, registry)


def register(registry, pipeline: str, as_of: str, model_uri: str, manifest: dict) -> dict:
    """Register ``model_uri`` (once per pipeline, as-of date and fingerprint) and move the alias.

    The alias moves unless it points at a version of a later as-of date (a backfill does not move
    it backwards).

    Returns
    -------
    dict
        ``registered_model_uri`` and ``registered_version`` (for ``run.json`` and the report).

    Raises
    ------
    TrackingError
        When the registry cannot be used; the outputs are published already, a rerun registers.
    """
    import mlflow

    client = mlflow.MlflowClient()
    tags = {PIPELINE_TAG: pipeline, AS_OF_TAG: as_of, FINGERPRINT_TAG: fingerprint(manifest)}
    try:
        versions = client.search_model_versions(f"name='{registry.name}'")
        same = [v for v in versions if all(v.tags.get(k) == value for k, value in tags.items())]
        if same:
            version = str(max(int(v.version) for v in same))
            logger.info(
                "%s version %s already holds this pipeline's model for %s (same configuration and "
                "inputs): not registered again",
                registry.name, version, as_of,
            )  # fmt: skip
        else:
            version = str(mlflow.register_model(model_uri, registry.name, tags=tags).version)
            logger.info("registered %s as %s version %s", model_uri, registry.name, version)
        info = {"registered_model_uri": f"models:/{registry.name}/{version}", "registered_version": version}
        if registry.alias:
            alias_as_of = _alias_as_of(client, registry)
            if alias_as_of is None or as_of >= alias_as_of:
                client.set_registered_model_alias(registry.name, registry.alias, version)
                info["registered_model_uri"] = f"models:/{registry.name}@{registry.alias}"
            else:
                logger.info(
                    "alias %s stays on the model of %s (later than this backfill of %s)",
                    registry.alias, alias_as_of, as_of,
                )  # fmt: skip
    except mlflow.exceptions.MlflowException as error:
        raise TrackingError(
            f"the outputs are published, but the model could not be registered as {registry.name!r}: "
            f"{error}. Rerun the same --as-of to register it."
        ) from error
    return info


def _alias_as_of(client, registry) -> str | None:
    import mlflow

    if not registry.alias:
        return None
    try:
        return client.get_model_version_by_alias(registry.name, registry.alias).tags.get(AS_OF_TAG)
    except mlflow.exceptions.MlflowException:
        return None


__all__ = ["AS_OF_TAG", "FINGERPRINT_TAG", "PIPELINE_TAG", "fingerprint", "register", "registered_before"]
